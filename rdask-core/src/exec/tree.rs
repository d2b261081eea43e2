//! Trees: a `Delayed` graph in which every node is the input of one node
//! only runs without a plan.
//!
//! A plan's arrays exist to find shared nodes once, to count each value's
//! uses and each task's inputs, and to hand ready tasks to workers. A tree
//! ([`Node::tree`], known as it is built) needs none of that:
//!
//! * its shape is the order: depth-first post-order, the order a plan's
//!   numbers give, so it finishes one branch before opening the next;
//! * each value has one use, its consumer, which takes it (moved, or
//!   borrowed and then dropped) as soon as that consumer runs;
//! * two inputs of a node share nothing, so they run in parallel the way
//!   `rayon::join` splits a recursion (as often as rayon's adaptive rule
//!   says, see [`Split`]: a few forks per thread, more where work is
//!   stolen), and each part runs depth-first on one thread with a stack of
//!   frames (iterative: a chain of any length);
//! * a chain's link (one input node, its other arguments constants) needs
//!   no frame: the walk goes down a chain pushing only the links, and runs
//!   them, under one unwind guard, as soon as the value below them is made;
//!   a node's leaves (constants only) run as they are met.
//!
//! The rules are the executor's: a task's `Err` or panic becomes the
//! computation's first error, after which no task starts; a nested
//! `compute` in a task uses this scheduler; an argument that cannot be
//! moved is copied by the same rules ([`copy_of`]). Computations with
//! callbacks, on processes, or of several outputs take the plan.

use super::call::{
    build_list, constant, copy_of, drop_quietly, guard, guarded, missing_argument, run_in,
    FirstError, Slots, Vals,
};
use super::Enter;
use crate::error::BoxError;
use crate::error::Error;
use crate::mem::bigvec::BigVec;
use crate::node::{Arg, Node, NodeRef, Op, Src};
use crate::task::Args;
use crate::value::{CloneFn, Value};
use smallvec::SmallVec;
use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The walk's two stacks, on the thread's stack while the tree is no
/// deeper than this: a tree of big values then runs with no allocation of
/// the engine's between them, which could otherwise wedge a small block
/// into the hole a freed big buffer left, and make the allocator grow its
/// heap by one buffer (the `memory` workload's peak RSS shows it).
type Stack = SmallVec<[Value; 32]>;

/// Where the walk is: the frames of the nodes whose inputs it is running,
/// and the links of chains waiting for their input (a link needs no
/// frame: its one input is the value the node below it is about to make,
/// its other arguments constants, so it runs as soon as that value is
/// made). `links` is a plain `Vec`, grown once per walk where there are
/// chains: a link's push and pop are then a few instructions.
#[derive(Default)]
struct Walk<'a> {
    frames: SmallVec<[Frame<'a>; 32]>,
    links: Vec<&'a Node>,
}

impl Walk<'_> {
    /// A walk of the tree below `node`, its links' stack sized by the
    /// node's depth, which bounds its longest chain (and is a chain's
    /// length up to 65,535): a long chain's links then need one allocation
    /// or two, not a doubling from nothing.
    fn below(node: &Node) -> Self {
        Walk {
            frames: SmallVec::new(),
            links: Vec::with_capacity(node.depth.into()),
        }
    }
}

/// A split's input values are on the stack up to this many.
const FEW: usize = 8;

/// At most this many forks nest, so that the recursion stays shallow
/// whatever the tree's shape (2^24 parts is far more than any pool).
const MAX_SPLITS: u32 = 24;

/// Runs the tree below `root` (a node with [`Node::tree`]) and gives its
/// value; on a pool (`parallel`, called inside it), inputs in parallel.
/// Each thread that runs tasks is marked with `context` meanwhile.
pub(crate) fn run<C: Enter>(root: &Node, context: &C, parallel: bool) -> Result<Value, Error> {
    let threads = rayon::current_num_threads() as u32;
    let tree = Tree {
        context,
        threads: if parallel && threads > 1 { threads } else { 0 },
        failure: FirstError::default(),
    };
    let value = tree.eval(root, Split::new(tree.threads));
    match (value, tree.failure.take()) {
        // The output is the caller's own (a constant's is copied).
        (Some(mut v), None) => match v.is_unique() {
            true => Ok(v),
            false => guarded("copying output", &root.key, || {
                copy_of(&v, root.clone, &root.key, || "the output".into())
            }),
        },
        (v, e) => {
            drop_quietly(v);
            Err(e.unwrap_or_else(|| internal(root)))
        }
    }
}

