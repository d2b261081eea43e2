//! The executor: runs a [`Plan`] on any scheduler.
//!
//! One piece of state serves every scheduler; a scheduler only decides *which
//! ready task runs where*. The protocol, per task `t`:
//!
//! 1. gather: for each leaf argument, borrow the producer's value (`&T`
//!    parameter) or take it (by value). Taking decrements the producer's
//!    use count; the last use moves the value out, an earlier one copies it.
//! 2. run the adapter under `catch_unwind`; an `Err` or a panic records the
//!    first error and sets `failed`, after which no task starts.
//! 3. release: drop the borrowed values, decrement their use counts (the
//!    last use frees the value), store the output, then notify dependents;
//!    a dependent whose wait count reaches zero is handed to `ready`.
//!
//! Counters are atomics and each value slot has its own small lock, so
//! workers never block each other for longer than a pointer copy, and no
//! pool thread ever waits for a dependency: a task is only started once
//! everything it needs is there.

use crate::error::BoxError;
use crate::node::{Args, EngineError, Op, Src};
use crate::plan::{Plan, NONE};
use crate::schedule::{CurrentGuard, Scheduler};
use crate::value::{DynList, Value};
use crate::{Error, ErrorKind};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

pub(crate) struct Exec<'p> {
    plan: &'p Plan,
    scheduler: &'p Scheduler,
    waits: Vec<AtomicU32>,
    uses: Vec<AtomicU32>,
    borrows: Vec<AtomicU32>,
    slots: Vec<Mutex<Option<Value>>>,
    failed: AtomicBool,
    error: Mutex<Option<Error>>,
    done: AtomicUsize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned slot only means a panic elsewhere; the data is still whole.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<'p> Exec<'p> {
    pub fn new(plan: &'p Plan, scheduler: &'p Scheduler) -> Exec<'p> {
        let atomics = |v: &[u32]| v.iter().map(|&x| AtomicU32::new(x)).collect();
        Exec {
            plan,
            scheduler,
            waits: atomics(&plan.waits),
            uses: atomics(&plan.uses),
            borrows: atomics(&plan.borrows),
            slots: (0..plan.len()).map(|_| Mutex::new(None)).collect(),
            failed: AtomicBool::new(false),
            error: Mutex::new(None),
            done: AtomicUsize::new(0),
        }
    }

    /// The tasks that can start at once, in priority order (first = first).
    pub fn initial(&self) -> Vec<u32> {
        (0..self.plan.len() as u32)
            .filter(|&t| self.plan.waits[t as usize] == 0)
            .collect()
    }

    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::Relaxed)
    }

    fn fail(&self, e: Error) {
        let mut slot = lock(&self.error);
        if slot.is_none() {
            *slot = Some(e);
        }
        self.failed.store(true, Ordering::Release);
    }

    fn notify(&self, t: u32, ready: &mut impl FnMut(u32)) {
        if self.waits[t as usize].fetch_sub(1, Ordering::AcqRel) == 1 {
            ready(t);
        }
    }

    /// Runs task `t`, handing every task it makes ready to `ready`, in
    /// priority order.
    pub fn execute(&self, t: u32, ready: &mut impl FnMut(u32)) {
        if self.failed() {
            return;
        }
        let node = &self.plan.nodes[t as usize];
        let result = match &node.op {
            Op::Const(v) => Ok(v.clone()),
            Op::Alias => self
                .gather(t)
                .and_then(|mut vals| vals.pop().flatten().ok_or_else(|| self.internal(t))),
            Op::Fn { run, .. } => self.call(t, run),
            Op::Dyn { run, .. } => self.call(t, |args| run(args)),
        };
        // Borrowed inputs are released whether the task failed or not.
        self.release_borrows(t, ready);
        match result {
            Ok(v) => {
                *lock(&self.slots[t as usize]) = Some(v);
                self.done.fetch_add(1, Ordering::Relaxed);
                for &d in self.plan.dependents_of(t as usize) {
                    self.notify(d, ready);
                }
            }
            Err(e) => self.fail(e),
        }
    }

    fn call(
        &self,
        t: u32,
        run: impl FnOnce(&mut Args<'_>) -> Result<Value, BoxError>,
    ) -> Result<Value, Error> {
        let node = &self.plan.nodes[t as usize];
        // Copying an argument runs the user's `Clone`, so it is inside the
        // unwind guard too.
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let mut vals = self
                .gather(t)
                .map_err(|e| Box::new(EngineError(e)) as BoxError)?;
            let mut args = Args {
                key: &node.key,
                vals: &mut vals,
            };
            let _current = CurrentGuard::set(self.scheduler);
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

    fn internal(&self, t: u32) -> Error {
        Error::new(
            ErrorKind::Type,
            Some(self.plan.nodes[t as usize].key.clone()),
            "internal error: an argument went missing",
        )
    }

    /// Collects task `t`'s arguments: owned where taken by value, shared
    /// where borrowed.
    fn gather(&self, t: u32) -> Result<Vec<Option<Value>>, Error> {
        let node = &self.plan.nodes[t as usize];
        let mut e = self.plan.edge_start[t as usize] as usize;
        let mut vals = Vec::with_capacity(node.args.len());
        for arg in node.args.iter() {
            let v = self.source(t, &arg.src, arg.by_ref, &mut e)?;
            vals.push(Some(v));
        }
        Ok(vals)
    }

    fn source(&self, t: u32, src: &Src, by_ref: bool, e: &mut usize) -> Result<Value, Error> {
        match src {
            Src::Const { value, clone } => {
                if by_ref {
                    Ok(value.clone())
                } else {
                    clone(&**value).ok_or_else(|| self.internal(t))
                }
            }
            Src::List { items, build } => {
                let mut elems = Vec::with_capacity(items.len());
                for item in items.iter() {
                    elems.push(self.source(t, item, false, e)?);
                }
                let key = &self.plan.nodes[t as usize].key;
                match build {
                    Some(build) => build(elems).map_err(|found| {
                        Error::type_mismatch(key, "a list", "elements of one type", found)
                    }),
                    None => Ok(Arc::new(DynList(elems))),
                }
            }
            Src::Node(_) | Src::Key(_) | Src::MaybeKey { .. } => {
                let p = self.plan.edges[*e];
                *e += 1;
                if p == NONE {
                    let Src::MaybeKey { literal, clone, .. } = src else {
                        return Err(self.internal(t));
                    };
                    return if by_ref {
                        Ok(literal.clone())
                    } else {
                        clone(&**literal).ok_or_else(|| self.internal(t))
                    };
                }
                if by_ref {
                    lock(&self.slots[p as usize])
                        .clone()
                        .ok_or_else(|| self.internal(t))
                } else {
                    self.take(p, Some(t))
                }
            }
        }
    }

    /// One by-value use of `p`'s value: the last use moves it, others copy.
    fn take(&self, p: u32, by: Option<u32>) -> Result<Value, Error> {
        let last = self.uses[p as usize].fetch_sub(1, Ordering::AcqRel) == 1;
        let v = {
            let mut slot = lock(&self.slots[p as usize]);
            if last {
                slot.take()
            } else {
                slot.clone()
            }
        };
        let Some(v) = v else {
            return Err(self.internal(p));
        };
        if last && Arc::strong_count(&v) == 1 {
            return Ok(v);
        }
        match self.plan.clone[p as usize].and_then(|f| f(&*v)) {
            Some(copy) => Ok(copy),
            None => {
                let key = &self.plan.nodes[p as usize].key;
                let by = match by {
                    Some(c) => format!("task `{}`", self.plan.nodes[c as usize].key),
                    None => "the output".to_string(),
                };
                Err(Error::new(
                    ErrorKind::NotClone,
                    Some(key.clone()),
                    format!(
                        "{by} needs its own copy of the value of `{key}` (type `{}`), which is \
                         still in use elsewhere, but that type is not known to be Clone",
                        (*v).type_name()
                    ),
                ))
            }
        }
    }

    fn release_borrows(&self, t: u32, ready: &mut impl FnMut(u32)) {
        let node = &self.plan.nodes[t as usize];
        let mut e = self.plan.edge_start[t as usize] as usize;
        let plan = self.plan;
        node.for_each_leaf(|_, by_ref| {
            let p = plan.edges[e];
            e += 1;
            if !by_ref || p == NONE {
                return;
            }
            let p = p as usize;
            if self.uses[p].fetch_sub(1, Ordering::AcqRel) == 1 {
                drop(lock(&self.slots[p]).take());
            }
            let mover = plan.release[p];
            if mover != NONE && self.borrows[p].fetch_sub(1, Ordering::AcqRel) == 1 {
                self.notify(mover, ready);
            }
        });
    }

    /// After the scheduler is done: the first error, or the outputs.
    pub fn finish(self) -> Result<Vec<Value>, Error> {
        if let Some(e) = lock(&self.error).take() {
            return Err(e);
        }
        if self.done.load(Ordering::Acquire) != self.plan.len() {
            return Err(self.stall_error());
        }
        let outputs = self.plan.outputs.clone();
        outputs.iter().map(|&o| self.take(o, None)).collect()
    }

    fn stall_error(&self) -> Error {
        let plan = self.plan;
        for p in 0..plan.len() {
            let c = plan.release[p];
            if c != NONE && self.waits[c as usize].load(Ordering::Acquire) > 0 {
                let (pk, ck) = (&plan.nodes[p].key, &plan.nodes[c as usize].key);
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
            None,
            "internal error: the computation stopped before every task ran",
        )
    }
}

/// Runs every task on the caller's thread, depth-first.
pub(crate) fn run_sync(exec: &Exec<'_>) {
    let mut stack = exec.initial();
    stack.reverse();
    while let Some(t) = stack.pop() {
        let mark = stack.len();
        exec.execute(t, &mut |d| stack.push(d));
        if exec.failed() {
            break;
        }
        // The first task made ready runs next (LIFO, depth-first).
        stack[mark..].reverse();
    }
}

/// Runs the tasks on a rayon pool (`None`: the current or global one). A
/// worker that finishes a task goes on with the first task it made ready and
/// spawns the rest, so chains run without queueing and reductions stay
/// depth-first. Never blocks a worker: a task is spawned only once ready.
pub(crate) fn run_threads<'e>(exec: &'e Exec<'e>, pool: Option<&rayon::ThreadPool>) {
    let initial = exec.initial();
    let body = |s: &rayon::Scope<'e>| {
        for &t in initial.iter().rev() {
            s.spawn(move |s| chain(exec, s, t));
        }
    };
    match pool {
        Some(pool) => pool.scope(body),
        None => rayon::scope(body),
    }
}

fn chain<'s>(exec: &'s Exec<'s>, s: &rayon::Scope<'s>, first: u32) {
    let mut ready: Vec<u32> = Vec::new();
    let mut next = first;
    loop {
        exec.execute(next, &mut |d| ready.push(d));
        let Some((&head, rest)) = ready.split_first() else {
            return;
        };
        for &d in rest.iter().rev() {
            s.spawn(move |s| chain(exec, s, d));
        }
        next = head;
        ready.clear();
    }
}
