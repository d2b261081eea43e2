#![deny(deprecated)]
use rdask::prelude::*;

#[deprecated(note = "use inc2")]
#[delayed]
fn inc(x: i32) -> i32 {
    x + 1
}

fn main() {
    let _ = inc(1);
}
