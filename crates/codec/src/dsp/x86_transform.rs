//! AVX2 kernels of the 2-D DCTs and of quantisation. Entered only through a
//! [`super::Transforms`] table built for a level this CPU supports.
//!
//! The transforms run in 32-bit lanes, one lane per column of the block, with the even/odd
//! butterflies of the reference: every product and sum is taken modulo 2^32 exactly as the
//! reference takes it, so the result equals the reference for every input and bit depth. A pass
//! writes its output transposed (8×8 register transposes), so that both passes read whole rows
//! and no separate transpose or rounding pass is left.

use super::{Matrices, quant};
use std::arch::x86_64::*;
use std::mem::MaybeUninit;

#[inline]
#[target_feature(enable = "avx2")]
fn load8(src: &[i32]) -> __m256i {
    let src = &src[..8];
    // SAFETY: `src` holds exactly 8 readable lanes; the load needs no alignment.
    unsafe { _mm256_loadu_si256(src.as_ptr().cast()) }
}

#[inline]
#[target_feature(enable = "avx2")]
fn store8(out: &mut [i32], v: __m256i) {
    let out = &mut out[..8];
    // SAFETY: `out` holds exactly 8 writable lanes.
    unsafe { _mm256_storeu_si256(out.as_mut_ptr().cast(), v) }
}

#[inline]
#[target_feature(enable = "avx2")]
fn store8_uninit(out: &mut [MaybeUninit<i32>], v: __m256i) {
    let out = &mut out[..8];
    // SAFETY: `out` holds exactly 8 writable lanes (uninitialised lanes may be written).
    unsafe { _mm256_storeu_si256(out.as_mut_ptr().cast(), v) }
}

/// `block` as lanes that may be left uninitialised, for a pass that only stores values.
#[inline]
fn as_uninit(block: &mut [i32]) -> &mut [MaybeUninit<i32>] {
    // SAFETY: `MaybeUninit<i32>` has the layout of `i32`, and the passes writing through the
    // result store only initialised values, so `block` stays initialised.
    unsafe { &mut *(block as *mut [i32] as *mut [MaybeUninit<i32>]) }
}

/// The intermediate block between the two passes, filled whole by the first pass (and the
/// zero rows of the inverse) before the second reads it, so it needs no zeroing.
struct Intermediate<const LEN: usize>([MaybeUninit<i32>; LEN]);

impl<const LEN: usize> Intermediate<LEN> {
    fn new() -> Self {
        Intermediate([MaybeUninit::uninit(); LEN])
    }

    /// The block, once every lane has been written.
    ///
    /// # Safety
    /// Every lane has been written.
    unsafe fn assume_written(&self) -> &[i32; LEN] {
        // SAFETY: same layout, and every lane is initialised (the caller's guarantee).
        unsafe { &*(&self.0 as *const [MaybeUninit<i32>; LEN] as *const [i32; LEN]) }
    }
}

#[inline]
#[target_feature(enable = "avx2")]
fn load4(src: &[i32]) -> __m128i {
    let src = &src[..4];
    // SAFETY: `src` holds exactly 4 readable lanes; the load needs no alignment.
    unsafe { _mm_loadu_si128(src.as_ptr().cast()) }
}

#[inline]
#[target_feature(enable = "avx2")]
fn store4(out: &mut [i32], v: __m128i) {
    let out = &mut out[..4];
    // SAFETY: `out` holds exactly 4 writable lanes.
    unsafe { _mm_storeu_si128(out.as_mut_ptr().cast(), v) }
}

/// The N×N matrix of `matrices` (N = 4 << `index`) as a fixed-size array, so that constant
/// indices need no bounds checks.
#[inline]
fn matrix<const LEN: usize>(matrices: &Matrices, index: usize) -> &[i32; LEN] {
    matrices[index]
        .as_slice()
        .try_into()
        .expect("transform matrix of the block's size")
}

#[inline]
#[target_feature(enable = "avx2")]
fn add(a: __m256i, b: __m256i) -> __m256i {
    _mm256_add_epi32(a, b)
}

#[inline]
#[target_feature(enable = "avx2")]
fn sub(a: __m256i, b: __m256i) -> __m256i {
    _mm256_sub_epi32(a, b)
}

