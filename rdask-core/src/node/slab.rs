//! Node storage: graph nodes live in chunks of slots, not in one heap
//! allocation each.
//!
//! Why: building a graph is mostly allocating its nodes. A thread fills its
//! current chunk slot by slot (a pointer bump: no lock, no atomic, no
//! `malloc`). Chunks double from 32 slots until one would be worth a huge
//! page ([`WORTH_HUGE`], 384 KiB); from then on each chunk is a 2 MiB mapping
//! of its own with transparent huge pages requested (Linux), so touching it
//! the first time costs one page fault instead of 512 (where faults are
//! slow, that is most of a fresh build's cost: BENCHMARKS.md, "Engine
//! notes").
//!
//! The protocol:
//! * A slot's `strong` is its node's reference count ([`NodeRef`]), as in
//!   `Arc` without weak references.
//! * A chunk's `live` counts its slots that are handed out and not freed yet,
//!   plus those its filling thread has not handed out. It starts at the
//!   chunk's capacity; the filling thread subtracts the unused slots when it
//!   stops filling the chunk (the chunk is full, or the thread exits);
//!   freeing a node subtracts one. Whoever brings it to zero frees the chunk,
//!   so a chunk lives exactly as long as its last node.
//!
//! The price: a long-lived node keeps its chunk (at most 2 MiB) allocated.

use super::{Collect, Node, Op};
use crate::key::Key;
use crate::mem::huge::{map, unmap, HUGE, WORTH_HUGE};
use crate::value::CloneFn;
use std::alloc::{self, Layout};
use std::cell::Cell;
use std::ptr::{self, NonNull};
use std::sync::atomic::{fence, AtomicUsize, Ordering};

/// A counted reference to a node in a slab chunk (an `Arc<Node>` that
/// allocates from the slab).
pub struct NodeRef(NonNull<Slot>);

// SAFETY: a `NodeRef` is a shared reference to a `Node` with an atomic
// count, like `Arc<Node>`; `Node` is `Send + Sync` (asserted below).
unsafe impl Send for NodeRef {}
// SAFETY: as for `Send`: shared, it only hands out `&Node`.
unsafe impl Sync for NodeRef {}

const _: () = {
    const fn shareable<T: Send + Sync>() {}
    shareable::<Node>();
};

/// The count sits right after the node, next to the node's last fields
/// (its guesses at the graph below), which building a consumer and planning
/// read with it: one cache line for both, mostly, instead of two.
#[repr(C)]
struct Slot {
    node: Node,
    strong: AtomicUsize,
    chunk: NonNull<Chunk>,
}

struct Chunk {
    live: AtomicUsize,
    cap: usize,
    /// Memory of its own mapping (`HUGE` bytes), not from the allocator.
    mapped: bool,
}

/// The first chunk of a thread, in slots.
const FIRST: usize = 32;

/// Chunks allocated and not yet freed (for tests and diagnostics).
static CHUNKS: AtomicUsize = AtomicUsize::new(0);

/// How many slab chunks exist right now.
pub fn chunks() -> usize {
    CHUNKS.load(Ordering::Acquire)
}

/// The slots of the chunks that exist: at least the nodes alive.
static SLOTS: AtomicUsize = AtomicUsize::new(0);

/// A bound on the nodes alive right now, so on a plan's size.
pub(crate) fn slots() -> usize {
    SLOTS.load(Ordering::Relaxed)
}

/// The layout of a chunk of `cap` slots, and where its slots start.
fn layout(cap: usize) -> (Layout, usize) {
    let slots = Layout::array::<Slot>(cap).expect("a chunk fits in memory");
    let (layout, offset) = Layout::new::<Chunk>()
        .extend(slots)
        .expect("a chunk fits in memory");
    (layout.pad_to_align(), offset)
}

/// How many slots fit in a mapped chunk.
fn huge_cap() -> usize {
    let (_, offset) = layout(1);
    (HUGE - offset) / std::mem::size_of::<Slot>()
}

