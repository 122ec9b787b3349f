//! AVX2 versions of VIF's filters, entered only through a [`super::Kernels`] table built for a
//! level this CPU supports. Each output block keeps its accumulators in registers across the
//! taps; the columns left over after the last full block go to the reference kernel. Loads read
//! through raw pointers, within the bounds that the table's wrappers assert (a bounds check per
//! load cost as much as the arithmetic); stores go through slices.

use std::arch::x86_64::*;
use std::ops::Range;

use super::vif::{
    self, Accumulators, Log2Table, MU1, MU2, RowMoments, SIGMA_NSQ, VerticalPass, VerticalRow,
    VifPlanes, XX_HI, XX_LO, XY_HI, XY_LO, YY_HI, YY_LO, log2_table,
};

/// Sixteen `u16` from `src`.
///
/// # Safety
/// `src` points to 16 readable values.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn load16(src: *const u16) -> __m256i {
    // SAFETY: the caller guarantees 16 readable values; the load needs no alignment.
    unsafe { _mm256_loadu_si256(src.cast()) }
}

/// Eight `u16` from `src`, widened to 32-bit lanes.
///
/// # Safety
/// `src` points to 8 readable values.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn widen8(src: *const u16) -> __m256i {
    // SAFETY: the caller guarantees 8 readable values; the load needs no alignment.
    _mm256_cvtepu16_epi32(unsafe { _mm_loadu_si128(src.cast()) })
}

#[inline]
#[target_feature(enable = "avx2")]
fn store8(dst: &mut [u32], v: __m256i) {
    let dst = &mut dst[..8];
    // SAFETY: `dst` holds exactly 8 writable values; the store needs no alignment.
    unsafe { _mm256_storeu_si256(dst.as_mut_ptr().cast(), v) }
}

#[inline]
#[target_feature(enable = "avx2")]
fn store16_i16(dst: &mut [i16], v: __m256i) {
    let dst = &mut dst[..16];
    // SAFETY: `dst` holds exactly 16 writable values; the store needs no alignment.
    unsafe { _mm256_storeu_si256(dst.as_mut_ptr().cast(), v) }
}

#[inline]
#[target_feature(enable = "avx2")]
fn store8_i16(dst: &mut [i16], v: __m128i) {
    let dst = &mut dst[..8];
    // SAFETY: `dst` holds exactly 8 writable values; the store needs no alignment.
    unsafe { _mm_storeu_si128(dst.as_mut_ptr().cast(), v) }
}

/// The 32-bit lanes of `a` and `b`, each below 2^16, as 16-bit values less 2^15 (the layout of
/// [`VerticalRow`]), in `packus` order: per 128-bit half, four of `a` then four of `b`.
#[inline]
#[target_feature(enable = "avx2")]
fn pack_biased(a: __m256i, b: __m256i) -> __m256i {
    _mm256_xor_si256(_mm256_packus_epi32(a, b), _mm256_set1_epi16(i16::MIN))
}

/// The high and low 16-bit halves of the 32-bit lanes of `a` and `b`, packed by
/// [`pack_biased`]: `(high halves, low halves)`.
#[inline]
#[target_feature(enable = "avx2")]
fn split_biased(a: __m256i, b: __m256i) -> (__m256i, __m256i) {
    let low = _mm256_set1_epi32(0xffff);
    (
        pack_biased(_mm256_srli_epi32::<16>(a), _mm256_srli_epi32::<16>(b)),
        pack_biased(_mm256_and_si256(a, low), _mm256_and_si256(b, low)),
    )
}

