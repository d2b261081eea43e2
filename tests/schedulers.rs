//! Schedulers: names, the process-wide and scoped defaults, the
//! `RDASK_SCHEDULER` variable, caller-owned rayon pools, nested computes and
//! `current_scheduler()` inside tasks.

use rdask::prelude::*;
use rdask::ErrorKind;
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::ThreadId;
use std::time::Duration;

/// Runs `f` on another thread and fails the test if it does not finish in
/// time (a deadlock would otherwise hang the whole suite).
fn no_hang<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("{what}: no result after 60 s (deadlock?)"))
}

fn own_pool(n: usize, prefix: &'static str) -> Arc<rayon::ThreadPool> {
    Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .thread_name(move |i| format!("{prefix}-{i}"))
            .build()
            .unwrap(),
    )
}

#[delayed]
fn inc(x: i64) -> i64 {
    x + 1
}

#[delayed]
fn total(xs: Vec<i64>) -> i64 {
    xs.iter().sum()
}

#[derive(Clone, Debug, PartialEq)]
struct Seen {
    thread: ThreadId,
    name: Option<String>,
    pool_index: Option<usize>,
    scheduler: String,
}

#[delayed]
fn where_am_i(_i: i64) -> Seen {
    // Long enough that several workers get a share.
    std::thread::sleep(Duration::from_millis(2));
    let t = std::thread::current();
    Seen {
        thread: t.id(),
        name: t.name().map(str::to_string),
        pool_index: rayon::current_thread_index(),
        scheduler: rdask::current_scheduler().unwrap().to_string(),
    }
}

/// A graph of `width` independent `inc`s summed: n(n+1)/2 + ... for checks.
fn small_graph(base: i64, width: i64) -> Delayed<i64> {
    total((0..width).map(|i| inc(base + i)).collect::<Vec<_>>())
}

fn small_expected(base: i64, width: i64) -> i64 {
    (0..width).map(|i| base + i + 1).sum()
}

#[delayed]
fn nested(base: i64) -> rdask::Result<i64> {
    // Runs on the default scheduler, which inside a task is the one
    // running this task.
    small_graph(base, 20).compute()
}

#[delayed]
fn nested_twice(base: i64) -> rdask::Result<i64> {
    let inner: Vec<Delayed<i64>> = (0..3).map(|i| nested(base + i)).collect();
    total(inner).compute()
}

#[delayed]
fn nested_thrice(base: i64) -> rdask::Result<i64> {
    let inner: Vec<Delayed<i64>> = (0..2).map(|i| nested_twice(base + 10 * i)).collect();
    total(inner).compute()
}

fn nested_expected(base: i64) -> i64 {
    small_expected(base, 20)
}

fn nested_twice_expected(base: i64) -> i64 {
    (0..3).map(|i| nested_expected(base + i)).sum()
}

fn nested_thrice_expected(base: i64) -> i64 {
    (0..2).map(|i| nested_twice_expected(base + 10 * i)).sum()
}

#[test]
fn names_parse() {
    for name in ["sync", "single-threaded", "synchronous", "SYNC", " sync "] {
        let s: Scheduler = name.parse().unwrap();
        assert!(matches!(s, Scheduler::Sync), "{name:?} gave {s}");
        assert_eq!(inc(1).compute_with(&s).unwrap(), 2);
    }
    for name in ["threads", "threading", "Threads"] {
        let s: Scheduler = name.parse().unwrap();
        assert!(matches!(s, Scheduler::Threads(_)), "{name:?} gave {s}");
        assert_eq!(s.to_string(), Scheduler::threads(0).to_string());
        assert_eq!(inc(1).compute_with(&s).unwrap(), 2);
    }
    // What a scheduler prints parses back to the same scheduler.
    for s in [
        Scheduler::Sync,
        Scheduler::threads(0),
        Scheduler::threads(3),
    ] {
        let back: Scheduler = s.to_string().parse().unwrap();
        assert_eq!(back.to_string(), s.to_string());
    }
}

