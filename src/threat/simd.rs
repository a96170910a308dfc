//! Byte-class bit masks, one source for two instruction sets: SSE2 (16 bytes a vector, every
//! x86_64 processor) and AVX2 (32 bytes, chosen at run time where the processor has it). The
//! gibberish prefilter and the fold scan write their byte classes once, generic over `Vector`;
//! each has two thin entry points marked `#[target_feature]` that instantiate it, and
//! `avx2()` picks one. Every method is `#[inline(always)]`, so the instructions inline into the
//! entry point whose features allow them (the way the memchr crate does it).
//!
//! Invariants: a `Vector` method runs only inside a function compiled with its feature set
//! (`Sse2`'s anywhere on x86_64, `Avx2`'s only behind `avx2() == true`); `range` is exact for
//! `n` in `1..=128` (property test below, every byte against every range the callers use).

use std::arch::x86_64::*;

/// Whether this processor has AVX2 (the standard library caches the answer: a load and a test).
#[inline]
pub(crate) fn avx2() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
}

/// A vector of bytes and the few operations byte classes need.
///
/// # Safety
/// Each implementation's methods use one instruction set's intrinsics; call them only from code
/// running on a processor that has it (see the module's invariants).
pub(crate) trait Vector: Copy {
    /// Bytes a vector holds: 16 or 32.
    const BYTES: usize;
    /// # Safety
    /// `p` points at `BYTES` readable bytes (no alignment needed).
    unsafe fn load(p: *const u8) -> Self;
    /// # Safety
    /// The instruction set is present (trait's safety).
    unsafe fn or(self, o: Self) -> Self;
    /// `o` and not `self`.
    /// # Safety
    /// The instruction set is present (trait's safety).
    unsafe fn andnot(self, o: Self) -> Self;
    /// Bytes equal to `b`.
    /// # Safety
    /// The instruction set is present (trait's safety).
    unsafe fn eq(self, b: u8) -> Self;
    /// ASCII letters, either case: `b | 0x20` maps `A..=Z` onto `a..=z` and no other byte into
    /// them, so one range after an OR (three instructions where two ranges and an OR took five).
    /// # Safety
    /// The instruction set is present (trait's safety).
    unsafe fn letter(self) -> Self;
    /// Bytes in `lo..lo + n`, `n` in `1..=128`: `b + (128 - lo)` wraps `lo` to -128, and a signed
    /// compare against `n - 128` does the rest (two instructions, not three).
    /// # Safety
    /// The instruction set is present (trait's safety).
    unsafe fn range(self, lo: u8, n: u8) -> Self;
    /// Bit `i` set where byte `i` is set (a `movemask`), in the low `BYTES` bits.
    /// # Safety
    /// The instruction set is present (trait's safety).
    unsafe fn bits(self) -> u64;
}

/// SSE2: part of every x86_64 processor.
#[derive(Clone, Copy)]
pub(crate) struct Sse2(__m128i);

/// AVX2: only where `avx2()` says so.
#[derive(Clone, Copy)]
pub(crate) struct Avx2(__m256i);

impl Vector for Sse2 {
    const BYTES: usize = 16;
    #[inline(always)]
    unsafe fn load(p: *const u8) -> Self {
        // SAFETY: the caller gives 16 readable bytes; `loadu` needs no alignment.
        Sse2(unsafe { _mm_loadu_si128(p.cast()) })
    }
    #[inline(always)]
    unsafe fn or(self, o: Self) -> Self {
        // SAFETY (this and the methods below): SSE2 is present (trait's safety).
        Sse2(unsafe { _mm_or_si128(self.0, o.0) })
    }
    #[inline(always)]
    unsafe fn andnot(self, o: Self) -> Self {
        Sse2(unsafe { _mm_andnot_si128(self.0, o.0) })
    }
    #[inline(always)]
    unsafe fn eq(self, b: u8) -> Self {
        Sse2(unsafe { _mm_cmpeq_epi8(self.0, _mm_set1_epi8(b as i8)) })
    }
    #[inline(always)]
    unsafe fn letter(self) -> Self {
        unsafe { Sse2(_mm_or_si128(self.0, _mm_set1_epi8(0x20))).range(b'a', 26) }
    }
    #[inline(always)]
    unsafe fn range(self, lo: u8, n: u8) -> Self {
        debug_assert!((1..=128).contains(&n));
        unsafe {
            let t = _mm_add_epi8(self.0, _mm_set1_epi8(128u8.wrapping_sub(lo) as i8));
            Sse2(_mm_cmpgt_epi8(_mm_set1_epi8(n.wrapping_sub(128) as i8), t))
        }
    }
    #[inline(always)]
    unsafe fn bits(self) -> u64 {
        unsafe { _mm_movemask_epi8(self.0) as u16 as u64 }
    }
}

