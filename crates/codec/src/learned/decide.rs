//! The encoder's choice, per frame, of the filter's strength and of the superblocks it
//! applies to, and its estimate of what a model would save, to choose between models.

use super::inference::{FilterScratch, FrameFilter, block_residual, corrected, superblocks};
use super::{FilterModel, STRENGTH_BITS};
use crate::entropy::COST_SHIFT;
use crate::picture::{PaddedPlane, Picture, Sample};
use crate::rdo::RdCost;

const STRENGTHS: u8 = 1 << STRENGTH_BITS;
/// Superblocks an estimate looks at, about: enough to rank models on a picture, a fraction of
/// the work of running each on all of a large one.
const ESTIMATE_SUPERBLOCKS: usize = 24;

/// Where a frame's model comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelChoice {
    /// The model in force, inherited from the nearest reference.
    InForce,
    /// A shipped model, by its index.
    Shipped(u8),
    /// The model the encoder trained on the frame.
    Trained,
}

/// The candidate with the largest saving, when one saves anything; the first of equals.
pub fn best_choice(candidates: &[(i64, ModelChoice)]) -> Option<ModelChoice> {
    candidates
        .iter()
        .filter(|(saving, _)| *saving > 0)
        .fold(
            None,
            |best: Option<&(i64, ModelChoice)>, candidate| match best {
                Some(best) if best.0 >= candidate.0 => Some(best),
                _ => Some(candidate),
            },
        )
        .map(|&(_, choice)| choice)
}

/// The luma plane of `picture` with its edges replicated: the network's input.
pub fn padded_luma<T: Sample>(picture: &Picture<T>) -> PaddedPlane<T> {
    let mut input = picture.planes[0].clone();
    input.extend_edges();
    input
}

/// Per strength (1..=16 at 0..16), the squared error that the correction `residual` of the
/// block at `(x, y, w, h)` of `input` saves against `source`, in 8-bit units (the visible area
/// counts).
fn block_savings<T: Sample>(
    input: &PaddedPlane<T>,
    source: &Picture<T>,
    visible: (usize, usize),
    (x, y, w, h): (usize, usize, usize, usize),
    residual: &[i16],
) -> [i64; STRENGTHS as usize] {
    let (depth, max) = (input.bit_depth, input.max_value());
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
    saved.map(|s| s >> (2 * (depth - 8)))
}

/// The strength index that saves most over the superblocks where it saves at all, with that
/// saving.
fn best_strength(savings: &[[i64; STRENGTHS as usize]]) -> (usize, i64) {
    let total = |k: usize| -> i64 { savings.iter().map(|s| s[k].max(0)).sum() };
    (0..STRENGTHS as usize)
        .map(|k| (k, total(k)))
        .max_by_key(|&(_, saved)| saved)
        .expect("there are strengths")
}

/// The squared error `model` would save on the luma plane `input` (of the picture being
/// coded) against `source` at its best strength, estimated from a regular sample of the
/// superblocks and scaled to all of them.
pub fn estimated_saving<T: Sample>(
    input: &PaddedPlane<T>,
    source: &Picture<T>,
    visible: (usize, usize),
    model: &FilterModel,
    scratch: &mut FilterScratch,
) -> i64 {
    let blocks = superblocks(input.width, input.height);
    let stride = (blocks.len() / ESTIMATE_SUPERBLOCKS).max(1);
    let mut residual = Vec::new();
    let savings: Vec<_> = blocks
        .iter()
        .skip(stride / 2)
        .step_by(stride)
        .map(|&block| {
            block_residual(model, input, block, scratch, &mut residual);
            block_savings(input, source, visible, block, &residual)
        })
        .collect();
    let (_, saved) = best_strength(&savings);
    saved * blocks.len() as i64 / savings.len() as i64
}

/// Runs the network on every superblock of `input`, the luma plane of `picture` with its
/// edges replicated, chooses the strength that lowers the squared error against `source` most
/// where it lowers it at all, turns the filter on where it does, and applies it to `picture`.
/// Returns what the frame signals, or `None` (leaving `picture` as it is) when the squared
/// error saved does not pay for the flags and `model_cost`, the cost of putting the model in
/// force.
#[allow(clippy::too_many_arguments)]
pub fn choose_and_apply<T: Sample>(
    picture: &mut Picture<T>,
    input: &PaddedPlane<T>,
    source: &Picture<T>,
    visible: (usize, usize),
    model: &FilterModel,
    rd: &RdCost,
    model_cost: u64,
    scratch: &mut FilterScratch,
) -> Option<FrameFilter> {
    let blocks = superblocks(input.width, input.height);
    let mut residuals = Vec::with_capacity(blocks.len());
    let mut savings = Vec::with_capacity(blocks.len());
    for &block in &blocks {
        let mut residual = Vec::new();
        block_residual(model, input, block, scratch, &mut residual);
        savings.push(block_savings(input, source, visible, block, &residual));
        residuals.push(residual);
    }
    let (best, saved) = best_strength(&savings);
    // Applying costs the strength and a flag per superblock (about a bit each) over the one
    // bit of leaving it off.
    let rate = u64::from(STRENGTH_BITS) + blocks.len() as u64;
    if saved <= 0 || saved as u64 <= rd.cost(0, rate << COST_SHIFT) + model_cost {
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
        super::inference::correct_block(input, plane, block, residual, frame.strength);
    }
    Some(frame)
}