#[inline]
#[target_feature(enable = "avx2")]
fn mul(a: __m256i, c: i32) -> __m256i {
    _mm256_mullo_epi32(a, _mm256_set1_epi32(c))
}

/// `Σ_i coefs[i]·x[i]` lane by lane, over the first `count` terms (1 ≤ `count` ≤ `x.len()`),
/// the coefficients `stride` apart in `coefs`.
#[inline]
#[target_feature(enable = "avx2")]
fn dot(x: &[__m256i], coefs: &[i32], stride: usize, count: usize) -> __m256i {
    let mut acc = mul(x[0], coefs[0]);
    for i in 1..count {
        acc = add(acc, mul(x[i], coefs[i * stride]));
    }
    acc
}

/// Transposes an 8×8 block of 32-bit lanes held as 8 row vectors.
#[inline]
#[target_feature(enable = "avx2")]
fn transpose8(r: &[__m256i; 8]) -> [__m256i; 8] {
    let t0 = _mm256_unpacklo_epi32(r[0], r[1]);
    let t1 = _mm256_unpackhi_epi32(r[0], r[1]);
    let t2 = _mm256_unpacklo_epi32(r[2], r[3]);
    let t3 = _mm256_unpackhi_epi32(r[2], r[3]);
    let t4 = _mm256_unpacklo_epi32(r[4], r[5]);
    let t5 = _mm256_unpackhi_epi32(r[4], r[5]);
    let t6 = _mm256_unpacklo_epi32(r[6], r[7]);
    let t7 = _mm256_unpackhi_epi32(r[6], r[7]);
    // Columns c and c + 4 of rows 0..4 (u0..u3) and of rows 4..8 (u4..u7).
    let u0 = _mm256_unpacklo_epi64(t0, t2);
    let u1 = _mm256_unpackhi_epi64(t0, t2);
    let u2 = _mm256_unpacklo_epi64(t1, t3);
    let u3 = _mm256_unpackhi_epi64(t1, t3);
    let u4 = _mm256_unpacklo_epi64(t4, t6);
    let u5 = _mm256_unpackhi_epi64(t4, t6);
    let u6 = _mm256_unpacklo_epi64(t5, t7);
    let u7 = _mm256_unpackhi_epi64(t5, t7);
    [
        _mm256_permute2x128_si256(u0, u4, 0x20),
        _mm256_permute2x128_si256(u1, u5, 0x20),
        _mm256_permute2x128_si256(u2, u6, 0x20),
        _mm256_permute2x128_si256(u3, u7, 0x20),
        _mm256_permute2x128_si256(u0, u4, 0x31),
        _mm256_permute2x128_si256(u1, u5, 0x31),
        _mm256_permute2x128_si256(u2, u6, 0x31),
        _mm256_permute2x128_si256(u3, u7, 0x31),
    ]
}

/// The 4-point forward transform `y[k] = Σ_j T4[k][j]·x[j]`, lane by lane.
#[inline]
#[target_feature(enable = "avx2")]
fn forward4(m: &Matrices, x: &[__m256i; 4]) -> [__m256i; 4] {
    let t: &[i32; 16] = matrix(m, 0);
    let (e0, e1) = (add(x[0], x[3]), add(x[1], x[2]));
    let (o0, o1) = (sub(x[0], x[3]), sub(x[1], x[2]));
    [
        add(mul(e0, t[0]), mul(e1, t[1])),
        add(mul(o0, t[4]), mul(o1, t[5])),
        add(mul(e0, t[8]), mul(e1, t[9])),
        add(mul(o0, t[12]), mul(o1, t[13])),
    ]
}

/// The N-point forward transforms for N ≥ 8: the even outputs are the N/2-point transform of
/// the folded sums, the odd ones the odd rows of `T_N` applied to the folded differences.
macro_rules! forward_even_odd {
    ($name:ident, $half:ident, $n:literal, $index:literal) => {
        #[inline]
        #[target_feature(enable = "avx2")]
        fn $name(m: &Matrices, x: &[__m256i; $n]) -> [__m256i; $n] {
            const H: usize = $n / 2;
            let t: &[i32; $n * $n] = matrix(m, $index);
            let zero = _mm256_setzero_si256();
            let (mut even, mut odd) = ([zero; H], [zero; H]);
            for i in 0..H {
                even[i] = add(x[i], x[$n - 1 - i]);
                odd[i] = sub(x[i], x[$n - 1 - i]);
            }
            let even = $half(m, &even);
            let mut y = [zero; $n];
            for k in 0..H {
                y[2 * k] = even[k];
                let row = &t[(2 * k + 1) * $n..][..H];
                let mut acc = mul(odd[0], row[0]);
                for i in 1..H {
                    acc = add(acc, mul(odd[i], row[i]));
                }
                y[2 * k + 1] = acc;
            }
            y
        }
    };
}

