//! Procedural macros of rdask. Use them through the `rdask` crate, which
//! documents them; this crate holds entry points only.

use proc_macro::TokenStream;

mod delay;
mod delayed;
mod graph;
mod tokenize;

/// Makes a function lazy: each call returns a `Delayed<R>` at once and runs
/// nothing; `compute` runs it later, with everything it depends on.
///
/// ```
/// use rdask::prelude::*;
///
/// #[delayed]
/// fn inc(x: i64) -> i64 { x + 1 }
///
/// #[delayed]
/// fn total(xs: Vec<i64>) -> i64 { xs.iter().sum() }
///
/// #[delayed]
/// fn largest(xs: &Vec<i64>) -> i64 { *xs.iter().max().unwrap() } // borrowed: no copy
///
/// #[delayed]
/// fn parse(s: &str) -> Result<i64, std::num::ParseIntError> { s.parse() }
///
/// let xs: Vec<Delayed<i64>> = (0..4).map(|i| inc(i)).collect();
/// let sum = total(&xs[..]);                 // &[Delayed<X>] fills a Vec<X> parameter
/// let all = total(xs.clone());
/// let big = largest(rdask::value(vec![3, 9, 4]));
/// assert_eq!(compute!(sum, all, big)?, (10, 10, 9));
/// assert_eq!(parse("12").compute()?, 12);   // Result<T, E> gives a Delayed<T>
/// assert_eq!(parse("x").compute().unwrap_err().kind(), rdask::ErrorKind::Task);
/// # Ok::<(), rdask::Error>(())
/// ```
///
/// # Arguments
///
/// A parameter of type `P` accepts a plain `P` or `&P` (stored in the graph
/// and copied for each run, so it must be `Clone`), a `Delayed<P>`, or a
/// `&Delayed<P>`. A `Vec<X>` parameter also accepts `Vec<Delayed<X>>` and
/// `&[Delayed<X>]`. A `&P` parameter accepts the same, and the function gets
/// a reference to the stored value; `&str` and `&[T]` are stored as `String`
/// and `Vec<T>`. Parameter and return types must be `Send + Sync + 'static`.
///
/// # Options
///
/// * `pure`: the key is a hash of the function's path and its arguments
///   (plain arguments through [`Tokenize`](../rdask/trait.Tokenize.html)), so
///   equal calls are one task.
/// * `name = "prefix"`: the key prefix (default: the function's name).
/// * `fallible` / `infallible`: whether an `Err` fails the computation. By
///   default a return type spelled `Result<..>` (`io::Result<T>`,
///   `anyhow::Result<T>`, ...) is fallible and gives a `Delayed<T>`; the error
///   type must convert into `Box<dyn Error + Send + Sync>`.
/// * `remote`: the function must be able to run in a worker process (the
///   processes scheduler): a compile error, on the option, when its
///   parameter and return types are not serde types or the function is
///   generic. Without it such a function runs in the calling process.
///
/// # What it writes
///
/// The function keeps its name, visibility and docs, but its parameters
/// become `impl IntoArg<P>` and it returns `Delayed<R>`. The original body
/// becomes an inner function, called by a small adapter that takes the
/// arguments out of the graph; `module_path!()::name@line:column` (where the
/// function is written) identifies it, in pure keys and to worker processes.
///
/// Methods with `self`, `async fn`, `const fn`, `unsafe fn`, `extern` and
/// variadic functions, `#[no_mangle]`, `&mut` and `ref` parameters, and
/// borrowed and `impl Trait` types are refused with an error on the token
/// and a way out.
#[proc_macro_attribute]
pub fn delayed(attr: TokenStream, item: TokenStream) -> TokenStream {
    delayed::delayed(attr.into(), item.into()).into()
}

/// `delay!(f(a, b))`: a lazy call of any function, path or closure that is
/// not annotated (dask's `delayed(f)(a, b)`). Argument types come from the
/// callee's signature; closures need annotated parameters. Arguments are
/// passed by value (up to 8).
///
/// ```
/// use rdask::prelude::*;
/// fn add(a: i64, b: i64) -> i64 { a + b }
/// let x = delay!(add(1, 2));
/// let y = delay!(i64::pow(x, 2));
/// let z = delay!((|v: i64| v - 1)(&y));
/// assert_eq!(z.compute()?, 8);
/// # Ok::<(), rdask::Error>(())
/// ```
#[proc_macro]
pub fn delay(input: TokenStream) -> TokenStream {
    delay::delay(input.into()).into()
}

