//! AVX2 SAD of 8-bit blocks, entered only through a [`super::Kernels`] table built for a level
//! this CPU supports, after the table's wrapper has asserted that the blocks lie inside their
//! slices.

use std::arch::x86_64::*;

/// SAD of 8-bit blocks: `psadbw` on 32, 16 and 8 bytes of a row at a time, two rows per
/// register for 8- and 16-wide blocks, the rest of a row (widths that are not a multiple of 8)
/// sample by sample. The sums are exact, so any order of adding them gives the reference's
/// total. Rows are read through pointers: the motion search calls this millions of times per
/// frame, where a bounds check per load cost about as much as the `psadbw`.
///
/// # Safety
/// The CPU supports AVX2, and both `w`×`h` blocks lie inside their slices (row `y` spans
/// `y * stride..y * stride + w`), as [`super::Kernels::sad`] asserts.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn sad_avx2(
    a: &[u8],
    a_stride: usize,
    b: &[u8],
    b_stride: usize,
    w: usize,
    h: usize,
) -> u32 {
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut wide = _mm256_setzero_si256();
    let mut rest = 0u32;
    let mut y = 0;
    // SAFETY (every load below): rows y (and y + 1 where two are read, y + 1 < h) and columns
    // x..x + width (x + width <= w) lie inside the blocks, which lie inside the slices.
    unsafe {
        if w == 16 || w == 8 {
            while y + 2 <= h {
                let (ra, rb) = (pa.add(y * a_stride), pb.add(y * b_stride));
                let (va, vb) = if w == 16 {
                    (
                        _mm256_loadu2_m128i(ra.add(a_stride).cast(), ra.cast()),
                        _mm256_loadu2_m128i(rb.add(b_stride).cast(), rb.cast()),
                    )
                } else {
                    (
                        _mm256_castsi128_si256(two_rows_of_8(ra, a_stride)),
                        _mm256_castsi128_si256(two_rows_of_8(rb, b_stride)),
                    )
                };
                wide = _mm256_add_epi64(wide, _mm256_sad_epu8(va, vb));
                y += 2;
            }
        }
        let mut narrow = _mm_setzero_si128();
        while y < h {
            let (ra, rb) = (pa.add(y * a_stride), pb.add(y * b_stride));
            let mut x = 0;
            while x + 32 <= w {
                let va = _mm256_loadu_si256(ra.add(x).cast());
                let vb = _mm256_loadu_si256(rb.add(x).cast());
                wide = _mm256_add_epi64(wide, _mm256_sad_epu8(va, vb));
                x += 32;
            }
            if x + 16 <= w {
                let va = _mm_loadu_si128(ra.add(x).cast());
                let vb = _mm_loadu_si128(rb.add(x).cast());
                narrow = _mm_add_epi64(narrow, _mm_sad_epu8(va, vb));
                x += 16;
            }
            if x + 8 <= w {
                let va = _mm_loadl_epi64(ra.add(x).cast());
                let vb = _mm_loadl_epi64(rb.add(x).cast());
                narrow = _mm_add_epi64(narrow, _mm_sad_epu8(va, vb));
                x += 8;
            }
            while x < w {
                rest += u32::from((*ra.add(x)).abs_diff(*rb.add(x)));
                x += 1;
            }
            y += 1;
        }
        wide = _mm256_add_epi64(wide, _mm256_castsi128_si256(narrow));
    }
    let sum = _mm_add_epi64(
        _mm256_castsi256_si128(wide),
        _mm256_extracti128_si256(wide, 1),
    );
    let sum = _mm_add_epi64(sum, _mm_unpackhi_epi64(sum, sum));
    // Each lane holds at most 64·64·255 in total, well inside 32 bits.
    _mm_cvtsi128_si32(sum) as u32 + rest
}

/// Rows `p` and `p + stride`, 8 bytes each, side by side.
///
/// # Safety
/// 8 bytes are readable at `p` and at `p + stride`.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn two_rows_of_8(p: *const u8, stride: usize) -> __m128i {
    // SAFETY: the caller's contract; the loads need no alignment.
    unsafe {
        let low = _mm_loadl_epi64(p.cast());
        let high = _mm_loadl_epi64(p.add(stride).cast());
        _mm_unpacklo_epi64(low, high)
    }
}
