//! AVX2 SAD of 8-bit blocks, entered only through a [`super::Kernels`] table built for a level
//! this CPU supports. Loads go through bounds-checked slices of the exact width they read.

use std::arch::x86_64::*;

/// SAD of 8-bit blocks: `psadbw` on 32, 16 and 8 bytes of a row at a time, the rest of a row
/// (widths that are not a multiple of 8) sample by sample. The sums are exact, so any order of
/// adding them gives the reference's total.
///
/// # Safety
/// The CPU supports AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn sad_avx2(
    a: &[u8],
    a_stride: usize,
    b: &[u8],
    b_stride: usize,
    w: usize,
    h: usize,
) -> u32 {
    let mut wide = _mm256_setzero_si256();
    let mut narrow = _mm_setzero_si128();
    let mut rest = 0u32;
    for y in 0..h {
        let ra = &a[y * a_stride..][..w];
        let rb = &b[y * b_stride..][..w];
        let mut x = 0;
        while x + 32 <= w {
            let (pa, pb) = (&ra[x..x + 32], &rb[x..x + 32]);
            // SAFETY: both slices hold exactly 32 readable bytes; the loads need no alignment.
            let (va, vb) = unsafe {
                (
                    _mm256_loadu_si256(pa.as_ptr().cast()),
                    _mm256_loadu_si256(pb.as_ptr().cast()),
                )
            };
            wide = _mm256_add_epi64(wide, _mm256_sad_epu8(va, vb));
            x += 32;
        }
        if x + 16 <= w {
            let (pa, pb) = (&ra[x..x + 16], &rb[x..x + 16]);
            // SAFETY: both slices hold exactly 16 readable bytes.
            let (va, vb) = unsafe {
                (
                    _mm_loadu_si128(pa.as_ptr().cast()),
                    _mm_loadu_si128(pb.as_ptr().cast()),
                )
            };
            narrow = _mm_add_epi64(narrow, _mm_sad_epu8(va, vb));
            x += 16;
        }
        if x + 8 <= w {
            let (pa, pb) = (&ra[x..x + 8], &rb[x..x + 8]);
            // SAFETY: both slices hold exactly 8 readable bytes.
            let (va, vb) = unsafe {
                (
                    _mm_loadl_epi64(pa.as_ptr().cast()),
                    _mm_loadl_epi64(pb.as_ptr().cast()),
                )
            };
            narrow = _mm_add_epi64(narrow, _mm_sad_epu8(va, vb));
            x += 8;
        }
        rest += ra[x..]
            .iter()
            .zip(&rb[x..])
            .map(|(&p, &q)| u32::from(p.abs_diff(q)))
            .sum::<u32>();
    }
    let sum = _mm_add_epi64(
        narrow,
        _mm_add_epi64(
            _mm256_castsi256_si128(wide),
            _mm256_extracti128_si256(wide, 1),
        ),
    );
    let sum = _mm_add_epi64(sum, _mm_unpackhi_epi64(sum, sum));
    // Each lane holds at most 64·64·255 in total, well inside 32 bits.
    _mm_cvtsi128_si32(sum) as u32 + rest
}
