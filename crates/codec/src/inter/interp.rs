//! Sub-sample interpolation: 8-tap filters at quarter-sample positions for luma, 4-tap filters at
//! eighth-sample positions for chroma. Integer arithmetic, one rounding at the end.

use super::Mv;
use crate::picture::{PaddedPlane, Sample};

// EVOLVE-BLOCK-START interpolation_filters
/// Luma taps for quarter positions 1..=3, applied to samples at offsets -3..=4.
pub(crate) const LUMA_TAPS: [[i32; 8]; 3] = [
    [-1, 4, -10, 58, 17, -5, 1, 0],
    [-1, 4, -11, 40, 40, -11, 4, -1],
    [0, 1, -5, 17, 58, -10, 4, -1],
];

/// Chroma taps for eighth positions 1..=7, applied to samples at offsets -1..=2.
pub(crate) const CHROMA_TAPS: [[i32; 4]; 7] = [
    [-2, 58, 10, -2],
    [-4, 54, 16, -2],
    [-6, 46, 28, -4],
    [-4, 36, 36, -4],
    [-4, 28, 46, -6],
    [-2, 16, 54, -4],
    [-2, 10, 58, -2],
];
// EVOLVE-BLOCK-END

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
    T::kernels().interpolate_8tap(
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
    T::kernels().interpolate_4tap(
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
        let mut rng = crate::test_rng::Rng(0x1234_5678);
        for depth in [8, 10] {
            let mut plane = PaddedPlane::<u16>::new(80, 80, 16, depth);
            for y in 0..80 {
                for v in plane.row_mut(0, y, 80) {
                    *v = (rng.next() % (1 << depth)) as u16;
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
                        // The reference kernel, whatever this CPU dispatches to.
                        crate::dsp::reference_interpolate(
                            &plane,
                            origin,
                            (w, h),
                            (tx, ty),
                            &mut out,
                        );
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