/// `graph! { "a" => 1, "c" => (add, "a", "b") }`: a raw task graph
/// (`rdask::Graph`), in dask's custom-graph syntax.
///
/// A value that is a tuple whose first element is a path or closure is a task
/// `(f, args...)`; `key("a")` makes an alias; anything else is a literal
/// value. Inside a task: a string literal (or a tuple of a string and
/// integers) is a reference when the graph has that key at compute time and
/// a literal otherwise (dask's rule); `key(..)` is always a reference and
/// `lit(..)` always a literal; `[..]` is a list for a `Vec` parameter; a
/// nested `(g, ..)` is a task; anything else is a literal. String literals
/// arrive as `String`.
///
/// ```
/// use rdask::prelude::*;
/// fn inc(x: i64) -> i64 { x + 1 }
/// fn add(a: i64, b: i64) -> i64 { a + b }
/// fn sum(v: Vec<i64>) -> i64 { v.iter().sum() }
/// let dsk = graph! {
///     "x" => 1_i64,
///     "y" => (add, (inc, "x"), 10_i64),
///     ("z", 0) => (sum, ["x", "y", key("y")]),
///     "alias" => key("y"),
/// };
/// assert_eq!(rdask::get::<i64>(&dsk, "y")?, 12);
/// assert_eq!(rdask::get::<i64>(&dsk, ("z", 0))?, 25);
/// assert_eq!(rdask::get::<i64>(&dsk, "alias")?, 12);
/// # Ok::<(), rdask::Error>(())
/// ```
#[proc_macro]
pub fn graph(input: TokenStream) -> TokenStream {
    graph::graph(input.into()).into()
}

/// `#[derive(Tokenize)]`: implements `rdask::Tokenize` for a struct or enum,
/// so that its values can be passed as plain arguments to
/// `#[delayed(pure)]` functions, whose keys hash them.
///
/// A struct hashes its fields in declaration order (named, tuple and unit
/// structs alike). An enum hashes its variant's index (as a `u32`, counted
/// in declaration order) and then that variant's fields, so two variants
/// with equal fields give different keys. Every hashed field must be
/// `Tokenize`; each type parameter gets a `Tokenize` bound. Unions are
/// refused: implement the trait by hand.
///
/// `#[tokenize(skip)]` on a field leaves it out of the hash: values that
/// differ only there give the same key (for caches, handles, labels that
/// do not change the result). The field need not be `Tokenize`.
///
/// ```
/// use rdask::prelude::*;
///
/// #[derive(Clone, Tokenize)]
/// struct Params {
///     alpha: f64,
///     folds: u32,
///     #[tokenize(skip)]
///     label: String, // not part of the key
/// }
///
/// #[derive(Clone, rdask::Tokenize)]
/// enum Model {
///     Linear(Params),
///     Tree { depth: u32 },
/// }
///
/// #[delayed(pure)]
/// fn score(m: Model) -> f64 {
///     match m {
///         Model::Linear(p) => p.alpha * f64::from(p.folds),
///         Model::Tree { depth } => f64::from(depth),
///     }
/// }
///
/// let p = |label: &str| Params { alpha: 0.5, folds: 4, label: label.into() };
/// // Equal inputs (up to skipped fields), one key: computed once.
/// assert_eq!(score(Model::Linear(p("a"))).key(), score(Model::Linear(p("b"))).key());
/// assert_ne!(score(Model::Linear(p("a"))).key(), score(Model::Tree { depth: 4 }).key());
/// assert_eq!(score(Model::Tree { depth: 3 }).compute()?, 3.0);
/// # Ok::<(), rdask::Error>(())
/// ```
#[proc_macro_derive(Tokenize, attributes(tokenize))]
pub fn derive_tokenize(input: TokenStream) -> TokenStream {
    tokenize::derive(input.into()).into()
}
