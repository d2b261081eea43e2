//! A progress bar on stderr (dask's `ProgressBar`), drawn by indicatif.

use crate::callbacks::Callback;
use crate::Key;
use indicatif::{ProgressDrawTarget, ProgressState, ProgressStyle};
use std::sync::{Mutex, RwLock};
use std::time::Duration;

/// Redraws per second: enough to look alive, few enough that a computation
/// of a million tiny tasks does not spend its time drawing.
const REFRESH_HZ: u8 = 10;

/// Shows tasks done / total, the rate and the time left on stderr while a
/// computation runs. When stderr is not a terminal (a pipe, a file, CI
/// logs) it draws nothing and costs one atomic add per task.
///
/// Several computations sharing one bar at once (a registered bar and
/// concurrent computes) add up into one bar.
///
/// ```
/// use rdask::prelude::*;
/// use std::sync::Arc;
///
/// let xs: Vec<_> = (0..100).map(|i| rdask::value(i) * 2).collect();
/// let out = rdask::with_callbacks(vec![Arc::new(rdask::ProgressBar::new())], || {
///     rdask::compute(&xs)
/// })?;
/// assert_eq!(out[99], 198);
/// # Ok::<(), rdask::Error>(())
/// ```
pub struct ProgressBar {
    target: Box<dyn Fn() -> ProgressDrawTarget + Send + Sync>,
    /// How many computations are using the bar.
    running: Mutex<usize>,
    bar: RwLock<Option<indicatif::ProgressBar>>,
    /// Attempts that failed (a task with retries may fail and run again):
    /// shown beside the count, which counts tasks done.
    failures: std::sync::atomic::AtomicUsize,
    /// Cached tasks found in the cache, and not.
    hits: std::sync::atomic::AtomicUsize,
    misses: std::sync::atomic::AtomicUsize,
}

impl Default for ProgressBar {
    fn default() -> Self {
        ProgressBar::new()
    }
}

impl std::fmt::Debug for ProgressBar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProgressBar").finish_non_exhaustive()
    }
}

impl ProgressBar {
    /// A bar on stderr, redrawn at most 10 times a second.
    pub fn new() -> ProgressBar {
        ProgressBar::with_target(|| ProgressDrawTarget::stderr_with_hz(REFRESH_HZ))
    }

    /// A bar drawn wherever `target` says (tests draw into memory).
    pub(crate) fn with_target(
        target: impl Fn() -> ProgressDrawTarget + Send + Sync + 'static,
    ) -> ProgressBar {
        ProgressBar {
            target: Box::new(target),
            running: Mutex::new(0),
            bar: RwLock::new(None),
            failures: std::sync::atomic::AtomicUsize::new(0),
            hits: std::sync::atomic::AtomicUsize::new(0),
            misses: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    fn style() -> ProgressStyle {
        let template = "{spinner} [{elapsed_precise}] [{wide_bar:.cyan/blue}] {pos}/{len} tasks \
                        ({percent}%) | {rate} | ETA {eta} {msg}";
        ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .with_key("rate", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                let r = s.per_sec();
                let _ = match r {
                    r if !r.is_finite() => write!(w, "- tasks/s"),
                    r if r >= 100.0 => write!(w, "{r:.0} tasks/s"),
                    r if r >= 10.0 => write!(w, "{r:.1} tasks/s"),
                    r => write!(w, "{r:.2} tasks/s"),
                };
            })
            .progress_chars("#>-")
    }
}

impl Callback for ProgressBar {
    fn start(&self, tasks: usize) {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        *running += 1;
        let mut bar = self.bar.write().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = bar.as_ref() {
            b.inc_length(tasks as u64);
            return;
        }
        if *running > 1 {
            // A hidden bar is shared too: nothing to do.
            return;
        }
        let target = (self.target)();
        if target.is_hidden() {
            return;
        }
        let b = indicatif::ProgressBar::with_draw_target(Some(tasks as u64), target)
            .with_style(ProgressBar::style());
        // Ticks keep the clock and spinner moving during long tasks.
        b.enable_steady_tick(Duration::from_millis(1000 / u64::from(REFRESH_HZ)));
        *bar = Some(b);
    }

    fn posttask(&self, _key: &Key, _worker: usize, _elapsed: Duration, ok: bool) {
        if let Some(b) = self.bar.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
            if ok {
                b.inc(1);
            } else {
                let n = 1 + self
                    .failures
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let s = if n == 1 { "" } else { "s" };
                b.set_message(format!("{n} failed attempt{s}"));
            }
        }
    }

