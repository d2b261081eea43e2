//! The Dask scheduler against a real cluster: `RDASK_DASK_SCHEDULER_FILE`'s
//! (CI starts `dask scheduler` + 2 `dask worker` on 127.0.0.1), else a
//! `LocalCluster` of 2 workers that the first test starts (see
//! `common/dask.rs` for the Python it needs).

#[path = "common/dask.rs"]
mod fixture;
#[path = "common/shapes.rs"]
#[allow(dead_code)]
mod shapes;

use fixture::{cluster, python};
use rdask::prelude::*;
use shapes::{inc, total};

#[test]
fn flat_chain_and_tree_results() {
    let s = cluster();
    let xs: Vec<_> = (0..20).map(inc).collect();
    assert_eq!(
        rdask::compute_with(&xs, &s).unwrap(),
        (1..=20).collect::<Vec<u64>>()
    );
    let t = total(xs);
    assert_eq!(t.compute_with(&s).unwrap(), (1..=20).sum::<u64>());
    let mut c = inc(0);
    for _ in 0..99 {
        c = inc(c);
    }
    assert_eq!(c.compute_with(&s).unwrap(), 100);
}

#[delayed]
fn pid(_x: u64) -> u32 {
    std::process::id()
}

#[test]
fn tasks_run_in_helpers_on_the_dask_workers() {
    let s = cluster();
    let Scheduler::Dask(d) = &s else {
        unreachable!()
    };
    let workers = d.worker_pids().unwrap();
    assert_eq!(workers.len(), 2, "{workers:?}");
    let mut helpers: Vec<u32> = workers.iter().flat_map(|(_, h)| h.clone()).collect();
    let pids: Vec<_> = (0..40).map(pid).collect();
    let ran = rdask::compute_with(&pids, &s).unwrap();
    // Tests running beside this one kill helpers on purpose (timeouts,
    // aborts): their replacements count too.
    let after = d.worker_pids().unwrap();
    helpers.extend(after.iter().flat_map(|(_, h)| h.clone()));
    let dask_workers: Vec<u32> = workers.iter().chain(&after).map(|w| w.0).collect();
    // Not here, not in a dask worker's own process: in helpers (all of them
    // listed, but for one started and killed by another test meanwhile).
    assert!(!ran.contains(&std::process::id()));
    assert!(ran.iter().all(|p| !dask_workers.contains(p)), "{ran:?}");
    let listed = ran.iter().filter(|p| helpers.contains(p)).count();
    assert!(listed >= ran.len() - 2, "{ran:?} not in {helpers:?}");
}

#[derive(Debug)]
struct Refused(u64);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "refused {}", self.0)
    }
}

impl std::error::Error for Refused {}

#[delayed]
fn checked(x: u64) -> Result<u64, Refused> {
    if x == 3 {
        Err(Refused(x))
    } else {
        Ok(x)
    }
}

#[delayed]
fn boom(x: u64) -> u64 {
    assert!(x != 2, "boom at {x}");
    x
}

#[delayed]
fn crash(_x: u64) -> u64 {
    std::process::abort()
}

#[test]
fn a_failing_task_names_its_key_and_nothing_downstream_is_returned() {
    let s = cluster();
    let bad = checked(3);
    let key = bad.key().clone();
    let down = inc(inc(bad));
    let e = down.compute_with(&s).unwrap_err();
    assert_eq!(e.kind(), rdask::ErrorKind::Task, "{e}");
    assert_eq!(e.key(), Some(&key), "{e}");
    assert!(e.to_string().contains("refused 3"), "{e}");
    // The scheduler is still usable.
    assert_eq!(inc(checked(4)).compute_with(&s).unwrap(), 5);
}

#[test]
fn a_panic_is_a_panic_error_with_its_message() {
    let s = cluster();
    let p = boom(2);
    let key = p.key().clone();
    let e = total(vec![inc(1), p]).compute_with(&s).unwrap_err();
    assert_eq!(e.kind(), rdask::ErrorKind::Panic, "{e}");
    assert_eq!(e.key(), Some(&key));
    assert!(e.to_string().contains("boom at 2"), "{e}");
}

#[test]
fn a_helper_that_aborts_is_retried_once_then_lost() {
    let s = cluster();
    let c = crash(1);
    let key = c.key().clone();
    let e = inc(c).compute_with(&s).unwrap_err();
    assert_eq!(e.kind(), rdask::ErrorKind::WorkerLost, "{e}");
    assert_eq!(e.key(), Some(&key));
    assert!(e.to_string().contains("died twice"), "{e}");
    // The dask workers live on, with fresh helpers.
    assert_eq!(inc(41).compute_with(&s).unwrap(), 42);
}

