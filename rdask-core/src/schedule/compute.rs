//! One computation, from roots to values: a tree runs straight from its
//! nodes; anything else is planned and run by this scheduler's loop, with
//! the callbacks told of its start and finish. A computation under a
//! cancel token started here runs on a thread of its own, so that a
//! cancel returns at once.

use super::context::Running;
use super::dask::Run as ClusterRun;
use super::{queue, sync, threads, Scheduler};
use crate::cache::{self, Cache};
use crate::callbacks::{self, Callback};
use crate::control::{self, CancelToken};
use crate::error::{Error, ErrorKind, Result};
use crate::exec::{take_output, tree, Exec, Remote};
use crate::node::NodeRef;
use crate::plan::{Lookup, Plan};
use crate::pool::{sized_pool, Purpose, RayonPool};
use crate::task::annotations;
use crate::value::Value;
use std::cell::Cell;
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;

/// What a computation hands back: every output's value, or stop at the
/// first failure ([`Vec<Value>`]); or each output's own result, keeping
/// going after failures (`Vec<Result<Value>>`, `run_each`).
pub(crate) trait Outputs: Sized + Send + 'static {
    /// Whether the executor keeps going after a failure.
    const EACH: bool;
    /// The executor's outputs, once its scheduler has joined.
    fn collect(exec: Exec<'_>) -> Result<Self>;
    /// Waits for the outputs a cluster still holds.
    fn on_cluster(self, run: &ClusterRun, token: Option<&CancelToken>) -> Result<Self>;
    /// The outputs of one tree (never keeping going: no plan).
    fn of_tree(v: Value) -> Self;
}

impl Outputs for Vec<Value> {
    const EACH: bool = false;
    fn collect(exec: Exec<'_>) -> Result<Self> {
        exec.finish()
    }
    fn on_cluster(self, run: &ClusterRun, token: Option<&CancelToken>) -> Result<Self> {
        run.finish(&self, token).map(|()| self)
    }
    fn of_tree(v: Value) -> Self {
        vec![v]
    }
}

impl Outputs for Vec<Result<Value>> {
    const EACH: bool = true;
    fn collect(exec: Exec<'_>) -> Result<Self> {
        exec.finish_each()
    }
    fn on_cluster(self, run: &ClusterRun, token: Option<&CancelToken>) -> Result<Self> {
        run.finish_each(self, token)
    }
    fn of_tree(v: Value) -> Self {
        vec![Ok(v)]
    }
}

impl Scheduler {
    /// Plans the computation of `roots` (raw keys resolved in `graph`) and
    /// runs it, with the callbacks attached to it (`extra`) and those active
    /// here; a single tree runs without a plan. On a pool, all of it happens
    /// inside the pool, so that its workers wake once.
    pub(crate) fn compute(
        &self,
        roots: &[NodeRef],
        graph: Lookup<'_>,
        extra: &[Arc<dyn Callback>],
    ) -> Result<Vec<Value>> {
        // Read here, on the caller's thread, where they are set.
        let callbacks = callbacks::active(extra);
        let token = control::current().or_else(control::default_token);
        let cache = cache::current();
        self.compute_under(roots, graph, &callbacks, token.as_ref(), cache.as_ref())
    }

