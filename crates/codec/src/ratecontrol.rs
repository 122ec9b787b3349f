//! Rate control: a constant QP; a constant quality (CRF), where each mini-GOP's QP follows how
//! costly the lookahead finds its frames to predict; or a target bitrate, where each frame's QP
//! is the one at which the rest of its mini-GOP and the frames the lookahead plans after it fit
//! their share of the target less the deficit so far, their sizes predicted from the
//! lookahead's costs by a model per class of frame that each coded frame refines.

use crate::error::{CodecError, Result};
use crate::genome::Genome;
use crate::gop::FrameKind;
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

/// Frames over which an accumulated deficit or surplus is paid back, while the stream's end is
/// not yet known.
const PAYBACK_FRAMES: f64 = 24.0;
/// Largest change of the base QP from one frame to the next but a key frame.
const MAX_QP_STEP: f64 = 2.0;
/// Weight a class's earlier frames keep in its size model at each new frame of the class.
const MODEL_DECAY: f64 = 0.5;
/// QP at which the size model states each class's bits.
const MODEL_QP: f64 = 32.0;
/// Per class, the QP increase that halves a frame's bits. Measured at constant QP 22–37 on
/// carphone and bikes: key frames 6.9–7.4, P frames 5.2–6.5, referenced B frames 4.2–5.6,
/// the deepest B frames 3.6–5.3 (more of their blocks fall to skip as the QP rises).
const QP_PER_HALVING: [f64; CLASSES] = [7.0, 6.0, 5.5, 5.0, 4.5, 4.5];
/// Each class's bits per luma sample at `MODEL_QP` per unit of lookahead cost (plus
/// `COST_FLOOR`) before any frame of it was coded: about the means measured on carphone, bikes
/// and generated 720p clips (a pan, a scene cut) at 0.03 and 0.1 bits per pixel, which stayed
/// within a factor 2 of each other.
const PRIOR_MODELS: [f64; CLASSES] = [0.17, 0.14, 0.11, 0.08, 0.054, 0.038];
/// Frames' worth of weight the prior keeps once frames of the class were coded.
const PRIOR_WEIGHT: f64 = 0.25;
/// Lookahead cost per luma sample added to every frame's, for the bits a frame costs however
/// well it is predicted (its modes, skip flags and headers).
const COST_FLOOR: f64 = 0.05;
/// Bisection steps solving for the base QP (the bracket of 80 QP shrinks below 0.01).
const SOLVE_STEPS: usize = 14;
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

