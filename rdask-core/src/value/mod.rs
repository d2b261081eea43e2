//! Type-erased values: what flows between tasks.
//!
//! Inside the engine every value is a [`Value`]: a shared `Arc<dyn Val>`, or,
//! for the small primitive types (integers, floats, `bool`, `char`, `()`),
//! the value itself, inline. Sharing an `Arc` lets `&T` consumers on several
//! threads read one value without copying it; the last by-value consumer
//! unwraps it (a move, no clone). A primitive costs no allocation at all:
//! most tasks of fine-grained graphs return one, and a `malloc` and a `free`
//! per task were up to a third of such a graph's instructions. Types come
//! back at the edges: a task's adapter downcasts its arguments, `compute` its
//! outputs, and a mismatch (only possible with raw graphs) is an
//! [`ErrorKind::Type`](crate::ErrorKind::Type) error naming both types.

use crate::error::{BoxError, Error};
use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Arc, OnceLock, RwLock};

/// A value inside the engine: cheap to share (`clone` is a reference count
/// or, for an inline primitive, a copy of one word).
#[derive(Clone)]
pub struct Value(Repr);

#[derive(Clone)]
enum Repr {
    Shared(Arc<dyn Val>),
    /// A primitive's bytes, at the start of `bits` (read back through a
    /// pointer to `bits`, so byte order does not matter).
    Small {
        kind: &'static SmallKind,
        bits: u64,
    },
}

/// The type of an inline primitive.
struct SmallKind {
    id: fn() -> TypeId,
    name: fn() -> &'static str,
}

macro_rules! small_kinds {
    ($($t:ty),*) => {
        /// The kind of `T` when it is one of the primitives stored inline:
        /// `Copy`, no bigger or more aligned than a `u64`, no drop, no
        /// interior mutability, so copying its bytes is copying it.
        #[inline(always)]
        fn small_kind<T: 'static>() -> Option<&'static SmallKind> {
            if std::mem::size_of::<T>() > 8 || std::mem::needs_drop::<T>() {
                return None;
            }
            $(
                if TypeId::of::<T>() == TypeId::of::<$t>() {
                    static KIND: SmallKind = SmallKind {
                        id: TypeId::of::<$t>,
                        name: std::any::type_name::<$t>,
                    };
                    return Some(&KIND);
                }
            )*
            None
        }
    };
}

small_kinds!(
    u8,
    u16,
    u32,
    u64,
    usize,
    i8,
    i16,
    i32,
    i64,
    isize,
    f32,
    f64,
    bool,
    char,
    ()
);

impl Value {
    /// A value holding `x`.
    #[inline]
    pub fn new<T: Any + Send + Sync>(x: T) -> Value {
        match small_kind::<T>() {
            Some(kind) => {
                let mut bits = 0u64;
                // SAFETY: `T` is a primitive of at most 8 bytes (checked by
                // `small_kind`), `Copy`, so its bytes are the value; `bits`
                // is aligned for any of them.
                unsafe { std::ptr::write(&mut bits as *mut u64 as *mut T, x) };
                Value(Repr::Small { kind, bits })
            }
            None => Value(Repr::Shared(Arc::new(x))),
        }
    }

