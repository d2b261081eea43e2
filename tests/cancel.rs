//! Cancellation on every local scheduler: a cancel returns at once, no task
//! starts after it, running tasks can see it, and the scheduler stays
//! usable. (The cluster's is in `dask.rs`.)

use rdask::prelude::*;
use rdask::{CancelToken, Compute, ErrorKind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static STARTED: AtomicUsize = AtomicUsize::new(0);

#[delayed]
fn nap(x: u64, ms: u64) -> u64 {
    STARTED.fetch_add(1, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(ms));
    x
}

#[delayed]
fn total(xs: Vec<u64>) -> u64 {
    xs.iter().sum()
}

fn cancel_after(token: &CancelToken, ms: u64) -> std::thread::JoinHandle<Instant> {
    let t = token.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(ms));
        t.cancel();
        Instant::now()
    })
}

/// The schedulers that run this process's counter (processes' tasks run
/// in other processes, where it does not count).
fn local_schedulers() -> [Scheduler; 2] {
    [Scheduler::Sync, Scheduler::threads(2)]
}

#[test]
fn a_cancel_during_10000_tasks_returns_at_once_and_starts_nothing_more() {
    for s in local_schedulers() {
        let xs: Vec<_> = (0..10_000).map(|i| nap(i, 1)).collect();
        let t = total(xs);
        let token = CancelToken::new();
        let canceller = cancel_after(&token, 100);
        let e = Compute::new(std::slice::from_ref(&t))
            .scheduler(s.clone())
            .cancel_token(token)
            .run()
            .unwrap_err();
        let returned = Instant::now();
        let cancelled_at = canceller.join().unwrap();
        assert_eq!(e.kind(), ErrorKind::Cancelled, "{s}: {e}");
        let late = returned.saturating_duration_since(cancelled_at);
        if std::env::var_os("RDASK_SHOW_CANCEL").is_some() {
            eprintln!("{s}: returned {late:?} after the cancel");
        }
        // The target is 100 ms (BENCHMARKS.md measures it); a loaded
        // machine gets some slack here.
        assert!(
            late < Duration::from_millis(500),
            "{s}: returned {late:?} after the cancel"
        );
        // The tasks running at the cancel finish; none starts after.
        std::thread::sleep(Duration::from_millis(50));
        let after = STARTED.load(Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(
            STARTED.load(Ordering::SeqCst),
            after,
            "{s}: tasks still start"
        );
        // Still usable.
        assert_eq!(nap(5, 0).compute_with(&s).unwrap(), 5);
    }
}

#[test]
fn a_token_cancelled_before_the_run_runs_nothing() {
    let token = CancelToken::new();
    token.cancel();
    for s in [
        Scheduler::Sync,
        Scheduler::threads(2),
        Scheduler::processes(1),
    ] {
        let calls = std::sync::Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let d = rdask::value(1_u64).map(move |x| {
            c.fetch_add(1, Ordering::SeqCst);
            x
        });
        let e = Compute::new(std::slice::from_ref(&d))
            .scheduler(s.clone())
            .cancel_token(token.clone())
            .run()
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Cancelled, "{s}");
        assert_eq!(calls.load(Ordering::SeqCst), 0, "{s}");
    }
}

#[test]
fn a_running_task_sees_its_cancel() {
    for s in local_schedulers() {
        // Ends only once it sees the cancel (or after 20 s, failing).
        let waiter = rdask::value(1_u64).map(|x| {
            let t = Instant::now();
            while !rdask::cancelled() {
                assert!(
                    t.elapsed() < Duration::from_secs(20),
                    "never saw the cancel"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
            x
        });
        let token = CancelToken::new();
        let canceller = cancel_after(&token, 50);
        let e = Compute::new(std::slice::from_ref(&waiter))
            .scheduler(s.clone())
            .cancel_token(token)
            .run()
            .unwrap_err();
        canceller.join().unwrap();
        assert_eq!(e.kind(), ErrorKind::Cancelled, "{s}");
    }
    assert!(!rdask::cancelled(), "outside tasks nothing is cancelled");
}

#[test]
fn processes_kill_the_workers_of_cancelled_tasks() {
    let s = Scheduler::processes(2);
    let Scheduler::Processes(p) = &s else {
        unreachable!()
    };
    p.warm_up().unwrap();
    let before = p.worker_pids();
    let xs: Vec<_> = (0..4).map(|i| nap(i, 30_000)).collect();
    let token = CancelToken::new();
    let canceller = cancel_after(&token, 300);
    let started = Instant::now();
    let e = Compute::new(&xs)
        .scheduler(s.clone())
        .cancel_token(token)
        .run()
        .unwrap_err();
    canceller.join().unwrap();
    assert_eq!(e.kind(), ErrorKind::Cancelled, "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    // The busy workers were killed (and are replaced on demand), so the
    // 30-second tasks did not keep them; the pool still works.
    assert_eq!(nap(7, 0).compute_with(&s).unwrap(), 7);
    let after = p.worker_pids();
    assert!(
        before.iter().any(|pid| !after.contains(pid)),
        "{before:?} {after:?}"
    );
}
