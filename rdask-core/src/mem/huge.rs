//! Memory of rdask's own for big arrays: 2 MiB-aligned anonymous
//! mappings with transparent huge pages requested (Linux), so that one page
//! fault brings in 2 MiB. The node slab's big chunks and the planner's big
//! arrays ([`BigVec`](crate::mem::bigvec::BigVec)) come from here. Elsewhere than
//! Linux there are no mappings and callers use the allocator. A few freed
//! mappings are kept for reuse ([`Spares`]).

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
// SAFETY: as for `Send`: sharing it hands out nothing but the address.
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

/// The smallest fresh memory worth a huge page of its own: where the first
/// touch of a huge page costs what about 96 faults of 4 KiB pages do (as
/// measured on the benchmark VM: BENCHMARKS.md, "Engine notes"), i.e.
/// 384 KiB.
pub(crate) const WORTH_HUGE: usize = 384 << 10;

/// Freed mappings kept for reuse, most recent last, at most [`SPARE_MAX`]
/// bytes in all.
///
/// Why: the first touch of fresh memory is most of what a page fault costs
/// (the kernel zeroes the page), and a program
/// that builds and computes graphs over and over (a loop of `compute`s, a
/// benchmark) would otherwise map, zero and unmap the same slab chunks and
/// plan arrays each time. Like an allocator's retained memory, this keeps a
/// few recently freed mappings for the next request of the same length (a
/// slab chunk, or a plan of the same size), and no more: peak memory is
/// unchanged, and what stays after a computation is bounded.
///
/// The mappings are kept as pointers, not addresses, so that one handed out
/// again keeps its provenance (Miri checks accesses through it as precisely
/// as through a fresh one).
pub(crate) struct Spares {
    held: Vec<(NonNull<u8>, usize)>,
}

// SAFETY: the held mappings are plain memory that nothing refers into; the
// thread that takes one out owns it from then on.
unsafe impl Send for Spares {}

/// The most the spare mappings may hold: eight huge pages.
pub(crate) const SPARE_MAX: usize = 8 * HUGE;

impl Spares {
    pub(crate) const fn new() -> Spares {
        Spares { held: Vec::new() }
    }

    /// A kept mapping of exactly `len` bytes.
    fn take(&mut self, len: usize) -> Option<NonNull<u8>> {
        let i = self.held.iter().rposition(|&(_, l)| l == len)?;
        Some(self.held.remove(i).0)
    }

    /// Keeps mapping `p` of `len` bytes; returns what no longer fits (the
    /// oldest first, or `p` itself when it alone is too big), to unmap.
    fn keep(&mut self, p: NonNull<u8>, len: usize) -> Vec<(NonNull<u8>, usize)> {
        if len > SPARE_MAX {
            return vec![(p, len)];
        }
        self.held.push((p, len));
        let mut total: usize = self.held.iter().map(|&(_, l)| l).sum();
        let mut out = Vec::new();
        while total > SPARE_MAX {
            let (q, l) = self.held.remove(0);
            total -= l;
            out.push((q, l));
        }
        out
    }
}

#[cfg(target_os = "linux")]
static SPARES: std::sync::Mutex<Spares> = std::sync::Mutex::new(Spares::new());

#[cfg(target_os = "linux")]
fn spares() -> std::sync::MutexGuard<'static, Spares> {
    SPARES.lock().unwrap_or_else(|e| e.into_inner())
}