#[test]
fn local_tasks_between_cluster_tasks() {
    let s = cluster();
    // `map` closures run here; `inc` and `total` on the cluster.
    let xs: Vec<_> = (0..10).map(inc).collect();
    let doubled: Vec<_> = xs.iter().map(|x| inc(x.map(|v| v * 2))).collect();
    let t = total(doubled);
    let want: u64 = (1..=10).map(|v| v * 2 + 1).sum();
    assert_eq!(t.compute_with(&s).unwrap(), want);
    // and a local task at the end
    assert_eq!(t.map(|v| v + 1).compute_with(&s).unwrap(), want + 1);
}

#[test]
fn persisted_values_feed_later_computations() {
    let s = cluster();
    let xs: Vec<_> = (0..5).map(inc).collect();
    let kept = rdask::with_scheduler(s.clone(), || {
        xs.iter()
            .map(|x| x.persist())
            .collect::<rdask::Result<Vec<_>>>()
    })
    .unwrap();
    assert_eq!(total(kept.clone()).compute_with(&s).unwrap(), 15);
    assert_eq!(total(kept).compute_with(&s).unwrap(), 15);
}

#[test]
fn a_long_chain_is_one_dask_task() {
    let s = cluster();
    let mut c = inc(0);
    for _ in 1..1000 {
        c = inc(c);
    }
    // Other tests run at the same time: count only what this one adds, and
    // compare with a computation of as many unfused tasks.
    let (calls, tasks) = rdask::dask::task_counts();
    assert_eq!(c.compute_with(&s).unwrap(), 1000);
    let (calls2, tasks2) = rdask::dask::task_counts();
    assert!(calls2 - calls >= 1000);
    assert!(
        tasks2 - tasks < (calls2 - calls) / 2,
        "1000 chained calls went out as {} dask tasks",
        tasks2 - tasks
    );
}

#[test]
fn scheduler_strings_name_the_cluster() {
    for s in [
        "dask://10.0.0.5:8786",
        "dask-local:2",
        "dask-file:/shared/sched.json",
    ] {
        let parsed: Scheduler = s.parse().unwrap();
        assert_eq!(parsed.to_string(), s);
        assert!(matches!(parsed, Scheduler::Dask(_)));
    }
    assert_eq!(Scheduler::dask("tcp://h:1").to_string(), "dask://h:1");
    assert_eq!(Scheduler::dask("h:1").to_string(), "dask://h:1");
    for bad in ["dask://", "dask-local:0", "dask-local:x", "dask-file:"] {
        let e = bad.parse::<Scheduler>().unwrap_err();
        assert_eq!(e.kind(), rdask::ErrorKind::Scheduler);
        assert!(e.to_string().contains("dask"), "{e}");
    }
}

#[test]
fn an_unreachable_scheduler_is_a_scheduler_error_within_seconds() {
    let Scheduler::Dask(d) = Scheduler::dask("tcp://127.0.0.1:9") else {
        unreachable!()
    };
    let s = Scheduler::Dask(
        d.python(python())
            .connect_timeout(std::time::Duration::from_secs(2)),
    );
    let t = std::time::Instant::now();
    let e = inc(1).compute_with(&s).unwrap_err();
    assert_eq!(e.kind(), rdask::ErrorKind::Scheduler, "{e}");
    assert!(e.to_string().contains("127.0.0.1:9"), "{e}");
    assert!(t.elapsed().as_secs() < 30, "took {:?}", t.elapsed());
}

#[test]
fn a_python_without_distributed_says_what_to_install() {
    for (python, says) in [
        ("/nonexistent/python3", "RDASK_DASK_PYTHON"),
        ("python3", "distributed"),
    ] {
        let Scheduler::Dask(d) = Scheduler::dask_local(1) else {
            unreachable!()
        };
        let s = Scheduler::Dask(d.python(python));
        let e = inc(1).compute_with(&s).unwrap_err();
        assert_eq!(e.kind(), rdask::ErrorKind::Scheduler, "{e}");
        assert!(e.to_string().contains(says), "{e}");
    }
}

#[delayed]
fn nap(x: u64) -> u64 {
    std::thread::sleep(std::time::Duration::from_millis(300));
    x
}

#[test]
fn callbacks_hear_of_each_cluster_task_when_it_has_run() {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};
    #[derive(Default)]
    struct Times(Mutex<HashMap<String, (std::time::Duration, bool)>>);
    impl rdask::Callback for Times {
        fn posttask(&self, key: &rdask::Key, _w: usize, took: std::time::Duration, ok: bool) {
            self.0.lock().unwrap().insert(key.to_string(), (took, ok));
        }
    }
    let s = cluster();
    let slow = nap(1);
    let mut c = inc(slow.clone());
    for _ in 0..9 {
        c = inc(c); // a chain: fused into one dask task
    }
    let local = c.map(|v| v * 2);
    let times = Arc::new(Times::default());
    let out = rdask::Compute::new(std::slice::from_ref(&local))
        .scheduler(s)
        .callback(times.clone())
        .run()
        .unwrap();
    assert_eq!(out, vec![22]);
    let seen = times.0.lock().unwrap();
    // Every task: the 11 on the cluster (fused or not) and the local one.
    assert_eq!(seen.len(), 12, "{seen:?}");
    assert!(seen.values().all(|(_, ok)| *ok));
    // Heard of when dask ran it, not when it was sent.
    let (took, _) = seen[&slow.key().to_string()];
    assert!(took >= std::time::Duration::from_millis(300), "{took:?}");
}

