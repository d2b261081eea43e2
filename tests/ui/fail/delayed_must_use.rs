#![deny(unused_must_use)]
use rdask::prelude::*;

#[must_use = "compute it"]
#[delayed]
fn inc(x: i32) -> i32 {
    x + 1
}

fn main() {
    inc(1);
}
