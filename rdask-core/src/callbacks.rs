//! Callbacks: hooks into a computation, for progress bars, profilers and
//! your own diagnostics (dask's scheduler callbacks).
//!
//! A [`Callback`] sees `start_state` (the graph about to run, as a
//! [`TaskGraph`]) and `start` (the number of tasks), `pretask` and
//! `posttask` around every task, with `result` (a [`TaskResult`]) between
//! them when the task's value is made here, and `finish` once, always: after
//! success, after a failure, and after a panic. Attach one:
//!
//! * to one computation: [`Compute::callback`](crate::Compute::callback);
//! * to every computation started on this thread inside a closure:
//!   [`with_callbacks`];
//! * to every computation of the process: [`register`] (until the returned
//!   [`Registration`] is dropped).
//!
//! A nested `compute` inside a task is part of that task: the callbacks of
//! the outer computation do not fire for it (only callbacks attached to the
//! nested computation itself do). A callback that panics fails the
//! computation with an [`ErrorKind::Callback`]
//! error; the panic never escapes. With no callback attached, the executor
//! pays one branch per task.

use crate::value::{self, Value};
use crate::{Error, ErrorKind, Key};
use std::any::Any;
use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Hooks called by the executor. Every method has an empty default.
///
/// ```
/// use rdask::prelude::*;
/// use rdask::callbacks::Callback;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
///
/// #[derive(Default)]
/// struct Count(AtomicUsize);
/// impl Callback for Count {
///     fn posttask(&self, _key: &rdask::Key, _worker: usize, _took: std::time::Duration, _ok: bool) {
///         self.0.fetch_add(1, Ordering::Relaxed);
///     }
/// }
///
/// let count = Arc::new(Count::default());
/// let d = rdask::value(1_i32) + 1;
/// let out = rdask::Compute::new(std::slice::from_ref(&d)).callback(count.clone()).run()?;
/// assert_eq!(out, vec![2]);
/// assert_eq!(count.0.load(Ordering::Relaxed), 2); // the value and the add
/// # Ok::<(), rdask::Error>(())
/// ```
pub trait Callback: Send + Sync {
    /// The graph about to run (dask's `start_state`), just before `start`:
    /// every task's key, function and inputs.
    fn start_state(&self, graph: &TaskGraph<'_>) {
        let _ = graph;
    }
    /// The computation is about to run `tasks` tasks.
    fn start(&self, tasks: usize) {
        let _ = tasks;
    }
    /// Task `key` starts on `worker` (0 on the Sync scheduler; the pool's
    /// thread index on Threads).
    fn pretask(&self, key: &Key, worker: usize) {
        let _ = (key, worker);
    }
    /// Task `key` ended on `worker` after `elapsed`; `ok` is false when it
    /// returned an error or panicked.
    fn posttask(&self, key: &Key, worker: usize, elapsed: Duration, ok: bool) {
        let _ = (key, worker, elapsed, ok);
    }
    /// Task `key` made `result` (dask's `posttask` with its `result`), just
    /// before its `posttask` and before any consumer takes it. Called where
    /// the value is made in this process or comes back to it (Sync,
    /// Threads, Processes); a task that runs on a Dask cluster keeps its
    /// value there, and only its `posttask` is called.
    fn result(&self, key: &Key, result: &TaskResult<'_>) {
        let _ = (key, result);
    }
    /// The computation is over; `ok` is false when it failed.
    fn finish(&self, ok: bool) {
        let _ = ok;
    }
    /// `#[delayed(cache)]` task `key` was found in the attached cache
    /// (`hit`: it did not run) or not (it runs, and its result is stored).
    fn cached(&self, key: &Key, hit: bool) {
        let _ = (key, hit);
    }
}

/// The callbacks of one computation.
pub(crate) type CallbackList = Vec<Arc<dyn Callback>>;

static GLOBAL: RwLock<Vec<(u64, Arc<dyn Callback>)>> = RwLock::new(Vec::new());

thread_local! {
    static SCOPED: RefCell<CallbackList> = const { RefCell::new(Vec::new()) };
    /// Set while a task runs on this thread: its nested computations are
    /// part of it, so outer callbacks stay quiet.
    static IN_TASK: Cell<bool> = const { Cell::new(false) };
}

/// Keeps a callback registered for every computation; dropping it
/// unregisters the callback.
#[must_use = "the callback is unregistered when this is dropped"]
pub struct Registration(u64);

impl Drop for Registration {
    fn drop(&mut self) {
        let mut all = GLOBAL.write().unwrap_or_else(|e| e.into_inner());
        all.retain(|(id, _)| *id != self.0);
    }
}