struct Tree<'s, C> {
    context: &'s C,
    /// The pool's threads (0: run on this thread alone).
    threads: u32,
    failure: FirstError,
}

/// A node being run: its inputs are the values on top of the stack once
/// its argument `arg` (and item `item` of a list) is past the last.
struct Frame<'a> {
    node: &'a Node,
    arg: u32,
    item: u32,
    /// The inputs met so far (so the task need not count them again).
    inputs: u32,
    /// Where the links waiting for this node's value start in
    /// [`Walk::links`] (those above, up to the top, are its chain).
    links: u32,
}

impl<'a> Frame<'a> {
    fn new(node: &'a Node, links: u32) -> Frame<'a> {
        Frame {
            node,
            arg: 0,
            item: 0,
            inputs: 0,
            links,
        }
    }

    /// The next input node, in argument order.
    #[inline]
    fn next_input(&mut self) -> Option<&'a Node> {
        let args = &self.node.args;
        while let Some(arg) = args.get(self.arg as usize) {
            let input = match &arg.src {
                Src::Node(n, _) => {
                    self.arg += 1;
                    &**n
                }
                Src::Nodes { items, .. } if (self.item as usize) < items.len() => {
                    self.item += 1;
                    &items[self.item as usize - 1]
                }
                _ => {
                    self.arg += 1;
                    self.item = 0;
                    continue;
                }
            };
            self.inputs += 1;
            return Some(input);
        }
        None
    }
}

