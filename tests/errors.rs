//! Errors: a task's `Err` and panics become `rdask::Error`s naming the task,
//! with the cause reachable; dependents never run; nothing starts after a
//! failure; no hang; the scheduler stays usable.

use rdask::prelude::*;
use rdask::ErrorKind;
use std::error::Error as _;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

fn schedulers() -> Vec<Scheduler> {
    vec![
        Scheduler::Sync,
        Scheduler::threads(2),
        Scheduler::threads(0),
    ]
}

type Counter = Arc<AtomicUsize>;

fn counter() -> Counter {
    Arc::new(AtomicUsize::new(0))
}

fn get(c: &Counter) -> usize {
    c.load(Ordering::SeqCst)
}

fn no_hang<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("{what}: no result after 60 s (hang?)"))
}

#[derive(Debug, PartialEq)]
struct MyError {
    code: i32,
}

impl fmt::Display for MyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "my error with code {}", self.code)
    }
}

impl std::error::Error for MyError {}

/// Finds a `MyError` anywhere in the `source()` chain.
fn find_my_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a MyError> {
    let mut cur = e.source();
    while let Some(s) = cur {
        if let Some(m) = s.downcast_ref::<MyError>() {
            return Some(m);
        }
        cur = s.source();
    }
    None
}

#[delayed]
fn inc(x: i64) -> i64 {
    x + 1
}

#[delayed]
fn fails_with(code: i32) -> Result<i64, MyError> {
    Err(MyError { code })
}

#[delayed]
fn maybe_fails(x: i64) -> Result<i64, MyError> {
    if x < 0 {
        Err(MyError { code: x as i32 })
    } else {
        Ok(x * 2)
    }
}

#[delayed]
fn fails_string(x: i64) -> Result<i64, String> {
    Err(format!("string failure {x}"))
}

#[delayed]
fn fails_io(_x: i64) -> std::io::Result<i64> {
    Err(std::io::Error::new(
        std::io::ErrorKind::NotFound,
        "no such thing",
    ))
}

#[delayed(infallible)]
fn result_as_value(x: i64) -> Result<i64, String> {
    if x < 0 {
        Err("negative".into())
    } else {
        Ok(x)
    }
}

#[delayed]
fn boom(x: i64) -> i64 {
    panic!("kaboom {x}");
}

#[delayed]
fn counted(x: i64, calls: Counter) -> i64 {
    calls.fetch_add(1, Ordering::SeqCst);
    x + 1
}

#[delayed]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

#[delayed]
fn total(xs: Vec<i64>) -> i64 {
    xs.iter().sum()
}

#[delayed]
fn slow(x: i64, ms: u64, ran: Counter) -> i64 {
    ran.fetch_add(1, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(ms));
    x
}

#[delayed]
fn slow_fail(ms: u64) -> Result<i64, MyError> {
    std::thread::sleep(Duration::from_millis(ms));
    Err(MyError { code: 99 })
}

#[test]
fn a_task_error_names_the_task_and_keeps_the_cause() {
    for s in schedulers() {
        let f = fails_with(7);
        let out = inc(inc(&f));
        let e = out.compute_with(&s).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Task, "{s}: {e}");
        assert_eq!(
            e.key(),
            Some(f.key()),
            "{s}: the error names the failing task"
        );
        let msg = e.to_string();
        assert!(msg.contains(&f.key().to_string()), "{msg}");
        assert!(msg.contains("my error with code 7"), "{msg}");
        // source() reaches the original error, which downcasts.
        let src = e.source().expect("a source");
        assert_eq!(src.to_string(), "my error with code 7");
        assert_eq!(find_my_error(&e), Some(&MyError { code: 7 }), "{s}");
        // Debug is informative too.
        let dbg = format!("{e:?}");
        assert!(dbg.contains("Task"), "{dbg}");
        // The output itself failing.
        let e = maybe_fails(-3).compute_with(&s).unwrap_err();
        assert_eq!(find_my_error(&e), Some(&MyError { code: -3 }));
        assert_eq!(maybe_fails(3).compute_with(&s).unwrap(), 6);
    }
}

