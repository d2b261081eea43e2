use rdask::prelude::*;

struct Table {
    rows: Vec<f64>,
}

#[delayed]
fn rows(t: Table) -> usize {
    t.rows.len()
}

fn main() {
    let t = Table { rows: vec![1.0] };
    let _ = rows(t);
}
