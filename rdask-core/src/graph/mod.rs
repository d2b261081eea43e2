//! Raw task graphs (dask's "custom graphs"): a map from key to a value or a
//! task `(function, args...)`, that code can build, inspect, cull, draw and
//! hand to any scheduler with [`get`].
//!
//! A `Delayed`'s [`graph`](crate::Delayed::graph) is the same structure, so
//! both faces share one planner and one executor.

mod optimize;

use crate::error::ErrorKind;
use crate::exec::take_output;
use crate::node::NodeRef;
use crate::node::{Arg, Leaf, MaybeKey, Node, Op, Src};
use crate::task::{dyn_run, DynRunFn};
use crate::value::{clone_fn_of, register_clone, register_lists, CloneFn, Value};
use crate::{Error, Key, Result, Scheduler};
use indexmap::IndexMap;
use smallvec::SmallVec;
use std::collections::HashSet;

/// A task graph as data: keys mapped to values and tasks.
///
/// ```
/// use rdask::Graph;
/// use rdask::graph::{key, lit};
/// fn add(a: i64, b: i64) -> i64 { a + b }
/// let mut g = Graph::new();
/// g.insert_value("a", 1_i64)
///  .insert_value("b", 2_i64)
///  .insert_task("c", add, (key("a"), key("b")))
///  .insert_task("d", add, (key("c"), lit(10_i64)));
/// assert_eq!(rdask::get::<i64>(&g, "d")?, 13);
/// assert_eq!(g.dependencies("c"), vec!["a".into(), "b".into()]);
/// # Ok::<(), rdask::Error>(())
/// ```
#[derive(Clone, Default)]
pub struct Graph {
    nodes: IndexMap<Key, NodeRef>,
}

/// One argument of a raw task: a key reference, a literal, a list, or a
/// nested task.
pub struct GraphArg(Src);

/// A reference to the value of `k` (missing at compute time: a
/// [`MissingKey`](crate::ErrorKind::MissingKey) error).
///
/// ```
/// use rdask::graph::{key, lit};
/// fn concat(a: String, b: String) -> String { a + &b }
/// let mut g = rdask::Graph::new();
/// g.insert_value("a", "x".to_string())
///     .insert_task("b", concat, (key("a"), lit("a".to_string())));
/// assert_eq!(rdask::get::<String>(&g, "b")?, "xa");
/// # Ok::<(), rdask::Error>(())
/// ```
pub fn key(k: impl Into<Key>) -> GraphArg {
    GraphArg(Src::Key(Box::new(k.into())))
}

/// A literal argument, never taken for a key (`lit("a")` is the string;
/// see [`key`] for an example).
pub fn lit<T: Clone + Send + Sync + 'static>(v: T) -> GraphArg {
    register::<T>();
    GraphArg(Src::Const {
        value: Value::new(v),
        clone: clone_fn_of::<T>(),
    })
}

impl From<Vec<GraphArg>> for GraphArg {
    /// A list argument (for a `Vec` parameter); elements may nest.
    fn from(items: Vec<GraphArg>) -> GraphArg {
        GraphArg(Src::List {
            items: items.into_iter().map(GraphArg::into_src).collect(),
            build: None,
        })
    }
}

impl Drop for GraphArg {
    /// Iterative: lists may nest as deep as the user's loop made them.
    /// (Inside a node, its own drop takes lists apart the same way.)
    fn drop(&mut self) {
        let Src::List { items, .. } = &mut self.0 else {
            return;
        };
        let mut lists = vec![std::mem::take(items)];
        while let Some(items) = lists.pop() {
            for mut item in items.into_vec() {
                if let Src::List { items, .. } = &mut item {
                    lists.push(std::mem::take(items));
                }
            }
        }
    }
}

impl GraphArg {
    /// The source, moved out (an empty list is left to drop).
    fn into_src(mut self) -> Src {
        let empty = Src::List {
            items: Box::default(),
            build: None,
        };
        std::mem::replace(&mut self.0, empty)
    }

