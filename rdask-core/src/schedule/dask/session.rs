//! One connection to a Dask cluster: the Python shim process that runs
//! `distributed.Client` for this program, the messages to and from it, and
//! the values it holds for us.
//!
//! The protocol (both ways a little-endian `u32` length, then a msgpack
//! array; the shim's docstring has the list): the driver *submits* tasks
//! in batches, *wants* a key when a value must come here (a task that runs
//! here, an output), and *releases* a key when the last value naming it is
//! dropped. Dask holds every submitted key until then, and keeps a released
//! one while a task still needs it. One reader thread takes the shim's
//! replies and wakes whoever waits for them.
//!
//! Faults: the shim reports a task's failure with the key of the task that
//! failed first (dask hands its exception to every dependent); a lost
//! scheduler, a shim that dies, or one that cannot start ends the session
//! with an `ErrorKind::Scheduler` error for everyone waiting, and the next
//! computation starts a new one.

use super::batch::{Arg, Batch, Task};
use super::Target;
use crate::callbacks::{each, Callback};
use crate::error::{Error, ErrorKind};
use crate::key::Key;
use crate::value::Fetch;
use rmpv::Value as Msg;
use std::collections::HashMap;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

const SHIM: &str = include_str!("shim.py");
const BRIDGE: &str = include_str!("bridge.py");
/// The shim's `PROTOCOL`.
const PROTOCOL: u64 = 1;
/// A batch this big is sent without waiting for a reason to.
const BATCH: usize = 4096;

/// What the cluster said when we joined it.
#[derive(Clone, Debug)]
pub struct ClusterInfo {
    /// The scheduler's address.
    pub scheduler: String,
    /// Dask workers at the time.
    pub workers: usize,
    /// Their threads, together.
    pub threads: usize,
    /// The `distributed` version on the client side (the cluster's is the
    /// same: the shim checks).
    pub distributed: String,
    /// The dashboard's address, when the scheduler serves one.
    pub dashboard: Option<String>,
}

/// A reply the driver waits for: a key's bytes, or why they will not come.
#[derive(Default)]
struct Slot {
    got: Mutex<Option<Result<Vec<u8>, Failure>>>,
    ready: Condvar,
}

/// A failure as the shim reports it.
#[derive(Clone)]
struct Failure {
    /// The dask key of the task that failed.
    failed: String,
    kind: ErrorKind,
    message: String,
}

/// The callbacks of one computation, told when each of its cluster tasks
/// has run (`posttask`), and how many have not yet.
pub(crate) struct Progress {
    callbacks: Vec<Arc<dyn Callback>>,
    left: Mutex<usize>,
    changed: Condvar,
    /// A callback's panic (the computation fails with it).
    failed: Mutex<Option<Error>>,
}

impl Progress {
    pub fn new(callbacks: &[Arc<dyn Callback>]) -> Progress {
        Progress {
            callbacks: callbacks.to_vec(),
            left: Mutex::new(0),
            changed: Condvar::new(),
            failed: Mutex::new(None),
        }
    }

