//! The pool of worker processes: started lazily, kept warm across
//! computations, replaced when one dies or stops.

use super::watch::{self, usable, Watch};
use super::wire::{fits, kind, read_frame, too_big, write_frame, ENV};
use std::collections::HashMap;
use std::io::{self, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// One worker process and its pipes.
pub(crate) struct Worker {
    child: Child,
    /// Buffered: a small frame goes out in one write, a big part bypasses
    /// the buffer.
    stdin: Option<BufWriter<ChildStdin>>,
    stdout: BufReader<ChildStdout>,
    /// Shared with the workers' thread, which kills the worker if it stops
    /// during a call.
    watch: Arc<Watch>,
}

/// Why a call did not produce a reply.
pub(crate) enum Lost {
    /// The worker could not be started at all.
    Start(String),
    /// The worker died or broke the protocol (twice).
    Died(String),
    /// The request is too big for a frame (nothing was sent): the message.
    TooBig(String),
    /// The call ran past its timeout: its worker was killed (not retried
    /// here; the task's own retries decide).
    TimedOut(Duration),
}

impl Worker {
    fn spawn(program: Option<&Path>, timeout: Duration) -> Result<Worker, String> {
        if cfg!(not(unix)) {
            return Err("worker processes need a unix system (Linux or macOS): \
                        use Scheduler::threads here"
                .to_string());
        }
        let exe = match program {
            Some(p) => p.to_path_buf(),
            None => {
                std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?
            }
        };
        let mut cmd = Command::new(&exe);
        cmd.env(ENV, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        // Started on the workers' thread, which outlives the caller's.
        let (mut child, watch) = watch::spawn(cmd)
            .map_err(|e| format!("cannot start worker `{}`: {e}", exe.display()))?;
        let (stdin, stdout) = (child.stdin.take(), child.stdout.take());
        let (Some(stdin), Some(stdout)) = (stdin, stdout) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err("worker has no pipes".into());
        };
        // Bigger pipes: a large argument or result crosses in fewer
        // wake-ups (the default is 64 KiB; best effort).
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            for fd in [stdin.as_raw_fd(), stdout.as_raw_fd()] {
                // SAFETY: an fcntl on a pipe we own; failure is harmless.
                unsafe { libc::fcntl(fd, libc::F_SETPIPE_SZ, 1 << 20) };
            }
        }
        let mut stdout = BufReader::with_capacity(1 << 16, stdout);
        // Wait for hello, but not forever: a binary without rdask's worker
        // mode would just run its `main`.
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            let hello = read_frame(&mut stdout);
            let _ = tx.send(());
            (hello, stdout)
        });
        let arrived = rx.recv_timeout(timeout).is_ok();
        if !arrived {
            let _ = child.kill();
        }
        let (hello, stdout) = reader
            .join()
            .map_err(|_| "worker start-up reader panicked".to_string())?;
        match hello {
            Ok((kind::HELLO, _)) if arrived => Ok(Worker {
                child,
                stdin: Some(BufWriter::with_capacity(1 << 16, stdin)),
                stdout,
                watch,
            }),
            other => {
                let _ = child.kill();
                let status = child.wait().ok();
                Err(format!(
                    "worker `{}` did not start ({}; exit status {status:?}): the program must \
                     link rdask (its worker mode runs before main)",
                    exe.display(),
                    match other {
                        Ok((k, _)) => format!("first frame kind {k}"),
                        Err(e) => e.to_string(),
                    }
                ))
            }
        }
    }

    /// Sends a request and waits for the reply. A plain blocking wait: a
    /// worker that dies closes its pipe, and one that stops is killed by
    /// the workers' thread (the error then says so).
    fn call(&mut self, name: &str, args: &[&[u8]]) -> io::Result<(u8, Vec<u8>)> {
        self.watch.begin();
        let reply = self.request(name, args);
        self.watch.end();
        reply.map_err(|e| match self.watch.lost() {
            Some(why) => io::Error::other(why),
            None => io::Error::other(self.how_it_ended(&e)),
        })
    }

    /// What ended a call that got no reply, for the error: the worker's
    /// exit status or signal when it died (its pipe closing is how the
    /// parent notices), else the I/O error (a broken protocol).
    fn how_it_ended(&mut self, e: &io::Error) -> String {
        // A worker that closed its pipe is exiting: give it a moment to. No
        // signal of the workers' thread may follow a reap.
        self.watch.reaping();
        for _ in 0..50 {
            if let Ok(Some(status)) = self.child.try_wait() {
                return format!("it ended ({status})");
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        format!("it broke the protocol ({e})")
    }

    fn request(&mut self, name: &str, args: &[&[u8]]) -> io::Result<(u8, Vec<u8>)> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| io::Error::other("worker closed"))?;
        let mut parts = Vec::with_capacity(args.len() + 2);
        parts.extend([name.as_bytes(), b"\0"]);
        parts.extend_from_slice(args);
        write_frame(stdin, kind::RUN, &parts)?;
        read_frame(&mut self.stdout)
    }

    /// Sends several requests in one write and reads their replies, in
    /// order, as far as they come: the worker runs them one after another.
    /// Whether every reply came (the replies before a failure are kept; the
    /// calls after it run again elsewhere, so why it failed is not needed).
    fn call_many(&mut self, calls: &[Call<'_>]) -> (Vec<(u8, Vec<u8>)>, bool) {
        self.watch.begin();
        let mut replies = Vec::with_capacity(calls.len());
        let complete = self.request_many(calls, &mut replies).is_ok();
        self.watch.end();
        (replies, complete)
    }

    fn request_many(
        &mut self,
        calls: &[Call<'_>],
        replies: &mut Vec<(u8, Vec<u8>)>,
    ) -> io::Result<()> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| io::Error::other("worker closed"))?;
        // One buffer, one write: at most `BATCH_BYTES`, which the pipe
        // takes whole, so this write never waits for the worker (which may
        // be writing replies nobody reads yet).
        let mut all = Vec::with_capacity(BATCH_BYTES);
        for &(name, args, after) in calls {
            match after {
                None => write_frame(&mut all, kind::RUN, &[name.as_bytes(), b"\0", args])?,
                Some(at) => {
                    let at = at.to_le_bytes();
                    write_frame(
                        &mut all,
                        kind::RUN_NEXT,
                        &[name.as_bytes(), b"\0", &at, args],
                    )?
                }
            }
        }
        stdin.write_all(&all)?;
        stdin.flush()?;
        for _ in calls {
            replies.push(read_frame(&mut self.stdout)?);
        }
        Ok(())
    }

    /// The worker's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Closing stdin ends an idle worker; a stuck or stopped one is
        // killed. Either way it is reaped here, so no zombie is left
        // behind. A request left half-sent is dropped, not flushed: that
        // would wait on a worker that does not read.
        if let Some(stdin) = self.stdin.take() {
            drop(stdin.into_parts());
        }
        let _ = self.child.kill();
        self.watch.reaping();
        let _ = self.child.wait();
    }
}