impl Vector for Avx2 {
    const BYTES: usize = 32;
    #[inline(always)]
    unsafe fn load(p: *const u8) -> Self {
        // SAFETY: the caller gives 32 readable bytes; `loadu` needs no alignment.
        Avx2(unsafe { _mm256_loadu_si256(p.cast()) })
    }
    #[inline(always)]
    unsafe fn or(self, o: Self) -> Self {
        // SAFETY (this and the methods below): AVX2 is present (trait's safety).
        Avx2(unsafe { _mm256_or_si256(self.0, o.0) })
    }
    #[inline(always)]
    unsafe fn andnot(self, o: Self) -> Self {
        Avx2(unsafe { _mm256_andnot_si256(self.0, o.0) })
    }
    #[inline(always)]
    unsafe fn eq(self, b: u8) -> Self {
        Avx2(unsafe { _mm256_cmpeq_epi8(self.0, _mm256_set1_epi8(b as i8)) })
    }
    #[inline(always)]
    unsafe fn letter(self) -> Self {
        unsafe { Avx2(_mm256_or_si256(self.0, _mm256_set1_epi8(0x20))).range(b'a', 26) }
    }
    #[inline(always)]
    unsafe fn range(self, lo: u8, n: u8) -> Self {
        debug_assert!((1..=128).contains(&n));
        unsafe {
            let t = _mm256_add_epi8(self.0, _mm256_set1_epi8(128u8.wrapping_sub(lo) as i8));
            Avx2(_mm256_cmpgt_epi8(
                _mm256_set1_epi8(n.wrapping_sub(128) as i8),
                t,
            ))
        }
    }
    #[inline(always)]
    unsafe fn bits(self) -> u64 {
        unsafe { _mm256_movemask_epi8(self.0) as u32 as u64 }
    }
}

/// Byte classes computed on one vector: `K` vectors, each byte all ones where it is in the class.
pub(crate) trait Classes<const K: usize> {
    /// # Safety
    /// `V`'s instruction set is present (see `Vector`).
    unsafe fn classes<V: Vector>(v: V) -> [V; K];
}

/// `C`'s classes over a 64-byte block as `K` masks, bit `i` for byte `i` of the block.
///
/// # Safety
/// `V`'s instruction set is present (see `Vector`).
#[inline(always)]
pub(crate) unsafe fn masks<V: Vector, C: Classes<K>, const K: usize>(block: &[u8; 64]) -> [u64; K] {
    let mut m = [0u64; K];
    let mut s = 0;
    while s < 64 {
        // SAFETY: `s + V::BYTES <= 64` (BYTES divides 64), so the load reads inside `block`;
        // the instruction set is present (this function's safety, as for the calls below).
        let c = unsafe { C::classes(V::load(block.as_ptr().add(s))) };
        for k in 0..K {
            // SAFETY: as above.
            m[k] |= unsafe { c[k].bits() } << s;
        }
        s += V::BYTES;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Class `C`'s mask over every byte value, on SSE2 and (where this processor has it) AVX2,
    /// against `want`.
    fn check_class<C: Classes<1>>(name: &str, want: impl Fn(u8) -> bool) {
        #[target_feature(enable = "avx2")]
        unsafe fn avx2<C: Classes<1>>(block: &[u8; 64]) -> u64 {
            // SAFETY: AVX2 is present (this function's safety).
            unsafe { masks::<Avx2, C, 1>(block)[0] }
        }
        for quarter in 0..4 {
            let block: [u8; 64] = std::array::from_fn(|i| (quarter * 64 + i) as u8);
            let expect = (0..64)
                .filter(|&i| want(block[i]))
                .fold(0u64, |m, i| m | 1 << i);
            // SAFETY: SSE2 is part of every x86_64 processor.
            let got = unsafe { masks::<Sse2, C, 1>(&block)[0] };
            assert_eq!(got, expect, "sse2 {name}");
            if super::avx2() {
                // SAFETY: AVX2 is present (checked).
                assert_eq!(unsafe { avx2::<C>(&block) }, expect, "avx2 {name}");
            }
        }
    }

    /// `range` says what `(lo..lo + n).contains(b)` says, for every byte.
    #[test]
    fn ranges_are_exact_for_every_byte() {
        struct R<const LO: u8, const N: u8>;
        impl<const LO: u8, const N: u8> Classes<1> for R<LO, N> {
            #[inline(always)]
            unsafe fn classes<V: Vector>(v: V) -> [V; 1] {
                // SAFETY: the instruction set is present (this function's safety).
                [unsafe { v.range(LO, N) }]
            }
        }
        fn check<const LO: u8, const N: u8>() {
            check_class::<R<LO, N>>(&format!("{LO} {N}"), |b| b.wrapping_sub(LO) < N);
        }
        // every range the callers use, and the edges of what `range` allows
        check::<b'A', 26>();
        check::<b'a', 26>();
        check::<b'0', 10>();
        check::<b'0', 2>();
        check::<b'3', 3>();
        check::<b'7', 3>();
        check::<b',', 4>();
        check::<b'&', 2>();
        check::<0x21, 94>();
        check::<0, 1>();
        check::<0, 128>();
        check::<128, 128>();
        check::<200, 100>();
        check::<255, 1>();
        check::<250, 9>();
    }

    /// `letter` is `is_ascii_alphabetic`, for every byte.
    #[test]
    fn letters_are_exact_for_every_byte() {
        struct L;
        impl Classes<1> for L {
            #[inline(always)]
            unsafe fn classes<V: Vector>(v: V) -> [V; 1] {
                // SAFETY: the instruction set is present (this function's safety).
                [unsafe { v.letter() }]
            }
        }
        check_class::<L>("letter", |b| b.is_ascii_alphabetic());
    }
}
