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
//!     [--progress] [--visualize FILE.svg] [--profile FILE.html]
//! ```
//!
//! `--progress` shows a progress bar while the graph runs (on a terminal);
//! `--visualize` draws the merged graph (Graphviz `dot` renders SVG, PNG or
//! PDF by the extension; `.dot` writes the text); `--profile` runs it once
//! more on the threads scheduler with a `Profiler` and a `ResourceProfiler`
//! and writes their timeline as a self-contained HTML page.

use rdask::prelude::*;
use rdask::{Compute, Graph, Profiler, ProgressBar, ResourceProfiler};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "common/nested_cv.rs"]
mod nested_cv;
use nested_cv::*;

struct Args {
    folds: usize,
    rows: usize,
    repeat: usize,
    scheduler: Option<Scheduler>,
    cache: Option<std::path::PathBuf>,
    visualize: Option<std::path::PathBuf>,
    profile: Option<std::path::PathBuf>,
    progress: bool,
}

const USAGE: &str = "usage: cargo run --release --example crossval -- [--folds K] [--rows N] \
     [--repeat R] [--scheduler sync|threads:N|processes:N|dask-local:N|dask://HOST:PORT|dask-file:PATH] [--progress] \
     [--visualize FILE.svg] [--profile FILE.html] [--cache DIR]";

/// What the command line asks for: a run, or the usage.
enum Command {
    Run(Args),
    Help,
}

fn parse_args() -> Result<Command, String> {
    let mut a = Args {
        folds: 5,
        rows: 20_000,
        repeat: 3,
        scheduler: None,
        cache: None,
        visualize: None,
        profile: None,
        progress: false,
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
            "--cache" => a.cache = Some(val()?.into()),
            "--profile" => a.profile = Some(val()?.into()),
            "--progress" => a.progress = true,
            "-h" | "--help" => return Ok(Command::Help),
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
    Ok(Command::Run(a))
}

/// Runs the graph `repeat` times on `scheduler`: the values (the same bits
/// every time, or an error) and the best wall time, the least disturbed by
/// whatever else the machine is doing.
fn run(
    outputs: &[Delayed<f64>],
    scheduler: &Scheduler,
    repeat: usize,
    progress: bool,
) -> Result<(Vec<f64>, Duration), Box<dyn std::error::Error>> {
    let mut best: Option<(Vec<f64>, Duration)> = None;
    for _ in 0..repeat {
        let t = Instant::now();
        let mut compute = Compute::new(outputs).scheduler(scheduler.clone());
        if progress {
            compute = compute.callback(Arc::new(ProgressBar::new()));
        }
        let values = compute.run()?;
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
    // The first Ctrl-C cancels the running computation (a second one exits
    // at once, as usual).
    rdask::cancel_on_ctrl_c();
    match try_main() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e)
            if e.downcast_ref::<rdask::Error>()
                .is_some_and(|e| e.kind() == rdask::ErrorKind::Cancelled) =>
        {
            eprintln!("crossval: stopped by Ctrl-C (no result is printed for the unfinished run)");
            ExitCode::from(130)
        }
        Err(e) => {
            eprintln!("crossval: {e}");
            ExitCode::from(2)
        }
    }
}

/// `Ok(false)` when two schedulers disagree.
fn try_main() -> Result<bool, Box<dyn std::error::Error>> {
    let args = match parse_args().map_err(|e| format!("{e}\n{USAGE}"))? {
        Command::Run(args) => args,
        Command::Help => {
            println!("{USAGE}");
            return Ok(true);
        }
    };
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
        "the loops built {} tasks in {:.2} ms; computed one by one, the {} results would run \
         {separately} (the data and fold splits they share run once)",
        merged.len(),
        built.as_secs_f64() * 1e3,
        outputs.len(),
    );

    // Start the thread pool before timing, so its start-up is not counted.
    let threads = Scheduler::threads(0);
    rdask::value(0).compute_with(&threads)?;

    let p = args.progress;
    let (sync_values, sync_time) = run(&outputs, &Scheduler::Sync, args.repeat, p)?;
    let (thread_values, thread_time) = run(&outputs, &threads, args.repeat, p)?;

    for i in 0..k {
        println!(
            "outer fold {i}: best alpha = {:>8}, test R^2 = {:.6}",
            sync_values[i],
            sync_values[k + i]
        );
    }
    println!("final score (mean outer R^2): {:.6}", sync_values[2 * k]);
    println!(
        "time (best of {} runs): one thread {:.1} ms, {} threads {:.1} ms, speed-up {:.2}x \
         (less on a busy machine)",
        args.repeat,
        sync_time.as_secs_f64() * 1e3,
        rayon::current_num_threads(),
        thread_time.as_secs_f64() * 1e3,
        sync_time.as_secs_f64() / thread_time.as_secs_f64()
    );

    let mut ok = same_bits(&sync_values, &thread_values);
    println!(
        "one thread and {} threads give the same numbers, to the bit: {}",
        rayon::current_num_threads(),
        if ok { "yes" } else { "NO" }
    );
    if let Some(s) = &args.scheduler {
        let (values, time) = run(&outputs, s, args.repeat, p)?;
        let same = same_bits(&sync_values, &values);
        let (calls, tasks) = rdask::dask::task_counts();
        let cluster = if calls > 0 {
            format!(" ({calls} calls ran on the cluster, as {tasks} dask tasks)")
        } else {
            String::new()
        };
        println!(
            "--scheduler {s}: {:.1} ms, bit-identical to sync: {}{cluster}",
            time.as_secs_f64() * 1e3,
            if same { "yes" } else { "NO" }
        );
        ok &= same;
    }
    if let Some(dir) = &args.cache {
        // The steps marked `#[delayed(cache)]` come from DIR when a run
        // before stored them: a second run with the same flags is quick.
        let cache = rdask::Cache::open(dir)?;
        let t = Instant::now();
        let values = Compute::new(&outputs)
            .scheduler(threads.clone())
            .cache(&cache)
            .run()?;
        let time = t.elapsed();
        let st = cache.stats();
        let same = same_bits(&sync_values, &values);
        println!(
            "--cache {}: {:.1} ms; {} cached tasks came from the cache, {} ran and were stored; \
             bit-identical to sync: {}",
            dir.display(),
            time.as_secs_f64() * 1e3,
            st.hits,
            st.misses,
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
