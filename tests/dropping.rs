//! Dropping a big graph: every value it holds is dropped once, before the
//! drop returns, shared with the pool the dropping thread last computed on
//! when the graph splits in big halves (never waiting on that pool), and a
//! panicking `Drop` still lets the rest go.

#[path = "common/shapes.rs"]
#[allow(dead_code)]
mod shapes;

use rdask::prelude::*;
use shapes::{add, pairwise};
use std::collections::HashSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// A leaf's constant input, which records its drop: how many, on which
/// pool threads (`None`: a thread outside any pool), and whether it panics.
#[derive(Clone)]
struct Tracked {
    log: Arc<Log>,
    panics: bool,
}

#[derive(Default)]
struct Log {
    drops: AtomicUsize,
    threads: Mutex<HashSet<Option<usize>>>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.log.drops.fetch_add(1, Ordering::Relaxed);
        self.log
            .threads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(rayon::current_thread_index());
        if self.panics {
            panic!("a value that panics when dropped");
        }
    }
}

#[delayed]
fn weigh(t: Tracked) -> u64 {
    u64::from(!t.panics)
}

/// A pairwise sum over `n` leaves, each holding a `Tracked` (the one at
/// `panics_at` panics when dropped).
fn tree(n: usize, log: &Arc<Log>, panics_at: Option<usize>) -> Delayed<u64> {
    let leaves = (0..n)
        .map(|i| {
            weigh(Tracked {
                log: log.clone(),
                panics: panics_at == Some(i),
            })
        })
        .collect();
    pairwise(leaves, add)
}

#[test]
fn a_big_tree_is_dropped_once_with_the_pool_it_was_computed_on() {
    let pool = Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .expect("a pool"),
    );
    let n = 20_000;
    // The pool takes the halves it is free to take when they are handed
    // over (the dropping thread takes back the rest): over a few tries of
    // an idle pool, it takes some.
    let mut helped = false;
    for _ in 0..20 {
        let log = Arc::new(Log::default());
        let g = tree(n, &log, None);
        let sum = g.compute_with(&Scheduler::pool(pool.clone())).unwrap();
        assert_eq!(sum, n as u64);
        // Each task dropped its own copy of its input.
        assert_eq!(log.drops.load(Ordering::Relaxed), n);
        log.threads.lock().unwrap().clear();
        drop(g);
        // Every value is dropped once, and before `drop` returns.
        assert_eq!(log.drops.load(Ordering::Relaxed), 2 * n);
        let threads = log.threads.lock().unwrap().clone();
        helped |= threads.iter().any(Option::is_some);
        if helped {
            break;
        }
    }
    assert!(helped, "the pool never took part in dropping the graph");
}

/// Dropping never waits on a pool: here the pool's threads wait for a lock
/// the dropping thread holds, so a drop that waited for them would never
/// end. (A hang guard, not a timing: the drop takes milliseconds.)
#[test]
fn dropping_a_big_graph_never_waits_on_a_busy_pool() {
    let s = Scheduler::threads(2);
    let lock = Arc::new(Mutex::new(()));
    let (tx, rx) = std::sync::mpsc::channel();
    let dropper = {
        let (lock, s) = (lock.clone(), s.clone());
        std::thread::spawn(move || {
            let log = Arc::new(Log::default());
            let g = tree(20_000, &log, None);
            assert_eq!(g.compute_with(&s).unwrap(), 20_000);
            // This thread now holds a lock both pool threads wait for.
            let guard = lock.lock().unwrap();
            let started = Arc::new(AtomicUsize::new(0));
            let blocked = {
                let (lock, s, started) = (lock.clone(), s.clone(), started.clone());
                std::thread::spawn(move || {
                    let waits: Vec<_> = (0..2_u64)
                        .map(|i| {
                            let (lock, started) = (lock.clone(), started.clone());
                            rdask::value(i).map(move |x: u64| {
                                started.fetch_add(1, Ordering::SeqCst);
                                drop(lock.lock().unwrap());
                                x
                            })
                        })
                        .collect();
                    rdask::compute_with(&waits, &s)
                })
            };
            while started.load(Ordering::SeqCst) < 2 {
                std::thread::yield_now();
            }
            drop(g);
            let dropped = log.drops.load(Ordering::Relaxed);
            let _ = tx.send(dropped);
            drop(guard);
            blocked.join().unwrap().unwrap()
        })
    };
    let dropped = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the drop waited for a pool whose threads wait for the dropper");
    assert_eq!(dropped, 2 * 20_000);
    assert_eq!(dropper.join().unwrap(), vec![0, 1]);
}

#[test]
fn a_thread_that_never_computed_drops_its_graph_itself() {
    let log = Arc::new(Log::default());
    let n = 20_000;
    // A fresh thread: it has no pool to share the drop with.
    let drops = std::thread::spawn({
        let log = log.clone();
        move || {
            drop(tree(n, &log, None));
            log.threads.lock().unwrap().clone()
        }
    })
    .join()
    .expect("the dropping thread");
    assert_eq!(log.drops.load(Ordering::Relaxed), n);
    assert_eq!(drops, HashSet::from([None]));
}

#[test]
fn a_panicking_drop_reaches_the_dropper_and_the_rest_is_still_dropped() {
    let log = Arc::new(Log::default());
    let n = 20_000;
    let g = tree(n, &log, Some(n / 3));
    assert_eq!(
        g.compute_with(&Scheduler::threads(2))
            .map_err(|e| e.to_string().contains("panicked")),
        Err(true),
        "the computed leaf's copy panics when the engine drops it"
    );
    let before = log.drops.load(Ordering::Relaxed);
    let dropped = catch_unwind(AssertUnwindSafe(move || drop(g)));
    assert!(
        dropped.is_err(),
        "the panic reaches the thread dropping the graph"
    );
    assert_eq!(log.drops.load(Ordering::Relaxed) - before, n);
}
