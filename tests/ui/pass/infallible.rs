use rdask::prelude::*;
use std::num::ParseIntError;

#[delayed(infallible)]
fn parse(s: &str) -> Result<i64, ParseIntError> {
    s.parse()
}

#[delayed]
fn or_zero(r: Result<i64, ParseIntError>) -> i64 {
    r.unwrap_or(0)
}

fn main() {
    // The `Result` is the value: an `Err` does not fail the computation.
    let ok: Delayed<Result<i64, ParseIntError>> = parse("12");
    let bad = parse("twelve");
    assert_eq!(ok.compute().unwrap(), Ok(12));
    assert!(bad.compute().unwrap().is_err());
    assert_eq!(or_zero(&bad).compute().unwrap(), 0);
    assert_eq!(or_zero(ok).compute().unwrap(), 12);
}