    /// dask's rule for a string or tuple in a task: the value of that key if
    /// the graph has it when computed, else the literal itself.
    pub fn key_or_lit<T: Clone + Send + Sync + 'static>(k: impl Into<Key>, literal: T) -> GraphArg {
        register::<T>();
        GraphArg(Src::MaybeKey(Box::new(MaybeKey {
            key: k.into(),
            literal: Value::new(literal),
            clone: clone_fn_of::<T>(),
        })))
    }

    /// A nested task `(f, args...)` inside another task's arguments.
    pub fn task<M, F: TaskFn<M>>(f: F, args: impl TaskArgs<M>) -> GraphArg {
        let node = task_node(Key::nested(), f, args);
        GraphArg(Src::Node(NodeRef::new(node), None))
    }
}

/// An ordinary function or closure usable as a raw task: `Fn(P1, ..., Pn)
/// -> R` for n up to 8, owned parameters, and a `Clone` result (a graph
/// value may feed several tasks).
///
/// rdask implements it for those functions; its method is the engine's own
/// (hidden, and free to change).
pub trait TaskFn<M>: Send + Sync + 'static {
    /// The adapter (with its display name) and how to copy its result.
    #[doc(hidden)]
    fn into_op(self) -> (DynRunFn, CloneFn);
}

/// The arguments of a raw task, one [`GraphArg`]-convertible per parameter.
pub trait TaskArgs<M> {
    /// The arguments in order.
    fn into_args(self) -> Vec<GraphArg>;
}

/// Records a raw graph value type: its lists can fill `Vec` parameters and
/// its values can be copied wherever they are shared.
fn register<T: Clone + Send + Sync + 'static>() {
    register_lists::<T>();
    register_clone::<T>();
}

fn short_name<F>() -> &'static str {
    let full = std::any::type_name::<F>();
    if full.contains("{{closure}}") {
        return "lambda";
    }
    let base = full.split('<').next().unwrap_or(full);
    base.rsplit("::").next().unwrap_or(base)
}

