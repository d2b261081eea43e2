use rdask::prelude::*;

fn main() {
    let _: Delayed<i64> = delay!();
}
