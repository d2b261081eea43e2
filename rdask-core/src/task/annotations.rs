//! Annotations: what a task asks of the scheduler (retries, priority,
//! resources, a timeout), from `#[delayed(..)]` or from an
//! [`annotate`] scope around the calls that build it (dask's
//! `dask.annotate`).
//!
//! A `#[delayed]` function's own annotations live in its static
//! [`FnInfo`]; a call built inside a scope gets an `FnInfo` of its own with
//! the two merged (the function's win), made once per function and set of
//! annotations and kept for the program's life (so a node still points at
//! a static description, and nodes stay the size they are). A closure task
//! keeps its annotations in its boxed body. [`EVER`] tells the planner
//! whether it needs to look at all.

use super::FnInfo;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// What a task asks of its scheduler: honoured on every scheduler (dask
/// honours them only on `distributed`).
///
/// ```
/// use rdask::prelude::*;
/// use rdask::Annotations;
///
/// let urgent = rdask::annotate(Annotations::new().priority(10).retries(2), || {
///     rdask::value(20_u64).map(|x| x + 1)
/// });
/// assert_eq!(urgent.compute()?, 21);
/// # Ok::<(), rdask::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Annotations {
    retries: Option<u32>,
    priority: Option<i32>,
    timeout_ms: Option<u64>,
    resources: Option<&'static [(&'static str, f64)]>,
}

impl Annotations {
    /// No annotations.
    pub const fn new() -> Annotations {
        Annotations {
            retries: None,
            priority: None,
            timeout_ms: None,
            resources: None,
        }
    }

    /// `#[delayed(..)]`'s annotations, as the macro writes them.
    #[doc(hidden)]
    pub const fn __of(
        retries: Option<u32>,
        priority: Option<i32>,
        timeout_ms: Option<u64>,
        resources: Option<&'static [(&'static str, f64)]>,
    ) -> Annotations {
        Annotations {
            retries,
            priority,
            timeout_ms,
            resources,
        }
    }

    /// Runs a failed task (an `Err`, a panic, a timeout, a lost worker)
    /// again, up to `n` more times.
    pub const fn retries(mut self, n: u32) -> Annotations {
        self.retries = Some(n);
        self
    }

    /// Among tasks ready at once, higher runs first (default 0; may be
    /// negative). Equal priorities keep the depth-first order.
    pub const fn priority(mut self, p: i32) -> Annotations {
        self.priority = Some(p);
        self
    }

    /// A run longer than this fails as `ErrorKind::Timeout` (retried if
    /// retries are left).
    pub const fn timeout(mut self, t: Duration) -> Annotations {
        self.timeout_ms = Some(t.as_millis() as u64);
        self
    }

    /// Needs `amount` of the scheduler's resource `name` while it runs
    /// (see `Scheduler::with_resources`). Repeated names add up.
    pub fn resource(mut self, name: &str, amount: f64) -> Annotations {
        let mut all: Vec<(&'static str, f64)> = self.resources.unwrap_or_default().to_vec();
        match all.iter_mut().find(|(n, _)| *n == name) {
            Some((_, a)) => *a += amount,
            None => all.push((intern(name), amount)),
        }
        self.resources = Some(intern_list(all));
        self
    }

    /// An annotated function's call was built (the macro calls this).
    #[doc(hidden)]
    #[inline]
    pub fn __seen(a: &Annotations) {
        noted(a);
    }

    /// How many more runs a failure gets.
    pub fn retries_left(&self) -> u32 {
        self.retries.unwrap_or(0)
    }

    /// The priority (0 unless set).
    pub fn priority_value(&self) -> i32 {
        self.priority.unwrap_or(0)
    }

    /// The timeout, if any.
    pub fn timeout_value(&self) -> Option<Duration> {
        self.timeout_ms.map(Duration::from_millis)
    }

    /// The resources needed, by name.
    pub fn resources(&self) -> &'static [(&'static str, f64)] {
        self.resources.unwrap_or_default()
    }

    /// Whether nothing is asked.
    pub fn is_empty(&self) -> bool {
        *self == Annotations::new()
    }

    /// These, with `under`'s where these say nothing (a function's own
    /// annotations win over a scope's).
    pub fn or(self, under: Annotations) -> Annotations {
        Annotations {
            retries: self.retries.or(under.retries),
            priority: self.priority.or(under.priority),
            timeout_ms: self.timeout_ms.or(under.timeout_ms),
            resources: self.resources.or(under.resources),
        }
    }

    /// A short description (`retries=2 priority=-1 gpu=1`), for pictures
    /// and messages.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(r) = self.retries {
            parts.push(format!("retries={r}"));
        }
        if let Some(p) = self.priority {
            parts.push(format!("priority={p}"));
        }
        if let Some(t) = self.timeout_ms {
            parts.push(format!("timeout_ms={t}"));
        }
        for (name, amount) in self.resources() {
            parts.push(format!("{name}={amount}"));
        }
        parts.join(" ")
    }
}

/// Set once any annotated task has been built: until then the planner
/// need not look.
pub(crate) static EVER: AtomicBool = AtomicBool::new(false);

/// [`annotate`] scopes open now, on any thread: while none is, building a
/// call reads no thread-local state.
static SCOPES: AtomicUsize = AtomicUsize::new(0);