    /// [`compute`](Self::compute) with its callbacks found and under
    /// `token`, if any, its outputs collected as `O` says.
    fn compute_under<O: Outputs>(
        &self,
        roots: &[NodeRef],
        graph: Lookup<'_>,
        callbacks: &[Arc<dyn Callback>],
        token: Option<&CancelToken>,
        cache: Option<&Cache>,
    ) -> Result<O> {
        // One tree, nothing watching, in this process: no plan needed (see
        // `crate::exec::tree`).
        let tree = match roots {
            [root]
                if root.tree
                    && !O::EACH
                    && graph.is_none()
                    && token.is_none()
                    && cache.is_none()
                    && callbacks.is_empty()
                    // (a tree runs without reading annotations)
                    && !annotations::EVER.load(std::sync::atomic::Ordering::Relaxed)
                    && !matches!(self, Scheduler::Processes(_) | Scheduler::Dask(_)) =>
            {
                Some(&**root)
            }
            _ => None,
        };
        if tree.is_none() {
            PLANNED.with(|n| n.set(n.get() + 1));
        }
        let pool = self.rayon_pool()?;
        let work = || match tree {
            Some(root) => {
                let parallel = !matches!(self, Scheduler::Sync);
                tree::run(root, self, parallel).map(O::of_tree)
            }
            None => {
                let plan = Plan::build(roots, graph)?;
                self.run(&plan, callbacks, token, cache, pool.as_ref())
            }
        };
        match &pool {
            None => work(),
            Some(pool) => {
                pool.remember();
                pool.install(work)
            }
        }
    }

