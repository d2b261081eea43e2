//! `BigVec<T>`: a growable array for the planner's per-task data, which can
//! take huge pages once it is big.
//!
//! Why: a plan touches a few dozen bytes of fresh memory per task, once. On
//! machines where a page fault is slow (virtual machines; BENCHMARKS.md,
//! "Engine notes") those faults are a large part of a compute. Small
//! arrays stay ordinary `Vec`s; past [`MAP_FROM`] bytes the array moves to a
//! mapping of its own, 2 MiB-aligned, with transparent huge pages requested
//! (Linux), where one fault brings in 2 MiB. Growth doubles; a mapped array
//! grows by moving its pages (`mremap`), not copying them. Arrays whose
//! sizes are guessed together (a plan's) share one mapping, a [`Room`].
//! Elsewhere than Linux it stays a `Vec`.

use crate::mem::huge::{grow, map, unmap, Mapping, WORTH_HUGE};
use std::mem::{align_of, size_of, ManuallyDrop};
use std::ops::{Deref, DerefMut};
use std::ptr::{self, NonNull};
use std::sync::Arc;

/// Arrays move to their own mapping from this many bytes on, when growing.
/// Growth doubles, so by then half of the array has been faulted in 4 KiB
/// pages already; a mapping pays off for the other half.
const MAP_FROM: usize = 1 << 20;

/// An array whose size is known in advance starts in its own mapping from
/// this many bytes on.
const MAP_KNOWN: usize = WORTH_HUGE;

pub(crate) struct BigVec<T> {
    ptr: NonNull<T>,
    len: usize,
    cap: usize,
    /// The mapping's length when the array is in its own mapping, or its
    /// part's in a shared one; `0` when `ptr`/`cap` are a `Vec`'s.
    mapped: usize,
    /// The mapping the array's part is in, when shared (a [`Room`]'s).
    shared: Option<Arc<Mapping>>,
}

/// Room for several arrays in one mapping: for arrays whose sizes are
/// guessed together, such as a plan's. Rounding up to whole huge pages then
/// happens once, not once per array (a mapping each zeroed about twice the
/// memory the arrays needed), and zeroing fresh memory is most of what its
/// page faults cost. The mapping
/// goes when the last array carved from it does.
pub(crate) struct Room {
    map: Option<Arc<Mapping>>,
    /// Where the next array starts.
    next: usize,
}

impl Room {
    /// Room for arrays of `bytes` in all: one mapping when that is big,
    /// else none (each array is then a `Vec`, or maps on its own).
    pub fn new(bytes: usize) -> Room {
        let map = match bytes >= MAP_KNOWN {
            true => map(bytes).map(|(ptr, len)| Arc::new(Mapping { ptr, len })),
            false => None,
        };
        Room { map, next: 0 }
    }

    /// The bytes to ask [`new`](Self::new) for, so that an array of `n`
    /// `T`s fits in whatever precedes it.
    pub fn size_of<T>(n: usize) -> usize {
        n.saturating_mul(size_of::<T>())
            .saturating_add(align_of::<T>().max(64))
    }

    /// An empty array with room for `n` elements, in the shared mapping
    /// while it has room (cache-line aligned), else on its own.
    pub fn vec<T>(&mut self, n: usize) -> BigVec<T> {
        let Some(map) = self.map.as_ref().filter(|_| size_of::<T>() > 0 && n > 0) else {
            return BigVec::with_capacity(n);
        };
        let align = align_of::<T>().max(64);
        let start = self.next.next_multiple_of(align);
        let bytes = n.saturating_mul(size_of::<T>());
        if start.saturating_add(bytes) > map.len {
            return BigVec::with_capacity(n);
        }
        self.next = start + bytes;
        BigVec {
            // SAFETY: `start + bytes <= len`: inside the mapping, aligned
            // for `T`, and no other array is given any of it.
            ptr: unsafe { NonNull::new_unchecked(map.ptr.as_ptr().add(start).cast::<T>()) },
            len: 0,
            cap: n,
            mapped: bytes,
            shared: Some(map.clone()),
        }
    }
}

