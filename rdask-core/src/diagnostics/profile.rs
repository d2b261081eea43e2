//! Which task ran when, on which worker (dask's `Profiler`), drawn as a
//! self-contained HTML timeline.

use super::{colours, escape_xml, human, human_secs, nice_step, write_file, ResourceProfiler};
use crate::callbacks::Callback;
use crate::Key;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One task as the [`Profiler`] saw it.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct TaskRecord {
    /// The task's key.
    pub key: Key,
    /// The worker that ran it (0 on the Sync scheduler).
    pub worker: usize,
    /// When it started, since the profiler's first computation started.
    pub start: Duration,
    /// When it ended, on the same clock.
    pub end: Duration,
    /// False when it returned an error or panicked.
    pub ok: bool,
}

impl TaskRecord {
    /// The key's prefix: the function name for `#[delayed]` calls.
    pub fn prefix(&self) -> &str {
        self.key.prefix()
    }

    /// How long it ran.
    pub fn duration(&self) -> Duration {
        self.end.saturating_sub(self.start)
    }
}

/// The tasks of one function (key prefix) in a profile.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct FunctionSummary {
    /// The key prefix.
    pub name: String,
    /// How many tasks ran.
    pub count: usize,
    /// How many of them failed.
    pub failed: usize,
    /// Their summed running time.
    pub total: Duration,
    /// `total / count`.
    pub mean: Duration,
    /// The longest one.
    pub max: Duration,
}

/// What a task left behind: its end and length, turned into times since
/// the origin only when read, so `posttask` does no arithmetic.
struct Raw {
    key: Key,
    worker: usize,
    end: Instant,
    took: Duration,
    ok: bool,
}

/// Records are kept in several lists, by worker, so workers rarely wait on
/// one another's lock.
const SHARDS: usize = 32;

/// Records every task of the computations it is attached to: key, worker,
/// start and end. [`write_html`](Self::write_html) draws them as a timeline
/// (one lane per worker, one bar per task, coloured by function, the key
/// and duration on hover) with a per-function summary table.
///
/// Records add up over computations until [`clear`](Self::clear); times
/// count from the start of the first one.
///
/// ```
/// use rdask::prelude::*;
/// use std::sync::Arc;
///
/// #[delayed]
/// fn square(x: i64) -> i64 { x * x }
///
/// let prof = Arc::new(rdask::Profiler::new());
/// let xs: Vec<_> = (0..4).map(square).collect();
/// rdask::Compute::new(&xs).callback(prof.clone()).run()?;
/// let summary = prof.summary();
/// assert_eq!((summary[0].name.as_str(), summary[0].count), ("square", 4));
/// prof.write_html(std::env::temp_dir().join("rdask-doc-profile.html"))?;
/// # Ok::<(), rdask::Error>(())
/// ```
pub struct Profiler {
    origin: Mutex<Option<Instant>>,
    shards: Box<[Mutex<Vec<Raw>>]>,
}

impl Default for Profiler {
    fn default() -> Self {
        Profiler::new()
    }
}

