//! AVX2 kernels for 8-bit samples. Each is entered only through a [`super::Kernels`] table
//! built for a level this CPU supports, after the table's wrapper has checked the slices.
//! Loads and stores go through bounds-checked slices of the exact width they touch, so the only
//! `unsafe` left is the pointer access of the intrinsics themselves. The exceptions read through
//! pointers where a check per load cost as much as the arithmetic: SATD, inside the blocks its
//! wrapper asserted, and the interpolation's vertical pass, inside rows whose lengths it checked
//! once.

use super::{mc, sao, satd};
use crate::picture::PaddedPlane;
use std::arch::x86_64::*;

#[inline]
#[target_feature(enable = "avx2")]
fn load_i16x8(src: &[i16]) -> __m128i {
    let src = &src[..8];
    // SAFETY: `src` holds exactly 8 readable lanes.
    unsafe { _mm_loadu_si128(src.as_ptr().cast()) }
}

#[inline]
#[target_feature(enable = "avx2")]
fn store_i16x16(out: &mut [i16], v: __m256i) {
    let out = &mut out[..16];
    // SAFETY: `out` holds exactly 16 writable lanes.
    unsafe { _mm256_storeu_si256(out.as_mut_ptr().cast(), v) }
}

#[inline]
#[target_feature(enable = "avx2")]
fn store_i16x8(out: &mut [i16], v: __m128i) {
    let out = &mut out[..8];
    // SAFETY: `out` holds exactly 8 writable lanes.
    unsafe { _mm_storeu_si128(out.as_mut_ptr().cast(), v) }
}

/// The low 16 bytes of `v` to `out`.
#[inline]
#[target_feature(enable = "avx2")]
fn store_u8x16(out: &mut [u8], v: __m128i) {
    let out = &mut out[..16];
    // SAFETY: `out` holds exactly 16 writable bytes.
    unsafe { _mm_storeu_si128(out.as_mut_ptr().cast(), v) }
}

/// The low 8 bytes of `v` to `out`.
#[inline]
#[target_feature(enable = "avx2")]
fn store_u8x8(out: &mut [u8], v: __m128i) {
    let out = &mut out[..8];
    // SAFETY: `out` holds exactly 8 writable bytes.
    unsafe { _mm_storel_epi64(out.as_mut_ptr().cast(), v) }
}

/// Σ|2-D 4-point Hadamard| of the 4x4 blocks whose rows are `d` (two blocks side by side per
/// 128-bit lane), in 32-bit lanes. The vertical butterflies, a transpose of each block so that
/// the horizontal ones are vertical too, and for the last stage
/// |x + y| + |x - y| = 2·max(|x|, |y|), exact in integers.
#[inline]
#[target_feature(enable = "avx2")]
fn hadamard_abs_256(d: [__m256i; 4]) -> __m256i {
    let (s0, s1) = (_mm256_add_epi16(d[0], d[1]), _mm256_add_epi16(d[2], d[3]));
    let (t0, t1) = (_mm256_sub_epi16(d[0], d[1]), _mm256_sub_epi16(d[2], d[3]));
    let v = [
        _mm256_add_epi16(s0, s1),
        _mm256_sub_epi16(s0, s1),
        _mm256_add_epi16(t0, t1),
        _mm256_sub_epi16(t0, t1),
    ];
    // Rows [a0 a1 a2 a3 b0 b1 b2 b3] of blocks a and b to columns [a_c | b_c], per 128-bit lane.
    let (l01, h01) = (
        _mm256_unpacklo_epi16(v[0], v[1]),
        _mm256_unpackhi_epi16(v[0], v[1]),
    );
    let (l23, h23) = (
        _mm256_unpacklo_epi16(v[2], v[3]),
        _mm256_unpackhi_epi16(v[2], v[3]),
    );
    let (a01, a23) = (
        _mm256_unpacklo_epi32(l01, l23),
        _mm256_unpackhi_epi32(l01, l23),
    );
    let (b01, b23) = (
        _mm256_unpacklo_epi32(h01, h23),
        _mm256_unpackhi_epi32(h01, h23),
    );
    let c = [
        _mm256_unpacklo_epi64(a01, b01),
        _mm256_unpackhi_epi64(a01, b01),
        _mm256_unpacklo_epi64(a23, b23),
        _mm256_unpackhi_epi64(a23, b23),
    ];
    let (p0, p1) = (_mm256_add_epi16(c[0], c[1]), _mm256_add_epi16(c[2], c[3]));
    let (m0, m1) = (_mm256_sub_epi16(c[0], c[1]), _mm256_sub_epi16(c[2], c[3]));
    let halves = _mm256_add_epi16(
        _mm256_max_epi16(_mm256_abs_epi16(p0), _mm256_abs_epi16(p1)),
        _mm256_max_epi16(_mm256_abs_epi16(m0), _mm256_abs_epi16(m1)),
    );
    _mm256_madd_epi16(halves, _mm256_set1_epi16(2))
}

/// [`hadamard_abs_256`] of two blocks side by side.
#[inline]
#[target_feature(enable = "avx2")]
fn hadamard_abs_128(d: [__m128i; 4]) -> __m128i {
    let (s0, s1) = (_mm_add_epi16(d[0], d[1]), _mm_add_epi16(d[2], d[3]));
    let (t0, t1) = (_mm_sub_epi16(d[0], d[1]), _mm_sub_epi16(d[2], d[3]));
    let v = [
        _mm_add_epi16(s0, s1),
        _mm_sub_epi16(s0, s1),
        _mm_add_epi16(t0, t1),
        _mm_sub_epi16(t0, t1),
    ];
    let (l01, h01) = (
        _mm_unpacklo_epi16(v[0], v[1]),
        _mm_unpackhi_epi16(v[0], v[1]),
    );
    let (l23, h23) = (
        _mm_unpacklo_epi16(v[2], v[3]),
        _mm_unpackhi_epi16(v[2], v[3]),
    );
    let (a01, a23) = (_mm_unpacklo_epi32(l01, l23), _mm_unpackhi_epi32(l01, l23));
    let (b01, b23) = (_mm_unpacklo_epi32(h01, h23), _mm_unpackhi_epi32(h01, h23));
    let c = [
        _mm_unpacklo_epi64(a01, b01),
        _mm_unpackhi_epi64(a01, b01),
        _mm_unpacklo_epi64(a23, b23),
        _mm_unpackhi_epi64(a23, b23),
    ];
    let (p0, p1) = (_mm_add_epi16(c[0], c[1]), _mm_add_epi16(c[2], c[3]));
    let (m0, m1) = (_mm_sub_epi16(c[0], c[1]), _mm_sub_epi16(c[2], c[3]));
    let halves = _mm_add_epi16(
        _mm_max_epi16(_mm_abs_epi16(p0), _mm_abs_epi16(p1)),
        _mm_max_epi16(_mm_abs_epi16(m0), _mm_abs_epi16(m1)),
    );
    _mm_madd_epi16(halves, _mm_set1_epi16(2))
}