/// The vertical pass ([`vif::vertical`]): 16 columns at a time for 8-bit samples at scale 0
/// (pairs of rows sharing a tap multiplied and added by `pmaddwd`, every sum within 32 bits),
/// 8 columns at a time with 64-bit second moments otherwise.
///
/// # Safety
/// The CPU supports AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn vertical_avx2(
    planes: VifPlanes<'_>,
    pass: VerticalPass<'_>,
    out: &mut VerticalRow,
    offset: usize,
    columns: Range<usize>,
) {
    let step = if pass.samples_8bit { 16 } else { 8 };
    let blocks = columns.start..columns.start + (columns.end - columns.start) / step * step;
    // One copy per filter length, its loop over the taps unrolled.
    let done = match pass.filter.len() {
        17 => vertical_blocks::<17>(planes, pass, out, offset, blocks),
        9 => vertical_blocks::<9>(planes, pass, out, offset, blocks),
        5 => vertical_blocks::<5>(planes, pass, out, offset, blocks),
        3 => vertical_blocks::<3>(planes, pass, out, offset, blocks),
        _ => columns.start,
    };
    // SAFETY: plain Rust, under the same preconditions.
    unsafe { vif::vertical(planes, pass, out, offset, done..columns.end) };
}

/// What the column blocks of one vertical pass share: each tap's row start in the planes and
/// its coefficient, broadcast as `pmaddwd` (two 16-bit copies) and `pmulld` (one 32-bit copy)
/// take it.
struct Taps<const TAPS: usize> {
    starts: [usize; TAPS],
    pairs: [__m256i; TAPS],
    words: [__m256i; TAPS],
}

/// The blocks of [`vertical_avx2`] for a filter of `TAPS` taps; returns the end of the columns
/// done.
#[inline]
#[target_feature(enable = "avx2")]
fn vertical_blocks<const TAPS: usize>(
    planes: VifPlanes<'_>,
    pass: VerticalPass<'_>,
    out: &mut VerticalRow,
    offset: usize,
    blocks: Range<usize>,
) -> usize {
    let taps = Taps::<TAPS> {
        starts: std::array::from_fn(|k| pass.rows[k] * planes.width),
        pairs: std::array::from_fn(|k| _mm256_set1_epi32((pass.filter[k] * 0x1_0001) as i32)),
        words: std::array::from_fn(|k| _mm256_set1_epi32(pass.filter[k] as i32)),
    };
    let mut j = blocks.start;
    while j < blocks.end {
        if pass.samples_8bit {
            vertical_8bit_16(planes, &taps, pass, out, offset, j);
            j += 16;
        } else {
            vertical_wide_8(planes, &taps, pass, out, offset, j);
            j += 8;
        }
    }
    blocks.end
}

