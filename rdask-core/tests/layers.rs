//! Architecture rule: the top-level modules of `rdask-core/src` form one-way
//! layers, with no circle.
//!
//! A top-level module is a file `src/X.rs` or a folder `src/X/` (lib.rs is
//! the crate root, not a module). Every `.rs` file under `src` is read with a
//! small scanner (comments, strings, char literals and `#[cfg(test)]` items
//! are skipped) and each path that names something in this crate —
//! `crate::a::..`, `use crate::{a::x, b::{y, z}}`, `super::..`, `self::..`,
//! and `crate::Name` for a `Name` that lib.rs re-exports — becomes an edge
//! from the file's top-level module to the module it names. The test fails
//! when that graph has a cycle, when a module imports one in a higher layer
//! of [`LAYERS`], or when [`LAYERS`] and the folder disagree.
//!
//! `cargo test -p rdask-core --test layers -- --nocapture` prints the graph
//! (module -> modules it imports), to check ARCHITECTURE.md against.
//! `RDASK_LAYERS_SRC=/some/src` checks another tree instead.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The layers, lowest first (ARCHITECTURE.md explains each). A module may
/// import modules of lower layers and of its own layer (the whole graph must
/// still be acyclic), never a module of a higher layer.
const LAYERS: &[&[&str]] = &[
    &["dot", "error", "key", "mem"],
    &["cache", "control", "pool"],
    &["value"],
    &["callbacks", "sizeof", "task"],
    &["node"],
    &["plan"],
    &["exec"],
    &["schedule"],
    &["graph"],
    &["delayed"],
    &["args", "ops"],
    &["diagnostics", "__private", "requires"],
];

/// The environment variable that points the check at another `src` folder.
const SRC_OVERRIDE: &str = "RDASK_LAYERS_SRC";

#[test]
fn top_level_modules_form_one_way_layers() {
    let started = std::time::Instant::now();
    let src = match std::env::var_os(SRC_OVERRIDE) {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
    };
    let analysis = match analyze(&src) {
        Ok(a) => a,
        Err(e) => panic!(
            "layers: cannot read {}: {e}\n(set {SRC_OVERRIDE} to the `src` folder to check, \
             or run from the rdask-core package)",
            src.display()
        ),
    };
    println!("{}", render_graph(&analysis, LAYERS));
    let failures = check(&analysis, LAYERS);
    println!(
        "layers: read {} files of {} in {:.1} ms",
        analysis.files,
        src.display(),
        started.elapsed().as_secs_f64() * 1e3
    );
    if !failures.is_empty() {
        let mut msg = format!(
            "rdask-core's layer rule is broken ({} problem{}); \
             see the graph with `cargo test -p rdask-core --test layers -- --nocapture`\n",
            failures.len(),
            if failures.len() == 1 { "" } else { "s" }
        );
        for (i, f) in failures.iter().enumerate() {
            let _ = write!(msg, "\n{}. {}\n", i + 1, f);
        }
        panic!("{msg}");
    }
}

// ---------------------------------------------------------------------------
// Scanning one file
// ---------------------------------------------------------------------------

fn is_ident_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Blanks comments (line, doc, nested block), string literals (plain, byte,
/// C, raw with any number of `#`) and char literals, keeping every newline so
/// that line numbers stay right. Lifetimes and labels (`'a`) are kept.
fn strip_comments_and_literals(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let blank = |out: &mut String, ch: char| out.push(if ch == '\n' { '\n' } else { ' ' });
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        let next = c.get(i + 1).copied();
        if ch == '/' && next == Some('/') {
            while i < c.len() && c[i] != '\n' {
                blank(&mut out, c[i]);
                i += 1;
            }
            continue;
        }
        if ch == '/' && next == Some('*') {
            let mut depth = 0usize;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, c[i]);
                    i += 1;
                }
            }
            continue;
        }
        if let Some(end) = raw_string_end(&c, i) {
            for &x in &c[i..end] {
                blank(&mut out, x);
            }
            i = end;
            continue;
        }
        if ch == '"' {
            blank(&mut out, ch);
            i += 1;
            while i < c.len() {
                if c[i] == '\\' {
                    blank(&mut out, c[i]);
                    if let Some(&e) = c.get(i + 1) {
                        blank(&mut out, e);
                    }
                    i += 2;
                    continue;
                }
                let done = c[i] == '"';
                blank(&mut out, c[i]);
                i += 1;
                if done {
                    break;
                }
            }
            continue;
        }
        if ch == '\'' {
            if let Some(end) = char_literal_end(&c, i) {
                for &x in &c[i..end] {
                    blank(&mut out, x);
                }
                i = end;
                continue;
            }
        }
        out.push(ch);
        i += 1;
    }
    out
}

/// If a raw string (`r"..."`, `r#"..."#`, `br#".."#`, `cr".."`) starts at
/// `c[i] == 'r'`, the index just past it.
fn raw_string_end(c: &[char], i: usize) -> Option<usize> {
    if c[i] != 'r' {
        return None;
    }
    let prefix_ok = match i.checked_sub(1).map(|p| c[p]) {
        None => true,
        Some(p) if !is_ident_char(p) => true,
        Some('b') | Some('c') => i < 2 || !is_ident_char(c[i - 2]),
        Some(_) => false,
    };
    if !prefix_ok {
        return None;
    }
    let mut j = i + 1;
    let mut hashes = 0;
    while c.get(j) == Some(&'#') {
        hashes += 1;
        j += 1;
    }
    if c.get(j) != Some(&'"') {
        return None; // `r#ident` or a plain `r`
    }
    j += 1;
    while j < c.len() {
        if c[j] == '"' && (1..=hashes).all(|k| c.get(j + k) == Some(&'#')) {
            return Some(j + 1 + hashes);
        }
        j += 1;
    }
    Some(c.len())
}

