use rdask::prelude::*;

fn main() {
    let xs = vec![3_i64, 1, 2];
    let _ = delay!(xs.len());
    let d = rdask::value(vec![1_u8]);
    let _ = delay!(d.get(0));
}
