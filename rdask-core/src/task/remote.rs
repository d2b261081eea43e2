//! Functions that can run in a worker process: found by name, with their
//! arguments and result encoded with serde (postcard).
//!
//! `#[delayed]` writes, for each non-generic function, a unit type that
//! implements [`Apply`] (call the function on a tuple of owned arguments)
//! and registers a [`RemoteEntry`] under `module_path!()::name@line:column`. Whether the
//! function can actually go remote is decided at compile time by
//! [`RemoteProbe`] (autoref specialisation): only when every parameter and
//! the result are `Serialize + DeserializeOwned`. Everything else runs in the
//! parent.

use super::Args;
use crate::error::BoxError;
use crate::value::{Codec, Encoded, EncodedList, Value};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Arc, OnceLock};

/// A `#[delayed]` function seen as "owned argument tuple in, result out".
pub trait Apply: 'static {
    /// The stored parameter types, as a tuple.
    type Params: 'static;
    /// The value type. (No `Send + Sync` bound here: the function's own
    /// checks report a type that lacks them, once.)
    type Out: 'static;
    /// Runs the function; `Err` is the task's own error.
    fn apply(params: Self::Params) -> Result<Self::Out, BoxError>;
}

/// Tuples of parameters that can be encoded from a running task's arguments.
pub trait ParamTuple: Sized {
    /// Encodes the task's arguments, read in place (no copy).
    fn encode(args: &Args<'_>) -> Result<Encoding, BoxError>;
}

/// A task's arguments in wire form: bytes encoded here, and values that
/// other workers sent, forwarded as their own bytes (shared, not copied).
/// postcard writes a tuple as its elements one after another, so the parts
/// in order are the encoded argument tuple.
#[derive(Default)]
pub struct Encoding {
    parts: Vec<Part>,
}

/// One part of an [`Encoding`], as a cluster sees it.
pub(crate) enum Piece<'a> {
    /// Bytes to send.
    Bytes(&'a [u8]),
    /// Bytes already held where the task runs, by this name.
    Named(&'a str),
}

enum Part {
    Here(Vec<u8>),
    Forward(Arc<Encoded>),
}

impl Encoding {
    /// The parts' bytes, in order (bytes held elsewhere are fetched).
    pub(crate) fn slices(&self) -> Result<Vec<&[u8]>, crate::error::Error> {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Here(b) => Ok(&b[..]),
                Part::Forward(e) => e.bytes(),
            })
            .collect()
    }

    /// Where the forwarded value at `addr` (see `Value::addr`) starts in
    /// the parts' bytes, when it is one of them.
    pub(crate) fn offset_of(&self, addr: *const ()) -> Option<usize> {
        let mut offset = 0;
        for p in &self.parts {
            match p {
                Part::Forward(e) if std::ptr::eq(Arc::as_ptr(e) as *const (), addr) => {
                    return Some(offset)
                }
                Part::Forward(e) => offset += e.bytes().ok()?.len(),
                Part::Here(b) => offset += b.len(),
            }
        }
        None
    }

    /// The parts, in order: bytes, or the name of bytes held elsewhere.
    pub(crate) fn pieces(&self) -> impl Iterator<Item = Piece<'_>> {
        self.parts.iter().map(|p| match p {
            Part::Here(b) => Piece::Bytes(b),
            Part::Forward(e) => match e.held_as() {
                Some(name) => Piece::Named(name),
                None => Piece::Bytes(e.bytes().unwrap_or_default()),
            },
        })
    }

    /// Appends argument `i`: forwarded if another worker sent it, else
    /// encoded here.
    fn push<P: Serialize + Send + Sync + 'static>(
        &mut self,
        args: &Args<'_>,
        i: usize,
    ) -> Result<(), BoxError> {
        if let Some(e) = args.value(i).and_then(Encoded::shared::<P>) {
            self.parts.push(Part::Forward(e));
            return Ok(());
        }
        if let Some(list) = args.value(i).and_then(|v| v.plain::<EncodedList>()) {
            // A `Vec` from elements made elsewhere: its length, then theirs.
            let items = list
                .items_as(std::any::TypeId::of::<P>())
                .ok_or("a list of values from workers met a parameter of another type")?;
            self.parts
                .push(Part::Here(postcard::to_allocvec(&items.len())?));
            self.parts
                .extend(items.iter().map(|e| Part::Forward(e.clone())));
            return Ok(());
        }
        let bytes = postcard::to_allocvec(args.get::<P>(i)?)?;
        self.parts.push(Part::Here(bytes));
        Ok(())
    }
}

macro_rules! param_tuples {
    ($(($($P:ident $i:tt),*))+) => {$(
        impl<$($P: Serialize + Send + Sync + 'static),*> ParamTuple for ($($P,)*) {
            #[allow(unused_variables)]
            fn encode(args: &Args<'_>) -> Result<Encoding, BoxError> {
                #[allow(unused_mut)]
                let mut out = Encoding::default();
                $(out.push::<$P>(args, $i)?;)*
                Ok(out)
            }
        }
    )+};
}

param_tuples! {
    ()
    (A 0)
    (A 0, B 1)
    (A 0, B 1, C 2)
    (A 0, B 1, C 2, D 3)
    (A 0, B 1, C 2, D 3, E 4)
    (A 0, B 1, C 2, D 3, E 4, F 5)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11)
}

