//! Schedulers: where the tasks of a computation run, and how the default is
//! chosen.
//!
//! The default scheduler, most specific first: the one running the current
//! task (so a nested `compute` joins it), a [`with_scheduler`] scope on this
//! thread, [`set_scheduler`], the `RDASK_SCHEDULER` environment variable, and
//! finally `Scheduler::threads(0)`.

use crate::callbacks::{self, Callback};
use crate::exec::{run_sync, run_threads, Exec};
use crate::plan::{Lookup, Plan};
use crate::slab::NodeRef;
use crate::value::Value;
use crate::{Error, ErrorKind, Result};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};

/// Where a computation's tasks run.
///
/// | scheduler | runs tasks on | for |
/// |---|---|---|
/// | `Scheduler::Sync` | the caller's thread, one at a time | debugging, profiling, determinism |
/// | `Scheduler::threads(n)` | a rayon pool of `n` workers (`0`: all cores) | the default |
/// | `Scheduler::pool(pool)` | the caller's own rayon pool | sharing a pool with other rayon work |
///
/// ```
/// use rdask::prelude::*;
/// let s: Scheduler = "sync".parse()?;
/// assert_eq!(s.to_string(), "sync");
/// assert_eq!(rdask::value(2).compute_with(&s)?, 2);
/// # Ok::<(), rdask::Error>(())
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub enum Scheduler {
    /// The caller's thread, one task at a time, in depth-first order.
    Sync,
    /// A rayon thread pool.
    Threads(Threads),
    /// Worker processes, for tasks whose types are serde.
    Processes(crate::Processes),
}

/// The thread pool of [`Scheduler::Threads`].
#[derive(Clone)]
pub struct Threads {
    workers: usize,
    pool: Option<Arc<rayon::ThreadPool>>,
}

impl Threads {
    /// The number of worker threads (for `threads(0)`, the size of rayon's
    /// global pool: one per core unless configured otherwise).
    pub fn workers(&self) -> usize {
        match (&self.pool, self.workers) {
            (Some(p), _) => p.current_num_threads(),
            (None, 0) => rayon::current_num_threads(),
            (None, n) => n,
        }
    }
}

impl Scheduler {
    /// A pool of `n` worker threads; `0` means rayon's global pool (one
    /// worker per core). Pools of a given size are created once per process
    /// and shared.
    pub fn threads(n: usize) -> Scheduler {
        Scheduler::Threads(Threads {
            workers: n,
            pool: None,
        })
    }

    /// `n` worker processes (`0`: one per core), started on first use and
    /// kept warm across computations. See [`crate::process`].
    pub fn processes(n: usize) -> Scheduler {
        Scheduler::Processes(crate::Processes {
            workers: n,
            program: None,
            start_timeout: std::time::Duration::from_secs(20),
        })
    }

    /// Runs on the caller's own rayon pool (dask's `pool=`).
    pub fn pool(pool: Arc<rayon::ThreadPool>) -> Scheduler {
        Scheduler::Threads(Threads {
            workers: pool.current_num_threads(),
            pool: Some(pool),
        })
    }

    /// Plans the computation of `roots` (raw keys resolved in `graph`) and
    /// runs it, with the callbacks attached to it (`extra`) and those active
    /// here; a single tree runs without a plan. On a pool, all of it happens
    /// inside the pool, so that its workers wake once.
    pub(crate) fn compute(
        &self,
        roots: &[NodeRef],
        graph: Lookup<'_>,
        extra: &[Arc<dyn Callback>],
    ) -> Result<Vec<Value>> {
        // Read here, on the caller's thread, where they are set.
        let callbacks = callbacks::active(extra);
        // One tree, nothing watching, in this process: no plan needed (see
        // `crate::tree`).
        let tree = match roots {
            [root]
                if root.tree
                    && graph.is_none()
                    && callbacks.is_empty()
                    && !matches!(self, Scheduler::Processes(_)) =>
            {
                Some(&**root)
            }
            _ => None,
        };
        if tree.is_none() {
            PLANNED.with(|n| n.set(n.get() + 1));
        }
        let pool = self.rayon_pool()?;
        let work = || match tree {
            Some(root) => {
                let parallel = !matches!(self, Scheduler::Sync);
                crate::tree::run(root, self, parallel).map(|v| vec![v])
            }
            None => {
                let plan = Plan::build(roots, graph)?;
                self.run(&plan, &callbacks, pool.as_ref())
            }
        };
        match &pool {
            None => work(),
            Some(pool) => {
                pool.remember();
                pool.install(work)
            }
        }
    }

