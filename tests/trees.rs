//! Trees (every node the input of one other) run without a plan, with the
//! executor's rules: same values, a failure stops them and names its task,
//! a panic is an error, nested computes use the same scheduler, borrowed
//! inputs are dropped once used, shared constants are copied. Graphs that
//! share a node, and computations with callbacks, take the plan.

#[path = "common/shapes.rs"]
#[allow(dead_code)]
mod shapes;

use rdask::prelude::*;
use rdask::{Callback, ErrorKind, Key};
use shapes::{add, pairwise};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

#[delayed]
fn leaf(i: u64) -> u64 {
    i
}

#[delayed]
fn checked(i: u64, bad: u64) -> Result<u64, String> {
    match i == bad {
        true => Err(format!("leaf {i} is bad")),
        false => Ok(i),
    }
}

#[delayed]
fn explode(i: u64, bad: u64) -> u64 {
    assert!(i != bad, "leaf {i} exploded");
    i
}

/// A pairwise sum of `leaves`, moved into the calls.
fn sum(leaves: Vec<Delayed<u64>>) -> Delayed<u64> {
    pairwise(leaves, add)
}

static SHARED_RUNS: AtomicUsize = AtomicUsize::new(0);

#[delayed]
fn counted(i: u64) -> u64 {
    SHARED_RUNS.fetch_add(1, Ordering::SeqCst);
    i
}

static STARTED: AtomicUsize = AtomicUsize::new(0);

#[delayed]
fn step(x: u64) -> u64 {
    STARTED.fetch_add(1, Ordering::SeqCst);
    x + 1
}

fn schedulers() -> Vec<Scheduler> {
    vec![
        Scheduler::Sync,
        Scheduler::threads(2),
        Scheduler::threads(4),
    ]
}

/// Runs `f` and tells whether it ran a computation through a plan.
fn planned<R>(f: impl FnOnce() -> R) -> (R, bool) {
    let before = rdask::__private::planned();
    let r = f();
    (r, rdask::__private::planned() > before)
}

#[test]
fn trees_run_without_a_plan_and_shared_graphs_with_one() {
    for s in schedulers() {
        let tree = sum((0..5000).map(leaf).collect());
        let (sum, with_plan) = planned(|| tree.compute_with(&s).unwrap());
        assert_eq!((sum, with_plan), (5000 * 4999 / 2, false), "{s}");

        // A chain, and a list of calls, are trees too.
        let chain = (0..3000).fold(leaf(1), |x, _| add(x, leaf(1)));
        assert_eq!(planned(|| chain.compute_with(&s).unwrap()), (3001, false));

        // An input used twice, or also held outside, makes a graph that
        // needs the plan (the shared task runs once).
        let before = SHARED_RUNS.load(Ordering::SeqCst);
        let shared = counted(2);
        let twice = add(shared.clone(), shared);
        assert_eq!(planned(|| twice.compute_with(&s).unwrap()), (4, true));
        assert_eq!(SHARED_RUNS.load(Ordering::SeqCst), before + 1);
        let kept = leaf(3);
        let uses_kept = add(kept.clone(), leaf(4));
        assert_eq!(planned(|| uses_kept.compute_with(&s).unwrap()), (7, true));
        drop(kept);
        // ... for good: the node was built while its input was shared.
        assert_eq!(planned(|| uses_kept.compute_with(&s).unwrap()), (7, true));
    }
}