    fn cached(&self, _key: &Key, hit: bool) {
        use std::sync::atomic::Ordering::Relaxed;
        let counter = if hit { &self.hits } else { &self.misses };
        counter.fetch_add(1, Relaxed);
        if let Some(b) = self.bar.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
            b.set_message(format!(
                "cache: {} hits, {} misses",
                self.hits.load(Relaxed),
                self.misses.load(Relaxed)
            ));
        }
    }

    fn finish(&self, ok: bool) {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        *running = running.saturating_sub(1);
        if *running > 0 {
            return;
        }
        let bar = self.bar.write().unwrap_or_else(|e| e.into_inner()).take();
        use std::sync::atomic::Ordering::Relaxed;
        let failures = self.failures.swap(0, Relaxed);
        let (hits, misses) = (self.hits.swap(0, Relaxed), self.misses.swap(0, Relaxed));
        let mut notes = Vec::new();
        if failures > 0 {
            let s = if failures == 1 { "" } else { "s" };
            notes.push(format!("{failures} failed attempt{s} retried"));
        }
        if hits + misses > 0 {
            notes.push(format!("cache: {hits} hits, {misses} misses"));
        }
        let notes = match notes.is_empty() {
            true => String::new(),
            false => format!(" ({})", notes.join("; ")),
        };
        if let Some(b) = bar {
            match ok {
                true => b.finish_with_message(format!("done{notes}")),
                false => b.abandon_with_message(format!("failed{notes}")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use indicatif::TermLike;
    use std::sync::Arc;

    /// A terminal that keeps what is written to it.
    #[derive(Debug, Clone, Default)]
    struct Screen(Arc<Mutex<String>>);

    impl TermLike for Screen {
        fn width(&self) -> u16 {
            120
        }
        fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn write_line(&self, s: &str) -> std::io::Result<()> {
            self.0.lock().unwrap().push_str(&format!("{s}\n"));
            Ok(())
        }
        fn write_str(&self, s: &str) -> std::io::Result<()> {
            self.0.lock().unwrap().push_str(s);
            Ok(())
        }
        fn clear_line(&self) -> std::io::Result<()> {
            Ok(())
        }
        fn flush(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn on_screen() -> (ProgressBar, Screen) {
        let screen = Screen::default();
        let s = screen.clone();
        let bar = ProgressBar::with_target(move || {
            ProgressDrawTarget::term_like_with_hz(Box::new(s.clone()), REFRESH_HZ)
        });
        (bar, screen)
    }

    #[test]
    fn draws_done_and_total() {
        let (bar, screen) = on_screen();
        let bar = Arc::new(bar);
        let xs: Vec<_> = (0..50).map(|i| crate::value(i) + 1).collect();
        let out = crate::Compute::new(&xs).callback(bar).run().unwrap();
        assert_eq!(out.len(), 50);
        let text = screen.0.lock().unwrap().clone();
        assert!(text.contains("100/100 tasks"), "{text}");
        assert!(text.contains("done"), "{text}");
        assert!(text.contains("tasks/s"), "{text}");
    }

    #[test]
    fn says_failed() {
        let (bar, screen) = on_screen();
        bar.start(3);
        bar.posttask(&Key::from("a"), 0, Duration::ZERO, false);
        bar.finish(false);
        let text = screen.0.lock().unwrap().clone();
        // A failure is not a task done (a retry may still do it).
        assert!(text.contains("0/3 tasks"), "{text}");
        assert!(text.contains("failed"), "{text}");
    }

    #[test]
    fn counts_retried_failures_apart() {
        let (bar, screen) = on_screen();
        bar.start(2);
        bar.posttask(&Key::from("a"), 0, Duration::ZERO, false);
        bar.posttask(&Key::from("a"), 0, Duration::ZERO, true);
        bar.posttask(&Key::from("b"), 0, Duration::ZERO, true);
        bar.finish(true);
        let text = screen.0.lock().unwrap().clone();
        assert!(text.contains("2/2 tasks"), "{text}");
        assert!(text.contains("done (1 failed attempt retried)"), "{text}");
    }

    #[test]
    fn shows_cache_hits_and_misses() {
        let (bar, screen) = on_screen();
        bar.start(3);
        bar.cached(&Key::from("a"), true);
        bar.cached(&Key::from("b"), true);
        bar.cached(&Key::from("c"), false);
        bar.finish(true);
        let text = screen.0.lock().unwrap().clone();
        assert!(text.contains("cache: 2 hits, 1 misses"), "{text}");
    }

    #[test]
    fn concurrent_computations_share_one_bar() {
        let (bar, screen) = on_screen();
        bar.start(2);
        bar.start(3);
        for _ in 0..5 {
            bar.posttask(&Key::from("a"), 0, Duration::ZERO, true);
        }
        bar.finish(true);
        assert!(bar.bar.read().unwrap().is_some());
        bar.finish(true);
        assert!(bar.bar.read().unwrap().is_none());
        let text = screen.0.lock().unwrap().clone();
        assert!(text.contains("5/5 tasks"), "{text}");
    }

    #[test]
    fn hidden_target_draws_nothing() {
        let bar = ProgressBar::with_target(ProgressDrawTarget::hidden);
        bar.start(2);
        assert!(bar.bar.read().unwrap().is_none());
        bar.posttask(&Key::from("a"), 0, Duration::ZERO, true);
        assert!(bar.bar.read().unwrap().is_none());
        bar.finish(true);
        assert!(bar.bar.read().unwrap().is_none());
        assert_eq!(*bar.running.lock().unwrap(), 0);
    }
}
