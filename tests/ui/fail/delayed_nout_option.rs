use rdask::prelude::*;

#[delayed(nout = 2)]
fn min_max(xs: Vec<i64>) -> (i64, i64) {
    (xs[0], xs[1])
}

fn main() {
    let _ = min_max(vec![1, 2]);
}
