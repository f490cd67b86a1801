//! The copy routines behind the exported symbols.

use core::{
    arch::asm,
    ptr::{read_unaligned, write_unaligned},
};

/// Copies `n` bytes from `src` to `dst`, front to back. Right for any overlap
/// when `n <= 64` (every byte is read before any is written), and for
/// `dst < src` at any length (`rep movsb` moves one byte at a time, as far as
/// the result shows).
///
/// # Safety
/// `src` readable and `dst` writable for `n` bytes.
#[inline(always)]
pub(crate) unsafe fn forward(dst: *mut u8, src: *const u8, n: usize) {
    if n <= 16 {
        // SAFETY: the caller's promise covers these `n` bytes.
        unsafe { up_to_16(dst, src, n) }
    } else if n <= 32 {
        // SAFETY: 16 < n <= 32: both 16-byte halves lie within the n bytes.
        unsafe { pair::<u128>(dst, src, n) }
    } else if n <= 64 {
        // SAFETY: 32 < n <= 64: the four 16-byte blocks (0, 16, n-32, n-16)
        // lie within the n bytes; all are read before any is written.
        unsafe {
            let a = read_unaligned(src.cast::<u128>());
            let b = read_unaligned(src.add(16).cast::<u128>());
            let c = read_unaligned(src.add(n - 32).cast::<u128>());
            let d = read_unaligned(src.add(n - 16).cast::<u128>());
            write_unaligned(dst.cast::<u128>(), a);
            write_unaligned(dst.add(16).cast::<u128>(), b);
            write_unaligned(dst.add(n - 32).cast::<u128>(), c);
            write_unaligned(dst.add(n - 16).cast::<u128>(), d);
        }
    } else {
        // SAFETY: rep movsb moves rcx bytes from rsi to rdi, front to back
        // (the direction flag is clear at every call, as the ABI requires),
        // touching no stack and no flags; the caller promised the n bytes.
        unsafe {
            asm!(
                "rep movsb",
                inout("rcx") n => _,
                inout("rdi") dst => _,
                inout("rsi") src => _,
                options(nostack, preserves_flags),
            );
        }
    }
}

/// `memmove`: right for every overlap.
///
/// # Safety
/// `src` readable and `dst` writable for `n` bytes.
#[inline(always)]
pub(crate) unsafe fn moving(dst: *mut u8, src: *const u8, n: usize) {
    // dst - src >= n (wrapping): dst is below src or past its end, so a
    // front-to-back copy never reads a byte it already overwrote.
    if n <= 64 || (dst as usize).wrapping_sub(src as usize) >= n {
        // SAFETY: the caller's promise; forward is right here (see its doc).
        unsafe { forward(dst, src, n) }
    } else {
        // SAFETY: dst overlaps the end of src: copy back to front, from the
        // last byte down (direction flag set, and cleared again as the ABI
        // requires); n > 64, so n - 1 is in range.
        unsafe {
            asm!(
                "std",
                "rep movsb",
                "cld",
                inout("rcx") n => _,
                inout("rdi") dst.add(n - 1) => _,
                inout("rsi") src.add(n - 1) => _,
                options(nostack),
            );
        }
    }
}

/// `n <= 16` bytes as two overlapping words of the largest size that fits.
///
/// # Safety
/// `src` readable and `dst` writable for `n` bytes, `n <= 16`.
#[inline(always)]
unsafe fn up_to_16(dst: *mut u8, src: *const u8, n: usize) {
    if n >= 8 {
        // SAFETY: 8 <= n <= 16, the caller's n bytes.
        unsafe { pair::<u64>(dst, src, n) }
    } else if n >= 4 {
        // SAFETY: 4 <= n < 8, the caller's n bytes.
        unsafe { pair::<u32>(dst, src, n) }
    } else if n >= 2 {
        // SAFETY: 2 <= n < 4, the caller's n bytes.
        unsafe { pair::<u16>(dst, src, n) }
    } else if n == 1 {
        // SAFETY: the caller's one byte.
        unsafe { write_unaligned(dst, read_unaligned(src)) }
    }
}

