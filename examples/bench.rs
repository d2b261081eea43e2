//! Benchmark CLI: one workload, one JSON line.
//!
//! ```text
//! cargo run --release --example bench -- WORKLOAD [--scheduler sync|threads|processes] [--n N] [--workers W] [--noop-callback] [--warm]
//! ```
//! Workloads: `flat` (n x inc, then a sum), `chain` (n incs in a row),
//! `tree` (n leaves summed pairwise), `cpu` (n x ~20 ms of integer work),
//! `memory` (n x load 8 MiB -> clean -> score, then a tree of adds: peak RSS
//! is the figure), `outputs` (compute n independent values at once),
//! `crossval` (the crossval example's graph, n folds). `per_task_us` is
//! `compute_s / tasks * 1e6`; `build_s` is the time spent making the graph
//! with `#[delayed]` calls; `build_ns_per_call` and `compute_ns_per_task`
//! are the same two per task, in ns (each task is one call, except in
//! `cache` and `crossval`). `--warm` (flat, chain, tree, outputs) builds
//! and computes the same graph a second time in the same process (warm
//! allocator, pages already touched, the pool already started) and adds
//! `warm_build_s`, `warm_compute_s`, `warm_build_ns_per_call` and
//! `warm_compute_ns_per_task`; its result must equal the first run's (else
//! exit 1). `memory` also reports `peak_live_mb`: the most
//! heap bytes live at once (counted by this binary's allocator), which is
//! what the engine holds, whatever the allocator keeps resident besides.

use rdask::prelude::*;
use rdask::Callback;

// The crossval example's model: `crossval` here is exactly that graph.
#[path = "common/nested_cv.rs"]
#[allow(dead_code)]
mod nested_cv;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// The system allocator, counting live heap bytes when `COUNTING` is on
/// (the `memory` workload only: elsewhere it costs one relaxed load). Every
/// call goes to the system's own (`realloc` and `calloc` included, so a
/// growing `Vec` is still moved by `mremap` and a zeroed one still not
/// touched), so the other workloads measure the plain system allocator.
struct Counting;

/// Counts `new` bytes made live in place of `old` ones.
fn count(new: usize, old: usize) {
    if !COUNTING.load(Ordering::Relaxed) {
        return;
    }
    if new >= old {
        let live = LIVE.fetch_add(new - old, Ordering::Relaxed) + (new - old);
        PEAK.fetch_max(live, Ordering::Relaxed);
    } else {
        LIVE.fetch_sub(old - new, Ordering::Relaxed);
    }
}

static COUNTING: AtomicBool = AtomicBool::new(false);
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            count(layout.size(), 0);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            count(layout.size(), 0);
        }
        p
    }
    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let q = unsafe { System.realloc(p, layout, new_size) };
        if !q.is_null() {
            count(new_size, layout.size());
        }
        q
    }
    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        if COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        unsafe { System.dealloc(p, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// A callback with every hook empty.
struct Noop;
impl Callback for Noop {}

#[delayed]
fn inc(x: u64) -> u64 {
    x + 1
}

#[delayed]
fn total(xs: Vec<u64>) -> u64 {
    xs.iter().sum()
}

#[delayed(cache)]
fn cached_leaf(i: u64) -> u64 {
    i
}

#[delayed(cache)]
fn cached_ms(i: u64) -> u64 {
    std::thread::sleep(std::time::Duration::from_millis(1));
    i
}

#[delayed]
fn plain_ms(i: u64) -> u64 {
    std::thread::sleep(std::time::Duration::from_millis(1));
    i
}

#[delayed]
fn leaf(i: u64) -> u64 {
    i
}

#[delayed]
fn add(a: u64, b: u64) -> u64 {
    a.wrapping_add(b)
}

/// About 20 ms of an integer LCG loop on a 2020s core.
fn burn_plain(i: u64) -> u64 {
    let mut x = i;
    for _ in 0..20_000_000u64 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407)
            .wrapping_add(i);
    }
    x
}

#[delayed]
fn burn(i: u64) -> u64 {
    burn_plain(i)
}