/// Columns `j..j + 16` of the vertical pass for samples below 256: with rows `a` and `b` of one
/// tap `c` interleaved, `pmaddwd` gives `c·(a + b)` against `(c, c)`, `a² + b²` against itself
/// and `a·x + b·y` against the other picture's pair, all far within 31 bits; the second moments
/// then take `c` in a 32-bit product (below 2^30), and their sums (below 2^32) wrap nowhere.
#[inline]
#[target_feature(enable = "avx2")]
fn vertical_8bit_16<const TAPS: usize>(
    planes: VifPlanes<'_>,
    taps: &Taps<TAPS>,
    pass: VerticalPass<'_>,
    out: &mut VerticalRow,
    offset: usize,
    j: usize,
) {
    let zero = _mm256_setzero_si256();
    // [low interleave, high interleave] of each sum.
    let mut acc = [[zero; 2]; 5];
    let (r, d) = (planes.reference.as_ptr(), planes.distorted.as_ptr());
    // SAFETY: the wrapper asserted that every tap's row lies inside both planes, and the caller
    // that `j + 16 <= width`.
    let load = |plane: *const u16, k: usize| unsafe { load16(plane.add(taps.starts[k] + j)) };
    // Taps `k` and `TAPS - 1 - k` share a coefficient; the centre tap pairs its row with zeros.
    for k in 0..=TAPS / 2 {
        let (ra, da) = (load(r, k), load(d, k));
        let (rb, db) = if k == TAPS / 2 {
            (zero, zero)
        } else {
            (load(r, TAPS - 1 - k), load(d, TAPS - 1 - k))
        };
        let (pair, c32) = (taps.pairs[k], taps.words[k]);
        let r = [_mm256_unpacklo_epi16(ra, rb), _mm256_unpackhi_epi16(ra, rb)];
        let d = [_mm256_unpacklo_epi16(da, db), _mm256_unpackhi_epi16(da, db)];
        for h in 0..2 {
            let [m1, m2, xx, yy, xy] = &mut acc;
            m1[h] = _mm256_add_epi32(m1[h], _mm256_madd_epi16(r[h], pair));
            m2[h] = _mm256_add_epi32(m2[h], _mm256_madd_epi16(d[h], pair));
            let weighted = |s: __m256i| _mm256_mullo_epi32(s, c32);
            xx[h] = _mm256_add_epi32(xx[h], weighted(_mm256_madd_epi16(r[h], r[h])));
            yy[h] = _mm256_add_epi32(yy[h], weighted(_mm256_madd_epi16(d[h], d[h])));
            xy[h] = _mm256_add_epi32(xy[h], weighted(_mm256_madd_epi16(r[h], d[h])));
        }
    }
    let round = _mm256_set1_epi32(1 << (pass.shift_mu - 1));
    let shift = _mm_cvtsi32_si128(pass.shift_mu as i32);
    let at = offset + j;
    let [m1, m2, xx, yy, xy] = acc;
    let planes = &mut out.planes;
    // The interleaves hold columns 0-3 and 8-11 (low), 4-7 and 12-15 (high), which `packus`
    // puts in order.
    for (plane, [lo, hi]) in [(MU1, m1), (MU2, m2)] {
        let mean = |v: __m256i| _mm256_srl_epi32(_mm256_add_epi32(v, round), shift);
        store16_i16(&mut planes[plane][at..], pack_biased(mean(lo), mean(hi)));
    }
    for (plane, [lo, hi]) in [(XX_HI, xx), (YY_HI, yy), (XY_HI, xy)] {
        let (high, low) = split_biased(lo, hi);
        store16_i16(&mut planes[plane][at..], high);
        store16_i16(&mut planes[plane + 1][at..], low);
    }
}

