// The longest tuple key is a name and four indices, at run time (the `From`
// impls for `Key`) and in `graph!` (its `MAX_TUPLE_KEY_LEN`): one index more
// is refused. `tests/raw_graph.rs` checks that the longest one works.
use rdask::prelude::*;

fn main() {
    let _ = graph! { ("x", 0, 1, 2, 3, 4) => 1_i64 };
}