// SAFETY: a `BigVec<T>` owns its elements like a `Vec<T>`.
unsafe impl<T: Send> Send for BigVec<T> {}
// SAFETY: as for `Vec<T>`: shared, it only hands out `&T`.
unsafe impl<T: Sync> Sync for BigVec<T> {}

impl<T> Default for BigVec<T> {
    fn default() -> Self {
        BigVec::from_vec(Vec::new())
    }
}

impl<T> BigVec<T> {
    fn from_vec(v: Vec<T>) -> Self {
        let mut v = ManuallyDrop::new(v);
        BigVec {
            // SAFETY: a `Vec`'s pointer is never null.
            ptr: unsafe { NonNull::new_unchecked(v.as_mut_ptr()) },
            len: v.len(),
            cap: v.capacity(),
            mapped: 0,
            shared: None,
        }
    }

    /// An empty array with room for `n` elements, in its own mapping at once
    /// when that is big: for a size known, or guessed, in advance. A guess
    /// too small only means growing later.
    pub fn with_capacity(n: usize) -> BigVec<T> {
        let mut v = BigVec::default();
        v.reserve_exact_total(n, MAP_KNOWN);
        v
    }

    #[inline]
    pub fn push(&mut self, x: T) {
        if self.len == self.cap {
            self.grow();
        }
        // SAFETY: `len < cap`: the slot is allocated and unused.
        unsafe { self.ptr.as_ptr().add(self.len).write(x) };
        self.len += 1;
    }

    pub fn pop(&mut self) -> Option<T> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        // SAFETY: the element at `len` was initialised and is now unused.
        Some(unsafe { self.ptr.as_ptr().add(self.len).read() })
    }

    /// Pushes every item of `items`, with room made once for all of them.
    pub fn extend(&mut self, items: impl ExactSizeIterator<Item = T>) {
        self.reserve_exact_total(self.len.saturating_add(items.len()), MAP_FROM);
        items.for_each(|x| self.push(x));
    }

    pub fn truncate(&mut self, len: usize) {
        if !std::mem::needs_drop::<T>() {
            self.len = self.len.min(len);
            return;
        }
        while self.len > len {
            drop(self.pop());
        }
    }

    #[cold]
    fn grow(&mut self) {
        let want = (self.cap * 2).max(16);
        self.reserve_exact_total(want, MAP_FROM);
    }

    /// Makes room for `total` elements in all, in a mapping of its own from
    /// `map_from` bytes on.
    fn reserve_exact_total(&mut self, total: usize, map_from: usize) {
        if total <= self.cap {
            return;
        }
        let bytes = total.saturating_mul(size_of::<T>().max(1));
        if self.mapped > 0 && self.shared.is_none() {
            // SAFETY: `ptr`/`mapped` are our mapping; on success the
            // elements are at the start of the new one.
            if let Some((mem, len)) = unsafe { grow(self.ptr.cast(), self.mapped, bytes) } {
                self.ptr = mem.cast::<T>();
                self.cap = len / size_of::<T>();
                self.mapped = len;
                return;
            }
        }
        if bytes >= map_from && size_of::<T>() > 0 {
            if let Some((mem, len)) = map(bytes) {
                let fresh = mem.cast::<T>();
                // SAFETY: the new mapping holds `total` elements; the old
                // `len` move over bitwise and the old storage is released
                // without dropping them.
                unsafe {
                    ptr::copy_nonoverlapping(self.ptr.as_ptr(), fresh.as_ptr(), self.len);
                    self.release_storage();
                }
                self.ptr = fresh;
                self.cap = len / size_of::<T>();
                self.mapped = len;
                return;
            }
        }
        // An ordinary `Vec` (small, or no mapping to be had).
        let v = if self.mapped == 0 {
            // SAFETY: `ptr`/`cap` are a `Vec`'s when `mapped == 0`, and the
            // `Vec` takes the elements over.
            let mut v = unsafe { Vec::from_raw_parts(self.ptr.as_ptr(), self.len, self.cap) };
            self.len = 0;
            self.cap = 0;
            v.reserve_exact(total - v.len());
            v
        } else {
            let mut v = Vec::with_capacity(total);
            // SAFETY: the elements move over bitwise, then the mapping goes
            // without dropping them.
            unsafe {
                ptr::copy_nonoverlapping(self.ptr.as_ptr(), v.as_mut_ptr(), self.len);
                v.set_len(self.len);
                self.release_storage();
            }
            v
        };
        // The old value owns nothing any more.
        std::mem::forget(std::mem::replace(self, BigVec::from_vec(v)));
    }

    /// Frees the storage without dropping the elements.
    ///
    /// SAFETY: the elements must have been moved out or be dropped already.
    unsafe fn release_storage(&mut self) {
        if self.shared.take().is_some() {
            // A part of a shared mapping, which goes with its last array.
        } else if self.mapped > 0 {
            // SAFETY: the mapping is ours alone, and its elements are gone
            // (the caller's promise).
            unsafe { unmap(self.ptr.cast(), self.mapped) };
        } else {
            // SAFETY: `ptr`/`cap` came from a `Vec<T>`, whose elements are
            // gone (the caller's promise): freed as an empty one.
            drop(unsafe { Vec::from_raw_parts(self.ptr.as_ptr(), 0, self.cap) });
        }
    }
}

