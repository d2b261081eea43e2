//! rdask's flagship example: nested cross-validation written as ordinary
//! loops.
//!
//! The outer loop splits synthetic regression data into K folds; for each,
//! an inner K-fold loop scores every ridge-regression alpha of a grid on the
//! outer training set, the best alpha is refit on that whole training set and
//! scored on the held-out outer fold; the final score is the mean of those.
//! Every step is a `#[delayed]` call, so the loops only build a graph: the
//! data is one task shared by every fold, each fold split is one task shared
//! by every alpha, and big inputs are taken as `&T` (no copies; `Dataset` is
//! not even `Clone`). The same graph then runs on `Sync` and on the default
//! threads scheduler, and the two results must be bit-identical.
//!
//! ```text
//! cargo run --release --example crossval [-- --folds K] [--rows N] [--repeat R] [--scheduler NAME]
//!     [--visualize FILE.svg] [--profile FILE.html]
//! ```
//!
//! `--visualize` draws the merged graph (Graphviz `dot` renders SVG, PNG or
//! PDF by the extension; `.dot` writes the text); `--profile` runs it once
//! more on the threads scheduler with a `Profiler` and a `ResourceProfiler`
//! and writes their timeline as a self-contained HTML page.
//!
//! ```text
//! ```

use rdask::prelude::*;
use rdask::{Compute, Graph, Profiler, ResourceProfiler};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Columns of the synthetic design matrix.
const FEATURES: usize = 10;
/// Seed of the data generator: the same flags give the same data everywhere.
const SEED: u64 = 0x5EED_CAFE;
/// The ridge penalties searched by the inner loop.
const ALPHAS: [f64; 8] = [0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0];

/// SplitMix64: a tiny, good-enough deterministic generator (no `rand` crate).
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1]: never 0, so `ln` below is finite.
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    /// A standard normal draw (Box-Muller).
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// Rows of features (row-major) and their targets. Deliberately not `Clone`:
/// the graph hands it around by reference, so no copy can sneak in.
struct Dataset {
    p: usize,
    x: Vec<f64>,
    y: Vec<f64>,
}

impl Dataset {
    fn rows(&self) -> usize {
        self.y.len()
    }

    fn row(&self, i: usize) -> &[f64] {
        &self.x[i * self.p..(i + 1) * self.p]
    }

    /// Rows `range` and the rest, as two new datasets.
    fn split_off(&self, range: std::ops::Range<usize>) -> (Dataset, Dataset) {
        let empty = || Dataset {
            p: self.p,
            x: Vec::new(),
            y: Vec::new(),
        };
        let (mut rest, mut part) = (empty(), empty());
        for i in 0..self.rows() {
            let to = if range.contains(&i) {
                &mut part
            } else {
                &mut rest
            };
            to.x.extend_from_slice(self.row(i));
            to.y.push(self.y[i]);
        }
        (rest, part)
    }
}

/// A fitted linear model: `y = w . x + b`.
struct Model {
    w: Vec<f64>,
    b: f64,
}

/// Correlated features (three latent factors plus a little noise each) and
/// a noisy linear target: collinear enough for the ridge penalty to matter.
#[delayed]
fn make_data(rows: usize, p: usize, seed: u64) -> Dataset {
    let mut rng = SplitMix64(seed);
    let loadings: Vec<[f64; 3]> = (0..p)
        .map(|_| [rng.normal(), rng.normal(), rng.normal()])
        .collect();
    let coef: Vec<f64> = (0..p)
        .map(|j| if j % 3 == 0 { rng.normal() * 2.0 } else { 0.0 })
        .collect();
    // Noise with a third of the signal's variance: the best possible R^2 is 0.75.
    let signal_var: f64 = (0..3)
        .map(|f| {
            loadings
                .iter()
                .zip(&coef)
                .map(|(l, c)| l[f] * c)
                .sum::<f64>()
                .powi(2)
        })
        .sum::<f64>()
        + 0.01 * coef.iter().map(|c| c * c).sum::<f64>();
    let noise = (signal_var / 3.0).sqrt();
    let (mut x, mut y) = (Vec::with_capacity(rows * p), Vec::with_capacity(rows));
    for _ in 0..rows {
        let z = [rng.normal(), rng.normal(), rng.normal()];
        let start = x.len();
        for l in &loadings {
            x.push(l[0] * z[0] + l[1] * z[1] + l[2] * z[2] + 0.1 * rng.normal());
        }
        let signal: f64 = x[start..].iter().zip(&coef).map(|(a, b)| a * b).sum();
        y.push(signal + 3.0 + noise * rng.normal());
    }
    Dataset { p, x, y }
}