/// Warm workers, shared by every computation on a `processes(n)` scheduler.
pub(crate) struct Pool {
    idle: Mutex<Vec<Worker>>,
    /// Every live worker's process id, idle or busy.
    live: Mutex<Vec<u32>>,
    program: Option<PathBuf>,
    start_timeout: Duration,
}

impl Pool {
    /// The pool for `n` workers, created on first use.
    pub(crate) fn shared(n: usize, program: Option<PathBuf>, start_timeout: Duration) -> Arc<Pool> {
        type Pools = HashMap<(usize, Option<PathBuf>), Arc<Pool>>;
        static POOLS: OnceLock<Mutex<Pools>> = OnceLock::new();
        let mut pools = POOLS
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        pools
            .entry((n, program.clone()))
            .or_insert_with(|| {
                Arc::new(Pool {
                    idle: Mutex::new(Vec::new()),
                    live: Mutex::new(Vec::new()),
                    program,
                    start_timeout,
                })
            })
            .clone()
    }

    /// An idle worker that is still alive and running, else a new one. One
    /// that died while idle (killed from outside, the OOM killer) is reaped
    /// here; one that was stopped (SIGSTOP) is killed and reaped.
    fn checkout(&self) -> Result<Worker, String> {
        loop {
            let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
            let Some(mut w) = idle else {
                return self.spawn();
            };
            if usable(&mut w.child) {
                return Ok(w);
            }
            self.forget(w);
        }
    }

