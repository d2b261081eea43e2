//! Seeing a computation: a progress bar while it runs, then a profile (which
//! task ran when, on which worker, with the process's memory and CPU under
//! it) and a picture of the graph.
//!
//! ```text
//! cargo run --release --example diagnostics
//! ```
//!
//! Writes `target/diagnostics-profile.html` and `target/diagnostics-graph.svg`
//! (`.dot` when Graphviz is not installed).

use rdask::prelude::*;
use rdask::{Compute, Profiler, ProgressBar, ResourceProfiler, Visualize};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Pretends to read a file: waits like I/O, then holds a few MiB.
#[delayed]
fn load(part: u64) -> Vec<f64> {
    std::thread::sleep(Duration::from_millis(30 + 10 * (part % 4)));
    (0..1_000_000)
        .map(|i| ((i * (part + 1)) % 1000) as f64)
        .collect()
}

/// Real CPU work: drops outliers and normalises.
#[delayed]
fn clean(data: Vec<f64>) -> Vec<f64> {
    let mean = data.iter().sum::<f64>() / data.len() as f64;
    let kept: Vec<f64> = data.into_iter().filter(|x| *x < 2.0 * mean).collect();
    let max = kept.iter().copied().fold(1.0, f64::max);
    let mut out: Vec<f64> = kept.into_iter().map(|x| x / max).collect();
    for _ in 0..4 {
        out.iter_mut().for_each(|x| *x = (*x).sqrt().sin().abs());
    }
    out
}

/// A summary of one part: its sum and its size.
#[delayed]
fn features(data: Vec<f64>) -> (f64, usize) {
    (data.iter().sum(), data.len())
}

/// Combines two summaries (a tree reduction).
#[delayed]
fn combine(a: (f64, usize), b: (f64, usize)) -> (f64, usize) {
    std::thread::sleep(Duration::from_millis(5));
    (a.0 + b.0, a.1 + b.1)
}

#[delayed]
fn report(total: (f64, usize)) -> String {
    format!("{} values, mean {:.4}", total.1, total.0 / total.1 as f64)
}

fn main() -> rdask::Result<()> {
    let mut level: Vec<_> = (0..16).map(|p| features(clean(load(p)))).collect();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| combine(pair[0].clone(), pair[1].clone()))
            .collect();
    }
    let result = report(level.pop().expect("one summary"));

    let progress = Arc::new(ProgressBar::new());
    let profiler = Arc::new(Profiler::new());
    let resources = Arc::new(ResourceProfiler::new());
    let started = Instant::now();
    let out = Compute::new(std::slice::from_ref(&result))
        .scheduler(Scheduler::threads(4))
        .callback(progress)
        .callback(profiler.clone())
        .callback(resources.clone())
        .run()?;
    println!("{} in {:.0?}", out[0], started.elapsed());

    let profile = "target/diagnostics-profile.html";
    profiler.write_html_with(profile, &resources)?;
    println!(
        "profile: {profile} ({} tasks, {} resource samples)",
        profiler.records().len(),
        resources.samples().len()
    );
    for f in profiler.summary() {
        println!(
            "  {:<10} {:>3} tasks  total {:>9.1?}  mean {:>9.1?}",
            f.name, f.count, f.total, f.mean
        );
    }

    let picture = "target/diagnostics-graph.svg";
    match result.visualize(picture) {
        Ok(()) => println!("graph: {picture}"),
        // No Graphviz: the DOT text is written beside it; say so and go on.
        Err(e) if e.kind() == rdask::ErrorKind::Io => {
            println!("graph: target/diagnostics-graph.dot (not drawn: {e})")
        }
        Err(e) => return Err(e),
    }
    Ok(())
}
