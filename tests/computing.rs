//! Computing: `compute!`, `rdask::compute`/`compute_with`, shared work done
//! once per computation, values moved rather than cloned, non-`Clone`
//! values, early drops and depth-first order.

use rdask::prelude::*;
use rdask::ErrorKind;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

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

/// Counts its clones.
struct Counted {
    v: i64,
    clones: Counter,
}

impl Clone for Counted {
    fn clone(&self) -> Self {
        self.clones.fetch_add(1, Ordering::SeqCst);
        Counted {
            v: self.v,
            clones: self.clones.clone(),
        }
    }
}

/// Not `Clone`.
#[derive(Debug)]
struct NoClone(i64);

#[delayed]
fn inc(x: i64) -> i64 {
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
fn shared_load(x: i64, calls: Counter) -> i64 {
    calls.fetch_add(1, Ordering::SeqCst);
    x * 10
}

#[delayed]
fn counted_inc(x: i64, calls: Counter) -> i64 {
    calls.fetch_add(1, Ordering::SeqCst);
    x + 1
}

#[delayed]
fn name(x: i64) -> String {
    format!("n{x}")
}

#[delayed]
fn make_counted(v: i64, clones: Counter) -> Counted {
    Counted { v, clones }
}

#[delayed]
fn eat(c: Counted) -> i64 {
    c.v
}

#[delayed]
fn eat_plus(c: Counted, n: i64) -> i64 {
    c.v + n
}

#[delayed]
fn peek(c: &Counted) -> i64 {
    c.v
}

#[delayed]
fn make_nc(v: i64) -> NoClone {
    NoClone(v)
}

#[delayed]
fn peek_nc(x: &NoClone) -> i64 {
    x.0
}

#[delayed]
fn eat_nc(x: NoClone) -> i64 {
    x.0 * 100
}

#[delayed]
fn eat_nc_after(x: NoClone, after: i64) -> i64 {
    x.0 * 100 + after
}

#[delayed]
fn peek_nc_after(x: &NoClone, after: i64) -> i64 {
    x.0 + after
}

#[delayed]
fn sum3(a: i64, b: i64, c: i64) -> i64 {
    a + b + c
}

/// A value that logs its drop.
struct Tracked {
    name: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.log.lock().unwrap().push(format!("drop {}", self.name));
    }
}

type Log = Arc<Mutex<Vec<String>>>;

#[delayed]
fn make_tracked(name: String, log: Log) -> Tracked {
    log.lock().unwrap().push(format!("run {name}"));
    Tracked { name, log }
}

#[delayed]
fn measure(t: &Tracked, log: Log) -> usize {
    log.lock().unwrap().push(format!("measure {}", t.name));
    t.name.len()
}

#[delayed]
fn add_usize(a: usize, b: usize) -> usize {
    a + b
}

/// Counts live instances, and the most that were ever alive at once.
struct Loaded {
    live: Counter,
    data: Vec<u64>,
}

impl Drop for Loaded {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::SeqCst);
    }
}

#[delayed]
fn load(i: u64, live: Counter, peak: Counter) -> Loaded {
    let now = live.fetch_add(1, Ordering::SeqCst) + 1;
    peak.fetch_max(now, Ordering::SeqCst);
    Loaded {
        live,
        data: vec![i; 64],
    }
}

#[delayed]
fn clean(x: Loaded) -> u64 {
    x.data.iter().sum()
}

#[delayed]
fn sum_u64(xs: Vec<u64>) -> u64 {
    xs.iter().sum()
}

