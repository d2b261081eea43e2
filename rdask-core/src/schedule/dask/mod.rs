//! The Dask scheduler: a computation's tasks on a real, unmodified Dask
//! cluster (dask's `distributed.Client.get`).
//!
//! Dask does the placement, work stealing, spilling, recomputation of lost
//! results and the dashboard; rdask supplies the tasks. This program starts
//! a small Python process (the *shim*, shipped inside the crate and written
//! to a cache directory) that runs `distributed.Client` and takes the
//! plan's tasks from here. On each dask worker a worker plugin starts this
//! same program in worker mode, one helper per worker thread (the program
//! travels through the scheduler, or is found at a path on every host), and
//! each dask task sends one request down a pipe to a helper.
//!
//! What runs where, as on processes: a `#[delayed]` function whose
//! parameters and result are serde types runs on the cluster; every other
//! task (closures, operators, raw-graph tasks, other types) runs here. A
//! task on the cluster is submitted without waiting for anything: its value
//! here is a name for bytes that dask holds (`session::Held`). The
//! bytes come here only when a task here or an output reads them, and dask
//! lets go of them when the last value naming them is dropped here. So a
//! graph of cluster tasks goes out whole, in batches, and its values move
//! between dask workers, not through this program. Chains fuse into one
//! dask task each (`batch`).
//!
//! Faults: a task's `Err` or panic fails the computation with its key and
//! message, as on processes; a helper that dies is replaced and its task
//! tried once more, then `ErrorKind::WorkerLost`; a dask worker that dies
//! loses nothing (dask recomputes); a scheduler that cannot be reached or
//! goes away is `ErrorKind::Scheduler` within seconds.

mod batch;
mod session;

pub use session::ClusterInfo;

use crate::callbacks::Callback;
use crate::control::CancelToken;
use crate::error::{BoxError, Error, ErrorKind};
use crate::exec::Remote;
use crate::key::Key;
use crate::task::remote::{Piece, RemoteFns};
use crate::task::{Args, EngineError, FnInfo};
use crate::value::{Encoded, Value};
use batch::{Arg, Task};
use session::{Held, Names, Progress, Session};
use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The configuration of [`Scheduler::Dask`](crate::Scheduler::Dask): which
/// cluster, and how to reach it.
///
/// ```no_run
/// use rdask::prelude::*;
///
/// #[delayed]
/// fn square(x: u64) -> u64 {
///     x * x // serde types in and out: runs on a dask worker
/// }
///
/// let s = Scheduler::dask("tcp://10.0.0.5:8786");
/// if let Scheduler::Dask(d) = &s {
///     let joined = d.connect()?; // join now, not at the first compute
///     println!("{} workers", joined.workers);
/// }
/// let squares: Vec<_> = (1..=3).map(square).collect();
/// assert_eq!(rdask::compute_with(&squares, &s)?, vec![1, 4, 9]);
/// # Ok::<(), rdask::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Dask {
    pub(crate) target: Target,
    python: Option<PathBuf>,
    program: Option<PathBuf>,
    timeout: Duration,
}

/// Which cluster.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Target {
    /// A scheduler's address (`tcp://host:port`).
    Address(String),
    /// A scheduler file (`dask scheduler --scheduler-file`, dask-jobqueue).
    File(PathBuf),
    /// A `LocalCluster` of `n` single-threaded workers on 127.0.0.1, started
    /// for this program.
    Local(usize),
}

impl Dask {
    pub(crate) fn new(target: Target) -> Dask {
        Dask {
            target,
            python: None,
            program: None,
            timeout: Duration::from_secs(10),
        }
    }

    /// The Python that runs the client side (it needs `distributed`):
    /// default `RDASK_DASK_PYTHON`, else `python3`.
    pub fn python(mut self, path: impl Into<PathBuf>) -> Dask {
        self.python = Some(path.into());
        self
    }

    /// Runs helpers from the program at `path` on every worker host (a
    /// shared file system, a container image) instead of shipping this
    /// program's bytes through the scheduler. It must link rdask and the
    /// same `#[delayed]` functions.
    pub fn program(mut self, path: impl Into<PathBuf>) -> Dask {
        self.program = Some(path.into());
        self
    }

