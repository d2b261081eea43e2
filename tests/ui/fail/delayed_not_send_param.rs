use rdask::prelude::*;
use std::rc::Rc;

#[delayed]
fn get(x: Rc<i32>) -> i32 {
    *x
}

fn main() {
    let _ = get(Rc::new(1));
}