/// Fold `i` of `k` (contiguous rows; the rows are i.i.d., so no shuffle is
/// needed) as `(train, test)`. One task per fold, shared by every alpha.
#[delayed]
fn split_fold(data: &Dataset, k: usize, i: usize) -> (Dataset, Dataset) {
    let n = data.rows();
    data.split_off(i * n / k..(i + 1) * n / k)
}

/// Ridge regression by the normal equations on centered data:
/// `(Xc'Xc + alpha I) w = Xc'yc`, solved by Cholesky; the intercept is not
/// penalized. Fallible only in theory (the matrix is positive definite for
/// `alpha > 0`), which shows that `Result` return types fail the graph.
#[delayed]
fn fit(train: &Dataset, alpha: f64) -> Result<Model, String> {
    let (n, p) = (train.rows(), train.p);
    let mut mean_x = vec![0.0; p];
    for i in 0..n {
        for (m, v) in mean_x.iter_mut().zip(train.row(i)) {
            *m += v;
        }
    }
    mean_x.iter_mut().for_each(|m| *m /= n as f64);
    let mean_y = train.y.iter().sum::<f64>() / n as f64;

    let mut a = vec![0.0; p * p];
    let mut rhs = vec![0.0; p];
    let mut xc = vec![0.0; p];
    for i in 0..n {
        for ((c, v), m) in xc.iter_mut().zip(train.row(i)).zip(&mean_x) {
            *c = v - m;
        }
        let yc = train.y[i] - mean_y;
        for j in 0..p {
            rhs[j] += xc[j] * yc;
            for l in 0..=j {
                a[j * p + l] += xc[j] * xc[l];
            }
        }
    }
    for j in 0..p {
        a[j * p + j] += alpha;
    }
    let w = cholesky_solve(&mut a, &rhs, p)
        .ok_or_else(|| format!("ridge system not positive definite (alpha = {alpha})"))?;
    let b = mean_y - w.iter().zip(&mean_x).map(|(w, m)| w * m).sum::<f64>();
    Ok(Model { w, b })
}

/// Solves `A x = b` for symmetric positive definite `A` (lower triangle of
/// `a`, row-major, overwritten by its Cholesky factor L); `None` if `A` is
/// not positive definite.
fn cholesky_solve(a: &mut [f64], b: &[f64], p: usize) -> Option<Vec<f64>> {
    for j in 0..p {
        for i in j..p {
            let mut s = a[i * p + j];
            for k in 0..j {
                s -= a[i * p + k] * a[j * p + k];
            }
            if i == j {
                if s <= 0.0 {
                    return None;
                }
                a[j * p + j] = s.sqrt();
            } else {
                a[i * p + j] = s / a[j * p + j];
            }
        }
    }
    // L z = b, then L' x = z.
    let mut z = b.to_vec();
    for i in 0..p {
        for k in 0..i {
            z[i] -= a[i * p + k] * z[k];
        }
        z[i] /= a[i * p + i];
    }
    for i in (0..p).rev() {
        for k in i + 1..p {
            z[i] -= a[k * p + i] * z[k];
        }
        z[i] /= a[i * p + i];
    }
    Some(z)
}

/// R^2 of `model` on `test` (1 is perfect, 0 is no better than the mean).
#[delayed]
fn score(model: &Model, test: &Dataset) -> f64 {
    let mean_y = test.y.iter().sum::<f64>() / test.rows() as f64;
    let (mut sse, mut sst) = (0.0, 0.0);
    for i in 0..test.rows() {
        let pred: f64 = model.b
            + model
                .w
                .iter()
                .zip(test.row(i))
                .map(|(w, x)| w * x)
                .sum::<f64>();
        sse += (test.y[i] - pred).powi(2);
        sst += (test.y[i] - mean_y).powi(2);
    }
    1.0 - sse / sst
}

