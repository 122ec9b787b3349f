//! Rate control: a constant QP, or a target bitrate reached by adjusting each frame's QP from the
//! bits the previous frames of the same type cost and the deficit accumulated so far.

use crate::error::{CodecError, Result};
use crate::quant::MAX_QP;

/// How the encoder chooses QPs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RateMode {
    /// Every P frame at this QP (key frames at QP minus the genome's P-frame offset).
    ConstantQp(u8),
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
            RateMode::TargetBitrate { kbps } if kbps.is_finite() && kbps > 0.0 => Ok(()),
            RateMode::TargetBitrate { kbps } => Err(CodecError::InvalidRateControl(format!(
                "bitrate {kbps} kbps must be positive"
            ))),
        }
    }
}

/// Frames over which an accumulated deficit or surplus is paid back.
const PAYBACK_FRAMES: f64 = 12.0;
/// Largest QP change from one frame of a type to the next.
const MAX_QP_STEP: f64 = 4.0;

#[derive(Clone, Debug)]
pub struct RateController {
    mode: RateMode,
    p_offset: f64,
    bits_per_frame: f64,
    pixels: f64,
    total_bits: f64,
    frames: u64,
    /// Last (QP, bits) of key and of predicted frames.
    last_key: Option<(f64, f64)>,
    last_predicted: Option<(f64, f64)>,
    last_qp: f64,
}

impl RateController {
    pub fn new(mode: RateMode, fps: f64, pixels: usize, p_frame_qp_offset: i8) -> Self {
        let bits_per_frame = match mode {
            RateMode::TargetBitrate { kbps } => kbps * 1000.0 / fps.max(1e-3),
            RateMode::ConstantQp(_) => 0.0,
        };
        RateController {
            mode,
            p_offset: f64::from(p_frame_qp_offset),
            bits_per_frame,
            pixels: pixels as f64,
            total_bits: 0.0,
            frames: 0,
            last_key: None,
            last_predicted: None,
            last_qp: 0.0,
        }
    }

    // EVOLVE-BLOCK-START rate_control
    /// QP of the next frame.
    pub fn frame_qp(&mut self, key: bool) -> u8 {
        let qp = match self.mode {
            RateMode::ConstantQp(qp) => {
                let qp = f64::from(qp);
                if key { qp - self.p_offset } else { qp }
            }
            RateMode::TargetBitrate { .. } => {
                let deficit = self.total_bits - self.bits_per_frame * self.frames as f64;
                let target = (self.bits_per_frame - deficit / PAYBACK_FRAMES)
                    .clamp(self.bits_per_frame * 0.25, self.bits_per_frame * 4.0);
                let history = if key {
                    self.last_key
                } else {
                    self.last_predicted
                };
                match history {
                    Some((qp, bits)) => {
                        // Bits roughly halve for every 6 QP.
                        let wanted = qp + 6.0 * (bits / target).log2();
                        wanted.clamp(qp - MAX_QP_STEP, qp + MAX_QP_STEP)
                    }
                    None if self.frames == 0 => {
                        // First guess from bits per pixel, refined by feedback.
                        let bpp = self.bits_per_frame / self.pixels.max(1.0);
                        let key_target = 4.0 * bpp;
                        30.0 - 6.0 * (key_target / 0.3).log2()
                    }
                    None => self.last_qp + if key { -self.p_offset } else { self.p_offset },
                }
            }
        };
        let qp = qp.round().clamp(0.0, f64::from(MAX_QP));
        self.last_qp = qp;
        qp as u8
    }

    /// Records the size of the frame just coded at `qp`.
    pub fn record(&mut self, key: bool, qp: u8, bytes: usize) {
        let bits = (bytes * 8) as f64;
        self.total_bits += bits;
        self.frames += 1;
        let entry = Some((f64::from(qp), bits.max(8.0)));
        if key {
            self.last_key = entry;
        } else {
            self.last_predicted = entry;
        }
    }
    // EVOLVE-BLOCK-END
}