/// A new chunk of about `cap` slots (more when it is a mapped one): the
/// chunk, its first slot and its capacity.
fn new_chunk(cap: usize) -> (NonNull<Chunk>, *mut Slot, usize) {
    // A chunk big enough to be worth it is one huge page of its own (and
    // then as many slots as fit there).
    let mapping = match cap.saturating_mul(std::mem::size_of::<Slot>()) >= WORTH_HUGE {
        true => map(HUGE),
        false => None,
    };
    let (mem, cap, mapped) = match mapping {
        Some((mem, _)) => (mem, huge_cap(), true),
        None => {
            let (l, _) = layout(cap);
            // SAFETY: `l` has a nonzero size (it holds a `Chunk`).
            let mem = unsafe { alloc::alloc(l) };
            match NonNull::new(mem) {
                Some(mem) => (mem, cap, false),
                None => alloc::handle_alloc_error(l),
            }
        }
    };
    let (_, offset) = layout(cap);
    let chunk = mem.cast::<Chunk>();
    // SAFETY: `mem` is fresh memory laid out as `layout(cap)`.
    unsafe {
        chunk.as_ptr().write(Chunk {
            live: AtomicUsize::new(cap),
            cap,
            mapped,
        });
        CHUNKS.fetch_add(1, Ordering::AcqRel);
        SLOTS.fetch_add(cap, Ordering::Relaxed);
        (chunk, mem.as_ptr().add(offset).cast::<Slot>(), cap)
    }
}

/// Ends `n` slots' share of `chunk`; the last one frees it.
///
/// SAFETY: the caller owns `n` of the chunk's `live` count.
unsafe fn release(chunk: NonNull<Chunk>, n: usize) {
    // SAFETY: the chunk lives while any of its `live` count is owned, and
    // we own `n` of it.
    let c = unsafe { chunk.as_ref() };
    if c.live.fetch_sub(n, Ordering::Release) != n {
        return;
    }
    fence(Ordering::Acquire);
    let (cap, mapped) = (c.cap, c.mapped);
    CHUNKS.fetch_sub(1, Ordering::AcqRel);
    SLOTS.fetch_sub(cap, Ordering::Relaxed);
    // SAFETY: ours was the last share: no slot of the chunk is in use, and
    // its memory came from `map` (mapped) or the allocator with this layout.
    unsafe {
        if mapped {
            unmap(chunk.cast(), HUGE);
        } else {
            alloc::dealloc(chunk.as_ptr().cast(), layout(cap).0);
        }
    }
}

/// Freed slots not yet given back to their chunk: a graph's nodes lie in a
/// few chunks, so one subtraction per chunk does (see
/// [`NodeRef::drop_with`]), instead of one per node. Several chunks are
/// counted at once: a tree built level by level and dropped depth-first
/// goes from one level's chunk to another's at nearly every node, and two
/// threads dropping halves of it would otherwise fight over the chunks'
/// counters. Dropping this gives back the rest.
#[derive(Default)]
pub(crate) struct Frees {
    pending: [(Option<NonNull<Chunk>>, usize); FREES],
    /// The entry a chunk not yet counted replaces.
    next: usize,
}

/// Chunks one [`Frees`] counts at once.
const FREES: usize = 4;

impl Frees {
    #[inline]
    fn add(&mut self, chunk: NonNull<Chunk>) {
        for (c, n) in &mut self.pending {
            if *c == Some(chunk) {
                *n += 1;
                return;
            }
        }
        let i = self.next;
        self.next = (i + 1) % FREES;
        Self::give_back(&mut self.pending[i]);
        self.pending[i] = (Some(chunk), 1);
    }

    fn give_back(entry: &mut (Option<NonNull<Chunk>>, usize)) {
        if let (Some(chunk), n) = std::mem::take(entry) {
            // SAFETY: the `n` slots freed into this entry own that much of
            // the chunk's `live` count.
            unsafe { release(chunk, n) };
        }
    }
}

impl Drop for Frees {
    fn drop(&mut self) {
        self.pending.iter_mut().for_each(Self::give_back);
    }
}

/// The chunk a thread is filling: its slots `next..end` are unused.
struct Filler {
    chunk: Cell<Option<NonNull<Chunk>>>,
    next: Cell<*mut Slot>,
    end: Cell<*mut Slot>,
    /// The capacity of the last chunk, to size the next one.
    cap: Cell<usize>,
}

impl Filler {
    #[inline]
    fn take(&self) -> (NonNull<Chunk>, *mut Slot) {
        let next = self.next.get();
        match self.chunk.get() {
            Some(chunk) if next != self.end.get() => {
                // SAFETY: `next` is an unused slot of `chunk`, and `end` is
                // one past its last.
                self.next.set(unsafe { next.add(1) });
                (chunk, next)
            }
            _ => self.refill(),
        }
    }