#[test]
fn compute_macro_mixed_types_and_one_tuple() {
    for s in schedulers() {
        let a = inc(1);
        let b = name(&a);
        let c = rdask::value(vec![1.5_f64, 2.5]);
        let d = a.map(|x: i64| x % 2 == 0);
        let (x, y, z, w) = rdask::with_scheduler(s.clone(), || compute!(a, b, c, d)).unwrap();
        assert_eq!(
            (x, y.as_str(), z, w),
            (2, "n2", vec![1.5, 2.5], true),
            "{s}"
        );
        let one: (i64,) = rdask::with_scheduler(s.clone(), || compute!(inc(41))).unwrap();
        assert_eq!(one, (42,), "{s}");
        // The same Delayed twice, and the arguments still usable after.
        let (p, q) = rdask::with_scheduler(s.clone(), || compute!(a, a)).unwrap();
        assert_eq!((p, q), (2, 2));
        assert_eq!(a.compute_with(&s).unwrap(), 2);
    }
}

#[test]
fn compute_functions_keep_output_order() {
    for s in schedulers() {
        let xs: Vec<Delayed<i64>> = (0..50).map(|i| inc(i) * 2).collect();
        let expected: Vec<i64> = (0..50).map(|i| (i + 1) * 2).collect();
        assert_eq!(rdask::compute_with(&xs, &s).unwrap(), expected, "{s}");
        let got = rdask::with_scheduler(s.clone(), || rdask::compute(&xs)).unwrap();
        assert_eq!(got, expected, "{s}");
        let empty: Vec<Delayed<i64>> = Vec::new();
        assert!(rdask::compute_with(&empty, &s).unwrap().is_empty());
        // Repeated outputs, and an output that is an input of another.
        let a = inc(0);
        let b = add(&a, &a);
        let got = rdask::compute_with(&[b.clone(), a.clone(), b, a], &s).unwrap();
        assert_eq!(got, vec![2, 1, 2, 1], "{s}");
    }
}

#[test]
fn shared_intermediates_run_once_per_computation() {
    for s in schedulers() {
        let calls = counter();
        let base = shared_load(3, calls.clone()); // 30
        let x = inc(&base);
        let y = add(&base, &x);
        let z = total(vec![base.clone(), x.clone(), y.clone(), base.clone()]);
        let (a, b, c, d) = rdask::with_scheduler(s.clone(), || compute!(x, y, z, base)).unwrap();
        assert_eq!((a, b, c, d), (31, 61, 152, 30), "{s}");
        assert_eq!(get(&calls), 1, "{s}: shared task ran more than once");
        // Again: once more, not zero (nothing is cached between computes).
        let outs = vec![inc(&base), inc(&base), add(&base, &base)];
        assert_eq!(rdask::compute_with(&outs, &s).unwrap(), vec![31, 31, 60]);
        assert_eq!(get(&calls), 2, "{s}");
        // A diamond of counted tasks: every task once.
        let inner = counter();
        let top = counted_inc(0, inner.clone());
        let l = counted_inc(&top, inner.clone());
        let r = counted_inc(&top, inner.clone());
        let bottom = sum3(&l, &r, &top);
        assert_eq!(bottom.compute_with(&s).unwrap(), 5);
        assert_eq!(get(&inner), 3, "{s}");
    }
}

#[delayed]
fn append(mut s: String, tail: &str) -> String {
    s.push_str(tail);
    s
}

#[test]
fn a_constant_is_copied_once_per_use_and_stays_intact() {
    for s in schedulers() {
        // Each by-value use of a plain argument gets its own copy: one per
        // use and computation, never the graph's own (which must not change).
        let clones = counter();
        let c = Counted {
            v: 4,
            clones: clones.clone(),
        };
        let two = add(eat(c.clone()), eat(c));
        assert_eq!(get(&clones), 1, "{s}: building copied the argument");
        for round in 1..=2 {
            assert_eq!(two.compute_with(&s).unwrap(), 8);
            assert_eq!(get(&clones), 1 + 2 * round, "{s}: round {round}");
        }
        // A constant changed by its consumer is changed in the copy only.
        let greeting = append("hello".to_string(), ", world");
        let twice = append(&greeting, "!");
        for _ in 0..2 {
            assert_eq!(twice.compute_with(&s).unwrap(), "hello, world!");
            assert_eq!(greeting.compute_with(&s).unwrap(), "hello, world");
        }
    }
}

