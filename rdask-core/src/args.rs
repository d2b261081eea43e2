//! Arguments of lazy calls: what may stand for a parameter of type `P`, and
//! how pure calls hash their inputs into a key.

use crate::node::NodeRef;
use crate::node::{Arg, Src};
use crate::value::{clone_fn_of, typed_list, unwrap_value, CloneFn, ListFn, Value};
use crate::{Delayed, Key};
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};

/// A value that can be passed for a parameter of type `P` of a lazy call:
/// a plain `P` or `&P` (copied into the graph), a `Delayed<P>` or
/// `&Delayed<P>`, and for `P = Vec<X>` also `Vec<Delayed<X>>`,
/// `&[Delayed<X>]` or `[Delayed<X>; N]`.
///
/// `Delayed`s may also stand inside the parameter's own shape (dask's
/// `traverse`), moved in: a tuple `(A, B)` to `(A, B, C, D)` takes a tuple
/// of `Delayed`s, or of `Delayed`s and plain values (at least one
/// `Delayed`); `Option<T>` takes `Option<Delayed<T>>`; `Vec<Vec<T>>` takes
/// `Vec<Vec<Delayed<T>>>`; `HashMap<K, V>` takes `HashMap<K, Delayed<V>>`
/// (its keys copied into the graph). The consumer gets the shape built from
/// the values. All but the `HashMap` may be passed to `#[delayed(pure)]`
/// functions too.
///
/// ```
/// use rdask::prelude::*;
///
/// #[delayed]
/// fn num(x: i64) -> i64 { x }
///
/// #[delayed]
/// fn both(p: (i64, i64)) -> i64 { p.0 * p.1 }
///
/// #[delayed]
/// fn or_one(x: Option<i64>) -> i64 { x.unwrap_or(1) }
///
/// assert_eq!(both((num(6), num(7))).compute().unwrap(), 42);
/// assert_eq!(both((num(6), 2)).compute().unwrap(), 12);
/// assert_eq!(or_one(Some(num(5))).compute().unwrap(), 5);
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be passed for a parameter of type `{P}`",
    label = "expected a `{P}`, or a `Delayed` (or `&Delayed`) of one",
    note = "a plain argument is stored in the graph and copied each time the graph runs, so its \
            type must be `Clone + Send + Sync + 'static`; a value that is not `Clone` must come \
            from another task (a `Delayed`)",
    note = "a parameter that borrows (`&T`) is filled from a `&Delayed<T>` only by a \
            `#[delayed]` function: `delay!` passes every argument by value, so mark the \
            function `#[delayed]` and call it directly"
)]
///
/// rdask implements it for those types; its method is the engine's own
/// (hidden, and free to change).
pub trait IntoArg<P> {
    /// The argument, handed by reference to the task when `by_ref`; `clone`
    /// copies a `P` when the consumer knows how.
    #[doc(hidden)]
    fn into_arg(self, by_ref: bool, clone: Option<CloneFn>) -> Arg;
}

/// A plain argument. `consumer_clones`: the parameter's type is `Clone`, so
/// the consumer's adapter copies the constant itself.
fn constant<T: Clone + Send + Sync + 'static>(x: T, by_ref: bool, consumer_clones: bool) -> Arg {
    Arg::constant(Value::new(x), clone_fn_of::<T>(), by_ref, consumer_clones)
}

impl<T: Clone + Send + Sync + 'static> IntoArg<T> for T {
    fn into_arg(self, by_ref: bool, clone: Option<CloneFn>) -> Arg {
        constant(self, by_ref, clone.is_some())
    }
}

impl<T: Clone + Send + Sync + 'static> IntoArg<T> for &T {
    fn into_arg(self, by_ref: bool, clone: Option<CloneFn>) -> Arg {
        constant(self.clone(), by_ref, clone.is_some())
    }
}

impl IntoArg<String> for &str {
    fn into_arg(self, by_ref: bool, clone: Option<CloneFn>) -> Arg {
        constant(self.to_string(), by_ref, clone.is_some())
    }
}

// `Delayed<T>` is itself an argument for a `T` parameter.
impl<T: Send + Sync + 'static> IntoArg<T> for Delayed<T> {
    fn into_arg(self, by_ref: bool, clone: Option<CloneFn>) -> Arg {
        Arg::node(self.node, by_ref, clone)
    }
}

