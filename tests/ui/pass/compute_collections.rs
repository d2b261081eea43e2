//! compute! takes collections of Delayeds, nested, and gives them back
//! holding the values, all from one merged graph.
use rdask::prelude::*;
use std::collections::{BTreeMap, HashMap};

#[delayed]
fn double(x: i64) -> i64 {
    x * 2
}

fn main() -> Result<(), rdask::Error> {
    let x = rdask::value(3_i64);
    let xs: Vec<Delayed<i64>> = (0..3).map(double).collect();
    let nested = vec![vec![double(1)], vec![], vec![double(2), double(3)]];
    let map: HashMap<String, Delayed<i64>> = [("a".to_string(), double(10))].into();
    let sorted: BTreeMap<u8, Delayed<i64>> = [(2, double(2)), (1, double(1))].into();
    let maybe: Option<Delayed<i64>> = Some(&x + 1);
    let pair = (double(5), rdask::value("s".to_string()));
    let (a, b, c, d, e, f, g) = compute!(x, xs, nested, map, sorted, maybe, pair)?;
    assert_eq!(a, 3);
    assert_eq!(b, vec![0, 2, 4]);
    assert_eq!(c, vec![vec![2], vec![], vec![4, 6]]);
    assert_eq!(d["a"], 20);
    assert_eq!(e.into_iter().collect::<Vec<_>>(), vec![(1, 2), (2, 4)]);
    assert_eq!(f, Some(4));
    assert_eq!(g, (10, "s".to_string()));
    let none: Option<Delayed<i64>> = None;
    assert_eq!(compute!(none)?, (None,));
    Ok(())
}
