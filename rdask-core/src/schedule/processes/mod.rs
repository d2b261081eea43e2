//! The processes scheduler: tasks in worker processes, crash-isolated and
//! kept warm (dask's `multiprocessing.get`).
//!
//! What runs where: a `#[delayed]` function whose parameters and result are
//! serde types runs in a worker; every other task (closures from `map` and
//! `delay!`, operators, raw-graph tasks, non-serde types) runs in the
//! calling process, so any graph that runs on threads runs here with the
//! same result. The parent drives the computation with the usual executor
//! on `n` threads; a thread that meets a remote task encodes its arguments,
//! hands them to an idle worker, and waits for the reply. Values live in the
//! parent: a worker gets exactly the arguments of the task it runs and
//! returns its result (simple and robust; shipping values between workers
//! directly is a later optimisation). A big result stays in the parent as
//! the bytes the worker sent: forwarded unchanged to the next
//! worker that needs it, decoded once if a task here or an output does.
//!
//! The protocol: a worker is this program re-executed with `RDASK_WORKER`
//! set; before `main` it moves the protocol off its standard streams onto
//! private close-on-exec fds (`worker`). A task's stdin there is
//! `/dev/null` and its stdout goes to stderr, and a subprocess it starts
//! inherits neither pipe. The parent writes one `RUN` frame (`wire`: the
//! function's registered name, then its encoded arguments) and waits for
//! one reply in a plain blocking read. Ready tasks that a driver thread
//! holds together (a range of a graph's first tasks) go as a batch: their
//! frames in one write of at most a page (which the pipe always takes
//! whole), their replies read in order, which the worker writes at once
//! when no request is waiting in its buffer; one round trip for up to a
//! page of small tasks. A straight chain of remote calls (each the only
//! consumer of the one before, its other arguments constants) goes the
//! same way: each link after the first is a `RUN_NEXT`, whose input is the
//! result the worker just made, kept there, so the chain costs one round
//! trip, not one a link (`Exec::execute_linked`). Every worker is started
//! from one long-lived thread, which also watches the busy ones (`watch`).
//!
//! Faults: a panic inside a worker (in the task, or in the user's
//! `Deserialize` of its arguments or `Serialize` of its result) is an
//! `ErrorKind::Panic` error naming the task, and the worker lives on. A
//! worker that dies (abort, segfault, killed, out of memory, `exit`) is
//! noticed at once (its pipe closes, even while a subprocess it started
//! lives on), reaped, replaced, and its task retried once on a fresh
//! worker, then failed as `ErrorKind::WorkerLost` (in a batch, every task
//! without a reply is run once more alone: the batch was its first
//! attempt; a chain's link then on the result the call before it gave
//! back). On Linux a stopped worker (SIGSTOP, a debugger) counts as
//! dead: an idle one is replaced when next wanted; a busy one is killed
//! once stopped for a second. A task's timeout (`timeout_ms`) kills its
//! worker; without one, a task that never returns holds its worker, and
//! its computation. Workers exit with the parent (on Linux at once, by a
//! parent-death signal; elsewhere when they find their request pipe
//! closed).

mod pool;
mod watch;
mod wire;
// Worker mode uses unix file descriptors; elsewhere starting a worker is a
// clear error (see `pool`).
#[cfg(unix)]
mod worker;

use crate::error::{BoxError, Error, ErrorKind};
use crate::exec::{Batches, Prepared, Remote};
use crate::key::Key;
use crate::task::remote::{Encoding, RemoteFns};
use crate::task::{Args, EngineError, FnInfo};
use crate::value::{Encoded, Value};
use pool::{Lost, Pool, BATCH_BYTES};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use wire::kind;

/// Starts `cmd` on the long-lived thread that starts every worker (a child
/// asking for a parent-death signal must not die with a caller's thread).
pub(crate) fn spawn(
    cmd: std::process::Command,
) -> std::io::Result<(std::process::Child, Arc<watch::Watch>)> {
    watch::spawn(cmd)
}

