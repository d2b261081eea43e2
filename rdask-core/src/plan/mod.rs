//! The Plan: the distinct tasks reachable from the requested outputs, in flat
//! arrays, ready for any scheduler.
//!
//! Built by one iterative depth-first walk from the outputs (linear in the
//! graph; no recursion). Tasks are numbered in post-order, so every task's
//! inputs have smaller numbers and "smallest ready number first" is a
//! depth-first order that finishes one branch before opening the next.
//!
//! Every use of a value is an *edge*: one per leaf argument of a consumer,
//! plus one per requested output. Task `p`'s `uses` counter (in its
//! run state, [`TaskState`], which the plan builds in place) counts them; the executor
//! frees (or moves) the value when the last one is done. A value whose type is not
//! `Clone` may have any number of `&T` edges but only one by-value edge, and
//! that consumer waits (`release`) until the borrowers are done.
//!
//! The plan borrows the nodes (`&'a Node`): the outputs being computed keep
//! them alive, so planning takes no reference counts.

mod state;

use crate::error::{Error, ErrorKind};
use crate::key::Key;
use crate::mem::bigvec::{BigVec, Room};
use crate::node::{Arg, Leaf, Node, NodeRef, Src};
use crate::value::CloneFn;
use indexmap::IndexMap;
pub(crate) use state::TaskState;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::AtomicU32;

/// "No task": a literal in the edge list, or no waiting consumer.
pub(crate) const NONE: u32 = u32::MAX;

/// A mark for a node whose inputs are still being planned.
const OPEN: u32 = NONE - 1;

/// The flag on a producer's first consumer that says it has more.
const MANY: u32 = 1 << 31;

/// The flag on an edge whose consumer borrows (task numbers stay below it).
const REF: u32 = 1 << 31;

/// Tasks are numbered below this, so that a number with `MANY` set is
/// never `NONE`.
const MAX_TASKS: u32 = MANY - 1;

pub(crate) struct Plan<'a> {
    /// The tasks, in post-order.
    pub nodes: BigVec<&'a Node>,
    /// Per task, its leaf arguments' producers in argument order (`NONE`: a
    /// raw string or tuple that is not a key, i.e. a literal), flagged `REF`
    /// where the consumer borrows (`&T`) rather than takes; CSR layout. Read
    /// through [`edge`](Self::edge) and [`producer`](Self::producer).
    edges: BigVec<u32>,
    pub edge_start: BigVec<u32>,
    /// Per producer, the first consumer to notify when it finishes (`NONE`:
    /// none), flagged `MANY` when there are more: those are in `more_deps`.
    /// One entry per edge in all, so a consumer using a value twice is
    /// notified twice. Most producers have one consumer, so this is filled
    /// as the tasks are numbered, with no pass of its own.
    first_dep: BigVec<u32>,
    /// (producer, consumer) for every consumer after a producer's first, by
    /// producer, consumers ascending.
    more_deps: Vec<(u32, u32)>,
    /// Per task, the executor's state, with its counters set: how many
    /// notifications it needs before it can run, and how many uses its value
    /// has (edges + outputs).
    /// Built here, in place, so a computation allocates it once; a plan runs
    /// once.
    pub tasks: BigVec<TaskState>,
    /// How to copy a task's value, for the few tasks whose producer does not
    /// know its type is `Clone` but a consumer does.
    clone_by_consumer: HashMap<u32, CloneFn, BuildHasherDefault<AddrHasher>>,
    /// Per non-`Clone` task that is borrowed and also moved, ascending: the
    /// by-value consumer to notify once its borrowers are done.
    pub release: Vec<(u32, u32)>,
    /// Per `release` entry, its borrowers not yet done (the counts live
    /// here, not in every task's state, which they would make a quarter
    /// bigger for the few tasks that need them).
    pub release_borrows: Box<[AtomicU32]>,
    /// The requested outputs, as task numbers.
    pub outputs: Vec<u32>,
    /// The tasks with no input to wait for, ascending: where a run starts.
    pub initial: BigVec<u32>,
}

