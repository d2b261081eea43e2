//! `#[delayed(cache)]` and `rdask::Cache`: resumable pipelines.

use rdask::prelude::*;
use rdask::{Cache, Compute};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// How many times each cached function ran in this process (the tests
/// that count take `ALONE`).
static LOADS: AtomicUsize = AtomicUsize::new(0);
static STEPS: AtomicUsize = AtomicUsize::new(0);
static ALONE: Mutex<()> = Mutex::new(());

#[delayed(cache)]
fn load(seed: u64) -> Vec<u64> {
    LOADS.fetch_add(1, Ordering::SeqCst);
    (0..100).map(|i| i * seed).collect()
}

#[delayed(cache, version = 2)]
fn step(xs: Vec<u64>, k: u64) -> u64 {
    STEPS.fetch_add(1, Ordering::SeqCst);
    xs.iter().map(|x| x % (k + 7)).sum()
}

/// Not cached: runs every time (an input of a cached task, hashed by value).
#[delayed]
fn offset(x: u64) -> u64 {
    x + 1
}

fn pipeline(seeds: &[u64]) -> Vec<Delayed<u64>> {
    seeds.iter().map(|&s| step(load(s), offset(s))).collect()
}

fn counts() -> (usize, usize) {
    (LOADS.load(Ordering::SeqCst), STEPS.load(Ordering::SeqCst))
}

#[test]
fn a_rerun_runs_no_cached_task_and_a_changed_input_only_its_dependants() {
    let _alone = ALONE.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    for s in [Scheduler::Sync, Scheduler::threads(2)] {
        let cache = Cache::open(dir.path().join(s.to_string())).unwrap();
        let outs = pipeline(&[1, 2, 3]);
        let (l0, s0) = counts();
        let first = Compute::new(&outs)
            .scheduler(s.clone())
            .cache(&cache)
            .run()
            .unwrap();
        assert_eq!(counts(), (l0 + 3, s0 + 3), "{s}");
        // Again, from new lazy calls (as a new run of the program builds).
        let again = Compute::new(&pipeline(&[1, 2, 3]))
            .scheduler(s.clone())
            .cache(&cache)
            .run()
            .unwrap();
        assert_eq!(again, first, "{s}");
        assert_eq!(counts(), (l0 + 3, s0 + 3), "{s}: a rerun ran cached tasks");
        assert_eq!(cache.stats().hits, 6, "{s}");
        // One input changes: only what depends on it runs.
        let changed = Compute::new(&pipeline(&[1, 2, 4]))
            .scheduler(s.clone())
            .cache(&cache)
            .run()
            .unwrap();
        assert_eq!(changed[..2], first[..2]);
        assert_eq!(counts(), (l0 + 4, s0 + 4), "{s}");
        // Without a cache, `cache` is just `pure`: everything runs.
        Compute::new(&pipeline(&[1]))
            .scheduler(s.clone())
            .run()
            .unwrap();
        assert_eq!(counts(), (l0 + 5, s0 + 5), "{s}");
    }
}

#[delayed(cache)]
fn fragile(x: u64, flag: String) -> Result<u64, String> {
    if std::path::Path::new(&flag).exists() {
        Ok(x * 10)
    } else {
        Err("the flag is not there yet".into())
    }
}

#[test]
fn a_failed_run_keeps_what_it_finished_and_the_next_does_only_the_rest() {
    let _alone = ALONE.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path().join("c")).unwrap();
    let flag = dir.path().join("flag").display().to_string();
    let build = || {
        let loaded = load(9);
        let ok = step(&loaded, 1);
        let bad = fragile(ok.clone(), flag.clone());
        vec![ok, bad]
    };
    let (l0, s0) = counts();
    let e = Compute::new(&build()).cache(&cache).run().unwrap_err();
    assert_eq!(e.kind(), rdask::ErrorKind::Task);
    assert_eq!(counts(), (l0 + 1, s0 + 1));
    std::fs::write(&flag, "").unwrap();
    let out = Compute::new(&build()).cache(&cache).run().unwrap();
    assert_eq!(out[1], out[0] * 10);
    assert_eq!(counts(), (l0 + 1, s0 + 1), "the finished tasks ran again");
}