    /// Kills and reaps `w`, which is no longer live.
    fn forget(&self, w: Worker) {
        let pid = w.pid();
        drop(w);
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|&p| p != pid);
    }

    fn spawn(&self) -> Result<Worker, String> {
        let w = Worker::spawn(self.program.as_deref(), self.start_timeout)?;
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(w.pid());
        Ok(w)
    }

    fn give_back(&self, w: Worker) {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).push(w);
    }

    /// Starts workers until `n` are alive (so the first computation does
    /// not pay start-up inside its tasks).
    pub(crate) fn warm(&self, n: usize) -> Result<(), String> {
        let have = self.live.lock().unwrap_or_else(|e| e.into_inner()).len();
        for _ in have..n {
            let w = self.spawn()?;
            self.give_back(w);
        }
        Ok(())
    }

    /// The process ids of the live workers, idle or busy (for tests and
    /// diagnostics). Busy ones count too: another computation may be using
    /// a worker of this shared pool at any moment.
    pub(crate) fn live_pids(&self) -> Vec<u32> {
        self.live.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Runs `name(args)` on a worker. A worker that dies or stops mid-call
    /// is replaced and the call retried once on a fresh one (not another
    /// idle one, which may have died the same way).
    pub(crate) fn call(
        &self,
        name: &str,
        args: &[&[u8]],
        timeout: Option<Duration>,
    ) -> Result<(u8, Vec<u8>), Lost> {
        let mut held = None;
        let reply = self.attempts(name, args, timeout, 0, &mut held);
        if let Some(w) = held {
            self.give_back(w);
        }
        reply
    }

    /// [`call`](Self::call) from attempt `first`: 1 is only the retry on a
    /// fresh worker (for a call whose first attempt was in a lost batch).
    /// The worker that answers is left in `held` for the caller to give
    /// back; a retry runs on the worker already there, if any (a lost
    /// batch's calls run again on one fresh worker, not one each).
    fn attempts(
        &self,
        name: &str,
        args: &[&[u8]],
        timeout: Option<Duration>,
        first: usize,
        held: &mut Option<Worker>,
    ) -> Result<(u8, Vec<u8>), Lost> {
        // Refused here, not by the frame writer: that error would look like
        // a lost worker, killed and the call retried.
        let len = name.len() + 1 + args.iter().map(|a| a.len()).sum::<usize>();
        if !fits(len) {
            return Err(Lost::TooBig(too_big("its arguments", len)));
        }
        let mut last = String::new();
        // A cancel kills the worker running this call (it is not retried).
        let token = crate::control::current();
        for attempt in first..2 {
            let mut w = match (attempt, held.take()) {
                (_, Some(w)) => Ok(w),
                (0, None) => self.checkout(),
                (_, None) => self.spawn(),
            }
            .map_err(Lost::Start)?;
            let pid = w.pid();
            let (reply, expired) = within(timeout, pid, || match &token {
                Some(t) => t.with_hook(&|| watch::kill(pid), || w.call(name, args)),
                None => w.call(name, args),
            });
            if reply.is_err() && token.as_ref().is_some_and(|t| t.is_cancelled()) {
                self.forget(w);
                return Err(Lost::Died(format!(
                    "worker {pid} killed: the computation was cancelled"
                )));
            }
            if let (Err(_), Some(timeout)) = (&reply, expired) {
                self.forget(w);
                return Err(Lost::TimedOut(timeout));
            }
            match reply {
                Ok(reply) => {
                    *held = Some(w);
                    return Ok(reply);
                }
                Err(e) => {
                    last = format!("worker {}: {e}", w.pid());
                    self.forget(w);
                }
            }
        }
        Err(Lost::Died(last))
    }
}

/// The most bytes of requests sent to a worker in one write: no more than
/// a pipe holds in every case (one page), so the write completes whether
/// or not the worker reads.
pub(crate) const BATCH_BYTES: usize = 4096;

