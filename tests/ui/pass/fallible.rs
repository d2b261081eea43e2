use rdask::prelude::*;
use std::io;

#[derive(Debug)]
struct MyErr(String);

impl std::fmt::Display for MyErr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "my error: {}", self.0)
    }
}

impl std::error::Error for MyErr {}

type MyRes<T> = std::result::Result<T, MyErr>;

#[delayed]
fn read(ok: bool) -> io::Result<i64> {
    if ok {
        Ok(41)
    } else {
        Err(io::Error::new(io::ErrorKind::NotFound, "no such file"))
    }
}

#[delayed(fallible)]
fn check(x: i64) -> MyRes<i64> {
    if x > 0 {
        Ok(x + 1)
    } else {
        Err(MyErr(format!("{x} is not positive")))
    }
}

fn main() {
    // `io::Result<i64>` and the alias both give a `Delayed<i64>`.
    let good: Delayed<i64> = check(read(true));
    assert_eq!(good.compute().unwrap(), 42);

    let bad = check(read(false));
    let err = bad.compute().unwrap_err();
    assert_eq!(err.kind(), rdask::ErrorKind::Task);
    assert!(err.to_string().contains("no such file"), "{err}");

    let neg = check(-1);
    let err = neg.compute().unwrap_err();
    assert!(err.to_string().contains("-1 is not positive"), "{err}");
}
