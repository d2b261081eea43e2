//! The executor: runs a [`Plan`]'s tasks for a scheduler.
//!
//! One piece of state serves every scheduler; a scheduler only decides *which
//! ready task runs where* (`crate::schedule`), through the few operations
//! here: [`Exec::initial`], [`Exec::execute_batched`] with a [`Batch`],
//! [`Exec::failed`], and [`Exec::finish`]. A task that runs in another
//! process goes through the scheduler's [`Remote`] hook; the executor knows
//! no scheduler and no worker pool. The protocol, per task `t`:
//!
//! 1. gather: for each leaf argument, read the producer's value: share it
//!    (`&T` parameter) or take it (by value). A by-value use reads, then
//!    ends its use of the producer's value; the use that ends the last
//!    moves the value out, any other copies it (the cell's protocol:
//!    [`TaskState`]).
//! 2. run the adapter under `catch_unwind`; an `Err` or a panic records the
//!    first error, after which no task starts.
//! 3. release: drop the shared values and end their uses, store the
//!    output, then notify dependents; a dependent whose wait count reaches
//!    zero is handed to `ready`.
//!
//! No pool thread ever waits for a dependency: a task only starts once its
//! inputs are there. A graph that is a tree runs without a plan, on the
//! same call helpers ([`tree`]).

mod call;
pub(crate) mod tree;

use call::{
    build_list, constant, copy_of, drop_quietly, invoke, missing_argument, FirstError, Slots, Vals,
};
pub(crate) use call::{guarded, take_output};

use crate::cache::{Cache, EntryKey};
use crate::callbacks::{each, Callback, TaskResult};
use crate::error::{BoxError, Error, ErrorKind};
use crate::node::{MaybeKey, Op, Src};
use crate::plan::{Plan, TaskState, NONE};
use crate::task::annotations::{Annotations, EVER};
use crate::task::remote::RemoteFns;
use crate::task::{Args, FnInfo};
use crate::value::{DynList, Encoded, EncodedList, Value, LIST_DEPTH};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Where a scheduler with workers outside this process (processes, a
/// cluster) runs a plan's remote tasks: the one hook it implements. A
/// `#[delayed]` function whose types are serde is remote there; everything
/// else runs here.
pub(crate) trait Remote: Sync {
    /// Runs one task of `info` elsewhere: the adapter used instead of the
    /// local one. `Err` is the task's own error, or an engine error boxed
    /// as `EngineError`.
    fn run(&self, info: &FnInfo, fns: RemoteFns, args: &mut Args<'_>) -> Result<Value, BoxError>;

    /// Notes a task that ran in this process instead (for diagnostics).
    fn ran_here(&self) {}

    /// Whether `run` only sends the task, and this hook itself tells the
    /// callbacks' `posttask` once the task has run there (a cluster).
    fn reports_finish(&self) -> bool {
        false
    }

    /// How several ready tasks go out in one round trip, where they can
    /// (processes): `None` sends tasks one at a time.
    fn batches(&self) -> Option<&dyn Batches> {
        None
    }
}

/// A [`Remote`] that sends several tasks in one round trip: each is
/// prepared (encoded) as its inputs are gathered, then all are sent.
pub(crate) trait Batches: Sync {
    /// Encodes one task's call, with the same errors as `Remote::run`'s
    /// encoding.
    fn prepare(
        &self,
        info: &'static FnInfo,
        fns: RemoteFns,
        args: &mut Args<'_>,
    ) -> Result<Prepared, BoxError>;

    /// Runs prepared calls; their results, in order.
    fn run_prepared(&self, calls: Vec<Prepared>) -> Vec<Result<Value, BoxError>>;

    /// A stand-in for the result of a call of `fns`, to prepare the next
    /// link of a chain with (see [`prepare_next`](Self::prepare_next)).
    fn hole(&self, fns: RemoteFns) -> Value;

    /// Encodes a chain's next link, whose input is `hole`: that input, the
    /// result of the call before it, stays in the worker. An error: this
    /// call cannot go so (it then runs on its own, later).
    fn prepare_next(
        &self,
        info: &'static FnInfo,
        fns: RemoteFns,
        args: &mut Args<'_>,
        hole: &Value,
    ) -> Result<Prepared, BoxError>;

    /// Runs a chain: a call, then links prepared with
    /// [`prepare_next`](Self::prepare_next), in one round trip. Results in
    /// order, for the calls that went (the first always; the links that fit
    /// one write with it).
    fn run_chain(&self, calls: Vec<Prepared>) -> Vec<Result<Value, BoxError>>;
}

/// A remote task's call, encoded, waiting to go out with others.
pub(crate) struct Prepared {
    pub key: crate::Key,
    pub info: &'static FnInfo,
    pub fns: RemoteFns,
    pub args: crate::task::remote::Encoding,
    /// A chain's link: where in `args` its input (the result of the call
    /// before it, kept in the worker) goes.
    pub after: Option<u32>,
}

/// What a scheduler marks on a thread while it runs a computation's tasks
/// (the scheduler a nested `compute` joins, and that callbacks stay quiet
/// inside tasks), until the guard drops. Set once per scheduling loop or
/// job, not per task.
pub(crate) trait Enter: Sync {
    /// Restores the thread's previous state when dropped.
    type Guard;
    /// Marks this thread.
    fn enter(&self) -> Self::Guard;
}

/// What `plan`'s annotations ask for (nothing, at no cost, in a program
/// that never built an annotated task).
fn annotated(plan: &Plan<'_>) -> Annotated {
    let mut a = Annotated::default();
    if !EVER.load(Ordering::Relaxed) {
        return a;
    }
    for node in plan.nodes.iter() {
        let n = node.op.annotations();
        a.any |= !n.is_empty();
        a.priorities |= n.priority_value() != 0;
        a.resources |= !n.resources().is_empty();
    }
    a
}

/// Whether a failure may be retried: the task's own (an `Err`, a panic),
/// or its worker's, or its time running out.
fn retryable(e: &Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::Task | ErrorKind::Panic | ErrorKind::WorkerLost | ErrorKind::Timeout
    )
}

pub(crate) struct Exec<'p> {
    plan: &'p Plan<'p>,
    /// Where remote tasks run (processes, cluster); `None`: all run here.
    remote: Option<&'p dyn Remote>,
    callbacks: &'p [Arc<dyn Callback>],
    /// The plan's task states (a plan runs once).
    tasks: &'p [TaskState],
    failure: FirstError,
    /// Callbacks, or keep-going: each task takes the slower path that
    /// handles them (one branch a task otherwise).
    slow: bool,
    /// Keep going (`run_each`): the failures, and which tasks they reach.
    each: Option<KeepGoing>,
    /// Some task of the plan is annotated (retries, priority, ...).
    annotated: Annotated,
    /// Where `#[delayed(cache)]` tasks keep their results.
    cache: Option<&'p Cache>,
    /// With a cache: per task, whether its key alone names its value in
    /// every run (a pure call whose inputs are all such: a Merkle chain of
    /// hashes), so that its entry needs no hash of its arguments' bytes.
    stable: Vec<bool>,
}

