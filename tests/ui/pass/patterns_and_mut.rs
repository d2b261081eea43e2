use rdask::prelude::*;

#[delayed]
fn span((lo, hi): (i32, i32)) -> i32 {
    hi - lo
}

#[delayed]
fn sorted(mut xs: Vec<i32>) -> Vec<i32> {
    xs.sort();
    xs
}

#[delayed]
fn scale(Wrapper(k): Wrapper, [a, b]: [i32; 2], _unused: u8) -> i32 {
    k * (a + b)
}

#[derive(Clone)]
struct Wrapper(i32);

fn main() {
    let s = span((3, 10));
    let v = sorted(vec![3, 1, 2]);
    let k = scale(Wrapper(2), [1, 2], 0);
    assert_eq!(compute!(s, v, k).unwrap(), (7, vec![1, 2, 3], 6));
}
