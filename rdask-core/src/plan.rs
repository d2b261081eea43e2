//! The Plan: the distinct tasks reachable from the requested outputs, in flat
//! arrays, ready for any scheduler.
//!
//! Built by one iterative depth-first walk from the outputs (linear in the
//! graph; no recursion). Tasks are numbered in post-order, so every task's
//! inputs have smaller numbers and "smallest ready number first" is a
//! depth-first order that finishes one branch before opening the next.
//!
//! Every use of a value is an *edge*: one per leaf argument of a consumer,
//! plus one per requested output. `uses[p]` counts them; the executor frees
//! (or moves) the value when the last one is done. A value whose type is not
//! `Clone` may have any number of `&T` edges but only one by-value edge, and
//! that consumer waits (`release`) until the borrowers are done.

use crate::node::{Node, Src};
use crate::value::CloneFn;
use crate::{Error, ErrorKind, Key};
use indexmap::IndexMap;
use std::collections::HashMap;
use std::sync::Arc;

/// "No task": a literal in the edge list, or no waiting consumer.
pub(crate) const NONE: u32 = u32::MAX;

pub(crate) struct Plan {
    /// The tasks, in post-order.
    pub nodes: Vec<Arc<Node>>,
    /// Per task, its leaf arguments' producers in argument order (`NONE`: a
    /// raw string or tuple that is not a key, i.e. a literal); CSR layout.
    pub edges: Vec<u32>,
    pub edge_start: Vec<u32>,
    /// Per producer, the consumers to notify when it finishes (one entry per
    /// edge); CSR layout.
    pub dependents: Vec<u32>,
    pub dep_start: Vec<u32>,
    /// Per task, how many notifications it needs before it can run.
    pub waits: Vec<u32>,
    /// Per task, how many uses its value has (edges + outputs).
    pub uses: Vec<u32>,
    /// Per task, how to copy its value (from the producer or a consumer that
    /// knows the type).
    pub clone: Vec<Option<CloneFn>>,
    /// Per non-`Clone` task that is borrowed and also moved: the by-value
    /// consumer to notify once `borrows[p]` borrowers are done.
    pub release: Vec<u32>,
    pub borrows: Vec<u32>,
    /// The requested outputs, as task numbers.
    pub outputs: Vec<u32>,
}

/// One step of the planning walk: a node, its resolved leaf inputs (`None`:
/// a literal), and how many of them are done.
type Frame = (Arc<Node>, Vec<Option<Arc<Node>>>, usize);

enum Mark {
    Open,
    Done(u32),
}

/// Resolves raw-graph keys while planning.
pub(crate) type Lookup<'g> = Option<&'g IndexMap<Key, Arc<Node>>>;

/// The node a leaf source refers to: `Ok(None)` for a literal.
pub(crate) fn resolve(
    src: &Src,
    graph: Lookup<'_>,
    from: &Key,
) -> Result<Option<Arc<Node>>, Error> {
    match src {
        // A raw graph may have replaced a node of a `Delayed`'s graph.
        Src::Node(n) => Ok(Some(graph.and_then(|g| g.get(&n.key)).unwrap_or(n).clone())),
        Src::Key(k) => match graph.and_then(|g| g.get(k)) {
            Some(n) => Ok(Some(n.clone())),
            None => Err(Error::missing(k, Some(from))),
        },
        Src::MaybeKey { key, .. } => Ok(graph.and_then(|g| g.get(key)).cloned()),
        Src::Const { .. } | Src::List { .. } => Ok(None),
    }
}