    /// `std::any::type_name` of the value's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match &self.0 {
            Repr::Shared(v) => (**v).type_name(),
            Repr::Small { kind, .. } => (kind.name)(),
        }
    }

    /// The `TypeId` of the value's type.
    pub(crate) fn type_id(&self) -> TypeId {
        match &self.0 {
            Repr::Shared(v) => {
                let any: &dyn Any = &**v;
                any.type_id()
            }
            Repr::Small { kind, .. } => (kind.id)(),
        }
    }

    /// `size_of` the value's type.
    pub(crate) fn shallow_size(&self) -> usize {
        match &self.0 {
            Repr::Shared(v) => (**v).shallow_size(),
            Repr::Small { .. } => std::mem::size_of::<u64>(),
        }
    }

    /// Whether this is the only reference to the value (an inline
    /// primitive always is), so that it can be moved out.
    #[inline]
    pub(crate) fn is_unique(&mut self) -> bool {
        match &mut self.0 {
            Repr::Shared(v) => Arc::get_mut(v).is_some(),
            Repr::Small { .. } => true,
        }
    }

    /// Where the shared value lives (`None`: an inline primitive): tells
    /// one value from its copies.
    pub(crate) fn addr(&self) -> Option<*const ()> {
        match &self.0 {
            Repr::Shared(v) => Some(Arc::as_ptr(v) as *const ()),
            Repr::Small { .. } => None,
        }
    }

    /// Whether the value is an inline primitive (copied, never shared).
    #[inline]
    pub(crate) fn is_inline(&self) -> bool {
        matches!(self.0, Repr::Small { .. })
    }

    /// The value as a `T` in place (no decoding of an [`Encoded`] `T`).
    #[inline]
    pub(crate) fn plain<T: Any>(&self) -> Option<&T> {
        match &self.0 {
            Repr::Shared(v) => {
                let any: &dyn Any = &**v;
                any.downcast_ref::<T>()
            }
            Repr::Small { .. } => self.inline_ref::<T>(),
        }
    }

    /// The `T` when this is an inline primitive of type `T`.
    #[inline(always)]
    pub(crate) fn inline_ref<T: Any>(&self) -> Option<&T> {
        match &self.0 {
            Repr::Small { kind, bits } => {
                // One static kind per primitive (statics in generic code are
                // not copied per instance), so comparing addresses compares
                // types, against a constant per `T`.
                let is_t = small_kind::<T>().is_some_and(|k| std::ptr::eq(k, *kind));
                // SAFETY: the kind says the bytes are a `T` (see `new`).
                is_t.then(|| unsafe { &*(bits as *const u64 as *const T) })
            }
            Repr::Shared(_) => None,
        }
    }

    /// The shared box of a `T` (never an inline primitive).
    fn shared<T: Any + Send + Sync>(self) -> Result<Arc<T>, Value> {
        match self.0 {
            Repr::Shared(v) if self_is::<T>(&v) => {
                let any: Arc<dyn Any + Send + Sync> = v;
                Ok(any.downcast::<T>().expect("the type was just checked"))
            }
            repr => Err(Value(repr)),
        }
    }

    /// Moves a plain `T` out, copying it when the value is shared; gives the
    /// value back when it holds another type.
    #[inline]
    pub(crate) fn unwrap_or_clone<T: Clone + Any + Send + Sync>(self) -> Result<T, Value> {
        if let Repr::Small { .. } = self.0 {
            return match self.plain::<T>() {
                Some(t) => Ok(t.clone()),
                None => Err(self),
            };
        }
        self.shared::<T>().map(Arc::unwrap_or_clone)
    }
}

fn self_is<T: Any>(v: &Arc<dyn Val>) -> bool {
    let any: &dyn Any = &**v;
    any.is::<T>()
}

/// Copies a value of a known concrete type; `None` where the type is not
/// `Clone` (decided when the graph is built, see [`CloneProbe`]).
pub type CloneFn = fn(&Value) -> Option<Value>;

/// Every value the engine carries: `Any` plus the few operations that must
/// be monomorphised for the value's own type.
pub trait Val: Any + Send + Sync {
    /// `std::any::type_name` of the concrete type, for error messages.
    fn type_name(&self) -> &'static str;
    /// `size_of` the concrete type (what it owns elsewhere not counted).
    fn shallow_size(&self) -> usize;
}

impl<T: Any + Send + Sync> Val for T {
    fn type_name(&self) -> &'static str {
        std::any::type_name::<T>()
    }
    fn shallow_size(&self) -> usize {
        std::mem::size_of::<T>()
    }
}

/// A raw graph's `[..]` list before it meets its parameter: the element type
/// is only known once a task asks for a `Vec<X>`.
pub struct DynList(pub Vec<Value>);

/// Builds a `Vec<X>` value from list elements as they are taken (no
/// intermediate list of boxed values), or names the wrong type found.
pub type ListFn = fn(&mut dyn ExactSizeIterator<Item = Value>) -> Result<Value, &'static str>;

