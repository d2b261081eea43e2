//! The executor's less travelled paths (`exec/mod.rs`), each pinned by a
//! mutant that survived the rest of the suite (docs/MUTANTS.md, 19th
//! session): what the annotations ask of the loop when every task says
//! the same thing, which failures a retry may try again, ...

use rdask::prelude::*;
use rdask::{Annotations, Callback, Compute, ErrorKind, Key};
use std::sync::{Arc, Mutex};

/// The order tasks ran in, recorded by the tasks.
static ORDER: Mutex<Vec<u64>> = Mutex::new(Vec::new());

/// The tests that read `ORDER`, one at a time.
static ORDER_TESTS: Mutex<()> = Mutex::new(());

#[delayed]
fn step(x: u64) -> u64 {
    ORDER.lock().unwrap().push(x);
    x
}

#[delayed]
fn gather(xs: Vec<u64>) -> u64 {
    xs.iter().sum()
}

/// A priority on every task, none of them 0 (the default): ready tasks are
/// still ordered by it. (The loop orders ready tasks when *some* task has a
/// priority other than 0; a plan where every task has one has no 0 to see.)
#[test]
fn priorities_order_tasks_when_every_task_has_one() {
    let _alone = ORDER_TESTS.lock().unwrap_or_else(|e| e.into_inner());
    let prio = |i: u64| ((i * 7) % 12) as i32 + 2;
    let d = rdask::annotate(Annotations::new().priority(1), || {
        let leaves: Vec<Delayed<u64>> = (0..12)
            .map(|i| rdask::annotate(Annotations::new().priority(prio(i)), || step(step(i) + 100)))
            .collect();
        gather(leaves)
    });
    ORDER.lock().unwrap().clear();
    let want_sum: u64 = (0..12).map(|i| i + 100).sum();
    assert_eq!(d.compute_with(&Scheduler::Sync).unwrap(), want_sum);
    let firsts: Vec<u64> = std::mem::take(&mut *ORDER.lock().unwrap())
        .into_iter()
        .filter(|x| *x < 100)
        .collect();
    let mut want: Vec<u64> = (0..12).collect();
    want.sort_by_key(|&i| std::cmp::Reverse(prio(i)));
    assert_eq!(firsts, want);
}

#[delayed(resources(gpu = 2))]
fn on_two_gpus(x: u64) -> u64 {
    x + 1
}

/// A need on every task: still checked against what the scheduler has.
/// (Resources are looked at when *some* task needs one; a plan where
/// every task does has no task without to see.)
#[test]
fn resources_are_checked_when_every_task_needs_some() {
    let d = on_two_gpus(on_two_gpus(1));
    for (s, has) in [
        (Scheduler::threads(2), "0"),
        (Scheduler::threads(2).with_resources(&[("gpu", 1.0)]), "1"),
    ] {
        let e = d.compute_with(&s).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Scheduler, "{s}: {e}");
        let m = e.to_string();
        assert!(
            m.contains("on_two_gpus") && m.contains("`gpu`") && m.contains(&format!("has {has}")),
            "{s}: {m}"
        );
    }
    let s = Scheduler::threads(2).with_resources(&[("gpu", 2.0)]);
    assert_eq!(d.compute_with(&s).unwrap(), 3);
}

/// Counts the attempts callbacks hear of.
#[derive(Default)]
struct Starts(Mutex<Vec<String>>);

impl Callback for Starts {
    fn pretask(&self, key: &Key, _worker: usize) {
        self.0.lock().unwrap().push(key.to_string());
    }
}

struct Unique(u64);

#[delayed]
fn unique(x: u64) -> Unique {
    Unique(x)
}

#[delayed(retries = 2)]
fn consume(u: Unique) -> u64 {
    u.0
}

/// A failure that is not the task's own (an input that cannot be copied
/// for each attempt: `NotClone`) is not retried: one attempt, and the
/// error does not say "after 3 attempts".
#[test]
fn only_a_tasks_own_failures_are_retried() {
    let d = consume(unique(1));
    let starts = Arc::new(Starts::default());
    let e = Compute::new(std::slice::from_ref(&d))
        .scheduler(Scheduler::Sync)
        .callback(starts.clone())
        .run()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotClone, "{e}");
    assert!(!e.to_string().contains("attempts"), "{e}");
    let consumes = starts
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|k| k.contains("consume"))
        .count();
    assert_eq!(consumes, 1);
}

/// How many times a `Counted` was encoded.
static ENCODED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

#[derive(Clone, serde::Deserialize)]
struct Counted(u64);

impl serde::Serialize for Counted {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        ENCODED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        s.serialize_u64(self.0)
    }
}

#[delayed(pure)]
fn counted(x: u64) -> Counted {
    Counted(x)
}