/// A 2 MiB-aligned mapping of at least `bytes` (rounded up to whole huge
/// pages), with huge pages requested: the mapping and its length. It may be
/// a spare one (see [`Spares`]): its contents are then not zero.
#[cfg(all(target_os = "linux", not(miri)))]
pub(crate) fn map(bytes: usize) -> Option<(NonNull<u8>, usize)> {
    let len = bytes.checked_add(HUGE - 1)? & !(HUGE - 1);
    if let Some(p) = spares().take(len) {
        return Some((p, len));
    }
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
#[cfg(all(target_os = "linux", not(miri)))]
pub(crate) unsafe fn grow(
    p: NonNull<u8>,
    old: usize,
    bytes: usize,
) -> Option<(NonNull<u8>, usize)> {
    let (fresh, len) = map(bytes)?;
    // SAFETY: `p`/`old` is a live mapping (the caller's promise), moved
    // over `fresh`, which is ours and at least as big.
    let moved = unsafe {
        libc::mremap(
            p.as_ptr().cast(),
            old,
            old,
            libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
            fresh.as_ptr().cast::<libc::c_void>(),
        )
    };
    if moved == libc::MAP_FAILED {
        // SAFETY: `fresh` is ours, and nothing refers into it.
        unsafe { unmap(fresh, len) };
        return None;
    }
    Some((fresh, len))
}

// Under Miri: Miri models `mmap` and `munmap` of a whole mapping only. It
// rejects the trim above (a partial `munmap`) and has no `mremap` or
// `madvise`. So it gets exactly `len` bytes (page-aligned, not 2 MiB-aligned:
// nothing relies on more than the types' own alignment), and `grow` declines
// (callers then copy into a fresh mapping, as when `mremap` fails). The
// lengths, the spares and `unmap` are the same as natively, so the slab's
// mapped chunks and the reuse of spares still run under Miri.

/// [`map`] for Miri: a page-aligned mapping of exactly the rounded length.
#[cfg(all(target_os = "linux", miri))]
pub(crate) fn map(bytes: usize) -> Option<(NonNull<u8>, usize)> {
    let len = bytes.checked_add(HUGE - 1)? & !(HUGE - 1);
    if let Some(p) = spares().take(len) {
        return Some((p, len));
    }
    // SAFETY: an anonymous private mapping touches no existing memory.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return None;
    }
    NonNull::new(p.cast::<u8>()).map(|p| (p, len))
}

/// [`grow`] for Miri, which has no `mremap`: never; the caller copies.
///
/// SAFETY: none needed; `p` is left as it is.
#[cfg(all(target_os = "linux", miri))]
pub(crate) unsafe fn grow(_: NonNull<u8>, _: usize, _: usize) -> Option<(NonNull<u8>, usize)> {
    None
}

/// Gives back mapping `p` of `len` bytes (one of [`map`]'s, whole): kept
/// as a spare, or unmapped.
///
/// SAFETY: nothing refers into the mapping any more.
#[cfg(target_os = "linux")]
pub(crate) unsafe fn unmap(p: NonNull<u8>, len: usize) {
    let out = spares().keep(p, len);
    for (q, l) in out {
        // SAFETY: a mapping of ours nothing refers into (the caller's
        // promise, or an old spare's).
        unsafe { libc::munmap(q.as_ptr().cast::<libc::c_void>(), l) };
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in mapping at address `x`, never dereferenced.
    fn at(x: usize) -> NonNull<u8> {
        NonNull::new(std::ptr::without_provenance_mut(x)).unwrap()
    }

    /// Spares are handed out for their own length only, most recent first,
    /// and never hold more than the bound: the oldest go first.
    #[test]
    fn spares_are_bounded_and_reused_by_length() {
        let mut s = Spares::new();
        assert!(s.keep(at(HUGE), HUGE).is_empty());
        assert!(s.keep(at(4 * HUGE), 2 * HUGE).is_empty());
        assert!(s.keep(at(8 * HUGE), HUGE).is_empty());
        assert_eq!(s.take(3 * HUGE), None);
        assert_eq!(s.take(HUGE), Some(at(8 * HUGE)));
        // 1 + 2 held; 5 more fill the bound, and 2 more push out the oldest
        // until they fit.
        assert!(s.keep(at(16 * HUGE), 5 * HUGE).is_empty());
        assert_eq!(
            s.keep(at(32 * HUGE), 2 * HUGE),
            vec![(at(HUGE), HUGE), (at(4 * HUGE), 2 * HUGE)]
        );
        // Too big alone: not kept.
        assert_eq!(
            s.keep(at(64 * HUGE), 9 * HUGE),
            vec![(at(64 * HUGE), 9 * HUGE)]
        );
        assert_eq!(s.take(2 * HUGE), Some(at(32 * HUGE)));
        assert_eq!(s.take(2 * HUGE), None);
        assert_eq!(s.take(5 * HUGE), Some(at(16 * HUGE)));
        assert!(s.held.is_empty());
    }
}
