//! Support for the code that `rdask-macros` generates. Not public API: names
//! and signatures here change without notice.

pub use crate::args::{IntoArg, IntoPureArg, Tokenize};
pub use crate::error::BoxError;
pub use crate::graph::{GraphArg, TaskArgs, TaskFn};
pub use crate::node::Arg;
pub use crate::task::annotations::Annotations;
pub use crate::task::remote::{
    Apply, ProbeLocal, ProbeRemote, RemoteEntry, RemoteFns, RemoteProbe,
};
pub use crate::task::{
    Args, CacheSpec, DynRunFn, FnInfo, ProbeTakeClone, ProbeTakeNone, ProbeTakeOwned, RunFn,
};
pub use crate::value::{CloneFn, CloneProbe, ProbeClone, ProbeNoClone, Value};
pub use inventory;

use crate::node::NodeRef;
use crate::node::Op;
use crate::{Delayed, Key};
use std::hash::Hasher;

/// A lazy call of a `#[delayed]` function: a new task with a unique key.
#[inline]
pub fn call<R, const N: usize>(
    info: &'static FnInfo,
    args: [Arg; N],
    run: RunFn,
    clone: Option<CloneFn>,
) -> Delayed<R> {
    let info = crate::task::annotations::apply(info);
    Delayed::from_node(NodeRef::make(
        Key::unique(&info.prefix),
        Op::Fn { run, info },
        args,
        clone,
        false,
    ))
}

/// A lazy call of a `#[delayed(pure)]` function, named by `token`: equal
/// calls get equal keys and are computed once.
#[inline]
pub fn call_pure<R, const N: usize>(
    info: &'static FnInfo,
    args: [Arg; N],
    run: RunFn,
    clone: Option<CloneFn>,
    token: u64,
) -> Delayed<R> {
    let info = crate::task::annotations::apply(info);
    Delayed::from_node(NodeRef::make(
        Key::hashed(&info.prefix, token),
        Op::Fn { run, info },
        args,
        clone,
        true,
    ))
}

/// The hasher a pure call's arguments are fed into, seeded with the
/// function's path. SipHash with fixed keys: stable within one build.
#[allow(deprecated)]
pub fn pure_hasher(info: &'static FnInfo) -> std::hash::SipHasher {
    let mut h = std::hash::SipHasher::new();
    h.write(info.path.as_bytes());
    h.write_u8(0xff);
    h
}

/// A task's result as a value (inline when a primitive).
#[inline]
pub fn ret<R: Send + Sync + 'static>(r: R) -> Result<Value, BoxError> {
    Ok(Value::new(r))
}

/// What `compute!` does with each argument before computing: a `Delayed`
/// whose type is `Clone` records its copy function (an output also used by
/// value elsewhere is copied), chosen at compile time as `CloneProbe`'s:
/// `(&&Outputs(&arg)).register()`.
pub struct Outputs<'a, D: ?Sized>(pub &'a D);

/// Runs `register` on `d`'s [`Outputs`]; returns `d` (an argument of a call,
/// so that a temporary lives as long as the computation).
#[inline]
pub fn outputs<'a, D: ?Sized>(d: &'a D, register: impl FnOnce(Outputs<'a, D>)) -> &'a D {
    register(Outputs(d));
    d
}

/// The `Delayed<T: Clone>` arm of [`Outputs`].
pub trait RegisterClone {
    /// Records `T`'s copy function.
    fn register(&self);
}

/// The fallback arm of [`Outputs`]: a collection, or a type not `Clone`.
pub trait RegisterNothing {
    /// Nothing to record.
    fn register(&self);
}

impl<T: Clone + std::any::Any + Send + Sync> RegisterClone for &Outputs<'_, Delayed<T>> {
    #[inline]
    fn register(&self) {
        crate::value::register_clone::<T>();
    }
}

impl<D: ?Sized> RegisterNothing for Outputs<'_, D> {
    #[inline]
    fn register(&self) {}
}

/// A `CloneProbe` for `T`: `(&&probe::<T>()).clone_fn()`.
#[inline]
pub fn probe<T>() -> CloneProbe<T> {
    CloneProbe::new()
}

/// `persist!`'s entry point.
pub fn persist_tuple<P: crate::delayed::PersistTuple>(p: P) -> crate::Result<P::Output> {
    p.persist_tuple()
}

/// `compute!`'s entry point.
pub fn compute_tuple<C: crate::Computable>(c: C) -> crate::Result<C::Output> {
    crate::delayed::compute_all(&c)
}

/// A string in a `graph!` task: the key's value if the graph has it, else
/// the string.
pub fn maybe_key(s: &str) -> GraphArg {
    GraphArg::key_or_lit(s, s.to_string())
}

/// A tuple in a `graph!` task: the tuple key's value if the graph has it,
/// else the tuple itself.
pub fn maybe_key_tuple<T>(t: T) -> GraphArg
where
    T: Clone + Send + Sync + 'static,
    Key: From<T>,
{
    GraphArg::key_or_lit(Key::from(t.clone()), t)
}

/// Anything else in a `graph!` task: a literal.
pub fn literal<T: Clone + Send + Sync + 'static>(v: T) -> GraphArg {
    crate::graph::lit(v)
}

/// Passes an explicit argument (`key(..)`, `lit(..)`, a nested list)
/// through unchanged.
pub fn arg(a: impl Into<GraphArg>) -> GraphArg {
    a.into()
}

/// How many computations this thread has run through a plan; a tree runs
/// without one (tests of which graphs take which path).
pub fn planned() -> usize {
    crate::schedule::planned()
}

/// How many node-slab chunks exist right now (tests of the slab's
/// accounting).
pub fn slab_chunks() -> usize {
    crate::node::slab::chunks()
}
