//! `#[delayed(retries, priority, resources, timeout_ms)]` and
//! `rdask::annotate`, on every local scheduler.

use rdask::prelude::*;
use rdask::{Annotations, Callback, Compute, ErrorKind, Key};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Fails until it has been called `ok_at` times (counted in a file, so
/// that attempts in different worker processes count too).
#[delayed(retries = 2)]
fn flaky(counter: String, ok_at: u32) -> Result<u32, String> {
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

fn counter(dir: &tempfile::TempDir, name: &str) -> String {
    dir.path().join(name).display().to_string()
}

#[derive(Default)]
struct Attempts(Mutex<Vec<(String, bool)>>);

impl Callback for Attempts {
    fn posttask(&self, key: &Key, _w: usize, _t: Duration, ok: bool) {
        self.0.lock().unwrap().push((key.to_string(), ok));
    }
}

#[test]
fn retries_run_a_failed_task_again_and_callbacks_see_each_attempt() {
    let dir = tempfile::tempdir().unwrap();
    for (i, s) in [
        Scheduler::Sync,
        Scheduler::threads(2),
        Scheduler::processes(2),
    ]
    .into_iter()
    .enumerate()
    {
        // Succeeds on the third attempt: the two retries are enough.
        let d = flaky(counter(&dir, &format!("ok{i}")), 3);
        let seen = Arc::new(Attempts::default());
        let out = Compute::new(std::slice::from_ref(&d))
            .scheduler(s.clone())
            .callback(seen.clone())
            .run()
            .unwrap();
        assert_eq!(out, vec![3], "{s}");
        let oks: Vec<bool> = seen.0.lock().unwrap().iter().map(|(_, ok)| *ok).collect();
        assert_eq!(oks, [false, false, true], "{s}");
        // Would need a fourth: the last failure is the error, and says how
        // many attempts ran.
        let d = flaky(counter(&dir, &format!("bad{i}")), 4);
        let e = d.compute_with(&s).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Task, "{s}");
        let m = e.to_string();
        assert!(
            m.contains("attempt 3 failed") && m.contains("after 3 attempts"),
            "{s}: {m}"
        );
    }
}

#[test]
fn an_annotate_scope_reaches_closures_and_the_function_wins() {
    use std::sync::atomic::{AtomicU32, Ordering};
    let calls = Arc::new(AtomicU32::new(0));
    let c = calls.clone();
    let d = rdask::annotate(Annotations::new().retries(4), || {
        rdask::value(5_u64).map(move |x| {
            let n = c.fetch_add(1, Ordering::SeqCst) + 1;
            assert!(n >= 3, "not yet");
            x
        })
    });
    assert_eq!(d.compute_with(&Scheduler::threads(2)).unwrap(), 5);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    // The function's own `retries = 2` wins over the scope's 0.
    let dir = tempfile::tempdir().unwrap();
    let d = rdask::annotate(Annotations::new().retries(0), || {
        flaky(counter(&dir, "scoped"), 3)
    });
    assert_eq!(d.compute().unwrap(), 3);
}

struct Unique(u64);

#[delayed]
fn unique(x: u64) -> Unique {
    Unique(x)
}

#[delayed(retries = 1)]
fn consume(u: Unique) -> u64 {
    u.0
}

#[test]
fn retries_with_an_input_that_cannot_be_copied_say_so() {
    let e = consume(unique(1)).compute().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotClone, "{e}");
    assert!(e.to_string().contains("retries"), "{e}");
}

/// The order tasks ran in, recorded by the tasks.
static ORDER: Mutex<Vec<u64>> = Mutex::new(Vec::new());

#[delayed(name = "step")]
fn step(x: u64) -> u64 {
    ORDER.lock().unwrap().push(x);
    x
}

#[delayed]
fn gather(xs: Vec<u64>) -> u64 {
    xs.iter().sum()
}

/// Builds a small tree of `step`s under `annotations` per leaf index.
fn stepped(priority_of: impl Fn(u64) -> Option<i32>) -> Delayed<u64> {
    let leaves: Vec<Delayed<u64>> = (0..12)
        .map(|i| match priority_of(i) {
            Some(p) => rdask::annotate(Annotations::new().priority(p), || step(step(i) + 100)),
            None => step(step(i) + 100),
        })
        .collect();
    gather(leaves)
}

