//! Fault injection for the processes scheduler: tasks that abort, segfault,
//! exit, or are killed or stopped from outside, read stdin or start
//! subprocesses; the computation either succeeds through the retry or fails
//! with `WorkerLost` naming the key; it never hangs; the next computation
//! works; no zombie or orphan is left.
//!
//! A test that would hang if its fault came back runs its computation under
//! `bounded` (a hang guard, not a timing check) on a pool size of its own:
//! rayon pools are shared by size, so a hung task would hold a thread of
//! every other test's pool of that size.

use rdask::prelude::*;
use rdask::ErrorKind;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

#[delayed]
fn abort_now(x: i64) -> i64 {
    if x >= 0 {
        std::process::abort();
    }
    x
}

#[delayed]
fn segfault(x: i64) -> i64 {
    if x >= 0 {
        // SAFETY: none; this is the point of the test.
        unsafe { std::ptr::null_mut::<i64>().write_volatile(x) };
    }
    x
}

#[delayed]
fn exit_three(x: i64) -> i64 {
    if x >= 0 {
        std::process::exit(3);
    }
    x
}

/// Writes this worker's pid to `path`, then sleeps: the test kills it.
#[delayed]
fn sleepy(path: String, millis: u64) -> u32 {
    std::fs::write(&path, std::process::id().to_string()).unwrap();
    std::thread::sleep(Duration::from_millis(millis));
    std::process::id()
}

#[delayed]
fn ok(x: i64) -> i64 {
    x + 1
}

fn procs() -> Scheduler {
    Scheduler::processes(2)
}

fn assert_lost(e: rdask::Error, key: &rdask::Key) {
    assert_eq!(e.kind(), ErrorKind::WorkerLost, "{e}");
    assert_eq!(e.key(), Some(key), "{e}");
    assert!(e.to_string().contains(&key.to_string()), "{e}");
}

#[test]
fn crashing_tasks_are_worker_lost_and_the_pool_recovers() {
    for (name, d, how) in [
        ("abort", abort_now(1), "signal: 6"),
        ("segfault", segfault(1), "signal: 11"),
        ("exit", exit_three(1), "exit status: 3"),
    ] {
        let ran = Arc::new(AtomicUsize::new(0));
        let dependent = {
            let ran = ran.clone();
            d.map(move |x| {
                ran.fetch_add(1, Ordering::SeqCst);
                x
            })
        };
        let t = Instant::now();
        let e = dependent.compute_with(&procs()).unwrap_err();
        // The message says how the worker ended, not how its pipe did.
        assert!(e.to_string().contains(how), "{name}: {e}");
        assert_lost(e, d.key());
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "{name} took {:?}",
            t.elapsed()
        );
        // Its dependent never ran; the next computation works.
        assert_eq!(ran.load(Ordering::SeqCst), 0, "{name}: the dependent ran");
        assert_eq!(ok(1).compute_with(&procs()).unwrap(), 2, "after {name}");
    }
}

#[test]
fn a_worker_killed_from_outside_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pid");
    let path_s = path.to_string_lossy().into_owned();
    let d = sleepy(path_s, 1500);
    let killer = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(pid) = std::fs::read_to_string(&path) {
                if !pid.is_empty() {
                    let status = std::process::Command::new("kill")
                        .args(["-9", pid.trim()])
                        .status()
                        .unwrap();
                    assert!(status.success());
                    return pid.trim().parse::<u32>().unwrap();
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!("the task never started");
    });
    let result = d.compute_with(&procs());
    let killed = killer.join().unwrap();
    // Killed once, the task is retried once, on a fresh worker, and
    // succeeds (tests/process_retry.rs pins the count of attempts).
    let pid = result.expect("the task was retried after its worker was killed");
    assert_ne!(pid, killed);
    assert_eq!(ok(2).compute_with(&procs()).unwrap(), 3);
}