#[delayed]
fn wsum(xs: Vec<u64>) -> u64 {
    xs.iter().fold(0, |a, b| a.wrapping_add(*b))
}

const MIB8: usize = 8 << 20;

#[delayed]
fn load(i: u64) -> Vec<u8> {
    vec![(i % 251) as u8; MIB8]
}

#[delayed]
fn clean(data: Vec<u8>) -> Vec<u8> {
    data.iter().map(|b| b.wrapping_add(1)).collect()
}

#[delayed]
fn score(data: Vec<u8>) -> u64 {
    data.iter().step_by(4096).map(|&b| u64::from(b)).sum()
}

/// Sums `level` pairwise until one value remains (an odd one is carried up).
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

/// The tasks of `pairwise` over n leaves of `per_leaf` tasks each: those,
/// and the n - 1 adds. Counted, not asked of the graph: `graph()` formats
/// and hashes every key, which would cost more instructions than the build
/// and the compute together.
fn pairwise_tasks(d: &Delayed<u64>, n: usize, per_leaf: usize) -> usize {
    let tasks = (per_leaf + 1) * n - usize::from(n > 0);
    debug_assert_eq!(d.graph().len(), tasks);
    tasks
}

/// Peak RSS of each worker process, in MiB, as a JSON list.
fn worker_rss(pids: &[u32]) -> String {
    let each: Vec<String> = pids
        .iter()
        .map(|p| format!("{:.1}", peak_rss_of(&format!("/proc/{p}/status"))))
        .collect();
    format!("[{}]", each.join(", "))
}

fn peak_rss_mb() -> f64 {
    peak_rss_of("/proc/self/status")
}

fn peak_rss_of(status: &str) -> f64 {
    std::fs::read_to_string(status)
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

struct Run {
    tasks: usize,
    build_s: f64,
    compute_s: f64,
    /// The value, as its JSON number.
    result: String,
    seq_s: Option<f64>,
    /// Time to drop the graph once computed (the fine-grained shapes).
    drop_s: Option<f64>,
    /// More JSON fields, `, "name": value` each (workload-specific).
    extra: String,
}

/// Not inlined: profilers find a workload's build and compute by its name.
#[inline(never)]
fn timed<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let t = Instant::now();
    let v = f();
    (v, t.elapsed().as_secs_f64())
}

/// The workloads that take `--warm`: their runs leave no state behind.
const WARM: [&str; 4] = ["flat", "chain", "tree", "outputs"];

