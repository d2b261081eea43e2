//! The executor: runs a [`Plan`] on any scheduler.
//!
//! One piece of state serves every scheduler; a scheduler only decides *which
//! ready task runs where*. The protocol, per task `t`:
//!
//! 1. gather: for each leaf argument, read the producer's value: share it
//!    (`&T` parameter) or take it (by value). A by-value use reads, then
//!    decrements the producer's use count; the use that brings it to zero
//!    moves the value out of its slot, any other copies it.
//! 2. run the adapter under `catch_unwind`; an `Err` or a panic records the
//!    first error and sets `failed`, after which no task starts.
//! 3. release: drop the shared values, decrement their use counts (the last
//!    use frees the value), store the output, then notify dependents; a
//!    dependent whose wait count reaches zero is handed to `ready`.
//!
//! Value slots take no lock. A slot is written once, by its producer, before
//! any consumer is notified; consumers only read it; and it is emptied only
//! by the use that brings the use count to zero, after every other use has
//! finished reading (each use reads *before* it decrements). The counters'
//! acquire/release orderings carry those happens-before edges. No pool thread
//! ever waits for a dependency: a task only starts once its inputs are there.

use crate::callbacks::{each, Callback, InTask};
use crate::error::BoxError;
use crate::node::{Args, EngineError, FnInfo, MaybeKey, Node, Op, Src};
use crate::plan::{Plan, NONE};
use crate::process::remote::RemoteFns;
use crate::process::{count_local, remote_of, run_remote, Pool};
use crate::schedule::{CurrentGuard, Scheduler};
use crate::value::{clone_registered, CloneFn, DynList, Encoded, ListFn, Value, LIST_DEPTH};
use crate::{Error, ErrorKind, Key};
use smallvec::SmallVec;
use std::cell::UnsafeCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Per task: its counters and its value, side by side in one cache line.
/// The plan sets the counters as it numbers the tasks.
pub(crate) struct TaskState {
    /// Until the task starts: the notifications it still needs. Once it has
    /// run (the count is zero by then, and nobody notifies it again): the
    /// by-value uses copying its value right now, which the last use waits
    /// for, then moves the value instead of copying it too. One word for
    /// both keeps the state at 32 bytes, two to a cache line.
    pub(crate) waits: AtomicU32,
    /// Uses of the value not yet done (edges and outputs).
    pub(crate) uses: AtomicU32,
    /// The value; see the module docs for who may touch it when.
    slot: UnsafeCell<Option<Value>>,
}

impl TaskState {
    /// The uses copying the value (see `waits`).
    fn copying(&self) -> &AtomicU32 {
        &self.waits
    }

    /// A task waiting for `waits` notifications, its value not yet used.
    pub(crate) fn new(waits: u32) -> TaskState {
        TaskState {
            waits: AtomicU32::new(waits),
            uses: AtomicU32::new(0),
            slot: UnsafeCell::new(None),
        }
    }
}

// SAFETY: `slot` is only accessed under the protocol in the module docs: one
// write before any reader is notified, shared reads, and one take after
// every reader is done, ordered by the atomic counters.
unsafe impl Sync for TaskState {}

pub(crate) struct Exec<'p> {
    plan: &'p Plan<'p>,
    scheduler: &'p Scheduler,
    /// Worker processes, on the processes scheduler.
    remote: Option<Arc<Pool>>,
    callbacks: &'p [Arc<dyn Callback>],
    /// The plan's task states (a plan runs once).
    tasks: &'p [TaskState],
    failure: Failure,
}

/// A computation's first error, and whether there is one (read before
/// every task starts, so an atomic beside the lock).
#[derive(Default)]
pub(crate) struct Failure {
    failed: AtomicBool,
    error: Mutex<Option<Error>>,
}

