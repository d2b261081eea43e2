use rdask::prelude::*;
use std::cell::Cell;

#[delayed]
fn counter(start: u32) -> Cell<u32> {
    Cell::new(start)
}

fn main() {
    let _ = counter(1);
}
