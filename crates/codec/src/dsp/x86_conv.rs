//! AVX2 convolution layer of the learned in-loop filter, entered only through a
//! [`super::Network`] table built for a level this CPU supports, after the table's wrapper has
//! checked the shape against the slices.

use super::conv::{ConvShape, accumulate, activation};
use super::network::MAX_TAPS;
use std::arch::x86_64::*;
/// Most tap pairs of one output plane.
pub(super) const MAX_PAIRS: usize = MAX_TAPS.div_ceil(2);

/// Offsets of each pair of taps' first activations from the output's position (an odd last tap
/// pairs with itself, under a zero weight: see [`paired_weights`]).
pub(super) fn pair_offsets(shape: ConvShape) -> [(usize, usize); MAX_PAIRS] {
    let (k, taps, plane_len) = (shape.kernel, shape.taps(), shape.width * shape.height);
    let tap_offset = |t: usize| {
        let (i, rest) = (t / (k * k), t % (k * k));
        i * plane_len + (rest / k) * shape.width + rest % k
    };
    let mut offsets = [(0usize, 0usize); MAX_PAIRS];
    for (p, offset) in offsets.iter_mut().take(taps.div_ceil(2)).enumerate() {
        let second = if 2 * p + 1 < taps { 2 * p + 1 } else { 2 * p };
        *offset = (tap_offset(2 * p), tap_offset(second));
    }
    offsets
}

/// One output plane's weights two at a time, each pair as one 32-bit lane (the first in the
/// low half) as `pmaddwd` and `vpdpwssd` take them; an odd last weight pairs with zero.
pub(super) fn paired_weights(weights: &[i16]) -> [i32; MAX_PAIRS] {
    let mut lanes = [0i32; MAX_PAIRS];
    for (lane, pair) in lanes.iter_mut().zip(weights.chunks(2)) {
        let second = pair.get(1).copied().unwrap_or(0);
        *lane = (i32::from(second) << 16) | i32::from(pair[0] as u16);
    }
    lanes
}

/// Where a row of `ow` outputs is computed `step` at a time: whole steps, then, when `ow` is not
/// a multiple of `step`, one ending at `ow` that overlaps the one before (empty when `ow` is
/// narrower than a step).
pub(super) fn row_steps(ow: usize, step: usize) -> impl Iterator<Item = usize> {
    let last = (ow >= step && !ow.is_multiple_of(step)).then(|| ow - step);
    (0..ow / step).map(move |s| step * s).chain(last)
}

/// Output planes computed together: their 2 accumulators each stay in registers while the
/// pairs of input rows they share are loaded once.
const PLANES_AT_ONCE: usize = 4;

/// Taps are taken two at a time: the 16 activations of each tap's row are interleaved and
/// `pmaddwd` multiplies them by the two weights and adds the pair into 32 bits, 16 outputs of
/// up to 4 planes a step. Products are exact and 32-bit sums wrap as the reference's do, so any
/// order of addition gives its bits. `packs` of the two halves undoes the interleaving within
/// each 128-bit lane and saturates to 16 bits as the reference's clamp does. A row whose width
/// is not a multiple of 16 ends with a step at `ow - 16`, overlapping the one before it (the
/// overlap is written twice with the same values); only rows narrower than 16 run the
/// reference.
///
/// # Safety
/// The CPU supports AVX2; `input` holds `shape.inputs` planes of `width`×`height`, `output`
/// `shape.outputs` planes of the output size, `weights` `outputs`·`taps` values, `biases`
/// `outputs`; `shape.taps()` is at most `MAX_TAPS`.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn conv_layer_avx2(
    shape: ConvShape,
    input: &[i16],
    weights: &[i16],
    biases: &[i32],
    (shift, floor): (u32, i16),
    output: &mut [i16],
) {
    let (ow, oh) = (shape.out_width(), shape.out_height());
    let (taps, pairs) = (shape.taps(), shape.taps().div_ceil(2));
    let offsets = pair_offsets(shape);
    let count = _mm_cvtsi32_si128(shift as i32);
    let round = _mm256_set1_epi32((1i32 << shift) >> 1);
    let low = _mm256_set1_epi32(i32::from(floor));
    let (src, dst) = (input.as_ptr(), output.as_mut_ptr());
    for first in (0..shape.outputs).step_by(PLANES_AT_ONCE) {
        let planes = PLANES_AT_ONCE.min(shape.outputs - first);
        let mut paired = [[0i32; MAX_PAIRS]; PLANES_AT_ONCE];
        for (j, plane_pairs) in paired.iter_mut().take(planes).enumerate() {
            *plane_pairs = paired_weights(&weights[(first + j) * taps..(first + j + 1) * taps]);
        }
        for y in 0..oh {
            for x in row_steps(ow, 16) {
                let mut acc = [[_mm256_setzero_si256(); 2]; PLANES_AT_ONCE];
                for p in 0..pairs {
                    let (a, b) = offsets[p];
                    let at = y * shape.width + x;
                    // SAFETY: a tap's row of 16 starts at plane·len + (y + ky)·width + x + kx
                    // with x + 16 <= ow, so it ends by (y + ky)·width + width inside its plane,
                    // which lies in `input` (the contract).
                    let (va, vb) = unsafe {
                        (
                            _mm256_loadu_si256(src.add(a + at).cast()),
                            _mm256_loadu_si256(src.add(b + at).cast()),
                        )
                    };
                    let (lo, hi) = (_mm256_unpacklo_epi16(va, vb), _mm256_unpackhi_epi16(va, vb));
                    for (j, acc) in acc.iter_mut().take(planes).enumerate() {
                        let w = _mm256_set1_epi32(paired[j][p]);
                        acc[0] = _mm256_add_epi32(acc[0], _mm256_madd_epi16(lo, w));
                        acc[1] = _mm256_add_epi32(acc[1], _mm256_madd_epi16(hi, w));
                    }
                }
                for (j, acc) in acc.iter().take(planes).enumerate() {
                    let bias = _mm256_set1_epi32(biases[first + j]);
                    let finish = |v: __m256i| {
                        let v = _mm256_add_epi32(_mm256_add_epi32(v, bias), round);
                        _mm256_max_epi32(_mm256_sra_epi32(v, count), low)
                    };
                    let packed = _mm256_packs_epi32(finish(acc[0]), finish(acc[1]));
                    // SAFETY: the plane's row y holds ow >= x + 16 outputs inside `output`.
                    unsafe {
                        _mm256_storeu_si256(
                            dst.add((first + j) * ow * oh + y * ow + x).cast(),
                            packed,
                        );
                    }
                }
            }
            let scalar_from = if ow >= 16 { ow } else { 0 };
            for x in scalar_from..ow {
                for j in 0..planes {
                    let o = first + j;
                    let w = &weights[o * taps..(o + 1) * taps];
                    let acc = accumulate(&shape, input, w, biases[o], (x, y));
                    output[o * ow * oh + y * ow + x] = activation(acc, shift, floor);
                }
            }
        }
    }
}