    /// How long joining the cluster may take, and how long it may be out of
    /// reach during a computation before that fails (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Dask {
        self.timeout = timeout;
        self
    }

    fn python_path(&self) -> PathBuf {
        self.python
            .clone()
            .or_else(|| std::env::var_os("RDASK_DASK_PYTHON").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("python3"))
    }

    /// The session with this cluster: shared by every computation of this
    /// program on it, started on first use, started again after it ended.
    pub(crate) fn session(&self) -> crate::error::Result<Arc<Session>> {
        type Sessions = Mutex<HashMap<(Target, PathBuf, Option<PathBuf>), Arc<Session>>>;
        static SESSIONS: Mutex<Option<Sessions>> = Mutex::new(None);
        let python = self.python_path();
        let id = (self.target.clone(), python.clone(), self.program.clone());
        let mut all = SESSIONS.lock().unwrap_or_else(|e| e.into_inner());
        let sessions = all
            .get_or_insert_with(|| Mutex::new(HashMap::new()))
            .get_mut()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(s) = sessions.get(&id).filter(|s| !s.dead()) {
            return Ok(s.clone());
        }
        let s = Session::start(&self.target, &python, self.program.as_deref(), self.timeout)
            .map_err(|m| {
                Error::new(
                    ErrorKind::Scheduler,
                    None,
                    format!("cannot use the Dask cluster {self}: {m}"),
                )
            })?;
        let j = &s.joined;
        let dashboard = j
            .dashboard
            .as_deref()
            .map(|d| format!("; dashboard: {d}"))
            .unwrap_or_default();
        eprintln!(
            "rdask: joined the Dask cluster at {} ({} workers, {} threads, distributed {}){dashboard}",
            j.scheduler, j.workers, j.threads, j.distributed
        );
        sessions.insert(id, s.clone());
        Ok(s)
    }

    /// Joins the cluster now rather than at the first computation: what it
    /// said (workers, threads, version, dashboard).
    pub fn connect(&self) -> crate::error::Result<ClusterInfo> {
        Ok(self.session()?.joined.clone())
    }

    /// The process ids of the cluster's dask workers, each with those of
    /// the rdask helpers it runs (for tests and monitoring).
    pub fn worker_pids(&self) -> crate::error::Result<Vec<(u32, Vec<u32>)>> {
        self.session()?
            .worker_pids()
            .map_err(|m| Error::new(ErrorKind::Scheduler, None, m))
    }

    /// What the computation's executor calls for its remote tasks, telling
    /// `callbacks` when each has run on the cluster.
    pub(crate) fn run(&self, callbacks: &[Arc<dyn Callback>]) -> crate::error::Result<Run> {
        let session = self.session()?;
        session.begin();
        Ok(Run {
            session,
            names: Arc::new(Mutex::new(HashMap::new())),
            progress: (!callbacks.is_empty()).then(|| Arc::new(Progress::new(callbacks))),
        })
    }
}

static CALLS: AtomicU64 = AtomicU64::new(0);
static TASKS: AtomicU64 = AtomicU64::new(0);

/// How many rdask tasks this program has sent to Dask clusters, and as how
/// many dask tasks (fewer when chains fused), since it started.
pub fn task_counts() -> (u64, u64) {
    (CALLS.load(Ordering::Relaxed), TASKS.load(Ordering::Relaxed))
}

/// `dask://HOST:PORT`, `dask-file:PATH` or `dask-local:N`.
impl fmt::Display for Dask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.target {
            Target::Address(a) => {
                write!(f, "dask://{}", a.strip_prefix("tcp://").unwrap_or(a))
            }
            Target::File(p) => write!(f, "dask-file:{}", p.display()),
            Target::Local(n) => write!(f, "dask-local:{n}"),
        }
    }
}

/// Reads `dask://HOST:PORT` (also `dask://tls://HOST:PORT`),
/// `dask-file:PATH` and `dask-local:N`; `None` when `s` is none of them.
pub(crate) fn parse(s: &str) -> Option<Result<Dask, String>> {
    let lower = s.to_ascii_lowercase();
    if let Some(rest) = lower.strip_prefix("dask://").map(|_| &s[7..]) {
        if rest.is_empty() {
            return Some(Err("expected a scheduler address after \"dask://\"".into()));
        }
        let address = if rest.contains("://") {
            rest.to_string()
        } else {
            format!("tcp://{rest}")
        };
        return Some(Ok(Dask::new(Target::Address(address))));
    }
    if lower.starts_with("dask-file:") {
        let path = &s["dask-file:".len()..];
        if path.is_empty() {
            return Some(Err("expected a scheduler file after \"dask-file:\"".into()));
        }
        return Some(Ok(Dask::new(Target::File(path.into()))));
    }
    if let Some(n) = lower.strip_prefix("dask-local:") {
        return Some(match n.trim().parse::<usize>() {
            Ok(n) if n > 0 => Ok(Dask::new(Target::Local(n))),
            _ => Err("expected a worker count of at least 1 after \"dask-local:\"".into()),
        });
    }
    None
}

