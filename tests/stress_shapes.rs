//! The benchmark shapes at small sizes, on every scheduler, with their
//! results checked: the engine's fast paths (unique nodes, batched
//! notifications, range-split starts) must never change an answer.

#[path = "common/shapes.rs"]
mod shapes;

// Two kinds of trees: handles borrowed into the calls (`pairwise` here: the
// graph is planned), and moved into them (`moved`: it runs as a tree).
use shapes::pairwise as moved;

use rdask::prelude::*;
use shapes::{add, inc, total};
use std::sync::Arc;

#[delayed]
fn load(i: u64) -> Vec<u8> {
    vec![(i % 251) as u8; 4096]
}

#[delayed]
fn clean(data: Vec<u8>) -> Vec<u8> {
    data.iter().map(|b| b.wrapping_add(1)).collect()
}

#[delayed]
fn score(data: &Vec<u8>) -> u64 {
    data.iter().step_by(512).map(|&b| u64::from(b)).sum()
}

fn pairwise(mut level: Vec<Delayed<u64>>) -> Delayed<u64> {
    while level.len() > 1 {
        let mut next = Vec::new();
        for pair in level.chunks(2) {
            match pair {
                [a, b] => next.push(add(a, b)),
                [a] => next.push(a.clone()),
                _ => unreachable!(),
            }
        }
        level = next;
    }
    level.pop().unwrap()
}

fn schedulers() -> Vec<Scheduler> {
    let own = Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap(),
    );
    vec![
        Scheduler::Sync,
        Scheduler::threads(1),
        Scheduler::threads(2),
        Scheduler::threads(4),
        Scheduler::threads(0),
        Scheduler::pool(own),
    ]
}

#[test]
fn shapes_agree_on_every_scheduler() {
    for s in schedulers() {
        for n in [1u64, 2, 31, 32, 33, 1000, 5000] {
            let flat = total((0..n).map(inc).collect::<Vec<_>>());
            assert_eq!(
                flat.compute_with(&s).unwrap(),
                n * (n + 1) / 2,
                "flat {n} on {s}"
            );

            let chain = (1..n).fold(inc(0), |x, _| inc(x));
            assert_eq!(chain.compute_with(&s).unwrap(), n, "chain {n} on {s}");

            let tree = pairwise((0..n).map(rdask::value).collect());
            assert_eq!(
                tree.compute_with(&s).unwrap(),
                n * (n - 1) / 2,
                "tree {n} on {s}"
            );
            let tree = moved((0..n).map(rdask::value).collect(), add);
            assert_eq!(
                tree.compute_with(&s).unwrap(),
                n * (n - 1) / 2,
                "moved tree {n} on {s}"
            );

            let outputs: Vec<_> = (0..n).map(inc).collect();
            let got = rdask::compute_with(&outputs, &s).unwrap();
            assert_eq!(got, (1..=n).collect::<Vec<_>>(), "outputs {n} on {s}");
        }
        let memory = pairwise((0..64).map(|i| score(clean(load(i)))).collect());
        let expect: u64 = (0..64u64).map(|i| 8 * ((i % 251 + 1) % 256)).sum();
        assert_eq!(memory.compute_with(&s).unwrap(), expect, "memory on {s}");
        let memory = moved((0..64).map(|i| score(clean(load(i)))).collect(), |a, b| {
            add(a, b)
        });
        assert_eq!(
            memory.compute_with(&s).unwrap(),
            expect,
            "moved memory on {s}"
        );
    }
}

#[test]
fn repeated_computes_of_shared_graphs_agree() {
    // The same nodes computed again and again, concurrently, from several
    // threads: plans borrow nodes, so they must not interfere.
    let base: Vec<_> = (0..200u64).map(inc).collect();
    let sum = total(&base[..]);
    let tree = pairwise(base.clone());
    std::thread::scope(|scope| {
        for s in schedulers() {
            let (sum, tree) = (sum.clone(), tree.clone());
            scope.spawn(move || {
                for _ in 0..20 {
                    assert_eq!(compute!(sum, tree).unwrap(), (20100, 20100), "{s}");
                }
            });
        }
    });
}