impl<C: Enter> Tree<'_, C> {
    /// The value of `node`, its inputs run in parallel while `split`
    /// allows (`None`: the computation failed).
    fn eval(&self, node: &Node, split: Split) -> Option<Value> {
        if split.more() {
            let inputs = inputs(node);
            if let Some(cut) = halves(&inputs) {
                // Each part fills its share of the input values in place:
                // on the stack when few (see `Walk`), else in a big array
                // (as a plan's, to fault in few pages).
                let n = inputs.len();
                let mut few: SmallVec<[Option<Value>; FEW]> = SmallVec::new();
                let mut many: BigVec<Option<Value>> = BigVec::default();
                let values: &mut [Option<Value>] = match n <= FEW {
                    true => {
                        few.resize_with(n, || None);
                        &mut few
                    }
                    false => {
                        many = BigVec::with_capacity(n);
                        many.extend((0..n).map(|_| None));
                        &mut many
                    }
                };
                if !self.eval_halves(&inputs, values, cut, split) {
                    drop_quietly((few, many));
                    return None;
                }
                let _running = self.enter();
                let v = self.run_task(node, values.iter_mut().filter_map(Option::take));
                // Values a failed task left (a panic in their drop stays in).
                drop_quietly((few, many));
                return v;
            }
        }
        self.eval_here(node)
    }

    /// Fills `out` with the values of `inputs` (in order), its two parts at
    /// `cut` in parallel, each part split again while `split` allows
    /// (`false`: the computation failed).
    fn eval_halves(
        &self,
        inputs: &[&Node],
        out: &mut [Option<Value>],
        cut: usize,
        split: Split,
    ) -> bool {
        let split = split.halved();
        let part = |inputs: &[&Node], out: &mut [Option<Value>], ctx: rayon::FnContext| {
            let split = split.stolen(ctx.migrated(), self.threads);
            match halves(inputs).filter(|_| split.more()) {
                Some(cut) => self.eval_halves(inputs, out, cut, split),
                None => self.eval_each(inputs, out, split),
            }
        };
        let (left, right) = inputs.split_at(cut);
        let (left_out, right_out) = out.split_at_mut(cut);
        let (a, b) = rayon::join_context(
            |ctx| part(left, left_out, ctx),
            |ctx| part(right, right_out, ctx),
        );
        a && b
    }

    /// Fills `out` with the values of `nodes`, in order, each split further
    /// while `split` allows.
    fn eval_each(&self, nodes: &[&Node], out: &mut [Option<Value>], split: Split) -> bool {
        let _running = self.enter();
        let mut stack = Stack::new();
        let mut walk = Walk::default();
        for (n, slot) in nodes.iter().zip(out) {
            *slot = match split.more() {
                true => self.eval(n, split),
                false if is_leaf(n) => self.run_task(n, std::iter::empty()),
                false => match self.run_here(n, &mut walk, &mut stack) {
                    true => stack.pop(),
                    false => None,
                },
            };
            if slot.is_none() {
                drop_quietly(stack);
                return false;
            }
        }
        true
    }

    /// Runs the tree below `node` on this thread, depth-first.
    fn eval_here(&self, node: &Node) -> Option<Value> {
        let _running = self.enter();
        let mut values = Stack::new();
        if self.run_here(node, &mut Walk::below(node), &mut values) {
            return values.pop();
        }
        drop_quietly(values);
        None
    }

    /// Runs the tree below `root` on this thread, depth-first, and pushes
    /// its value on `values`, the stack that also holds each node's input
    /// values until it runs (`false`: the computation failed). `walk` is
    /// empty, and left so.
    fn run_here<'a>(&self, root: &'a Node, walk: &mut Walk<'a>, values: &mut Stack) -> bool {
        let mut ok = self.open(root, walk, values);
        while ok {
            let Some(top) = walk.frames.last_mut() else {
                return true;
            };
            // Leaves (a list of calls on constants, most often) run here
            // one after another, the frame in hand. (One that fails goes on
            // to `open`, whose `run_task` sees the failure and stops.)
            let mut next = top.next_input();
            while let Some(leaf) = next.filter(|n| is_leaf(n)) {
                match self.run_task(leaf, std::iter::empty()) {
                    Some(v) => values.push(v),
                    None => break,
                }
                next = top.next_input();
            }
            ok = match next {
                Some(input) => self.open(input, walk, values),
                None => {
                    let Frame {
                        node,
                        inputs,
                        links,
                        ..
                    } = walk.frames.pop().expect("a frame is on top");
                    let value = self.task(node, inputs as usize, values);
                    self.finish_links(value, links, walk, values)
                }
            };
        }
        walk.frames.clear();
        walk.links.clear();
        false
    }

    /// Starts `node`: down the chain of links above its first node that
    /// is not one (each link's one input is the node below it), then that
    /// node: run at once when a leaf, else a frame to fill.
    #[inline(always)]
    fn open<'a>(&self, node: &'a Node, walk: &mut Walk<'a>, values: &mut Stack) -> bool {
        let mut node = node;
        let mark = walk.links.len() as u32;
        loop {
            match shape(node) {
                Shape::Link(input) => {
                    walk.links.push(node);
                    node = input;
                }
                Shape::Leaf => {
                    let value = self.run_task(node, std::iter::empty());
                    return self.finish_links(value, mark, walk, values);
                }
                Shape::Other => {
                    walk.frames.push(Frame::new(node, mark));
                    return true;
                }
            }
        }
    }

    /// Runs the links above the node that made `value` (`walk.links` from
    /// the top down to `mark`), each on the value the one before made, and
    /// pushes the last value on `values`.
    #[inline(always)]
    fn finish_links(
        &self,
        value: Option<Value>,
        mark: u32,
        walk: &mut Walk<'_>,
        values: &mut Stack,
    ) -> bool {
        let value = match walk.links.len() > mark as usize {
            true => self.run_links(value, mark, walk),
            false => value,
        };
        value.map(|v| values.push(v)).is_some()
    }

    /// The chain's part of [`finish_links`](Self::finish_links): the
    /// links one after another under one unwind guard, which names the link
    /// that was running when a panic came (a guard per link cost a fifth of
    /// a link's instructions).
    fn run_links(&self, value: Option<Value>, mark: u32, walk: &mut Walk<'_>) -> Option<Value> {
        let mut value = value?;
        let running: Cell<Option<&Node>> = Cell::new(None);
        let (links, at) = (&mut walk.links, &running);
        let outcome = catch_unwind(AssertUnwindSafe(move || {
            while links.len() > mark as usize {
                // (The value is dropped here, in the guard, if so.)
                if self.failure.failed() {
                    return Ok(None);
                }
                let node = links.pop().expect("a link is on top");
                at.set(Some(node));
                value = self.link(node, value)?;
            }
            Ok(Some(value))
        }));
        match outcome {
            Ok(Ok(v)) => return v,
            Ok(Err(e)) => self.failure.fail(e),
            Err(payload) => {
                let node = running.get().expect("a link was running");
                self.failure.fail(Error::panic(node.key.clone(), &*payload));
            }
        }
        None
    }

    /// Marks this thread as running this computation's tasks.
    fn enter(&self) -> C::Guard {
        self.context.enter()
    }

    /// Runs `node`, whose `inputs` input values are the last ones of
    /// `values` (taken off there).
    fn task(&self, node: &Node, inputs: usize, values: &mut Stack) -> Option<Value> {
        match values.len().checked_sub(inputs) {
            Some(first) => self.run_task(node, values.drain(first..)),
            None => {
                self.failure.fail(internal(node));
                None
            }
        }
    }

    /// Runs `node` on its input values, in order.
    fn run_task(&self, node: &Node, inputs: impl Iterator<Item = Value>) -> Option<Value> {
        if self.failure.failed() {
            drop_quietly(inputs);
            return None;
        }
        // The inputs go into the unwind guard, where those not taken are
        // dropped.
        let result = match &node.op {
            Op::Fn { run, .. } => guard(node, || call_in(node, inputs, run)),
            Op::Dyn(task) => guard(node, || call_in(node, inputs, &task.run)),
            Op::Const(v) => {
                drop_quietly(inputs);
                Ok(v.clone())
            }
            Op::Alias => Err(internal(node)),
        };
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.failure.fail(e);
                None
            }
        }
    }
}