/// One computation on the cluster: the executor's [`Remote`] hook.
pub(crate) struct Run {
    session: Arc<Session>,
    names: Arc<Names>,
    progress: Option<Arc<Progress>>,
}

impl Run {
    /// Sends what is queued and waits for the outputs' bytes (all asked for
    /// at once), and for the callbacks to have heard of every task: the
    /// computation is over when this returns. A task's failure is the
    /// error.
    pub fn finish(
        &self,
        outputs: &[Value],
        token: Option<&CancelToken>,
    ) -> crate::error::Result<()> {
        let values: Vec<&Value> = outputs.iter().collect();
        self.wait_for(&values, token, || {
            outputs.iter().try_for_each(crate::value::fetch)
        })
    }

    /// [`finish`](Self::finish) for a keep-going computation: an output
    /// whose task failed on the cluster gets that error; the others wait.
    pub fn finish_each(
        &self,
        outputs: Vec<crate::error::Result<Value>>,
        token: Option<&CancelToken>,
    ) -> crate::error::Result<Vec<crate::error::Result<Value>>> {
        let values: Vec<&Value> = outputs.iter().filter_map(|o| o.as_ref().ok()).collect();
        let fetched: Vec<crate::error::Result<()>> = self.wait_for(&values, token, || {
            Ok(values.iter().map(|v| crate::value::fetch(v)).collect())
        })?;
        let mut fetched = fetched.into_iter();
        Ok(outputs
            .into_iter()
            .map(|o| o.and_then(|v| fetched.next().unwrap_or(Ok(())).map(|()| v)))
            .collect())
    }

    /// Asks for `values` at once, then `collect`s them (waiting for their
    /// bytes) and waits for the callbacks to have heard of every task. A
    /// cancel stops the wait; dropping the values then lets the cluster
    /// forget the work.
    fn wait_for<R>(
        &self,
        values: &[&Value],
        token: Option<&CancelToken>,
        collect: impl FnOnce() -> crate::error::Result<R>,
    ) -> crate::error::Result<R> {
        for v in values {
            crate::value::prefetch(v);
        }
        self.session.flush();
        let wait = || {
            let collected = collect()?;
            if let Some(p) = &self.progress {
                p.wait(&self.session, || {
                    token.is_some_and(CancelToken::is_cancelled)
                })?;
            }
            Ok(collected)
        };
        let names: Vec<&str> = values
            .iter()
            .filter_map(|v| crate::value::held_as(v))
            .collect();
        match token {
            Some(t) => t.with_hook(&|| self.session.give_up(&names), wait),
            None => wait(),
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        self.session.end();
    }
}

impl Remote for Run {
    fn run(&self, info: &FnInfo, fns: RemoteFns, args: &mut Args<'_>) -> Result<Value, BoxError> {
        let key: Key = args.key().clone();
        let fail = |kind: ErrorKind, what: String| -> BoxError {
            Box::new(EngineError(Error::new(kind, Some(key.clone()), what)))
        };
        let encoding = (fns.encode)(args).map_err(|e| {
            fail(
                ErrorKind::Type,
                format!("task `{key}`: cannot encode its arguments for the cluster: {e}"),
            )
        })?;
        let dask_key = self.session.dask_key(&key);
        let parts = encoding
            .pieces()
            .map(|p| match p {
                Piece::Bytes(b) => Arg::Lit(b.to_vec()),
                Piece::Named(k) => Arg::Key(k.to_string()),
            })
            .collect();
        self.names
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(dask_key.clone(), key.clone());
        if let Some(p) = &self.progress {
            self.session.watch(&dask_key, key.clone(), p);
        }
        self.session
            .submit(Task {
                key: dask_key.clone(),
                func: info.path,
                args: parts,
                watch: self.progress.is_some(),
                retries: info.annot.retries_left(),
                timeout_ms: info
                    .annot
                    .timeout_value()
                    .map_or(0, |t| t.as_millis() as u64),
                placement: (info.annot.priority_value(), info.annot.resources()),
            })
            .map_err(|e| Box::new(EngineError(e)) as BoxError)?;
        let held = Held::new(dask_key, self.session.clone(), self.names.clone());
        Ok(Value::new(Encoded::there(Arc::new(held), fns.out)))
    }

    /// A task about to run here: whatever it waits for must be on its way.
    fn ran_here(&self) {
        self.session.flush();
    }

    fn reports_finish(&self) -> bool {
        true
    }
}
