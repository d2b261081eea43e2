#![doc = include_str!("../README.md")]
//!
//! ## Crates
//!
//! `rdask` is the facade: it re-exports the runtime (`rdask-core`: `Delayed`,
//! `Graph`, `Key`, `Scheduler`, `Error`) and the macros (`rdask-macros`:
//! `#[delayed]`, `delay!`, `graph!`, `#[derive(Tokenize)]`), and defines
//! `compute!`.

pub use rdask_core::*;
pub use rdask_macros::{delay, delayed, graph, Tokenize};

/// Everything a user of rdask needs in scope: the macros, `Delayed`,
/// `Scheduler`, and the traits behind `split()`, `visualize()` and pure
/// arguments (`Tokenize` is both the trait and its derive).
pub mod prelude {
    // The macros alone: `compute` and `graph` also name a function and a
    // module of the crate root, which the prelude does not bring in.
    pub use crate::__compute as compute;
    pub use crate::persist;
    pub use rdask_core::{Delayed, Scheduler, Split, Tokenize, Visualize};
    pub use rdask_macros::{delay, delayed, graph, Tokenize};
}

#[doc(inline)]
pub use crate::__compute as compute;

/// Computes several `Delayed`s of any types in one merged graph (shared work
/// done once) on the default scheduler: `compute!(a, b)` gives
/// `rdask::Result<(A, B)>`. The arguments are borrowed, not consumed.
///
/// ```
/// use rdask::prelude::*;
/// let a = rdask::value(2);
/// let b = &a * 10;
/// let s = a.map(|x: i32| x.to_string());
/// let (x, y, z) = compute!(a, b, s)?;
/// assert_eq!((x, y, z.as_str()), (2, 20, "2"));
/// # Ok::<(), rdask::Error>(())
/// ```
#[doc(hidden)]
#[macro_export]
macro_rules! __compute {
    () => {
        ::core::compile_error!(
            "compute! needs at least one Delayed: `compute!(a, b)`; for a list, `rdask::compute(&list)`"
        )
    };
    ($a:expr, $b:expr, $c:expr, $d:expr, $e:expr, $f:expr, $g:expr, $h:expr, $i:expr, $j:expr,
     $k:expr, $l:expr, $m:expr $(, $rest:expr)* $(,)?) => {
        ::core::compile_error!(
            "compute! takes at most 12 Delayeds; for more, compute a list of one type with \
             `rdask::compute(&list)`"
        )
    };
    ($($e:expr),+ $(,)?) => {
        $crate::__private::compute_tuple(($(
            // The output types are known here: record their copy functions
            // (an output that is also used by value elsewhere is copied).
            $crate::__private::outputs(&$e, |outputs| {
                #[allow(unused_imports)]
                use $crate::__private::{RegisterClone as _, RegisterNothing as _};
                #[allow(clippy::needless_borrow)]
                (&&outputs).register()
            }),
        )+))
    };
}

/// Computes several `Delayed`s in one merged graph (shared work done once,
/// as `compute!`) and gives back a `Delayed` of each holding its value under
/// its key, so later computations reuse it (dask's `dask.persist(a, b)`).
/// Each type must be `Clone`; at most 8.
///
/// ```
/// use rdask::prelude::*;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// static LOADS: AtomicUsize = AtomicUsize::new(0);
///
/// #[delayed]
/// fn load() -> Vec<i64> {
///     LOADS.fetch_add(1, Ordering::SeqCst);
///     vec![1, 2, 3]
/// }
///
/// let data = load();
/// let total = data.map(|v: Vec<i64>| v.iter().sum::<i64>());
/// let count = data.map(|v: Vec<i64>| v.len());
/// let (total, count) = rdask::persist!(total, count)?;
/// assert_eq!(LOADS.load(Ordering::SeqCst), 1); // shared work ran once
/// assert_eq!(total.compute()?, 6);
/// assert_eq!(count.compute()?, 3);
/// assert_eq!(LOADS.load(Ordering::SeqCst), 1); // and not again
/// # Ok::<(), rdask::Error>(())
/// ```
#[macro_export]
macro_rules! persist {
    () => {
        ::core::compile_error!("persist! needs at least one Delayed: `persist!(a, b)`")
    };
    ($($e:expr),+ $(,)?) => {
        $crate::__private::persist_tuple(($(&$e,)+))
    };
}

/// The values of several keys of a raw graph, of different types, computed
/// together (shared work once): `get!(&graph, "a", "b")` gives
/// `rdask::Result<(A, B)>`, the types from where the result goes. On the
/// default scheduler; [`get_tuple_with`] takes one.
///
/// ```
/// use rdask::prelude::*;
/// fn inc(x: i64) -> i64 { x + 1 }
/// fn show(x: i64) -> String { x.to_string() }
/// let g = graph! { "a" => 1_i64, "b" => (inc, "a"), "c" => (show, "b") };
/// let (b, c): (i64, String) = rdask::get!(&g, "b", "c")?;
/// assert_eq!((b, c.as_str()), (2, "2"));
/// # Ok::<(), rdask::Error>(())
/// ```
#[macro_export]
macro_rules! get {
    ($graph:expr, $($key:expr),+ $(,)?) => {
        $crate::get_tuple($graph, &[$($crate::Key::from($key)),+])
    };
}
