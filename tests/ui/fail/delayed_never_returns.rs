use rdask::prelude::*;

#[delayed]
fn boom(x: i32) -> ! {
    panic!("{x}")
}

fn main() {
    let _ = boom(1);
}