impl Plan {
    /// Plans the computation of `outputs`, resolving raw keys in `graph`.
    pub fn build(outputs: &[Arc<Node>], graph: Lookup<'_>) -> Result<Plan, Error> {
        let mut marks: HashMap<*const Node, Mark> = HashMap::new();
        let mut by_key: HashMap<Key, u32> = HashMap::new();
        let mut nodes: Vec<Arc<Node>> = Vec::new();
        // Resolved leaf inputs of each finished task, in argument order.
        let mut children: Vec<Option<Arc<Node>>> = Vec::new();
        let mut child_start: Vec<u32> = vec![0];
        // The walk: a node, its resolved leaf inputs, and how many are done.
        let mut stack: Vec<Frame> = Vec::new();
        let mut out_idx = Vec::with_capacity(outputs.len());

        for root in outputs {
            push_node(root, &mut marks, &by_key, &mut stack, graph)?;
            while let Some(top) = stack.last_mut() {
                let (node, kids, pos) = top;
                if *pos < kids.len() {
                    let kid = kids[*pos].clone();
                    *pos += 1;
                    if let Some(kid) = kid {
                        match marks.get(&Arc::as_ptr(&kid)) {
                            Some(Mark::Done(_)) => {}
                            Some(Mark::Open) => return Err(cycle_error(&stack, &kid)),
                            None => push_node(&kid, &mut marks, &by_key, &mut stack, graph)?,
                        }
                    }
                    continue;
                }
                let idx = nodes.len() as u32;
                if idx == NONE {
                    return Err(Error::new(
                        ErrorKind::Scheduler,
                        None,
                        "graph too large: more than 4,294,967,294 tasks",
                    ));
                }
                if node.by_key {
                    by_key.insert(node.key.clone(), idx);
                }
                marks.insert(Arc::as_ptr(node), Mark::Done(idx));
                let (node, kids, _) = stack.pop().expect("stack top exists");
                children.extend(kids);
                child_start.push(children.len() as u32);
                nodes.push(node);
            }
            match marks.get(&Arc::as_ptr(root)) {
                Some(Mark::Done(i)) => out_idx.push(*i),
                _ => {
                    // Deduplicated by key onto an earlier node.
                    out_idx.push(by_key[&root.key]);
                }
            }
        }

        let n = nodes.len();
        let index_of = |kid: &Arc<Node>| -> u32 {
            match marks.get(&Arc::as_ptr(kid)) {
                Some(Mark::Done(i)) => *i,
                _ => by_key[&kid.key],
            }
        };
        let edges: Vec<u32> = children
            .iter()
            .map(|k| k.as_ref().map_or(NONE, index_of))
            .collect();
        drop(children);

        // Count uses, by-value uses and borrows; fill in copy functions.
        let mut uses = vec![0u32; n];
        let mut moves = vec![0u32; n];
        let mut borrows = vec![0u32; n];
        let mut clone: Vec<Option<CloneFn>> = nodes.iter().map(|n| n.clone).collect();
        let mut waits = vec![0u32; n];
        let mut mover = vec![NONE; n];
        for (t, node) in nodes.iter().enumerate() {
            let mut e = child_start[t] as usize;
            for arg in node.args.iter() {
                let mut visit = |by_ref: bool, edges: &[u32], e: &mut usize, own: bool| {
                    let p = edges[*e];
                    *e += 1;
                    if p == NONE {
                        return;
                    }
                    let p = p as usize;
                    uses[p] += 1;
                    waits[t] += 1;
                    if by_ref {
                        borrows[p] += 1;
                    } else {
                        moves[p] += 1;
                        mover[p] = t as u32;
                    }
                    if clone[p].is_none() && own {
                        clone[p] = arg.clone;
                    }
                };
                match &arg.src {
                    Src::Const { .. } => {}
                    Src::List { .. } => {
                        let mut count = 0;
                        count_leaves(&arg.src, &mut count);
                        for _ in 0..count {
                            visit(false, &edges, &mut e, false);
                        }
                    }
                    _ => visit(arg.by_ref, &edges, &mut e, true),
                }
            }
            debug_assert_eq!(e, child_start[t + 1] as usize);
        }
        for &o in &out_idx {
            uses[o as usize] += 1;
            moves[o as usize] += 1;
            mover[o as usize] = NONE;
        }

        // Dependents in CSR form: consumers in ascending order per producer.
        let mut dep_start = vec![0u32; n + 1];
        for &p in &edges {
            if p != NONE {
                dep_start[p as usize + 1] += 1;
            }
        }
        for i in 0..n {
            dep_start[i + 1] += dep_start[i];
        }
        let mut fill = dep_start.clone();
        let mut dependents = vec![0u32; edges.len() - edges.iter().filter(|&&p| p == NONE).count()];
        for t in 0..n {
            for &p in &edges[child_start[t] as usize..child_start[t + 1] as usize] {
                if p != NONE {
                    dependents[fill[p as usize] as usize] = t as u32;
                    fill[p as usize] += 1;
                }
            }
        }

        // Values that cannot be copied: at most one by-value use, which
        // waits for the borrowers.
        let mut release = vec![NONE; n];
        for p in 0..n {
            if clone[p].is_some() || moves[p] + borrows[p] <= 1 {
                continue;
            }
            if moves[p] >= 2 {
                let key = &nodes[p].key;
                return Err(Error::new(
                    ErrorKind::NotClone,
                    Some(key.clone()),
                    format!(
                        "the value of `{key}` is used by value {} times but its type cannot be \
                         copied (not known to be Clone); take it by reference (`&T` parameter) \
                         in all but one consumer",
                        moves[p]
                    ),
                ));
            }
            if moves[p] == 1 && mover[p] != NONE {
                release[p] = mover[p];
                waits[mover[p] as usize] += 1;
            }
        }

        Ok(Plan {
            nodes,
            edges,
            edge_start: child_start,
            dependents,
            dep_start,
            waits,
            uses,
            clone,
            release,
            borrows,
            outputs: out_idx,
        })
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// The consumers of task `p`, ascending.
    pub fn dependents_of(&self, p: usize) -> &[u32] {
        &self.dependents[self.dep_start[p] as usize..self.dep_start[p + 1] as usize]
    }
}

fn count_leaves(src: &Src, count: &mut usize) {
    let mut stack = vec![src];
    while let Some(s) = stack.pop() {
        match s {
            Src::List { items, .. } => stack.extend(items.iter()),
            Src::Const { .. } => {}
            _ => *count += 1,
        }
    }
}

fn push_node(
    node: &Arc<Node>,
    marks: &mut HashMap<*const Node, Mark>,
    by_key: &HashMap<Key, u32>,
    stack: &mut Vec<Frame>,
    graph: Lookup<'_>,
) -> Result<(), Error> {
    if marks.contains_key(&Arc::as_ptr(node)) {
        return Ok(());
    }
    if node.by_key {
        if let Some(&i) = by_key.get(&node.key) {
            marks.insert(Arc::as_ptr(node), Mark::Done(i));
            return Ok(());
        }
    }
    let mut kids = Vec::new();
    let mut err = None;
    node.for_each_leaf(|src, _| {
        if err.is_none() {
            match resolve(src, graph, &node.key) {
                Ok(k) => kids.push(k),
                Err(e) => err = Some(e),
            }
        }
    });
    if let Some(e) = err {
        return Err(e);
    }
    marks.insert(Arc::as_ptr(node), Mark::Open);
    stack.push((node.clone(), kids, 0));
    Ok(())
}

fn cycle_error(stack: &[Frame], back_to: &Arc<Node>) -> Error {
    let start = stack
        .iter()
        .position(|(n, _, _)| Arc::ptr_eq(n, back_to))
        .unwrap_or(0);
    // Name the whole cycle when short, its ends when long.
    let cycle = &stack[start..];
    let show = |n: &Arc<Node>| format!("`{}`", n.key);
    let mut keys: Vec<String> = if cycle.len() <= 12 {
        cycle.iter().map(|(n, _, _)| show(n)).collect()
    } else {
        let mut k: Vec<String> = cycle[..5].iter().map(|(n, _, _)| show(n)).collect();
        k.push(format!("... ({} more) ...", cycle.len() - 10));
        k.extend(cycle[cycle.len() - 5..].iter().map(|(n, _, _)| show(n)));
        k
    };
    keys.push(show(back_to));
    Error::new(
        ErrorKind::Cycle,
        Some(back_to.key.clone()),
        format!("the graph has a cycle: {}", keys.join(" -> ")),
    )
}
