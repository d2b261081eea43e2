//! The seed's load / clean / analyze / store workflow, on real files.
//!
//! Writes three CSV files of sensor readings to a temporary directory, then
//! builds the pipeline with ordinary calls of `#[delayed]` functions (nothing
//! runs while it is built), computes the final `store` task on the chosen
//! scheduler, and prints the summary file it wrote. A second, smaller run
//! feeds it a malformed file to show the error model: the failed `load` is
//! named, its parse error is reachable through `source()`, and `store`
//! never runs.
//!
//! ```text
//! cargo run --release --example pipeline [-- --scheduler sync|threads|threads:N]
//! ```

use rdask::prelude::*;
use std::error::Error as _;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

/// Why a CSV file could not be loaded. Kept as a proper error type (not a
/// string) so callers can walk the `source()` chain down to the cause.
#[derive(Debug)]
enum LoadError {
    Io(PathBuf, io::Error),
    Parse {
        path: PathBuf,
        line: usize,
        cell: String,
        source: std::num::ParseFloatError,
    },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Io(path, _) => write!(f, "cannot read {}", path.display()),
            LoadError::Parse {
                path, line, cell, ..
            } => write!(f, "{}:{line}: {cell:?} is not a number", path.display()),
        }
    }
}

impl std::error::Error for LoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LoadError::Io(_, e) => Some(e),
            LoadError::Parse { source, .. } => Some(source),
        }
    }
}

/// Parses every cell after the header line. Fallible: an `Err` fails the
/// computation and is reported with this task's key.
#[delayed]
fn load(path: PathBuf) -> Result<Vec<f64>, LoadError> {
    let text = fs::read_to_string(&path).map_err(|e| LoadError::Io(path.clone(), e))?;
    let mut values = Vec::new();
    for (i, row) in text.lines().enumerate().skip(1) {
        for cell in row.split(',').map(str::trim).filter(|c| !c.is_empty()) {
            let v = cell.parse().map_err(|source| LoadError::Parse {
                path: path.clone(),
                line: i + 1,
                cell: cell.to_string(),
                source,
            })?;
            values.push(v);
        }
    }
    Ok(values)
}

/// The sensors write `NaN` for a missing reading and `-999` for a fault.
const FAULT: f64 = -999.0;

/// Drops missing and faulty readings; takes its input by value, so the
/// loaded vector is moved in (no copy) and freed once cleaned.
#[delayed]
fn clean(data: Vec<f64>) -> Vec<f64> {
    data.into_iter()
        .filter(|x| x.is_finite() && *x != FAULT)
        .collect()
}

/// What `analyze` finds, and `store` writes.
#[derive(Debug, Clone)]
struct Summary {
    files: usize,
    count: usize,
    mean: f64,
    std_dev: f64,
    min: f64,
    max: f64,
    file_means: Vec<f64>,
}

/// Reduces the cleaned files to one summary (the `Vec<Vec<f64>>` parameter
/// is filled from a `Vec<Delayed<Vec<f64>>>`).
#[delayed]
fn analyze(parts: Vec<Vec<f64>>) -> Summary {
    let all = || parts.iter().flatten().copied();
    let count = all().count();
    let mean = all().sum::<f64>() / count as f64;
    let var = all().map(|x| (x - mean).powi(2)).sum::<f64>() / count as f64;
    Summary {
        files: parts.len(),
        count,
        mean,
        std_dev: var.sqrt(),
        min: all().fold(f64::INFINITY, f64::min),
        max: all().fold(f64::NEG_INFINITY, f64::max),
        file_means: parts
            .iter()
            .map(|p| p.iter().sum::<f64>() / p.len() as f64)
            .collect(),
    }
}