/// A hasher for node addresses: they are distinct and spread well once
/// mixed, so one multiply does (SipHash would cost more than planning).
#[derive(Default)]
struct AddrHasher(u64);

impl Hasher for AddrHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn write_usize(&mut self, x: usize) {
        self.0 = ((x as u64) >> 4).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// The plan number of each node met, by address (`OPEN` while planning it).
type Marks = HashMap<usize, u32, BuildHasherDefault<AddrHasher>>;

/// A leaf input met during the walk: the node it resolves to (`None`: a
/// literal) and, once known, its plan number. Small (16 bytes), because a
/// deep graph holds one per level; the flags fill what would be padding.
struct Kid<'a> {
    node: Option<&'a Node>,
    idx: u32,
    /// Reached through the only reference there is to it: it cannot be met
    /// again, so it needs no mark (most nodes of a `Delayed` graph).
    unique: bool,
    /// The consumer borrows it (`&T`).
    by_ref: bool,
    /// The consumer knows how to copy it and its producer does not: the
    /// copy function is read again from the consumer (rare).
    consumer_clone: bool,
}

/// A node being planned: its leaf inputs are `kids[start..]` while it is on
/// top of the walk, and `pos` is the next one to visit. Whether it is unique
/// is its parent's kid's.
struct Frame<'a> {
    node: &'a Node,
    start: u32,
    pos: u32,
}

/// Resolves raw-graph keys while planning.
pub(crate) type Lookup<'g> = Option<&'g IndexMap<Key, NodeRef>>;

/// The node a leaf refers to: `Ok(None)` for a literal.
pub(crate) fn resolve<'a>(
    leaf: Leaf<'a>,
    graph: Lookup<'a>,
    from: &Key,
) -> Result<Option<&'a Node>, Error> {
    match leaf {
        // A raw graph may have replaced a node of a `Delayed`'s graph.
        Leaf::Node(n, _) => Ok(Some(match graph {
            Some(g) => g.get(&n.key).unwrap_or(n),
            None => n,
        })),
        Leaf::Key(k) => match graph.and_then(|g| g.get(k)) {
            Some(n) => Ok(Some(n)),
            None => Err(Error::missing(k, Some(from))),
        },
        Leaf::MaybeKey(m) => Ok(graph.and_then(|g| g.get(&m.key)).map(|n| &**n)),
    }
}

fn addr(n: &Node) -> usize {
    n as *const Node as usize
}

impl<'a> Plan<'a> {
    /// Plans the computation of `outputs`, resolving raw keys in `graph`.
    pub fn build(outputs: &'a [NodeRef], graph: Lookup<'a>) -> Result<Plan<'a>, Error> {
        // Every output gets a mark (it may be another's input, or an output
        // twice): room for those at once, not grown by doubling.
        let mut marks = Marks::with_capacity_and_hasher(outputs.len(), Default::default());
        let mut by_key: HashMap<Key, u32> = HashMap::new();
        let hint = Hint::of(outputs);
        let mut room = Room::new(
            Counts::room_for(&hint)
                + Room::size_of::<Frame<'a>>(hint.depth)
                + Room::size_of::<Kid<'a>>(hint.kids),
        );
        let mut c = Counts::with_capacity(&hint, &mut room);
        let mut frames: BigVec<Frame<'a>> = room.vec(hint.depth);
        let mut kids: BigVec<Kid<'a>> = room.vec(hint.kids);
        drop(room);
        let mut out_idx = Vec::with_capacity(outputs.len());

