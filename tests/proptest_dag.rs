//! Random DAGs of `#[delayed]` calls (random fan-in, shared nodes, fallible
//! nodes, by-value and borrowed inputs, repeated inputs, closure tasks)
//! computed on Sync, threads(2) and processes(2) must agree with a plain
//! sequential evaluation, errors included. On processes the `#[delayed]`
//! nodes run in workers and the closures in the parent.

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::FileFailurePersistence;
use rdask::prelude::*;
use rdask::ErrorKind;
use std::cell::Cell;
use std::fmt;
use std::sync::Mutex;

/// The error of a fallible node: which node failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct NodeFailed(usize);

impl fmt::Display for NodeFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "node {} failed", self.0)
    }
}

impl std::error::Error for NodeFailed {}

/// The modulus that makes a fallible node fail: when its mixed input is
/// divisible by it (about one fallible node in `FAIL_MOD`).
const FAIL_MOD: i64 = 5;

fn mix(acc: i64, x: i64) -> i64 {
    acc.wrapping_mul(31).wrapping_add(x) ^ (x >> 7)
}

fn mix_all(salt: i64, xs: &[i64]) -> i64 {
    xs.iter().fold(salt, |acc, &x| mix(acc, x))
}

fn check(id: usize, v: i64) -> Result<i64, NodeFailed> {
    if v.rem_euclid(FAIL_MOD) == 0 {
        Err(NodeFailed(id))
    } else {
        Ok(v)
    }
}

// One function per shape of input, so that every argument form is used.

#[delayed]
fn leaf(salt: i64) -> i64 {
    mix(salt, 1)
}

#[delayed]
fn one(a: i64, salt: i64) -> i64 {
    mix_all(salt, &[a])
}

#[delayed]
fn one_ref(a: &i64, salt: i64) -> i64 {
    mix_all(salt, &[*a])
}

#[delayed]
fn two(a: i64, b: &i64, salt: i64) -> i64 {
    mix_all(salt, &[a, *b])
}

#[delayed]
fn many(xs: Vec<i64>, salt: i64) -> i64 {
    mix_all(salt, &xs)
}

#[delayed]
fn many_ref(xs: &[i64], salt: i64) -> i64 {
    mix_all(salt, xs)
}

#[delayed]
fn fallible(xs: Vec<i64>, salt: i64, id: usize) -> Result<i64, NodeFailed> {
    check(id, mix_all(salt, &xs))
}

#[delayed]
fn fallible_leaf(salt: i64, id: usize) -> Result<i64, NodeFailed> {
    check(id, mix(salt, 1))
}

/// One node of a random DAG.
#[derive(Debug, Clone)]
struct Spec {
    inputs: Vec<usize>,
    salt: i64,
    fallible: bool,
    /// Picks the function (argument form) for fan-in 1 and 2+.
    form: u8,
}

#[derive(Debug, Clone)]
struct Dag {
    nodes: Vec<Spec>,
    outputs: Vec<usize>,
}

fn dag() -> impl Strategy<Value = Dag> {
    let node = (
        0usize..=4,
        prop::collection::vec(any::<Index>(), 4),
        any::<i64>(),
        prop::bool::weighted(0.3),
        any::<u8>(),
    );
    (
        prop::collection::vec(node, 1..=60),
        prop::collection::vec(any::<Index>(), 1..=4),
    )
        .prop_map(|(raw, outs)| {
            let nodes: Vec<Spec> = raw
                .into_iter()
                .enumerate()
                .map(|(i, (fan_in, picks, salt, fallible, form))| Spec {
                    // Node i may only use earlier nodes: a DAG by construction.
                    inputs: if i == 0 {
                        Vec::new()
                    } else {
                        picks[..fan_in].iter().map(|p| p.index(i)).collect()
                    },
                    salt,
                    fallible,
                    form,
                })
                .collect();
            let n = nodes.len();
            let mut outputs: Vec<usize> = outs.iter().map(|p| p.index(n)).collect();
            outputs.push(n - 1);
            Dag { nodes, outputs }
        })
}