/// The list builders for `Vec<T>` to `Vec<Vec<Vec<Vec<T>>>>` (lists nested
/// up to [`LIST_DEPTH`] deep), by `TypeId` of the `Vec`, for every `T` that
/// a raw graph produces. Filled while graphs are built (not per task), read
/// when a task's `Vec` parameter meets a list.
static LISTS: RwLock<Option<HashMap<TypeId, ListFn>>> = RwLock::new(None);

/// How deep raw-graph lists may nest and still become a parameter.
pub(crate) const LIST_DEPTH: usize = 4;

/// Lets raw-graph lists of `T`, nested up to four deep (`LIST_DEPTH`), become
/// `Vec<T>`, `Vec<Vec<T>>`, ... parameters.
pub fn register_lists<T: Send + Sync + 'static>() {
    // (Also the place raw graphs record their value types' copy functions:
    // see `register_clone`, called next to this.)
    let id = TypeId::of::<Vec<T>>();
    let known = LISTS
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .is_some_and(|m| m.contains_key(&id));
    if !known {
        let mut map = LISTS.write().unwrap_or_else(|e| e.into_inner());
        let map = map.get_or_insert_with(HashMap::new);
        map.insert(id, typed_list::<T>);
        map.insert(TypeId::of::<Vec<Vec<T>>>(), typed_list::<Vec<T>>);
        map.insert(TypeId::of::<Vec<Vec<Vec<T>>>>(), typed_list::<Vec<Vec<T>>>);
        map.insert(
            TypeId::of::<Vec<Vec<Vec<Vec<T>>>>>(),
            typed_list::<Vec<Vec<Vec<T>>>>,
        );
    }
}

/// Builds a `Vec<X>` from list elements, each an `X` or a nested list.
pub fn typed_list<X: Send + Sync + 'static>(
    items: &mut dyn ExactSizeIterator<Item = Value>,
) -> Result<Value, &'static str> {
    let mut out: Vec<X> = Vec::with_capacity(items.len());
    for item in items {
        out.push(unwrap_value::<X>(item).map_err(|e| e.found())?);
    }
    Ok(Value::new(out))
}

/// A value a worker process produced, still in its wire form.
///
/// The processes scheduler keeps a worker's result encoded: a task in
/// another worker gets the same bytes forwarded (no decode and re-encode in
/// this process), and only a task that runs here, or an output, decodes it,
/// once. On a cluster the bytes stay where they were made ([`Fetch`]) until
/// this process needs them. [`unwrap_value`] and [`downcast_ref`] see
/// through it, so the rest of the engine treats it as the `T` it encodes.
pub struct Encoded {
    bytes: Bytes,
    codec: Codec,
    /// The decoded value, for borrowers (`&T`) and copies.
    decoded: OnceLock<Result<Value, Unreadable>>,
}

enum Bytes {
    Here(Vec<u8>),
    /// Held elsewhere (a cluster's worker), fetched on first read.
    There(Arc<dyn Fetch>),
}

/// What an [`Encoded`] value is: its type, the type of a `Vec` of it (a
/// list of encoded values is encoded as that), and its decoder.
#[derive(Clone, Copy)]
pub struct Codec {
    type_id: TypeId,
    vec_type: TypeId,
    name: fn() -> &'static str,
    decode: fn(&[u8]) -> Result<Value, BoxError>,
}

impl Codec {
    /// The codec of `T`, decoded by `decode`.
    pub fn of<T: Any>(decode: fn(&[u8]) -> Result<Value, BoxError>) -> Codec {
        Codec {
            type_id: TypeId::of::<T>(),
            vec_type: TypeId::of::<Vec<T>>(),
            name: std::any::type_name::<T>,
            decode,
        }
    }

    /// Decodes `bytes`.
    pub fn decode(&self, bytes: &[u8]) -> Result<Value, BoxError> {
        (self.decode)(bytes)
    }
}

/// A list argument for a task that runs elsewhere, each element still
/// encoded: a `Vec<T>` is encoded as its length and then its elements, so
/// the list goes out as the elements' own bytes (or names), never decoded
/// here.
pub struct EncodedList {
    items: Vec<Arc<Encoded>>,
}