impl Failure {
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

/// Marks this thread as running tasks of a computation on `scheduler` (the
/// scheduler a nested `compute` uses, and that its callbacks stay quiet)
/// until dropped. Set once per scheduling loop, not per task: the two
/// thread-locals cost ~25 instructions a task.
pub(crate) fn running(scheduler: &Scheduler) -> (CurrentGuard, InTask) {
    (CurrentGuard::set(scheduler), InTask::enter())
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

impl<'p> Exec<'p> {
    pub fn new(
        plan: &'p Plan<'p>,
        scheduler: &'p Scheduler,
        callbacks: &'p [Arc<dyn Callback>],
    ) -> Exec<'p> {
        let tasks = &plan.tasks[..];
        let remote = match scheduler {
            Scheduler::Processes(p) => Some(p.pool()),
            _ => None,
        };
        Exec {
            plan,
            scheduler,
            remote,
            callbacks,
            tasks,
            failure: Failure::default(),
        }
    }

    /// The tasks that can start at once, in priority order (first = first).
    pub fn initial(&self) -> &'p [u32] {
        debug_assert!(self
            .plan
            .initial
            .iter()
            .all(|&t| self.tasks[t as usize].waits.load(Ordering::Relaxed) == 0));
        &self.plan.initial
    }

    pub fn failed(&self) -> bool {
        self.failure.failed()
    }

    fn fail(&self, e: Error) {
        self.failure.fail(e)
    }

    fn notify(&self, t: u32, ready: &mut impl FnMut(u32)) {
        self.notify_n(t, 1, ready)
    }

    fn notify_n(&self, t: u32, n: u32, ready: &mut impl FnMut(u32)) {
        if self.tasks[t as usize].waits.fetch_sub(n, Ordering::AcqRel) == n {
            ready(t);
        }
    }

    /// A shared reference to `p`'s value.
    ///
    /// SAFETY: the caller is a use of `p` that has been notified that `p` is
    /// done and has not yet decremented `p`'s use count.
    unsafe fn read(&self, p: u32) -> Option<Value> {
        (*self.tasks[p as usize].slot.get()).clone()
    }

    /// Ends one use of `p`; the last one empties the slot and gets its value.
    fn end_use(&self, p: u32) -> Option<Value> {
        let state = &self.tasks[p as usize];
        if state.uses.fetch_sub(1, Ordering::AcqRel) == 1 {
            // SAFETY: every other use has read the slot and decremented
            // before us (AcqRel), so nobody else touches it any more.
            unsafe { (*state.slot.get()).take() }
        } else {
            None
        }
    }

    /// Runs task `t`, handing every task it makes ready to `ready`, in
    /// priority order.
    pub fn execute(&self, t: u32, ready: &mut impl FnMut(u32)) {
        let mut batch = Batch::default();
        self.execute_batched(t, &mut batch, ready);
        batch.flush(self, ready);
    }

    /// [`execute`](Self::execute), holding back notifications of a
    /// dependent shared with the tasks run just before in `batch` (see
    /// [`Batch`]). The caller flushes the batch before it stops.
    pub fn execute_batched(&self, t: u32, batch: &mut Batch, ready: &mut impl FnMut(u32)) {
        if self.failed() {
            batch.flush(self, ready);
            return;
        }
        let node = self.plan.nodes[t as usize];
        // Callbacks cost one branch per task when there are none.
        let timing = if self.callbacks.is_empty() {
            None
        } else {
            let worker = rayon::current_thread_index().unwrap_or(0);
            if let Err(e) = each(self.callbacks, "pretask", |c| c.pretask(&node.key, worker)) {
                self.fail(e);
                batch.flush(self, ready);
                return;
            }
            Some((worker, Instant::now()))
        };
        let result = match &node.op {
            Op::Const(v) => Ok(v.clone()),
            Op::Alias => {
                let mut vals = Vals::new();
                self.gather(t, &mut vals)
                    .and_then(|()| vals.pop().flatten().ok_or_else(|| self.internal(t)))
            }
            Op::Fn { run, info } => match self.remote_fns(info) {
                Some((pool, fns)) => self.call(t, |args| run_remote(pool, info, fns, args)),
                None => self.call_here(t, run),
            },
            // Closures always run in this process, on processes too.
            Op::Dyn(task) => self.call_here(t, &task.run),
        };
        if let Some((worker, started)) = timing {
            let (took, ok) = (started.elapsed(), result.is_ok());
            if let Err(e) = each(self.callbacks, "posttask", |c| {
                c.posttask(&node.key, worker, took, ok)
            }) {
                self.fail(e);
            }
        }
        // Borrowed inputs are released whether the task failed or not.
        self.release_borrows(t, ready);
        match result {
            Ok(v) => {
                // SAFETY: only this task writes its slot, once, before any
                // consumer is notified (below).
                unsafe { *self.tasks[t as usize].slot.get() = Some(v) };
                for d in self.plan.dependents_of(t as usize) {
                    batch.add(self, d, ready);
                }
            }
            Err(e) => self.fail(e),
        }
    }

