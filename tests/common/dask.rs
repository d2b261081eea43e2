//! The Dask tests' fixtures: the client's Python and clusters to run on.
//!
//! The Python is `RDASK_DASK_PYTHON`, else `target/peers-venv` (made on
//! first use by `benches/peers/setup.sh`, with the pinned dask and
//! distributed). Without one the tests fail, saying what to install: they
//! never pass by skipping.

#![allow(dead_code)]

use rdask::Scheduler;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The Python with dask.distributed that runs the client side.
pub fn python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            if let Some(p) = std::env::var_os("RDASK_DASK_PYTHON") {
                return PathBuf::from(p);
            }
            let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
            let venv = root.join("target/peers-venv/bin/python");
            let ok = Command::new("bash")
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

/// `s` with the fixture's Python.
pub fn with_python(s: Scheduler) -> Scheduler {
    match s {
        Scheduler::Dask(d) => Scheduler::Dask(d.python(python())),
        other => other,
    }
}

/// The shared cluster: `RDASK_DASK_SCHEDULER_FILE`'s (CI starts one), else
/// a LocalCluster of 2 workers for this test binary.
pub fn cluster() -> Scheduler {
    with_python(match std::env::var_os("RDASK_DASK_SCHEDULER_FILE") {
        Some(f) => Scheduler::dask_scheduler_file(f),
        None => Scheduler::dask_local(2),
    })
}

/// A `dask scheduler` and its workers of this test's own, on 127.0.0.1,
/// stopped by pid when dropped.
pub struct OwnCluster {
    pub dir: tempfile::TempDir,
    pub scheduler: Child,
    pub workers: Vec<Child>,
}

impl OwnCluster {
    pub fn start(workers: usize) -> OwnCluster {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("scheduler.json");
        let dask = python().parent().unwrap().join("dask");
        let start = |args: &[&str], log: &str| {
            Command::new(&dask)
                .args(args)
                .env("DASK_DISTRIBUTED__WORKER__DAEMON", "False")
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(dir.path().join(log)).unwrap())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", dask.display()))
        };
        let f = file.to_str().unwrap();
        let scheduler = start(
            &[
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-dashboard",
                "--scheduler-file",
                f,
            ],
            "scheduler.log",
        );
        wait_for(&file, Duration::from_secs(60));
        let workers = (0..workers)
            .map(|i| {
                start(
                    &[
                        "worker",
                        "--scheduler-file",
                        f,
                        "--host",
                        "127.0.0.1",
                        "--nthreads",
                        "1",
                        "--memory-limit",
                        "0",
                        "--no-dashboard",
                        "--local-directory",
                        dir.path().join(format!("w{i}")).to_str().unwrap(),
                    ],
                    &format!("worker{i}.log"),
                )
            })
            .collect();
        OwnCluster {
            dir,
            scheduler,
            workers,
        }
    }

    pub fn file(&self) -> PathBuf {
        self.dir.path().join("scheduler.json")
    }

    /// This cluster, once it has `n` workers.
    pub fn scheduler(&self, n: usize) -> Scheduler {
        let s = with_python(Scheduler::dask_scheduler_file(self.file()));
        let Scheduler::Dask(d) = &s else {
            unreachable!()
        };
        let t = Instant::now();
        while d.worker_pids().map_or(0, |w| w.len()) < n {
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "the workers did not join"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        s
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        for c in self.workers.iter_mut().chain([&mut self.scheduler]) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn wait_for(file: &Path, limit: Duration) {
    let t = Instant::now();
    while !file.exists() {
        assert!(t.elapsed() < limit, "{} never appeared", file.display());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A Python with another dask and distributed than the cluster's (for the
/// version-mismatch test): `target/dask-other-venv`, made on first use.
pub fn other_python() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let venv = root.join("target/dask-other-venv");
    let python = venv.join("bin/python");
    let ready = venv.join(".ready-2026.7.1");
    if !ready.exists() {
        let made = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .is_ok_and(|s| s.success())
            && Command::new(&python)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                ])
                .args(["dask==2026.7.1", "distributed==2026.7.1"])
                .status()
                .is_ok_and(|s| s.success());
        assert!(
            made,
            "could not make {} with dask and distributed 2026.7.1 (python3 -m venv, PyPI)",
            venv.display()
        );
        std::fs::write(&ready, "").unwrap();
    }
    python
}
