use rdask::prelude::*;

#[delayed(retries = -1)]
fn negative(x: u64) -> u64 {
    x
}

#[delayed(priority)]
fn no_value(x: u64) -> u64 {
    x
}

#[delayed(resources(gpu))]
fn no_amount(x: u64) -> u64 {
    x
}

#[delayed(timeout_ms = "2s")]
fn text(x: u64) -> u64 {
    x
}

fn main() {}
