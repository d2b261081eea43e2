//! Dropping nodes: iterative (a 1,000,000-long chain would otherwise
//! overflow the stack with nested `NodeRef` drops), and in parallel where a
//! big graph splits into two big halves held only here.

use super::slab::{Frees, NodeRef};
use super::{ArgList, Node, Src};
use crate::pool::{last_pool, RayonPool};
use crate::value::CloneFn;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

impl Drop for Node {
    /// Drops the inputs iteratively: a 1,000,000-long chain would otherwise
    /// overflow the stack with nested `NodeRef` drops.
    fn drop(&mut self) {
        if self.args.is_empty() {
            return;
        }
        let mut stack: Vec<NodeRef> = Vec::new();
        take_children(&mut self.args, &mut stack);
        dismantle(stack, 0, Pool::Find);
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
/// next (a tree's two halves), one is handed to a pool while this thread
/// drops the other: dropping is a third of a fine-grained graph's life, and
/// the caller would otherwise do it alone. `pool` is where hand-offs go.
///
/// The drop never waits on a pool: a half no pool thread has started by
/// the time this thread is done with its own is taken back and dropped
/// here ([`Handoff`]), so a busy pool (or one whose tasks wait for a lock
/// the dropping code holds) delays nothing. The only wait is for a half a
/// pool thread is dropping right now, which runs nothing but this drop.
fn dismantle(mut stack: Vec<NodeRef>, forks: u32, pool: Pool<'_>) {
    let mut frees = Frees::default();
    while let Some(node) = stack.pop() {
        if forks < MAX_DROP_FORKS && both_big(&node, &stack) {
            stack.push(node);
            return dismantle_sharing(stack, frees, forks, pool);
        }
        drop_one(node, &mut frees, &mut stack);
    }
}

/// The last reference empties the node in place (no move out of its slot)
/// before it is dropped, so that drop does not recurse; its inputs go to
/// `stack`.
#[inline(always)]
fn drop_one(node: NodeRef, frees: &mut Frees, stack: &mut Vec<NodeRef>) {
    // SAFETY: the node is dropped whole (its inputs moved out, then the
    // rest), once.
    unsafe {
        NodeRef::drop_with(node, frees, |node| {
            take_children(&mut node.args, stack);
            node.drop_rest();
        })
    };
}

/// [`dismantle`] from its first big pair on: halves are handed to the pool
/// (found now, at the top). Out of line: most drops never get here, and
/// the hand-offs' bookkeeping would cost every node's drop.
#[cold]
#[inline(never)]
fn dismantle_sharing(mut stack: Vec<NodeRef>, mut frees: Frees, forks: u32, pool: Pool<'_>) {
    let found;
    let pool = match pool {
        Pool::Find => {
            found = fork_pool();
            found.as_ref()
        }
        Pool::This(p) => p,
    };
    // Finished however this drop ends, even by a panic in a user's `Drop`.
    let mut handed = Handed {
        list: Vec::new(),
        pool,
        forks,
    };
    // `handed.forks` counts this drop's nesting from here on.
    while let Some(node) = stack.pop() {
        if handed.forks < MAX_DROP_FORKS && both_big(&node, &stack) {
            match pool {
                Some(target) => {
                    handed.forks += 1;
                    let h = Handoff::start(target, vec![node], handed.forks);
                    handed.list.push(h);
                    continue;
                }
                // Nowhere to fork to: this thread does it all.
                None => handed.forks = MAX_DROP_FORKS,
            }
        }
        drop_one(node, &mut frees, &mut stack);
    }
    drop(frees);
    drop(handed);
}

/// The hand-offs of one `dismantle`, finished when it ends: the first
/// panic of a user's `Drop` among them goes on from here (unless one is
/// unwinding already), after all of them are done.
struct Handed<'p> {
    list: Vec<Arc<Handoff>>,
    pool: Option<&'p RayonPool>,
    forks: u32,
}

impl Drop for Handed<'_> {
    fn drop(&mut self) {
        let mut first = None;
        for h in self.list.drain(..).rev() {
            if let Err(panic) = h.finish(self.pool, self.forks) {
                first.get_or_insert(panic);
            }
        }
        if let Some(panic) = first.filter(|_| !std::thread::panicking()) {
            resume_unwind(panic);
        }
    }
}

/// Where a drop hands work.
#[derive(Clone, Copy)]
enum Pool<'p> {
    /// The top of a drop: [`fork_pool`], looked up at the first big pair
    /// only (a thread-local and a reference count: too much for every
    /// node's drop).
    Find,
    /// Inside a hand-off: its pool (`None`: this thread does it all).
    This(Option<&'p RayonPool>),
}

/// Where a drop hands work at the top: the pool this thread last computed
/// on, from outside any pool only (a pool thread dropping a graph inside a
/// task keeps it: its pool is busy with that computation).
fn fork_pool() -> Option<RayonPool> {
    match rayon::current_thread_index() {
        Some(_) => None,
        None => last_pool(),
    }
}

/// Nodes handed to a pool: whichever comes first, a pool thread or the
/// thread that handed them over, takes them and drops them.
struct Handoff {
    nodes: Mutex<Option<Vec<NodeRef>>>,
    /// Set when a pool thread that took the nodes is done with them, with
    /// the panic of a user's `Drop` there, to go on in the owner.
    done: Mutex<Option<std::thread::Result<()>>>,
    finished: Condvar,
}

impl Handoff {
    /// Queues `nodes` on `pool` and returns at once.
    fn start(pool: &RayonPool, nodes: Vec<NodeRef>, forks: u32) -> Arc<Handoff> {
        let h = Arc::new(Handoff {
            nodes: Mutex::new(Some(nodes)),
            done: Mutex::new(None),
            finished: Condvar::new(),
        });
        let (job, on) = (h.clone(), pool.clone());
        pool.spawn(move || {
            let Some(nodes) = job.take() else { return };
            // A panic must not end the pool's thread (rayon aborts): it
            // goes to the owner, as it would in a drop on one thread.
            let r = catch_unwind(AssertUnwindSafe(|| {
                dismantle(nodes, forks, Pool::This(Some(&on)))
            }));
            *lock(&job.done) = Some(r);
            job.finished.notify_all();
        });
        h
    }

    fn take(&self) -> Option<Vec<NodeRef>> {
        lock(&self.nodes).take()
    }

    /// Drops the nodes here if no pool thread took them; else waits until
    /// the one that did is done. `Err`: a user's `Drop` panicked.
    fn finish(&self, pool: Option<&RayonPool>, forks: u32) -> std::thread::Result<()> {
        if let Some(nodes) = self.take() {
            return catch_unwind(AssertUnwindSafe(|| {
                dismantle(nodes, forks, Pool::This(pool))
            }));
        }
        let mut done = lock(&self.done);
        loop {
            match done.take() {
                Some(result) => return result,
                None => done = self.finished.wait(done).unwrap_or_else(|e| e.into_inner()),
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
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
