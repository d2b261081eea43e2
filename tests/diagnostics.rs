//! Diagnostics: the profile page (one bar per task, well-formed, summary
//! counts, merged bars past the limit), the resource sampler's thread, and
//! `visualize` (valid SVG through Graphviz, the missing-`dot` error, large
//! graphs summarised, awkward keys escaped in it and in `Graph::to_dot`).

use rdask::diagnostics::{labelled_dot, visualize_with_dot, SUMMARY_THRESHOLD};
use rdask::graph::key;
use rdask::prelude::*;
use rdask::{Compute, ErrorKind, Graph, Profiler, ProgressBar, ResourceProfiler, Visualize};
use std::sync::Arc;
use std::time::Duration;

#[delayed]
fn inc(x: i64) -> i64 {
    x + 1
}

#[delayed]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

#[delayed]
fn nap(x: i64, ms: u64) -> i64 {
    std::thread::sleep(Duration::from_millis(ms));
    x
}

#[delayed]
fn fail(x: i64) -> Result<i64, String> {
    Err(format!("no {x}"))
}

/// `n` incs feeding a chain of adds: `2n - 1` tasks.
fn sums(n: i64) -> Delayed<i64> {
    let mut total = inc(0);
    for i in 1..n {
        total = add(total, inc(i));
    }
    total
}

fn parse(text: &str) -> roxmltree::Document<'_> {
    let opts = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    roxmltree::Document::parse_with_options(text, opts)
        .unwrap_or_else(|e| panic!("not well-formed: {e}\n{text}"))
}

fn has_class(n: &roxmltree::Node, class: &str) -> bool {
    n.attribute("class")
        .is_some_and(|c| c.split_whitespace().any(|c| c == class))
}

/// Fails the test unless Graphviz's `dot` runs: the SVG checks never
/// skip quietly.
fn require_dot() {
    let ok = std::process::Command::new("dot")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "this test needs Graphviz's `dot`: install graphviz (apt-get install graphviz, \
         brew install graphviz, or https://graphviz.org/download/)"
    );
}

/// Graphviz's SVG of the DOT text `source`; panics with its complaint if
/// `dot` refuses it.
fn svg_of(source: &str) -> String {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let mut child = Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(source.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "dot refused it ({}): {stderr}\n{source}",
        out.status
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The `<g class=...>` groups of a Graphviz SVG: nodes and edges.
fn count_class(doc: &roxmltree::Document, class: &str) -> usize {
    doc.descendants()
        .filter(|n| n.has_tag_name("g") && has_class(n, class))
        .count()
}

#[test]
fn profile_page_has_one_bar_per_task_and_parses() {
    let prof = Arc::new(Profiler::new());
    let d = sums(20);
    let out = Compute::new(std::slice::from_ref(&d))
        .scheduler(Scheduler::threads(2))
        .callback(prof.clone())
        .callback(Arc::new(ProgressBar::new()))
        .run()
        .unwrap();
    assert_eq!(out, vec![(1..=20).sum::<i64>()]);
    let records = prof.records();
    assert_eq!(records.len(), 39);
    assert!(records.iter().all(|r| r.end >= r.start && r.ok));
    assert!(records.windows(2).all(|w| w[0].start <= w[1].start));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/profile.html");
    prof.write_html(&path).unwrap();
    let html = std::fs::read_to_string(&path).unwrap();
    let doc = parse(&html);
    let bars: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("rect") && has_class(n, "task"))
        .collect();
    assert_eq!(bars.len(), records.len());
    // Every key is on exactly one bar's hover text, with a duration.
    for r in &records {
        let key = r.key.to_string();
        let hits = bars
            .iter()
            .filter(|b| {
                let title = b.first_element_child().and_then(|t| t.text()).unwrap_or("");
                title.lines().next() == Some(key.as_str())
            })
            .count();
        assert_eq!(hits, 1, "{key}");
    }
    let colour_of = |prefix: &str| -> Vec<&str> {
        let mut c: Vec<&str> = bars
            .iter()
            .filter(|b| {
                b.first_element_child()
                    .and_then(|t| t.text())
                    .unwrap_or("")
                    .starts_with(prefix)
            })
            .filter_map(|b| b.attribute("fill"))
            .collect();
        c.dedup();
        c
    };
    let (inc_colour, add_colour) = (colour_of("inc-"), colour_of("add-"));
    assert_eq!(inc_colour.len(), 1, "one colour per function");
    assert_eq!(add_colour.len(), 1);
    assert_ne!(inc_colour, add_colour);
    // Self-contained: nothing loaded from elsewhere.
    for bad in ["<script", "<link", "src=", "href=", "@import", "url("] {
        assert!(!html.contains(bad), "{bad}");
    }
    assert!(html.contains("<table>") && html.contains(">inc</td>"));
}

#[test]
fn summary_counts_tasks_and_failures() {
    let prof = Arc::new(Profiler::new());
    let ok = sums(5);
    Compute::new(std::slice::from_ref(&ok))
        .callback(prof.clone())
        .run()
        .unwrap();
    let bad = add(inc(1), fail(2));
    let err = Compute::new(std::slice::from_ref(&bad))
        .scheduler(Scheduler::Sync)
        .callback(prof.clone())
        .run()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Task);
    let summary = prof.summary();
    let get = |name: &str| summary.iter().find(|s| s.name == name).unwrap().clone();
    let (i, a, f) = (get("inc"), get("add"), get("fail"));
    assert_eq!((i.count, i.failed), (6, 0));
    assert_eq!((a.count, a.failed), (4, 0));
    assert_eq!((f.count, f.failed), (1, 1));
    assert_eq!(summary.len(), 3);
    assert!(i.mean <= i.max && i.max <= i.total);
    let html = prof.to_html(None);
    parse(&html);
    assert_eq!(html.matches("class=\"task failed\"").count(), 1);

    prof.clear();
    assert!(prof.records().is_empty() && prof.summary().is_empty());
    parse(&prof.to_html(None));
}