impl std::fmt::Debug for Profiler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n: usize = self.shards.iter().map(|s| lock(s).len()).sum();
        f.debug_struct("Profiler").field("tasks", &n).finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Profiler {
    /// Above this many tasks the timeline merges bars: one per pixel column
    /// and worker, so the file stays small and the browser responsive.
    pub const BAR_LIMIT: usize = 20_000;

    /// An empty profiler.
    pub fn new() -> Profiler {
        Profiler {
            origin: Mutex::new(None),
            shards: (0..SHARDS).map(|_| Mutex::new(Vec::new())).collect(),
        }
    }

    /// Forgets every record; times restart at the next computation.
    pub fn clear(&self) {
        for s in self.shards.iter() {
            lock(s).clear();
        }
        *lock(&self.origin) = None;
    }

    /// The instant record times count from.
    fn origin(&self) -> Option<Instant> {
        *lock(&self.origin)
    }

    /// Every task recorded so far, by start time.
    pub fn records(&self) -> Vec<TaskRecord> {
        let origin = self.origin();
        let mut out = Vec::new();
        for s in self.shards.iter() {
            for r in lock(s).iter() {
                let started = r.end.checked_sub(r.took).unwrap_or(r.end);
                let origin = origin.unwrap_or(started);
                out.push(TaskRecord {
                    key: r.key.clone(),
                    worker: r.worker,
                    start: started.saturating_duration_since(origin),
                    end: r.end.saturating_duration_since(origin),
                    ok: r.ok,
                });
            }
        }
        out.sort_by_key(|r| (r.start, r.worker));
        out
    }

    /// Count, failures, total, mean and longest time per function (key
    /// prefix), most total time first.
    pub fn summary(&self) -> Vec<FunctionSummary> {
        summarise(&self.records())
    }

    /// Writes the timeline and summary as one self-contained HTML file (no
    /// scripts, styles or fonts from elsewhere: it opens offline and can be
    /// attached to a bug report).
    pub fn write_html(&self, path: impl AsRef<Path>) -> crate::Result<()> {
        write_file(path.as_ref(), self.to_html(None).as_bytes())
    }

    /// [`write_html`](Self::write_html), with the memory and CPU that
    /// `resources` sampled plotted under the timeline, on the same clock.
    pub fn write_html_with(
        &self,
        path: impl AsRef<Path>,
        resources: &ResourceProfiler,
    ) -> crate::Result<()> {
        write_file(path.as_ref(), self.to_html(Some(resources)).as_bytes())
    }

    /// The HTML that [`write_html`](Self::write_html) writes. It is also
    /// well-formed XML.
    pub fn to_html(&self, resources: Option<&ResourceProfiler>) -> String {
        let records = self.records();
        let mut res = Vec::new();
        if let Some(rp) = resources {
            // Resource times count from the resource profiler's own start:
            // move them onto the task clock.
            let offset = match (self.origin(), rp.origin()) {
                (Some(p), Some(r)) if r >= p => r.duration_since(p).as_secs_f64(),
                (Some(p), Some(r)) => -p.duration_since(r).as_secs_f64(),
                _ => 0.0,
            };
            res = rp
                .samples()
                .into_iter()
                .map(|s| Point {
                    t: s.time.as_secs_f64() + offset,
                    rss_mib: s.rss_bytes as f64 / (1024.0 * 1024.0),
                    cpu: s.cpu_percent,
                })
                .collect();
        }
        render(&records, &res, resources.is_some())
    }
}

impl Callback for Profiler {
    fn start(&self, _tasks: usize) {
        lock(&self.origin).get_or_insert_with(Instant::now);
    }

    fn posttask(&self, key: &Key, worker: usize, elapsed: Duration, ok: bool) {
        let end = Instant::now();
        lock(&self.shards[worker % SHARDS]).push(Raw {
            key: key.clone(),
            worker,
            end,
            took: elapsed,
            ok,
        });
    }
}

fn summarise(records: &[TaskRecord]) -> Vec<FunctionSummary> {
    let mut by: HashMap<&str, FunctionSummary> = HashMap::new();
    for r in records {
        let s = by.entry(r.prefix()).or_insert_with(|| FunctionSummary {
            name: r.prefix().to_string(),
            count: 0,
            failed: 0,
            total: Duration::ZERO,
            mean: Duration::ZERO,
            max: Duration::ZERO,
        });
        let d = r.duration();
        s.count += 1;
        s.failed += usize::from(!r.ok);
        s.total += d;
        s.max = s.max.max(d);
    }
    let mut out: Vec<FunctionSummary> = by
        .into_values()
        .map(|mut s| {
            s.mean = s.total / s.count.max(1) as u32;
            s
        })
        .collect();
    out.sort_by(|a, b| b.total.cmp(&a.total).then_with(|| a.name.cmp(&b.name)));
    out
}

/// One resource sample on the task clock.
struct Point {
    t: f64,
    rss_mib: f64,
    cpu: f64,
}

// Layout of the picture, in pixels.
const WIDTH: f64 = 1200.0;
const LEFT: f64 = 90.0;
const RIGHT: f64 = 20.0;
const PLOT: f64 = WIDTH - LEFT - RIGHT;
const LANE: f64 = 22.0;
const LANE_GAP: f64 = 4.0;
const AXIS: f64 = 28.0;
const CHART: f64 = 90.0;
const CHART_GAP: f64 = 30.0;

