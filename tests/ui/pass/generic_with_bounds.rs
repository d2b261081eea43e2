use rdask::prelude::*;
use std::fmt::Display;
use std::ops::Add;

#[delayed]
fn add<T: Add<Output = T> + Copy>(a: T, b: T) -> T {
    a + b
}

#[delayed]
fn label<T>(x: T, unit: &str) -> String
where
    T: Display,
{
    format!("{x} {unit}")
}

#[delayed]
fn first<T: Clone, const N: usize>(xs: [T; N]) -> T {
    xs[0].clone()
}

fn main() {
    let a = add(1_i64, 2_i64);
    let b = add(&a, 10_i64);
    let f = add(1.5_f64, 2.0_f64);
    // A `Delayed<i64>` could itself be the `T` of a plain argument: name
    // `T` where the argument is a `Delayed`.
    let l = label::<i64>(b.clone(), "apples");
    let x = first([7_u8, 8, 9]);
    let (b, f, l, x) = compute!(b, f, l, x).unwrap();
    assert_eq!(b, 13);
    assert_eq!(f, 3.5);
    assert_eq!(l, "13 apples");
    assert_eq!(x, 7);
}