#[test]
fn a_tree_gives_the_values_the_plan_gives() {
    /// Counts tasks started, which forces the plan.
    struct Count(AtomicUsize);
    impl Callback for Count {
        fn pretask(&self, _key: &Key, _worker: usize) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
    for n in [1, 2, 3, 1000, 4097, 20_000] {
        let expect = n * (n - 1) / 2;
        for s in schedulers() {
            let g = sum((0..n).map(leaf).collect());
            let (tree, with_plan) = planned(|| g.compute_with(&s).unwrap());
            assert_eq!((tree, with_plan), (expect, false), "n={n} on {s}");
            let count = Arc::new(Count(AtomicUsize::new(0)));
            let (plan, with_plan) = planned(|| {
                rdask::Compute::new(std::slice::from_ref(&g))
                    .scheduler(s.clone())
                    .callback(count.clone())
                    .run()
                    .unwrap()
            });
            assert_eq!((plan, with_plan), (vec![expect], true));
            assert_eq!(count.0.load(Ordering::Relaxed) as u64, 2 * n - 1);
        }
    }
}

#[test]
fn a_failure_in_a_big_tree_stops_it_and_names_its_task() {
    let n = 20_000;
    for s in schedulers() {
        let bad = n / 3;
        let leaves: Vec<_> = (0..n).map(|i| checked(i, bad)).collect();
        let bad_key = leaves[bad as usize].key().clone();
        let e = sum(leaves).compute_with(&s).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Task, "{s}: {e}");
        assert_eq!(e.key(), Some(&bad_key));
        assert!(e.to_string().contains("leaf 6666 is bad"), "{e}");

        let leaves: Vec<_> = (0..n).map(|i| explode(i, bad)).collect();
        let bad_key = leaves[bad as usize].key().clone();
        let e = sum(leaves).compute_with(&s).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Panic, "{s}: {e}");
        assert_eq!(e.key(), Some(&bad_key));
    }
}

/// Set by `fail_now` just before it fails.
static FAILED: AtomicBool = AtomicBool::new(false);

#[delayed]
fn fail_now(i: u64) -> Result<u64, String> {
    FAILED.store(true, Ordering::SeqCst);
    Err(format!("leaf {i} is bad"))
}

static BRANCH_STARTED: AtomicUsize = AtomicUsize::new(0);

/// A step of a branch independent of the failure, which starts only once
/// the failing leaf has run and takes 1 ms.
#[delayed]
fn gated_step(x: u64) -> u64 {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !FAILED.load(Ordering::SeqCst) {
        assert!(
            std::time::Instant::now() < deadline,
            "the failing leaf never ran"
        );
        std::thread::yield_now();
    }
    BRANCH_STARTED.fetch_add(1, Ordering::SeqCst);
    std::thread::sleep(std::time::Duration::from_millis(1));
    x + 1
}

#[test]
fn nothing_starts_after_a_failure_in_a_tree() {
    // A chain whose first task fails, so none of the 999 after it can run;
    // and beside it a branch that does not depend on the failure, whose
    // steps wait for it: after the failure, no more of them start.
    let steps = 200;
    for s in schedulers() {
        FAILED.store(false, Ordering::SeqCst);
        BRANCH_STARTED.store(0, Ordering::SeqCst);
        let chain = (0..999).fold(fail_now(0), |x, _| step(x));
        let branch = (0..steps).fold(leaf(0), |x, _| gated_step(x));
        let tree = add(chain, branch);
        let (e, with_plan) = planned(|| tree.compute_with(&s).unwrap_err());
        assert!(!with_plan, "{s}");
        assert!(e.to_string().contains("leaf 0 is bad"), "{e}");
        assert_eq!(STARTED.load(Ordering::SeqCst), 0, "{s}");
        // A step already past its gate when the failure is recorded may
        // finish; the rest must not start (all of them would take 200 ms).
        let ran = BRANCH_STARTED.load(Ordering::SeqCst);
        assert!(
            ran < steps / 2,
            "{s}: {ran} of {steps} independent steps started after the failure"
        );
    }
}

#[test]
fn a_task_of_a_tree_computes_nested_graphs_on_the_same_scheduler() {
    #[delayed]
    fn nested(i: u64) -> String {
        let inner = rdask::value(i) + 1;
        let here = rdask::current_scheduler().expect("a scheduler");
        format!("{here} {}", inner.compute().expect("the nested graph"))
    }
    #[delayed]
    fn both(a: String, b: String) -> String {
        format!("{a}; {b}")
    }
    for s in [Scheduler::Sync, Scheduler::threads(2)] {
        let g = both(nested(1), nested(2));
        let want = format!("{s} 2; {s} 3");
        assert_eq!(planned(|| g.compute_with(&s).unwrap()).0, want);
    }
}

