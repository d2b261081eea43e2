use rdask::prelude::*;

#[delayed]
const fn double(x: i64) -> i64 {
    x * 2
}

fn main() {
    let _ = double(1);
}
