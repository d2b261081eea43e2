//! Random raw graphs and the equivalent `#[delayed]` graphs give the same
//! results, on every scheduler.

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use rdask::graph::{key, lit};
use rdask::prelude::*;
use rdask::Graph;

#[derive(Clone, Debug)]
enum Spec {
    Leaf(i64),
    Inc(usize),
    Add(usize, usize),
    Sum(Vec<usize>),
}

fn inc(a: i64) -> i64 {
    a.wrapping_add(1)
}
fn add(a: i64, b: i64) -> i64 {
    a.wrapping_add(b)
}
fn sum(v: Vec<i64>) -> i64 {
    v.into_iter().fold(0, i64::wrapping_add)
}

#[delayed]
fn d_inc(a: i64) -> i64 {
    inc(a)
}
#[delayed]
fn d_add(a: i64, b: i64) -> i64 {
    add(a, b)
}
#[delayed]
fn d_sum(v: Vec<i64>) -> i64 {
    sum(v)
}

fn specs() -> impl Strategy<Value = Vec<Spec>> {
    (1usize..40).prop_flat_map(|n| {
        let nodes: Vec<BoxedStrategy<Spec>> = (0..n)
            .map(|i| {
                if i == 0 {
                    any::<i64>().prop_map(Spec::Leaf).boxed()
                } else {
                    prop_oneof![
                        any::<i64>().prop_map(Spec::Leaf),
                        (0..i).prop_map(Spec::Inc),
                        (0..i, 0..i).prop_map(|(a, b)| Spec::Add(a, b)),
                        proptest::collection::vec(0..i, 0..5).prop_map(Spec::Sum),
                    ]
                    .boxed()
                }
            })
            .collect();
        nodes
    })
}

fn sequential(specs: &[Spec]) -> Vec<i64> {
    let mut out: Vec<i64> = Vec::with_capacity(specs.len());
    for s in specs {
        let v = match s {
            Spec::Leaf(x) => *x,
            Spec::Inc(a) => inc(out[*a]),
            Spec::Add(a, b) => add(out[*a], out[*b]),
            Spec::Sum(xs) => sum(xs.iter().map(|&i| out[i]).collect()),
        };
        out.push(v);
    }
    out
}

fn raw(specs: &[Spec]) -> Graph {
    let mut g = Graph::new();
    for (i, s) in specs.iter().enumerate() {
        let k = format!("n{i}");
        let r = |j: &usize| key(format!("n{j}"));
        match s {
            Spec::Leaf(x) => g.insert_value(k, *x),
            Spec::Inc(a) => g.insert_task(k, inc, (r(a),)),
            Spec::Add(a, b) => g.insert_task(k, add, (r(a), r(b))),
            // Empty lists need their type spelled out.
            Spec::Sum(xs) if xs.is_empty() => g.insert_task(k, sum, (lit(Vec::<i64>::new()),)),
            Spec::Sum(xs) => g.insert_task(k, sum, (xs.iter().map(r).collect::<Vec<_>>(),)),
        };
    }
    g
}

fn delayed(specs: &[Spec]) -> Vec<Delayed<i64>> {
    let mut out: Vec<Delayed<i64>> = Vec::with_capacity(specs.len());
    for s in specs {
        let d = match s {
            Spec::Leaf(x) => rdask::value(*x),
            Spec::Inc(a) => d_inc(&out[*a]),
            Spec::Add(a, b) => d_add(&out[*a], &out[*b]),
            Spec::Sum(xs) => d_sum(xs.iter().map(|&i| out[i].clone()).collect::<Vec<_>>()),
        };
        out.push(d);
    }
    out
}

proptest! {
    // A failing case's seed is saved there and replayed first by later runs
    // (proptest's default looks for a `lib.rs` beside the test, which
    // `tests/` lacks).
    #![proptest_config(ProptestConfig {
        cases: 48,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/proptest-regressions/raw_vs_delayed.txt"
        )))),
        ..ProptestConfig::default()
    })]
    #[test]
    fn raw_and_delayed_agree(specs in specs()) {
        let expected = sequential(&specs);
        let g = raw(&specs);
        let keys: Vec<String> = (0..specs.len()).map(|i| format!("n{i}")).collect();
        let ds = delayed(&specs);
        for s in [Scheduler::Sync, Scheduler::threads(2)] {
            prop_assert_eq!(&rdask::get_many_with::<i64>(&g, &keys, &s).unwrap(), &expected);
            prop_assert_eq!(&rdask::compute_with(&ds, &s).unwrap(), &expected);
            // The Delayed face's graph, run through the raw face.
            let last = ds.last().unwrap();
            let v = rdask::get_with::<i64>(&last.graph(), last.key().clone(), &s).unwrap();
            prop_assert_eq!(v, *expected.last().unwrap());
        }
    }
}
