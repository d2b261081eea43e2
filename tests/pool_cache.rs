//! Pools made for distinct `threads(n)` are not all kept: a program that
//! takes `n` from its input does not collect a pool (and its threads) per
//! value. (A binary of its own: it counts the process's threads.)

use rdask::prelude::*;

/// The threads of this process (Linux: one entry each in /proc/self/task).
fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}

#[test]
#[cfg(target_os = "linux")]
fn pools_for_many_sizes_do_not_keep_their_threads() {
    let before = threads();
    for n in 1..=20 {
        let x = (rdask::value(n as i64) + 1).compute_with(&Scheduler::threads(n));
        assert_eq!(x.unwrap(), n as i64 + 1);
    }
    // The 20 pools have 210 threads; the cache keeps 64 (and the newest
    // pool), and a dropped pool's threads end on their own soon after.
    let bound = before + 64 + 20;
    let mut now = threads();
    for _ in 0..500 {
        if now <= bound {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
        now = threads();
    }
    assert!(
        now <= bound,
        "{now} threads after pools of 1..=20 ({before} before)"
    );
    // A size used again is still served.
    let again = (rdask::value(1_i64) + 1).compute_with(&Scheduler::threads(20));
    assert_eq!(again.unwrap(), 2);
}
