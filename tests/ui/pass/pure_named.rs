use rdask::prelude::*;

#[delayed(pure, name = "fit")]
fn train(alpha: f64, xs: Vec<f64>) -> f64 {
    alpha * xs.iter().sum::<f64>()
}

#[delayed(name = "load")]
fn read_data(n: usize) -> Vec<f64> {
    vec![1.0; n]
}

fn main() {
    let a = train(0.5, vec![1.0, 2.0]);
    let b = train(0.5, vec![1.0, 2.0]);
    let c = train(0.25, vec![1.0, 2.0]);
    // Pure: equal calls are one task, named by the given prefix.
    assert_eq!(a.key(), b.key());
    assert_ne!(a.key(), c.key());
    assert!(a.key().to_string().starts_with("fit"), "{}", a.key());

    let d1 = read_data(3);
    let d2 = read_data(3);
    // Not pure: each call is its own task.
    assert_ne!(d1.key(), d2.key());
    assert!(d1.key().to_string().starts_with("load"), "{}", d1.key());

    let on_data = train(2.0, &d1);
    assert_eq!(compute!(a, c, on_data).unwrap(), (1.5, 0.75, 6.0));
}
