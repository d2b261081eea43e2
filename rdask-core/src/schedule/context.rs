//! The scheduler a plain `compute()` uses here and now, and the mark a
//! scheduling loop leaves on each thread that runs tasks (so a nested
//! `compute` inside a task joins its scheduler).

use super::Scheduler;
use crate::callbacks::InTask;
use crate::control::{CancelToken, TokenGuard};
use crate::error::{Error, ErrorKind, Result};
use crate::exec::Enter;
use std::cell::Cell;
use std::sync::{OnceLock, RwLock};

static GLOBAL: RwLock<Option<Scheduler>> = RwLock::new(None);

thread_local! {
    /// The scheduler set for this thread: by `with_scheduler`, or by the
    /// executor while one of its tasks runs here.
    static CURRENT: Cell<*const Scheduler> = const { Cell::new(std::ptr::null()) };
}

/// Points `CURRENT` at a scheduler for as long as the guard lives.
pub(crate) struct CurrentGuard(*const Scheduler);

impl CurrentGuard {
    pub(crate) fn set(s: &Scheduler) -> CurrentGuard {
        CurrentGuard(CURRENT.with(|c| c.replace(s)))
    }
}

impl Drop for CurrentGuard {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.0));
    }
}

/// Sets the process-wide default scheduler (below a [`with_scheduler`]
/// scope, above `RDASK_SCHEDULER`).
///
/// ```
/// use rdask::prelude::*;
/// rdask::set_scheduler(Scheduler::Sync);
/// assert_eq!(rdask::current_scheduler()?.to_string(), "sync");
/// assert_eq!((rdask::value(1_i64) + 1).compute()?, 2);
/// # rdask::set_scheduler(Scheduler::default());
/// # Ok::<(), rdask::Error>(())
/// ```
pub fn set_scheduler(s: Scheduler) {
    *GLOBAL.write().unwrap_or_else(|e| e.into_inner()) = Some(s);
}

/// Runs `f` with `s` as the default scheduler of this thread.
///
/// ```
/// use rdask::prelude::*;
/// let d = rdask::value(1_i32) + 1;
/// let x = rdask::with_scheduler(Scheduler::Sync, || d.compute())?;
/// assert_eq!(x, 2);
/// # Ok::<(), rdask::Error>(())
/// ```
pub fn with_scheduler<R>(s: Scheduler, f: impl FnOnce() -> R) -> R {
    let _guard = CurrentGuard::set(&s);
    f()
}

/// The scheduler a plain `compute()` would use here and now.
pub fn current_scheduler() -> Result<Scheduler> {
    let here = CURRENT.with(|c| c.get());
    if !here.is_null() {
        // SAFETY: `CURRENT` only ever points at a scheduler that outlives the
        // guard that set it, and the guard restores the old value on drop.
        return Ok(unsafe { (*here).clone() });
    }
    if let Some(s) = GLOBAL.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
        return Ok(s.clone());
    }
    static ENV: OnceLock<std::result::Result<Option<Scheduler>, String>> = OnceLock::new();
    let env = ENV.get_or_init(|| match std::env::var("RDASK_SCHEDULER") {
        Ok(v) if !v.trim().is_empty() => v
            .parse::<Scheduler>()
            .map(Some)
            .map_err(|e| format!("RDASK_SCHEDULER: {e}")),
        _ => Ok(None),
    });
    match env {
        Ok(Some(s)) => Ok(s.clone()),
        Ok(None) => Ok(Scheduler::default()),
        Err(msg) => Err(Error::new(ErrorKind::Scheduler, None, msg.clone())),
    }
}

/// A thread running a computation's tasks: its scheduler is the current
/// one (a nested `compute` joins it), and callbacks stay quiet inside
/// tasks. Set once per scheduling loop or job, not per task.
impl Enter for Scheduler {
    type Guard = (CurrentGuard, InTask);

    #[inline]
    fn enter(&self) -> Self::Guard {
        (CurrentGuard::set(self), InTask::enter())
    }
}

/// What a thread running a computation's tasks is marked with: the
/// scheduler (as above) and the computation's cancel token, which
/// `rdask::cancelled()` reads and a nested `compute` runs under.
pub(crate) struct Running<'a> {
    pub scheduler: &'a Scheduler,
    pub token: Option<&'a CancelToken>,
}

impl Enter for Running<'_> {
    type Guard = ((CurrentGuard, InTask), TokenGuard);

    #[inline]
    fn enter(&self) -> Self::Guard {
        (self.scheduler.enter(), TokenGuard::set(self.token))
    }
}