/// If a char literal (`'x'`, `'\n'`, `'\u{1F600}'`, `'\''`) starts at
/// `c[i] == '\''`, the index just past it; `None` for a lifetime or label.
fn char_literal_end(c: &[char], i: usize) -> Option<usize> {
    match c.get(i + 1) {
        Some('\\') => {
            let mut j = i + 3;
            while j < c.len() && c[j] != '\'' && c[j] != '\n' {
                j += 1;
            }
            (c.get(j) == Some(&'\'')).then_some(j + 1)
        }
        Some(&x) if x != '\n' && c.get(i + 2) == Some(&'\'') => Some(i + 3),
        _ => None,
    }
}

/// Blanks every item marked `#[cfg(test)]` (a `mod tests { .. }` block,
/// brace-matched, but also a `use`, fn, field or statement) in code that
/// [`strip_comments_and_literals`] already cleaned. A file with the inner
/// attribute `#![cfg(test)]` is blanked whole. Newlines are kept.
fn strip_cfg_test(code: &str) -> String {
    let c: Vec<char> = code.chars().collect();
    let mut out = c.clone();
    let blank = |out: &mut Vec<char>, from: usize, to: usize| {
        for x in &mut out[from..to] {
            if *x != '\n' {
                *x = ' ';
            }
        }
    };
    let mut i = 0;
    while i < c.len() {
        if c[i] == '#' {
            if let Some((inner, after)) = match_cfg_test_attr(&c, i) {
                if inner {
                    blank(&mut out, 0, c.len());
                    break;
                }
                let end = item_end(&c, after);
                blank(&mut out, i, end);
                i = end;
                continue;
            }
        }
        i += 1;
    }
    out.into_iter().collect()
}

fn skip_ws(c: &[char], mut j: usize) -> usize {
    while j < c.len() && c[j].is_whitespace() {
        j += 1;
    }
    j
}

/// Matches `word` at `j` (as a whole word), returning the index past it.
fn eat_word(c: &[char], j: usize, word: &str) -> Option<usize> {
    let w: Vec<char> = word.chars().collect();
    let end = j + w.len();
    (end <= c.len() && c[j..end] == w[..] && !c.get(end).is_some_and(|&x| is_ident_char(x)))
        .then_some(end)
}

fn eat_char(c: &[char], j: usize, ch: char) -> Option<usize> {
    (c.get(j) == Some(&ch)).then_some(j + 1)
}

/// `#[cfg(test)]` or `#![cfg(test)]` at `c[i] == '#'`, any spacing: whether
/// it is the inner form, and the index past the `]`.
fn match_cfg_test_attr(c: &[char], i: usize) -> Option<(bool, usize)> {
    let mut j = i + 1;
    let inner = c.get(j) == Some(&'!');
    if inner {
        j += 1;
    }
    j = eat_char(c, skip_ws(c, j), '[')?;
    j = eat_word(c, skip_ws(c, j), "cfg")?;
    j = eat_char(c, skip_ws(c, j), '(')?;
    j = eat_word(c, skip_ws(c, j), "test")?;
    j = eat_char(c, skip_ws(c, j), ')')?;
    j = eat_char(c, skip_ws(c, j), ']')?;
    Some((inner, j))
}

/// Index past the brace-matched block that opens at `c[j] == '{'`.
fn match_brace(c: &[char], j: usize) -> usize {
    let mut depth = 0usize;
    let mut k = j;
    while k < c.len() {
        match c[k] {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return k + 1;
                }
            }
            _ => {}
        }
        k += 1;
    }
    c.len()
}

/// Index past the item (or field, variant, match arm, statement) that starts
/// at `j`, after its attribute: more attributes, then up to its `;`, its
/// closing `}`, or — for a field, variant or arm — its `,`.
fn item_end(c: &[char], mut j: usize) -> usize {
    loop {
        j = skip_ws(c, j);
        if c.get(j) == Some(&'#') && c.get(skip_ws(c, j + 1)) == Some(&'[') {
            let mut k = skip_ws(c, j + 1);
            let mut depth = 0usize;
            while k < c.len() {
                match c[k] {
                    '[' => depth += 1,
                    ']' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
                k += 1;
            }
            j = k + 1;
        } else {
            break;
        }
    }
    // A `,` ends a field, variant or match arm; an item (fn, impl, use, ...)
    // may have commas in its header (`where A: X, B: Y`).
    let mut k = j;
    if let Some(e) = eat_word(c, k, "pub") {
        k = skip_ws(c, e);
        if c.get(k) == Some(&'(') {
            while k < c.len() && c[k] != ')' {
                k += 1;
            }
            k = skip_ws(c, k + 1);
        }
    }
    const ITEM_WORDS: &[&str] = &[
        "fn",
        "mod",
        "impl",
        "struct",
        "enum",
        "trait",
        "use",
        "const",
        "static",
        "type",
        "union",
        "extern",
        "unsafe",
        "async",
        "let",
        "macro_rules",
    ];
    let comma_ends = !ITEM_WORDS.iter().any(|w| eat_word(c, k, w).is_some());
    let (mut paren, mut bracket, mut angle) = (0i32, 0i32, 0i32);
    while j < c.len() {
        let ch = c[j];
        let prev = if j > 0 { c[j - 1] } else { ' ' };
        match ch {
            '(' => paren += 1,
            '[' => bracket += 1,
            ')' | ']' => {
                if ch == ')' {
                    paren -= 1;
                } else {
                    bracket -= 1;
                }
                if paren < 0 || bracket < 0 {
                    return j; // the end of an enclosing call or array
                }
            }
            '<' => angle += 1,
            '>' if angle > 0 && prev != '-' && prev != '=' => angle -= 1,
            '{' => {
                j = match_brace(c, j);
                if paren == 0 && bracket == 0 {
                    return j;
                }
                continue;
            }
            '}' => return j, // the end of the enclosing block
            ';' if paren == 0 && bracket == 0 => return j + 1,
            ',' if comma_ends && paren == 0 && bracket == 0 && angle == 0 => return j + 1,
            _ => {}
        }
        j += 1;
    }
    c.len()
}

#[derive(Clone, Debug, PartialEq)]
struct Tok {
    text: String,
    ident: bool,
    line: usize,
}

/// Identifiers (raw `r#x` unwrapped), `::`, and single punctuation chars, each
/// with its line, from cleaned code.
fn tokenize(code: &str) -> Vec<Tok> {
    let c: Vec<char> = code.chars().collect();
    let mut toks = Vec::new();
    let (mut i, mut line) = (0, 1);
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if is_ident_char(ch) {
            let start = i;
            while i < c.len() && is_ident_char(c[i]) {
                i += 1;
            }
            let mut text: String = c[start..i].iter().collect();
            if text == "r"
                && c.get(i) == Some(&'#')
                && c.get(i + 1).is_some_and(|&x| is_ident_start(x))
            {
                let s2 = i + 1;
                i = s2;
                while i < c.len() && is_ident_char(c[i]) {
                    i += 1;
                }
                text = c[s2..i].iter().collect();
            }
            toks.push(Tok {
                ident: is_ident_start(c[start]),
                text,
                line,
            });
        } else if ch == ':' && c.get(i + 1) == Some(&':') {
            toks.push(Tok {
                text: "::".into(),
                ident: false,
                line,
            });
            i += 2;
        } else {
            toks.push(Tok {
                text: ch.to_string(),
                ident: false,
                line,
            });
            i += 1;
        }
    }
    toks
}