/// Workers that die while idle (killed from outside, the OOM killer) are
/// noticed when next wanted: the task runs on a live worker, and is not
/// reported lost for a death that happened before it was sent.
#[test]
fn workers_that_died_idle_are_replaced() {
    let _alone = ZOMBIE_WATCH.lock().unwrap_or_else(|e| e.into_inner());
    // A pool of its own: other tests share `processes(2)`'s.
    let s = Scheduler::processes(3);
    let Scheduler::Processes(p) = &s else {
        unreachable!()
    };
    p.warm_up().unwrap();
    let dead = p.worker_pids();
    assert_eq!(dead.len(), 3, "{dead:?}");
    for pid in &dead {
        let status = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while !dead.iter().all(|pid| zombies().contains(pid)) {
        assert!(Instant::now() < deadline, "the workers did not die");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(ok(1).compute_with(&s).unwrap(), 2);
    let live = p.worker_pids();
    assert!(live.iter().all(|pid| !dead.contains(pid)), "{live:?}");
    assert!(
        dead.iter().all(|pid| !zombies().contains(pid)),
        "not reaped"
    );
}

/// A string (encoded in one piece, so quick to encode in a debug build).
#[delayed]
fn text_of(n: u64) -> String {
    "x".repeat(n as usize)
}

#[delayed]
fn len_of(s: String) -> u64 {
    s.len() as u64
}

/// An argument or a result too big for a message to a worker (over 1
/// GiB) is a clear error naming the task: not a lost worker, not a task
/// run twice, and the pool's workers live on.
#[test]
fn values_too_big_for_a_worker_are_a_clear_error() {
    let s = procs();
    let Scheduler::Processes(p) = &s else {
        unreachable!()
    };
    let big = (1_u64 << 30) + 1;
    let made = text_of(big);
    let e = len_of(&made).compute_with(&s).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Scheduler, "{e}");
    assert_eq!(e.key(), Some(made.key()), "{e}");
    assert!(e.to_string().contains("its result: 1073741"), "{e}");
    assert!(e.to_string().contains("1024 MiB"), "{e}");

    // An argument made here, by a closure task (it runs in this process).
    p.warm_up().unwrap();
    let before = p.worker_pids();
    let local = rdask::value(big).map(|n| "y".repeat(n as usize));
    let used = len_of(local);
    let e = used.compute_with(&s).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Scheduler, "{e}");
    assert_eq!(e.key(), Some(used.key()), "{e}");
    assert!(e.to_string().contains("its arguments: 1073741"), "{e}");
    let after = p.worker_pids();
    assert!(
        before.iter().all(|pid| after.contains(pid)),
        "{before:?} -> {after:?}"
    );
    assert_eq!(ok(1).compute_with(&s).unwrap(), 2);
}

/// Children of this process in state Z.
fn zombies() -> Vec<u32> {
    let me = std::process::id();
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let mut fields = after.split_whitespace();
        let state = fields.next().unwrap_or("");
        let ppid: u32 = fields.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        if ppid == me && state == "Z" {
            out.push(pid);
        }
    }
    out
}

/// Held by the test that looks for zombies and those that make them on
/// purpose (killed idle workers, zombies until the pool next takes them),
/// which would otherwise overlap (tests run in parallel in one process).
static ZOMBIE_WATCH: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn no_zombies_after_crashes() {
    let _alone = ZOMBIE_WATCH.lock().unwrap_or_else(|e| e.into_inner());
    let _ = abort_now(1).compute_with(&procs());
    assert_eq!(ok(0).compute_with(&procs()).unwrap(), 1);
    assert!(zombies().is_empty(), "zombies: {:?}", zombies());
}

/// Run as a child process by `workers_exit_with_their_parent`.
#[test]
#[ignore = "helper: run by workers_exit_with_their_parent"]
fn child_starts_workers_then_exits() {
    if std::env::var_os("RDASK_TEST_CHILD").is_none() {
        return;
    }
    let s = Scheduler::processes(2);
    let Scheduler::Processes(p) = &s else {
        unreachable!()
    };
    p.warm_up().unwrap();
    assert_eq!(ok(1).compute_with(&s).unwrap(), 2);
    println!("WORKERS {:?}", p.worker_pids());
}

#[test]
fn workers_exit_with_their_parent() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_starts_workers_then_exits",
            "--ignored",
            "--nocapture",
        ])
        .env("RDASK_TEST_CHILD", "1")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("WORKERS "))
        .unwrap_or_else(|| panic!("no worker list in {text}"));
    let pids: Vec<u32> = line
        .trim_matches(|c| c == '[' || c == ']')
        .split(", ")
        .filter_map(|p| p.parse().ok())
        .collect();
    assert_eq!(pids.len(), 2, "{line}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let alive: Vec<_> = pids
            .iter()
            .filter(|p| {
                std::fs::read_to_string(format!("/proc/{p}/stat"))
                    .map(|s| !s.contains(") Z "))
                    .unwrap_or(false)
            })
            .collect();
        if alive.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "workers still alive: {alive:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Encodes fine, never decodes: the worker cannot read its argument.
#[derive(Clone, Debug)]
struct Undecodable;

impl serde::Serialize for Undecodable {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(7)
    }
}

