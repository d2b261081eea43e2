//! Writing Graphviz DOT text: the one place that knows its syntax and how
//! to quote text in it, so every picture of a graph escapes keys and labels
//! the same (correct) way.
//!
//! A leaf: it knows nothing of graphs, nodes or keys, and imports nothing
//! from the crate. [`Graph::to_dot`](crate::Graph::to_dot) and
//! [`visualize`](crate::visualize) build on it.

use std::fmt::{self, Display, Write as _};

/// A node's name in a DOT graph.
///
/// A graph should use one kind: `n0` and `"n0"` are the same node to DOT.
#[derive(Clone, Copy)]
pub(crate) enum Id<'a> {
    /// A name made up by the caller, a prefix and a number (`n3`),
    /// written bare: short, and safe whatever the text it stands for.
    Seq(&'static str, usize),
    /// Any text (a key, say), written quoted.
    Text(&'a dyn Display),
}

impl Display for Id<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Id::Seq(prefix, n) => {
                debug_assert!(
                    prefix.starts_with(|c: char| c.is_ascii_alphabetic())
                        && prefix
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_'),
                    "`{prefix}` cannot start a bare DOT name"
                );
                write!(f, "{prefix}{n}")
            }
            Id::Text(text) => quote(text).fmt(f),
        }
    }
}

/// A directed graph's DOT text, one statement a line, in the order written.
///
/// Attribute lists (`attrs`) are DOT as it stands (`shape=box,
/// penwidth=2.5`); any text in them goes through [`quote`]. A node's or
/// edge's empty one is left out.
pub(crate) struct Dot {
    out: String,
}

impl Dot {
    /// Opens `digraph name {`; `name` is written bare.
    pub(crate) fn digraph(name: &str) -> Dot {
        Dot {
            out: format!("digraph {name} {{\n"),
        }
    }

    /// A graph attribute on its own: `name=value;`.
    pub(crate) fn set(&mut self, name: &str, value: impl Display) -> &mut Self {
        let _ = writeln!(self.out, "  {name}={value};");
        self
    }

    /// Attributes of the graph (`what` = `graph`), or defaults for the
    /// nodes or edges after it (`node`, `edge`): `what [attrs];`.
    pub(crate) fn defaults(&mut self, what: &str, attrs: impl Display) -> &mut Self {
        debug_assert!(matches!(what, "graph" | "node" | "edge"), "{what}");
        let _ = writeln!(self.out, "  {what} [{attrs}];");
        self
    }

    /// A node, labelled with `label` (quoted here), then `attrs`:
    /// `id [label="...", attrs];`.
    pub(crate) fn node(
        &mut self,
        id: Id<'_>,
        label: impl Display,
        attrs: impl Display,
    ) -> &mut Self {
        let _ = write!(self.out, "  {id} [label={}", quote(&label));
        self.attrs(", ", attrs, "");
        self.out.push_str("];\n");
        self
    }

    /// An edge: `from -> to [attrs];`.
    pub(crate) fn edge(&mut self, from: Id<'_>, to: Id<'_>, attrs: impl Display) -> &mut Self {
        let _ = write!(self.out, "  {from} -> {to}");
        self.attrs(" [", attrs, "]");
        self.out.push_str(";\n");
        self
    }

    /// Closes the graph; the DOT text.
    pub(crate) fn finish(mut self) -> String {
        self.out.push_str("}\n");
        self.out
    }

    /// `open attrs close`, or nothing where `attrs` writes nothing.
    fn attrs(&mut self, open: &str, attrs: impl Display, close: &str) {
        let mark = self.out.len();
        self.out.push_str(open);
        let _ = write!(self.out, "{attrs}");
        if self.out.len() == mark + open.len() {
            self.out.truncate(mark);
        } else {
            self.out.push_str(close);
        }
    }
}

/// `text` as a DOT double-quoted string, quotes included.
///
/// Graphviz's rules: in a quoted string, DOT reads `\"` as a quote and a
/// backslash before a line end as a line continuation; labels and tooltips
/// (`escString`s) then read `\\` as a backslash, `\n`, `\l` and `\r` as
/// line breaks and `\N`, `\G`, ... as the node's or graph's name. So `"`
/// and `\` are escaped (a key's `\N` stays text), and line feeds and
/// carriage returns are written `\n` and `\r`: line breaks in a label, one
/// statement a line in the text. Nothing else is escaped, so different keys
/// stay different names. The control characters XML 1.0 forbids are
/// dropped: Graphviz copies them into SVG, which no XML reader then
/// accepts.
pub(crate) fn quote<T: Display + ?Sized>(text: &T) -> Quoted<'_, T> {
    Quoted(text)
}

/// A [`Display`] of text as a DOT double-quoted string; see [`quote`].
pub(crate) struct Quoted<'a, T: ?Sized>(&'a T);

impl<T: Display + ?Sized> Display for Quoted<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_char('"')?;
        write!(Escape(&mut *f), "{}", self.0)?;
        f.write_char('"')
    }
}

/// Escapes what is written through it (a character at a time, so text may
/// come in any pieces).
struct Escape<W>(W);

impl<W: fmt::Write> fmt::Write for Escape<W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            match c {
                '"' => self.0.write_str("\\\"")?,
                '\\' => self.0.write_str("\\\\")?,
                '\n' => self.0.write_str("\\n")?,
                '\r' => self.0.write_str("\\r")?,
                '\0'..='\x08' | '\x0b' | '\x0c' | '\x0e'..='\x1f' | '\u{fffe}' | '\u{ffff}' => {}
                c => self.0.write_char(c)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_escapes_quotes_backslashes_and_line_breaks() {
        assert_eq!(quote("plain").to_string(), "\"plain\"");
        assert_eq!(quote("a\"b\\c\nd").to_string(), "\"a\\\"b\\\\c\\nd\"");
        assert_eq!(quote("crlf\r\n").to_string(), "\"crlf\\r\\n\"");
        // A trailing backslash cannot swallow the closing quote.
        assert_eq!(quote("end\\").to_string(), "\"end\\\\\"");
        // Graphviz's own escapes stay text.
        assert_eq!(quote("\\N\\l").to_string(), "\"\\\\N\\\\l\"");
        // Tabs, DEL and non-ASCII pass; what XML forbids goes.
        assert_eq!(
            quote("t\ta\u{7f}é×\u{1}\u{1b}\u{ffff}").to_string(),
            "\"t\ta\u{7f}é×\""
        );
        // Any Display, in pieces.
        assert_eq!(
            quote(&format_args!("{}\n{}", "k\"", 1)).to_string(),
            "\"k\\\"\\n1\""
        );
    }

    #[test]
    fn writes_statements_a_line_each() {
        let mut dot = Dot::digraph("g");
        dot.set("rankdir", "BT")
            .defaults("node", "shape=box")
            .defaults("edge", "")
            .node(Id::Seq("n", 0), "a\nb", "")
            .node(
                Id::Text(&"x\"y"),
                "x",
                format_args!("tooltip={}", quote("t")),
            )
            .edge(Id::Seq("n", 0), Id::Text(&"x\"y"), "")
            .edge(Id::Seq("n", 0), Id::Seq("n", 1), "color=red");
        assert_eq!(
            dot.finish(),
            "digraph g {\n  rankdir=BT;\n  node [shape=box];\n  edge [];\n  \
             n0 [label=\"a\\nb\"];\n  \"x\\\"y\" [label=\"x\", tooltip=\"t\"];\n  \
             n0 -> \"x\\\"y\";\n  n0 -> n1 [color=red];\n}\n"
        );
    }
}
