//! The encoder's motion search: the best of several predicted starting points, a hexagon pattern
//! search at whole samples, then half- and quarter-sample refinement on the Hadamard cost.

use super::interp::predict_luma;
use super::{Mv, mv_in_bounds};
use crate::partition::SB_SIZE;
use crate::picture::{LUMA_BORDER, PaddedPlane, Sample};
use crate::rdo::{sad, satd};

/// A reference luma plane interpolated at the three half-sample phases (right, below, both),
/// with the same filters and rounding as motion compensation, so the search reads half-sample
/// positions instead of filtering for each candidate.
pub struct HalfSamplePlanes<T: Sample> {
    pub full: PaddedPlane<T>,
    /// [horizontal half, vertical half, both]
    pub half: [PaddedPlane<T>; 3],
}

impl<T: Sample> HalfSamplePlanes<T> {
    pub fn new(reference: &PaddedPlane<T>) -> Self {
        let (w, h, border) = (reference.width, reference.height, reference.border);
        let bit_depth = reference.bit_depth;
        // Reach of the search: `mv_in_bounds` plus one sample; the filters need 4 more.
        let reach = (LUMA_BORDER - 16 + 1) as isize;
        let mut half = [
            PaddedPlane::new(w, h, border, bit_depth),
            PaddedPlane::new(w, h, border, bit_depth),
            PaddedPlane::new(w, h, border, bit_depth),
        ];
        let phases = [Mv::new(2, 0), Mv::new(0, 2), Mv::new(2, 2)];
        const TILE: isize = 64;
        let mut tile = [T::default(); (TILE * TILE) as usize];
        for (plane, phase) in half.iter_mut().zip(phases) {
            for ty in (-reach..h as isize + reach).step_by(TILE as usize) {
                for tx in (-reach..w as isize + reach).step_by(TILE as usize) {
                    let tw = TILE.min(w as isize + reach - tx) as usize;
                    let th = TILE.min(h as isize + reach - ty) as usize;
                    // Block positions are unsigned: the tile origin travels in the vector.
                    let mv = Mv::new(phase.x + 4 * tx as i32, phase.y + 4 * ty as i32);
                    predict_luma(reference, 0, 0, tw, th, mv, &mut tile);
                    for row in 0..th {
                        let start = plane.index(tx, ty + row as isize);
                        plane.data[start..start + tw]
                            .copy_from_slice(&tile[row * tw..(row + 1) * tw]);
                    }
                }
            }
        }
        HalfSamplePlanes {
            full: reference.clone(),
            half,
        }
    }

    /// The plane and integer position holding half-sample-grid position (hx, hy) (in half
    /// samples).
    #[inline]
    fn locate(&self, hx: isize, hy: isize) -> (&PaddedPlane<T>, isize, isize) {
        let plane = match (hx & 1, hy & 1) {
            (0, 0) => &self.full,
            (1, 0) => &self.half[0],
            (0, _) => &self.half[1],
            _ => &self.half[2],
        };
        (plane, hx >> 1, hy >> 1)
    }
}

/// What the search needs to know about the block and its coding cost.
pub struct SearchParams<'a, T: Sample> {
    pub source: &'a PaddedPlane<T>,
    pub reference: &'a HalfSamplePlanes<T>,
    pub x: usize,
    pub y: usize,
    pub size: usize,
    /// The predictor the vector difference is coded against.
    pub mvp: Mv,
    /// Starting points worth a look (neighbours' vectors, the parent block's result).
    pub starts: &'a [Mv],
    /// Largest whole-sample distance from the best start.
    pub range: i32,
    /// 0: whole samples, 1: half, 2: quarter.
    pub subpel: u8,
    /// Lagrange multiplier for SAD/SATD costs, in 1/256 per bit.
    pub lambda_sad: u64,
}

/// Approximate bits of a coded vector difference component (quarter samples).
#[inline]
fn mvd_bits(v: i32) -> u64 {
    if v == 0 {
        1
    } else {
        2 * u64::from(32 - v.unsigned_abs().leading_zeros()) + 1
    }
}

/// λ times the approximate bits of coding `mv` against the predictor `mvp`, for SAD/SATD costs
/// (`lambda_sad` in 1/256 per bit).
pub fn vector_rate_cost(mv: Mv, mvp: Mv, lambda_sad: u64) -> u64 {
    let bits = mvd_bits(mv.x - mvp.x) + mvd_bits(mv.y - mvp.y);
    (bits * lambda_sad) >> 8
}