/// Registers `cb` for every computation in the process (dask's
/// `cb.register()`), until the returned guard is dropped.
///
/// ```
/// use rdask::Callback;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
///
/// #[derive(Default)]
/// struct Starts(AtomicUsize);
/// impl Callback for Starts {
///     fn start(&self, _tasks: usize) {
///         self.0.fetch_add(1, Ordering::Relaxed);
///     }
/// }
///
/// let starts = Arc::new(Starts::default());
/// let guard = rdask::callbacks::register(starts.clone());
/// let d = rdask::value(1_i64) + 1;
/// rdask::compute(&[d.clone(), d + 1])?;
/// drop(guard);
/// assert!(starts.0.load(Ordering::Relaxed) >= 1);
/// # Ok::<(), rdask::Error>(())
/// ```
pub fn register(cb: Arc<dyn Callback>) -> Registration {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    GLOBAL
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .push((id, cb));
    Registration(id)
}

/// Runs `f` with `cbs` attached to every computation it starts on this
/// thread (dask's `with ProgressBar():`).
///
/// ```
/// use rdask::prelude::*;
/// use std::sync::Arc;
/// let prof = Arc::new(rdask::Profiler::new());
/// let d = rdask::value(2_i64) * 21;
/// let x = rdask::with_callbacks(vec![prof.clone()], || d.compute())?;
/// assert_eq!(x, 42);
/// # Ok::<(), rdask::Error>(())
/// ```
pub fn with_callbacks<R>(cbs: Vec<Arc<dyn Callback>>, f: impl FnOnce() -> R) -> R {
    let n = cbs.len();
    SCOPED.with(|s| s.borrow_mut().extend(cbs));
    struct Pop(usize);
    impl Drop for Pop {
        fn drop(&mut self) {
            SCOPED.with(|s| {
                let mut s = s.borrow_mut();
                let keep = s.len().saturating_sub(self.0);
                s.truncate(keep);
            });
        }
    }
    let _pop = Pop(n);
    f()
}

/// The callbacks for a computation starting here: `extra` (attached to it),
/// plus the scoped and registered ones unless we are inside a task.
pub(crate) fn active(extra: &[Arc<dyn Callback>]) -> CallbackList {
    let mut all: CallbackList = extra.to_vec();
    if IN_TASK.with(Cell::get) {
        return all;
    }
    SCOPED.with(|s| all.extend(s.borrow().iter().cloned()));
    let global = GLOBAL.read().unwrap_or_else(|e| e.into_inner());
    all.extend(global.iter().map(|(_, cb)| cb.clone()));
    all
}

/// Marks this thread as running a task while alive.
pub(crate) struct InTask(bool);

impl InTask {
    pub(crate) fn enter() -> InTask {
        InTask(IN_TASK.with(|t| t.replace(true)))
    }
}

impl Drop for InTask {
    fn drop(&mut self) {
        IN_TASK.with(|t| t.set(self.0));
    }
}

/// Calls `f` on every callback, turning the first panic into an error.
pub(crate) fn each(
    cbs: &[Arc<dyn Callback>],
    what: &str,
    f: impl Fn(&dyn Callback),
) -> Result<(), Error> {
    let mut first = None;
    for cb in cbs {
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| f(&**cb))) {
            if first.is_none() {
                let msg = crate::error::panic_message(&*payload);
                first = Some(Error::new(
                    ErrorKind::Callback,
                    None,
                    format!("a callback panicked in `{what}`: {msg}"),
                ));
            }
        }
    }
    first.map_or(Ok(()), Err)
}

/// The graph a computation is about to run, as [`Callback::start_state`]
/// sees it: tasks numbered `0..len()` in an order where every task comes
/// after its inputs.
///
/// ```
/// use rdask::prelude::*;
/// use rdask::callbacks::{Callback, TaskGraph};
/// use std::sync::{Arc, Mutex};
///
/// #[delayed]
/// fn add(a: i64, b: i64) -> i64 { a + b }
///
/// #[derive(Default)]
/// struct Shape(Mutex<Vec<(String, usize)>>);
/// impl Callback for Shape {
///     fn start_state(&self, graph: &TaskGraph<'_>) {
///         let mut seen = self.0.lock().unwrap();
///         for t in 0..graph.len() {
///             seen.push((graph.name(t).to_string(), graph.dependencies(t).len()));
///         }
///     }
/// }
///
/// let shape = Arc::new(Shape::default());
/// let x = add(rdask::value(1), 2);
/// rdask::Compute::new(&[x]).callback(shape.clone()).run()?;
/// assert_eq!(*shape.0.lock().unwrap(), [("value".to_string(), 0), ("add".to_string(), 1)]);
/// # Ok::<(), rdask::Error>(())
/// ```
pub struct TaskGraph<'a>(&'a dyn GraphSource);