/// One call of a batch: the function's name, its encoded arguments, and
/// for a chain's next link the byte offset in them where the result of the
/// call before it goes (that result stays in the worker: `RUN_NEXT`).
pub(crate) type Call<'a> = (&'a str, &'a [u8], Option<u32>);

impl Pool {
    /// Runs several calls (`name`, encoded arguments) on one worker, their
    /// requests in one write (each at most [`BATCH_BYTES`] in all, without
    /// timeouts). If the worker dies or stops, every call without a reply
    /// is run again alone on a fresh worker, once: the batch was its first
    /// attempt, as a lost worker's task gets one more (a call that
    /// finished but whose reply was lost with the worker runs twice). A
    /// chain's link run again takes the result its call before it sent
    /// back (or is `SKIPPED` when that call failed).
    pub(crate) fn call_many(&self, calls: &[Call<'_>]) -> Vec<Result<(u8, Vec<u8>), Lost>> {
        let token = crate::control::current();
        let mut w = match self.checkout() {
            Ok(w) => w,
            Err(m) => return calls.iter().map(|_| Err(Lost::Start(m.clone()))).collect(),
        };
        let pid = w.pid();
        let (replies, complete) = match &token {
            Some(t) => t.with_hook(&|| watch::kill(pid), || w.call_many(calls)),
            None => w.call_many(calls),
        };
        let mut out: Vec<Result<(u8, Vec<u8>), Lost>> = replies.into_iter().map(Ok).collect();
        if complete {
            self.give_back(w);
            return out;
        }
        self.forget(w);
        let mut fresh = None;
        for &(name, args, after) in &calls[out.len()..] {
            let prev = match (after, out.last()) {
                (None, _) => Some(&[][..]),
                (Some(_), Some(Ok((kind::OK, bytes)))) => Some(&bytes[..]),
                (Some(_), _) => None,
            };
            let again = match (token.as_ref().is_some_and(|t| t.is_cancelled()), prev) {
                (true, _) => Err(Lost::Died(format!(
                    "worker {pid} killed: the computation was cancelled"
                ))),
                (false, None) => Ok((kind::SKIPPED, b"the call before it failed".to_vec())),
                (false, Some(prev)) => {
                    let (before, rest) =
                        args.split_at(after.map_or(0, |at| (at as usize).min(args.len())));
                    self.attempts(name, &[before, prev, rest], None, 1, &mut fresh)
                }
            };
            out.push(again);
        }
        if let Some(w) = fresh {
            self.give_back(w);
        }
        out
    }
}

/// Runs `call` on worker `pid`, killing the worker if it takes longer than
/// `timeout`: the timeout, when that happened.
fn within<R>(
    timeout: Option<Duration>,
    pid: u32,
    call: impl FnOnce() -> R,
) -> (R, Option<Duration>) {
    match timeout {
        None => (call(), None),
        Some(t) => {
            let (r, expired) = crate::control::within(t, || watch::kill(pid), call);
            (r, expired.then_some(t))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::processes::wire::MAX_FRAME;

    /// A request is refused as too big exactly when its frame would be: the
    /// name, its NUL and the arguments, over `MAX_FRAME` bytes. Refused
    /// before any worker is wanted: the pool's program does not exist, so a
    /// request that fits fails to start one instead.
    #[test]
    #[cfg_attr(miri, ignore = "a 1 GiB buffer and a process start: not for Miri")]
    fn a_request_one_byte_over_a_frame_is_refused_before_a_worker_starts() {
        let pool = Pool::shared(
            1,
            Some(PathBuf::from("/nonexistent/rdask-worker")),
            Duration::from_secs(1),
        );
        // Zeroed pages never touched: only the lengths are read.
        let bytes = vec![0_u8; MAX_FRAME - 1];
        let call = |n: usize| match pool.call("f", &[&bytes[..n]], None) {
            Err(Lost::TooBig(_)) => "too big",
            Err(Lost::Start(_)) => "start failed",
            Err(_) => "other loss",
            Ok(_) => "reply",
        };
        // "f", its NUL and MAX_FRAME - 1 bytes: one over.
        assert_eq!(call(MAX_FRAME - 1), "too big");
        // One byte less is a whole frame.
        assert_eq!(call(MAX_FRAME - 2), "start failed");
    }
}