impl EncodedList {
    /// The list of `items` when each is an encoded value of one type.
    pub(crate) fn of(items: Vec<Value>) -> Result<Value, Vec<Value>> {
        let first = match items.first().and_then(|v| v.plain::<Encoded>()) {
            Some(e) => e.codec.type_id,
            None => return Err(items),
        };
        if !items.iter().all(|v| {
            v.plain::<Encoded>()
                .is_some_and(|e| e.codec.type_id == first)
        }) {
            return Err(items);
        }
        let items = items
            .into_iter()
            .map(|v| v.shared::<Encoded>().ok())
            .collect::<Option<Vec<_>>>();
        match items {
            Some(items) => Ok(Value::new(EncodedList { items })),
            None => unreachable!("checked: every item is an encoded value"),
        }
    }

    /// The elements, when this is a `Vec<T>` of the encoded `T`s (`vec`:
    /// the `TypeId` of the `Vec` wanted).
    pub(crate) fn items_as(&self, vec: TypeId) -> Option<&[Arc<Encoded>]> {
        (self.items[0].codec.vec_type == vec).then_some(&self.items[..])
    }
}

/// Bytes held outside this process under a name (a Dask cluster's key):
/// read once, when a task here or an output needs them, and let go of when
/// the last value naming them is dropped (the implementor's `Drop`).
pub trait Fetch: Send + Sync {
    /// The bytes: waits for them. `Err`: the failure of the task that was
    /// to make them (or why they are lost), as the computation reports it.
    fn fetch(&self) -> Result<&[u8], Error>;
    /// The name they are held under there.
    fn name(&self) -> &str;
    /// Asks for the bytes now, without waiting (a read soon will not wait
    /// as long).
    fn prefetch(&self) {}
}

/// Waits for `v`'s bytes if they are held elsewhere: `Err` is the failure
/// of the task that was to make them.
pub(crate) fn fetch(v: &Value) -> Result<(), Error> {
    match v.plain::<Encoded>() {
        Some(e) => e.bytes().map(|_| ()),
        None => Ok(()),
    }
}

/// The name `v`'s bytes are held under elsewhere, if they are.
pub(crate) fn held_as(v: &Value) -> Option<&str> {
    v.plain::<Encoded>().and_then(Encoded::held_as)
}

/// Asks for `v`'s bytes if they are held elsewhere, without waiting.
pub(crate) fn prefetch(v: &Value) {
    if let Some(Encoded {
        bytes: Bytes::There(at),
        ..
    }) = v.plain::<Encoded>()
    {
        at.prefetch();
    }
}

/// Why an encoded value cannot be read as its type.
pub enum Unreadable {
    /// Its bytes do not decode (the reason).
    Decode(String),
    /// Its bytes never came: the producing task's error.
    Failed(Error),
}

impl Unreadable {
    /// The error for task or output `key`, where `what` needed an
    /// `expected`: a decode error names them; a failure is its own error.
    pub(crate) fn into_error(self, key: &crate::key::Key, what: &str, expected: &str) -> Error {
        match self {
            Unreadable::Decode(why) => Error::undecodable(key, what, expected, &why),
            Unreadable::Failed(e) => e,
        }
    }

    fn again(&self) -> Unreadable {
        match self {
            Unreadable::Decode(why) => Unreadable::Decode(why.clone()),
            Unreadable::Failed(e) => Unreadable::Failed(e.duplicate()),
        }
    }
}

impl Encoded {
    /// A value of `codec`'s type, encoded as `bytes`.
    pub(crate) fn new(bytes: Vec<u8>, codec: Codec) -> Encoded {
        Encoded::with(Bytes::Here(bytes), codec)
    }

    /// A value of `codec`'s type whose bytes are held elsewhere.
    pub(crate) fn there(at: Arc<dyn Fetch>, codec: Codec) -> Encoded {
        Encoded::with(Bytes::There(at), codec)
    }

    fn with(bytes: Bytes, codec: Codec) -> Encoded {
        Encoded {
            bytes,
            codec,
            decoded: OnceLock::new(),
        }
    }