/// What a planned graph tells a [`TaskGraph`] (the planner implements it).
pub(crate) trait GraphSource {
    fn len(&self) -> usize;
    fn key(&self, task: usize) -> &Key;
    fn name(&self, task: usize) -> &str;
    /// Task `task`'s producers, one per input edge (repeats possible).
    fn inputs(&self, task: usize, each: &mut dyn FnMut(usize));
    fn outputs(&self) -> Vec<usize>;
}

impl<'a> TaskGraph<'a> {
    pub(crate) fn new(source: &'a dyn GraphSource) -> TaskGraph<'a> {
        TaskGraph(source)
    }

    /// The number of tasks.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there is no task.
    pub fn is_empty(&self) -> bool {
        self.0.len() == 0
    }

    /// Task `task`'s key (panics when `task >= len()`).
    pub fn key(&self, task: usize) -> &Key {
        self.0.key(task)
    }

    /// Task `task`'s function name (`value` for a literal, `alias` for a
    /// raw graph's alias).
    pub fn name(&self, task: usize) -> &str {
        self.0.name(task)
    }

    /// The tasks whose values task `task` takes, each once, ascending.
    pub fn dependencies(&self, task: usize) -> Vec<usize> {
        let mut deps = Vec::new();
        self.0.inputs(task, &mut |p| deps.push(p));
        deps.sort_unstable();
        deps.dedup();
        deps
    }

    /// The tasks whose values the computation gives back, ascending.
    pub fn outputs(&self) -> Vec<usize> {
        let mut out = self.0.outputs();
        out.sort_unstable();
        out.dedup();
        out
    }
}

impl std::fmt::Debug for TaskGraph<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskGraph")
            .field("tasks", &self.len())
            .finish()
    }
}

/// A task's value as [`Callback::result`] sees it: its type, its size, and
/// the value itself when asked for as its type.
///
/// ```
/// use rdask::prelude::*;
/// use rdask::callbacks::{Callback, TaskResult};
/// use std::sync::Mutex;
///
/// #[delayed]
/// fn words(s: String) -> Vec<String> { s.split(' ').map(String::from).collect() }
///
/// /// Notes every `Vec<String>` result and its size.
/// #[derive(Default)]
/// struct Show(Mutex<Vec<(String, usize)>>);
/// impl Callback for Show {
///     fn result(&self, key: &rdask::Key, result: &TaskResult<'_>) {
///         if let Some(v) = result.get::<Vec<String>>() {
///             // Its bytes: the Vec, its buffer (capacity), the strings'.
///             assert_eq!(result.nbytes(), rdask::SizeOf::size_of(v));
///             self.0.lock().unwrap().push((key.prefix().to_string(), v.len()));
///         }
///     }
/// }
///
/// let show = std::sync::Arc::new(Show::default());
/// rdask::Compute::new(&[words("a bc".to_string())]).callback(show.clone()).run()?;
/// assert_eq!(*show.0.lock().unwrap(), [("words".to_string(), 2)]);
/// # Ok::<(), rdask::Error>(())
/// ```
pub struct TaskResult<'a>(&'a Value);

impl<'a> TaskResult<'a> {
    pub(crate) fn new(value: &'a Value) -> TaskResult<'a> {
        TaskResult(value)
    }

    /// The value as a `T`, if it is one (a worker process's value is
    /// decoded here, once; consumers in this process reuse that).
    pub fn get<T: Any>(&self) -> Option<&'a T> {
        value::downcast_ref::<T>(self.0)
    }

    /// The value's type, as `std::any::type_name` writes it.
    pub fn type_name(&self) -> &'static str {
        crate::sizeof::type_name(self.0)
    }

    /// The bytes the value holds (dask's `sizeof`): its own size plus what
    /// it owns on the heap, for the types [`SizeOf`](crate::SizeOf) knows
    /// and those given to [`register_size`](crate::register_size); the
    /// encoded length for a worker process's value not yet decoded; the
    /// type's own size for any other type.
    pub fn nbytes(&self) -> usize {
        crate::sizeof::nbytes(self.0)
    }
}

impl std::fmt::Debug for TaskResult<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskResult")
            .field("type", &self.type_name())
            .field("nbytes", &self.nbytes())
            .finish()
    }
}