macro_rules! task_fns {
    ($(($($P:ident $A:ident $i:tt),*))+) => {$(
        impl<F, R, $($P),*> TaskFn<($($P,)*)> for F
        where
            F: Fn($($P),*) -> R + Send + Sync + 'static,
            R: Clone + Send + Sync + 'static,
            $($P: Send + Sync + 'static,)*
        {
            #[allow(unused_variables, clippy::unused_unit)]
            fn into_op(self) -> (DynRunFn, CloneFn) {
                register::<R>();
                let run = dyn_run(short_name::<F>(), move |args| {
                    Ok(Value::new((self)($(args.take::<$P>($i)?),*)))
                });
                (run, clone_fn_of::<R>())
            }
        }

        impl<$($P,)* $($A: Into<GraphArg>),*> TaskArgs<($($P,)*)> for ($($A,)*) {
            #[allow(unused_variables, clippy::unused_unit)]
            fn into_args(self) -> Vec<GraphArg> {
                vec![$(self.$i.into()),*]
            }
        }
    )+};
}

task_fns! {
    ()
    (P0 A0 0)
    (P0 A0 0, P1 A1 1)
    (P0 A0 0, P1 A1 1, P2 A2 2)
    (P0 A0 0, P1 A1 1, P2 A2 2, P3 A3 3)
    (P0 A0 0, P1 A1 1, P2 A2 2, P3 A3 3, P4 A4 4)
    (P0 A0 0, P1 A1 1, P2 A2 2, P3 A3 3, P4 A4 4, P5 A5 5)
    (P0 A0 0, P1 A1 1, P2 A2 2, P3 A3 3, P4 A4 4, P5 A5 5, P6 A6 6)
    (P0 A0 0, P1 A1 1, P2 A2 2, P3 A3 3, P4 A4 4, P5 A5 5, P6 A6 6, P7 A7 7)
}

fn task_node<M, F: TaskFn<M>>(k: Key, f: F, args: impl TaskArgs<M>) -> Node {
    let (run, clone) = f.into_op();
    let args = args
        .into_args()
        .into_iter()
        .map(|a| Arg::new(a.into_src(), false, None));
    Node::new(k, Op::Dyn(run), args, Some(clone), false)
}

impl Graph {
    /// An empty graph.
    pub fn new() -> Graph {
        Graph::default()
    }

    /// The graph of everything reachable from `roots` (a `Delayed`'s graph).
    pub(crate) fn from_nodes(roots: &[NodeRef]) -> Graph {
        let mut nodes = IndexMap::new();
        let mut stack: Vec<NodeRef> = roots.to_vec();
        let mut seen: HashSet<*const Node> = HashSet::new();
        let mut order = Vec::new();
        while let Some(n) = stack.pop() {
            if !seen.insert(NodeRef::as_ptr(&n)) {
                continue;
            }
            n.for_each_leaf(|src, _| {
                if let Leaf::Node(child, _) = src {
                    stack.push(child.clone());
                }
            });
            order.push(n);
        }
        // Inputs before the tasks that use them.
        for n in order.into_iter().rev() {
            nodes.entry(n.key.clone()).or_insert(n);
        }
        Graph { nodes }
    }

    /// Sets `k` to a value. Values are copied when used, hence `Clone`.
    pub fn insert_value<T: Clone + Send + Sync + 'static>(
        &mut self,
        k: impl Into<Key>,
        v: T,
    ) -> &mut Self {
        let k = k.into();
        register::<T>();
        let node = Node::new(
            k.clone(),
            Op::Const(Value::new(v)),
            [],
            Some(clone_fn_of::<T>()),
            false,
        );
        self.nodes.insert(k, NodeRef::new(node));
        self
    }

    /// Sets `k` to the task `f(args...)`; each argument is a [`key`], a
    /// [`lit`], a `vec![..]` of those, or a nested [`GraphArg::task`].
    pub fn insert_task<M, F: TaskFn<M>>(
        &mut self,
        k: impl Into<Key>,
        f: F,
        args: impl TaskArgs<M>,
    ) -> &mut Self {
        let k = k.into();
        let node = task_node(k.clone(), f, args);
        self.nodes.insert(k, NodeRef::new(node));
        self
    }

    /// Sets `k` to be the value of `target` (dask's `{"b": "a"}` alias).
    pub fn insert_alias(&mut self, k: impl Into<Key>, target: impl Into<Key>) -> &mut Self {
        let k = k.into();
        let arg = Arg::new(Src::Key(Box::new(target.into())), false, None);
        let node = Node::new(k.clone(), Op::Alias, [arg], None, false);
        self.nodes.insert(k, NodeRef::new(node));
        self
    }

    /// Removes `k`, returning whether it was there.
    pub fn remove(&mut self, k: impl Into<Key>) -> bool {
        self.nodes.shift_remove(&k.into()).is_some()
    }

    /// Adds every entry of `other`, replacing entries with the same key.
    pub fn merge(&mut self, other: &Graph) -> &mut Self {
        for (k, n) in &other.nodes {
            self.nodes.insert(k.clone(), n.clone());
        }
        self
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the graph has no key.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The keys, in insertion order.
    pub fn keys(&self) -> impl Iterator<Item = &Key> + '_ {
        self.nodes.keys()
    }

    /// Whether `k` is a key of the graph.
    pub fn contains(&self, k: impl Into<Key>) -> bool {
        self.nodes.contains_key(&k.into())
    }

    /// The keys whose values the task at `k` uses, each once, in the order
    /// of their first use in its arguments (empty for values and unknown
    /// keys). A string that is not a key of the graph is a literal, not a
    /// dependency.
    pub fn dependencies(&self, k: impl Into<Key>) -> Vec<Key> {
        let mut deps = indexmap::IndexSet::new();
        if let Some(node) = self.nodes.get(&k.into()) {
            self.each_dependency(node, |dep| {
                let key = match dep {
                    Ok(i) => self.nodes.get_index(i).map(|(k, _)| k),
                    Err(missing) => Some(missing),
                };
                deps.extend(key.cloned());
            });
        }
        deps.into_iter().collect()
    }

    /// Calls `f` with the position (in `nodes`) of each key `node` depends
    /// on, in argument order, or with the key itself when the graph lacks
    /// it. Nested tasks (nodes not in the graph) are part of their parent:
    /// their inputs are looked through, without recursion.
    fn each_dependency<'g>(&'g self, node: &'g Node, mut f: impl FnMut(Result<usize, &'g Key>)) {
        let mut stack: Vec<(SmallVec<[Leaf<'g>; 4]>, usize)> = vec![(leaves(node), 0)];
        while let Some((srcs, i)) = stack.last_mut() {
            let Some(src) = srcs.get(*i).copied() else {
                stack.pop();
                continue;
            };
            *i += 1;
            let key = match src {
                Leaf::Node(child, _) => match self.nodes.get_index_of(&child.key) {
                    Some(pos) => {
                        f(Ok(pos));
                        continue;
                    }
                    None => {
                        stack.push((leaves(child), 0));
                        continue;
                    }
                },
                Leaf::Key(k) => k,
                Leaf::MaybeKey(m) => &m.key,
            };
            match self.nodes.get_index_of(key) {
                Some(pos) => f(Ok(pos)),
                // A missing `key(..)` is still a dependency (`get` reports
                // it); a missing maybe-key is a literal.
                None if matches!(src, Leaf::Key(_)) => f(Err(key)),
                None => {}
            }
        }
    }

    /// The part of the graph that `keys` need: those keys and everything they
    /// depend on, in the original order. Keys not in the graph are ignored.
    pub fn cull<K: Into<Key> + Clone>(&self, keys: &[K]) -> Graph {
        let mut keep = vec![false; self.nodes.len()];
        let mut stack: Vec<usize> = keys
            .iter()
            .filter_map(|k| self.nodes.get_index_of(&k.clone().into()))
            .collect();
        while let Some(i) = stack.pop() {
            if std::mem::replace(&mut keep[i], true) {
                continue;
            }
            self.each_dependency(&self.nodes[i], |dep| {
                if let Ok(pos) = dep {
                    stack.push(pos);
                }
            });
        }
        let nodes = self
            .nodes
            .iter()
            .zip(&keep)
            .filter(|(_, &k)| k)
            .map(|((k, n), _)| (k.clone(), n.clone()))
            .collect();
        Graph { nodes }
    }

    /// A Graphviz (DOT) description: one node per key, labelled with the key
    /// and its function, and an edge from each dependency. Keys are quoted
    /// (quotes, backslashes and line breaks escaped), so any key is valid DOT.
    pub fn to_dot(&self) -> String {
        use crate::dot::{Dot, Id};
        let mut dot = Dot::digraph("rdask");
        dot.set("rankdir", "BT")
            .defaults("node", "fontname=\"Helvetica\"");
        for (k, n) in &self.nodes {
            let shape = match n.op {
                Op::Const(_) => "box",
                _ => "ellipse",
            };
            let annot = n.op.annotations();
            let annot = match annot.is_empty() {
                true => String::new(),
                false => format!("\n[{}]", annot.describe()),
            };
            dot.node(
                Id::Text(k),
                format_args!("{k}\n{}{annot}", n.op.name()),
                format_args!("shape={shape}"),
            );
        }
        for k in self.nodes.keys() {
            for d in self.dependencies(k) {
                dot.edge(Id::Text(&d), Id::Text(k), "");
            }
        }
        dot.finish()
    }

    /// The node at `k`, for planning.
    /// The nodes of `keys`, to compute (a key the graph lacks: `MissingKey`).
    fn roots(&self, keys: &[Key]) -> Result<Vec<NodeRef>> {
        keys.iter()
            .map(|k| {
                self.nodes
                    .get(k)
                    .cloned()
                    .ok_or_else(|| Error::missing(k, None))
            })
            .collect()
    }

    /// The map of nodes, for resolving keys.
    pub(crate) fn nodes(&self) -> &IndexMap<Key, NodeRef> {
        &self.nodes
    }
}

impl std::fmt::Debug for Graph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut m = f.debug_map();
        for (k, n) in &self.nodes {
            let deps = self.dependencies(k);
            m.entry(
                &format_args!("{k}"),
                &format_args!(
                    "({}, {:?})",
                    n.op.name(),
                    deps.iter().map(|d| d.to_string()).collect::<Vec<_>>()
                ),
            );
        }
        m.finish()
    }
}

