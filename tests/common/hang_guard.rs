//! A hang guard for the processes tests (each test file is its own crate).

use rdask::prelude::*;
use std::time::Duration;

/// Computes `d` on `processes(2)` in another thread, failing the test if
/// it has not finished in 60 s (a hang guard, not a timing).
pub fn compute_or_hang<T: Send + Sync + 'static>(d: Delayed<T>) -> rdask::Result<T> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(d.compute_with(&Scheduler::processes(2)));
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the computation hung")
}