impl<T: Sample> SearchParams<'_, T> {
    fn rate_cost(&self, mv: Mv) -> u64 {
        vector_rate_cost(mv, self.mvp, self.lambda_sad)
    }

    fn coded(&self) -> (usize, usize) {
        (self.source.width, self.source.height)
    }

    fn full_sample_cost(&self, mv: Mv) -> Option<u64> {
        if !mv_in_bounds(self.x, self.y, self.size, self.size, mv, self.coded()) {
            return None;
        }
        let n = self.size;
        let src = self.source.index(self.x as isize, self.y as isize);
        let rx = self.x as isize + (mv.x >> 2) as isize;
        let ry = self.y as isize + (mv.y >> 2) as isize;
        let reference = &self.reference.full;
        let refi = reference.index(rx, ry);
        let distortion = sad(
            &self.source.data[src..],
            self.source.stride,
            &reference.data[refi..],
            reference.stride,
            n,
            n,
        );
        Some(u64::from(distortion) + self.rate_cost(mv))
    }

    fn sub_sample_cost(&self, mv: Mv, scratch: &mut [T]) -> Option<u64> {
        if !mv_in_bounds(self.x, self.y, self.size, self.size, mv, self.coded()) {
            return None;
        }
        let n = self.size;
        // Quarter positions are estimated as the mean of the two nearest half-grid positions.
        let qx = 4 * self.x as isize + mv.x as isize;
        let qy = 4 * self.y as isize + mv.y as isize;
        let (a_plane, ax, ay) = self.reference.locate(qx >> 1, qy >> 1);
        let src = self.source.index(self.x as isize, self.y as isize);
        let distortion = if (qx | qy) & 1 == 0 {
            let start = a_plane.index(ax, ay);
            satd(
                &self.source.data[src..],
                self.source.stride,
                &a_plane.data[start..],
                a_plane.stride,
                n,
                n,
            )
        } else {
            let (b_plane, bx, by) = self.reference.locate((qx + 1) >> 1, (qy + 1) >> 1);
            for row in 0..n {
                let a = a_plane.index(ax, ay + row as isize);
                let b = b_plane.index(bx, by + row as isize);
                let (ra, rb) = (&a_plane.data[a..a + n], &b_plane.data[b..b + n]);
                for ((out, &p), &q) in scratch[row * n..(row + 1) * n].iter_mut().zip(ra).zip(rb) {
                    *out = p.average(q);
                }
            }
            satd(
                &self.source.data[src..],
                self.source.stride,
                scratch,
                n,
                n,
                n,
            )
        };
        Some(u64::from(distortion) + self.rate_cost(mv))
    }
}

// EVOLVE-BLOCK-START motion_search
/// Finds a good vector for the block; returns it with its SATD + rate cost.
pub fn search<T: Sample>(params: &SearchParams<T>) -> (Mv, u64) {
    let to_full = |mv: Mv| Mv::new((mv.x + 2) & !3, (mv.y + 2) & !3);
    let mut best = Mv::ZERO;
    let mut best_cost = params.full_sample_cost(best).unwrap_or(u64::MAX);
    for &start in params.starts.iter().chain([params.mvp].iter()) {
        let start = to_full(start);
        if let Some(cost) = params.full_sample_cost(start)
            && cost < best_cost
        {
            best = start;
            best_cost = cost;
        }
    }
    let origin = best;
    let within_range = |mv: Mv| {
        (mv.x - origin.x).abs() <= params.range * 4 && (mv.y - origin.y).abs() <= params.range * 4
    };
    // Hexagon steps until the centre wins, then the four nearest positions.
    const HEXAGON: [(i32, i32); 6] = [(-2, 0), (2, 0), (-1, -2), (1, -2), (-1, 2), (1, 2)];
    const CROSS: [(i32, i32); 4] = [(-1, 0), (1, 0), (0, -1), (0, 1)];
    for _ in 0..params.range.max(1) {
        let centre = best;
        for (dx, dy) in HEXAGON {
            let mv = Mv::new(centre.x + dx * 4, centre.y + dy * 4);
            if within_range(mv)
                && let Some(cost) = params.full_sample_cost(mv)
                && cost < best_cost
            {
                best = mv;
                best_cost = cost;
            }
        }
        if best == centre {
            break;
        }
    }
    let centre = best;
    for (dx, dy) in CROSS {
        let mv = Mv::new(centre.x + dx * 4, centre.y + dy * 4);
        if within_range(mv)
            && let Some(cost) = params.full_sample_cost(mv)
            && cost < best_cost
        {
            best = mv;
            best_cost = cost;
        }
    }
    // Sub-sample refinement on SATD, which tracks the coded residual better than SAD.
    let mut block = [T::default(); SB_SIZE * SB_SIZE];
    let scratch = &mut block[..params.size * params.size];
    best_cost = params.sub_sample_cost(best, scratch).unwrap_or(u64::MAX);
    for step in [2, 1].into_iter().take(usize::from(params.subpel)) {
        let centre = best;
        for dy in -1..=1 {
            for dx in -1..=1 {
                if dx == 0 && dy == 0 {
                    continue;
                }
                let mv = Mv::new(centre.x + dx * step, centre.y + dy * step);
                if let Some(cost) = params.sub_sample_cost(mv, scratch)
                    && cost < best_cost
                {
                    best = mv;
                    best_cost = cost;
                }
            }
        }
    }
    (best, best_cost)
}
// EVOLVE-BLOCK-END

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_shifted_texture() {
        let mut reference = PaddedPlane::new(64, 64, 96, 8);
        let mut source = PaddedPlane::new(64, 64, 96, 8);
        let texture = |x: usize, y: usize| {
            let (x, y) = (x as f64, y as f64);
            (128.0 + 50.0 * (x * 0.3).sin() + 40.0 * (y * 0.25 + x * 0.05).cos()) as u8
        };
        for y in 0..64 {
            for x in 0..64 {
                reference.row_mut(x, y, 1)[0] = texture(x + 64, y);
                // The source is the reference moved by (+3, -2): source(x, y) = ref(x - 3, y + 2).
                source.row_mut(x, y, 1)[0] = texture(x + 64 - 3, y + 2);
            }
        }
        reference.extend_edges();
        source.extend_edges();
        let planes = HalfSamplePlanes::new(&reference);
        let params = SearchParams {
            source: &source,
            reference: &planes,
            x: 16,
            y: 16,
            size: 16,
            mvp: Mv::ZERO,
            starts: &[],
            range: 16,
            subpel: 2,
            lambda_sad: 256,
        };
        let (mv, _) = search(&params);
        assert_eq!(mv, Mv::new(-12, 8));
    }
}
