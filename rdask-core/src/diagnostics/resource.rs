//! Memory and CPU of the process over time (dask's `ResourceProfiler`).

use crate::callbacks::Callback;
use std::collections::VecDeque;
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One reading of the process's resources.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct ResourceSample {
    /// When, since the profiler first started.
    pub time: Duration,
    /// Resident memory, in bytes.
    pub rss_bytes: u64,
    /// CPU used by all threads of the process over the last ~50 ms, in
    /// percent of one core (400 means four cores busy).
    pub cpu_percent: f64,
}

/// CPU use is averaged over this much time, so that the line shows load
/// rather than scheduling noise.
const CPU_WINDOW: Duration = Duration::from_millis(50);

/// `/proc`'s clock ticks per second (`USER_HZ`): 100 on every Linux
/// architecture's user-space ABI.
const TICKS_PER_SEC: f64 = 100.0;

/// Samples the process's resident memory and CPU use from a background
/// thread while computations run (from `start` to `finish`; several
/// computations add to one record). Pass it to
/// [`Profiler::write_html_with`](crate::Profiler::write_html_with) to plot
/// it under the task timeline.
///
/// Memory comes from Linux's `/proc/self/status`; where that is missing it
/// records nothing (and never fails the computation).
///
/// ```
/// use rdask::prelude::*;
/// use std::sync::Arc;
///
/// let res = Arc::new(rdask::ResourceProfiler::new());
/// let d = rdask::value(1).map(|x: i32| {
///     std::thread::sleep(std::time::Duration::from_millis(50));
///     x + 1
/// });
/// rdask::Compute::new(std::slice::from_ref(&d)).callback(res.clone()).run()?;
/// assert!(!res.is_sampling());
/// if cfg!(target_os = "linux") {
///     assert!(res.samples().iter().all(|s| s.rss_bytes > 0));
/// }
/// # Ok::<(), rdask::Error>(())
/// ```
pub struct ResourceProfiler {
    interval: Duration,
    shared: Arc<Shared>,
    run: Mutex<Run>,
}

#[derive(Default)]
struct Shared {
    origin: Mutex<Option<Instant>>,
    samples: Mutex<Vec<ResourceSample>>,
}

#[derive(Default)]
struct Run {
    /// How many computations are running with this profiler.
    depth: usize,
    /// Dropping the sender stops the thread at once.
    thread: Option<(Sender<()>, JoinHandle<()>)>,
}

impl Default for ResourceProfiler {
    fn default() -> Self {
        ResourceProfiler::new()
    }
}

impl std::fmt::Debug for ResourceProfiler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResourceProfiler")
            .field("interval", &self.interval)
            .field("samples", &self.lock_samples().len())
            .finish()
    }
}

impl ResourceProfiler {
    /// A profiler sampling every 20 ms.
    pub fn new() -> ResourceProfiler {
        ResourceProfiler::with_interval(Duration::from_millis(20))
    }

    /// A profiler sampling every `interval` (at least 1 ms).
    pub fn with_interval(interval: Duration) -> ResourceProfiler {
        ResourceProfiler {
            interval: interval.max(Duration::from_millis(1)),
            shared: Arc::default(),
            run: Mutex::default(),
        }
    }

    /// The samples so far, oldest first.
    pub fn samples(&self) -> Vec<ResourceSample> {
        self.lock_samples().clone()
    }

    /// Whether the sampling thread is running (between `start` and the
    /// matching `finish`).
    pub fn is_sampling(&self) -> bool {
        self.lock_run().thread.is_some()
    }

