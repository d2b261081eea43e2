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
    let (remote, local) = rdask::process::task_counts();
    assert!(remote >= 22, "remote {remote}");
    assert!(local >= 2, "local {local}");
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