#[test]
fn large_profiles_merge_bars() {
    let prof = Arc::new(Profiler::new());
    let xs: Vec<_> = (0..13_000).map(|i| rdask::value(i) + 1).collect();
    Compute::new(&xs)
        .scheduler(Scheduler::threads(2))
        .callback(prof.clone())
        .run()
        .unwrap();
    assert_eq!(prof.records().len(), 26_000);
    const { assert!(26_000 > Profiler::BAR_LIMIT) };
    let html = prof.to_html(None);
    let doc = parse(&html);
    assert!(html.contains("bars are merged"));
    let task_bars = doc.descendants().filter(|n| has_class(n, "task")).count();
    let merged = doc.descendants().filter(|n| has_class(n, "merged")).count();
    assert_eq!(task_bars, 0);
    assert!(merged > 0 && merged <= 2 * 1200, "{merged}");
    assert!(html.len() < 1_500_000, "{} bytes", html.len());
    // The table still counts every task.
    let summary = prof.summary();
    assert_eq!(summary.iter().map(|s| s.count).sum::<usize>(), 26_000);
}

#[test]
fn resource_profiler_samples_and_stops() {
    let prof = Arc::new(Profiler::new());
    let res = Arc::new(ResourceProfiler::new());
    let d = nap(inc(1), 200);
    let out = rdask::with_callbacks(vec![prof.clone(), res.clone()], || d.compute()).unwrap();
    assert_eq!(out, 2);
    assert!(!res.is_sampling(), "the sampling thread stopped at finish");
    let samples = res.samples();
    if cfg!(target_os = "linux") {
        assert!(!samples.is_empty());
        assert!(samples
            .iter()
            .all(|s| s.rss_bytes > 0 && s.cpu_percent >= 0.0));
        assert!(samples.last().unwrap().time >= Duration::from_millis(150));
    }
    let n = samples.len();
    std::thread::sleep(Duration::from_millis(60));
    assert_eq!(res.samples().len(), n, "nothing sampled after finish");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("profile.html");
    prof.write_html_with(&path, &res).unwrap();
    let html = std::fs::read_to_string(&path).unwrap();
    let doc = parse(&html);
    let lines = doc
        .descendants()
        .filter(|n| n.has_tag_name("polyline"))
        .count();
    if cfg!(target_os = "linux") {
        assert_eq!(lines, 2, "memory and CPU charts");
    }
    assert!(html.contains("memory (RSS, MiB)") && html.contains("CPU (% of one core)"));
}

#[test]
fn resource_profiler_stops_on_drop() {
    let res = ResourceProfiler::with_interval(Duration::from_millis(5));
    rdask::callbacks::Callback::start(&res, 1);
    assert!(res.is_sampling());
    let state = res.sampler_state();
    drop(res);
    // The drop joined the thread, which held the last reference.
    assert_eq!(
        state.strong_count(),
        0,
        "the sampling thread outlived the profiler"
    );
}