    /// The rayon pool this scheduler's tasks (or, on processes, its
    /// driving threads) run on; `None` on `Sync`.
    fn rayon_pool(&self) -> Result<Option<RayonPool>> {
        Ok(Some(match self {
            Scheduler::Sync => return Ok(None),
            Scheduler::Threads(t) => match (&t.pool, t.workers) {
                (Some(pool), _) => RayonPool::Own(pool.clone()),
                (None, 0) => RayonPool::Global,
                (None, n) => RayonPool::Own(sized_pool(n)?),
            },
            // The parent drives on as many threads as there are workers.
            Scheduler::Processes(p) => RayonPool::Own(sized_pool(p.workers())?),
        }))
    }

    /// Runs a plan on `pool` (`None`: this thread), with `callbacks`, and
    /// returns the values of its outputs.
    fn run(
        &self,
        plan: &Plan<'_>,
        callbacks: &[Arc<dyn Callback>],
        pool: Option<&RayonPool>,
    ) -> Result<Vec<Value>> {
        if callbacks.is_empty() {
            return self.execute(plan, &[], pool);
        }
        // `finish` runs however the computation ends, even on a panic.
        struct Finish<'c>(&'c [Arc<dyn Callback>], bool);
        impl Drop for Finish<'_> {
            fn drop(&mut self) {
                if !self.1 {
                    let _ = callbacks::each(self.0, "finish", |c| c.finish(false));
                }
            }
        }
        let mut guard = Finish(callbacks, false);
        let result = callbacks::each(callbacks, "start", |c| c.start(plan.len()))
            .and_then(|()| self.execute(plan, callbacks, pool));
        guard.1 = true;
        let finished = callbacks::each(callbacks, "finish", |c| c.finish(result.is_ok()));
        let values = result?;
        finished.map(|()| values)
    }

    fn execute(
        &self,
        plan: &Plan<'_>,
        callbacks: &[Arc<dyn Callback>],
        pool: Option<&RayonPool>,
    ) -> Result<Vec<Value>> {
        let exec = Exec::new(plan, self, callbacks);
        match pool {
            None => run_sync(&exec),
            Some(RayonPool::Global) => run_threads(&exec, None),
            Some(RayonPool::Own(pool)) => run_threads(&exec, Some(pool)),
        }
        exec.finish()
    }
}

/// A scheduler's rayon pool.
pub(crate) enum RayonPool {
    /// Rayon's global pool.
    Global,
    Own(Arc<rayon::ThreadPool>),
}

impl RayonPool {
    /// Runs `f` inside the pool (at once, when already on one of its
    /// threads).
    fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        match self {
            RayonPool::Global => match rayon::current_thread_index() {
                // Already on a thread of some pool: rayon's free functions
                // then use that pool, which the tasks would run on anyway.
                Some(_) => f(),
                None => rayon::scope(|_| f()),
            },
            RayonPool::Own(pool) => pool.install(f),
        }
    }

    /// Runs `a` and `b` in parallel in the pool, and waits for both.
    pub(crate) fn join(&self, a: impl FnOnce() + Send, b: impl FnOnce() + Send) {
        self.install(|| rayon::join(a, b));
    }

    /// Makes this the pool the calling thread last computed on (see
    /// [`last_pool`]).
    fn remember(&self) {
        LAST_POOL.with(|last| {
            let mut last = last.borrow_mut();
            let same = match (&*last, self) {
                (Last::Global, RayonPool::Global) => true,
                (Last::Own(w), RayonPool::Own(p)) => std::ptr::eq(w.as_ptr(), Arc::as_ptr(p)),
                _ => false,
            };
            if !same {
                *last = match self {
                    RayonPool::Global => Last::Global,
                    RayonPool::Own(p) => Last::Own(Arc::downgrade(p)),
                };
            }
        });
    }
}