/// Columns `j..j + 8` of the vertical pass for samples up to 16 bits: the means in 32 bits
/// (`Σ c·x < 2^32`), the second moments in 64-bit lanes, even and odd columns apart
/// (`pmuludq` of `c·x`, below 2^32, by `x`).
#[inline]
#[target_feature(enable = "avx2")]
fn vertical_wide_8<const TAPS: usize>(
    planes: VifPlanes<'_>,
    taps: &Taps<TAPS>,
    pass: VerticalPass<'_>,
    out: &mut VerticalRow,
    offset: usize,
    j: usize,
) {
    let zero = _mm256_setzero_si256();
    let (mut m1, mut m2) = (zero, zero);
    // [even columns, odd columns] of each second moment.
    let mut moments = [[zero; 2]; 3];
    for k in 0..TAPS {
        // SAFETY: the wrapper asserted that every tap's row lies inside both planes, and the
        // caller that `j + 8 <= width`.
        let (x, y) = unsafe {
            (
                widen8(planes.reference.as_ptr().add(taps.starts[k] + j)),
                widen8(planes.distorted.as_ptr().add(taps.starts[k] + j)),
            )
        };
        let c32 = taps.words[k];
        let (cx, cy) = (_mm256_mullo_epi32(x, c32), _mm256_mullo_epi32(y, c32));
        m1 = _mm256_add_epi32(m1, cx);
        m2 = _mm256_add_epi32(m2, cy);
        let odd = |v: __m256i| _mm256_srli_epi64::<32>(v);
        let products = [
            [(cx, x), (cy, y), (cx, y)],
            [(odd(cx), odd(x)), (odd(cy), odd(y)), (odd(cx), odd(y))],
        ];
        for (parity, pairs) in products.iter().enumerate() {
            for (m, &(a, b)) in moments.iter_mut().zip(pairs) {
                m[parity] = _mm256_add_epi64(m[parity], _mm256_mul_epu32(a, b));
            }
        }
    }
    let round = _mm256_set1_epi32(1 << (pass.shift_mu - 1));
    let shift = _mm_cvtsi32_si128(pass.shift_mu as i32);
    let at = offset + j;
    let planes = &mut out.planes;
    // `packus` order, `a` and `b` each in order after the permutation: 8 values of `a` in the
    // low half, 8 of `b` in the high half.
    let in_order = |v: __m256i| _mm256_permute4x64_epi64::<0b11_01_10_00>(v);
    let store_pair = |planes: &mut [Vec<i16>; 8], first: usize, second: usize, v: __m256i| {
        store8_i16(&mut planes[first][at..], _mm256_castsi256_si128(v));
        store8_i16(&mut planes[second][at..], _mm256_extracti128_si256::<1>(v));
    };
    let mean = |v: __m256i| _mm256_srl_epi32(_mm256_add_epi32(v, round), shift);
    store_pair(planes, MU1, MU2, in_order(pack_biased(mean(m1), mean(m2))));
    let sq_round = if pass.shift_sq == 0 {
        0
    } else {
        1i64 << (pass.shift_sq - 1)
    };
    let sq_round = _mm256_set1_epi64x(sq_round);
    let sq_shift = _mm_cvtsi32_si128(pass.shift_sq as i32);
    let [xx, yy, xy] = moments.map(|[even, odd]| {
        let even = _mm256_srl_epi64(_mm256_add_epi64(even, sq_round), sq_shift);
        let odd = _mm256_srl_epi64(_mm256_add_epi64(odd, sq_round), sq_shift);
        // The low 32 bits of each, odd columns moved up into the high halves.
        _mm256_blend_epi32::<0b1010_1010>(even, _mm256_slli_epi64::<32>(odd))
    });
    let (high, low) = split_biased(xx, yy);
    store_pair(planes, XX_HI, YY_HI, in_order(high));
    store_pair(planes, XX_LO, YY_LO, in_order(low));
    let low16 = _mm256_set1_epi32(0xffff);
    let xy = pack_biased(_mm256_srli_epi32::<16>(xy), _mm256_and_si256(xy, low16));
    store_pair(planes, XY_HI, XY_LO, in_order(xy));
}

/// The horizontal pass ([`vif::horizontal`]), 16 columns at a time. `pmaddwd` multiplies two
/// neighbouring 16-bit inputs by two taps and adds the products, so a load at column `j + k`
/// gives taps `k` and `k + 1` of the even columns `j, j + 2, …`, and a load one column further
/// those of the odd ones. The inputs are stored less 2^15 ([`VerticalRow`]), which adds
/// `-2^15·Σc` to every sum; sums and products are exact modulo 2^32, and each true sum lies in
/// `0..2^32` (16-bit values, taps summing to at most 2^16), so adding `2^15·Σc` back recovers
/// it. The second moments combine the sums of their halves:
/// `(Σ c·v + 2^15) >> 16 = Σ c·hi + ((Σ c·lo + 2^15) >> 16)`.
///
/// # Safety
/// The CPU supports AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn horizontal_avx2(
    input: &VerticalRow,
    filter: &[u32],
    out: &mut RowMoments,
    columns: Range<usize>,
) {
    let blocks_end = columns.start + (columns.end - columns.start) / 16 * 16;
    let blocks = columns.start..blocks_end;
    // One copy per filter length, its loop over the pairs of taps unrolled.
    let done = match filter.len() {
        17 => horizontal_blocks::<9>(input, filter, out, blocks),
        9 => horizontal_blocks::<5>(input, filter, out, blocks),
        5 => horizontal_blocks::<3>(input, filter, out, blocks),
        3 => horizontal_blocks::<2>(input, filter, out, blocks),
        _ => None,
    };
    let done = done.unwrap_or(columns.start);
    // SAFETY: plain Rust, under the same preconditions.
    unsafe { vif::horizontal(input, filter, out, done..columns.end) };
}