fn leaves(node: &Node) -> SmallVec<[Leaf<'_>; 4]> {
    let mut out = SmallVec::new();
    node.for_each_leaf(|leaf, _| out.push(leaf));
    out
}

/// Computes the value of `key` in a raw graph, on the default scheduler.
///
/// ```
/// use rdask::prelude::*;
/// fn add(a: i64, b: i64) -> i64 { a + b }
/// let dsk = graph! { "a" => 1_i64, "b" => 2_i64, "c" => (add, "a", "b") };
/// assert_eq!(rdask::get::<i64>(&dsk, "c")?, 3);
/// # Ok::<(), rdask::Error>(())
/// ```
pub fn get<T: Send + Sync + 'static>(graph: &Graph, key: impl Into<Key>) -> Result<T> {
    get_with(graph, key, &crate::schedule::current_scheduler()?)
}

/// [`get`] on a given scheduler.
pub fn get_with<T: Send + Sync + 'static>(
    graph: &Graph,
    key: impl Into<Key>,
    scheduler: &Scheduler,
) -> Result<T> {
    let mut v = run_graph::<T>(graph, &[key.into()], scheduler)?;
    Ok(v.pop().expect("one output"))
}

/// The values of several keys of a raw graph, computed together (shared
/// work once), all of one type.
///
/// ```
/// use rdask::prelude::*;
/// fn inc(x: i64) -> i64 { x + 1 }
/// let g = graph! { "a" => 1_i64, "b" => (inc, "a"), "c" => (inc, "b") };
/// assert_eq!(rdask::get_many::<i64>(&g, &["c", "a"])?, vec![3, 1]);
/// # Ok::<(), rdask::Error>(())
/// ```
pub fn get_many<T: Send + Sync + 'static>(
    graph: &Graph,
    keys: &[impl Into<Key> + Clone],
) -> Result<Vec<T>> {
    get_many_with(graph, keys, &crate::schedule::current_scheduler()?)
}