        for root in outputs {
            let root: &'a Node = root;
            if let Some(i) = known(root, &marks, &by_key) {
                out_idx.push(i);
                continue;
            }
            open(root, false, &mut marks, &mut frames, &mut kids, graph)?;
            while let Some(top) = frames.last_mut() {
                let pos = top.pos as usize;
                if pos < kids.len() {
                    top.pos += 1;
                    let kid = &mut kids[pos];
                    if let Some(node) = kid.node {
                        let unique = kid.unique;
                        let seen = if unique {
                            None
                        } else {
                            known(node, &marks, &by_key)
                        };
                        match seen {
                            Some(OPEN) => return Err(cycle_error(&frames, node)),
                            Some(i) => kid.idx = i,
                            // A node of constants only (a leaf of most
                            // graphs) is numbered at once, without a frame.
                            None if unique && node.args.iter().all(Arg::is_const) => {
                                kid.idx = c.next_idx()?;
                                c.push(node, &[]);
                            }
                            None => open(node, unique, &mut marks, &mut frames, &mut kids, graph)?,
                        }
                    }
                    continue;
                }
                // Every input is planned: number this node.
                let Frame { node, start, .. } = frames.pop().expect("a frame is on top");
                let start = start as usize;
                let idx = c.next_idx()?;
                if node.by_key {
                    by_key.insert(node.key.clone(), idx);
                }
                c.push(node, &kids[start..]);
                kids.truncate(start);
                match frames.last() {
                    Some(parent) => {
                        let kid = &mut kids[parent.pos as usize - 1];
                        kid.idx = idx;
                        if !kid.unique {
                            marks.insert(addr(node), idx);
                        }
                    }
                    None => {
                        marks.insert(addr(node), idx);
                    }
                }
            }
            out_idx.push(marks[&addr(root)]);
        }
        drop(marks);
        drop(by_key);
        c.finish(out_idx)
    }
}

/// Guesses at a plan's sizes, from the outputs alone, so that big arrays
/// start in huge pages rather than grow through 4 KiB ones (where faults are
/// slow, they were a tenth of a big compute). A guess too big costs one huge
/// page's first touch
/// per array (it only reserves address space beyond that); one too small,
/// the growth there would have been anyway.
struct Hint {
    /// Tasks (and edges): the nodes' own estimates, which count shared
    /// inputs once per use, so capped by the nodes alive.
    tasks: usize,
    /// Frames: the longest chain.
    depth: usize,
    /// Pending inputs: a chain's, plus an output's direct inputs.
    kids: usize,
    /// Tasks with no inputs: at least the outputs' direct inputs (the
    /// leaves of a flat graph).
    ready: usize,
}

impl Hint {
    fn of(outputs: &[NodeRef]) -> Hint {
        let mut h = Hint {
            tasks: 0,
            depth: 0,
            kids: 0,
            ready: 0,
        };
        for root in outputs {
            // A saturated depth is only known to be no more than the nodes.
            let depth = match root.depth {
                u16::MAX => (root.size as usize).min(crate::node::slab::slots()),
                d => usize::from(d),
            };
            let inputs: usize = root
                .args
                .iter()
                .map(|a| match &a.src {
                    Src::Const { .. } => 0,
                    Src::List { items, .. } => items.len(),
                    Src::Nodes { items, .. } => items.len(),
                    _ => 1,
                })
                .sum();
            h.tasks = h.tasks.saturating_add(root.size as usize);
            h.depth = h.depth.max(depth);
            h.kids = h.kids.max(depth + inputs);
            h.ready = h.ready.saturating_add(inputs);
        }
        h.tasks = h.tasks.min(crate::node::slab::slots());
        h
    }
}

/// The plan's per-task arrays, filled as the walk numbers each task.
#[derive(Default)]
struct Counts<'a> {
    nodes: BigVec<&'a Node>,
    edges: BigVec<u32>,
    edge_start: BigVec<u32>,
    tasks: BigVec<TaskState>,
    first_dep: BigVec<u32>,
    more_deps: Vec<(u32, u32)>,
    clone_by_consumer: HashMap<u32, CloneFn, BuildHasherDefault<AddrHasher>>,
    /// The producer of each `&T` use, in the order met: the only tasks
    /// `finish` needs to look at again.
    borrowed: Vec<u32>,
    /// The tasks that wait for nothing (`finish` only adds waits to tasks
    /// that wait already: a mover has its edge).
    initial: BigVec<u32>,
}

