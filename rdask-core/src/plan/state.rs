//! A task's run state: its counters and its value cell, side by side in one
//! cache line. The plan sets the counters as it numbers the tasks; the
//! executor runs the protocol below. This file alone opens the cell.
//!
//! The protocol, per task `p`:
//!
//! * `waits` counts the notifications `p` still needs before it may start;
//!   its last notifier hands it to a scheduler.
//! * `p`'s value is written once ([`store`](TaskState::store)), by `p`,
//!   before any consumer is notified; consumers only read it
//!   ([`read`](TaskState::read)).
//! * `uses` counts the uses of the value not yet done (edges and outputs).
//!   Each use reads *before* it ends ([`end_use`](TaskState::end_use)), and
//!   the use that brings the count to zero empties the cell: after every
//!   other use has finished reading.
//! * Once `p` has run (nobody notifies it again), `waits` is reused as the
//!   count of uses *copying* the value right now: the last use waits for
//!   them, then moves the value instead of copying it too.
//!
//! The counters' acquire/release orderings carry the happens-before edges,
//! so the cell takes no lock.

use crate::value::Value;
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicU32, Ordering};

/// Per task: its counters and its value (32 bytes: two to a cache line).
pub(crate) struct TaskState {
    /// Until the task starts: the notifications it still needs. After it
    /// has run: the uses copying its value (see the module docs). One word
    /// for both keeps the state at 32 bytes.
    waits: AtomicU32,
    /// Uses of the value not yet done (edges and outputs).
    uses: AtomicU32,
    /// The value; see the module docs for who may touch it when.
    cell: UnsafeCell<Option<Value>>,
}

// SAFETY: `cell` is only accessed under the protocol in the module docs: one
// write before any reader is notified, shared reads, and one take after
// every reader is done, ordered by the atomic counters.
unsafe impl Sync for TaskState {}

impl TaskState {
    /// A task waiting for `waits` notifications, its value not yet used.
    pub(crate) fn new(waits: u32) -> TaskState {
        TaskState {
            waits: AtomicU32::new(waits),
            uses: AtomicU32::new(0),
            cell: UnsafeCell::new(None),
        }
    }

    /// The notifications the task still needs (before it runs).
    #[inline(always)]
    pub(crate) fn waits(&self) -> &AtomicU32 {
        &self.waits
    }

    /// The uses of the value (edges and outputs) not yet done.
    #[inline]
    pub(crate) fn uses(&self) -> u32 {
        self.uses.load(Ordering::Relaxed)
    }

    /// The uses copying the value right now (after the task has run).
    #[inline(always)]
    pub(crate) fn copying(&self) -> &AtomicU32 {
        &self.waits
    }

    /// The counters, while the plan is being built (nobody else has them).
    pub(crate) fn counts_mut(&mut self) -> (&mut u32, &mut u32) {
        (self.waits.get_mut(), self.uses.get_mut())
    }

    /// Stores the task's value.
    ///
    /// # Safety
    ///
    /// Called once, by the task itself, before any consumer is notified.
    #[inline(always)]
    pub(crate) unsafe fn store(&self, v: Value) {
        // SAFETY: nobody else touches the cell until a consumer is
        // notified, after this write (the caller's promise).
        unsafe { *self.cell.get() = Some(v) }
    }

    /// A shared reference to the value.
    ///
    /// # Safety
    ///
    /// The caller is a use that has been notified that the task is done
    /// and has not ended yet.
    #[inline(always)]
    pub(crate) unsafe fn read(&self) -> Option<Value> {
        // SAFETY: the value is written (the notification came after the
        // store) and cannot be taken before this use ends.
        unsafe { (*self.cell.get()).clone() }
    }

    /// Ends one use; the last one empties the cell and gets the value.
    #[inline(always)]
    pub(crate) fn end_use(&self) -> Option<Value> {
        if self.uses.fetch_sub(1, Ordering::AcqRel) == 1 {
            // SAFETY: every other use has read the cell and decremented
            // before us (AcqRel), so nobody else touches it any more.
            unsafe { (*self.cell.get()).take() }
        } else {
            None
        }
    }

    /// Ends the last use at once, taking the value without a read-modify-
    /// write: `None` unless this is the last use (uses at one). Uses still
    /// copying may hold references: wait for them (see
    /// [`copying`](Self::copying)) before relying on the value being
    /// unique.
    ///
    /// # Safety
    ///
    /// The caller is a notified use that has not ended yet.
    #[inline(always)]
    pub(crate) unsafe fn take_last(&self) -> Option<Option<Value>> {
        if self.uses.load(Ordering::Acquire) != 1 {
            return None;
        }
        self.uses.store(0, Ordering::Relaxed);
        // SAFETY: every other use has ended (the count says so), so this
        // one alone touches the cell.
        Some(unsafe { (*self.cell.get()).take() })
    }

    /// [`take_last`](Self::take_last) only when nothing is copying the
    /// value and it is unique (the common case of a list element): the
    /// value, moved out; else `None` with nothing changed.
    ///
    /// # Safety
    ///
    /// As for `take_last`.
    #[inline(always)]
    pub(crate) unsafe fn take_last_unique(&self) -> Option<Value> {
        if self.uses.load(Ordering::Acquire) != 1 || self.copying().load(Ordering::Acquire) != 0 {
            return None;
        }
        // SAFETY: as in `take_last`: this use alone touches the cell.
        let cell = unsafe { &mut *self.cell.get() };
        if cell.as_mut().is_some_and(Value::is_unique) {
            self.uses.store(0, Ordering::Relaxed);
            return cell.take();
        }
        None
    }

    /// Empties the cell once the computation is over.
    ///
    /// # Safety
    ///
    /// Every task has stopped: nothing else touches the cell.
    pub(crate) unsafe fn take_left(&self) -> Option<Value> {
        // SAFETY: nobody else touches the cell (the caller's promise).
        unsafe { (*self.cell.get()).take() }
    }

    /// Whether the cell is empty, once the computation is over.
    ///
    /// # Safety
    ///
    /// As for [`take_left`](Self::take_left).
    pub(crate) unsafe fn is_empty(&self) -> bool {
        // SAFETY: as in `take_left`.
        unsafe { (*self.cell.get()).is_none() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two task states to a cache line: the executor touches one per use.
    #[test]
    fn task_states_stay_two_to_a_cache_line() {
        assert_eq!(std::mem::size_of::<TaskState>(), 32);
    }

    /// The last of three uses gets the value; the others only read it.
    #[test]
    fn the_last_use_takes_the_value() {
        let mut s = TaskState::new(0);
        *s.counts_mut().1 = 3;
        // SAFETY: single-threaded; the store comes before every read.
        unsafe { s.store(Value::new(String::from("v"))) };
        // SAFETY: a notified use, not yet ended.
        assert!(unsafe { s.read() }.is_some());
        assert!(s.end_use().is_none());
        assert!(s.end_use().is_none());
        // SAFETY: as above.
        assert!(unsafe { s.take_last_unique() }.is_some());
        assert_eq!(s.uses.load(Ordering::Relaxed), 0);
        // SAFETY: every use has ended.
        assert!(unsafe { s.is_empty() });
    }
}
