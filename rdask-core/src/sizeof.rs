//! How many bytes a value holds (dask's `sizeof`), for diagnostics that
//! weigh results: [`CacheProfiler`](crate::CacheProfiler) and
//! [`TaskResult::nbytes`](crate::callbacks::TaskResult::nbytes).
//!
//! The engine carries values type-erased, so sizes go through a table keyed
//! by type, as dask's `sizeof` dispatches on the type: the common standard
//! types are in it, and [`register_size`] adds any [`SizeOf`] type. A type
//! not in the table counts its own `size_of`, which is exact for plain
//! structs of numbers and too small for whatever owns memory elsewhere.

use crate::value::{Encoded, Value};
use std::any::{Any, TypeId};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::mem::size_of;
use std::sync::{Arc, OnceLock, RwLock};

/// The bytes a value holds: its own size plus what it owns on the heap.
///
/// ```
/// use rdask::SizeOf;
/// let v = vec![1.0_f64; 1000];
/// assert_eq!(v.size_of(), std::mem::size_of::<Vec<f64>>() + 8000);
/// assert_eq!(String::with_capacity(64).size_of(), 24 + 64);
///
/// struct Model { weights: Vec<f64>, name: String }
/// impl SizeOf for Model {
///     fn size_of(&self) -> usize {
///         self.weights.size_of() + self.name.size_of()
///     }
/// }
/// rdask::register_size::<Model>(); // results of this type are weighed so
/// # let m = Model { weights: vec![0.0; 4], name: String::new() };
/// # assert_eq!(m.size_of(), 24 + 32 + 24);
/// ```
pub trait SizeOf {
    /// The bytes `self` holds, counted as `size_of::<Self>()` plus the heap
    /// memory it owns (capacity, not length, for buffers).
    fn size_of(&self) -> usize;
}

macro_rules! plain_sizes {
    ($($t:ty),*) => {$(
        impl SizeOf for $t {
            fn size_of(&self) -> usize {
                size_of::<$t>()
            }
        }
    )*};
}

plain_sizes!(
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    f32,
    f64,
    bool,
    char,
    ()
);

impl SizeOf for String {
    fn size_of(&self) -> usize {
        size_of::<String>() + self.capacity()
    }
}

impl SizeOf for str {
    fn size_of(&self) -> usize {
        self.len()
    }
}

impl<T: SizeOf> SizeOf for [T] {
    fn size_of(&self) -> usize {
        self.iter().map(SizeOf::size_of).sum()
    }
}

impl<T: SizeOf> SizeOf for Vec<T> {
    fn size_of(&self) -> usize {
        let spare = (self.capacity() - self.len()) * size_of::<T>();
        size_of::<Vec<T>>() + self[..].size_of() + spare
    }
}

impl<T: SizeOf, const N: usize> SizeOf for [T; N] {
    fn size_of(&self) -> usize {
        self[..].size_of()
    }
}

impl<T: SizeOf + ?Sized> SizeOf for Box<T> {
    fn size_of(&self) -> usize {
        size_of::<Box<T>>() + (**self).size_of()
    }
}

/// The shared value is counted whole in each `Arc` (as dask counts an
/// object once per key that holds it).
impl<T: SizeOf + ?Sized> SizeOf for Arc<T> {
    fn size_of(&self) -> usize {
        size_of::<Arc<T>>() + (**self).size_of()
    }
}

impl<T: SizeOf> SizeOf for Option<T> {
    fn size_of(&self) -> usize {
        let inner = self.as_ref().map_or(0, |x| x.size_of() - size_of::<T>());
        size_of::<Option<T>>() + inner
    }
}

impl<K: SizeOf, V: SizeOf, S> SizeOf for HashMap<K, V, S> {
    fn size_of(&self) -> usize {
        let entries: usize = self.iter().map(|(k, v)| k.size_of() + v.size_of()).sum();
        let spare = (self.capacity() - self.len()) * size_of::<(K, V)>();
        size_of::<Self>() + entries + spare
    }
}

impl<K: SizeOf, S> SizeOf for HashSet<K, S> {
    fn size_of(&self) -> usize {
        let entries: usize = self.iter().map(SizeOf::size_of).sum();
        let spare = (self.capacity() - self.len()) * size_of::<K>();
        size_of::<Self>() + entries + spare
    }
}

impl<K: SizeOf, V: SizeOf> SizeOf for BTreeMap<K, V> {
    fn size_of(&self) -> usize {
        let entries: usize = self.iter().map(|(k, v)| k.size_of() + v.size_of()).sum();
        size_of::<Self>() + entries
    }
}

macro_rules! tuple_sizes {
    ($(($($t:ident $i:tt),+)),*) => {$(
        impl<$($t: SizeOf),+> SizeOf for ($($t,)+) {
            fn size_of(&self) -> usize {
                size_of::<Self>() $(+ self.$i.size_of() - size_of::<$t>())+
            }
        }
    )*};
}

tuple_sizes!((A 0, B 1), (A 0, B 1, C 2), (A 0, B 1, C 2, D 3));

/// Weighs a value known to be a `T`.
type Weigh = fn(&Value) -> Option<usize>;