    /// Marks this thread as running this computation's tasks (see
    /// [`running`]).
    fn enter(&self) -> (CurrentGuard, InTask) {
        running(self.scheduler)
    }

    fn call(
        &self,
        t: u32,
        run: impl FnOnce(&mut Args<'_>) -> Result<Value, BoxError>,
    ) -> Result<Value, Error> {
        let node = self.plan.nodes[t as usize];
        invoke(node, |vals| self.gather(t, vals), run)
    }

    fn internal(&self, t: u32) -> Error {
        missing_argument(&self.plan.nodes[t as usize].key)
    }

    /// Collects task `t`'s arguments into `vals` (empty, in place, so the
    /// inline array is never moved): owned where taken by value, shared
    /// where borrowed.
    /// Inlined into its one caller: ~28 instructions a task.
    #[inline(always)]
    fn gather(&self, t: u32, vals: &mut Vals) -> Result<(), Error> {
        let node = self.plan.nodes[t as usize];
        let mut e = self.plan.edge_start[t as usize] as usize;
        vals.reserve_exact(node.args.len());
        for arg in node.args.iter() {
            let v = match &arg.src {
                // A consumer that copies a constant itself gets it shared.
                Src::Const { value, .. } if arg.copies => value.clone(),
                // The common case first, without `source`'s dispatch.
                Src::Node(..) => self.leaf_inline(t, None, arg.by_ref, &mut e)?,
                src => self.source(t, src, arg.by_ref, &mut e, 0)?,
            };
            vals.push(Some(v));
        }
        Ok(())
    }

    /// The value of one source, inside `lists` lists of the argument;
    /// `by_ref`: shared rather than owned.
    fn source(
        &self,
        t: u32,
        src: &Src,
        by_ref: bool,
        e: &mut usize,
        lists: usize,
    ) -> Result<Value, Error> {
        match src {
            Src::Const { value, clone } => {
                constant(value, *clone, by_ref).ok_or_else(|| self.internal(t))
            }
            // No parameter takes a list nested deeper (and the recursion
            // stays shallow however deep the user nested it).
            Src::List { .. } if lists == LIST_DEPTH => {
                let key = &self.plan.nodes[t as usize].key;
                Err(Error::new(
                    ErrorKind::Type,
                    Some(key.clone()),
                    format!(
                        "task `{key}`: an argument nests lists more than {LIST_DEPTH} deep (raw \
                         graph lists become `Vec` parameters up to `Vec<Vec<Vec<Vec<T>>>>`)"
                    ),
                ))
            }
            Src::List { items, build: None } => {
                let mut elems = Vec::with_capacity(items.len());
                for item in items.iter() {
                    elems.push(self.source(t, item, false, e, lists + 1)?);
                }
                Ok(Value::new(DynList(elems)))
            }
            Src::List {
                items,
                build: Some(build),
            } => self.typed_list(
                t,
                *build,
                items.iter(),
                |x, e| self.source(t, x, false, e, lists + 1),
                e,
            ),
            Src::Nodes { items, build } => {
                // The common list (a `Vec<Delayed<X>>` argument) without the
                // general one's closures: each element straight from its slot.
                let mut taken = Taken {
                    exec: self,
                    t,
                    edges: *e..*e + items.len(),
                    failed: None,
                };
                let built = build(&mut taken);
                *e = taken.edges.end;
                self.built_list(t, built, taken.failed)
            }
            Src::Node(..) | Src::Key(_) => self.leaf(t, None, by_ref, e),
            Src::MaybeKey(m) => self.leaf(t, Some(m), by_ref, e),
        }
    }

    /// A typed list of `items`' values, each taken by `take` and put
    /// straight into the list; the first error stops the taking and is the
    /// list's.
    fn typed_list<I: ExactSizeIterator>(
        &self,
        t: u32,
        build: ListFn,
        items: I,
        mut take: impl FnMut(I::Item, &mut usize) -> Result<Value, Error>,
        e: &mut usize,
    ) -> Result<Value, Error> {
        let mut failed = None;
        let built = {
            let mut elems = Elems {
                items,
                take: |item| match take(item, e) {
                    Ok(v) => Some(v),
                    Err(x) => {
                        failed = Some(x);
                        None
                    }
                },
                done: false,
            };
            build(&mut elems)
        };
        self.built_list(t, built, failed)
    }

    /// Task `t`'s list argument as built, or the first element that could
    /// not be taken, or the wrong type found.
    fn built_list(
        &self,
        t: u32,
        built: Result<Value, &'static str>,
        failed: Option<Error>,
    ) -> Result<Value, Error> {
        if let Some(x) = failed {
            return Err(x);
        }
        let key = &self.plan.nodes[t as usize].key;
        built.map_err(|found| Error::type_mismatch(key, "a list", "elements of one type", found))
    }

    /// The value of the next leaf input (edge `*e`): a producer's value,
    /// shared (`by_ref`) or taken, or the literal of a key the graph lacks.
    /// Out of line for the list fast path and `source`, whose loops ran 8 %
    /// slower on `flat` with it inlined; `gather` inlines it.
    fn leaf(
        &self,
        t: u32,
        maybe: Option<&MaybeKey>,
        by_ref: bool,
        e: &mut usize,
    ) -> Result<Value, Error> {
        self.leaf_inline(t, maybe, by_ref, e)
    }

    /// [`leaf`](Self::leaf), inlined where most arguments are gathered: a
    /// call less per argument (~18 instructions).
    #[inline(always)]
    fn leaf_inline(
        &self,
        t: u32,
        maybe: Option<&MaybeKey>,
        by_ref: bool,
        e: &mut usize,
    ) -> Result<Value, Error> {
        let p = self.plan.producer(*e);
        *e += 1;
        if p == NONE {
            let Some(m) = maybe else {
                return Err(self.internal(t));
            };
            return if by_ref {
                Ok(m.literal.clone())
            } else {
                (m.clone)(&m.literal).ok_or_else(|| self.internal(t))
            };
        }
        let state = &self.tasks[p as usize];
        if !by_ref && state.uses.load(Ordering::Acquire) == 1 {
            // The only use left is this one: move the value out with
            // no reference counting at all.
            state.uses.store(0, Ordering::Relaxed);
            // SAFETY: every other use has ended (the count says so),
            // so this task alone touches the slot.
            let mut v = unsafe { (*state.slot.get()).take() };
            // Earlier uses may still be copying from their references.
            wait_for_copies(state.copying());
            if v.as_mut().is_some_and(Value::is_unique) {
                return v.ok_or_else(|| self.internal(t));
            }
            return self.copy(p, v, Some(t));
        }
        // SAFETY: `t` was notified that `p` is done, and this use has
        // not ended yet (borrows end in `release_borrows`).
        let v = unsafe { self.read(p) };
        if by_ref {
            v.ok_or_else(|| self.internal(t))
        } else {
            self.take(p, v, Some(t))
        }
    }

    /// Ends one by-value use of `p`, whose value `v` was just read: the last
    /// use moves the value, others copy it.
    fn take(&self, p: u32, v: Option<Value>, by: Option<u32>) -> Result<Value, Error> {
        let Some(mut v) = v else {
            return Err(self.internal(p));
        };
        if v.is_inline() {
            // A primitive: the copy just read is as good as the value.
            self.end_use(p);
            return Ok(v);
        }
        let state = &self.tasks[p as usize];
        // Announced before our use ends, so the last use sees it.
        state.copying().fetch_add(1, Ordering::AcqRel);
        if let Some(stored) = self.end_use(p) {
            // We were the last use: the slot's reference is gone with
            // `stored`; once the uses still copying have dropped theirs, ours
            // is the only one left (unless the node itself holds the value:
            // a constant) and the value moves.
            state.copying().fetch_sub(1, Ordering::AcqRel);
            drop(stored);
            wait_for_copies(state.copying());
            if v.is_unique() {
                return Ok(v);
            }
            return self.copy(p, Some(v), by);
        }
        // Ends the announcement even when the user's `Clone` panics, so the
        // last use never waits for a copy that will not finish.
        let _copying = CopyingGuard(state.copying());
        self.copy(p, Some(v), by)
    }

    /// The worker pool and remote halves of `info`, when a task of it runs
    /// in a worker process (processes scheduler, serde types).
    fn remote_fns(&self, info: &FnInfo) -> Option<(&Pool, RemoteFns)> {
        let pool = self.remote.as_deref()?;
        remote_of(info).map(|fns| (pool, fns))
    }

    /// Whether task `t` runs in a worker process.
    fn runs_remotely(&self, t: u32) -> bool {
        match &self.plan.nodes[t as usize].op {
            Op::Fn { info, .. } => self.remote_fns(info).is_some(),
            _ => false,
        }
    }

    /// Runs task `t` in this process (counted as local on processes).
    fn call_here(
        &self,
        t: u32,
        run: impl FnOnce(&mut Args<'_>) -> Result<Value, BoxError>,
    ) -> Result<Value, Error> {
        if self.remote.is_some() {
            count_local();
        }
        self.call(t, run)
    }

    /// A copy of `p`'s value `v` for a by-value use that cannot move it.
    fn copy(&self, p: u32, v: Option<Value>, by: Option<u32>) -> Result<Value, Error> {
        let Some(v) = v else {
            return Err(self.internal(p));
        };
        // A value from a worker, going to a task in a worker, is copied as
        // its bytes (decoding it only to encode it again is the slow part).
        let bytes = by
            .filter(|&c| self.runs_remotely(c))
            .and_then(|_| Encoded::copy(&v));
        if let Some(copy) = bytes {
            return Ok(copy);
        }
        let by = || match by {
            Some(c) => format!("task `{}`", self.plan.nodes[c as usize].key),
            None => "the output".to_string(),
        };
        copy_of(
            &v,
            self.plan.clone_of(p),
            &self.plan.nodes[p as usize].key,
            by,
        )
    }

    fn release_borrows(&self, t: u32, ready: &mut impl FnMut(u32)) {
        let plan = self.plan;
        // Most tasks borrow nothing, which their (hot) node tells at once.
        if !plan.nodes[t as usize].args.iter().any(|a| a.by_ref) {
            return;
        }
        let (start, end) = (
            plan.edge_start[t as usize] as usize,
            plan.edge_start[t as usize + 1] as usize,
        );
        for e in start..end {
            let (p, by_ref) = plan.edge(e);
            if !by_ref || p == NONE {
                continue;
            }
            self.drop_value(p, self.end_use(p));
            // Only a value whose mover waits counts its borrowers.
            if let Some((mover, borrows)) = plan.release_of(p) {
                if borrows.fetch_sub(1, Ordering::AcqRel) == 1 {
                    self.notify(mover, ready);
                }
            }
        }
    }

    /// After the scheduler is done: the first error, or the outputs.
    /// Drops a value the engine freed, turning a panic in its `Drop` into
    /// the computation's error (it must never escape `compute`).
    fn drop_value(&self, p: u32, v: Option<Value>) {
        if v.is_none() {
            return;
        }
        if let Err(payload) = catch_unwind(AssertUnwindSafe(move || drop(v))) {
            let key = &self.plan.nodes[p as usize].key;
            let mut e = Error::panic(key.clone(), &*payload);
            e.prefix(&format!("dropping the value of `{key}`: "));
            self.fail(e);
        }
    }

    pub fn finish(self) -> Result<Vec<Value>, Error> {
        let result = self.outputs();
        // Whatever is left (after a failure) is freed here, panics caught.
        // After a success every value has had its last use (each task is
        // used by a consumer or an output), so every slot is empty already.
        let left = match result.is_ok() && !self.failed() {
            true => 0,
            false => self.plan.len(),
        };
        debug_assert!(
            left > 0
                // SAFETY: as below.
                || (0..self.plan.len()).all(|p| unsafe { (*self.tasks[p].slot.get()).is_none() }),
            "a value outlived its last use"
        );
        for p in 0..left {
            // SAFETY: the scheduler has joined: nothing else touches slots.
            let v = unsafe { (*self.tasks[p].slot.get()).take() };
            self.drop_value(p as u32, v);
        }
        match (result, self.failure.take()) {
            (_, Some(e)) => Err(e),
            (result, None) => result,
        }
    }

    fn outputs(&self) -> Result<Vec<Value>, Error> {
        if let Some(e) = self.failure.take() {
            return Err(e);
        }
        // Without a failure every ready task ran, so a task still waiting
        // means the computation stalled.
        if let Some(&o) = self
            .plan
            .outputs
            .iter()
            .find(|&&o| self.tasks[o as usize].waits.load(Ordering::Acquire) > 0)
        {
            return Err(self.stall_error(o));
        }
        let outputs = &self.plan.outputs;
        outputs
            .iter()
            .map(|&o| {
                guarded("copying output", &self.plan.nodes[o as usize].key, || {
                    // SAFETY: every task is done and the scheduler has joined.
                    self.take(o, unsafe { self.read(o) }, None)
                })
            })
            .collect()
    }

    fn stall_error(&self, output: u32) -> Error {
        let plan = self.plan;
        for &(p, c) in &plan.release {
            if self.tasks[c as usize].waits.load(Ordering::Acquire) > 0 {
                let (pk, ck) = (&plan.nodes[p as usize].key, &plan.nodes[c as usize].key);
                return Error::new(
                    ErrorKind::NotClone,
                    Some(pk.clone()),
                    format!(
                        "`{ck}` takes the value of `{pk}` by value, but `{pk}` is also borrowed by \
                         a task that depends on `{ck}`, and its type is not Clone: make the \
                         value Clone or pass it by reference everywhere"
                    ),
                );
            }
        }
        Error::new(
            ErrorKind::Scheduler,
            Some(plan.nodes[output as usize].key.clone()),
            "internal error: the computation stopped before every task ran",
        )
    }
}

/// Runs `node`'s task: `gather` collects its arguments, then `run` runs
/// it. Both are under the unwind guard (copying an argument runs the user's
/// `Clone`, and the arguments not taken are dropped in it), and an error or
/// a panic becomes the task's error.
#[inline(always)]
pub(crate) fn invoke(
    node: &Node,
    gather: impl FnOnce(&mut Vals) -> Result<(), Error>,
    run: impl FnOnce(&mut Args<'_>) -> Result<Value, BoxError>,
) -> Result<Value, Error> {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let mut vals = Vals::new();
        gather(&mut vals).map_err(|e| Box::new(EngineError(e)) as BoxError)?;
        let mut args = Args {
            key: &node.key,
            vals: &mut vals,
        };
        run(&mut args)
    }));
    match outcome {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => match e.downcast::<EngineError>() {
            Ok(engine) => Err(engine.0),
            Err(user) => Err(Error::task(node.key.clone(), user)),
        },
        Err(payload) => Err(Error::panic(node.key.clone(), &*payload)),
    }
}

