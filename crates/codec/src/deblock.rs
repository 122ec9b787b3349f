//! In-loop deblocking: smooths block edges on the 8x8 grid where the coding made them visible,
//! with a strength that grows with QP. Vertical edges first, then horizontal ones, over the
//! whole picture, identically in the encoder and the decoder. The thresholds are in 8-bit sample
//! units and scale by 2^(bd-8) at deeper samples, as in HEVC.

use crate::dsp::{Kernels, LumaFilter};
use crate::inter::mvpred::{Motion, Vector};
use crate::partition::{UNIT_LOG2, UnitGrid, UnitInfo};
use crate::picture::{PaddedPlane, Picture, Sample};
use crate::reconstruct::chroma_qp;

/// Filter parameters fixed for a frame; the QPs come from the blocks on each side of an edge.
#[derive(Clone, Copy, Debug)]
pub struct DeblockParams {
    pub chroma_qp_offset: i8,
    pub beta_offset: i8,
    pub tc_offset: i8,
}

// EVOLVE-BLOCK-START loop_filter
/// Activity threshold: edges whose sides vary more than this are real detail, not blocking.
fn beta(q: i32) -> i32 {
    match q {
        ..16 => 0,
        16..=28 => q - 10,
        _ => 2 * q.min(51) - 38,
    }
}

/// Largest change the filter may make to a sample.
fn tc(q: i32) -> i32 {
    if q < 18 {
        return 0;
    }
    const MANTISSA: [i32; 6] = [8, 9, 10, 11, 13, 14];
    let q = (q.min(53) - 18) as usize;
    ((1 << (q / 6)) * MANTISSA[q % 6] + 8) >> 4
}

/// 2: an intra side; 1: coded residual or different motion; 0: no edge to filter.
fn strength(a: &UnitInfo, b: &UnitInfo) -> u8 {
    if a.intra || b.intra {
        2
    } else if a.luma_coded || b.luma_coded || motion_differs(&a.motion, &b.motion) {
        1
    } else {
        0
    }
}

/// Different references, a different number of vectors, or vectors a whole sample apart.
fn motion_differs(a: &Motion, b: &Motion) -> bool {
    let apart = |a: &Vector, b: &Vector| {
        a.ref_idx != b.ref_idx || (a.mv.x - b.mv.x).abs() >= 4 || (a.mv.y - b.mv.y).abs() >= 4
    };
    apart(&a.first, &b.first)
        || match (&a.second, &b.second) {
            (None, None) => false,
            (Some(a), Some(b)) => apart(a, b),
            _ => true,
        }
}

/// Which filter the four lines from `at` of one luma edge get; `step` crosses the edge,
/// `along` moves to the next line; `at` is the first sample on the q side.
fn decide_luma<T: Sample>(
    data: &[T],
    at: usize,
    step: isize,
    along: isize,
    tc: i32,
    beta: i32,
) -> LumaFilter {
    // p3..q3 of a line: index 3 is p0, 4 is q0.
    let line = |line: isize| -> [i32; 8] {
        let first = (at as isize + line * along - 4 * step) as usize;
        let mut samples = [0; 8];
        // A strided walk checks the bounds once, not per sample.
        let run = data[first..].iter().step_by(step as usize);
        for (s, v) in samples.iter_mut().zip(run) {
            *s = v.to_i32();
        }
        samples
    };
    let (l0, l3) = (line(0), line(3));
    let dp = |s: &[i32; 8]| (s[1] - 2 * s[2] + s[3]).abs();
    let dq = |s: &[i32; 8]| (s[6] - 2 * s[5] + s[4]).abs();
    let (dp0, dq0, dp3, dq3) = (dp(&l0), dq(&l0), dp(&l3), dq(&l3));
    let d = dp0 + dq0 + dp3 + dq3;
    if d >= beta {
        return LumaFilter::Skip;
    }
    let strong_line = |s: &[i32; 8], dpq: i32| {
        let [p3, p0, q0, q3] = [s[0], s[3], s[4], s[7]];
        2 * dpq < beta >> 2
            && (p3 - p0).abs() + (q0 - q3).abs() < beta >> 3
            && (p0 - q0).abs() < (5 * tc + 1) >> 1
    };
    if strong_line(&l0, dp0 + dq0) && strong_line(&l3, dp3 + dq3) {
        return LumaFilter::Strong;
    }
    LumaFilter::Normal {
        p1: dp0 + dp3 < (beta + (beta >> 1)) >> 3,
        q1: dq0 + dq3 < (beta + (beta >> 1)) >> 3,
    }
}

/// Filters the eight lines of one luma edge, deciding per four; see `decide_luma`; `max` is
/// the largest sample value.
#[allow(clippy::too_many_arguments)]
fn filter_luma<T: Sample>(
    kernels: &Kernels<T>,
    data: &mut [T],
    at: usize,
    step: isize,
    along: isize,
    tc: i32,
    beta: i32,
    max: i32,
) {
    let filters =
        [0, 4].map(|line| decide_luma(data, at + line * along as usize, step, along, tc, beta));
    kernels.deblock_luma(data, at, (step, along), filters, tc, max);
}

