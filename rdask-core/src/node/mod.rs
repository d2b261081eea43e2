//! Graph nodes: one task each, linked to their inputs by counted references
//! ([`NodeRef`], nodes stored in the chunks of [`slab`]).
//!
//! A [`Delayed`](crate::Delayed) is a typed handle on a `NodeRef`; raw
//! graphs hold the same nodes by key. A node's inputs are [`Arg`]s: another
//! node, a key to resolve in a raw graph, a literal, or a list of those.
//! Dropping a long chain of nodes is iterative (see `Drop for Node`).

mod drop;
pub(crate) mod slab;

use crate::key::Key;
use crate::task::DynRunFn;
use crate::task::{FnInfo, RunFn};
use crate::value::{CloneFn, ListFn, Value};
pub(crate) use slab::NodeRef;

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
    /// What the task asks of the scheduler (`#[delayed(retries = ..)]`,
    /// `rdask::annotate`).
    pub fn annotations(&self) -> crate::task::annotations::Annotations {
        match self {
            Op::Fn { info, .. } => info.annot,
            Op::Dyn(task) => task.annot,
            Op::Const(_) | Op::Alias => crate::task::annotations::Annotations::new(),
        }
    }

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
#[derive(Clone)]
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
#[derive(Clone)]
pub struct MaybeKey {
    pub(crate) key: Key,
    pub(crate) literal: Value,
    pub(crate) clone: CloneFn,
}

/// One argument of a task.
#[derive(Clone)]
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

/// A node's arguments as they come, written into its new, empty list with
/// the node's guesses (see `Node::depth`) made on the way: an iterator
/// ([`Iter`]) or an array (every `#[delayed]` call's).
pub(crate) trait Collect {
    fn collect(self, list: &mut ArgList) -> Guess;
}

/// Any iterator of arguments.
pub(crate) struct Iter<I>(pub(crate) I);

impl<I: IntoIterator<Item = Arg>> Collect for Iter<I> {
    /// Pushed one by one, which is several times cheaper than `SmallVec`'s
    /// `collect` for a call's one or two arguments. Guessing here, as each
    /// argument passes, lets the compiler see which kind each one is (a
    /// second pass over the list cost more than the guesses themselves).
    #[inline(always)]
    fn collect(self, list: &mut ArgList) -> Guess {
        let args = self.0.into_iter();
        let mut guess = Guess::START;
        if let Some(n) = args.size_hint().1.filter(|&n| n > list.inline_size()) {
            list.reserve_exact(n);
        }
        for a in args {
            guess.see(&a);
            list.push(a);
        }
        guess.done()
    }
}

impl<const N: usize> Collect for [Arg; N] {
    /// An array that fits inline is written into the list whole, without a
    /// push (and its checks) per argument: a `#[delayed]` call's build in
    /// about two thirds of the instructions.
    #[inline(always)]
    fn collect(self, list: &mut ArgList) -> Guess {
        debug_assert!(list.is_empty());
        let mut guess = Guess::START;
        self.iter().for_each(|a| guess.see(a));
        if N <= list.inline_size() && !list.spilled() {
            // SAFETY: the list is empty and inline, with room for `N`: the
            // array moves into its buffer, and the length then counts it.
            unsafe {
                list.as_mut_ptr().cast::<[Arg; N]>().write(self);
                list.set_len(N);
            }
        } else {
            list.reserve_exact(N);
            list.extend(self);
        }
        guess.done()
    }
}

/// A node's guesses at the graph below it (see [`Node::depth`]).
pub(crate) struct Guess {
    pub(crate) depth: u16,
    pub(crate) size: u32,
    /// Every node below is an input of one node only (see [`Node::tree`]).
    pub(crate) tree: bool,
}

impl Guess {
    /// Before any argument: the node alone (its depth is added by `done`).
    const START: Guess = Guess {
        depth: 0,
        size: 1,
        tree: true,
    };