fn run(workload: &str, n: usize, s: &Scheduler) -> rdask::Result<Run> {
    let n64 = n as u64;
    Ok(match workload {
        "flat" => {
            let (d, build_s) = timed(|| total((0..n64).map(inc).collect::<Vec<_>>()));
            let (r, compute_s) = timed(|| d.compute_with(s));
            let ((), drop_s) = timed(|| drop(d));
            Run {
                tasks: n + 1,
                build_s,
                compute_s,
                result: r?.to_string(),
                seq_s: None,
                drop_s: Some(drop_s),
                extra: String::new(),
            }
        }
        "chain" => {
            let (d, build_s) = timed(|| {
                let mut x = inc(0);
                for _ in 1..n {
                    x = inc(x);
                }
                x
            });
            let (r, compute_s) = timed(|| d.compute_with(s));
            let ((), drop_s) = timed(|| drop(d));
            Run {
                tasks: n,
                build_s,
                compute_s,
                result: r?.to_string(),
                seq_s: None,
                drop_s: Some(drop_s),
                extra: String::new(),
            }
        }
        "tree" => {
            let (d, build_s) = timed(|| pairwise((0..n64).map(leaf).collect()));
            let tasks = pairwise_tasks(&d, n, 1);
            let (r, compute_s) = timed(|| d.compute_with(s));
            let ((), drop_s) = timed(|| drop(d));
            Run {
                tasks,
                build_s,
                compute_s,
                result: r?.to_string(),
                seq_s: None,
                drop_s: Some(drop_s),
                extra: String::new(),
            }
        }
        "cpu" => {
            let (d, build_s) = timed(|| wsum((0..n64).map(burn).collect::<Vec<_>>()));
            let (r, compute_s) = timed(|| d.compute_with(s));
            let (seq, seq_s) = timed(|| {
                (0..n64)
                    .map(|i| burn_plain(std::hint::black_box(i)))
                    .fold(0u64, u64::wrapping_add)
            });
            std::hint::black_box(seq);
            Run {
                tasks: n + 1,
                build_s,
                compute_s,
                result: r?.to_string(),
                seq_s: Some(seq_s),
                drop_s: None,
                extra: String::new(),
            }
        }
        "memory" => {
            // Counted from here: what was allocated before is never freed
            // during the run, so live bytes cannot underflow.
            COUNTING.store(true, Ordering::Relaxed);
            let (d, build_s) =
                timed(|| pairwise((0..n64).map(|i| score(clean(load(i)))).collect()));
            let tasks = pairwise_tasks(&d, n, 3);
            let (r, compute_s) = timed(|| d.compute_with(s));
            Run {
                tasks,
                build_s,
                compute_s,
                result: r?.to_string(),
                seq_s: None,
                drop_s: None,
                extra: String::new(),
            }
        }
        "outputs" => {
            let (ds, build_s) = timed(|| (0..n64).map(inc).collect::<Vec<_>>());
            let (r, compute_s) = timed(|| rdask::compute_with(&ds, s));
            let r: u64 = r?.iter().sum();
            Run {
                tasks: n,
                build_s,
                compute_s,
                result: r.to_string(),
                seq_s: None,
                drop_s: None,
                extra: String::new(),
            }
        }
        "crossval" => {
            // n = folds (outer and inner), on the example's 20,000 rows.
            let (outputs, build_s) = timed(|| nested_cv::nested_cv(20_000, n).outputs());
            let mut merged = rdask::Graph::new();
            for d in &outputs {
                merged.merge(&d.graph());
            }
            let tasks = merged.len();
            let (r, compute_s) = timed(|| rdask::compute_with(&outputs, s));
            let final_score = *r?.last().expect("the final score is the last output");
            Run {
                tasks,
                build_s,
                compute_s,
                result: format!("{final_score:.6}"),
                seq_s: None,
                drop_s: None,
                extra: String::new(),
            }
        }
        "cache" => {
            // n cached tasks of a small value: the first run misses and
            // stores each, the second finds each; beside the same graph
            // with no cache attached. Then 50 tasks of 1 ms, cached
            // (misses) and plain, on one thread: what a miss adds.
            let dir =
                std::env::temp_dir().join(format!("rdask-bench-cache-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            let cache = rdask::Cache::open(&dir)?;
            let build = || total((0..n64).map(cached_leaf).collect::<Vec<_>>());
            let (d, build_s) = timed(build);
            let (plain, plain_s) = timed(|| d.compute_with(s));
            let (miss, miss_s) = timed(|| {
                rdask::Compute::new(std::slice::from_ref(&build()))
                    .scheduler(s.clone())
                    .cache(&cache)
                    .run()
            });
            let (hit, hit_s) = timed(|| {
                rdask::Compute::new(std::slice::from_ref(&build()))
                    .scheduler(s.clone())
                    .cache(&cache)
                    .run()
            });
            let (plain, miss, hit) = (plain?, miss?[0], hit?[0]);
            assert_eq!((plain, miss), (hit, hit));
            assert_eq!(cache.stats().hits, n64);
            let slow = |cached: bool| {
                let xs: Vec<_> = (0..50)
                    .map(|i| if cached { cached_ms(i) } else { plain_ms(i) })
                    .collect();
                let c = rdask::Compute::new(&xs).scheduler(Scheduler::Sync);
                timed(|| {
                    if cached {
                        c.cache(&cache).run()
                    } else {
                        c.run()
                    }
                })
                .1
            };
            let (slow_plain, slow_miss) = (slow(false), slow(true));
            let _ = std::fs::remove_dir_all(&dir);
            let us = |t: f64| t / n as f64 * 1e6;
            Run {
                tasks: n,
                build_s,
                compute_s: hit_s,
                result: hit.to_string(),
                seq_s: None,
                drop_s: None,
                extra: format!(
                    ", \"plain_us_per_task\": {:.3}, \"miss_us_per_task\": {:.3}, \"hit_us_per_task\": {:.3}, \
                     \"ms_tasks_plain_s\": {slow_plain:.6}, \"ms_tasks_miss_s\": {slow_miss:.6}, \
                     \"miss_overhead_on_1ms_pct\": {:.2}",
                    us(plain_s),
                    us(miss_s),
                    us(hit_s),
                    (slow_miss / slow_plain - 1.0) * 100.0
                ),
            }
        }
        other => {
            eprintln!(
                "unknown workload {other:?}: flat, chain, tree, cpu, memory, outputs, crossval or cache"
            );
            std::process::exit(2);
        }
    })
}

/// This machine's bare cross-process round trip: one byte to `cat` and
/// back through two pipes, median of 2,000 (µs). A processes `chain` makes
/// one such round trip a task, so its per-task figure cannot go below this:
/// it is printed beside the processes figures so that they are read with
/// what they depend on.
fn pipe_round_trip_us() -> Option<f64> {
    use std::io::{Read, Write};
    use std::process::{Command, Stdio};
    let mut cat = Command::new("cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .ok()?;
    let (mut tx, mut rx) = (cat.stdin.take()?, cat.stdout.take()?);
    let mut times = Vec::with_capacity(2000);
    let mut byte = [0_u8];
    for _ in 0..2000 {
        let t = Instant::now();
        tx.write_all(&[1]).ok()?;
        rx.read_exact(&mut byte).ok()?;
        times.push(t.elapsed().as_secs_f64() * 1e6);
    }
    drop(tx);
    let _ = cat.wait();
    times.sort_by(f64::total_cmp);
    Some(times[times.len() / 2])
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut workload = None;
    let mut scheduler = "threads".to_string();
    let mut n: Option<usize> = None;
    let mut workers = 0usize;
    let mut with_callback = false;
    let mut warm = false;
    while let Some(a) = args.next() {
        let mut value = |name: &str| {
            args.next().unwrap_or_else(|| {
                eprintln!("{name} needs a value");
                std::process::exit(2)
            })
        };
        match a.as_str() {
            "--scheduler" => scheduler = value("--scheduler"),
            "--n" => n = value("--n").parse().ok(),
            "--workers" => workers = value("--workers").parse().unwrap_or(0),
            // Attach a callback that does nothing: the cost of the hooks.
            "--noop-callback" => with_callback = true,
            "--warm" => warm = true,
            w if !w.starts_with('-') && workload.is_none() => workload = Some(w.to_string()),
            other => {
                eprintln!("unknown argument {other:?}");
                std::process::exit(2);
            }
        }
    }
    let workload = workload.unwrap_or_else(|| "flat".into());
    if warm && !WARM.contains(&workload.as_str()) {
        eprintln!("--warm takes {}, not {workload:?}", WARM.join(", "));
        std::process::exit(2);
    }
    let s = match (scheduler.as_str(), workers) {
        ("threads" | "threading", w) => Scheduler::threads(w),
        ("processes" | "multiprocessing", w) => Scheduler::processes(w),
        (name, _) => name.parse().unwrap_or_else(|e| {
            eprintln!("{e}");
            std::process::exit(2)
        }),
    };
    let n = n.unwrap_or(match workload.as_str() {
        "tree" => 65_536,
        "cpu" => 64,
        "memory" => 200,
        "outputs" => 20_000,
        "crossval" => 5,
        _ => 100_000,
    });
    let callbacks: Vec<Arc<dyn Callback>> = if with_callback {
        vec![Arc::new(Noop)]
    } else {
        Vec::new()
    };
    // Start worker processes before timing (a second compute pays none of
    // this); the start-up time is reported on its own.
    let mut pool_start_s = 0.0;
    if let Scheduler::Processes(p) = &s {
        let t = Instant::now();
        if let Err(e) = p.warm_up() {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
        pool_start_s = t.elapsed().as_secs_f64();
    }
    if let Scheduler::Threads(_) = &s {
        // Start the thread pool before timing, as the Taskflow peer starts
        // its executor and runs a tiny graph first.
        if let Err(e) = (inc(0) + 1).compute_with(&s) {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
    if let Scheduler::Dask(d) = &s {
        // Joining (and starting a LocalCluster) is not per-task cost; nor
        // are the helpers' first start, which one task pays.
        let t = Instant::now();
        if let Err(e) = d.connect().and_then(|_| inc(0).compute_with(&s)) {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
        pool_start_s = t.elapsed().as_secs_f64();
    }
    // The fresh run, then (--warm) the same again in this process.
    let runs = rdask::with_callbacks(callbacks, || {
        (0..1 + usize::from(warm))
            .map(|_| run(&workload, n, &s))
            .collect::<rdask::Result<Vec<Run>>>()
    });
    let mut runs = runs.unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(1)
    });
    let ns = |secs: f64, tasks: usize| secs / tasks as f64 * 1e9;
    let warm_run = if warm { runs.pop() } else { None };
    let warm_fields = warm_run.map(|w| {
        if w.result != runs[0].result {
            eprintln!(
                "error: warm result {} != fresh result {}",
                w.result, runs[0].result
            );
            std::process::exit(1);
        }
        format!(
            ", \"warm_build_s\": {:.6}, \"warm_compute_s\": {:.6}, \
             \"warm_build_ns_per_call\": {:.2}, \"warm_compute_ns_per_task\": {:.2}",
            w.build_s,
            w.compute_s,
            ns(w.build_s, w.tasks),
            ns(w.compute_s, w.tasks),
        )
    });
    let r = runs.pop().expect("the fresh run");
    let mut extra = r
        .seq_s
        .map(|s| format!(", \"seq_s\": {s:.6}"))
        .unwrap_or_default();
    if let Some(d) = r.drop_s {
        extra += &format!(", \"drop_s\": {d:.6}");
    }
    extra += &r.extra;
    extra += &warm_fields.unwrap_or_default();
    if let Scheduler::Processes(p) = &s {
        let (remote, local) = rdask::process::task_counts();
        extra += &format!(
            ", \"remote_tasks\": {remote}, \"local_tasks\": {local}, \"pool_start_s\": {pool_start_s:.6}, \
             \"worker_peak_rss_mb\": {}, \"pipe_rtt_us\": {}",
            worker_rss(&p.worker_pids()),
            pipe_round_trip_us().map_or("null".to_string(), |us| format!("{us:.1}")),
        );
    }
    if let Scheduler::Dask(_) = &s {
        let (calls, tasks) = rdask::dask::task_counts();
        extra += &format!(
            ", \"cluster_calls\": {calls}, \"dask_tasks\": {tasks}, \"join_s\": {pool_start_s:.6}"
        );
    }
    if COUNTING.load(Ordering::Relaxed) {
        let mb = PEAK.load(Ordering::Relaxed) as f64 / (1 << 20) as f64;
        extra += &format!(", \"peak_live_mb\": {mb:.1}");
    }
    let s = if with_callback {
        format!("{s}+noop-callback")
    } else {
        s.to_string()
    };
    println!(
        "{{\"workload\": \"{workload}\", \"scheduler\": \"{s}\", \"n\": {n}, \"tasks\": {}, \
         \"build_s\": {:.6}, \"compute_s\": {:.6}, \"per_task_us\": {:.4}, \
         \"build_ns_per_call\": {:.2}, \"compute_ns_per_task\": {:.2}, \"result\": {}, \
         \"peak_rss_mb\": {:.1}{extra}}}",
        r.tasks,
        r.build_s,
        r.compute_s,
        r.compute_s / r.tasks as f64 * 1e6,
        ns(r.build_s, r.tasks),
        ns(r.compute_s, r.tasks),
        r.result,
        peak_rss_mb(),
    );
}
