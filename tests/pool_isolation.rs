//! The processes scheduler's driving threads block on pipes while a worker
//! runs a task; a threads computation of the same size must not queue behind
//! them (they once shared one rayon pool per size).

use rdask::prelude::*;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

/// Runs in a worker until `flag` exists.
#[delayed]
fn wait_for(flag: String) -> u64 {
    while !Path::new(&flag).exists() {
        std::thread::sleep(Duration::from_millis(10));
    }
    1
}

#[test]
fn a_threads_computation_does_not_wait_behind_a_processes_one() {
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("go").to_string_lossy().into_owned();
    let processes = Scheduler::processes(2);
    // Two remote tasks that wait for the flag: both driving threads block
    // on their workers' pipes until the quick computation below is done.
    let blocked = {
        let (flag, processes) = (flag.clone(), processes.clone());
        std::thread::spawn(move || {
            rdask::compute_with(&[wait_for(flag.clone()), wait_for(flag)], &processes)
        })
    };
    while rdask::process::task_counts().0 < 2 {
        std::thread::sleep(Duration::from_millis(10));
    }
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let quick: Vec<_> = (0..4_i64)
            .map(|i| rdask::value(i).map(|x: i64| x * 2))
            .collect();
        let _ = tx.send(rdask::compute_with(&quick, &Scheduler::threads(2)));
    });
    // A hang guard, not a timing: the quick computation needs milliseconds
    // unless it waits for the flag, which only this thread sets.
    let quick = rx.recv_timeout(Duration::from_secs(30));
    std::fs::write(&flag, b"").unwrap();
    let quick = quick.expect("the threads computation waited behind the processes one");
    assert_eq!(quick.unwrap(), vec![0, 2, 4, 6]);
    assert_eq!(blocked.join().unwrap().unwrap(), vec![1, 1]);
}
