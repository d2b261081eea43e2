use rdask::prelude::*;

fn main() {
    let _ = compute!();
}