#[test]
fn values_move_into_their_last_consumer() {
    for s in schedulers() {
        // One consumer: never cloned.
        let clones = counter();
        let c = make_counted(7, clones.clone());
        assert_eq!(eat(&c).compute_with(&s).unwrap(), 7);
        assert_eq!(get(&clones), 0, "{s}: a single consumer got a clone");
        // The output itself: moved out, not cloned.
        let out = c.compute_with(&s).unwrap();
        assert_eq!(out.v, 7);
        assert_eq!(get(&clones), 0, "{s}: the output was cloned");
        // A chain of by-value consumers: never cloned.
        let chain = eat_plus(make_counted(1, clones.clone()), 2);
        assert_eq!(chain.compute_with(&s).unwrap(), 3);
        assert_eq!(get(&clones), 0, "{s}");

        // Two by-value consumers: exactly one clone, also when they run at
        // the same time (see `concurrent_movers_clone_once_per_extra_consumer`).
        let clones = counter();
        let c = make_counted(5, clones.clone());
        let both = add(eat(&c), eat(&c));
        assert_eq!(both.compute_with(&s).unwrap(), 10);
        assert_eq!(get(&clones), 1, "{s}: two consumers, expected one clone");

        // A consumer and the output: exactly one clone.
        let clones = counter();
        let c = make_counted(5, clones.clone());
        let e = eat(&c);
        let (cv, ev) = rdask::with_scheduler(s.clone(), || compute!(c, e)).unwrap();
        assert_eq!((cv.v, ev), (5, 5));
        assert_eq!(
            get(&clones),
            1,
            "{s}: output + consumer, expected one clone"
        );

        // Three by-value consumers: two clones.
        let clones = counter();
        let c = make_counted(1, clones.clone());
        let three = sum3(eat(&c), eat(&c), eat(&c));
        assert_eq!(three.compute_with(&s).unwrap(), 3);
        assert_eq!(get(&clones), 2, "{s}");

        // Borrowers never clone; the by-value consumer runs after them (it
        // depends on them) and moves the value.
        let clones = counter();
        let c = make_counted(2, clones.clone());
        let p = add(peek(&c), peek(&c));
        let last = eat_plus(&c, &p);
        assert_eq!(last.compute_with(&s).unwrap(), 6);
        assert_eq!(
            get(&clones),
            0,
            "{s}: borrowers + one mover, expected no clone"
        );
    }
}

/// Clones slowly, so that two consumers copying it overlap in time.
struct SlowClone {
    clones: Counter,
}

impl Clone for SlowClone {
    fn clone(&self) -> Self {
        std::thread::sleep(std::time::Duration::from_millis(30));
        self.clones.fetch_add(1, Ordering::SeqCst);
        SlowClone {
            clones: self.clones.clone(),
        }
    }
}

#[delayed]
fn make_slow(clones: Counter) -> SlowClone {
    SlowClone { clones }
}

#[delayed]
fn eat_slow(_x: SlowClone) -> i64 {
    1
}

#[test]
fn concurrent_movers_clone_once_per_extra_consumer() {
    for s in [Scheduler::threads(2), Scheduler::threads(4)] {
        for movers in [2_usize, 4] {
            let clones = counter();
            let m = make_slow(clones.clone());
            let eaters: Vec<Delayed<i64>> = (0..movers).map(|_| eat_slow(&m)).collect();
            assert_eq!(total(eaters).compute_with(&s).unwrap(), movers as i64);
            assert_eq!(
                get(&clones),
                movers - 1,
                "{s}: {movers} by-value consumers should cost {} clones",
                movers - 1
            );
        }
    }
}

#[delayed]
fn borrow_and_eat_nc(a: &NoClone, b: NoClone) -> i64 {
    a.0 + b.0
}

