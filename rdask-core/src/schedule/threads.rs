//! The threads scheduler: tasks on a rayon pool (dask's threaded `get`).

use crate::exec::{Batch, Enter, Exec};
use smallvec::SmallVec;

/// At most this many initial tasks are handled by one job without
/// splitting off the rest.
const MAX_GRAIN: usize = 32;

/// How many initial tasks one job handles: few enough that every worker
/// gets a share (eight per worker), many enough that starting n cheap leaves
/// costs O(n / 32) jobs, not n.
fn grain(tasks: usize, workers: usize) -> usize {
    (tasks / (8 * workers.max(1))).clamp(1, MAX_GRAIN)
}

/// Runs the tasks on a rayon pool (`None`: the current or global one).
///
/// The initial ready tasks are split in halves, rayon-style, down to a
/// [`grain`], so that starting n leaves costs O(n / 32) jobs, not n. A worker that finishes a
/// task goes on with the first task it made ready and spawns the rest, so
/// chains run without queueing and reductions stay depth-first. A task is
/// spawned only once ready: no worker ever blocks.
pub(crate) fn run<'e, C: Enter>(exec: &'e Exec<'e>, ctx: &'e C, pool: Option<&rayon::ThreadPool>) {
    let initial = exec.initial();
    let workers = pool.map_or_else(rayon::current_num_threads, |p| p.current_num_threads());
    let grain = grain(initial.len(), workers);
    match pool {
        Some(pool) => pool.scope(|s| run_range(&Job { exec, ctx }, s, initial, grain)),
        None => rayon::scope(|s| run_range(&Job { exec, ctx }, s, initial, grain)),
    }
}

/// What every job of one computation shares: the executor, and the
/// scheduler each worker thread is marked with while it runs tasks.
struct Job<'s, C> {
    exec: &'s Exec<'s>,
    ctx: &'s C,
}

impl<C> Clone for Job<'_, C> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<C> Copy for Job<'_, C> {}

fn run_range<'s, C: Enter>(
    job: &Job<'s, C>,
    s: &rayon::Scope<'s>,
    mut tasks: &'s [u32],
    grain: usize,
) {
    let job = *job;
    while tasks.len() > grain {
        let (mine, theirs) = tasks.split_at(tasks.len() / 2);
        s.spawn(move |s| run_range(&job, s, theirs, grain));
        tasks = mine;
    }
    let _running = job.ctx.enter();
    let mut batch = Batch::default();
    if job.exec.sends_many() {
        // Worker processes: the range goes out in one round trip.
        let mut ready: SmallVec<[u32; 8]> = SmallVec::new();
        job.exec
            .execute_many(tasks, &mut batch, &mut |d| ready.push(d));
        for d in ready {
            chain(job, s, d, &mut batch);
        }
    } else {
        for &t in tasks {
            chain(job, s, t, &mut batch);
        }
    }
    drain(job, s, &mut batch);
}

/// Spawned work: one ready task and what it leads to.
fn chain_job<'s, C: Enter>(job: Job<'s, C>, s: &rayon::Scope<'s>, t: u32) {
    let _running = job.ctx.enter();
    let mut batch = Batch::default();
    chain(job, s, t, &mut batch);
    drain(job, s, &mut batch);
}

/// Flushes a worker's batch and runs whatever that makes ready, until the
/// batch stays empty.
fn drain<'s, C: Enter>(job: Job<'s, C>, s: &rayon::Scope<'s>, batch: &mut Batch) {
    loop {
        let mut ready: SmallVec<[u32; 8]> = SmallVec::new();
        batch.flush(job.exec, &mut |d| ready.push(d));
        if ready.is_empty() {
            return;
        }
        for d in ready {
            chain(job, s, d, batch);
        }
    }
}

/// Runs `first`, then the first task each run makes ready, spawning the rest.
fn chain<'s, C: Enter>(job: Job<'s, C>, s: &rayon::Scope<'s>, first: u32, batch: &mut Batch) {
    let mut ready: SmallVec<[u32; 8]> = SmallVec::new();
    let mut next = first;
    let linked = job.exec.sends_many();
    loop {
        match linked {
            // Worker processes: a chain goes in one round trip.
            true => job.exec.execute_linked(next, batch, &mut |d| ready.push(d)),
            false => job
                .exec
                .execute_batched(next, batch, &mut |d| ready.push(d)),
        }
        let Some((&head, rest)) = ready.split_first() else {
            return;
        };
        for &d in rest.iter().rev() {
            s.spawn(move |s| chain_job(job, s, d));
        }
        next = head;
        ready.clear();
    }
}
