//! The processes scheduler's retry policy, as the README states it: a task
//! whose worker dies is retried once, on a fresh worker, then reported as
//! `WorkerLost`. Each attempt appends a line to a file, so the tests count
//! attempts exactly.

use rdask::prelude::*;
use rdask::ErrorKind;
use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

/// Appends this worker's pid to `dir/attempts`.
fn record_attempt(dir: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(Path::new(dir).join("attempts"))
        .unwrap();
    writeln!(f, "{}", std::process::id()).unwrap();
}

/// The pids that attempted a task, one per attempt.
fn attempts(dir: &Path) -> Vec<u32> {
    std::fs::read_to_string(dir.join("attempts"))
        .unwrap_or_default()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect()
}

/// Aborts its worker the first time it runs (leaving a marker in `dir`),
/// then gives the pid of the worker that ran it.
#[delayed]
fn abort_first_time(dir: String) -> u32 {
    record_attempt(&dir);
    let marker = Path::new(&dir).join("aborted");
    if !marker.exists() {
        std::fs::write(&marker, b"").unwrap();
        std::process::abort();
    }
    std::process::id()
}

/// Aborts its worker every time.
#[delayed]
fn always_abort(dir: String) -> u32 {
    record_attempt(&dir);
    std::process::abort();
}

/// Computes `d` on `processes(2)` in another thread, failing the test if
/// it has not finished in 60 s (a hang guard, not a timing).
fn compute_or_hang(d: Delayed<u32>) -> rdask::Result<u32> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(d.compute_with(&Scheduler::processes(2)));
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the computation hung")
}

#[test]
fn a_task_whose_worker_dies_once_succeeds_on_the_retry() {
    let dir = tempfile::tempdir().unwrap();
    let d = abort_first_time(dir.path().to_string_lossy().into_owned());
    let pid = compute_or_hang(d).expect("the retry succeeds");
    let tried = attempts(dir.path());
    assert_eq!(tried.len(), 2, "attempts by {tried:?}");
    // The retry ran on a fresh worker, not the one that died.
    assert_ne!(tried[0], tried[1], "attempts by {tried:?}");
    assert_eq!(pid, tried[1]);
    assert_ne!(pid, std::process::id(), "ran in the parent");
}

#[test]
fn a_task_whose_worker_always_dies_is_worker_lost_after_two_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let d = always_abort(dir.path().to_string_lossy().into_owned());
    let key = d.key().clone();
    let e = compute_or_hang(d).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::WorkerLost, "{e}");
    assert_eq!(e.key(), Some(&key), "{e}");
    let tried = attempts(dir.path());
    assert_eq!(
        tried.len(),
        2,
        "retried once means two attempts; attempts by {tried:?}"
    );
    assert_ne!(tried[0], tried[1], "attempts by {tried:?}");
    // The pool still works.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("aborted"), b"").unwrap();
    let d = abort_first_time(dir.path().to_string_lossy().into_owned());
    assert_ne!(compute_or_hang(d).unwrap(), std::process::id());
}
