//! Byte-class bit masks, one source for three instruction sets: SSE2 (16 bytes a vector, every
//! x86_64 processor), AVX2 (32 bytes) and AVX-512BW with VBMI (64 bytes; each byte's classes
//! looked up in a 128-entry table, `Classes::TABLE`, in one instruction, and tested into mask
//! registers), the wider two chosen at run time where the processor has them. The gibberish prefilter and
//! the fold scan write their byte classes once, generic over `Vector`; each has thin entry
//! points marked `#[target_feature]` that instantiate it (`entry_points!` writes the three),
//! and `level()` picks one. Every method
//! is `#[inline(always)]`, so the instructions inline into the entry point whose features allow
//! them (the way the memchr crate does it). One entry point outside the three levels,
//! `normalize::push_ascii_vbmi2`, needs VBMI2's byte compression and checks `avx512_vbmi2()`.
//!
//! Invariants: a `Vector` method runs only inside a function compiled with its feature set
//! (`Sse2`'s anywhere on x86_64, `Avx2`'s only behind `avx2() == true`, `Avx512`'s only behind
//! `avx512() == true`); `range` is exact for `n` in `1..=128` (test below, every byte against
//! every range the callers use, on every set this processor has).

use std::arch::x86_64::*;

/// The three entry points of a function written generic over `Vector` (`$with::<V>`), one per
/// instruction set, each `unsafe` and compiled with its set's features: `$avx512`
/// (AVX-512BW, VBMI, `popcnt`: call only where `avx512()`), `$avx2` (AVX2, `popcnt`: only
/// where `avx2()`), `$sse2` (every x86_64 processor). `level()` picks one; the tests call each
/// one the processor has.
macro_rules! entry_points {
    ($what:literal, $with:ident, [$avx512:ident, $avx2:ident, $sse2:ident],
     ($($arg:ident: $t:ty),*) $(-> $ret:ty)?) => {
        #[doc = concat!("`", $what, "` on AVX-512BW with VBMI.")]
        /// # Safety
        /// The processor has AVX-512BW, VBMI and `popcnt` (`simd::avx512`).
        #[target_feature(enable = "avx512bw,avx512vbmi,popcnt")]
        unsafe fn $avx512($($arg: $t),*) $(-> $ret)? {
            // SAFETY: AVX-512BW and VBMI are present (this function's safety).
            unsafe { $with::<$crate::threat::simd::Avx512>($($arg),*) }
        }

        #[doc = concat!("`", $what, "` on AVX2.")]
        /// # Safety
        /// The processor has AVX2 and `popcnt` (`simd::avx2`).
        #[target_feature(enable = "avx2,popcnt")]
        unsafe fn $avx2($($arg: $t),*) $(-> $ret)? {
            // SAFETY: AVX2 is present (this function's safety).
            unsafe { $with::<$crate::threat::simd::Avx2>($($arg),*) }
        }

        #[doc = concat!("`", $what, "` on SSE2.")]
        /// # Safety
        /// The processor has SSE2, which every x86_64 processor has.
        #[target_feature(enable = "sse2")]
        unsafe fn $sse2($($arg: $t),*) $(-> $ret)? {
            // SAFETY: SSE2 is present (this function's safety).
            unsafe { $with::<$crate::threat::simd::Sse2>($($arg),*) }
        }
    };
}
pub(crate) use entry_points;

/// Calls the entry point of `entry_points!` for this processor's `Level` with `args`: the one
/// dispatch every block pass goes through.
macro_rules! dispatch {
    ($avx512:ident, $avx2:ident, $sse2:ident, ($($arg:ident),*)) => {
        match $crate::threat::simd::level() {
            // SAFETY: AVX-512BW, VBMI and popcnt are present (`level` checked).
            $crate::threat::simd::Level::Avx512 => unsafe { $avx512($($arg),*) },
            // SAFETY: AVX2 and popcnt are present (`level` checked).
            $crate::threat::simd::Level::Avx2 => unsafe { $avx2($($arg),*) },
            // SAFETY: SSE2 is part of every x86_64 processor.
            $crate::threat::simd::Level::Sse2 => unsafe { $sse2($($arg),*) },
        }
    };
}
pub(crate) use dispatch;

