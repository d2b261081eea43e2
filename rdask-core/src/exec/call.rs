//! The call helpers that the executor and the tree walk share: running a
//! task's adapter under the unwind guard, constants and copies of values
//! for by-value uses, building list arguments, and the computation's first
//! error. One home, so that the two executors follow one set of rules.

use crate::error::{short_type, BoxError, Error, ErrorKind};
use crate::key::Key;
use crate::node::Node;
use crate::task::{Args, EngineError};
use crate::value::{clone_registered, unwrap_value, CloneFn, ListFn, Unwrap, Value};
use smallvec::SmallVec;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// A computation's first error, and whether there is one (read before
/// every task starts, so an atomic beside the lock).
#[derive(Default)]
pub(crate) struct FirstError {
    failed: AtomicBool,
    error: Mutex<Option<Error>>,
}

impl FirstError {
    #[inline(always)]
    pub(crate) fn failed(&self) -> bool {
        self.failed.load(Ordering::Relaxed)
    }

    /// Records `e` unless an error came first; no task starts after this.
    pub(crate) fn fail(&self, e: Error) {
        let mut slot = self.error.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some(e);
        }
        self.failed.store(true, Ordering::Release);
    }

    /// The first error, taken.
    pub(crate) fn take(&self) -> Option<Error> {
        self.error.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// Runs `f`, the user's code on the value of `key` outside any task (its
/// `Clone` copying an output, its `Deserialize` reading one), a panic
/// becoming the error (`what` names the step): no panic escapes `compute`.
pub(crate) fn guarded<T>(
    what: &str,
    key: &Key,
    f: impl FnOnce() -> Result<T, Error>,
) -> Result<T, Error> {
    catch_unwind(AssertUnwindSafe(f))
        .unwrap_or_else(|payload| Err(Error::panic_in(what, key, &*payload)))
}

/// The error for an argument the engine should have had ready.
pub(crate) fn missing_argument(key: &Key) -> Error {
    Error::new(
        ErrorKind::Type,
        Some(key.clone()),
        "internal error: an argument went missing",
    )
}

/// Arguments of one task, inline when few.
pub(crate) type Vals = SmallVec<[Option<Value>; 4]>;

/// Where a task's arguments are collected, in order: a [`Vals`], or for a
/// task of one or two arguments (a chain's link, a leaf of one constant, a
/// pairwise reduction's step) a plain array, which needs no length kept
/// and no loop to drop.
pub(crate) trait Slots: Default + AsMut<[Option<Value>]> {
    /// Room for `n` arguments (at most `N` for an array).
    fn reserve(&mut self, n: usize);
    /// Argument `i` (the arguments come in order from 0).
    fn put(&mut self, i: usize, v: Value);
}

impl Slots for Vals {
    #[inline(always)]
    fn reserve(&mut self, n: usize) {
        self.reserve_exact(n);
    }

    #[inline(always)]
    fn put(&mut self, _: usize, v: Value) {
        self.push(Some(v));
    }
}

impl<const N: usize> Slots for [Option<Value>; N]
where
    [Option<Value>; N]: Default,
{
    #[inline(always)]
    fn reserve(&mut self, _: usize) {}

    #[inline(always)]
    fn put(&mut self, i: usize, v: Value) {
        self[i] = Some(v);
    }
}

/// Runs `node`'s task: `gather` collects its arguments, then `run` runs
/// it. Both are under the unwind guard (copying an argument runs the user's
/// `Clone`, and the arguments not taken are dropped in it), and an error or
/// a panic becomes the task's error. The arguments are held in a `V` (see
/// [`Slots`]).
#[inline(always)]
pub(crate) fn invoke<V: Slots>(
    node: &Node,
    gather: impl FnOnce(&mut V) -> Result<(), Error>,
    run: impl FnOnce(&mut Args<'_>) -> Result<Value, BoxError>,
) -> Result<Value, Error> {
    guard(node, || run_in(node, gather, run))
}

/// Runs `f`, `node`'s task, under the unwind guard: a panic is the task's
/// error.
#[inline(always)]
pub(crate) fn guard(node: &Node, f: impl FnOnce() -> Result<Value, Error>) -> Result<Value, Error> {
    catch_unwind(AssertUnwindSafe(f))
        .unwrap_or_else(|payload| Err(Error::panic(node.key.clone(), &*payload)))
}

/// [`invoke`] without the unwind guard, for a caller that holds one over
/// several tasks (a chain's links).
#[inline(always)]
pub(crate) fn run_in<V: Slots>(
    node: &Node,
    gather: impl FnOnce(&mut V) -> Result<(), Error>,
    run: impl FnOnce(&mut Args<'_>) -> Result<Value, BoxError>,
) -> Result<Value, Error> {
    let mut vals = V::default();
    gather(&mut vals)?;
    let mut args = Args {
        key: &node.key,
        vals: vals.as_mut(),
    };
    run(&mut args).map_err(|e| task_error(&node.key, e))
}

/// Task `key`'s error from what its adapter returned: the engine's own
/// error, or the task's `Err`.
pub(crate) fn task_error(key: &Key, e: BoxError) -> Error {
    match e.downcast::<EngineError>() {
        Ok(engine) => engine.0,
        Err(user) => Error::task(key.clone(), user),
    }
}

/// A constant argument's value for its task: the node's own, shared, where
/// the task borrows it or copies it itself, else a copy.
#[inline(always)]
pub(crate) fn constant(value: &Value, clone: CloneFn, shared: bool) -> Option<Value> {
    // An inline primitive's copy is its bits: no call through `clone`.
    match shared || value.is_inline() {
        true => Some(value.clone()),
        false => clone(value),
    }
}

/// A copy of `v`, the value of `producer`, for a by-value use (`by` names
/// it) that cannot move it: by `clone` (the producer's or the consumer's
/// copy function), else by the type registry.
// Out of line: the slow path (a copy), kept out of its callers' hot loops.
#[inline(never)]
pub(crate) fn copy_of(
    v: &Value,
    clone: Option<CloneFn>,
    producer: &Key,
    by: impl FnOnce() -> String,
) -> Result<Value, Error> {
    let copy = match clone {
        Some(f) => f(v),
        None => clone_registered(v),
    };
    copy.ok_or_else(|| {
        Error::new(
            ErrorKind::NotClone,
            Some(producer.clone()),
            format!(
                "{} needs its own copy of the value of `{producer}` (type `{}`), which is \
                 still in use elsewhere, but that type is not known to be Clone",
                by(),
                short_type(v.type_name())
            ),
        )
    })
}

/// A list's elements, taken from their sources one by one: the first that
/// fails ends the list and is kept as its error.
struct Elems<I, F> {
    items: I,
    take: F,
    failed: Option<Error>,
}

impl<I: Iterator, F: FnMut(I::Item) -> Result<Value, Error>> Iterator for Elems<I, F> {
    type Item = Value;
    #[inline]
    fn next(&mut self) -> Option<Value> {
        let item = self.items.next()?;
        match (self.take)(item) {
            Ok(v) => Some(v),
            Err(e) => {
                self.failed = Some(e);
                // Nothing after it: the list is over.
                for _ in self.items.by_ref() {}
                None
            }
        }
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.items.size_hint()
    }
}

impl<I: ExactSizeIterator, F: FnMut(I::Item) -> Result<Value, Error>> ExactSizeIterator
    for Elems<I, F>
{
}

/// Builds a list argument of task `key` with `build`, each element taken
/// from `items` by `take` straight into the list: the first element that
/// cannot be taken stops the taking and is the list's error, and a list
/// the parameter cannot hold is a `Type` error naming the task.
#[inline]
pub(crate) fn build_list<I: ExactSizeIterator>(
    key: &Key,
    build: ListFn,
    items: I,
    take: impl FnMut(I::Item) -> Result<Value, Error>,
) -> Result<Value, Error> {
    let mut elems = Elems {
        items,
        take,
        failed: None,
    };
    let built = build(&mut elems);
    if let Some(e) = elems.failed {
        return Err(e);
    }
    built.map_err(|found| Error::type_mismatch(key, "a list", "elements of one type", found))
}

/// Drops what a failed computation left, a panic in a `Drop` caught (the
/// first error is already recorded).
pub(crate) fn drop_quietly<T>(values: T) {
    let _ = catch_unwind(AssertUnwindSafe(move || drop(values)));
}

/// Moves a computed output out as a `T`: the typed end of the data path.
/// (Decoding one a worker process sent runs the user's `Deserialize`: a
/// panic there is an error too.)
pub(crate) fn take_output<T: Send + Sync + 'static>(
    v: Option<Value>,
    key: &Key,
) -> Result<T, Error> {
    let v = v.ok_or_else(|| Error::missing(key, None))?;
    guarded("reading output", key, || {
        unwrap_value::<T>(v).map_err(|e| match e {
            Unwrap::WrongType(found) => Error::new(
                ErrorKind::Type,
                Some(key.clone()),
                format!(
                    "output `{key}` is a `{}`, not the requested `{}`",
                    short_type(found),
                    short_type(std::any::type_name::<T>())
                ),
            ),
            Unwrap::Shared(v) => Error::new(
                ErrorKind::NotClone,
                Some(key.clone()),
                format!(
                    "output `{key}` (type `{}`) is still shared",
                    short_type(v.type_name())
                ),
            ),
            Unwrap::Undecodable(why) => {
                why.into_error(key, &format!("output `{key}`"), std::any::type_name::<T>())
            }
        })
    })
}
