//! Graph nodes: one task each, linked to their inputs by counted references
//! ([`NodeRef`], nodes stored in the slab of `crate::slab`).
//!
//! A [`Delayed`](crate::Delayed) is a typed handle on a `NodeRef`; raw
//! graphs hold the same nodes by key. A node's inputs are [`Arg`]s: another
//! node, a key to resolve in a raw graph, a literal, or a list of those.
//! Dropping a long chain of nodes is iterative (see `Drop for Node`).

use crate::error::BoxError;
use crate::schedule::{last_pool, RayonPool};
use crate::slab::{Frees, NodeRef};
use crate::value::{CloneFn, ListFn, Value};
use crate::Key;

/// The adapter that runs a task: takes its arguments, calls the user's
/// function, and makes the result a [`Value`]. `Err` is the task's own error.
pub type RunFn = fn(&mut Args<'_>) -> Result<Value, BoxError>;

/// A closure's adapter with its display name (`map`, `delay!`, operators,
/// raw graphs), in one box so that `Op` stays three words.
pub struct DynTask<F: ?Sized> {
    pub(crate) name: &'static str,
    pub(crate) run: F,
}

/// A boxed closure task.
pub type DynRunFn = Box<DynTask<dyn Fn(&mut Args<'_>) -> Result<Value, BoxError> + Send + Sync>>;

/// Boxes closure `run` as a task named `name`.
pub fn dyn_run<F>(name: &'static str, run: F) -> DynRunFn
where
    F: Fn(&mut Args<'_>) -> Result<Value, BoxError> + Send + Sync + 'static,
{
    Box::new(DynTask { name, run })
}

/// Static facts about a `#[delayed]` function, one per function.
#[derive(Debug)]
pub struct FnInfo {
    /// The function's name.
    pub name: &'static str,
    /// The key prefix (`name = ".."`, else the function's name).
    pub prefix: &'static str,
    /// `module_path!()::name@line:column`: the name a worker process looks
    /// the function up by (the same in every copy of one binary).
    pub path: &'static str,
    /// The remote halves of the function when its types are serde (`None`:
    /// a generic function, which always runs in the calling process).
    pub remote: Option<fn() -> Option<crate::process::remote::RemoteFns>>,
}

/// What a node does when it runs.
pub enum Op {
    /// A `#[delayed]` function.
    Fn { run: RunFn, info: &'static FnInfo },
    /// A closure with a display name.
    Dyn(DynRunFn),
    /// A constant (`value(x)`, `persist`, a raw graph's literal).
    Const(Value),
    /// The value of its single argument (a raw graph's `"b" => key("a")`).
    Alias,
}

impl Op {
    /// A short name for pictures and profiles.
    pub fn name(&self) -> &str {
        match self {
            Op::Fn { info, .. } => info.name,
            Op::Dyn(task) => task.name,
            Op::Const(_) => "value",
            Op::Alias => "alias",
        }
    }
}

/// Where one argument's value comes from.
pub enum Src {
    /// Another node's output, and how to copy it when the consumer knows
    /// (its parameter type is `Clone`) and the producer does not.
    Node(NodeRef, Option<CloneFn>),
    /// A raw graph key that must exist (`key("a")`). Raw graphs only, so
    /// boxed to keep every other argument small.
    Key(Box<Key>),
    /// A raw graph key if the graph has it, else a literal (dask's rule for
    /// strings, and tuple keys).
    MaybeKey(Box<MaybeKey>),
    /// A literal, copied for each by-value use.
    Const { value: Value, clone: CloneFn },
    /// A list of sources collected into one `Vec` (elements move in).
    List {
        items: Box<[Src]>,
        build: Option<ListFn>,
    },
    /// A list of node outputs (a `Vec<Delayed<X>>` argument): one word per
    /// element, and made from the caller's `Vec` without a copy.
    Nodes {
        items: Box<[NodeRef]>,
        build: ListFn,
    },
}

/// One input of a task, as the planner and the executor meet it: a node's
/// output (with its consumer's copy function), or a raw graph key.
#[derive(Clone, Copy)]
pub(crate) enum Leaf<'a> {
    Node(&'a NodeRef, Option<CloneFn>),
    Key(&'a Key),
    MaybeKey(&'a MaybeKey),
}

impl<'a> Leaf<'a> {
    fn of(src: &'a Src) -> Option<Leaf<'a>> {
        match src {
            Src::Node(n, c) => Some(Leaf::Node(n, *c)),
            Src::Key(k) => Some(Leaf::Key(k)),
            Src::MaybeKey(m) => Some(Leaf::MaybeKey(m)),
            Src::Const { .. } | Src::List { .. } | Src::Nodes { .. } => None,
        }
    }
}

/// A key-or-literal argument of a raw graph task.
pub struct MaybeKey {
    pub(crate) key: Key,
    pub(crate) literal: Value,
    pub(crate) clone: CloneFn,
}

/// One argument of a task.
pub struct Arg {
    pub(crate) src: Src,
    /// Hand the task a reference (`&P` parameter) instead of a value.
    pub(crate) by_ref: bool,
    /// The consumer copies a shared constant itself (its parameter type is
    /// `Clone` and its adapter uses [`Args::take_or_clone`]), so the
    /// executor hands it the node's own constant instead of a boxed copy.
    pub(crate) copies: bool,
}

impl Arg {
    /// An argument from a source; `clone` copies the value of a node source
    /// when its producer does not know how.
    pub fn new(src: Src, by_ref: bool, clone: Option<CloneFn>) -> Arg {
        let src = match (src, clone) {
            (Src::Node(n, None), Some(c)) => Src::Node(n, Some(c)),
            (src, _) => src,
        };
        Arg {
            src,
            by_ref,
            copies: false,
        }
    }

    /// Another node's output as an argument, `clone` copying it when its
    /// producer does not know how: [`new`](Self::new) for a node source,
    /// without its match (the one argument every `Delayed` input makes).
    #[inline(always)]
    pub(crate) fn node(n: NodeRef, by_ref: bool, clone: Option<CloneFn>) -> Arg {
        Arg {
            src: Src::Node(n, clone),
            by_ref,
            copies: false,
        }
    }

    /// Whether the argument is a constant (no input to wait for).
    pub(crate) fn is_const(&self) -> bool {
        matches!(self.src, Src::Const { .. })
    }

    /// A constant argument; `copies`: see the field.
    pub(crate) fn constant(value: Value, clone: CloneFn, by_ref: bool, copies: bool) -> Arg {
        Arg {
            src: Src::Const { value, clone },
            by_ref,
            copies,
        }
    }
}

/// A task's arguments, inline in the node when there are few (most calls):
/// one allocation per node, and one cache miss per visit.
pub type ArgList = smallvec::SmallVec<[Arg; 2]>;

/// `args` as an [`ArgList`], with the node's guesses (see `Node::depth`)
/// made on the way: pushed one by one, which is several times cheaper than
/// `SmallVec`'s `collect` for a call's one or two arguments (measured: ~98
/// instructions for two). Guessing here, as
/// each argument passes, lets the compiler see which kind each one is (a
/// pass over the list afterwards cost ~40 instructions a call).
#[inline(always)]
pub(crate) fn collect_args(list: &mut ArgList, args: impl IntoIterator<Item = Arg>) -> Guess {
    let args = args.into_iter();
    let (mut depth, mut size, mut tree) = (0_u16, 1_u32, true);
    // Held here alone, and a tree itself: then it stays so (a node's
    // inputs never change), and nothing else can reach into it. (`&`, not
    // `&&`: no branch per input.)
    let sole = |n: &NodeRef| n.tree & NodeRef::is_sole(n);
    let mut guess = |a: &Arg| match &a.src {
        Src::Node(n, _) => {
            depth = depth.max(n.depth);
            size = size.saturating_add(n.size);
            tree &= sole(n);
        }
        // Lists are not read through for their sizes (that would touch
        // every element twice): their items count as one task each.
        Src::Nodes { items, .. } => {
            if !items.is_empty() {
                depth = depth.max(1);
                size = size.saturating_add(items.len().try_into().unwrap_or(u32::MAX));
            }
            tree &= items.iter().all(sole);
        }
        Src::Const { .. } => {}
        Src::Key(_) | Src::MaybeKey(_) | Src::List { .. } => tree = false,
    };
    if let Some(n) = args.size_hint().1.filter(|&n| n > list.inline_size()) {
        list.reserve_exact(n);
    }
    for a in args {
        guess(&a);
        list.push(a);
    }
    Guess {
        depth: depth.saturating_add(1),
        size,
        tree,
    }
}

/// A node's guesses at the graph below it (see [`Node::depth`]).
pub(crate) struct Guess {
    pub(crate) depth: u16,
    pub(crate) size: u32,
    /// Every node below is an input of one node only (see [`Node::tree`]).
    pub(crate) tree: bool,
}

/// One task: its key, what it runs and on what.
pub struct Node {
    pub(crate) key: Key,
    pub(crate) op: Op,
    pub(crate) args: ArgList,
    /// How to copy this node's output, when its type is known to be `Clone`.
    pub(crate) clone: Option<CloneFn>,
    /// Deduplicate by key, not only by identity (pure calls, persisted
    /// values, raw graphs): two nodes with this key are one task.
    pub(crate) by_key: bool,
    /// Guesses at the graph below and including this node, made as it is
    /// built (saturating), which the planner sizes its arrays by, so that a
    /// big graph's arrays start in huge pages instead of growing through
    /// small ones (see `plan::Hint`). Small, to fit in what would be
    /// padding. `depth`: the longest path of node inputs, exact for a chain
    /// up to 65,535.
    pub(crate) depth: u16,
    /// The nodes: exact for a tree, more where inputs are shared.
    pub(crate) size: u32,
    /// Every node below this one is the input of exactly one node, once,
    /// and none deduplicates by key: the graph is a tree, which runs
    /// without a plan (see `crate::tree`). Known as the node is built (its
    /// inputs then held by it alone) and true for good, since a node's
    /// inputs never change.
    pub(crate) tree: bool,
}

impl Node {
    /// A new node. (`NodeRef::make` builds one straight in its slab slot.)
    #[inline(always)]
    pub fn new(
        key: Key,
        op: Op,
        args: impl IntoIterator<Item = Arg>,
        clone: Option<CloneFn>,
        by_key: bool,
    ) -> Node {
        let mut list = ArgList::new();
        let Guess { depth, size, tree } = collect_args(&mut list, args);
        Node {
            key,
            op,
            args: list,
            clone,
            by_key,
            depth,
            size,
            tree: tree && !by_key,
        }
    }

    /// The node's key.
    pub fn key(&self) -> &Key {
        &self.key
    }

    /// Calls `f` on every leaf (node, key, maybe-key) in argument order,
    /// with whether it is borrowed (never inside lists). Nested lists are
    /// walked without recursion.
    #[inline(always)]
    pub(crate) fn for_each_leaf<'a>(&'a self, mut f: impl FnMut(Leaf<'a>, bool)) {
        for arg in self.args.iter() {
            match &arg.src {
                Src::Const { .. } => {}
                Src::List { items, .. } => walk_list(items, &mut f),
                Src::Nodes { items, .. } => {
                    items.iter().for_each(|n| f(Leaf::Node(n, None), false))
                }
                src => {
                    if let Some(leaf) = Leaf::of(src) {
                        f(leaf, arg.by_ref)
                    }
                }
            }
        }
    }
}

fn walk_list<'a>(items: &'a [Src], f: &mut impl FnMut(Leaf<'a>, bool)) {
    let mut outer: Vec<std::slice::Iter<'a, Src>> = Vec::new();
    let mut cur = items.iter();
    loop {
        match cur.next() {
            Some(Src::List { items, .. }) => outer.push(std::mem::replace(&mut cur, items.iter())),
            Some(Src::Nodes { items, .. }) => {
                items.iter().for_each(|n| f(Leaf::Node(n, None), false))
            }
            Some(src) => {
                if let Some(leaf) = Leaf::of(src) {
                    f(leaf, false)
                }
            }
            None => match outer.pop() {
                Some(up) => cur = up,
                None => return,
            },
        }
    }
}

impl Drop for Node {
    /// Drops the inputs iteratively: a 1,000,000-long chain would otherwise
    /// overflow the stack with nested `NodeRef` drops.
    fn drop(&mut self) {
        if self.args.is_empty() {
            return;
        }
        let mut stack: Vec<NodeRef> = Vec::new();
        take_children(&mut self.args, &mut stack);
        dismantle(stack, 0);
    }
}

/// A graph is split between two threads only where both halves have at
/// least this many nodes (their own guesses): a fork costs microseconds, a
/// node's drop ~40 ns.
const FORK_NODES: u32 = 4096;

/// At most this many forks nest (2^8 parts at most), so that the recursion
/// stays shallow whatever the graph's shape.
const MAX_FORKS: u32 = 8;

/// Drops `stack`'s references and, for each last one, the node and what it
/// alone holds, iteratively. Where two big subgraphs held only here are
/// next (a tree's two halves), they are dropped in parallel: dropping is a
/// third of a fine-grained graph's life, and the caller would otherwise do
/// it alone. The first fork goes to the pool this thread last computed on
/// (see [`last_pool`]), and only from a thread outside any pool: a pool
/// thread waiting in `join` may run an unrelated job, which could need a
/// lock the code dropping the graph holds. Inside the drop's own jobs
/// (`forks > 0`) nothing is held.
fn dismantle(mut stack: Vec<NodeRef>, mut forks: u32) {
    let mut frees = Frees::default();
    while let Some(node) = stack.pop() {
        if forks < MAX_FORKS && both_big(&node, &stack) {
            match fork_pool(forks) {
                Some(pool) => {
                    let rest = std::mem::take(&mut stack);
                    pool.join(
                        move || dismantle(vec![node], forks + 1),
                        move || dismantle(rest, forks + 1),
                    );
                    return;
                }
                // Nowhere to fork to: this thread does it all.
                None => forks = MAX_FORKS,
            }
        }
        // The last reference empties the node in place (no move out of
        // its slot) before it is dropped, so that drop does not recurse.
        // SAFETY: the node is dropped whole (its inputs moved out, then
        // the rest), once.
        unsafe {
            NodeRef::drop_with(node, &mut frees, |node| {
                take_children(&mut node.args, &mut stack);
                node.drop_rest();
            })
        };
    }
}

/// Where a drop forks: in its own jobs, the pool they run on (rayon's free
/// functions, `Global`, use the current thread's pool); at the top, the
/// pool this thread last computed on, from outside any pool only.
fn fork_pool(forks: u32) -> Option<RayonPool> {
    match forks {
        0 if rayon::current_thread_index().is_some() => None,
        0 => last_pool(),
        _ => Some(RayonPool::Global),
    }
}

/// Whether `node` and the next reference to drop are both big and held
/// only here.
fn both_big(node: &NodeRef, rest: &[NodeRef]) -> bool {
    let big = |n: &NodeRef| n.size >= FORK_NODES && NodeRef::strong_count(n) == 1;
    big(node) && rest.last().is_some_and(big)
}

impl Node {
    /// Drops what is left of a node whose inputs were taken out, in place,
    /// without its `Drop` (whose only work, taking the inputs, is done):
    /// ~30 instructions a node less than `drop_in_place`. Every field with a
    /// destructor is dropped here.
    ///
    /// SAFETY: `args` is empty, and the node is not used (or dropped) again.
    unsafe fn drop_rest(&mut self) {
        debug_assert!(self.args.is_empty());
        std::ptr::drop_in_place(&mut self.key);
        std::ptr::drop_in_place(&mut self.op);
        std::ptr::drop_in_place(&mut self.args);
        // `clone`, `by_key`, `depth`, `size`, `tree`: nothing to drop.
        const _: () = assert!(!std::mem::needs_drop::<Option<CloneFn>>());
    }
}

fn take_children(args: &mut ArgList, out: &mut Vec<NodeRef>) {
    let n = args.len();
    if n == 0 {
        return;
    }
    let mut lists: Vec<Src> = Vec::new();
    // Read out in place: moving the list out first and iterating it costed
    // ~60 instructions a node on its own.
    // SAFETY: the length is zeroed before the `n` arguments are read out,
    // so each is moved exactly once (one not yet read when a push panics is
    // leaked, never dropped twice).
    unsafe {
        args.set_len(0);
        let base = args.as_ptr();
        for i in 0..n {
            take_child(std::ptr::read(base.add(i)).src, out, &mut lists);
        }
    }
    while let Some(src) = lists.pop() {
        take_child(src, out, &mut lists);
    }
}

/// One source's nodes go to `out`, a list's items to `lists`.
#[inline(always)]
fn take_child(src: Src, out: &mut Vec<NodeRef>, lists: &mut Vec<Src>) {
    match src {
        Src::Node(n, _) => out.push(n),
        Src::Nodes { items, .. } => out.extend(items.into_vec()),
        Src::List { items, .. } => lists.extend(items.into_vec()),
        _ => {}
    }
}

/// The arguments of one running task, handed to its adapter.
///
/// The executor has already moved or copied each by-value argument so that
/// the adapter owns it, and shares each by-reference argument.
pub struct Args<'a> {
    pub(crate) key: &'a Key,
    pub(crate) vals: &'a mut [Option<Value>],
}

/// An engine error travelling through a task adapter's `BoxError`.
#[derive(Debug)]
pub(crate) struct EngineError(pub(crate) crate::Error);

impl std::fmt::Display for EngineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for EngineError {}

impl<'a> Args<'a> {
    /// The key of the running task.
    pub fn key(&self) -> &Key {
        self.key
    }

    fn mismatch(&self, i: usize, expected: &str, found: &str) -> BoxError {
        Box::new(EngineError(crate::Error::type_mismatch(
            self.key,
            &format!("parameter {}", i + 1),
            expected,
            found,
        )))
    }

    /// Moves argument `i` out as a `T`.
    pub fn take<T: Send + Sync + 'static>(&mut self, i: usize) -> Result<T, BoxError> {
        self.take_as(i, |_| None)
    }

    /// Moves argument `i` out as a `T`, or copies it when it is shared (a
    /// constant of the graph): the adapter of a `Clone` parameter.
    pub fn take_or_clone<T: Clone + Send + Sync + 'static>(
        &mut self,
        i: usize,
    ) -> Result<T, BoxError> {
        // A plain `T`, the common case: moved if this is its last reference.
        if let Some(v) = self.vals.get_mut(i).and_then(Option::take) {
            match v.unwrap_or_clone::<T>() {
                Ok(t) => return Ok(t),
                Err(v) => self.vals[i] = Some(v),
            }
        }
        self.take_as(i, |shared| crate::value::downcast_ref::<T>(shared).cloned())
    }

    /// Moves argument `i` out as a `T`; `copy` may copy one still shared.
    fn take_as<T: Send + Sync + 'static>(
        &mut self,
        i: usize,
        copy: impl FnOnce(&Value) -> Option<T>,
    ) -> Result<T, BoxError> {
        let v = self.vals.get_mut(i).and_then(Option::take);
        let Some(v) = v else {
            return Err(self.mismatch(i, std::any::type_name::<T>(), "nothing"));
        };
        match crate::value::unwrap_value::<T>(v) {
            Ok(t) => Ok(t),
            Err(crate::value::Unwrap::Undecodable(why)) => Err(self.undecodable::<T>(i, &why)),
            Err(crate::value::Unwrap::Shared(shared)) => match copy(&shared) {
                Some(t) => Ok(t),
                None => {
                    let found = shared.type_name();
                    Err(self.mismatch(i, std::any::type_name::<T>(), found))
                }
            },
            Err(e) => Err(self.mismatch(i, std::any::type_name::<T>(), e.found())),
        }
    }

    fn undecodable<T>(&self, i: usize, why: &str) -> BoxError {
        Box::new(EngineError(crate::Error::undecodable(
            self.key,
            &format!("task `{}`: parameter {}", self.key, i + 1),
            std::any::type_name::<T>(),
            why,
        )))
    }

    /// Argument `i` as it is stored (an encoded value stays encoded).
    pub(crate) fn value(&self, i: usize) -> Option<&Value> {
        self.vals.get(i).and_then(Option::as_ref)
    }

    /// Borrows argument `i` as a `&T`.
    pub fn get<T: Send + Sync + 'static>(&self, i: usize) -> Result<&T, BoxError> {
        let v = self.vals.get(i).and_then(Option::as_ref);
        match v {
            Some(v) => crate::value::downcast_ref::<T>(v).ok_or_else(|| {
                match crate::value::undecodable::<T>(v) {
                    Some(why) => self.undecodable::<T>(i, &why),
                    None => self.mismatch(i, std::any::type_name::<T>(), v.type_name()),
                }
            }),
            None => Err(self.mismatch(i, std::any::type_name::<T>(), "nothing")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Nodes are visited twice per computation (plan, run): keep them within
    /// three cache lines, arguments included.
    #[test]
    fn nodes_stay_small() {
        assert!(std::mem::size_of::<Op>() <= 24);
        assert!(std::mem::size_of::<Arg>() <= 40);
        assert!(std::mem::size_of::<Node>() <= 152);
    }

    /// Dropping a graph drops everything its nodes hold exactly once:
    /// constants, closures, keys, inline and spilled argument lists, lists
    /// of nodes, and a node two consumers share.
    #[test]
    fn dropping_a_graph_drops_what_it_holds_once() {
        let held = std::sync::Arc::new(());
        let constant = |k: &str| {
            NodeRef::new(Node::new(
                Key::from(k),
                Op::Const(Value::new(held.clone())),
                [],
                None,
                false,
            ))
        };
        let node = |src: NodeRef| Arg::new(Src::Node(src, None), false, None);
        let shared = constant("shared");
        let keep = held.clone();
        let closure = dyn_run("f", move |_| Ok(Value::new(keep.clone())));
        let wide = NodeRef::new(Node::new(
            Key::from("wide"),
            Op::Dyn(closure),
            (0..5).map(|i| node(constant(&format!("c{i}")))),
            None,
            false,
        ));
        let list = Arg::new(
            Src::Nodes {
                items: vec![constant("l0"), shared.clone()].into_boxed_slice(),
                build: |_| Err("unused"),
            },
            false,
            None,
        );
        let root = NodeRef::new(Node::new(
            Key::from("root"),
            Op::Alias,
            [node(wide), node(shared), list],
            None,
            false,
        ));
        // 5 + 1 + 1 constants, and the closure.
        assert_eq!(std::sync::Arc::strong_count(&held), 1 + 8);
        drop(root);
        assert_eq!(std::sync::Arc::strong_count(&held), 1);
    }
}
