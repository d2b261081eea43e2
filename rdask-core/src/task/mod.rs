//! The task ABI: what the engine hands a task's adapter and what it gets
//! back, whoever runs it.
//!
//! An adapter ([`RunFn`], or a boxed closure [`DynTask`]) takes its
//! arguments out of [`Args`], calls the user's function, and returns a
//! [`Value`] or the task's own error. [`FnInfo`] is the static description
//! of a `#[delayed]` function; [`remote`] is its encoded form, for a task
//! that runs in another process (the codec only: no pipes, no pools).
//!
//! Below the node layer: nodes store these, the executor calls them, and
//! neither the codec nor the adapters know about nodes or schedulers.

pub mod annotations;
pub mod remote;

use crate::error::BoxError;
use crate::key::Key;
use crate::value::CloneProbe;
use crate::value::Value;
use std::any::Any;

/// The adapter that runs a task: takes its arguments, calls the user's
/// function, and makes the result a [`Value`]. `Err` is the task's own error.
pub type RunFn = fn(&mut Args<'_>) -> Result<Value, BoxError>;

/// A closure's adapter with its display name (`map`, `delay!`, operators,
/// raw graphs), in one box so that `Op` stays three words.
pub struct DynTask<F: ?Sized> {
    pub(crate) name: &'static str,
    /// What it asks of the scheduler (an `annotate` scope's).
    pub(crate) annot: annotations::Annotations,
    pub(crate) run: F,
}

/// A boxed closure task.
pub type DynRunFn = Box<DynTask<dyn Fn(&mut Args<'_>) -> Result<Value, BoxError> + Send + Sync>>;

/// Boxes closure `run` as a task named `name`.
pub fn dyn_run<F>(name: &'static str, run: F) -> DynRunFn
where
    F: Fn(&mut Args<'_>) -> Result<Value, BoxError> + Send + Sync + 'static,
{
    let annot = annotations::scope();
    if !annot.is_empty() {
        annotations::noted(&annot);
    }
    Box::new(DynTask { name, annot, run })
}

/// Static facts about a `#[delayed]` function, one per function.
#[derive(Debug)]
pub struct FnInfo {
    /// The function's name.
    pub name: &'static str,
    /// The key prefix (`name = ".."`, else the function's name).
    pub prefix: &'static str,
    /// `module_path!()::name@line:column`: the name a worker process looks
    /// the function up by (the same in every copy of one binary).
    pub path: &'static str,
    /// The remote halves of the function when its types are serde (`None`:
    /// a generic function, which always runs in the calling process).
    pub remote: Option<fn() -> Option<remote::RemoteFns>>,
    /// What its tasks ask of the scheduler (`#[delayed(retries = ..)]`).
    pub annot: annotations::Annotations,
    /// `#[delayed(cache)]`: its results are kept in an attached cache.
    pub cache: Option<CacheSpec>,
}

/// A cached function's identity beyond its path: a hash of its tokens (an
/// edited body or signature never reads an old entry) and its `version`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheSpec {
    /// FNV-1a of the function's tokens, as the macro saw them.
    pub tokens: u64,
    /// `version = N` (0 by default).
    pub version: u32,
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
pub(crate) struct EngineError(pub(crate) crate::error::Error);

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
        Box::new(EngineError(crate::error::Error::type_mismatch(
            self.key,
            &format!("parameter {}", i + 1),
            expected,
            found,
        )))
    }

    /// Moves argument `i` out as a `T`.
    pub fn take<T: Send + Sync + 'static>(&mut self, i: usize) -> Result<T, BoxError> {
        self.take_as(i, |_| None)
    }

    /// Moves argument `i` out as a `T`, or copies it when it is shared (a
    /// constant of the graph): the adapter of a `Clone` parameter.
    #[inline]
    pub fn take_or_clone<T: Clone + Send + Sync + 'static>(
        &mut self,
        i: usize,
    ) -> Result<T, BoxError> {
        // An inline primitive: read where it lies (nothing to move out).
        let inline = self.vals.get(i).and_then(Option::as_ref);
        if let Some(t) = inline.and_then(Value::inline_ref::<T>) {
            return Ok(t.clone());
        }
        self.take_or_clone_shared(i)
    }

    /// [`take_or_clone`](Self::take_or_clone) of a value behind an `Arc`.
    #[inline(never)]
    fn take_or_clone_shared<T: Clone + Send + Sync + 'static>(
        &mut self,
        i: usize,
    ) -> Result<T, BoxError> {
        // A plain `T`, the common case: moved if this is its last reference.
        if let Some(v) = self.vals.get_mut(i).and_then(Option::take) {
            match v.unwrap_or_clone::<T>() {
                Ok(t) => return Ok(t),
                Err(v) => self.vals[i] = Some(v),
            }
        }
        self.take_as(i, |shared| crate::value::downcast_ref::<T>(shared).cloned())
    }

    /// Moves argument `i` out as a `T`; `copy` may copy one still shared.
    fn take_as<T: Send + Sync + 'static>(
        &mut self,
        i: usize,
        copy: impl FnOnce(&Value) -> Option<T>,
    ) -> Result<T, BoxError> {
        let v = self.vals.get_mut(i).and_then(Option::take);
        let Some(v) = v else {
            return Err(self.mismatch(i, std::any::type_name::<T>(), "nothing"));
        };
        match crate::value::unwrap_value::<T>(v) {
            Ok(t) => Ok(t),
            Err(crate::value::Unwrap::Undecodable(why)) => Err(self.undecodable::<T>(i, why)),
            Err(crate::value::Unwrap::Shared(shared)) => match copy(&shared) {
                Some(t) => Ok(t),
                None if shared.type_name() == std::any::type_name::<T>() => {
                    Err(self.not_clone::<T>(i))
                }
                None => {
                    let found = shared.type_name();
                    Err(self.mismatch(i, std::any::type_name::<T>(), found))
                }
            },
            Err(e) => Err(self.mismatch(i, std::any::type_name::<T>(), e.found())),
        }
    }

    /// A by-value parameter whose value is shared (a task with retries
    /// keeps its inputs for another attempt), of a type that is not Clone.
    fn not_clone<T>(&self, i: usize) -> BoxError {
        let ty = crate::error::short_type(std::any::type_name::<T>());
        Box::new(EngineError(crate::error::Error::new(
            crate::error::ErrorKind::NotClone,
            Some(self.key.clone()),
            format!(
                "task `{}`: parameter {} takes a `{ty}` by value, but the value is shared (a \
                 task with retries keeps its inputs for the next attempt) and `{ty}` is not \
                 Clone: take it by reference, or make it Clone",
                self.key,
                i + 1
            ),
        )))
    }

    fn undecodable<T>(&self, i: usize, why: crate::value::Unreadable) -> BoxError {
        Box::new(EngineError(why.into_error(
            self.key,
            &format!("task `{}`: parameter {}", self.key, i + 1),
            std::any::type_name::<T>(),
        )))
    }

    /// The first argument as it is stored, moved out: an alias's value.
    pub(crate) fn take_value(&mut self) -> Result<Value, BoxError> {
        match self.vals.first_mut().and_then(Option::take) {
            Some(v) => Ok(v),
            None => Err(self.mismatch(0, "a value", "nothing")),
        }
    }

    /// Argument `i` as it is stored (an encoded value stays encoded).
    pub(crate) fn value(&self, i: usize) -> Option<&Value> {
        self.vals.get(i).and_then(Option::as_ref)
    }

    /// Borrows argument `i` as a `&T`.
    pub fn get<T: Send + Sync + 'static>(&self, i: usize) -> Result<&T, BoxError> {
        let v = self.vals.get(i).and_then(Option::as_ref);
        match v {
            Some(v) => crate::value::downcast_ref::<T>(v).ok_or_else(|| {
                match crate::value::undecodable::<T>(v) {
                    Some(why) => self.undecodable::<T>(i, why),
                    None => self.mismatch(i, std::any::type_name::<T>(), v.type_name()),
                }
            }),
            None => Err(self.mismatch(i, std::any::type_name::<T>(), "nothing")),
        }
    }
}