/// Whether this processor has AVX2 and `popcnt` (every one with AVX2 has it; the entry points
/// enable both, so a mask's `count_ones` is one instruction, not a table lookup in vector
/// registers). The standard library caches the answer: a load and a test.
#[inline]
pub(crate) fn avx2() -> bool {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("popcnt")
}

/// Whether this processor has AVX-512BW and VBMI (64-byte vectors, compares straight into bit
/// masks, a 128-entry byte table lookup in one instruction) and `popcnt`.
#[inline]
pub(crate) fn avx512() -> bool {
    std::arch::is_x86_feature_detected!("avx512bw")
        && std::arch::is_x86_feature_detected!("avx512vbmi")
        && std::arch::is_x86_feature_detected!("popcnt")
}

/// Whether this processor has AVX-512BW and VBMI2 (byte compression: `vpcompressb` packs the
/// bytes a mask keeps to a vector's start) and `popcnt`.
#[inline]
pub(crate) fn avx512_vbmi2() -> bool {
    std::arch::is_x86_feature_detected!("avx512bw")
        && std::arch::is_x86_feature_detected!("avx512vbmi2")
        && std::arch::is_x86_feature_detected!("popcnt")
}

/// The widest instruction set of the three this processor has: what the entry points dispatch
/// on.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Level {
    Sse2,
    Avx2,
    Avx512,
}

/// This processor's `Level`.
#[inline]
pub(crate) fn level() -> Level {
    match (avx512(), avx2()) {
        (true, _) => Level::Avx512,
        (false, true) => Level::Avx2,
        (false, false) => Level::Sse2,
    }
}