/// A value that counts its drops.
struct Tracked(Arc<AtomicUsize>, u64);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn borrowed_inputs_of_a_tree_are_dropped_once_used_and_owned_ones_move() {
    #[delayed]
    fn make(drops: Arc<AtomicUsize>, i: u64) -> Tracked {
        Tracked(drops, i)
    }
    #[delayed]
    fn peek(t: &Tracked) -> u64 {
        t.1
    }
    // `Tracked` is not `Clone`: a tree moves it, never copies it.
    #[delayed]
    fn pair(a: Tracked, b: Tracked) -> Tracked {
        Tracked(a.0.clone(), a.1 + b.1)
    }
    let n = 5000;
    for s in schedulers() {
        let drops = Arc::new(AtomicUsize::new(0));
        let peeks: Vec<_> = (0..n).map(|i| peek(make(drops.clone(), i))).collect();
        let (sum, with_plan) = planned(|| sum(peeks).compute_with(&s).unwrap());
        assert_eq!((sum, with_plan), (n * (n - 1) / 2, false));
        assert_eq!(
            drops.load(Ordering::SeqCst),
            n as usize,
            "each dropped once, {s}"
        );

        let drops = Arc::new(AtomicUsize::new(0));
        let top = pairwise((0..64).map(|i| make(drops.clone(), i)).collect(), pair);
        let (t, with_plan) = planned(|| top.compute_with(&s).unwrap());
        assert_eq!((t.1, with_plan), (64 * 63 / 2, false));
        // The 63 pairs' inputs are dropped: 126 values.
        assert_eq!(drops.load(Ordering::SeqCst), 126);
    }
}

#[test]
fn constants_of_a_tree_are_copied_for_whoever_takes_them() {
    #[delayed]
    fn grow(mut v: Vec<u64>) -> Vec<u64> {
        v.push(v.len() as u64);
        v
    }
    for s in schedulers() {
        let base = rdask::value(vec![7_u64]);
        // The output of a constant, and a constant taken by value: copies,
        // the node keeps its own.
        assert_eq!(base.compute_with(&s).unwrap(), vec![7]);
        let g = grow(grow(base));
        assert_eq!(
            planned(|| g.compute_with(&s).unwrap()),
            (vec![7, 1, 2], false)
        );
        assert_eq!(g.compute_with(&s).unwrap(), vec![7, 1, 2]);
    }
}

/// Leaves that only finish once another one has started: run one after the
/// other, the first would give up (after 10 s) instead.
static ARRIVED: AtomicUsize = AtomicUsize::new(0);

