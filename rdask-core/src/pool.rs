//! Rayon pools: the shared pool of each size, and the pool a thread last
//! computed on.
//!
//! Below the engine (it imports only `error`): schedulers run their tasks on
//! these pools, and dropping a big graph forks onto the pool its
//! computation used (`crate::node`), without either knowing the other.

use crate::error::{Error, ErrorKind, Result};
use std::cell::RefCell;
use std::sync::{Arc, Mutex, OnceLock, Weak};

/// A scheduler's rayon pool.
#[derive(Clone)]
pub(crate) enum RayonPool {
    /// Rayon's global pool.
    Global,
    Own(Arc<rayon::ThreadPool>),
}

impl RayonPool {
    /// Runs `f` inside the pool (at once, when already on one of its
    /// threads).
    pub(crate) fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
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

    /// Queues `f` on the pool and returns at once.
    pub(crate) fn spawn(&self, f: impl FnOnce() + Send + 'static) {
        match self {
            RayonPool::Global => rayon::spawn(f),
            RayonPool::Own(pool) => pool.spawn(f),
        }
    }

    /// Makes this the pool the calling thread last computed on (see
    /// [`last_pool`]).
    pub(crate) fn remember(&self) {
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
///
/// `purpose` keeps pools of one size apart when their work differs: the
/// processes scheduler's threads block on pipes for as long as a worker's
/// task runs, and a threads computation must not queue behind them. It
/// names the threads (`rdask-{purpose}{n}-{i}`).
///
/// Pools are kept for reuse, most recently used first, while they hold at
/// most [`KEPT_THREADS`] threads in all: a program that takes `n` from its
/// input does not collect a pool per value. A pool dropped from the cache
/// ends its threads once no computation holds it.
pub(crate) fn sized_pool(n: usize, purpose: Purpose) -> Result<Arc<rayon::ThreadPool>> {
    type Pools = Vec<((Purpose, usize), Arc<rayon::ThreadPool>)>;
    static POOLS: OnceLock<Mutex<Pools>> = OnceLock::new();
    let mut pools = POOLS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(i) = pools.iter().position(|(k, _)| *k == (purpose, n)) {
        let hit = pools.remove(i);
        let pool = hit.1.clone();
        pools.insert(0, hit);
        return Ok(pool);
    }
    let prefix = match purpose {
        Purpose::Tasks => "",
        Purpose::Drivers => "proc-",
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .thread_name(move |i| format!("rdask-{prefix}{n}-{i}"))
        .build()
        .map_err(|e| {
            Error::new(
                ErrorKind::Scheduler,
                None,
                format!("cannot start a pool of {n} threads: {e}"),
            )
        })?;
    let pool = Arc::new(pool);
    pools.insert(0, ((purpose, n), pool.clone()));
    // The newest pool stays whatever its size.
    let mut threads = 0;
    pools.retain(|((_, size), _)| {
        threads += size;
        threads == *size || threads <= KEPT_THREADS
    });
    Ok(pool)
}

/// The most threads the cache of [`sized_pool`] keeps (beyond the newest
/// pool's).
const KEPT_THREADS: usize = 64;

/// What a shared pool's threads do.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Purpose {
    /// Run tasks (the threads scheduler).
    Tasks,
    /// Drive a computation whose tasks run in worker processes, waiting on
    /// their pipes (the processes scheduler).
    Drivers,
}