impl<T: Send + Sync + 'static> IntoArg<T> for &Delayed<T> {
    fn into_arg(self, by_ref: bool, clone: Option<CloneFn>) -> Arg {
        self.arg(by_ref, clone)
    }
}

fn list<'a, X: Send + Sync + 'static>(
    items: impl Iterator<Item = &'a Delayed<X>>,
    by_ref: bool,
) -> Arg {
    list_of::<X>(items.map(|d| d.node.clone()).collect(), by_ref)
}

fn list_of<X: Send + Sync + 'static>(items: Box<[NodeRef]>, by_ref: bool) -> Arg {
    Arg::new(
        Src::Nodes {
            items,
            build: typed_list::<X>,
        },
        by_ref,
        None,
    )
}

impl<X: Send + Sync + 'static> IntoArg<Vec<X>> for Vec<Delayed<X>> {
    /// Moves the handles in: no reference counting per element.
    fn into_arg(self, by_ref: bool, _: Option<CloneFn>) -> Arg {
        // Collected in place: `Delayed<X>` is one `NodeRef` wide.
        list_of::<X>(self.into_iter().map(|d| d.node).collect(), by_ref)
    }
}

impl<X: Send + Sync + 'static> IntoArg<Vec<X>> for &Vec<Delayed<X>> {
    fn into_arg(self, by_ref: bool, _: Option<CloneFn>) -> Arg {
        list(self.iter(), by_ref)
    }
}

impl<X: Send + Sync + 'static> IntoArg<Vec<X>> for &[Delayed<X>] {
    fn into_arg(self, by_ref: bool, _: Option<CloneFn>) -> Arg {
        list(self.iter(), by_ref)
    }
}

impl<X: Send + Sync + 'static, const N: usize> IntoArg<Vec<X>> for [Delayed<X>; N] {
    fn into_arg(self, by_ref: bool, _: Option<CloneFn>) -> Arg {
        list(self.iter(), by_ref)
    }
}

// Nested shapes holding `Delayed`s (dask's `traverse`): a `Src::List` of the
// parts, which a typed `build` turns back into the parameter's shape. Such
// an argument makes its node no tree, so it runs on the planned executor;
// the argument kinds above are untouched.

/// The next part of a nested argument, as an `X`.
fn part<X: Send + Sync + 'static>(
    items: &mut dyn ExactSizeIterator<Item = Value>,
) -> Result<X, &'static str> {
    let v = items.next().ok_or("a shorter list of parts")?;
    unwrap_value::<X>(v).map_err(|e| e.found())
}

/// A nested argument: its parts as a list that `build` assembles.
fn nested(items: Box<[Src]>, build: ListFn, by_ref: bool) -> Arg {
    Arg::new(
        Src::List {
            items,
            build: Some(build),
        },
        by_ref,
        None,
    )
}

/// One part of a nested argument: a `Delayed`'s node or a plain value.
fn part_src<P, E: IntoArg<P>>(e: E) -> Src {
    e.into_arg(false, None).src
}

macro_rules! tuple_build {
    ($($name:ident ($($T:ident),+))+) => {$(
        /// Builds a tuple from its parts, in order.
        fn $name<$($T: Send + Sync + 'static),+>(
            items: &mut dyn ExactSizeIterator<Item = Value>,
        ) -> Result<Value, &'static str> {
            Ok(Value::new(($(part::<$T>(items)?,)+)))
        }
    )+};
}
tuple_build! {
    tuple2(A, B)
    tuple3(A, B, C)
    tuple4(A, B, C, D)
}

