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

/// Separable interpolation of a `w`×`h` block whose top-left integer sample is (ix, iy).
#[allow(clippy::too_many_arguments)]
fn interpolate<T: Sample, const TAPS: usize>(
    plane: &PaddedPlane<T>,
    (ix, iy): (isize, isize),
    (w, h): (usize, usize),
    taps_x: Option<&[i32; TAPS]>,
    taps_y: Option<&[i32; TAPS]>,
    out: &mut [T],
) {
    let max = plane.max_value();
    let before = (TAPS / 2 - 1) as isize;
    let stride = plane.stride;
    match (taps_x, taps_y) {
        (None, None) => {
            for y in 0..h {
                let start = plane.index(ix, iy + y as isize);
                out[y * w..(y + 1) * w].copy_from_slice(&plane.data[start..start + w]);
            }
        }
        (Some(tx), None) => {
            for y in 0..h {
                let start = plane.index(ix - before, iy + y as isize);
                let src = &plane.data[start..start + w + TAPS - 1];
                for (x, o) in out[y * w..(y + 1) * w].iter_mut().enumerate() {
                    let sum: i32 = (0..TAPS).map(|t| tx[t] * src[x + t].to_i32()).sum();
                    *o = T::clip((sum + 32) >> 6, max);
                }
            }
        }
        (None, Some(ty)) => {
            let start = plane.index(ix, iy - before);
            for y in 0..h {
                for (x, o) in out[y * w..(y + 1) * w].iter_mut().enumerate() {
                    let sum: i32 = (0..TAPS)
                        .map(|t| ty[t] * plane.data[start + (y + t) * stride + x].to_i32())
                        .sum();
                    *o = T::clip((sum + 32) >> 6, max);
                }
            }
        }
        (Some(tx), Some(ty)) => {
            let rows = h + TAPS - 1;
            let mut tmp = [0i32; (MAX_BLOCK + 7) * MAX_BLOCK];
            for r in 0..rows {
                let start = plane.index(ix - before, iy - before + r as isize);
                let src = &plane.data[start..start + w + TAPS - 1];
                for (x, t_out) in tmp[r * w..(r + 1) * w].iter_mut().enumerate() {
                    *t_out = (0..TAPS).map(|t| tx[t] * src[x + t].to_i32()).sum();
                }
            }
            for y in 0..h {
                for (x, o) in out[y * w..(y + 1) * w].iter_mut().enumerate() {
                    let sum: i32 = (0..TAPS).map(|t| ty[t] * tmp[(y + t) * w + x]).sum();
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
        (fx != 0).then(|| &LUMA_TAPS[fx - 1]),
        (fy != 0).then(|| &LUMA_TAPS[fy - 1]),
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
        (fx != 0).then(|| &CHROMA_TAPS[fx - 1]),
        (fy != 0).then(|| &CHROMA_TAPS[fy - 1]),
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
}