/// Where pair `p` of [`tap_pairs`] starts.
#[inline(always)]
const fn pair_offset<const P: usize>(p: usize) -> usize {
    if P == 2 { p } else { 2 * p }
}

/// A filter of `2·P − 1` taps as `P` pairs of neighbouring taps `[c_k, c_k+1]`, starting at
/// [`pair_offset`], that add up to it: `[c0, c1]` at 0, `[c2, c3]` at 2, …, `[c_last, 0]`;
/// with three taps, the centre is shared between `[c0, c1/2]` at 0 and `[c1 − c1/2, c2]` at 1
/// (the 3-tap centre exceeds 2^15). `None` unless every coefficient fits a signed 16-bit
/// multiply.
fn tap_pairs<const P: usize>(filter: &[u32]) -> Option<[[u32; 2]; P]> {
    if filter.len() != 2 * P - 1 {
        return None;
    }
    let pairs = if P == 2 {
        let half = filter[1] / 2;
        [[filter[0], half], [filter[1] - half, filter[2]]]
            .as_slice()
            .try_into()
            .ok()?
    } else {
        let tap = |k: usize| filter.get(k).copied().unwrap_or(0);
        std::array::from_fn(|p| [tap(2 * p), tap(2 * p + 1)])
    };
    pairs
        .iter()
        .flatten()
        .all(|&c| c < 1 << 15)
        .then_some(pairs)
}

/// Blocks of 16 columns of [`horizontal_avx2`] for a filter of `2·P − 1` taps, one plane at a
/// time (the taps then stay in registers); returns the end of the columns done, `None` for a
/// filter that [`tap_pairs`] cannot split.
#[inline]
#[target_feature(enable = "avx2")]
fn horizontal_blocks<const P: usize>(
    input: &VerticalRow,
    filter: &[u32],
    out: &mut RowMoments,
    blocks: Range<usize>,
) -> Option<usize> {
    let taps = tap_pairs::<P>(filter)?.map(|[a, b]| _mm256_set1_epi32((a | (b << 16)) as i32));
    let bias = filter.iter().fold(0u32, |s, &c| s.wrapping_add(c)) << 15;
    let bias = _mm256_set1_epi32(bias as i32);
    let round = _mm256_set1_epi32(1 << 15);
    // Columns `j..j + 16` of one plane's sums, in order.
    let sums = |plane: &[i16], j: usize| {
        let (mut even, mut odd) = (bias, bias);
        for (p, &c) in taps.iter().enumerate() {
            // SAFETY: the wrapper asserted `plane.len() >= columns.end + filter.len()`, and here
            // `j + 16 <= columns.end` and `pair_offset(p) + 1 < filter.len()`, so the 16
            // values from `j + pair_offset(p) + 1` lie inside the plane.
            let (a, b) = unsafe {
                let at = plane.as_ptr().add(j + pair_offset::<P>(p));
                (load16(at.cast()), load16(at.add(1).cast()))
            };
            even = _mm256_add_epi32(even, _mm256_madd_epi16(a, c));
            odd = _mm256_add_epi32(odd, _mm256_madd_epi16(b, c));
        }
        let (lo, hi) = (
            _mm256_unpacklo_epi32(even, odd),
            _mm256_unpackhi_epi32(even, odd),
        );
        [
            _mm256_permute2x128_si256::<0x20>(lo, hi),
            _mm256_permute2x128_si256::<0x31>(lo, hi),
        ]
    };
    let planes = &input.planes;
    let [mu1, mu2, xx, yy, xy] = out.fields_mut();
    for (field, plane) in [(mu1, MU1), (mu2, MU2)] {
        for (chunk, j) in chunks16(field, blocks.clone()) {
            let [a, b] = sums(&planes[plane], j);
            let (first, second) = chunk.split_at_mut(8);
            store8(first, a);
            store8(second, b);
        }
    }
    for (field, hi) in [(xx, XX_HI), (yy, YY_HI), (xy, XY_HI)] {
        for (chunk, j) in chunks16(field, blocks.clone()) {
            let [a, b] = sums(&planes[hi], j);
            let (first, second) = chunk.split_at_mut(8);
            store8(first, a);
            store8(second, b);
        }
        for (chunk, j) in chunks16(field, blocks.clone()) {
            let [a, b] = sums(&planes[hi + 1], j);
            // Σ c·lo + 2^15 < 2^32: no carry is lost.
            let low = |v: __m256i| _mm256_srli_epi32::<16>(_mm256_add_epi32(v, round));
            let (first, second) = chunk.split_at_mut(8);
            store8(first, _mm256_add_epi32(load8_u32(first), low(a)));
            store8(second, _mm256_add_epi32(load8_u32(second), low(b)));
        }
    }
    Some(blocks.end)
}

