use rdask::prelude::*;

#[delayed]
fn push(xs: &mut Vec<i64>, x: i64) -> usize {
    xs.push(x);
    xs.len()
}

fn main() {
    let mut xs = vec![1];
    let _ = push(&mut xs, 2);
}