/// `p[..16] - q[..16]` in 16-bit lanes.
///
/// # Safety
/// 16 bytes are readable at `p` and at `q`.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn diff16_at(p: *const u8, q: *const u8) -> __m256i {
    // SAFETY: 16 readable bytes at each (the caller's contract); the loads need no alignment.
    let (p, q) = unsafe { (_mm_loadu_si128(p.cast()), _mm_loadu_si128(q.cast())) };
    _mm256_sub_epi16(_mm256_cvtepu8_epi16(p), _mm256_cvtepu8_epi16(q))
}

/// `p[..8] - q[..8]` in 16-bit lanes.
///
/// # Safety
/// 8 bytes are readable at `p` and at `q`.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn diff8_at(p: *const u8, q: *const u8) -> __m128i {
    // SAFETY: 8 readable bytes at each (the caller's contract); the loads need no alignment.
    let (p, q) = unsafe { (_mm_loadl_epi64(p.cast()), _mm_loadl_epi64(q.cast())) };
    _mm_sub_epi16(_mm_cvtepu8_epi16(p), _mm_cvtepu8_epi16(q))
}

/// SATD of 8-bit blocks: four 4x4 blocks side by side per register. Byte differences stay
/// within ±255, so every partial Hadamard sum (at most 8·255 before the last stage) and the sum
/// of two of them fit 16 bits. Widths that are not a multiple of 8 run the reference. Rows are
/// read through pointers: the search calls this millions of times per frame on small blocks,
/// where a bounds check per row load cost about as much as the transform.
///
/// # Safety
/// The CPU supports AVX2, and both `w`×`h` blocks lie inside their slices (row `y` spans
/// `y * stride..y * stride + w`), as [`super::Kernels::satd`] asserts.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn satd_avx2(
    a: &[u8],
    a_stride: usize,
    b: &[u8],
    b_stride: usize,
    w: usize,
    h: usize,
) -> u32 {
    if !w.is_multiple_of(8) {
        return satd::satd(a, a_stride, b, b_stride, w, h);
    }
    let (a, b) = (a.as_ptr(), b.as_ptr());
    if w == 8 && h.is_multiple_of(8) {
        // SAFETY: the blocks lie inside the slices (this function's contract).
        return unsafe { satd_8_wide(a, a_stride, b, b_stride, h) };
    }
    let mut wide = _mm256_setzero_si256();
    let mut narrow = _mm_setzero_si128();
    let mut by = 0;
    while by < h {
        // SAFETY: rows by..by + 4 (h is a multiple of 4) and columns x..x + 16 or x..x + 8
        // (at most w) lie inside the blocks, which lie inside the slices.
        unsafe {
            let (ra, rb) = (a.add(by * a_stride), b.add(by * b_stride));
            let mut x = 0;
            while x + 16 <= w {
                let d = [
                    diff16_at(ra.add(x), rb.add(x)),
                    diff16_at(ra.add(a_stride + x), rb.add(b_stride + x)),
                    diff16_at(ra.add(2 * a_stride + x), rb.add(2 * b_stride + x)),
                    diff16_at(ra.add(3 * a_stride + x), rb.add(3 * b_stride + x)),
                ];
                wide = _mm256_add_epi32(wide, hadamard_abs_256(d));
                x += 16;
            }
            if x < w {
                let d = [
                    diff8_at(ra.add(x), rb.add(x)),
                    diff8_at(ra.add(a_stride + x), rb.add(b_stride + x)),
                    diff8_at(ra.add(2 * a_stride + x), rb.add(2 * b_stride + x)),
                    diff8_at(ra.add(3 * a_stride + x), rb.add(3 * b_stride + x)),
                ];
                narrow = _mm_add_epi32(narrow, hadamard_abs_128(d));
            }
        }
        by += 4;
    }
    let sum = _mm_add_epi32(
        narrow,
        _mm_add_epi32(
            _mm256_castsi256_si128(wide),
            _mm256_extracti128_si256(wide, 1),
        ),
    );
    let sum = _mm_add_epi32(sum, _mm_shuffle_epi32(sum, 0b01_00_11_10));
    let sum = _mm_add_epi32(sum, _mm_shuffle_epi32(sum, 0b10_11_00_01));
    (_mm_cvtsi128_si32(sum) as u32) / 2
}

/// Rows `r` and `r + 4` of the 8-wide block at `p`, rows `stride` apart, in 16-bit lanes.
///
/// # Safety
/// 8 bytes are readable at the starts of rows `r` and `r + 4`.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn rows_4_apart(p: *const u8, stride: usize, r: usize) -> __m256i {
    // SAFETY: the caller's contract; the loads need no alignment.
    let (top, bottom) = unsafe {
        (
            _mm_loadl_epi64(p.add(r * stride).cast()),
            _mm_loadl_epi64(p.add((r + 4) * stride).cast()),
        )
    };
    _mm256_cvtepu8_epi16(_mm_unpacklo_epi64(top, bottom))
}

/// [`satd_avx2`] of one 8x8 block, the most frequent size, without the set-up of the others:
/// rows `r` and `r + 4` share a register, so one transform covers its four 4x4 blocks.
///
/// # Safety
/// The CPU supports AVX2, and both 8x8 blocks lie inside their slices, as
/// [`super::Kernels::satd`] asserts.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn satd_8x8_avx2(a: &[u8], a_stride: usize, b: &[u8], b_stride: usize) -> u32 {
    let (a, b) = (a.as_ptr(), b.as_ptr());
    // SAFETY: rows 0..8 of both blocks lie inside the slices (this function's contract).
    let d = unsafe {
        [
            _mm256_sub_epi16(rows_4_apart(a, a_stride, 0), rows_4_apart(b, b_stride, 0)),
            _mm256_sub_epi16(rows_4_apart(a, a_stride, 1), rows_4_apart(b, b_stride, 1)),
            _mm256_sub_epi16(rows_4_apart(a, a_stride, 2), rows_4_apart(b, b_stride, 2)),
            _mm256_sub_epi16(rows_4_apart(a, a_stride, 3), rows_4_apart(b, b_stride, 3)),
        ]
    };
    let sum = hadamard_abs_256(d);
    let sum = _mm_add_epi32(
        _mm256_castsi256_si128(sum),
        _mm256_extracti128_si256(sum, 1),
    );
    let sum = _mm_add_epi32(sum, _mm_shuffle_epi32(sum, 0b01_00_11_10));
    let sum = _mm_add_epi32(sum, _mm_shuffle_epi32(sum, 0b10_11_00_01));
    (_mm_cvtsi128_si32(sum) as u32) / 2
}

