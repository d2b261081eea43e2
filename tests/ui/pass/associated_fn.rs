use rdask::prelude::*;

#[derive(Clone)]
struct Model {
    scale: f64,
}

// An associated function without `self` works (`Self` aside: see
// fail/delayed_assoc_fn_self.rs).
impl Model {
    #[delayed]
    fn fit(xs: Vec<f64>) -> Model {
        Model {
            scale: xs.iter().sum(),
        }
    }
}

fn main() {
    let m = Model::fit(vec![1.0, 2.0]);
    assert_eq!(m.compute().unwrap().scale, 3.0);
}
