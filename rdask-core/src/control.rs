//! Cancellation: a token that computations watch, and the thread-local
//! marks that let a task ask whether its computation was cancelled.
//!
//! The protocol. A computation that runs under a token registers *hooks*
//! on it for as long as it runs (stop starting tasks; on processes, kill the
//! workers running its tasks; on a cluster, stop waiting for it), each
//! registration scoped to a closure, so that no hook can outlive what it
//! points at. [`CancelToken::cancel`] sets the flag, then calls every hook
//! registered at that moment, under the same lock that registration and
//! removal take: a hook is either called before its scope ends or never.
//! A scope that begins on a cancelled token calls its hook at once.

use crate::error::{Error, ErrorKind};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// A handle that cancels the computations run under it (dask has none for
/// its local schedulers). `Clone + Send + Sync`: cancel from any thread.
///
/// ```
/// use rdask::prelude::*;
/// use std::time::Duration;
///
/// #[delayed]
/// fn slow(x: u64) -> u64 {
///     std::thread::sleep(Duration::from_millis(20));
///     x
/// }
///
/// let xs: Vec<_> = (0..1000).map(slow).collect();
/// let token = rdask::CancelToken::new();
/// let canceller = token.clone();
/// std::thread::spawn(move || {
///     std::thread::sleep(Duration::from_millis(50));
///     canceller.cancel();
/// });
/// let e = rdask::Compute::new(&xs).cancel_token(token).run().unwrap_err();
/// assert_eq!(e.kind(), rdask::ErrorKind::Cancelled);
/// ```
#[derive(Clone, Default)]
pub struct CancelToken(Arc<Inner>);

#[derive(Default)]
struct Inner {
    cancelled: AtomicBool,
    hooks: Mutex<Vec<(u64, Hook)>>,
    /// Why, when it was not a plain cancel (a task's timeout).
    reason: Mutex<Option<Error>>,
}

/// A registered hook: a pointer to a closure that its registration scope
/// keeps alive (see the module's protocol).
#[derive(Clone, Copy)]
struct Hook(*const (dyn Fn() + Sync + 'static));

// SAFETY: the closure is `Sync`, and it is only called while its
// registration scope (on another thread, maybe) is known to be alive.
unsafe impl Send for Hook {}

static NEXT_HOOK: AtomicU64 = AtomicU64::new(0);

impl std::fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelToken")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

impl CancelToken {
    /// A token not yet cancelled.
    pub fn new() -> CancelToken {
        CancelToken::default()
    }

    /// Cancels: no task of a computation under this token starts any more,
    /// and each returns [`ErrorKind::Cancelled`] at once. For good: a token
    /// cancelled before a computation starts cancels it at once.
    pub fn cancel(&self) {
        self.0.cancelled.store(true, Ordering::SeqCst);
        let hooks = self.0.hooks.lock().unwrap_or_else(|e| e.into_inner());
        for (_, hook) in hooks.iter() {
            // SAFETY: registered and not yet removed: its scope is alive
            // (removal takes this lock).
            unsafe { (*hook.0)() };
        }
    }

    /// Cancels because of `e` (a task ran out of time): the computation's
    /// error is `e`.
    pub(crate) fn cancel_because(&self, e: Error) {
        self.0
            .reason
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert(e);
        self.cancel();
    }

    /// The error of a computation this token stopped.
    pub(crate) fn error(&self) -> Error {
        match &*self.0.reason.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(e) => e.duplicate(),
            None => cancelled_error(),
        }
    }

    /// Whether [`cancel`](Self::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.cancelled.load(Ordering::SeqCst)
    }

    /// Runs `f` with `hook` registered: called (once) if the token is
    /// cancelled before `f` returns, at once if it already is.
    pub(crate) fn with_hook<R>(&self, hook: &(dyn Fn() + Sync), f: impl FnOnce() -> R) -> R {
        let id = NEXT_HOOK.fetch_add(1, Ordering::Relaxed);
        {
            let mut hooks = self.0.hooks.lock().unwrap_or_else(|e| e.into_inner());
            if self.is_cancelled() {
                hook();
            }
            let erased: *const (dyn Fn() + Sync + '_) = hook;
            // SAFETY: only the lifetime is erased (same fat pointer); the
            // guard below removes the pointer before `hook` can go away,
            // panics included, and it is only called while registered.
            let erased: *const (dyn Fn() + Sync + 'static) = unsafe { std::mem::transmute(erased) };
            hooks.push((id, Hook(erased)));
        }
        struct Remove<'t>(&'t Inner, u64);
        impl Drop for Remove<'_> {
            fn drop(&mut self) {
                let mut hooks = self.0.hooks.lock().unwrap_or_else(|e| e.into_inner());
                hooks.retain(|(id, _)| *id != self.1);
            }
        }
        let _remove = Remove(&self.0, id);
        f()
    }
}

