//! AVX2 intra prediction of 8-bit samples, entered only through a [`super::Kernels`] table built
//! for a level this CPU supports, after the table's wrapper has checked the lengths.

use super::intra;
use std::arch::x86_64::*;

/// [`intra::blend_row`] of bytes, 16 and then 8 samples a step in 16-bit lanes (at most
/// 32·255 + 16, exact), the rest by the reference.
///
/// # Safety
/// The CPU supports AVX2, `src` is longer than `out` and `fraction` is below 32.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn blend_row_avx2(src: &[u8], fraction: u32, out: &mut [u8]) {
    let len = out.len();
    let (s, o) = (src.as_ptr(), out.as_mut_ptr());
    let (near, far) = (
        _mm256_set1_epi16((32 - fraction) as i16),
        _mm256_set1_epi16(fraction as i16),
    );
    let round = _mm256_set1_epi16(16);
    let mut i = 0;
    while i + 16 <= len {
        // SAFETY: i + 16 <= len and src holds len + 1 samples, so both 16-byte loads (at i and
        // i + 1) and the store lie inside; no alignment is needed.
        unsafe {
            let a = _mm256_cvtepu8_epi16(_mm_loadu_si128(s.add(i).cast()));
            let b = _mm256_cvtepu8_epi16(_mm_loadu_si128(s.add(i + 1).cast()));
            let sum = _mm256_add_epi16(_mm256_mullo_epi16(a, near), _mm256_mullo_epi16(b, far));
            let v = _mm256_srli_epi16(_mm256_add_epi16(sum, round), 5);
            let bytes = _mm256_permute4x64_epi64(_mm256_packus_epi16(v, v), 0b00_00_10_00);
            _mm_storeu_si128(o.add(i).cast(), _mm256_castsi256_si128(bytes));
        }
        i += 16;
    }
    if i + 8 <= len {
        let (near, far, round) = (
            _mm256_castsi256_si128(near),
            _mm256_castsi256_si128(far),
            _mm256_castsi256_si128(round),
        );
        // SAFETY: as above, for 8 samples at i and i + 1 (i + 8 <= len < src.len()).
        unsafe {
            let a = _mm_cvtepu8_epi16(_mm_loadl_epi64(s.add(i).cast()));
            let b = _mm_cvtepu8_epi16(_mm_loadl_epi64(s.add(i + 1).cast()));
            let sum = _mm_add_epi16(_mm_mullo_epi16(a, near), _mm_mullo_epi16(b, far));
            let v = _mm_srli_epi16(_mm_add_epi16(sum, round), 5);
            _mm_storel_epi64(o.add(i).cast(), _mm_packus_epi16(v, v));
        }
        i += 8;
    }
    intra::blend_row(&src[i..], fraction, &mut out[i..]);
}
