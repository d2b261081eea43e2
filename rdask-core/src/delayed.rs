//! `Delayed<T>`: a typed, lazy handle on one task of a graph.

use crate::cache::Cache;
use crate::callbacks::Callback;
use crate::control::CancelToken;
use crate::error::{BoxError, Result};
use crate::exec::take_output;
use crate::graph::Graph;
use crate::key::Key;
use crate::node::{Arg, Iter, NodeRef, Op};
use crate::schedule::{current_scheduler, Scheduler};
use crate::task::{dyn_run, Args};
use crate::value::{clone_fn_of, CloneFn, Value};
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};

/// A value that will be computed: the result of a `#[delayed]` call,
/// `delay!`, [`value`], `map`, or an operator on other `Delayed`s.
///
/// Cloning is cheap (one reference count); clones are the same task, so
/// passing one `Delayed` to several calls shares that intermediate.
///
/// ```
/// use rdask::prelude::*;
/// let a = rdask::value(20_i32);
/// let b = (&a + 1).map(|x: i32| x * 2);
/// assert_eq!(b.compute()?, 42);
/// # Ok::<(), rdask::Error>(())
/// ```
#[must_use = "a Delayed runs nothing until it is computed"]
pub struct Delayed<T> {
    pub(crate) node: NodeRef,
    _type: PhantomData<fn() -> T>,
}

impl<T> Clone for Delayed<T> {
    fn clone(&self) -> Self {
        Delayed::from_node(self.node.clone())
    }
}

impl<T> std::fmt::Debug for Delayed<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Delayed<{}>({})",
            std::any::type_name::<T>(),
            self.node.key
        )
    }
}

/// Wraps a plain value as a `Delayed` (dask's `delayed(obj)`). It is copied
/// each time a computation uses it, hence `Clone`.
///
/// ```
/// let d = rdask::value(vec![1, 2, 3]);
/// assert_eq!(d.compute()?, vec![1, 2, 3]);
/// # Ok::<(), rdask::Error>(())
/// ```
pub fn value<T: Clone + Send + Sync + 'static>(x: T) -> Delayed<T> {
    Delayed::from_node(NodeRef::make(
        Key::unique(&"value"),
        Op::Const(Value::new(x)),
        [],
        Some(clone_fn_of::<T>()),
        false,
    ))
}

impl<T> Delayed<T> {
    pub(crate) fn from_node(node: NodeRef) -> Delayed<T> {
        Delayed {
            node,
            _type: PhantomData,
        }
    }