impl<'a> Counts<'a> {
    /// Room for the tasks `hint` guesses, with one input each, in `room`.
    fn with_capacity(hint: &Hint, room: &mut Room) -> Counts<'a> {
        let tasks = hint.tasks;
        Counts {
            nodes: room.vec(tasks),
            edges: room.vec(tasks),
            edge_start: {
                let mut starts = room.vec(tasks + 1);
                starts.push(0);
                starts
            },
            tasks: room.vec(tasks),
            first_dep: room.vec(tasks),
            initial: room.vec(hint.ready.min(tasks)),
            ..Counts::default()
        }
    }

    /// The bytes [`with_capacity`](Self::with_capacity) takes from a room.
    fn room_for(hint: &Hint) -> usize {
        let tasks = hint.tasks;
        Room::size_of::<&Node>(tasks)
            + 2 * Room::size_of::<u32>(tasks)
            + Room::size_of::<u32>(tasks + 1)
            + Room::size_of::<TaskState>(tasks)
            + Room::size_of::<u32>(hint.ready.min(tasks))
    }

    /// The number the next task gets.
    fn next_idx(&self) -> Result<u32, Error> {
        match u32::try_from(self.nodes.len()) {
            Ok(t) if t < MAX_TASKS => Ok(t),
            _ => Err(Error::new(
                ErrorKind::Scheduler,
                None,
                "graph too large: more than 2,147,483,646 tasks",
            )),
        }
    }

    /// Adds task `t = nodes.len()` with its (already numbered) inputs,
    /// `kids`, one per leaf of `node`, in order.
    /// Inlined into the walk's two places: it runs once a task.
    #[inline(always)]
    fn push(&mut self, node: &'a Node, kids: &[Kid<'a>]) {
        let t = self.nodes.len() as u32;
        let mut waits = 0;
        let mut copied = false;
        for k in kids {
            self.edges.push(match k.idx {
                NONE => NONE,
                p => p | if k.by_ref { REF } else { 0 },
            });
            if k.idx == NONE {
                continue;
            }
            waits += 1;
            let first = &mut self.first_dep[k.idx as usize];
            if *first == NONE {
                *first = t;
            } else {
                *first |= MANY;
                self.more_deps.push((k.idx, t));
            }
            let p = &mut self.tasks[k.idx as usize];
            *p.counts_mut().1 += 1;
            if k.by_ref {
                self.borrowed.push(k.idx);
            }
            copied |= k.consumer_clone;
        }
        if copied {
            let mut kid = kids.iter();
            node.for_each_leaf(|src, _| match (kid.next(), src) {
                (Some(k), Leaf::Node(_, Some(clone))) if k.consumer_clone && k.idx != NONE => {
                    self.clone_by_consumer.entry(k.idx).or_insert(clone);
                }
                _ => {}
            });
        }
        self.edge_start.push(self.edges.len() as u32);
        self.nodes.push(node);
        self.tasks.push(TaskState::new(waits));
        self.first_dep.push(NONE);
        if waits == 0 {
            self.initial.push(t);
        }
    }

    /// Adds the outputs' uses, the dependents, and the rules for values
    /// that cannot be copied.
    fn finish(self, outputs: Vec<u32>) -> Result<Plan<'a>, Error> {
        let Counts {
            nodes,
            edges,
            edge_start,
            mut tasks,
            first_dep,
            mut more_deps,
            clone_by_consumer,
            mut borrowed,
            initial,
        } = self;
        for &o in &outputs {
            *tasks[o as usize].counts_mut().1 += 1;
        }

        // Consumers were added in ascending order; a stable sort by producer
        // keeps them so.
        more_deps.sort_by_key(|&(p, _)| p);

        let mut plan = Plan {
            nodes,
            edges,
            edge_start,
            first_dep,
            more_deps,
            tasks: BigVec::default(),
            clone_by_consumer,
            release: Vec::new(),
            release_borrows: Box::default(),
            outputs,
            initial,
        };

        // Values not known to be `Clone` here: a single by-value use waits
        // for the borrowers, so it can move the value. With several by-value
        // uses, the executor copies through the type registry at run time,
        // or fails with `NotClone` naming the value.
        // Ascending, so that `release` comes out sorted.
        borrowed.sort_unstable();
        let mut counts = Vec::new();
        for run in borrowed.chunk_by(|a, b| a == b) {
            let (p, borrows) = (run[0], run.len() as u32);
            let moves = *tasks[p as usize].counts_mut().1 - borrows;
            let mover = match moves {
                1 if plan.clone_of(p).is_none() => plan.mover_of(p),
                _ => None,
            };
            // Only a value with a waiting mover counts its borrowers.
            if let Some(m) = mover {
                plan.release.push((p, m));
                counts.push(AtomicU32::new(borrows));
                *tasks[m as usize].counts_mut().0 += 1;
            }
        }
        plan.release_borrows = counts.into_boxed_slice();
        plan.tasks = tasks;
        Ok(plan)
    }
}