#[test]
fn other_error_types() {
    for s in schedulers() {
        let f = fails_string(4);
        let e = f.compute_with(&s).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Task);
        assert_eq!(e.key(), Some(f.key()));
        assert_eq!(e.source().unwrap().to_string(), "string failure 4");
        assert!(e.to_string().contains("string failure 4"), "{e}");

        let f = fails_io(0);
        let e = f.compute_with(&s).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Task);
        assert_eq!(e.key(), Some(f.key()));
        let io = e
            .source()
            .and_then(|s| s.downcast_ref::<std::io::Error>())
            .expect("the io::Error");
        assert_eq!(io.kind(), std::io::ErrorKind::NotFound);

        // `infallible`: the Result is the value; an Err does not fail.
        let (a, b) = rdask::with_scheduler(s.clone(), || {
            compute!(result_as_value(-1), result_as_value(2))
        })
        .unwrap();
        assert_eq!((a, b), (Err("negative".to_string()), Ok(2)), "{s}");
    }
}

#[test]
fn rdask_error_is_a_std_error() {
    fn takes_box(e: Box<dyn std::error::Error + Send + Sync>) -> String {
        e.to_string()
    }
    let e = fails_with(1).compute_with(&Scheduler::Sync).unwrap_err();
    let text = e.to_string();
    assert_eq!(takes_box(Box::new(e)), text);
    // `?` into anyhow-style boxed errors.
    fn run() -> Result<i64, Box<dyn std::error::Error + Send + Sync>> {
        Ok(fails_with(2).compute_with(&Scheduler::Sync)?)
    }
    assert!(run().unwrap_err().to_string().contains("code 2"));
}

#[test]
fn a_panic_is_an_error_and_the_scheduler_survives() {
    for s in schedulers() {
        for round in 0..3 {
            let b = boom(round);
            let out = total(vec![inc(1), inc(&b), inc(2)]);
            let e = out.compute_with(&s).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Panic, "{s}: {e}");
            assert_eq!(e.key(), Some(b.key()), "{s}: {e}");
            let msg = e.to_string();
            assert!(msg.contains(&format!("kaboom {round}")), "{msg}");
            assert!(msg.contains(&b.key().to_string()), "{msg}");
            // The same scheduler computes the next graph.
            let ok: Vec<_> = (0..20).map(inc).collect();
            assert_eq!(
                rdask::compute_with(&ok, &s).unwrap(),
                (1..=20).collect::<Vec<i64>>(),
                "{s}"
            );
        }
        // Many panics at once.
        let many: Vec<_> = (0..16).map(boom).collect();
        let e = rdask::compute_with(&many, &s).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Panic);
        assert!(many.iter().any(|d| Some(d.key()) == e.key()), "{e}");
        assert_eq!(inc(1).compute_with(&s).unwrap(), 2);
    }
}

#[test]
fn a_panic_in_a_closure_task() {
    for s in schedulers() {
        let m = inc(1).map(|x: i64| -> i64 {
            if x == 2 {
                panic!("map saw {x}");
            }
            x
        });
        let e = m.compute_with(&s).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Panic);
        assert_eq!(e.key(), Some(m.key()));
        assert!(e.to_string().contains("map saw 2"), "{e}");
        // A non-string panic payload still becomes an error.
        let odd = rdask::value(1_i64).map(|_: i64| -> i64 { std::panic::panic_any(42_u8) });
        let e = odd.compute_with(&s).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Panic);
        assert_eq!(e.key(), Some(odd.key()));
    }
}

#[test]
fn dependents_of_a_failed_task_never_run() {
    for s in schedulers() {
        let calls = counter();
        let f = fails_with(1);
        let deps: Vec<_> = (0..10).map(|_| counted(&f, calls.clone())).collect();
        let deeper = counted(total(&deps), calls.clone());
        let also = add(counted(&f, calls.clone()), inc(1));
        let e = rdask::with_scheduler(s.clone(), || compute!(deeper, also)).unwrap_err();
        assert_eq!(e.key(), Some(f.key()));
        assert_eq!(get(&calls), 0, "{s}: a dependent of the failed task ran");

        let calls = counter();
        let b = boom(0);
        let e = counted(counted(&b, calls.clone()), calls.clone())
            .compute_with(&s)
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Panic);
        assert_eq!(get(&calls), 0, "{s}: a dependent of the panicked task ran");
    }
}