/// The pool a thread last computed on.
enum Last {
    None,
    Global,
    /// Weak: remembering a pool must not keep its threads alive.
    Own(Weak<rayon::ThreadPool>),
}

thread_local! {
    static LAST_POOL: RefCell<Last> = const { RefCell::new(Last::None) };
    /// Computations this thread ran through a plan (for tests).
    static PLANNED: Cell<usize> = const { Cell::new(0) };
}

/// How many computations this thread has run through a plan (the rest were
/// trees, which need none).
pub(crate) fn planned() -> usize {
    PLANNED.with(Cell::get)
}

/// The pool this thread last computed on, if it has more than one thread:
/// where work the caller would otherwise do alone can be shared (it is
/// likely awake, and it is the user's choice of threads).
pub(crate) fn last_pool() -> Option<RayonPool> {
    let pool = LAST_POOL
        .try_with(|last| match &*last.borrow() {
            Last::None => None,
            Last::Global => Some(RayonPool::Global),
            Last::Own(w) => w.upgrade().map(RayonPool::Own),
        })
        .ok()
        .flatten()?;
    let threads = match &pool {
        RayonPool::Global => rayon::current_num_threads(),
        RayonPool::Own(p) => p.current_num_threads(),
    };
    (threads > 1).then_some(pool)
}

/// The shared pool of `n` workers.
fn sized_pool(n: usize) -> Result<Arc<rayon::ThreadPool>> {
    static POOLS: OnceLock<Mutex<HashMap<usize, Arc<rayon::ThreadPool>>>> = OnceLock::new();
    let mut pools = POOLS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(p) = pools.get(&n) {
        return Ok(p.clone());
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .thread_name(move |i| format!("rdask-{n}-{i}"))
        .build()
        .map_err(|e| {
            Error::new(
                ErrorKind::Scheduler,
                None,
                format!("cannot start a pool of {n} threads: {e}"),
            )
        })?;
    let pool = Arc::new(pool);
    pools.insert(n, pool.clone());
    Ok(pool)
}

impl fmt::Display for Scheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scheduler::Sync => f.write_str("sync"),
            Scheduler::Threads(t) if t.pool.is_some() => {
                write!(f, "threads (own pool of {})", t.workers())
            }
            Scheduler::Threads(t) if t.workers == 0 => f.write_str("threads"),
            Scheduler::Threads(t) => write!(f, "threads:{}", t.workers),
            Scheduler::Processes(p) if p.workers == 0 => f.write_str("processes"),
            Scheduler::Processes(p) => write!(f, "processes:{}", p.workers),
        }
    }
}

impl fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scheduler({self})")
    }
}

impl Default for Scheduler {
    fn default() -> Scheduler {
        Scheduler::threads(0)
    }
}

impl FromStr for Scheduler {
    type Err = Error;

    /// `"sync"`, `"single-threaded"`, `"synchronous"`; `"threads"`,
    /// `"threading"`, `"threads:N"` (N workers). Case and surrounding
    /// spaces are ignored.
    fn from_str(s: &str) -> Result<Scheduler> {
        let name = s.trim().to_ascii_lowercase();
        let bad = |why: &str| {
            Error::new(
                ErrorKind::Scheduler,
                None,
                format!("unknown scheduler {s:?}: {why}"),
            )
        };
        match name.as_str() {
            "sync" | "single-threaded" | "synchronous" => Ok(Scheduler::Sync),
            "threads" | "threading" => Ok(Scheduler::threads(0)),
            "processes" | "multiprocessing" => Ok(Scheduler::processes(0)),
            other => {
                let count = |n: &str, what: &str| {
                    n.trim()
                        .parse::<usize>()
                        .map_err(|_| bad(&format!("expected a worker count after \"{what}:\"")))
                };
                if let Some(n) = other.strip_prefix("threads:") {
                    count(n, "threads").map(Scheduler::threads)
                } else if let Some(n) = other.strip_prefix("processes:") {
                    count(n, "processes").map(Scheduler::processes)
                } else {
                    Err(bad(
                        "expected \"sync\", \"single-threaded\", \"synchronous\", \"threads\", \
                         \"threading\", \"processes\", \"multiprocessing\", \"threads:N\" or \
                         \"processes:N\"",
                    ))
                }
            }
        }
    }
}

