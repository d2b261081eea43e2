use rdask::prelude::*;

#[delayed]
fn inc(x: i64) -> i64 {
    x + 1
}

fn main() {
    let s = rdask::value(String::from("1"));
    let _ = inc(s);
}
