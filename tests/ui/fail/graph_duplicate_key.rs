use rdask::prelude::*;

fn inc(x: i64) -> i64 {
    x + 1
}

fn main() {
    let _ = graph! {
        "a" => 1_i64,
        "b" => (inc, "a"),
        "a" => 2_i64,
    };
}