    /// A new task with a unique key of `prefix` that runs closure `run`
    /// (shown as `name`) on `args`: `map`, `delay!`, operators, `split`'s
    /// parts. The one way such a task is made. `clone` copies its value,
    /// when known.
    pub(crate) fn closure<F>(
        prefix: &'static &'static str,
        name: &'static str,
        args: impl IntoIterator<Item = Arg>,
        clone: Option<CloneFn>,
        run: F,
    ) -> Delayed<T>
    where
        F: Fn(&mut Args<'_>) -> std::result::Result<Value, BoxError> + Send + Sync + 'static,
    {
        let op = Op::Dyn(dyn_run(name, run));
        Delayed::from_node(NodeRef::make(
            Key::unique(prefix),
            op,
            Iter(args),
            clone,
            false,
        ))
    }

    /// [`closure`](Self::closure) under `key`, deduplicated by it (a part
    /// of a pure call is pure too).
    pub(crate) fn closure_keyed<F>(
        key: Key,
        name: &'static str,
        args: impl IntoIterator<Item = Arg>,
        run: F,
    ) -> Delayed<T>
    where
        F: Fn(&mut Args<'_>) -> std::result::Result<Value, BoxError> + Send + Sync + 'static,
    {
        let op = Op::Dyn(dyn_run(name, run));
        Delayed::from_node(NodeRef::make(key, op, Iter(args), None, true))
    }

    /// The value of `key` in a raw graph, as a `Delayed` that `#[delayed]`
    /// calls can take (dask's `Delayed(key, graph)`): one task, shown under
    /// `key`, that computes the key in (a copy of) the graph on the
    /// scheduler running it. The graph's own tasks are not merged with the
    /// calls around it.
    ///
    /// ```
    /// use rdask::prelude::*;
    ///
    /// fn inc(x: i64) -> i64 { x + 1 }
    /// #[delayed]
    /// fn double(x: i64) -> i64 { x * 2 }
    ///
    /// let g = graph! { "a" => 1_i64, "b" => (inc, "a") };
    /// let b = Delayed::<i64>::from_graph(&g, "b");
    /// assert_eq!(b.key().to_string(), "b");
    /// assert_eq!(double(b).compute()?, 4);
    /// # Ok::<(), rdask::Error>(())
    /// ```
    pub fn from_graph(graph: &crate::graph::Graph, key: impl Into<Key>) -> Delayed<T>
    where
        T: Send + Sync + 'static,
    {
        let key = key.into();
        let (graph, wanted) = (graph.clone(), key.clone());
        let op = Op::Dyn(dyn_run("from_graph", move |_args| {
            let s = crate::schedule::current_scheduler()
                .map_err(|e| Box::new(crate::task::EngineError(e)) as BoxError)?;
            let v = crate::graph::get_with::<T>(&graph, wanted.clone(), &s)
                .map_err(|e| Box::new(crate::task::EngineError(e)) as BoxError)?;
            Ok(Value::new(v))
        }));
        Delayed::from_node(NodeRef::make(key, op, [], None, false))
    }

    /// This task's key.
    pub fn key(&self) -> &Key {
        &self.node.key
    }

    /// The graph needed to compute this value: every task it reaches, by key
    /// (dask's `d.dask`). `rdask::get::<T>(&d.graph(), d.key().clone())`
    /// computes it.
    pub fn graph(&self) -> Graph {
        Graph::from_nodes(std::slice::from_ref(&self.node))
    }

    /// A Graphviz (DOT) description of [`graph`](Self::graph).
    pub fn to_dot(&self) -> String {
        self.graph().to_dot()
    }
}

impl<T: Send + Sync + 'static> Delayed<T> {
    /// Computes the value on the default scheduler.
    pub fn compute(&self) -> Result<T> {
        self.compute_with(&current_scheduler()?)
    }

    /// Computes the value on `scheduler`.
    pub fn compute_with(&self, scheduler: &Scheduler) -> Result<T> {
        let roots = std::slice::from_ref(&self.node);
        let mut v = scheduler.compute_as::<T>(roots, None, &[])?;
        Ok(v.pop().expect("one output"))
    }

    /// A lazy `f(value)`.
    pub fn map<U, F>(&self, f: F) -> Delayed<U>
    where
        U: Send + Sync + 'static,
        F: Fn(T) -> U + Send + Sync + 'static,
    {
        Delayed::closure(&"map", "map", [self.arg(false, None)], None, move |args| {
            Ok(Value::new(f(args.take::<T>(0)?)))
        })
    }

    /// This task under `key` instead of the key rdask made for it (dask's
    /// `dask_key_name`): the name progress bars, profiles, pictures, errors
    /// and [`graph`](Self::graph) show. Keys you choose are yours to keep
    /// apart: two tasks of one name are still two tasks, but a `Graph` of
    /// both holds one. A handle shared with other `Delayed`s (or a graph)
    /// is named through a new task that passes the value on.
    ///
    /// ```
    /// use rdask::prelude::*;
    ///
    /// #[delayed]
    /// fn load(path: String) -> usize {
    ///     path.len()
    /// }
    ///
    /// let a = load("a.csv".to_string()).named("load-a");
    /// assert_eq!(a.key().to_string(), "load-a");
    /// assert_eq!(a.compute()?, 5);
    /// # Ok::<(), rdask::Error>(())
    /// ```
    pub fn named(mut self, key: impl Into<Key>) -> Delayed<T> {
        let key = key.into();
        if let Some(node) = NodeRef::get_mut(&mut self.node) {
            node.key = key;
            return self;
        }
        let run = dyn_run("named", |args| args.take_value());
        let arg = self.arg(false, None);
        Delayed::from_node(NodeRef::make(key, Op::Dyn(run), [arg], None, false))
    }

    /// Computes the value now and returns a `Delayed` holding it under the
    /// same key, so later computations reuse it instead of recomputing.
    pub fn persist(&self) -> Result<Delayed<T>>
    where
        T: Clone,
    {
        Ok(self.persisted(self.compute()?))
    }

    /// A `Delayed` holding `v`, this task's computed value, under its key.
    pub(crate) fn persisted(&self, v: T) -> Delayed<T>
    where
        T: Clone,
    {
        Delayed::from_node(NodeRef::make(
            self.node.key.clone(),
            Op::Const(Value::new(v)),
            [],
            Some(clone_fn_of::<T>()),
            true,
        ))
    }

    /// This value as an argument of another task.
    pub(crate) fn arg(&self, by_ref: bool, clone: Option<CloneFn>) -> Arg {
        Arg::node(self.node.clone(), by_ref, clone)
    }
}

/// One computation, configured: which outputs, which scheduler, which
/// callbacks.
///
/// ```
/// use rdask::prelude::*;
/// let xs: Vec<_> = (1..=3).map(|i| rdask::value(i) * 2).collect();
/// let out = rdask::Compute::new(&xs).scheduler(Scheduler::Sync).run()?;
/// assert_eq!(out, vec![2, 4, 6]);
/// # Ok::<(), rdask::Error>(())
/// ```
pub struct Compute<'a, T> {
    outputs: &'a [Delayed<T>],
    scheduler: Option<Scheduler>,
    callbacks: Vec<Arc<dyn Callback>>,
    token: Option<CancelToken>,
    cache: Option<Cache>,
}