    /// [`compute`](Self::compute), each output moved out as a `T` (an
    /// error names the output that is not one).
    pub(crate) fn compute_as<T: Send + Sync + 'static>(
        &self,
        roots: &[NodeRef],
        graph: Lookup<'_>,
        extra: &[Arc<dyn Callback>],
    ) -> Result<Vec<T>> {
        self.compute_as_under(roots, graph, extra, None, None)
    }

    /// [`compute_as`](Self::compute_as) under `token` (`None`: the token
    /// of the computation this runs inside, or the Ctrl-C one).
    pub(crate) fn compute_as_under<T: Send + Sync + 'static>(
        &self,
        roots: &[NodeRef],
        graph: Lookup<'_>,
        extra: &[Arc<dyn Callback>],
        token: Option<CancelToken>,
        cache: Option<Cache>,
    ) -> Result<Vec<T>> {
        self.compute_typed(
            roots,
            graph,
            extra,
            token,
            cache,
            |values: Vec<Value>, roots| {
                values
                    .into_iter()
                    .zip(roots)
                    .map(|(v, root)| take_output::<T>(Some(v), &root.key))
                    .collect()
            },
        )
    }

    /// Each output's own result, keeping going after failures: a failure
    /// fails only the outputs that depend on it (`run_each`, `get_each`).
    /// `Err` when the whole computation failed (a cancel, a callback).
    pub(crate) fn compute_each<T: Send + Sync + 'static>(
        &self,
        roots: &[NodeRef],
        graph: Lookup<'_>,
        extra: &[Arc<dyn Callback>],
        token: Option<CancelToken>,
        cache: Option<Cache>,
    ) -> Result<Vec<Result<T>>> {
        self.compute_typed(
            roots,
            graph,
            extra,
            token,
            cache,
            |values: Vec<Result<Value>>, roots| {
                Ok(values
                    .into_iter()
                    .zip(roots)
                    .map(|(v, root)| v.and_then(|v| take_output::<T>(Some(v), &root.key)))
                    .collect())
            },
        )
    }

    /// Runs a computation and types its outputs with `typed`, on a thread
    /// of its own when it runs under a token and started here (so that a
    /// cancel returns at once while its running tasks finish; their
    /// results are dropped).
    fn compute_typed<O: Outputs, R: Send + 'static>(
        &self,
        roots: &[NodeRef],
        graph: Lookup<'_>,
        extra: &[Arc<dyn Callback>],
        token: Option<CancelToken>,
        cache: Option<Cache>,
        typed: fn(O, &[NodeRef]) -> Result<R>,
    ) -> Result<R> {
        let callbacks = callbacks::active(extra);
        let cache = cache.or_else(cache::current);
        let inside = control::current();
        // A program with timed tasks runs each computation under a token
        // of its own, so that a timeout returns at the deadline.
        let token = token
            .or_else(|| inside.clone())
            .or_else(control::default_token)
            .or_else(|| annotations::timed().then(CancelToken::new));
        match (token, graph) {
            (Some(token), None) if inside.is_none() => self.compute_detached::<O, R>(
                roots.to_vec(),
                callbacks.to_vec(),
                token,
                cache,
                typed,
            ),
            (token, graph) => {
                let outputs = self.compute_under::<O>(
                    roots,
                    graph,
                    &callbacks,
                    token.as_ref(),
                    cache.as_ref(),
                )?;
                typed(outputs, roots)
            }
        }
    }

    /// Runs the computation on a thread of its own and waits for it, or for
    /// `token` to be cancelled, whichever comes first.
    fn compute_detached<O: Outputs, R: Send + 'static>(
        &self,
        roots: Vec<NodeRef>,
        callbacks: Vec<Arc<dyn Callback>>,
        token: CancelToken,
        cache: Option<Cache>,
        typed: fn(O, &[NodeRef]) -> Result<R>,
    ) -> Result<R> {
        if token.is_cancelled() {
            return Err(token.error());
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let (scheduler, watched) = (self.clone(), token.clone());
        let spawned = std::thread::Builder::new()
            .name("rdask-compute".into())
            .spawn(move || {
                let result = scheduler
                    .compute_under::<O>(&roots, None, &callbacks, Some(&watched), cache.as_ref())
                    .and_then(|outputs| typed(outputs, &roots));
                let _ = tx.send(result);
            });
        if let Err(e) = spawned {
            return Err(Error::new(
                ErrorKind::Scheduler,
                None,
                format!("cannot start the computation's thread: {e}"),
            ));
        }
        loop {
            match rx.recv_timeout(std::time::Duration::from_millis(5)) {
                Ok(result) => return result,
                Err(RecvTimeoutError::Timeout) if token.is_cancelled() => return Err(token.error()),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(Error::new(
                        ErrorKind::Scheduler,
                        None,
                        "the computation's thread ended without a result".to_string(),
                    ))
                }
            }
        }
    }

    /// The rayon pool this scheduler's tasks (or, on processes, its
    /// driving threads) run on; `None` on `Sync`.
    fn rayon_pool(&self) -> Result<Option<RayonPool>> {
        Ok(Some(match self {
            Scheduler::Sync => return Ok(None),
            Scheduler::Threads(t) => match (&t.pool, t.workers) {
                (Some(pool), _) => RayonPool::Own(pool.clone()),
                (None, 0) => RayonPool::Global,
                (None, n) => RayonPool::Own(sized_pool(n, Purpose::Tasks)?),
            },
            // The parent drives on as many threads as there are workers.
            Scheduler::Processes(p) => RayonPool::Own(sized_pool(p.workers(), Purpose::Drivers)?),
            // Cluster tasks are only queued here: the threads run the local
            // tasks, and wait for values that must come here.
            Scheduler::Dask(_) => RayonPool::Own(sized_pool(
                std::thread::available_parallelism().map_or(2, |n| n.get()),
                Purpose::Drivers,
            )?),
        }))
    }

    /// Runs a plan on `pool` (`None`: this thread), with `callbacks`, and
    /// returns the values of its outputs.
    fn run<O: Outputs>(
        &self,
        plan: &Plan<'_>,
        callbacks: &[Arc<dyn Callback>],
        token: Option<&CancelToken>,
        cache: Option<&Cache>,
        pool: Option<&RayonPool>,
    ) -> Result<O> {
        if callbacks.is_empty() {
            return self.execute(plan, &[], token, cache, pool);
        }
        // `finish` runs however the computation ends, even on a panic.
        struct Finish<'c>(&'c [Arc<dyn Callback>], bool);
        impl Drop for Finish<'_> {
            fn drop(&mut self) {
                if !self.1 {
                    let _ = callbacks::each(self.0, "finish", |c| c.finish(false));
                }
            }
        }
        let mut guard = Finish(callbacks, false);
        let graph = callbacks::TaskGraph::new(plan);
        let result = callbacks::each(callbacks, "start_state", |c| c.start_state(&graph))
            .and_then(|()| callbacks::each(callbacks, "start", |c| c.start(plan.len())))
            .and_then(|()| self.execute(plan, callbacks, token, cache, pool));
        guard.1 = true;
        let finished = callbacks::each(callbacks, "finish", |c| c.finish(result.is_ok()));
        let values = result?;
        finished.map(|()| values)
    }

    /// Runs a plan through the executor with this scheduler's loop.
    fn execute<O: Outputs>(
        &self,
        plan: &Plan<'_>,
        callbacks: &[Arc<dyn Callback>],
        token: Option<&CancelToken>,
        cache: Option<&Cache>,
        pool: Option<&RayonPool>,
    ) -> Result<O> {
        // Worker processes, kept alive for the computation; or the cluster.
        let workers = match self {
            Scheduler::Processes(p) => Some(p.pool()),
            _ => None,
        };
        let cluster = match self {
            Scheduler::Dask(d) => Some(d.run(callbacks)?),
            _ => None,
        };
        let remote = match (&workers, &cluster) {
            (Some(w), _) => Some(&**w as &dyn Remote),
            (_, Some(c)) => Some(c as &dyn Remote),
            _ => None,
        };
        let mut exec = Exec::new(plan, callbacks, remote).with_cache(cache);
        if O::EACH {
            exec = exec.keep_going();
        }
        let ctx = Running {
            scheduler: self,
            token,
        };
        let annotated = exec.annotated();
        let totals = match annotated.resources {
            true => resources_for(&exec, self.resources())?,
            false => Vec::new(),
        };
        let queued = annotated.priorities || annotated.resources;
        let run = || match pool {
            _ if queued => queue::run(&exec, &ctx, pool, &totals),
            None => sync::run(&exec, &ctx),
            Some(RayonPool::Global) => threads::run(&exec, &ctx, None),
            Some(RayonPool::Own(pool)) => threads::run(&exec, &ctx, Some(pool)),
        };
        match token {
            // A cancel stops the loops: no task starts after it.
            Some(token) => token.with_hook(&|| exec.cancel(), run),
            None => run(),
        }
        // What the computation finished is on disk when it returns.
        if let Some(cache) = cache {
            cache.flush();
        }
        let outputs = O::collect(exec)?;
        match &cluster {
            Some(cluster) => outputs.on_cluster(cluster, token),
            None => Ok(outputs),
        }
    }
}