#[test]
fn bad_names_are_scheduler_errors() {
    for name in ["", "bogus", "sync2", "thread", "threads:many"] {
        let e = name.parse::<Scheduler>().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Scheduler, "{name:?}: {e}");
        assert!(e.key().is_none());
        assert!(!e.to_string().is_empty());
    }
    let e = "bogus".parse::<Scheduler>().unwrap_err();
    assert!(e.to_string().contains("bogus"), "{e}");
}

/// The only test that changes the process-wide default, so that no other
/// test here depends on it.
#[test]
fn set_scheduler_and_with_scheduler() {
    let caller = std::thread::current().id();
    rdask::set_scheduler(Scheduler::Sync);
    assert!(matches!(
        rdask::current_scheduler().unwrap(),
        Scheduler::Sync
    ));
    let seen = where_am_i(0).compute().unwrap();
    assert_eq!(seen.thread, caller, "Sync runs on the caller's thread");
    assert_eq!(seen.scheduler, "sync");

    rdask::with_scheduler(Scheduler::threads(2), || {
        assert_eq!(rdask::current_scheduler().unwrap().to_string(), "threads:2");
        let seen = where_am_i(0).compute().unwrap();
        assert_ne!(seen.thread, caller);
        assert!(seen.pool_index.is_some(), "{seen:?}");
        assert_eq!(seen.scheduler, "threads:2");
        // Nested scopes restore the outer one.
        rdask::with_scheduler(Scheduler::Sync, || {
            assert!(matches!(
                rdask::current_scheduler().unwrap(),
                Scheduler::Sync
            ));
            assert_eq!(where_am_i(0).compute().unwrap().thread, caller);
        });
        assert_eq!(rdask::current_scheduler().unwrap().to_string(), "threads:2");
    });
    // Restored after the scope: back to the global default.
    assert!(matches!(
        rdask::current_scheduler().unwrap(),
        Scheduler::Sync
    ));
    // Restored after a panic inside the scope, too.
    let r = std::panic::catch_unwind(|| {
        rdask::with_scheduler(Scheduler::threads(3), || panic!("inside the scope"))
    });
    assert!(r.is_err());
    assert!(matches!(
        rdask::current_scheduler().unwrap(),
        Scheduler::Sync
    ));
    // with_scheduler returns the closure's value.
    assert_eq!(rdask::with_scheduler(Scheduler::Sync, || 17), 17);
    // The scope is per thread: another thread sees the global default.
    rdask::with_scheduler(Scheduler::threads(2), || {
        let other = std::thread::spawn(|| rdask::current_scheduler().unwrap().to_string())
            .join()
            .unwrap();
        assert_eq!(other, "sync");
    });

    rdask::set_scheduler(Scheduler::threads(2));
    assert_eq!(rdask::current_scheduler().unwrap().to_string(), "threads:2");
    assert_ne!(where_am_i(0).compute().unwrap().thread, caller);
    rdask::set_scheduler(Scheduler::default());
    assert_eq!(
        rdask::current_scheduler().unwrap().to_string(),
        Scheduler::threads(0).to_string()
    );
}

#[test]
fn sync_runs_on_the_callers_thread() {
    let caller = std::thread::current().id();
    let xs: Vec<_> = (0..10).map(where_am_i).collect();
    for seen in rdask::compute_with(&xs, &Scheduler::Sync).unwrap() {
        assert_eq!(seen.thread, caller);
        assert_eq!(seen.scheduler, "sync");
    }
}

#[test]
fn threads_run_on_pool_workers() {
    let caller = std::thread::current().id();
    let xs: Vec<_> = (0..40).map(where_am_i).collect();
    let seen = rdask::compute_with(&xs, &Scheduler::threads(2)).unwrap();
    let threads: HashSet<ThreadId> = seen.iter().map(|s| s.thread).collect();
    assert!(!threads.contains(&caller));
    assert!(
        threads.len() <= 2,
        "{} threads for threads(2)",
        threads.len()
    );
    for s in &seen {
        assert!(s.pool_index.is_some_and(|i| i < 2), "{s:?}");
        assert_eq!(s.scheduler, "threads:2");
    }
}

