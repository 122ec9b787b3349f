//! The lookahead's cheap analysis of frames not yet coded: half-resolution luma, and per 8x8
//! block of it (16x16 in the picture) an intra cost and the best inter cost and vector against
//! another frame. Scene cuts and temporal rate-distortion are decided from these costs. The
//! half-resolution luma is 8-bit at every depth, so costs and thresholds keep one scale.

use crate::inter::Mv;
use crate::picture::{PaddedPlane, Sample};
use crate::rdo::satd;

/// Side of the analysis blocks in half-resolution samples.
pub const BLOCK: usize = 8;
/// Farthest vector searched, in half-resolution samples.
const RANGE_SAMPLES: i32 = 24;
/// The same in the vectors' unit, half of a half-resolution sample.
const RANGE: i32 = 2 * RANGE_SAMPLES;
const BORDER: usize = RANGE_SAMPLES as usize + BLOCK + 1;

/// Half-resolution luma of a frame, with its intra cost per block.
#[derive(Clone, Debug)]
pub struct LowRes {
    plane: PaddedPlane<u8>,
    pub blocks_x: usize,
    pub blocks_y: usize,
    /// SATD of the best simple intra prediction, per block in raster order.
    pub intra: Vec<u32>,
}

impl LowRes {
    /// Averages 2x2 luma samples of the coded area (whose border is extended), rounded to 8
    /// bits.
    pub fn new<T: Sample>(luma: &PaddedPlane<T>) -> Self {
        let width = luma.width.div_ceil(2);
        let height = luma.height.div_ceil(2);
        let mut plane = PaddedPlane::new(width, height, BORDER, 8);
        let shift = 2 + luma.bit_depth - 8;
        for y in 0..height {
            let top = luma.row(0, (2 * y).min(luma.height - 1), luma.width);
            let bottom = luma.row(0, (2 * y + 1).min(luma.height - 1), luma.width);
            for (x, out) in plane.row_mut(0, y, width).iter_mut().enumerate() {
                let (a, b) = (2 * x, (2 * x + 1).min(luma.width - 1));
                let sum =
                    top[a].to_u32() + top[b].to_u32() + bottom[a].to_u32() + bottom[b].to_u32();
                *out = ((sum + (1 << (shift - 1))) >> shift) as u8;
            }
        }
        plane.extend_edges();
        let blocks_x = width.div_ceil(BLOCK);
        let blocks_y = height.div_ceil(BLOCK);
        let mut low = LowRes {
            plane,
            blocks_x,
            blocks_y,
            intra: Vec::new(),
        };
        low.intra = (0..blocks_x * blocks_y)
            .map(|i| low.intra_cost(i % blocks_x, i / blocks_x))
            .collect();
        low
    }

    fn block(&self, bx: usize, by: usize) -> [u8; BLOCK * BLOCK] {
        let mut block = [0u8; BLOCK * BLOCK];
        for (row, out) in block.chunks_exact_mut(BLOCK).enumerate() {
            let start = self
                .plane
                .index((bx * BLOCK) as isize, (by * BLOCK + row) as isize);
            out.copy_from_slice(&self.plane.data[start..start + BLOCK]);
        }
        block
    }

    /// The cheapest of DC, horizontal, vertical and a gradient prediction from the samples
    /// around the block (the picture's border samples at its edges).
    fn intra_cost(&self, bx: usize, by: usize) -> u32 {
        let block = self.block(bx, by);
        let (x, y) = ((bx * BLOCK) as isize, (by * BLOCK) as isize);
        let sample =
            |dx: isize, dy: isize| i32::from(self.plane.data[self.plane.index(x + dx, y + dy)]);
        let top: [i32; BLOCK] = std::array::from_fn(|i| sample(i as isize, -1));
        let left: [i32; BLOCK] = std::array::from_fn(|i| sample(-1, i as isize));
        let corner = sample(-1, -1);
        let dc = (top.iter().sum::<i32>() + left.iter().sum::<i32>() + BLOCK as i32)
            / (2 * BLOCK as i32);
        let predictions: [&dyn Fn(usize, usize) -> i32; 4] = [
            &|_, _| dc,
            &|_, row| left[row],
            &|column, _| top[column],
            &|column, row| (top[column] + left[row] - corner).clamp(0, 255),
        ];
        predictions
            .iter()
            .map(|predict| {
                let predicted: [u8; BLOCK * BLOCK] =
                    std::array::from_fn(|i| predict(i % BLOCK, i / BLOCK) as u8);
                satd(&block, BLOCK, &predicted, BLOCK, BLOCK, BLOCK)
            })
            .min()
            .unwrap_or(0)
    }