/// A tuple with at least one `Delayed` element, each element a `Delayed` or
/// a plain value (`$E`, each an `IntoArg` of its `$T`).
macro_rules! tuple_arg {
    ($build:ident [$($T:ident $i:tt),+] ($($E:ty),+)) => {
        impl<$($T: Send + Sync + 'static),+> IntoArg<($($T,)+)> for ($($E,)+)
        where
            $($E: IntoArg<$T>,)+
        {
            fn into_arg(self, by_ref: bool, _: Option<CloneFn>) -> Arg {
                let items = Box::new([$(part_src::<$T, $E>(self.$i)),+]);
                nested(items, $build::<$($T),+>, by_ref)
            }
        }

        impl<$($T: Send + Sync + 'static),+> IntoPureArg<($($T,)+)> for ($($E,)+)
        where
            $($E: IntoPureArg<$T>,)+
        {
            fn token(&self, h: &mut dyn Hasher) {
                $(self.$i.token(h);)+
            }
        }
    };
}
tuple_arg!(tuple2 [A 0, B 1] (Delayed<A>, Delayed<B>));
tuple_arg!(tuple2 [A 0, B 1] (Delayed<A>, B));
tuple_arg!(tuple2 [A 0, B 1] (A, Delayed<B>));
tuple_arg!(tuple3 [A 0, B 1, C 2] (Delayed<A>, Delayed<B>, Delayed<C>));
tuple_arg!(tuple3 [A 0, B 1, C 2] (Delayed<A>, Delayed<B>, C));
tuple_arg!(tuple3 [A 0, B 1, C 2] (Delayed<A>, B, Delayed<C>));
tuple_arg!(tuple3 [A 0, B 1, C 2] (A, Delayed<B>, Delayed<C>));
tuple_arg!(tuple3 [A 0, B 1, C 2] (Delayed<A>, B, C));
tuple_arg!(tuple3 [A 0, B 1, C 2] (A, Delayed<B>, C));
tuple_arg!(tuple3 [A 0, B 1, C 2] (A, B, Delayed<C>));
tuple_arg!(tuple4 [A 0, B 1, C 2, D 3] (Delayed<A>, Delayed<B>, Delayed<C>, Delayed<D>));
tuple_arg!(tuple4 [A 0, B 1, C 2, D 3] (Delayed<A>, Delayed<B>, Delayed<C>, D));
tuple_arg!(tuple4 [A 0, B 1, C 2, D 3] (Delayed<A>, Delayed<B>, C, Delayed<D>));
tuple_arg!(tuple4 [A 0, B 1, C 2, D 3] (Delayed<A>, B, Delayed<C>, Delayed<D>));
tuple_arg!(tuple4 [A 0, B 1, C 2, D 3] (A, Delayed<B>, Delayed<C>, Delayed<D>));
tuple_arg!(tuple4 [A 0, B 1, C 2, D 3] (Delayed<A>, Delayed<B>, C, D));
tuple_arg!(tuple4 [A 0, B 1, C 2, D 3] (Delayed<A>, B, Delayed<C>, D));
tuple_arg!(tuple4 [A 0, B 1, C 2, D 3] (Delayed<A>, B, C, Delayed<D>));
tuple_arg!(tuple4 [A 0, B 1, C 2, D 3] (A, Delayed<B>, Delayed<C>, D));
tuple_arg!(tuple4 [A 0, B 1, C 2, D 3] (A, Delayed<B>, C, Delayed<D>));
tuple_arg!(tuple4 [A 0, B 1, C 2, D 3] (A, B, Delayed<C>, Delayed<D>));
tuple_arg!(tuple4 [A 0, B 1, C 2, D 3] (Delayed<A>, B, C, D));
tuple_arg!(tuple4 [A 0, B 1, C 2, D 3] (A, Delayed<B>, C, D));
tuple_arg!(tuple4 [A 0, B 1, C 2, D 3] (A, B, Delayed<C>, D));
tuple_arg!(tuple4 [A 0, B 1, C 2, D 3] (A, B, C, Delayed<D>));

/// Builds an `Option<T>` from no part (`None`) or one (`Some`).
fn typed_option<T: Send + Sync + 'static>(
    items: &mut dyn ExactSizeIterator<Item = Value>,
) -> Result<Value, &'static str> {
    Ok(Value::new(match items.len() {
        0 => None,
        _ => Some(part::<T>(items)?),
    }))
}

impl<T: Send + Sync + 'static> IntoArg<Option<T>> for Option<Delayed<T>> {
    fn into_arg(self, by_ref: bool, _: Option<CloneFn>) -> Arg {
        let items = self.map(|d| Src::Node(d.node, None)).into_iter().collect();
        nested(items, typed_option::<T>, by_ref)
    }
}

impl<T: Send + Sync + 'static> IntoPureArg<Option<T>> for Option<Delayed<T>> {
    fn token(&self, h: &mut dyn Hasher) {
        self.tokenize(h)
    }
}

impl<T: Send + Sync + 'static> IntoArg<Vec<Vec<T>>> for Vec<Vec<Delayed<T>>> {
    fn into_arg(self, by_ref: bool, _: Option<CloneFn>) -> Arg {
        let items = self
            .into_iter()
            .map(|inner| Src::Nodes {
                items: inner.into_iter().map(|d| d.node).collect(),
                build: typed_list::<T>,
            })
            .collect();
        nested(items, typed_list::<Vec<T>>, by_ref)
    }
}