#[test]
fn a_custom_pool_runs_the_tasks() {
    let pool = own_pool(3, "mypool");
    let s = Scheduler::pool(pool.clone());
    let xs: Vec<_> = (0..60).map(where_am_i).collect();
    let seen = rdask::compute_with(&xs, &s).unwrap();
    let names: HashSet<String> = seen.iter().map(|s| s.name.clone().unwrap()).collect();
    for n in &names {
        assert!(n.starts_with("mypool-"), "task ran on thread {n:?}");
    }
    assert!(names.len() <= 3);
    for seen in &seen {
        assert_eq!(seen.scheduler, s.to_string());
    }
    // The pool stays the caller's: still usable for other rayon work.
    assert_eq!(pool.install(rayon::current_num_threads), 3);
    // Computing from inside the pool works too (no deadlock).
    let s2 = s.clone();
    let got = no_hang("compute inside install", move || {
        pool.install(|| small_graph(0, 10).compute_with(&s2))
    })
    .unwrap();
    assert_eq!(got, small_expected(0, 10));
}

#[test]
fn current_scheduler_inside_a_task_is_the_one_running_it() {
    let pool = Scheduler::pool(own_pool(2, "curpool"));
    let cases = [
        Scheduler::Sync,
        Scheduler::threads(1),
        Scheduler::threads(2),
        Scheduler::threads(0),
        pool,
    ];
    for s in cases {
        // Even when the caller's default says otherwise.
        let other = match s {
            Scheduler::Sync => Scheduler::threads(2),
            _ => Scheduler::Sync,
        };
        let seen = rdask::with_scheduler(other, || where_am_i(0).compute_with(&s)).unwrap();
        assert_eq!(seen.scheduler, s.to_string());
    }
}

#[test]
fn nested_computes_do_not_deadlock() {
    let pool = Scheduler::pool(own_pool(2, "nestpool"));
    let cases = [
        Scheduler::Sync,
        Scheduler::threads(1),
        Scheduler::threads(2),
        Scheduler::threads(0),
        pool,
    ];
    for s in cases {
        let name = s.to_string();
        let s2 = s.clone();
        // More nested tasks than workers, so that every worker is inside a
        // nested compute at once.
        let got = no_hang(&name, move || {
            let outer: Vec<Delayed<i64>> = (0..8).map(|i| nested(i * 100)).collect();
            rdask::compute_with(&outer, &s2)
        })
        .unwrap();
        let expected: Vec<i64> = (0..8).map(|i| nested_expected(i * 100)).collect();
        assert_eq!(got, expected, "{name}");
    }
}

#[test]
fn nested_compute_three_deep_on_one_thread() {
    for s in [
        Scheduler::threads(1),
        Scheduler::Sync,
        Scheduler::pool(own_pool(1, "deep")),
    ] {
        let name = s.to_string();
        let got = no_hang(&name, move || {
            let outs: Vec<Delayed<i64>> = (0..3).map(|i| nested_thrice(i * 1000)).collect();
            rdask::compute_with(&outs, &s)
        })
        .unwrap();
        let expected: Vec<i64> = (0..3).map(|i| nested_thrice_expected(i * 1000)).collect();
        assert_eq!(got, expected, "{name}");
    }
}

static ON_CALLER: AtomicUsize = AtomicUsize::new(0);

#[delayed]
fn nested_where(_x: i64) -> rdask::Result<Vec<Seen>> {
    let xs: Vec<_> = (0..4).map(where_am_i).collect();
    let seen = rdask::compute(&xs)?;
    ON_CALLER.fetch_add(1, Ordering::SeqCst);
    Ok(seen)
}

#[test]
fn nested_computes_run_on_the_outer_scheduler() {
    let caller = std::thread::current().id();
    for seen in nested_where(0).compute_with(&Scheduler::Sync).unwrap() {
        assert_eq!(
            seen.thread, caller,
            "nested compute on Sync left the thread"
        );
        assert_eq!(seen.scheduler, "sync");
    }
    for seen in nested_where(0)
        .compute_with(&Scheduler::threads(2))
        .unwrap()
    {
        assert!(seen.pool_index.is_some_and(|i| i < 2), "{seen:?}");
        assert_eq!(seen.scheduler, "threads:2");
    }
    let pool = Scheduler::pool(own_pool(2, "outerpool"));
    for seen in nested_where(0).compute_with(&pool).unwrap() {
        let name = seen.name.unwrap();
        assert!(name.starts_with("outerpool-"), "{name}");
    }
    assert_eq!(ON_CALLER.load(Ordering::SeqCst), 3);
}