forward_even_odd!(forward8, forward4, 8, 1);
forward_even_odd!(forward16, forward8, 16, 2);
forward_even_odd!(forward32, forward16, 32, 3);

/// The 4-point inverse `y[j] = Σ_k T4[k][j]·x[k]` over the first `rows` inputs (the others
/// zero), lane by lane.
#[inline]
#[target_feature(enable = "avx2")]
fn inverse4(m: &Matrices, x: &[__m256i; 4], rows: usize) -> [__m256i; 4] {
    let t: &[i32; 16] = matrix(m, 0);
    let zero = _mm256_setzero_si256();
    let x2 = if rows > 2 { x[2] } else { zero };
    let (x1, x3) = (
        if rows > 1 { x[1] } else { zero },
        if rows > 3 { x[3] } else { zero },
    );
    let e0 = add(mul(x[0], t[0]), mul(x2, t[8]));
    let e1 = add(mul(x[0], t[1]), mul(x2, t[9]));
    let o0 = add(mul(x1, t[4]), mul(x3, t[12]));
    let o1 = add(mul(x1, t[5]), mul(x3, t[13]));
    [add(e0, o0), add(e1, o1), sub(e1, o1), sub(e0, o0)]
}

/// The N-point inverses for N ≥ 8 over the first `rows` inputs: the even inputs go through the
/// N/2-point inverse, the odd ones through the odd rows of `T_N`, and the outputs are their sum
/// and difference (`T_N[k][N - 1 - j] = ±T_N[k][j]` for even and odd `k`).
macro_rules! inverse_even_odd {
    ($name:ident, $half:ident, $n:literal, $index:literal) => {
        #[inline]
        #[target_feature(enable = "avx2")]
        fn $name(m: &Matrices, x: &[__m256i; $n], rows: usize) -> [__m256i; $n] {
            const H: usize = $n / 2;
            let t: &[i32; $n * $n] = matrix(m, $index);
            let zero = _mm256_setzero_si256();
            let (mut even_in, mut odd_in) = ([zero; H], [zero; H]);
            for i in 0..H {
                even_in[i] = x[2 * i];
                odd_in[i] = x[2 * i + 1];
            }
            let even = $half(m, &even_in, rows.div_ceil(2));
            let odd_rows = (rows / 2).min(H);
            let mut y = [zero; $n];
            for j in 0..H {
                let odd = if odd_rows == 0 {
                    zero
                } else {
                    dot(&odd_in, &t[$n + j..], 2 * $n, odd_rows)
                };
                y[j] = add(even[j], odd);
                y[$n - 1 - j] = sub(even[j], odd);
            }
            y
        }
    };
}

inverse_even_odd!(inverse8, inverse4, 8, 1);
inverse_even_odd!(inverse16, inverse8, 16, 2);
inverse_even_odd!(inverse32, inverse16, 32, 3);

/// `(v + 2^(shift-1)) >> shift`.
#[inline]
#[target_feature(enable = "avx2")]
fn round(v: __m256i, shift: u32) -> __m256i {
    let r = _mm256_add_epi32(v, _mm256_set1_epi32(1 << (shift - 1)));
    _mm256_sra_epi32(r, _mm_cvtsi32_si128(shift as i32))
}

