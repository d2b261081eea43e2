//! Rayon pools: the shared pool of each size, and the pool a thread last
//! computed on.
//!
//! Below the engine (it imports only `error`): schedulers run their tasks on
//! these pools, and dropping a big graph forks onto the pool its
//! computation used (`crate::node`), without either knowing the other.

use crate::error::{Error, ErrorKind, Result};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};

/// A scheduler's rayon pool.
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

    /// Runs `a` and `b` in parallel in the pool, and waits for both.
    pub(crate) fn join(&self, a: impl FnOnce() + Send, b: impl FnOnce() + Send) {
        self.install(|| rayon::join(a, b));
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
pub(crate) fn sized_pool(n: usize) -> Result<Arc<rayon::ThreadPool>> {
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
