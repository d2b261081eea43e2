//! The loop for plans whose tasks have priorities or need resources: one
//! queue of ready tasks, highest priority first, a task taken only while
//! the resources it needs are free (dask's `distributed` does the same;
//! its local schedulers ignore both).
//!
//! Order: among ready tasks, higher priority first; equal priorities in
//! the order the depth-first loops use (the task made ready last, first;
//! the first of those one task made ready, first of them), so a plan whose
//! tasks all have one priority runs on one thread exactly as `sync` runs
//! it. A task whose resources are taken waits, and tasks behind it that
//! fit run meanwhile: a task needing nothing never waits behind one that
//! needs something.
//!
//! Workers: the caller's thread alone (`sync`), or one loop per thread of
//! the pool, sharing the queue under one lock and waking each other when
//! tasks become ready or resources free up.

use crate::exec::{Enter, Exec};
use crate::pool::RayonPool;
use std::cell::Cell;
use std::collections::BinaryHeap;
use std::sync::{Condvar, Mutex};

/// A ready task in the queue.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Ready {
    priority: i32,
    /// Later-queued first among equal priorities (the stack's order).
    seq: u64,
    task: u32,
}

struct Queue {
    ready: BinaryHeap<Ready>,
    seq: u64,
    /// Resources free now, by name (the scheduler's totals less what the
    /// running tasks hold).
    free: Vec<(String, f64)>,
    running: usize,
}

impl Queue {
    /// Queues `tasks`, in the order one task made them ready.
    fn push(&mut self, exec: &Exec<'_>, tasks: &[u32]) {
        for &task in tasks.iter().rev() {
            self.seq += 1;
            self.ready.push(Ready {
                priority: exec.annotations(task).priority_value(),
                seq: self.seq,
                task,
            });
        }
    }

    /// The best ready task whose resources are free now, taking them.
    fn take(&mut self, exec: &Exec<'_>) -> Option<u32> {
        let mut waiting = Vec::new();
        let mut found = None;
        while let Some(r) = self.ready.pop() {
            let needs = exec.annotations(r.task).resources();
            if fits(&self.free, needs) {
                hold(&mut self.free, needs, -1.0);
                found = Some(r.task);
                break;
            }
            waiting.push(r);
        }
        self.ready.extend(waiting);
        found
    }
}

fn fits(free: &[(String, f64)], needs: &[(&str, f64)]) -> bool {
    needs.iter().all(|(name, amount)| {
        free.iter()
            .find(|(n, _)| n == name)
            .is_some_and(|(_, f)| *f + 1e-9 >= *amount)
    })
}

/// Takes (`sign` -1) or gives back (+1) `needs` from `free`.
fn hold(free: &mut [(String, f64)], needs: &[(&str, f64)], sign: f64) {
    for (name, amount) in needs {
        if let Some((_, f)) = free.iter_mut().find(|(n, _)| n == name) {
            *f += sign * amount;
        }
    }
}

/// Runs the plan with `workers` loops (on `pool`, or this thread alone when
/// `None`) over one queue, `totals` being the scheduler's resources.
pub(crate) fn run<'e, C: Enter>(
    exec: &'e Exec<'e>,
    ctx: &'e C,
    pool: Option<&RayonPool>,
    totals: &[(String, f64)],
) {
    let mut queue = Queue {
        ready: BinaryHeap::new(),
        seq: 0,
        free: totals.to_vec(),
        running: 0,
    };
    queue.push(exec, exec.initial());
    let shared = (Mutex::new(queue), Condvar::new());
    let shared = &shared;
    match pool {
        None => work(exec, ctx, shared),
        Some(RayonPool::Global) => rayon::scope(|s| {
            for _ in 0..rayon::current_num_threads() {
                s.spawn(move |_| work(exec, ctx, shared));
            }
        }),
        Some(RayonPool::Own(pool)) => pool.scope(|s| {
            for _ in 0..pool.current_num_threads() {
                s.spawn(move |_| work(exec, ctx, shared));
            }
        }),
    }
}

thread_local! {
    /// The queue (its address) whose task this thread is running; 0: none.
    static RUNNING_FROM: Cell<usize> = const { Cell::new(0) };
}

/// One worker: takes the best task that fits, runs it, queues what it made
/// ready, until nothing is left (or a task failed).
///
/// A worker is a rayon job, and rayon may start it on a thread that is in
/// the middle of one of this queue's tasks (a task waiting for a compute on
/// another pool runs that pool's thread's jobs meanwhile). Such a worker
/// must not wait for tasks: what they wait for may be the task below it on
/// the same stack, which cannot go on until it returns. So it takes what
/// is ready and leaves when nothing is; the worker below goes on after its
/// task.
fn work<C: Enter>(exec: &Exec<'_>, ctx: &C, shared: &(Mutex<Queue>, Condvar)) {
    let _running = ctx.enter();
    let (lock, wake) = shared;
    let me = shared as *const (Mutex<Queue>, Condvar) as usize;
    let nested = RUNNING_FROM.get() == me;
    let mut ready = Vec::new();
    loop {
        let task = {
            let mut q = lock.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if exec.failed() || (q.ready.is_empty() && q.running == 0) {
                    wake.notify_all();
                    return;
                }
                if let Some(t) = q.take(exec) {
                    q.running += 1;
                    break t;
                }
                if nested {
                    return;
                }
                q = wake.wait(q).unwrap_or_else(|e| e.into_inner());
            }
        };
        let outer = RUNNING_FROM.replace(me);
        exec.execute(task, &mut |d| ready.push(d));
        RUNNING_FROM.set(outer);
        let mut q = lock.lock().unwrap_or_else(|e| e.into_inner());
        q.running -= 1;
        hold(&mut q.free, exec.annotations(task).resources(), 1.0);
        q.push(exec, &ready);
        ready.clear();
        wake.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_fit_and_are_given_back() {
        let mut free = vec![("gpu".to_string(), 2.0), ("mem".to_string(), 1.5)];
        assert!(fits(&free, &[("gpu", 2.0)]));
        assert!(!fits(&free, &[("gpu", 2.5)]));
        assert!(
            !fits(&free, &[("tpu", 1.0)]),
            "a resource the scheduler lacks"
        );
        assert!(fits(&free, &[]));
        hold(&mut free, &[("gpu", 1.5)], -1.0);
        assert!(!fits(&free, &[("gpu", 1.0)]));
        hold(&mut free, &[("gpu", 1.5)], 1.0);
        assert!(fits(&free, &[("gpu", 2.0), ("mem", 1.5)]));
    }

    #[test]
    fn higher_priority_first_then_the_stacks_order() {
        let a = Ready {
            priority: 1,
            seq: 1,
            task: 10,
        };
        let b = Ready {
            priority: 1,
            seq: 2,
            task: 11,
        };
        let c = Ready {
            priority: 5,
            seq: 0,
            task: 12,
        };
        let mut heap: BinaryHeap<Ready> = [a, b, c].into_iter().collect();
        let order: Vec<u32> = std::iter::from_fn(|| heap.pop().map(|r| r.task)).collect();
        assert_eq!(order, [12, 11, 10]);
    }
}
