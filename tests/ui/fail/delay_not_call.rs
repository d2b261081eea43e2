use rdask::prelude::*;

fn main() {
    let x = 1_i64;
    let _ = delay!(x + 1);
}