/// Set once a task with a timeout has been built.
static TIMED: AtomicBool = AtomicBool::new(false);

/// Whether a task with a timeout was ever built.
pub(crate) fn timed() -> bool {
    TIMED.load(Ordering::Relaxed)
}

/// Notes that `a` is on a task being built.
#[inline]
pub(crate) fn noted(a: &Annotations) {
    if !a.is_empty() && !EVER.load(Ordering::Relaxed) {
        EVER.store(true, Ordering::Relaxed);
    }
    if a.timeout_ms.is_some() && !TIMED.load(Ordering::Relaxed) {
        TIMED.store(true, Ordering::Relaxed);
    }
}

thread_local! {
    /// The annotations of the [`annotate`] scopes around this point.
    static SCOPE: RefCell<Annotations> = const { RefCell::new(Annotations::new()) };
}

/// Every lazy call built inside `f` (`#[delayed]` calls, `delay!`, `map`,
/// operators) gets `annotations`; a function's own `#[delayed(..)]`
/// annotations win. Scopes nest: the inner one wins where both say
/// something.
pub fn annotate<R>(annotations: Annotations, f: impl FnOnce() -> R) -> R {
    SCOPES.fetch_add(1, Ordering::SeqCst);
    let outer = SCOPE.with(|s| {
        let outer = *s.borrow();
        *s.borrow_mut() = annotations.or(outer);
        outer
    });
    struct Restore(Annotations);
    impl Drop for Restore {
        fn drop(&mut self) {
            SCOPE.with(|s| *s.borrow_mut() = self.0);
            SCOPES.fetch_sub(1, Ordering::SeqCst);
        }
    }
    let _restore = Restore(outer);
    f()
}

/// The scope's annotations here (none outside every scope).
#[inline]
pub(crate) fn scope() -> Annotations {
    if SCOPES.load(Ordering::Relaxed) == 0 {
        return Annotations::new();
    }
    SCOPE.with(|s| *s.borrow())
}

/// `info` as a call built here sees it: itself outside any scope, else a
/// copy with the scope's annotations under its own (made once per pair).
#[inline]
pub(crate) fn apply(info: &'static FnInfo) -> &'static FnInfo {
    if SCOPES.load(Ordering::Relaxed) == 0 {
        return info;
    }
    let scope = scope();
    if scope.is_empty() {
        return info;
    }
    annotated(info, scope)
}

#[cold]
fn annotated(info: &'static FnInfo, scope: Annotations) -> &'static FnInfo {
    let annot = info.annot.or(scope);
    noted(&annot);
    if annot == info.annot {
        return info;
    }
    type Infos = HashMap<(usize, String), &'static FnInfo>;
    static INFOS: Mutex<Option<Infos>> = Mutex::new(None);
    let id = (info as *const FnInfo as usize, format!("{annot:?}"));
    let mut infos = INFOS.lock().unwrap_or_else(|e| e.into_inner());
    infos
        .get_or_insert_with(HashMap::new)
        .entry(id)
        .or_insert_with(|| {
            Box::leak(Box::new(FnInfo {
                name: info.name,
                prefix: info.prefix,
                path: info.path,
                remote: info.remote,
                annot,
                cache: info.cache,
            }))
        })
}

/// A resource name, kept for the program's life (once per name).
fn intern(name: &str) -> &'static str {
    static NAMES: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
    let mut names = NAMES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(n) = names.iter().find(|n| **n == name) {
        return n;
    }
    let n: &'static str = Box::leak(name.to_string().into_boxed_str());
    names.push(n);
    n
}

/// A list of resources, kept for the program's life (once per list).
fn intern_list(list: Vec<(&'static str, f64)>) -> &'static [(&'static str, f64)] {
    type Lists = Vec<&'static [(&'static str, f64)]>;
    static LISTS: Mutex<Lists> = Mutex::new(Vec::new());
    let mut lists = LISTS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(l) = lists.iter().find(|l| ***l == list[..]) {
        return l;
    }
    let l: &'static [(&'static str, f64)] = Box::leak(list.into_boxed_slice());
    lists.push(l);
    l
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_functions_own_win_over_the_scope() {
        let own = Annotations::new().retries(3);
        let scope = Annotations::new().retries(1).priority(-2);
        let both = own.or(scope);
        assert_eq!(both.retries_left(), 3);
        assert_eq!(both.priority_value(), -2);
        assert_eq!(both.describe(), "retries=3 priority=-2");
    }

    #[test]
    fn scopes_nest_and_restore() {
        assert!(scope().is_empty());
        annotate(Annotations::new().priority(1), || {
            annotate(Annotations::new().priority(5).resource("gpu", 1.0), || {
                assert_eq!(scope().priority_value(), 5);
                assert_eq!(scope().resources(), &[("gpu", 1.0)]);
            });
            assert_eq!(scope().priority_value(), 1);
            assert!(scope().resources().is_empty());
        });
        assert!(scope().is_empty());
    }

    #[test]
    fn resources_add_up_and_lists_are_shared() {
        let a = Annotations::new().resource("gpu", 1.0).resource("gpu", 0.5);
        assert_eq!(a.resources(), &[("gpu", 1.5)]);
        let b = Annotations::new().resource("gpu", 1.5);
        assert!(std::ptr::eq(a.resources(), b.resources()));
    }
}