impl<'de> serde::Deserialize<'de> for Undecodable {
    fn deserialize<D: serde::Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Err(serde::de::Error::custom("this value never decodes"))
    }
}

#[delayed]
fn take_undecodable(_x: Undecodable) -> i64 {
    1
}

/// Its `Serialize` fails (`false`) or panics (`true`).
#[derive(Debug, serde::Deserialize)]
struct Unencodable(bool);

impl serde::Serialize for Unencodable {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        if self.0 {
            panic!("encoding panicked");
        }
        Err(serde::ser::Error::custom("this value never encodes"))
    }
}

#[delayed]
fn unencodable(panics: bool) -> Unencodable {
    Unencodable(panics)
}

/// A result the worker cannot encode is a clear error naming the task:
/// `Type` when its `Serialize` fails, `Panic` when it panics (not a lost
/// worker, whose task would run again).
#[test]
fn a_result_that_does_not_encode_is_a_clear_error() {
    let d = unencodable(false);
    let e = d.compute_with(&procs()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Type, "{e}");
    assert_eq!(e.key(), Some(d.key()), "{e}");
    assert!(e.to_string().contains("cannot encode its result"), "{e}");
    let d = unencodable(true);
    let e = d.compute_with(&procs()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Panic, "{e}");
    assert_eq!(e.key(), Some(d.key()), "{e}");
    assert!(e.to_string().contains("encoding panicked"), "{e}");
    assert_eq!(ok(1).compute_with(&procs()).unwrap(), 2);
}

/// Encodes fine; decoding it panics.
#[derive(Debug)]
struct PanicsDecoding(Vec<u8>);

impl serde::Serialize for PanicsDecoding {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for PanicsDecoding {
    fn deserialize<D: serde::Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        panic!("decoding panicked")
    }
}

#[delayed]
fn panics_decoding(n: u64) -> PanicsDecoding {
    PanicsDecoding(vec![1; n as usize])
}

/// A worker's result is decoded in the parent, a small one at once and a
/// big one only when the output is taken: a panic in the user's
/// `Deserialize` is an error naming the task either way, never a panic
/// out of `compute`.
#[test]
fn a_panic_decoding_an_output_is_a_panic_error() {
    for n in [10, 100_000] {
        let d = panics_decoding(n);
        let e = d.compute_with(&procs()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Panic, "{n}: {e}");
        assert_eq!(e.key(), Some(d.key()), "{n}: {e}");
        assert!(e.to_string().contains("decoding panicked"), "{n}: {e}");
    }
    assert_eq!(ok(1).compute_with(&procs()).unwrap(), 2);
}

#[test]
fn bad_input_is_a_clear_error() {
    // A value that fails to decode in the worker.
    let d = take_undecodable(Undecodable);
    let e = d.compute_with(&procs()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Type, "{e}");
    assert!(e.to_string().contains("cannot decode"), "{e}");

    // Worker programs that cannot start, or start without worker mode.
    for program in ["/nonexistent/rdask-worker", "/bin/false", "/bin/cat"] {
        let Scheduler::Processes(p) = Scheduler::processes(1) else {
            unreachable!()
        };
        let s = Scheduler::Processes(p.program(program).start_timeout(Duration::from_secs(2)));
        let t = Instant::now();
        let e = ok(1).compute_with(&s).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Scheduler, "{program}: {e}");
        assert!(e.to_string().contains("worker"), "{program}: {e}");
        assert!(t.elapsed() < Duration::from_secs(30), "{program}");
    }
    assert_eq!(ok(1).compute_with(&procs()).unwrap(), 2);
}

/// A "worker" that says hello properly, then answers its first request with
/// a corrupt frame (kind 99, a 4 GiB length).
#[test]
fn a_corrupt_frame_from_a_worker_is_worker_lost() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("corrupt-worker");
    std::fs::write(
        &script,
        "#!/bin/sh\nprintf '\\006\\000\\000\\000\\000'\nhead -c 1 >/dev/null\n\
         printf '\\143\\377\\377\\377\\377'\nexec sleep 30\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let Scheduler::Processes(p) = Scheduler::processes(1) else {
        unreachable!()
    };
    let s = Scheduler::Processes(p.program(&script));
    let d = ok(1);
    let t = Instant::now();
    let e = d.compute_with(&s).unwrap_err();
    assert!(e.to_string().contains("corrupt frame"), "{e}");
    assert_lost(e, d.key());
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
    // The real pool is unaffected.
    assert_eq!(ok(1).compute_with(&procs()).unwrap(), 2);
}