/// [`satd_avx2`] of an 8-wide block whose height is a multiple of 8: rows `r` and `r + 4` share
/// a register, so one transform covers the four 4x4 blocks of each 8x8.
///
/// # Safety
/// 8 bytes are readable at the start of each of the `h` rows of `a` and `b`.
#[target_feature(enable = "avx2")]
unsafe fn satd_8_wide(
    a: *const u8,
    a_stride: usize,
    b: *const u8,
    b_stride: usize,
    h: usize,
) -> u32 {
    let mut sum = _mm256_setzero_si256();
    let mut by = 0;
    while by < h {
        // SAFETY: rows by..by + 8 lie inside the blocks (h is a multiple of 8).
        // Written out: a closure per row was not inlined into this function.
        let d = unsafe {
            let (ra, rb) = (a.add(by * a_stride), b.add(by * b_stride));
            let (sa, sb) = (4 * a_stride, 4 * b_stride);
            let a_rows = [0, a_stride, 2 * a_stride, 3 * a_stride];
            let b_rows = [0, b_stride, 2 * b_stride, 3 * b_stride];
            [
                _mm256_set_m128i(
                    diff8_at(ra.add(sa + a_rows[0]), rb.add(sb + b_rows[0])),
                    diff8_at(ra.add(a_rows[0]), rb.add(b_rows[0])),
                ),
                _mm256_set_m128i(
                    diff8_at(ra.add(sa + a_rows[1]), rb.add(sb + b_rows[1])),
                    diff8_at(ra.add(a_rows[1]), rb.add(b_rows[1])),
                ),
                _mm256_set_m128i(
                    diff8_at(ra.add(sa + a_rows[2]), rb.add(sb + b_rows[2])),
                    diff8_at(ra.add(a_rows[2]), rb.add(b_rows[2])),
                ),
                _mm256_set_m128i(
                    diff8_at(ra.add(sa + a_rows[3]), rb.add(sb + b_rows[3])),
                    diff8_at(ra.add(a_rows[3]), rb.add(b_rows[3])),
                ),
            ]
        };
        sum = _mm256_add_epi32(sum, hadamard_abs_256(d));
        by += 8;
    }
    let sum = _mm_add_epi32(
        _mm256_castsi256_si128(sum),
        _mm256_extracti128_si256(sum, 1),
    );
    let sum = _mm_add_epi32(sum, _mm_shuffle_epi32(sum, 0b01_00_11_10));
    let sum = _mm_add_epi32(sum, _mm_shuffle_epi32(sum, 0b10_11_00_01));
    (_mm_cvtsi128_si32(sum) as u32) / 2
}

#[inline]
#[target_feature(enable = "avx2")]
fn load_u8x8(src: &[u8]) -> __m128i {
    let src = &src[..8];
    // SAFETY: `src` holds exactly 8 readable bytes; the load needs no alignment.
    unsafe { _mm_loadl_epi64(src.as_ptr().cast()) }
}

#[inline]
#[target_feature(enable = "avx2")]
fn load_u8x16(src: &[u8]) -> __m128i {
    let src = &src[..16];
    // SAFETY: `src` holds exactly 16 readable bytes; the load needs no alignment.
    unsafe { _mm_loadu_si128(src.as_ptr().cast()) }
}

#[inline]
#[target_feature(enable = "avx2")]
fn load_u8x32(src: &[u8]) -> __m256i {
    let src = &src[..32];
    // SAFETY: `src` holds exactly 32 readable bytes; the load needs no alignment.
    unsafe { _mm256_loadu_si256(src.as_ptr().cast()) }
}

#[inline]
#[target_feature(enable = "avx2")]
fn store_u8x32(out: &mut [u8], v: __m256i) {
    let out = &mut out[..32];
    // SAFETY: `out` holds exactly 32 writable bytes.
    unsafe { _mm256_storeu_si256(out.as_mut_ptr().cast(), v) }
}

/// Taps whose byte-pair products and sums stay exact in the 16-bit lanes of `maddubs`: each tap
/// an i8, and Σ|taps|·255 (a bound of every partial sum, and of the sum plus the rounding
/// constant 32) below 2^15.
fn taps_fit_bytes<const TAPS: usize>(taps: Option<&[i32; TAPS]>) -> bool {
    taps.is_none_or(|taps| {
        taps.iter().all(|t| (-127..=127).contains(t))
            && taps.iter().map(|t| t.unsigned_abs()).sum::<u32>() <= 128
    })
}

/// Byte pairs `(t[2j], t[2j + 1])` as the signed operand of `maddubs`, one per tap pair.
#[inline]
#[target_feature(enable = "avx2")]
fn pair_weights<const TAPS: usize>(taps: &[i32; TAPS]) -> [__m256i; 4] {
    std::array::from_fn(|j| {
        if 2 * j + 1 >= TAPS {
            return _mm256_setzero_si256();
        }
        let (low, high) = (taps[2 * j] as i8 as u8, taps[2 * j + 1] as i8 as u8);
        _mm256_set1_epi16(i16::from_le_bytes([low, high]))
    })
}

/// Shuffle controls of the horizontal filter: for tap pair j, the byte pairs (k, k + 1) with
/// k = i + 2j of output i = 0..8, per 128-bit lane. Lane 0 holds the samples from the first
/// output on; lane 1 (and the upper half of the 8-output vector) holds them from `9 - TAPS`
/// samples further, so that no load reaches past the filter's last sample.
const fn horizontal_shuffles(taps: usize) -> [[u8; 32]; 4] {
    let shift = 9 - taps;
    let mut ctl = [[0u8; 32]; 4];
    let mut j = 0;
    while 2 * j < taps {
        let mut i = 0;
        while i < 8 {
            let mut b = 0;
            while b < 2 {
                let k = i + 2 * j + b;
                ctl[j][2 * i + b] = k as u8;
                ctl[j][16 + 2 * i + b] = (k + shift) as u8;
                b += 1;
            }
            i += 1;
        }
        j += 1;
    }
    ctl
}

/// The same for 8 outputs from one vector whose low half holds samples 0..8 and high half
/// samples `TAPS - 1` onwards.
const fn horizontal_shuffles_8(taps: usize) -> [[u8; 16]; 4] {
    let shift = 9 - taps;
    let mut ctl = [[0u8; 16]; 4];
    let mut j = 0;
    while 2 * j < taps {
        let mut i = 0;
        while i < 16 {
            let k = i / 2 + 2 * j + i % 2;
            ctl[j][i] = if k < 8 { k } else { k + shift } as u8;
            i += 1;
        }
        j += 1;
    }
    ctl
}

/// The horizontal filter's 16 sums of outputs `x..x + 16` from `src`, which starts at the
/// first output's first tap and holds `w + TAPS - 1` samples (`x + 16 <= w`).
#[inline]
#[target_feature(enable = "avx2")]
fn horizontal_16<const TAPS: usize>(src: &[u8], x: usize, weights: &[__m256i; 4]) -> __m256i {
    let ctl = const { horizontal_shuffles(TAPS) };
    let v = _mm256_set_m128i(load_u8x16(&src[x + TAPS - 1..]), load_u8x16(&src[x..]));
    let mut acc = _mm256_setzero_si256();
    for (ctl, &weight) in ctl.iter().zip(weights).take(TAPS / 2) {
        let pairs = _mm256_shuffle_epi8(v, load_u8x32(ctl));
        acc = _mm256_add_epi16(acc, _mm256_maddubs_epi16(pairs, weight));
    }
    acc
}

