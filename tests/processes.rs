//! The processes scheduler: serde tasks run in worker processes (this test
//! binary re-executed in worker mode), everything else in the parent, with
//! the same results as threads.

use rdask::prelude::*;
use rdask::{ErrorKind, Processes};

#[delayed]
fn square(x: i64) -> i64 {
    x * x
}

#[delayed]
fn total(xs: Vec<i64>) -> i64 {
    xs.iter().sum()
}

#[delayed]
fn pid() -> u32 {
    std::process::id()
}

#[delayed]
fn describe(name: &str, xs: &Vec<i64>) -> String {
    format!("{name}: {}", xs.len())
}

#[delayed]
fn parse(s: String) -> Result<i64, std::num::ParseIntError> {
    s.parse()
}

#[delayed]
fn boom(x: i64) -> i64 {
    if x > 0 {
        panic!("boom {x}");
    }
    x
}

/// Not serde: runs in the parent.
#[derive(Clone, Debug, PartialEq)]
struct Local(i64);

#[delayed]
fn wrap(x: i64) -> Local {
    Local(x)
}

#[delayed]
fn unwrap_local(l: Local) -> i64 {
    l.0
}

fn procs() -> Scheduler {
    Scheduler::processes(2)
}

#[test]
fn results_match_threads() {
    let build = || {
        let xs: Vec<_> = (0..20).map(square).collect();
        let t = total(&xs[..]);
        let d = describe("n", total(xs.clone()).map(|v: i64| vec![v; 3]));
        let l = unwrap_local(wrap(&t)) + 1;
        (t, d, l)
    };
    let (t, d, l) = build();
    let on_procs = with_scheduler_tuple(procs(), || compute!(t, d, l));
    let (t, d, l) = build();
    let on_threads = with_scheduler_tuple(Scheduler::threads(2), || compute!(t, d, l));
    assert_eq!(on_procs.unwrap(), on_threads.unwrap());
    // Where each kind of task ran, told by the tasks (`task_counts()` is
    // process-wide, and the other tests of this binary move it too): a
    // serde task in a worker, one that takes a non-serde value here.
    let (remote, local) =
        with_scheduler_tuple(procs(), || compute!(pid(), local_pid(wrap(0)))).unwrap();
    assert_ne!(remote, std::process::id(), "a serde task ran here");
    assert_eq!(
        local,
        std::process::id(),
        "a non-serde task ran in a worker"
    );
}

#[delayed]
fn local_pid(_l: Local) -> u32 {
    std::process::id()
}

fn with_scheduler_tuple<R>(s: Scheduler, f: impl FnOnce() -> R) -> R {
    rdask::with_scheduler(s, f)
}

#[test]
fn tasks_run_in_other_processes() {
    let pids: Vec<_> = (0..8).map(|_| pid()).collect();
    let got = rdask::compute_with(&pids, &procs()).unwrap();
    assert!(got.iter().all(|&p| p != std::process::id()), "{got:?}");
    let Scheduler::Processes(p) = procs() else {
        unreachable!()
    };
    let workers = p.worker_pids();
    assert!(
        got.iter().all(|p| workers.contains(p)),
        "{got:?} vs {workers:?}"
    );
}

#[test]
fn errors_and_panics_in_workers() {
    let e = parse("x".to_string()).compute_with(&procs()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Task);
    assert!(e.to_string().contains("invalid digit"), "{e}");
    let e = boom(1).compute_with(&procs()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Panic);
    assert!(e.to_string().contains("boom 1"), "{e}");
    // The worker survived and the pool still works.
    assert_eq!(boom(0).compute_with(&procs()).unwrap(), 0);
}

#[test]
fn names_parse() {
    assert!(matches!(
        "processes".parse::<Scheduler>().unwrap(),
        Scheduler::Processes(_)
    ));
    assert!(matches!(
        "multiprocessing".parse::<Scheduler>().unwrap(),
        Scheduler::Processes(_)
    ));
    assert_eq!(
        "processes:3".parse::<Scheduler>().unwrap().to_string(),
        "processes:3"
    );
    let p: Processes = match Scheduler::processes(0) {
        Scheduler::Processes(p) => p,
        _ => unreachable!(),
    };
    assert!(p.workers() >= 1);
}

#[delayed]
fn big(n: usize, fill: u8) -> Vec<u8> {
    vec![fill; n]
}

#[delayed]
fn bump(data: Vec<u8>) -> Vec<u8> {
    data.into_iter().map(|b| b.wrapping_add(1)).collect()
}

#[delayed]
fn byte_sum(data: &Vec<u8>) -> u64 {
    data.iter().map(|&b| u64::from(b)).sum()
}

