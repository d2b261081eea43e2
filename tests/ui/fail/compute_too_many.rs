use rdask::prelude::*;

fn main() {
    let a = rdask::value(1);
    let _ = compute!(a, a, a, a, a, a, a, a, a, a, a, a, a);
}
