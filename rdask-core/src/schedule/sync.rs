//! The synchronous scheduler: every task on the caller's thread, one at a
//! time, in depth-first order (dask's `get_sync`): for debugging, profiling
//! and determinism.

use crate::exec::{Enter, Exec};

/// Runs every task on the caller's thread, depth-first, the thread marked
/// by `ctx`.
pub(crate) fn run(exec: &Exec<'_>, ctx: &impl Enter) {
    // Each initial task, then everything it leads to, before the next one:
    // the order of one stack holding them all, without copying them there.
    let mut stack: Vec<u32> = Vec::new();
    let _running = ctx.enter();
    for &first in exec.initial() {
        stack.push(first);
        while let Some(t) = stack.pop() {
            let mark = stack.len();
            exec.execute(t, &mut |d| stack.push(d));
            if exec.failed() {
                return;
            }
            // The first task made ready runs next (LIFO, depth-first).
            stack[mark..].reverse();
        }
    }
}