/// Builds the DAG with `#[delayed]` calls: one `Delayed` per node.
fn build(dag: &Dag) -> Vec<Delayed<i64>> {
    let mut ds: Vec<Delayed<i64>> = Vec::with_capacity(dag.nodes.len());
    for (id, spec) in dag.nodes.iter().enumerate() {
        let ins: Vec<Delayed<i64>> = spec.inputs.iter().map(|&j| ds[j].clone()).collect();
        let d = match (spec.fallible, ins.len(), spec.form % 2) {
            (true, 0, _) => fallible_leaf(spec.salt, id),
            (true, _, 0) => fallible(ins, spec.salt, id),
            (true, _, _) => fallible(&ins[..], spec.salt, id),
            (false, 0, _) => leaf(spec.salt),
            // A closure task: on processes it runs in the parent, between
            // tasks that run in workers.
            (false, 1, _) if spec.form % 4 == 3 => {
                let salt = spec.salt;
                ins[0].map(move |a: i64| mix_all(salt, &[a]))
            }
            (false, 1, 0) => one(&ins[0], spec.salt),
            (false, 1, _) => one_ref(&ins[0], spec.salt),
            (false, 2, 0) => two(&ins[0], &ins[1], spec.salt),
            (false, _, 0) => many(ins, spec.salt),
            (false, _, _) => many_ref(&ins, spec.salt),
        };
        ds.push(d);
    }
    ds
}

/// The plain sequential evaluation: every node in order, over a Vec. A node
/// whose input failed is `None` (it never runs); a node that runs and fails
/// is recorded in `failed`.
struct Expected {
    values: Vec<Option<i64>>,
    /// Nodes that ran and failed, among those the outputs need.
    failed: Vec<usize>,
}

fn evaluate(dag: &Dag) -> Expected {
    let n = dag.nodes.len();
    // Which nodes the outputs need.
    let mut needed = vec![false; n];
    let mut stack = dag.outputs.clone();
    while let Some(i) = stack.pop() {
        if !needed[i] {
            needed[i] = true;
            stack.extend(&dag.nodes[i].inputs);
        }
    }
    let mut values: Vec<Option<i64>> = Vec::with_capacity(n);
    let mut failed = Vec::new();
    for (id, spec) in dag.nodes.iter().enumerate() {
        let ins: Option<Vec<i64>> = spec.inputs.iter().map(|&j| values[j]).collect();
        let v = ins.and_then(|ins| {
            let v = if ins.is_empty() {
                mix(spec.salt, 1)
            } else {
                mix_all(spec.salt, &ins)
            };
            if spec.fallible && check(id, v).is_err() {
                if needed[id] {
                    failed.push(id);
                }
                None
            } else {
                Some(v)
            }
        });
        values.push(v);
    }
    Expected { values, failed }
}

/// Serialises the processes legs, so that the `task_counts()` difference
/// around one is its own: the counts are process-wide, and this binary's
/// tests run in parallel.
static PROCESSES: Mutex<()> = Mutex::new(());

thread_local! {
    /// Tasks that ran in workers and in the parent during this thread's
    /// processes legs.
    static MIXED: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

fn run_case(dag: &Dag) -> Result<(), TestCaseError> {
    let expected = evaluate(dag);
    let ds = build(dag);
    let outputs: Vec<Delayed<i64>> = dag.outputs.iter().map(|&i| ds[i].clone()).collect();
    for s in [
        Scheduler::Sync,
        Scheduler::threads(2),
        Scheduler::processes(2),
    ] {
        let got = match s {
            Scheduler::Processes(_) => {
                let _alone = PROCESSES.lock().unwrap_or_else(|e| e.into_inner());
                let (remote, local) = rdask::process::task_counts();
                let got = rdask::compute_with(&outputs, &s);
                let (r, l) = rdask::process::task_counts();
                MIXED.with(|m| {
                    let (r0, l0) = m.get();
                    m.set((r0 + r - remote, l0 + l - local));
                });
                got
            }
            _ => rdask::compute_with(&outputs, &s),
        };
        match (&got, expected.failed.as_slice()) {
            (Ok(vals), []) => {
                let want: Vec<i64> = dag
                    .outputs
                    .iter()
                    .map(|&i| expected.values[i].expect("no failure, so every value"))
                    .collect();
                prop_assert_eq!(vals, &want, "{} disagrees with the plain evaluation", s);
            }
            (Ok(_), failed) => {
                prop_assert!(false, "{}: succeeded, but nodes {:?} fail", s, failed);
            }
            (Err(e), []) => {
                prop_assert!(false, "{}: failed ({}) but no node fails", s, e);
            }
            (Err(e), failed) => {
                prop_assert_eq!(e.kind(), ErrorKind::Task, "{}: {}", s, e);
                let Some(id) = ds.iter().position(|d| Some(d.key()) == e.key()) else {
                    return Err(TestCaseError::fail(format!("{s}: no node's key in {e:?}")));
                };
                // The cause itself on threads; its message from a worker.
                let cause = std::error::Error::source(e)
                    .and_then(|c| c.downcast_ref::<NodeFailed>())
                    .copied();
                if !matches!(s, Scheduler::Processes(_)) {
                    prop_assert_eq!(cause, Some(NodeFailed(id)), "{}: {:?}", s, e);
                }
                let message = NodeFailed(id).to_string();
                prop_assert!(e.to_string().contains(&message), "{}: {}", s, e);
                prop_assert!(
                    failed.contains(&id),
                    "{}: node {} is not one that fails",
                    s,
                    id
                );
                prop_assert_eq!(e.key(), Some(ds[id].key()), "{}: key of another node", s);
                if let [only] = failed {
                    prop_assert_eq!(id, *only);
                }
            }
        }
    }
    Ok(())
}

/// `cases` cases, a failing one's seed saved in `file` under
/// `tests/proptest-regressions/` and replayed first by later runs (proptest's
/// default looks for a `lib.rs` beside the test, which `tests/` lacks).
fn config(cases: u32, file: &'static str) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(file))),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(
        64,
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/proptest-regressions/proptest_dag.txt"),
    ))]

    #[test]
    fn random_dags_agree_with_sequential_evaluation(dag in dag()) {
        run_case(&dag)?;
    }
}

