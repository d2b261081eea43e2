//! `cargo bench`: the bench CLI's shapes at small sizes, each next to a
//! rayon baseline of the same shape on the same 2-thread pool, reported as
//! medians and as our time / rayon's time (rounds interleaved, so the
//! ratios compare like with like on a noisy machine).
//!
//! A plain harness rather than criterion: the figure we need is the ratio
//! between two benchmarks of one run, which criterion does not report, and
//! it compiles in seconds on a 2-core machine.
//!
//! ```text
//! cargo bench --bench shapes            # all shapes
//! cargo bench --bench shapes -- tree    # shapes whose name contains "tree"
//! ```

use rayon::prelude::*;
use rdask::prelude::*;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[delayed]
fn inc(x: u64) -> u64 {
    x + 1
}

#[delayed]
fn total(xs: Vec<u64>) -> u64 {
    xs.iter().sum()
}

#[delayed]
fn leaf(i: u64) -> u64 {
    i
}

#[delayed]
fn add(a: u64, b: u64) -> u64 {
    a.wrapping_add(b)
}

fn spin(i: u64, rounds: u64) -> u64 {
    let mut x = i;
    for _ in 0..rounds {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407)
            .wrapping_add(i);
    }
    x
}

#[delayed]
fn burn(i: u64) -> u64 {
    spin(std::hint::black_box(i), 200_000)
}

#[delayed]
fn wsum(xs: Vec<u64>) -> u64 {
    xs.iter().fold(0, |a, b| a.wrapping_add(*b))
}

fn pairwise(mut level: Vec<Delayed<u64>>) -> Delayed<u64> {
    while level.len() > 1 {
        let mut next = Vec::with_capacity(level.len() / 2 + 1);
        // The handles move into the calls (borrowing them would add two
        // reference-count updates per call, and two more when `level` drops).
        let mut items = level.into_iter();
        while let Some(a) = items.next() {
            next.push(match items.next() {
                Some(b) => add(a, b),
                None => a,
            });
        }
        level = next;
    }
    level.pop().expect("at least one value")
}

fn rayon_tree(lo: u64, hi: u64) -> u64 {
    if hi - lo == 1 {
        return std::hint::black_box(lo);
    }
    let mid = lo + (hi - lo).div_ceil(2);
    let (a, b) = rayon::join(|| rayon_tree(lo, mid), || rayon_tree(mid, hi));
    a.wrapping_add(b)
}

/// One timing of `f`, checking its result.
fn time(expect: u64, f: &mut impl FnMut() -> u64) -> Duration {
    let t = Instant::now();
    let r = f();
    let d = t.elapsed();
    assert_eq!(r, expect);
    d
}

fn median_of<T: PartialOrd + Copy>(mut xs: Vec<T>) -> T {
    xs.sort_by(|a, b| a.partial_cmp(b).expect("comparable"));
    xs[xs.len() / 2]
}

/// `runs` rounds (after one warm-up of each part), interleaved so that a
/// slow stretch of the machine hits every part alike: `graph` built,
/// computed on Sync and on `threads`, and dropped; `graph`'s compute alone
/// on `threads`; and `rayon`, right after that compute (its pool awake:
/// rdask's drop now runs on it too) and again from an idle pool. The
/// medians of each, and of the rounds' ratios to the awake rayon (the
/// idle one costs up to 2x more on this machine, which is most of how the
/// baseline varied between runs of earlier versions of this bench).
#[allow(clippy::too_many_arguments)]
fn row(
    shape: &'static str,
    n: u64,
    tasks: u64,
    runs: usize,
    expect: u64,
    graph: impl Fn() -> Delayed<u64>,
    threads: &Scheduler,
    mut rayon: impl FnMut() -> u64,
) -> Row {
    let mut sync = || graph().compute_with(&Scheduler::Sync).unwrap();
    let mut whole = || graph().compute_with(threads).unwrap();
    let compute = || {
        let g = graph();
        let t = Instant::now();
        assert_eq!(g.compute_with(threads).unwrap(), expect);
        let d = t.elapsed();
        drop(g);
        d
    };
    for f in [&mut sync as &mut dyn FnMut() -> u64, &mut whole, &mut rayon] {
        assert_eq!(f(), expect, "warm-up result");
    }
    compute();
    let rounds: Vec<[Duration; 5]> = (0..runs)
        .map(|_| {
            [
                time(expect, &mut sync),
                time(expect, &mut whole),
                compute(),
                time(expect, &mut rayon),
                {
                    // The same from a pool gone idle (its threads asleep):
                    // what a program pays that calls it now and then.
                    std::thread::sleep(Duration::from_millis(5));
                    time(expect, &mut rayon)
                },
            ]
        })
        .collect();
    let median = |i: usize| median_of(rounds.iter().map(|r| r[i]).collect());
    let ratio = |i: usize| {
        median_of(
            rounds
                .iter()
                .map(|r| r[i].as_secs_f64() / r[3].as_secs_f64())
                .collect(),
        )
    };
    Row {
        shape,
        n,
        tasks,
        sync: median(0),
        threads: median(1),
        rayon: median(3),
        rayon_idle: median(4),
        ratio: ratio(1),
        compute_ratio: ratio(2),
    }
}

