//! Temporal rate-distortion, as x264's mb-tree, x265's cu-tree and AV1's TPL: over a window of
//! frames in coding order, how much of each block's information later frames inherit through
//! prediction is propagated back to the blocks they predict from, and turned into a QP offset.
//! A block many frames copy is worth more bits than one nothing copies.

use crate::lookahead::{BLOCK, InterCosts, LowRes};

/// Side of the luma blocks a QP offset applies to: one analysis block at half resolution.
pub const QP_BLOCK: usize = 2 * BLOCK;

/// QP offsets per 16x16 luma block of a frame.
#[derive(Clone, Debug, PartialEq)]
pub struct QpMap {
    pub blocks_x: usize,
    pub blocks_y: usize,
    pub offsets: Vec<f32>,
}

impl QpMap {
    /// Mean offset over the luma square at (x, y) of `size`, inside the picture, rounded.
    pub fn offset(&self, x: usize, y: usize, size: usize) -> i32 {
        let (x0, y0) = (x / QP_BLOCK, y / QP_BLOCK);
        let x1 = (x + size).div_ceil(QP_BLOCK).min(self.blocks_x);
        let y1 = (y + size).div_ceil(QP_BLOCK).min(self.blocks_y);
        let mut sum = 0.0f32;
        let mut count = 0u32;
        for by in y0..y1 {
            for bx in x0..x1 {
                sum += self.offsets[by * self.blocks_x + bx];
                count += 1;
            }
        }
        if count == 0 {
            0
        } else {
            (sum / count as f32).round() as i32
        }
    }
}

/// One frame of the window, in coding order.
pub struct WindowFrame<'a> {
    pub low: &'a LowRes,
    /// What it predicts from: the window index of each reference (coded earlier) with the
    /// costs of predicting from it.
    pub predictions: Vec<(usize, &'a InterCosts)>,
}

// EVOLVE-BLOCK-START temporal_rd
/// QP offsets of every frame of `window` (coding order): −strength · log2(1 + inherited / own),
/// where own is a block's intra cost and inherited the share of later frames' costs that its
/// prediction saves them, carried back frame by frame along the best vectors.
pub fn propagate(window: &[WindowFrame], strength: f64) -> Vec<QpMap> {
    let mut inherited: Vec<Vec<f64>> = window
        .iter()
        .map(|f| vec![0.0; f.low.intra.len()])
        .collect();
    for (index, frame) in window.iter().enumerate().rev() {
        let low = frame.low;
        for block in 0..low.intra.len() {
            let intra = f64::from(low.intra[block].max(1));
            let Some((reference, costs)) = frame
                .predictions
                .iter()
                .min_by_key(|(_, costs)| costs.cost[block])
            else {
                continue;
            };
            let inter = f64::from(costs.cost[block]).min(intra);
            let amount = (intra + inherited[index][block]) * (1.0 - inter / intra);
            if amount <= 0.0 {
                continue;
            }
            // The predicting block covers up to four blocks of the reference, each receiving
            // its share by area (positions in half samples, as the vectors).
            let vector = costs.vectors[block];
            let (bx, by) = (block % low.blocks_x, block / low.blocks_x);
            let px = 2 * (bx * BLOCK) as i64 + i64::from(vector.x);
            let py = 2 * (by * BLOCK) as i64 + i64::from(vector.y);
            let size = 2 * BLOCK as i64;
            let (cx, cy) = (px.div_euclid(size), py.div_euclid(size));
            let (fx, fy) = (px.rem_euclid(size), py.rem_euclid(size));
            let target = &mut inherited[*reference];
            let reference_low = window[*reference].low;
            for (dx, dy, area) in [
                (0, 0, (size - fx) * (size - fy)),
                (1, 0, fx * (size - fy)),
                (0, 1, (size - fx) * fy),
                (1, 1, fx * fy),
            ] {
                let (tx, ty) = (cx + dx, cy + dy);
                if area == 0
                    || tx < 0
                    || ty < 0
                    || tx >= reference_low.blocks_x as i64
                    || ty >= reference_low.blocks_y as i64
                {
                    continue;
                }
                target[ty as usize * reference_low.blocks_x + tx as usize] +=
                    amount * area as f64 / (size * size) as f64;
            }
        }
    }
    window
        .iter()
        .zip(&inherited)
        .map(|(frame, inherited)| QpMap {
            blocks_x: frame.low.blocks_x,
            blocks_y: frame.low.blocks_y,
            offsets: frame
                .low
                .intra
                .iter()
                .zip(inherited)
                .map(|(&intra, &inherited)| {
                    let own = f64::from(intra.max(1));
                    (-strength * (1.0 + inherited / own).log2()) as f32
                })
                .collect(),
        })
        .collect()
}
// EVOLVE-BLOCK-END

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inter::Mv;
    use crate::lookahead::inter_costs;
    use crate::picture::PaddedPlane;

    fn plane(width: usize, height: usize, seed: u32) -> PaddedPlane<u8> {
        let mut plane = PaddedPlane::new(width, height, 16, 8);
        let mut rng = crate::test_rng::Rng(seed.max(1));
        for y in 0..height {
            for v in plane.row_mut(0, y, width) {
                *v = (rng.next() >> 24) as u8;
            }
        }
        plane.extend_edges();
        plane
    }

    #[test]
    fn blocks_later_frames_copy_get_lower_qp_than_blocks_nothing_copies() {
        let still = LowRes::new(&plane(64, 64, 3));
        let copies: Vec<InterCosts> = (0..4).map(|_| inter_costs(&still, &still)).collect();
        assert!(copies[0].vectors.iter().all(|&v| v == Mv::ZERO));
        // A still scene: frames 1 to 4 each copy the frame before.
        let mut window = vec![WindowFrame {
            low: &still,
            predictions: Vec::new(),
        }];
        for (i, costs) in copies.iter().enumerate() {
            window.push(WindowFrame {
                low: &still,
                predictions: vec![(i, costs)],
            });
        }
        let maps = propagate(&window, 2.0);
        // The first frame feeds all four: its offset is the most negative.
        assert!(
            maps[0].offsets.iter().all(|&o| o < -4.0),
            "{:?}",
            maps[0].offsets
        );
        assert!(maps[3].offsets[0] > maps[0].offsets[0]);
        assert!(maps[4].offsets.iter().all(|&o| o == 0.0));
        // Noise that changes every frame is copied by nothing.
        let other = LowRes::new(&plane(64, 64, 99));
        let costs = inter_costs(&other, &still);
        let maps = propagate(
            &[
                WindowFrame {
                    low: &still,
                    predictions: Vec::new(),
                },
                WindowFrame {
                    low: &other,
                    predictions: vec![(0, &costs)],
                },
            ],
            2.0,
        );
        assert!(
            maps[0].offsets.iter().all(|&o| o > -0.5),
            "{:?}",
            maps[0].offsets
        );
    }

    #[test]
    fn a_coding_unit_takes_the_mean_offset_of_the_blocks_it_covers() {
        let map = QpMap {
            blocks_x: 2,
            blocks_y: 2,
            offsets: vec![-2.0, -4.0, 0.0, -2.2],
        };
        assert_eq!(map.offset(0, 0, 32), -2);
        assert_eq!(map.offset(16, 0, 16), -4);
        assert_eq!(map.offset(16, 16, 8), -2);
        // Beyond the picture's blocks: only those inside count.
        assert_eq!(map.offset(0, 0, 64), -2);
    }
}