impl<T> Drop for BigVec<T> {
    fn drop(&mut self) {
        // SAFETY: the first `len` elements are initialised and ours.
        unsafe {
            ptr::drop_in_place(ptr::slice_from_raw_parts_mut(self.ptr.as_ptr(), self.len));
            self.release_storage();
        }
    }
}

impl<T> Deref for BigVec<T> {
    type Target = [T];
    #[inline]
    fn deref(&self) -> &[T] {
        // SAFETY: the first `len` elements are initialised.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T> DerefMut for BigVec<T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as `deref`, and `&mut self` is unique.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    // Too slow under Miri (minutes): a megabyte of small elements pushed one
    // at a time. `page_sized_elements_map_grow_and_drop_once` runs the
    // mapped paths there instead.
    #[test]
    #[cfg_attr(miri, ignore = "too slow under Miri")]
    fn grows_past_the_mapping_size_and_keeps_its_elements() {
        let mut v: BigVec<u64> = BigVec::default();
        // Into a mapping, then through several moves of it.
        for i in 0..(9 * MAP_FROM / 8) as u64 {
            v.push(i);
        }
        assert_eq!(v.len(), 9 * MAP_FROM / 8);
        assert!(v.iter().enumerate().all(|(i, &x)| x == i as u64));
        v.truncate(10);
        assert_eq!(&v[..], &(0..10).collect::<Vec<u64>>()[..]);
        assert_eq!(v.pop(), Some(9));
    }

    // Too slow under Miri (minutes): a megabyte of small elements pushed one
    // at a time. `page_sized_elements_map_grow_and_drop_once` runs the
    // mapped paths there instead.
    #[test]
    #[cfg_attr(miri, ignore = "too slow under Miri")]
    fn drops_every_element_once() {
        let one = Arc::new(());
        let mut v = BigVec::default();
        for _ in 0..(MAP_FROM / 8 + 100) {
            v.push(one.clone());
        }
        v.truncate(5);
        assert_eq!(Arc::strong_count(&one), 6);
        drop(v);
        assert_eq!(Arc::strong_count(&one), 1);
    }

    /// Arrays carved from one room share its mapping, each in its own
    /// aligned part; one that outgrows its part moves out with its elements;
    /// the mapping outlives the room and goes with its last array.
    // Too slow under Miri (minutes): a megabyte of small elements pushed one
    // at a time. `page_sized_elements_map_grow_and_drop_once` runs the
    // mapped paths there instead.
    #[test]
    #[cfg_attr(miri, ignore = "too slow under Miri")]
    fn arrays_share_a_room_and_grow_out_of_it() {
        // Two arrays and a small one fill one huge page; a fourth does not fit.
        let n = crate::mem::huge::HUGE / 16 - 32;
        let mut room = Room::new(2 * Room::size_of::<u64>(n) + Room::size_of::<u8>(3));
        let mut a: BigVec<u64> = room.vec(n);
        let mut b: BigVec<u8> = room.vec(3);
        let mut c: BigVec<u64> = room.vec(n);
        // Past the room: an array of its own.
        let d: BigVec<u64> = room.vec(n);
        drop(room);
        if cfg!(target_os = "linux") {
            let map = a.shared.clone().expect("in the room");
            assert!(Arc::ptr_eq(&map, b.shared.as_ref().unwrap()));
            assert!(Arc::ptr_eq(&map, c.shared.as_ref().unwrap()));
            assert!(d.shared.is_none());
            let (a0, b0, c0) = (
                a.ptr.as_ptr() as usize,
                b.ptr.as_ptr() as usize,
                c.ptr.as_ptr() as usize,
            );
            assert!(a0 + 8 * n <= b0 && b0 + 3 <= c0 && c0 % 64 == 0);
            assert!(c0 + 8 * n <= map.ptr.as_ptr() as usize + map.len);
        }
        for i in 0..n as u64 {
            a.push(i);
            c.push(i + 1);
        }
        b.extend_from_slice_for_test(&[7, 8, 9, 10]);
        a.push(n as u64);
        assert!(a.shared.is_none());
        drop(c);
        assert!(a.iter().enumerate().all(|(i, &x)| x == i as u64));
        assert_eq!(&b[..], &[7, 8, 9, 10]);
    }

    impl<T: Copy> BigVec<T> {
        fn extend_from_slice_for_test(&mut self, xs: &[T]) {
            xs.iter().for_each(|&x| self.push(x));
        }
    }

    // Too slow under Miri (minutes): a megabyte of small elements pushed one
    // at a time. `page_sized_elements_map_grow_and_drop_once` runs the
    // mapped paths there instead.
    #[test]
    #[cfg_attr(miri, ignore = "too slow under Miri")]
    fn a_big_known_size_is_mapped_at_once_and_a_small_one_is_not() {
        let mut big: BigVec<u64> = BigVec::with_capacity(MAP_KNOWN / 8);
        let small: BigVec<u64> = BigVec::with_capacity(MAP_KNOWN / 8 - 1);
        assert_eq!(small.mapped, 0);
        assert!(small.cap >= MAP_KNOWN / 8 - 1);
        if cfg!(target_os = "linux") {
            assert!(big.mapped >= MAP_KNOWN);
        }
        let cap = big.cap;
        for i in 0..cap as u64 + 1 {
            big.push(i);
        }
        assert!(big.iter().enumerate().all(|(i, &x)| x == i as u64));
    }

    /// The mapped paths in few pushes, with elements of a page each (cheap
    /// enough for Miri): mapped at once, grown past the mapping (its pages
    /// moved, or copied where `grow` declines, as under Miri), shared in a
    /// room, and every element dropped once.
    #[test]
    fn page_sized_elements_map_grow_and_drop_once() {
        type Page = ([u64; 511], Arc<()>);
        assert_eq!(size_of::<Page>(), 4096);
        let one = Arc::new(());
        let page = |i: u64| ([i; 511], one.clone());
        let mut v: BigVec<Page> = BigVec::with_capacity(MAP_KNOWN / 4096);
        if cfg!(target_os = "linux") {
            assert!(v.mapped >= MAP_KNOWN);
        }
        let n = crate::mem::huge::HUGE / 4096 + 1;
        for i in 0..n as u64 {
            v.push(page(i));
        }
        assert!(v.mapped >= n * 4096 || !cfg!(target_os = "linux"));
        assert!(v
            .iter()
            .enumerate()
            .all(|(i, p)| p.0[0] == i as u64 && p.0[510] == i as u64));
        assert_eq!(Arc::strong_count(&one), n + 1);
        v.truncate(3);
        assert_eq!(Arc::strong_count(&one), 4);
        // Two arrays in one room; the first outgrows its part and moves out.
        let mut room = Room::new(2 * Room::size_of::<Page>(64));
        let mut a: BigVec<Page> = room.vec(64);
        let mut b: BigVec<Page> = room.vec(64);
        drop(room);
        for i in 0..65 {
            a.push(page(i));
        }
        b.push(page(7));
        assert!(a.shared.is_none());
        assert!(a.iter().enumerate().all(|(i, p)| p.0[0] == i as u64));
        assert_eq!(b[0].0[9], 7);
        drop((v, a, b));
        assert_eq!(Arc::strong_count(&one), 1);
    }
}