/// A worker that died idle leaves the pool's live workers when it is next
/// taken, and only it does: the live one beside it stays listed.
#[test]
fn a_dead_idle_worker_leaves_the_live_list_alone() {
    let _alone = ZOMBIE_WATCH.lock().unwrap_or_else(|e| e.into_inner());
    // A pool of its own: another program path (the same program).
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("own-pool-worker");
    std::os::unix::fs::symlink(std::env::current_exe().unwrap(), &exe).unwrap();
    let (_, p) = processes(2);
    let p = p.program(&exe);
    p.warm_up().unwrap();
    let pids = p.worker_pids();
    assert_eq!(pids.len(), 2, "{pids:?}");
    // Idle workers are taken last started first.
    let (live, dead) = (pids[0], pids[1]);
    assert!(signal("-KILL", dead), "cannot kill {dead}");
    let deadline = Instant::now() + GUARD;
    while !zombies().contains(&dead) {
        assert!(Instant::now() < deadline, "worker {dead} did not die");
        std::thread::sleep(Duration::from_millis(5));
    }
    let s = Scheduler::Processes(p.clone());
    assert_eq!(
        bounded("a dead idle worker", move || ok(1)
            .compute_with(&s)
            .unwrap()),
        2
    );
    assert_eq!(p.worker_pids(), vec![live]);
}

/// A "worker" whose hello comes after its start timeout is not used, even
/// though the hello does come (from a subprocess that outlives the killed
/// worker and holds its pipe): the start fails, saying so.
#[test]
fn a_hello_after_the_start_timeout_is_a_failed_start() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("late-worker");
    std::fs::write(
        &script,
        "#!/bin/sh\n(sleep 1; printf '\\006\\000\\000\\000\\000'; exec sleep 5) &\nexec sleep 30\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let Scheduler::Processes(p) = Scheduler::processes(1) else {
        unreachable!()
    };
    let s = Scheduler::Processes(p.program(&script).start_timeout(Duration::from_millis(100)));
    let d = ok(1);
    let key = d.key().clone();
    let e = bounded("a late hello", move || d.compute_with(&s).unwrap_err());
    assert_eq!(e.kind(), ErrorKind::Scheduler, "{e}");
    assert_eq!(e.key(), Some(&key), "{e}");
    assert!(e.to_string().contains("did not start"), "{e}");
    assert!(e.to_string().contains("first frame kind 6"), "{e}");
}

/// How long a computation that must not hang may take before the test
/// fails (generous: a loaded machine starts workers slowly).
const GUARD: Duration = Duration::from_secs(20);

/// Runs `f` on a helper thread and returns its result; fails the test,
/// naming `what`, when it is still running after `GUARD` (the thread is
/// left behind, blocked).
fn bounded<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)));
    });
    match rx.recv_timeout(GUARD) {
        Ok(Ok(v)) => v,
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(_) => panic!("{what}: still blocked after {GUARD:?} (it hangs)"),
    }
}

/// The processes scheduler of `n` workers.
fn processes(n: usize) -> (Scheduler, rdask::Processes) {
    let s = Scheduler::processes(n);
    let Scheduler::Processes(p) = &s else {
        unreachable!()
    };
    let p = p.clone();
    (s, p)
}

/// The state letter of process `pid` in `/proc/<pid>/stat` (`None`: gone).
fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..].trim_start().chars().next()
}

/// Sends `signal` (`-STOP`, `-CONT`, ...) to `pid`.
fn signal(signal: &str, pid: u32) -> bool {
    std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success())
}

/// Reads this worker's stdin to its end: the number of bytes read.
#[delayed]
fn read_stdin(x: u64) -> u64 {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::io::stdin().read_to_end(&mut bytes).unwrap();
    x + bytes.len() as u64
}

/// A task that reads stdin gets end-of-file (its stdin is `/dev/null`),
/// rather than deadlocking on the lock of a stdin the worker reads its
/// requests from.
#[test]
fn a_task_reading_stdin_gets_end_of_file() {
    let (s, _) = processes(8);
    let got = bounded("a task reading stdin", move || {
        read_stdin(5).compute_with(&s).unwrap()
    });
    assert_eq!(got, 5);
}

/// Runs `head -c 64` with the worker's stdin: it must not read requests.
#[delayed]
fn run_head(x: u64) -> u64 {
    let status = std::process::Command::new("sh")
        .args(["-c", "head -c 64 >/dev/null"])
        .status()
        .unwrap();
    assert!(status.success(), "{status}");
    x + 1
}

