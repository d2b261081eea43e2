use rdask::prelude::*;

fn add(a: i64, b: i64) -> i64 {
    a + b
}

mod stats {
    pub fn mean(xs: Vec<f64>) -> f64 {
        xs.iter().sum::<f64>() / xs.len() as f64
    }
}

fn main() {
    let x = delay!(add(1, 2));
    let y = delay!(i64::pow(x.clone(), 2));
    let z = delay!((|v: i64| v - 1)(&y));
    let m = delay!(stats::mean(vec![1.0, 2.0, 3.0]));
    let s = delay!(i64::abs(-4));
    let big = delay!(i64::max(z.clone(), 5));
    let out = compute!(x, y, z, m, s, big).unwrap();
    assert_eq!(out, (3, 9, 8, 2.0, 4, 8));
}