/// The blocks of 16 columns of `field`, beside their first columns.
fn chunks16(field: &mut [u32], blocks: Range<usize>) -> impl Iterator<Item = (&mut [u32], usize)> {
    let columns = blocks.clone().step_by(16);
    field[blocks].chunks_exact_mut(16).zip(columns)
}

#[inline]
#[target_feature(enable = "avx2")]
fn load8_u32(src: &[u32]) -> __m256i {
    let src = &src[..8];
    // SAFETY: `src` holds exactly 8 readable values; the load needs no alignment.
    unsafe { _mm256_loadu_si256(src.as_ptr().cast()) }
}

/// `(a·b + 2^31) >> 32` of eight 32-bit lanes (unsigned), even and odd lanes multiplied apart.
#[inline]
#[target_feature(enable = "avx2")]
fn product_q32(a: __m256i, b: __m256i) -> __m256i {
    let round = _mm256_set1_epi64x(1 << 31);
    let even = _mm256_add_epi64(_mm256_mul_epu32(a, b), round);
    let odd = _mm256_mul_epu32(_mm256_srli_epi64::<32>(a), _mm256_srli_epi64::<32>(b));
    let odd = _mm256_add_epi64(odd, round);
    _mm256_blend_epi32::<0b1010_1010>(_mm256_srli_epi64::<32>(even), odd)
}

/// Lanes 0-3 and 4-7 of eight `i32` as doubles.
#[inline]
#[target_feature(enable = "avx2")]
fn to_doubles(x: __m256i) -> [__m256d; 2] {
    [
        _mm256_cvtepi32_pd(_mm256_castsi256_si128(x)),
        _mm256_cvtepi32_pd(_mm256_extracti128_si256::<1>(x)),
    ]
}

/// Bits 37 and up of eight doubles (in two halves, lanes 0-3 and 4-7), in order in 32-bit
/// lanes: the top 15 bits of the fraction below the exponent.
#[inline]
#[target_feature(enable = "avx2")]
fn top_bits(x: [__m256d; 2]) -> __m256i {
    let [lo, hi] = x.map(|h| _mm256_castsi256_ps(_mm256_srli_epi64::<37>(_mm256_castpd_si256(h))));
    // The low halves of the 64-bit lanes, ordered 0 1 4 5 | 2 3 6 7, then put in order.
    let mixed = _mm256_castps_si256(_mm256_shuffle_ps::<0b10_00_10_00>(lo, hi));
    _mm256_permute4x64_epi64::<0b11_01_10_00>(mixed)
}