static GLOBAL: RwLock<Option<Scheduler>> = RwLock::new(None);

thread_local! {
    /// The scheduler set for this thread: by `with_scheduler`, or by the
    /// executor while one of its tasks runs here.
    static CURRENT: Cell<*const Scheduler> = const { Cell::new(std::ptr::null()) };
}

/// Points `CURRENT` at a scheduler for as long as the guard lives.
pub(crate) struct CurrentGuard(*const Scheduler);

impl CurrentGuard {
    pub(crate) fn set(s: &Scheduler) -> CurrentGuard {
        CurrentGuard(CURRENT.with(|c| c.replace(s)))
    }
}

impl Drop for CurrentGuard {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.0));
    }
}

/// Sets the process-wide default scheduler.
pub fn set_scheduler(s: Scheduler) {
    *GLOBAL.write().unwrap_or_else(|e| e.into_inner()) = Some(s);
}

/// Runs `f` with `s` as the default scheduler of this thread.
///
/// ```
/// use rdask::prelude::*;
/// let d = rdask::value(1_i32) + 1;
/// let x = rdask::with_scheduler(Scheduler::Sync, || d.compute())?;
/// assert_eq!(x, 2);
/// # Ok::<(), rdask::Error>(())
/// ```
pub fn with_scheduler<R>(s: Scheduler, f: impl FnOnce() -> R) -> R {
    let _guard = CurrentGuard::set(&s);
    f()
}

/// The scheduler a plain `compute()` would use here and now.
pub fn current_scheduler() -> Result<Scheduler> {
    let here = CURRENT.with(|c| c.get());
    if !here.is_null() {
        // SAFETY: `CURRENT` only ever points at a scheduler that outlives the
        // guard that set it, and the guard restores the old value on drop.
        return Ok(unsafe { (*here).clone() });
    }
    if let Some(s) = GLOBAL.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
        return Ok(s.clone());
    }
    static ENV: OnceLock<std::result::Result<Option<Scheduler>, String>> = OnceLock::new();
    let env = ENV.get_or_init(|| match std::env::var("RDASK_SCHEDULER") {
        Ok(v) if !v.trim().is_empty() => v
            .parse::<Scheduler>()
            .map(Some)
            .map_err(|e| format!("RDASK_SCHEDULER: {e}")),
        _ => Ok(None),
    });
    match env {
        Ok(Some(s)) => Ok(s.clone()),
        Ok(None) => Ok(Scheduler::default()),
        Err(msg) => Err(Error::new(ErrorKind::Scheduler, None, msg.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse() {
        for s in ["sync", "single-threaded", "Synchronous", " sync "] {
            assert!(matches!(s.parse::<Scheduler>().unwrap(), Scheduler::Sync));
        }
        for s in ["threads", "threading"] {
            assert_eq!(s.parse::<Scheduler>().unwrap().to_string(), "threads");
        }
        assert_eq!(
            "threads:3".parse::<Scheduler>().unwrap().to_string(),
            "threads:3"
        );
        let e = "bogus".parse::<Scheduler>().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Scheduler);
        assert!(e.to_string().contains("bogus"));
        assert!("threads:x".parse::<Scheduler>().is_err());
    }

    #[test]
    fn with_scheduler_nests_and_restores() {
        with_scheduler(Scheduler::Sync, || {
            assert!(matches!(current_scheduler().unwrap(), Scheduler::Sync));
            with_scheduler(Scheduler::threads(2), || {
                assert_eq!(current_scheduler().unwrap().to_string(), "threads:2");
            });
            assert!(matches!(current_scheduler().unwrap(), Scheduler::Sync));
        });
    }
}