/// Values made in workers stay encoded in the parent: forwarded to other
/// workers as bytes, copied as bytes for a second by-value consumer, and
/// decoded for a closure, a borrowing task and the outputs.
#[test]
fn worker_values_are_forwarded_copied_and_decoded() {
    let n = 1 << 20;
    let b = big(n, 1);
    let bumped = bump(&b); // by value: a copy (b is used again)
    let twice = bump(bump(&b)); // forwarded worker to worker
    let local = b.map(|v: Vec<u8>| v.len()); // a closure in the parent
    let sum = byte_sum(&twice);
    let graph = || {
        (
            bumped.map(|v: Vec<u8>| v[0]),
            local.clone(),
            sum.clone(),
            twice.clone(),
        )
    };
    let on = |s: &Scheduler| {
        rdask::with_scheduler(s.clone(), || {
            let (a, l, s, t) = graph();
            compute!(a, l, s, t)
        })
    };
    let want = on(&Scheduler::threads(2)).unwrap();
    let got = on(&procs()).unwrap();
    assert_eq!(got, want);
    assert_eq!((got.0, got.1, got.2), (2, n, 3 * n as u64));
}

/// Encodes fine in a worker (to `.0` bytes), never decodes.
#[derive(Clone, Debug)]
struct Undecodable(usize);

impl serde::Serialize for Undecodable {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&vec![7; self.0])
    }
}

impl<'de> serde::Deserialize<'de> for Undecodable {
    fn deserialize<D: serde::Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Err(serde::de::Error::custom("this value never decodes"))
    }
}

#[delayed]
fn make_undecodable(size: usize) -> Undecodable {
    Undecodable(size)
}

#[test]
fn a_worker_value_that_does_not_decode_is_a_clear_error() {
    // Small results are decoded on arrival: the producer is named.
    let small = make_undecodable(10);
    let e = small
        .map(|_: Undecodable| 1)
        .compute_with(&procs())
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Type, "{e}");
    assert_eq!(e.key(), Some(small.key()));
    assert!(e.to_string().contains("cannot decode its result"), "{e}");
    // Big ones stay encoded until needed here; as an output...
    let d = make_undecodable(100_000);
    let e = d.compute_with(&procs()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Type, "{e}");
    assert_eq!(e.key(), Some(d.key()));
    assert!(e.to_string().contains("does not decode"), "{e}");
    // ...or taken by a closure in the parent: the closure's task is named.
    let m = make_undecodable(100_000).map(|_: Undecodable| 1);
    let e = m.compute_with(&procs()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Type, "{e}");
    assert_eq!(e.key(), Some(m.key()));
    assert!(e.to_string().contains("does not decode"), "{e}");
    // The scheduler is fine afterwards.
    assert_eq!(square(3).compute_with(&procs()).unwrap(), 9);
}

/// Computes a graph of its own inside whichever process runs it.
#[delayed]
fn nested_sum(n: i64) -> (u32, i64) {
    let parts: Vec<_> = (0..n).map(square).collect();
    let sum = total(parts).compute().expect("the nested compute works");
    (std::process::id(), sum)
}

#[test]
fn a_nested_compute_in_a_worker_runs_inside_that_worker() {
    let want: i64 = (0..50).map(|i| i * i).sum();
    let (pid, sum) = nested_sum(50).compute_with(&procs()).unwrap();
    assert_eq!(sum, want);
    assert_ne!(pid, std::process::id(), "it ran in a worker");
}

#[delayed]
fn nap_pid(ms: u64) -> u32 {
    std::thread::sleep(std::time::Duration::from_millis(ms));
    std::process::id()
}

#[test]
fn concurrent_computations_share_the_workers_asked_for() {
    // A pool of its own (3 workers), used by four computations at once,
    // each with more ready tasks than the pool has workers. All of them run
    // on the scheduler's 3 threads, so at most 3 calls are ever in flight
    // and the pool never grows past what was asked for.
    let s = Scheduler::processes(3);
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let s = s.clone();
            std::thread::spawn(move || {
                let naps: Vec<_> = (0..12).map(|_| nap_pid(5)).collect();
                rdask::compute_with(&naps, &s)
            })
        })
        .collect();
    let mut pids = std::collections::BTreeSet::new();
    for run in runs {
        pids.extend(run.join().unwrap().unwrap());
    }
    let Scheduler::Processes(p) = &s else {
        unreachable!()
    };
    let live = p.worker_pids();
    assert!(
        pids.len() <= 3,
        "tasks ran in {} workers: {pids:?}",
        pids.len()
    );
    assert!(live.len() <= 3, "{live:?}");
    assert!(
        pids.iter().all(|p| live.contains(p)),
        "{pids:?} vs {live:?}"
    );
}
