//! `memcpy` and `memmove` for lookout's static x86_64 musl binary (issue 18).
//!
//! musl's x86_64 `memcpy` is one `rep movsq`, with the bytes before an 8-byte
//! aligned destination and the tail moved one `movsb` at a time: every call
//! pays a string instruction's start-up however short the copy, and most of
//! the ~750 copies of an HTTPS probe are short (a header value, a key, a small
//! struct). Under load it was 8.7% of the musl binary's CPU against 2.5% for
//! glibc's `memmove` in the glibc build, and the musl binary served 0.91x the
//! glibc build's probes; with this crate, 0.96-1.02x (bench/RESULTS.md,
//! "memcpy: what musl still cost after dlmalloc").
//!
//! Here a copy of up to 64 bytes is two or four overlapping unaligned loads
//! followed by as many stores (so overlap of any kind is safe), and a longer
//! one is a single `rep movsb`: never slower than musl's `rep movsq`, without
//! its byte loops, and quick for short lengths on CPUs with FSRM. A backward
//! `memmove` longer than 64 bytes is musl's own `std; rep movsb; cld`.
//!
//! The symbols are exported only when building for x86_64 musl, and reach a
//! binary only if it names this crate (`extern crate` in lookout's main.rs).
//! On other targets the crate is the copy routines alone, for its tests; on
//! x86_64 musl its tests run with the symbols in place, so every copy the
//! test harness makes goes through them too (tests/artifacts/run.sh).
#![no_std]
// The copies below must not be turned back into calls to memcpy.
#![no_builtins]

#[cfg(test)]
extern crate std;

#[cfg(all(target_arch = "x86_64", any(test, target_env = "musl")))]
mod copy;

#[cfg(all(target_arch = "x86_64", target_env = "musl"))]
mod exports {
    /// C's `memcpy`: `dst` and `src` do not overlap (the caller's promise).
    ///
    /// # Safety
    /// `src` readable and `dst` writable for `n` bytes.
    #[unsafe(no_mangle)]
    unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
        // SAFETY: the caller's promise, passed on; without overlap a forward copy is right.
        unsafe { crate::copy::forward(dst, src, n) };
        dst
    }

    /// C's `memmove`: `dst` and `src` may overlap.
    ///
    /// # Safety
    /// `src` readable and `dst` writable for `n` bytes.
    #[unsafe(no_mangle)]
    unsafe extern "C" fn memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
        // SAFETY: the caller's promise, passed on.
        unsafe { crate::copy::moving(dst, src, n) };
        dst
    }
}
