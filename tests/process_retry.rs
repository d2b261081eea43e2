//! The processes scheduler's retry policy, as the README states it: a task
//! whose worker dies is retried once, on a fresh worker, then reported as
//! `WorkerLost`. Each attempt appends a line to a file, so the tests count
//! attempts exactly.

#[path = "common/hang_guard.rs"]
mod hang_guard;

use hang_guard::compute_or_hang;
use rdask::prelude::*;
use rdask::ErrorKind;
use std::io::Write as _;
use std::path::Path;

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

/// Ready tasks go to a worker in batches (one write, one wait): the value
/// of `i`, with the pid of the worker that ran it; aborts its worker the
/// first time `i == bad` runs, or every time when `always`.
#[delayed]
fn member(dir: String, i: u32, bad: u32, always: bool) -> (u32, u32) {
    if i == bad {
        record_attempt(&dir);
        let marker = Path::new(&dir).join("aborted");
        if always || !marker.exists() {
            std::fs::write(&marker, b"").unwrap();
            std::process::abort();
        }
    }
    (i, std::process::id())
}

#[delayed]
fn members(xs: Vec<(u32, u32)>) -> Vec<(u32, u32)> {
    xs
}

/// 64 ready tasks, so that each of the 2 driver threads sends some in one
/// batch; task `bad` kills its worker mid-batch.
fn batch(dir: &Path, bad: u32, always: bool) -> (Vec<rdask::Key>, Delayed<Vec<(u32, u32)>>) {
    let dir = dir.to_string_lossy().into_owned();
    let tasks: Vec<_> = (0..64)
        .map(|i| member(dir.clone(), i, bad, always))
        .collect();
    let keys = tasks.iter().map(|d| d.key().clone()).collect();
    (keys, members(tasks))
}

#[test]
fn a_worker_that_dies_mid_batch_loses_nothing_and_its_task_is_retried_once() {
    let dir = tempfile::tempdir().unwrap();
    let before = rdask::process::task_counts().0;
    let (_, all) = batch(dir.path(), 37, false);
    let got = compute_or_hang(all).unwrap();
    // Every value, in order, each from a worker.
    let values: Vec<u32> = got.iter().map(|&(i, _)| i).collect();
    assert_eq!(values, (0..64).collect::<Vec<_>>());
    assert!(got.iter().all(|&(_, pid)| pid != std::process::id()));
    // The task that killed its worker ran twice, on two workers.
    let tried = attempts(dir.path());
    assert_eq!(tried.len(), 2, "attempts by {tried:?}");
    assert_ne!(tried[0], tried[1]);
    assert!(rdask::process::task_counts().0 - before >= 65);

    // Every time: lost after its two attempts, named.
    let dir = tempfile::tempdir().unwrap();
    let (keys, all) = batch(dir.path(), 5, true);
    let e = compute_or_hang(all).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::WorkerLost, "{e}");
    assert_eq!(e.key(), Some(&keys[5]), "{e}");
    assert_eq!(attempts(dir.path()).len(), 2);
}

#[delayed]
fn odd_fails(i: u32) -> Result<u32, String> {
    match i % 2 {
        1 => Err(format!("{i} is odd")),
        _ => Ok(i),
    }
}

#[delayed]
fn odd_panics(i: u32) -> u32 {
    assert_eq!(i % 2, 0, "{i} is odd");
    i
}

#[test]
fn errors_and_panics_in_a_batch_are_their_own_tasks() {
    let s = Scheduler::processes(2);
    let tasks: Vec<_> = (0..64)
        .map(|i| odd_fails(i * 2))
        .chain([odd_fails(7)])
        .collect();
    let key = tasks[64].key().clone();
    let e = rdask::compute_with(&tasks, &s).unwrap_err();
    assert_eq!((e.kind(), e.key()), (ErrorKind::Task, Some(&key)), "{e}");
    assert!(e.to_string().contains("7 is odd"), "{e}");
    let tasks: Vec<_> = (0..64)
        .map(|i| odd_panics(i * 2))
        .chain([odd_panics(9)])
        .collect();
    let key = tasks[64].key().clone();
    let e = rdask::compute_with(&tasks, &s).unwrap_err();
    assert_eq!((e.kind(), e.key()), (ErrorKind::Panic, Some(&key)), "{e}");
    // And a batch of good ones after them is right.
    let tasks: Vec<_> = (0..64).map(|i| odd_fails(i * 2)).collect();
    let got = rdask::compute_with(&tasks, &s).unwrap();
    assert_eq!(got, (0..64).map(|i| i * 2).collect::<Vec<_>>());
}
