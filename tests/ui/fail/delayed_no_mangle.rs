use rdask::prelude::*;

#[delayed]
#[no_mangle]
fn inc(x: i32) -> i32 {
    x + 1
}

fn main() {
    let _ = inc(1);
    let _ = inc2(1);
}

#[delayed]
#[unsafe(export_name = "rdask_inc2")]
fn inc2(x: i32) -> i32 {
    x + 2
}
