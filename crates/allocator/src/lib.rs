//! lookout's global allocator in its static musl binaries (issue 18):
//! dlmalloc, locked with the standard library's `Mutex`.
//!
//! musl's own malloc returns freed memory to the kernel at once, so every
//! plain-HTTP probe paid mmap and munmap calls and page faults; dlmalloc keeps
//! what it frees. dlmalloc's own global allocator (its `global` feature) locks
//! a pthread mutex around every call, and under HTTPS load musl's
//! `pthread_mutex_lock` and `pthread_mutex_unlock` with dlmalloc's wrappers
//! around them were 3.9% of the binary's CPU samples (bench/RESULTS.md,
//! "Where the time goes"). The standard library's `Mutex` is a futex: one
//! atomic compare-and-swap to lock and one swap to unlock, inlined, with a
//! system call only when another thread holds it.
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOCATOR: lookout_allocator::Allocator = lookout_allocator::Allocator::new();
//! ```

use std::{
    alloc::{GlobalAlloc, Layout},
    sync::{Mutex, MutexGuard, PoisonError},
};

use dlmalloc::Dlmalloc;

/// dlmalloc's heap behind a lock: a `GlobalAlloc` for `#[global_allocator]`.
pub struct Allocator(Mutex<Dlmalloc>);

impl Allocator {
    /// An empty heap; memory comes from `mmap` as it is first needed.
    #[must_use]
    pub const fn new() -> Self {
        Self(Mutex::new(Dlmalloc::new()))
    }

    /// The heap, locked. A panic cannot leave it inconsistent (dlmalloc does
    /// not panic, and no caller code runs under the lock), so a poisoned lock
    /// is taken as it is rather than making every later allocation fail.
    fn heap(&self) -> MutexGuard<'_, Dlmalloc> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for Allocator {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: each method passes `GlobalAlloc`'s contract on to the `Dlmalloc`
// method of the same name, whose contract is the same (dlmalloc's docs), with
// the heap locked for the call: one thread at a time, as `Dlmalloc` (`Send`,
// not `Sync`) requires.
unsafe impl GlobalAlloc for Allocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's layout, as `GlobalAlloc::alloc` got it.
        unsafe { self.heap().malloc(layout.size(), layout.align()) }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as in `alloc`.
        unsafe { self.heap().calloc(layout.size(), layout.align()) }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator with `layout` (the caller's promise).
        unsafe { self.heap().free(ptr, layout.size(), layout.align()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from this allocator with `layout`, and `new_size`
        // is valid for `layout.align()` (the caller's promises).
        unsafe {
            self.heap()
                .realloc(ptr, layout.size(), layout.align(), new_size)
        }
    }
}
