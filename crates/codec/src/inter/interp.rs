//! Sub-sample interpolation: 8-tap filters at quarter-sample positions for luma, 4-tap filters at
//! eighth-sample positions for chroma. Integer arithmetic, one rounding at the end.

use super::Mv;
use crate::picture::{PaddedPlane, Sample};

// EVOLVE-BLOCK-START interpolation_filters
/// Luma taps for quarter positions 1..=3, applied to samples at offsets -3..=4.
const LUMA_TAPS: [[i32; 8]; 3] = [
    [-1, 4, -10, 58, 17, -5, 1, 0],
    [-1, 4, -11, 40, 40, -11, 4, -1],
    [0, 1, -5, 17, 58, -10, 4, -1],
];

/// Chroma taps for eighth positions 1..=7, applied to samples at offsets -1..=2.
const CHROMA_TAPS: [[i32; 4]; 7] = [
    [-2, 58, 10, -2],
    [-4, 54, 16, -2],
    [-6, 46, 28, -4],
    [-4, 36, 36, -4],
    [-4, 28, 46, -6],
    [-2, 16, 54, -4],
    [-2, 10, 58, -2],
];
// EVOLVE-BLOCK-END

const MAX_BLOCK: usize = 64;

/// One output row of a `TAPS`-tap filter: `out[x] = sum over t of taps[t] * src[x + t]`, summed
/// tap by tap over the whole row so that the inner loop vectorises.
#[inline(always)]
fn filter_row<T: Sample, const TAPS: usize>(src: &[T], taps: &[i32; TAPS], out: &mut [i32]) {
    out.fill(0);
    for (t, &tap) in taps.iter().enumerate() {
        for (o, s) in out.iter_mut().zip(&src[t..]) {
            *o += tap * s.to_i32();
        }
    }
}

/// Separable interpolation of a `w`×`h` block whose top-left integer sample is (ix, iy), with
/// AVX2 where the CPU has it: the same code, whose 32-bit multiplies are single instructions
/// there.
fn interpolate<T: Sample, const TAPS: usize>(
    plane: &PaddedPlane<T>,
    origin: (isize, isize),
    size: (usize, usize),
    taps: (Option<&[i32; TAPS]>, Option<&[i32; TAPS]>),
    out: &mut [T],
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above), the only requirement of
        // `interpolate_avx2`.
        return unsafe { interpolate_avx2(plane, origin, size, taps, out) };
    }
    interpolate_portable(plane, origin, size, taps, out)
}

/// The same code compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn interpolate_avx2<T: Sample, const TAPS: usize>(
    plane: &PaddedPlane<T>,
    origin: (isize, isize),
    size: (usize, usize),
    taps: (Option<&[i32; TAPS]>, Option<&[i32; TAPS]>),
    out: &mut [T],
) {
    interpolate_portable(plane, origin, size, taps, out)
}

