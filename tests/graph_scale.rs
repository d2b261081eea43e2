//! A 1,000,000-node raw graph: cull, run, cycle detection and drop are
//! iterative (no stack overflow). Timings are printed, not asserted (the
//! figures live in the notes; run with `--release -- --nocapture`).

use rdask::graph::key;
use rdask::{ErrorKind, Graph, Scheduler};
use std::time::Instant;

const N: usize = 1_000_000;

fn inc(x: u64) -> u64 {
    x + 1
}

fn chain(n: usize) -> Graph {
    let mut g = Graph::new();
    g.insert_value("x-0", 0_u64);
    for i in 1..n {
        g.insert_task(format!("x-{i}"), inc, (key(format!("x-{}", i - 1)),));
    }
    g
}

#[test]
fn million_node_chain_culls_runs_and_finds_cycles() {
    let t = Instant::now();
    let mut g = chain(N);
    g.insert_value("unrelated", 7_u64);
    let build = t.elapsed();

    let t = Instant::now();
    let culled = g.cull(&[format!("x-{}", N - 1)]);
    let cull = t.elapsed();
    assert_eq!(culled.len(), N);
    assert!(!culled.contains("unrelated"));

    let t = Instant::now();
    let v = rdask::get_with::<u64>(&culled, format!("x-{}", N - 1), &Scheduler::Sync).unwrap();
    let run = t.elapsed();
    assert_eq!(v, (N - 1) as u64);

    // Close the chain into a cycle: x-0 depends on the last link.
    g.insert_task("x-0", inc, (key(format!("x-{}", N - 1)),));
    let t = Instant::now();
    let e = rdask::get_with::<u64>(&g, "x-10", &Scheduler::Sync).unwrap_err();
    let cycle = t.elapsed();
    assert_eq!(e.kind(), ErrorKind::Cycle);
    assert!(e.key().is_some());

    let t = Instant::now();
    drop(g);
    drop(culled);
    let dropped = t.elapsed();
    eprintln!(
        "1M-node graph: build {build:?}, cull {cull:?}, run (sync) {run:?}, \
         cycle detection {cycle:?}, drop {dropped:?}"
    );
}

/// Cull and cycle detection at 100,000 and 1,000,000 nodes: both finish
/// with the right answer. Their cost per node is printed, not asserted
/// (the two figures match if both are linear; compare them by hand).
#[test]
fn cull_and_cycle_detection_at_two_sizes() {
    let mut per_node = Vec::new();
    for n in [N / 10, N] {
        let mut g = chain(n);
        let last = format!("x-{}", n - 1);
        let t = Instant::now();
        assert_eq!(g.cull(&[last.as_str()]).len(), n);
        let cull = t.elapsed();
        g.insert_task("x-0", inc, (key(last.as_str()),));
        let t = Instant::now();
        let e = rdask::get_with::<u64>(&g, last.as_str(), &Scheduler::Sync).unwrap_err();
        let cycle = t.elapsed();
        assert_eq!(e.kind(), ErrorKind::Cycle);
        per_node.push(format!(
            "n={n}: cull {:.0} ns/node, cycle detection {:.0} ns/node",
            cull.as_nanos() as f64 / n as f64,
            cycle.as_nanos() as f64 / n as f64
        ));
    }
    eprintln!("{}", per_node.join("; "));
}