/// One pass over an N×N block (N ≥ 8) in groups of 8 columns: `out = transpose(f(input))`,
/// where `f` maps the N row vectors of a group to N result vectors (rounded and clipped by
/// `f`). Only the first `groups` column groups are computed, which write the first
/// 8·`groups` rows of `out` whole.
#[inline]
#[target_feature(enable = "avx2")]
fn pass<const N: usize>(
    input: &[i32],
    out: &mut [MaybeUninit<i32>],
    groups: usize,
    f: impl Fn(&[__m256i; N]) -> [__m256i; N],
) {
    for g in 0..groups {
        let mut x = [_mm256_setzero_si256(); N];
        for (j, v) in x.iter_mut().enumerate() {
            *v = load8(&input[j * N + 8 * g..]);
        }
        let y = f(&x);
        for kb in 0..N / 8 {
            let block: &[__m256i; 8] = y[8 * kb..8 * kb + 8].try_into().expect("8 rows");
            let z = transpose8(block);
            for c in 0..8 {
                store8_uninit(&mut out[(8 * g + c) * N + 8 * kb..], z[c]);
            }
        }
    }
}

macro_rules! forward_dct {
    ($name:ident, $one_d:ident, $n:literal) => {
        /// The 2-D forward DCT of an N×N block, as `reference::forward_dct`.
        ///
        /// # Safety
        /// The CPU supports AVX2.
        #[target_feature(enable = "avx2")]
        pub(super) unsafe fn $name(m: &Matrices, residual: &[i32], coeffs: &mut [i32]) {
            const LOG2N: u32 = ($n as u32).trailing_zeros();
            let mut tmp = Intermediate::<{ $n * $n }>::new();
            pass::<$n>(residual, &mut tmp.0, $n / 8, |x| {
                let mut y = $one_d(m, x);
                for v in y.iter_mut() {
                    *v = round(*v, LOG2N - 1);
                }
                y
            });
            // SAFETY: the first pass ran over all N/8 groups, which write every row.
            let tmp = unsafe { tmp.assume_written() };
            pass::<$n>(tmp, as_uninit(coeffs), $n / 8, |x| {
                let mut y = $one_d(m, x);
                for v in y.iter_mut() {
                    *v = round(*v, LOG2N + 6);
                }
                y
            });
        }
    };
}

forward_dct!(forward_dct8, forward8, 8);
forward_dct!(forward_dct16, forward16, 16);
forward_dct!(forward_dct32, forward32, 32);

/// How many leading rows of the N×N `coeffs` hold a nonzero value, and how many leading
/// columns: beyond them the block is zero, and so are the terms of the inverse they give.
#[inline]
#[target_feature(enable = "avx2")]
fn extent<const N: usize>(coeffs: &[i32]) -> (usize, usize) {
    let zero = _mm256_setzero_si256();
    let mut rows = 0;
    let mut columns = 0u32;
    for k in 0..N {
        let mut any = zero;
        for g in 0..N / 8 {
            let v = load8(&coeffs[k * N + 8 * g..]);
            any = _mm256_or_si256(any, v);
            let nonzero = !_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(v, zero)));
            columns |= ((nonzero as u32) & 0xff) << (8 * g);
        }
        if _mm256_testz_si256(any, any) == 0 {
            rows = k + 1;
        }
    }
    (rows, 32 - columns.leading_zeros() as usize)
}

/// `clip(round(v, shift), -limit, limit - 1)`.
#[inline]
#[target_feature(enable = "avx2")]
fn round_clip(v: __m256i, shift: u32, low: __m256i, high: __m256i) -> __m256i {
    _mm256_min_epi32(_mm256_max_epi32(round(v, shift), low), high)
}

macro_rules! inverse_dct {
    ($name:ident, $one_d:ident, $n:literal) => {
        /// The 2-D inverse DCT of N×N coefficients, as `reference::inverse_dct`; rows and
        /// columns of zeros at the end of the block are skipped.
        ///
        /// # Safety
        /// The CPU supports AVX2.
        #[target_feature(enable = "avx2")]
        pub(super) unsafe fn $name(m: &Matrices, coeffs: &[i32], residual: &mut [i32], limit: i32) {
            let (rows, columns) = extent::<$n>(&coeffs[..$n * $n]);
            if rows == 0 {
                residual[..$n * $n].fill(0);
                return;
            }
            let (low, high) = (_mm256_set1_epi32(-limit), _mm256_set1_epi32(limit - 1));
            // Rows of `tmp` past `columns` are the transforms of zero columns: zero, and
            // skipped by the second pass as zero inputs.
            let mut tmp = Intermediate::<{ $n * $n }>::new();
            let groups = columns.div_ceil(8);
            pass::<$n>(coeffs, &mut tmp.0, groups, |x| {
                let mut y = $one_d(m, x, rows);
                for v in y.iter_mut() {
                    *v = round_clip(*v, 7, low, high);
                }
                y
            });
            for row in tmp.0[8 * groups * $n..].chunks_exact_mut(8) {
                store8_uninit(row, _mm256_setzero_si256());
            }
            // SAFETY: the first pass wrote the first 8·`groups` rows, the loop above the rest.
            let tmp = unsafe { tmp.assume_written() };
            pass::<$n>(tmp, as_uninit(residual), $n / 8, |x| {
                let mut y = $one_d(m, x, columns);
                for v in y.iter_mut() {
                    *v = round_clip(*v, 12, low, high);
                }
                y
            });
        }
    };
}

