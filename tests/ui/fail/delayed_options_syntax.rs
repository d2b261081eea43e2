use rdask::prelude::*;

#[delayed(pure name = "x")]
fn inc(x: i64) -> i64 {
    x + 1
}

#[delayed("fit")]
fn dec(x: i64) -> i64 {
    x - 1
}

#[delayed(3)]
fn neg(x: i64) -> i64 {
    -x
}

fn main() {
    let _ = inc(1);
    let _ = dec(1);
    let _ = neg(1);
}
