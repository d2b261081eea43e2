//! The benchmark shapes' small functions, shared by the test binaries that
//! build graphs of them (each test file is its own crate).

use rdask::prelude::*;

#[delayed]
pub fn inc(x: u64) -> u64 {
    x + 1
}

#[delayed]
pub fn total(xs: Vec<u64>) -> u64 {
    xs.iter().sum()
}

#[delayed]
pub fn add(a: u64, b: u64) -> u64 {
    a + b
}

/// Joins `level` pairwise with `join` until one value remains (an odd one
/// is carried up): a balanced tree, each handle moved into its call.
pub fn pairwise<T>(
    mut level: Vec<Delayed<T>>,
    join: impl Fn(Delayed<T>, Delayed<T>) -> Delayed<T>,
) -> Delayed<T> {
    while level.len() > 1 {
        let mut items = level.into_iter();
        let mut next = Vec::new();
        while let Some(a) = items.next() {
            next.push(match items.next() {
                Some(b) => join(a, b),
                None => a,
            });
        }
        level = next;
    }
    level.pop().expect("at least one value")
}