#[delayed]
fn mean(xs: Vec<f64>) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// The alpha with the best mean inner score (the smallest on a tie).
#[delayed]
fn best_alpha(alphas: Vec<f64>, scores: Vec<f64>) -> f64 {
    let mut best = 0;
    for (i, s) in scores.iter().enumerate() {
        if *s > scores[best] {
            best = i;
        }
    }
    alphas[best]
}

/// The lazy outputs of one nested cross-validation.
struct NestedCv {
    best_alphas: Vec<Delayed<f64>>,
    outer_scores: Vec<Delayed<f64>>,
    final_score: Delayed<f64>,
}

impl NestedCv {
    /// Every output in one list, so one `compute` runs them all (shared
    /// work once).
    fn outputs(&self) -> Vec<Delayed<f64>> {
        let mut all = self.best_alphas.clone();
        all.extend(self.outer_scores.iter().cloned());
        all.push(self.final_score.clone());
        all
    }
}

/// The whole algorithm as plain loops; nothing runs here.
fn nested_cv(rows: usize, k: usize) -> NestedCv {
    let data = make_data(rows, FEATURES, SEED);
    let mut best_alphas = Vec::new();
    let mut outer_scores = Vec::new();
    for i in 0..k {
        let (train, test) = split_fold(&data, k, i).split();
        let inner: Vec<_> = (0..k).map(|j| split_fold(&train, k, j).split()).collect();
        let alpha_scores: Vec<_> = ALPHAS
            .iter()
            .map(|&alpha| {
                let scores: Vec<_> = inner
                    .iter()
                    .map(|(itrain, itest)| score(fit(itrain, alpha), itest))
                    .collect();
                mean(scores)
            })
            .collect();
        let alpha = best_alpha(ALPHAS.to_vec(), alpha_scores);
        let model = fit(&train, &alpha);
        outer_scores.push(score(model, &test));
        best_alphas.push(alpha);
    }
    let final_score = mean(&outer_scores[..]);
    NestedCv {
        best_alphas,
        outer_scores,
        final_score,
    }
}

struct Args {
    folds: usize,
    rows: usize,
    repeat: usize,
    scheduler: Option<Scheduler>,
    visualize: Option<std::path::PathBuf>,
    profile: Option<std::path::PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        folds: 5,
        rows: 20_000,
        repeat: 3,
        scheduler: None,
        visualize: None,
        profile: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--folds" => a.folds = val()?.parse().map_err(|e| format!("--folds: {e}"))?,
            "--rows" => a.rows = val()?.parse().map_err(|e| format!("--rows: {e}"))?,
            "--repeat" => a.repeat = val()?.parse().map_err(|e| format!("--repeat: {e}"))?,
            "--scheduler" => {
                let name = val()?;
                a.scheduler = Some(name.parse().map_err(|e| format!("--scheduler: {e}"))?);
            }
            "--visualize" => a.visualize = Some(val()?.into()),
            "--profile" => a.profile = Some(val()?.into()),
            "-h" | "--help" => {
                return Err("usage: crossval [--folds K] [--rows N] [--repeat R] \
                     [--scheduler sync|threads|threads:N|processes] [--visualize FILE] \
                     [--profile FILE.html]"
                    .into())
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    if a.repeat == 0 {
        return Err("--repeat must be at least 1".into());
    }
    if a.folds < 2 {
        return Err("--folds must be at least 2".into());
    }
    // Each inner training set needs more rows than features.
    if a.rows < a.folds * a.folds * (FEATURES + 2) {
        return Err(format!(
            "--rows must be at least {} for {} folds",
            a.folds * a.folds * (FEATURES + 2),
            a.folds
        ));
    }
    Ok(a)
}

/// Runs the graph `repeat` times on `scheduler`: the values (the same bits
/// every time, or an error) and the best wall time, the least disturbed by
/// whatever else the machine is doing.
fn run(
    outputs: &[Delayed<f64>],
    scheduler: &Scheduler,
    repeat: usize,
) -> Result<(Vec<f64>, Duration), Box<dyn std::error::Error>> {
    let mut best: Option<(Vec<f64>, Duration)> = None;
    for _ in 0..repeat {
        let t = Instant::now();
        let values = rdask::compute_with(outputs, scheduler)?;
        let time = t.elapsed();
        best = Some(match best {
            Some((first, _)) if !same_bits(&first, &values) => {
                return Err(format!("two runs on {scheduler} disagree").into())
            }
            Some((first, t0)) => (first, t0.min(time)),
            None => (values, time),
        });
    }
    Ok(best.expect("repeat >= 1"))
}

fn same_bits(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

fn main() -> ExitCode {
    match try_main() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("crossval: {e}");
            ExitCode::from(2)
        }
    }
}

