use rdask::prelude::*;

/// Not `Clone`: it can still flow through the graph, by reference.
struct Model {
    weights: Vec<f64>,
}

#[delayed]
fn fit(n: usize) -> Model {
    Model {
        weights: (0..n).map(|i| i as f64).collect(),
    }
}

#[delayed]
fn predict(m: &Model, x: f64) -> f64 {
    m.weights.iter().map(|w| w * x).sum()
}

#[delayed]
fn size(m: &Model) -> usize {
    m.weights.len()
}

/// One by-value consumer is fine too: the value is moved, not cloned.
#[delayed]
fn into_weights(m: Model) -> Vec<f64> {
    m.weights
}

fn main() {
    let m = fit(4);
    let p1 = predict(&m, 1.0);
    let p2 = predict(&m, 2.0);
    let n = size(m.clone());
    let w = into_weights(&m);
    for s in [Scheduler::Sync, Scheduler::threads(2)] {
        let out = rdask::with_scheduler(s, || compute!(p1, p2, n, w)).unwrap();
        assert_eq!(out, (6.0, 12.0, 4, vec![0.0, 1.0, 2.0, 3.0]));
    }
}