impl<'a, T: Send + Sync + 'static> Compute<'a, T> {
    /// A computation of `outputs` on the default scheduler.
    pub fn new(outputs: &'a [Delayed<T>]) -> Self {
        Compute {
            outputs,
            scheduler: None,
            callbacks: Vec::new(),
            token: None,
            cache: None,
        }
    }

    /// Keeps the results of its `#[delayed(cache)]` tasks in `cache`, and
    /// runs none whose result is there (instead of a `with_cache` scope's
    /// or `RDASK_CACHE`'s cache).
    pub fn cache(mut self, cache: &Cache) -> Self {
        self.cache = Some(cache.clone());
        self
    }

    /// Runs on `scheduler` instead of the default.
    pub fn scheduler(mut self, scheduler: Scheduler) -> Self {
        self.scheduler = Some(scheduler);
        self
    }

    /// Attaches a callback to this computation only.
    pub fn callback(mut self, cb: Arc<dyn Callback>) -> Self {
        self.callbacks.push(cb);
        self
    }

    /// Runs it under `token`: once the token is cancelled no task starts,
    /// and `run` returns [`ErrorKind::Cancelled`](crate::ErrorKind::Cancelled)
    /// at once, while tasks already running finish on their own (their
    /// results are dropped; on processes their workers are killed).
    pub fn cancel_token(mut self, token: CancelToken) -> Self {
        self.token = Some(token);
        self
    }

    /// Runs it keeping going after failures: a failure fails only the
    /// outputs that depend on it, and every other output is computed.
    /// Result `i` is output `i`'s (dask has no such mode). A failure of
    /// the whole computation (a cancel, a callback's panic, a scheduler
    /// that cannot start) is every output's error.
    ///
    /// ```
    /// use rdask::prelude::*;
    ///
    /// #[delayed]
    /// fn check(x: u64) -> Result<u64, String> {
    ///     if x == 2 { Err("two".into()) } else { Ok(x) }
    /// }
    ///
    /// let outs: Vec<_> = (0..4).map(|i| check(i).map(|v| v * 10)).collect();
    /// let each = rdask::Compute::new(&outs).run_each();
    /// assert_eq!(each[1].as_ref().ok(), Some(&10));
    /// assert_eq!(each[2].as_ref().unwrap_err().kind(), rdask::ErrorKind::Task);
    /// assert_eq!(each[3].as_ref().ok(), Some(&30));
    /// ```
    pub fn run_each(self) -> Vec<Result<T>> {
        let n = self.outputs.len();
        let each = match self.scheduler {
            Some(s) => Ok(s),
            None => current_scheduler(),
        }
        .and_then(|s| {
            s.compute_each::<T>(
                &roots_of(self.outputs),
                None,
                &self.callbacks,
                self.token,
                self.cache,
            )
        });
        crate::graph::spread(each, n)
    }

    /// Runs it: every distinct task once, outputs in order.
    pub fn run(self) -> Result<Vec<T>> {
        let scheduler = match self.scheduler {
            Some(s) => s,
            None => current_scheduler()?,
        };
        scheduler.compute_as_under::<T>(
            &roots_of(self.outputs),
            None,
            &self.callbacks,
            self.token,
            self.cache,
        )
    }
}

