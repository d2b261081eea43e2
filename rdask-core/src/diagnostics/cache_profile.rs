//! [`CacheProfiler`]: what results a computation held, how big, and for how
//! long (dask's `CacheProfiler`).

use crate::callbacks::{Callback, TaskGraph, TaskResult};
use crate::Key;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One task's result while it was held: from when it was made to when its
/// last consumer started (an output: to the end of the computation).
#[derive(Clone, Debug, PartialEq)]
pub struct CacheRecord {
    /// The task's key.
    pub key: Key,
    /// Its function's name.
    pub name: String,
    /// The result's weight by the profiler's metric (bytes by default).
    pub metric: f64,
    /// When the result was made, from the profiler's first computation.
    pub cached: Duration,
    /// When it was let go of, on the same clock.
    pub freed: Duration,
}

/// The weight of one result.
type Metric = Box<dyn Fn(&TaskResult<'_>) -> f64 + Send + Sync>;

/// Records each result's size and how long it was held, to see what a
/// computation keeps in memory (dask's `CacheProfiler`). The metric is the
/// result's bytes ([`TaskResult::nbytes`]) unless given with
/// [`with_metric`](Self::with_metric) (`|_| 1.0` counts results, as dask's
/// default does).
///
/// Results are weighed where they are made in this process (Sync, Threads,
/// Processes: a worker's result by its encoded bytes); tasks run on a Dask
/// cluster keep their results there and are not recorded.
///
/// ```
/// use rdask::prelude::*;
/// use std::sync::Arc;
///
/// #[delayed]
/// fn load(n: usize) -> Vec<f64> { vec![1.0; n] }
/// #[delayed]
/// fn total(v: Vec<f64>) -> f64 { v.iter().sum() }
///
/// let cache = Arc::new(rdask::CacheProfiler::new());
/// let x = total(load(1000));
/// let sum = rdask::Compute::new(&[x]).callback(cache.clone()).run()?;
/// assert_eq!(sum, [1000.0]);
/// let records = cache.records();
/// assert_eq!(records[0].name, "load");
/// assert_eq!(records[0].metric, (24 + 8000) as f64); // the Vec and its buffer
/// assert!(records[0].freed <= records[1].cached);    // `total` took it
/// assert_eq!(cache.peak(), 8024.0);
/// # Ok::<(), rdask::Error>(())
/// ```
pub struct CacheProfiler {
    metric: Metric,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    origin: Option<Instant>,
    /// The running computation's tasks, by key, and per task its
    /// consumers, when it started and what it made.
    index: HashMap<Key, usize>,
    tasks: Vec<Task>,
    records: Vec<CacheRecord>,
}

struct Task {
    key: Key,
    name: String,
    consumers: Vec<usize>,
    output: bool,
    started: Option<Duration>,
    made: Option<(f64, Duration)>,
}

impl Default for CacheProfiler {
    fn default() -> Self {
        CacheProfiler::new()
    }
}

impl std::fmt::Debug for CacheProfiler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.lock().records.len();
        f.debug_struct("CacheProfiler")
            .field("records", &n)
            .finish()
    }
}

impl CacheProfiler {
    /// A profiler weighing results by their bytes.
    pub fn new() -> CacheProfiler {
        CacheProfiler::with_metric(|r| r.nbytes() as f64)
    }

    /// A profiler weighing results by `metric`.
    pub fn with_metric(metric: impl Fn(&TaskResult<'_>) -> f64 + Send + Sync + 'static) -> Self {
        CacheProfiler {
            metric: Box::new(metric),
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The results of the finished computations, in the order they were
    /// made.
    pub fn records(&self) -> Vec<CacheRecord> {
        let mut out = self.lock().records.clone();
        out.sort_by(|a, b| {
            a.cached
                .cmp(&b.cached)
                .then_with(|| a.key.to_string().cmp(&b.key.to_string()))
        });
        out
    }

    /// The total weight held over time: `(when, total)` at each change.
    pub fn held(&self) -> Vec<(Duration, f64)> {
        let mut changes: Vec<(Duration, f64)> = Vec::new();
        for r in self.lock().records.iter() {
            changes.push((r.cached, r.metric));
            changes.push((r.freed, -r.metric));
        }
        // At one instant, let go before taking on: a consumer that starts
        // as its input's last user is not counted holding both.
        changes.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
        let mut total = 0.0;
        changes
            .into_iter()
            .map(|(t, d)| {
                total += d;
                (t, total)
            })
            .collect()
    }

    /// The most weight held at once.
    pub fn peak(&self) -> f64 {
        self.held().iter().map(|&(_, v)| v).fold(0.0, f64::max)
    }

    /// Forgets every record.
    pub fn clear(&self) {
        *self.lock() = State::default();
    }
}

impl State {
    fn now(&mut self) -> Duration {
        self.origin.get_or_insert_with(Instant::now).elapsed()
    }

    fn task(&mut self, key: &Key) -> Option<&mut Task> {
        let i = *self.index.get(key)?;
        self.tasks.get_mut(i)
    }
}

impl Callback for CacheProfiler {
    fn start_state(&self, graph: &TaskGraph<'_>) {
        let mut s = self.lock();
        s.now();
        s.index = (0..graph.len())
            .map(|t| (graph.key(t).clone(), t))
            .collect();
        s.tasks = (0..graph.len())
            .map(|t| Task {
                key: graph.key(t).clone(),
                name: graph.name(t).to_string(),
                consumers: Vec::new(),
                output: false,
                started: None,
                made: None,
            })
            .collect();
        for t in 0..graph.len() {
            for p in graph.dependencies(t) {
                s.tasks[p].consumers.push(t);
            }
        }
        for o in graph.outputs() {
            s.tasks[o].output = true;
        }
    }

    fn pretask(&self, key: &Key, _worker: usize) {
        let mut s = self.lock();
        let now = s.now();
        if let Some(t) = s.task(key) {
            t.started.get_or_insert(now);
        }
    }

    fn result(&self, key: &Key, result: &TaskResult<'_>) {
        let metric = (self.metric)(result);
        let mut s = self.lock();
        let now = s.now();
        if let Some(t) = s.task(key) {
            t.made = Some((metric, now));
        }
    }

    fn finish(&self, _ok: bool) {
        let mut s = self.lock();
        let end = s.now();
        let tasks = std::mem::take(&mut s.tasks);
        s.index.clear();
        for t in &tasks {
            let Some((metric, cached)) = t.made else {
                continue;
            };
            // Held until its last consumer started; an output, or a value
            // whose consumer never ran, until the end.
            let mut last_user = t.consumers.iter().map(|&c| tasks[c].started);
            let freed = match t.output {
                true => None,
                false => last_user.try_fold(cached, |a, b| Some(a.max(b?))),
            };
            s.records.push(CacheRecord {
                key: t.key.clone(),
                name: t.name.clone(),
                metric,
                cached,
                freed: freed.unwrap_or(end).max(cached),
            });
        }
    }
}