    /// Counts one argument.
    #[inline(always)]
    fn see(&mut self, a: &Arg) {
        // Held here alone, and a tree itself: then it stays so (a node's
        // inputs never change), and nothing else can reach into it. (`&`,
        // not `&&`: no branch per input.)
        let sole = |n: &NodeRef| n.tree & NodeRef::is_sole(n);
        match &a.src {
            Src::Node(n, _) => {
                self.depth = self.depth.max(n.depth);
                self.size = self.size.saturating_add(n.size);
                self.tree &= sole(n);
            }
            // Lists are not read through for their sizes (that would touch
            // every element twice): their items count as one task each.
            Src::Nodes { items, .. } => {
                if !items.is_empty() {
                    self.depth = self.depth.max(1);
                    let len = items.len().try_into().unwrap_or(u32::MAX);
                    self.size = self.size.saturating_add(len);
                }
                self.tree &= items.iter().all(sole);
            }
            Src::Const { .. } => {}
            Src::Key(_) | Src::MaybeKey(_) | Src::List { .. } => self.tree = false,
        }
    }

    /// The guesses for the node above the arguments seen.
    #[inline(always)]
    fn done(self) -> Guess {
        Guess {
            depth: self.depth.saturating_add(1),
            ..self
        }
    }
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
    /// without a plan (see `crate::exec::tree`). Known as the node is built (its
    /// inputs then held by it alone) and true for good, since a node's
    /// inputs never change.
    pub(crate) tree: bool,
}

/// The body of [`Node::init`], expanded where a node is written in place:
/// as a macro, the fields go straight from the caller's arguments into the
/// slot (through a function, even an inlined one, the compiler kept an
/// extra copy of each on the stack). Unsafe: `$node` is valid for writes
/// and holds no live node.
macro_rules! init_node {
    ($node:expr, $key:expr, $op:expr, $args:expr, $clone:expr, $by_key:expr) => {{
        use std::ptr::addr_of_mut;
        let node: *mut $crate::node::Node = $node;
        let by_key: bool = $by_key;
        let list = addr_of_mut!((*node).args);
        list.write($crate::node::ArgList::new());
        let $crate::node::Guess { depth, size, tree } =
            $crate::node::Collect::collect($args, &mut *list);
        addr_of_mut!((*node).key).write($key);
        addr_of_mut!((*node).op).write($op);
        addr_of_mut!((*node).clone).write($clone);
        addr_of_mut!((*node).by_key).write(by_key);
        addr_of_mut!((*node).depth).write(depth);
        addr_of_mut!((*node).size).write(size);
        addr_of_mut!((*node).tree).write(tree && !by_key);
    }};
}
pub(crate) use init_node;

impl Node {
    /// A new node, on the stack. (`NodeRef::make` builds one straight in
    /// its slab slot; both go through [`init`](Self::init).)
    #[inline(always)]
    pub fn new(
        key: Key,
        op: Op,
        args: impl IntoIterator<Item = Arg>,
        clone: Option<CloneFn>,
        by_key: bool,
    ) -> Node {
        let mut node = std::mem::MaybeUninit::<Node>::uninit();
        // SAFETY: `node` is ours and uninitialised; `init` writes every
        // field, so it is a whole node after.
        unsafe {
            Node::init(node.as_mut_ptr(), key, op, args, clone, by_key);
            node.assume_init()
        }
    }

    /// Writes a node of these parts at `node`: the one place a node's
    /// fields are set, and its guesses made (see [`Collect`]). Writing
    /// in place lets a slab slot be filled without a node-sized copy.
    ///
    /// # Safety
    ///
    /// `node` is valid for writes and holds no live node. Should `args`
    /// panic, `node` is left partly written: it must then be neither read
    /// nor dropped (a leak, nothing worse).
    #[inline(always)]
    pub(crate) unsafe fn init(
        node: *mut Node,
        key: Key,
        op: Op,
        args: impl IntoIterator<Item = Arg>,
        clone: Option<CloneFn>,
        by_key: bool,
    ) {
        // SAFETY: the caller's promise is the macro's.
        unsafe { init_node!(node, key, op, Iter(args), clone, by_key) }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::dyn_run;

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