/// The same, with no fallible node: values must always come back.
#[test]
fn random_dags_without_failures() {
    MIXED.with(|m| m.set((0, 0)));
    let mut runner = proptest::test_runner::TestRunner::new(config(
        32,
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/proptest-regressions/proptest_dag_without_failures.txt"
        ),
    ));
    let strategy = dag().prop_map(|mut d| {
        for n in &mut d.nodes {
            n.fallible = false;
        }
        d
    });
    runner
        .run(&strategy, |dag| {
            let want = evaluate(&dag);
            prop_assert!(want.failed.is_empty());
            run_case(&dag)
        })
        .unwrap();
    // This test's processes legs really mixed the two kinds of task.
    let (remote, local) = MIXED.with(Cell::get);
    assert!(remote > 0 && local > 0, "remote {remote}, local {local}");
}

/// Keep going (`run_each`): each output's own result. An output whose
/// inputs all succeed has its value; any other fails with the error of a
/// node it depends on (or is) that ran and failed.
fn run_each_case(dag: &Dag) -> Result<(), TestCaseError> {
    let expected = evaluate(dag);
    // Per node: the failed nodes (that ran and failed) it is or depends on.
    let mut ran_and_failed = vec![false; dag.nodes.len()];
    for (id, spec) in dag.nodes.iter().enumerate() {
        let inputs_ok = spec.inputs.iter().all(|&j| expected.values[j].is_some());
        ran_and_failed[id] = inputs_ok && expected.values[id].is_none();
    }
    let mut causes: Vec<Vec<usize>> = Vec::with_capacity(dag.nodes.len());
    for (id, spec) in dag.nodes.iter().enumerate() {
        let mut c: Vec<usize> = spec
            .inputs
            .iter()
            .flat_map(|&j| causes[j].clone())
            .collect();
        if ran_and_failed[id] {
            c.push(id);
        }
        c.sort_unstable();
        c.dedup();
        causes.push(c);
    }
    let ds = build(dag);
    let outputs: Vec<Delayed<i64>> = dag.outputs.iter().map(|&i| ds[i].clone()).collect();
    for s in [
        Scheduler::Sync,
        Scheduler::threads(2),
        Scheduler::processes(2),
    ] {
        let each = rdask::Compute::new(&outputs)
            .scheduler(s.clone())
            .run_each();
        prop_assert_eq!(each.len(), outputs.len());
        for (&i, got) in dag.outputs.iter().zip(&each) {
            match (got, expected.values[i]) {
                (Ok(v), Some(want)) => prop_assert_eq!(*v, want, "{}: node {}", s, i),
                (Err(e), None) => {
                    prop_assert_eq!(e.kind(), ErrorKind::Task, "{}: {}", s, e);
                    let Some(id) = ds.iter().position(|d| Some(d.key()) == e.key()) else {
                        return Err(TestCaseError::fail(format!("{s}: no node's key in {e:?}")));
                    };
                    prop_assert!(
                        causes[i].contains(&id),
                        "{}: output {} failed with node {}, not one of {:?}",
                        s,
                        i,
                        id,
                        causes[i]
                    );
                }
                (got, want) => {
                    prop_assert!(false, "{}: output {}: got {:?}, want {:?}", s, i, got, want)
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(
        48,
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/proptest-regressions/proptest_dag_each.txt"),
    ))]

    #[test]
    fn run_each_fails_only_what_depends_on_a_failure(dag in dag()) {
        run_each_case(&dag)?;
    }
}
