//! Graph rewrites, as dask's `dask.optimization`: [`Graph::inline`],
//! [`Graph::inline_constants`], [`Graph::inline_functions`] and
//! [`Graph::fuse`].
//!
//! Each gives a new graph that computes the same values with fewer keys: a
//! key's task goes *into* the task that uses it, as a nested task (dask's
//! `(inc, (inc, 'x'))`), and a constant in as a literal. The nodes are
//! shared with the original graph, so a rewrite copies only the tasks it
//! changes. In rdask a nested task still runs as a task of its own (a task
//! costs tens of nanoseconds here, not dask's tens of microseconds), so
//! these rewrites are for what the keys say (fewer to draw, name or hand
//! to `get`) rather than for speed; on a Dask cluster rdask fuses straight
//! chains into one dask task itself.
//!
//! How: the graph's tasks in an order where inputs come first (a cycle's
//! tasks last, unchanged, for `get` to report), each rebuilt when one of its
//! arguments names a key to inline or an input that was rebuilt. Nested
//! tasks are rebuilt the same way with an explicit stack, never recursion,
//! so a task nested a million deep is fine.

use super::Graph;
use crate::key::Key;
use crate::node::{Arg, Node, NodeRef, Op, Src};
use crate::task::{DynRunFn, DynTask};
use std::collections::HashMap;

impl Graph {
    /// Each use of `keys` replaced by the key's task, nested, or its value
    /// (dask's `inline(dsk, keys)`); the keys themselves stay (drop them
    /// with [`cull`](Self::cull)).
    ///
    /// ```
    /// use rdask::prelude::*;
    /// fn inc(x: i64) -> i64 { x + 1 }
    /// fn add(a: i64, b: i64) -> i64 { a + b }
    /// let dsk = graph! { "x" => 1_i64, "y" => (inc, "x"), "z" => (add, "x", "y") };
    /// let inlined = dsk.inline(&["y"]);
    /// assert_eq!(inlined.dependencies("z"), vec![rdask::Key::from("x")]);
    /// assert_eq!(rdask::get::<i64>(&inlined, "z")?, 3);
    /// # Ok::<(), rdask::Error>(())
    /// ```
    pub fn inline<K: Into<Key> + Clone>(&self, keys: &[K]) -> Graph {
        let into = self.marks(keys);
        self.substitute(&into, false, &self.inputs_by_position())
    }

    /// Every value key (not a task) put into the tasks that use it as a
    /// literal (dask's `inline(dsk)`, which inlines constants); the keys
    /// stay.
    ///
    /// ```
    /// use rdask::prelude::*;
    /// fn add(a: i64, b: i64) -> i64 { a + b }
    /// let dsk = graph! { "x" => 1_i64, "y" => 2_i64, "z" => (add, "x", "y") };
    /// let inlined = dsk.inline_constants();
    /// assert!(inlined.dependencies("z").is_empty());
    /// assert_eq!(rdask::get::<i64>(&inlined, "z")?, 3);
    /// # Ok::<(), rdask::Error>(())
    /// ```
    pub fn inline_constants(&self) -> Graph {
        let into: Vec<bool> = self
            .nodes
            .values()
            .map(|n| matches!(n.op, Op::Const(_)))
            .collect();
        self.substitute(&into, false, &self.inputs_by_position())
    }