    #[cold]
    fn refill(&self) -> (NonNull<Chunk>, *mut Slot) {
        self.stop();
        let want = match self.cap.get() {
            0 => FIRST,
            c => c.saturating_mul(2),
        };
        let (chunk, first, cap) = new_chunk(want);
        self.cap.set(cap);
        self.chunk.set(Some(chunk));
        // SAFETY: `first..first + cap` are the chunk's slots.
        unsafe {
            self.next.set(first.add(1));
            self.end.set(first.add(cap));
        }
        (chunk, first)
    }

    /// Stops filling the current chunk, giving up its unused slots.
    fn stop(&self) {
        if let Some(chunk) = self.chunk.take() {
            // SAFETY: `next..end` lie in one chunk.
            let unused = unsafe { self.end.get().offset_from(self.next.get()) } as usize;
            if unused > 0 {
                // SAFETY: the unused slots' share of `live` is ours.
                unsafe { release(chunk, unused) };
            }
        }
    }
}

impl Drop for Filler {
    fn drop(&mut self) {
        self.stop();
    }
}

thread_local! {
    static FILLER: Filler = const {
        Filler {
            chunk: Cell::new(None),
            next: Cell::new(ptr::null_mut()),
            end: Cell::new(ptr::null_mut()),
            cap: Cell::new(0),
        }
    };
}

/// A chunk of one slot, for a node made while the thread is exiting.
fn lone_slot() -> (NonNull<Chunk>, *mut Slot) {
    let (chunk, first, _) = new_chunk(1);
    (chunk, first)
}

/// An unused slot of this thread's chunk (or of a chunk of its own), and
/// the chunk: ours alone.
#[inline(always)]
fn fresh_slot() -> (NonNull<Chunk>, *mut Slot) {
    FILLER
        .try_with(Filler::take)
        .unwrap_or_else(|_| lone_slot())
}

/// Most references one node may have (as `Arc`: beyond, abort).
const MAX_REFS: usize = isize::MAX as usize;

impl NodeRef {
    /// Stores `node` in this thread's chunk.
    #[inline]
    pub fn new(node: Node) -> NodeRef {
        let (chunk, slot) = fresh_slot();
        // SAFETY: `slot` is an unused slot of `chunk`, ours alone.
        unsafe {
            slot.write(Slot {
                strong: AtomicUsize::new(1),
                chunk,
                node,
            });
            NodeRef(NonNull::new_unchecked(slot))
        }
    }

    /// A node made of these parts, written straight into this thread's
    /// chunk: the same as `NodeRef::new(Node::new(..))` without building the
    /// node on the stack and copying it over (a node is a few cache lines).
    /// The hot path of every `#[delayed]` call, with an array of arguments
    /// (see [`Collect`]).
    #[inline(always)]
    pub(crate) fn make(
        key: Key,
        op: Op,
        args: impl Collect,
        clone: Option<CloneFn>,
        by_key: bool,
    ) -> NodeRef {
        let (chunk, slot) = fresh_slot();
        // SAFETY: `slot` is an unused slot of `chunk`, ours alone; every
        // field is written before the node is handed out. (Should `args`
        // panic, the slot is left unused: its chunk is never freed, a leak
        // and nothing worse.)
        unsafe {
            super::init_node!(
                ptr::addr_of_mut!((*slot).node),
                key,
                op,
                args,
                clone,
                by_key
            );
            ptr::addr_of_mut!((*slot).chunk).write(chunk);
            ptr::addr_of_mut!((*slot).strong).write(AtomicUsize::new(1));
            NodeRef(NonNull::new_unchecked(slot))
        }
    }

    fn slot(&self) -> &Slot {
        // SAFETY: the slot lives while any reference to it does.
        unsafe { self.0.as_ref() }
    }

    /// How many references the node has.
    pub fn strong_count(this: &NodeRef) -> usize {
        this.slot().strong.load(Ordering::Acquire)
    }

    /// Whether this is the only reference to the node. Relaxed: while it
    /// is, nobody else can make another, and the answer orders nothing (an
    /// acquire load here made every consumer's build slower).
    #[inline]
    pub(crate) fn is_sole(this: &NodeRef) -> bool {
        this.slot().strong.load(Ordering::Relaxed) == 1
    }

