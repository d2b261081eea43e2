//! The Dask scheduler when things break: a dask worker killed mid-run, a
//! scheduler that dies, two programs on one cluster. Each test starts a
//! cluster of its own (`dask scheduler` + `dask worker` on 127.0.0.1), so
//! that what it breaks is its own.

#[path = "common/dask.rs"]
mod fixture;

use fixture::{python, OwnCluster};
use rdask::prelude::*;
use std::time::{Duration, Instant};

#[delayed]
fn slow(x: u64, ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    x + 1
}

#[delayed]
fn total(xs: Vec<u64>) -> u64 {
    xs.iter().sum()
}

#[delayed]
fn echo(x: u32) -> u32 {
    std::thread::sleep(Duration::from_millis(800));
    x
}

fn kill(pid: u32) {
    // SAFETY: a plain kill(2) of a process this test found.
    unsafe { libc_kill(pid as i32, 9) };
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

#[test]
fn a_dask_worker_killed_mid_run_loses_nothing() {
    let c = OwnCluster::start(2);
    let s = c.scheduler(2);
    let Scheduler::Dask(d) = &s else {
        unreachable!()
    };
    let victim = d.worker_pids().unwrap()[0].0;
    let xs: Vec<_> = (0..16).map(|i| slow(i, 150)).collect();
    let t = total(xs);
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        kill(victim);
    });
    let got = t.compute_with(&s).unwrap();
    killer.join().unwrap();
    assert_eq!(got, (1..=16).sum::<u64>());
    // The victim is gone; the computation did not need it.
    let pids: Vec<u32> = d.worker_pids().unwrap().iter().map(|w| w.0).collect();
    assert!(!pids.contains(&victim), "{pids:?}");
}

#[test]
fn a_scheduler_that_dies_fails_the_computation_within_seconds() {
    let mut c = OwnCluster::start(1);
    let s = c.scheduler(1);
    let work = slow(1, 20_000);
    let t = Instant::now();
    let run = std::thread::spawn(move || work.compute_with(&s));
    std::thread::sleep(Duration::from_millis(1500));
    c.scheduler.kill().unwrap();
    let e = run.join().unwrap().unwrap_err();
    assert_eq!(e.kind(), rdask::ErrorKind::Scheduler, "{e}");
    assert!(
        t.elapsed() < Duration::from_secs(15),
        "took {:?} to notice",
        t.elapsed()
    );
}

/// Two programs on one cluster: each computes `echo(its pid)` as its first
/// lazy call, so both have the key `echo-1` inside. On the cluster they
/// must stay two tasks, each with its own result.
#[test]
fn two_programs_never_share_a_task_by_accident() {
    let c = OwnCluster::start(2);
    drop(c.scheduler(2));
    let me = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..2)
        .map(|_| {
            std::process::Command::new(&me)
                .args(["--exact", "second_program", "--ignored", "--nocapture"])
                .env("RDASK_TEST_SCHEDULER_FILE", c.file())
                .env("RDASK_DASK_PYTHON", python())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect::<Vec<_>>();
    for child in children {
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{text}");
        assert!(text.contains("1 passed"), "{text}");
    }
}

#[test]
#[ignore = "run by two_programs_never_share_a_task_by_accident"]
fn second_program() {
    let Some(file) = std::env::var_os("RDASK_TEST_SCHEDULER_FILE") else {
        panic!("run by two_programs_never_share_a_task_by_accident");
    };
    let s = Scheduler::dask_scheduler_file(file);
    let me = std::process::id();
    let mine = echo(me);
    assert!(mine.key().to_string().starts_with("echo-"));
    assert_eq!(mine.compute_with(&s).unwrap(), me);
}

#[test]
fn a_client_of_another_dask_version_is_refused_saying_so() {
    let c = OwnCluster::start(1);
    drop(c.scheduler(1));
    let Scheduler::Dask(d) = Scheduler::dask_scheduler_file(c.file()) else {
        unreachable!()
    };
    let s = Scheduler::Dask(d.python(fixture::other_python()));
    let e = slow(1, 0).compute_with(&s).unwrap_err();
    assert_eq!(e.kind(), rdask::ErrorKind::Scheduler, "{e}");
    let m = e.to_string();
    assert!(m.contains("version mismatch"), "{m}");
    assert!(m.contains("2026.7.1") && m.contains("2026.8.0"), "{m}");
}

/// Notes in `dir` that it started, then takes 4 s.
#[delayed]
fn slow_echo(dir: String, x: u32) -> u32 {
    let marker = std::path::Path::new(&dir).join(format!("started-{}", std::process::id()));
    std::fs::write(marker, b"").unwrap();
    std::thread::sleep(Duration::from_secs(4));
    x
}

/// Another client of the same program joining replaces the workers' rdask
/// plugin, which closes the old helpers (killing a busy one after 2 s): a
/// task running in one then runs again in the new helpers, and its
/// computation finishes (it used to wait forever for a helper).
#[test]
fn a_task_survives_another_client_replacing_its_helpers() {
    // This process joins only once the child's task runs.
    let c = OwnCluster::start(1);
    let dir = tempfile::tempdir().unwrap();
    let me = std::env::current_exe().unwrap();
    let mut child = std::process::Command::new(&me)
        .args(["--exact", "slow_program", "--ignored", "--nocapture"])
        .env("RDASK_TEST_SCHEDULER_FILE", c.file())
        .env("RDASK_TEST_DIR", dir.path())
        .env("RDASK_DASK_PYTHON", python())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Once its task runs, join as a second client and compute something.
    let t = Instant::now();
    while std::fs::read_dir(dir.path()).unwrap().next().is_none() {
        assert!(
            t.elapsed() < Duration::from_secs(90),
            "the child's task never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // (On one worker thread: this waits for the child's task to give it
    // back, which it did not while waiting forever for a helper.)
    let s = c.scheduler(1);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(echo(7).compute_with(&s));
    });
    let mine = rx.recv_timeout(Duration::from_secs(90));
    if mine.is_err() {
        let _ = child.kill();
    }
    let mine = mine.expect("the worker's thread never came back from the child's task");
    assert_eq!(mine.unwrap(), 7);
    let t = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            panic!("the child's computation hung after its helpers were replaced");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("1 passed"), "{text}");
    // It ran in the old helpers and again in the new ones.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
}

#[test]
#[ignore = "run by a_task_survives_another_client_replacing_its_helpers"]
fn slow_program() {
    let Some(file) = std::env::var_os("RDASK_TEST_SCHEDULER_FILE") else {
        panic!("run by a_task_survives_another_client_replacing_its_helpers");
    };
    let dir = std::env::var("RDASK_TEST_DIR").unwrap();
    let s = Scheduler::dask_scheduler_file(file);
    assert_eq!(slow_echo(dir, 42).compute_with(&s).unwrap(), 42);
}