/// What a callback's `start_state` sees of the plan.
impl crate::callbacks::GraphSource for Plan<'_> {
    fn len(&self) -> usize {
        self.nodes.len()
    }
    fn key(&self, task: usize) -> &Key {
        &self.nodes[task].key
    }
    fn name(&self, task: usize) -> &str {
        self.nodes[task].op.name()
    }
    fn inputs(&self, task: usize, each: &mut dyn FnMut(usize)) {
        for e in self.edges_of(task as u32) {
            match self.producer(e) {
                NONE => {}
                p => each(p as usize),
            }
        }
    }
    fn outputs(&self) -> Vec<usize> {
        self.outputs.iter().map(|&o| o as usize).collect()
    }
}

impl Plan<'_> {
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Edge `e`: its producer (`NONE`: a literal), and whether the consumer
    /// borrows it.
    #[inline]
    pub fn edge(&self, e: usize) -> (u32, bool) {
        match self.edges[e] {
            NONE => (NONE, false),
            x => (x & !REF, x & REF != 0),
        }
    }

    /// The edges of task `t`'s leaf inputs, in argument order.
    #[inline]
    pub fn edges_of(&self, t: u32) -> std::ops::Range<usize> {
        self.edge_start[t as usize] as usize..self.edge_start[t as usize + 1] as usize
    }

    /// Edge `e`'s producer (`NONE`: a literal).
    #[inline]
    pub fn producer(&self, e: usize) -> u32 {
        self.edge(e).0
    }

    /// The consumers of task `p`, ascending, one per edge.
    #[inline]
    pub fn dependents_of(&self, p: usize) -> impl Iterator<Item = u32> + '_ {
        let first = self.first_dep[p];
        let more = match first & MANY != 0 && first != NONE {
            false => &[][..],
            true => {
                let p = p as u32;
                let lo = self.more_deps.partition_point(|&(q, _)| q < p);
                let hi = lo + self.more_deps[lo..].partition_point(|&(q, _)| q == p);
                &self.more_deps[lo..hi]
            }
        };
        let first = (first != NONE).then_some(first & !MANY);
        first.into_iter().chain(more.iter().map(|&(_, c)| c))
    }

    /// How to copy task `p`'s value: the producer's knowledge, else a
    /// consumer's.
    pub fn clone_of(&self, p: u32) -> Option<CloneFn> {
        self.nodes[p as usize]
            .clone
            .or_else(|| self.clone_by_consumer.get(&p).copied())
    }

    /// A consumer that takes task `p`'s value by value (`None`: none does;
    /// an output may).
    fn mover_of(&self, p: u32) -> Option<u32> {
        self.dependents_of(p as usize)
            .find(|&c| self.edges_of(c).any(|e| self.edge(e) == (p, false)))
    }

    /// The by-value consumer waiting for `p`'s borrowers, if any, and the
    /// count of those borrowers not yet done.
    pub fn release_of(&self, p: u32) -> Option<(u32, &AtomicU32)> {
        let i = self.release.binary_search_by_key(&p, |&(q, _)| q).ok()?;
        Some((self.release[i].1, &self.release_borrows[i]))
    }
}