    /// SATD of `block` at (bx, by) against this frame displaced by `mv` (half samples of the
    /// half resolution, within the search range), interpolated bilinearly.
    fn inter_cost(&self, block: &[u8], bx: usize, by: usize, mv: Mv) -> u32 {
        let x = (bx * BLOCK) as isize + (mv.x >> 1) as isize;
        let y = (by * BLOCK) as isize + (mv.y >> 1) as isize;
        let (fx, fy) = ((mv.x & 1) as usize, (mv.y & 1) as usize);
        let stride = self.plane.stride;
        let data = &self.plane.data[self.plane.index(x, y)..];
        if fx == 0 && fy == 0 {
            // Whole samples: the average of four equal samples is the sample.
            return satd(block, BLOCK, data, stride, BLOCK, BLOCK);
        }
        let predicted = match (fx, fy) {
            (1, 0) => half_sample_average::<1, 0>(data, stride),
            (0, 1) => half_sample_average::<0, 1>(data, stride),
            _ => half_sample_average::<1, 1>(data, stride),
        };
        satd(block, BLOCK, &predicted, BLOCK, BLOCK, BLOCK)
    }
}

/// The bilinear half-sample prediction of a block whose top-left whole sample starts `data`,
/// `FX` and `FY` its half-sample offsets: constants, so that the averaging vectorises.
fn half_sample_average<const FX: usize, const FY: usize>(
    data: &[u8],
    stride: usize,
) -> [u8; BLOCK * BLOCK] {
    let mut predicted = [0u8; BLOCK * BLOCK];
    for (row, out) in predicted.chunks_exact_mut(BLOCK).enumerate() {
        let top = &data[row * stride..][..BLOCK + 1];
        let bottom = &data[(row + FY) * stride..][..BLOCK + 1];
        for (x, o) in out.iter_mut().enumerate() {
            let sum = u16::from(top[x])
                + u16::from(top[x + FX])
                + u16::from(bottom[x])
                + u16::from(bottom[x + FX]);
            *o = ((sum + 2) >> 2) as u8;
        }
    }
    predicted
}

/// Inter costs of every block of `frame` predicted from `reference`, with their vectors.
#[derive(Clone, Debug)]
pub struct InterCosts {
    pub cost: Vec<u32>,
    /// In half samples of the half resolution (whole samples of the picture).
    pub vectors: Vec<Mv>,
}