/// The configuration of [`Scheduler::Processes`](crate::Scheduler::Processes).
///
/// ```
/// use rdask::prelude::*;
///
/// #[delayed]
/// fn square(x: u64) -> u64 {
///     x * x // serde types in and out: runs in a worker process
/// }
///
/// let s = Scheduler::processes(2);
/// if let Scheduler::Processes(p) = &s {
///     p.warm_up()?; // start the workers now, not at the first task
///     assert_eq!(p.worker_pids().len(), 2);
/// }
/// let squares: Vec<_> = (1..=3).map(square).collect();
/// assert_eq!(rdask::compute_with(&squares, &s)?, vec![1, 4, 9]);
/// # Ok::<(), rdask::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Processes {
    pub(crate) workers: usize,
    /// The worker program; `None`: this program (`current_exe`).
    pub(crate) program: Option<std::path::PathBuf>,
    /// How long a new worker may take to start.
    pub(crate) start_timeout: std::time::Duration,
    /// What tasks may take (`Scheduler::with_resources`).
    pub(crate) resources: super::Resources,
}

impl Processes {
    /// The number of worker processes (`0` asked: one per core).
    pub fn workers(&self) -> usize {
        if self.workers == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            self.workers
        }
    }

    /// Runs workers from another program instead of this one (it must link
    /// rdask and the same `#[delayed]` functions).
    pub fn program(mut self, path: impl Into<std::path::PathBuf>) -> Processes {
        self.program = Some(path.into());
        self
    }

    /// How long a new worker may take to say it is ready (default 20 s)
    /// before it is killed and the computation fails.
    pub fn start_timeout(mut self, timeout: std::time::Duration) -> Processes {
        self.start_timeout = timeout;
        self
    }

    /// The shared pool of this size and program.
    pub(crate) fn pool(&self) -> Arc<Pool> {
        Pool::shared(self.workers(), self.program.clone(), self.start_timeout)
    }

    /// Starts the workers now rather than at the first remote task. Any
    /// thread may call it: the workers do not end with it.
    pub fn warm_up(&self) -> crate::error::Result<()> {
        self.pool()
            .warm(self.workers())
            .map_err(|m| Error::new(ErrorKind::Scheduler, None, m))
    }

    /// The process ids of this pool's live workers, idle or busy (the pool
    /// is shared by every computation on it).
    pub fn worker_pids(&self) -> Vec<u32> {
        self.pool().live_pids()
    }
}

static REMOTE_TASKS: AtomicU64 = AtomicU64::new(0);
static LOCAL_TASKS: AtomicU64 = AtomicU64::new(0);

/// How many tasks ran in worker processes and how many in this process, on
/// processes schedulers, since the program started.
pub fn task_counts() -> (u64, u64) {
    (
        REMOTE_TASKS.load(Ordering::Relaxed),
        LOCAL_TASKS.load(Ordering::Relaxed),
    )
}

/// The executor's hook: a remote task goes to a worker of this pool.
impl Remote for Pool {
    fn run(&self, info: &FnInfo, fns: RemoteFns, args: &mut Args<'_>) -> Result<Value, BoxError> {
        run_remote(self, info, fns, args)
    }

    fn ran_here(&self) {
        LOCAL_TASKS.fetch_add(1, Ordering::Relaxed);
    }

    fn batches(&self) -> Option<&dyn Batches> {
        Some(self)
    }
}

impl Batches for Pool {
    fn prepare(
        &self,
        info: &'static FnInfo,
        fns: RemoteFns,
        args: &mut Args<'_>,
    ) -> Result<Prepared, BoxError> {
        let key = args.key().clone();
        let args = encode_args(&key, fns, args)?;
        Ok(Prepared {
            key,
            info,
            fns,
            args,
            after: None,
        })
    }

    fn hole(&self, fns: RemoteFns) -> Value {
        Value::new(Encoded::new(Vec::new(), fns.out))
    }

    fn prepare_next(
        &self,
        info: &'static FnInfo,
        fns: RemoteFns,
        args: &mut Args<'_>,
        hole: &Value,
    ) -> Result<Prepared, BoxError> {
        let mut call = self.prepare(info, fns, args)?;
        // The hole is forwarded as bytes (none): where they start is where
        // the worker puts the result it kept.
        let at = hole.addr().and_then(|a| call.args.offset_of(a));
        call.after = Some(
            at.and_then(|at| u32::try_from(at).ok())
                .ok_or("not forwarded")?,
        );
        Ok(call)
    }

