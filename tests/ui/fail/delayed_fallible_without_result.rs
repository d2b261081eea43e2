use rdask::prelude::*;

#[delayed(fallible)]
fn log(msg: String) {
    println!("{msg}");
}

type Count = usize;

#[delayed(fallible)]
fn count(xs: Vec<i64>) -> Count {
    xs.len()
}

#[delayed]
fn show(x: i64) -> std::fmt::Result {
    println!("{x}");
    Ok(())
}

fn main() {
    let _ = log("hi".to_string());
    let _ = count(vec![1]);
    let _ = show(1);
}