#[test]
fn priorities_order_ready_tasks_exactly_on_sync() {
    let _alone = PRIORITY_TESTS.lock().unwrap_or_else(|e| e.into_inner());
    // Distinct priorities: leaves run highest first (each leaf's chain
    // before the next leaf, as the depth-first order has it).
    let d = stepped(|i| Some(((i * 7) % 12) as i32));
    ORDER.lock().unwrap().clear();
    d.compute_with(&Scheduler::Sync).unwrap();
    let firsts: Vec<u64> = ORDER
        .lock()
        .unwrap()
        .iter()
        .copied()
        .filter(|x| *x < 100)
        .collect();
    let mut want: Vec<u64> = (0..12).collect();
    want.sort_by_key(|i| std::cmp::Reverse((i * 7) % 12));
    assert_eq!(firsts, want);
    // One priority for all: exactly the order without priorities.
    ORDER.lock().unwrap().clear();
    stepped(|_| None).compute_with(&Scheduler::Sync).unwrap();
    let plain = std::mem::take(&mut *ORDER.lock().unwrap());
    stepped(|_| Some(3)).compute_with(&Scheduler::Sync).unwrap();
    let same = std::mem::take(&mut *ORDER.lock().unwrap());
    assert_eq!(same, plain);
}

static PRIORITY_TESTS: Mutex<()> = Mutex::new(());

/// The tests that run `on_gpu`, one at a time (they share its counters).
static GPU_TESTS: Mutex<()> = Mutex::new(());

static GPU_NOW: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);
static GPU_MAX: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

#[delayed(resources(gpu = 1))]
fn on_gpu(x: u64) -> u64 {
    use std::sync::atomic::Ordering;
    let now = GPU_NOW.fetch_add(1, Ordering::SeqCst) + 1;
    GPU_MAX.fetch_max(now, Ordering::SeqCst);
    std::thread::sleep(Duration::from_micros(200));
    GPU_NOW.fetch_sub(1, Ordering::SeqCst);
    x
}

#[delayed]
fn plain(x: u64) -> u64 {
    x
}

#[test]
fn resources_are_never_oversubscribed() {
    use std::sync::atomic::Ordering;
    let _alone = GPU_TESTS.lock().unwrap_or_else(|e| e.into_inner());
    for s in [
        Scheduler::threads(4).with_resources(&[("gpu", 2.0)]),
        Scheduler::processes(3).with_resources(&[("gpu", 2.0)]),
    ] {
        GPU_MAX.store(0, Ordering::SeqCst);
        let tasks: Vec<_> = (0..1000)
            .map(|i| if i % 3 == 0 { plain(i) } else { on_gpu(i) })
            .collect();
        let total = gather(tasks);
        assert_eq!(
            total.compute_with(&s).unwrap(),
            (0..1000).sum::<u64>(),
            "{s}"
        );
        if matches!(s, Scheduler::Threads(_)) {
            // (On processes the counter lives in the workers.)
            let max = GPU_MAX.load(Ordering::SeqCst);
            assert!((1..=2).contains(&max), "{s}: {max} gpu tasks at once");
        }
    }
}

/// A task may need all there is of a resource: a need equal to the
/// scheduler's amount is met, and such tasks run one at a time.
#[test]
fn a_need_of_all_there_is_is_met() {
    use std::sync::atomic::Ordering;
    let _alone = GPU_TESTS.lock().unwrap_or_else(|e| e.into_inner());
    GPU_MAX.store(0, Ordering::SeqCst);
    let s = Scheduler::threads(2).with_resources(&[("gpu", 1.0)]);
    let total = gather((0..20).map(on_gpu).collect::<Vec<_>>());
    assert_eq!(total.compute_with(&s).unwrap(), (0..20).sum::<u64>());
    assert_eq!(GPU_MAX.load(Ordering::SeqCst), 1);
}

#[test]
fn a_need_no_scheduler_can_meet_is_an_error_at_once() {
    let _alone = GPU_TESTS.lock().unwrap_or_else(|e| e.into_inner());
    let d = gather(vec![plain(1), on_gpu(2)]);
    for (s, has) in [
        (Scheduler::threads(2), "0"),
        (Scheduler::threads(2).with_resources(&[("gpu", 0.5)]), "0.5"),
        (Scheduler::processes(1), "0"),
    ] {
        let t = std::time::Instant::now();
        let e = d.compute_with(&s).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Scheduler, "{s}: {e}");
        let m = e.to_string();
        assert!(
            m.contains("on_gpu") && m.contains("`gpu`") && m.contains(&format!("has {has}")),
            "{m}"
        );
        assert!(t.elapsed() < Duration::from_secs(5));
    }
    // Sync runs one task at a time: any need is met.
    assert_eq!(d.compute_with(&Scheduler::Sync).unwrap(), 3);
}