/// Why a remote call failed inside the worker.
#[derive(Debug)]
pub enum Failure {
    /// The task returned `Err` (its message).
    Task(String),
    /// The task panicked, or the user's `Deserialize` of its arguments or
    /// `Serialize` of its result did (the message).
    Panic(String),
    /// The arguments could not be decoded.
    Decode(String),
    /// The result could not be encoded (its `Serialize` failed).
    Encode(String),
}

/// The three halves of a remote call.
#[derive(Clone, Copy)]
pub struct RemoteFns {
    /// Parent: encode the arguments.
    pub encode: fn(&Args<'_>) -> Result<Encoding, BoxError>,
    /// Worker: decode the arguments, run, encode the result.
    pub run: fn(&[u8]) -> Result<Vec<u8>, Failure>,
    /// Parent: the result's type and decoder (when a task here or an
    /// output needs it).
    pub out: Codec,
    /// Parent: encodes a result made here (to keep it in a cache).
    pub encode_out: fn(&Value) -> Result<Vec<u8>, BoxError>,
    /// The result's type name (what a cache entry is checked against).
    pub out_name: fn() -> &'static str,
}

fn run<F: Apply>(bytes: &[u8]) -> Result<Vec<u8>, Failure>
where
    F::Params: DeserializeOwned,
    F::Out: Serialize,
{
    // Decoding and encoding run the user's `Deserialize` and `Serialize`:
    // under the guard with the task (a panic out of here would end the
    // worker, and the task would run again, reported as a lost worker).
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let params: F::Params =
            postcard::from_bytes(bytes).map_err(|e| Failure::Decode(e.to_string()))?;
        let out = F::apply(params).map_err(|e| Failure::Task(e.to_string()))?;
        postcard::to_allocvec(&out).map_err(|e| Failure::Encode(e.to_string()))
    }))
    .map_err(|p| Failure::Panic(crate::error::panic_message(&*p)))?
}

fn decode<F: Apply>(bytes: &[u8]) -> Result<Value, BoxError>
where
    F::Out: DeserializeOwned + Send + Sync,
{
    let out: F::Out = postcard::from_bytes(bytes)?;
    Ok(Value::new(out))
}

fn encode_out<F: Apply>(v: &Value) -> Result<Vec<u8>, BoxError>
where
    F::Out: Serialize + Send + Sync,
{
    if let Some(e) = Encoded::shared::<F::Out>(v) {
        return Ok(e.bytes()?.to_vec());
    }
    let out = crate::value::downcast_ref::<F::Out>(v).ok_or("a result of another type")?;
    Ok(postcard::to_allocvec(out)?)
}

/// Finds out at compile time whether `F` can run remotely:
/// `(&&RemoteProbe::<F>::new()).remote_fns()`.
pub struct RemoteProbe<F>(PhantomData<fn() -> F>);

impl<F> RemoteProbe<F> {
    /// The probe for `F`.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        RemoteProbe(PhantomData)
    }
}

/// The serde arm of [`RemoteProbe`].
pub trait ProbeRemote {
    /// `F`'s remote halves.
    fn remote_fns(&self) -> Option<RemoteFns>;
}

/// The fallback arm of [`RemoteProbe`].
pub trait ProbeLocal {
    /// None: `F` runs in the calling process.
    fn remote_fns(&self) -> Option<RemoteFns>;
}

impl<F: Apply> ProbeRemote for &RemoteProbe<F>
where
    F::Params: ParamTuple + Serialize + DeserializeOwned,
    F::Out: Serialize + DeserializeOwned + Send + Sync,
{
    fn remote_fns(&self) -> Option<RemoteFns> {
        Some(remote_fns::<F>())
    }
}

impl<F> ProbeLocal for RemoteProbe<F> {
    fn remote_fns(&self) -> Option<RemoteFns> {
        None
    }
}

/// The remote functions of `F`; a compile error unless it is serde
/// (`#[delayed(remote)]`).
pub fn remote_fns<F: Apply>() -> RemoteFns
where
    F::Params: ParamTuple + Serialize + DeserializeOwned,
    F::Out: Serialize + DeserializeOwned + Send + Sync,
{
    RemoteFns {
        encode: <F::Params as ParamTuple>::encode,
        run: run::<F>,
        out: Codec::of::<F::Out>(decode::<F>),
        encode_out: encode_out::<F>,
        out_name: std::any::type_name::<F::Out>,
    }
}

/// A registered function: its stable name and how to get its remote halves.
pub struct RemoteEntry {
    /// `module_path!()::name@line:column`: the same in every copy of one binary.
    pub path: &'static str,
    /// `None` when its types are not serde.
    pub fns: fn() -> Option<RemoteFns>,
}

inventory::collect!(RemoteEntry);

/// Every registered remote function, by name.
pub(crate) fn registry() -> &'static HashMap<&'static str, RemoteFns> {
    static REGISTRY: OnceLock<HashMap<&'static str, RemoteFns>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        inventory::iter::<RemoteEntry>
            .into_iter()
            .filter_map(|e| (e.fns)().map(|f| (e.path, f)))
            .collect()
    })
}