/// A frame given its QP, whose size is to be recorded: frames that are coded in parallel are
/// all given their QPs before any is recorded.
#[derive(Clone, Copy, Debug)]
pub struct InFlight {
    class: usize,
    cost: f64,
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
    /// Per class, the bits per luma sample its recent frames would have cost at `MODEL_QP` per
    /// unit of their lookahead cost (plus `COST_FLOOR`), summed with weights that decay by
    /// `MODEL_DECAY` at each frame of the class, and the sum of those weights.
    scaled_bits: [f64; CLASSES],
    weights: [f64; CLASSES],
    /// Class and lookahead cost of the frames of the current mini-GOP not yet coded.
    pending: Vec<(usize, f64)>,
    /// Class and lookahead cost of the frames planned after the current mini-GOP.
    following: Vec<(usize, f64)>,
    /// Frames still to come in the stream, once its end is known.
    frames_left: Option<u64>,
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
        RateController {
            mode,
            bits_per_frame,
            pixels: pixels as f64,
            total_bits: 0.0,
            frames: 0,
            offsets,
            scaled_bits: [0.0; CLASSES],
            weights: [0.0; CLASSES],
            pending: Vec::new(),
            following: Vec::new(),
            frames_left: None,
            base_qp: None,
            complexity_per_sample: TYPICAL_COMPLEXITY,
        }
    }

    /// Whether each frame's QP follows the sizes of all frames coded before it, so that frames
    /// are coded one at a time.
    pub fn follows_sizes(&self) -> bool {
        matches!(self.mode, RateMode::TargetBitrate { .. })
    }

    /// Whether the QPs depend on the lookahead's costs (see [`RateController::set_complexity`]
    /// and [`RateController::begin_group`]).
    pub fn needs_complexity(&self) -> bool {
        !matches!(self.mode, RateMode::ConstantQp(_))
    }

    /// The lookahead's prediction cost per luma sample (8-bit scale) of the frames about to be
    /// coded and those after them.
    pub fn set_complexity(&mut self, per_sample: f64) {
        if !per_sample.is_nan() {
            self.complexity_per_sample = per_sample;
        }
    }

    /// Starts a mini-GOP: its frames' kinds, layers and lookahead costs per luma sample (intra
    /// for key frames, of predicting from the previous frame otherwise), in coding order; the
    /// same for the frames planned after it that the lookahead has seen; and, once the stream's
    /// end is known, how many frames are left in it (the mini-GOP's included); whether it
    /// starts at a scene cut, where what predicted frames cost before says little of what they
    /// will cost after.
    pub fn begin_group(
        &mut self,
        frames: Vec<(FrameKind, u8, f64)>,
        following: Vec<(FrameKind, u8, f64)>,
        frames_left: Option<u64>,
        scene_cut: bool,
    ) {
        let classes = |frames: Vec<(FrameKind, u8, f64)>| -> Vec<(usize, f64)> {
            frames
                .into_iter()
                .map(|(kind, layer, cost)| (class(kind, layer), cost))
                .collect()
        };
        self.pending = classes(frames);
        self.following = classes(following);
        self.frames_left = frames_left;
        if scene_cut {
            // Key frames' intra costs still predict them; predicted frames start afresh.
            self.scaled_bits[1..].fill(0.0);
            self.weights[1..].fill(0.0);
        }
    }

    // EVOLVE-BLOCK-START rate_control
    /// QP of the next frame, of `kind`, at `layer` of its mini-GOP, and what
    /// [`RateController::record`] needs of it once it is coded.
    pub fn frame_qp(&mut self, kind: FrameKind, layer: u8) -> (u8, InFlight) {
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
                // The mini-GOP's frames still to code and those planned after it get their
                // share of the target, less their share of the deficit so far: paid back by the
                // end of the stream when it is known, over PAYBACK_FRAMES otherwise.
                let remaining = (self.pending.len() + self.following.len()).max(1) as f64;
                let deficit = self.total_bits - self.bits_per_frame * self.frames as f64;
                let horizon = match self.frames_left {
                    Some(left) => (left as f64).max(remaining),
                    None => PAYBACK_FRAMES.max(remaining),
                };
                let budget = (remaining * self.bits_per_frame - deficit * remaining / horizon)
                    .clamp(
                        remaining * self.bits_per_frame * 0.25,
                        remaining * self.bits_per_frame * 4.0,
                    );
                let wanted = self
                    .base_qp_for(&self.class_models(), budget)
                    .clamp(0.0, f64::from(MAX_QP));
                // A key frame may jump: it often starts a scene the frames before it say
                // nothing of, and intra costs predict its size well.
                let base = match self.base_qp.filter(|_| kind != FrameKind::Key) {
                    Some(previous) => wanted.clamp(previous - MAX_QP_STEP, previous + MAX_QP_STEP),
                    None => wanted,
                };
                self.base_qp = Some(base);
                base
            }
        };
        let (class, cost) = match self.pending.iter().position(|&(c, _)| c == class) {
            Some(at) => self.pending.remove(at),
            None => (class, 0.0),
        };
        let qp = (base + self.offsets[class])
            .round()
            .clamp(0.0, f64::from(MAX_QP)) as u8;
        (qp, InFlight { class, cost })
    }

    /// Each class's bits per luma sample at `MODEL_QP` per unit of lookahead cost: what it
    /// cost recently, drawn towards the prior.
    fn class_models(&self) -> [f64; CLASSES] {
        std::array::from_fn(|c| {
            (self.scaled_bits[c] + PRIOR_WEIGHT * PRIOR_MODELS[c])
                / (self.weights[c] + PRIOR_WEIGHT)
        })
    }

    /// The base QP at which the mini-GOP's frames still to code and those planned after it cost
    /// `budget` bits.
    fn base_qp_for(&self, models: &[f64; CLASSES], budget: f64) -> f64 {
        let bits_at = |base: f64| -> f64 {
            self.pending
                .iter()
                .chain(&self.following)
                .map(|&(c, cost)| {
                    let qp = base + self.offsets[c];
                    models[c]
                        * self.pixels
                        * (cost + COST_FLOOR)
                        * ((MODEL_QP - qp) / QP_PER_HALVING[c]).exp2()
                })
                .sum()
        };
        // Bits fall as the QP rises: bisect.
        let (mut low, mut high) = (-20.0, f64::from(MAX_QP) + 20.0);
        for _ in 0..SOLVE_STEPS {
            let middle = 0.5 * (low + high);
            if bits_at(middle) > budget {
                low = middle;
            } else {
                high = middle;
            }
        }
        0.5 * (low + high)
    }

    /// Records the size of `frame`, coded at `qp`.
    pub fn record(&mut self, frame: InFlight, qp: u8, bytes: usize) {
        let bits = (bytes * 8).max(8) as f64;
        self.total_bits += bits;
        self.frames += 1;
        self.frames_left = self.frames_left.map(|left| left.saturating_sub(1));
        let InFlight { class, cost } = frame;
        self.scaled_bits[class] = MODEL_DECAY * self.scaled_bits[class]
            + bits / (self.pixels * (cost + COST_FLOOR))
                * ((f64::from(qp) - MODEL_QP) / QP_PER_HALVING[class]).exp2();
        self.weights[class] = MODEL_DECAY * self.weights[class] + 1.0;
    }
    // EVOLVE-BLOCK-END
}