    fn of<T: Any>(v: &Value) -> Option<&Encoded> {
        v.plain::<Encoded>()
            .filter(|e| e.codec.type_id == TypeId::of::<T>())
    }

    /// `v` itself, shared, when it is an encoded `T`.
    pub(crate) fn shared<T: Any>(v: &Value) -> Option<Arc<Encoded>> {
        Encoded::of::<T>(v)?;
        v.clone().shared::<Encoded>().ok()
    }

    /// The wire form (fetched first if it is held elsewhere).
    pub(crate) fn bytes(&self) -> Result<&[u8], Error> {
        match &self.bytes {
            Bytes::Here(b) => Ok(b),
            Bytes::There(at) => at.fetch(),
        }
    }

    /// The name of the bytes where they are held, when they are not here.
    pub(crate) fn held_as(&self) -> Option<&str> {
        match &self.bytes {
            Bytes::Here(_) => None,
            Bytes::There(at) => Some(at.name()),
        }
    }

    /// A copy of `v` that stays encoded, when it is encoded (bytes held
    /// elsewhere are shared, not fetched).
    pub(crate) fn copy(v: &Value) -> Option<Value> {
        v.plain::<Encoded>().map(|e| {
            let bytes = match &e.bytes {
                Bytes::Here(b) => Bytes::Here(b.clone()),
                Bytes::There(at) => Bytes::There(at.clone()),
            };
            Value::new(Encoded::with(bytes, e.codec))
        })
    }

    fn decode_now(&self) -> Result<Value, Unreadable> {
        let bytes = self.bytes().map_err(Unreadable::Failed)?;
        self.codec
            .decode(bytes)
            .map_err(|e| Unreadable::Decode(e.to_string()))
    }

    /// What `v` is when it is encoded: the name of the type it encodes, and
    /// then its decoded value if something decoded it already, else the
    /// length of its bytes if they are here.
    pub(crate) fn describe(v: &Value) -> Option<(&'static str, Result<&Value, Option<usize>>)> {
        let e = v.plain::<Encoded>()?;
        let state = match (e.decoded.get(), &e.bytes) {
            (Some(Ok(d)), _) => Ok(d),
            (_, Bytes::Here(b)) => Err(Some(b.len())),
            (_, Bytes::There(_)) => Err(None),
        };
        Some(((e.codec.name)(), state))
    }

    /// The decoded value, decoded on first use.
    fn view(&self) -> Result<&Value, &Unreadable> {
        self.decoded.get_or_init(|| self.decode_now()).as_ref()
    }

    /// The decoded value, taking it (or decoding it) when this is the only
    /// reference.
    fn into_value(mut self) -> Result<Value, Unreadable> {
        match self.decoded.take() {
            Some(decoded) => decoded,
            None => self.decode_now(),
        }
    }
}

/// Why a value could not be moved out as a `T`.
pub enum Unwrap {
    /// It holds another type (named).
    WrongType(&'static str),
    /// It is the right type but still shared: here it is back.
    Shared(Value),
    /// A worker process sent it, and it does not decode, or it never came.
    Undecodable(Unreadable),
}

impl Unwrap {
    /// The type that was found, for messages.
    pub fn found(&self) -> &'static str {
        match self {
            Unwrap::WrongType(t) => t,
            Unwrap::Shared(v) => v.type_name(),
            Unwrap::Undecodable(_) => "a value from a worker process that does not decode",
        }
    }
}

/// Moves a `T` out of a value; a raw [`DynList`] becomes a `Vec` here, and
/// an [`Encoded`] `T` is decoded.
#[inline]
pub fn unwrap_value<T: Any + Send + Sync>(v: Value) -> Result<T, Unwrap> {
    match v.0 {
        Repr::Small { .. } => match v.plain::<T>() {
            // SAFETY: an inline value is a `Copy` primitive, so reading it
            // out of `v` (which is then forgotten) moves it.
            Some(t) => Ok(unsafe { std::ptr::read(t) }),
            None => Err(Unwrap::WrongType(v.type_name())),
        },
        Repr::Shared(v) => unwrap_shared(v),
    }
}

