//! dask's "custom graphs", in Rust: a task graph written as plain data, run
//! by any scheduler's `get`, and drawn as DOT.
//!
//! Mirrors the two examples of dask's documentation: the `{'a': 1, 'b': 2,
//! 'c': (add, 'a', 'b'), 'd': (sum, ['a', 'b', 'c'])}` graph, and the
//! load / clean / analyze / store pipeline dictionary.
//!
//! ```text
//! cargo run --release --example custom_graph
//! ```

use rdask::prelude::*;
use rdask::Graph;

fn add(a: i64, b: i64) -> i64 {
    a + b
}

fn sum(v: Vec<i64>) -> i64 {
    v.iter().sum()
}

/// Pretends to read a file: its "rows" are derived from the name.
fn load(filename: String) -> Vec<f64> {
    filename.bytes().map(f64::from).collect()
}

fn clean(data: Vec<f64>) -> Vec<f64> {
    data.into_iter().filter(|x| *x > 50.0).collect()
}

fn analyze(sequence_of_data: Vec<Vec<f64>>) -> String {
    let n: usize = sequence_of_data.iter().map(Vec::len).sum();
    let total: f64 = sequence_of_data.iter().flatten().sum();
    format!("{n} values, mean {:.2}", total / n as f64)
}

fn store(result: String) -> String {
    format!("stored: {result}")
}

fn pipeline() -> Graph {
    // The seed's dictionary, key for key. "myfile.a.data" is not a key of
    // the graph, so it is a literal string; "load-1" is, so it is a reference.
    graph! {
        "load-1" => (load, "myfile.a.data"),
        "load-2" => (load, "myfile.b.data"),
        "load-3" => (load, "myfile.c.data"),
        "clean-1" => (clean, "load-1"),
        "clean-2" => (clean, "load-2"),
        "clean-3" => (clean, "load-3"),
        "analyze" => (analyze, ["clean-1", "clean-2", "clean-3"]),
        "store" => (store, "analyze"),
    }
}

fn main() -> rdask::Result<()> {
    let dsk = graph! {
        "a" => 1_i64,
        "b" => 2_i64,
        "c" => (add, "a", "b"),
        "d" => (sum, ["a", "b", "c"]),
    };
    let pipe = pipeline();
    for s in [Scheduler::Sync, Scheduler::threads(0)] {
        let c = rdask::get_with::<i64>(&dsk, "c", &s)?;
        let d = rdask::get_with::<i64>(&dsk, "d", &s)?;
        let abc = rdask::get_many_with::<i64>(&dsk, &["a", "b", "c"], &s)?;
        println!(
            "[{s}] get(dsk, 'c') = {c}; get(dsk, 'd') = {d}; get(dsk, ['a', 'b', 'c']) = {abc:?}"
        );
        assert_eq!((c, d, abc), (3, 6, vec![1, 2, 3]));
        let stored = rdask::get_with::<String>(&pipe, "store", &s)?;
        println!("[{s}] get(pipeline, 'store') = {stored:?}");
    }

    // The graph is data: inspect it, cull it, draw it.
    println!(
        "\ndependencies of 'analyze': {:?}",
        pipe.dependencies("analyze")
    );
    let culled = pipe.cull(&["clean-2"]);
    println!(
        "cull(['clean-2']) keeps {:?}",
        culled.keys().map(|k| k.to_string()).collect::<Vec<_>>()
    );
    println!("\n{}", dsk.to_dot());
    Ok(())
}
