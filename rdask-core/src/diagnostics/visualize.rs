//! Pictures of task graphs (dask's `visualize`), drawn by Graphviz.

use super::{colours, io_error, lighten, write_file};
use crate::dot::{quote, Dot, Id};
use crate::node::Op;
use crate::{Delayed, Error, ErrorKind, Graph, Key, Result};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

/// Graphs with more nodes than this are drawn grouped: one node per
/// function with its count, one edge per pair of functions with theirs.
/// Graphviz takes long and draws an unreadable tangle on bigger ones.
pub const SUMMARY_THRESHOLD: usize = 2_000;

/// Things whose graph can be drawn: a [`Graph`], a [`Delayed`], or several
/// `Delayed`s (a slice, array or `Vec`: their merged graph, shared tasks
/// drawn once).
///
/// ```
/// use rdask::prelude::*;
/// use rdask::Visualize;
///
/// #[delayed]
/// fn inc(x: i64) -> i64 { x + 1 }
/// #[delayed]
/// fn add(a: i64, b: i64) -> i64 { a + b }
///
/// let a = inc(1);
/// let total = add(a.clone(), inc(a));
/// let path = std::env::temp_dir().join("rdask-doc-graph.dot");
/// total.visualize(&path)?; // `.svg`, `.png` or `.pdf` need Graphviz
/// let dot = std::fs::read_to_string(&path).unwrap();
/// assert!(dot.contains("label=\"add\"") && dot.contains("label=\"inc\""));
/// # Ok::<(), rdask::Error>(())
/// ```
pub trait Visualize {
    /// The graph that [`visualize`](Self::visualize) draws.
    fn visualize_graph(&self) -> Cow<'_, Graph>;

    /// Draws the graph into `path`, in the format its extension names
    /// (`svg`, `png`, `pdf`, ... through Graphviz `dot`; `dot` or `gv` for
    /// the DOT text alone). See [`visualize`](fn@visualize).
    fn visualize(&self, path: impl AsRef<Path>) -> Result<()> {
        visualize(self, path)
    }
}

impl Visualize for Graph {
    fn visualize_graph(&self) -> Cow<'_, Graph> {
        Cow::Borrowed(self)
    }
}

impl<T> Visualize for Delayed<T> {
    fn visualize_graph(&self) -> Cow<'_, Graph> {
        Cow::Owned(self.graph())
    }
}

impl<T> Visualize for [Delayed<T>] {
    fn visualize_graph(&self) -> Cow<'_, Graph> {
        let roots: Vec<_> = self.iter().map(|d| d.node.clone()).collect();
        Cow::Owned(Graph::from_nodes(&roots))
    }
}

impl<T> Visualize for Vec<Delayed<T>> {
    fn visualize_graph(&self) -> Cow<'_, Graph> {
        self.as_slice().visualize_graph()
    }
}

impl<T, const N: usize> Visualize for [Delayed<T>; N] {
    fn visualize_graph(&self) -> Cow<'_, Graph> {
        self.as_slice().visualize_graph()
    }
}

/// Draws the graph of `what` (a [`Graph`], a [`Delayed`], or a slice or
/// `Vec` of them) into `path`: each task labelled by its function and
/// coloured by it, values as boxes, outputs with a thick border, edges from
/// inputs to the tasks that use them. Graphs of more than
/// [`SUMMARY_THRESHOLD`] nodes are drawn grouped by function.
///
/// The path's extension picks the format: `dot` or `gv` writes the DOT text;
/// anything else (`svg`, `png`, `pdf`, ...) is rendered by Graphviz's
/// `dot` program. Without `dot` on `PATH`, the DOT text is written next to
/// `path` (same name, `.dot`) and an [`ErrorKind::Io`] error says how to
/// install Graphviz.
///
/// ```
/// use rdask::graph::key;
/// fn add(a: i64, b: i64) -> i64 { a + b }
/// let mut g = rdask::Graph::new();
/// g.insert_value("x", 1_i64).insert_task("y", add, (key("x"), key("x")));
/// rdask::visualize(&g, std::env::temp_dir().join("rdask-doc-raw.dot"))?;
/// # Ok::<(), rdask::Error>(())
/// ```
pub fn visualize<V: Visualize + ?Sized>(what: &V, path: impl AsRef<Path>) -> Result<()> {
    visualize_with_dot(what, path, "dot")
}

/// [`visualize`](fn@visualize) with another Graphviz program than `dot`
/// from `PATH`: a full path, or another layout engine (`neato`, `sfdp`).
pub fn visualize_with_dot<V: Visualize + ?Sized>(
    what: &V,
    path: impl AsRef<Path>,
    dot_program: impl AsRef<OsStr>,
) -> Result<()> {
    let path = path.as_ref();
    let format = path
        .extension()
        .and_then(OsStr::to_str)
        .map(str::to_ascii_lowercase)
        .ok_or_else(|| {
            Error::new(
                ErrorKind::Io,
                None,
                format!(
                    "cannot tell the picture format of `{}`: give it an extension such as \
                     .svg, .png, .pdf or .dot",
                    path.display()
                ),
            )
        })?;
    let source = labelled_dot(&what.visualize_graph());
    if format == "dot" || format == "gv" {
        return write_file(path, source.as_bytes());
    }
    render(&source, path, &format, dot_program.as_ref())
}

