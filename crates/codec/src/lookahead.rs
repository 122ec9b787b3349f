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
    /// The bilinear half-sample planes, laid out as `plane.data`: averages with the sample to
    /// the right, below, and of the 2x2 square to the right and below. Computed once, as every
    /// block's search reads most positions several times.
    half: [Vec<u8>; 3],
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
        let round = 1 << (shift - 1);
        // Columns whose 2x2 square lies inside the picture; an odd width's last column repeats
        // its one sample.
        let pairs = luma.width / 2;
        for y in 0..height {
            let top = luma.row(0, (2 * y).min(luma.height - 1), luma.width);
            let bottom = luma.row(0, (2 * y + 1).min(luma.height - 1), luma.width);
            let out = plane.row_mut(0, y, width);
            let squares = top.chunks_exact(2).zip(bottom.chunks_exact(2));
            for (o, (t, b)) in out[..pairs].iter_mut().zip(squares) {
                let sum = t[0].to_u32() + t[1].to_u32() + b[0].to_u32() + b[1].to_u32();
                *o = ((sum + round) >> shift) as u8;
            }
            if pairs < width {
                let last = luma.width - 1;
                let sum = 2 * (top[last].to_u32() + bottom[last].to_u32());
                out[pairs] = ((sum + round) >> shift) as u8;
            }
        }
        plane.extend_edges();
        let half = half_sample_planes(&plane.data, plane.stride);
        let blocks_x = width.div_ceil(BLOCK);
        let blocks_y = height.div_ceil(BLOCK);
        let mut low = LowRes {
            plane,
            half,
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
        let stride = self.plane.stride;
        let at = self
            .plane
            .index((bx * BLOCK) as isize, (by * BLOCK) as isize);
        let data = &self.plane.data;
        let top: [u8; BLOCK] = std::array::from_fn(|i| data[at - stride + i]);
        let left: [u8; BLOCK] = std::array::from_fn(|i| data[at + i * stride - 1]);
        let corner = i32::from(data[at - stride - 1]);
        let sum = |edge: &[u8; BLOCK]| edge.iter().map(|&v| i32::from(v)).sum::<i32>();
        let dc = (sum(&top) + sum(&left) + BLOCK as i32) / (2 * BLOCK as i32);
        let mut horizontal = [0u8; BLOCK * BLOCK];
        let mut vertical = [0u8; BLOCK * BLOCK];
        let mut gradient = [0u8; BLOCK * BLOCK];
        for (row, &l) in left.iter().enumerate() {
            let rows = (row * BLOCK)..(row + 1) * BLOCK;
            horizontal[rows.clone()].fill(l);
            vertical[rows.clone()].copy_from_slice(&top);
            let base = i32::from(l) - corner;
            for (g, &t) in gradient[rows].iter_mut().zip(&top) {
                *g = (i32::from(t) + base).clamp(0, 255) as u8;
            }
        }
        let cost =
            |predicted: &[u8; BLOCK * BLOCK]| satd(&block, BLOCK, predicted, BLOCK, BLOCK, BLOCK);
        cost(&[dc as u8; BLOCK * BLOCK])
            .min(cost(&horizontal))
            .min(cost(&vertical))
            .min(cost(&gradient))
    }

    /// SATD of `block` at (bx, by) against this frame displaced by `mv` (half samples of the
    /// half resolution, within the search range), interpolated bilinearly.
    fn inter_cost(&self, block: &[u8], bx: usize, by: usize, mv: Mv) -> u32 {
        let x = (bx * BLOCK) as isize + (mv.x >> 1) as isize;
        let y = (by * BLOCK) as isize + (mv.y >> 1) as isize;
        let at = self.plane.index(x, y);
        // Whole samples read the plane: the average of four equal samples is the sample.
        let predicted = match (mv.x & 1, mv.y & 1) {
            (0, 0) => &self.plane.data,
            (1, 0) => &self.half[0],
            (0, 1) => &self.half[1],
            _ => &self.half[2],
        };
        satd(
            block,
            BLOCK,
            &predicted[at..],
            self.plane.stride,
            BLOCK,
            BLOCK,
        )
    }
}