#[test]
fn dot_output_labels_by_function() {
    let dir = tempfile::tempdir().unwrap();
    let a = inc(1);
    let outs = vec![add(a.clone(), inc(a.clone())), inc(a)];
    let path = dir.path().join("g.dot");
    rdask::visualize(&outs, &path).unwrap();
    let dot = std::fs::read_to_string(&path).unwrap();
    assert!(dot.starts_with("digraph"));
    // inc(1) is shared: 4 nodes, 4 edges.
    assert_eq!(dot.matches("[label=").count(), 4, "{dot}");
    assert_eq!(dot.matches(" -> ").count(), 4, "{dot}");
    assert_eq!(dot.matches("label=\"inc\"").count(), 3, "{dot}");
    // Two outputs, drawn thick.
    assert_eq!(dot.matches("penwidth=2.5").count(), 2, "{dot}");
    // Slices, arrays, single values and raw graphs draw too.
    outs[..].visualize(dir.path().join("s.gv")).unwrap();
    [outs[0].clone()]
        .visualize(dir.path().join("arr.dot"))
        .unwrap();
    outs[1].visualize(dir.path().join("one.dot")).unwrap();
    let mut g = Graph::new();
    g.insert_value("x", 1_i64);
    rdask::visualize(&g, dir.path().join("raw.dot")).unwrap();
    // A path needs an extension to pick the format.
    let e = outs[0].visualize(dir.path().join("noext")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Io);
    assert!(e.to_string().contains("extension"), "{e}");
}

#[test]
fn visualize_writes_valid_svg() {
    require_dot();
    let dir = tempfile::tempdir().unwrap();
    let d = sums(4);
    let path = dir.path().join("graph.svg");
    d.visualize(&path).unwrap();
    let svg = std::fs::read_to_string(&path).unwrap();
    let doc = parse(&svg);
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let nodes: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("g") && has_class(n, "node"))
        .collect();
    assert_eq!(nodes.len(), 7);
    let edges = doc
        .descendants()
        .filter(|n| n.has_tag_name("g") && has_class(n, "edge"))
        .count();
    assert_eq!(edges, 6);
    let labels: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text())
        .collect();
    assert_eq!(labels.iter().filter(|l| **l == "inc").count(), 4);
    assert_eq!(labels.iter().filter(|l| **l == "add").count(), 3);

    // PNG too, by extension.
    let png = dir.path().join("graph.png");
    d.visualize(&png).unwrap();
    let bytes = std::fs::read(&png).unwrap();
    assert!(bytes.starts_with(b"\x89PNG"));
    // A format Graphviz does not know is its error, passed on.
    let e = d
        .visualize(dir.path().join("graph.nosuchformat"))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Io);
}

#[test]
fn missing_dot_writes_dot_file_and_says_how_to_install() {
    let dir = tempfile::tempdir().unwrap();
    let d = sums(3);
    let path = dir.path().join("pics/graph.svg");
    let e = visualize_with_dot(&d, &path, dir.path().join("no-such-dot")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Io);
    let msg = e.to_string();
    assert!(msg.contains("apt-get install graphviz"), "{msg}");
    assert!(msg.contains("graph.dot"), "{msg}");
    assert!(!path.exists());
    let dot = std::fs::read_to_string(dir.path().join("pics/graph.dot")).unwrap();
    assert!(dot.starts_with("digraph") && dot.contains("label=\"add\""));
}

#[test]
fn large_graphs_are_summarised() {
    // 10,000 nodes: 5,000 incs, 4,999 adds and one final inc.
    let xs: Vec<_> = (0..5_000).map(inc).collect();
    let mut level = xs;
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|c| match c {
                [a, b] => add(a.clone(), b.clone()),
                [a] => a.clone(),
                _ => unreachable!(),
            })
            .collect();
    }
    let top = inc(level.pop().unwrap());
    let g = top.graph();
    assert_eq!(g.len(), 10_000);
    assert!(g.len() > SUMMARY_THRESHOLD);
    let dot = labelled_dot(&g);
    let nodes: Vec<&str> = dot
        .lines()
        .map(str::trim_start)
        .filter(|l| {
            l.starts_with('g')
                && l[1..].starts_with(|c: char| c.is_ascii_digit())
                && !l.contains("->")
        })
        .collect();
    assert_eq!(nodes.len(), 2, "{dot}");
    assert!(dot.contains("\"inc\\n× 5,001\""), "{dot}");
    assert!(dot.contains("\"add\\n× 4,999\""), "{dot}");
    assert!(
        dot.contains("label=\" × 5,000\""),
        "inc -> add edges: {dot}"
    );
    assert!(dot.len() < 2_000, "{}", dot.len());
    require_dot();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.svg");
    top.visualize(&path).unwrap();
    parse(&std::fs::read_to_string(&path).unwrap());
}