/// A constant argument's value for its task: the node's own, shared, where
/// the task borrows it or copies it itself, else a copy.
#[inline(always)]
pub(crate) fn constant(value: &Value, clone: CloneFn, shared: bool) -> Option<Value> {
    match shared {
        true => Some(value.clone()),
        false => clone(value),
    }
}

/// A copy of `v`, the value of `producer`, for a by-value use (`by` names
/// it) that cannot move it: by `clone` (the producer's or the consumer's
/// copy function), else by the type registry.
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
                v.type_name()
            ),
        )
    })
}

/// A list's elements, taken from their sources one by one (`None` after
/// the first that fails).
pub(crate) struct Elems<I, F> {
    pub(crate) items: I,
    pub(crate) take: F,
    pub(crate) done: bool,
}

impl<I: Iterator, F: FnMut(I::Item) -> Option<Value>> Iterator for Elems<I, F> {
    type Item = Value;
    fn next(&mut self) -> Option<Value> {
        if self.done {
            return None;
        }
        let v = (self.take)(self.items.next()?);
        self.done = v.is_none();
        v
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        match self.done {
            true => (0, Some(0)),
            false => self.items.size_hint(),
        }
    }
}

impl<I: ExactSizeIterator, F: FnMut(I::Item) -> Option<Value>> ExactSizeIterator for Elems<I, F> {}