#[test]
fn a_cancel_returns_at_once_and_the_cluster_stays_usable() {
    let s = cluster();
    let xs: Vec<_> = (0..4).map(|i| inc(nap_for(i, 3_000))).collect();
    let token = rdask::CancelToken::new();
    let t = token.clone();
    let canceller = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(500));
        t.cancel();
        std::time::Instant::now()
    });
    let e = rdask::Compute::new(&xs)
        .scheduler(s.clone())
        .cancel_token(token)
        .run()
        .unwrap_err();
    let late = canceller.join().unwrap().elapsed();
    assert_eq!(e.kind(), rdask::ErrorKind::Cancelled, "{e}");
    assert!(late < std::time::Duration::from_millis(1500), "{late:?}");
    assert_eq!(inc(1).compute_with(&s).unwrap(), 2);
}

#[delayed]
fn nap_for(x: u64, ms: u64) -> u64 {
    std::thread::sleep(std::time::Duration::from_millis(ms));
    x
}

#[test]
fn run_each_on_the_cluster_fails_only_what_depends_on_a_failure() {
    let s = cluster();
    let xs: Vec<_> = (2..=5).map(checked).collect(); // 3 fails
    let outs: Vec<_> = xs.iter().map(inc).collect();
    let each = rdask::Compute::new(&outs).scheduler(s).run_each();
    let got: Vec<Option<u64>> = each.iter().map(|r| r.as_ref().ok().copied()).collect();
    assert_eq!(got, [Some(3), None, Some(5), Some(6)]);
    let e = each[1].as_ref().unwrap_err();
    assert_eq!(e.kind(), rdask::ErrorKind::Task, "{e}");
    assert_eq!(e.key(), Some(xs[1].key()));
}

/// Fails until called `ok_at` times on this dask worker's helper; the
/// count lives in a file named by the caller.
#[delayed(retries = 2)]
fn flaky_remote(counter: String, ok_at: u32) -> Result<u32, String> {
    let n = std::fs::read_to_string(&counter)
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .unwrap_or(0)
        + 1;
    std::fs::write(&counter, n.to_string()).map_err(|e| e.to_string())?;
    if n < ok_at {
        Err(format!("attempt {n} failed"))
    } else {
        Ok(n)
    }
}

#[test]
fn retries_on_the_cluster() {
    let s = cluster();
    let dir = tempfile::tempdir().unwrap();
    let ok = dir.path().join("ok").display().to_string();
    assert_eq!(flaky_remote(ok, 3).compute_with(&s).unwrap(), 3);
    let bad = dir.path().join("bad").display().to_string();
    let e = flaky_remote(bad, 9).compute_with(&s).unwrap_err();
    assert_eq!(e.kind(), rdask::ErrorKind::Task, "{e}");
    assert!(e.to_string().contains("after 3 attempts"), "{e}");
}

#[delayed(timeout_ms = 300)]
fn sleepy_remote(ms: u64) -> u64 {
    std::thread::sleep(std::time::Duration::from_millis(ms));
    ms
}

#[delayed(resources(gpu = 1), priority = 5)]
fn on_gpu_remote(x: u64) -> u64 {
    x
}

#[delayed(priority = 5)]
fn urgent_remote(x: u64) -> u64 {
    x + 1
}

#[test]
fn timeouts_priorities_and_resources_on_the_cluster() {
    let s = cluster();
    let d = sleepy_remote(5_000);
    let e = d.compute_with(&s).unwrap_err();
    assert_eq!(e.kind(), rdask::ErrorKind::Timeout, "{e}");
    assert_eq!(e.key(), Some(d.key()));
    assert_eq!(sleepy_remote(1).compute_with(&s).unwrap(), 1);
    // Priorities go to dask with the tasks.
    let xs: Vec<_> = (0..5).map(|i| urgent_remote(inc(i))).collect();
    assert_eq!(rdask::compute_with(&xs, &s).unwrap(), vec![2, 3, 4, 5, 6]);
    // No dask worker has a gpu: an error at once, not a wait forever.
    let g = on_gpu_remote(1);
    let t = std::time::Instant::now();
    let e = g.compute_with(&s).unwrap_err();
    assert_eq!(e.kind(), rdask::ErrorKind::Scheduler, "{e}");
    assert!(e.to_string().contains("`gpu`"), "{e}");
    assert_eq!(e.key(), Some(g.key()));
    assert!(t.elapsed() < std::time::Duration::from_secs(10));
}