/// Computes several `Delayed`s of one type in one merged graph.
///
/// ```
/// let xs: Vec<_> = (0..4).map(|i| rdask::value(i) * 10).collect();
/// assert_eq!(rdask::compute(&xs)?, vec![0, 10, 20, 30]);
/// # Ok::<(), rdask::Error>(())
/// ```
pub fn compute<T: Send + Sync + 'static>(outputs: &[Delayed<T>]) -> Result<Vec<T>> {
    compute_with(outputs, &current_scheduler()?)
}

/// [`compute`] on a given scheduler.
pub fn compute_with<T: Send + Sync + 'static>(
    outputs: &[Delayed<T>],
    scheduler: &Scheduler,
) -> Result<Vec<T>> {
    scheduler.compute_as::<T>(&roots_of(outputs), None, &[])
}

/// The nodes of `outputs`, as the roots of a computation.
fn roots_of<T>(outputs: &[Delayed<T>]) -> Vec<NodeRef> {
    outputs.iter().map(|d| d.node.clone()).collect()
}

/// What `compute!` takes: a `Delayed`, or a collection of them (dask's
/// `traverse`): `Vec`, arrays and slices, `Option`, `HashMap`, `BTreeMap` and
/// tuples (up to 12), nested as deep as you like. Each is computed in one merged graph
/// with the others and comes back in the same shape, holding the values.
///
/// ```
/// use rdask::prelude::*;
/// use std::collections::HashMap;
/// let x = rdask::value(1_i64);
/// let xs: Vec<_> = (0..3_i64).map(|i| &x + i).collect();
/// let named: HashMap<&str, Delayed<i64>> = [("ten", &x * 10)].into();
/// let (one, list, map) = compute!(x, xs, named)?;
/// assert_eq!((one, list, map["ten"]), (1, vec![1, 2, 3], 10));
/// # Ok::<(), rdask::Error>(())
/// ```
#[diagnostic::on_unimplemented(
    message = "compute!(..) takes `Delayed` values or collections of them, not `{Self}`",
    label = "not a `Delayed` or a collection of `Delayed`s",
    note = "a `Vec`, array, slice, `Option`, `HashMap`, `BTreeMap` or tuple of `Delayed`s \
            works; a plain value is computed already"
)]
pub trait Computable {
    /// The same shape, holding the computed values.
    type Output;
    /// Appends the nodes to compute, in order.
    #[doc(hidden)]
    fn roots(&self, out: &mut Vec<NodeRef>);
    /// The output from the computed values, taken in the same order.
    #[doc(hidden)]
    fn rebuild(&self, values: &mut std::vec::IntoIter<Value>) -> Result<Self::Output>;
}

impl<T: Send + Sync + 'static> Computable for Delayed<T> {
    type Output = T;
    fn roots(&self, out: &mut Vec<NodeRef>) {
        out.push(self.node.clone());
    }
    fn rebuild(&self, values: &mut std::vec::IntoIter<Value>) -> Result<T> {
        take_output::<T>(values.next(), &self.node.key)
    }
}

impl<C: Computable + ?Sized> Computable for &C {
    type Output = C::Output;
    fn roots(&self, out: &mut Vec<NodeRef>) {
        (**self).roots(out)
    }
    fn rebuild(&self, values: &mut std::vec::IntoIter<Value>) -> Result<C::Output> {
        (**self).rebuild(values)
    }
}

impl<C: Computable> Computable for [C] {
    type Output = Vec<C::Output>;
    fn roots(&self, out: &mut Vec<NodeRef>) {
        self.iter().for_each(|c| c.roots(out))
    }
    fn rebuild(&self, values: &mut std::vec::IntoIter<Value>) -> Result<Self::Output> {
        self.iter().map(|c| c.rebuild(values)).collect()
    }
}

