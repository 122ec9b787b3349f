//! In-loop deblocking: smooths block edges on the 8x8 grid where the coding made them visible,
//! with a strength that grows with QP. Vertical edges first, then horizontal ones, over the
//! whole picture, identically in the encoder and the decoder. The thresholds are in 8-bit sample
//! units and scale by 2^(bd-8) at deeper samples, as in HEVC.

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

/// Filters four lines across one luma edge; `step` crosses the edge, `along` moves to the next
/// line; `at` is the first sample on the q side; `max` is the largest sample value.
#[allow(clippy::too_many_arguments)]
fn filter_luma<T: Sample>(
    data: &mut [T],
    at: usize,
    step: isize,
    along: isize,
    tc: i32,
    beta: i32,
    max: i32,
) {
    let sample = |data: &[T], line: isize, k: isize| -> i32 {
        data[(at as isize + line * along + k * step) as usize].to_i32()
    };
    let second_difference = |data: &[T], line: isize, side: isize| {
        // side -1: p side, +1: q side (k = 0 is q0, k = -1 is p0).
        let (a, b, c) = if side < 0 { (-3, -2, -1) } else { (2, 1, 0) };
        (sample(data, line, a) - 2 * sample(data, line, b) + sample(data, line, c)).abs()
    };
    let dp0 = second_difference(data, 0, -1);
    let dq0 = second_difference(data, 0, 1);
    let dp3 = second_difference(data, 3, -1);
    let dq3 = second_difference(data, 3, 1);
    let d = dp0 + dq0 + dp3 + dq3;
    if d >= beta {
        return;
    }
    let strong_line = |data: &[T], line: isize, dpq: i32| {
        let p0 = sample(data, line, -1);
        let p3 = sample(data, line, -4);
        let q0 = sample(data, line, 0);
        let q3 = sample(data, line, 3);
        2 * dpq < beta >> 2
            && (p3 - p0).abs() + (q0 - q3).abs() < beta >> 3
            && (p0 - q0).abs() < (5 * tc + 1) >> 1
    };
    let strong = strong_line(data, 0, dp0 + dq0) && strong_line(data, 3, dp3 + dq3);
    let filter_p1 = dp0 + dp3 < (beta + (beta >> 1)) >> 3;
    let filter_q1 = dq0 + dq3 < (beta + (beta >> 1)) >> 3;
    for line in 0..4isize {
        let idx = |k: isize| (at as isize + line * along + k * step) as usize;
        let at = |k: isize| data[idx(k)].to_i32();
        let [p3, p2, p1, p0, q0, q1, q2, q3] =
            [at(-4), at(-3), at(-2), at(-1), at(0), at(1), at(2), at(3)];
        if strong {
            let clip = |v: i32, orig: i32| T::from_i32(v.clamp(orig - 2 * tc, orig + 2 * tc));
            data[idx(-1)] = clip((p2 + 2 * p1 + 2 * p0 + 2 * q0 + q1 + 4) >> 3, p0);
            data[idx(-2)] = clip((p2 + p1 + p0 + q0 + 2) >> 2, p1);
            data[idx(-3)] = clip((2 * p3 + 3 * p2 + p1 + p0 + q0 + 4) >> 3, p2);
            data[idx(0)] = clip((p1 + 2 * p0 + 2 * q0 + 2 * q1 + q2 + 4) >> 3, q0);
            data[idx(1)] = clip((p0 + q0 + q1 + q2 + 2) >> 2, q1);
            data[idx(2)] = clip((p0 + q0 + q1 + 3 * q2 + 2 * q3 + 4) >> 3, q2);
        } else {
            let delta = (9 * (q0 - p0) - 3 * (q1 - p1) + 8) >> 4;
            if delta.abs() >= tc * 10 {
                continue;
            }
            let delta = delta.clamp(-tc, tc);
            data[idx(-1)] = T::clip(p0 + delta, max);
            data[idx(0)] = T::clip(q0 - delta, max);
            let half = tc >> 1;
            if filter_p1 {
                let dp = ((((p2 + p0 + 1) >> 1) - p1 + delta) >> 1).clamp(-half, half);
                data[idx(-2)] = T::clip(p1 + dp, max);
            }
            if filter_q1 {
                let dq = ((((q2 + q0 + 1) >> 1) - q1 - delta) >> 1).clamp(-half, half);
                data[idx(1)] = T::clip(q1 + dq, max);
            }
        }
    }
}

/// Filters `lines` lines across one chroma edge next to an intra block.
#[allow(clippy::too_many_arguments)]
fn filter_chroma<T: Sample>(
    data: &mut [T],
    at: usize,
    step: isize,
    along: isize,
    lines: isize,
    tc: i32,
    max: i32,
) {
    for line in 0..lines {
        let idx = |k: isize| (at as isize + line * along + k * step) as usize;
        let at = |k: isize| data[idx(k)].to_i32();
        let [p1, p0, q0, q1] = [at(-2), at(-1), at(0), at(1)];
        let delta = ((((q0 - p0) << 2) + p1 - q1 + 4) >> 3).clamp(-tc, tc);
        data[idx(-1)] = T::clip(p0 + delta, max);
        data[idx(0)] = T::clip(q0 - delta, max);
    }
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
                    filter_luma(&mut luma.data, at, step, along, t, beta_value, max);
                    filter_luma(
                        &mut luma.data,
                        at + 4 * along as usize,
                        step,
                        along,
                        t,
                        beta_value,
                        max,
                    );
                }
                // Chroma: intra edges on the 8x8 chroma grid.
                let chroma_tc = tc(chroma_qp + 2 + tc_offset) << depth_shift;
                if bs == 2 && edge_position.is_multiple_of(2 * unit) && chroma_tc > 0 {
                    for plane in [&mut *cb, &mut *cr] {
                        let (step, along) = luma_step_along(plane);
                        let at = plane.index((ux * unit / 2) as isize, (uy * unit / 2) as isize);
                        filter_chroma(
                            &mut plane.data,
                            at,
                            step,
                            along,
                            (unit / 2) as isize,
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