inverse_dct!(inverse_dct8, inverse8, 8);
inverse_dct!(inverse_dct16, inverse16, 16);
inverse_dct!(inverse_dct32, inverse32, 32);

// 4×4 blocks: one row per 128-bit register.

#[inline]
#[target_feature(enable = "avx2")]
fn mul4(a: __m128i, c: i32) -> __m128i {
    _mm_mullo_epi32(a, _mm_set1_epi32(c))
}

#[inline]
#[target_feature(enable = "avx2")]
fn transpose4(r: [__m128i; 4]) -> [__m128i; 4] {
    let t0 = _mm_unpacklo_epi32(r[0], r[1]);
    let t1 = _mm_unpackhi_epi32(r[0], r[1]);
    let t2 = _mm_unpacklo_epi32(r[2], r[3]);
    let t3 = _mm_unpackhi_epi32(r[2], r[3]);
    [
        _mm_unpacklo_epi64(t0, t2),
        _mm_unpackhi_epi64(t0, t2),
        _mm_unpacklo_epi64(t1, t3),
        _mm_unpackhi_epi64(t1, t3),
    ]
}

#[inline]
#[target_feature(enable = "avx2")]
fn round4(v: __m128i, shift: i32) -> __m128i {
    let r = _mm_add_epi32(v, _mm_set1_epi32(1 << (shift - 1)));
    _mm_sra_epi32(r, _mm_cvtsi32_si128(shift))
}

/// `transpose(round(T4·x))` of a 4×4 block held as 4 row vectors.
#[inline]
#[target_feature(enable = "avx2")]
fn forward4_pass(t: &[i32; 16], x: [__m128i; 4], shift: i32) -> [__m128i; 4] {
    let (e0, e1) = (_mm_add_epi32(x[0], x[3]), _mm_add_epi32(x[1], x[2]));
    let (o0, o1) = (_mm_sub_epi32(x[0], x[3]), _mm_sub_epi32(x[1], x[2]));
    let dot2 = |a, b, i: usize| _mm_add_epi32(mul4(a, t[i]), mul4(b, t[i + 1]));
    transpose4([
        round4(dot2(e0, e1, 0), shift),
        round4(dot2(o0, o1, 4), shift),
        round4(dot2(e0, e1, 8), shift),
        round4(dot2(o0, o1, 12), shift),
    ])
}

/// The 2-D forward DCT of a 4×4 block, as `reference::forward_dct`.
///
/// # Safety
/// The CPU supports AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn forward_dct4(m: &Matrices, residual: &[i32], coeffs: &mut [i32]) {
    let t: &[i32; 16] = matrix(m, 0);
    let x = [
        load4(&residual[..4]),
        load4(&residual[4..]),
        load4(&residual[8..]),
        load4(&residual[12..]),
    ];
    let y = forward4_pass(t, forward4_pass(t, x, 1), 8);
    for j in 0..4 {
        store4(&mut coeffs[4 * j..], y[j]);
    }
}