#[test]
fn borrowing_and_moving_one_non_clone_value_in_one_call_is_an_error() {
    for s in schedulers() {
        let m = make_nc(1);
        let bad = borrow_and_eat_nc(&m, &m);
        let s2 = s.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(
                bad.compute_with(&s2)
                    .map_err(|e| (e.kind(), e.key().cloned())),
            );
        });
        let got = rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("{s}: computation hung"));
        let (kind, key) = got.unwrap_err();
        assert_eq!(kind, ErrorKind::NotClone, "{s}");
        assert_eq!(key.as_ref(), Some(m.key()), "{s}");
    }
}

#[test]
fn non_clone_values_have_borrowers_and_one_mover() {
    for s in schedulers() {
        let m = make_nc(3);
        // Borrowers only, then the value itself as an output.
        let (a, b) =
            rdask::with_scheduler(s.clone(), || compute!(peek_nc(&m), peek_nc(&m))).unwrap();
        assert_eq!((a, b), (3, 3));
        let NoClone(v) = m.compute_with(&s).unwrap();
        assert_eq!(v, 3);
        // Borrowers and one by-value consumer, independent of each other:
        // the mover must wait for the borrowers.
        let all = sum3(peek_nc(&m), eat_nc(&m), peek_nc(&m));
        assert_eq!(all.compute_with(&s).unwrap(), 306, "{s}");
        let many: Vec<Delayed<i64>> = (0..20).map(|_| peek_nc(&m)).collect();
        let out = eat_nc_after(&m, total(many));
        assert_eq!(out.compute_with(&s).unwrap(), 360, "{s}");
        // Borrowed output plus a borrower.
        let (p, o) = rdask::with_scheduler(s.clone(), || compute!(peek_nc(&m), m)).unwrap();
        assert_eq!((p, o.0), (3, 3));
    }
}

#[test]
fn two_movers_of_a_non_clone_value_is_an_error() {
    for s in schedulers() {
        let m = make_nc(1);
        let both = add(eat_nc(&m), eat_nc(&m));
        let e = both.compute_with(&s).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotClone, "{s}: {e}");
        assert_eq!(e.key(), Some(m.key()), "{s}: {e}");
        assert!(e.to_string().contains(&m.key().to_string()), "{e}");
        // The output and a by-value consumer: also two movers.
        let eaten = eat_nc(&m);
        let e = rdask::with_scheduler(s.clone(), || compute!(m, eaten)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotClone, "{s}: {e}");
        assert_eq!(e.key(), Some(m.key()), "{s}: {e}");
        // The same scheduler still works afterwards.
        assert_eq!(eat_nc(&m).compute_with(&s).unwrap(), 100);
    }
}

#[test]
fn a_borrower_that_needs_the_mover_is_an_error_not_a_hang() {
    // `peek_nc_after` borrows `m` but needs `eat_nc(m)`'s result, which
    // consumes `m`: impossible without a copy. It must fail, not wait forever.
    for s in schedulers() {
        let m = make_nc(2);
        let bad = peek_nc_after(&m, eat_nc(&m));
        let (tx, rx) = std::sync::mpsc::channel();
        let s2 = s.clone();
        std::thread::spawn(move || {
            let _ = tx.send(bad.compute_with(&s2).map_err(|e| (e.kind(), e.to_string())));
        });
        let got = rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("{s}: computation hung"));
        let (kind, msg) = got.unwrap_err();
        assert_eq!(kind, ErrorKind::NotClone, "{s}: {msg}");
        assert!(msg.contains(&m.key().to_string()), "{msg}");
    }
}

