use rdask::prelude::*;

/// Not serde: cannot cross to a worker process.
#[derive(Clone)]
struct Model {
    weights: Vec<f64>,
}

#[delayed(remote)]
fn size(m: Model) -> usize {
    m.weights.len()
}

fn main() {
    let _ = size(Model { weights: vec![] });
}
