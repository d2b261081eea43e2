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
