//! AVX2 reconstruction of 8-bit samples from a prediction and a residual, entered only through a
//! [`super::Kernels`] table built for a level this CPU supports, after the table's wrapper has
//! checked the lengths.

use super::residual;
use std::arch::x86_64::*;

/// `out[i] = clip(prediction[i] + residual[i])` to bytes, 16 samples a step: the residual packed
/// to 16 bits with signed saturation, added to the prediction with saturation and packed to
/// bytes with unsigned saturation, which clips exactly (a saturated residual keeps its side of
/// 0..=255 after adding a byte). The rest of a row runs the reference.
///
/// # Safety
/// The CPU supports AVX2, and `prediction` and `residual` are at least as long as `out`.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn add_clipped_avx2(
    prediction: &[u8],
    residual: &[i32],
    max: i32,
    out: &mut [u8],
) {
    let len = out.len();
    let (p, r, o) = (prediction.as_ptr(), residual.as_ptr(), out.as_mut_ptr());
    let mut i = 0;
    while i + 16 <= len {
        // SAFETY: i + 16 <= len and both inputs hold at least len values (the contract); the
        // loads and the store need no alignment.
        unsafe {
            let low = _mm256_loadu_si256(r.add(i).cast());
            let high = _mm256_loadu_si256(r.add(i + 8).cast());
            // packs interleaves the 128-bit halves: put the four quarters back in order.
            let r16 = _mm256_permute4x64_epi64(_mm256_packs_epi32(low, high), 0b11_01_10_00);
            let p16 = _mm256_cvtepu8_epi16(_mm_loadu_si128(p.add(i).cast()));
            let sum = _mm256_adds_epi16(p16, r16);
            let bytes = _mm256_permute4x64_epi64(_mm256_packus_epi16(sum, sum), 0b00_00_10_00);
            _mm_storeu_si128(o.add(i).cast(), _mm256_castsi256_si128(bytes));
        }
        i += 16;
    }
    residual::add_clipped(&prediction[i..], &residual[i..], max, &mut out[i..]);
}
