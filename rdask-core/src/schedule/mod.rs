//! Schedulers: where the tasks of a computation run, and how the default is
//! chosen.
//!
//! Each scheduler's loop lives in its own module and drives the one
//! executor (`crate::exec`) through its few operations: [`sync`] runs the
//! ready tasks depth-first on the caller's thread, [`threads`] on a rayon
//! pool, [`processes`] on a pool of threads whose remote tasks go to worker
//! processes (through the executor's `Remote` hook). [`compute`] plans a
//! computation and hands it to the right loop; [`context`] keeps the
//! default scheduler. Adding a scheduler means adding a module here.
//!
//! The default scheduler, most specific first: the one running the current
//! task (so a nested `compute` joins it), a [`with_scheduler`] scope on this
//! thread, [`set_scheduler`], the `RDASK_SCHEDULER` environment variable, and
//! finally `Scheduler::threads(0)`.

mod compute;
mod context;
pub mod dask;
pub mod processes;
mod queue;
mod sync;
mod threads;

pub(crate) use compute::planned;
pub use context::{current_scheduler, set_scheduler, with_scheduler};

use crate::error::{Error, ErrorKind, Result};
use dask::Dask;
use processes::Processes;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// Where a computation's tasks run.
///
/// | scheduler | runs tasks on | for |
/// |---|---|---|
/// | `Scheduler::Sync` | the caller's thread, one at a time | debugging, profiling, determinism |
/// | `Scheduler::threads(n)` | a rayon pool of `n` workers (`0`: all cores) | the default |
/// | `Scheduler::pool(pool)` | the caller's own rayon pool | sharing a pool with other rayon work |
/// | `Scheduler::processes(n)` | `n` worker processes (`0`: one per core) | isolating tasks that may crash or abort |
/// | `Scheduler::dask(addr)` | a Dask cluster's workers ([`dask`]) | more than one machine |
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
    Processes(Processes),
    /// A Dask cluster, for tasks whose types are serde.
    Dask(Dask),
}

/// The thread pool of [`Scheduler::Threads`].
#[derive(Clone)]
pub struct Threads {
    workers: usize,
    pool: Option<Arc<rayon::ThreadPool>>,
    resources: Resources,
}

/// A scheduler's resources (`with_resources`), by name.
pub(crate) type Resources = Option<Arc<[(String, f64)]>>;

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
            resources: None,
        })
    }

    /// `n` worker processes (`0`: one per core), started on first use and
    /// kept warm across computations. See [`crate::process`].
    pub fn processes(n: usize) -> Scheduler {
        Scheduler::Processes(Processes {
            workers: n,
            program: None,
            start_timeout: std::time::Duration::from_secs(20),
            resources: None,
        })
    }

    /// A running Dask cluster, by its scheduler's address
    /// (`"tcp://10.0.0.5:8786"`; a bare `host:port` is taken as tcp). See
    /// [`dask`].
    pub fn dask(address: impl Into<String>) -> Scheduler {
        let a = address.into();
        let a = if a.contains("://") {
            a
        } else {
            format!("tcp://{a}")
        };
        Scheduler::Dask(Dask::new(dask::Target::Address(a)))
    }

    /// A running Dask cluster, by the scheduler file its scheduler wrote
    /// (`dask scheduler --scheduler-file`, dask-jobqueue, HPC).
    pub fn dask_scheduler_file(path: impl Into<std::path::PathBuf>) -> Scheduler {
        Scheduler::Dask(Dask::new(dask::Target::File(path.into())))
    }

    /// A Dask `LocalCluster` of `n` single-threaded worker processes on
    /// 127.0.0.1, started for this program on first use (at least 1).
    pub fn dask_local(n: usize) -> Scheduler {
        Scheduler::Dask(Dask::new(dask::Target::Local(n.max(1))))
    }

    /// Runs on the caller's own rayon pool (dask's `pool=`).
    pub fn pool(pool: Arc<rayon::ThreadPool>) -> Scheduler {
        Scheduler::Threads(Threads {
            workers: pool.current_num_threads(),
            pool: Some(pool),
            resources: None,
        })
    }

    /// This scheduler with `resources` (name, amount): a task that needs
    /// some (`#[delayed(resources(gpu = 1))]`) runs only while they are
    /// free, and one that needs more than there are in all is an
    /// `ErrorKind::Scheduler` error at once. Without this, a threads or
    /// processes scheduler has none. (`Sync` runs one task at a time and
    /// takes any; on a Dask cluster, dask's own worker resources apply.)
    ///
    /// ```
    /// use rdask::prelude::*;
    ///
    /// #[delayed(resources(gpu = 1))]
    /// fn train(x: u64) -> u64 {
    ///     x * 2 // at most 2 of these at once
    /// }
    ///
    /// let s = Scheduler::threads(4).with_resources(&[("gpu", 2.0)]);
    /// let models: Vec<_> = (0..8).map(train).collect();
    /// assert_eq!(rdask::compute_with(&models, &s)?, (0..8).map(|x| x * 2).collect::<Vec<_>>());
    /// # Ok::<(), rdask::Error>(())
    /// ```
    pub fn with_resources(self, resources: &[(&str, f64)]) -> Scheduler {
        let list: Arc<[(String, f64)]> =
            resources.iter().map(|(n, a)| (n.to_string(), *a)).collect();
        match self {
            Scheduler::Threads(mut t) => {
                t.resources = Some(list);
                Scheduler::Threads(t)
            }
            Scheduler::Processes(mut p) => {
                p.resources = Some(list);
                Scheduler::Processes(p)
            }
            other => other,
        }
    }

    /// The resources tasks may take (`None`: any, as on `Sync`).
    pub(crate) fn resources(&self) -> Option<&[(String, f64)]> {
        match self {
            Scheduler::Threads(t) => Some(t.resources.as_deref().unwrap_or(&[])),
            Scheduler::Processes(p) => Some(p.resources.as_deref().unwrap_or(&[])),
            Scheduler::Sync | Scheduler::Dask(_) => None,
        }
    }
}