impl<C: Enter> Tree<'_, C> {
    /// Runs `node`, a link of a chain (its one input node's value is
    /// `v`), inside [`run_links`](Self::run_links)'s unwind guard:
    /// [`run_task`](Self::run_task) without the guard, and for a lone input
    /// without the walk over arguments.
    #[inline(always)]
    fn link(&self, node: &Node, v: Value) -> Result<Value, Error> {
        match (&node.args[..], &node.op) {
            // The input alone (the common case): straight into the array.
            (
                [arg @ Arg {
                    src: Src::Node(producer, clone),
                    ..
                }],
                Op::Fn { run, .. },
            ) => {
                let v = owned(v, producer, *clone, arg.by_ref, node)?;
                let gather = |vals: &mut [Option<Value>; 1]| {
                    vals[0] = Some(v);
                    Ok(())
                };
                run_in(node, gather, run)
            }
            // The input among constants.
            (_, Op::Fn { run, .. }) => call_in(node, std::iter::once(v), run),
            // (Its error, if any, is recorded first: this one is not kept.)
            _ => self
                .run_task(node, std::iter::once(v))
                .ok_or_else(|| internal(node)),
        }
    }
}

/// What the walk does with a node, by its arguments.
enum Shape<'a> {
    /// Constants only: run at once.
    Leaf,
    /// A chain's link: one input node (this), the rest constants
    /// (`step(x)`, `step(x, 0.5)`); runs as soon as its input is made.
    Link(&'a Node),
    /// Several inputs, or a list: a frame.
    Other,
}

/// `node`'s [`Shape`], in one pass over its arguments.
#[inline(always)]
fn shape(node: &Node) -> Shape<'_> {
    let args = &node.args[..];
    // One argument, the common case, without the loop.
    if let [arg] = args {
        return match &arg.src {
            Src::Node(n, _) => Shape::Link(n),
            Src::Const { .. } => Shape::Leaf,
            _ => Shape::Other,
        };
    }
    let mut input = None;
    for arg in args {
        match &arg.src {
            Src::Const { .. } => {}
            Src::Node(n, _) if input.is_none() => input = Some(&**n),
            _ => return Shape::Other,
        }
    }
    match input {
        None => Shape::Leaf,
        Some(n) => Shape::Link(n),
    }
}

