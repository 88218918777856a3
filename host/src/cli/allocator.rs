//! The global allocator of the `berth` binary (and of the benches, which
//! must measure what it runs): mimalloc, called the way its C API is meant
//! to be called.
//!
//! Why mimalloc: a message's allocations are made on one worker thread and
//! freed on another, where glibc's arenas contend on a lock (measured:
//! ~13% of the host's CPU under NATS load, BENCHMARKS.md).
//!
//! Why not the `mimalloc` crate's `MiMalloc`: it hands every allocation to
//! `mi_malloc_aligned`, even those of alignment 8. Its fast path only takes
//! a block when the size class's page has one free and aligned; otherwise
//! the generic path runs and, for a size class that is not a power of two
//! (a 40-byte `Box` goes to the 48-byte class), over-allocates with a
//! larger block and an offset. Under NATS load that was two allocations
//! per message, ~320 instructions of the host's ~9,200 per message
//! (callgrind, BENCHMARKS.md "Instructions per message"). Rust's own `System` allocator
//! draws the same line: an alignment plain `malloc` already guarantees goes
//! to plain `malloc`.

#![allow(unsafe_code)] // a global allocator is unsafe by its nature; each call is justified below

use std::alloc::{GlobalAlloc, Layout};

use libmimalloc_sys as mi;

/// The alignment of every block `mi_malloc` returns whose size is a
/// multiple of it (mimalloc's `MI_MAX_ALIGN_SIZE`, C's `max_align_t`).
const NATURAL_ALIGN: usize = 16;

/// mimalloc as the global allocator. Install with
/// `#[global_allocator] static ALLOCATOR: berth::allocator::Allocator = berth::allocator::Allocator;`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Allocator;

/// Whether a block of `size` bytes from plain `mi_malloc` is aligned to
/// `align`: its size classes are multiples of 8 (of 16 above 16 bytes) and
/// its pages start 16-aligned, so any `size` that is a multiple of an
/// `align` up to 16 lands on a multiple of `align`.
#[inline]
fn natural(size: usize, align: usize) -> bool {
    align <= NATURAL_ALIGN && size.is_multiple_of(align)
}

// SAFETY (for every method): the `GlobalAlloc` contract gives a non-zero
// size and a power-of-two alignment, and `ptr` was returned by this
// allocator with `layout`. Each call goes to mimalloc's plain function
// when `natural` says its blocks already have the alignment, and to the
// `_aligned` variant otherwise; both return null on failure, as
// `GlobalAlloc` expects, and `mi_free` takes blocks from either.
unsafe impl GlobalAlloc for Allocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let (size, align) = (layout.size(), layout.align());
        // SAFETY: see above.
        unsafe {
            if natural(size, align) {
                mi::mi_malloc(size).cast()
            } else {
                mi::mi_malloc_aligned(size, align).cast()
            }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let (size, align) = (layout.size(), layout.align());
        // SAFETY: see above.
        unsafe {
            if natural(size, align) {
                mi::mi_zalloc(size).cast()
            } else {
                mi::mi_zalloc_aligned(size, align).cast()
            }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: see above.
        unsafe { mi::mi_free(ptr.cast()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: see above; `new_size` is non-zero and, rounded up to
        // `layout.align()`, does not overflow (the contract of `realloc`).
        unsafe {
            if natural(new_size, layout.align()) {
                mi::mi_realloc(ptr.cast(), new_size).cast()
            } else {
                mi::mi_realloc_aligned(ptr.cast(), new_size, layout.align()).cast()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every layout a program may ask for comes back aligned and usable,
    /// through each path: plain, aligned, zeroed and grown.
    #[test]
    fn blocks_have_the_alignment_asked_for() {
        let a = Allocator;
        for align in [1, 2, 4, 8, 16, 32, 64, 128, 4096] {
            for size in [1, 3, 8, 24, 40, 48, 100, 1000, 5000, 70_000] {
                let Ok(layout) = Layout::from_size_align(size, align) else {
                    continue;
                };
                // SAFETY: a non-zero size and a valid layout; every block is
                // freed with the layout it was made with.
                unsafe {
                    let p = a.alloc(layout);
                    assert!(!p.is_null() && p.addr() % align == 0, "alloc {size}/{align}");
                    p.write_bytes(0xab, size);
                    let grown = a.realloc(p, layout, size * 3);
                    assert!(!grown.is_null() && grown.addr() % align == 0, "realloc {size}/{align}");
                    assert_eq!(*grown.add(size - 1), 0xab, "realloc keeps the contents");
                    a.dealloc(grown, Layout::from_size_align(size * 3, align).expect("valid"));
                    let z = a.alloc_zeroed(layout);
                    assert!(!z.is_null() && z.addr() % align == 0, "alloc_zeroed {size}/{align}");
                    assert!((0..size).all(|i| *z.add(i) == 0), "alloc_zeroed zeroes");
                    a.dealloc(z, layout);
                }
            }
        }
    }

    #[test]
    fn only_alignments_mimalloc_guarantees_take_the_plain_path() {
        assert!(natural(40, 8));
        assert!(natural(48, 16));
        assert!(!natural(24, 16), "24 bytes may sit at an 8-aligned offset");
        assert!(!natural(64, 32));
    }
}
