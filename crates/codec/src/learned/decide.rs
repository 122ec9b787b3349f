//! The encoder's choice, per frame, of the filter's strength and of the superblocks it
//! applies to.

use super::inference::{FilterScratch, FrameFilter, block_residual, corrected, superblocks};
use super::{FilterModel, STRENGTH_BITS};
use crate::entropy::COST_SHIFT;
use crate::picture::{Picture, Sample};
use crate::rdo::RdCost;

const STRENGTHS: u8 = 1 << STRENGTH_BITS;

/// Runs the network on every superblock of the luma plane of `picture`, chooses the strength
/// that lowers the squared error against `source` most where it lowers it at all (the visible
/// area counts, in 8-bit units), turns the filter on where it does, and applies it. Returns
/// what the frame signals with the squared error saved, or `None` when that does not pay for
/// the flags.
pub fn choose_and_apply<T: Sample>(
    picture: &mut Picture<T>,
    source: &Picture<T>,
    visible: (usize, usize),
    model: &FilterModel,
    rd: &RdCost,
    scratch: &mut FilterScratch,
) -> Option<(FrameFilter, u64)> {
    let mut input = picture.planes[0].clone();
    input.extend_edges();
    let (depth, max) = (input.bit_depth, input.max_value());
    let to_8bit = 2 * (depth - 8);
    let blocks = superblocks(input.width, input.height);
    let mut residuals = Vec::with_capacity(blocks.len());
    // Per superblock, the squared error saved at each strength (1..=16 at 0..16).
    let mut savings = Vec::with_capacity(blocks.len());
    for &(x, y, w, h) in &blocks {
        let mut residual = Vec::new();
        block_residual(model, &input, (x, y, w, h), scratch, &mut residual);
        let (vw, vh) = (
            w.min(visible.0.saturating_sub(x)),
            h.min(visible.1.saturating_sub(y)),
        );
        let mut saved = [0i64; STRENGTHS as usize];
        for row in 0..vh {
            let recon = input.row(x, y + row, vw);
            let orig = source.planes[0].row(x, y + row, vw);
            let corrections = &residual[row * w..row * w + vw];
            for ((&r, &o), &c) in recon.iter().zip(orig).zip(corrections) {
                let (r, o) = (r.to_i32(), o.to_i32());
                let before = i64::from((r - o) * (r - o));
                for (k, saved) in saved.iter_mut().enumerate() {
                    let after = corrected(r, c, k as u8 + 1, depth, max) - o;
                    *saved += before - i64::from(after * after);
                }
            }
        }
        residuals.push(residual);
        savings.push(saved.map(|s| s >> to_8bit));
    }
    let total = |k: usize| -> i64 { savings.iter().map(|s| s[k].max(0)).sum() };
    let best = (0..STRENGTHS as usize).max_by_key(|&k| total(k))?;
    // Applying costs the strength and a flag per superblock (about a bit each) over the one
    // bit of leaving it off.
    let rate = u64::from(STRENGTH_BITS) + blocks.len() as u64;
    let rate_cost = rd.cost(0, rate << COST_SHIFT);
    if total(best) <= 0 || total(best) as u64 <= rate_cost {
        return None;
    }
    let frame = FrameFilter {
        strength: best as u8 + 1,
        superblocks: savings.iter().map(|s| s[best] > 0).collect(),
    };
    let plane = &mut picture.planes[0];
    for ((&block, residual), _) in blocks
        .iter()
        .zip(&residuals)
        .zip(&frame.superblocks)
        .filter(|(_, on)| **on)
    {
        super::inference::correct_block(&input, plane, block, residual, frame.strength);
    }
    Some((frame, total(best) as u64))
}