#[delayed(cache)]
fn doubled(c: Counted) -> u64 {
    c.0 * 2
}

/// Records each cache lookup: (task, found).
#[derive(Default)]
struct Lookups(Mutex<Vec<(String, bool)>>);

impl Callback for Lookups {
    fn cached(&self, key: &Key, hit: bool) {
        self.0.lock().unwrap().push((key.to_string(), hit));
    }
}

/// A cached task whose inputs are all pure calls is named by its own key
/// (a hash of theirs): its entry is looked up and stored without encoding
/// its arguments (README, "Caching"), and found again from new lazy calls.
#[test]
fn a_cached_task_of_pure_inputs_is_found_by_its_key_without_encoding_them() {
    use std::sync::atomic::Ordering;
    let dir = tempfile::tempdir().unwrap();
    let cache = rdask::Cache::open(dir.path()).unwrap();
    let before = ENCODED.load(Ordering::SeqCst);
    for (run, s) in [Scheduler::Sync, Scheduler::threads(2)]
        .into_iter()
        .enumerate()
    {
        let lookups = Arc::new(Lookups::default());
        let outs = vec![doubled(counted(21))];
        let got = Compute::new(&outs)
            .scheduler(s.clone())
            .cache(&cache)
            .callback(lookups.clone())
            .run()
            .unwrap();
        assert_eq!(got, vec![42], "{s}");
        let seen = std::mem::take(&mut *lookups.0.lock().unwrap());
        // The first run stores the entry, the second finds it.
        assert_eq!(seen.len(), 1, "{s}: {seen:?}");
        assert_eq!(seen[0].1, run > 0, "{s}: {seen:?}");
        assert_eq!(
            ENCODED.load(Ordering::SeqCst),
            before,
            "{s}: an input was encoded"
        );
    }
}

/// A value that cannot go to a worker (no serde): a call taking it runs in
/// this process.
#[derive(Clone)]
struct Local(u64);

#[delayed]
fn fails_here(x: Local) -> Result<u64, String> {
    Err(format!("task {} failed here", x.0))
}

/// A remote call that leaves `dir/i` behind when it runs (in a worker).
#[delayed]
fn mark(dir: String, i: u64) -> u64 {
    std::fs::write(std::path::Path::new(&dir).join(i.to_string()), b"ran").unwrap();
    i
}

#[delayed]
fn sum(xs: Vec<u64>) -> u64 {
    xs.iter().sum()
}

/// On processes, the ready tasks one driver thread takes together (the
/// first of them failing here, in this process) are not sent to the
/// workers after the failure: no task starts once one has failed.
/// (64 initial tasks on `processes(2)`'s 2 driver threads: each thread
/// takes them four at a time, the failing one first in its four.)
#[test]
fn tasks_after_a_failure_in_a_processes_batch_are_not_sent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_string_lossy().into_owned();
    let mut tasks = vec![fails_here(Local(0))];
    tasks.extend((1..64).map(|i| mark(path.clone(), i)));
    let e = sum(tasks)
        .compute_with(&Scheduler::processes(2))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Task, "{e}");
    assert!(e.to_string().contains("task 0 failed here"), "{e}");
    for i in 1..4 {
        assert!(
            !dir.path().join(i.to_string()).exists(),
            "mark {i} ran after the failure before it"
        );
    }
}

#[delayed]
fn start(x: u64) -> u64 {
    x
}

/// Fails, in this process, once its input is there.
#[delayed]
fn fails_after(x: u64, l: Local) -> Result<u64, String> {
    Err(format!("task {} failed after {x}", l.0))
}

/// A chain's link: leaves `dir/i` behind when it runs (in a worker).
#[delayed]
fn mark_after(dir: String, x: u64, i: u64) -> u64 {
    std::fs::write(std::path::Path::new(&dir).join(i.to_string()), b"ran").unwrap();
    x + i
}

/// On processes, a chain of remote calls that becomes ready with a task
/// that fails is not sent once that task has failed. (`processes(1)` has
/// one driver thread: `start` makes `fails_after` and the chain's head
/// ready; the head is handed to the pool, `fails_after` runs first.)
#[test]
fn a_chain_made_ready_beside_a_failure_is_not_sent_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_string_lossy().into_owned();
    let s = start(1);
    let failing = fails_after(&s, Local(0));
    let chain = (1..=4).fold(s, |x, i| mark_after(path.clone(), x, i));
    let e = sum(vec![failing, chain])
        .compute_with(&Scheduler::processes(1))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Task, "{e}");
    assert!(e.to_string().contains("task 0 failed after 1"), "{e}");
    let ran: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|f| f.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(ran.is_empty(), "links ran after the failure: {ran:?}");
}

#[delayed]
fn check(x: u64) -> Result<u64, String> {
    match x % 3 {
        0 => Err(format!("{x} is a multiple of 3")),
        _ => Ok(x),
    }
}