    /// Drops this reference. When it is the last one, `dismantle` drops the
    /// node in place (moving its inputs out first), and its slot goes to
    /// `frees`. For dropping many nodes at once: the last reference
    /// is known by a load alone (no other can be made or dropped meanwhile),
    /// and slots go back to their chunk in batches, so most nodes cost no
    /// atomic read-modify-write at all instead of two.
    ///
    /// SAFETY: `dismantle` drops the node in place, whole, and does not
    /// use it after.
    pub(crate) unsafe fn drop_with(
        this: NodeRef,
        frees: &mut Frees,
        dismantle: impl FnOnce(&mut Node),
    ) {
        let slot = this.0.as_ptr();
        std::mem::forget(this);
        // SAFETY: we hold one reference; when it is the last, nothing else
        // touches the node, which is dropped once, and then its slot freed.
        unsafe {
            let strong = &(*slot).strong;
            if strong.load(Ordering::Acquire) != 1 {
                if strong.fetch_sub(1, Ordering::Release) != 1 {
                    return;
                }
                fence(Ordering::Acquire);
            }
            /// Frees the slot even if the node's drop panics.
            struct Free<'a>(&'a mut Frees, NonNull<Chunk>);
            impl Drop for Free<'_> {
                fn drop(&mut self) {
                    self.0.add(self.1);
                }
            }
            let _free = Free(frees, (*slot).chunk);
            dismantle(&mut (*slot).node);
        }
    }

    /// The node, to change, when this is its only reference (as
    /// `Arc::get_mut`).
    pub(crate) fn get_mut(this: &mut NodeRef) -> Option<&mut Node> {
        if this.slot().strong.load(Ordering::Acquire) != 1 {
            return None;
        }
        // SAFETY: this is the only reference (the count says so, and no
        // other can be made without one), and `&mut self` keeps it so while
        // the borrow lives.
        Some(unsafe { &mut (*this.0.as_ptr()).node })
    }

    /// The node's address (its identity).
    pub fn as_ptr(this: &NodeRef) -> *const Node {
        &this.slot().node
    }
}

impl Clone for NodeRef {
    #[inline]
    fn clone(&self) -> NodeRef {
        if self.slot().strong.fetch_add(1, Ordering::Relaxed) > MAX_REFS {
            std::process::abort();
        }
        NodeRef(self.0)
    }
}

impl std::ops::Deref for NodeRef {
    type Target = Node;
    #[inline]
    fn deref(&self) -> &Node {
        &self.slot().node
    }
}