/// Runs Graphviz on `source`; without it, leaves the DOT text beside `path`.
fn render(source: &str, path: &Path, format: &str, program: &OsStr) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| io_error(format_args!("cannot create `{}`", dir.display()), e))?;
    }
    let spawned = Command::new(program)
        .arg(format!("-T{format}"))
        .arg("-o")
        .arg(path)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            let dot_path = path.with_extension("dot");
            let wrote = match write_file(&dot_path, source.as_bytes()) {
                Ok(()) => format!("wrote the graph as DOT to `{}` instead", dot_path.display()),
                Err(w) => format!("and could not write the DOT text either ({w})"),
            };
            return Err(Error::new(
                ErrorKind::Io,
                None,
                format!(
                    "cannot run Graphviz `{}` ({e}) to draw `{}`; {wrote}. Install Graphviz \
                     (Debian/Ubuntu: `apt-get install graphviz`; Fedora: `dnf install \
                     graphviz`; macOS: `brew install graphviz`), or draw it yourself with \
                     `dot -T{format} {} -o {}`",
                    program.to_string_lossy(),
                    path.display(),
                    dot_path.display(),
                    path.display()
                ),
            ));
        }
    };
    // A write error means `dot` stopped early; its status and stderr say why.
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(source.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| io_error("Graphviz `dot` did not finish", e))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::Io,
            None,
            format!(
                "Graphviz `{}` failed to draw `{}` ({}): {}",
                program.to_string_lossy(),
                path.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ))
    }
}

/// The DOT text [`visualize`](fn@visualize) draws: every node labelled by
/// its function, or, above [`SUMMARY_THRESHOLD`] nodes, the graph grouped
/// by function.
pub fn labelled_dot(graph: &Graph) -> String {
    if graph.len() > SUMMARY_THRESHOLD {
        summary_dot(graph)
    } else {
        full_dot(graph)
    }
}

/// What a node is drawn as.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Kind {
    Task,
    Value,
    Alias,
    Missing,
}

/// A node's kind and label: tasks by function name, values and aliases by
/// key prefix (`value`, or a raw graph's own key name).
fn describe(key: &Key, op: &Op) -> (Kind, String) {
    match op {
        Op::Const(_) => (Kind::Value, key.prefix().to_string()),
        Op::Alias => (Kind::Alias, key.prefix().to_string()),
        op if op.annotations().is_empty() => (Kind::Task, op.name().to_string()),
        op => (
            Kind::Task,
            format!("{}\n[{}]", op.name(), op.annotations().describe()),
        ),
    }
}

fn shape(kind: Kind) -> &'static str {
    match kind {
        Kind::Task => "shape=ellipse",
        Kind::Value => "shape=box",
        Kind::Alias => "shape=box, style=\"filled,dashed\"",
        Kind::Missing => "shape=box, style=dashed, color=\"#cc0000\", fontcolor=\"#cc0000\"",
    }
}

/// The graph, with the look both drawings share.
fn header() -> Dot {
    let mut dot = Dot::digraph("rdask");
    dot.defaults(
        "graph",
        "rankdir=BT, fontname=\"Helvetica\", nodesep=0.3, ranksep=0.45",
    )
    .defaults(
        "node",
        "fontname=\"Helvetica\", fontsize=12, style=filled, margin=\"0.12,0.04\"",
    )
    .defaults(
        "edge",
        "color=\"#666666\", arrowsize=0.6, fontname=\"Helvetica\"",
    );
    dot
}

/// The thick border of an output (a node nothing depends on).
fn output_border(has_dependents: bool) -> &'static str {
    if has_dependents {
        ""
    } else {
        ", penwidth=2.5"
    }
}

/// One node per key.
fn full_dot(graph: &Graph) -> String {
    let nodes = graph.nodes();
    let described: Vec<(Kind, String)> = nodes.iter().map(|(k, n)| describe(k, &n.op)).collect();
    let colour = colours(described.iter().map(|(_, l)| l.as_str()));
    let mut edges: Vec<(Id, usize)> = Vec::new();
    let mut has_dependents = vec![false; nodes.len()];
    let mut missing: BTreeMap<String, usize> = BTreeMap::new();
    for (i, k) in nodes.keys().enumerate() {
        for d in graph.dependencies(k) {
            let from = match nodes.get_index_of(&d) {
                Some(j) => {
                    has_dependents[j] = true;
                    Id::Seq("n", j)
                }
                None => {
                    let next = missing.len();
                    Id::Seq("m", *missing.entry(d.to_string()).or_insert(next))
                }
            };
            edges.push((from, i));
        }
    }
    let mut dot = header();
    for (i, (k, (kind, label))) in nodes.keys().zip(&described).enumerate() {
        let c = colour.get(label).map_or("#888888", String::as_str);
        dot.node(
            Id::Seq("n", i),
            label,
            format_args!(
                "tooltip={}, {}, fillcolor={}, color={}{}",
                quote(k),
                shape(*kind),
                quote(&lighten(c, 0.55)),
                quote(c),
                output_border(has_dependents[i]),
            ),
        );
    }
    for (key, &i) in &missing {
        dot.node(
            Id::Seq("m", i),
            format_args!("missing: {key}"),
            shape(Kind::Missing),
        );
    }
    for (from, to) in edges {
        dot.edge(from, Id::Seq("n", to), "");
    }
    dot.finish()
}

