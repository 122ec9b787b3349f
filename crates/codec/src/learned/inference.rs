//! The network's integer inference over a picture's superblocks, and the corrected samples.

use super::{ACTIVATION_BITS, FilterModel, RESIDUAL_GAIN_LOG2, STRENGTH_SHIFT};
use crate::dsp::{ConvShape, network};
use crate::partition::SB_SIZE;
use crate::picture::{PaddedPlane, Picture, Sample};

/// What a frame signals: the strength `k` (the correction is scaled by `k / 8`) and, per
/// superblock in raster order, whether the filter applies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameFilter {
    pub strength: u8,
    pub superblocks: Vec<bool>,
}

/// Working memory of the inference: two sets of activation planes, reused from superblock to
/// superblock.
#[derive(Default)]
pub struct FilterScratch {
    planes: [Vec<i16>; 2],
}

// EVOLVE-BLOCK-START learned_filter_inference
/// The network's correction of the `w`×`h` block at `(x, y)` of `input` (whose border, at least
/// the model's reach, replicates its edges), in activation units, into `residual` (`w`·`h`,
/// rows of `w`).
pub fn block_residual<T: Sample>(
    model: &FilterModel,
    input: &PaddedPlane<T>,
    (x, y, w, h): (usize, usize, usize, usize),
    scratch: &mut FilterScratch,
    residual: &mut Vec<i16>,
) {
    let reach = model.shape.reach();
    let kernel = model.shape.kernel();
    assert!(input.border >= reach);
    let (mut width, mut height) = (w + 2 * reach, h + 2 * reach);
    let up = ACTIVATION_BITS - input.bit_depth;
    let mid = 1 << (ACTIVATION_BITS - 1);
    let [current, next] = &mut scratch.planes;
    current.clear();
    for row in 0..height {
        let start = input.index(
            x as isize - reach as isize,
            (y + row) as isize - reach as isize,
        );
        let samples = &input.data[start..start + width];
        current.extend(samples.iter().map(|&s| ((s.to_i32() << up) - mid) as i16));
    }
    let last = model.layers.len() - 1;
    for (l, (layer, (inputs, outputs))) in model
        .layers
        .iter()
        .zip(model.shape.layer_planes())
        .enumerate()
    {
        let shape = ConvShape {
            inputs,
            outputs,
            kernel,
            width,
            height,
        };
        let out_len = outputs * shape.out_width() * shape.out_height();
        // Hidden layers are rectified; the last one is the signed correction.
        let floor = if l == last { i16::MIN } else { 0 };
        let target = if l == last {
            &mut *residual
        } else {
            &mut *next
        };
        target.resize(out_len, 0);
        network().conv_layer(
            shape,
            current,
            &layer.weights,
            &layer.biases,
            (u32::from(layer.shift), floor),
            target,
        );
        std::mem::swap(current, next);
        (width, height) = (shape.out_width(), shape.out_height());
    }
}

/// A sample corrected by `residual` (activation units times the residual gain) at strength `k`,
/// clipped to the depth.
#[inline]
pub(super) fn corrected(sample: i32, residual: i16, strength: u8, bit_depth: u32, max: i32) -> i32 {
    let shift = STRENGTH_SHIFT + RESIDUAL_GAIN_LOG2 + ACTIVATION_BITS - bit_depth;
    let scaled = (i32::from(residual) * i32::from(strength) + (1 << (shift - 1))) >> shift;
    (sample + scaled).clamp(0, max)
}
// EVOLVE-BLOCK-END

/// The superblocks of a picture, in raster order: `(x, y, w, h)` of each, clipped to the coded
/// area.
pub fn superblocks(plane_width: usize, plane_height: usize) -> Vec<(usize, usize, usize, usize)> {
    let mut blocks = Vec::new();
    for y in (0..plane_height).step_by(SB_SIZE) {
        for x in (0..plane_width).step_by(SB_SIZE) {
            blocks.push((
                x,
                y,
                SB_SIZE.min(plane_width - x),
                SB_SIZE.min(plane_height - y),
            ));
        }
    }
    blocks
}

/// Writes the block at `(x, y, w, h)` of `input` corrected by `residual` into `output`.
pub(super) fn correct_block<T: Sample>(
    input: &PaddedPlane<T>,
    output: &mut PaddedPlane<T>,
    (x, y, w, h): (usize, usize, usize, usize),
    residual: &[i16],
    strength: u8,
) {
    let (depth, max) = (input.bit_depth, input.max_value());
    for (row, corrections) in residual.chunks_exact(w).take(h).enumerate() {
        let source = input.row(x, y + row, w);
        for ((out, &s), &r) in output
            .row_mut(x, y + row, w)
            .iter_mut()
            .zip(source)
            .zip(corrections)
        {
            *out = T::from_i32(corrected(s.to_i32(), r, strength, depth, max));
        }
    }
}

/// Decoder: filters the superblocks `frame` turns on in the luma plane of
/// `picture`, each from the unfiltered samples around it.
pub fn apply<T: Sample>(
    picture: &mut Picture<T>,
    model: &FilterModel,
    frame: &FrameFilter,
    scratch: &mut FilterScratch,
) {
    let input = super::padded_luma(picture);
    let plane = &mut picture.planes[0];
    let mut residual = Vec::new();
    for (&block, _) in superblocks(plane.width, plane.height)
        .iter()
        .zip(&frame.superblocks)
        .filter(|(_, on)| **on)
    {
        block_residual(model, &input, block, scratch, &mut residual);
        correct_block(&input, plane, block, &residual, frame.strength);
    }
}
