//! The learned in-loop filter: a small convolutional network on luma, after deblocking and
//! SAO and before the picture becomes a reference, that adds a predicted correction to each
//! sample. A frame puts a model in force by naming one of the models the codec ships (trained
//! offline, one per coding QP) or by sending weights the encoder trained on it (on key frames,
//! see [`train`]), quantised; every other frame keeps the model of its nearest reference. Each
//! frame that applies it codes a strength and one flag per 64x64 superblock, chosen by
//! rate–distortion.
//!
//! Inference is integer arithmetic through the DSP layer ([`crate::dsp::Network`]), so that
//! the encoder and every decoder agree bit for bit on any machine and at any thread count;
//! only the encoder's training uses floating point (and the tensor crate).
//!
//! The network: `layers` convolutions of `2·radius + 1` squared kernels without padding, from
//! one input plane through `channels` hidden planes (rectified) to one output plane (linear).
//! A superblock's output needs `layers·radius` samples of context on each side, read from the
//! picture with its edges replicated.

mod decide;
mod inference;
mod shipped;
mod shipped_model;
mod syntax;
pub mod train;

use serde::{Deserialize, Serialize};

pub use decide::{ModelChoice, best_choice, choose_and_apply, estimated_saving, padded_luma};
pub use inference::{FilterScratch, FrameFilter, apply, block_residual};
pub use shipped::{shipped_models, shipped_provenance};
pub use syntax::{NewModel, new_model_rate, read_frame, write_frame};

/// Fractional bits of activations: a sample of depth `d` enters as `(sample << (12 - d)) - 2^11`,
/// centred on mid-grey.
pub const ACTIVATION_BITS: u32 = 12;
/// The network's output is its correction times 2^4: a finer target than whole samples.
pub const RESIDUAL_GAIN_LOG2: u32 = 4;
/// Largest right shift of a layer's accumulators.
pub const MAX_SHIFT: u8 = 24;
/// Largest bias magnitude.
pub const MAX_BIAS: i32 = 1 << 24;
/// The frame strength `k` scales the network's correction by `k / 8`, `k` in 1..=16.
pub const STRENGTH_BITS: u32 = 4;
pub const STRENGTH_SHIFT: u32 = 3;

/// The network's architecture (signalled in the sequence header).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterShape {
    pub layers: u8,
    pub channels: u8,
    pub radius: u8,
    /// Bits of each weight, sign included.
    pub weight_bits: u8,
}

impl FilterShape {
    /// Side of each layer's kernel.
    pub fn kernel(self) -> usize {
        2 * usize::from(self.radius) + 1
    }

    /// Samples of context each output needs on every side.
    pub fn reach(self) -> usize {
        usize::from(self.layers) * usize::from(self.radius)
    }

    /// (input planes, output planes) of each layer, first to last.
    pub fn layer_planes(self) -> impl Iterator<Item = (usize, usize)> {
        let (layers, channels) = (usize::from(self.layers), usize::from(self.channels));
        (0..layers).map(move |l| {
            let inputs = if l == 0 { 1 } else { channels };
            let outputs = if l + 1 == layers { 1 } else { channels };
            (inputs, outputs)
        })
    }

    /// Multiply–accumulates per filtered luma sample: `Σ kernel²·inputs·outputs` over the
    /// layers (what the decoder spends on a superblock the filter is applied to).
    pub fn mac_per_pixel(self) -> u64 {
        let taps = (self.kernel() * self.kernel()) as u64;
        self.layer_planes()
            .map(|(inputs, outputs)| taps * (inputs * outputs) as u64)
            .sum()
    }

    /// Largest weight magnitude.
    pub fn max_weight(self) -> i32 {
        (1 << (self.weight_bits - 1)) - 1
    }
}

/// One layer's quantised parameters: `acc = bias + Σ weight·activation`, then
/// `(acc + round) >> shift`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layer {
    /// Output-major, then input, then kernel row and column.
    pub weights: Vec<i16>,
    pub biases: Vec<i32>,
    pub shift: u8,
}

/// A quantised network of a given shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterModel {
    pub shape: FilterShape,
    pub layers: Vec<Layer>,
}

impl FilterModel {
    /// A network whose correction is zero everywhere.
    pub fn zero(shape: FilterShape) -> Self {
        let taps = shape.kernel() * shape.kernel();
        let layers = shape
            .layer_planes()
            .map(|(inputs, outputs)| Layer {
                weights: vec![0; taps * inputs * outputs],
                biases: vec![0; outputs],
                shift: 0,
            })
            .collect();
        FilterModel { shape, layers }
    }

    /// Whether every layer has the sizes of the shape and values the stream can carry.
    pub fn is_valid(&self) -> bool {
        let taps = self.shape.kernel() * self.shape.kernel();
        let max_weight = self.shape.max_weight();
        self.layers.len() == usize::from(self.shape.layers)
            && self.layers.iter().zip(self.shape.layer_planes()).all(
                |(layer, (inputs, outputs))| {
                    layer.weights.len() == taps * inputs * outputs
                        && layer.biases.len() == outputs
                        && layer.shift <= MAX_SHIFT
                        && layer
                            .weights
                            .iter()
                            .all(|&w| i32::from(w).abs() <= max_weight)
                        && layer.biases.iter().all(|&b| b.abs() <= MAX_BIAS)
                },
            )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_per_pixel_counts_every_layer() {
        let shape = FilterShape {
            layers: 4,
            channels: 8,
            radius: 1,
            weight_bits: 8,
        };
        // 9·1·8 + 2·9·8·8 + 9·8·1
        assert_eq!(shape.mac_per_pixel(), 72 + 1152 + 72);
        assert_eq!(shape.reach(), 4);
        let wide = FilterShape {
            layers: 2,
            channels: 16,
            radius: 2,
            weight_bits: 6,
        };
        assert_eq!(wide.mac_per_pixel(), 25 * 16 * 2);
        assert_eq!(wide.max_weight(), 31);
    }
}
