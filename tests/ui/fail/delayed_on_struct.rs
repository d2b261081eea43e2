use rdask::prelude::*;

#[delayed]
struct Task {
    x: i64,
}

fn main() {
    let _ = Task { x: 1 };
}