#[delayed]
fn add_all(xs: Vec<u64>) -> u64 {
    xs.iter().sum()
}

/// A subprocess that a task starts inherits `/dev/null`, not the request
/// pipe: it cannot eat the frames meant for its worker, and every task of a
/// computation bigger than the pool completes.
#[test]
fn a_subprocess_of_a_task_does_not_eat_requests() {
    let (s, _) = processes(5);
    let got = bounded("tasks running `head -c 64`", move || {
        let parts: Vec<_> = (0..12).map(run_head).collect();
        add_all(&parts[..]).compute_with(&s).unwrap()
    });
    assert_eq!(got, (1..=12).sum::<u64>());
}

/// Starts `sleep 30` in the background (its pid appended to `path`), then
/// aborts.
#[delayed]
fn daemon_then_abort(path: String) -> u64 {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let child = Command::new("sleep")
        .arg("30")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&path)
        .unwrap();
    writeln!(f, "{}", child.id()).unwrap();
    std::process::abort()
}

/// A worker that dies is lost at once, even if a subprocess it started
/// lives on: the subprocess does not hold the reply pipe open.
#[test]
fn a_dead_worker_is_noticed_while_its_subprocess_lives() {
    let (s, _) = processes(6);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("daemons");
    let d = daemon_then_abort(path.to_string_lossy().into_owned());
    let key = d.key().clone();
    let result = bounded("a worker that died leaving a daemon", move || {
        d.compute_with(&s)
    });
    // Stop the daemons (not our children: they were the workers').
    for pid in std::fs::read_to_string(&path).unwrap_or_default().lines() {
        signal("-KILL", pid.parse().unwrap());
    }
    assert_lost(result.unwrap_err(), &key);
}

/// Its argument's `Deserialize` appends a line to the file it names, then
/// panics.
#[derive(Clone, Debug)]
struct PanicsInWorker(String);

impl serde::Serialize for PanicsInWorker {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for PanicsInWorker {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use std::io::Write;
        let path = String::deserialize(d)?;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&path)
            .unwrap();
        writeln!(f, "decoded").unwrap();
        panic!("decoding the argument panicked")
    }
}

#[delayed]
fn take_panics_in_worker(_x: PanicsInWorker) -> u64 {
    1
}

/// A panic in the user's `Deserialize` of a task's arguments, in the
/// worker, is a `Panic` error naming the task, like a panic in the task:
/// the worker lives on and the task is not run again.
#[test]
fn a_panic_decoding_arguments_in_a_worker_is_a_panic_error() {
    // A pool of its own (the same size, another program path), so no
    // other test's crash replaces its worker.
    let (_, p) = processes(2);
    let p = p.program(std::env::current_exe().unwrap());
    let s = Scheduler::Processes(p.clone());
    assert_eq!(ok(1).compute_with(&s).unwrap(), 2);
    let before = p.worker_pids();
    assert_eq!(before.len(), 1, "{before:?}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("decoded");
    let d = take_panics_in_worker(PanicsInWorker(path.to_string_lossy().into_owned()));
    let e = d.compute_with(&s).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Panic, "{e}");
    assert_eq!(e.key(), Some(d.key()), "{e}");
    assert!(e.to_string().contains(&d.key().to_string()), "{e}");
    assert!(
        e.to_string().contains("decoding the argument panicked"),
        "{e}"
    );
    let runs = std::fs::read_to_string(&path).unwrap();
    assert_eq!(runs.lines().count(), 1, "decoded {runs:?}");
    assert_eq!(p.worker_pids(), before, "a worker was replaced");
    assert_eq!(ok(1).compute_with(&s).unwrap(), 2);
}

#[delayed]
fn my_pid(_x: u64) -> u32 {
    std::process::id()
}

#[delayed]
fn all_of(xs: Vec<u32>) -> Vec<u32> {
    xs
}

