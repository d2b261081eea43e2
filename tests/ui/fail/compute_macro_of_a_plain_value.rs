use rdask::prelude::*;

fn main() {
    let x = 5_i64;
    let _ = compute!(x);
}
