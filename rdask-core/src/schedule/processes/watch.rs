//! The workers' thread: one long-lived thread that starts every worker
//! process and watches the busy ones.
//!
//! Starting: a worker asks the kernel to kill it when its parent dies
//! (`PR_SET_PDEATHSIG`), and Linux takes the *thread* that started it for
//! its parent. A worker started on a short-lived thread (a user's thread
//! calling `warm_up`) would die with that thread, so every worker is
//! started here.
//!
//! Watching: a call waits for its worker's reply in a plain blocking read,
//! which ends when the worker replies or dies (its pipe closes). A stopped
//! worker (SIGSTOP, a debugger) does neither, and would hang the
//! computation. So while calls are in flight this thread looks at each busy
//! worker every `SLICE`; one stopped for longer than `STOPPED_LIMIT` is
//! killed (SIGKILL), which ends the call's read, and the pool reaps and
//! replaces it and retries its task, as for a worker that died. A call
//! pays no system call for this (a `poll` before each reply was a
//! measurable part of a small task's cost: BENCHMARKS.md): marking a worker
//! busy is an atomic store, and the thread sleeps while no call is in
//! flight.

use std::io;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// How often the thread looks at the busy workers.
const SLICE: Duration = Duration::from_millis(100);

/// A worker stopped for longer than this is lost. Short stops are allowed:
/// after a terminal's `fg`, the parent may run a moment before its workers
/// do.
const STOPPED_LIMIT: Duration = Duration::from_secs(1);

/// What the workers' thread knows of one worker, shared with its owner.
pub(crate) struct Watch {
    pid: u32,
    /// Twice the calls begun, plus one while a call is in flight. Written
    /// only by the worker's owner (one thread at a time).
    calls: AtomicU64,
    seen: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    /// The owner is reaping the worker: its pid may soon name another
    /// process, so it is never signalled again.
    reaped: bool,
    /// The call in flight (its `calls` value) and when it was first seen
    /// stopped.
    stopped: Option<(u64, Instant)>,
    /// Why the worker was killed here.
    lost: Option<String>,
}

impl Watch {
    /// A call on the worker begins (before its request is written).
    pub(crate) fn begin(&self) {
        let calls = self.calls.load(Ordering::Relaxed) + 1;
        // Sequentially consistent with `PARKED`: either the thread sees
        // this call before it sleeps, or this sees that it sleeps.
        self.calls.store(calls, Ordering::SeqCst);
        if PARKED.load(Ordering::SeqCst) && PARKED.swap(false, Ordering::SeqCst) {
            let _ = send(Job::Wake);
        }
    }

    /// The call has its reply, or failed.
    pub(crate) fn end(&self) {
        let calls = self.calls.load(Ordering::Relaxed) + 1;
        self.calls.store(calls, Ordering::Release);
    }

    /// Why the workers' thread killed the worker, if it did.
    pub(crate) fn lost(&self) -> Option<String> {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .lost
            .clone()
    }

    /// The owner is about to reap the worker: no signal may follow.
    pub(crate) fn reaping(&self) {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).reaped = true;
    }

    /// Looks at the worker, and kills it if its call is to be given up;
    /// whether a call is in flight on it.
    fn check(&self, now: Instant) -> bool {
        let calls = self.calls.load(Ordering::SeqCst);
        if calls % 2 == 0 {
            return false;
        }
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.reaped || seen.lost.is_some() {
            return true;
        }
        // Why the call is given up, if it is: the one place to decide (a
        // deadline on calls would be checked here too).
        let lost = if stopped(self.pid) {
            let since = match seen.stopped {
                Some((call, since)) if call == calls => since,
                _ => seen.stopped.insert((calls, now)).1,
            };
            (now.duration_since(since) >= STOPPED_LIMIT).then(|| {
                format!("it was stopped for over {STOPPED_LIMIT:?} (SIGSTOP or a debugger)")
            })
        } else {
            seen.stopped = None;
            None
        };
        if let Some(why) = lost {
            kill(self.pid);
            seen.lost = Some(format!("{why}, and was killed"));
        }
        true
    }
}

/// Whether process `pid` is stopped, by a signal or by a tracer.
fn stopped(pid: u32) -> bool {
    #[cfg(target_os = "linux")]
    {
        // `pid (comm) S ...`: the state follows the last `)`.
        let Ok(stat) = std::fs::read(format!("/proc/{pid}/stat")) else {
            return false;
        };
        let after = stat.iter().rposition(|&b| b == b')').map_or(0, |i| i + 1);
        matches!(
            stat[after..].iter().find(|b| !b.is_ascii_whitespace()),
            Some(b'T' | b't')
        )
    }
    #[cfg(not(target_os = "linux"))]
    {
        // Not seen: a stopped worker is waited for.
        let _ = pid;
        false
    }
}