/// `Ok(false)` when two schedulers disagree.
fn try_main() -> Result<bool, Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let k = args.folds;
    println!(
        "nested cross-validation: {} rows x {FEATURES} features, {k} outer x {k} inner folds, {} alphas",
        args.rows,
        ALPHAS.len()
    );

    let t = Instant::now();
    let cv = nested_cv(args.rows, k);
    let outputs = cv.outputs();
    let built = t.elapsed();

    // One graph of every output: keys shared by several outputs count once.
    let mut merged = Graph::new();
    let mut separately = 0;
    for d in &outputs {
        let g = d.graph();
        separately += g.len();
        merged.merge(&g);
    }
    println!(
        "graph: {} distinct tasks for {} outputs (built in {:.2} ms; the outputs' own graphs \
         hold {separately} tasks in all, shared work runs once)",
        merged.len(),
        outputs.len(),
        built.as_secs_f64() * 1e3,
    );

    // Start the thread pool before timing, so its start-up is not counted.
    let threads = Scheduler::threads(0);
    rdask::value(0).compute_with(&threads)?;

    let (sync_values, sync_time) = run(&outputs, &Scheduler::Sync, args.repeat)?;
    let (thread_values, thread_time) = run(&outputs, &threads, args.repeat)?;

    for i in 0..k {
        println!(
            "outer fold {i}: best alpha = {:>8}, test R^2 = {:.6}",
            sync_values[i],
            sync_values[k + i]
        );
    }
    println!("final score (mean outer R^2): {:.6}", sync_values[2 * k]);
    println!(
        "wall time (best of {}): sync {:.1} ms, threads ({} workers) {:.1} ms, speedup {:.2}x",
        args.repeat,
        sync_time.as_secs_f64() * 1e3,
        rayon::current_num_threads(),
        thread_time.as_secs_f64() * 1e3,
        sync_time.as_secs_f64() / thread_time.as_secs_f64()
    );

    let mut ok = same_bits(&sync_values, &thread_values);
    println!(
        "sync and threads results bit-identical: {}",
        if ok { "yes" } else { "NO" }
    );
    if let Some(s) = &args.scheduler {
        let (values, time) = run(&outputs, s, args.repeat)?;
        let same = same_bits(&sync_values, &values);
        println!(
            "--scheduler {s}: {:.1} ms, bit-identical to sync: {}",
            time.as_secs_f64() * 1e3,
            if same { "yes" } else { "NO" }
        );
        ok &= same;
    }
    if let Some(path) = &args.visualize {
        rdask::visualize(&merged, path)?;
        println!("graph drawn to {}", path.display());
    }
    if let Some(path) = &args.profile {
        let profiler = Arc::new(Profiler::new());
        let resources = Arc::new(ResourceProfiler::new());
        let values = Compute::new(&outputs)
            .scheduler(threads.clone())
            .callback(profiler.clone())
            .callback(resources.clone())
            .run()?;
        ok &= same_bits(&sync_values, &values);
        profiler.write_html_with(path, &resources)?;
        println!(
            "profile of {} tasks written to {}",
            profiler.records().len(),
            path.display()
        );
    }
    if !ok {
        eprintln!("crossval: schedulers disagree\n  sync:    {sync_values:?}\n  threads: {thread_values:?}");
    }
    Ok(ok)
}