    /// The first call, and the links after it that fit one write with it
    /// (`BATCH_BYTES`); a first call too big for that goes alone.
    fn run_chain(&self, calls: Vec<Prepared>) -> Vec<Result<Value, BoxError>> {
        let all: Vec<Slices<'_>> = calls.iter().map(|c| c.args.slices()).collect();
        let out = self.send_first(&calls, &all);
        REMOTE_TASKS.fetch_add(out.len() as u64, Ordering::Relaxed);
        out
    }

    /// Calls go out in batches of at most `BATCH_BYTES` of requests, one
    /// write and one wait each; a call bigger than that goes alone.
    fn run_prepared(&self, calls: Vec<Prepared>) -> Vec<Result<Value, BoxError>> {
        REMOTE_TASKS.fetch_add(calls.len() as u64, Ordering::Relaxed);
        let mut out = Vec::with_capacity(calls.len());
        let all: Vec<Slices<'_>> = calls.iter().map(|c| c.args.slices()).collect();
        let (mut rest, mut slices) = (&calls[..], &all[..]);
        while !rest.is_empty() {
            let sent = self.send_first(rest, slices);
            let n = sent.len();
            out.extend(sent);
            (rest, slices) = (&rest[n..], &slices[n..]);
        }
        out
    }
}

/// A prepared call's bytes, in parts (or why they are lost).
type Slices<'a> = Result<Vec<&'a [u8]>, Error>;