/// [`get_many`] on a given scheduler.
pub fn get_many_with<T: Send + Sync + 'static>(
    graph: &Graph,
    keys: &[impl Into<Key> + Clone],
    scheduler: &Scheduler,
) -> Result<Vec<T>> {
    let keys: Vec<Key> = keys.iter().map(|k| k.clone().into()).collect();
    run_graph::<T>(graph, &keys, scheduler)
}

/// Each key's own result, keeping going after failures (dask has no
/// such mode): a failing task fails only the keys that depend on it, and
/// everything else is computed. Result `i` is key `i`'s. A key the graph
/// lacks, or a cycle, fails them all.
///
/// ```
/// use rdask::prelude::*;
/// fn half(x: i64) -> i64 {
///     assert!(x % 2 == 0, "{x} is odd"); // a raw task fails by panicking
///     x / 2
/// }
/// let g = graph! { "a" => 4_i64, "b" => 3_i64, "ha" => (half, "a"), "hb" => (half, "b") };
/// let each = rdask::get_each::<i64>(&g, &["ha", "hb", "a"]);
/// assert_eq!(each[0].as_ref().ok(), Some(&2));
/// assert!(each[1].as_ref().unwrap_err().to_string().contains("3 is odd"));
/// assert_eq!(each[2].as_ref().ok(), Some(&4));
/// ```
pub fn get_each<T: Send + Sync + 'static>(
    graph: &Graph,
    keys: &[impl Into<Key> + Clone],
) -> Vec<Result<T>> {
    let each = crate::schedule::current_scheduler().and_then(|s| {
        let keys: Vec<Key> = keys.iter().map(|k| k.clone().into()).collect();
        s.compute_each::<T>(&graph.roots(&keys)?, Some(graph.nodes()), &[], None, None)
    });
    spread(each, keys.len())
}