#[delayed(timeout_ms = 300)]
fn sleepy(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

/// Slow the first time only (counted in a file: attempts may run in
/// different worker processes).
#[delayed(timeout_ms = 300, retries = 1)]
fn slow_once(counter: String) -> u64 {
    let n = std::fs::read_to_string(&counter).map_or(0, |s| s.len());
    std::fs::write(&counter, "x".repeat(n + 1)).unwrap();
    if n == 0 {
        std::thread::sleep(Duration::from_secs(5));
    }
    n as u64
}

#[test]
fn a_task_past_its_timeout_fails_at_the_deadline() {
    for s in [
        Scheduler::Sync,
        Scheduler::threads(2),
        Scheduler::processes(1),
    ] {
        let d = sleepy(5_000);
        let started = std::time::Instant::now();
        let e = d.compute_with(&s).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Timeout, "{s}: {e}");
        assert_eq!(e.key(), Some(d.key()), "{s}");
        assert!(e.to_string().contains("300 ms"), "{s}: {e}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{s}: {:?}",
            started.elapsed()
        );
        // In time: its value.
        assert_eq!(sleepy(1).compute_with(&s).unwrap(), 1, "{s}");
    }
}

#[test]
fn processes_retry_a_timed_out_task_on_a_fresh_worker() {
    let dir = tempfile::tempdir().unwrap();
    let d = slow_once(counter(&dir, "slow"));
    let started = std::time::Instant::now();
    assert_eq!(d.compute_with(&Scheduler::processes(1)).unwrap(), 1);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}

fn twice(x: i64) -> i64 {
    x * 2
}

#[test]
fn annotations_show_on_graphs_and_pictures() {
    let g = rdask::annotate(Annotations::new().retries(2).priority(-1), || {
        graph! { "a" => 1_i64, "b" => (twice, "a") }
    });
    let dot = g.to_dot();
    assert!(dot.contains("retries=2 priority=-1"), "{dot}");
    // and they act: the raw task runs with them.
    assert_eq!(rdask::get::<i64>(&g, "b").unwrap(), 2);
    let d = rdask::annotate(Annotations::new().resource("gpu", 1.0), || {
        rdask::value(1_i64) + 1
    });
    use rdask::Visualize;
    let picture = rdask::diagnostics::labelled_dot(&d.visualize_graph());
    assert!(picture.contains("gpu=1"), "{picture}");
}

/// Another pool of 2 threads, for computes nested in tasks.
fn other_pool() -> &'static Scheduler {
    static S: std::sync::OnceLock<Scheduler> = std::sync::OnceLock::new();
    S.get_or_init(|| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build();
        Scheduler::pool(Arc::new(pool.unwrap()))
    })
}

#[delayed]
fn plus_one(x: u64) -> u64 {
    x + 1
}

/// A prioritised task that computes a small graph on another pool.
#[delayed(priority = 1)]
fn elsewhere(base: u64) -> rdask::Result<u64> {
    gather((0..20).map(|i| plus_one(base + i)).collect::<Vec<_>>()).compute_with(other_pool())
}

/// The priority queue's workers are rayon jobs: one may start on a thread
/// whose task waits for a compute on another pool (rayon runs the waiting
/// thread's pool's jobs meanwhile). It must not wait for tasks there, above
/// the task it would wait for: this hung within 50 rounds before (3 tries
/// of 3), and runs all 100 now.
#[test]
fn prioritised_tasks_that_compute_on_another_pool_do_not_hang() {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let s = Scheduler::threads(2);
        for round in 0..100 {
            let outs: Vec<_> = (0..8).map(|i| elsewhere(i * 100 + round)).collect();
            let want: u64 = (0..8)
                .map(|i| (0..20).map(|j| i * 100 + round + j + 1).sum::<u64>())
                .sum();
            let got = gather(outs).compute_with(&s);
            let _ = tx.send((round, got.map(|g| g == want)));
        }
    });
    for round in 0..100 {
        let (r, ok) = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("round {round} hung"));
        assert_eq!((r, ok.unwrap()), (round, true));
    }
}
