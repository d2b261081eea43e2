use rdask::prelude::*;

#[derive(Clone)]
struct Model {
    scale: f64,
}

// An associated function without `self` is fine; `Self` in it is not (the
// body moves into a nested function).
impl Model {
    #[delayed]
    fn fit(xs: Vec<f64>) -> Self {
        Model {
            scale: xs.iter().sum(),
        }
    }
}

fn main() {
    let m = Model::fit(vec![1.0, 2.0]);
    assert_eq!(m.compute().unwrap().scale, 3.0);
}