    /// Forgets every sample; times restart at the next computation.
    pub fn clear(&self) {
        self.lock_samples().clear();
        if !self.is_sampling() {
            *self.shared.origin.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
    }

    /// For tests: a weak reference to the state this profiler shares with
    /// its sampling thread. Once the profiler is dropped nothing holds it
    /// (`strong_count() == 0`), since the drop joins the thread.
    #[doc(hidden)]
    pub fn sampler_state(&self) -> std::sync::Weak<dyn std::any::Any + Send + Sync> {
        let state: std::sync::Weak<Shared> = Arc::downgrade(&self.shared);
        state
    }

    /// The instant sample times count from.
    pub(crate) fn origin(&self) -> Option<Instant> {
        *self.shared.origin.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_samples(&self) -> std::sync::MutexGuard<'_, Vec<ResourceSample>> {
        self.shared
            .samples
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn lock_run(&self) -> std::sync::MutexGuard<'_, Run> {
        self.run.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stops and joins the sampling thread, if any.
    fn stop(run: &mut Run) {
        if let Some((stop, handle)) = run.thread.take() {
            drop(stop);
            let _ = handle.join();
        }
    }
}

impl Callback for ResourceProfiler {
    fn start(&self, _tasks: usize) {
        let mut run = self.lock_run();
        run.depth += 1;
        if run.thread.is_some() {
            return;
        }
        let origin = *self
            .shared
            .origin
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert_with(Instant::now);
        let (tx, rx) = channel::<()>();
        let shared = self.shared.clone();
        let interval = self.interval;
        let spawned = std::thread::Builder::new()
            .name("rdask-resources".into())
            .spawn(move || {
                // The first reading comes one interval in: CPU use over a
                // few microseconds would be noise.
                let mut sampler = Sampler::new(origin);
                while let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(interval) {
                    sampler.sample(&shared);
                }
                // One last reading, so short computations get one too.
                sampler.sample(&shared);
            });
        // Without a thread there is nothing to record; the computation
        // goes on.
        if let Ok(handle) = spawned {
            run.thread = Some((tx, handle));
        }
    }

    fn finish(&self, _ok: bool) {
        let mut run = self.lock_run();
        run.depth = run.depth.saturating_sub(1);
        if run.depth == 0 {
            ResourceProfiler::stop(&mut run);
        }
    }
}

impl Drop for ResourceProfiler {
    fn drop(&mut self) {
        let run = self.run.get_mut().unwrap_or_else(|e| e.into_inner());
        ResourceProfiler::stop(run);
    }
}

/// The sampling thread's state: recent CPU readings for the window.
struct Sampler {
    origin: Instant,
    cpu: VecDeque<(Instant, f64)>,
}

impl Sampler {
    fn new(origin: Instant) -> Sampler {
        let mut cpu = VecDeque::new();
        if let Some(secs) = cpu_seconds() {
            cpu.push_back((Instant::now(), secs));
        }
        Sampler { origin, cpu }
    }

    /// Reads `/proc` and records one sample, or nothing if it cannot.
    fn sample(&mut self, shared: &Shared) {
        let (Some(rss), Some(secs)) = (rss_bytes(), cpu_seconds()) else {
            return;
        };
        let now = Instant::now();
        // Keep one reading at least a window old, to measure against.
        while self.cpu.len() >= 2 && now.duration_since(self.cpu[1].0) >= CPU_WINDOW {
            self.cpu.pop_front();
        }
        let cpu_percent = match self.cpu.front() {
            Some(&(then, old)) if now > then => {
                100.0 * (secs - old).max(0.0) / now.duration_since(then).as_secs_f64()
            }
            _ => 0.0,
        };
        self.cpu.push_back((now, secs));
        let sample = ResourceSample {
            time: now.saturating_duration_since(self.origin),
            rss_bytes: rss,
            cpu_percent,
        };
        shared
            .samples
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(sample);
    }
}

/// Resident memory from `/proc/self/status` (`VmRSS`, in kB), which needs
/// no page size.
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// CPU time of all threads of the process, in seconds: the exact clock
/// where there is one, else `/proc/self/stat`'s ticks.
fn cpu_seconds() -> Option<f64> {
    process_clock().or_else(|| {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        Some(parse_stat_ticks(&stat)? as f64 / TICKS_PER_SEC)
    })
}

#[cfg(unix)]
fn process_clock() -> Option<f64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the call to fill.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    (rc == 0).then_some(ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9)
}

#[cfg(not(unix))]
fn process_clock() -> Option<f64> {
    None
}

/// User plus system time (fields 14 and 15 of `/proc/self/stat`), in
/// clock ticks.
fn parse_stat_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) may hold spaces and parentheses: count
    // from the last `)`, which is followed by field 3.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_names() {
        let stat = "1234 (a b) c)) S 1 2 3 4 5 6 7 8 9 10 42 8 0 0 20 0";
        assert_eq!(parse_stat_ticks(stat), Some(50));
        assert_eq!(parse_stat_ticks("garbage"), None);
    }

    // Not under Miri: the sampler reads `/proc/self` and the process CPU
    // clock, which Miri does not model (and its isolation forbids).
    #[test]
    #[cfg_attr(miri, ignore = "reads /proc and the process CPU clock")]
    fn samples_while_running_and_stops() {
        let rp = ResourceProfiler::with_interval(Duration::from_millis(5));
        rp.start(1);
        rp.start(1);
        assert!(rp.is_sampling());
        // Busy on one core for 150 ms, and on until the sampler has seen
        // it (on a shared machine it may get little CPU): 10 s is a hang
        // guard, not a timing.
        let seen = |s: &[ResourceSample]| s.len() >= 5 && s.iter().any(|s| s.cpu_percent >= 30.0);
        let spin = Instant::now();
        while spin.elapsed() < Duration::from_millis(150)
            || (cfg!(target_os = "linux") && !seen(&rp.samples()))
        {
            assert!(
                spin.elapsed() < Duration::from_secs(10),
                "{:?}",
                rp.samples()
            );
            std::hint::black_box(0u64.wrapping_add(1));
        }
        rp.finish(true);
        assert!(rp.is_sampling(), "one computation still runs");
        rp.finish(true);
        assert!(!rp.is_sampling());
        let samples = rp.samples();
        if cfg!(target_os = "linux") {
            assert!(samples.len() >= 5, "{samples:?}");
            assert!(samples.windows(2).all(|w| w[0].time <= w[1].time));
            // Busy on one core for 150 ms: the windows show it.
            let busiest = samples.iter().map(|s| s.cpu_percent).fold(0.0, f64::max);
            assert!(busiest >= 30.0, "{samples:?}");
        }
        let n = samples.len();
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(rp.samples().len(), n, "no sampling after finish");
    }

    // Not under Miri: as above, the sampler's first sample reads `/proc`.
    #[test]
    #[cfg_attr(miri, ignore = "reads /proc and the process CPU clock")]
    fn drop_stops_the_thread() {
        // A long interval: the thread's one sample is its last, on stop.
        let rp = ResourceProfiler::with_interval(Duration::from_secs(3600));
        rp.start(1);
        assert!(rp.is_sampling());
        let shared = rp.shared.clone();
        let (held, wait) = channel();
        std::thread::scope(|s| {
            // Holds the samples while `rp` is dropped: the thread's last
            // sample waits for them, so a drop that did not join the
            // thread would return while it still runs.
            s.spawn(|| {
                let samples = shared.samples.lock().unwrap();
                held.send(()).unwrap();
                std::thread::sleep(Duration::from_millis(100));
                drop(samples);
            });
            wait.recv().unwrap();
            drop(rp);
            assert_eq!(
                Arc::strong_count(&shared),
                1,
                "the sampling thread outlived the profiler"
            );
        });
        let n = shared.samples.lock().unwrap().len();
        if cfg!(target_os = "linux") {
            assert_eq!(n, 1, "the last sample is taken before the drop returns");
        }
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(
            shared.samples.lock().unwrap().len(),
            n,
            "sampled after drop"
        );
    }
}
