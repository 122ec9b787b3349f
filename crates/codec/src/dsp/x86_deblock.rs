//! AVX2 deblocking filters for 8-bit samples: the 8 lines of an edge side by side in 16-bit
//! lanes, one register per sample position across the edge. Horizontal edges load those
//! registers straight from the rows; vertical edges transpose an 8x8 block of bytes in and out.
//! Loads and stores go through bounds-checked slices of the exact width they touch.

use super::deblock::{self, LumaFilter};
use std::arch::x86_64::*;

/// Eight bytes from the start of `src` (at least 8 long), in the low half.
#[inline]
#[target_feature(enable = "avx2")]
fn load8(src: &[u8]) -> __m128i {
    let src = &src[..8];
    // SAFETY: `src` holds exactly 8 readable bytes; the load needs no alignment.
    unsafe { _mm_loadl_epi64(src.as_ptr().cast()) }
}

/// The low 8 bytes of `v` to `out`.
#[inline]
#[target_feature(enable = "avx2")]
fn store8(out: &mut [u8], v: __m128i) {
    let out = &mut out[..8];
    // SAFETY: `out` holds exactly 8 writable bytes.
    unsafe { _mm_storel_epi64(out.as_mut_ptr().cast(), v) }
}

/// Four bytes from the start of `src` (at least 4 long), in the low lanes.
#[inline]
#[target_feature(enable = "avx2")]
fn load4(src: &[u8]) -> __m128i {
    let src: [u8; 4] = src[..4].try_into().unwrap();
    _mm_cvtsi32_si128(i32::from_le_bytes(src))
}

/// The low 4 bytes of `v` to `out`.
#[inline]
#[target_feature(enable = "avx2")]
fn store4(out: &mut [u8], v: __m128i) {
    out[..4].copy_from_slice(&_mm_cvtsi128_si32(v).to_le_bytes());
}

/// Transposes 8 rows of 8 bytes (each in the low half of its register): register `i` of the
/// result holds columns `2i` (low half) and `2i + 1` (high half).
#[inline]
#[target_feature(enable = "avx2")]
fn transpose8x8(r: [__m128i; 8]) -> [__m128i; 4] {
    let a01 = _mm_unpacklo_epi8(r[0], r[1]);
    let a23 = _mm_unpacklo_epi8(r[2], r[3]);
    let a45 = _mm_unpacklo_epi8(r[4], r[5]);
    let a67 = _mm_unpacklo_epi8(r[6], r[7]);
    let (b0, b1) = (_mm_unpacklo_epi16(a01, a23), _mm_unpackhi_epi16(a01, a23));
    let (b2, b3) = (_mm_unpacklo_epi16(a45, a67), _mm_unpackhi_epi16(a45, a67));
    [
        _mm_unpacklo_epi32(b0, b2),
        _mm_unpackhi_epi32(b0, b2),
        _mm_unpacklo_epi32(b1, b3),
        _mm_unpackhi_epi32(b1, b3),
    ]
}

/// Per lane (line), all ones where `flag(segment of the line)` holds.
#[inline]
#[target_feature(enable = "avx2")]
fn segment_mask(filters: [LumaFilter; 2], flag: impl Fn(LumaFilter) -> bool) -> __m128i {
    let m = |s: usize| -i16::from(flag(filters[s]));
    let (a, b) = (m(0), m(1));
    _mm_setr_epi16(a, a, a, a, b, b, b, b)
}

/// `min(max(v, lo), hi)` per lane.
#[inline]
#[target_feature(enable = "avx2")]
fn clamp(v: __m128i, lo: __m128i, hi: __m128i) -> __m128i {
    _mm_min_epi16(_mm_max_epi16(v, lo), hi)
}

