use rdask::prelude::*;

#[delayed]
fn load(n: usize) -> Vec<f64> {
    (1..=n).map(|i| i as f64).collect()
}

#[delayed]
fn mean(xs: &Vec<f64>) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

#[delayed]
fn max(xs: &[f64]) -> f64 {
    xs.iter().copied().fold(f64::MIN, f64::max)
}

#[delayed]
fn shout<'a>(s: &'a str, times: usize) -> String {
    s.to_uppercase().repeat(times)
}

fn main() {
    let data = load(4);
    let m = mean(&data);
    let x = max(&data);
    let plain = mean(vec![2.0, 4.0]);
    let s = shout("ab", 2);
    let (m, x, plain, s) = compute!(m, x, plain, s).unwrap();
    assert_eq!(m, 2.5);
    assert_eq!(x, 4.0);
    assert_eq!(plain, 3.0);
    assert_eq!(s, "ABAB");
}
