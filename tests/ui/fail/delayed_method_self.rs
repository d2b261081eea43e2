use rdask::prelude::*;

#[derive(Clone)]
struct Model {
    scale: f64,
}

impl Model {
    #[delayed]
    fn predict(&self, x: f64) -> f64 {
        self.scale * x
    }

    #[delayed]
    fn rescale(&mut self, k: f64) -> f64 {
        self.scale *= k;
        self.scale
    }

    #[delayed]
    fn into_scale(self) -> f64 {
        self.scale
    }
}

fn main() {
    let mut m = Model { scale: 2.0 };
    let _ = m.predict(1.0);
    let _ = m.rescale(2.0);
    let _ = m.into_scale();
}