/// The same for the 8 outputs `x..x + 8` (`x + 8 <= w`).
#[inline]
#[target_feature(enable = "avx2")]
fn horizontal_8<const TAPS: usize>(src: &[u8], x: usize, weights: &[__m256i; 4]) -> __m128i {
    let ctl = const { horizontal_shuffles_8(TAPS) };
    let v = _mm_unpacklo_epi64(load_u8x8(&src[x..]), load_u8x8(&src[x + TAPS - 1..]));
    let mut acc = _mm_setzero_si128();
    for (ctl, &weight) in ctl.iter().zip(weights).take(TAPS / 2) {
        let pairs = _mm_shuffle_epi8(v, load_u8x16(ctl));
        acc = _mm_add_epi16(
            acc,
            _mm_maddubs_epi16(pairs, _mm256_castsi256_si128(weight)),
        );
    }
    acc
}

/// The horizontal filter's sums of one row, `out.len()` (a multiple of 8) of them.
#[inline]
#[target_feature(enable = "avx2")]
fn horizontal_row<const TAPS: usize>(src: &[u8], weights: &[__m256i; 4], out: &mut [i16]) {
    let w = out.len();
    let mut x = 0;
    while x + 16 <= w {
        store_i16x16(&mut out[x..], horizontal_16::<TAPS>(src, x, weights));
        x += 16;
    }
    if x < w {
        store_i16x8(&mut out[x..], horizontal_8::<TAPS>(src, x, weights));
    }
}

/// One horizontally filtered row rounded to bytes: `clip((sum + 32) >> 6)`.
#[inline]
#[target_feature(enable = "avx2")]
fn horizontal_row_bytes<const TAPS: usize>(src: &[u8], weights: &[__m256i; 4], out: &mut [u8]) {
    let w = out.len();
    let round = _mm256_set1_epi16(32);
    let mut x = 0;
    while x + 16 <= w {
        let sums = horizontal_16::<TAPS>(src, x, weights);
        let v = _mm256_srai_epi16(_mm256_add_epi16(sums, round), 6);
        let packed = _mm256_permute4x64_epi64(_mm256_packus_epi16(v, v), 0b00_00_10_00);
        store_u8x16(&mut out[x..], _mm256_castsi256_si128(packed));
        x += 16;
    }
    if x < w {
        let sums = horizontal_8::<TAPS>(src, x, weights);
        let v = _mm_srai_epi16(_mm_add_epi16(sums, _mm256_castsi256_si128(round)), 6);
        store_u8x8(&mut out[x..], _mm_packus_epi16(v, v));
    }
}

/// The vertical filter straight from byte rows, rounded to bytes: rows interleaved in pairs so
/// that each `maddubs` sums two taps.
#[inline]
#[target_feature(enable = "avx2")]
fn vertical_row_bytes<const TAPS: usize>(
    rows: [&[u8]; TAPS],
    weights: &[__m256i; 4],
    out: &mut [u8],
) {
    let w = out.len();
    let round = _mm256_set1_epi16(32);
    let mut x = 0;
    while x + 32 <= w {
        let (mut lo, mut hi) = (_mm256_setzero_si256(), _mm256_setzero_si256());
        for (pair, &weight) in rows.chunks_exact(2).zip(weights) {
            let (a, b) = (load_u8x32(&pair[0][x..]), load_u8x32(&pair[1][x..]));
            lo = _mm256_add_epi16(lo, _mm256_maddubs_epi16(_mm256_unpacklo_epi8(a, b), weight));
            hi = _mm256_add_epi16(hi, _mm256_maddubs_epi16(_mm256_unpackhi_epi8(a, b), weight));
        }
        let lo = _mm256_srai_epi16(_mm256_add_epi16(lo, round), 6);
        let hi = _mm256_srai_epi16(_mm256_add_epi16(hi, round), 6);
        // Per lane: columns 0..8 then 8..16 of that lane, so the lanes stay in order.
        store_u8x32(&mut out[x..], _mm256_packus_epi16(lo, hi));
        x += 32;
    }
    let round = _mm256_castsi256_si128(round);
    while x + 8 <= w {
        let mut acc = _mm_setzero_si128();
        let mut acc_hi = _mm_setzero_si128();
        let wide = x + 16 <= w;
        for (pair, &weight) in rows.chunks_exact(2).zip(weights) {
            let weight = _mm256_castsi256_si128(weight);
            let (a, b) = if wide {
                (load_u8x16(&pair[0][x..]), load_u8x16(&pair[1][x..]))
            } else {
                (load_u8x8(&pair[0][x..]), load_u8x8(&pair[1][x..]))
            };
            acc = _mm_add_epi16(acc, _mm_maddubs_epi16(_mm_unpacklo_epi8(a, b), weight));
            if wide {
                acc_hi = _mm_add_epi16(acc_hi, _mm_maddubs_epi16(_mm_unpackhi_epi8(a, b), weight));
            }
        }
        let lo = _mm_srai_epi16(_mm_add_epi16(acc, round), 6);
        let hi = _mm_srai_epi16(_mm_add_epi16(acc_hi, round), 6);
        let packed = _mm_packus_epi16(lo, hi);
        if wide {
            store_u8x16(&mut out[x..], packed);
            x += 16;
        } else {
            store_u8x8(&mut out[x..], packed);
            x += 8;
        }
    }
}

/// The vertical pass over horizontally filtered rows: `clip((Σ_t taps[t]·rows[t] + 2048) >>
/// 12)`, pairs of rows interleaved so that each multiply-add sums two taps in 32 bits. The rows'
/// lengths are checked once, not at each of the `TAPS` loads per 16 outputs.
#[inline]
#[target_feature(enable = "avx2")]
fn vertical_of_sums<const TAPS: usize>(rows: [&[i16]; TAPS], taps: [i16; TAPS], out: &mut [u8]) {
    let w = out.len();
    assert!(w.is_multiple_of(8) && rows.iter().all(|row| row.len() >= w));
    let rows = rows.map(<[i16]>::as_ptr);
    let pair = |t: usize| (i32::from(taps[t + 1]) << 16) | i32::from(taps[t] as u16);
    let mut x = 0;
    while x + 16 <= w {
        let (mut lo, mut hi) = (_mm256_set1_epi32(2048), _mm256_set1_epi32(2048));
        for t in (0..TAPS).step_by(2) {
            // SAFETY: x + 16 <= w and every row holds at least w lanes (asserted above).
            let (a, b) = unsafe {
                (
                    _mm256_loadu_si256(rows[t].add(x).cast()),
                    _mm256_loadu_si256(rows[t + 1].add(x).cast()),
                )
            };
            let weights = _mm256_set1_epi32(pair(t));
            lo = _mm256_add_epi32(lo, _mm256_madd_epi16(_mm256_unpacklo_epi16(a, b), weights));
            hi = _mm256_add_epi32(hi, _mm256_madd_epi16(_mm256_unpackhi_epi16(a, b), weights));
        }
        let v = _mm256_packs_epi32(_mm256_srai_epi32(lo, 12), _mm256_srai_epi32(hi, 12));
        let packed = _mm256_permute4x64_epi64(_mm256_packus_epi16(v, v), 0b00_00_10_00);
        store_u8x16(&mut out[x..], _mm256_castsi256_si128(packed));
        x += 16;
    }
    if x < w {
        let (mut lo, mut hi) = (_mm_set1_epi32(2048), _mm_set1_epi32(2048));
        for t in (0..TAPS).step_by(2) {
            // SAFETY: x + 8 <= w (w is a multiple of 8) and every row holds at least w lanes.
            let (a, b) = unsafe {
                (
                    _mm_loadu_si128(rows[t].add(x).cast()),
                    _mm_loadu_si128(rows[t + 1].add(x).cast()),
                )
            };
            let weights = _mm_set1_epi32(pair(t));
            lo = _mm_add_epi32(lo, _mm_madd_epi16(_mm_unpacklo_epi16(a, b), weights));
            hi = _mm_add_epi32(hi, _mm_madd_epi16(_mm_unpackhi_epi16(a, b), weights));
        }
        let v = _mm_packs_epi32(_mm_srai_epi32(lo, 12), _mm_srai_epi32(hi, 12));
        store_u8x8(&mut out[x..], _mm_packus_epi16(v, v));
    }
}