impl Drop for NodeRef {
    fn drop(&mut self) {
        if self.slot().strong.fetch_sub(1, Ordering::Release) != 1 {
            return;
        }
        fence(Ordering::Acquire);
        /// Gives the slot back to its chunk even if the node's drop panics.
        struct Free(NonNull<Chunk>);
        impl Drop for Free {
            fn drop(&mut self) {
                // SAFETY: the freed slot's share of `live`.
                unsafe { release(self.0, 1) };
            }
        }
        let slot = self.0.as_ptr();
        // SAFETY: this was the last reference: the node is dropped once,
        // and its slot is given back after.
        unsafe {
            let _free = Free((*slot).chunk);
            ptr::drop_in_place(&mut (*slot).node);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::{Node, Op};
    use crate::Key;

    fn node() -> Node {
        Node::new(Key::from("n"), Op::Alias, Vec::new(), None, false)
    }

    #[test]
    fn counts_and_identity() {
        let a = NodeRef::new(node());
        assert_eq!(NodeRef::strong_count(&a), 1);
        let b = a.clone();
        assert_eq!(NodeRef::strong_count(&a), 2);
        assert_eq!(NodeRef::as_ptr(&a), NodeRef::as_ptr(&b));
        drop(a);
        assert_eq!(NodeRef::strong_count(&b), 1);
        assert_eq!(&b.key, &Key::from("n"));
    }

    /// A node made in place is the node `Node::new` makes, guesses too.
    #[test]
    fn nodes_made_in_place_are_whole() {
        let a = NodeRef::new(node());
        let b = NodeRef::new(node());
        let arg = |n: &NodeRef| {
            crate::node::Arg::new(crate::node::Src::Node(n.clone(), None), false, None)
        };
        let made = NodeRef::make(Key::from("m"), Op::Alias, [arg(&a), arg(&b)], None, true);
        let built = Node::new(Key::from("m"), Op::Alias, [arg(&a), arg(&b)], None, true);
        assert_eq!(NodeRef::strong_count(&made), 1);
        assert_eq!(
            (&made.key, made.args.len(), made.by_key),
            (&built.key, 2, true)
        );
        assert_eq!(
            (made.depth, made.size, made.tree),
            (built.depth, built.size, built.tree)
        );
        assert_eq!((made.depth, made.size), (2, 3));
        drop(built);
        assert_eq!(NodeRef::strong_count(&a), 2);
        drop(made);
        assert_eq!(NodeRef::strong_count(&a), 1);
    }

    /// Arrays of every length a call has (none, inline, spilled) land in
    /// the node whole and in order, each argument once, with the guesses
    /// an iterator of them gives.
    #[test]
    fn arrays_of_arguments_are_the_iterators_arguments() {
        let inputs: Vec<NodeRef> = (0..3).map(|_| NodeRef::new(node())).collect();
        let arg = |n: &NodeRef| {
            crate::node::Arg::new(crate::node::Src::Node(n.clone(), None), false, None)
        };
        let ptrs = |n: &NodeRef| -> Vec<*const Node> {
            let of = |a: &crate::node::Arg| match &a.src {
                crate::node::Src::Node(n, _) => NodeRef::as_ptr(n),
                _ => std::ptr::null(),
            };
            n.args.iter().map(of).collect()
        };
        let want: Vec<*const Node> = inputs.iter().map(NodeRef::as_ptr).collect();
        let [x, y, z] = [0, 1, 2].map(|i| &inputs[i]);
        let none = NodeRef::make(Key::from("0"), Op::Alias, [], None, false);
        let two = NodeRef::make(Key::from("2"), Op::Alias, [arg(x), arg(y)], None, false);
        let three = NodeRef::make(
            Key::from("3"),
            Op::Alias,
            [arg(x), arg(y), arg(z)],
            None,
            false,
        );
        let iter = NodeRef::make(
            Key::from("i"),
            Op::Alias,
            crate::node::Iter(inputs.iter().map(arg)),
            None,
            false,
        );
        assert!(none.args.is_empty() && !none.args.spilled());
        assert_eq!(
            (ptrs(&two), two.args.spilled()),
            (want[..2].to_vec(), false)
        );
        assert_eq!((ptrs(&three), three.args.spilled()), (want.clone(), true));
        assert_eq!(ptrs(&iter), want);
        let guesses = |n: &NodeRef| (n.depth, n.size, n.tree);
        assert_eq!(guesses(&none), (1, 1, true));
        assert_eq!(guesses(&two), (2, 3, false));
        assert_eq!(guesses(&three), guesses(&iter));
        assert_eq!(guesses(&three), (2, 4, false));
        assert_eq!(NodeRef::strong_count(x), 4);
        drop((none, two, three, iter));
        assert!(inputs.iter().all(|n| NodeRef::strong_count(n) == 1));
    }

    #[test]
    fn chunks_grow_to_one_huge_page() {
        let mut caps = Vec::new();
        let mut cap = FIRST;
        while cap * std::mem::size_of::<Slot>() < WORTH_HUGE {
            caps.push(cap);
            cap *= 2;
        }
        assert!(caps.len() > 5, "chunks grow in steps: {caps:?}");
        assert!(cap < huge_cap(), "the first mapped chunk is a full one");
        assert!(layout(huge_cap()).0.size() <= HUGE);
        // A thread that makes many nodes ends up filling mapped chunks.
        let made = std::thread::spawn(move || {
            let nodes: Vec<NodeRef> = (0..2 * cap).map(|_| NodeRef::new(node())).collect();
            let last = nodes.last().expect("nodes were made");
            // SAFETY: the node's slot lives while `last` does.
            let mapped = unsafe { last.0.as_ref().chunk.as_ref().mapped };
            (mapped, nodes.len())
        })
        .join()
        .expect("the maker thread");
        assert!(made.0 || !cfg!(target_os = "linux"), "{made:?}");
    }

    #[test]
    fn a_node_made_and_dropped_on_other_threads() {
        let made: Vec<NodeRef> =
            std::thread::spawn(|| (0..100).map(|_| NodeRef::new(node())).collect())
                .join()
                .expect("the maker thread");
        let kept = made[50].clone();
        std::thread::spawn(move || drop(made))
            .join()
            .expect("the dropper thread");
        assert_eq!(NodeRef::strong_count(&kept), 1);
        assert_eq!(&kept.key, &Key::from("n"));
    }
}