    /// The tasks of functions named in `fast` put into the tasks that use
    /// them, and gone from the graph, except `outputs` and tasks nothing
    /// uses (dask's `inline_functions(dsk, outputs, fast_functions)`). A
    /// function's name is the one profiles and pictures show: a
    /// `#[delayed]` function's own name, a raw graph function's last path
    /// segment.
    ///
    /// ```
    /// use rdask::prelude::*;
    /// fn split(s: String) -> Vec<String> { s.split(' ').map(String::from).collect() }
    /// fn count(v: Vec<String>) -> usize { v.len() }
    /// let dsk = graph! { "words" => (split, "a b c"), "n" => (count, "words") };
    /// let fast = dsk.inline_functions(&["n"], &["split"]);
    /// assert_eq!(fast.len(), 1);
    /// assert_eq!(rdask::get::<usize>(&fast, "n")?, 3);
    /// # Ok::<(), rdask::Error>(())
    /// ```
    pub fn inline_functions<K: Into<Key> + Clone>(&self, outputs: &[K], fast: &[&str]) -> Graph {
        let keep = self.marks(outputs);
        let inputs = self.inputs_by_position();
        let mut used = vec![false; self.len()];
        inputs.iter().flatten().for_each(|&p| used[p] = true);
        let into: Vec<bool> = (self.nodes.values().enumerate())
            .map(|(p, n)| {
                let task = matches!(n.op, Op::Fn { .. } | Op::Dyn(_));
                task && used[p] && !keep[p] && fast.contains(&n.op.name())
            })
            .collect();
        self.substitute(&into, true, &inputs)
    }

    /// Straight chains fused: a task used once, by a task that uses nothing
    /// else, goes into it as a nested task and leaves the graph, unless it
    /// is one of `keep` (dask's `fuse_linear(dsk, keys)`, keys not renamed).
    /// The graph's width, its parallelism, is unchanged.
    ///
    /// ```
    /// use rdask::prelude::*;
    /// fn inc(x: i64) -> i64 { x + 1 }
    /// fn add(a: i64, b: i64) -> i64 { a + b }
    /// let dsk = graph! {
    ///     "a" => 1_i64, "b" => (inc, "a"), "c" => (inc, "b"), "d" => (inc, "c"),
    ///     "e" => (add, "d", "a"),
    /// };
    /// let fused = dsk.fuse(&["e"]);
    /// let mut keys: Vec<String> = fused.keys().map(|k| k.to_string()).collect();
    /// keys.sort();
    /// assert_eq!(keys, ["a", "d", "e"]); // b and c went into d
    /// assert_eq!(rdask::get::<i64>(&fused, "e")?, 5);
    /// # Ok::<(), rdask::Error>(())
    /// ```
    pub fn fuse<K: Into<Key> + Clone>(&self, keep: &[K]) -> Graph {
        let keep = self.marks(keep);
        let inputs = self.inputs_by_position();
        let mut uses = vec![0u32; self.len()];
        let mut user = vec![usize::MAX; self.len()];
        for (c, ins) in inputs.iter().enumerate() {
            for &p in ins {
                uses[p] += 1;
                user[p] = c;
            }
        }
        let into: Vec<bool> = (self.nodes.values().enumerate())
            .map(|(p, n)| {
                let task = !matches!(n.op, Op::Const(_));
                let only_input = uses[p] == 1 && inputs[user[p]] == [p];
                task && only_input && !keep[p]
            })
            .collect();
        self.substitute(&into, true, &inputs)
    }

    /// Per key, whether it is one of `keys`.
    fn marks<K: Into<Key> + Clone>(&self, keys: &[K]) -> Vec<bool> {
        let mut marks = vec![false; self.len()];
        for k in keys {
            if let Some(p) = self.nodes.get_index_of(&k.clone().into()) {
                marks[p] = true;
            }
        }
        marks
    }

    /// Per key, the keys its task uses, once per use.
    fn inputs_by_position(&self) -> Vec<Vec<usize>> {
        (self.nodes.values())
            .map(|n| {
                let mut ins = Vec::new();
                self.each_dependency(n, |d| ins.extend(d.ok()));
                ins
            })
            .collect()
    }