#[inline]
#[target_feature(enable = "avx2")]
fn load_u8x4(src: &[u8]) -> __m128i {
    let bytes: [u8; 4] = src[..4].try_into().expect("a 4-byte slice");
    _mm_cvtsi32_si128(i32::from_le_bytes(bytes))
}

/// The low 4 bytes of `v` to `out`.
#[inline]
#[target_feature(enable = "avx2")]
fn store_u8x4(out: &mut [u8], v: __m128i) {
    out[..4].copy_from_slice(&_mm_cvtsi128_si32(v).to_le_bytes());
}

/// Shuffle controls of the 4-wide horizontal filter for `TAPS` ≤ 4, two rows per 16 bytes:
/// each row's 8 bytes hold its samples 0..4 then `TAPS - 1..TAPS + 3` (the filter's reach is
/// `TAPS + 3` samples, so no load passes it). Bytes 0..8 are row 0's pairs, 8..16 row 1's.
const fn horizontal_shuffles_4x2(taps: usize) -> [[u8; 16]; 4] {
    let reach = taps + 3;
    let mut ctl = [[0u8; 16]; 4];
    let mut j = 0;
    while 2 * j < taps {
        let mut i = 0;
        while i < 8 {
            let k = i / 2 + 2 * j + i % 2;
            let m = if k < 4 { k } else { k + 8 - reach };
            ctl[j][i] = m as u8;
            ctl[j][8 + i] = (m + 8) as u8;
            i += 1;
        }
        j += 1;
    }
    ctl
}

/// The same for `TAPS` > 4, one row per 128-bit lane holding samples 0..8 then
/// `TAPS - 5..TAPS + 3`; the pairs of outputs 4..8 of each lane are zero.
const fn horizontal_shuffles_4x1(taps: usize) -> [[u8; 32]; 4] {
    let reach = taps + 3;
    let mut ctl = [[0x80u8; 32]; 4];
    let mut j = 0;
    while 2 * j < taps {
        let mut i = 0;
        while i < 8 {
            let k = i / 2 + 2 * j + i % 2;
            let m = if k < 8 { k } else { k + 16 - reach };
            ctl[j][i] = m as u8;
            ctl[j][16 + i] = m as u8;
            i += 1;
        }
        j += 1;
    }
    ctl
}

/// The horizontal filter's sums of 4 outputs of two rows (row 0's in lanes 0..4, row 1's in
/// 4..8); each source slice starts at the first output's first tap and holds `TAPS + 3`
/// samples.
#[inline]
#[target_feature(enable = "avx2")]
fn horizontal_4x2<const TAPS: usize>(src: [&[u8]; 2], weights: &[__m256i; 4]) -> __m128i {
    let reach = TAPS + 3;
    if TAPS <= 4 {
        let ctl = const { horizontal_shuffles_4x2(TAPS) };
        let [a, b] =
            src.map(|row| _mm_unpacklo_epi32(load_u8x4(row), load_u8x4(&row[reach - 4..])));
        let v = _mm_unpacklo_epi64(a, b);
        let mut acc = _mm_setzero_si128();
        for (ctl, &weight) in ctl.iter().zip(weights).take(TAPS / 2) {
            let pairs = _mm_shuffle_epi8(v, load_u8x16(ctl));
            acc = _mm_add_epi16(
                acc,
                _mm_maddubs_epi16(pairs, _mm256_castsi256_si128(weight)),
            );
        }
        acc
    } else {
        let ctl = const { horizontal_shuffles_4x1(TAPS) };
        let [a, b] =
            src.map(|row| _mm_unpacklo_epi64(load_u8x8(row), load_u8x8(&row[reach - 8..])));
        let v = _mm256_set_m128i(b, a);
        let mut acc = _mm256_setzero_si256();
        for (ctl, &weight) in ctl.iter().zip(weights).take(TAPS / 2) {
            let pairs = _mm256_shuffle_epi8(v, load_u8x32(ctl));
            acc = _mm256_add_epi16(acc, _mm256_maddubs_epi16(pairs, weight));
        }
        _mm_unpacklo_epi64(
            _mm256_castsi256_si128(acc),
            _mm256_extracti128_si256(acc, 1),
        )
    }
}

/// Bytes `clip((sums + 32) >> 6)` of two rows of 4 to `out` (row `y`, and row `y + 1` if the
/// block has it).
#[inline]
#[target_feature(enable = "avx2")]
fn store_rounded_4x2(sums: __m128i, out: &mut [u8], y: usize, h: usize) {
    let v = _mm_srai_epi16(_mm_add_epi16(sums, _mm_set1_epi16(32)), 6);
    store_4x2(_mm_packus_epi16(v, v), out, y, h);
}

/// Bytes 0..4 to row `y` of a 4-wide `out`, bytes 4..8 to row `y + 1` if `y + 1 < h`.
#[inline]
#[target_feature(enable = "avx2")]
fn store_4x2(bytes: __m128i, out: &mut [u8], y: usize, h: usize) {
    store_u8x4(&mut out[4 * y..], bytes);
    if y + 1 < h {
        store_u8x4(&mut out[4 * y + 4..], _mm_srli_si128(bytes, 4));
    }
}

