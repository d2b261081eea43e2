//! Task keys.
//!
//! A key names one task of a graph. Dask's keys are strings (`"load-1"`) or
//! tuples of a name and integers (`("x", 0, 1)`); rdask has both. Keys made by
//! `#[delayed]` calls are a static prefix plus a number, formatted only when
//! shown, so building a call allocates no string.
//!
//! Equality and hashing follow the *displayed* form for string-like keys, so
//! `Key::from("inc-7")` equals the key that the 7th `inc` call got.

use std::cell::Cell;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The name of one task in a graph: cheap to clone, hash and compare.
///
/// A string (`"load-a"`), a dask-style tuple (`("x", 0)`: a name and up to
/// four integer indices), or a key rdask made for a lazy call
/// (`inc-17`, shown as such).
///
/// ```
/// use rdask::Key;
/// let a = Key::from("a");
/// assert_eq!(a.to_string(), "a");
/// assert_eq!(Key::from(("x", 0, 1)).to_string(), "('x', 0, 1)");
/// assert_ne!(Key::from(("x", 0)), Key::from("x"));
/// let d = rdask::value(1);
/// assert!(d.key().to_string().starts_with("value-"));
/// ```
#[derive(Clone)]
pub struct Key(Repr);

#[derive(Clone)]
enum Repr {
    /// A plain string key: `"a"`, `"load-1"`.
    Str(Arc<str>),
    /// `prefix-<decimal>`: a unique call of a non-pure delayed function.
    /// The prefix is a thin pointer (to a function's static name), so a key
    /// is three words.
    Counter(&'static &'static str, u64),
    /// `prefix-<16 hex digits>`: a pure call, named by the hash of its inputs.
    Hashed(&'static &'static str, u64),
    /// A dask-style tuple key: a name and integer indices.
    Tuple(Arc<(Arc<str>, Box<[i64]>)>),
    /// `task-<decimal>`: a raw graph's nested task `(f, args...)`, which
    /// dask leaves without a key. Shown like a generated key, but equal
    /// to no other kind of key: a user's own key spelled `task-2` must
    /// not stand in for it.
    Nested(u64),
}

/// The next block of key numbers to hand a thread.
static COUNTER: AtomicU64 = AtomicU64::new(1);

/// Numbers a thread takes from [`COUNTER`] at once.
const BLOCK: u64 = 1024;