/// One node per (kind, function), with counts.
fn summary_dot(graph: &Graph) -> String {
    let nodes = graph.nodes();
    let mut group_of: HashMap<(Kind, String), usize> = HashMap::new();
    let mut groups: Vec<((Kind, String), usize)> = Vec::new();
    let mut node_group = Vec::with_capacity(nodes.len());
    for (k, n) in nodes {
        let g = describe(k, &n.op);
        let id = *group_of.entry(g.clone()).or_insert_with(|| {
            groups.push((g, 0));
            groups.len() - 1
        });
        groups[id].1 += 1;
        node_group.push(id);
    }
    let mut edges: BTreeMap<(usize, usize), usize> = BTreeMap::new();
    let mut has_dependents = vec![false; groups.len()];
    for (i, k) in nodes.keys().enumerate() {
        for d in graph.dependencies(k) {
            let from = match nodes.get_index_of(&d) {
                Some(j) => node_group[j],
                None => {
                    let g = (Kind::Missing, "missing".to_string());
                    let id = *group_of.entry(g.clone()).or_insert_with(|| {
                        groups.push((g, 0));
                        has_dependents.push(false);
                        groups.len() - 1
                    });
                    groups[id].1 += 1;
                    id
                }
            };
            has_dependents[from] = true;
            *edges.entry((from, node_group[i])).or_default() += 1;
        }
    }
    let colour = colours(groups.iter().map(|((_, l), _)| l.as_str()));
    let mut dot = header();
    dot.defaults(
        "graph",
        format_args!(
            "label={}, labelloc=t, fontsize=14",
            quote(&format_args!(
                "{} tasks, grouped by function",
                thousands(nodes.len())
            )),
        ),
    );
    for (i, ((kind, label), count)) in groups.iter().enumerate() {
        let c = colour.get(label).map_or("#888888", String::as_str);
        dot.node(
            Id::Seq("g", i),
            format_args!("{label}\n× {}", thousands(*count)),
            format_args!(
                "{}, fillcolor={}, color={}{}",
                shape(*kind),
                quote(&lighten(c, 0.55)),
                quote(c),
                output_border(has_dependents[i]),
            ),
        );
    }
    for ((from, to), n) in edges {
        let width = 1.0 + (n as f64).log10();
        dot.edge(
            Id::Seq("g", from),
            Id::Seq("g", to),
            format_args!(
                "label={}, penwidth={width:.1}, fontsize=10",
                quote(&format_args!(" × {}", thousands(n)))
            ),
        );
    }
    dot.finish()
}

/// `12345` as `12,345`.
fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{key, lit};

    fn add(a: i64, b: i64) -> i64 {
        a + b
    }

    #[test]
    fn full_graph_labels_and_edges() {
        let mut g = Graph::new();
        g.insert_value("x", 1_i64)
            .insert_task("y", add, (key("x"), lit(2_i64)))
            .insert_task("z", add, (key("y"), key("nope")))
            .insert_alias("w", "z");
        let dot = labelled_dot(&g);
        assert!(dot.contains("n0 [label=\"x\""), "{dot}");
        assert!(dot.contains("n1 [label=\"add\", tooltip=\"y\""), "{dot}");
        assert!(dot.contains("label=\"missing: nope\""), "{dot}");
        assert!(dot.contains("n0 -> n1;") && dot.contains("n1 -> n2;"));
        assert!(dot.contains("m0 -> n2;") && dot.contains("n2 -> n3;"));
        // Only the alias is an output.
        assert_eq!(dot.matches("penwidth=2.5").count(), 1, "{dot}");
    }

    // Too slow under Miri: a graph of 6,000 tasks (past
    // `SUMMARY_THRESHOLD`).
    #[test]
    #[cfg_attr(miri, ignore = "too slow under Miri")]
    fn summary_groups_by_function() {
        let mut g = Graph::new();
        for i in 0..3000 {
            g.insert_value(format!("x-{i}"), i as i64);
            g.insert_task(format!("y-{i}"), add, (key(format!("x-{i}")), lit(1_i64)));
        }
        let dot = labelled_dot(&g);
        assert!(dot.contains("6,000 tasks, grouped by function"), "{dot}");
        assert_eq!(dot.matches("[label=\"x\\n× 3,000\"").count(), 1, "{dot}");
        assert!(dot.contains("[label=\"add\\n× 3,000\""), "{dot}");
        assert!(dot.contains("g0 -> g1 [label=\" × 3,000\""), "{dot}");
        assert!(dot.lines().count() < 20, "{dot}");
    }

    #[test]
    fn helpers() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }
}