    /// Waits until every watched task has been heard of (or the session
    /// ended); a callback's panic is the error.
    pub fn wait(&self, session: &Session, stop: impl Fn() -> bool) -> Result<(), Error> {
        let mut left = self.left.lock().unwrap_or_else(|e| e.into_inner());
        while *left > 0 && !session.dead() {
            if stop() {
                return Err(crate::control::cancelled_error());
            }
            left = self
                .changed
                .wait_timeout(left, Duration::from_millis(100))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        drop(left);
        match self.failed.lock().unwrap_or_else(|e| e.into_inner()).take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn ran(&self, key: &Key, took: Duration, ok: bool) {
        if let Err(e) = each(&self.callbacks, "posttask", |c| {
            c.posttask(key, 0, took, ok)
        }) {
            self.failed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_or_insert(e);
        }
        *self.left.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
        self.changed.notify_all();
    }
}

/// A watched task: its key here, when it was sent, whose it is.
struct Watched {
    key: Key,
    sent: Instant,
    progress: Arc<Progress>,
}

pub(crate) struct Session {
    out: Mutex<Out>,
    /// Tasks whose computation's callbacks wait to hear they ran.
    watched: Mutex<HashMap<String, Watched>>,
    /// Keys whose bytes someone waits for.
    waiting: Mutex<HashMap<String, Arc<Slot>>>,
    /// An `info` request's reply.
    info: Mutex<Option<mpsc::Sender<Msg>>>,
    /// Why the session ended (then every wait fails at once).
    dead: OnceLock<String>,
    /// Computations running on the session (a release outside one is sent
    /// at once, not kept for the next flush).
    active: AtomicUsize,
    pub joined: ClusterInfo,
    /// The suffix of this process's counter keys.
    process: String,
    /// The suffix of this build's pure keys.
    build: String,
    child: Mutex<Child>,
}

struct Out {
    pipe: BufWriter<ChildStdin>,
    batch: Batch,
}

impl Session {
    /// Starts a shim for `target` and joins the cluster.
    pub fn start(
        target: &Target,
        python: &Path,
        program: Option<&Path>,
        timeout: Duration,
    ) -> Result<Arc<Session>, String> {
        let dir = cache_dir()?;
        let shim = write_once(&dir, "rdask_shim", SHIM)?;
        let bridge = write_once(&dir, "rdask_bridge", BRIDGE)?;
        let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
        let (ship, program) = match (program, target) {
            (Some(p), _) => (false, p.to_path_buf()),
            // A cluster on this machine runs this very file.
            (None, Target::Local(_)) => (false, exe.clone()),
            (None, _) => (true, exe.clone()),
        };
        let mut cmd = Command::new(python);
        cmd.arg(&shim)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if std::env::var_os("DASK_LOGGING__DISTRIBUTED").is_none() {
            cmd.env("DASK_LOGGING__DISTRIBUTED", "warning");
        }
        // Started on the long-lived workers' thread: the shim's own helpers
        // must not die with a caller's thread.
        let (mut child, _watch) = crate::schedule::processes::spawn(cmd).map_err(|e| {
            format!(
                "cannot start Python `{}` for the Dask scheduler: {e}; set RDASK_DASK_PYTHON \
                 to a Python that has dask.distributed (pip install 'distributed==2026.8.0')",
                python.display()
            )
        })?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            return Err("the Dask shim has no pipes".into());
        };
        let mut pipe = BufWriter::with_capacity(1 << 16, stdin);
        let target_msg = match target {
            Target::Address(a) => map(&[("address", Msg::from(a.as_str()))]),
            Target::File(f) => map(&[("scheduler_file", Msg::from(f.display().to_string()))]),
            Target::Local(n) => map(&[("local", Msg::from(*n as u64))]),
        };
        let hello = Msg::Array(vec![
            "hello".into(),
            map(&[
                ("protocol", PROTOCOL.into()),
                ("target", target_msg),
                ("bridge", bridge.display().to_string().into()),
                ("program", program.display().to_string().into()),
                ("ship", ship.into()),
                ("timeout", timeout.as_secs_f64().into()),
            ]),
        ]);
        let sent = send(&mut pipe, &hello).and_then(|()| pipe.flush());
        let (tx, rx) = mpsc::channel();
        let mut reader = BufReader::with_capacity(1 << 16, stdout);
        let first = std::thread::Builder::new()
            .name("rdask-dask-hello".into())
            .spawn(move || {
                let _ = tx.send((read(&mut reader), reader));
            })
            .map_err(|e| e.to_string())?;
        drop(first);
        // Joining may start a whole LocalCluster: allow for that.
        let wait = timeout + Duration::from_secs(60);
        let (first, reader) = match rx.recv_timeout(wait) {
            Ok(r) => r,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "the Dask shim did not join the cluster within {}s",
                    wait.as_secs()
                ));
            }
        };
        let fail = |child: &mut Child, why: String| {
            let _ = child.kill();
            let _ = child.wait();
            Err(why)
        };
        let joined = match first.as_ref().map(parse_reply) {
            Ok(Some(("ready", [info, ..]))) => cluster_info(info),
            Ok(Some(("fatal", [m, ..]))) => {
                return fail(&mut child, m.as_str().unwrap_or("?").to_string())
            }
            Ok(_) => return fail(&mut child, "the Dask shim sent nonsense".into()),
            Err(e) => {
                let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
                let why = match sent {
                    Err(w) => format!("{e}; writing to it: {w}"),
                    Ok(()) => e.clone(),
                };
                return Err(format!(
                    "the Dask shim ended ({status}) before joining: {why}"
                ));
            }
        };
        let session = Arc::new(Session {
            out: Mutex::new(Out {
                pipe,
                batch: Batch::default(),
            }),
            waiting: Mutex::new(HashMap::new()),
            watched: Mutex::new(HashMap::new()),
            info: Mutex::new(None),
            dead: OnceLock::new(),
            active: AtomicUsize::new(0),
            joined,
            process: process_suffix(),
            build: build_suffix(&exe),
            child: Mutex::new(child),
        });
        let weak = Arc::downgrade(&session);
        std::thread::Builder::new()
            .name("rdask-dask".into())
            .spawn(move || listen(weak, reader))
            .map_err(|e| e.to_string())?;
        Ok(session)
    }

    /// Whether the session has ended.
    pub fn dead(&self) -> bool {
        self.dead.get().is_some()
    }

    /// The dask key of rdask key `key`: pure keys are the same in every
    /// process of one build (equal calls share their result on the
    /// cluster), all others are this process's own.
    pub fn dask_key(&self, key: &Key) -> String {
        let suffix = if key.is_pure() {
            &self.build
        } else {
            &self.process
        };
        format!("{key}-{suffix}")
    }

    pub fn begin(&self) {
        self.active.fetch_add(1, Ordering::AcqRel);
    }

    pub fn end(&self) {
        self.active.fetch_sub(1, Ordering::AcqRel);
        self.flush();
    }

    /// Queues a task (sent at the next flush).
    pub fn submit(&self, task: Task) -> Result<(), Error> {
        if let Some(why) = self.dead.get() {
            return Err(Error::new(ErrorKind::Scheduler, None, why.clone()));
        }
        let full = {
            let mut out = self.lock_out();
            out.batch.tasks.push(task);
            out.batch.tasks.len() >= BATCH
        };
        if full {
            self.flush();
        }
        Ok(())
    }

    /// Tells `progress` when the task `dask_key` (rdask's `key`) has run.
    pub fn watch(&self, dask_key: &str, key: Key, progress: &Arc<Progress>) {
        *progress.left.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        let w = Watched {
            key,
            sent: Instant::now(),
            progress: progress.clone(),
        };
        self.watched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(dask_key.to_string(), w);
    }

    /// Sends what is queued.
    pub fn flush(&self) {
        let mut out = self.lock_out();
        if out.batch.is_empty() {
            return;
        }
        let calls = out.batch.tasks.len() as u64;
        let (tasks, released) = out.batch.take();
        super::CALLS.fetch_add(calls, Ordering::Relaxed);
        super::TASKS.fetch_add(tasks.len() as u64, Ordering::Relaxed);
        let mut msgs = Vec::with_capacity(2);
        if !tasks.is_empty() {
            let watch: Vec<Msg> = tasks
                .iter()
                .filter(|t| t.watch)
                .map(|t| Msg::from(t.key.as_str()))
                .collect();
            let tasks = tasks
                .into_iter()
                .map(|t| {
                    let steps = t
                        .steps
                        .into_iter()
                        .map(|s| {
                            Msg::Array(vec![
                                Msg::Binary(s.func.as_bytes().to_vec()),
                                Msg::Binary(s.key.into_bytes()),
                                Msg::Array(s.refs.into_iter().map(Msg::from).collect()),
                                Msg::from(s.retries),
                                Msg::from(s.timeout_ms),
                            ])
                        })
                        .collect();
                    let (priority, resources) = t.placement;
                    let resources = resources
                        .iter()
                        .map(|(n, a)| (Msg::from(*n), Msg::from(*a)))
                        .collect();
                    Msg::Array(vec![
                        t.key.into(),
                        Msg::Array(steps),
                        args(t.args),
                        Msg::from(priority),
                        Msg::Map(resources),
                    ])
                })
                .collect();
            msgs.push(Msg::Array(vec![
                "submit".into(),
                Msg::Array(tasks),
                Msg::Array(watch),
            ]));
        }
        if !released.is_empty() {
            msgs.push(names("release", released));
        }
        self.write(&mut out, &msgs);
    }

    /// Lets go of `key` (its last value here was dropped).
    fn release(&self, key: String) {
        let mut out = self.lock_out();
        out.batch.released.push(key);
        if self.active.load(Ordering::Acquire) == 0 {
            drop(out);
            self.flush();
        }
    }

    /// Asks for the bytes of `key`, once: the slot they will arrive in.
    fn want(&self, key: &str) -> Arc<Slot> {
        let slot = {
            let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(slot) = waiting.get(key) {
                return slot.clone();
            }
            let slot = Arc::new(Slot::default());
            waiting.insert(key.to_string(), slot.clone());
            slot
        };
        if let Some(why) = self.dead.get() {
            fill(&slot, Err(lost(key, why)));
            return slot;
        }
        self.flush();
        let mut out = self.lock_out();
        self.write(&mut out, &[names("want", vec![key.to_string()])]);
        slot
    }

    /// The dask workers' process ids, each with its rdask helpers'.
    pub fn worker_pids(&self) -> Result<Vec<(u32, Vec<u32>)>, String> {
        if let Some(why) = self.dead.get() {
            return Err(why.clone());
        }
        let (tx, rx) = mpsc::channel();
        *self.info.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
        {
            let mut out = self.lock_out();
            self.write(&mut out, &[Msg::Array(vec!["info".into()])]);
        }
        let reply = rx
            .recv_timeout(Duration::from_secs(60))
            .map_err(|_| "the Dask shim did not answer".to_string())?;
        let pid = |v: &Msg| v.as_u64().unwrap_or(0) as u32;
        let workers = field(&reply, "workers")
            .and_then(Msg::as_map)
            .map(|m| {
                m.iter()
                    .filter_map(|(_, v)| {
                        let v = v.as_array()?;
                        let helpers = v.get(1)?.as_array()?.iter().map(pid).collect();
                        Some((pid(v.first()?), helpers))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(workers)
    }

    /// Stops waiting for `keys` (a cancelled computation's outputs).
    pub fn give_up(&self, keys: &[&str]) {
        let cancelled = Failure {
            failed: String::new(),
            kind: ErrorKind::Cancelled,
            message: "the computation was cancelled".into(),
        };
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        for k in keys {
            if let Some(slot) = waiting.remove(*k) {
                fill(&slot, Err(cancelled.clone()));
            }
        }
        drop(waiting);
        for p in self
            .watched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
        {
            p.progress.changed.notify_all();
        }
    }

    /// The slot waiting for `key`'s answer, which has come.
    fn answered(&self, key: &Msg) -> Option<Arc<Slot>> {
        let key = key.as_str()?;
        self.waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key)
    }

    fn lock_out(&self) -> std::sync::MutexGuard<'_, Out> {
        self.out.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self, out: &mut Out, msgs: &[Msg]) {
        let sent = msgs
            .iter()
            .try_for_each(|m| send(&mut out.pipe, m))
            .and_then(|()| out.pipe.flush());
        if let Err(e) = sent {
            self.end_all(format!("lost the Dask shim: {e}"));
        }
    }

    /// Ends the session: every wait fails with `why`.
    fn end_all(&self, why: String) {
        let why = self.dead.get_or_init(|| why).clone();
        let waiting = std::mem::take(&mut *self.waiting.lock().unwrap_or_else(|e| e.into_inner()));
        for (key, slot) in waiting {
            fill(&slot, Err(lost(&key, &why)));
        }
        self.info.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap_or_else(|e| e.into_inner());
        let _ = child.kill();
        let _ = child.wait();
    }
}

fn lost(key: &str, why: &str) -> Failure {
    Failure {
        failed: key.to_string(),
        kind: ErrorKind::Scheduler,
        message: why.to_string(),
    }
}

fn fill(slot: &Slot, got: Result<Vec<u8>, Failure>) {
    *slot.got.lock().unwrap_or_else(|e| e.into_inner()) = Some(got);
    slot.ready.notify_all();
}

/// The reader thread: replies to whoever waits.
fn listen(session: std::sync::Weak<Session>, mut from: BufReader<std::process::ChildStdout>) {
    let why = loop {
        let msg = match read(&mut from) {
            Ok(m) => m,
            Err(e) => break format!("the Dask shim ended: {e}"),
        };
        let Some(session) = session.upgrade() else {
            return;
        };
        match parse_reply(&msg) {
            Some(("done", [key, bytes, ..])) => {
                if let (Some(slot), Msg::Binary(b)) = (session.answered(key), bytes) {
                    fill(&slot, Ok(b.clone()));
                }
            }
            Some(("error", [key, failed, kind, message, ..])) => {
                if let Some(slot) = session.answered(key) {
                    let kind = match kind.as_str().unwrap_or_default() {
                        "Task" => ErrorKind::Task,
                        "Panic" => ErrorKind::Panic,
                        "Type" => ErrorKind::Type,
                        "WorkerLost" => ErrorKind::WorkerLost,
                        "Timeout" => ErrorKind::Timeout,
                        _ => ErrorKind::Scheduler,
                    };
                    let failure = Failure {
                        failed: failed.as_str().unwrap_or_default().to_string(),
                        kind,
                        message: message.as_str().unwrap_or_default().to_string(),
                    };
                    fill(&slot, Err(failure));
                }
            }
            Some(("finished", [keys, ok, ..])) => {
                let ok = ok.as_bool().unwrap_or(false);
                for key in keys.as_array().map_or(&[][..], |k| &k[..]) {
                    let w = key.as_str().and_then(|k| {
                        session
                            .watched
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .remove(k)
                    });
                    if let Some(w) = w {
                        w.progress.ran(&w.key, w.sent.elapsed(), ok);
                    }
                }
            }
            Some(("info", [info, ..])) => {
                if let Some(tx) = session
                    .info
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take()
                {
                    let _ = tx.send(info.clone());
                }
            }
            Some(("fatal", [m, ..])) => break m.as_str().unwrap_or("?").to_string(),
            _ => break "the Dask shim sent nonsense".to_string(),
        }
    };
    if let Some(session) = session.upgrade() {
        session.end_all(why);
    }
}

/// A key's bytes on the cluster, from here: fetched when first read, and
/// released when the last value naming it is dropped.
pub(crate) struct Held {
    pub key: String,
    session: Arc<Session>,
    /// rdask's keys of the computation's tasks, by dask key (for errors).
    names: Arc<Names>,
    /// Where the bytes arrive, once asked for.
    slot: OnceLock<Arc<Slot>>,
    got: OnceLock<Result<Vec<u8>, Failure>>,
}

/// The rdask keys of one computation's tasks, by dask key.
pub(crate) type Names = Mutex<HashMap<String, Key>>;

impl Held {
    pub fn new(key: String, session: Arc<Session>, names: Arc<Names>) -> Held {
        Held {
            key,
            session,
            names,
            slot: OnceLock::new(),
            got: OnceLock::new(),
        }
    }

    /// Asks for the bytes (once): where they will arrive.
    fn slot(&self) -> &Slot {
        self.slot.get_or_init(|| self.session.want(&self.key))
    }

    fn error(&self, f: &Failure) -> Error {
        if f.kind == ErrorKind::Cancelled {
            return crate::control::cancelled_error();
        }
        let names = self.names.lock().unwrap_or_else(|e| e.into_inner());
        let key = names
            .get(&f.failed)
            .cloned()
            .unwrap_or_else(|| Key::from(strip_suffix(&f.failed)));
        let m = &f.message;
        let message = match f.kind {
            ErrorKind::Task => format!("task `{key}` failed: {m}"),
            ErrorKind::Panic => format!("task `{key}` panicked on a dask worker: {m}"),
            ErrorKind::WorkerLost => format!("task `{key}`: {m}"),
            ErrorKind::Type => format!("task `{key}`: {m}"),
            _ => format!("task `{key}` on the Dask cluster: {m}"),
        };
        Error::new(f.kind, Some(key), message)
    }
}

impl Fetch for Held {
    fn fetch(&self) -> Result<&[u8], Error> {
        let got = self.got.get_or_init(|| {
            let slot = self.slot();
            let mut got = slot.got.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if let Some(g) = got.as_ref() {
                    break g.clone();
                }
                got = slot.ready.wait(got).unwrap_or_else(|e| e.into_inner());
            }
        });
        got.as_deref().map_err(|f| self.error(f))
    }

    fn name(&self) -> &str {
        &self.key
    }

    fn prefetch(&self) {
        self.slot();
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.session.release(std::mem::take(&mut self.key));
    }
}