/// `n` results from one computation's: its own, or its error for each.
pub(crate) fn spread<T>(each: Result<Vec<Result<T>>>, n: usize) -> Vec<Result<T>> {
    match each {
        Ok(each) => each,
        Err(e) => {
            let mut out: Vec<Result<T>> = (1..n).map(|_| Err(e.duplicate())).collect();
            if n > 0 {
                out.push(Err(e));
            }
            out
        }
    }
}

/// The values of several keys of a raw graph, of different types, computed
/// together: `T` is a tuple of their types, one key each, in order (the
/// `rdask::get!` macro writes the call).
///
/// ```
/// use rdask::prelude::*;
/// fn len(s: String) -> usize { s.len() }
/// let g = graph! { "s" => lit("abc".to_string()), "n" => (len, "s") };
/// let (s, n): (String, usize) = rdask::get!(&g, "s", "n")?;
/// assert_eq!((s.as_str(), n), ("abc", 3));
/// # Ok::<(), rdask::Error>(())
/// ```
pub fn get_tuple<T: FromOutputs>(graph: &Graph, keys: &[Key]) -> Result<T> {
    get_tuple_with(graph, keys, &crate::schedule::current_scheduler()?)
}

/// [`get_tuple`] on a given scheduler.
pub fn get_tuple_with<T: FromOutputs>(
    graph: &Graph,
    keys: &[Key],
    scheduler: &Scheduler,
) -> Result<T> {
    if keys.len() != T::LEN {
        return Err(Error::new(
            ErrorKind::Type,
            None,
            format!(
                "{} keys asked for a tuple of {} values: give one key per value",
                keys.len(),
                T::LEN
            ),
        ));
    }
    let values = scheduler.compute(&graph.roots(keys)?, Some(graph.nodes()), &[])?;
    T::from_outputs(&mut values.into_iter(), &mut keys.iter())
}

/// Tuples of values [`get_tuple`] can fill, one computed output each.
pub trait FromOutputs: Sized {
    /// How many values.
    const LEN: usize;
    /// The tuple, from the outputs of `keys`, in order.
    #[doc(hidden)]
    fn from_outputs(
        values: &mut std::vec::IntoIter<Value>,
        keys: &mut std::slice::Iter<'_, Key>,
    ) -> Result<Self>;
}

macro_rules! from_outputs {
    ($($n:literal: ($($T:ident),+))+) => {$(
        impl<$($T: Send + Sync + 'static),+> FromOutputs for ($($T,)+) {
            const LEN: usize = $n;
            fn from_outputs(
                values: &mut std::vec::IntoIter<Value>,
                keys: &mut std::slice::Iter<'_, Key>,
            ) -> Result<Self> {
                Ok(($({
                    let key = keys.next().expect("one key per value");
                    take_output::<$T>(values.next(), key)?
                },)+))
            }
        }
    )+};
}

from_outputs! {
    1: (A)
    2: (A, B)
    3: (A, B, C)
    4: (A, B, C, D)
    5: (A, B, C, D, E)
    6: (A, B, C, D, E, F)
    7: (A, B, C, D, E, F, G)
    8: (A, B, C, D, E, F, G, H)
}

/// The values of `keys`, as `T`s.
fn run_graph<T: Send + Sync + 'static>(
    graph: &Graph,
    keys: &[Key],
    scheduler: &Scheduler,
) -> Result<Vec<T>> {
    scheduler.compute_as::<T>(&graph.roots(keys)?, Some(graph.nodes()), &[])
}