/// What a plan's annotations ask of the scheduling loop.
#[derive(Clone, Copy, Default)]
pub(crate) struct Annotated {
    /// Some task has annotations: the per-task path reads them.
    pub any: bool,
    /// Some task has a priority: ready tasks are ordered.
    pub priorities: bool,
    /// Some task needs resources: tasks wait for them.
    pub resources: bool,
}

/// What a keep-going computation knows of its failures: per task, the
/// task whose failure it inherits (`NONE`: none), and each failure's
/// error by the task that failed.
struct KeepGoing {
    poison: Box<[AtomicU32]>,
    errors: std::sync::Mutex<std::collections::HashMap<u32, Error>>,
}

impl<'p> Exec<'p> {
    /// An executor of `plan`, telling `callbacks` of each task, running
    /// remote tasks through `remote`.
    pub fn new(
        plan: &'p Plan<'p>,
        callbacks: &'p [Arc<dyn Callback>],
        remote: Option<&'p dyn Remote>,
    ) -> Exec<'p> {
        let annotated = annotated(plan);
        Exec {
            plan,
            remote,
            callbacks,
            tasks: &plan.tasks[..],
            failure: FirstError::default(),
            slow: !callbacks.is_empty() || annotated.any,
            each: None,
            annotated,
            cache: None,
            stable: Vec::new(),
        }
    }

    /// Keeps the results of `#[delayed(cache)]` tasks in `cache`, and runs
    /// none whose result is there.
    pub fn with_cache(mut self, cache: Option<&'p Cache>) -> Exec<'p> {
        self.slow |= cache.is_some();
        self.cache = cache;
        if cache.is_some() {
            // Tasks are in post-order: producers first.
            let plan = self.plan;
            let mut stable = vec![false; plan.len()];
            for t in 0..plan.len() {
                stable[t] = plan.nodes[t].key.is_pure()
                    && plan.edges_of(t as u32).all(|e| {
                        let (p, _) = plan.edge(e);
                        p != NONE && stable[p as usize]
                    });
            }
            self.stable = stable;
        }
        self
    }

    /// What the plan's annotations ask of the scheduling loop.
    pub fn annotated(&self) -> Annotated {
        self.annotated
    }

    /// Task `t`'s annotations.
    pub fn annotations(&self, t: u32) -> Annotations {
        self.plan.nodes[t as usize].op.annotations()
    }

    /// The plan.
    pub fn plan(&self) -> &'p Plan<'p> {
        self.plan
    }

    /// Keeps going after a failure (`run_each`): a failed task fails only
    /// the tasks that depend on it; everything else runs. Read the outputs
    /// with [`finish_each`](Self::finish_each).
    pub fn keep_going(mut self) -> Exec<'p> {
        self.slow = true;
        self.each = Some(KeepGoing {
            poison: (0..self.plan.len()).map(|_| AtomicU32::new(NONE)).collect(),
            errors: Default::default(),
        });
        self
    }

    /// The tasks that can start at once, in priority order (first = first).
    pub fn initial(&self) -> &'p [u32] {
        debug_assert!(self
            .plan
            .initial
            .iter()
            .all(|&t| self.tasks[t as usize].waits().load(Ordering::Relaxed) == 0));
        &self.plan.initial
    }

    /// Whether a task failed (no task starts after that).
    pub fn failed(&self) -> bool {
        self.failure.failed()
    }

    fn fail(&self, e: Error) {
        self.failure.fail(e)
    }

    /// Cancels: no task starts after this, and the computation's error is
    /// `ErrorKind::Cancelled` (unless a task failed first).
    pub fn cancel(&self) {
        self.fail(crate::control::cancelled_error())
    }

    fn notify(&self, t: u32, ready: &mut impl FnMut(u32)) {
        self.notify_n(t, 1, ready)
    }

    fn notify_n(&self, t: u32, n: u32, ready: &mut impl FnMut(u32)) {
        if self.tasks[t as usize]
            .waits()
            .fetch_sub(n, Ordering::AcqRel)
            == n
        {
            ready(t);
        }
    }

    /// A shared reference to `p`'s value.
    ///
    /// SAFETY: the caller is a use of `p` that has been notified that `p` is
    /// done and has not yet decremented `p`'s use count.
    #[inline(always)]
    unsafe fn read(&self, p: u32) -> Option<Value> {
        // SAFETY: the caller's promise is `TaskState::read`'s.
        unsafe { self.tasks[p as usize].read() }
    }

    /// Ends one use of `p`; the last one empties the slot and gets its value.
    #[inline(always)]
    fn end_use(&self, p: u32) -> Option<Value> {
        self.tasks[p as usize].end_use()
    }

    /// Runs task `t`, handing every task it makes ready to `ready`, in
    /// priority order.
    #[inline]
    pub fn execute(&self, t: u32, ready: &mut impl FnMut(u32)) {
        let mut batch = Batch::default();
        self.execute_batched(t, &mut batch, ready);
        batch.flush(self, ready);
    }

    /// [`execute`](Self::execute), holding back notifications of a
    /// dependent shared with the tasks run just before in `batch` (see
    /// [`Batch`]). The caller flushes the batch before it stops. Inlined
    /// into each scheduler's loop: it is the per-task body.
    #[inline(always)]
    pub fn execute_batched(&self, t: u32, batch: &mut Batch, ready: &mut impl FnMut(u32)) {
        if self.failed() {
            batch.flush(self, ready);
            return;
        }
        // Callbacks and keep-going cost one branch per task when off.
        if self.slow {
            return self.execute_slow(t, batch, ready);
        }
        let (result, _) = self.run_op(t, false);
        // Borrowed inputs are released whether the task failed or not.
        self.release_borrows(t, ready);
        self.finish_task(t, result, batch, ready);
    }

    /// Whether [`execute_many`](Self::execute_many) sends tasks together.
    pub fn sends_many(&self) -> bool {
        self.remote.is_some_and(|r| r.batches().is_some()) && !self.slow
    }

    /// Runs ready tasks `ts`. Where the remote sends several tasks in one
    /// round trip (processes), the plain remote ones among them (no
    /// callbacks, annotations or cache) go together: each is gathered and
    /// encoded as `execute_batched` would, then all are sent, then each
    /// result is stored as `execute_batched` would. The rest run one by one.
    pub fn execute_many(&self, ts: &[u32], batch: &mut Batch, ready: &mut impl FnMut(u32)) {
        let remote = self.remote.and_then(|r| r.batches());
        let remote = remote.filter(|_| !self.slow && ts.len() > 1);
        let Some(remote) = remote else {
            for &t in ts {
                self.execute_linked(t, batch, ready);
            }
            return;
        };
        let (mut calls, mut sent) = (Vec::new(), Vec::new());
        for &t in ts {
            let node = self.plan.nodes[t as usize];
            let Some((info, fns)) = self.plain_remote(t).filter(|_| !self.failed()) else {
                self.execute_batched(t, batch, ready);
                continue;
            };
            let mut prepared = None;
            let encoded = invoke(
                node,
                |vals: &mut Vals| self.gather(t, vals),
                |args| {
                    prepared = Some(remote.prepare(info, fns, args)?);
                    Ok(Value::new(()))
                },
            );
            // Its inputs were read: borrowed ones are free to go.
            self.release_borrows(t, ready);
            match (encoded, prepared) {
                (Ok(_), Some(call)) => {
                    calls.push(call);
                    sent.push(t);
                }
                (Err(e), _) => self.finish_task(t, Err(e), batch, ready),
                (Ok(_), None) => {
                    self.finish_task(t, Err(missing_argument(&node.key)), batch, ready)
                }
            }
        }
        for (t, result) in sent.into_iter().zip(remote.run_prepared(calls)) {
            let key = &self.plan.nodes[t as usize].key;
            let result = result.map_err(|e| call::task_error(key, e));
            self.finish_task(t, result, batch, ready);
        }
    }

    /// Task `t`'s function and remote halves when it is a plain remote call
    /// (no annotations, no cache), which may go with others.
    fn plain_remote(&self, t: u32) -> Option<(&'static FnInfo, RemoteFns)> {
        match &self.plan.nodes[t as usize].op {
            Op::Fn { info, .. } if info.annot.is_empty() && info.cache.is_none() => {
                self.remote_fns(info).map(|(_, fns)| (*info, fns))
            }
            _ => None,
        }
    }

    /// The straight chain after task `t`: each link the only consumer of
    /// the one before, which it takes once (no output, no other use), its
    /// other arguments constants, a plain remote call. At most
    /// `MAX_LINKS`.
    fn links_after(&self, t: u32) -> Vec<(u32, &'static FnInfo, RemoteFns)> {
        const MAX_LINKS: usize = 64;
        let mut links = Vec::new();
        let mut p = t;
        while links.len() < MAX_LINKS {
            let mut consumers = self.plan.dependents_of(p as usize);
            let (Some(c), None) = (consumers.next(), consumers.next()) else {
                break;
            };
            let edges = self.plan.edges_of(c);
            let args = &self.plan.nodes[c as usize].args;
            let link = self.tasks[p as usize].uses() == 1
                && edges.len() == 1
                && self.plan.producer(edges.start) == p
                && args
                    .iter()
                    .all(|a| matches!(a.src, Src::Node(..) | Src::Const { .. }));
            let Some((info, fns)) = self.plain_remote(c).filter(|_| link) else {
                break;
            };
            links.push((c, info, fns));
            p = c;
        }
        links
    }

    /// [`execute_batched`](Self::execute_batched), where task `t` heads a
    /// straight chain of plain remote calls ([`links_after`]
    /// (Self::links_after)) on a remote that batches (processes): the chain
    /// goes in one round trip, each link's input staying in the worker
    /// (`Batches::run_chain`). Then each task is finished in order as if
    /// run alone: a link gathers its input from its slot (ending that use)
    /// and takes the result the worker sent for it.
    pub fn execute_linked(&self, t: u32, batch: &mut Batch, ready: &mut impl FnMut(u32)) {
        let remote = self.remote.and_then(|r| r.batches());
        let remote = remote.filter(|_| !self.slow && !self.failed());
        let plain = remote.zip(self.plain_remote(t));
        let links = plain.map(|_| self.links_after(t)).unwrap_or_default();
        let Some((remote, (info, fns))) = plain.filter(|_| !links.is_empty()) else {
            return self.execute_batched(t, batch, ready);
        };
        let mut calls = Vec::with_capacity(links.len() + 1);
        let node = self.plan.nodes[t as usize];
        let prepared = invoke(
            node,
            |vals: &mut Vals| self.gather(t, vals),
            |args| {
                calls.push(remote.prepare(info, fns, args)?);
                Ok(Value::new(()))
            },
        );
        self.release_borrows(t, ready);
        if let Err(e) = prepared {
            return self.finish_task(t, Err(e), batch, ready);
        }
        let mut before = fns;
        for &(c, info, fns) in &links {
            let hole = remote.hole(before);
            let node = self.plan.nodes[c as usize];
            let gather = |vals: &mut Vals| self.gather_link(c, &hole, vals);
            let next = |args: &mut Args<'_>| {
                calls.push(remote.prepare_next(info, fns, args, &hole)?);
                Ok(Value::new(()))
            };
            // A link that cannot go so runs on its own, later.
            if invoke(node, gather, next).is_err() {
                break;
            }
            before = fns;
        }
        let results = remote.run_chain(calls);
        let ran = results.len();
        let mut made_ready = false;
        for (i, result) in results.into_iter().enumerate() {
            let task = match i {
                0 => t,
                _ => links[i - 1].0,
            };
            let node = self.plan.nodes[task as usize];
            let result = match i {
                0 => result.map_err(|e| call::task_error(&node.key, e)),
                // Made ready by the task before it, as a chain's link is.
                _ if !made_ready || self.failed() => break,
                _ => {
                    let r = invoke(node, |vals: &mut Vals| self.gather(task, vals), |_| result);
                    self.release_borrows(task, ready);
                    r
                }
            };
            // The next link, if it ran, is finished here, not handed out.
            let next = links.get(i).map(|l| l.0).filter(|_| i + 1 < ran);
            made_ready = false;
            self.finish_task(task, result, batch, &mut |d| match Some(d) == next {
                true => made_ready = true,
                false => ready(d),
            });
        }
    }

    /// Link `c`'s arguments before its input is made: constants as
    /// [`gather`](Self::gather) gives them, the input as `hole`.
    fn gather_link(&self, c: u32, hole: &Value, vals: &mut Vals) -> Result<(), Error> {
        let node = self.plan.nodes[c as usize];
        for arg in node.args.iter() {
            let v = match &arg.src {
                Src::Node(..) => hole.clone(),
                Src::Const { value, clone } => constant(value, *clone, arg.copies || arg.by_ref)
                    .ok_or_else(|| self.internal(c))?,
                _ => return Err(self.internal(c)),
            };
            vals.push(Some(v));
        }
        Ok(())
    }

    /// Runs task `t`'s operation; `true` with it when the task was only
    /// sent to a cluster that reports its end itself (`watch`: someone
    /// listens for that).
    #[inline(always)]
    fn run_op(&self, t: u32, watch: bool) -> (Result<Value, Error>, bool) {
        // One or two arguments (most tasks) are held in an array.
        match self.plan.nodes[t as usize].args.len() {
            0 | 1 => self.run_op_with(t, watch, |v: &mut [Option<Value>; 1]| self.gather(t, v)),
            2 => self.run_op_with(t, watch, |v: &mut [Option<Value>; 2]| self.gather(t, v)),
            _ => self.run_op_with(t, watch, |v: &mut Vals| self.gather(t, v)),
        }
    }

    /// [`run_op`](Self::run_op), its arguments collected by `gather` into
    /// a `V`.
    #[inline(always)]
    fn run_op_with<V: Slots>(
        &self,
        t: u32,
        watch: bool,
        gather: impl FnOnce(&mut V) -> Result<(), Error>,
    ) -> (Result<Value, Error>, bool) {
        let node = self.plan.nodes[t as usize];
        let mut sent = false;
        let result = match &node.op {
            Op::Const(v) => Ok(v.clone()),
            // Under the unwind guard as any task: gathering may copy the
            // input (a graph's literal), which runs the user's `Clone`.
            Op::Alias => invoke(node, gather, |args| args.take_value()),
            Op::Fn { run, info } if info.cache.is_some() && self.cache.is_some() => {
                let remote = self.remote_fns(info).map(|(r, _)| r);
                if remote.is_none() {
                    self.ran_here();
                }
                let stable = self.stable.get(t as usize).copied().unwrap_or(false);
                let key = &node.key;
                invoke(node, gather, |args| {
                    self.cached_call(info, key, stable, remote, *run, args)
                })
            }
            Op::Fn { run, info } => match self.remote_fns(info) {
                Some((remote, fns)) => {
                    sent = watch && remote.reports_finish();
                    invoke(node, gather, |args| remote.run(info, fns, args))
                }
                None => {
                    self.ran_here();
                    invoke(node, gather, run)
                }
            },
            // Closures always run in this process, on processes too.
            Op::Dyn(task) => {
                self.ran_here();
                invoke(node, gather, &task.run)
            }
        };
        (result, sent)
    }

    /// A `#[delayed(cache)]` task: its result from the cache when its entry
    /// (function, tokens, version, encoded arguments) is there; else run
    /// (here or `remote`) and stored.
    #[cold]
    fn cached_call(
        &self,
        info: &FnInfo,
        task: &crate::key::Key,
        stable: bool,
        remote: Option<&dyn Remote>,
        run: crate::task::RunFn,
        args: &mut Args<'_>,
    ) -> Result<Value, BoxError> {
        let (Some(cache), Some(spec), Some(fns)) = (self.cache, info.cache, info.remote_fns())
        else {
            return run(args);
        };
        let engine = |e: Error| Box::new(crate::task::EngineError(e)) as BoxError;
        let tokens = spec.tokens.to_le_bytes();
        let version = spec.version.to_le_bytes();
        let mut parts: Vec<&[u8]> = vec![info.path.as_bytes(), &tokens, &version];
        // A stable key names the inputs already (their contents, or their
        // own stable keys); otherwise the arguments' bytes do.
        let hash = match stable {
            true => task.pure_hash().map(u64::to_le_bytes),
            false => None,
        };
        let encoded = match &hash {
            Some(h) => {
                parts.extend([&b"key"[..], &h[..]]);
                None
            }
            None => Some((fns.encode)(args)?),
        };
        if let Some(encoded) = &encoded {
            parts.extend(encoded.slices().map_err(engine)?);
        }
        let key = EntryKey::of(&parts);
        drop(encoded);
        let type_name = (fns.out_name)();
        let found = cache.load(key, type_name);
        if let Err(e) = each(self.callbacks, "cached", |c| {
            c.cached(task, found.is_some())
        }) {
            self.fail(e);
        }
        if let Some(bytes) = found {
            return Ok(Value::new(Encoded::new(bytes, fns.out)));
        }
        let v = match remote {
            Some(remote) => remote.run(info, fns, args)?,
            None => run(args)?,
        };
        if let Ok(bytes) = (fns.encode_out)(&v) {
            cache.store(key, type_name, bytes);
        }
        Ok(v)
    }

    /// Runs task `t`, again after a failure while it has retries left: its
    /// inputs are gathered once and kept, and each attempt gets them
    /// shared (an adapter copies a `Clone` input it takes by value).
    /// Callbacks hear of each attempt.
    fn run_retrying(&self, t: u32, attempts: u32) -> (Result<Value, Error>, bool) {
        let mut kept: Option<Vals> = None;
        let mut attempt = 0;
        let outcome = loop {
            attempt += 1;
            let timing = self.pretask(t);
            let gather = |vals: &mut Vals| {
                if kept.is_none() {
                    let mut first = Vals::new();
                    self.gather(t, &mut first)?;
                    kept = Some(first);
                }
                vals.extend(kept.iter().flatten().cloned());
                Ok(())
            };
            let (result, sent) =
                self.within_deadline(t, || self.run_op_with(t, timing.is_some(), gather));
            self.posttask(t, timing, sent, &result);
            match result {
                Err(e) if attempt < attempts && retryable(&e) && !self.failed() => continue,
                Err(mut e) if attempt > 1 => {
                    e.suffix(&format!(" (after {attempt} attempts)"));
                    break (Err(e), sent);
                }
                result => break (result, sent),
            }
        };
        drop_quietly(kept);
        outcome
    }

    /// Runs `f`, task `t`'s attempt, against its timeout when it has one
    /// and runs here (a worker process enforces its own): at the deadline
    /// the computation fails with `ErrorKind::Timeout`, and a computation
    /// on a thread of its own returns then (the task's late result is
    /// dropped when it ends).
    fn within_deadline<R>(&self, t: u32, f: impl FnOnce() -> R) -> R {
        let timeout = match self.annotated.any {
            true => self.annotations(t).timeout_value(),
            false => None,
        };
        let Some(timeout) = timeout.filter(|_| !self.runs_remotely(t)) else {
            return f();
        };
        let key = &self.plan.nodes[t as usize].key;
        let token = crate::control::current();
        let expire = || {
            let e = Error::new(
                ErrorKind::Timeout,
                Some(key.clone()),
                format!(
                    "task `{key}` ran longer than its timeout of {} ms",
                    timeout.as_millis()
                ),
            );
            self.fail(e.duplicate());
            if let Some(token) = token {
                token.cancel_because(e);
            }
        };
        crate::control::within(timeout, expire, f).0
    }

    /// Tells the callbacks task `t` starts: when it started and where, if
    /// any listen (a callback's panic fails the computation).
    fn pretask(&self, t: u32) -> Option<(usize, Instant)> {
        if self.callbacks.is_empty() {
            return None;
        }
        let worker = rayon::current_thread_index().unwrap_or(0);
        let key = &self.plan.nodes[t as usize].key;
        if let Err(e) = each(self.callbacks, "pretask", |c| c.pretask(key, worker)) {
            self.fail(e);
        }
        Some((worker, Instant::now()))
    }

    /// Tells the callbacks task `t` ended, unless a cluster will (`sent`).
    fn posttask(
        &self,
        t: u32,
        timing: Option<(usize, Instant)>,
        sent: bool,
        result: &Result<Value, Error>,
    ) {
        let Some((worker, started)) = timing.filter(|_| !(sent && result.is_ok())) else {
            return;
        };
        let (took, ok) = (started.elapsed(), result.is_ok());
        let key = &self.plan.nodes[t as usize].key;
        let told = match result {
            Ok(v) => {
                let v = TaskResult::new(v);
                each(self.callbacks, "result", |c| c.result(key, &v))
            }
            Err(_) => Ok(()),
        };
        let told = told.and_then(|()| {
            each(self.callbacks, "posttask", |c| {
                c.posttask(key, worker, took, ok)
            })
        });
        if let Err(e) = told {
            self.fail(e);
        }
    }

    /// Stores task `t`'s value and notifies its dependents, or records its
    /// failure.
    #[inline(always)]
    fn finish_task(
        &self,
        t: u32,
        result: Result<Value, Error>,
        batch: &mut Batch,
        ready: &mut impl FnMut(u32),
    ) {
        match result {
            Ok(v) => {
                // SAFETY: only this task writes its slot, once, before any
                // consumer is notified (below).
                unsafe { self.tasks[t as usize].store(v) };
                for d in self.plan.dependents_of(t as usize) {
                    batch.add(self, d, ready);
                }
            }
            Err(e) => match &self.each {
                Some(each) => self.poison(each, t, t, Some(e), batch, ready),
                None => self.fail(e),
            },
        }
    }

    /// The per-task body with callbacks, or keeping going after failures.
    #[cold]
    #[inline(never)]
    fn execute_slow(&self, t: u32, batch: &mut Batch, ready: &mut impl FnMut(u32)) {
        if let Some(each) = &self.each {
            // A task that depends on a failure does not run: it gives its
            // inputs back and fails the same way.
            if let Some(origin) = self.poisoned_input(each, t) {
                self.discard_inputs(t, ready);
                return self.poison(each, t, origin, None, batch, ready);
            }
        }
        let attempts = match self.annotated.any {
            true => self.annotations(t).retries_left().saturating_add(1),
            false => 1,
        };
        let (result, _) = if attempts > 1 {
            self.run_retrying(t, attempts)
        } else {
            let timing = self.pretask(t);
            if self.failed() {
                batch.flush(self, ready);
                return;
            }
            // A cluster's task is only sent here: the cluster says when it ran.
            let (result, sent) = self.within_deadline(t, || self.run_op(t, timing.is_some()));
            self.posttask(t, timing, sent, &result);
            (result, sent)
        };
        self.release_borrows(t, ready);
        self.finish_task(t, result, batch, ready);
    }

    /// The failure an input of `t` carries, if any (keep-going).
    fn poisoned_input(&self, each: &KeepGoing, t: u32) -> Option<u32> {
        self.plan.edges_of(t).find_map(|e| {
            let (p, _) = self.plan.edge(e);
            let origin = match p {
                NONE => NONE,
                p => each.poison[p as usize].load(Ordering::Acquire),
            };
            (origin != NONE).then_some(origin)
        })
    }

    /// Ends every use task `t` had of its inputs, without running it.
    fn discard_inputs(&self, t: u32, ready: &mut impl FnMut(u32)) {
        for e in self.plan.edges_of(t) {
            let (p, by_ref) = self.plan.edge(e);
            if p != NONE && !by_ref {
                self.drop_value(p, self.end_use(p));
            }
        }
        self.release_borrows(t, ready);
    }

    /// Marks `t` failed by `origin`'s failure (`error`: when `t` is the
    /// origin), then notifies its dependents, which fail the same way.
    fn poison(
        &self,
        each: &KeepGoing,
        t: u32,
        origin: u32,
        error: Option<Error>,
        batch: &mut Batch,
        ready: &mut impl FnMut(u32),
    ) {
        if let Some(e) = error {
            each.errors
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(origin, e);
        }
        each.poison[t as usize].store(origin, Ordering::Release);
        for d in self.plan.dependents_of(t as usize) {
            batch.add(self, d, ready);
        }
    }

    fn internal(&self, t: u32) -> Error {
        missing_argument(&self.plan.nodes[t as usize].key)
    }

    /// Collects task `t`'s arguments into `vals` (empty, in place, so the
    /// inline array is never moved): owned where taken by value, shared
    /// where borrowed. Inlined into its one caller: it runs once a task.
    #[inline(always)]
    fn gather(&self, t: u32, vals: &mut impl Slots) -> Result<(), Error> {
        let node = self.plan.nodes[t as usize];
        let mut e = self.plan.edges_of(t).start;
        vals.reserve(node.args.len());
        for (i, arg) in node.args.iter().enumerate() {
            let v = match &arg.src {
                // A consumer that copies a constant itself gets it shared.
                Src::Const { value, .. } if arg.copies => value.clone(),
                // The common case first, without `source`'s dispatch.
                Src::Node(..) => self.leaf_inline(t, None, arg.by_ref, &mut e)?,
                src => self.source(t, src, arg.by_ref, &mut e, 0)?,
            };
            vals.put(i, v);
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
            } => build_list(self.key(t), *build, items.iter(), |x| {
                self.source(t, x, false, e, lists + 1)
            }),
            Src::Nodes { items, build } => {
                // The common list (a `Vec<Delayed<X>>` argument): each
                // element straight from its producer's cell.
                let edges = *e..*e + items.len();
                *e = edges.end;
                if self.remote.is_some() && self.runs_remotely(t) {
                    return self.remote_list(t, *build, edges);
                }
                build_list(self.key(t), *build, edges, |e| self.element(t, e))
            }
            Src::Node(..) | Src::Key(_) => self.leaf(t, None, by_ref, e),
            Src::MaybeKey(m) => self.leaf(t, Some(m), by_ref, e),
        }
    }

    /// A list for a task that runs elsewhere: elements made elsewhere stay
    /// encoded (and on a cluster, where they are), so they are not decoded
    /// here only to be encoded again.
    #[cold]
    fn remote_list(
        &self,
        t: u32,
        build: crate::value::ListFn,
        edges: std::ops::Range<usize>,
    ) -> Result<Value, Error> {
        let elems = edges
            .map(|e| self.element(t, e))
            .collect::<Result<Vec<_>, _>>()?;
        match EncodedList::of(elems) {
            Ok(list) => Ok(list),
            Err(elems) => build_list(self.key(t), build, elems.into_iter(), Ok),
        }
    }

    /// The element of a list of node outputs on edge `e`. The last use of
    /// a unique value (nearly every element) is moved out with no call;
    /// anything else goes [`leaf`](Self::leaf)'s way. (Checking in place
    /// before taking is what makes it cheap: `leaf`'s own move costs more
    /// per element.)
    #[inline(always)]
    fn element(&self, t: u32, mut e: usize) -> Result<Value, Error> {
        let state = &self.tasks[self.plan.producer(e) as usize];
        // SAFETY: `t` was notified that the producer is done, and this use
        // has not ended.
        if let Some(v) = unsafe { state.take_last_unique() } {
            return Ok(v);
        }
        self.leaf(t, None, false, &mut e)
    }

    /// Task `t`'s key.
    fn key(&self, t: u32) -> &crate::key::Key {
        &self.plan.nodes[t as usize].key
    }

    /// The value of the next leaf input (edge `*e`): a producer's value,
    /// shared (`by_ref`) or taken, or the literal of a key the graph lacks.
    /// Out of line for the list fast path and `source`, whose loops ran
    /// slower with it inlined; `gather` inlines it.
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
    /// call less per argument.
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
        // The only use left is this one: move the value out with no
        // reference counting at all.
        if !by_ref {
            // SAFETY: `t` was notified that `p` is done, and this use has
            // not ended yet.
            if let Some(mut v) = unsafe { state.take_last() } {
                // Earlier uses may still be copying from their references.
                wait_for_copies(state.copying());
                if v.as_mut().is_some_and(Value::is_unique) {
                    return v.ok_or_else(|| self.internal(t));
                }
                return self.copy(p, v, Some(t));
            }
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
    #[inline(always)]
    fn remote_fns(&self, info: &FnInfo) -> Option<(&'p dyn Remote, RemoteFns)> {
        let remote = self.remote?;
        info.remote_fns().map(|fns| (remote, fns))
    }

    /// Whether task `t` runs in a worker process.
    fn runs_remotely(&self, t: u32) -> bool {
        match &self.plan.nodes[t as usize].op {
            Op::Fn { info, .. } => self.remote_fns(info).is_some(),
            _ => false,
        }
    }

    /// Runs task `t` in this process (counted as local on processes).
    /// Notes a task that runs in this process (counted on processes; a
    /// cluster sends what it has queued first).
    #[inline(always)]
    fn ran_here(&self) {
        if let Some(remote) = self.remote {
            remote.ran_here();
        }
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
        for e in plan.edges_of(t) {
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

    /// After the scheduler is done: the outputs, or the first error.
    pub fn finish(self) -> Result<Vec<Value>, Error> {
        let result = self.outputs();
        let clean = result.is_ok() && !self.failed();
        self.free_left(clean);
        first_error(result, self.failure.take())
    }

    /// The outputs of a keep-going computation, each its value or the
    /// failure it depends on; `Err` when the computation as a whole failed
    /// (a callback, a cancel).
    pub fn finish_each(self) -> Result<Vec<Result<Value, Error>>, Error> {
        let Some(each) = &self.each else {
            return self.finish().map(|v| v.into_iter().map(Ok).collect());
        };
        let result = match self.failure.take() {
            Some(e) => Err(e),
            None => self.outputs_each(each),
        };
        self.free_left(false);
        first_error(result, self.failure.take())
    }

    fn outputs_each(&self, each: &KeepGoing) -> Result<Vec<Result<Value, Error>>, Error> {
        self.stalled()?;
        let mut errors =
            std::mem::take(&mut *each.errors.lock().unwrap_or_else(|e| e.into_inner()));
        let outputs = self.plan.outputs.iter().map(|&o| {
            let origin = each.poison[o as usize].load(Ordering::Acquire);
            if origin == NONE {
                return guarded("copying output", &self.plan.nodes[o as usize].key, || {
                    // SAFETY: every task is done and the scheduler has joined.
                    self.take(o, unsafe { self.read(o) }, None)
                });
            }
            // The first output of a failure gets its error (with its
            // source); any other, the same error again.
            self.end_use(o);
            let e = errors
                .remove(&origin)
                .unwrap_or_else(|| self.internal(origin));
            errors.insert(origin, e.duplicate());
            Err(e)
        });
        Ok(outputs.collect())
    }

    /// Frees whatever values are left, panics caught: none after a clean
    /// run (every value has had its last use: each task is used by a
    /// consumer or an output), any after a failure.
    fn free_left(&self, clean: bool) {
        let left = match clean {
            true => 0,
            false => self.plan.len(),
        };
        debug_assert!(
            left > 0
                // SAFETY: as below.
                || self.tasks.iter().all(|s| unsafe { s.is_empty() }),
            "a value outlived its last use"
        );
        for p in 0..left {
            // SAFETY: the scheduler has joined: nothing else touches slots.
            let v = unsafe { self.tasks[p].take_left() };
            self.drop_value(p as u32, v);
        }
    }

    fn outputs(&self) -> Result<Vec<Value>, Error> {
        if let Some(e) = self.failure.take() {
            return Err(e);
        }
        // Without a failure every ready task ran, so a task still waiting
        // means the computation stalled.
        self.stalled()?;
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

    /// An output still waiting once the scheduler has joined: the
    /// computation stalled (a task never became ready).
    fn stalled(&self) -> Result<(), Error> {
        let waiting = self
            .plan
            .outputs
            .iter()
            .find(|&&o| self.tasks[o as usize].waits().load(Ordering::Acquire) > 0);
        match waiting {
            Some(&o) => Err(self.stall_error(o)),
            None => Ok(()),
        }
    }

    fn stall_error(&self, output: u32) -> Error {
        let plan = self.plan;
        for &(p, c) in &plan.release {
            if self.tasks[c as usize].waits().load(Ordering::Acquire) > 0 {
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

/// One use copying a value, announced in the value's `copying` count until
/// dropped (on return or unwind).
struct CopyingGuard<'a>(&'a AtomicU32);

impl Drop for CopyingGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A finished computation's answer: its outputs, or its first failure. The
/// outputs' own `Err` (taken first, in `outputs`) wins over a failure
/// recorded after it, such as a panic in the `Drop` of a value left over:
/// the task that failed is the cause, the drop a consequence.
fn first_error<T>(result: Result<T, Error>, later: Option<Error>) -> Result<T, Error> {
    match (result, later) {
        (Err(e), _) | (Ok(_), Some(e)) => Err(e),
        (Ok(v), None) => Ok(v),
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
        if exec.tasks[d as usize].waits().load(Ordering::Relaxed) <= self.count {
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