/// 4-wide blocks (`h` ≤ 64), two rows at a time; a last odd row is computed twice, from its
/// own samples, and stored once.
#[inline]
#[target_feature(enable = "avx2")]
fn interpolate_4wide<const TAPS: usize>(
    plane: &PaddedPlane<u8>,
    (ix, iy): (isize, isize),
    h: usize,
    (taps_x, taps_y): (Option<&[i32; TAPS]>, Option<&[i32; TAPS]>),
    out: &mut [u8],
) {
    let before = (TAPS / 2 - 1) as isize;
    let data = &plane.data[..];
    let row_at = |x: isize, y: isize, len: usize| &data[plane.index(x, y)..][..len];
    match (taps_x, taps_y) {
        (Some(tx), None) => {
            let weights = pair_weights(tx);
            for y in (0..h).step_by(2) {
                let src =
                    [y, (y + 1).min(h - 1)].map(|r| row_at(ix - before, iy + r as isize, TAPS + 3));
                store_rounded_4x2(horizontal_4x2::<TAPS>(src, &weights), out, y, h);
            }
        }
        (None, Some(ty)) => {
            let weights = pair_weights(ty);
            // Source rows 0..h + TAPS - 1 (from `before` rows above) are inside the reach.
            let last = h + TAPS - 2;
            for y in (0..h).step_by(2) {
                let rows: [__m128i; 9] = std::array::from_fn(|t| {
                    if t > TAPS {
                        return _mm_setzero_si128();
                    }
                    let r = (y + t).min(last);
                    load_u8x4(row_at(ix, iy - before + r as isize, 4))
                });
                let mut acc = _mm_setzero_si128();
                for (j, &weight) in weights.iter().enumerate().take(TAPS / 2) {
                    let t = 2 * j;
                    // Rows (y + t, y + t + 1) pair up for output row y, (y + t + 1, y + t + 2)
                    // for output row y + 1.
                    let a = _mm_unpacklo_epi32(rows[t], rows[t + 1]);
                    let b = _mm_unpacklo_epi32(rows[t + 1], rows[t + 2]);
                    acc = _mm_add_epi16(
                        acc,
                        _mm_maddubs_epi16(_mm_unpacklo_epi8(a, b), _mm256_castsi256_si128(weight)),
                    );
                }
                store_rounded_4x2(acc, out, y, h);
            }
        }
        (Some(tx), Some(ty)) => {
            let weights = pair_weights(tx);
            // Horizontal sums of the source rows 0..h + TAPS - 1, 4 per row; the spare row at
            // the end is read only for a discarded odd output row.
            let mut sums = [0i16; 4 * (64 + 8)];
            let rows = h + TAPS - 1;
            for r in (0..rows).step_by(2) {
                let src = [r, (r + 1).min(rows - 1)]
                    .map(|r| row_at(ix - before, iy - before + r as isize, TAPS + 3));
                store_i16x8(&mut sums[4 * r..], horizontal_4x2::<TAPS>(src, &weights));
            }
            let pair = |t: usize| (ty[t + 1] << 16) | (ty[t] & 0xffff);
            for y in (0..h).step_by(2) {
                let (mut lo, mut hi) = (_mm_set1_epi32(2048), _mm_set1_epi32(2048));
                for t in (0..TAPS).step_by(2) {
                    // Rows (y + t, y + t + 1) and (y + t + 1, y + t + 2) of sums.
                    let a = load_i16x8(&sums[4 * (y + t)..]);
                    let b = load_i16x8(&sums[4 * (y + t + 1)..]);
                    let weights = _mm_set1_epi32(pair(t));
                    lo = _mm_add_epi32(lo, _mm_madd_epi16(_mm_unpacklo_epi16(a, b), weights));
                    hi = _mm_add_epi32(hi, _mm_madd_epi16(_mm_unpackhi_epi16(a, b), weights));
                }
                let v = _mm_packs_epi32(_mm_srai_epi32(lo, 12), _mm_srai_epi32(hi, 12));
                store_4x2(_mm_packus_epi16(v, v), out, y, h);
            }
        }
        (None, None) => copy_rows::<4>(plane, (ix, iy), h, out),
    }
}

/// Whole-sample prediction: `h` rows of `W` samples, each one fixed-size copy.
#[inline]
fn copy_rows<const W: usize>(
    plane: &PaddedPlane<u8>,
    (ix, iy): (isize, isize),
    h: usize,
    out: &mut [u8],
) {
    let start = plane.index(ix, iy);
    let rows = plane.data[start..].chunks(plane.stride);
    for (row, src) in out.chunks_exact_mut(W).take(h).zip(rows) {
        row.copy_from_slice(&src[..W]);
    }
}

/// Sub-sample interpolation of 8-bit blocks (see `Kernels::interpolate`), the same arithmetic as
/// the reference: the horizontal pass exact in 16 bits (byte pairs times byte taps), the
/// vertical one in 16 bits from bytes or in 32 from horizontal sums, one rounding. Whole-sample
/// copies are fixed-size row copies for the block widths the codec uses. Widths other than 4
/// and multiples of 8 (and 4-wide blocks taller than 64), and taps too large for 16-bit sums,
/// run the reference.
///
/// # Safety
/// The CPU supports AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn interpolate_avx2<const TAPS: usize>(
    plane: &PaddedPlane<u8>,
    (ix, iy): (isize, isize),
    (w, h): (usize, usize),
    (taps_x, taps_y): (Option<&[i32; TAPS]>, Option<&[i32; TAPS]>),
    out: &mut [u8],
) {
    const { assert!(TAPS.is_multiple_of(2) && TAPS <= 8 && TAPS >= 2) };
    if taps_x.is_none() && taps_y.is_none() {
        return match w {
            4 => copy_rows::<4>(plane, (ix, iy), h, out),
            8 => copy_rows::<8>(plane, (ix, iy), h, out),
            16 => copy_rows::<16>(plane, (ix, iy), h, out),
            32 => copy_rows::<32>(plane, (ix, iy), h, out),
            64 => copy_rows::<64>(plane, (ix, iy), h, out),
            _ => mc::interpolate(plane, (ix, iy), (w, h), (taps_x, taps_y), out),
        };
    }
    if !taps_fit_bytes(taps_x) || !taps_fit_bytes(taps_y) || h == 0 {
        return mc::interpolate(plane, (ix, iy), (w, h), (taps_x, taps_y), out);
    }
    if w == 4 && h <= 64 {
        return interpolate_4wide(plane, (ix, iy), h, (taps_x, taps_y), out);
    }
    if !w.is_multiple_of(8) || w > 64 {
        return mc::interpolate(plane, (ix, iy), (w, h), (taps_x, taps_y), out);
    }
    let before = (TAPS / 2 - 1) as isize;
    let data = &plane.data[..];
    let row_at = |x: isize, y: isize, len: usize| &data[plane.index(x, y)..][..len];
    match (taps_x, taps_y) {
        (Some(tx), None) => {
            let weights = pair_weights(tx);
            for (y, row) in out.chunks_exact_mut(w).take(h).enumerate() {
                let src = row_at(ix - before, iy + y as isize, w + TAPS - 1);
                horizontal_row_bytes::<TAPS>(src, &weights, row);
            }
        }
        (None, Some(ty)) => {
            let weights = pair_weights(ty);
            for (y, row) in out.chunks_exact_mut(w).take(h).enumerate() {
                // A loop rather than `array::from_fn`, whose closure would not be inlined.
                let mut rows = [&data[..0]; TAPS];
                for (t, slot) in rows.iter_mut().enumerate() {
                    *slot = row_at(ix, iy - before + (y + t) as isize, w);
                }
                vertical_row_bytes::<TAPS>(rows, &weights, row);
            }
        }
        (Some(tx), Some(ty)) => {
            // The ring of filtered rows only as wide as the block: it is zeroed on every call.
            let (origin, size, taps) = ((ix, iy), (w, h), (tx, ty));
            match w {
                8 => separable::<TAPS, 8>(plane, origin, size, taps, out),
                16 => separable::<TAPS, 16>(plane, origin, size, taps, out),
                32 => separable::<TAPS, 32>(plane, origin, size, taps, out),
                _ => separable::<TAPS, 64>(plane, origin, size, taps, out),
            }
        }
        (None, None) => unreachable!("whole-sample copies return above"),
    }
}

