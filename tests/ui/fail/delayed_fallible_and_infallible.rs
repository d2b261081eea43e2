use rdask::prelude::*;

#[delayed(fallible, infallible)]
fn parse(s: &str) -> Result<i64, std::num::ParseIntError> {
    s.parse()
}

fn main() {
    let _: Delayed<i64> = parse(rdask::value("1".to_string()));
}
