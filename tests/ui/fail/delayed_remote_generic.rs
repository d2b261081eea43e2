use rdask::prelude::*;

#[delayed(remote)]
fn twice<T: Clone + Send + Sync + 'static>(x: T) -> (T, T) {
    (x.clone(), x)
}

fn main() {
    let _ = twice(1);
}