/// Runs `f`, calling `expire` (on a thread of its own) if `f` takes longer
/// than `timeout`; whether it did. The one deadline watchdog: a task's
/// timeout here, a worker's in the processes pool.
pub(crate) fn within<R>(
    timeout: std::time::Duration,
    expire: impl FnOnce() + Send,
    f: impl FnOnce() -> R,
) -> (R, bool) {
    std::thread::scope(|s| {
        let (done, finished) = std::sync::mpsc::channel::<()>();
        let watchdog = s.spawn(move || {
            // `f` ends the wait by dropping `done`.
            let expired = matches!(
                finished.recv_timeout(timeout),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout)
            );
            if expired {
                expire();
            }
            expired
        });
        let r = f();
        drop(done);
        (r, watchdog.join().unwrap_or(false))
    })
}

/// The error of a cancelled computation.
pub(crate) fn cancelled_error() -> Error {
    Error::new(
        ErrorKind::Cancelled,
        None,
        "the computation was cancelled".to_string(),
    )
}

thread_local! {
    /// The token of the computation whose tasks this thread runs.
    static CURRENT: Cell<*const CancelToken> = const { Cell::new(std::ptr::null()) };
}

/// Marks this thread as running tasks of a computation under `token` while
/// the guard lives (set with the scheduler's own marks).
pub(crate) struct TokenGuard(*const CancelToken);

impl TokenGuard {
    pub(crate) fn set(token: Option<&CancelToken>) -> TokenGuard {
        let p = token.map_or(std::ptr::null(), |t| t as *const CancelToken);
        TokenGuard(CURRENT.with(|c| c.replace(p)))
    }
}

impl Drop for TokenGuard {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.0));
    }
}

/// The token of the computation running on this thread, if any.
pub(crate) fn current() -> Option<CancelToken> {
    let p = CURRENT.with(Cell::get);
    // SAFETY: `CURRENT` only points at a token that outlives the guard that
    // set it (the computation's own).
    (!p.is_null()).then(|| unsafe { (*p).clone() })
}

/// Inside a task: whether its computation has been cancelled (a long task
/// may check now and then and return early). `false` outside tasks and
/// for computations without a token.
///
/// ```
/// let seen = rdask::value(7_u64).map(|x| if rdask::cancelled() { 0 } else { x });
/// assert_eq!(seen.compute()?, 7);
/// # Ok::<(), rdask::Error>(())
/// ```
pub fn cancelled() -> bool {
    let p = CURRENT.with(Cell::get);
    // SAFETY: as in `current`.
    !p.is_null() && unsafe { (*p).is_cancelled() }
}

/// The token that Ctrl-C cancels, installed on first call: the first Ctrl-C
/// (SIGINT) cancels every computation run under it, and every computation
/// started after this call without a token of its own runs under it; a
/// second Ctrl-C exits the process as usual (status 130).
///
/// ```no_run
/// let token = rdask::cancel_on_ctrl_c();
/// let xs: Vec<_> = (0..4).map(|i| rdask::value(i) * 2).collect();
/// match rdask::compute(&xs) {
///     Err(e) if e.kind() == rdask::ErrorKind::Cancelled => eprintln!("stopped by Ctrl-C"),
///     other => println!("{:?}", other.map(|v| v.len())),
/// }
/// assert!(!token.is_cancelled());
/// ```
pub fn cancel_on_ctrl_c() -> CancelToken {
    let token = CTRL_C.get_or_init(|| {
        let token = CancelToken::new();
        let t = token.clone();
        let installed = ctrlc::set_handler(move || {
            if t.is_cancelled() {
                std::process::exit(130);
            }
            t.cancel();
        });
        if let Err(e) = installed {
            eprintln!("rdask: cannot catch Ctrl-C ({e}); it will stop the program as usual");
        }
        token
    });
    token.clone()
}

static CTRL_C: OnceLock<CancelToken> = OnceLock::new();

/// The token a computation started now runs under when it was given none:
/// the Ctrl-C token once [`cancel_on_ctrl_c`] was called.
pub(crate) fn default_token() -> Option<CancelToken> {
    CTRL_C.get().cloned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn hooks_run_once_while_registered_and_never_after() {
        let t = CancelToken::new();
        let calls = AtomicUsize::new(0);
        let hook = || {
            calls.fetch_add(1, Ordering::SeqCst);
        };
        t.with_hook(&hook, || assert_eq!(calls.load(Ordering::SeqCst), 0));
        t.cancel();
        assert_eq!(calls.load(Ordering::SeqCst), 0, "removed before the cancel");
        // A scope that begins cancelled calls its hook at once.
        t.with_hook(&hook, || assert_eq!(calls.load(Ordering::SeqCst), 1));
        assert!(t.is_cancelled());
        assert!(t.clone().is_cancelled());
    }

    #[test]
    fn a_cancel_from_another_thread_reaches_a_running_scope() {
        let t = CancelToken::new();
        let hit = AtomicBool::new(false);
        let hook = || hit.store(true, Ordering::SeqCst);
        t.with_hook(&hook, || {
            let t2 = t.clone();
            std::thread::spawn(move || t2.cancel()).join().unwrap();
            assert!(hit.load(Ordering::SeqCst));
        });
    }

    #[test]
    fn tasks_see_their_token() {
        assert!(!cancelled());
        let t = CancelToken::new();
        {
            let _g = TokenGuard::set(Some(&t));
            assert!(!cancelled());
            t.cancel();
            assert!(cancelled());
            assert!(current().is_some());
        }
        assert!(!cancelled());
        assert!(current().is_none());
    }
}