/// How many of `calls` (their bytes `slices`), from the first, go in one
/// write of at most `BATCH_BYTES` of requests; a call whose bytes are lost
/// ends them.
fn fitting(calls: &[Prepared], slices: &[Slices<'_>]) -> usize {
    let mut bytes = 0;
    let fits = |(c, s): &(&Prepared, &Slices<'_>)| {
        let Ok(s) = s else { return false };
        // A frame's head, the name and its NUL, a link's offset, the bytes.
        let offset = c.after.map_or(0, |_| 4);
        bytes += 5 + c.info.path.len() + 1 + offset + s.iter().map(|p| p.len()).sum::<usize>();
        bytes <= BATCH_BYTES
    };
    calls.iter().zip(slices).take_while(fits).count()
}

impl Pool {
    /// Sends the first of `calls` (`calls` is not empty) and those after it
    /// that fit one write with it ([`fitting`]): their results, in order.
    fn send_first(
        &self,
        calls: &[Prepared],
        slices: &[Slices<'_>],
    ) -> Vec<Result<Value, BoxError>> {
        match fitting(calls, slices) {
            n if n < 2 => vec![self.send_alone(&calls[0], &slices[0])],
            n => self.send_batch(&calls[..n], &slices[..n]),
        }
    }

    /// Sends `calls`, whose bytes are all here, in one write: their
    /// results, in order.
    fn send_batch(
        &self,
        calls: &[Prepared],
        slices: &[Slices<'_>],
    ) -> Vec<Result<Value, BoxError>> {
        let joined: Vec<Vec<u8>> = slices
            .iter()
            .map(|s| s.as_ref().map(|s| s.concat()).unwrap_or_default())
            .collect();
        let batch: Vec<pool::Call<'_>> = calls
            .iter()
            .zip(&joined)
            .map(|(c, a)| (c.info.path, &a[..], c.after))
            .collect();
        let replies = self.call_many(&batch);
        calls
            .iter()
            .zip(replies)
            .map(|(c, reply)| reply_value(&c.key, c.fns, reply))
            .collect()
    }

    /// Sends one call alone: too big to go with others, or its bytes are
    /// lost (its error).
    fn send_alone(&self, c: &Prepared, slices: &Slices<'_>) -> Result<Value, BoxError> {
        let slices = slices
            .as_ref()
            .map_err(|e| Box::new(EngineError(e.duplicate())) as BoxError)?;
        pool_call(self, &c.key, c.info, c.fns, slices)
    }
}

/// Results of more bytes than this stay encoded in this process.
const KEEP_ENCODED: usize = 4 << 10;

/// Runs one task in a worker: the adapter used instead of the local one.
fn run_remote(
    pool: &Pool,
    info: &FnInfo,
    fns: RemoteFns,
    args: &mut Args<'_>,
) -> Result<Value, BoxError> {
    REMOTE_TASKS.fetch_add(1, Ordering::Relaxed);
    let key = args.key().clone();
    let bytes = encode_args(&key, fns, args)?;
    let slices = bytes
        .slices()
        .map_err(|e| Box::new(EngineError(e)) as BoxError)?;
    pool_call(pool, &key, info, fns, &slices)
}

/// The engine's error for task `key`: `what` follows "task `key`".
fn failure(key: &Key, kind: ErrorKind, what: &dyn std::fmt::Display) -> BoxError {
    let e = Error::new(kind, Some(key.clone()), format!("task `{key}`{what}"));
    Box::new(EngineError(e))
}

/// Task `key`'s arguments, encoded for a worker.
fn encode_args(key: &Key, fns: RemoteFns, args: &Args<'_>) -> Result<Encoding, BoxError> {
    (fns.encode)(args).map_err(|e| {
        failure(
            key,
            ErrorKind::Type,
            &format_args!(": cannot encode its arguments for a worker: {e}"),
        )
    })
}

/// Runs one call on a worker of `pool` and reads its reply as the task's
/// value.
fn pool_call(
    pool: &Pool,
    key: &Key,
    info: &FnInfo,
    fns: RemoteFns,
    slices: &[&[u8]],
) -> Result<Value, BoxError> {
    let reply = pool.call(info.path, slices, info.annot.timeout_value());
    reply_value(key, fns, reply)
}

/// A worker's reply (or why there is none) as task `key`'s value or error.
fn reply_value(
    key: &Key,
    fns: RemoteFns,
    reply: Result<(u8, Vec<u8>), Lost>,
) -> Result<Value, BoxError> {
    let fail = |kind: ErrorKind, what: &dyn std::fmt::Display| failure(key, kind, what);
    let (k, body) = reply.map_err(|lost| match lost {
        Lost::Start(m) => Box::new(EngineError(Error::new(
            ErrorKind::Scheduler,
            Some(key.clone()),
            m,
        ))),
        Lost::TooBig(m) => fail(ErrorKind::Scheduler, &format_args!(": {m}")),
        Lost::Died(m) => fail(
            ErrorKind::WorkerLost,
            &format_args!(": its worker died twice ({m})"),
        ),
        Lost::TimedOut(t) => fail(
            ErrorKind::Timeout,
            &format_args!(
                " ran longer than its timeout of {} ms (its worker was killed and replaced)",
                t.as_millis()
            ),
        ),
    })?;
    let text = || String::from_utf8_lossy(&body).into_owned();
    match k {
        // A big value is kept as the worker sent it: forwarded as is to
        // tasks in other workers, decoded only where this process needs it.
        // A small one is decoded now (cheaper to hold, and to re-encode).
        kind::OK if body.len() > KEEP_ENCODED => Ok(Value::new(Encoded::new(body, fns.out))),
        kind::OK => fns.out.decode(&body).map_err(|e| {
            fail(
                ErrorKind::Type,
                &format_args!(": cannot decode its result from the worker: {e}"),
            )
        }),
        kind::TASK_ERR => Err(text().into()),
        k => {
            let (error, what) = match k {
                kind::DECODE_ERR => (ErrorKind::Type, ": the worker cannot decode its arguments"),
                kind::ENCODE_ERR => (ErrorKind::Type, ": the worker cannot encode its result"),
                kind::TOO_BIG => (ErrorKind::Scheduler, ""),
                kind::PANIC => (ErrorKind::Panic, " panicked in a worker"),
                _ => (ErrorKind::Scheduler, ": the worker refused it"),
            };
            Err(fail(error, &format_args!("{what}: {}", text())))
        }
    }
}