#[test]
fn intermediates_are_dropped_as_soon_as_unneeded() {
    let log: Log = Arc::default();
    // Depth-first: branch `a` (make, measure) runs first; `a`'s value is
    // needed by nothing else, so it must be dropped before branch `b` starts.
    let a = make_tracked("a", log.clone());
    let b = make_tracked("b", log.clone());
    let out = add_usize(measure(&a, log.clone()), measure(&b, log.clone()));
    assert_eq!(out.compute_with(&Scheduler::Sync).unwrap(), 2);
    let events = log.lock().unwrap().clone();
    let pos = |e: &str| {
        events
            .iter()
            .position(|x| x == e)
            .unwrap_or_else(|| panic!("no {e:?} in {events:?}"))
    };
    assert!(pos("measure a") < pos("drop a"), "{events:?}");
    assert!(
        pos("drop a") < pos("run b"),
        "`a` outlived its last use: {events:?}"
    );
    assert_eq!(events.len(), 6, "{events:?}");

    // On threads: every value is dropped by the time compute returns.
    let log: Log = Arc::default();
    let xs: Vec<_> = ["p", "q", "r", "s"]
        .into_iter()
        .map(|n| measure(make_tracked(n, log.clone()), log.clone()))
        .collect();
    let total: usize = rdask::compute_with(&xs, &Scheduler::threads(2))
        .unwrap()
        .into_iter()
        .sum();
    assert_eq!(total, 4);
    let events = log.lock().unwrap().clone();
    assert_eq!(
        events.iter().filter(|e| e.starts_with("drop")).count(),
        4,
        "{events:?}"
    );
}

#[test]
fn reductions_run_depth_first() {
    let n = 200;
    for s in [
        Scheduler::Sync,
        Scheduler::threads(2),
        Scheduler::threads(0),
    ] {
        let live = counter();
        let peak = counter();
        let parts: Vec<Delayed<u64>> = (0..n)
            .map(|i| clean(load(i, live.clone(), peak.clone())))
            .collect();
        let out = sum_u64(parts);
        let expected: u64 = (0..n).map(|i| i * 64).sum();
        assert_eq!(out.compute_with(&s).unwrap(), expected, "{s}");
        assert_eq!(get(&live), 0, "{s}: loads leaked");
        // One load in flight per worker, plus slack for one the worker
        // has made but not yet handed on.
        let bound = match &s {
            Scheduler::Sync => 2,
            Scheduler::Threads(t) if t.workers() > 0 => 2 * t.workers(),
            _ => 2 * rayon::current_num_threads(),
        };
        assert!(
            get(&peak) <= bound,
            "{s}: {} loads were alive at once (of {n}); depth-first order keeps it at {bound}",
            get(&peak)
        );
    }
}

/// The same reduction with the loads' handles kept: the graph is no longer
/// a tree, so it runs through the plan, whose schedulers must keep the
/// same depth-first order (each load's `clean` before the next loads).
#[test]
fn planned_reductions_run_depth_first() {
    let n = 200;
    for s in [Scheduler::Sync, Scheduler::threads(2)] {
        let live = counter();
        let peak = counter();
        let loads: Vec<Delayed<Loaded>> = (0..n)
            .map(|i| load(i, live.clone(), peak.clone()))
            .collect();
        let parts: Vec<Delayed<u64>> = loads.iter().map(clean).collect();
        let out = sum_u64(parts);
        let before = rdask::__private::planned();
        let expected: u64 = (0..n).map(|i| i * 64).sum();
        assert_eq!(out.compute_with(&s).unwrap(), expected, "{s}");
        assert!(
            rdask::__private::planned() > before,
            "{s}: ran without a plan"
        );
        assert_eq!(get(&live), 0, "{s}: loads leaked");
        // As in `reductions_run_depth_first`: one load in flight per
        // worker, plus slack for one made but not yet handed on.
        let bound = match &s {
            Scheduler::Sync => 2,
            _ => 4,
        };
        assert!(
            get(&peak) <= bound,
            "{s}: {} loads were alive at once (of {n}); depth-first order keeps it at {bound}",
            get(&peak)
        );
        drop(loads);
    }
}

/// Records the order in which tasks start, by function name.
#[derive(Default)]
struct StartOrder(Mutex<Vec<String>>);

