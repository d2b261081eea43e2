use rdask::prelude::*;

struct NotSerde(u64);

#[delayed(cache)]
fn not_storable(x: u64) -> NotSerde {
    NotSerde(x)
}

#[delayed(version = 2)]
fn versioned(x: u64) -> u64 {
    x
}

fn main() {}