impl<T: Send + Sync + 'static> IntoPureArg<Vec<Vec<T>>> for Vec<Vec<Delayed<T>>> {
    fn token(&self, h: &mut dyn Hasher) {
        self.tokenize(h)
    }
}

/// Builds a `HashMap` from its parts: each key, then its value.
fn typed_map<K, V, S>(
    items: &mut dyn ExactSizeIterator<Item = Value>,
) -> Result<Value, &'static str>
where
    K: Eq + Hash + Send + Sync + 'static,
    V: Send + Sync + 'static,
    S: BuildHasher + Default + Send + Sync + 'static,
{
    let mut map = HashMap::with_capacity_and_hasher(items.len() / 2, S::default());
    while items.len() > 0 {
        let k = part::<K>(items)?;
        map.insert(k, part::<V>(items)?);
    }
    Ok(Value::new(map))
}

impl<K, V, S> IntoArg<HashMap<K, V, S>> for HashMap<K, Delayed<V>, S>
where
    K: Clone + Eq + Hash + Send + Sync + 'static,
    V: Send + Sync + 'static,
    S: BuildHasher + Default + Send + Sync + 'static,
{
    /// The keys are copied into the graph as constants.
    fn into_arg(self, by_ref: bool, _: Option<CloneFn>) -> Arg {
        let items = self
            .into_iter()
            .flat_map(|(k, d)| {
                let key = Src::Const {
                    value: Value::new(k),
                    clone: clone_fn_of::<K>(),
                };
                [key, Src::Node(d.node, None)]
            })
            .collect();
        nested(items, typed_map::<K, V, S>, by_ref)
    }
}

/// Feeds a value into the hash that names a `#[delayed(pure)]` call. Unlike
/// `Hash`, it covers floats (by their bits). Implement it for your own types
/// to pass them as plain arguments to pure functions.
///
/// `#[derive(Tokenize)]` (`rdask::Tokenize`, also in the prelude) writes such
/// an impl for structs and enums; `#[tokenize(skip)]` leaves a field out.
///
/// ```
/// use rdask::prelude::*;
/// use std::hash::Hasher;
///
/// #[derive(Clone)]
/// struct Params { alpha: f64, folds: u32 }
///
/// impl rdask::Tokenize for Params {
///     fn tokenize(&self, h: &mut dyn Hasher) {
///         self.alpha.tokenize(h);
///         self.folds.tokenize(h);
///     }
/// }
///
/// #[delayed(pure)]
/// fn score(p: Params) -> f64 {
///     p.alpha * f64::from(p.folds)
/// }
///
/// let p = Params { alpha: 0.5, folds: 4 };
/// // Equal inputs, one key: computed once.
/// assert_eq!(score(p.clone()).key(), score(p).key());
/// ```
pub trait Tokenize {
    /// Writes the value's content into `h`.
    fn tokenize(&self, h: &mut dyn Hasher);
}

macro_rules! tokenize_num {
    ($($t:ty),*) => {$(
        impl Tokenize for $t {
            fn tokenize(&self, h: &mut dyn Hasher) {
                h.write(&self.to_le_bytes());
            }
        }
    )*};
}
tokenize_num!(i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128, usize);

impl Tokenize for f32 {
    fn tokenize(&self, h: &mut dyn Hasher) {
        h.write_u32(self.to_bits());
    }
}

impl Tokenize for f64 {
    fn tokenize(&self, h: &mut dyn Hasher) {
        h.write_u64(self.to_bits());
    }
}

impl Tokenize for bool {
    fn tokenize(&self, h: &mut dyn Hasher) {
        h.write_u8(*self as u8);
    }
}

impl Tokenize for char {
    fn tokenize(&self, h: &mut dyn Hasher) {
        h.write_u32(*self as u32);
    }
}

impl Tokenize for () {
    fn tokenize(&self, _: &mut dyn Hasher) {}
}

impl Tokenize for str {
    fn tokenize(&self, h: &mut dyn Hasher) {
        h.write_usize(self.len());
        h.write(self.as_bytes());
    }
}

impl Tokenize for String {
    fn tokenize(&self, h: &mut dyn Hasher) {
        self.as_str().tokenize(h)
    }
}