/// The elements of a list of node outputs, taken from their producers'
/// slots (edges `edges`) as the list is built; `None` after the first that
/// fails, which is kept in `failed`.
struct Taken<'x, 'p> {
    exec: &'x Exec<'p>,
    t: u32,
    edges: std::ops::Range<usize>,
    failed: Option<Error>,
}

impl Iterator for Taken<'_, '_> {
    type Item = Value;
    #[inline]
    fn next(&mut self) -> Option<Value> {
        if self.failed.is_some() {
            return None;
        }
        let mut e = self.edges.next()?;
        // The last use of a unique value (nearly every element): moved out
        // with no call. Anything else goes the general way. (`leaf`'s own
        // move, shared through a helper, cost 25 more instructions per
        // element: checking in place before taking is what makes it cheap.)
        let exec = self.exec;
        let state = &exec.tasks[exec.plan.producer(e) as usize];
        if state.uses.load(Ordering::Acquire) == 1 && state.copying().load(Ordering::Acquire) == 0 {
            // SAFETY: as in `leaf`: the count says every other use has
            // ended, so this one alone touches the slot.
            let slot = unsafe { &mut *state.slot.get() };
            if slot.as_mut().is_some_and(Value::is_unique) {
                state.uses.store(0, Ordering::Relaxed);
                return slot.take();
            }
        }
        match exec.leaf(self.t, None, false, &mut e) {
            Ok(v) => Some(v),
            Err(x) => {
                self.failed = Some(x);
                None
            }
        }
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = match self.failed {
            Some(_) => 0,
            None => self.edges.len(),
        };
        (n, Some(n))
    }
}

