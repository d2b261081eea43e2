//! rdask: dask's imperative "delayed" task graphs for Rust.
//!
//! ```
//! use rdask::prelude::*;
//!
//! #[delayed]
//! fn inc(x: i64) -> i64 { x + 1 }
//! #[delayed]
//! fn total(xs: Vec<i64>) -> i64 { xs.iter().sum() }
//!
//! let parts: Vec<_> = (0..10).map(|i| inc(i)).collect();
//! let sum = total(parts);          // nothing has run yet
//! assert_eq!(sum.compute()?, 55);  // now it runs, in parallel
//! # Ok::<(), rdask::Error>(())
//! ```

pub use rdask_core::*;
pub use rdask_macros::{delay, delayed, graph};

/// Everything a user of rdask needs in scope.
pub mod prelude {
    pub use crate::{compute, delay, delayed, graph};
    pub use rdask_core::{Delayed, Scheduler, Split, Tokenize};
}

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
#[macro_export]
macro_rules! compute {
    ($($e:expr),+ $(,)?) => {
        $crate::__private::compute_tuple(($(&$e,)+))
    };
}

// The README's examples are doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
mod readme {}