/// The plan number of a node already met (`OPEN` if still being planned),
/// by address or, for keyed nodes, by key.
fn known(node: &Node, marks: &Marks, by_key: &HashMap<Key, u32>) -> Option<u32> {
    if let Some(&i) = marks.get(&addr(node)) {
        return Some(i);
    }
    if node.by_key {
        return by_key.get(&node.key).copied();
    }
    None
}

/// Starts planning `node`: resolves its leaf inputs onto `kids`.
/// Inlined into the walk: it runs once a task.
#[inline(always)]
fn open<'a>(
    node: &'a Node,
    unique: bool,
    marks: &mut Marks,
    frames: &mut BigVec<Frame<'a>>,
    kids: &mut BigVec<Kid<'a>>,
    graph: Lookup<'a>,
) -> Result<(), Error> {
    let start = kids.len();
    let mut err = None;
    node.for_each_leaf(|src, by_ref| {
        if err.is_none() {
            match resolve(src, graph, &node.key) {
                Ok(k) => kids.push(Kid {
                    node: k,
                    idx: NONE,
                    // Raw graphs reach nodes by key too, so only a `Delayed`
                    // graph's singly-held nodes are unique.
                    unique: graph.is_none()
                        && matches!(src, Leaf::Node(n, _) if NodeRef::strong_count(n) == 1 && !n.by_key),
                    by_ref,
                    consumer_clone: matches!(src, Leaf::Node(_, Some(_)))
                        && k.is_some_and(|p| p.clone.is_none()),
                }),
                Err(e) => err = Some(e),
            }
        }
    });
    if let Some(e) = err {
        return Err(e);
    }
    // Marked open while its inputs are planned, so that meeting it again
    // below is a cycle. Only a raw graph can have one: a `Delayed` graph's
    // inputs are made before their consumer and never change, so there
    // the mark (a second hash-map insert a shared node) is left out.
    if !unique && graph.is_some() {
        marks.insert(addr(node), OPEN);
    }
    let start = u32::try_from(start).map_err(|_| {
        Error::new(
            ErrorKind::Scheduler,
            Some(node.key.clone()),
            "graph too large: more than 4,294,967,295 pending inputs",
        )
    })?;
    frames.push(Frame {
        node,
        start,
        pos: start,
    });
    Ok(())
}