/// The vertical pass sums whole rows (which vectorises) over a ring of the last `TAPS`
/// horizontally filtered rows, so no block-sized buffer is cleared per call.
#[inline(always)]
fn interpolate_portable<T: Sample, const TAPS: usize>(
    plane: &PaddedPlane<T>,
    (ix, iy): (isize, isize),
    (w, h): (usize, usize),
    (taps_x, taps_y): (Option<&[i32; TAPS]>, Option<&[i32; TAPS]>),
    out: &mut [T],
) {
    let max = plane.max_value();
    let before = (TAPS / 2 - 1) as isize;
    let mut sums = [0i32; MAX_BLOCK];
    let sums = &mut sums[..w];
    match (taps_x, taps_y) {
        (None, None) => {
            for (y, row) in out.chunks_exact_mut(w).take(h).enumerate() {
                let start = plane.index(ix, iy + y as isize);
                row.copy_from_slice(&plane.data[start..start + w]);
            }
        }
        (Some(tx), None) => {
            for (y, row) in out.chunks_exact_mut(w).take(h).enumerate() {
                let start = plane.index(ix - before, iy + y as isize);
                filter_row(&plane.data[start..start + w + TAPS - 1], tx, sums);
                for (o, &sum) in row.iter_mut().zip(sums.iter()) {
                    *o = T::clip((sum + 32) >> 6, max);
                }
            }
        }
        (None, Some(ty)) => {
            for (y, row) in out.chunks_exact_mut(w).take(h).enumerate() {
                sums.fill(0);
                for (t, &tap) in ty.iter().enumerate() {
                    let start = plane.index(ix, iy - before + (y + t) as isize);
                    for (sum, s) in sums.iter_mut().zip(&plane.data[start..start + w]) {
                        *sum += tap * s.to_i32();
                    }
                }
                for (o, &sum) in row.iter_mut().zip(sums.iter()) {
                    *o = T::clip((sum + 32) >> 6, max);
                }
            }
        }
        (Some(tx), Some(ty)) => {
            let mut ring = [[0i32; MAX_BLOCK]; TAPS];
            let horizontal = |r: usize, ring: &mut [[i32; MAX_BLOCK]; TAPS]| {
                let start = plane.index(ix - before, iy - before + r as isize);
                filter_row(
                    &plane.data[start..start + w + TAPS - 1],
                    tx,
                    &mut ring[r % TAPS][..w],
                );
            };
            for r in 0..TAPS - 1 {
                horizontal(r, &mut ring);
            }
            for (y, row) in out.chunks_exact_mut(w).take(h).enumerate() {
                horizontal(y + TAPS - 1, &mut ring);
                sums.fill(0);
                for (t, &tap) in ty.iter().enumerate() {
                    for (sum, &v) in sums.iter_mut().zip(&ring[(y + t) % TAPS][..w]) {
                        *sum += tap * v;
                    }
                }
                for (o, &sum) in row.iter_mut().zip(sums.iter()) {
                    *o = T::clip((sum + 2048) >> 12, max);
                }
            }
        }
    }
}

/// Motion-compensated luma block: `w`×`h` at (x, y) displaced by `mv` (quarter samples).
pub fn predict_luma<T: Sample>(
    plane: &PaddedPlane<T>,
    x: usize,
    y: usize,
    w: usize,
    h: usize,
    mv: Mv,
    out: &mut [T],
) {
    let ix = x as isize + (mv.x >> 2) as isize;
    let iy = y as isize + (mv.y >> 2) as isize;
    let fx = (mv.x & 3) as usize;
    let fy = (mv.y & 3) as usize;
    interpolate::<T, 8>(
        plane,
        (ix, iy),
        (w, h),
        (
            (fx != 0).then(|| &LUMA_TAPS[fx - 1]),
            (fy != 0).then(|| &LUMA_TAPS[fy - 1]),
        ),
        out,
    );
}