/// [`unwrap_value`] of a value behind an `Arc` (out of line: the inline
/// primitive above is the hot case).
#[inline(never)]
fn unwrap_shared<T: Any + Send + Sync>(v: Arc<dyn Val>) -> Result<T, Unwrap> {
    let found = (*v).type_name();
    let any: Arc<dyn Any + Send + Sync> = v;
    let any = match any.downcast::<T>() {
        Ok(arc) => {
            return Arc::try_unwrap(arc).map_err(|arc| Unwrap::Shared(Value(Repr::Shared(arc))))
        }
        Err(any) => any,
    };
    let any = match any.downcast::<Encoded>() {
        Ok(enc) if enc.codec.type_id == TypeId::of::<T>() => {
            return match Arc::try_unwrap(enc) {
                Ok(enc) => unwrap_value::<T>(enc.into_value().map_err(Unwrap::Undecodable)?),
                Err(shared) => Err(Unwrap::Shared(Value(Repr::Shared(shared)))),
            };
        }
        Ok(_) => return Err(Unwrap::WrongType(found)),
        Err(any) => any,
    };
    match any.downcast::<DynList>() {
        Ok(list) => {
            let build = LISTS
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .as_ref()
                .and_then(|m| m.get(&TypeId::of::<T>()).copied())
                .ok_or(Unwrap::WrongType("a list"))?;
            let items = Arc::try_unwrap(list).map_err(|_| Unwrap::WrongType("a shared list"))?;
            let built = build(&mut items.0.into_iter()).map_err(Unwrap::WrongType)?;
            unwrap_value::<T>(built)
        }
        // A raw graph's `lit("a")` is a `&'static str`; tasks take `String`.
        Err(any) => match any.downcast::<&'static str>() {
            Ok(s) => {
                let owned: Box<dyn Any> = Box::new(s.to_string());
                owned
                    .downcast::<T>()
                    .map(|b| *b)
                    .map_err(|_| Unwrap::WrongType(found))
            }
            Err(_) => Err(Unwrap::WrongType(found)),
        },
    }
}

/// Borrows a `T` from a value (an [`Encoded`] `T` is decoded once, here).
pub fn downcast_ref<T: Any>(v: &Value) -> Option<&T> {
    match v.plain::<T>() {
        Some(t) => Some(t),
        None => Encoded::of::<T>(v)
            .and_then(|e| e.view().ok())
            .and_then(|d| downcast_ref::<T>(d)),
    }
}

/// Why [`downcast_ref`] found no `T` in an encoded `T`: its decode error,
/// or the error of the task that was to make it.
pub fn undecodable<T: Any>(v: &Value) -> Option<Unreadable> {
    Encoded::of::<T>(v).and_then(|e| e.view().err().map(Unreadable::again))
}

fn clone_as<T: Clone + Any + Send + Sync>(v: &Value) -> Option<Value> {
    downcast_ref::<T>(v).map(|t| Value::new(t.clone()))
}

/// Finds out at compile time whether `T: Clone`, without requiring it
/// ("autoref specialisation"): `(&&CloneProbe::<T>::new()).clone_fn()` is
/// `Some` exactly when `T: Clone`. Works where `T` is a concrete type or a
/// generic with a `Clone` bound in scope, which is where the macros use it.
pub struct CloneProbe<T>(PhantomData<fn() -> T>);

impl<T> CloneProbe<T> {
    /// The probe for `T`.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        CloneProbe(PhantomData)
    }
}

impl<T> Clone for CloneProbe<T> {
    fn clone(&self) -> Self {
        CloneProbe(PhantomData)
    }
}

/// The `Clone` arm of [`CloneProbe`].
pub trait ProbeClone {
    /// `T`'s copy function.
    fn clone_fn(&self) -> Option<CloneFn>;
    /// Records `T`'s copy function in the process-wide registry.
    fn register(&self);
}

/// The fallback arm of [`CloneProbe`].
pub trait ProbeNoClone {
    /// None: `T` is not (known to be) `Clone`.
    fn clone_fn(&self) -> Option<CloneFn>;
    /// Nothing to record: `T` is not (known to be) `Clone`.
    fn register(&self);
}