/// The resources the queue hands out: the scheduler's, after checking that
/// no task needs more than there are in all (dask would wait forever);
/// `None` (`Sync`): as much as the neediest task.
fn resources_for(exec: &Exec<'_>, totals: Option<&[(String, f64)]>) -> Result<Vec<(String, f64)>> {
    let plan = exec.plan();
    let mut enough: Vec<(String, f64)> = totals.unwrap_or(&[]).to_vec();
    for t in 0..plan.len() as u32 {
        for &(name, amount) in exec.annotations(t).resources() {
            let have = enough.iter_mut().find(|(n, _)| n == name);
            match (have, totals) {
                (Some((_, have)), None) => *have = have.max(amount),
                (None, None) => enough.push((name.to_string(), amount)),
                (Some((_, have)), Some(_)) if *have + 1e-9 >= amount => {}
                (have, Some(_)) => {
                    let key = &plan.nodes[t as usize].key;
                    let has = have.map_or(0.0, |(_, h)| *h);
                    return Err(Error::new(
                        ErrorKind::Scheduler,
                        Some(key.clone()),
                        format!(
                            "task `{key}` needs {amount} of resource `{name}`, but the \
                             scheduler has {has} in all (Scheduler::with_resources)"
                        ),
                    ));
                }
            }
        }
    }
    Ok(enough)
}

thread_local! {
    /// Computations this thread ran through a plan (for tests).
    static PLANNED: Cell<usize> = const { Cell::new(0) };
}

/// How many computations this thread has run through a plan (the rest were
/// trees, which need none).
pub(crate) fn planned() -> usize {
    PLANNED.with(Cell::get)
}