    /// The keys in an order where a key's inputs come before it; the keys
    /// of a cycle last, in graph order.
    fn inputs_first(&self, inputs: &[Vec<usize>]) -> Vec<usize> {
        let n = self.len();
        let mut users: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut waiting = vec![0usize; n];
        for (c, ins) in inputs.iter().enumerate() {
            for &p in ins {
                users[p].push(c);
                waiting[c] += 1;
            }
        }
        let mut ready: Vec<usize> = (0..n).filter(|&c| waiting[c] == 0).collect();
        let mut order = Vec::with_capacity(n);
        let mut placed = vec![false; n];
        while let Some(p) = ready.pop() {
            order.push(p);
            placed[p] = true;
            for &c in &users[p] {
                waiting[c] -= 1;
                if waiting[c] == 0 {
                    ready.push(c);
                }
            }
        }
        order.extend((0..n).filter(|&p| !placed[p]));
        order
    }

    /// The graph with every use of a key marked in `into` replaced by its
    /// task or value, and those keys gone when `drop`.
    /// (`inputs`: [`inputs_by_position`](Self::inputs_by_position).)
    fn substitute(&self, into: &[bool], drop: bool, inputs: &[Vec<usize>]) -> Graph {
        let mut rewrite = Rewrite {
            graph: self,
            into,
            rebuilt: vec![None; self.len()],
            stand_in: vec![None; self.len()],
            nested: HashMap::new(),
        };
        for p in self.inputs_first(inputs) {
            let node = &self.nodes[p];
            rewrite.rebuilt[p] = rewrite.node(node);
            if into[p] && !drop {
                // A key that stays is not its users' input any more: they
                // get a copy of its task (one for all of them).
                // Named apart, so that they do not depend on the key.
                let n = rewrite.rebuilt[p].as_ref().unwrap_or(node);
                let name = Key::from(format!("{}-inlined-{}", n.key, unique()));
                rewrite.stand_in[p] = Some(copy(n, name, n.args.iter().cloned()));
            }
        }
        let nodes = (self.nodes.iter().enumerate())
            .filter(|&(p, _)| !(drop && into[p]))
            .map(|(p, (k, n))| {
                let n = rewrite.rebuilt[p].clone().unwrap_or_else(|| n.clone());
                (k.clone(), n)
            })
            .collect();
        Graph { nodes }
    }
}

/// One rewrite's state: the keys' new nodes (`None`: unchanged), and those
/// of the nested tasks met, by address.
struct Rewrite<'g> {
    graph: &'g Graph,
    into: &'g [bool],
    rebuilt: Vec<Option<NodeRef>>,
    /// What users of a key to inline that stays get instead.
    stand_in: Vec<Option<NodeRef>>,
    nested: HashMap<*const Node, Option<NodeRef>>,
}

/// A number no other call gives.
fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// `node` under `key` with `args`, as a node of its own.
fn copy(node: &NodeRef, key: Key, args: impl IntoIterator<Item = Arg>) -> NodeRef {
    NodeRef::new(Node::new(key, same_op(node), args, node.clone, node.by_key))
}

/// What `node` does, for a copy of it. A closure cannot be copied: the
/// copy calls it through `node`, which it keeps (so only rewritten graphs
/// pay for that, not every closure task).
fn same_op(node: &NodeRef) -> Op {
    match &node.op {
        Op::Fn { run, info } => Op::Fn { run: *run, info },
        Op::Const(v) => Op::Const(v.clone()),
        Op::Alias => Op::Alias,
        Op::Dyn(task) => {
            let keep = node.clone();
            let run = move |args: &mut crate::task::Args<'_>| match &keep.op {
                Op::Dyn(task) => (task.run)(args),
                _ => unreachable!("a closure task's node stays one"),
            };
            let task: DynRunFn = Box::new(DynTask {
                name: task.name,
                annot: task.annot,
                run,
            });
            Op::Dyn(task)
        }
    }
}