/// The luma filters of `deblock::luma` on p3..q3 of 8 lines in 16-bit lanes; p2..q2 filtered
/// (unclipped to the sample range: the caller's saturating pack does that). With 8-bit samples
/// and tc ≤ 1000 every intermediate fits 16 bits.
#[inline]
#[target_feature(enable = "avx2")]
fn filter_luma8(s: [__m128i; 8], filters: [LumaFilter; 2], tc: i32) -> [__m128i; 6] {
    let [p3, p2, p1, p0, q0, q1, q2, q3] = s;
    let add = _mm_add_epi16;
    let sub = _mm_sub_epi16;
    let tc16 = tc as i16;
    let set = _mm_set1_epi16;

    // Strong: weighted averages kept within ±2·tc.
    let tc2 = set(2 * tc16);
    let keep = |v: __m128i, orig: __m128i| clamp(v, sub(orig, tc2), add(orig, tc2));
    let pq0 = add(p0, q0);
    let sum = add(add(pq0, p1), q1); // p1 + p0 + q0 + q1
    let sp0 = _mm_srai_epi16(add(add(add(sum, pq0), add(p1, p2)), set(4)), 3);
    let sp1 = _mm_srai_epi16(add(add(pq0, add(p1, p2)), set(2)), 2);
    let sp2 = _mm_srai_epi16(
        add(
            add(add(p3, p3), add(add(p2, p2), p2)),
            add(add(p1, pq0), set(4)),
        ),
        3,
    );
    let sq0 = _mm_srai_epi16(add(add(add(sum, pq0), add(q1, q2)), set(4)), 3);
    let sq1 = _mm_srai_epi16(add(add(pq0, add(q1, q2)), set(2)), 2);
    let sq2 = _mm_srai_epi16(
        add(
            add(add(q3, q3), add(add(q2, q2), q2)),
            add(add(q1, pq0), set(4)),
        ),
        3,
    );
    let strong = segment_mask(filters, |f| f == LumaFilter::Strong);
    let pick = |orig: __m128i, v: __m128i, mask: __m128i| _mm_blendv_epi8(orig, v, mask);
    let p0s = pick(p0, keep(sp0, p0), strong);
    let p1s = pick(p1, keep(sp1, p1), strong);
    let p2s = pick(p2, keep(sp2, p2), strong);
    let q0s = pick(q0, keep(sq0, q0), strong);
    let q1s = pick(q1, keep(sq1, q1), strong);
    let q2s = pick(q2, keep(sq2, q2), strong);

    // Normal: delta = (9·(q0 - p0) - 3·(q1 - p1) + 8) >> 4, lines with |delta| ≥ 10·tc left.
    let d0 = sub(q0, p0);
    let d1 = sub(q1, p1);
    let nine = add(_mm_slli_epi16(d0, 3), d0);
    let three = add(add(d1, d1), d1);
    let delta = _mm_srai_epi16(add(sub(nine, three), set(8)), 4);
    let normal = _mm_and_si128(
        segment_mask(filters, |f| matches!(f, LumaFilter::Normal { .. })),
        _mm_cmpgt_epi16(set(10 * tc16), _mm_abs_epi16(delta)),
    );
    let (tc_hi, tc_lo) = (set(tc16), set(-tc16));
    let delta = clamp(delta, tc_lo, tc_hi);
    let half = tc16 >> 1;
    let (half_hi, half_lo) = (set(half), set(-half));
    let one = set(1);
    let dp = _mm_srai_epi16(
        add(sub(_mm_srai_epi16(add(add(p2, p0), one), 1), p1), delta),
        1,
    );
    let dq = _mm_srai_epi16(
        sub(sub(_mm_srai_epi16(add(add(q2, q0), one), 1), q1), delta),
        1,
    );
    let p1_mask = _mm_and_si128(
        normal,
        segment_mask(filters, |f| {
            matches!(f, LumaFilter::Normal { p1: true, .. })
        }),
    );
    let q1_mask = _mm_and_si128(
        normal,
        segment_mask(filters, |f| {
            matches!(f, LumaFilter::Normal { q1: true, .. })
        }),
    );
    // p1 + dp and q1 + dq stay within -tc/2..255 + tc/2; the pack clips them.
    let p1n = add(p1, clamp(dp, half_lo, half_hi));
    let q1n = add(q1, clamp(dq, half_lo, half_hi));
    [
        p2s,
        pick(p1s, p1n, p1_mask),
        pick(p0s, add(p0, delta), normal),
        pick(q0s, sub(q0, delta), normal),
        pick(q1s, q1n, q1_mask),
        q2s,
    ]
}