/// Whether `node` takes constants only (no input to run first).
#[inline(always)]
fn is_leaf(node: &Node) -> bool {
    matches!(shape(node), Shape::Leaf)
}

/// `node`'s input nodes, in order (list items included).
fn inputs(node: &Node) -> SmallVec<[&Node; 4]> {
    let mut inputs = SmallVec::new();
    let mut frame = Frame::new(node, 0);
    while let Some(n) = frame.next_input() {
        inputs.push(n);
    }
    inputs
}

/// Where to cut `inputs` (two or more) in two parts of about equal size,
/// in nodes.
fn halves(inputs: &[&Node]) -> Option<usize> {
    if inputs.len() < 2 {
        return None;
    }
    let size = |n: &&Node| u64::from(n.size);
    let total: u64 = inputs.iter().map(size).sum();
    let (mut cut, mut first) = (0, 0);
    while cut < inputs.len() - 1 && 2 * first < total {
        first += size(&inputs[cut]);
        cut += 1;
    }
    Some(cut.max(1))
}

/// How much further a part of a tree may be split: rayon's adaptive rule.
/// A tree starts with one split per thread, each fork halves what is
/// left, and a part another thread stole starts again from one per thread
/// (work is scarce there). So a tree of tiny tasks forks a few times per
/// thread, not once per node, while a tree of big tasks (or a slow part of
/// one) is split as finely as the threads need.
#[derive(Clone, Copy)]
struct Split {
    left: u32,
    forks: u32,
}

impl Split {
    fn new(threads: u32) -> Split {
        Split {
            left: threads,
            forks: 0,
        }
    }

    fn more(self) -> bool {
        self.left > 0 && self.forks < MAX_SPLITS
    }

    fn halved(self) -> Split {
        Split {
            left: self.left / 2,
            forks: self.forks + 1,
        }
    }

    fn stolen(self, migrated: bool, threads: u32) -> Split {
        match migrated {
            true => Split {
                left: self.left.max(threads),
                ..self
            },
            false => self,
        }
    }
}

