//! AVX2 SSE of 8-bit blocks, entered only through a [`super::Kernels`] table built for a level
//! this CPU supports. Loads go through bounds-checked slices of the exact width they read.

use std::arch::x86_64::*;

/// Sixteen bytes (the start of `src`) widened to 16-bit lanes.
#[inline]
#[target_feature(enable = "avx2")]
fn widen16(src: &[u8]) -> __m256i {
    let src = &src[..16];
    // SAFETY: `src` holds exactly 16 readable bytes; the load needs no alignment.
    _mm256_cvtepu8_epi16(unsafe { _mm_loadu_si128(src.as_ptr().cast()) })
}

/// SSE of 8-bit blocks of at most 64×64: squares of 16 differences at a time summed in pairs
/// (`pmaddwd`), the rest of a row sample by sample; tight blocks (both strides the width) run
/// as one long row. A block's total is below 64·64·255², so 32-bit lanes hold it exactly and
/// the order of the sums does not matter.
///
/// # Safety
/// The CPU supports AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn sse_avx2(
    a: &[u8],
    a_stride: usize,
    b: &[u8],
    b_stride: usize,
    w: usize,
    h: usize,
) -> u64 {
    if h == 0 {
        return 0;
    }
    let (len, rows) = if a_stride == w && b_stride == w {
        (w * h, 1)
    } else {
        (w, h)
    };
    let mut acc = _mm256_setzero_si256();
    let mut rest = 0u32;
    for y in 0..rows {
        let (ra, rb) = (&a[y * a_stride..][..len], &b[y * b_stride..][..len]);
        let (ca, cb) = (ra.chunks_exact(16), rb.chunks_exact(16));
        let (ta, tb) = (ca.remainder(), cb.remainder());
        for (pa, pb) in ca.zip(cb) {
            let d = _mm256_sub_epi16(widen16(pa), widen16(pb));
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(d, d));
        }
        for (&p, &q) in ta.iter().zip(tb) {
            let d = u32::from(p.abs_diff(q));
            rest += d * d;
        }
    }
    let sum = _mm_add_epi32(
        _mm256_castsi256_si128(acc),
        _mm256_extracti128_si256(acc, 1),
    );
    let sum = _mm_add_epi32(sum, _mm_shuffle_epi32(sum, 0b01_00_11_10));
    let sum = _mm_add_epi32(sum, _mm_shuffle_epi32(sum, 0b10_11_00_01));
    u64::from(_mm_cvtsi128_si32(sum) as u32 + rest)
}