#[delayed]
fn take_gated(gate: u64, u: Unique) -> u64 {
    gate + u.0
}

#[delayed]
fn take(u: Unique) -> u64 {
    u.0
}

/// Keep-going: a consumer that does not run (an input failed) ends its
/// by-value use of its other inputs, so the last healthy consumer of a
/// value that is not `Clone` moves it. (On Sync, `check(3)` fails first;
/// then `unique(5)` makes `take_gated` and `take` ready, in that order.)
#[test]
fn a_skipped_consumer_gives_back_a_by_value_input() {
    let u = unique(5);
    let failing = take_gated(check(3), &u);
    let outs = vec![failing, take(u)];
    let each = Compute::new(&outs).scheduler(Scheduler::Sync).run_each();
    let e = each[0].as_ref().unwrap_err();
    assert!(e.to_string().contains("3 is a multiple of 3"), "{e}");
    assert_eq!(
        each[1].as_ref().ok(),
        Some(&5),
        "{:?}",
        each[1].as_ref().err()
    );
}

/// A callback that listens to nothing: its computation takes the plan
/// (the executor), not the tree walk.
struct Quiet;

impl Callback for Quiet {}

/// Its `Drop` panics.
struct Bomb(u64);

impl Drop for Bomb {
    fn drop(&mut self) {
        panic!("bomb {} went off", self.0)
    }
}

#[delayed]
fn make_bomb(x: u64) -> Bomb {
    Bomb(x)
}

#[delayed]
fn peek_bomb(b: &Bomb) -> u64 {
    b.0
}

/// A value whose last use is a borrow is dropped by the engine once the
/// borrower has run (its `Drop`'s panic is the computation's error, named
/// for the value's task), not handed to the borrower to drop with its
/// arguments (which would name the borrower, as if it had panicked).
#[test]
fn a_value_last_used_by_a_borrow_is_dropped_by_the_engine() {
    let d = peek_bomb(make_bomb(4));
    let e = Compute::new(std::slice::from_ref(&d))
        .scheduler(Scheduler::Sync)
        .callback(Arc::new(Quiet))
        .run()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Panic, "{e}");
    let m = e.to_string();
    assert!(
        m.contains("dropping the value of `make_bomb") && m.contains("bomb 4 went off"),
        "{m}"
    );
}

#[delayed]
fn fails_now(x: u64) -> Result<u64, String> {
    Err(format!("{x} failed"))
}

#[delayed]
fn peek_bomb_after(b: &Bomb, gate: u64) -> u64 {
    b.0 + gate
}

/// After a failure, the values left in the plan (made, never used) are
/// freed by the engine: a panic in their `Drop` never escapes `compute`,
/// and the computation's error stays the first one, the task's (the drop's
/// panic used to replace it: `finish` took the first failure, then the
/// drop recorded a new one).
#[test]
fn values_left_after_a_failure_are_freed_inside_the_computation() {
    let d = peek_bomb_after(make_bomb(6), fails_now(1));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        Compute::new(std::slice::from_ref(&d))
            .scheduler(Scheduler::Sync)
            .callback(Arc::new(Quiet))
            .run()
    }));
    let e = r.expect("a panic escaped compute").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Task, "{e}");
    assert!(e.to_string().contains("1 failed"), "{e}");
}

/// Not `Clone`: one task may take it by value, others only borrow it.
struct NoClone(u64);

#[delayed]
fn make_nc(x: u64) -> NoClone {
    NoClone(x)
}

#[delayed]
fn peek_nc(m: &NoClone) -> u64 {
    m.0
}

#[delayed]
fn eat_nc(m: NoClone) -> u64 {
    m.0 * 10
}

#[delayed]
fn peek_nc_after(m: &NoClone, after: u64) -> u64 {
    m.0 + after
}

#[delayed]
fn add3(a: u64, b: u64, c: u64) -> u64 {
    a + b + c
}

/// Two values a mover waits for their borrowers to release: one fine (its
/// borrower does not need the mover), one stalled (its borrower needs the
/// mover's result). The error names the stalled pair, not the first one.
#[test]
fn a_stall_names_the_mover_that_waits() {
    let fine = make_nc(1);
    let stuck = make_nc(2);
    let eaten = eat_nc(&stuck);
    let d = add3(eat_nc(&fine), peek_nc(&fine), peek_nc_after(&stuck, &eaten));
    let e = d.compute_with(&Scheduler::Sync).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotClone, "{e}");
    assert_eq!(e.key(), Some(stuck.key()), "{e}");
    let m = e.to_string();
    assert!(
        m.contains(&format!(
            "`{}` takes the value of `{}`",
            eaten.key(),
            stuck.key()
        )),
        "{m}"
    );
}
