//! Diagnostics: see a computation (dask's `dask.diagnostics`).
//!
//! All of them are [`Callback`](crate::Callback)s, attached like any other
//! (per computation with [`Compute::callback`](crate::Compute::callback),
//! in a scope with [`with_callbacks`](crate::with_callbacks), or globally
//! with [`register`](crate::callbacks::register)), except [`visualize`],
//! which draws a graph without running it.
//!
//! * [`ProgressBar`]: tasks done / total, rate and ETA on stderr (silent
//!   when stderr is not a terminal).
//! * [`Profiler`]: when each task ran on which worker; writes a
//!   self-contained HTML timeline and a per-function summary.
//! * [`ResourceProfiler`]: the process's memory (RSS) and CPU over time,
//!   drawn under the [`Profiler`]'s timeline.
//! * [`CacheProfiler`]: each result's size (or any metric) and how long it
//!   was held, and the most held at once.
//! * [`visualize`] / [`Visualize`]: a picture of the graph through Graphviz.
//!
//! ```
//! use rdask::prelude::*;
//! use rdask::{Profiler, ProgressBar, ResourceProfiler};
//! use std::sync::Arc;
//!
//! #[delayed]
//! fn inc(x: i64) -> i64 { x + 1 }
//!
//! let prof = Arc::new(Profiler::new());
//! let res = Arc::new(ResourceProfiler::new());
//! let total = rdask::with_callbacks(
//!     vec![Arc::new(ProgressBar::new()), prof.clone(), res.clone()],
//!     || inc(inc(1)).compute(),
//! )?;
//! assert_eq!(total, 3);
//! assert_eq!(prof.records().len(), 2);
//! let path = std::env::temp_dir().join("rdask-doc-diagnostics.html");
//! prof.write_html_with(&path, &res)?;
//! # Ok::<(), rdask::Error>(())
//! ```

mod cache_profile;
mod profile;
mod progress;
mod resource;
mod visualize;

pub use cache_profile::{CacheProfiler, CacheRecord};
pub use profile::{FunctionSummary, Profiler, TaskRecord};
pub use progress::ProgressBar;
pub use resource::{ResourceProfiler, ResourceSample};
pub use visualize::{labelled_dot, visualize, visualize_with_dot, Visualize, SUMMARY_THRESHOLD};

use crate::{Error, ErrorKind};
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

/// An [`ErrorKind::Io`] error about `what`.
fn io_error(what: impl std::fmt::Display, e: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Io, None, format!("{what}: {e}"))
}

/// Writes `contents` to `path`, creating its folder if needed.
fn write_file(path: &Path, contents: &[u8]) -> crate::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| io_error(format_args!("cannot create `{}`", dir.display()), e))?;
    }
    std::fs::write(path, contents)
        .map_err(|e| io_error(format_args!("cannot write `{}`", path.display()), e))
}

/// Escapes text for XML/HTML content and attribute values.
fn escape_xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters are not allowed in XML 1.0.
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// Ten strong colours (tab10), then their light variants.
const PALETTE: [&str; 20] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94",
    "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5",
];

/// FNV-1a: a hash that is the same in every run and on every platform, so
/// a function keeps its colour from one picture to the next.
fn stable_hash(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// A colour for each name: each name prefers the strong colour its hash
/// picks, so it looks the same in every picture; names that collide move
/// to the next free colour (in name order, so still deterministic); past
/// twenty names, a hashed hue.
fn colours<'a>(names: impl IntoIterator<Item = &'a str>) -> HashMap<String, String> {
    let mut names: Vec<&str> = names.into_iter().collect();
    names.sort_unstable();
    names.dedup();
    let mut taken = [false; PALETTE.len()];
    let mut out = HashMap::with_capacity(names.len());
    for name in names {
        let h = stable_hash(name);
        let strong = (h % 10) as usize;
        let slot = (0..10)
            .map(|i| (strong + i) % 10)
            .chain((0..10).map(|i| 10 + (strong + i) % 10))
            .find(|&i| !taken[i]);
        let colour = match slot {
            Some(i) => {
                taken[i] = true;
                PALETTE[i].to_string()
            }
            None => hsl_hex((h >> 8) % 360, 55, 55),
        };
        out.insert(name.to_string(), colour);
    }
    out
}