thread_local! {
    /// This thread's block of key numbers: the next one, and the end.
    static NUMBERS: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

/// A number no other key of this process has: from this thread's block, so
/// that a call does not pay a locked add on a shared counter (about a
/// fifth of a `#[delayed]` call's time, measured on `chain`).
#[inline(always)]
fn fresh_number() -> u64 {
    NUMBERS.with(|numbers| {
        let (next, end) = numbers.get();
        if next < end {
            numbers.set((next + 1, end));
            return next;
        }
        new_block(numbers)
    })
}

/// A new block for this thread (one call in 1,024): out of line, so that
/// the common case inlines into each call.
#[cold]
#[inline(never)]
fn new_block(numbers: &Cell<(u64, u64)>) -> u64 {
    let start = COUNTER.fetch_add(BLOCK, Ordering::Relaxed);
    numbers.set((start + 1, start + BLOCK));
    start
}

impl Key {
    /// A fresh key `prefix-N`, unique within this process. (`prefix` is a
    /// reference to a static name: `Key::unique(&"load")`.) The engine's
    /// own: lazy calls name themselves.
    #[doc(hidden)]
    #[inline]
    pub fn unique(prefix: &'static &'static str) -> Key {
        Key(Repr::Counter(prefix, fresh_number()))
    }

    /// A fresh key for a raw graph's nested task, equal to no key a user
    /// can write.
    pub(crate) fn nested() -> Key {
        Key(Repr::Nested(fresh_number()))
    }

    /// A key `prefix-<hash>` named by a content hash (pure calls). The
    /// engine's own.
    #[doc(hidden)]
    pub fn hashed(prefix: &'static &'static str, hash: u64) -> Key {
        Key(Repr::Hashed(prefix, hash))
    }

    /// A tuple key: a name and integer indices, as in dask's array graphs.
    pub fn tuple(name: &str, index: impl Into<Vec<i64>>) -> Key {
        Key(Repr::Tuple(Arc::new((
            Arc::from(name),
            index.into().into_boxed_slice(),
        ))))
    }

    /// Whether this key names a pure call (its hash of its inputs), the
    /// same wherever the same build makes it.
    pub(crate) fn is_pure(&self) -> bool {
        matches!(self.0, Repr::Hashed(..))
    }

    /// A pure call's hash of its function and inputs.
    pub(crate) fn pure_hash(&self) -> Option<u64> {
        match self.0 {
            Repr::Hashed(_, h) => Some(h),
            _ => None,
        }
    }

    /// The name part: the whole string key, the prefix of a generated key, or
    /// the first element of a tuple key. Used to group and colour tasks.
    pub fn prefix(&self) -> &str {
        match &self.0 {
            Repr::Str(s) => match s.rfind('-') {
                Some(i) if i > 0 => &s[..i],
                _ => s,
            },
            Repr::Counter(p, _) => p,
            Repr::Hashed(p, _) => p,
            Repr::Tuple(t) => &t.0,
            Repr::Nested(_) => "task",
        }
    }

    /// Runs `f` on the string form of a string-like key without allocating
    /// for short keys; `None` for tuple keys.
    fn with_str<R>(&self, f: impl FnOnce(&str) -> R) -> Option<R> {
        use std::fmt::Write;
        match &self.0 {
            Repr::Str(s) => Some(f(s)),
            Repr::Tuple(_) => None,
            _ => {
                let mut buf = StackString::default();
                if write!(buf, "{self}").is_ok() {
                    Some(f(buf.as_str()))
                } else {
                    Some(f(&self.to_string()))
                }
            }
        }
    }
}

/// A small fixed buffer for formatting generated keys without allocating.
struct StackString {
    buf: [u8; 96],
    len: usize,
}

impl Default for StackString {
    fn default() -> Self {
        StackString {
            buf: [0; 96],
            len: 0,
        }
    }
}

impl StackString {
    fn as_str(&self) -> &str {
        // Only whole `str`s are ever written.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl fmt::Write for StackString {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        if end > self.buf.len() {
            return Err(fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        match (&self.0, &other.0) {
            (Repr::Str(a), Repr::Str(b)) => a == b,
            (Repr::Counter(pa, a), Repr::Counter(pb, b)) => a == b && **pa == **pb,
            (Repr::Hashed(pa, a), Repr::Hashed(pb, b)) => a == b && **pa == **pb,
            (Repr::Tuple(a), Repr::Tuple(b)) => a == b,
            (Repr::Tuple(_), _) | (_, Repr::Tuple(_)) => false,
            (Repr::Nested(a), Repr::Nested(b)) => a == b,
            (Repr::Nested(_), _) | (_, Repr::Nested(_)) => false,
            _ => self
                .with_str(|a| other.with_str(|b| a == b))
                .flatten()
                .unwrap_or(false),
        }
    }
}

impl Eq for Key {}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        match &self.0 {
            Repr::Tuple(t) => {
                state.write_u8(0xfe);
                t.0.hash(state);
                t.1.hash(state);
            }
            _ => {
                self.with_str(|s| s.hash(state));
            }
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Str(s) => f.write_str(s),
            Repr::Counter(p, n) => write!(f, "{p}-{n}"),
            Repr::Hashed(p, h) => write!(f, "{p}-{h:016x}"),
            Repr::Nested(n) => write!(f, "task-{n}"),
            Repr::Tuple(t) => {
                write!(f, "('{}'", t.0)?;
                for i in t.1.iter() {
                    write!(f, ", {i}")?;
                }
                if t.1.is_empty() {
                    f.write_str(",")?;
                }
                f.write_str(")")
            }
        }
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Tuple(_) => write!(f, "Key{self}"),
            _ => write!(f, "Key({:?})", self.to_string()),
        }
    }
}

impl From<&str> for Key {
    fn from(s: &str) -> Key {
        Key(Repr::Str(Arc::from(s)))
    }
}

impl From<String> for Key {
    fn from(s: String) -> Key {
        Key(Repr::Str(Arc::from(s)))
    }
}

impl From<&String> for Key {
    fn from(s: &String) -> Key {
        Key::from(s.as_str())
    }
}

impl From<&Key> for Key {
    fn from(k: &Key) -> Key {
        k.clone()
    }
}

/// An integer usable as a tuple key's index: every primitive integer up
/// to 64 bits (a loop's `usize` included). Stored as an `i64`; a `u64` or
/// `usize` above `i64::MAX` wraps, so distinct indices stay distinct keys.
pub trait KeyIndex: Copy {
    /// The index as stored.
    fn index(self) -> i64;
}

macro_rules! key_index {
    ($($t:ty),*) => {$(
        impl KeyIndex for $t {
            #[inline]
            fn index(self) -> i64 {
                self as i64
            }
        }
    )*};
}

key_index!(i8, i16, i32, i64, isize, u8, u16, u32, u64, usize);

