//! `BigVec<T>`: a growable array for the planner's per-task data, which can
//! take huge pages once it is big.
//!
//! Why: a plan touches a few dozen bytes of fresh memory per task, once. On
//! machines where a page fault is slow (2–5 µs per 4 KiB page on the VM the
//! benchmarks run on) those faults are a large part of a compute. Small
//! arrays stay ordinary `Vec`s; past [`MAP_FROM`] bytes the array moves to a
//! mapping of its own, 2 MiB-aligned, with transparent huge pages requested
//! (Linux), where one fault brings in 2 MiB. Growth doubles; a mapped array
//! grows by moving its pages (`mremap`), not copying them. Elsewhere than
//! Linux it stays a `Vec`.

use crate::huge::{grow, map, unmap, WORTH_HUGE};
use std::mem::{size_of, ManuallyDrop};
use std::ops::{Deref, DerefMut};
use std::ptr::{self, NonNull};

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
    /// The mapping's length when the array is in its own mapping; `0` when
    /// `ptr`/`cap` are a `Vec`'s.
    mapped: usize,
}

// SAFETY: a `BigVec<T>` owns its elements like a `Vec<T>`.
unsafe impl<T: Send> Send for BigVec<T> {}
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

    pub fn truncate(&mut self, len: usize) {
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
        if self.mapped > 0 {
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
        if self.mapped > 0 {
            unmap(self.ptr.cast(), self.mapped);
        } else {
            drop(Vec::from_raw_parts(self.ptr.as_ptr(), 0, self.cap));
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

    #[test]
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

    #[test]
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

    #[test]
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
}
