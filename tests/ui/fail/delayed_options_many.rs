use rdask::prelude::*;

// Every mistake in the options is reported at once.
#[delayed(pure, bogus, name, infallible = "no")]
fn inc(x: i64) -> i64 {
    x + 1
}

fn main() {
    let _ = inc(1);
}