macro_rules! tuple_keys {
    ($($i:ident),+) => {
        impl<S: AsRef<str>, $($i: KeyIndex),+> From<(S, $($i),+)> for Key {
            #[allow(non_snake_case)]
            fn from((name, $($i),+): (S, $($i),+)) -> Key {
                Key::tuple(name.as_ref(), vec![$($i.index()),+])
            }
        }
    };
}

// Unsuffixed integer literals still default to i32: `("x", 0, 1)`.
tuple_keys!(A);
tuple_keys!(A, B);
tuple_keys!(A, B, C);
tuple_keys!(A, B, C, D);

impl<S: AsRef<str>> From<(S,)> for Key {
    fn from((name,): (S,)) -> Key {
        Key::tuple(name.as_ref(), Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::hash_map::DefaultHasher;

    /// Each thread draws its keys' numbers from a block of its own: keys
    /// made on several threads at once, across many blocks, are all
    /// different.
    #[test]
    #[cfg_attr(miri, ignore = "too slow under Miri (no unsafe code here)")]
    fn fresh_keys_differ_across_threads_and_blocks() {
        let per_thread = 3 * BLOCK as usize + 7;
        let keys: Vec<Vec<Key>> = std::thread::scope(|s| {
            let made: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(move || {
                        (0..per_thread)
                            .map(|i| match i % 2 {
                                0 => Key::unique(&"k"),
                                _ => Key::nested(),
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            made.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let numbers: std::collections::HashSet<u64> = keys
            .iter()
            .flatten()
            .map(|k| match k.0 {
                Repr::Counter(_, n) | Repr::Nested(n) => n,
                _ => unreachable!("a fresh key has a number"),
            })
            .collect();
        assert_eq!(numbers.len(), 4 * per_thread);
        assert!(!numbers.contains(&0), "0 is no key's number");
    }

    fn h(k: &Key) -> u64 {
        let mut s = DefaultHasher::new();
        k.hash(&mut s);
        s.finish()
    }

    #[test]
    fn generated_keys_equal_their_string_form() {
        let k = Key::unique(&"inc");
        let s = Key::from(k.to_string());
        assert_eq!(k, s);
        assert_eq!(h(&k), h(&s));
        assert_ne!(k, Key::unique(&"inc"));
        assert!(k.to_string().starts_with("inc-"));
        assert_eq!(k.prefix(), "inc");
    }

    #[test]
    fn hashed_keys_are_fixed_width_hex() {
        let k = Key::hashed(&"fit", 0xab);
        assert_eq!(k.to_string(), "fit-00000000000000ab");
        assert_eq!(k, Key::from("fit-00000000000000ab"));
        assert_eq!(h(&k), h(&Key::from("fit-00000000000000ab")));
    }

    #[test]
    fn tuple_keys_display_like_dask() {
        let k = Key::from(("x", 0, 1));
        assert_eq!(k.to_string(), "('x', 0, 1)");
        assert_eq!(k, Key::tuple("x", vec![0, 1]));
        assert_ne!(k, Key::from("('x', 0, 1)"));
        assert_eq!(k.prefix(), "x");
        assert_eq!(Key::from(("z",)).to_string(), "('z',)");
    }

    /// A nested task's key shows like a generated one, and equals none
    /// but itself.
    #[test]
    fn nested_task_keys_equal_no_written_key() {
        let k = Key::nested();
        assert!(k.to_string().starts_with("task-"));
        assert_eq!(k.prefix(), "task");
        // Reflexive: nested keys compare by their number, not their text.
        assert_eq!(k, k.clone());
        assert_ne!(k, Key::from(k.to_string()));
        assert_ne!(Key::from(k.to_string()), k);
        assert_ne!(k, Key::nested());
    }

    /// Tuple keys take any integer type for their indices, so a loop's
    /// `usize` works, and equal numbers are equal keys whatever the type.
    #[test]
    fn tuple_key_indices_of_any_integer_type() {
        let i: usize = 3;
        assert_eq!(Key::from(("x", i)), Key::from(("x", 3)));
        assert_eq!(Key::from(("x", 0_i64, 1_u32)), Key::tuple("x", vec![0, 1]));
        assert_eq!(Key::from(("x", -1_i8)).to_string(), "('x', -1)");
        assert_ne!(Key::from(("x", u64::MAX)), Key::from(("x", u64::MAX - 1)));
    }

    #[test]
    fn keys_are_three_words() {
        assert_eq!(std::mem::size_of::<Key>(), 24);
    }

    #[test]
    fn long_prefixes_still_compare() {
        let p: &'static str = Box::leak("p".repeat(200).into_boxed_str());
        let p: &'static &'static str = Box::leak(Box::new(p));
        let k = Key::unique(p);
        assert_eq!(k, Key::from(k.to_string()));
        assert_eq!(h(&k), h(&Key::from(k.to_string())));
    }
}