fn plus(a: i64, b: i64) -> i64 {
    a + b
}

/// Keys DOT must escape: quotes, backslashes (one before Graphviz's `\N`,
/// one at the end), line feeds and carriage returns, and a BEL, which SVG
/// cannot hold; the second is the first's escaped spelling, which must stay
/// a different node.
const AWKWARD: [&str; 4] = [
    "say \"hi\"\\there\nnext line",
    "say \\\"hi\\\"\\\\there\\nnext line",
    "sum \\N of\r\nall\u{7}",
    "end\\",
];

/// Four nodes and four edges, every key awkward.
fn awkward_graph() -> Graph {
    let [a, b, c, d] = AWKWARD;
    let mut g = Graph::new();
    g.insert_value(a, 1_i64)
        .insert_value(b, 2_i64)
        .insert_task(c, plus, (key(a), key(b)))
        .insert_task(d, plus, (key(c), key(a)));
    g
}

#[test]
fn awkward_keys_make_valid_dot() {
    let g = awkward_graph();
    // One statement a line: header, 4 nodes, 4 edges, `}`.
    let raw = g.to_dot();
    assert_eq!(raw.lines().count(), 3 + 4 + 4 + 1, "{raw}");
    assert!(
        raw.contains(
            "  \"say \\\"hi\\\"\\\\there\\nnext line\" \
         [label=\"say \\\"hi\\\"\\\\there\\nnext line\\nvalue\", shape=box];\n"
        ),
        "{raw}"
    );
    assert!(
        raw.contains("  \"sum \\\\N of\\r\\nall\" -> \"end\\\\\";\n"),
        "{raw}"
    );
    let drawn = labelled_dot(&g);
    assert_eq!(drawn.lines().count(), 4 + 4 + 4 + 1, "{drawn}");
    assert!(!raw.contains('\r') && !drawn.contains('\r'));
    require_dot();

    // Graphviz reads both, finds every node and edge, and labels `to_dot`'s
    // nodes with the keys' text, line by line, `\N` not replaced, BEL
    // dropped.
    let svg = svg_of(&raw);
    let doc = parse(&svg);
    assert_eq!(
        (count_class(&doc, "node"), count_class(&doc, "edge")),
        (4, 4)
    );
    let texts: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text())
        .collect();
    for line in AWKWARD.iter().flat_map(|k| k.split(['\n', '\r'])) {
        let line = line.replace('\u{7}', "");
        if !line.is_empty() {
            assert!(texts.contains(&&*line), "{line:?} not in {texts:?}");
        }
    }

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("awkward.svg");
    rdask::visualize(&g, &path).unwrap();
    let svg = std::fs::read_to_string(&path).unwrap();
    let doc = parse(&svg);
    assert_eq!(
        (count_class(&doc, "node"), count_class(&doc, "edge")),
        (4, 4)
    );
    // Tooltips carry the keys. (Graphviz 2.43 reads a tooltip's
    // backslashes twice, so only keys that survive that are compared.)
    let tooltips: Vec<&str> = doc
        .descendants()
        .filter_map(|n| n.attribute(("http://www.w3.org/1999/xlink", "title")))
        .collect();
    for k in [AWKWARD[0], AWKWARD[3]] {
        assert!(tooltips.contains(&k), "{k:?} not in {tooltips:?}");
    }
}

#[test]
fn progress_bar_is_silent_when_stderr_is_not_a_terminal() {
    // Runs the test below in a child process whose stderr is a pipe, with a
    // TERM that would otherwise draw: nothing may reach stderr.
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["progress_bar_child", "--exact", "--ignored", "--nocapture"])
        .env("TERM", "xterm-256color")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("1 passed"), "{stdout}");
    assert!(!stderr.contains("tasks"), "drew on a pipe: {stderr:?}");
}

/// Computes with a progress bar (run by the test above).
#[test]
#[ignore = "run as a child process by progress_bar_is_silent_when_stderr_is_not_a_terminal"]
fn progress_bar_child() {
    let bar: Arc<dyn rdask::Callback> = Arc::new(ProgressBar::new());
    let xs: Vec<_> = (0..200).map(inc).collect();
    let out = rdask::with_callbacks(vec![bar.clone()], || rdask::compute(&xs)).unwrap();
    assert_eq!(out.len(), 200);
    let failed = rdask::with_callbacks(vec![bar], || {
        Compute::new(std::slice::from_ref(&fail(1))).run()
    });
    assert!(failed.is_err());
}