impl<T: Tokenize + ?Sized> Tokenize for &T {
    fn tokenize(&self, h: &mut dyn Hasher) {
        (**self).tokenize(h)
    }
}

impl<T: Tokenize> Tokenize for [T] {
    fn tokenize(&self, h: &mut dyn Hasher) {
        h.write_usize(self.len());
        for x in self {
            x.tokenize(h);
        }
    }
}

impl<T: Tokenize> Tokenize for Vec<T> {
    fn tokenize(&self, h: &mut dyn Hasher) {
        self.as_slice().tokenize(h)
    }
}

impl<T: Tokenize, const N: usize> Tokenize for [T; N] {
    fn tokenize(&self, h: &mut dyn Hasher) {
        self.as_slice().tokenize(h)
    }
}

impl<T: Tokenize> Tokenize for Option<T> {
    fn tokenize(&self, h: &mut dyn Hasher) {
        match self {
            None => h.write_u8(0),
            Some(x) => {
                h.write_u8(1);
                x.tokenize(h)
            }
        }
    }
}

impl Tokenize for Key {
    fn tokenize(&self, h: &mut dyn Hasher) {
        self.to_string().tokenize(h)
    }
}

impl<T> Tokenize for Delayed<T> {
    fn tokenize(&self, h: &mut dyn Hasher) {
        h.write_u8(0xde);
        self.key().tokenize(h)
    }
}

macro_rules! tokenize_tuple {
    ($(($($T:ident $i:tt),+))+) => {$(
        impl<$($T: Tokenize),+> Tokenize for ($($T,)+) {
            fn tokenize(&self, h: &mut dyn Hasher) {
                $(self.$i.tokenize(h);)+
            }
        }
    )+};
}
tokenize_tuple! {
    (A 0)
    (A 0, B 1)
    (A 0, B 1, C 2)
    (A 0, B 1, C 2, D 3)
    (A 0, B 1, C 2, D 3, E 4)
    (A 0, B 1, C 2, D 3, E 4, F 5)
}

/// An argument of a `#[delayed(pure)]` call: an [`IntoArg`] whose content
/// can be hashed into the call's key.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be passed to a pure function for a parameter of type `{P}`",
    note = "plain arguments of `#[delayed(pure)]` functions must implement `rdask::Tokenize` so \
            that they can name the call"
)]
pub trait IntoPureArg<P>: IntoArg<P> {
    /// Writes the argument's identity: a plain value's content or a
    /// `Delayed`'s key.
    fn token(&self, h: &mut dyn Hasher);
}

impl<T: Tokenize + Clone + Send + Sync + 'static> IntoPureArg<T> for T {
    fn token(&self, h: &mut dyn Hasher) {
        self.tokenize(h)
    }
}

impl<T: Tokenize + Clone + Send + Sync + 'static> IntoPureArg<T> for &T {
    fn token(&self, h: &mut dyn Hasher) {
        (**self).tokenize(h)
    }
}

impl IntoPureArg<String> for &str {
    fn token(&self, h: &mut dyn Hasher) {
        self.tokenize(h)
    }
}

impl<T: Send + Sync + 'static> IntoPureArg<T> for Delayed<T> {
    fn token(&self, h: &mut dyn Hasher) {
        self.tokenize(h)
    }
}

impl<T: Send + Sync + 'static> IntoPureArg<T> for &Delayed<T> {
    fn token(&self, h: &mut dyn Hasher) {
        (**self).tokenize(h)
    }
}

impl<X: Send + Sync + 'static> IntoPureArg<Vec<X>> for Vec<Delayed<X>> {
    fn token(&self, h: &mut dyn Hasher) {
        self.as_slice().tokenize(h)
    }
}

impl<X: Send + Sync + 'static> IntoPureArg<Vec<X>> for &Vec<Delayed<X>> {
    fn token(&self, h: &mut dyn Hasher) {
        self.as_slice().tokenize(h)
    }
}

impl<X: Send + Sync + 'static> IntoPureArg<Vec<X>> for &[Delayed<X>] {
    fn token(&self, h: &mut dyn Hasher) {
        (**self).tokenize(h)
    }
}

impl<X: Send + Sync + 'static, const N: usize> IntoPureArg<Vec<X>> for [Delayed<X>; N] {
    fn token(&self, h: &mut dyn Hasher) {
        self.as_slice().tokenize(h)
    }
}