/// `#rrggbb` for a hue (degrees), saturation and lightness (percent).
fn hsl_hex(h: u64, s: u32, l: u32) -> String {
    let (h, s, l) = (h as f64 / 360.0, f64::from(s) / 100.0, f64::from(l) / 100.0);
    let q = if l < 0.5 {
        l * (1.0 + s)
    } else {
        l + s - l * s
    };
    let p = 2.0 * l - q;
    let channel = |t: f64| {
        let t = t.rem_euclid(1.0);
        let v = if t < 1.0 / 6.0 {
            p + (q - p) * 6.0 * t
        } else if t < 0.5 {
            q
        } else if t < 2.0 / 3.0 {
            p + (q - p) * (2.0 / 3.0 - t) * 6.0
        } else {
            p
        };
        (v * 255.0).round() as u8
    };
    let (r, g, b) = (channel(h + 1.0 / 3.0), channel(h), channel(h - 1.0 / 3.0));
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// `colour` mixed with white (`amount` 0 to 1), for fills behind text.
fn lighten(colour: &str, amount: f64) -> String {
    let c = colour.trim_start_matches('#');
    let ch = |i: usize| u8::from_str_radix(c.get(i..i + 2).unwrap_or("80"), 16).unwrap_or(128);
    let mix = |v: u8| (f64::from(v) + (255.0 - f64::from(v)) * amount).round() as u8;
    format!("#{:02x}{:02x}{:02x}", mix(ch(0)), mix(ch(2)), mix(ch(4)))
}

/// A duration for people: `850 µs`, `12.3 ms`, `4.56 s`.
fn human(d: Duration) -> String {
    human_secs(d.as_secs_f64())
}

/// Three significant digits at most, in µs, ms or s.
fn human_secs(s: f64) -> String {
    let (v, unit) = if s < 1e-3 {
        (s * 1e6, "µs")
    } else if s < 1.0 {
        (s * 1e3, "ms")
    } else {
        (s, "s")
    };
    let decimals = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    let text = format!("{v:.decimals$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        &text
    };
    format!("{text} {unit}")
}

/// A round step for about `ticks` marks over `range`: 1, 2 or 5 times a
/// power of ten.
fn nice_step(range: f64, ticks: f64) -> f64 {
    if range <= 0.0 || !range.is_finite() {
        return 1.0;
    }
    let raw = range / ticks;
    let mag = 10f64.powf(raw.log10().floor());
    // `log10` and `powf` need not be exact (Miri makes them as inexact as
    // they may be): a `raw` of exactly 1, 2 or 5 times a power of ten may
    // come out a hair above it, and must not round up to the next step.
    let norm = raw / mag * (1.0 - 1e-9);
    let m = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    m * mag
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_are_stable_and_distinct() {
        let a = colours(["inc", "add", "load", "sum"]);
        let b = colours(["sum", "inc", "zzz", "add", "load"]);
        assert_eq!(a["inc"], b["inc"]);
        let mut all: Vec<_> = a.values().collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 4);
        let many = colours((0..40).map(|i| Box::leak(format!("f{i}").into_boxed_str()) as &str));
        assert_eq!(many.len(), 40);
        assert!(many.values().all(|c| c.len() == 7 && c.starts_with('#')));
    }

    #[test]
    fn helpers() {
        assert_eq!(escape_xml("<a & 'b'>"), "&lt;a &amp; &#39;b&#39;&gt;");
        assert_eq!(human(Duration::from_micros(850)), "850 µs");
        assert_eq!(human(Duration::from_nanos(8_500)), "8.5 µs");
        assert_eq!(human(Duration::from_micros(473_997)), "474 ms");
        assert_eq!(human(Duration::from_micros(5_081)), "5.08 ms");
        assert_eq!(human(Duration::from_micros(12_300)), "12.3 ms");
        assert_eq!(human(Duration::from_millis(4_560)), "4.56 s");
        assert_eq!(human(Duration::from_secs(10)), "10 s");
        // Within rounding: `powf` and `log10` need not be exact (Miri, for
        // one, makes them as inexact as they may be).
        assert!((nice_step(1.0, 10.0) - 0.1).abs() < 1e-12);
        assert!((nice_step(0.35, 8.0) - 0.05).abs() < 1e-12);
        assert_eq!(lighten("#000000", 0.5), "#808080");
        assert_eq!(hsl_hex(0, 100, 50), "#ff0000");
    }
}