fn weigh<T: SizeOf + Any>(v: &Value) -> Option<usize> {
    v.plain::<T>().map(SizeOf::size_of)
}

fn table() -> &'static RwLock<HashMap<TypeId, Weigh>> {
    static TABLE: OnceLock<RwLock<HashMap<TypeId, Weigh>>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t: HashMap<TypeId, Weigh> = HashMap::new();
        macro_rules! known {
            ($($t:ty),*) => {$(
                t.insert(TypeId::of::<$t>(), weigh::<$t>);
                t.insert(TypeId::of::<Vec<$t>>(), weigh::<Vec<$t>>);
                t.insert(TypeId::of::<Option<$t>>(), weigh::<Option<$t>>);
            )*};
        }
        known!(u8, u16, u32, u64, usize, i8, i16, i32, i64, isize, f32, f64, bool, char, String);
        t.insert(TypeId::of::<Vec<Vec<f64>>>(), weigh::<Vec<Vec<f64>>>);
        t.insert(TypeId::of::<Vec<Vec<i64>>>(), weigh::<Vec<Vec<i64>>>);
        t.insert(
            TypeId::of::<HashMap<String, f64>>(),
            weigh::<HashMap<String, f64>>,
        );
        t.insert(
            TypeId::of::<HashMap<String, i64>>(),
            weigh::<HashMap<String, i64>>,
        );
        t.insert(
            TypeId::of::<HashMap<String, usize>>(),
            weigh::<HashMap<String, usize>>,
        );
        RwLock::new(t)
    })
}

/// Weighs results of type `T` with its [`SizeOf`] (dask's
/// `sizeof.register`); see [`SizeOf`] for an example. Registering a type
/// twice is harmless.
pub fn register_size<T: SizeOf + Any>() {
    let mut t = table().write().unwrap_or_else(|e| e.into_inner());
    t.insert(TypeId::of::<T>(), weigh::<T>);
}

/// The bytes `v` holds: by the table, else its type's own size; an encoded
/// value (a worker process's) by its decoded value if it has one, else by
/// its encoded length (0 when its bytes are held on a cluster).
pub(crate) fn nbytes(v: &Value) -> usize {
    let v = match Encoded::describe(v) {
        None => v,
        Some((_, Ok(decoded))) => decoded,
        Some((_, Err(len))) => return len.unwrap_or(0),
    };
    let by_table = table()
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .get(&v.type_id())
        .copied();
    by_table
        .and_then(|w| w(v))
        .unwrap_or_else(|| v.shallow_size())
}

/// The name of the type `v` holds (an encoded value: the type it encodes).
pub(crate) fn type_name(v: &Value) -> &'static str {
    Encoded::describe(v).map_or_else(|| v.type_name(), |(name, _)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_count_heap_memory() {
        let v: Vec<String> = vec!["ab".into(), String::with_capacity(10)];
        let strings = 2 * size_of::<String>() + 2 + 10;
        assert_eq!(v.size_of(), size_of::<Vec<String>>() + strings);
        let mut m = HashMap::new();
        m.insert(1_u32, vec![0_u8; 100]);
        let spare = (m.capacity() - 1) * size_of::<(u32, Vec<u8>)>();
        assert_eq!(
            m.size_of(),
            size_of::<HashMap<u32, Vec<u8>>>() + 4 + size_of::<Vec<u8>>() + 100 + spare
        );
        assert_eq!(
            (1_u8, String::from("xyz")).size_of(),
            size_of::<(u8, String)>() + 3
        );
        assert_eq!(
            Some(vec![1_i64, 2]).size_of(),
            size_of::<Option<Vec<i64>>>() + 16
        );
        assert_eq!(None::<Vec<i64>>.size_of(), size_of::<Option<Vec<i64>>>());
        assert_eq!(Box::new([1_u16; 3]).size_of(), size_of::<usize>() + 6);
    }

    #[test]
    fn values_are_weighed_by_the_table_or_their_type() {
        assert_eq!(nbytes(&Value::new(vec![0_f64; 16])), 24 + 128);
        assert_eq!(nbytes(&Value::new(7_i32)), 4);
        struct Unknown(#[allow(dead_code)] Vec<u8>);
        assert_eq!(nbytes(&Value::new(Unknown(vec![0; 1000]))), 24);
        #[derive(Clone)]
        struct Known(Vec<u8>);
        impl SizeOf for Known {
            fn size_of(&self) -> usize {
                self.0.size_of()
            }
        }
        register_size::<Known>();
        assert_eq!(nbytes(&Value::new(Known(vec![0; 1000]))), 24 + 1000);
    }

    #[test]
    fn encoded_values_weigh_their_bytes_until_decoded() {
        fn decode(b: &[u8]) -> Result<Value, crate::error::BoxError> {
            Ok(Value::new(vec![0_u8; b.len() * 10]))
        }
        let v = Value::new(Encoded::new(
            vec![1, 2, 3],
            crate::value::Codec::of::<Vec<u8>>(decode),
        ));
        assert_eq!(type_name(&v), "alloc::vec::Vec<u8>");
        assert_eq!(nbytes(&v), 3);
        assert!(crate::value::downcast_ref::<Vec<u8>>(&v).is_some());
        assert_eq!(nbytes(&v), 24 + 30);
    }
}