impl<C: Computable> Computable for Vec<C> {
    type Output = Vec<C::Output>;
    fn roots(&self, out: &mut Vec<NodeRef>) {
        self[..].roots(out)
    }
    fn rebuild(&self, values: &mut std::vec::IntoIter<Value>) -> Result<Self::Output> {
        self[..].rebuild(values)
    }
}

impl<C: Computable, const N: usize> Computable for [C; N] {
    type Output = Vec<C::Output>;
    fn roots(&self, out: &mut Vec<NodeRef>) {
        self[..].roots(out)
    }
    fn rebuild(&self, values: &mut std::vec::IntoIter<Value>) -> Result<Self::Output> {
        self[..].rebuild(values)
    }
}

impl<C: Computable> Computable for Option<C> {
    type Output = Option<C::Output>;
    fn roots(&self, out: &mut Vec<NodeRef>) {
        if let Some(c) = self {
            c.roots(out)
        }
    }
    fn rebuild(&self, values: &mut std::vec::IntoIter<Value>) -> Result<Self::Output> {
        self.as_ref().map(|c| c.rebuild(values)).transpose()
    }
}

// A map is walked twice in its own order, which does not change between
// the two walks (nothing mutates it).
impl<K, C, S> Computable for std::collections::HashMap<K, C, S>
where
    K: Clone + Eq + std::hash::Hash,
    C: Computable,
    S: std::hash::BuildHasher + Clone,
{
    type Output = std::collections::HashMap<K, C::Output, S>;
    fn roots(&self, out: &mut Vec<NodeRef>) {
        self.values().for_each(|c| c.roots(out))
    }
    fn rebuild(&self, values: &mut std::vec::IntoIter<Value>) -> Result<Self::Output> {
        let mut map =
            std::collections::HashMap::with_capacity_and_hasher(self.len(), self.hasher().clone());
        for (k, c) in self {
            map.insert(k.clone(), c.rebuild(values)?);
        }
        Ok(map)
    }
}

impl<K: Clone + Ord, C: Computable> Computable for std::collections::BTreeMap<K, C> {
    type Output = std::collections::BTreeMap<K, C::Output>;
    fn roots(&self, out: &mut Vec<NodeRef>) {
        self.values().for_each(|c| c.roots(out))
    }
    fn rebuild(&self, values: &mut std::vec::IntoIter<Value>) -> Result<Self::Output> {
        self.iter()
            .map(|(k, c)| Ok((k.clone(), c.rebuild(values)?)))
            .collect()
    }
}

macro_rules! computable_tuples {
    ($(($($T:ident $i:tt),+))+) => {$(
        impl<$($T: Computable),+> Computable for ($($T,)+) {
            type Output = ($($T::Output,)+);
            fn roots(&self, out: &mut Vec<NodeRef>) {
                $(self.$i.roots(out);)+
            }
            fn rebuild(&self, values: &mut std::vec::IntoIter<Value>) -> Result<Self::Output> {
                Ok(($(self.$i.rebuild(values)?,)+))
            }
        }
    )+};
}

// Up to 12: `compute!`'s arguments are such a tuple.
computable_tuples! {
    (A 0)
    (A 0, B 1)
    (A 0, B 1, C 2)
    (A 0, B 1, C 2, D 3)
    (A 0, B 1, C 2, D 3, E 4)
    (A 0, B 1, C 2, D 3, E 4, F 5)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11)
}

/// Computes every `Delayed` in `c` in one merged graph on the default
/// scheduler, and gives `c`'s shape back holding the values: `compute!`.
pub(crate) fn compute_all<C: Computable + ?Sized>(c: &C) -> Result<C::Output> {
    let mut roots = Vec::new();
    c.roots(&mut roots);
    let values = current_scheduler()?.compute(&roots, None, &[])?;
    c.rebuild(&mut values.into_iter())
}

/// Tuples of `&Delayed`s persisted together by `persist!`.
pub trait PersistTuple {
    /// The tuple of persisted `Delayed`s.
    type Output;
    /// Computes every element in one merged graph and wraps each value.
    fn persist_tuple(self) -> Result<Self::Output>;
}