impl<T: Clone + Any + Send + Sync> ProbeClone for &CloneProbe<T> {
    fn clone_fn(&self) -> Option<CloneFn> {
        Some(clone_as::<T>)
    }
    fn register(&self) {
        register_clone::<T>();
    }
}

impl<T> ProbeNoClone for CloneProbe<T> {
    fn clone_fn(&self) -> Option<CloneFn> {
        None
    }
    fn register(&self) {}
}

/// Copy functions by type, for values whose producer and consumers could
/// not tell (a `map` closure's result, a `split` part, a generic output).
/// Filled where the type is concrete (`#[delayed]` signatures, `compute!`
/// outputs, raw graph values), once per type; read only when a value must
/// be copied.
static CLONES: RwLock<Option<HashMap<TypeId, CloneFn>>> = RwLock::new(None);

/// Records that values of type `T` can be copied.
pub fn register_clone<T: Clone + Any + Send + Sync>() {
    let id = TypeId::of::<T>();
    let known = CLONES
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .is_some_and(|m| m.contains_key(&id));
    if !known {
        let mut map = CLONES.write().unwrap_or_else(|e| e.into_inner());
        map.get_or_insert_with(HashMap::new)
            .insert(id, clone_as::<T>);
    }
}

/// A copy of `v` through the registry, if its type was ever recorded.
pub(crate) fn clone_registered(v: &Value) -> Option<Value> {
    let id = v.type_id();
    let f = CLONES
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .and_then(|m| m.get(&id).copied())?;
    f(v)
}