/// A dask key without the suffix this driver gave it.
fn strip_suffix(key: &str) -> &str {
    key.rsplit_once('-').map_or(key, |(k, _)| k)
}

fn args(args: Vec<Arg>) -> Msg {
    Msg::Array(
        args.into_iter()
            .map(|a| match a {
                Arg::Lit(b) => Msg::Binary(b),
                Arg::Key(k) => Msg::from(k),
            })
            .collect(),
    )
}

fn names(op: &str, keys: Vec<String>) -> Msg {
    Msg::Array(vec![
        op.into(),
        Msg::Array(keys.into_iter().map(Msg::from).collect()),
    ])
}

fn map(entries: &[(&str, Msg)]) -> Msg {
    Msg::Map(
        entries
            .iter()
            .map(|(k, v)| (Msg::from(*k), v.clone()))
            .collect(),
    )
}

fn field<'m>(m: &'m Msg, name: &str) -> Option<&'m Msg> {
    m.as_map()?
        .iter()
        .find(|(k, _)| k.as_str() == Some(name))
        .map(|(_, v)| v)
}

fn cluster_info(m: &Msg) -> ClusterInfo {
    let text = |name| {
        field(m, name)
            .and_then(Msg::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let count = |name| field(m, name).and_then(Msg::as_u64).unwrap_or(0) as usize;
    ClusterInfo {
        scheduler: text("scheduler"),
        workers: count("workers"),
        threads: count("threads"),
        distributed: text("distributed"),
        dashboard: field(m, "dashboard")
            .and_then(Msg::as_str)
            .map(str::to_string),
    }
}

/// `[op, args...]` as its name and arguments.
fn parse_reply(m: &Msg) -> Option<(&str, &[Msg])> {
    let a = m.as_array()?;
    Some((a.first()?.as_str()?, &a[1..]))
}

fn send(w: &mut impl Write, m: &Msg) -> std::io::Result<()> {
    let mut body = Vec::new();
    rmpv::encode::write_value(&mut body, m)?;
    let len = u32::try_from(body.len())
        .map_err(|_| std::io::Error::other("a message to the Dask shim over 4 GiB"))?;
    w.write_all(&len.to_le_bytes())?;
    w.write_all(&body)
}

fn read(r: &mut impl Read) -> Result<Msg, String> {
    let mut head = [0u8; 4];
    r.read_exact(&mut head).map_err(|e| e.to_string())?;
    let mut body = vec![0u8; u32::from_le_bytes(head) as usize];
    r.read_exact(&mut body).map_err(|e| e.to_string())?;
    rmpv::decode::read_value(&mut &body[..]).map_err(|e| e.to_string())
}

/// Where the shim and the bridge are written: `$XDG_CACHE_HOME/rdask`,
/// `~/.cache/rdask`, or the temporary directory.
fn cache_dir() -> Result<PathBuf, String> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    let dir = base.join("rdask");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(dir)
}

/// Writes `text` to `dir/stem_<hash>.py` unless it is there (a rename, so
/// that concurrent programs never see half a file): one file per version.
fn write_once(dir: &Path, stem: &str, text: &str) -> Result<PathBuf, String> {
    let path = dir.join(format!("{stem}_{:016x}.py", fnv(text.as_bytes())));
    if !path.exists() {
        let tmp = dir.join(format!("{stem}.{}.tmp", std::process::id()));
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(path)
}

/// FNV-1a: a stable hash (std's are not promised to stay the same).
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// This process's own suffix: its pid, start time and an address.
fn process_suffix() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let here = &now as *const u64 as u64;
    let seed = [now, u64::from(std::process::id()), here];
    let h = fnv(&seed.map(u64::to_le_bytes).concat());
    format!("{:08x}", h as u32)
}

/// This build's suffix: a hash of the program's bytes (a word at a time:
/// a program is tens of megabytes).
fn build_suffix(exe: &Path) -> String {
    let bytes = std::fs::read(exe).unwrap_or_default();
    let words = bytes.chunks(8).fold(0xcbf2_9ce4_8422_2325_u64, |h, w| {
        let mut word = [0u8; 8];
        word[..w.len()].copy_from_slice(w);
        (h ^ u64::from_le_bytes(word)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("b{:08x}", (words ^ (words >> 32)) as u32)
}