/// Filters `lines` lines across one chroma edge next to an intra block.
#[allow(clippy::too_many_arguments)]
fn filter_chroma<T: Sample>(
    kernels: &Kernels<T>,
    data: &mut [T],
    at: usize,
    step: isize,
    along: isize,
    lines: usize,
    tc: i32,
    max: i32,
) {
    kernels.deblock_chroma(data, at, (step, along), lines, tc, max);
}
// EVOLVE-BLOCK-END

/// The edge between units `a` (left/above) and `b` lies on a coding or transform block boundary.
fn is_block_edge(position: usize, b: &UnitInfo) -> bool {
    position.is_multiple_of(1usize << b.tx_log2)
}

/// Deblocks the whole picture in place.
pub fn deblock<T: Sample>(picture: &mut Picture<T>, grid: &UnitGrid, params: &DeblockParams) {
    let unit = 1usize << UNIT_LOG2;
    let depth_shift = picture.bit_depth() - 8;
    let max = picture.planes[0].max_value();
    let kernels = T::kernels();
    for vertical in [true, false] {
        let [luma, cb, cr] = &mut picture.planes;
        let luma_step_along = |plane: &PaddedPlane<T>| {
            if vertical {
                (1isize, plane.stride as isize)
            } else {
                (plane.stride as isize, 1isize)
            }
        };
        for uy in 0..grid.rows {
            for ux in 0..grid.cols {
                let (ax, ay) = if vertical {
                    if ux == 0 {
                        continue;
                    }
                    (ux - 1, uy)
                } else {
                    if uy == 0 {
                        continue;
                    }
                    (ux, uy - 1)
                };
                let b = grid.get(ux, uy);
                let edge_position = if vertical { ux } else { uy } * unit;
                if !is_block_edge(edge_position, b) {
                    continue;
                }
                let a = grid.get(ax, ay);
                let bs = strength(a, b);
                if bs == 0 {
                    continue;
                }
                let qp = (i32::from(a.qp) + i32::from(b.qp) + 1) >> 1;
                let beta_value = beta(qp + 2 * i32::from(params.beta_offset)) << depth_shift;
                let tc_offset = 2 * i32::from(params.tc_offset);
                let chroma_qp = i32::from(chroma_qp(qp as u8, params.chroma_qp_offset));
                let (step, along) = luma_step_along(luma);
                let at = luma.index((ux * unit) as isize, (uy * unit) as isize);
                let t = tc(qp + 2 * i32::from(bs == 2) + tc_offset) << depth_shift;
                if t > 0 && beta_value > 0 {
                    filter_luma(kernels, &mut luma.data, at, step, along, t, beta_value, max);
                }
                // Chroma: intra edges on the 8x8 chroma grid.
                let chroma_tc = tc(chroma_qp + 2 + tc_offset) << depth_shift;
                if bs == 2 && edge_position.is_multiple_of(2 * unit) && chroma_tc > 0 {
                    for plane in [&mut *cb, &mut *cr] {
                        let (step, along) = luma_step_along(plane);
                        let at = plane.index((ux * unit / 2) as isize, (uy * unit / 2) as isize);
                        filter_chroma(
                            kernels,
                            &mut plane.data,
                            at,
                            step,
                            along,
                            unit / 2,
                            chroma_tc,
                            max,
                        );
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strength_tables_grow_with_qp() {
        assert_eq!(tc(17), 0);
        assert!(tc(18) >= 1);
        assert!((18..53).all(|q| tc(q) <= tc(q + 1)));
        assert!((0..51).all(|q| beta(q) <= beta(q + 1)));
    }

    /// A step of 10 (8-bit units) between two intra blocks at `bit_depth`, deblocked.
    fn deblocked_step<T: Sample>(bit_depth: u32) -> Vec<i32> {
        let mut picture = Picture::<T>::new(16, 8, bit_depth);
        let scale = 1u32 << (bit_depth - 8);
        for y in 0..8 {
            let row = picture.planes[0].row_mut(0, y, 16);
            for (x, v) in row.iter_mut().enumerate() {
                *v = T::from_u32(if x < 8 { 100 } else { 110 } * scale);
            }
        }
        let mut grid = UnitGrid::new(16, 8);
        grid.fill(
            0,
            0,
            2,
            UnitInfo {
                cu_log2: 3,
                tx_log2: 3,
                intra: true,
                qp: 37,
                ..UnitInfo::default()
            },
        );
        let params = DeblockParams {
            chroma_qp_offset: 0,
            beta_offset: 0,
            tc_offset: 0,
        };
        deblock(&mut picture, &grid, &params);
        picture.planes[0]
            .row(0, 0, 16)
            .iter()
            .map(|v| v.to_i32())
            .collect()
    }

    #[test]
    fn smooths_a_step_between_intra_blocks() {
        let row = deblocked_step::<u8>(8);
        assert!(row[7] > 100 && row[8] < 110, "{row:?}");
        assert!(row.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn deep_samples_filter_like_8_bit_ones_scaled() {
        let row8 = deblocked_step::<u8>(8);
        for bit_depth in [10, 12] {
            let deep = deblocked_step::<u16>(bit_depth);
            let scale = 1 << (bit_depth - 8);
            for (a, b) in row8.iter().zip(&deep) {
                assert!(
                    (a * scale - b).abs() <= scale,
                    "{bit_depth}-bit: {row8:?} vs {deep:?}"
                );
            }
        }
    }
}
