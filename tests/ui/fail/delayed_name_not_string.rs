use rdask::prelude::*;

#[delayed(name = fit)]
fn inc(x: i64) -> i64 {
    x + 1
}

fn main() {
    // The function is still expanded: a `Delayed` argument draws no second
    // error.
    let one = rdask::value(1_i64);
    let _ = inc(&one);
}