impl ExactSizeIterator for Taken<'_, '_> {}

/// One use copying a value, announced in the value's `copying` count until
/// dropped (on return or unwind).
struct CopyingGuard<'a>(&'a AtomicU32);

impl Drop for CopyingGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Waits (briefly: one copy of one value) until no use is copying the value,
/// so the last use can move it instead of copying it too.
fn wait_for_copies(copying: &AtomicU32) {
    let mut spins = 0u32;
    while copying.load(Ordering::Acquire) > 0 {
        if spins < 64 {
            std::hint::spin_loop();
            spins += 1;
        } else {
            std::thread::yield_now();
        }
    }
}

/// Notifications held back for one dependent shared by consecutive tasks.
///
/// When a worker runs many siblings that feed one task (a reduction over n
/// leaves), notifying that task after each sibling makes every worker write
/// the same counter, whose cache line then bounces between cores. A batch
/// counts them locally and subtracts the sum once. It only holds back
/// notifications that cannot make the task ready (the task still waits for
/// more than it holds), and its owner flushes it before stopping, so no task
/// is ever left waiting.
#[derive(Default)]
pub(crate) struct Batch {
    target: u32,
    count: u32,
}

impl Batch {
    fn add(&mut self, exec: &Exec<'_>, d: u32, ready: &mut impl FnMut(u32)) {
        if self.count > 0 && self.target != d {
            self.flush(exec, ready);
        }
        self.target = d;
        self.count += 1;
        if exec.tasks[d as usize].waits.load(Ordering::Relaxed) <= self.count {
            self.flush(exec, ready);
        }
    }