/// `log2_64(x) + 2048·1038` of eight integers `x >= 2^16` given as [`top_bits`] of their
/// doubles: with bit length `b`, `log2_64` reads the table at `x >> (b − 16)`, the leading 1
/// and the next 15 bits (the fraction's top 15), and adds `2048·(b − 16)`; the double's biased
/// exponent is `1022 + b`. Other lanes give arbitrary values but read inside the table.
#[inline]
#[target_feature(enable = "avx2")]
fn log2_biased(table: &Log2Table, top: __m256i) -> __m256i {
    let index = _mm256_or_si256(
        _mm256_and_si256(top, _mm256_set1_epi32(0x7fff)),
        _mm256_set1_epi32(0x8000),
    );
    // SAFETY: every index lies in 2^15..2^16 and the table holds 2^16 + 1 entries, so the 4
    // bytes read at entry `index` lie inside it.
    let entries = unsafe { _mm256_i32gather_epi32::<2>(table.as_ptr().cast(), index) };
    let entries = _mm256_and_si256(entries, _mm256_set1_epi32(0xffff));
    // The exponent, 1022 + b = 1038 + (b − 16), times 2048.
    let exponent = _mm256_slli_epi32::<11>(_mm256_srli_epi32::<15>(top));
    _mm256_add_epi32(entries, exponent)
}

/// Steps of eight columns whose 32-bit sums cannot overflow: each term is below 2^17.
const STEPS_PER_FLUSH: usize = 1 << 12;