macro_rules! persist_tuples {
    ($(($($T:ident $i:tt),+))+) => {$(
        impl<$($T: Clone + Send + Sync + 'static),+> PersistTuple for ($(&Delayed<$T>,)+) {
            type Output = ($(Delayed<$T>,)+);
            fn persist_tuple(self) -> Result<Self::Output> {
                let values = compute_all(&($(self.$i,)+))?;
                Ok(($(self.$i.persisted(values.$i),)+))
            }
        }
    )+};
}

persist_tuples! {
    (A 0)
    (A 0, B 1)
    (A 0, B 1, C 2)
    (A 0, B 1, C 2, D 3)
    (A 0, B 1, C 2, D 3, E 4)
    (A 0, B 1, C 2, D 3, E 4, F 5)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7)
}

/// Splits a `Delayed` tuple into one `Delayed` per element (dask's `nout`),
/// without copying the elements. Tuples of 2 to 6 elements.
///
/// ```
/// use rdask::prelude::*;
///
/// #[delayed]
/// fn min_max(xs: Vec<i64>) -> (i64, i64) {
///     (*xs.iter().min().unwrap(), *xs.iter().max().unwrap())
/// }
///
/// let (lo, hi) = min_max(vec![3, 1, 4]).split();
/// let width = hi - lo;
/// assert_eq!(width.compute()?, 3);
/// # Ok::<(), rdask::Error>(())
/// ```
pub trait Split {
    /// `(Delayed<A>, Delayed<B>, ...)`.
    type Parts;
    /// The elements, each computable on its own.
    fn split(&self) -> Self::Parts;
}

/// A tuple's elements, each taken out once by its own part task.
struct Cells<T>(T);

macro_rules! splits {
    ($(($($T:ident $i:tt),+))+) => {$(
        impl<$($T: Send + Sync + 'static),+> Split for Delayed<($($T,)+)> {
            type Parts = ($(Delayed<$T>,)+);
            fn split(&self) -> Self::Parts {
                let into_cells = |t: ($($T,)+)| Cells(($(Mutex::new(Some(t.$i)),)+));
                // The parts of a pure call are pure (keys from its hash), so
                // that what uses them can be found in a cache.
                let pure = self.key().pure_hash();
                let cells: Delayed<Cells<($(Mutex<Option<$T>>,)+)>> = match pure {
                    Some(h) => Delayed::closure_keyed(
                        Key::hashed(&"cells", part_hash(h, u64::MAX)),
                        "map",
                        [self.arg(false, None)],
                        move |args| Ok(Value::new(into_cells(args.take(0)?))),
                    ),
                    None => self.map(into_cells),
                };
                ($(part(&cells, pure.map(|h| part_hash(h, $i)), concat!("getitem-", stringify!($i)), |c| {
                    c.0.$i.lock().unwrap_or_else(|e| e.into_inner()).take()
                }),)+)
            }
        }
    )+};
}

/// The hash of part `i` of a pure call hashed `h`.
fn part_hash(h: u64, i: u64) -> u64 {
    (h ^ i.wrapping_mul(0x9e37_79b9_7f4a_7c15)).wrapping_mul(0x0100_0000_01b3) ^ 0x5917
}

fn part<C, T, F>(cells: &Delayed<C>, pure: Option<u64>, index: &'static str, take: F) -> Delayed<T>
where
    C: Send + Sync + 'static,
    T: Send + Sync + 'static,
    F: Fn(&C) -> Option<T> + Send + Sync + 'static,
{
    let run = move |args: &mut Args<'_>| {
        let v = take(args.get::<C>(0)?).ok_or("tuple element already taken")?;
        Ok(Value::new(v))
    };
    match pure {
        Some(h) => Delayed::closure_keyed(
            Key::hashed(&"getitem", h),
            index,
            [cells.arg(true, None)],
            run,
        ),
        None => Delayed::closure(&"getitem", index, [cells.arg(true, None)], None, run),
    }
}

splits! {
    (A 0, B 1)
    (A 0, B 1, C 2)
    (A 0, B 1, C 2, D 3)
    (A 0, B 1, C 2, D 3, E 4)
    (A 0, B 1, C 2, D 3, E 4, F 5)
}
