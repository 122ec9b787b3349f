//! Rate control: a constant QP; a constant quality (CRF), where each mini-GOP's QP follows how
//! costly the lookahead finds its frames to predict; or a target bitrate reached by adjusting each
//! frame's QP from the bits the previous frames of the same type cost and the deficit so far.

use crate::error::{CodecError, Result};
use crate::genome::Genome;
use crate::gop::{FrameKind, mini_gop_order};
use crate::quant::MAX_QP;

/// How the encoder chooses QPs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RateMode {
    /// Every P frame at this QP (key frames at QP minus the genome's P-frame offset, B frames
    /// at QP plus the genome's B-layer offset per level of their mini-GOP).
    ConstantQp(u8),
    /// Constant rate factor: QP `crf` on frames of typical complexity, higher where motion and
    /// detail hide more distortion (as x264's CRF), the same frame classes' offsets as above.
    ConstantQuality { crf: f64 },
    /// Average bitrate over the clip, in kilobits per second.
    TargetBitrate { kbps: f64 },
}

impl RateMode {
    pub fn validate(&self) -> Result<()> {
        match *self {
            RateMode::ConstantQp(qp) if qp <= MAX_QP => Ok(()),
            RateMode::ConstantQp(qp) => Err(CodecError::InvalidRateControl(format!(
                "QP {qp} is above {MAX_QP}"
            ))),
            RateMode::ConstantQuality { crf } if (0.0..=f64::from(MAX_QP)).contains(&crf) => Ok(()),
            RateMode::ConstantQuality { crf } => Err(CodecError::InvalidRateControl(format!(
                "CRF {crf} is outside 0 to {MAX_QP}"
            ))),
            RateMode::TargetBitrate { kbps } if kbps.is_finite() && kbps > 0.0 => Ok(()),
            RateMode::TargetBitrate { kbps } => Err(CodecError::InvalidRateControl(format!(
                "bitrate {kbps} kbps must be positive"
            ))),
        }
    }
}

/// Frames over which an accumulated deficit or surplus is paid back.
const PAYBACK_FRAMES: f64 = 12.0;
/// Largest change of the base QP from one frame to the next.
const MAX_QP_STEP: f64 = 2.0;
/// How far constant quality holds the QP still against complexity: 1 keeps it at the CRF,
/// 0 would make the quantiser step proportional to complexity.
const QCOMPRESS: f64 = 0.6;
/// Lookahead cost per luma sample (half-resolution SATD of the cheapest prediction) at which a
/// frame is coded at the CRF itself: about the geometric mean over the clips the codec is
/// measured on (carphone 1.07, bikes 0.52, a generated 720p pan 0.21 and scene cut 0.19).
const TYPICAL_COMPLEXITY: f64 = 0.4;
/// Levels of a mini-GOP's hierarchy: a mini-GOP of 16 has B frames on levels 1 to 4.
const LAYERS: usize = 5;

/// The frame classes whose sizes are modelled apart: key frames, then layer 0 (P frames) to
/// layer 4 (the deepest B frames).
const CLASSES: usize = 1 + LAYERS;

fn class(kind: FrameKind, layer: u8) -> usize {
    match kind {
        FrameKind::Key => 0,
        _ => 1 + usize::from(layer).min(LAYERS - 1),
    }
}

#[derive(Clone, Debug)]
pub struct RateController {
    mode: RateMode,
    bits_per_frame: f64,
    pixels: f64,
    total_bits: f64,
    frames: u64,
    /// QP of each class relative to P frames.
    offsets: [f64; CLASSES],
    /// Share of each class among the frames of a stream.
    shares: [f64; CLASSES],
    /// Per class, log2 of the bits the last frame would have cost at QP 0 (bits halve every
    /// 6 QP), once a frame of the class was coded.
    complexity: [Option<f64>; CLASSES],
    /// QP of P frames, which every other class follows at its offset.
    base_qp: Option<f64>,
    /// Lookahead prediction cost per luma sample of the frames being coded (constant quality).
    complexity_per_sample: f64,
}