impl<'g> Rewrite<'g> {
    /// `root` rebuilt (`None`: nothing in it changes), its nested tasks
    /// first, each once (an explicit stack: nesting can be deep).
    fn node(&mut self, root: &'g NodeRef) -> Option<NodeRef> {
        let mut stack: Vec<(&'g NodeRef, bool)> = vec![(root, false)];
        let mut result = None;
        while let Some((node, inputs_done)) = stack.pop() {
            if !inputs_done && self.nested.contains_key(&NodeRef::as_ptr(node)) {
                continue; // met twice before it was rebuilt
            }
            if !inputs_done {
                stack.push((node, true));
                node.for_each_leaf(|leaf, _| {
                    if let crate::node::Leaf::Node(child, _) = leaf {
                        let seen = self.nested.contains_key(&NodeRef::as_ptr(child));
                        if !self.is_key(child) && !seen {
                            stack.push((child, false));
                        }
                    }
                });
                continue;
            }
            let args: Vec<Option<Src>> = node.args.iter().map(|a| self.src(&a.src)).collect();
            let new = args.iter().any(Option::is_some).then(|| {
                let args = node.args.iter().zip(args).map(|(a, src)| Arg {
                    src: src.unwrap_or_else(|| a.src.clone()),
                    ..a.clone()
                });
                copy(node, node.key.clone(), args)
            });
            match std::ptr::eq(node, root) {
                true => result = new,
                false => {
                    self.nested.insert(NodeRef::as_ptr(node), new);
                }
            }
        }
        result
    }

    /// Whether `n` is the task of one of the graph's keys (not nested).
    fn is_key(&self, n: &NodeRef) -> bool {
        self.graph
            .nodes
            .get(&n.key)
            .is_some_and(|m| std::ptr::eq(NodeRef::as_ptr(m), NodeRef::as_ptr(n)))
    }

    /// What stands for `n` now, if it was rebuilt.
    fn replaced(&self, n: &NodeRef) -> Option<NodeRef> {
        match self.is_key(n) {
            true => {
                let p = self.graph.nodes.get_index_of(&n.key)?;
                self.rebuilt[p].clone()
            }
            false => self.nested.get(&NodeRef::as_ptr(n)).cloned().flatten(),
        }
    }

    /// `src` rewritten (`None`: unchanged).
    fn src(&self, src: &Src) -> Option<Src> {
        match src {
            Src::Key(k) => self.inlined(k),
            Src::MaybeKey(m) => self.inlined(&m.key),
            Src::Node(n, clone) => self.replaced(n).map(|r| Src::Node(r, *clone)),
            Src::Nodes { items, build } => {
                let new: Vec<Option<NodeRef>> = items.iter().map(|n| self.replaced(n)).collect();
                new.iter().any(Option::is_some).then(|| Src::Nodes {
                    items: items
                        .iter()
                        .zip(new)
                        .map(|(n, r)| r.unwrap_or_else(|| n.clone()))
                        .collect(),
                    build: *build,
                })
            }
            // A list's nesting is its type's, so recursion is bounded here.
            Src::List { items, build } => {
                let new: Vec<Option<Src>> = items.iter().map(|s| self.src(s)).collect();
                new.iter().any(Option::is_some).then(|| Src::List {
                    items: items
                        .iter()
                        .zip(new)
                        .map(|(s, r)| r.unwrap_or_else(|| s.clone()))
                        .collect(),
                    build: *build,
                })
            }
            Src::Const { .. } => None,
        }
    }

    /// What replaces a use of key `k`, when it is to be inlined: its value
    /// as a literal (a constant that can be copied), else its task.
    fn inlined(&self, k: &Key) -> Option<Src> {
        let p = self.graph.nodes.get_index_of(k).filter(|&p| self.into[p])?;
        let node = (self.stand_in[p].clone())
            .or_else(|| self.rebuilt[p].clone())
            .unwrap_or_else(|| self.graph.nodes[p].clone());
        Some(match (&node.op, node.clone) {
            (Op::Const(value), Some(clone)) => Src::Const {
                value: value.clone(),
                clone,
            },
            _ => Src::Node(node, None),
        })
    }
}
