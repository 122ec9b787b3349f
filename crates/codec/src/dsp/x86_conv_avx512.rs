//! AVX-512 convolution layer of the learned in-loop filter, entered only through a
//! [`super::Network`] table built for a level this CPU supports, after the table's wrapper has
//! checked the shape against the slices.

use super::conv::ConvShape;
use super::x86_conv::{MAX_PAIRS, pair_offsets, paired_weights, row_steps};
use std::arch::x86_64::*;

/// Outputs of a row computed in one step.
const STEP: usize = 32;
/// Output planes computed together: their 2 accumulators each stay in registers (16 of the
/// 32) while the pairs of input rows they share are loaded once.
const PLANES_AT_ONCE: usize = 8;

/// The AVX2 layer's method (`super::x86_conv::conv_layer_avx2`) on 512-bit registers: each
/// tap pair's two rows of 32 activations are interleaved, and `vpdpwssd` multiplies them by
/// the pair's two weights and adds both products to 32-bit accumulators, wrapping as the
/// reference's sums do, so the bits are the reference's whatever the order of addition.
/// `packs` of the two halves undoes the interleaving within each 128-bit lane. A row whose
/// width is not a multiple of 32 ends with an overlapping step at `ow - 32`; a layer narrower
/// than 32 runs the AVX2 layer.
///
/// # Safety
/// The CPU supports AVX2 and AVX-512 F, BW and VNNI; `input` holds `shape.inputs` planes of
/// `width`×`height`, `output` `shape.outputs` planes of the output size, `weights`
/// `outputs`·`taps` values, `biases` `outputs`; `shape.taps()` is at most `MAX_TAPS`.
#[target_feature(enable = "avx2,avx512f,avx512bw,avx512vnni")]
pub(super) unsafe fn conv_layer_avx512(
    shape: ConvShape,
    input: &[i16],
    weights: &[i16],
    biases: &[i32],
    (shift, floor): (u32, i16),
    output: &mut [i16],
) {
    let (ow, oh) = (shape.out_width(), shape.out_height());
    if ow < STEP {
        // SAFETY: AVX2 is supported and the slices hold what the shape says (the contract).
        return unsafe {
            super::x86_conv::conv_layer_avx2(shape, input, weights, biases, (shift, floor), output)
        };
    }
    let (taps, pairs) = (shape.taps(), shape.taps().div_ceil(2));
    let offsets = pair_offsets(shape);
    let count = _mm_cvtsi32_si128(shift as i32);
    let round = _mm512_set1_epi32((1i32 << shift) >> 1);
    let low = _mm512_set1_epi32(i32::from(floor));
    let (src, dst) = (input.as_ptr(), output.as_mut_ptr());
    for first in (0..shape.outputs).step_by(PLANES_AT_ONCE) {
        let planes = PLANES_AT_ONCE.min(shape.outputs - first);
        let mut paired = [[0i32; MAX_PAIRS]; PLANES_AT_ONCE];
        for (j, plane_pairs) in paired.iter_mut().take(planes).enumerate() {
            *plane_pairs = paired_weights(&weights[(first + j) * taps..(first + j + 1) * taps]);
        }
        for y in 0..oh {
            for x in row_steps(ow, STEP) {
                let mut acc = [[_mm512_setzero_si512(); 2]; PLANES_AT_ONCE];
                for (p, &(a, b)) in offsets.iter().take(pairs).enumerate() {
                    let at = y * shape.width + x;
                    // SAFETY: a tap's row of 32 starts at plane·len + (y + ky)·width + x + kx
                    // with x + 32 <= ow, so it ends by (y + ky)·width + width inside its plane,
                    // which lies in `input` (the contract).
                    let (va, vb) = unsafe {
                        (
                            _mm512_loadu_si512(src.add(a + at).cast()),
                            _mm512_loadu_si512(src.add(b + at).cast()),
                        )
                    };
                    let (lo, hi) = (_mm512_unpacklo_epi16(va, vb), _mm512_unpackhi_epi16(va, vb));
                    for (j, acc) in acc.iter_mut().take(planes).enumerate() {
                        let w = _mm512_set1_epi32(paired[j][p]);
                        acc[0] = _mm512_dpwssd_epi32(acc[0], lo, w);
                        acc[1] = _mm512_dpwssd_epi32(acc[1], hi, w);
                    }
                }
                for (j, acc) in acc.iter().take(planes).enumerate() {
                    let bias = _mm512_set1_epi32(biases[first + j]);
                    let finish = |v: __m512i| {
                        let v = _mm512_add_epi32(_mm512_add_epi32(v, bias), round);
                        _mm512_max_epi32(_mm512_sra_epi32(v, count), low)
                    };
                    let packed = _mm512_packs_epi32(finish(acc[0]), finish(acc[1]));
                    // SAFETY: the plane's row y holds ow >= x + 32 outputs inside `output`.
                    unsafe {
                        _mm512_storeu_si512(
                            dst.add((first + j) * ow * oh + y * ow + x).cast(),
                            packed,
                        );
                    }
                }
            }
        }
    }
}