/// Motion-compensated 4:2:0 chroma block at chroma position (x, y); `mv` is the luma vector,
/// which is in eighth chroma samples.
pub fn predict_chroma<T: Sample>(
    plane: &PaddedPlane<T>,
    x: usize,
    y: usize,
    w: usize,
    h: usize,
    mv: Mv,
    out: &mut [T],
) {
    let ix = x as isize + (mv.x >> 3) as isize;
    let iy = y as isize + (mv.y >> 3) as isize;
    let fx = (mv.x & 7) as usize;
    let fy = (mv.y & 7) as usize;
    interpolate::<T, 4>(
        plane,
        (ix, iy),
        (w, h),
        (
            (fx != 0).then(|| &CHROMA_TAPS[fx - 1]),
            (fy != 0).then(|| &CHROMA_TAPS[fy - 1]),
        ),
        out,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp_plane() -> PaddedPlane<u8> {
        let mut plane = PaddedPlane::new(32, 32, 16, 8);
        for y in 0..32 {
            for x in 0..32 {
                plane.row_mut(x, y, 1)[0] = (x * 4 + y * 2) as u8;
            }
        }
        plane.extend_edges();
        plane
    }

    #[test]
    fn integer_vectors_copy_and_half_samples_interpolate_a_ramp() {
        let plane = ramp_plane();
        let mut out = [0u8; 16];
        predict_luma(&plane, 8, 8, 4, 4, Mv::new(4, -8), &mut out);
        assert_eq!(out[0], plane.at(9, 6));
        // On a linear ramp every symmetric filter lands on the linear interpolation.
        predict_luma(&plane, 8, 8, 4, 4, Mv::new(2, 2), &mut out);
        assert_eq!(u32::from(out[5]), (9 * 4 + 9 * 2 + (10 * 4 + 10 * 2)) / 2);
        predict_chroma(&plane, 8, 8, 4, 4, Mv::new(4, 0), &mut out);
        assert_eq!(u32::from(out[0]), (8 * 4 + 8 * 2 + 9 * 4 + 8 * 2) / 2);
    }

    /// The filters as their definition reads: each output sample from the plane directly.
    fn definition<const TAPS: usize>(
        plane: &PaddedPlane<u16>,
        (ix, iy): (isize, isize),
        (w, h): (usize, usize),
        tx: Option<&[i32; TAPS]>,
        ty: Option<&[i32; TAPS]>,
    ) -> Vec<u16> {
        let before = (TAPS / 2 - 1) as isize;
        let max = plane.max_value();
        let at = |x: isize, y: isize| i32::from(plane.data[plane.index(x, y)]);
        let horizontal = |x: isize, y: isize| match tx {
            Some(tx) => (0..TAPS)
                .map(|t| tx[t] * at(x - before + t as isize, y))
                .sum(),
            None => at(x, y),
        };
        let mut out = Vec::with_capacity(w * h);
        for y in 0..h as isize {
            for x in 0..w as isize {
                let (px, py) = (ix + x, iy + y);
                let value = match (tx, ty) {
                    (None, None) => at(px, py),
                    (Some(_), None) => (horizontal(px, py) + 32) >> 6,
                    (None, Some(ty)) => {
                        ((0..TAPS)
                            .map(|t| ty[t] * at(px, py - before + t as isize))
                            .sum::<i32>()
                            + 32)
                            >> 6
                    }
                    (Some(_), Some(ty)) => {
                        let sum: i32 = (0..TAPS)
                            .map(|t| ty[t] * horizontal(px, py - before + t as isize))
                            .sum();
                        (sum + 2048) >> 12
                    }
                };
                out.push(value.clamp(0, max) as u16);
            }
        }
        out
    }

    #[test]
    fn every_position_and_size_matches_the_filters_definition() {
        let mut state = 0x1234_5678u32;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state
        };
        for depth in [8, 10] {
            let mut plane = PaddedPlane::<u16>::new(80, 80, 16, depth);
            for y in 0..80 {
                for v in plane.row_mut(0, y, 80) {
                    *v = (next() % (1 << depth)) as u16;
                }
            }
            plane.extend_edges();
            for (w, h) in [(4, 4), (8, 4), (16, 16), (64, 64), (32, 8)] {
                let mut out = vec![0u16; w * h];
                for fy in 0..8 {
                    for fx in 0..8 {
                        let mv = Mv::new(fx - 4, fy - 12);
                        predict_chroma(&plane, 3, 5, w, h, mv, &mut out);
                        let tx = (mv.x & 7 != 0).then(|| &CHROMA_TAPS[((mv.x & 7) - 1) as usize]);
                        let ty = (mv.y & 7 != 0).then(|| &CHROMA_TAPS[((mv.y & 7) - 1) as usize]);
                        let origin = (3 + (mv.x >> 3) as isize, 5 + (mv.y >> 3) as isize);
                        assert_eq!(out, definition(&plane, origin, (w, h), tx, ty));
                        // The portable build of the kernel, whatever this CPU dispatches to.
                        interpolate_portable(&plane, origin, (w, h), (tx, ty), &mut out);
                        assert_eq!(out, definition(&plane, origin, (w, h), tx, ty));
                        if fx < 4 && fy < 4 {
                            predict_luma(&plane, 3, 5, w, h, mv, &mut out);
                            let tx = (mv.x & 3 != 0).then(|| &LUMA_TAPS[((mv.x & 3) - 1) as usize]);
                            let ty = (mv.y & 3 != 0).then(|| &LUMA_TAPS[((mv.y & 3) - 1) as usize]);
                            let origin = (3 + (mv.x >> 2) as isize, 5 + (mv.y >> 2) as isize);
                            assert_eq!(out, definition(&plane, origin, (w, h), tx, ty));
                        }
                    }
                }
            }
        }
    }
}