#[delayed]
fn meet(round: usize) -> bool {
    ARRIVED.fetch_add(1, Ordering::SeqCst);
    let start = std::time::Instant::now();
    while ARRIVED.load(Ordering::SeqCst) < 2 * round {
        if start.elapsed() > std::time::Duration::from_secs(10) {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    true
}

#[delayed]
fn both(a: bool, b: bool) -> bool {
    a && b
}

#[delayed]
fn all(xs: Vec<bool>) -> bool {
    xs.into_iter().all(|x| x)
}

#[test]
fn a_tree_of_a_few_big_tasks_runs_them_in_parallel() {
    let s = Scheduler::threads(2);
    // Each round needs its two leaves at once: two inputs of one node, and
    // two items of one list.
    let pair = both(meet(1), meet(1));
    assert_eq!(planned(|| pair.compute_with(&s).unwrap()), (true, false));
    let list = all(vec![meet(2), meet(2)]);
    assert_eq!(planned(|| list.compute_with(&s).unwrap()), (true, false));
}

/// A value whose drop panics.
struct Bomb;

impl Drop for Bomb {
    fn drop(&mut self) {
        panic!("a value that panics when dropped");
    }
}

#[delayed]
fn bomb() -> Bomb {
    Bomb
}

#[delayed]
fn defuse(_b: Bomb, x: u64) -> u64 {
    std::mem::forget(_b);
    x
}

#[test]
fn a_value_left_by_a_failure_is_dropped_without_the_panic_escaping() {
    for s in schedulers() {
        // The bomb is made, then its sibling fails: the bomb is dropped with
        // the failed computation, and its panic stays inside `compute`.
        let g = defuse(bomb(), checked(1, 1));
        let (e, with_plan) = planned(|| g.compute_with(&s).unwrap_err());
        assert!(!with_plan);
        assert!(e.to_string().contains("leaf 1 is bad"), "{s}: {e}");
        // And when nothing fails, the consumer takes it.
        let g = defuse(bomb(), leaf(2));
        assert_eq!(g.compute_with(&s).unwrap(), 2);
    }
}

static LINKS_RUN: AtomicUsize = AtomicUsize::new(0);

#[delayed]
fn link(x: u64, bad: u64) -> Result<u64, String> {
    LINKS_RUN.fetch_add(1, Ordering::SeqCst);
    match x == bad {
        true => Err(format!("link at {x} is bad")),
        false => Ok(x + 1),
    }
}

#[delayed]
fn link_panics_at(x: u64, bad: u64) -> u64 {
    assert_ne!(x, bad, "link at {x} exploded");
    x + 1
}

/// A chain of `n` links made by `step` on `leaf(0)`, and each link's key.
fn chain_of(n: usize, step: &dyn Fn(Delayed<u64>) -> Delayed<u64>) -> (Delayed<u64>, Vec<Key>) {
    let mut keys = Vec::new();
    let mut x = leaf(0);
    for _ in 0..n {
        x = step(x);
        keys.push(x.key().clone());
    }
    (x, keys)
}

/// A chain's links run one after another on the value (the tree walk's
/// chain path, under one unwind guard between them): a link that fails or
/// panics midway is the error, with its own key, and no link after it
/// runs; so for links with a constant beside their input (`link`) and
/// lone-input ones (`bump`), alone and below a node of two inputs (whose
/// other input's chain is not blamed). Closures between `#[delayed]` links
/// take the general path and give the same value.
#[test]
fn a_failure_midway_along_a_chain_names_its_link_and_stops_it() {
    type Step<'a> = &'a dyn Fn(Delayed<u64>) -> Delayed<u64>;
    for s in schedulers() {
        let failing: [(Step, &AtomicUsize, &str); 2] = [
            (&|x| link(x, 500), &LINKS_RUN, "link at 500 is bad"),
            (&bump, &ONE_ARG_LINKS_RUN, "bump at 500 is bad"),
        ];
        for (step, runs, message) in failing {
            runs.store(0, Ordering::SeqCst);
            let (x, keys) = chain_of(1000, step);
            let (e, with_plan) = planned(|| x.compute_with(&s).unwrap_err());
            assert!(!with_plan, "{s}");
            assert_eq!(e.kind(), ErrorKind::Task, "{s}");
            assert_eq!(e.key(), Some(&keys[500]), "{s}: {e}");
            assert!(e.to_string().contains(message), "{e}");
            assert_eq!(runs.load(Ordering::SeqCst), 501, "{s}");
        }

        let panicking: [(Step, &str); 2] = [
            (&|x| link_panics_at(x, 700), "link at 700 exploded"),
            (&bump_or_panic, "bump at 700 exploded"),
        ];
        for (step, message) in panicking {
            let (alone, keys) = chain_of(1000, step);
            let (below, below_keys) = chain_of(1000, step);
            let fine = (0..10).fold(leaf(1), |x, _| step(x));
            for (g, keys) in [(alone, keys), (add(fine, below), below_keys)] {
                let e = g.compute_with(&s).unwrap_err();
                assert_eq!(e.kind(), ErrorKind::Panic, "{s}");
                assert_eq!(e.key(), Some(&keys[700]), "{s}: {e}");
                assert!(e.to_string().contains(message), "{e}");
            }
        }

        let mixed = (0..1000).fold(leaf(0), |x, i| match i % 3 {
            0 => x.map(|v| v + 1),
            _ => link(x, u64::MAX),
        });
        assert_eq!(mixed.compute_with(&s).unwrap(), 1000, "{s}");
    }
}

#[delayed]
fn twice(x: u64) -> u64 {
    2 * x
}

#[delayed]
fn plus_one(x: u64) -> u64 {
    x + 1
}

/// A link whose input comes after a constant.
#[delayed]
fn offset(k: u64, x: u64) -> u64 {
    x + k
}

/// A tree of depth `depth` whose every input is a chain of links
/// (`plus_one`, `twice`, and `offset`, whose input follows a constant) of
/// a length set by `seed`, and whose leaves are chains too; with the value
/// it must give, reckoned here.
fn chained_tree(depth: u32, seed: u64) -> (Delayed<u64>, u64) {
    let links = |(mut d, mut v): (Delayed<u64>, u64), n: u64| {
        for i in 0..n {
            (d, v) = match (seed + i) % 4 {
                0 => (twice(d), 2 * v),
                1 => (offset(seed, d), v + seed),
                _ => (plus_one(d), v + 1),
            };
        }
        (d, v)
    };
    let (d, v) = match depth {
        0 => (leaf(seed), seed),
        _ => {
            let (a, x) = chained_tree(depth - 1, seed * 3 + 1);
            let (b, y) = chained_tree(depth - 1, seed * 3 + 2);
            (add(a, b), x + y)
        }
    };
    links((d, v), seed % 5)
}

/// The walk keeps a chain's links waiting while the node below them fills
/// its inputs, which are chains again: each link runs once, after its
/// input, on that input's value, at every depth and on every scheduler.
#[test]
fn chains_nested_in_a_tree_run_each_link_on_its_own_input() {
    for s in schedulers() {
        for (depth, seed) in [(0, 4), (1, 3), (3, 7), (6, 2)] {
            let (tree, expect) = chained_tree(depth, seed);
            let (got, with_plan) = planned(|| tree.compute_with(&s).unwrap());
            assert_eq!((got, with_plan), (expect, false), "depth {depth} on {s}");
        }
    }
}

static ONE_ARG_LINKS_RUN: AtomicUsize = AtomicUsize::new(0);

/// A one-argument link (the walk's chain path) that fails at 500.
#[delayed]
fn bump(x: u64) -> Result<u64, String> {
    ONE_ARG_LINKS_RUN.fetch_add(1, Ordering::SeqCst);
    match x == 500 {
        true => Err(format!("bump at {x} is bad")),
        false => Ok(x + 1),
    }
}

/// A one-argument link that panics at 700.
#[delayed]
fn bump_or_panic(x: u64) -> u64 {
    assert_ne!(x, 700, "bump at {x} exploded");
    x + 1
}

#[delayed]
fn whereami(_i: u64) -> Vec<std::thread::ThreadId> {
    std::thread::sleep(std::time::Duration::from_millis(5));
    vec![std::thread::current().id()]
}

#[delayed]
fn joined(
    a: Vec<std::thread::ThreadId>,
    b: Vec<std::thread::ThreadId>,
) -> Vec<std::thread::ThreadId> {
    let mut a = a;
    a.extend(b);
    a.push(std::thread::current().id());
    a
}

/// Sync runs a tree on the caller's thread alone: its inputs are never
/// forked onto rayon's global pool (whose size the walk must not take as
/// its own when it is not on a pool).
#[test]
fn sync_runs_every_task_of_a_tree_on_the_callers_thread() {
    let caller = std::thread::current().id();
    let g = joined(
        joined(whereami(0), whereami(1)),
        joined(whereami(2), whereami(3)),
    );
    let (seen, with_plan) = planned(|| g.compute_with(&Scheduler::Sync).unwrap());
    assert!(!with_plan, "a tree");
    assert!(
        seen.len() == 7 && seen.iter().all(|t| *t == caller),
        "{seen:?}"
    );
}