/// A vector of bytes and the few operations byte classes need.
///
/// # Safety
/// Each implementation's methods use one instruction set's intrinsics; call them only from code
/// running on a processor that has it (see the module's invariants).
pub(crate) trait Vector: Copy {
    /// Bytes a vector holds: 16, 32 or 64.
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
    /// `K` class masks of `block` read from `table` (bit `k` of entry `b` set where byte `b` is
    /// in class `k`; bytes 128 and up in none), where the instruction set can look a byte up in
    /// a 128-entry table; `None` (the default) where it cannot, and `Classes::classes` runs.
    /// # Safety
    /// The instruction set is present (trait's safety).
    #[inline(always)]
    unsafe fn lookup<const K: usize>(block: &[u8; 64], table: &[u8; 128]) -> Option<[u64; K]> {
        let _ = (block, table);
        None
    }
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

/// AVX-512BW with VBMI: only where `avx512()` says so. `masks` reads classes from their table
/// (`lookup`); the methods below serve class code that has none (and the tests). A loaded vector keeps its bytes in `v`; a class
/// made of it keeps its bit mask in `m` (a compare writes a mask register, so no `movemask` and
/// no shift per class), and `or`/`andnot`/`bits` work on `m` alone. The class code applies `eq`,
/// `letter` and `range` to loaded vectors only and combines their results with `or` and
/// `andnot`, as the SSE2 and AVX2 forms require too; the compiler drops whichever half a value
/// does not use.
#[derive(Clone, Copy)]
pub(crate) struct Avx512 {
    v: __m512i,
    m: u64,
}

impl Vector for Avx512 {
    const BYTES: usize = 64;
    #[inline(always)]
    unsafe fn load(p: *const u8) -> Self {
        // SAFETY: the caller gives 64 readable bytes; `loadu` needs no alignment.
        Avx512 {
            v: unsafe { _mm512_loadu_si512(p.cast()) },
            m: 0,
        }
    }
    #[inline(always)]
    unsafe fn or(self, o: Self) -> Self {
        Avx512 {
            v: self.v,
            m: self.m | o.m,
        }
    }
    #[inline(always)]
    unsafe fn andnot(self, o: Self) -> Self {
        Avx512 {
            v: self.v,
            m: !self.m & o.m,
        }
    }
    #[inline(always)]
    unsafe fn eq(self, b: u8) -> Self {
        // SAFETY (this and the methods below): AVX-512BW is present (trait's safety).
        let m = unsafe { _mm512_cmpeq_epi8_mask(self.v, _mm512_set1_epi8(b as i8)) };
        Avx512 { v: self.v, m }
    }
    #[inline(always)]
    unsafe fn letter(self) -> Self {
        unsafe {
            Avx512 {
                v: _mm512_or_si512(self.v, _mm512_set1_epi8(0x20)),
                m: 0,
            }
            .range(b'a', 26)
        }
    }
    #[inline(always)]
    unsafe fn range(self, lo: u8, n: u8) -> Self {
        debug_assert!((1..=128).contains(&n));
        // an unsigned compare after the subtraction: `b - lo < n` wraps every byte below `lo`
        // past `n`
        let m = unsafe {
            _mm512_cmplt_epu8_mask(
                _mm512_sub_epi8(self.v, _mm512_set1_epi8(lo as i8)),
                _mm512_set1_epi8(n as i8),
            )
        };
        Avx512 { v: self.v, m }
    }
    #[inline(always)]
    unsafe fn bits(self) -> u64 {
        self.m
    }
    #[inline(always)]
    unsafe fn lookup<const K: usize>(block: &[u8; 64], table: &[u8; 128]) -> Option<[u64; K]> {
        // SAFETY: `block` and `table` hold 64 and 128 readable bytes, and `loadu` needs no
        // alignment; AVX-512BW and VBMI are present (trait's safety).
        unsafe {
            let v = _mm512_loadu_si512(block.as_ptr().cast());
            let lo = _mm512_loadu_si512(table.as_ptr().cast());
            let hi = _mm512_loadu_si512(table.as_ptr().add(64).cast());
            // a byte's low seven bits pick one of the 128 entries; a byte with the top bit
            // set (not ASCII) is zeroed instead
            let ascii = !_mm512_movepi8_mask(v);
            let c = _mm512_maskz_permutex2var_epi8(ascii, lo, v, hi);
            let mut m = [0u64; K];
            for (k, m) in m.iter_mut().enumerate() {
                *m = _mm512_test_epi8_mask(c, _mm512_set1_epi8((1u8 << k) as i8));
            }
            Some(m)
        }
    }
}

/// Byte classes computed on one vector: `K` vectors, each byte all ones where it is in the
/// class; and the same classes as a table, for `Vector::lookup`.
pub(crate) trait Classes<const K: usize> {
    /// # Safety
    /// `V`'s instruction set is present (see `Vector`).
    unsafe fn classes<V: Vector>(v: V) -> [V; K];
    /// Entry `b`: bit `k` set where byte `b` is in class `k` (`K` at most 8); every byte 128 and
    /// up is in no class. Must say what `classes` says (`table_agrees`, run by each user's
    /// tests, checks every byte). `None`: classes that hold bytes 128 and up, or have no table.
    const TABLE: Option<[u8; 128]> = None;
}

/// The 64-byte block of `bytes` at `from`, read where it lies when the text holds all of it;
/// else what is left (a short last block, or nothing past the end) copied over the front of
/// `tail`, which the caller fills with its padding byte. The block loops call this once a block
/// and then the class code once: with the class code inlined twice (once for a padded tail),
/// LLVM split each AVX2 `movemask` into single bits and the scan ran 2.6× slower.
#[inline(always)]
pub(crate) fn block<'a>(bytes: &'a [u8], from: usize, tail: &'a mut [u8; 64]) -> &'a [u8; 64] {
    match bytes.get(from..from + 64).and_then(|b| b.try_into().ok()) {
        Some(block) => block,
        None => {
            let part = bytes.get(from..).unwrap_or_default();
            tail[..part.len()].copy_from_slice(part);
            tail
        }
    }
}

/// `C`'s classes over block `k` of `bytes` (from `k * 64`; a short last block padded with
/// zeros, which no class user counts) as `K` masks; past the end, no class. The block loops
/// that look ahead into the next block read both through this.
///
/// # Safety
/// `V`'s instruction set is present (see `Vector`).
#[inline(always)]
pub(crate) unsafe fn block_masks<V: Vector, C: Classes<K>, const K: usize>(
    bytes: &[u8],
    k: usize,
) -> [u64; K] {
    if k * 64 >= bytes.len() {
        return [0; K];
    }
    let mut tail = [0u8; 64];
    // SAFETY: the instruction set is present (this function's safety).
    unsafe { masks::<V, C, K>(block(bytes, k * 64, &mut tail)) }
}

/// `C`'s classes over a 64-byte block as `K` masks, bit `i` for byte `i` of the block.
///
/// # Safety
/// `V`'s instruction set is present (see `Vector`).
#[inline(always)]
pub(crate) unsafe fn masks<V: Vector, C: Classes<K>, const K: usize>(block: &[u8; 64]) -> [u64; K] {
    if let Some(table) = &C::TABLE {
        // SAFETY: the instruction set is present (this function's safety).
        if let Some(m) = unsafe { V::lookup::<K>(block, table) } {
            return m;
        }
    }
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
pub(crate) mod tests {
    use super::*;

    /// Class `C`'s mask over every byte value, on SSE2 and (where this processor has it) AVX2,
    /// against `want`.
    fn check_class<C: Classes<1>>(name: &str, want: impl Fn(u8) -> bool) {
        #[target_feature(enable = "avx2")]
        unsafe fn avx2<C: Classes<1>>(block: &[u8; 64]) -> u64 {
            // SAFETY: AVX2 is present (this function's safety).
            unsafe { masks::<Avx2, C, 1>(block)[0] }
        }
        #[target_feature(enable = "avx512bw,avx512vbmi")]
        unsafe fn avx512<C: Classes<1>>(block: &[u8; 64]) -> u64 {
            // SAFETY: AVX-512BW and VBMI are present (this function's safety).
            unsafe { masks::<Avx512, C, 1>(block)[0] }
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
            if super::avx512() {
                // SAFETY: AVX-512BW is present (checked).
                assert_eq!(unsafe { avx512::<C>(&block) }, expect, "avx512 {name}");
            }
        }
    }

    /// `C::TABLE` says what `C::classes` says, for every byte; and on AVX-512 (where `masks`
    /// reads the table) the masks are those of SSE2 (which runs `classes`).
    pub(crate) fn table_agrees<C: Classes<K>, const K: usize>() {
        #[target_feature(enable = "avx512bw,avx512vbmi")]
        unsafe fn avx512<C: Classes<K>, const K: usize>(block: &[u8; 64]) -> [u64; K] {
            // SAFETY: AVX-512BW and VBMI are present (this function's safety).
            unsafe { masks::<Avx512, C, K>(block) }
        }
        let table = C::TABLE.expect("the classes have a table");
        for quarter in 0..4 {
            let block: [u8; 64] = std::array::from_fn(|i| (quarter * 64 + i) as u8);
            // SAFETY: SSE2 is part of every x86_64 processor.
            let want = unsafe { masks::<Sse2, C, K>(&block) };
            for (k, &w) in want.iter().enumerate() {
                for (i, &b) in block.iter().enumerate() {
                    let entry = table.get(b as usize).map_or(0, |e| e >> k & 1);
                    assert_eq!(entry as u64, w >> i & 1, "class {k}, byte {b}");
                }
            }
            if super::avx512() {
                // SAFETY: AVX-512BW and VBMI are present (checked).
                assert_eq!(unsafe { avx512::<C, K>(&block) }, want, "avx512");
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
        check::<0x09, 5>();
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
