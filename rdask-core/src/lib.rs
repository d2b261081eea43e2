//! The runtime of [rdask](https://docs.rs/rdask): lazy `Delayed<T>` values,
//! keys, raw task graphs, the planner and the schedulers.
//!
//! Use it through the `rdask` facade crate, which adds the macros
//! (`#[delayed]`, `delay!`, `compute!`, `graph!`). The data path runs one
//! way: calls build nodes linked by counted references (stored in chunks, not
//! one allocation each); `compute` turns the nodes that the
//! outputs reach into one plan (deduplicated, in flat arrays, in depth-first
//! order); a [`Scheduler`] runs the plan through the one executor and hands
//! back typed values or an [`Error`] naming the task. A graph that is a tree
//! (every node the input of one other) needs no plan, and runs straight
//! from its nodes. Raw [`Graph`]s are the
//! same nodes held by key.

#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

// The modules form one-way layers: ARCHITECTURE.md lists them, and
// `tests/layers.rs` checks that each imports only those below it.
mod args;
mod cache;
pub mod callbacks;
mod control;
mod delayed;
pub mod diagnostics;
mod dot;
mod error;
mod exec;
pub mod graph;
mod key;
mod mem;
#[allow(missing_docs)]
mod node;
mod ops;
mod plan;
mod pool;
mod schedule;
mod sizeof;
mod task;
mod value;

#[doc(hidden)]
#[allow(missing_docs)]
pub mod __private;
#[doc(hidden)]
pub mod requires;

pub use args::{IntoArg, IntoPureArg, Tokenize};
pub use cache::{with_cache, Cache, CacheStats};
pub use callbacks::{with_callbacks, Callback};
pub use control::{cancel_on_ctrl_c, cancelled, CancelToken};
#[doc(hidden)]
pub use delayed::PersistTuple;
pub use delayed::{compute, compute_with, value, Computable, Compute, Delayed, Split};
pub use diagnostics::{
    visualize, CacheProfiler, Profiler, ProgressBar, ResourceProfiler, Visualize,
};
pub use error::{BoxError, Error, ErrorKind, Result};
pub use graph::{
    get, get_each, get_many, get_many_with, get_tuple, get_tuple_with, get_with, FromOutputs,
    Graph, GraphArg, TaskArgs, TaskFn,
};
pub use key::{Key, KeyIndex};
pub use schedule::dask;
pub use schedule::dask::Dask;
pub use schedule::processes as process;
pub use schedule::processes::Processes;
pub use schedule::{current_scheduler, set_scheduler, with_scheduler, Scheduler, Threads};
pub use sizeof::{register_size, SizeOf};
pub use task::annotations::{annotate, Annotations};