/// The horizontal then vertical pass of [`interpolate_avx2`] for blocks at most `RING` wide (a
/// multiple of 8), through a ring of the last `TAPS` horizontally filtered rows.
#[inline]
#[target_feature(enable = "avx2")]
fn separable<const TAPS: usize, const RING: usize>(
    plane: &PaddedPlane<u8>,
    (ix, iy): (isize, isize),
    (w, h): (usize, usize),
    (tx, ty): (&[i32; TAPS], &[i32; TAPS]),
    out: &mut [u8],
) {
    let before = (TAPS / 2 - 1) as isize;
    let weights = pair_weights(tx);
    let ty = ty.map(|t| t as i16);
    let mut ring = [[0i16; RING]; TAPS];
    let horizontal = |r: usize, ring: &mut [[i16; RING]; TAPS]| {
        let start = plane.index(ix - before, iy - before + r as isize);
        let src = &plane.data[start..][..w + TAPS - 1];
        horizontal_row::<TAPS>(src, &weights, &mut ring[r % TAPS][..w]);
    };
    for r in 0..TAPS - 1 {
        horizontal(r, &mut ring);
    }
    for (y, row) in out.chunks_exact_mut(w).take(h).enumerate() {
        horizontal(y + TAPS - 1, &mut ring);
        let mut rows = [&ring[0][..0]; TAPS];
        for (t, slot) in rows.iter_mut().enumerate() {
            *slot = &ring[(y + t) % TAPS][..w];
        }
        vertical_of_sums(rows, ty, row);
    }
}

/// SAO edge index `sign(c - a) + sign(c - b) + 2` (0 to 4) of unsigned bytes.
#[inline]
#[target_feature(enable = "avx2")]
fn edge_index_256(a: __m256i, c: __m256i, b: __m256i) -> __m256i {
    // Flipping the top bit orders unsigned bytes as the signed compare does.
    let bias = _mm256_set1_epi8(-128);
    let (a, c, b) = (
        _mm256_xor_si256(a, bias),
        _mm256_xor_si256(c, bias),
        _mm256_xor_si256(b, bias),
    );
    // cmpgt is -1 where true: (n > c) - (c > n) = sign(c - n).
    let sa = _mm256_sub_epi8(_mm256_cmpgt_epi8(a, c), _mm256_cmpgt_epi8(c, a));
    let sb = _mm256_sub_epi8(_mm256_cmpgt_epi8(b, c), _mm256_cmpgt_epi8(c, b));
    _mm256_add_epi8(_mm256_add_epi8(sa, sb), _mm256_set1_epi8(2))
}

#[inline]
#[target_feature(enable = "avx2")]
fn edge_index_128(a: __m128i, c: __m128i, b: __m128i) -> __m128i {
    let bias = _mm_set1_epi8(-128);
    let (a, c, b) = (
        _mm_xor_si128(a, bias),
        _mm_xor_si128(c, bias),
        _mm_xor_si128(b, bias),
    );
    let sa = _mm_sub_epi8(_mm_cmpgt_epi8(a, c), _mm_cmpgt_epi8(c, a));
    let sb = _mm_sub_epi8(_mm_cmpgt_epi8(b, c), _mm_cmpgt_epi8(c, b));
    _mm_add_epi8(_mm_add_epi8(sa, sb), _mm_set1_epi8(2))
}

/// `clip(c + o)` of unsigned bytes `c` and signed offsets `o` (-127..=127): one of the
/// saturating add and subtract is of zero.
#[inline]
#[target_feature(enable = "avx2")]
fn add_offsets_256(c: __m256i, o: __m256i) -> __m256i {
    let zero = _mm256_setzero_si256();
    let up = _mm256_max_epi8(o, zero);
    let down = _mm256_max_epi8(_mm256_sub_epi8(zero, o), zero);
    _mm256_subs_epu8(_mm256_adds_epu8(c, up), down)
}

#[inline]
#[target_feature(enable = "avx2")]
fn add_offsets_128(c: __m128i, o: __m128i) -> __m128i {
    let zero = _mm_setzero_si128();
    let up = _mm_max_epi8(o, zero);
    let down = _mm_max_epi8(_mm_sub_epi8(zero, o), zero);
    _mm_subs_epu8(_mm_adds_epu8(c, up), down)
}

/// Offsets that fit the signed bytes the kernels add.
fn offsets_fit_bytes(table: &[i32]) -> bool {
    table.iter().all(|t| (-127..=127).contains(t))
}

/// Runs `chunk32` then `chunk16` over `span`, covering its tail with a chunk that overlaps the
/// previous one (which recomputes the same outputs), and the reference below 16 samples.
#[inline(always)]
fn overlapping_chunks(
    span: std::ops::Range<usize>,
    out: &mut [u8],
    mut chunk32: impl FnMut(&mut [u8], usize),
    mut chunk16: impl FnMut(&mut [u8], usize),
    rest: impl FnOnce(&mut [u8], std::ops::Range<usize>),
) {
    let len = span.len();
    if len >= 32 {
        let mut x = span.start;
        while x + 32 <= span.end {
            chunk32(out, x);
            x += 32;
        }
        if x < span.end {
            chunk32(out, span.end - 32);
        }
    } else if len >= 16 {
        chunk16(out, span.start);
        chunk16(out, span.end - 16);
    } else {
        rest(out, span);
    }
}

/// The SAO edge filter of a row segment (see `sao::edge_row`): edge index, category offset by
/// byte shuffle, saturating add.
///
/// # Safety
/// The CPU supports AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn sao_edge_row_avx2(
    (ra, cur, rb): (&[u8], &[u8], &[u8]),
    dx: isize,
    span: std::ops::Range<usize>,
    table: &[i32; 5],
    max: i32,
    out: &mut [u8],
) {
    if !offsets_fit_bytes(table) {
        return sao::edge_row((ra, cur, rb), dx, span, table, max, out);
    }
    // Offset of each edge index, in the order of `sao::edge_category`.
    let mut lut = [0u8; 16];
    for (e, category) in [1, 2, 0, 3, 4].into_iter().enumerate() {
        lut[e] = table[category] as i8 as u8;
    }
    let lut = load_u8x16(&lut);
    let lut256 = _mm256_broadcastsi128_si256(lut);
    let (left, right) = (
        |x: usize| x.wrapping_add_signed(-dx),
        |x: usize| x.wrapping_add_signed(dx),
    );
    overlapping_chunks(
        span,
        out,
        |out, x| {
            let c = load_u8x32(&cur[x..]);
            let e = edge_index_256(load_u8x32(&ra[left(x)..]), c, load_u8x32(&rb[right(x)..]));
            let o = _mm256_shuffle_epi8(lut256, e);
            store_u8x32(&mut out[x..], add_offsets_256(c, o));
        },
        |out, x| {
            let c = load_u8x16(&cur[x..]);
            let e = edge_index_128(load_u8x16(&ra[left(x)..]), c, load_u8x16(&rb[right(x)..]));
            let o = _mm_shuffle_epi8(lut, e);
            store_u8x16(&mut out[x..], add_offsets_128(c, o));
        },
        |out, span| sao::edge_row((ra, cur, rb), dx, span, table, max, out),
    );
}

