use rdask::prelude::*;

#[delayed]
unsafe fn first(xs: Vec<i64>) -> i64 {
    *xs.get_unchecked(0)
}

fn main() {
    let _ = unsafe { first(vec![1]) };
}