/// Writes the summary as `key = value` lines and returns where it went.
#[delayed]
fn store(summary: Summary, out_path: PathBuf) -> io::Result<PathBuf> {
    let means: Vec<String> = summary
        .file_means
        .iter()
        .map(|m| format!("{m:.3}"))
        .collect();
    let text = format!(
        "files = {}\ncount = {}\nmean = {:.3}\nstd_dev = {:.3}\nmin = {:.2}\nmax = {:.2}\nfile_means = [{}]\n",
        summary.files,
        summary.count,
        summary.mean,
        summary.std_dev,
        summary.min,
        summary.max,
        means.join(", "),
    );
    fs::write(&out_path, text)?;
    Ok(out_path)
}

/// Writes `rows` rows of four readings, with a `NaN` (missing) every 7th
/// cell and a `-999` (fault) every 11th, so `clean` has work to do.
fn write_csv(path: &Path, seed: usize, rows: usize) -> io::Result<()> {
    let mut text = String::from("north,east,south,west\n");
    for r in 0..rows {
        let cells: Vec<String> = (0..4)
            .map(|c| {
                let i = r * 4 + c;
                if i % 7 == 3 {
                    "NaN".to_string()
                } else if i % 11 == 5 {
                    "-999".to_string()
                } else {
                    format!("{:.2}", 20.0 + seed as f64 + 5.0 * (i as f64 * 0.37).sin())
                }
            })
            .collect();
        text.push_str(&cells.join(","));
        text.push('\n');
    }
    fs::write(path, text)
}

/// `--scheduler NAME` if given, else the default (`RDASK_SCHEDULER` or threads).
fn scheduler_from_args() -> Result<Scheduler, Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut scheduler = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--scheduler" => {
                let name = args.next().ok_or("--scheduler needs a name")?;
                scheduler = Some(name.parse::<Scheduler>()?);
            }
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    Ok(match scheduler {
        Some(s) => s,
        None => rdask::current_scheduler()?,
    })
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pipeline: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let scheduler = scheduler_from_args()?;
    let dir = tempfile::tempdir()?;
    let inputs: Vec<PathBuf> = ["a", "b", "c"]
        .iter()
        .map(|name| dir.path().join(format!("readings-{name}.csv")))
        .collect();
    for (i, p) in inputs.iter().enumerate() {
        write_csv(p, i, 500)?;
    }
    let out = dir.path().join("summary.txt");

    // The dask program, line for line; each call only adds a node.
    let loads: Vec<_> = inputs.iter().map(load).collect();
    let cleaned: Vec<_> = loads.iter().map(clean).collect();
    let analyzed = analyze(cleaned);
    let stored = store(&analyzed, &out);

    println!("scheduler: {scheduler}");
    println!(
        "inputs: {} CSV files in {}",
        inputs.len(),
        dir.path().display()
    );
    println!("graph: {} tasks", stored.graph().len());
    let t = Instant::now();
    let written = stored.compute_with(&scheduler)?;
    println!(
        "computed {} in {:.1} ms; it wrote {}:",
        stored.key(),
        t.elapsed().as_secs_f64() * 1e3,
        written.display()
    );
    print!("{}", fs::read_to_string(&written)?);

    // The same pipeline with one malformed input: the error names the
    // failed `load` task, the parse error is its source, `store` never runs.
    let bad = dir.path().join("readings-bad.csv");
    fs::write(&bad, "north,east\n1.5,2.5\n3.5,oops\n")?;
    let bad_out = dir.path().join("bad-summary.txt");
    let loads: Vec<_> = [&inputs[0], &bad].iter().map(|p| load(*p)).collect();
    let cleaned: Vec<_> = loads.iter().map(clean).collect();
    let err = store(analyze(cleaned), &bad_out)
        .compute_with(&scheduler)
        .expect_err("a malformed file must fail the computation");
    println!("\nwith a malformed input file:\nerror: {err}");
    // rdask's message already quotes the task's own error, so print only
    // the causes it does not repeat.
    let mut shown = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !shown.contains(&text) {
            println!("  caused by: {text}");
        }
        shown = text;
        cause = c.source();
    }
    assert_eq!(err.key(), Some(loads[1].key()));
    assert!(!bad_out.exists(), "store must not run after a failed load");
    println!("failed task: {}; nothing was stored", loads[1].key());
    Ok(())
}
