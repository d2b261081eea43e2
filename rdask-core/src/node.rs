//! Graph nodes: one task each, linked to their inputs by `Arc`.
//!
//! A [`Delayed`](crate::Delayed) is a typed handle on an `Arc<Node>`; raw
//! graphs hold the same nodes by key. A node's inputs are [`Arg`]s: another
//! node, a key to resolve in a raw graph, a literal, or a list of those.
//! Dropping a long chain of nodes is iterative (see `Drop for Node`).

use crate::error::BoxError;
use crate::value::{CloneFn, ListFn, Val, Value};
use crate::Key;
use std::borrow::Cow;
use std::sync::Arc;

/// The adapter that runs a task: takes its arguments, calls the user's
/// function, and boxes the result. `Err` is the task's own error.
pub type RunFn = fn(&mut Args<'_>) -> Result<Value, BoxError>;

/// A boxed adapter, for closures (`map`, `delay!`, operators, raw graphs).
pub type DynRunFn = Box<dyn Fn(&mut Args<'_>) -> Result<Value, BoxError> + Send + Sync>;

/// Static facts about a `#[delayed]` function, one per function.
#[derive(Debug)]
pub struct FnInfo {
    /// The function's name.
    pub name: &'static str,
    /// The key prefix (`name = ".."`, else the function's name).
    pub prefix: &'static str,
    /// `module_path!()::name`: the stable name a process worker looks it up by.
    pub path: &'static str,
}

/// What a node does when it runs.
pub enum Op {
    /// A `#[delayed]` function.
    Fn { run: RunFn, info: &'static FnInfo },
    /// A closure with a display name.
    Dyn {
        run: DynRunFn,
        name: Cow<'static, str>,
    },
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
            Op::Dyn { name, .. } => name,
            Op::Const(_) => "value",
            Op::Alias => "alias",
        }
    }
}

/// Where one argument's value comes from.
pub enum Src {
    /// Another node's output.
    Node(Arc<Node>),
    /// A raw graph key that must exist (`key("a")`).
    Key(Key),
    /// A raw graph key if the graph has it, else this literal (dask's rule
    /// for strings, and tuple keys).
    MaybeKey {
        key: Key,
        literal: Value,
        clone: CloneFn,
    },
    /// A literal, copied for each by-value use.
    Const { value: Value, clone: CloneFn },
    /// A list of sources collected into one `Vec` (elements move in).
    List {
        items: Box<[Src]>,
        build: Option<ListFn>,
    },
}

/// One argument of a task.
pub struct Arg {
    pub(crate) src: Src,
    /// Hand the task a reference (`&P` parameter) instead of a value.
    pub(crate) by_ref: bool,
    /// How to copy the value, when the consumer knows (its parameter type is
    /// `Clone`) and the producer does not.
    pub(crate) clone: Option<CloneFn>,
}

impl Arg {
    /// An argument from a source.
    pub fn new(src: Src, by_ref: bool, clone: Option<CloneFn>) -> Arg {
        Arg { src, by_ref, clone }
    }
}

/// One task: its key, what it runs and on what.
pub struct Node {
    pub(crate) key: Key,
    pub(crate) op: Op,
    pub(crate) args: Box<[Arg]>,
    /// How to copy this node's output, when its type is known to be `Clone`.
    pub(crate) clone: Option<CloneFn>,
    /// Deduplicate by key, not only by identity (pure calls, persisted
    /// values, raw graphs): two nodes with this key are one task.
    pub(crate) by_key: bool,
}

impl Node {
    /// A new node.
    pub fn new(key: Key, op: Op, args: Box<[Arg]>, clone: Option<CloneFn>, by_key: bool) -> Node {
        Node {
            key,
            op,
            args,
            clone,
            by_key,
        }
    }

    /// The node's key.
    pub fn key(&self) -> &Key {
        &self.key
    }

    /// Calls `f` on every leaf source (node, key, maybe-key) in argument
    /// order, walking lists without recursion.
    pub(crate) fn for_each_leaf<'a>(&'a self, mut f: impl FnMut(&'a Src, bool)) {
        let mut stack: Vec<(&'a [Src], usize)> = Vec::new();
        for arg in self.args.iter() {
            match &arg.src {
                Src::List { items, .. } => stack.push((items, 0)),
                Src::Const { .. } => continue,
                leaf => {
                    f(leaf, arg.by_ref);
                    continue;
                }
            }
            while let Some((items, i)) = stack.pop() {
                if i == items.len() {
                    continue;
                }
                stack.push((items, i + 1));
                match &items[i] {
                    Src::List { items, .. } => stack.push((items, 0)),
                    Src::Const { .. } => {}
                    leaf => f(leaf, false),
                }
            }
        }
    }
}

impl Drop for Node {
    /// Drops the inputs iteratively: a 1,000,000-long chain would otherwise
    /// overflow the stack with nested `Arc<Node>` drops.
    fn drop(&mut self) {
        let mut stack: Vec<Arc<Node>> = Vec::new();
        take_children(&mut self.args, &mut stack);
        while let Some(node) = stack.pop() {
            if let Ok(mut node) = Arc::try_unwrap(node) {
                take_children(&mut node.args, &mut stack);
            }
        }
    }
}

fn take_children(args: &mut Box<[Arg]>, out: &mut Vec<Arc<Node>>) {
    let args = std::mem::take(args);
    let mut srcs: Vec<Src> = args.into_vec().into_iter().map(|a| a.src).collect();
    while let Some(src) = srcs.pop() {
        match src {
            Src::Node(n) => out.push(n),
            Src::List { items, .. } => srcs.extend(items.into_vec()),
            _ => {}
        }
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
        let v = self.vals.get_mut(i).and_then(Option::take);
        let Some(v) = v else {
            return Err(self.mismatch(i, std::any::type_name::<T>(), "nothing"));
        };
        crate::value::unwrap_value::<T>(v)
            .map_err(|e| self.mismatch(i, std::any::type_name::<T>(), e.found()))
    }

    /// Borrows argument `i` as a `&T`.
    pub fn get<T: Send + Sync + 'static>(&self, i: usize) -> Result<&T, BoxError> {
        let v: Option<&dyn Val> = self.vals.get(i).and_then(|v| v.as_deref());
        match v {
            Some(v) => crate::value::downcast_ref::<T>(v)
                .ok_or_else(|| self.mismatch(i, std::any::type_name::<T>(), v.type_name())),
            None => Err(self.mismatch(i, std::any::type_name::<T>(), "nothing")),
        }
    }
}