/// Copies `n` bytes, `size_of::<T>() <= n <= 2 * size_of::<T>()`, as the
/// first and the last `T`, both read before either is written.
///
/// # Safety
/// `src` readable and `dst` writable for `n` bytes, `n` in that range.
#[inline(always)]
unsafe fn pair<T: Copy>(dst: *mut u8, src: *const u8, n: usize) {
    let tail = n - size_of::<T>();
    // SAFETY: the caller's range for n puts both words within the n bytes.
    unsafe {
        let first = read_unaligned(src.cast::<T>());
        let last = read_unaligned(src.add(tail).cast::<T>());
        write_unaligned(dst.cast::<T>(), first);
        write_unaligned(dst.add(tail).cast::<T>(), last);
    }
}

#[cfg(test)]
mod tests {
    use std::{vec, vec::Vec};

    use super::{forward, moving};

    /// Lengths around every branch edge and the `rep movsb` path.
    fn lengths() -> impl Iterator<Item = usize> {
        (0..=300).chain([511, 512, 513, 1000, 4095, 4096, 4097, 65_537])
    }

    fn pattern(n: usize, seed: u8) -> Vec<u8> {
        (0..n)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    /// Every length at every source and destination alignment: the bytes
    /// arrive, and not one byte either side of the destination changes.
    #[test]
    fn forward_copies_exactly_n_bytes_at_any_alignment() {
        for n in lengths() {
            let alignments = if n > 300 { 0..4 } else { 0..17 };
            for s in alignments.clone() {
                for d in alignments.clone() {
                    let src = pattern(s + n, 7);
                    let mut dst = vec![0xa5_u8; d + n + 32];
                    // SAFETY: src has s + n bytes, dst d + n + 32.
                    unsafe { forward(dst.as_mut_ptr().add(d), src.as_ptr().add(s), n) };
                    assert_eq!(&dst[d..d + n], &src[s..s + n], "n {n}, src +{s}, dst +{d}");
                    assert!(dst[..d].iter().all(|&b| b == 0xa5), "before dst: n {n}");
                    assert!(dst[d + n..].iter().all(|&b| b == 0xa5), "after dst: n {n}");
                }
            }
        }
    }

    /// Overlap either way, at every distance up to past the end, agrees with
    /// the standard library's copy_within on a copy of the buffer.
    #[test]
    fn moving_agrees_with_copy_within_for_every_overlap() {
        for n in lengths().filter(|&n| n <= 4097) {
            let distances = if n > 300 {
                vec![1, 7, 8, 63, 64, 65, n]
            } else {
                (1..=n.max(1) + 2).collect()
            };
            for distance in distances {
                for (from, to) in [(0, distance), (distance, 0)] {
                    let mut ours = pattern(n + distance + 8, 3);
                    let mut expected = ours.clone();
                    expected.copy_within(from..from + n, to);
                    let base = ours.as_mut_ptr();
                    // SAFETY: from + n and to + n are within the buffer.
                    unsafe { moving(base.add(to), base.add(from), n) };
                    assert_eq!(ours, expected, "n {n}, from {from} to {to}");
                }
            }
        }
    }

    /// The direction flag is clear again after a backward move (the ABI
    /// requires it at every call; a set flag would make the next forward
    /// `rep movsb` run backwards).
    #[test]
    fn a_backward_move_leaves_forward_copies_working() {
        let mut buffer = pattern(400, 11);
        let base = buffer.as_mut_ptr();
        // SAFETY: 100 + 200 <= 400.
        unsafe { moving(base.add(100), base, 200) };
        let src = pattern(300, 5);
        let mut dst = vec![0_u8; 300];
        // SAFETY: both 300 bytes.
        unsafe { forward(dst.as_mut_ptr(), src.as_ptr(), 300) };
        assert_eq!(dst, src);
    }
}
