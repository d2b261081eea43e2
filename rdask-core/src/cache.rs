//! An on-disk cache of task results: what `#[delayed(cache)]` tasks find
//! instead of running again (dask has none; joblib's `Memory` and
//! graphchain are add-ons).
//!
//! One file per entry, named by a 128-bit hash of the task's function (its
//! path and a hash of its tokens), its `version` and its encoded arguments,
//! under a two-character folder. An entry is written whole or not at all:
//! to a temporary file, synced, then renamed over its name; several threads
//! and processes may share a directory (the same entry written twice is the
//! same bytes). Its header names the format, the value's type and a
//! checksum of the value's bytes: a damaged, truncated or foreign entry is
//! a miss (and is written again), never a wrong value.
//!
//! Format: `RDASKC1\n`, then the type's name hash (u64 LE), the value's
//! length (u64 LE), its FNV-1a checksum (u64 LE), then the value (postcard).

use crate::error::{Error, ErrorKind, Result};
use std::cell::RefCell;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

const MAGIC: &[u8; 8] = b"RDASKC1\n";
const HEADER: usize = 8 + 8 * 3;

/// A directory of task results, shared by every computation it is attached
/// to (`Compute::cache`, `rdask::with_cache`, `RDASK_CACHE`). `Clone`: the
/// clones share the directory and the counts.
///
/// ```
/// use rdask::prelude::*;
///
/// #[delayed(cache)]
/// fn slow_square(x: u64) -> u64 {
///     x * x
/// }
///
/// let dir = std::env::temp_dir().join(format!("rdask-doc-cache-{}", std::process::id()));
/// let cache = rdask::Cache::open(&dir)?;
/// let xs: Vec<_> = (1..=3).map(slow_square).collect();
/// let first = rdask::Compute::new(&xs).cache(&cache).run()?;
/// let again = rdask::Compute::new(&xs).cache(&cache).run()?; // found, not run
/// assert_eq!(first, again);
/// assert_eq!(cache.stats().hits, 3);
/// cache.clear()?;
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), rdask::Error>(())
/// ```
#[derive(Clone)]
pub struct Cache(Arc<Inner>);

struct Inner {
    dir: PathBuf,
    hits: AtomicU64,
    misses: AtomicU64,
    counts: Arc<Writes>,
    /// The writer thread's queue.
    queue: std::sync::Mutex<Option<std::sync::mpsc::Sender<Job>>>,
}

/// An entry to write: its key, its type's name hash, its value.
type Job = (EntryKey, u64, Vec<u8>);

/// What the writer thread has done, and how much is still queued.
#[derive(Default)]
struct Writes {
    writes: AtomicU64,
    bytes: AtomicU64,
    queued: std::sync::Mutex<u64>,
    drained: std::sync::Condvar,
}

impl Writes {
    fn done_one(&self) {
        let mut q = self.queued.lock().unwrap_or_else(|e| e.into_inner());
        *q = q.saturating_sub(1);
        self.drained.notify_all();
    }
}

/// What a cache has done since it was opened (in this process).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Tasks found in the cache (not run).
    pub hits: u64,
    /// Cached tasks not found (run, then stored).
    pub misses: u64,
    /// Entries written.
    pub writes: u64,
    /// Bytes of values written.
    pub bytes: u64,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache").field("dir", &self.0.dir).finish()
    }
}

/// An entry's name: 128 bits of hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct EntryKey(u64, u64);