struct Row {
    shape: &'static str,
    n: u64,
    tasks: u64,
    sync: Duration,
    threads: Duration,
    rayon: Duration,
    /// Rayon from an idle pool (5 ms after its last work).
    rayon_idle: Duration,
    /// The median of the rounds' threads / rayon ratios.
    ratio: f64,
    /// The same for the compute alone (the graph built and dropped
    /// outside the timing).
    compute_ratio: f64,
}

fn main() {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wanted = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    let pool = Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .expect("a 2-thread pool"),
    );
    let threads = Scheduler::pool(pool.clone());
    let runs = 9;
    let mut rows = Vec::new();

    if wanted("flat") {
        let n = 20_000u64;
        rows.push(row(
            "flat",
            n,
            n + 1,
            runs,
            n * (n + 1) / 2,
            || total((0..n).map(inc).collect::<Vec<_>>()),
            &threads,
            || {
                pool.install(|| {
                    (0..n)
                        .into_par_iter()
                        .map(|i| std::hint::black_box(i) + 1)
                        .sum()
                })
            },
        ));
    }
    if wanted("chain") {
        let n = 20_000u64;
        rows.push(row(
            "chain",
            n,
            n,
            runs,
            n,
            || (1..n).fold(inc(0), |x, _| inc(x)),
            &threads,
            // A chain has no parallelism: the baseline is the plain loop.
            || (0..n).fold(0, |x, _| std::hint::black_box(x) + 1),
        ));
    }
    if wanted("tree") {
        let n = 16_384u64;
        rows.push(row(
            "tree",
            n,
            2 * n - 1,
            runs,
            n * (n - 1) / 2,
            || pairwise((0..n).map(leaf).collect()),
            &threads,
            || pool.install(|| rayon_tree(0, n)),
        ));
    }
    if wanted("cpu") {
        let n = 32u64;
        rows.push(row(
            "cpu",
            n,
            n + 1,
            runs,
            (0..n).fold(0u64, |a, i| a.wrapping_add(spin(i, 200_000))),
            || wsum((0..n).map(burn).collect::<Vec<_>>()),
            &threads,
            || {
                pool.install(|| {
                    (0..n)
                        .into_par_iter()
                        .map(|i| spin(std::hint::black_box(i), 200_000))
                        .reduce(|| 0, u64::wrapping_add)
                })
            },
        ));
    }

    println!(
        "{:<6} {:>7} {:>7} {:>12} {:>12} {:>12} {:>12} {:>14} {:>15} {:>12}",
        "shape",
        "n",
        "tasks",
        "sync",
        "threads(2)",
        "rayon(2)",
        "rayon idle",
        "threads/rayon",
        "compute/rayon",
        "ns/task(2)"
    );
    for r in &rows {
        println!(
            "{:<6} {:>7} {:>7} {:>12.3?} {:>12.3?} {:>12.3?} {:>12.3?} {:>13.1}x {:>14.1}x {:>12.0}",
            r.shape,
            r.n,
            r.tasks,
            r.sync,
            r.threads,
            r.rayon,
            r.rayon_idle,
            r.ratio,
            r.compute_ratio,
            r.threads.as_secs_f64() * 1e9 / r.tasks as f64,
        );
    }
    println!(
        "(medians of {runs} interleaved rounds, and of their ratios to rayon; rdask's times \
         include building the graph with #[delayed] calls and dropping it, except \
         compute/rayon's; rayon runs right after rdask's compute, its pool awake, and \
         'rayon idle' 5 ms after its last work)"
    );
}