/// The name [`FromStr`] reads back (a caller's own pool reads back as a
/// pool of the same size), padded as the formatter asks (`{s:<12}`). `{:#}`
/// says when the pool is the caller's own.
impl fmt::Display for Scheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Scheduler::Sync => "sync".to_string(),
            Scheduler::Threads(t) if t.pool.is_some() && f.alternate() => {
                format!("threads:{} (own pool)", t.workers())
            }
            Scheduler::Threads(t) if t.pool.is_some() => format!("threads:{}", t.workers()),
            Scheduler::Threads(t) if t.workers == 0 => "threads".to_string(),
            Scheduler::Threads(t) => format!("threads:{}", t.workers),
            Scheduler::Processes(p) if p.workers == 0 => "processes".to_string(),
            Scheduler::Processes(p) => format!("processes:{}", p.workers),
            Scheduler::Dask(d) => d.to_string(),
        };
        f.pad(&name)
    }
}

impl fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scheduler({self:#})")
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
    /// `"threading"`, `"threads:N"` (N workers); `"processes"`,
    /// `"multiprocessing"`, `"processes:N"`; `"dask://HOST:PORT"`,
    /// `"dask-file:PATH"`, `"dask-local:N"` (a Dask cluster). Case and
    /// surrounding spaces are ignored (but for a path's case).
    fn from_str(s: &str) -> Result<Scheduler> {
        let name = s.trim().to_ascii_lowercase();
        let bad = |why: &str| {
            Error::new(
                ErrorKind::Scheduler,
                None,
                format!("unknown scheduler {s:?}: {why}"),
            )
        };
        if let Some(d) = dask::parse(s.trim()) {
            return d.map(Scheduler::Dask).map_err(|why| bad(&why));
        }
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
                         \"threading\", \"processes\", \"multiprocessing\", \"threads:N\", \
                         \"processes:N\", \"dask://HOST:PORT\", \"dask-file:PATH\" or \
                         \"dask-local:N\"",
                    ))
                }
            }
        }
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
    fn names_pad_and_parse_back() {
        assert_eq!(format!("[{:<10}]", Scheduler::threads(3)), "[threads:3 ]");
        assert_eq!(format!("[{:>6}]", Scheduler::Sync), "[  sync]");
        let own = Arc::new(
            rayon::ThreadPoolBuilder::new()
                .num_threads(2)
                .build()
                .unwrap(),
        );
        let s = Scheduler::pool(own);
        assert_eq!(format!("{s:#}"), "threads:2 (own pool)");
        let back: Scheduler = s.to_string().parse().unwrap();
        assert_eq!(back.to_string(), "threads:2");
        for s in [
            Scheduler::Sync,
            Scheduler::threads(0),
            Scheduler::processes(4),
        ] {
            assert_eq!(
                s.to_string().parse::<Scheduler>().unwrap().to_string(),
                s.to_string()
            );
        }
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