impl EntryKey {
    /// The key of `parts` hashed in order.
    pub(crate) fn of(parts: &[&[u8]]) -> EntryKey {
        let mut a = 0xcbf2_9ce4_8422_2325_u64;
        let mut b = 0x6c62_272e_07bb_0142_u64;
        for part in parts {
            for &byte in part.iter().chain((part.len() as u64).to_le_bytes().iter()) {
                a = (a ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
                // A second, unrelated multiplier (odd): the halves do not
                // move together.
                b = (b ^ u64::from(byte)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            }
        }
        EntryKey(a, b)
    }

    fn name(&self) -> String {
        format!("{:016x}{:016x}", self.0, self.1)
    }
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::new(
        ErrorKind::Io,
        None,
        format!("cache: cannot {what} {}: {e}", path.display()),
    )
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl Cache {
    /// The cache in directory `dir`, made if missing.
    pub fn open(dir: impl AsRef<Path>) -> Result<Cache> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir).map_err(|e| io_error("create", &dir, e))?;
        Ok(Cache(Arc::new(Inner {
            dir,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            counts: Arc::new(Writes::default()),
            queue: std::sync::Mutex::new(None),
        })))
    }

    /// Its directory.
    pub fn dir(&self) -> &Path {
        &self.0.dir
    }

    /// What it has done since it was opened.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.0.hits.load(Ordering::Relaxed),
            misses: self.0.misses.load(Ordering::Relaxed),
            writes: self.0.counts.writes.load(Ordering::Relaxed),
            bytes: self.0.counts.bytes.load(Ordering::Relaxed),
        }
    }

    fn path(&self, key: EntryKey) -> PathBuf {
        entry_path(&self.0.dir, key)
    }

    /// The value stored under `key` for a value of type `type_name`, or
    /// `None` (a miss): absent, damaged, truncated or of another type.
    pub(crate) fn load(&self, key: EntryKey, type_name: &str) -> Option<Vec<u8>> {
        let found = self.read(key, type_name);
        let counter = match found {
            Some(_) => &self.0.hits,
            None => &self.0.misses,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    fn read(&self, key: EntryKey, type_name: &str) -> Option<Vec<u8>> {
        let path = self.path(key);
        let mut file = std::fs::File::open(&path).ok()?;
        let mut head = [0u8; HEADER];
        file.read_exact(&mut head).ok()?;
        let word = |i: usize| u64::from_le_bytes(head[8 + 8 * i..16 + 8 * i].try_into().unwrap());
        if &head[..8] != MAGIC || word(0) != fnv(type_name.as_bytes()) {
            return None;
        }
        let len = usize::try_from(word(1)).ok()?;
        let mut value = Vec::with_capacity(len.min(1 << 30));
        file.take(len as u64 + 1).read_to_end(&mut value).ok()?;
        if value.len() != len || fnv(&value) != word(2) {
            return None;
        }
        // Recently used: what `prune` keeps.
        let _ = std::fs::File::options()
            .append(true)
            .open(&path)
            .and_then(|f| f.set_modified(std::time::SystemTime::now()));
        Some(value)
    }

    /// Stores `value` (a value of type `type_name`) under `key`: whole or
    /// not at all. A failure to write is not the computation's: the value
    /// is simply not kept.
    pub(crate) fn store(&self, key: EntryKey, type_name: &str, value: Vec<u8>) {
        let counts = &self.0.counts;
        *counts.queued.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        let mut queue = self.0.queue.lock().unwrap_or_else(|e| e.into_inner());
        let sender = queue.get_or_insert_with(|| {
            let (tx, rx) = std::sync::mpsc::channel::<Job>();
            let (dir, counts) = (self.0.dir.clone(), self.0.counts.clone());
            // Ends when the cache (the queue's sender) is dropped.
            let writer = std::thread::Builder::new()
                .name("rdask-cache".into())
                .spawn(move || {
                    for (key, type_hash, value) in rx {
                        if write(&dir, key, type_hash, &value).is_ok() {
                            counts.writes.fetch_add(1, Ordering::Relaxed);
                            counts
                                .bytes
                                .fetch_add(value.len() as u64, Ordering::Relaxed);
                        }
                        counts.done_one();
                    }
                });
            // Without a thread nothing is kept: a miss next time.
            drop(writer);
            tx
        });
        let job = (key, fnv(type_name.as_bytes()), value);
        if sender.send(job).is_err() {
            counts.done_one();
        }
    }

    /// Waits until every entry stored so far is written.
    pub(crate) fn flush(&self) {
        let counts = &self.0.counts;
        let mut q = counts.queued.lock().unwrap_or_else(|e| e.into_inner());
        while *q > 0 {
            q = counts.drained.wait(q).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Every entry file, with its size and last use.
    fn entries(&self) -> Vec<(PathBuf, u64, std::time::SystemTime)> {
        let mut out = Vec::new();
        let Ok(dirs) = std::fs::read_dir(&self.0.dir) else {
            return out;
        };
        for d in dirs.flatten().filter(|d| d.path().is_dir()) {
            let Ok(files) = std::fs::read_dir(d.path()) else {
                continue;
            };
            for f in files.flatten() {
                if let Ok(m) = f.metadata() {
                    let used = m.modified().unwrap_or(std::time::UNIX_EPOCH);
                    out.push((f.path(), m.len(), used));
                }
            }
        }
        out
    }

    /// Removes every entry (once those queued are written).
    pub fn clear(&self) -> Result<()> {
        self.flush();
        for (path, _, _) in self.entries() {
            std::fs::remove_file(&path).map_err(|e| io_error("remove", &path, e))?;
        }
        Ok(())
    }

    /// Removes the least recently used entries until the rest take at most
    /// `max_bytes`; the bytes left.
    pub fn prune(&self, max_bytes: u64) -> Result<u64> {
        self.flush();
        let mut entries = self.entries();
        let mut total: u64 = entries.iter().map(|e| e.1).sum();
        entries.sort_by_key(|e| e.2);
        for (path, len, _) in entries {
            if total <= max_bytes {
                break;
            }
            std::fs::remove_file(&path).map_err(|e| io_error("remove", &path, e))?;
            total -= len;
        }
        Ok(total)
    }
}

/// The path of entry `key` under `root`.
fn entry_path(root: &Path, key: EntryKey) -> PathBuf {
    let name = key.name();
    root.join(&name[..2]).join(&name[2..])
}

/// Writes one entry whole: a temporary file, synced, renamed over its name.
fn write(root: &Path, key: EntryKey, type_hash: u64, value: &[u8]) -> std::io::Result<()> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let path = entry_path(root, key);
    let dir = path.parent().unwrap_or(root);
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.{}.{}.tmp",
        key.name(),
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        let mut head = Vec::with_capacity(HEADER);
        head.extend_from_slice(MAGIC);
        head.extend_from_slice(&type_hash.to_le_bytes());
        head.extend_from_slice(&(value.len() as u64).to_le_bytes());
        head.extend_from_slice(&fnv(value).to_le_bytes());
        f.write_all(&head)?;
        f.write_all(value)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

thread_local! {
    /// The cache of `with_cache` scopes on this thread.
    static SCOPED: RefCell<Option<Cache>> = const { RefCell::new(None) };
}

/// Attaches `cache` to the computations started inside `f` on this thread
/// (unless one says otherwise with `Compute::cache`).
pub fn with_cache<R>(cache: &Cache, f: impl FnOnce() -> R) -> R {
    let outer = SCOPED.with(|s| s.replace(Some(cache.clone())));
    struct Restore(Option<Cache>);
    impl Drop for Restore {
        fn drop(&mut self) {
            SCOPED.with(|s| *s.borrow_mut() = self.0.take());
        }
    }
    let _restore = Restore(outer);
    f()
}

/// The cache a computation started here uses: a `with_cache` scope's, else
/// `RDASK_CACHE`'s (opened once).
pub(crate) fn current() -> Option<Cache> {
    if let Some(c) = SCOPED.with(|s| s.borrow().clone()) {
        return Some(c);
    }
    static FROM_ENV: OnceLock<Option<Cache>> = OnceLock::new();
    FROM_ENV
        .get_or_init(|| {
            let dir = std::env::var_os("RDASK_CACHE")?;
            match Cache::open(&dir) {
                Ok(c) => Some(c),
                Err(e) => {
                    eprintln!("rdask: RDASK_CACHE: {e}; running without a cache");
                    None
                }
            }
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache() -> (tempfile::TempDir, Cache) {
        let dir = tempfile::tempdir().unwrap();
        let c = Cache::open(dir.path()).unwrap();
        (dir, c)
    }

    #[test]
    #[cfg_attr(miri, ignore)]
    fn stores_and_loads_whole_entries() {
        let (_d, c) = cache();
        let k = EntryKey::of(&[b"f", b"args"]);
        assert_eq!(c.load(k, "u64"), None);
        c.store(k, "u64", b"value".to_vec());
        c.flush();
        assert_eq!(c.load(k, "u64").as_deref(), Some(&b"value"[..]));
        // Another type under the same key is a miss.
        assert_eq!(c.load(k, "String"), None);
        assert_eq!(
            c.stats(),
            CacheStats {
                hits: 1,
                misses: 2,
                writes: 1,
                bytes: 5
            }
        );
    }

    #[test]
    #[cfg_attr(miri, ignore)]
    fn damaged_and_truncated_entries_are_misses() {
        let (_d, c) = cache();
        let k = EntryKey::of(&[b"x"]);
        c.store(k, "t", b"0123456789".to_vec());
        c.flush();
        let path = c.path(k);
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(c.load(k, "t"), None, "a flipped bit");
        std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        assert_eq!(c.load(k, "t"), None, "truncated");
        std::fs::write(&path, b"not an entry").unwrap();
        assert_eq!(c.load(k, "t"), None, "foreign");
        c.store(k, "t", b"0123456789".to_vec());
        c.flush();
        let mut longer = std::fs::read(&path).unwrap();
        longer.extend_from_slice(b"trailing");
        std::fs::write(&path, &longer).unwrap();
        assert_eq!(c.load(k, "t"), None, "longer than its header says");
        c.store(k, "t", b"again".to_vec());
        c.flush();
        assert_eq!(c.load(k, "t").as_deref(), Some(&b"again"[..]));
    }

    #[test]
    #[cfg_attr(miri, ignore)]
    fn each_half_of_a_key_spreads_alone() {
        // Both 64-bit halves must tell 20,000 small inputs apart on their
        // own (a half that collides weakens the whole key).
        let keys: Vec<EntryKey> = (0..20_000u64)
            .map(|i| EntryKey::of(&[b"f", &i.to_le_bytes()]))
            .collect();
        let firsts: std::collections::HashSet<u64> = keys.iter().map(|k| k.0).collect();
        let seconds: std::collections::HashSet<u64> = keys.iter().map(|k| k.1).collect();
        assert_eq!(firsts.len(), keys.len());
        assert_eq!(seconds.len(), keys.len());
        assert!(keys.iter().all(|k| k.0 != k.1));
    }

    #[test]
    #[cfg_attr(miri, ignore)]
    fn keys_depend_on_every_part_and_its_bounds() {
        assert_ne!(EntryKey::of(&[b"ab", b"c"]), EntryKey::of(&[b"a", b"bc"]));
        assert_ne!(EntryKey::of(&[b"a"]), EntryKey::of(&[b"b"]));
        assert_eq!(EntryKey::of(&[b"a", b"b"]), EntryKey::of(&[b"a", b"b"]));
    }

    #[test]
    #[cfg_attr(miri, ignore)]
    fn prune_drops_the_least_recently_used_first() {
        let (_d, c) = cache();
        let (old, new) = (EntryKey::of(&[b"old"]), EntryKey::of(&[b"new"]));
        c.store(old, "t", vec![0; 100]);
        c.flush();
        let past = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        std::fs::File::options()
            .append(true)
            .open(c.path(old))
            .unwrap()
            .set_modified(past)
            .unwrap();
        c.store(new, "t", vec![0; 100]);
        // Three more old ones: the budget keeps only the newest.
        for i in 0..3u8 {
            let k = EntryKey::of(&[b"older", &[i]]);
            c.store(k, "t", vec![0; 100]);
            c.flush();
            std::fs::File::options()
                .append(true)
                .open(c.path(k))
                .unwrap()
                .set_modified(past)
                .unwrap();
        }
        let left = c.prune(150).unwrap();
        assert_eq!(c.entries().len(), 1, "only the newest fits 150 bytes");
        assert!(left <= 150);
        assert!(c.load(old, "t").is_none());
        assert!(c.load(new, "t").is_some());
        c.clear().unwrap();
        assert!(c.load(new, "t").is_none());
    }

    #[test]
    #[cfg_attr(miri, ignore)]
    fn with_cache_scopes_nest_and_end() {
        let (_a, outer) = cache();
        let (_b, inner) = cache();
        let dir = |c: Option<Cache>| c.map(|c| c.dir().to_path_buf());
        let before = dir(current());
        let seen = with_cache(&outer, || {
            let nested = with_cache(&inner, || dir(current()));
            (nested, dir(current()))
        });
        assert_eq!(seen.0.as_deref(), Some(inner.dir()));
        assert_eq!(seen.1.as_deref(), Some(outer.dir()), "the inner scope ends");
        assert_eq!(dir(current()), before, "the outer scope ends");
    }
}