/// `deblock::luma` for 8-bit samples. Vertical edges (`step == 1`, lines at least 8 apart) and
/// horizontal ones (`along == 1`, rows at least 8 apart) run in 16-bit lanes; other layouts, and
/// tc beyond what 16-bit lanes hold, run the reference.
///
/// # Safety
/// The CPU supports AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn luma_avx2(
    data: &mut [u8],
    at: usize,
    (step, along): (isize, isize),
    filters: [LumaFilter; 2],
    tc: i32,
    max: i32,
) {
    if filters == [LumaFilter::Skip; 2] {
        return;
    }
    if !(0..=1000).contains(&tc) {
        return deblock::luma(data, at, (step, along), filters, tc, max);
    }
    let widen = _mm_cvtepu8_epi16;
    if step == 1 && along >= 8 {
        let along = along as usize;
        let first = at - 4;
        let rows: [__m128i; 8] = std::array::from_fn(|l| load8(&data[first + l * along..]));
        let columns = transpose8x8(rows);
        let s: [__m128i; 8] = std::array::from_fn(|k| {
            let pair = columns[k / 2];
            widen(if k % 2 == 0 {
                pair
            } else {
                _mm_srli_si128(pair, 8)
            })
        });
        let [p2, p1, p0, q0, q1, q2] = filter_luma8(s, filters, tc);
        let zero = _mm_setzero_si128();
        let packed = [
            _mm_packus_epi16(s[0], zero),
            _mm_packus_epi16(p2, zero),
            _mm_packus_epi16(p1, zero),
            _mm_packus_epi16(p0, zero),
            _mm_packus_epi16(q0, zero),
            _mm_packus_epi16(q1, zero),
            _mm_packus_epi16(q2, zero),
            _mm_packus_epi16(s[7], zero),
        ];
        let rows = transpose8x8(packed);
        for (l, pair) in rows.into_iter().enumerate() {
            store8(&mut data[first + 2 * l * along..], pair);
            store8(
                &mut data[first + (2 * l + 1) * along..],
                _mm_srli_si128(pair, 8),
            );
        }
    } else if along == 1 && step >= 8 {
        let step = step as usize;
        let first = at - 4 * step;
        let s: [__m128i; 8] = std::array::from_fn(|k| widen(load8(&data[first + k * step..])));
        let filtered = filter_luma8(s, filters, tc);
        for (k, v) in filtered.into_iter().enumerate() {
            let v = _mm_packus_epi16(v, v);
            store8(&mut data[first + (k + 1) * step..], v);
        }
    } else {
        deblock::luma(data, at, (step, along), filters, tc, max);
    }
}

/// `deblock::chroma` of 4 lines for 8-bit samples, in 16-bit lanes (other line counts, layouts
/// and tc beyond 16 bits run the reference).
///
/// # Safety
/// The CPU supports AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn chroma_avx2(
    data: &mut [u8],
    at: usize,
    (step, along): (isize, isize),
    lines: usize,
    tc: i32,
    max: i32,
) {
    if lines != 4 || !(0..=1000).contains(&tc) {
        return deblock::chroma(data, at, (step, along), lines, tc, max);
    }
    let filter = |[p1, p0, q0, q1]: [__m128i; 4]| {
        let d = _mm_slli_epi16(_mm_sub_epi16(q0, p0), 2);
        let d = _mm_add_epi16(_mm_sub_epi16(_mm_add_epi16(d, p1), q1), _mm_set1_epi16(4));
        let tc = tc as i16;
        let delta = clamp(
            _mm_srai_epi16(d, 3),
            _mm_set1_epi16(-tc),
            _mm_set1_epi16(tc),
        );
        (_mm_add_epi16(p0, delta), _mm_sub_epi16(q0, delta))
    };
    let widen = _mm_cvtepu8_epi16;
    if step == 1 && along >= 4 {
        // Four rows of p1 p0 q0 q1: transposed by interleaving, one sample position per
        // group of four bytes.
        let along = along as usize;
        let first = at - 2;
        let r: [__m128i; 4] = std::array::from_fn(|l| load4(&data[first + l * along..]));
        let b = _mm_unpacklo_epi16(_mm_unpacklo_epi8(r[0], r[1]), _mm_unpacklo_epi8(r[2], r[3]));
        let s = [
            widen(b),
            widen(_mm_srli_si128(b, 4)),
            widen(_mm_srli_si128(b, 8)),
            widen(_mm_srli_si128(b, 12)),
        ];
        let (p0, q0) = filter(s);
        // Positions p1, p0', q0', q1 as groups of four bytes, then back to rows.
        let (p0, q0) = (_mm_packus_epi16(p0, p0), _mm_packus_epi16(q0, q0));
        let t = _mm_unpacklo_epi64(
            _mm_unpacklo_epi32(b, p0),
            _mm_unpacklo_epi32(q0, _mm_srli_si128(b, 12)),
        );
        let rows = _mm_shuffle_epi8(
            t,
            _mm_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15),
        );
        store4(&mut data[first..], rows);
        store4(&mut data[first + along..], _mm_srli_si128(rows, 4));
        store4(&mut data[first + 2 * along..], _mm_srli_si128(rows, 8));
        store4(&mut data[first + 3 * along..], _mm_srli_si128(rows, 12));
    } else if along == 1 && step >= 4 {
        let step = step as usize;
        let first = at - 2 * step;
        let s: [__m128i; 4] = std::array::from_fn(|k| widen(load4(&data[first + k * step..])));
        let (p0, q0) = filter(s);
        store4(&mut data[first + step..], _mm_packus_epi16(p0, p0));
        store4(&mut data[first + 2 * step..], _mm_packus_epi16(q0, q0));
    } else {
        deblock::chroma(data, at, (step, along), lines, tc, max);
    }
}
