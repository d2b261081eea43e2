//! The Dask scheduler against a real cluster: `RDASK_DASK_SCHEDULER_FILE`'s
//! (CI starts `dask scheduler` + 2 `dask worker` on 127.0.0.1), else a
//! `LocalCluster` of 2 workers that the first test starts. The client's
//! Python is `RDASK_DASK_PYTHON`, else `target/peers-venv` (made on first
//! use by `benches/peers/setup.sh`). Without one these tests fail, saying
//! what to install: they never pass by skipping.

use rdask::prelude::*;
use std::path::PathBuf;
use std::sync::OnceLock;

#[delayed]
fn inc(x: u64) -> u64 {
    x + 1
}

#[delayed]
fn total(xs: Vec<u64>) -> u64 {
    xs.iter().sum()
}

fn python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            if let Some(p) = std::env::var_os("RDASK_DASK_PYTHON") {
                return PathBuf::from(p);
            }
            let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
            let venv = root.join("target/peers-venv/bin/python");
            let ok = std::process::Command::new("bash")
                .arg(root.join("benches/peers/setup.sh"))
                .status()
                .is_ok_and(|s| s.success());
            assert!(
                ok && venv.exists(),
                "the Dask tests need a Python with dask.distributed: benches/peers/setup.sh \
                 could not make target/peers-venv (it needs python3 -m venv and PyPI); or set \
                 RDASK_DASK_PYTHON to a Python with `pip install 'distributed==2026.8.0'`"
            );
            venv
        })
        .clone()
}

fn cluster() -> Scheduler {
    let s = match std::env::var_os("RDASK_DASK_SCHEDULER_FILE") {
        Some(f) => Scheduler::dask_scheduler_file(f),
        None => Scheduler::dask_local(2),
    };
    match s {
        Scheduler::Dask(d) => Scheduler::Dask(d.python(python())),
        _ => unreachable!(),
    }
}

#[test]
fn flat_chain_and_tree_results() {
    let s = cluster();
    let xs: Vec<_> = (0..20).map(inc).collect();
    assert_eq!(
        rdask::compute_with(&xs, &s).unwrap(),
        (1..=20).collect::<Vec<u64>>()
    );
    let t = total(xs);
    assert_eq!(t.compute_with(&s).unwrap(), (1..=20).sum::<u64>());
    let mut c = inc(0);
    for _ in 0..99 {
        c = inc(c);
    }
    assert_eq!(c.compute_with(&s).unwrap(), 100);
}

#[delayed]
fn pid(_x: u64) -> u32 {
    std::process::id()
}

#[test]
fn tasks_run_in_helpers_on_the_dask_workers() {
    let s = cluster();
    let Scheduler::Dask(d) = &s else {
        unreachable!()
    };
    let workers = d.worker_pids().unwrap();
    assert_eq!(workers.len(), 2, "{workers:?}");
    let helpers: Vec<u32> = workers.iter().flat_map(|(_, h)| h.clone()).collect();
    let pids: Vec<_> = (0..40).map(pid).collect();
    let ran = rdask::compute_with(&pids, &s).unwrap();
    assert!(
        ran.iter().all(|p| helpers.contains(p)),
        "{ran:?} not in {helpers:?}"
    );
    assert!(!ran.contains(&std::process::id()));
}
