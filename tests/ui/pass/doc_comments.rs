#![deny(missing_docs)]
//! Docs and lint attributes on a `#[delayed]` function stay on it.

use rdask::prelude::*;

/// Adds one.
///
/// Documented, so `missing_docs` is satisfied by the generated wrapper.
#[delayed]
#[allow(clippy::needless_return)]
pub fn inc(x: i64) -> i64 {
    return x + 1;
}

#[delayed(pure)]
/// Doubles; documented after the attribute.
pub fn double(x: i64) -> i64 {
    x * 2
}

fn main() {
    assert_eq!(double(inc(1)).compute().unwrap(), 4);
}