/// One path to an item of this crate, as written: `crate::a::b`, `super::x`,
/// `self::y`, one leaf of a grouped `use`.
#[derive(Clone, Debug, PartialEq)]
struct RawPath {
    /// The segments with their lines, `crate`/`super`/`self` included.
    segs: Vec<(String, usize)>,
    /// `use a::b as c`: `c`.
    alias: Option<String>,
    /// Ends in `::*`.
    glob: bool,
    /// The path is followed by `(` or `!`: a call, a tuple struct, a macro
    /// (something in the value or macro namespace, not a module).
    called: bool,
    /// The inline modules (`mod m { .. }`) the path is written in.
    inline_mods: Vec<String>,
}

impl RawPath {
    fn names(&self) -> Vec<&str> {
        self.segs.iter().map(|(s, _)| s.as_str()).collect()
    }
}

/// Every path in the tokens that starts with `crate::`, `super::` or
/// `self::` (not `$crate::`, not a `::`-continued path), grouped `use` trees
/// expanded into one path per leaf.
fn extract_paths(toks: &[Tok]) -> Vec<RawPath> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut mods: Vec<(String, usize)> = Vec::new();
    let mut pending_mod: Option<String> = None;
    let mut i = 0;
    while i < toks.len() {
        let t = &toks[i];
        match t.text.as_str() {
            "{" => {
                depth += 1;
                if let Some(m) = pending_mod.take() {
                    mods.push((m, depth));
                }
            }
            "}" => {
                if mods.last().is_some_and(|(_, d)| *d == depth) {
                    mods.pop();
                }
                depth = depth.saturating_sub(1);
            }
            "mod" if t.ident => {
                if let (Some(n), Some(b)) = (toks.get(i + 1), toks.get(i + 2)) {
                    if n.ident && b.text == "{" {
                        pending_mod = Some(n.text.clone());
                    }
                }
            }
            "crate" | "super" | "self" if t.ident => {
                let prev = if i > 0 { toks[i - 1].text.as_str() } else { "" };
                if prev != "::" && prev != "$" && toks.get(i + 1).is_some_and(|n| n.text == "::") {
                    let inline: Vec<String> = mods.iter().map(|(m, _)| m.clone()).collect();
                    let mut j = i;
                    parse_tree(toks, &mut j, Vec::new(), &inline, &mut out);
                    i = j;
                    continue;
                }
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// Parses a path or use tree at `toks[*j]`, pushing one [`RawPath`] per leaf.
fn parse_tree(
    toks: &[Tok],
    j: &mut usize,
    prefix: Vec<(String, usize)>,
    inline: &[String],
    out: &mut Vec<RawPath>,
) {
    let mut segs = prefix;
    let leaf = |segs: Vec<(String, usize)>, alias, glob, called| RawPath {
        segs,
        alias,
        glob,
        called,
        inline_mods: inline.to_vec(),
    };
    loop {
        let Some(t) = toks.get(*j) else {
            if !segs.is_empty() {
                out.push(leaf(segs, None, false, false));
            }
            return;
        };
        if t.ident {
            segs.push((t.text.clone(), t.line));
            *j += 1;
            if toks.get(*j).is_some_and(|n| n.text == "::") {
                *j += 1;
                continue;
            }
            let mut alias = None;
            if toks.get(*j).is_some_and(|n| n.text == "as")
                && toks.get(*j + 1).is_some_and(|n| n.ident)
            {
                alias = Some(toks[*j + 1].text.clone());
                *j += 2;
            }
            let called = toks.get(*j).is_some_and(|n| n.text == "(" || n.text == "!");
            out.push(leaf(segs, alias, false, called));
            return;
        }
        match t.text.as_str() {
            "{" => {
                *j += 1;
                while let Some(n) = toks.get(*j) {
                    match n.text.as_str() {
                        "}" => {
                            *j += 1;
                            break;
                        }
                        "," => *j += 1,
                        _ => {
                            let before = *j;
                            parse_tree(toks, j, segs.clone(), inline, out);
                            if *j == before {
                                *j += 1; // not a path: step over it
                            }
                        }
                    }
                }
                return;
            }
            "*" => {
                *j += 1;
                out.push(leaf(segs, None, true, false));
                return;
            }
            _ => {
                // `crate::f::<T>()` and the like: the path ends here.
                if !segs.is_empty() {
                    out.push(leaf(segs, None, false, false));
                }
                return;
            }
        }
    }
}

/// The module path of a file: `x.rs` and `x/mod.rs` are `[x]`, `x/y.rs` is
/// `[x, y]`; `rel` is relative to `src`.
fn module_path_of(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if let Some(last) = parts.pop() {
        let stem = last.strip_suffix(".rs").unwrap_or(&last).to_string();
        if stem != "mod" && stem != "lib" {
            parts.push(stem);
        }
    }
    parts
}

/// The absolute path (without `crate`) a [`RawPath`] names, from the module
/// `here` (file module path plus inline modules), with the line of its first
/// absolute segment; `None` if it climbs above the crate root.
fn resolve(here: &[String], p: &RawPath) -> Option<(Vec<String>, usize)> {
    let mut abs: Vec<String> = Vec::new();
    let mut line = p.segs.first()?.1;
    let mut rest = p.segs.iter().peekable();
    match p.segs[0].0.as_str() {
        "crate" => {
            rest.next();
        }
        "self" | "super" => abs = here.to_vec(),
        _ => {}
    }
    while let Some((s, l)) = rest.peek() {
        match s.as_str() {
            "self" => {}
            "super" => {
                abs.pop()?;
            }
            _ => break,
        }
        line = *l;
        rest.next();
    }
    let mut first = true;
    for (s, l) in rest {
        if s == "self" {
            continue; // `a::{self}`
        }
        if first && abs.is_empty() {
            line = *l;
        }
        first = false;
        abs.push(s.clone());
    }
    Some((abs, line))
}

// ---------------------------------------------------------------------------
// lib.rs re-exports
// ---------------------------------------------------------------------------

/// What `crate::Name` means for each `Name` that lib.rs brings in with `use`
/// (`pub use a::{X, y::Z as W}`, `pub use a::X`, `use self::a::X`): the
/// top-level module it comes from. Names whose path does not start with a
/// module of `modules` (extern crates) are left out; `pub use a::*` is kept
/// as the glob module list.
#[derive(Debug, Default, PartialEq)]
struct Reexports {
    names: BTreeMap<String, String>,
    globs: Vec<String>,
}

fn parse_reexports(lib_rs: &str, modules: &BTreeSet<String>) -> Reexports {
    let code = strip_cfg_test(&strip_comments_and_literals(lib_rs));
    let toks = tokenize(&code);
    let mut raw: Vec<(String, Vec<String>)> = Vec::new(); // name -> path
    let mut globs = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < toks.len() {
        match toks[i].text.as_str() {
            "{" => depth += 1,
            "}" => depth = depth.saturating_sub(1),
            "use" if toks[i].ident && depth == 0 => {
                let mut j = i + 1;
                if toks.get(j).is_some_and(|t| t.text == "::") {
                    j += 1; // `use ::extern_crate` — never a module here
                    i = j;
                    continue;
                }
                let mut leaves = Vec::new();
                parse_tree(&toks, &mut j, Vec::new(), &[], &mut leaves);
                for leaf in leaves {
                    let mut path: Vec<String> = leaf
                        .names()
                        .into_iter()
                        .filter(|s| *s != "crate")
                        .map(String::from)
                        .collect();
                    if path.first().is_some_and(|s| s == "self") {
                        path.remove(0);
                    }
                    if path.last().is_some_and(|s| s == "self") {
                        path.pop(); // `a::{self}` names `a`
                    }
                    if leaf.glob {
                        if let Some(m) = path.first().filter(|m| modules.contains(*m)) {
                            globs.push(m.clone());
                        }
                        continue;
                    }
                    let Some(name) = leaf.alias.clone().or_else(|| path.last().cloned()) else {
                        continue;
                    };
                    raw.push((name, path));
                }
                i = j;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    // `pub use crate::Other as Name` chains to what `Other` is.
    let mut names = BTreeMap::new();
    for _ in 0..=raw.len() {
        for (name, path) in &raw {
            let Some(first) = path.first() else { continue };
            // `pub use a::X` comes from `a`; so does `pub use a;` (the module).
            let module = if modules.contains(first) {
                Some(first.clone())
            } else {
                names.get(first).cloned()
            };
            if let Some(m) = module {
                names.insert(name.clone(), m);
            }
        }
    }
    Reexports { names, globs }
}

// ---------------------------------------------------------------------------
// The whole tree
// ---------------------------------------------------------------------------

#[derive(Debug, Default)]
struct Analysis {
    /// The top-level modules on disk.
    modules: BTreeSet<String>,
    /// For each top-level module with a file: which file defines it.
    module_files: BTreeMap<String, String>,
    /// from -> to -> the places (`src/x.rs:12`) that create the edge, in
    /// file then line order.
    edges: BTreeMap<String, BTreeMap<String, Vec<String>>>,
    /// Paths that name something of the crate root that is not a module nor
    /// a lib.rs re-export (a `#[macro_export]` macro, an item of lib.rs).
    notes: Vec<String>,
    /// How many `.rs` files were read.
    files: usize,
}

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            rs_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    Ok(())
}

/// The top-level module a file belongs to (`None` for lib.rs).
fn top_module_of(rel: &Path) -> Option<String> {
    let first = rel
        .components()
        .next()?
        .as_os_str()
        .to_string_lossy()
        .into_owned();
    if rel.components().count() == 1 {
        let stem = first.strip_suffix(".rs")?.to_string();
        (stem != "lib").then_some(stem)
    } else {
        Some(first)
    }
}

/// `(what, line)` pairs: a module and where it is imported, or a note.
type Lined = Vec<(String, usize)>;

/// The dependencies of one file on other top-level modules:
/// `(module, line)` pairs, plus notes for what cannot be resolved.
fn file_deps(
    text: &str,
    module_path: &[String],
    modules: &BTreeSet<String>,
    reexports: &Reexports,
) -> (Lined, Lined) {
    let code = strip_cfg_test(&strip_comments_and_literals(text));
    let toks = tokenize(&code);
    let own = module_path.first().cloned().unwrap_or_default();
    let mut deps = Vec::new();
    let mut notes = Vec::new();
    for p in extract_paths(&toks) {
        let mut here = module_path.to_vec();
        here.extend(p.inline_mods.iter().cloned());
        let Some((abs, line)) = resolve(&here, &p) else {
            notes.push((
                format!("`{}` climbs above the crate root", p.names().join("::")),
                p.segs[0].1,
            ));
            continue;
        };
        let Some(first) = abs.first() else {
            if p.glob {
                notes.push((
                    format!(
                        "`{}::*` imports the whole crate root; not counted",
                        p.names().join("::")
                    ),
                    line,
                ));
            }
            continue;
        };
        // `crate::value::X` is the module; `crate::value(1)` is the function
        // that lib.rs re-exports under the same name.
        let reexported = reexports.names.get(first);
        let target =
            if modules.contains(first) && !(abs.len() == 1 && p.called && reexported.is_some()) {
                Some(first.clone())
            } else {
                reexported.cloned()
            };
        match target {
            Some(m) if m != own => deps.push((m, line)),
            Some(_) => {}
            None => notes.push((
                format!(
                    "`crate::{}` is neither a top-level module nor re-exported by lib.rs; not counted",
                    abs.join("::")
                ),
                line,
            )),
        }
    }
    (deps, notes)
}

fn analyze(src: &Path) -> std::io::Result<Analysis> {
    let mut a = Analysis::default();
    let mut files = Vec::new();
    rs_files(src, &mut files)?;
    files.sort();
    for f in &files {
        let rel = f.strip_prefix(src).expect("under src");
        if let Some(m) = top_module_of(rel) {
            a.module_files
                .entry(m.clone())
                .or_insert_with(|| display(rel));
            a.modules.insert(m);
        }
    }
    let lib = std::fs::read_to_string(src.join("lib.rs"))?;
    let reexports = parse_reexports(&lib, &a.modules);
    for f in &files {
        let rel = f.strip_prefix(src).expect("under src");
        a.files += 1;
        let Some(own) = top_module_of(rel) else {
            continue;
        };
        let text = std::fs::read_to_string(f)?;
        let (deps, notes) = file_deps(&text, &module_path_of(rel), &a.modules, &reexports);
        a.edges.entry(own.clone()).or_default();
        for (to, line) in deps {
            let site = format!("{}:{}", display(rel), line);
            a.edges
                .entry(own.clone())
                .or_default()
                .entry(to)
                .or_default()
                .push(site);
        }
        for (note, line) in notes {
            a.notes.push(format!("{}:{}: {}", display(rel), line, note));
        }
    }
    Ok(a)
}

fn display(rel: &Path) -> String {
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    format!("src/{}", parts.join("/"))
}

// ---------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------

/// The strongly connected components of more than one module (Tarjan), each
/// sorted, in name order of their first module.
fn cycles(edges: &BTreeMap<String, BTreeMap<String, Vec<String>>>) -> Vec<Vec<String>> {
    struct T<'a> {
        edges: &'a BTreeMap<String, BTreeMap<String, Vec<String>>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(t: &mut T<'a>, v: &'a str) {
        t.index.insert(v, t.next);
        t.low.insert(v, t.next);
        t.next += 1;
        t.stack.push(v);
        t.on_stack.insert(v);
        let edges = t.edges;
        for w in edges.get(v).into_iter().flat_map(|m| m.keys()) {
            let w = w.as_str();
            if !t.index.contains_key(w) {
                visit(t, w);
                let lw = t.low[w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if t.on_stack.contains(w) {
                let iw = t.index[w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if t.low[v] == t.index[v] {
            let mut comp = Vec::new();
            loop {
                let w = t.stack.pop().unwrap();
                t.on_stack.remove(w);
                comp.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                t.out.push(comp);
            }
        }
    }
    let mut t = T {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    let all: BTreeSet<&str> = edges
        .iter()
        .flat_map(|(k, m)| std::iter::once(k.as_str()).chain(m.keys().map(String::as_str)))
        .collect();
    for v in all {
        if !t.index.contains_key(v) {
            visit(&mut t, v);
        }
    }
    let mut out = t.out;
    out.sort();
    out
}

/// One shortest loop through the first module of `comp`, inside `comp`.
fn example_loop(
    edges: &BTreeMap<String, BTreeMap<String, Vec<String>>>,
    comp: &[String],
) -> Vec<String> {
    let inside: BTreeSet<&str> = comp.iter().map(String::as_str).collect();
    let start = comp[0].as_str();
    let mut parent: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = VecDeque::from([start]);
    while let Some(v) = queue.pop_front() {
        for w in edges
            .get(v)
            .into_iter()
            .flat_map(|m| m.keys())
            .map(String::as_str)
        {
            if !inside.contains(w) {
                continue;
            }
            if w == start {
                let mut path = vec![start.to_string()];
                let mut x = v;
                while x != start {
                    path.push(x.to_string());
                    x = parent[x];
                }
                path.push(start.to_string());
                path.reverse();
                return path;
            }
            if !parent.contains_key(w) {
                parent.insert(w, v);
                queue.push_back(w);
            }
        }
    }
    Vec::new()
}

fn layer_of(layers: &[&[&str]]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for (i, layer) in layers.iter().enumerate() {
        for name in layer.iter() {
            m.entry(name.to_string()).or_insert(i);
        }
    }
    m
}

fn first_site(sites: &[String]) -> String {
    match sites.len() {
        1 => sites[0].clone(),
        n => format!("{} (+{} more)", sites[0], n - 1),
    }
}

/// Every broken rule, each message saying what to do.
fn check(a: &Analysis, layers: &[&[&str]]) -> Vec<String> {
    let mut failures = Vec::new();
    let layer = layer_of(layers);

    for comp in cycles(&a.edges) {
        let mut msg = format!(
            "cycle among {} modules: {}\n   for example: {}\n   the edges inside it (each with one place that creates it):",
            comp.len(),
            comp.join(", "),
            example_loop(&a.edges, &comp).join(" -> ")
        );
        for from in &comp {
            for (to, sites) in a.edges.get(from).into_iter().flatten() {
                if !comp.contains(to) {
                    continue;
                }
                let up = match (layer.get(from), layer.get(to)) {
                    (Some(lf), Some(lt)) if lt > lf => {
                        format!("   <- goes UP: layer {lf} imports layer {lt}")
                    }
                    _ => String::new(),
                };
                let _ = write!(msg, "\n     {from} -> {to}   {}{up}", first_site(sites));
            }
        }
        msg.push_str(
            "\n   fix: cut the cycle. An edge marked UP is a lower module using a higher one: move what it \
             uses down (into it or a lower layer), or hand it in from above (a parameter, a trait, a \
             callback). If LAYERS itself is wrong, change LAYERS and ARCHITECTURE.md.",
        );
        failures.push(msg);
    }

    let missing: Vec<&String> = a
        .modules
        .iter()
        .filter(|m| !layer.contains_key(*m))
        .collect();
    for m in missing {
        let file = a.module_files.get(m).cloned().unwrap_or_default();
        failures.push(format!(
            "module `{m}` ({file}) is not in LAYERS: add it to the layer it belongs in, in `const LAYERS` \
             of rdask-core/tests/layers.rs (lowest layer first), and to ARCHITECTURE.md"
        ));
    }
    for name in layer.keys() {
        if !a.modules.contains(name) {
            failures.push(format!(
                "LAYERS names `{name}`, but there is no src/{name}.rs nor src/{name}/: remove it from \
                 `const LAYERS` in rdask-core/tests/layers.rs (or fix the spelling)"
            ));
        }
    }
    let mut seen = BTreeSet::new();
    for name in layers.iter().flat_map(|l| l.iter()) {
        if !seen.insert(*name) {
            failures.push(format!(
                "LAYERS names `{name}` more than once: keep it in one layer only"
            ));
        }
    }

    for (from, tos) in &a.edges {
        for (to, sites) in tos {
            if let (Some(lf), Some(lt)) = (layer.get(from), layer.get(to)) {
                if lt > lf {
                    failures.push(format!(
                        "`{from}` (layer {lf}) imports `{to}` (layer {lt}), a higher layer, at {}: a module \
                         may import only modules of its own layer and lower ones. Move what `{from}` uses \
                         out of `{to}` (into `{from}` or a lower layer), or, if the layering is what is \
                         wrong, change LAYERS and ARCHITECTURE.md",
                        first_site(sites)
                    ));
                }
            }
        }
    }
    failures
}

/// The module graph, by layer, one line per module: `module -> imports`.
fn render_graph(a: &Analysis, layers: &[&[&str]]) -> String {
    let layer = layer_of(layers);
    let mut s = String::from(
        "rdask-core module graph (module -> the modules it imports), lowest layer first:\n",
    );
    let line = |s: &mut String, m: &str| {
        let tos: Vec<&str> = a
            .edges
            .get(m)
            .into_iter()
            .flat_map(|t| t.keys())
            .map(String::as_str)
            .collect();
        let tos = if tos.is_empty() {
            "(nothing)".to_string()
        } else {
            tos.join(", ")
        };
        let _ = writeln!(s, "    {m} -> {tos}");
    };
    for (i, l) in layers.iter().enumerate() {
        let _ = writeln!(s, "  layer {i}: {}", l.join(", "));
        for m in l.iter().filter(|m| a.modules.contains(**m)) {
            line(&mut s, m);
        }
    }
    let unlisted: Vec<&String> = a
        .modules
        .iter()
        .filter(|m| !layer.contains_key(*m))
        .collect();
    if !unlisted.is_empty() {
        let _ = writeln!(s, "  not in LAYERS:");
        for m in unlisted {
            line(&mut s, m);
        }
    }
    if !a.notes.is_empty() {
        let _ = writeln!(s, "  notes (paths not counted as edges):");
        for n in &a.notes {
            let _ = writeln!(s, "    {n}");
        }
    }
    s
}

// ---------------------------------------------------------------------------
// Tests of the checker itself
// ---------------------------------------------------------------------------

mod checker {
    use super::*;

    fn paths_of(src: &str) -> Vec<String> {
        let code = strip_cfg_test(&strip_comments_and_literals(src));
        extract_paths(&tokenize(&code))
            .iter()
            .map(|p| p.names().join("::"))
            .collect()
    }

    fn mods(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn here(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn grouped_use_with_nested_braces() {
        let src = "use crate::{a::x, b::{y, z::{w, v as u}}, C, d::{self, *}};";
        assert_eq!(
            paths_of(src),
            [
                "crate::a::x",
                "crate::b::y",
                "crate::b::z::w",
                "crate::b::z::v",
                "crate::C",
                "crate::d::self",
                "crate::d"
            ]
        );
        let code = strip_comments_and_literals(src);
        let p = extract_paths(&tokenize(&code));
        assert_eq!(p[3].alias.as_deref(), Some("u"));
        assert!(p[6].glob);
    }

    #[test]
    fn multi_line_use_gives_each_leaf_its_line() {
        let src = "fn f() {}\nuse crate::{\n    a::X,\n    b::{\n        Y,\n    },\n};\n";
        let p = extract_paths(&tokenize(&strip_comments_and_literals(src)));
        let (abs, line) = resolve(&here(&["m"]), &p[0]).unwrap();
        assert_eq!((abs, line), (here(&["a", "X"]), 3));
        let (abs, line) = resolve(&here(&["m"]), &p[1]).unwrap();
        assert_eq!((abs, line), (here(&["b", "Y"]), 4));
    }

    #[test]
    fn paths_in_code_not_only_in_use() {
        let src = "fn f(a: &mut crate::node::Args<'_>) -> crate::Result<()> { crate::graph::lit::<u8>(1); \
                   crate::set_scheduler(x); $crate::key::Key::new(); std::crate_like::x; }";
        assert_eq!(
            paths_of(src),
            [
                "crate::node::Args",
                "crate::Result",
                "crate::graph::lit",
                "crate::set_scheduler"
            ]
        );
    }

    #[test]
    fn super_and_self_resolve_against_the_file_module() {
        let src = "use super::wire::{fits, kind};\nuse super::super::z::Q;\nuse self::inner::R;\nuse super::*;";
        let p = extract_paths(&tokenize(&strip_comments_and_literals(src)));
        let r = |h: &[&str], i: usize| resolve(&here(h), &p[i]).map(|(a, _)| a);
        // From src/process/pool.rs: `super::wire` is process::wire.
        assert_eq!(
            r(&["process", "pool"], 0),
            Some(here(&["process", "wire", "fits"]))
        );
        // From src/x.rs: `super::wire` is crate::wire.
        assert_eq!(r(&["x"], 0), Some(here(&["wire", "fits"])));
        assert_eq!(r(&["x", "y", "w"], 2), Some(here(&["x", "z", "Q"])));
        assert_eq!(r(&["x", "y"], 2), Some(here(&["z", "Q"])));
        assert_eq!(r(&["x"], 2), None); // above the root
        assert_eq!(r(&["x"], 3), Some(here(&["x", "inner", "R"])));
        assert_eq!(r(&["x"], 4), Some(vec![])); // `super::*` from src/x.rs: the root
        assert!(p[4].glob);
    }

    #[test]
    fn super_inside_an_inline_module() {
        let src = "mod inner {\n    use super::helper;\n    mod deeper { use super::super::up; }\n}\nuse super::after;";
        let p = extract_paths(&tokenize(&strip_comments_and_literals(src)));
        let abs: Vec<Vec<String>> = p
            .iter()
            .map(|p| {
                let mut h = here(&["x", "y"]);
                h.extend(p.inline_mods.iter().cloned());
                resolve(&h, p).unwrap().0
            })
            .collect();
        assert_eq!(
            abs,
            [
                here(&["x", "y", "helper"]),
                here(&["x", "y", "up"]),
                here(&["x", "after"])
            ]
        );
    }

    #[test]
    fn module_paths_of_files() {
        assert_eq!(module_path_of(Path::new("exec.rs")), here(&["exec"]));
        assert_eq!(
            module_path_of(Path::new("process/mod.rs")),
            here(&["process"])
        );
        assert_eq!(
            module_path_of(Path::new("process/pool.rs")),
            here(&["process", "pool"])
        );
        assert_eq!(module_path_of(Path::new("a/b/mod.rs")), here(&["a", "b"]));
        assert_eq!(top_module_of(Path::new("lib.rs")), None);
        assert_eq!(top_module_of(Path::new("a/b/c.rs")).as_deref(), Some("a"));
        assert_eq!(
            top_module_of(Path::new("__private.rs")).as_deref(),
            Some("__private")
        );
    }

    #[test]
    fn comments_strings_and_chars_are_skipped() {
        let src = r##"
// use crate::line::X;
/// [`Y`](crate::doc::Y)
//! crate::inner_doc::Z
/* crate::block::A /* nested crate::nested::B */ crate::still::C */
fn f<'a>(x: &'a str) -> &'a str {
    let s = "crate::string::D \" crate::escaped::E";
    let r = r#"crate::raw::F " still raw"#;
    let b = br"crate::rawbytes::G";
    let q = '"'; let brace = '{'; let esc = '\''; let u = '\u{7f}';
    let t = crate::real::T;
    'outer: loop { break 'outer; }
    crate::after_label::U
}
"##;
        assert_eq!(paths_of(src), ["crate::real::T", "crate::after_label::U"]);
        let stripped = strip_comments_and_literals(src);
        assert_eq!(stripped.lines().count(), src.lines().count());
        assert!(stripped.contains("'a str"), "lifetimes kept: {stripped}");
        let p = extract_paths(&tokenize(&stripped));
        assert_eq!(p[0].segs[1].1, 11); // the line of `crate::real::T`
    }

    #[test]
    fn cfg_test_blocks_are_skipped() {
        let src = "use crate::a::X;
#[cfg(test)]
mod tests {
    use super::*;
    use crate::b::Y;
    fn f() { if true { let s = \"}\"; } }
}
# [ cfg ( test ) ] use crate::c::Z;
#[cfg(test)]
#[allow(dead_code)]
fn helper<A, B>() where A: Clone, B: Copy { crate::d::W; }
#[cfg(not(test))]
use crate::e::V;
struct S {
    #[cfg(test)]
    probe: crate::f::P,
    kept: crate::g::K,
}
#[cfg(test)]
mod file_tests;
use crate::h::L;
";
        assert_eq!(
            paths_of(src),
            ["crate::a::X", "crate::e::V", "crate::g::K", "crate::h::L"]
        );
        let stripped = strip_cfg_test(&strip_comments_and_literals(src));
        assert_eq!(stripped.lines().count(), src.lines().count());
        assert_eq!(
            paths_of("#![cfg(test)]\nuse crate::a::X;\n"),
            Vec::<String>::new()
        );
    }

    #[test]
    fn reexport_map_from_lib_rs() {
        let lib = "//! docs with `pub use fake::Nope;`
mod a;
pub mod b;
mod c;
pub use a::{One, Two as Deux, inner::{Three}};
pub use b::Four;
pub use self::c::Five;
use crate::c::six;
pub use a::*;
pub use rayon::ThreadPool;
pub use Four as Quatre;
#[cfg(test)]
pub use b::TestOnly;
pub use c::{
    Seven,
    eight,
};
";
        let r = parse_reexports(lib, &mods(&["a", "b", "c"]));
        let want: BTreeMap<String, String> = [
            ("One", "a"),
            ("Deux", "a"),
            ("Three", "a"),
            ("Four", "b"),
            ("Five", "c"),
            ("six", "c"),
            ("Quatre", "b"),
            ("Seven", "c"),
            ("eight", "c"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(r.names, want);
        assert_eq!(r.globs, ["a"]);
    }

    #[test]
    fn file_deps_use_reexports_and_ignore_own_module() {
        let modules = mods(&["key", "value", "delayed", "process", "schedule"]);
        let mut re = Reexports::default();
        re.names.insert("Key".into(), "key".into());
        re.names.insert("value".into(), "delayed".into());
        re.names.insert("set_scheduler".into(), "schedule".into());
        let src = "use crate::{Key, value::Encoded};\nuse super::remote::X;\nfn f() { crate::value(1); crate::set_scheduler(s); crate::Unknown; }\n";
        let (deps, notes) = file_deps(src, &here(&["process", "worker"]), &modules, &re);
        assert_eq!(
            deps,
            [
                ("key".to_string(), 1),
                ("value".to_string(), 1),
                ("delayed".to_string(), 3),
                ("schedule".to_string(), 3)
            ]
        );
        assert_eq!(notes.len(), 1);
        assert!(notes[0].0.contains("crate::Unknown"));
    }

    /// A scratch `src` tree, removed on drop.
    struct Tree(PathBuf);
    impl Tree {
        fn new(name: &str, files: &[(&str, &str)]) -> Tree {
            let dir =
                std::env::temp_dir().join(format!("rdask-layers-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            for (path, text) in files {
                let p = dir.join(path);
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::fs::write(p, text).unwrap();
            }
            Tree(dir)
        }
    }
    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn whole_tree_cycle_and_layers() {
        let t = Tree::new(
            "cycle",
            &[
                (
                    "lib.rs",
                    "mod low; mod mid; mod high; mod ok;\npub use high::Top;\n",
                ),
                ("low.rs", "use crate::mid::M;\n"),
                ("mid/mod.rs", "mod part;\n"),
                ("mid/part.rs", "\n\nuse crate::Top;\nuse super::part2;\n"),
                ("high.rs", "use crate::{low::L, ok::O};\npub struct Top;\n"),
                ("ok.rs", "// use crate::high::Top;\n"),
            ],
        );
        let a = analyze(&t.0).unwrap();
        assert_eq!(a.modules, mods(&["high", "low", "mid", "ok"]));
        assert_eq!(a.files, 6);
        assert_eq!(cycles(&a.edges), [here(&["high", "low", "mid"])]);
        assert_eq!(a.edges["mid"]["high"], ["src/mid/part.rs:3"]);
        assert_eq!(
            example_loop(&a.edges, &here(&["high", "low", "mid"])),
            here(&["high", "low", "mid", "high"])
        );

        let failures = check(&a, &[&["ok", "low"], &["mid"], &["high"], &["gone"]]);
        assert_eq!(failures.len(), 4, "{failures:#?}"); // the cycle, `gone`, two upward edges
        assert!(
            failures[0].starts_with("cycle among 3 modules: high, low, mid"),
            "{}",
            failures[0]
        );
        assert!(
            failures[0].contains("mid -> high   src/mid/part.rs:3"),
            "{}",
            failures[0]
        );
        assert!(
            failures[0].contains("low -> mid   src/low.rs:1   <- goes UP"),
            "{}",
            failures[0]
        );
        assert!(
            failures[1].contains("`gone`") && failures[1].contains("remove it"),
            "{}",
            failures[1]
        );
        assert!(failures
            .iter()
            .any(|f| f.starts_with("`mid` (layer 1) imports `high` (layer 2)")));

        let failures = check(&a, &[&["low", "ok"], &["high"]]);
        assert!(failures
            .iter()
            .any(|f| f.starts_with("module `mid` (src/mid/mod.rs) is not in LAYERS: add it")));
        let failures = check(&a, &[&["low", "ok"], &["low"]]);
        assert!(failures.iter().any(|f| f.contains("`low` more than once")));

        let graph = render_graph(&a, &[&["ok", "low"], &["mid", "high"]]);
        assert!(graph.contains("    high -> low, ok\n"), "{graph}");
        assert!(graph.contains("    ok -> (nothing)\n"), "{graph}");
    }

    #[test]
    fn whole_tree_without_cycle_passes() {
        let t = Tree::new(
            "clean",
            &[
                ("lib.rs", "mod a; mod b; mod c;\npub use a::A;\n"),
                (
                    "a.rs",
                    "pub struct A;\n#[cfg(test)]\nmod tests { use crate::c::C; }\n",
                ),
                ("b.rs", "use crate::A;\n"),
                ("c/mod.rs", "use crate::{b::B, A};\nmod d;\n"),
                ("c/d.rs", "use super::C;\n"),
            ],
        );
        let a = analyze(&t.0).unwrap();
        assert!(cycles(&a.edges).is_empty());
        assert_eq!(check(&a, &[&["a"], &["b", "c"]]), Vec::<String>::new());
        // `c` imports `b` in its own layer: allowed. `b` above `c`: refused.
        assert_eq!(check(&a, &[&["a"], &["c"], &["b"]]).len(), 1);
    }
}