    pub(crate) fn flush(&mut self, exec: &Exec<'_>, ready: &mut impl FnMut(u32)) {
        if self.count > 0 {
            let n = std::mem::take(&mut self.count);
            exec.notify_n(self.target, n, ready);
        }
    }
}

/// Runs every task on the caller's thread, depth-first.
pub(crate) fn run_sync(exec: &Exec<'_>) {
    // Each initial task, then everything it leads to, before the next one:
    // the order of one stack holding them all, without copying them there.
    let mut stack: Vec<u32> = Vec::new();
    let _running = exec.enter();
    for &first in exec.initial() {
        stack.push(first);
        while let Some(t) = stack.pop() {
            let mark = stack.len();
            exec.execute(t, &mut |d| stack.push(d));
            if exec.failed() {
                return;
            }
            // The first task made ready runs next (LIFO, depth-first).
            stack[mark..].reverse();
        }
    }
}

/// At most this many initial tasks are handled by one job without
/// splitting off the rest.
const MAX_GRAIN: usize = 32;

/// How many initial tasks one job handles: few enough that every worker
/// gets a share (eight per worker), many enough that starting n cheap leaves
/// costs O(n / 32) jobs, not n.
fn grain(tasks: usize, workers: usize) -> usize {
    (tasks / (8 * workers.max(1))).clamp(1, MAX_GRAIN)
}