#[delayed]
fn nested_where_from(_x: i64) -> rdask::Result<(ThreadId, Vec<Seen>)> {
    let outer = std::thread::current().id();
    let xs: Vec<_> = (0..4).map(where_am_i).collect();
    Ok((outer, rdask::compute(&xs)?))
}

/// Under a cancel token the outermost computation runs on a thread of its
/// own (so that a cancel returns at once); a nested compute, inside it,
/// must not start another: on Sync its tasks run on the outer task's thread.
#[test]
fn nested_computes_under_a_token_stay_on_the_outer_thread() {
    let caller = std::thread::current().id();
    let token = rdask::CancelToken::new();
    let (outer, seen) = rdask::Compute::new(&[nested_where_from(0)])
        .scheduler(Scheduler::Sync)
        .cancel_token(token)
        .run()
        .unwrap()
        .pop()
        .unwrap();
    assert_ne!(outer, caller, "a computation under a token runs detached");
    assert_eq!(seen.len(), 4);
    for seen in seen {
        assert_eq!(
            seen.thread, outer,
            "nested compute under a token left the outer task's thread"
        );
        assert_eq!(seen.scheduler, "sync");
    }
}

#[test]
fn concurrent_computes_share_a_pool() {
    // Several caller threads computing on the same scheduler at once.
    let s = Scheduler::threads(2);
    let results = Arc::new(Mutex::new(Vec::new()));
    std::thread::scope(|scope| {
        for t in 0..4 {
            let (s, results) = (s.clone(), results.clone());
            scope.spawn(move || {
                let got = small_graph(t * 50, 30).compute_with(&s).unwrap();
                results.lock().unwrap().push((t, got));
            });
        }
    });
    let mut got = results.lock().unwrap().clone();
    got.sort();
    let expected: Vec<(i64, i64)> = (0..4).map(|t| (t, small_expected(t * 50, 30))).collect();
    assert_eq!(got, expected);
}

/// `RDASK_SCHEDULER` is read once per process, so it is checked in a child
/// process: this test binary itself, running only `env_child`.
#[test]
fn rdask_scheduler_environment_variable() {
    let exe = std::env::current_exe().unwrap();
    for (value, expect) in [
        ("sync", "sync"),
        ("synchronous", "sync"),
        ("threading", "threads"),
        ("threads:2", "threads:2"),
        ("nonsense", "error"),
    ] {
        let out = std::process::Command::new(&exe)
            .args([
                "env_child",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("RDASK_SCHEDULER", value)
            .env("RDASK_TEST_ENV_EXPECT", expect)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "RDASK_SCHEDULER={value}: {text}");
        assert!(text.contains("1 passed"), "child did not run: {text}");
        assert!(
            text.contains("env_child checked"),
            "child skipped its checks: {text}"
        );
    }
}

/// Run by `rdask_scheduler_environment_variable` in a child process; does
/// nothing on its own.
#[test]
#[ignore = "helper: run by rdask_scheduler_environment_variable"]
fn env_child() {
    let Ok(expect) = std::env::var("RDASK_TEST_ENV_EXPECT") else {
        return;
    };
    let caller = std::thread::current().id();
    match expect.as_str() {
        "error" => {
            let e = rdask::current_scheduler().unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Scheduler, "{e}");
            assert!(e.to_string().contains("RDASK_SCHEDULER"), "{e}");
            let e = inc(1).compute().unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Scheduler, "{e}");
            // An explicit scheduler still works.
            assert_eq!(inc(1).compute_with(&Scheduler::Sync).unwrap(), 2);
        }
        want => {
            assert_eq!(rdask::current_scheduler().unwrap().to_string(), want);
            let seen = where_am_i(0).compute().unwrap();
            assert_eq!(seen.scheduler, want);
            assert_eq!(seen.thread == caller, want == "sync", "{seen:?}");
            // set_scheduler overrides the variable.
            rdask::set_scheduler(Scheduler::threads(1));
            assert_eq!(rdask::current_scheduler().unwrap().to_string(), "threads:1");
        }
    }
    println!("env_child checked");
}