/// Workers started from a thread that then ends live on (the parent-death
/// signal follows the thread that started a process, so no short-lived
/// thread starts one), and the next computation uses them.
#[test]
fn workers_warmed_up_on_a_thread_that_ends_live_on() {
    // A pool of its own, started by this test alone.
    let (_, p) = processes(3);
    let p = p.program(std::env::current_exe().unwrap());
    let s = Scheduler::Processes(p.clone());
    let warm = p.clone();
    std::thread::spawn(move || warm.warm_up().unwrap())
        .join()
        .unwrap();
    let pids = p.worker_pids();
    assert_eq!(pids.len(), 3, "{pids:?}");
    // Time for a parent-death signal to arrive, if one were sent.
    std::thread::sleep(Duration::from_millis(500));
    for pid in &pids {
        let state = proc_state(*pid);
        assert!(
            state.is_some_and(|s| s != 'Z' && s != 'X'),
            "worker {pid} died with the thread that started it (state {state:?})"
        );
    }
    let used: Vec<_> = (0..6).map(my_pid).collect();
    let used = all_of(&used[..]).compute_with(&s).unwrap();
    assert!(
        used.iter().all(|pid| pids.contains(pid)),
        "{used:?} {pids:?}"
    );
    assert_eq!(p.worker_pids(), pids, "workers were replaced");
}

/// A worker stopped (SIGSTOP) while it runs a task is lost: killed, reaped,
/// and its task retried on a fresh worker, instead of a computation that
/// waits for it forever.
#[test]
fn a_worker_stopped_mid_task_is_lost() {
    let (s, _) = processes(7);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pid");
    let d = sleepy(path.to_string_lossy().into_owned(), 2000);
    let key = d.key().clone();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(d.compute_with(&s)));
    let deadline = Instant::now() + GUARD;
    let stopped = loop {
        let pid = std::fs::read_to_string(&path).ok();
        if let Some(pid) = pid.and_then(|p| p.trim().parse::<u32>().ok()) {
            assert!(signal("-STOP", pid), "cannot stop {pid}");
            break pid;
        }
        assert!(Instant::now() < deadline, "the task never started");
        std::thread::sleep(Duration::from_millis(5));
    };
    let Ok(result) = rx.recv_timeout(GUARD) else {
        signal("-CONT", stopped);
        panic!("the computation still waits for a stopped worker after {GUARD:?}");
    };
    match result {
        Ok(pid) => assert_ne!(pid, stopped, "the stopped worker answered"),
        Err(e) => {
            assert!(e.to_string().contains("stopped"), "{e}");
            assert_lost(e, &key);
        }
    }
    assert_ne!(
        proc_state(stopped),
        Some('T'),
        "the stopped worker was left"
    );
    assert!(!zombies().contains(&stopped), "not reaped");
}

/// Idle workers that were stopped are not handed work: they are replaced.
#[test]
fn stopped_idle_workers_are_replaced() {
    let (s, p) = processes(4);
    p.warm_up().unwrap();
    let stopped = p.worker_pids();
    assert_eq!(stopped.len(), 4, "{stopped:?}");
    for &pid in &stopped {
        assert!(signal("-STOP", pid), "cannot stop {pid}");
    }
    let deadline = Instant::now() + GUARD;
    while !stopped.iter().all(|&pid| proc_state(pid) == Some('T')) {
        assert!(Instant::now() < deadline, "the workers did not stop");
        std::thread::sleep(Duration::from_millis(5));
    }
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(ok(1).compute_with(&s)));
    let Ok(result) = rx.recv_timeout(GUARD) else {
        for &pid in &stopped {
            signal("-CONT", pid);
        }
        panic!("the computation still waits for a stopped worker after {GUARD:?}");
    };
    assert_eq!(result.unwrap(), 2);
    let live = p.worker_pids();
    assert!(live.iter().all(|pid| !stopped.contains(pid)), "{live:?}");
}

/// Prints a partial line (no newline) in a worker.
#[delayed]
fn print_partial(x: i64) -> i64 {
    print!("partial-line-{x}");
    x
}

/// Run as a child process by `a_partial_line_printed_in_a_worker_is_not_lost`.
#[test]
#[ignore = "helper: run by a_partial_line_printed_in_a_worker_is_not_lost"]
fn child_prints_a_partial_line_then_exits() {
    if std::env::var_os("RDASK_TEST_CHILD").is_none() {
        return;
    }
    let s = Scheduler::processes(1);
    assert_eq!(print_partial(7).compute_with(&s).unwrap(), 7);
    // The process ends now, and its worker with it.
}

/// A task's output is flushed before its reply: a partial line is not left
/// in the worker's buffer, to be lost when the parent ends first.
#[test]
fn a_partial_line_printed_in_a_worker_is_not_lost() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_prints_a_partial_line_then_exits",
            "--ignored",
            "--nocapture",
        ])
        .env("RDASK_TEST_CHILD", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("partial-line-7"),
        "the worker's output was lost: {err}"
    );
}
