//! Chains on the processes scheduler: a straight chain of remote calls goes
//! to one worker in one round trip, each link's input staying in the worker
//! (`RUN_NEXT`). The values, the errors and the retry rule must be those of
//! links sent one by one. Links that run record themselves in a file, so
//! the tests see what ran in the workers.

#[path = "common/hang_guard.rs"]
mod hang_guard;

use hang_guard::compute_or_hang;
use rdask::prelude::*;
use rdask::ErrorKind;
use std::io::Write as _;
use std::path::Path;

/// Appends `what` and this worker's pid to `dir/runs`.
fn record(dir: &str, what: u64) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(Path::new(dir).join("runs"))
        .unwrap();
    writeln!(f, "{what} {}", std::process::id()).unwrap();
}

/// What ran, in order: (the value it saw, the worker's pid).
fn runs(dir: &Path) -> Vec<(u64, u32)> {
    std::fs::read_to_string(dir.join("runs"))
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let (a, b) = l.split_once(' ').unwrap();
            (a.parse().unwrap(), b.parse().unwrap())
        })
        .collect()
}

#[delayed]
fn start(x: u64) -> u64 {
    x
}

#[delayed]
fn step(x: u64) -> u64 {
    x + 1
}

/// A link whose input follows a constant.
#[delayed]
fn scale(k: u64, x: u64) -> u64 {
    k * x % 1_000_003
}

/// A link with a big constant: a page holds a few of them only.
#[delayed]
fn tagged(tag: String, x: u64) -> u64 {
    x + tag.len() as u64
}

/// A link that takes its input by reference.
#[delayed]
fn peek(x: &u64, k: u64) -> u64 {
    *x + k
}

/// Chains longer than one round trip takes (64 links, or a page of
/// requests), of links of every kind, and a closure (which runs here)
/// now and then: the value of the links in order.
#[test]
fn a_chain_of_remote_calls_gives_the_value_of_its_links_in_order() {
    let before = rdask::process::task_counts();
    let tag = "t".repeat(200);
    let (mut d, mut v) = (start(3), 3_u64);
    for i in 0..400_u64 {
        (d, v) = match i % 4 {
            _ if i % 97 == 96 => (d.map(|x| x + 5), v + 5),
            0 => (step(d), v + 1),
            1 => (scale(3, d), 3 * v % 1_000_003),
            2 if i > 200 => (tagged(tag.clone(), d), v + 200),
            _ => (peek(&d, i), v + i),
        };
    }
    assert_eq!(compute_or_hang(d).unwrap(), v);
    // The #[delayed] links ran in workers, the closures here.
    let after = rdask::process::task_counts();
    assert!(after.0 - before.0 >= 397, "{before:?} -> {after:?}");
}

/// A link that records its run, and aborts its worker the first time it
/// sees `bad` (leaving a marker in `dir`).
#[delayed]
fn link_or_abort(dir: String, x: u64, bad: u64) -> u64 {
    record(&dir, x);
    let marker = Path::new(&dir).join("aborted");
    if x == bad && !marker.exists() {
        std::fs::write(&marker, b"").unwrap();
        std::process::abort();
    }
    x + 1
}

/// A link whose worker dies midway: the links sent with it lost their
/// worker (and the replies it had not yet written); each call without a
/// reply runs once more, alone, on a fresh worker, in order, a link on the
/// value the call before it gave back (the dead worker's kept result is
/// gone), and the chain's value is right. So the link that killed its
/// worker ran twice, on two workers, and no link more than twice. One
/// fresh worker replaces the lost one (not one per call run again): the
/// pool (of 3, this test's alone) keeps its size.
#[test]
fn a_worker_that_dies_midway_along_a_chain_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_string_lossy().into_owned();
    let d = (0..40).fold(start(0), |x, _| link_or_abort(path.clone(), x, 17));
    let s = Scheduler::processes(3);
    assert_eq!(d.compute_with(&s).unwrap(), 40);
    if let Scheduler::Processes(p) = &s {
        let live = p.worker_pids();
        assert!(live.len() <= 3, "processes:3 has {} workers", live.len());
    }
    let ran = runs(dir.path());
    let at = |x: u64| {
        ran.iter()
            .filter(|r| r.0 == x)
            .map(|r| r.1)
            .collect::<Vec<_>>()
    };
    let bad = at(17);
    assert_eq!(bad.len(), 2, "{ran:?}");
    assert_ne!(bad[0], bad[1], "retried on a fresh worker");
    // The first attempt up to the crash, then the calls without a reply
    // from the first of them on, each once.
    let seen: Vec<u64> = ran.iter().map(|r| r.0).collect();
    let (first, again) = seen.split_at(18);
    assert_eq!(first, (0..18).collect::<Vec<_>>(), "{ran:?}");
    let from = 40 - again.len() as u64;
    assert!(from <= 17, "{ran:?}");
    assert_eq!(again, (from..40).collect::<Vec<_>>(), "{ran:?}");
}

/// A link that records its run and fails (`Err`) at `bad`, or panics there
/// when `panic`.
#[delayed]
fn link_fails_at(dir: String, x: u64, bad: u64, panic: bool) -> Result<u64, String> {
    record(&dir, x);
    match (x == bad, panic) {
        (true, true) => panic!("link at {x} exploded"),
        (true, false) => Err(format!("link at {x} is bad")),
        _ => Ok(x + 1),
    }
}

/// A failure or a panic midway along a chain sent as one is the error of
/// its own link, by key, and no link after it runs (the worker skips the
/// rest of the chain).
#[test]
fn a_failure_midway_along_a_chain_names_its_link_and_nothing_after_it_runs() {
    for panic in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_string_lossy().into_owned();
        let mut keys = Vec::new();
        let mut d = start(0);
        for _ in 0..40 {
            d = link_fails_at(path.clone(), d, 20, panic);
            keys.push(d.key().clone());
        }
        let e = compute_or_hang(d).unwrap_err();
        let kind = if panic {
            ErrorKind::Panic
        } else {
            ErrorKind::Task
        };
        assert_eq!((e.kind(), e.key()), (kind, Some(&keys[20])), "{e}");
        let seen: Vec<u64> = runs(dir.path()).iter().map(|r| r.0).collect();
        assert_eq!(seen, (0..=20).collect::<Vec<_>>(), "panic: {panic}");
    }
}