#[test]
fn nothing_starts_after_a_failure_on_sync() {
    // Depth-first order runs `fails_with` (the first argument) before the
    // independent chain; after it fails, no task of the chain may start.
    let calls = counter();
    let mut chain = counted(0, calls.clone());
    for _ in 0..200 {
        chain = counted(&chain, calls.clone());
    }
    let f = fails_with(5);
    let out = add(&f, &chain);
    let e = out.compute_with(&Scheduler::Sync).unwrap_err();
    assert_eq!(e.key(), Some(f.key()));
    assert_eq!(get(&calls), 0, "tasks started after the failure");
    // The same with a panic.
    let b = boom(1);
    let out = add(&b, &chain);
    let e = out.compute_with(&Scheduler::Sync).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Panic);
    assert_eq!(get(&calls), 0, "tasks started after the panic");
    // And the chain alone runs fully.
    assert_eq!(chain.compute_with(&Scheduler::Sync).unwrap(), 201);
    assert_eq!(get(&calls), 201);
}

#[test]
fn nothing_starts_after_a_failure_on_threads() {
    // After the failure, the independent chain's remaining links must not
    // start: far fewer than all of them run.
    // All of it would take over 5 s.
    let steps = 5_000;
    let calls = counter();
    let mut chain = counted(0, calls.clone());
    for _ in 0..steps {
        chain = slow(counted(&chain, calls.clone()), 1, counter());
    }
    let out = add(slow_fail(20), &chain);
    let e = no_hang("chain after failure", move || {
        out.compute_with(&Scheduler::threads(2))
    })
    .unwrap_err();
    assert_eq!(find_my_error(&e), Some(&MyError { code: 99 }));
    let ran = get(&calls);
    assert!(
        ran < 1_000,
        "{ran} of {} chain links ran after the failure",
        steps + 1
    );
}

#[test]
fn a_failure_among_many_slow_tasks_returns_promptly() {
    // All of them would take n * ms / 2 = 5 s on two workers.
    let n = 1_000;
    let ms = 10;
    for s in [Scheduler::threads(2), Scheduler::threads(0)] {
        let ran = counter();
        let mut parts = vec![slow_fail(5)];
        parts.extend((0..n).map(|i| slow(i, ms, ran.clone())));
        let out = total(parts);
        let name = s.to_string();
        let start = Instant::now();
        let e = no_hang(&name, move || out.compute_with(&s)).unwrap_err();
        let took = start.elapsed();
        assert_eq!(e.kind(), ErrorKind::Task);
        assert_eq!(find_my_error(&e), Some(&MyError { code: 99 }));
        let ran = get(&ran);
        assert!(ran < n as usize / 2, "{name}: {ran} of {n} slow tasks ran");
        assert!(
            took < Duration::from_millis(2_000),
            "{name}: took {took:?} to report the failure"
        );
    }
}

#[test]
fn the_first_failure_is_reported_once() {
    for s in schedulers() {
        let a = fails_with(1);
        let b = fails_with(2);
        let out = add(&a, &b);
        let e = out.compute_with(&s).unwrap_err();
        let code = find_my_error(&e).expect("a MyError").code;
        let key = e.key().expect("a key");
        assert!(
            (code == 1 && key == a.key()) || (code == 2 && key == b.key()),
            "{s}: the key and the cause disagree: {e}"
        );
        // One failure in the error: one cause in its chain, one key named.
        let mut causes = 0;
        let mut cur = std::error::Error::source(&e);
        while let Some(c) = cur {
            causes += usize::from(c.is::<MyError>());
            cur = c.source();
        }
        assert_eq!(causes, 1, "{s}: {e:?}");
        let other = if key == a.key() { b.key() } else { a.key() };
        assert!(!e.to_string().contains(&other.to_string()), "{s}: {e}");
    }
}

#[test]
fn errors_in_compute_macro_and_compute_many() {
    for s in schedulers() {
        let f = fails_with(3);
        let ok = inc(1);
        let e = rdask::with_scheduler(s.clone(), || compute!(ok, f)).unwrap_err();
        assert_eq!(e.key(), Some(f.key()));
        let e = rdask::compute_with(&[inc(1), maybe_fails(-4), inc(2)], &s).unwrap_err();
        assert_eq!(find_my_error(&e), Some(&MyError { code: -4 }));
        // Nothing is cached: the good output still computes alone.
        assert_eq!(ok.compute_with(&s).unwrap(), 2);
    }
}

