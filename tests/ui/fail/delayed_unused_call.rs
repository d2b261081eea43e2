#![deny(unused_must_use)]
use rdask::prelude::*;

#[delayed]
fn inc(x: i32) -> i32 {
    x + 1
}

fn main() {
    // A lazy call whose handle is dropped: nothing will ever run.
    inc(1);
}
