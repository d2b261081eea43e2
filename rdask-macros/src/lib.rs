//! Procedural macros of rdask. Use them through the `rdask` crate, which
//! documents them; this crate holds entry points only.

use proc_macro::TokenStream;

mod delay;
mod delayed;
mod graph;

/// Makes a function lazy: each call returns a `Delayed<R>` and runs nothing.
/// See the `rdask` crate documentation for the options (`pure`,
/// `name = ".."`, `fallible`, `infallible`) and the accepted arguments.
#[proc_macro_attribute]
pub fn delayed(attr: TokenStream, item: TokenStream) -> TokenStream {
    delayed::delayed(attr.into(), item.into()).into()
}

/// `delay!(f(a, b))`: a lazy call of any function, path or closure.
#[proc_macro]
pub fn delay(input: TokenStream) -> TokenStream {
    delay::delay(input.into()).into()
}

/// `graph! { "a" => 1, "c" => (add, "a", "b") }`: a raw task graph.
#[proc_macro]
pub fn graph(input: TokenStream) -> TokenStream {
    graph::graph(input.into()).into()
}