/// Runs `node`'s task `run` on its arguments (inputs from `inputs`), held
/// in an array when it has one or two, under the caller's unwind guard.
#[inline(always)]
fn call_in(
    node: &Node,
    inputs: impl Iterator<Item = Value>,
    run: impl FnOnce(&mut Args<'_>) -> Result<Value, BoxError>,
) -> Result<Value, Error> {
    match node.args.len() {
        0 | 1 => run_in(
            node,
            |v: &mut [Option<Value>; 1]| gather(node, inputs, v),
            run,
        ),
        2 => run_in(
            node,
            |v: &mut [Option<Value>; 2]| gather(node, inputs, v),
            run,
        ),
        _ => run_in(node, |v: &mut Vals| gather(node, inputs, v), run),
    }
}

/// Collects `node`'s arguments into `vals`: constants as the executor
/// gives them, inputs from `inputs`, in order (moved: each is its
/// consumer's alone, unless it is a constant node's own value, which is
/// copied).
#[inline(always)]
fn gather(
    node: &Node,
    mut inputs: impl Iterator<Item = Value>,
    vals: &mut impl Slots,
) -> Result<(), Error> {
    vals.reserve(node.args.len());
    for (i, arg) in node.args.iter().enumerate() {
        let v = match &arg.src {
            Src::Const { value, clone } => {
                constant(value, *clone, arg.copies || arg.by_ref).ok_or_else(|| internal(node))?
            }
            Src::Node(n, clone) => next(&mut inputs, n, *clone, arg.by_ref, node)?,
            Src::Nodes { items, build } => {
                build_list(&node.key, *build, items.iter(), |n: &NodeRef| {
                    next(&mut inputs, n, None, false, node)
                })?
            }
            _ => return Err(internal(node)),
        };
        vals.put(i, v);
    }
    Ok(())
}

/// The next of `inputs`, from `producer`, as `consumer`'s use needs it.
#[inline(always)]
fn next(
    inputs: &mut impl Iterator<Item = Value>,
    producer: &Node,
    clone: Option<CloneFn>,
    by_ref: bool,
    consumer: &Node,
) -> Result<Value, Error> {
    let v = inputs.next().ok_or_else(|| internal(consumer))?;
    owned(v, producer, clone, by_ref, consumer)
}

/// Input `v` of `consumer`, from `producer`, as its use needs it: shared
/// when borrowed, else owned (a constant node's value is shared with the
/// node, so copied).
#[inline(always)]
fn owned(
    mut v: Value,
    producer: &Node,
    clone: Option<CloneFn>,
    by_ref: bool,
    consumer: &Node,
) -> Result<Value, Error> {
    if by_ref || v.is_unique() {
        return Ok(v);
    }
    copy_of(&v, producer.clone.or(clone), &producer.key, || {
        format!("task `{}`", consumer.key)
    })
}

fn internal(node: &Node) -> Error {
    missing_argument(&node.key)
}

#[cfg(test)]
mod tests {
    use crate::key::Key;
    use crate::node::{Arg, Node, NodeRef, Op, Src};
    use crate::value::Value;

    fn leaf() -> NodeRef {
        NodeRef::new(Node::new(
            Key::from("leaf"),
            Op::Const(Value::new(1_u64)),
            [],
            None,
            false,
        ))
    }

    fn call(args: impl IntoIterator<Item = Arg>, by_key: bool) -> NodeRef {
        NodeRef::new(Node::new(Key::from("f"), Op::Alias, args, None, by_key))
    }

    fn input(n: NodeRef) -> Arg {
        Arg::new(Src::Node(n, None), false, None)
    }

    /// A node is a tree when each input is held by it alone and is a tree,
    /// lists included; a shared input, a key, or deduplication by key makes
    /// it not one, and so its consumers.
    #[test]
    fn a_node_is_a_tree_when_its_inputs_are_its_own_trees() {
        let t = call([input(leaf()), input(leaf())], false);
        assert!(t.tree);
        let kept = leaf();
        let shared = call([input(kept.clone()), input(leaf())], false);
        assert!(!shared.tree, "an input also held outside");
        drop(kept);
        assert!(!shared.tree, "decided as it was built, for good");
        assert!(
            !call([input(shared.clone())], false).tree,
            "above a shared input"
        );
        assert!(!call([input(leaf())], true).tree, "deduplicated by key");
        let list = |items: Vec<NodeRef>| {
            let src = Src::Nodes {
                items: items.into(),
                build: crate::value::typed_list::<u64>,
            };
            Arg::new(src, false, None)
        };
        assert!(call([list(vec![leaf(), leaf()])], false).tree);
        let one = leaf();
        assert!(
            !call([list(vec![one.clone(), one])], false).tree,
            "an item twice"
        );
        let key = Arg::new(Src::Key(Box::new(Key::from("a"))), false, None);
        assert!(!call([key], false).tree, "a raw graph's key");
        assert!(call([input(t)], false).tree);
    }

    /// Where a split cuts (by size) and how many more forks it allows.
    #[test]
    fn halves_cuts_by_size_and_split_follows_rayons_rule() {
        // Only speed and balance hang on these (the values do not), so
        // they are pinned here, not by a timing.
        use super::{halves, Split};
        let l: Vec<NodeRef> = (0..4).map(|_| leaf()).collect();
        let r: Vec<&Node> = l.iter().map(|n| &**n).collect();
        assert_eq!(halves(&r), Some(2));
        assert_eq!(halves(&r[..3]), Some(2));
        let big = call([input(leaf()), input(leaf()), input(leaf())], false); // size 4
        let mixed: Vec<&Node> = vec![&*big, r[0], r[1], r[2]];
        assert_eq!(halves(&mixed), Some(1));
        let last_big: Vec<&Node> = vec![r[0], r[1], &*big];
        assert_eq!(halves(&last_big), Some(2));
        let s = Split::new(4).halved();
        assert_eq!((s.left, s.forks), (2, 1));
        let s = Split::new(3).halved().halved();
        assert_eq!((s.left, s.forks), (0, 2));
        assert!(!s.more());
        assert_eq!(s.stolen(false, 4).left, 0);
        assert_eq!(s.stolen(true, 4).left, 4);
        assert!(!Split { left: 4, forks: 24 }.more());
        assert!(!Split::new(0).more());
    }
}