#[test]
fn a_nested_compute_error_propagates() {
    #[delayed]
    fn outer(x: i64) -> rdask::Result<i64> {
        fails_with(x as i32).compute()
    }
    for s in schedulers() {
        let o = outer(8);
        let e = o.compute_with(&s).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Task);
        assert_eq!(e.key(), Some(o.key()), "the outer task failed");
        assert_eq!(find_my_error(&e), Some(&MyError { code: 8 }), "{e:?}");
    }
}

#[derive(Debug)]
struct PanicClone(i64);

impl Clone for PanicClone {
    fn clone(&self) -> Self {
        panic!("clone of {} panicked", self.0)
    }
}

#[delayed]
fn make_panic_clone(x: i64) -> PanicClone {
    PanicClone(x)
}

#[delayed]
fn eat_panic_clone(x: PanicClone) -> i64 {
    x.0
}

#[test]
fn a_panicking_clone_is_a_panic_error() {
    for s in schedulers() {
        let c = make_panic_clone(6);
        let out = add(eat_panic_clone(&c), eat_panic_clone(&c));
        let e = out.compute_with(&s).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Panic, "{s}: {e}");
        assert!(e.to_string().contains("clone of 6 panicked"), "{e}");
        assert_eq!(inc(1).compute_with(&s).unwrap(), 2);
    }
}

/// Copying an output runs the user's `Clone` outside every task: a
/// constant's value is the node's own (so the output is a copy), and an
/// output asked for twice is copied once.
#[test]
fn a_panicking_clone_of_an_output_is_a_panic_error() {
    for s in schedulers() {
        let v = rdask::value(PanicClone(7));
        let e = v.compute_with(&s).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Panic, "{s}: {e}");
        assert_eq!(e.key(), Some(v.key()), "{s}: {e}");
        assert!(e.to_string().contains("clone of 7 panicked"), "{s}: {e}");

        let c = make_panic_clone(8);
        let e = rdask::compute_with(&[c.clone(), c.clone()], &s).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Panic, "{s}: {e}");
        assert_eq!(e.key(), Some(c.key()), "{s}: {e}");
        assert!(e.to_string().contains("clone of 8 panicked"), "{s}: {e}");
        assert_eq!(inc(1).compute_with(&s).unwrap(), 2);
    }
}

struct PanicDrop(i64);

impl Drop for PanicDrop {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("drop of {} panicked", self.0);
        }
    }
}

#[delayed]
fn make_panic_drop(x: i64) -> PanicDrop {
    PanicDrop(x)
}

#[delayed]
fn peek_panic_drop(x: &PanicDrop) -> i64 {
    x.0
}

#[test]
fn a_panicking_drop_does_not_escape_compute() {
    for s in schedulers() {
        let out = peek_panic_drop(make_panic_drop(4));
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| out.compute_with(&s)));
        let r = r.unwrap_or_else(|_| panic!("{s}: the panic escaped compute"));
        let e = r.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Panic, "{s}: {e}");
        assert!(e.to_string().contains("drop of 4 panicked"), "{e}");
        assert_eq!(inc(1).compute_with(&s).unwrap(), 2);
    }
}

/// A raw graph's alias of a literal copies it (the graph keeps its own):
/// a panic in that `Clone` is the alias's `Panic` error, not a panic out of
/// `get` (the alias once gathered outside the unwind guard).
#[test]
fn a_panicking_clone_through_an_alias_is_a_panic_error() {
    for s in schedulers().into_iter().chain([Scheduler::processes(1)]) {
        let mut g = rdask::Graph::new();
        g.insert_value("a", PanicClone(9)).insert_alias("b", "a");
        let got = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            rdask::get_with::<PanicClone>(&g, "b", &s)
        }));
        let e = got
            .unwrap_or_else(|_| panic!("{s}: the panic escaped get_with"))
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Panic, "{s}: {e}");
        assert_eq!(e.key(), Some(&rdask::Key::from("b")), "{s}: {e}");
        assert!(e.to_string().contains("clone of 9 panicked"), "{s}: {e}");
        assert_eq!(inc(1).compute_with(&s).unwrap(), 2, "{s}: usable after");
    }
}
