//! Memory of rdask's own for big, fresh arrays: 2 MiB-aligned anonymous
//! mappings with transparent huge pages requested (Linux), so that one page
//! fault brings in 2 MiB. The node slab's big chunks and the planner's big
//! arrays ([`BigVec`](crate::bigvec::BigVec)) come from here. Elsewhere than
//! Linux there are no mappings and callers use the allocator.

use std::ptr::NonNull;

/// A mapping from [`map`] that several arrays share (see
/// `bigvec::Room`): unmapped when the last of them lets go of it.
pub(crate) struct Mapping {
    pub(crate) ptr: NonNull<u8>,
    pub(crate) len: usize,
}

// SAFETY: the mapping is plain memory; who may touch which part of it is
// up to the arrays carved from it, each of which owns its part.
unsafe impl Send for Mapping {}
unsafe impl Sync for Mapping {}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are a live mapping from `map`, and nothing
        // refers into it any more (the arrays hold this value while alive).
        unsafe { unmap(self.ptr, self.len) }
    }
}

/// One huge page.
pub(crate) const HUGE: usize = 2 << 20;

/// The smallest fresh memory worth a huge page of its own: the first touch
/// of one (about 240 µs on the benchmark VM) costs what about 96 faults of
/// 4 KiB pages (2.5 µs each) do, i.e. 384 KiB.
pub(crate) const WORTH_HUGE: usize = 384 << 10;

/// A fresh 2 MiB-aligned mapping of at least `bytes` (rounded up to whole
/// huge pages), with huge pages requested: the mapping and its length.
#[cfg(target_os = "linux")]
pub(crate) fn map(bytes: usize) -> Option<(NonNull<u8>, usize)> {
    let len = bytes.checked_add(HUGE - 1)? & !(HUGE - 1);
    let span = len.checked_add(HUGE)?;
    // SAFETY: an anonymous private mapping touches no existing memory; the
    // parts unmapped are parts of it.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            span,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if p == libc::MAP_FAILED {
            return None;
        }
        let start = p as usize;
        let aligned = (start + HUGE - 1) & !(HUGE - 1);
        if aligned > start {
            libc::munmap(p, aligned - start);
        }
        let tail = start + span - (aligned + len);
        if tail > 0 {
            libc::munmap((aligned + len) as *mut libc::c_void, tail);
        }
        // Only advice: without huge pages the array still works.
        libc::madvise(aligned as *mut libc::c_void, len, libc::MADV_HUGEPAGE);
        NonNull::new(aligned as *mut u8).map(|p| (p, len))
    }
}

/// Grows mapping `p` of `old` bytes (one of [`map`]'s) to at least `bytes`
/// by moving its pages into a fresh mapping instead of copying them (no
/// copy, no fault on the moved part; 2 MiB-aligned, so huge pages stay
/// huge): the new mapping and its length. `None`: `p` is unchanged.
///
/// SAFETY: `p` and `old` are a live mapping from [`map`]; on success it is
/// gone (its contents are at the start of the new one).
#[cfg(target_os = "linux")]
pub(crate) unsafe fn grow(
    p: NonNull<u8>,
    old: usize,
    bytes: usize,
) -> Option<(NonNull<u8>, usize)> {
    let (fresh, len) = map(bytes)?;
    let moved = libc::mremap(
        p.as_ptr().cast(),
        old,
        old,
        libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
        fresh.as_ptr().cast::<libc::c_void>(),
    );
    if moved == libc::MAP_FAILED {
        unmap(fresh, len);
        return None;
    }
    Some((fresh, len))
}

#[cfg(target_os = "linux")]
pub(crate) unsafe fn unmap(p: NonNull<u8>, len: usize) {
    libc::munmap(p.as_ptr().cast(), len);
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn map(_: usize) -> Option<(NonNull<u8>, usize)> {
    None
}

#[cfg(not(target_os = "linux"))]
pub(crate) unsafe fn grow(_: NonNull<u8>, _: usize, _: usize) -> Option<(NonNull<u8>, usize)> {
    None
}

#[cfg(not(target_os = "linux"))]
pub(crate) unsafe fn unmap(_: NonNull<u8>, _: usize) {}
