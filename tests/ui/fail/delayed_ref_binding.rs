use rdask::prelude::*;
use std::collections::HashMap;

#[delayed]
fn len(ref s: String) -> usize {
    s.len()
}

#[delayed]
fn keys(ref mut m: HashMap<String, Vec<f64>>) -> usize {
    m.clear();
    m.len()
}

fn main() {
    let _ = len("abc".to_string());
    let _ = keys(HashMap::new());
}