fn cycle_error(stack: &[Frame<'_>], back_to: &Node) -> Error {
    let start = stack
        .iter()
        .position(|f| std::ptr::eq(f.node, back_to))
        .unwrap_or(0);
    // Name the whole cycle when short, its ends when long.
    let cycle = &stack[start..];
    let show = |n: &Node| format!("`{}`", n.key);
    let mut keys: Vec<String> = if cycle.len() <= 12 {
        cycle.iter().map(|f| show(f.node)).collect()
    } else {
        let mut k: Vec<String> = cycle[..5].iter().map(|f| show(f.node)).collect();
        k.push(format!("... ({} more) ...", cycle.len() - 10));
        k.extend(cycle[cycle.len() - 5..].iter().map(|f| show(f.node)));
        k
    };
    keys.push(show(back_to));
    Error::new(
        ErrorKind::Cycle,
        Some(back_to.key.clone()),
        format!("the graph has a cycle: {}", keys.join(" -> ")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deep graph holds one frame and one kid per level while it is
    /// planned: a 1,000,000-long chain holds a million of each.
    #[test]
    fn walk_records_stay_two_words() {
        assert_eq!(std::mem::size_of::<Kid<'_>>(), 16);
        assert_eq!(std::mem::size_of::<Frame<'_>>(), 16);
    }

    /// A producer's consumers come out ascending, one per edge, whether it
    /// has one (the first) or more (the sorted rest).
    #[test]
    fn dependents_are_ascending_and_one_per_edge() {
        let a = crate::value(2_u64);
        let b = &a + &a;
        let c = &a + 1;
        let d = &b * &c;
        let outputs = [d.node.clone(), c.node.clone(), b.node.clone()];
        let plan = Plan::build(&outputs, None).unwrap();
        let idx = |n: &NodeRef| {
            (0..plan.len())
                .find(|&t| std::ptr::eq(plan.nodes[t], &**n))
                .unwrap() as u32
        };
        let (ta, tb, tc, td) = (idx(&a.node), idx(&b.node), idx(&c.node), idx(&d.node));
        let deps = |t: u32| plan.dependents_of(t as usize).collect::<Vec<_>>();
        let mut want = vec![tb, tb, tc];
        want.sort_unstable();
        assert_eq!(deps(ta), want);
        assert_eq!(deps(tb), vec![td]);
        assert_eq!(deps(tc), vec![td]);
        assert_eq!(deps(td), Vec::<u32>::new());
    }

    /// A chain's depth sizes the walk stacks and the task arrays; a list's
    /// length sizes the pending inputs; a plan of either fits its hint.
    // Too slow under Miri: a chain of 71,000 nodes (past the depth's
    // saturation at 65,535), built, hinted and dropped.
    #[test]
    #[cfg_attr(miri, ignore = "too slow under Miri")]
    fn hints_follow_chains_and_lists() {
        let mut x = crate::value(0_u64);
        for _ in 0..1000 {
            x = &x + 1;
        }
        let chain = [x.node.clone()];
        assert_eq!(chain[0].depth, 1001);
        let h = Hint::of(&chain);
        assert_eq!((h.tasks, h.depth), (1001, 1001));
        assert!(h.kids >= 1001);
        // Depth saturates; size goes on.
        for _ in 0..70_000 {
            x = &x + 1;
        }
        assert_eq!((x.node.depth, x.node.size), (u16::MAX, 71_001));
        // ... and then bounds the walk by the nodes instead.
        assert_eq!(Hint::of(&[x.node.clone()]).depth, 71_001);
        // A shared input counts once per use, but never past the nodes alive.
        let mut y = crate::value(1_u64);
        for _ in 0..40 {
            y = &y + &y;
        }
        assert_eq!(y.node.size, u32::MAX);
        assert!(Hint::of(&[y.node.clone()]).tasks <= crate::node::slab::slots());
        assert_eq!(Plan::build(&[y.node.clone()], None).unwrap().len(), 41);
        assert_eq!(Plan::build(&chain, None).unwrap().len(), h.tasks);

        let items: Vec<NodeRef> = (0..500_u64).map(|i| crate::value(i).node).collect();
        let list = Arg::new(
            Src::Nodes {
                items: items.into(),
                build: crate::value::typed_list::<u64>,
            },
            false,
            None,
        );
        let total = NodeRef::new(Node::new(
            Key::from("total"),
            crate::node::Op::Alias,
            [list],
            None,
            false,
        ));
        assert_eq!((total.depth, total.size), (2, 501));
        let flat = [total];
        let h = Hint::of(&flat);
        assert_eq!((h.tasks, h.depth, h.kids, h.ready), (501, 2, 502, 500));
        assert_eq!(Plan::build(&flat, None).unwrap().len(), h.tasks);
    }

    /// An output's direct inputs, for the hint: none for a constant, one per
    /// item of a list (nested sources, as a raw graph's), one for a node.
    #[test]
    fn hints_count_list_items_and_no_constants() {
        let constant = |v: u64| Src::Const {
            value: crate::value::Value::new(v),
            clone: crate::value::clone_fn_of::<u64>(),
        };
        let (a, b, c) = (
            crate::value(1_u64),
            crate::value(2_u64),
            crate::value(3_u64),
        );
        let list = Src::List {
            items: [
                Src::Node(a.node.clone(), None),
                Src::Node(b.node.clone(), None),
                constant(4),
            ]
            .into(),
            build: None,
        };
        let root = NodeRef::new(Node::new(
            Key::from("mixed"),
            crate::node::Op::Alias,
            [
                Arg::new(constant(5), false, None),
                Arg::new(list, false, None),
                Arg::new(Src::Node(c.node.clone(), None), false, None),
            ],
            None,
            false,
        ));
        let h = Hint::of(&[root]);
        // 3 list items and the node; the two constants are not inputs.
        assert_eq!((h.kids - h.depth, h.ready), (4, 4));
    }
}