/// `transpose(clip(round(T4ᵀ·x)))` of a 4×4 block held as 4 row vectors.
#[inline]
#[target_feature(enable = "avx2")]
fn inverse4_pass(t: &[i32; 16], x: [__m128i; 4], shift: i32, limit: i32) -> [__m128i; 4] {
    let dot2 = |a, b, i: usize, j: usize| _mm_add_epi32(mul4(a, t[i]), mul4(b, t[j]));
    let e0 = dot2(x[0], x[2], 0, 8);
    let e1 = dot2(x[0], x[2], 1, 9);
    let o0 = dot2(x[1], x[3], 4, 12);
    let o1 = dot2(x[1], x[3], 5, 13);
    let (low, high) = (_mm_set1_epi32(-limit), _mm_set1_epi32(limit - 1));
    let clip = |v| _mm_min_epi32(_mm_max_epi32(round4(v, shift), low), high);
    transpose4([
        clip(_mm_add_epi32(e0, o0)),
        clip(_mm_add_epi32(e1, o1)),
        clip(_mm_sub_epi32(e1, o1)),
        clip(_mm_sub_epi32(e0, o0)),
    ])
}

/// The 2-D inverse DCT of 4×4 coefficients, as `reference::inverse_dct`.
///
/// # Safety
/// The CPU supports AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn inverse_dct4(m: &Matrices, coeffs: &[i32], residual: &mut [i32], limit: i32) {
    let t: &[i32; 16] = matrix(m, 0);
    let x = [
        load4(&coeffs[..4]),
        load4(&coeffs[4..]),
        load4(&coeffs[8..]),
        load4(&coeffs[12..]),
    ];
    let y = inverse4_pass(t, inverse4_pass(t, x, 7, limit), 12, limit);
    for j in 0..4 {
        store4(&mut residual[4 * j..], y[j]);
    }
}

/// Dead-zone quantisation in 32 bits, as `reference::quantize`: the caller guarantees that
/// `|c|·scale + offset` fits 32 bits unsigned for every coefficient.
///
/// # Safety
/// The CPU supports AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn quantize(
    coeffs: &[i32],
    levels: &mut [i32],
    scale: u32,
    offset: u32,
    shift: u32,
    max_level: u32,
) -> usize {
    let len = coeffs.len().min(levels.len());
    let (coeffs, levels) = (&coeffs[..len], &mut levels[..len]);
    let (scale_v, offset_v) = (
        _mm256_set1_epi32(scale as i32),
        _mm256_set1_epi32(offset as i32),
    );
    let (max_v, shift_v) = (
        _mm256_set1_epi32(max_level as i32),
        _mm_cvtsi32_si128(shift as i32),
    );
    let (one, zero) = (_mm256_set1_epi32(1), _mm256_setzero_si256());
    // Lanes holding a zero level count -1 here, subtracted from the total at the end.
    let mut zeros = zero;
    let mut c_chunks = coeffs.chunks_exact(8);
    let mut l_chunks = levels.chunks_exact_mut(8);
    for (c, l) in (&mut c_chunks).zip(&mut l_chunks) {
        let c = load8(c);
        // |i32::MIN| reads as 2^31 unsigned, as `unsigned_abs` gives.
        let magnitude = _mm256_abs_epi32(c);
        let product = _mm256_add_epi32(_mm256_mullo_epi32(magnitude, scale_v), offset_v);
        let level = _mm256_min_epu32(_mm256_srl_epi32(product, shift_v), max_v);
        zeros = _mm256_add_epi32(zeros, _mm256_cmpeq_epi32(level, zero));
        // `c | 1` keeps the sign of `c` and is never zero, so a zero coefficient keeps its
        // (positive) level as the reference does.
        store8(l, _mm256_sign_epi32(level, _mm256_or_si256(c, one)));
    }
    let zeros = _mm_add_epi32(
        _mm256_castsi256_si128(zeros),
        _mm256_extracti128_si256(zeros, 1),
    );
    let zeros = _mm_add_epi32(zeros, _mm_shuffle_epi32(zeros, 0b01_00_11_10));
    let zeros = _mm_add_epi32(zeros, _mm_shuffle_epi32(zeros, 0b10_11_00_01));
    let vector_len = len - c_chunks.remainder().len();
    let mut nonzero = vector_len - (-_mm_cvtsi128_si32(zeros)) as usize;
    for (l, &c) in l_chunks
        .into_remainder()
        .iter_mut()
        .zip(c_chunks.remainder())
    {
        let magnitude = ((c.unsigned_abs() * scale + offset) >> shift).min(max_level) as i32;
        nonzero += usize::from(magnitude != 0);
        *l = if c < 0 { -magnitude } else { magnitude };
    }
    nonzero
}

