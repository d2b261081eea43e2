//! Worker mode: the user's own binary, re-executed with `RDASK_WORKER` set,
//! becomes a task server before `main` is ever entered.
//!
//! A constructor (run by the loader, before `main`) checks the variable. In
//! a worker it moves the protocol off stdout (user `println!`s go to stderr
//! instead, so they cannot corrupt frames), asks the kernel to kill it when
//! the parent dies, says hello, and serves `RUN` frames until stdin closes.

use super::wire::{fits, kind, read_frame, too_big, write_frame, ENV};
use crate::task::remote::{registry, Failure};
use std::fs::File;
use std::io::{BufReader, BufWriter};
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

fn serve() -> ! {
    // SAFETY: plain fd calls on this process's own standard streams, before
    // any other thread exists (we run before `main`).
    let proto = unsafe {
        let fd = libc::dup(1);
        if fd < 0 || libc::dup2(2, 1) < 0 {
            std::process::exit(90);
        }
        #[cfg(target_os = "linux")]
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        File::from_raw_fd(fd)
    };
    std::env::remove_var(ENV);
    // A nested compute inside a worker's task runs on threads, here.
    crate::schedule::set_scheduler(crate::schedule::Scheduler::threads(0));
    let mut out = BufWriter::new(proto);
    let mut inp = BufReader::new(std::io::stdin().lock());
    let functions = registry();
    if write_frame(&mut out, kind::HELLO, &[]).is_err() {
        std::process::exit(91);
    }
    loop {
        let (k, body) = match read_frame(&mut inp) {
            Ok(frame) => frame,
            // The parent is gone (or spoke nonsense): nothing left to do.
            Err(_) => std::process::exit(0),
        };
        let reply = if k != kind::RUN {
            Err((kind::BAD_REQUEST, format!("unexpected frame kind {k}")))
        } else {
            let split = body.iter().position(|&b| b == 0);
            match split.map(|i| (&body[..i], &body[i + 1..])) {
                None => Err((kind::BAD_REQUEST, "malformed request".to_string())),
                Some((name, args)) => {
                    let name = String::from_utf8_lossy(name);
                    match functions.get(name.as_ref()) {
                        None => Err((
                            kind::BAD_REQUEST,
                            format!("no function `{name}` is registered in the worker"),
                        )),
                        Some(f) => (f.run)(args).map_err(|e| match e {
                            Failure::Task(m) => (kind::TASK_ERR, m),
                            Failure::Panic(m) => (kind::PANIC, m),
                            Failure::Decode(m) => (kind::DECODE_ERR, m),
                            Failure::Encode(m) => (kind::ENCODE_ERR, m),
                        }),
                    }
                }
            }
        };
        let written = match reply {
            // Said, not sent: the parent would take a refused frame for a
            // lost worker, and run the task again.
            Ok(bytes) if !fits(bytes.len()) => write_frame(
                &mut out,
                kind::TOO_BIG,
                &[too_big("its result", bytes.len()).as_bytes()],
            ),
            Ok(bytes) => write_frame(&mut out, kind::OK, &[&bytes]),
            Err((k, msg)) => write_frame(&mut out, k, &[msg.as_bytes()]),
        };
        if written.is_err() {
            std::process::exit(0);
        }
    }
}
