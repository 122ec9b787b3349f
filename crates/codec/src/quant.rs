//! Quantisation: the QP-to-step mapping (the step doubles every 6 QP), dead-zone quantisation in
//! the encoder and the dequantisation shared by encoder and decoder.

use crate::dsp::transforms;

pub const MAX_QP: u8 = 51;

/// Forward scale for QP % 6 (2^14 / step, the step growing by 2^(1/6) each QP).
const QUANT_SCALE: [i64; 6] = [26214, 23302, 20560, 18396, 16384, 14564];
/// Inverse scale for QP % 6; QUANT_SCALE · DEQUANT_SCALE ≈ 2^20.
const DEQUANT_SCALE: [i64; 6] = [40, 45, 51, 57, 64, 72];

/// Largest level magnitude the bitstream carries.
pub const MAX_LEVEL: i32 = 1 << 15;

/// Quantisation step of `qp` relative to QP 4 (step 1), for rate-distortion estimates.
pub fn step(qp: u8) -> f64 {
    2f64.powf((f64::from(qp) - 4.0) / 6.0)
}

/// Right shift of the forward quantiser for an N×N transform at `qp` (the quantiser's QP, which
/// includes the offset of deeper samples).
fn quant_shift(qp: u8, log2n: u32) -> u32 {
    14 + u32::from(qp / 6) + (7 - log2n)
}

// EVOLVE-BLOCK-START quantisation
/// Dead-zone quantisation: `rounding` in [0, 0.5] is the fraction of a step added before
/// truncation (0.5 rounds to nearest; smaller values zero more small coefficients).
/// Returns the number of nonzero levels.
pub fn quantize(coeffs: &[i32], levels: &mut [i32], qp: u8, log2n: u32, rounding: f64) -> usize {
    let shift = quant_shift(qp, log2n);
    let scale = QUANT_SCALE[usize::from(qp % 6)];
    let offset = (rounding * (1i64 << shift) as f64) as i64;
    let largest = transforms().largest_magnitude(coeffs);
    // Where every product fits 32 bits (8-bit video always) the loop runs on 32-bit lanes,
    // which vectorise; the result is the same.
    if i64::from(largest) * scale + offset <= i64::from(u32::MAX) {
        let max_level = MAX_LEVEL as u32;
        transforms().quantize(
            coeffs,
            levels,
            scale as u32,
            offset as u32,
            shift,
            max_level,
        )
    } else {
        quantize_with(coeffs, levels, |m| {
            ((i64::from(m) * scale + offset) >> shift).min(i64::from(MAX_LEVEL)) as u32
        })
    }
}
// EVOLVE-BLOCK-END

/// Levels of `coeffs` whose magnitudes `magnitude_of` quantises; the number of nonzero ones.
#[inline(always)]
fn quantize_with(coeffs: &[i32], levels: &mut [i32], magnitude_of: impl Fn(u32) -> u32) -> usize {
    let mut nonzero = 0;
    for (level, &c) in levels.iter_mut().zip(coeffs) {
        let magnitude = magnitude_of(c.unsigned_abs()).min(MAX_LEVEL as u32) as i32;
        nonzero += usize::from(magnitude != 0);
        *level = if c < 0 { -magnitude } else { magnitude };
    }
    nonzero
}

/// Scales levels back to transform coefficients (saturating to the range the inverse transform
/// of `bit_depth` video expects: 16 bits at 8-bit).
#[inline]
pub fn dequantize(levels: &[i32], coeffs: &mut [i32], qp: u8, log2n: u32, bit_depth: u32) {
    let limit = crate::transform::coefficient_limit(bit_depth);
    let shift = 8 + log2n - 5;
    let scale = (DEQUANT_SCALE[usize::from(qp % 6)] * 16) << (qp / 6);
    // Levels beyond `most` saturate, so clamping them there first changes nothing, and keeps
    // `level · scale` (below `limit << shift` plus a scale, at most 2^28) in 32 bits: no branch
    // (most levels are zero and a test for them mispredicts) and no 64-bit product.
    let most = (((i64::from(limit) << shift) + scale - 1) / scale) as i32;
    crate::dsp::transforms().dequantize(levels, coeffs, (scale as i32, shift), most, limit);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dequantised_levels_approximate_coefficients() {
        for qp in [0u8, 10, 22, 37, 51] {
            for log2n in 2..=5 {
                let coeffs: Vec<i32> = (0..16).map(|i| i * 397 - 3000).collect();
                let mut levels = vec![0; 16];
                quantize(&coeffs, &mut levels, qp, log2n, 0.5);
                let mut back = vec![0; 16];
                dequantize(&levels, &mut back, qp, log2n, 8);
                let step_in_coeffs = step(qp) * f64::from(1 << (7 - log2n));
                for (c, b) in coeffs.iter().zip(&back) {
                    assert!(
                        f64::from((c - b).abs()) <= step_in_coeffs * 0.5 + 1.0,
                        "qp {qp} log2n {log2n}: {c} vs {b}"
                    );
                }
            }
        }
    }

    #[test]
    fn dequantisation_saturates_as_64_bit_arithmetic_does() {
        let mut rng = crate::test_rng::Rng(0x5eed_0d0e);
        for bit_depth in [8, 10, 12] {
            let limit = i64::from(crate::transform::coefficient_limit(bit_depth));
            for qp in 0..=MAX_QP + crate::picture::qp_offset(bit_depth) {
                for log2n in 2..=5 {
                    let levels: Vec<i32> = (0..64)
                        .map(|i| match i % 4 {
                            0 => rng.next() as i32,
                            1 => rng.below(2 * MAX_LEVEL as u32 + 1) - MAX_LEVEL,
                            _ => rng.below(2001) - 1000,
                        })
                        .chain([0, 1, -1, i32::MAX, i32::MIN, MAX_LEVEL, -MAX_LEVEL])
                        .collect();
                    let mut got = vec![0; levels.len()];
                    dequantize(&levels, &mut got, qp, log2n, bit_depth);
                    let shift = 3 + log2n;
                    let scale = (DEQUANT_SCALE[usize::from(qp % 6)] * 16) << (qp / 6);
                    for (&level, &c) in levels.iter().zip(&got) {
                        let wide = (i64::from(level) * scale + (1 << (shift - 1))) >> shift;
                        assert_eq!(
                            i64::from(c),
                            wide.clamp(-limit, limit - 1),
                            "level {level} qp {qp} log2n {log2n} depth {bit_depth}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn dead_zone_zeroes_small_coefficients() {
        let coeffs = [40, -40, 60];
        let mut levels = [0; 3];
        // At QP 22 for 8x8 the step in coefficient units is 8 · 16 = 128.
        assert_eq!(quantize(&coeffs, &mut levels, 22, 3, 0.5), 0);
        assert_eq!(quantize(&[100, -100, 20], &mut levels, 22, 3, 0.5), 2);
        assert_eq!(levels, [1, -1, 0]);
        assert_eq!(quantize(&[100, -100, 20], &mut levels, 22, 3, 0.1), 0);
    }
}