impl rdask::Callback for StartOrder {
    fn pretask(&self, key: &rdask::Key, _worker: usize) {
        self.0.lock().unwrap().push(key.prefix().to_string());
    }
}

#[delayed]
fn source(x: i64) -> i64 {
    x
}

#[delayed]
fn left(x: &i64) -> i64 {
    x + 1
}

#[delayed]
fn right(x: &i64) -> i64 {
    x + 2
}

#[delayed]
fn join(a: &i64, b: &i64) -> i64 {
    a * b
}

#[test]
fn sync_runs_ready_siblings_in_argument_order() {
    // `source` makes `left` and `right` ready at once: Sync runs the first
    // one made ready next (dask's `get_sync` order), then the other.
    let a = source(1);
    let l = left(&a);
    let r = right(&a);
    let j = join(&l, &r);
    let order = Arc::new(StartOrder::default());
    let out = rdask::Compute::new(std::slice::from_ref(&j))
        .scheduler(Scheduler::Sync)
        .callback(order.clone())
        .run()
        .unwrap();
    assert_eq!(out, vec![6]);
    assert_eq!(
        *order.0.lock().unwrap(),
        ["source", "left", "right", "join"]
    );
}

#[delayed]
fn pair(x: i64) -> (i64, String) {
    (x, x.to_string())
}

#[test]
fn shared_task_results_of_a_clone_type_are_copied_for_each_mover() {
    // Results of `#[delayed]` functions and operators know how to copy
    // themselves: any mix of by-value consumers and outputs works.
    for s in schedulers() {
        let m = inc(1);
        let a = m.map(|x: i64| x + 1);
        let b = m.map(|x: i64| x + 2);
        let got = rdask::with_scheduler(s.clone(), || compute!(a, b, m, m)).unwrap();
        assert_eq!(got, (3, 4, 2, 2), "{s}");
        let o = &m * 10;
        let got = rdask::compute_with(&[o.clone(), o.map(|x: i64| x), o], &s).unwrap();
        assert_eq!(got, vec![20, 20, 20], "{s}");
    }
}

#[test]
fn map_and_split_results_can_be_shared_by_value() {
    for s in schedulers() {
        let m = inc(1).map(|x: i64| x * 10);
        let a = m.map(|x: i64| x + 1);
        let b = m.map(|x: i64| x + 2);
        let got = rdask::with_scheduler(s.clone(), || compute!(a, b)).unwrap();
        assert_eq!(got, (21, 22), "{s}");
        let got = rdask::with_scheduler(s.clone(), || compute!(m, m)).unwrap();
        assert_eq!(got, (20, 20), "{s}");
        let got = rdask::compute_with(&[m.clone(), m.map(|x: i64| x)], &s).unwrap();
        assert_eq!(got, vec![20, 20], "{s}");
        let (p, q) = pair(3).split();
        let got = rdask::with_scheduler(s.clone(), || compute!(p, p, q)).unwrap();
        assert_eq!(got, (3, 3, "3".to_string()), "{s}");
        let got = rdask::compute_with(&[p.map(|x: i64| x + 1), p.map(|x: i64| x + 2)], &s);
        assert_eq!(got.unwrap(), vec![4, 5], "{s}");
    }
}

#[test]
fn a_list_of_non_clone_values_moves_each_element() {
    #[delayed]
    fn sum_nc(xs: Vec<NoClone>) -> i64 {
        xs.iter().map(|x| x.0).sum()
    }
    for s in schedulers() {
        let xs: Vec<Delayed<NoClone>> = (1..=5).map(make_nc).collect();
        assert_eq!(sum_nc(&xs).compute_with(&s).unwrap(), 15, "{s}");
        // The same element twice in the list: two movers of one value.
        let twice = sum_nc(vec![xs[0].clone(), xs[0].clone()]);
        let e = twice.compute_with(&s).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotClone, "{s}: {e}");
        assert_eq!(e.key(), Some(xs[0].key()));
    }
}