/// How the adapter of a `#[delayed]` function takes a by-value parameter,
/// chosen at compile time like `CloneProbe`'s `clone_fn` but one level deeper:
/// `(&&&probe::<T>()).take(args, i)`.
///
/// 1. `T: Clone`: [`Args::take_or_clone`], so a shared constant is copied
///    straight into the parameter (no boxed copy made and unboxed).
/// 2. Otherwise [`Args::take`].
/// 3. A type that cannot be a value at all (not `Send`): never runs, since
///    the macro's own check fails to compile; it exists so that check's
///    error is the only one.
///
/// [`Args::take_or_clone`]: Args::take_or_clone
/// [`Args::take`]: Args::take
pub trait ProbeTakeClone<T> {
    /// Argument `i`, copied if shared.
    fn take(&self, args: &mut Args<'_>, i: usize) -> Result<T, BoxError>;
}

/// The second arm of [`ProbeTakeClone`].
pub trait ProbeTakeOwned<T> {
    /// Argument `i`, moved out.
    fn take(&self, args: &mut Args<'_>, i: usize) -> Result<T, BoxError>;
}

/// The third arm of [`ProbeTakeClone`].
pub trait ProbeTakeNone<T> {
    /// Never runs (see [`ProbeTakeClone`]).
    fn take(&self, args: &mut Args<'_>, i: usize) -> Result<T, BoxError>;
}

impl<T: Clone + Any + Send + Sync> ProbeTakeClone<T> for &&CloneProbe<T> {
    #[inline]
    fn take(&self, args: &mut Args<'_>, i: usize) -> Result<T, BoxError> {
        args.take_or_clone::<T>(i)
    }
}

impl<T: Any + Send + Sync> ProbeTakeOwned<T> for &CloneProbe<T> {
    #[inline]
    fn take(&self, args: &mut Args<'_>, i: usize) -> Result<T, BoxError> {
        args.take::<T>(i)
    }
}

impl<T> ProbeTakeNone<T> for CloneProbe<T> {
    fn take(&self, _: &mut Args<'_>, _: usize) -> Result<T, BoxError> {
        Err("internal error: a parameter type that cannot be a value".into())
    }
}

impl FnInfo {
    /// The function's remote halves, when its types let it run in another
    /// process.
    pub(crate) fn remote_fns(&self) -> Option<remote::RemoteFns> {
        self.remote.and_then(|probe| probe())
    }
}