/// Motion search of every block of `frame` in `reference`: the best of the zero vector and the
/// left and above blocks' vectors, refined by a shrinking diamond over whole samples, then the
/// eight half-sample positions around the best.
pub fn inter_costs(frame: &LowRes, reference: &LowRes) -> InterCosts {
    let count = frame.blocks_x * frame.blocks_y;
    let mut cost = vec![0u32; count];
    let mut vectors = vec![Mv::ZERO; count];
    let clamp = |mv: Mv| Mv::new(mv.x.clamp(-RANGE, RANGE), mv.y.clamp(-RANGE, RANGE));
    // A vector's rough rate, so that flat areas keep the vectors of their neighbours.
    let penalty =
        |mv: Mv, from: Mv| 2 * ((mv.x - from.x).unsigned_abs() + (mv.y - from.y).unsigned_abs());
    for by in 0..frame.blocks_y {
        for bx in 0..frame.blocks_x {
            let i = by * frame.blocks_x + bx;
            let block = frame.block(bx, by);
            let left = (bx > 0).then(|| vectors[i - 1]);
            let above = (by > 0).then(|| vectors[i - frame.blocks_x]);
            let predictor = above.or(left).unwrap_or(Mv::ZERO);
            let starts = [Some(Mv::ZERO), left, above].into_iter().flatten();
            let evaluate =
                |mv: Mv| reference.inter_cost(&block, bx, by, mv) + penalty(mv, predictor);
            let (mut best, mut best_cost) = (Mv::ZERO, u32::MAX);
            for start in starts {
                let start = clamp(start);
                let c = evaluate(start);
                if c < best_cost {
                    (best, best_cost) = (start, c);
                }
            }
            let mut step = 8;
            while step >= 2 {
                let centre = best;
                for (dx, dy) in [(step, 0), (-step, 0), (0, step), (0, -step)] {
                    let mv = clamp(Mv::new(centre.x + dx, centre.y + dy));
                    let c = evaluate(mv);
                    if c < best_cost {
                        (best, best_cost) = (mv, c);
                    }
                }
                if best == centre {
                    step /= 2;
                }
            }
            let centre = best;
            for (dx, dy) in [
                (1, 0),
                (-1, 0),
                (0, 1),
                (0, -1),
                (1, 1),
                (-1, 1),
                (1, -1),
                (-1, -1),
            ] {
                let mv = clamp(Mv::new(centre.x + dx, centre.y + dy));
                let c = evaluate(mv);
                if c < best_cost {
                    (best, best_cost) = (mv, c);
                }
            }
            cost[i] = best_cost;
            vectors[i] = best;
        }
    }
    InterCosts { cost, vectors }
}

/// Rows and columns of whole analysis blocks a picture needs (64x64 luma samples) before its
/// costs can tell a new scene from motion.
const MIN_BLOCKS_FOR_CUTS: usize = 4;

/// A frame whose inter cost from the previous frame reaches `1 - threshold` of its intra
/// cost starts a new scene; 0 never cuts, nor does a picture too small to judge.
pub fn is_scene_cut(frame: &LowRes, inter: &InterCosts, threshold: f64) -> bool {
    let too_small = frame.plane.width / BLOCK < MIN_BLOCKS_FOR_CUTS
        || frame.plane.height / BLOCK < MIN_BLOCKS_FOR_CUTS;
    if threshold <= 0.0 || too_small {
        return false;
    }
    let intra: u64 = frame.intra.iter().map(|&c| u64::from(c)).sum();
    let inter: u64 = inter
        .cost
        .iter()
        .zip(&frame.intra)
        .map(|(&p, &i)| u64::from(p.min(i)))
        .sum();
    inter as f64 >= (1.0 - threshold) * intra as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn textured(width: usize, height: usize, shift: usize, seed: u32) -> PaddedPlane<u8> {
        let mut plane = PaddedPlane::new(width, height, 16, 8);
        for y in 0..height {
            for (x, v) in plane.row_mut(0, y, width).iter_mut().enumerate() {
                let (u, w) = ((x + shift) as u32, y as u32);
                let noise = (u.wrapping_mul(2_654_435_761) ^ w.wrapping_mul(40_503) ^ seed) >> 7;
                let structure = (u / (4 + seed % 5) + w / (3 + seed % 4)) % 7 * 20;
                *v = (noise & 0x3F) as u8 + structure as u8;
            }
        }
        plane.extend_edges();
        plane
    }

    #[test]
    fn motion_is_found_and_a_new_scene_is_a_cut() {
        let first = LowRes::new(&textured(128, 96, 0, 1));
        // The same texture moved 8 samples (4 at half resolution, counted in halves).
        let moved = LowRes::new(&textured(128, 96, 8, 1));
        let costs = inter_costs(&moved, &first);
        let inner = costs.vectors[2 * moved.blocks_x + 2];
        assert_eq!(inner, Mv::new(8, 0));
        assert!(!is_scene_cut(&moved, &costs, 0.4));
        let other = LowRes::new(&textured(128, 96, 0, 7));
        let costs = inter_costs(&other, &first);
        assert!(is_scene_cut(&other, &costs, 0.4));
        assert!(!is_scene_cut(&other, &costs, 0.0));
    }
}