/// The copy function of a type known to be `Clone`.
pub fn clone_fn_of<T: Clone + Any + Send + Sync>() -> CloneFn {
    clone_as::<T>
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoClone;

    #[test]
    #[allow(clippy::needless_borrow)] // the borrows pick the trait: that is the trick
    fn probe_tells_clone_types_apart() {
        assert!((&&CloneProbe::<i32>::new()).clone_fn().is_some());
        assert!((&&CloneProbe::<NoClone>::new()).clone_fn().is_none());
    }

    #[test]
    fn unwrap_moves_unique_values_only() {
        let v = Value::new("five".to_string());
        assert_eq!(unwrap_value::<String>(v).ok().as_deref(), Some("five"));
        let mut v = Value::new("five".to_string());
        let w = v.clone();
        assert!(!v.is_unique());
        assert!(matches!(unwrap_value::<String>(v), Err(Unwrap::Shared(_))));
        assert!(matches!(unwrap_value::<i64>(w), Err(Unwrap::WrongType(_))));
    }

    #[test]
    fn primitives_are_inline_and_copy_out() {
        let mut v = Value::new(-5_i64);
        assert!(matches!(v.0, Repr::Small { .. }));
        let w = v.clone();
        // A copy of a primitive is the primitive: both move out.
        assert!(v.is_unique());
        assert_eq!(v.type_name(), "i64");
        assert_eq!(v.type_id(), TypeId::of::<i64>());
        assert_eq!(downcast_ref::<i64>(&v), Some(&-5));
        assert_eq!(downcast_ref::<u64>(&v), None);
        assert_eq!(unwrap_value::<i64>(v).ok(), Some(-5));
        assert_eq!(w.clone().unwrap_or_clone::<i64>().ok(), Some(-5));
        match unwrap_value::<u64>(w) {
            Err(Unwrap::WrongType(found)) => assert_eq!(found, "i64"),
            _ => panic!("an i64 is not a u64"),
        }
        // Every kind round-trips, at its own size.
        assert_eq!(unwrap_value::<u8>(Value::new(250_u8)).ok(), Some(250));
        assert_eq!(unwrap_value::<f64>(Value::new(-0.5_f64)).ok(), Some(-0.5));
        assert_eq!(unwrap_value::<char>(Value::new('é')).ok(), Some('é'));
        assert_eq!(unwrap_value::<bool>(Value::new(true)).ok(), Some(true));
        assert_eq!(unwrap_value::<()>(Value::new(())).ok(), Some(()));
        assert_eq!(
            unwrap_value::<i16>(Value::new(i16::MIN)).ok(),
            Some(i16::MIN)
        );
        // Anything else is shared in a box.
        assert!(matches!(Value::new(5_u128).0, Repr::Shared(_)));
        assert!(matches!(Value::new((1_u32, 2_u32)).0, Repr::Shared(_)));
        assert!(matches!(Value::new(String::new()).0, Repr::Shared(_)));
    }

    #[test]
    fn values_are_three_words() {
        assert_eq!(std::mem::size_of::<Value>(), 24);
        assert_eq!(std::mem::size_of::<Option<Value>>(), 24);
    }

    #[test]
    fn lists_become_vecs_once_registered() {
        struct Elem(u8);
        let list = |xs: Vec<Value>| Value::new(DynList(xs));
        let items = || vec![Value::new(Elem(1)), Value::new(Elem(2))];
        assert!(unwrap_value::<Vec<Elem>>(list(items())).is_err());
        register_lists::<Elem>();
        let v = unwrap_value::<Vec<Elem>>(list(items())).ok().unwrap();
        assert_eq!(v.iter().map(|e| e.0).collect::<Vec<_>>(), vec![1, 2]);
        let nested = list(vec![list(items()), list(vec![])]);
        let v = unwrap_value::<Vec<Vec<Elem>>>(nested).ok().unwrap();
        assert_eq!((v[0].len(), v[1].len()), (2, 0));
        let bad = list(vec![Value::new(Elem(1)), Value::new(3_i64)]);
        let e = unwrap_value::<Vec<Elem>>(bad).err().unwrap();
        assert_eq!(e.found(), std::any::type_name::<i64>());
    }

    /// A little-endian `u64` codec, standing in for postcard.
    fn decode_u64(b: &[u8]) -> Result<Value, BoxError> {
        let bytes: [u8; 8] = b.try_into().map_err(|_| "not 8 bytes")?;
        Ok(Value::new(u64::from_le_bytes(bytes)))
    }

    fn encoded(x: u64) -> Value {
        let bytes = x.to_le_bytes().to_vec();
        Value::new(Encoded::new(bytes, Codec::of::<u64>(decode_u64)))
    }

    #[test]
    fn encoded_values_read_as_their_type() {
        let v = encoded(42);
        assert_eq!(downcast_ref::<u64>(&v), Some(&42));
        assert_eq!(downcast_ref::<i64>(&v), None);
        let shared = Encoded::shared::<u64>(&v).unwrap();
        assert_eq!(shared.bytes().ok(), Some(&42u64.to_le_bytes()[..]));
        assert!(Encoded::shared::<i64>(&v).is_none());
        drop(shared);
        // A copy stays encoded; the unique value moves out decoded.
        let copy = Encoded::copy(&v).unwrap();
        assert!(Encoded::shared::<u64>(&copy).is_some());
        assert!(matches!(
            unwrap_value::<u64>(v.clone()),
            Err(Unwrap::Shared(_))
        ));
        assert_eq!(unwrap_value::<u64>(v).ok(), Some(42));
        assert_eq!(unwrap_value::<u64>(copy).ok(), Some(42));
        assert!(matches!(
            unwrap_value::<i64>(encoded(1)),
            Err(Unwrap::WrongType(_))
        ));
        // Plain values are not encoded.
        assert!(Encoded::copy(&Value::new(5_u64)).is_none());
    }

    #[test]
    fn undecodable_values_say_why() {
        let bad = Value::new(Encoded::new(vec![1, 2], Codec::of::<u64>(decode_u64)));
        assert_eq!(downcast_ref::<u64>(&bad), None);
        assert!(
            matches!(undecodable::<u64>(&bad), Some(Unreadable::Decode(why)) if why == "not 8 bytes")
        );
        assert!(undecodable::<u64>(&encoded(1)).is_none());
        match unwrap_value::<u64>(bad) {
            Err(Unwrap::Undecodable(Unreadable::Decode(why))) => assert_eq!(why, "not 8 bytes"),
            _ => panic!("an undecodable value must say so"),
        }
    }
}
