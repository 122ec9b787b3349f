//! The reference sub-sample interpolation.

use crate::picture::{PaddedPlane, Sample};

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

/// Separable interpolation (see `Kernels::interpolate`). The vertical pass sums whole rows (which vectorises) over a ring of the last `TAPS`
/// horizontally filtered rows, so no block-sized buffer is cleared per call.
pub fn interpolate<T: Sample, const TAPS: usize>(
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
