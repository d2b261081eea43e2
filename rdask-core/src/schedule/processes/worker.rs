//! Worker mode: the user's own binary, re-executed with `RDASK_WORKER` set,
//! becomes a task server before `main` is ever entered.
//!
//! A constructor (run by the loader, before `main`) checks the variable. In
//! a worker it moves the protocol off the standard streams onto private
//! close-on-exec fds, asks the kernel to kill it when the parent dies, says
//! hello, and serves `RUN` frames until the request pipe closes.
//!
//! The standard streams are the task's: stdin is `/dev/null` (a task that
//! reads it gets end-of-file; the serve loop reads requests from its own
//! fd, never through `Stdin`, whose lock a task would wait for) and stdout
//! is stderr (a `println!` cannot corrupt a frame). A subprocess that a
//! task starts inherits those, never the protocol fds: it cannot eat
//! requests, nor keep the reply pipe open after its worker died (the parent
//! would wait for its end-of-file).

use super::wire::{fits, kind, put_frame, read_frame, too_big, write_frame, ENV};
use crate::task::remote::{registry, Failure, RemoteFns};
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::os::fd::FromRawFd;

// `unsafe` (ctor 1.x requires it): this runs before `main`, where std does
// not promise to be set up. Outside a worker it only reads one environment
// variable. A worker never returns to `main`, and `serve` uses std's I/O
// and threads this early: outside what std promises, but it works on
// Linux, where workers run, and tests/processes.rs and
// tests/process_faults.rs check it.
#[ctor::ctor(unsafe)]
fn enter_worker_mode() {
    if std::env::var_os(ENV).is_some() {
        serve();
    }
}

/// Moves the protocol to private close-on-exec fds: requests from the pipe
/// on fd 0, replies to the pipe on fd 1. Then fd 0 is `/dev/null` and fd 1
/// is stderr. `None` if a call failed.
///
/// # Safety
///
/// No other thread may be using the standard streams (call before `main`).
unsafe fn take_protocol_fds() -> Option<(File, File)> {
    // SAFETY: fd calls on this process's own descriptors; the caller
    // guarantees no one else uses fds 0 and 1 meanwhile. Each new fd is
    // owned by exactly one `File` (`null` is closed unless it took a
    // standard stream's number, which it then keeps).
    unsafe {
        let requests = libc::fcntl(0, libc::F_DUPFD_CLOEXEC, 3);
        let replies = libc::fcntl(1, libc::F_DUPFD_CLOEXEC, 3);
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
        if requests < 0 || replies < 0 || null < 0 {
            return None;
        }
        // `dup2` clears close-on-exec on its target: subprocesses inherit
        // `/dev/null` and stderr.
        if libc::dup2(null, 0) < 0 || libc::dup2(2, 1) < 0 {
            return None;
        }
        if null > 2 {
            libc::close(null);
        }
        Some((File::from_raw_fd(requests), File::from_raw_fd(replies)))
    }
}

fn serve() -> ! {
    // SAFETY: we run before `main`, so no other thread exists yet.
    let Some((requests, replies)) = (unsafe { take_protocol_fds() }) else {
        std::process::exit(90);
    };
    #[cfg(target_os = "linux")]
    // SAFETY: a plain prctl on this process.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
    }
    std::env::remove_var(ENV);
    // A nested compute inside a worker's task runs on threads, here.
    crate::schedule::set_scheduler(crate::schedule::Scheduler::threads(0));
    let mut out = BufWriter::new(replies);
    let mut inp = BufReader::new(requests);
    let functions = registry();
    if write_frame(&mut out, kind::HELLO, &[]).is_err() {
        std::process::exit(91);
    }
    // The last result, for a `RUN_NEXT` (a chain's next link) to take.
    let mut last: Option<Vec<u8>> = None;
    loop {
        let (k, body) = match read_frame(&mut inp) {
            Ok(frame) => frame,
            // The parent is gone (or spoke nonsense): nothing left to do.
            Err(_) => std::process::exit(0),
        };
        let reply = match (k, last.take()) {
            (kind::RUN, _) => run_request(functions, &body, None),
            (kind::RUN_NEXT, Some(prev)) => run_request(functions, &body, Some(&prev)),
            (kind::RUN_NEXT, None) => Err((kind::SKIPPED, "the call before it failed".into())),
            _ => Err((kind::BAD_REQUEST, format!("unexpected frame kind {k}"))),
        };
        // What the task printed goes out before its reply (a partial line
        // would otherwise wait in the buffer, and be lost if the parent
        // ends first and takes the worker with it).
        {
            let _ = std::io::stdout().flush();
            let _ = std::io::stderr().flush();
        }
        let written = match reply {
            // Said, not sent: the parent would take a refused frame for a
            // lost worker, and run the task again.
            Ok(bytes) if !fits(bytes.len()) => put_frame(
                &mut out,
                kind::TOO_BIG,
                &[too_big("its result", bytes.len()).as_bytes()],
            ),
            Ok(bytes) => {
                let sent = put_frame(&mut out, kind::OK, &[&bytes]);
                last = Some(bytes);
                sent
            }
            Err((k, msg)) => put_frame(&mut out, k, &[msg.as_bytes()]),
        };
        // Replies go out when no request is waiting here: a batch of
        // requests (one write from the parent) gets its replies in one
        // write too. (If the worker dies meanwhile, the parent runs every
        // request without a reply again.)
        let written = match inp.buffer().is_empty() {
            true => written.and_then(|()| out.flush()),
            false => written,
        };
        if written.is_err() {
            std::process::exit(0);
        }
    }
}

/// Runs one request's call: `body` is `name\0args`, or with `prev` (a
/// `RUN_NEXT`) `name\0offset args`, `prev` then going into `args` at
/// `offset`. The result's bytes, or the reply's kind and message.
fn run_request(
    functions: &HashMap<&'static str, RemoteFns>,
    body: &[u8],
    prev: Option<&[u8]>,
) -> Result<Vec<u8>, (u8, String)> {
    let malformed = || (kind::BAD_REQUEST, "malformed request".to_string());
    let split = body.iter().position(|&b| b == 0).ok_or_else(malformed)?;
    let (name, rest) = (&body[..split], &body[split + 1..]);
    let joined;
    let args = match prev {
        None => rest,
        Some(prev) => {
            let (offset, args) = rest.split_first_chunk::<4>().ok_or_else(malformed)?;
            let offset = u32::from_le_bytes(*offset) as usize;
            let (before, after) = args.split_at_checked(offset).ok_or_else(malformed)?;
            joined = [before, prev, after].concat();
            &joined[..]
        }
    };
    let name = String::from_utf8_lossy(name);
    let Some(f) = functions.get(name.as_ref()) else {
        return Err((
            kind::BAD_REQUEST,
            format!("no function `{name}` is registered in the worker"),
        ));
    };
    (f.run)(args).map_err(|e| match e {
        Failure::Task(m) => (kind::TASK_ERR, m),
        Failure::Panic(m) => (kind::PANIC, m),
        Failure::Decode(m) => (kind::DECODE_ERR, m),
        Failure::Encode(m) => (kind::ENCODE_ERR, m),
    })
}