/// The bilinear half-sample planes of `data` (rows `stride` apart): at each position the
/// rounded average of the sample and its right neighbour, of it and the one below, and of the
/// 2x2 square it starts. Each is as long as the positions whose square lies in `data`.
fn half_sample_planes(data: &[u8], stride: usize) -> [Vec<u8>; 3] {
    let average = |a: u8, b: u8, c: u8, d: u8| {
        ((u16::from(a) + u16::from(b) + u16::from(c) + u16::from(d) + 2) >> 2) as u8
    };
    let (right, below, diagonal) = (&data[1..], &data[stride..], &data[stride + 1..]);
    [
        data.iter()
            .zip(right)
            .map(|(&a, &b)| average(a, b, a, b))
            .collect(),
        data.iter()
            .zip(below)
            .map(|(&a, &c)| average(a, a, c, c))
            .collect(),
        data.iter()
            .zip(right)
            .zip(below.iter().zip(diagonal))
            .map(|((&a, &b), (&c, &d))| average(a, b, c, d))
            .collect(),
    ]
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

    /// The intra cost with every prediction computed per sample.
    fn direct_intra_cost(low: &LowRes, bx: usize, by: usize) -> u32 {
        let (x, y) = ((bx * BLOCK) as isize, (by * BLOCK) as isize);
        let sample =
            |dx: isize, dy: isize| i32::from(low.plane.data[low.plane.index(x + dx, y + dy)]);
        let top: [i32; BLOCK] = std::array::from_fn(|i| sample(i as isize, -1));
        let left: [i32; BLOCK] = std::array::from_fn(|i| sample(-1, i as isize));
        let dc = (top.iter().sum::<i32>() + left.iter().sum::<i32>() + 8) / 16;
        let predictions: [&dyn Fn(usize, usize) -> i32; 4] = [
            &|_, _| dc,
            &|_, row| left[row],
            &|column, _| top[column],
            &|column, row| (top[column] + left[row] - sample(-1, -1)).clamp(0, 255),
        ];
        let block = low.block(bx, by);
        predictions
            .iter()
            .map(|predict| {
                let predicted: [u8; BLOCK * BLOCK] =
                    std::array::from_fn(|i| predict(i % BLOCK, i / BLOCK) as u8);
                crate::dsp::reference_satd(&block, BLOCK, &predicted, BLOCK, BLOCK, BLOCK)
            })
            .min()
            .unwrap()
    }

    /// The inter cost with the bilinear block averaged per sample.
    fn direct_inter_cost(low: &LowRes, block: &[u8], bx: usize, by: usize, mv: Mv) -> u32 {
        let x = (bx * BLOCK) as isize + (mv.x >> 1) as isize;
        let y = (by * BLOCK) as isize + (mv.y >> 1) as isize;
        let (fx, fy) = ((mv.x & 1) as isize, (mv.y & 1) as isize);
        let sample =
            |dx: isize, dy: isize| u32::from(low.plane.data[low.plane.index(x + dx, y + dy)]);
        let predicted: [u8; BLOCK * BLOCK] = std::array::from_fn(|i| {
            let (c, r) = ((i % BLOCK) as isize, (i / BLOCK) as isize);
            let sum = sample(c, r) + sample(c + fx, r) + sample(c, r + fy) + sample(c + fx, r + fy);
            ((sum + 2) >> 2) as u8
        });
        crate::dsp::reference_satd(block, BLOCK, &predicted, BLOCK, BLOCK, BLOCK)
    }

    #[test]
    fn costs_equal_their_direct_computation() {
        // Not a multiple of the block size, so edge blocks reach into the border.
        let low = LowRes::new(&textured(140, 84, 3, 5));
        for by in 0..low.blocks_y {
            for bx in 0..low.blocks_x {
                let i = by * low.blocks_x + bx;
                assert_eq!(low.intra[i], direct_intra_cost(&low, bx, by), "block {i}");
                let block = low.block(bx, by);
                for (mx, my) in [(-RANGE, -RANGE), (RANGE, RANGE), (-RANGE, RANGE - 1)]
                    .into_iter()
                    .chain((-5..=5).flat_map(|mx| (-5..=5).map(move |my| (mx, my))))
                {
                    let mv = Mv::new(mx, my);
                    assert_eq!(
                        low.inter_cost(&block, bx, by, mv),
                        direct_inter_cost(&low, &block, bx, by, mv),
                        "block {i}, vector {mv:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn half_resolution_averages_squares_of_any_depth_and_size() {
        let (width, height) = (37, 23);
        let mut luma = PaddedPlane::<u16>::new(width, height, 16, 10);
        for y in 0..height {
            for (x, v) in luma.row_mut(0, y, width).iter_mut().enumerate() {
                *v = (((x as u32 * 2_654_435_761) ^ (y as u32 * 40_503)) >> 9) as u16 & 1023;
            }
        }
        let low = LowRes::new(&luma);
        for y in 0..height.div_ceil(2) {
            for x in 0..width.div_ceil(2) {
                let at =
                    |x: usize, y: usize| u32::from(luma.at(x.min(width - 1), y.min(height - 1)));
                let sum = at(2 * x, 2 * y)
                    + at(2 * x + 1, 2 * y)
                    + at(2 * x, 2 * y + 1)
                    + at(2 * x + 1, 2 * y + 1);
                assert_eq!(u32::from(low.plane.at(x, y)), (sum + 8) >> 4, "({x}, {y})");
            }
        }
    }
}
