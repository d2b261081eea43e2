//! Memory of the engine's own: huge-page mappings ([`huge`]) and the big
//! arrays the planner and the tree walk carve from them ([`bigvec`]).
//!
//! The bottom layer: it imports nothing from the crate. The node slab
//! (`crate::node::slab`) takes its big chunks from here too.

pub(crate) mod bigvec;
pub(crate) mod huge;