/// The statistic of a filtered row ([`vif::statistic_row`]), eight pixels at a time: every
/// case's terms computed, the applicable ones selected by masks. Where a case applies its
/// numbers are those of the scalar code: the gain `g ≤ σ12/σ1²` with σ1² ≥ 2^17 and σ12 < 2^31
/// keeps `g²·σ1²` below 2^45, so doubles hold every integer exactly, truncation matches Rust's
/// conversions, and the logarithms' arguments (at least 2^17) are read from their doubles'
/// exponents and fractions. The log sums add up in 32-bit lanes, moved into the 64-bit totals
/// before they could overflow; the columns left over go to the reference kernel.
///
/// # Safety
/// The CPU supports AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn statistic_row_avx2(
    moments: &RowMoments,
    columns: Range<usize>,
    gain_limit: f64,
    acc: &mut Accumulators,
) {
    let table = log2_table();
    let blocks_end = columns.start + (columns.end - columns.start) / 8 * 8;
    let zero = _mm256_setzero_si256();
    let nsq = _mm256_set1_epi32(SIGMA_NSQ);
    let nsq_d = _mm256_set1_pd(f64::from(SIGMA_NSQ));
    let eps = _mm256_set1_pd(65536.0 * 1.0e-10);
    let limit = _mm256_set1_pd(gain_limit);
    // `den` is log2(σ_n² + σ1²) − 2048·17, less the bias of [`log2_biased`].
    let den_bias = _mm256_set1_epi32(2048 * (17 + 1038));
    let sum_i32 = |v: __m256i| {
        let mut lanes = [0i32; 8];
        // SAFETY: `lanes` holds exactly 8 writable 32-bit values; the store needs no alignment.
        unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), v) };
        lanes.iter().map(|&x| i64::from(x)).sum::<i64>()
    };
    let (mut num_non_log, mut den_non_log_total) = ([zero; 2], 0i64);
    let mut j = columns.start;
    while j < blocks_end {
        let flush_end = blocks_end.min(j + 8 * STEPS_PER_FLUSH);
        let (mut num_log, mut den_log, mut den_non_log) = (zero, zero, zero);
        while j < flush_end {
            // SAFETY: the wrapper asserted `columns.end <= moments.len()`, and
            // `j + 8 <= columns.end`.
            let [mu1, mu2, xx, yy, xy] = moments
                .fields()
                .map(|f| unsafe { _mm256_loadu_si256(f.as_ptr().add(j).cast()) });
            let s1 = _mm256_sub_epi32(xx, product_q32(mu1, mu1));
            let s2 = _mm256_max_epi32(_mm256_sub_epi32(yy, product_q32(mu2, mu2)), zero);
            let s12 = _mm256_sub_epi32(xy, product_q32(mu1, mu2));
            let (s1d, s2d, s12d) = (to_doubles(s1), to_doubles(s2), to_doubles(s12));
            let mut den_arg = [_mm256_setzero_pd(); 2];
            let mut numer1 = den_arg;
            let mut numer1_tmp = den_arg;
            for h in 0..2 {
                let g0 = _mm256_div_pd(s12d[h], _mm256_add_pd(s1d[h], eps));
                let sv = _mm256_round_pd::<{ _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC }>(
                    _mm256_sub_pd(s2d[h], _mm256_mul_pd(g0, s12d[h])),
                );
                numer1[h] = _mm256_add_pd(_mm256_max_pd(sv, _mm256_setzero_pd()), nsq_d);
                let g = _mm256_min_pd(g0, limit);
                let scaled = _mm256_round_pd::<{ _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC }>(
                    _mm256_mul_pd(_mm256_mul_pd(g, g), s1d[h]),
                );
                numer1_tmp[h] = _mm256_add_pd(scaled, numer1[h]);
                // σ1² + σ_n² as the unsigned 32-bit sum, where σ1² ≥ 0.
                den_arg[h] = _mm256_add_pd(s1d[h], nsq_d);
            }
            let is_log = _mm256_cmpgt_epi32(s1, _mm256_sub_epi32(nsq, _mm256_set1_epi32(1)));
            let has_gain = _mm256_and_si256(
                is_log,
                _mm256_and_si256(_mm256_cmpgt_epi32(s12, zero), _mm256_cmpgt_epi32(s2, zero)),
            );
            // Flat areas skip the look-ups that no lane needs.
            if _mm256_testz_si256(is_log, is_log) == 0 {
                let den = _mm256_sub_epi32(log2_biased(table, top_bits(den_arg)), den_bias);
                den_log = _mm256_add_epi32(den_log, _mm256_and_si256(is_log, den));
            }
            if _mm256_testz_si256(has_gain, has_gain) == 0 {
                let num = _mm256_sub_epi32(
                    log2_biased(table, top_bits(numer1_tmp)),
                    log2_biased(table, top_bits(numer1)),
                );
                num_log = _mm256_add_epi32(num_log, _mm256_and_si256(has_gain, num));
            }
            // `is_log` is −1 where it holds: adding 1 counts the other lanes.
            den_non_log =
                _mm256_add_epi32(den_non_log, _mm256_add_epi32(is_log, _mm256_set1_epi32(1)));
            let s2 = _mm256_andnot_si256(is_log, s2);
            num_non_log[0] = _mm256_add_epi64(
                num_non_log[0],
                _mm256_cvtepu32_epi64(_mm256_castsi256_si128(s2)),
            );
            num_non_log[1] = _mm256_add_epi64(
                num_non_log[1],
                _mm256_cvtepu32_epi64(_mm256_extracti128_si256::<1>(s2)),
            );
            j += 8;
        }
        acc.num_log += sum_i32(num_log);
        acc.den_log += sum_i32(den_log);
        den_non_log_total += sum_i32(den_non_log);
    }
    let mut lanes = [0i64; 4];
    // SAFETY: `lanes` holds exactly 4 writable 64-bit values; the store needs no alignment.
    unsafe {
        _mm256_storeu_si256(
            lanes.as_mut_ptr().cast(),
            _mm256_add_epi64(num_non_log[0], num_non_log[1]),
        )
    };
    acc.num_non_log += lanes.iter().sum::<i64>();
    acc.den_non_log += den_non_log_total;
    // SAFETY: plain Rust, under the same preconditions.
    unsafe { vif::statistic_row(moments, blocks_end..columns.end, gain_limit, acc) };
}
