//! Dropping nodes: iterative (a 1,000,000-long chain would otherwise
//! overflow the stack with nested `NodeRef` drops), and in parallel where a
//! big graph splits into two big halves held only here.

use super::slab::{Frees, NodeRef};
use super::{ArgList, Node, Src};
use crate::pool::{last_pool, RayonPool};
use crate::value::CloneFn;

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
/// least this many nodes (their own guesses): a fork costs as much as
/// dropping thousands of nodes.
const FORK_NODES: u32 = 4096;

/// At most this many forks nest (2^8 parts at most), so that the recursion
/// stays shallow whatever the graph's shape.
const MAX_DROP_FORKS: u32 = 8;

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
        if forks < MAX_DROP_FORKS && both_big(&node, &stack) {
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
                None => forks = MAX_DROP_FORKS,
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
    /// cheaper than `drop_in_place`, which would check the empty list again.
    /// Every field with a destructor is dropped here.
    ///
    /// SAFETY: `args` is empty, and the node is not used (or dropped) again.
    unsafe fn drop_rest(&mut self) {
        debug_assert!(self.args.is_empty());
        // SAFETY: each field is dropped once, and the node never again
        // (the caller's promise).
        unsafe {
            std::ptr::drop_in_place(&mut self.key);
            std::ptr::drop_in_place(&mut self.op);
            std::ptr::drop_in_place(&mut self.args);
        }
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
    // Read out in place: moving the list out first and iterating it cost
    // more than the rest of the drop.
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
