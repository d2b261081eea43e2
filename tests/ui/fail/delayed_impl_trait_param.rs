use rdask::prelude::*;

#[delayed]
fn total(xs: impl IntoIterator<Item = i64>) -> i64 {
    xs.into_iter().sum()
}

fn main() {
    let _ = total(vec![1, 2]);
}