#[test]
fn default_scheduler_computes_too() {
    let xs: Vec<_> = (0..10).map(inc).collect();
    assert_eq!(rdask::compute(&xs).unwrap(), (1..=10).collect::<Vec<i64>>());
    assert_eq!(total(&xs).compute().unwrap(), 55);
    assert_eq!(compute!(total(&xs), inc(0)).unwrap(), (55, 1));
}

// Primitive values travel inline (no box): borrowed, copied and moved like
// any other value.
#[delayed]
fn letter(x: u32) -> char {
    char::from_u32(0x41 + x).unwrap_or('?')
}

#[delayed]
fn peek_char(c: &char) -> u32 {
    *c as u32
}

#[delayed]
fn take_char(c: char) -> u32 {
    c as u32
}

#[delayed]
fn halve(x: f64) -> f64 {
    x / 2.0
}

#[delayed]
fn is_even(x: u32) -> bool {
    x % 2 == 0
}

#[delayed]
fn pick(yes: bool, a: f64, b: &f64) -> f64 {
    if yes {
        a
    } else {
        *b
    }
}

#[delayed]
fn nothing(_x: &f64) {}

#[delayed]
fn after(_done: (), x: i16, y: u8) -> i16 {
    x - i16::from(y)
}

#[test]
fn primitive_values_are_shared_copied_and_moved() {
    for s in schedulers() {
        let c = letter(2);
        // Two borrowers and two by-value uses of one `char`.
        let sum = peek_char(&c) + peek_char(&c) + take_char(&c) + take_char(&c);
        let h = halve(3.0);
        let p = pick(is_even(4), &h, &h);
        let q = pick(is_even(3), &h, rdask::value(-1.0));
        let z = after(nothing(&h), -7_i16, 250_u8);
        let (c, sum, p, q, z) =
            rdask::with_scheduler(s.clone(), || compute!(c, sum, p, q, z)).unwrap();
        assert_eq!((c, sum, p, q, z), ('C', 4 * 67, 1.5, -1.0, -257), "{s}");
    }
}

/// `compute!` records the copy function of each output type it is given:
/// an output a closure made (its node knows no copy function) that another
/// task also takes by value is copied, not refused as not `Clone`.
#[test]
fn compute_macro_outputs_shared_with_a_consumer_are_copied() {
    #[derive(Clone, Debug, PartialEq)]
    struct Made(Vec<i64>);
    let a = rdask::value(2_i64).map(|x: i64| Made(vec![x; 3]));
    let b = a.map(|m: Made| m.0.len());
    for s in [Scheduler::Sync, Scheduler::threads(2)] {
        let (made, len) = rdask::with_scheduler(s, || compute!(a, b)).unwrap();
        assert_eq!((made, len), (Made(vec![2, 2, 2]), 3));
    }
}

/// A constant argument that a task borrows is the graph's own value, never
/// copied, on every path (a tree, a plan); one taken by value is copied once
/// a use, the graph keeping its own for the next computation.
#[test]
fn a_borrowed_constant_is_never_copied() {
    for s in schedulers() {
        let clones = counter();
        let c = || Counted {
            v: 5,
            clones: clones.clone(),
        };
        let (borrowed, taken) = (peek(c()), eat(c()));
        assert_eq!(borrowed.compute_with(&s).unwrap(), 5, "{s}");
        assert_eq!(get(&clones), 0, "{s}: a tree's borrowed constant");
        // Two outputs: planned.
        let both = rdask::compute_with(&[borrowed.clone(), peek(c())], &s).unwrap();
        assert_eq!(both, vec![5, 5], "{s}");
        assert_eq!(get(&clones), 0, "{s}: a plan's borrowed constant");
        assert_eq!(taken.compute_with(&s).unwrap(), 5, "{s}");
        assert_eq!(get(&clones), 1, "{s}: a constant taken by value");
    }
}