/// Kills process `pid`, an unreaped child (the caller holds its `Seen`, or
/// its `Worker` is checked out, busy, and not yet reaped).
pub(crate) fn kill(pid: u32) {
    #[cfg(unix)]
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: a plain kill; the pid is our child's, not yet reaped, so
        // it names no other process.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    #[cfg(not(unix))]
    let _ = pid;
}

/// Whether an idle worker can take a task: it is alive and not stopped.
/// One non-blocking wait call, as a plain liveness check costs.
pub(crate) fn usable(child: &mut Child) -> bool {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: an all-zero siginfo_t is a valid value (plain data).
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // A peek (`WNOWAIT`): it neither reaps an exited worker (`Child`
        // does, so its pid stays ours until then) nor consumes a stop.
        // SAFETY: `info` is a valid siginfo_t to write; the pid is our
        // unreaped child's.
        let r = unsafe {
            libc::waitid(
                libc::P_PID,
                child.id(),
                &mut info,
                libc::WEXITED | libc::WSTOPPED | libc::WNOHANG | libc::WNOWAIT,
            )
        };
        // SAFETY: `waitid` filled `info`, or left it zeroed (`si_pid` 0:
        // nothing to report).
        r == 0 && unsafe { info.si_pid() } == 0
    }
    #[cfg(not(target_os = "linux"))]
    {
        matches!(child.try_wait(), Ok(None))
    }
}

enum Job {
    /// Start a worker; the reply is the child and its watch.
    Spawn(Box<Command>, mpsc::Sender<io::Result<(Child, Arc<Watch>)>>),
    /// A call began while the thread slept.
    Wake,
}

/// The thread sleeps (no call was in flight when it last looked). It
/// starts asleep.
static PARKED: AtomicBool = AtomicBool::new(true);

/// Sends `job` to the workers' thread, started on first use.
fn send(job: Job) -> io::Result<()> {
    static QUEUE: Mutex<Option<mpsc::Sender<Job>>> = Mutex::new(None);
    let mut queue = QUEUE.lock().unwrap_or_else(|e| e.into_inner());
    let jobs = match &*queue {
        Some(jobs) => jobs,
        None => {
            let (jobs, rx) = mpsc::channel();
            // Lives as long as the process: `QUEUE` keeps its queue open.
            std::thread::Builder::new()
                .name("rdask-workers".into())
                .spawn(move || run(rx))?;
            queue.insert(jobs)
        }
    };
    jobs.send(job)
        .map_err(|_| io::Error::other("the workers' thread is gone"))
}

/// Starts `cmd` on the workers' thread; the child and its watch.
pub(crate) fn spawn(cmd: Command) -> io::Result<(Child, Arc<Watch>)> {
    let (tx, rx) = mpsc::channel();
    send(Job::Spawn(Box::new(cmd), tx))?;
    rx.recv()
        .map_err(|_| io::Error::other("the workers' thread is gone"))?
}

/// The workers' thread.
fn run(jobs: mpsc::Receiver<Job>) {
    let mut workers: Vec<Weak<Watch>> = Vec::new();
    let mut watching = false;
    let mut next_look = Instant::now();
    loop {
        let job = if watching {
            match jobs.recv_timeout(next_look.saturating_duration_since(Instant::now())) {
                Ok(job) => Some(job),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
        } else {
            match jobs.recv() {
                Ok(job) => Some(job),
                Err(_) => return,
            }
        };
        match job {
            Some(Job::Spawn(mut cmd, reply)) => {
                let started = cmd.spawn().map(|child| {
                    let watch = Arc::new(Watch {
                        pid: child.id(),
                        calls: AtomicU64::new(0),
                        seen: Mutex::new(Seen::default()),
                    });
                    workers.push(Arc::downgrade(&watch));
                    (child, watch)
                });
                let _ = reply.send(started);
            }
            Some(Job::Wake) if !watching => {
                watching = true;
                next_look = Instant::now() + SLICE;
            }
            Some(Job::Wake) | None => {}
        }
        let now = Instant::now();
        if !watching || now < next_look {
            continue;
        }
        next_look = now + SLICE;
        workers.retain(|w| w.strong_count() > 0);
        let mut busy = false;
        for w in workers.iter().filter_map(Weak::upgrade) {
            busy |= w.check(now);
        }
        if !busy {
            // Sleep, unless a call began meanwhile (see `Watch::begin`).
            PARKED.store(true, Ordering::SeqCst);
            let began = workers
                .iter()
                .filter_map(Weak::upgrade)
                .any(|w| w.calls.load(Ordering::SeqCst) % 2 == 1);
            if began && PARKED.swap(false, Ordering::SeqCst) {
                continue;
            }
            watching = false;
        }
    }
}
