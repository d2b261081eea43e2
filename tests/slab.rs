//! The node slab frees every chunk once its nodes are gone, whichever
//! threads made and dropped them (one test: the chunk count is global).

#[path = "common/shapes.rs"]
#[allow(dead_code)]
mod shapes;

use rdask::prelude::*;
use shapes::{inc, total};

#[test]
fn every_chunk_is_freed_once_its_nodes_are_gone() {
    let before = rdask::__private::slab_chunks();
    // Four threads build graphs (large enough for the 2 MiB chunks), hand
    // them to this thread, and exit.
    let graphs: Vec<Delayed<u64>> = (0..4u64)
        .map(|t| {
            std::thread::spawn(move || {
                let mut x = inc(t);
                for _ in 0..30_000 {
                    x = inc(x);
                }
                let flat: Vec<_> = (0..20_000u64).map(inc).collect();
                total(vec![x, total(flat)])
            })
        })
        .map(|h| h.join().expect("a builder thread"))
        .collect();
    assert!(rdask::__private::slab_chunks() > before);
    let sums = rdask::compute(&graphs).expect("the graphs compute");
    for (t, s) in sums.iter().enumerate() {
        let flat: u64 = (1..=20_000u64).sum();
        assert_eq!(*s, t as u64 + 30_001 + flat);
    }
    // One node outlives the rest: its chunk stays, the others go.
    let kept = graphs[0].clone();
    drop(graphs);
    assert!(rdask::__private::slab_chunks() > before);
    assert_eq!(kept.compute().expect("the kept graph"), sums[0]);
    drop(kept);
    assert_eq!(rdask::__private::slab_chunks(), before);
}
