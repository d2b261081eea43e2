use rdask::prelude::*;
use std::fmt::Display;

#[delayed]
fn count(xs: Vec<impl Display>) -> usize {
    xs.len()
}

#[delayed]
fn make(n: usize) -> Vec<impl Display + Clone + Send + Sync + 'static> {
    vec![1; n]
}

fn main() {
    let _ = count(vec![1]);
    let _ = make(1);
}