/// The largest `|c|` of `coeffs`, as `reference::largest_magnitude`.
///
/// # Safety
/// The CPU supports AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn largest_magnitude(coeffs: &[i32]) -> u32 {
    let mut largest = _mm256_setzero_si256();
    let mut chunks = coeffs.chunks_exact(8);
    for c in &mut chunks {
        largest = _mm256_max_epu32(largest, _mm256_abs_epi32(load8(c)));
    }
    let largest = _mm_max_epu32(
        _mm256_castsi256_si128(largest),
        _mm256_extracti128_si256(largest, 1),
    );
    let largest = _mm_max_epu32(largest, _mm_shuffle_epi32(largest, 0b01_00_11_10));
    let largest = _mm_max_epu32(largest, _mm_shuffle_epi32(largest, 0b10_11_00_01));
    let tail = chunks.remainder().iter().map(|c| c.unsigned_abs()).max();
    (_mm_cvtsi128_si32(largest) as u32).max(tail.unwrap_or(0))
}

/// The largest `index_of[k]` of a nonzero `levels[k]`, as `reference::last_nonzero_index`:
/// zero levels' lanes are ORed to -1, so one signed maximum per 8 lanes keeps the rest.
///
/// # Safety
/// The CPU supports AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn last_nonzero_index(levels: &[i32], index_of: &[u16]) -> i32 {
    let len = levels.len().min(index_of.len());
    let (levels, index_of) = (&levels[..len], &index_of[..len]);
    let mut last = _mm256_set1_epi32(-1);
    let (mut level_chunks, mut index_chunks) = (levels.chunks_exact(8), index_of.chunks_exact(8));
    for (l, i) in (&mut level_chunks).zip(&mut index_chunks) {
        let zero = _mm256_cmpeq_epi32(load8(l), _mm256_setzero_si256());
        let i: &[u16; 8] = i.try_into().expect("chunks of 8");
        // SAFETY: `i` holds exactly 8 readable lanes (16 bytes); the load needs no alignment.
        let indices = _mm256_cvtepu16_epi32(unsafe { _mm_loadu_si128(i.as_ptr().cast()) });
        last = _mm256_max_epi32(last, _mm256_or_si256(indices, zero));
    }
    let last = _mm_max_epi32(
        _mm256_castsi256_si128(last),
        _mm256_extracti128_si256(last, 1),
    );
    let last = _mm_max_epi32(last, _mm_shuffle_epi32(last, 0b01_00_11_10));
    let last = _mm_max_epi32(last, _mm_shuffle_epi32(last, 0b10_11_00_01));
    let tail = quant::last_nonzero_index(level_chunks.remainder(), index_chunks.remainder());
    _mm_cvtsi128_si32(last).max(tail)
}

/// Dequantisation, as `reference::dequantize`, 8 coefficients a step (every product lies in 32
/// bits, so `mullo` is exact).
///
/// # Safety
/// The CPU supports AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn dequantize(
    levels: &[i32],
    coeffs: &mut [i32],
    (scale, shift): (i32, u32),
    most: i32,
    limit: i32,
) {
    let len = levels.len().min(coeffs.len());
    let (levels, coeffs) = (&levels[..len], &mut coeffs[..len]);
    let (low, high) = (_mm256_set1_epi32(-most), _mm256_set1_epi32(most));
    let (floor, ceiling) = (_mm256_set1_epi32(-limit), _mm256_set1_epi32(limit - 1));
    let (scale_v, round) = (
        _mm256_set1_epi32(scale),
        _mm256_set1_epi32(1 << (shift - 1)),
    );
    let count = _mm_cvtsi32_si128(shift as i32);
    let mut level_chunks = levels.chunks_exact(8);
    let mut coeff_chunks = coeffs.chunks_exact_mut(8);
    for (l, c) in (&mut level_chunks).zip(&mut coeff_chunks) {
        let l = _mm256_min_epi32(_mm256_max_epi32(load8(l), low), high);
        let product = _mm256_add_epi32(_mm256_mullo_epi32(l, scale_v), round);
        let v = _mm256_sra_epi32(product, count);
        store8(c, _mm256_min_epi32(_mm256_max_epi32(v, floor), ceiling));
    }
    let tail = level_chunks.remainder();
    quant::dequantize(
        tail,
        coeff_chunks.into_remainder(),
        (scale, shift),
        most,
        limit,
    );
}