/// Runs the tasks on a rayon pool (`None`: the current or global one).
///
/// The initial ready tasks are split in halves, rayon-style, down to a
/// [`grain`], so that starting n leaves costs O(n / 32) jobs, not n. A worker that finishes a
/// task goes on with the first task it made ready and spawns the rest, so
/// chains run without queueing and reductions stay depth-first. A task is
/// spawned only once ready: no worker ever blocks.
pub(crate) fn run_threads<'e>(exec: &'e Exec<'e>, pool: Option<&rayon::ThreadPool>) {
    let initial = exec.initial();
    let workers = pool.map_or_else(rayon::current_num_threads, |p| p.current_num_threads());
    let grain = grain(initial.len(), workers);
    match pool {
        Some(pool) => pool.scope(|s| run_range(exec, s, initial, grain)),
        None => rayon::scope(|s| run_range(exec, s, initial, grain)),
    }
}

fn run_range<'s>(exec: &'s Exec<'s>, s: &rayon::Scope<'s>, mut tasks: &'s [u32], grain: usize) {
    while tasks.len() > grain {
        let (mine, theirs) = tasks.split_at(tasks.len() / 2);
        s.spawn(move |s| run_range(exec, s, theirs, grain));
        tasks = mine;
    }
    let _running = exec.enter();
    let mut batch = Batch::default();
    for &t in tasks {
        chain(exec, s, t, &mut batch);
    }
    drain(exec, s, &mut batch);
}

/// Spawned work: one ready task and what it leads to.
fn chain_job<'s>(exec: &'s Exec<'s>, s: &rayon::Scope<'s>, t: u32) {
    let _running = exec.enter();
    let mut batch = Batch::default();
    chain(exec, s, t, &mut batch);
    drain(exec, s, &mut batch);
}

/// Flushes a worker's batch and runs whatever that makes ready, until the
/// batch stays empty.
fn drain<'s>(exec: &'s Exec<'s>, s: &rayon::Scope<'s>, batch: &mut Batch) {
    loop {
        let mut ready: SmallVec<[u32; 8]> = SmallVec::new();
        batch.flush(exec, &mut |d| ready.push(d));
        if ready.is_empty() {
            return;
        }
        for d in ready {
            chain(exec, s, d, batch);
        }
    }
}

/// Runs `first`, then the first task each run makes ready, spawning the rest.
fn chain<'s>(exec: &'s Exec<'s>, s: &rayon::Scope<'s>, first: u32, batch: &mut Batch) {
    let mut ready: SmallVec<[u32; 8]> = SmallVec::new();
    let mut next = first;
    loop {
        exec.execute_batched(next, batch, &mut |d| ready.push(d));
        let Some((&head, rest)) = ready.split_first() else {
            return;
        };
        for &d in rest.iter().rev() {
            s.spawn(move |s| chain_job(exec, s, d));
        }
        next = head;
        ready.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two task states to a cache line: the executor touches one per use.
    #[test]
    fn task_states_stay_two_to_a_cache_line() {
        assert_eq!(std::mem::size_of::<TaskState>(), 32);
    }
}