/// The SAO band filter of a row segment (see `sao::band_row`): the band's offset looked up in
/// two 16-byte halves of the table, saturating add.
///
/// # Safety
/// The CPU supports AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn sao_band_row_avx2(
    cur: &[u8],
    span: std::ops::Range<usize>,
    table: &[i32; 32],
    band_shift: u32,
    max: i32,
    out: &mut [u8],
) {
    if band_shift != 3 || !offsets_fit_bytes(table) {
        return sao::band_row(cur, span, table, band_shift, max, out);
    }
    let bytes = table.map(|t| t as i8 as u8);
    let (low, high) = (load_u8x16(&bytes[..16]), load_u8x16(&bytes[16..]));
    let (low256, high256) = (
        _mm256_broadcastsi128_si256(low),
        _mm256_broadcastsi128_si256(high),
    );
    overlapping_chunks(
        span,
        out,
        |out, x| {
            let c = load_u8x32(&cur[x..]);
            let band = _mm256_and_si256(_mm256_srli_epi16(c, 3), _mm256_set1_epi8(31));
            let o = _mm256_blendv_epi8(
                _mm256_shuffle_epi8(low256, band),
                _mm256_shuffle_epi8(high256, band),
                _mm256_cmpgt_epi8(band, _mm256_set1_epi8(15)),
            );
            store_u8x32(&mut out[x..], add_offsets_256(c, o));
        },
        |out, x| {
            let c = load_u8x16(&cur[x..]);
            let band = _mm_and_si128(_mm_srli_epi16(c, 3), _mm_set1_epi8(31));
            let o = _mm_blendv_epi8(
                _mm_shuffle_epi8(low, band),
                _mm_shuffle_epi8(high, band),
                _mm_cmpgt_epi8(band, _mm_set1_epi8(15)),
            );
            store_u8x16(&mut out[x..], add_offsets_128(c, o));
        },
        |out, span| sao::band_row(cur, span, table, band_shift, max, out),
    );
}

/// One 32-sample chunk of [`sao_edge_stats_avx2`] at `x`, counting only the lanes set in
/// `lanes`: Σ (orig - cur) per edge category 1 to 4 (exact in 64-bit lanes, so the same total as
/// separate sums) and the count. A function rather than a closure so that it is inlined and the
/// sums stay in registers.
#[inline]
#[target_feature(enable = "avx2")]
fn edge_chunk(
    (ra, cur, rb): (&[u8], &[u8], &[u8]),
    orig: &[u8],
    dx: isize,
    x: usize,
    lanes: __m256i,
    sums: &mut [__m256i; 4],
    counts: &mut [u32; 4],
) {
    let zero = _mm256_setzero_si256();
    let c = load_u8x32(&cur[x..]);
    let o = load_u8x32(&orig[x..]);
    let a = load_u8x32(&ra[x.wrapping_add_signed(-dx)..]);
    let b = load_u8x32(&rb[x.wrapping_add_signed(dx)..]);
    let e = edge_index_256(a, c, b);
    // Edge indices 0, 1, 3 and 4 are categories 1 to 4, as in `sao::edge_category`; index 2
    // (category 0, no edge) is not collected.
    for ((sum, count), k) in sums.iter_mut().zip(counts.iter_mut()).zip([0, 1, 3, 4]) {
        let m = _mm256_and_si256(_mm256_cmpeq_epi8(e, _mm256_set1_epi8(k)), lanes);
        let orig_sum = _mm256_sad_epu8(_mm256_and_si256(m, o), zero);
        let cur_sum = _mm256_sad_epu8(_mm256_and_si256(m, c), zero);
        *sum = _mm256_add_epi64(*sum, _mm256_sub_epi64(orig_sum, cur_sum));
        *count += (_mm256_movemask_epi8(m) as u32).count_ones();
    }
}

/// The SAO edge statistics of a row segment (see `sao::edge_stats`): per edge category, the
/// masked samples' sums by `sad` against zero and their number by `movemask`. A tail shorter
/// than 32 reuses the last 32 samples with the lanes already counted masked off; a span shorter
/// than 32 is one chunk from its start with the lanes past its end masked off, where the rows
/// hold those samples and their neighbours.
///
/// # Safety
/// The CPU supports AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn sao_edge_stats_avx2(
    (ra, cur, rb): (&[u8], &[u8], &[u8]),
    orig: &[u8],
    dx: isize,
    span: std::ops::Range<usize>,
) -> [(i32, i32); 4] {
    let ramp = load_u8x32(&std::array::from_fn::<u8, 32, _>(|i| i as u8));
    let reach = dx.unsigned_abs();
    let readable = ra.len().min(cur.len()).min(rb.len()).min(orig.len());
    let (mut x, mut lanes) = if span.len() >= 32 {
        (span.start, _mm256_set1_epi8(-1))
    } else if !span.is_empty() && span.start >= reach && span.start + 32 + reach <= readable {
        let len = _mm256_set1_epi8(span.len() as i8);
        (span.start, _mm256_cmpgt_epi8(len, ramp))
    } else {
        return sao::edge_stats((ra, cur, rb), orig, dx, span);
    };
    // Per category: Σ (orig - cur) in 64-bit lanes, and the count.
    let mut sums = [_mm256_setzero_si256(); 4];
    let mut counts = [0u32; 4];
    // One call site, so that the chunk is inlined.
    loop {
        edge_chunk((ra, cur, rb), orig, dx, x, lanes, &mut sums, &mut counts);
        let next = x + 32;
        if next >= span.end {
            break;
        }
        if next + 32 > span.end {
            // Lanes i >= 32 - (span.end - next) are new.
            let first_new = (32 - (span.end - next)) as i8;
            lanes = _mm256_cmpgt_epi8(ramp, _mm256_set1_epi8(first_new - 1));
            x = span.end - 32;
        } else {
            x = next;
        }
    }
    // The four lanes of each sum added: pairs by unpacking, then the 128-bit halves.
    let pairs = |p: __m256i, q: __m256i| {
        let v = _mm256_add_epi64(_mm256_unpacklo_epi64(p, q), _mm256_unpackhi_epi64(p, q));
        _mm_add_epi64(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1))
    };
    let (s01, s23) = (pairs(sums[0], sums[1]), pairs(sums[2], sums[3]));
    let totals = [
        _mm_cvtsi128_si64(s01),
        _mm_extract_epi64(s01, 1),
        _mm_cvtsi128_si64(s23),
        _mm_extract_epi64(s23, 1),
    ];
    std::array::from_fn(|k| (totals[k] as i32, counts[k] as i32))
}