const STYLE: &str = "
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; margin: 24px; color: #222; }
h1 { font-size: 20px; margin: 0 0 4px 0; }
h2 { font-size: 16px; margin: 24px 0 8px 0; }
p.meta { color: #555; margin: 0 0 12px 0; }
p.note { background: #fff6d5; border: 1px solid #e6d17a; padding: 6px 10px; display: inline-block; }
svg text { font-size: 11px; fill: #333; }
svg .lane { fill: #f3f3f3; }
svg .grid { stroke: #ddd; stroke-width: 1; }
svg .task { stroke: #fff; stroke-width: 0.5; }
svg .thin { stroke: none; }
svg .task:hover, svg .merged:hover { stroke: #000; stroke-width: 1.5; }
svg .failed { stroke: #d00; stroke-width: 1.5; }
svg .frame { fill: none; stroke: #bbb; }
table { border-collapse: collapse; font-size: 13px; }
th, td { padding: 3px 10px; border-bottom: 1px solid #e4e4e4; text-align: right; }
th { background: #f3f3f3; }
td.name, th.name { text-align: left; font-family: monospace; }
span.sw { display: inline-block; width: 12px; height: 12px; border-radius: 2px; }
";

/// The whole page.
fn render(records: &[TaskRecord], res: &[Point], with_resources: bool) -> String {
    let summary = summarise(records);
    let colour = colours(summary.iter().map(|s| s.name.as_str()));
    let workers: Vec<usize> = {
        let mut w: Vec<usize> = records.iter().map(|r| r.worker).collect();
        w.sort_unstable();
        w.dedup();
        w
    };
    let busy: f64 = summary.iter().map(|s| s.total.as_secs_f64()).sum();
    let t0 = res.iter().map(|p| p.t).fold(0.0, f64::min);
    let t1 = records
        .iter()
        .map(|r| r.end.as_secs_f64())
        .chain(res.iter().map(|p| p.t))
        .fold(0.0, f64::max);
    let wall = records
        .iter()
        .map(|r| r.end.as_secs_f64())
        .fold(0.0, f64::max);
    let span = if t1 > t0 { t1 - t0 } else { 1e-3 };
    let scale = Scale { t0, span };

    let mut h = String::with_capacity(4096 + records.len().min(Profiler::BAR_LIMIT) * 160);
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n");
    h.push_str("<title>rdask profile</title>\n<style>");
    h.push_str(STYLE);
    h.push_str("</style>\n</head>\n<body>\n<h1>rdask profile</h1>\n");
    let utilisation = if wall > 0.0 && !workers.is_empty() {
        100.0 * busy / (wall * workers.len() as f64)
    } else {
        0.0
    };
    let _ = writeln!(
        h,
        "<p class=\"meta\">{} tasks on {} worker{} in {}; workers busy {:.0}% of the time. \
         Hover a bar for its key and duration.</p>",
        records.len(),
        workers.len(),
        if workers.len() == 1 { "" } else { "s" },
        human_secs(wall),
        utilisation
    );
    let merged = records.len() > Profiler::BAR_LIMIT;
    if merged {
        let _ = writeln!(
            h,
            "<p class=\"note\">This profile has {} tasks, more than {}: to keep the page small, \
             bars are merged, one per pixel column and worker, coloured by the function that \
             used most of that slice; fainter means the worker was idle part of it. The table \
             counts every task.</p>",
            records.len(),
            Profiler::BAR_LIMIT
        );
    }
    if records.is_empty() && res.is_empty() {
        h.push_str("<p class=\"note\">No task was recorded.</p>\n");
    }

    // The picture: lanes, then the axis, then the resource charts.
    let lanes_h = workers.len() as f64 * (LANE + LANE_GAP);
    let charts = if with_resources { 2.0 } else { 0.0 };
    let height = 10.0 + lanes_h + AXIS + charts * (CHART + CHART_GAP) + 10.0;
    let height = if with_resources {
        height + AXIS - 14.0
    } else {
        height
    };
    let _ = writeln!(
        h,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height:.0}\" \
         viewBox=\"0 0 {WIDTH} {height:.0}\">"
    );
    let top = 10.0;
    let bottom = if with_resources {
        height - AXIS
    } else {
        height - 10.0
    };
    let ticks = time_ticks(t0, t1);
    for &t in &ticks {
        let x = scale.x(t);
        let _ = writeln!(
            h,
            "<line class=\"grid\" x1=\"{x:.1}\" y1=\"{top}\" x2=\"{x:.1}\" y2=\"{bottom:.0}\"/>"
        );
    }
    let lane_y: BTreeMap<usize, f64> = workers
        .iter()
        .enumerate()
        .map(|(i, &w)| (w, top + i as f64 * (LANE + LANE_GAP)))
        .collect();
    for (&w, &y) in &lane_y {
        let _ = writeln!(
            h,
            "<rect class=\"lane\" x=\"{LEFT}\" y=\"{y}\" width=\"{PLOT}\" height=\"{LANE}\"/>\
             <text x=\"{:.0}\" y=\"{:.1}\" text-anchor=\"end\">worker {w}</text>",
            LEFT - 8.0,
            y + LANE / 2.0 + 4.0
        );
    }
    if merged {
        merged_bars(&mut h, records, &lane_y, &colour, &scale);
    } else {
        for r in records {
            let (s, e) = (r.start.as_secs_f64(), r.end.as_secs_f64());
            let x = scale.x(s);
            let w = (scale.x(e) - x).max(0.5);
            let fill = colour.get(r.prefix()).map_or("#888", String::as_str);
            // White edges part neighbours, but would hide bars under 2 px.
            let class = match (r.ok, w < 2.0) {
                (true, false) => "task",
                (true, true) => "task thin",
                (false, _) => "task failed",
            };
            let _ = writeln!(
                h,
                "<rect class=\"{class}\" x=\"{x:.2}\" y=\"{}\" width=\"{w:.2}\" height=\"{LANE}\" \
                 fill=\"{fill}\"><title>{}&#10;{}{} on worker {} ({} to {})</title></rect>",
                lane_y[&r.worker],
                escape_xml(&r.key.to_string()),
                human(r.duration()),
                if r.ok { "" } else { ", FAILED," },
                r.worker,
                human_secs(s),
                human_secs(e),
            );
        }
    }
    let axis_y = top + lanes_h;
    axis(&mut h, &ticks, &scale, axis_y, t1 - t0);
    if with_resources {
        let mut y = axis_y + AXIS + CHART_GAP - 14.0;
        let rss: Vec<(f64, f64)> = res.iter().map(|p| (p.t, p.rss_mib)).collect();
        let cpu: Vec<(f64, f64)> = res.iter().map(|p| (p.t, p.cpu)).collect();
        chart(&mut h, &scale, y, "memory (RSS, MiB)", &rss, 0.0, "#3b7dd8");
        y += CHART + CHART_GAP;
        chart(
            &mut h,
            &scale,
            y,
            "CPU (% of one core)",
            &cpu,
            100.0,
            "#d8663b",
        );
        axis(&mut h, &ticks, &scale, y + CHART, t1 - t0);
    }
    h.push_str("</svg>\n");

    // The table.
    h.push_str(
        "<h2>Per function</h2>\n<table>\n<thead><tr><th></th><th class=\"name\">function</th>\
                <th>tasks</th><th>failed</th><th>total</th><th>mean</th><th>max</th>\
                <th>share of busy time</th></tr></thead>\n<tbody>\n",
    );
    for s in &summary {
        let share = if busy > 0.0 {
            100.0 * s.total.as_secs_f64() / busy
        } else {
            0.0
        };
        let _ = writeln!(
            h,
            "<tr><td><span class=\"sw\" style=\"background:{}\"></span></td>\
             <td class=\"name\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{share:.1}%</td></tr>",
            colour.get(&s.name).map_or("#888", String::as_str),
            escape_xml(&s.name),
            s.count,
            s.failed,
            human(s.total),
            human(s.mean),
            human(s.max),
        );
    }
    h.push_str("</tbody>\n</table>\n</body>\n</html>\n");
    h
}

/// Seconds to x pixels.
struct Scale {
    t0: f64,
    span: f64,
}

impl Scale {
    fn x(&self, t: f64) -> f64 {
        LEFT + (t - self.t0) / self.span * PLOT
    }
}

/// Round times for grid lines and labels, about ten over the range.
fn time_ticks(t0: f64, t1: f64) -> Vec<f64> {
    let step = nice_step(t1 - t0, 10.0);
    let first = (t0 / step).ceil() as i64;
    let last = (t1 / step + 1e-9).floor() as i64;
    (first..=last.max(first)).map(|i| i as f64 * step).collect()
}

/// Tick labels under the lanes, in one unit for the whole axis.
fn axis(h: &mut String, ticks: &[f64], scale: &Scale, y: f64, range: f64) {
    let (unit, per_sec) = if range < 2e-3 {
        ("µs", 1e6)
    } else if range < 2.0 {
        ("ms", 1e3)
    } else {
        ("s", 1.0)
    };
    let step = ticks.get(1).map_or(1.0, |b| b - ticks[0]) * per_sec;
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10()).ceil() as usize
    };
    for &t in ticks {
        let _ = writeln!(
            h,
            "<text x=\"{:.1}\" y=\"{:.0}\" text-anchor=\"middle\">{:.*} {unit}</text>",
            scale.x(t),
            y + 14.0,
            decimals,
            t * per_sec
        );
    }
}

/// A line chart of `(seconds, value)` under the timeline, with its area
/// filled, a title and its top value.
fn chart(
    h: &mut String,
    scale: &Scale,
    y: f64,
    title: &str,
    points: &[(f64, f64)],
    min_top: f64,
    colour: &str,
) {
    let max = points.iter().map(|p| p.1).fold(min_top, f64::max);
    let step = nice_step(max.max(1e-9), 4.0);
    let top = ((max / step).ceil() * step).max(step);
    let _ = writeln!(
        h,
        "<rect class=\"frame\" x=\"{LEFT}\" y=\"{y:.0}\" width=\"{PLOT}\" height=\"{CHART}\"/>\
         <text x=\"{:.0}\" y=\"{:.0}\">{}</text>",
        LEFT + 4.0,
        y - 4.0,
        escape_xml(title)
    );
    for frac in [0.0, 0.5, 1.0] {
        let yy = y + CHART - frac * CHART;
        let _ = writeln!(
            h,
            "<text x=\"{:.0}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            LEFT - 8.0,
            yy + 4.0,
            short_number(top * frac)
        );
    }
    if points.is_empty() {
        let _ = writeln!(
            h,
            "<text x=\"{:.0}\" y=\"{:.0}\" text-anchor=\"middle\">no samples (needs Linux's /proc)</text>",
            LEFT + PLOT / 2.0,
            y + CHART / 2.0
        );
        return;
    }
    let pts: Vec<String> = points
        .iter()
        .map(|&(t, v)| format!("{:.1},{:.1}", scale.x(t), y + CHART - v / top * CHART))
        .collect();
    let base = y + CHART;
    let (first, last) = (scale.x(points[0].0), scale.x(points[points.len() - 1].0));
    let _ = writeln!(
        h,
        "<polygon points=\"{first:.1},{base:.1} {} {last:.1},{base:.1}\" fill=\"{colour}\" \
         fill-opacity=\"0.2\" stroke=\"none\"/>\n<polyline points=\"{}\" fill=\"none\" \
         stroke=\"{colour}\" stroke-width=\"1.5\"><title>{}: max {}</title></polyline>",
        pts.join(" "),
        pts.join(" "),
        escape_xml(title),
        short_number(max)
    );
}

fn short_number(v: f64) -> String {
    if v >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Large profiles: per worker, one slot per pixel column holding how long
/// each function ran in it; runs of columns with the same main function
/// and a similar busy share become one bar.
fn merged_bars(
    h: &mut String,
    records: &[TaskRecord],
    lane_y: &BTreeMap<usize, f64>,
    colour: &HashMap<String, String>,
    scale: &Scale,
) {
    let columns = PLOT as usize;
    let col_secs = scale.span / PLOT;
    let mut names: Vec<&str> = Vec::new();
    let mut name_id: HashMap<&str, usize> = HashMap::new();
    // worker -> per column: (tasks started there, [(function, seconds)])
    type Column = (usize, Vec<(usize, f64)>);
    let mut lanes: BTreeMap<usize, Vec<Column>> = BTreeMap::new();
    for r in records {
        let id = *name_id.entry(r.prefix()).or_insert_with(|| {
            names.push(r.prefix());
            names.len() - 1
        });
        let cols = lanes
            .entry(r.worker)
            .or_insert_with(|| vec![(0, Vec::new()); columns]);
        let (s, e) = (
            (r.start.as_secs_f64() - scale.t0) / col_secs,
            (r.end.as_secs_f64() - scale.t0) / col_secs,
        );
        let first = (s.floor() as usize).min(columns - 1);
        let last = (e.ceil() as usize).clamp(first + 1, columns);
        cols[first].0 += 1;
        for (c, col) in cols.iter_mut().enumerate().take(last).skip(first) {
            let overlap = (e.min(c as f64 + 1.0) - s.max(c as f64)).max(0.0) * col_secs;
            // A task shorter than float rounding still counts a little.
            let overlap = overlap.max(1e-12);
            match col.1.iter_mut().find(|(f, _)| *f == id) {
                Some(slot) => slot.1 += overlap,
                None => col.1.push((id, overlap)),
            }
        }
    }
    for (worker, cols) in &lanes {
        let y = lane_y[worker];
        // (main function, busy level 1..=4) of each column, None if idle.
        let level = |col: &Column| -> Option<(usize, u32)> {
            let (main, _) = col.1.iter().copied().max_by(|a, b| a.1.total_cmp(&b.1))?;
            let busy: f64 = col.1.iter().map(|(_, s)| s).sum::<f64>() / col_secs;
            Some((main, (busy.min(1.0) * 4.0).ceil().max(1.0) as u32))
        };
        let mut c = 0;
        while c < columns {
            let Some(this) = level(&cols[c]) else {
                c += 1;
                continue;
            };
            let mut end = c + 1;
            while end < columns && level(&cols[end]) == Some(this) {
                end += 1;
            }
            let tasks: usize = cols[c..end].iter().map(|col| col.0).sum();
            let mut time: HashMap<usize, f64> = HashMap::new();
            for col in &cols[c..end] {
                for &(f, s) in &col.1 {
                    *time.entry(f).or_default() += s;
                }
            }
            let all: f64 = time.values().sum();
            let main_share = 100.0 * time.get(&this.0).copied().unwrap_or(0.0) / all.max(1e-12);
            let name = names[this.0];
            let (t_a, t_b) = (
                scale.t0 + c as f64 * col_secs,
                scale.t0 + end as f64 * col_secs,
            );
            let _ = writeln!(
                h,
                "<rect class=\"merged\" x=\"{:.1}\" y=\"{y}\" width=\"{}\" height=\"{LANE}\" \
                 fill=\"{}\" fill-opacity=\"{:.2}\"><title>{tasks} tasks started, mostly {} \
                 ({main_share:.0}% of the time)&#10;worker {worker}, {} to {}</title></rect>",
                LEFT + c as f64,
                end - c,
                colour.get(name).map_or("#888", String::as_str),
                0.25 + 0.75 * f64::from(this.1) / 4.0,
                escape_xml(name),
                human_secs(t_a),
                human_secs(t_b),
            );
            c = end;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(key: &str, worker: usize, start_ms: u64, end_ms: u64, ok: bool) -> TaskRecord {
        TaskRecord {
            key: Key::from(key),
            worker,
            start: Duration::from_millis(start_ms),
            end: Duration::from_millis(end_ms),
            ok,
        }
    }

    #[test]
    fn summary_counts() {
        let rs = [
            rec("inc-1", 0, 0, 10, true),
            rec("inc-2", 1, 0, 30, true),
            rec("add-3", 0, 10, 15, false),
        ];
        let s = summarise(&rs);
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].name.as_str(), s[0].count, s[0].failed), ("inc", 2, 0));
        assert_eq!(s[0].total, Duration::from_millis(40));
        assert_eq!(s[0].mean, Duration::from_millis(20));
        assert_eq!(s[0].max, Duration::from_millis(30));
        assert_eq!((s[1].name.as_str(), s[1].failed), ("add", 1));
    }

    #[test]
    fn page_has_one_bar_per_task_and_the_table() {
        let rs = [
            rec("inc-1", 0, 0, 10, true),
            rec("<odd & key>-2", 3, 2, 30, false),
        ];
        let html = render(&rs, &[], false);
        assert_eq!(html.matches("<rect class=\"task").count(), 2);
        assert_eq!(html.matches("class=\"task failed\"").count(), 1);
        assert!(html.contains("&lt;odd &amp; key&gt;-2"));
        assert!(html.contains("worker 3"));
        assert!(!html.contains("<script"));
    }

    // Too slow under Miri: 25,000 records rendered (past `BAR_LIMIT`).
    #[test]
    #[cfg_attr(miri, ignore = "too slow under Miri")]
    fn merged_when_large() {
        let rs: Vec<TaskRecord> = (0..(Profiler::BAR_LIMIT as u64 + 5000))
            .map(|i| {
                rec(
                    if i % 3 == 0 { "a-1" } else { "b-1" },
                    (i % 4) as usize,
                    i,
                    i + 1,
                    true,
                )
            })
            .collect();
        let html = render(&rs, &[], false);
        assert!(html.contains("bars are merged"));
        assert_eq!(html.matches("<rect class=\"task").count(), 0);
        let bars = html.matches("<rect class=\"merged\"").count();
        assert!(bars > 0 && bars <= 4 * PLOT as usize, "{bars}");
        assert!(html.len() < 2_000_000, "{}", html.len());
    }

    #[test]
    fn ticks_are_round() {
        let t = time_ticks(0.0, 0.35);
        assert_eq!(t.len(), 8);
        assert!((t[1] - 0.05).abs() < 1e-12);
        assert_eq!(time_ticks(0.0, 0.0).len(), 1);
    }
}
