use rdask::prelude::*;

fn main() {
    let xs: Vec<Delayed<i64>> = (0..3).map(rdask::value).collect();
    let _ = compute!(xs);
}