#[test]
fn damaged_entries_are_recomputed_not_believed() {
    let _alone = ALONE.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    let first = Compute::new(&pipeline(&[5, 6]))
        .cache(&cache)
        .run()
        .unwrap();
    // Damage every entry: a flipped byte in one half, truncation in the other.
    let mut n = 0;
    for sub in std::fs::read_dir(dir.path()).unwrap().flatten() {
        for f in std::fs::read_dir(sub.path()).unwrap().flatten() {
            let mut bytes = std::fs::read(f.path()).unwrap();
            if n % 2 == 0 {
                let last = bytes.len() - 1;
                bytes[last] ^= 0x55;
            } else {
                bytes.truncate(bytes.len() / 2);
            }
            std::fs::write(f.path(), bytes).unwrap();
            n += 1;
        }
    }
    assert_eq!(n, 4);
    let (l0, s0) = counts();
    let again = Compute::new(&pipeline(&[5, 6]))
        .cache(&cache)
        .run()
        .unwrap();
    assert_eq!(again, first);
    assert_eq!(counts(), (l0 + 2, s0 + 2));
    // ... and rewritten: a third run hits.
    Compute::new(&pipeline(&[5, 6]))
        .cache(&cache)
        .run()
        .unwrap();
    assert_eq!(counts(), (l0 + 2, s0 + 2));
}

#[test]
fn processes_store_what_the_workers_send() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    let s = Scheduler::processes(2);
    let first = Compute::new(&pipeline(&[7, 8]))
        .scheduler(s.clone())
        .cache(&cache)
        .run()
        .unwrap();
    assert_eq!(cache.stats().writes, 4);
    let before = rdask::process::task_counts().0;
    let again = Compute::new(&pipeline(&[7, 8]))
        .scheduler(s)
        .cache(&cache)
        .run()
        .unwrap();
    assert_eq!(again, first);
    assert_eq!(cache.stats().hits, 4);
    // `offset` is not cached: it still runs in a worker, nothing else does.
    assert_eq!(rdask::process::task_counts().0 - before, 2);
}

#[test]
fn with_cache_and_rdask_cache_attach_it_to_plain_computes() {
    let _alone = ALONE.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    let (l0, _) = counts();
    rdask::with_cache(&cache, || rdask::compute(&pipeline(&[11])).unwrap());
    rdask::with_cache(&cache, || rdask::compute(&pipeline(&[11])).unwrap());
    assert_eq!(counts().0, l0 + 1);
    assert!(cache.stats().hits >= 2);
}

/// Two programs on one directory at once: both finish right, and the
/// entries they leave are whole.
#[test]
fn two_processes_share_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let me = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..2)
        .map(|_| {
            std::process::Command::new(&me)
                .args([
                    "--exact",
                    "shared_directory_child",
                    "--ignored",
                    "--nocapture",
                ])
                .env("RDASK_TEST_CACHE_DIR", dir.path())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && text.contains("1 passed"), "{text}");
    }
    let cache = Cache::open(dir.path()).unwrap();
    let outs = pipeline(&(100..140).collect::<Vec<_>>());
    let got = Compute::new(&outs).cache(&cache).run().unwrap();
    let want = Compute::new(&outs).run().unwrap();
    assert_eq!(got, want);
    assert_eq!(cache.stats().hits, 80, "every entry whole and found");
}

#[test]
#[ignore = "run by two_processes_share_a_directory"]
fn shared_directory_child() {
    let dir = std::env::var_os("RDASK_TEST_CACHE_DIR").expect("run by the parent test");
    let cache = Cache::open(dir).unwrap();
    let outs = pipeline(&(100..140).collect::<Vec<_>>());
    let got = Compute::new(&outs)
        .scheduler(Scheduler::threads(2))
        .cache(&cache)
        .run()
        .unwrap();
    assert_eq!(got, Compute::new(&outs).run().unwrap());
}