impl RateController {
    pub fn new(mode: RateMode, fps: f64, pixels: usize, genome: &Genome) -> Self {
        let bits_per_frame = match mode {
            RateMode::TargetBitrate { kbps } => kbps * 1000.0 / fps.max(1e-3),
            RateMode::ConstantQp(_) | RateMode::ConstantQuality { .. } => 0.0,
        };
        let mut offsets = [0.0; CLASSES];
        offsets[0] = -f64::from(genome.p_frame_qp_offset);
        for (layer, offset) in offsets[1..].iter_mut().enumerate() {
            *offset = layer as f64 * f64::from(genome.b_layer_qp_offset);
        }
        let mut shares = [0.0; CLASSES];
        let key_share = 1.0 / f64::from(genome.keyint);
        shares[0] = key_share;
        let order = mini_gop_order(0, u64::from(genome.mini_gop));
        for scheduled in &order {
            shares[class(FrameKind::Predicted, scheduled.layer)] +=
                (1.0 - key_share) / order.len() as f64;
        }
        RateController {
            mode,
            bits_per_frame,
            pixels: pixels as f64,
            total_bits: 0.0,
            frames: 0,
            offsets,
            shares,
            complexity: [None; CLASSES],
            base_qp: None,
            complexity_per_sample: TYPICAL_COMPLEXITY,
        }
    }

    /// Whether the QPs depend on the lookahead's costs (see [`RateController::set_complexity`]).
    pub fn needs_complexity(&self) -> bool {
        matches!(self.mode, RateMode::ConstantQuality { .. })
    }

    /// The lookahead's prediction cost per luma sample (8-bit scale) of the frames about to be
    /// coded and those after them.
    pub fn set_complexity(&mut self, per_sample: f64) {
        if !per_sample.is_nan() {
            self.complexity_per_sample = per_sample;
        }
    }

    // EVOLVE-BLOCK-START rate_control
    /// QP of the next frame, of `kind`, at `layer` of its mini-GOP.
    pub fn frame_qp(&mut self, kind: FrameKind, layer: u8) -> u8 {
        let class = class(kind, layer);
        let base = match self.mode {
            RateMode::ConstantQp(qp) => f64::from(qp),
            // qscale proportional to complexity^(1 - QCOMPRESS), as x264 does: busier frames
            // take a higher QP, quieter ones a lower.
            // A still or a noise-like clip moves the QP by at most 4 octaves of complexity.
            RateMode::ConstantQuality { crf } => {
                let relative =
                    (self.complexity_per_sample / TYPICAL_COMPLEXITY).clamp(1.0 / 16.0, 16.0);
                crf + 6.0 * (1.0 - QCOMPRESS) * relative.log2()
            }
            RateMode::TargetBitrate { .. } => {
                let deficit = self.total_bits - self.bits_per_frame * self.frames as f64;
                let target = (self.bits_per_frame - deficit / PAYBACK_FRAMES)
                    .clamp(self.bits_per_frame * 0.25, self.bits_per_frame * 4.0);
                let wanted = match self.expected_bits_at_qp_zero() {
                    // The base QP at which a stream of this mix of frames costs `target`
                    // per frame on average.
                    Some(bits) => 6.0 * (bits / target).log2(),
                    None => {
                        // First guess from bits per pixel, refined by feedback.
                        let bpp = self.bits_per_frame / self.pixels.max(1.0);
                        30.0 - 6.0 * (4.0 * bpp / 0.3).log2() - self.offsets[0]
                    }
                };
                let base = match self.base_qp {
                    Some(previous) => wanted.clamp(previous - MAX_QP_STEP, previous + MAX_QP_STEP),
                    None => wanted,
                };
                self.base_qp = Some(base);
                base
            }
        };
        (base + self.offsets[class])
            .round()
            .clamp(0.0, f64::from(MAX_QP)) as u8
    }

    /// Mean bits per frame at a base QP of 0, from what each class cost; a class not yet seen
    /// is estimated from its neighbour (P frames from key frames at a quarter, deeper B frames
    /// from shallower ones at half).
    fn expected_bits_at_qp_zero(&self) -> Option<f64> {
        let mut estimate: [Option<f64>; CLASSES] = [None; CLASSES];
        for class in 0..CLASSES {
            let earlier = class.checked_sub(1).and_then(|c| estimate[c]);
            estimate[class] = self.complexity[class]
                .or_else(|| earlier.map(|e| e - if class == 1 { 2.0 } else { 1.0 }));
        }
        let mut total = 0.0;
        for ((share, offset), complexity) in self.shares.iter().zip(&self.offsets).zip(estimate) {
            if *share > 0.0 {
                total += share * (complexity? - offset / 6.0).exp2();
            }
        }
        Some(total)
    }

    /// Records the size of the frame of `kind` at `layer` just coded at `qp`.
    pub fn record(&mut self, kind: FrameKind, layer: u8, qp: u8, bytes: usize) {
        let bits = (bytes * 8).max(8) as f64;
        self.total_bits += bits;
        self.frames += 1;
        self.complexity[class(kind, layer)] = Some(bits.log2() + f64::from(qp) / 6.0);
    }
    // EVOLVE-BLOCK-END
}
