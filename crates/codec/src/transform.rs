//! Integer DCT-like transforms of 4x4 to 32x32, separable, with fixed-point scaling chosen so
//! intermediate values fit 16 bits for 8-bit video (and 16 + bd - 8 bits at deeper samples;
//! products are summed in i32, which holds them up to 12-bit video); the 4x4 integer DST-VII of
//! HEVC for intra blocks; and transform skip, which scales the residual to the transforms'
//! coefficient scale.

use crate::dsp::{Matrices, transforms};
use std::sync::OnceLock;

/// 64·√2·cos(m·π/64) rounded, for m = 0..=32: every basis value of the 32-point transform
/// (smaller transforms use every 2nd, 4th, 8th of its rows).
const COSINES: [i32; 33] = [
    91, 90, 90, 90, 89, 88, 87, 85, 84, 82, 80, 78, 75, 73, 70, 67, 64, 61, 57, 54, 50, 47, 43, 39,
    35, 30, 26, 22, 18, 13, 9, 4, 0,
];

/// `64·√2·cos(m·π/64)` for any integer m, by symmetry from `COSINES`.
fn basis(m: usize) -> i32 {
    let m = m % 128;
    let m = if m > 64 { 128 - m } else { m };
    if m > 32 { -COSINES[64 - m] } else { COSINES[m] }
}

/// HEVC's integer DST-VII, row k and column j ≈ 128·(2/3)·sin((2k+1)(j+1)π/9): the same scale
/// as the 4-point DCT's rows, so the shifts and the quantisation are shared.
const DST4: [i32; 16] = [
    29, 55, 74, 84, //
    74, 74, 0, -74, //
    84, -29, -74, 55, //
    55, -84, 74, -29,
];

/// Which transform a block's residual goes through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxType {
    Dct,
    /// 4x4 only.
    Dst,
    /// The residual itself, scaled like coefficients (any size).
    Skip,
}

/// The transform of a block: skip where its flag says so, the DST for 4x4 intra blocks when
/// the sequence enables it, else the DCT. Shared by encoder and decoder.
pub fn block_transform(intra: bool, log2n: u32, intra_dst: bool, skip: bool) -> TxType {
    if skip {
        TxType::Skip
    } else if intra && intra_dst && log2n == 2 {
        TxType::Dst
    } else {
        TxType::Dct
    }
}

/// Left shift taking a residual to coefficients of an N×N block: they are 128/N times
/// orthonormal ones, and the identity is orthonormal.
fn skip_shift(log2n: u32) -> u32 {
    7 - log2n
}

/// Row-major N×N basis matrices for N = 4, 8, 16, 32 (index log2N - 2).
pub(crate) fn matrices() -> &'static Matrices {
    static MATRICES: OnceLock<Matrices> = OnceLock::new();
    MATRICES.get_or_init(|| {
        std::array::from_fn(|i| {
            let n = 4usize << i;
            let step = 32 / n;
            let mut m = vec![0; n * n];
            for k in 0..n {
                for j in 0..n {
                    m[k * n + j] = if k == 0 {
                        64
                    } else {
                        basis(k * step * (2 * j + 1))
                    };
                }
            }
            m
        })
    })
}

/// out[k][c] = round(Σ_j t[k][j] · input[j][c] >> shift): the plain matrix product.
#[cfg(test)]
fn apply_columns(t: &[i32], input: &[i32], out: &mut [i32], n: usize, rows: usize, shift: u32) {
    let round = 1 << (shift - 1);
    for k in 0..n {
        let acc = &mut out[k * n..(k + 1) * n];
        acc.fill(round);
        for j in 0..rows {
            let coef = t[k * n + j];
            let src = &input[j * n..(j + 1) * n];
            for (a, &s) in acc.iter_mut().zip(src) {
                *a += coef * s;
            }
        }
        for a in acc.iter_mut() {
            *a >>= shift;
        }
    }
}

/// Runs `f` with two zeroed buffers of N² values for an N×N block (N = 1 << `log2n`, at most
/// 32), on the stack at the block's size, so per-block work allocates nothing.
#[inline]
pub fn with_block_buffers<R>(log2n: u32, f: impl FnOnce(&mut [i32], &mut [i32]) -> R) -> R {
    fn run<const LEN: usize, R>(f: impl FnOnce(&mut [i32], &mut [i32]) -> R) -> R {
        let (mut a, mut b) = ([0i32; LEN], [0i32; LEN]);
        f(&mut a, &mut b)
    }
    match log2n {
        0..=2 => run::<16, R>(f),
        3 => run::<64, R>(f),
        4 => run::<256, R>(f),
        _ => run::<1024, R>(f),
    }
}

/// Coefficients and inverse-transform intermediates are clipped to [-limit, limit - 1]: 16 bits
/// for 8-bit video, one more per extra bit of depth since residuals grow with it.
pub fn coefficient_limit(bit_depth: u32) -> i32 {
    1 << (7 + bit_depth)
}

fn transpose(block: &mut [i32], n: usize) {
    for y in 0..n {
        for x in y + 1..n {
            block.swap(y * n + x, x * n + y);
        }
    }
}

// EVOLVE-BLOCK-START transform
/// Forward transform of an N×N residual (row-major, N = 1 << log2n) into coefficients.
pub fn forward(residual: &[i32], coeffs: &mut [i32], log2n: u32, tx: TxType) {
    let n = 1usize << log2n;
    let (shift1, shift2) = (log2n - 1, log2n + 6);
    match tx {
        TxType::Skip => {
            for (c, &r) in coeffs[..n * n].iter_mut().zip(residual) {
                *c = r << skip_shift(log2n);
            }
            return;
        }
        TxType::Dst => {
            let (mut tmp, mut out) = ([0i32; 16], [0i32; 16]);
            transforms().matrix_rows(&DST4, &residual[..16], &mut tmp, 4);
            for v in tmp.iter_mut() {
                *v = (*v + (1 << (shift1 - 1))) >> shift1;
            }
            transpose(&mut tmp, 4);
            transforms().matrix_rows(&DST4, &tmp, &mut out, 4);
            for (c, &v) in coeffs[..16].iter_mut().zip(&out) {
                *c = (v + (1 << (shift2 - 1))) >> shift2;
            }
            transpose(coeffs, 4);
            return;
        }
        TxType::Dct => {}
    }
    forward_dct(residual, coeffs, log2n);
}
// EVOLVE-BLOCK-END

/// The DCT of an N×N residual: columns, rounding by log2(N) - 1, rows, rounding by
/// log2(N) + 6, through the kernel of the block's size.
fn forward_dct(residual: &[i32], coeffs: &mut [i32], log2n: u32) {
    transforms().forward_dct(matrices(), residual, coeffs, log2n);
}

/// Inverse transform: coefficients back to an N×N residual of `bit_depth` video. Exactly the
/// same integer arithmetic runs in the encoder's reconstruction and in the decoder.
pub fn inverse(coeffs: &[i32], residual: &mut [i32], log2n: u32, tx: TxType, bit_depth: u32) {
    let n = 1 << log2n;
    let limit = coefficient_limit(bit_depth);
    match tx {
        TxType::Skip => {
            let shift = skip_shift(log2n);
            for (r, &c) in residual[..n * n].iter_mut().zip(coeffs) {
                *r = (c + (1 << (shift - 1))) >> shift;
            }
        }
        TxType::Dst => {
            let mut tmp = [0i32; 16];
            let kernels = transforms();
            kernels.columns_transposed(&DST4, coeffs, &mut tmp, 4, 7, limit);
            transpose(&mut tmp, 4);
            kernels.columns_transposed(&DST4, &tmp, residual, 4, 12, limit);
            transpose(residual, 4);
        }
        TxType::Dct => transforms().inverse_dct(matrices(), coeffs, residual, log2n, limit),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_is_close_to_identity() {
        for log2n in 2..=5 {
            let n = 1usize << log2n;
            let residual: Vec<i32> = (0..n * n)
                .map(|i| ((i * 37 + i / n * 11) % 101) as i32 - 50)
                .collect();
            let mut coeffs = vec![0; n * n];
            forward(&residual, &mut coeffs, log2n, TxType::Dct);
            let mut back = vec![0; n * n];
            inverse(&coeffs, &mut back, log2n, TxType::Dct, 8);
            let max_err = residual
                .iter()
                .zip(&back)
                .map(|(a, b)| (a - b).abs())
                .max()
                .unwrap_or(0);
            assert!(max_err <= 3, "size {n}: max error {max_err}");
        }
    }

    #[test]
    fn butterfly_equals_matrix_product() {
        for log2n in 2..=5u32 {
            let n = 1usize << log2n;
            let t = &matrices()[log2n as usize - 2];
            let residual: Vec<i32> = (0..n * n)
                .map(|i| ((i * 7919) % 511) as i32 - 255)
                .collect();
            let mut tmp = vec![0; n * n];
            let mut expected = vec![0; n * n];
            apply_columns(t, &residual, &mut tmp, n, n, log2n - 1);
            transpose(&mut tmp, n);
            apply_columns(t, &tmp, &mut expected, n, n, log2n + 6);
            transpose(&mut expected, n);
            let mut coeffs = vec![0; n * n];
            forward(&residual, &mut coeffs, log2n, TxType::Dct);
            assert_eq!(coeffs, expected, "size {n}");
        }
    }

    #[test]
    fn dc_only_block_is_flat() {
        for log2n in 2..=5 {
            let n = 1usize << log2n;
            let mut coeffs = vec![0; n * n];
            coeffs[0] = 64 * 4;
            let mut back = vec![0; n * n];
            inverse(&coeffs, &mut back, log2n, TxType::Dct, 8);
            assert!(back.iter().all(|&v| v == back[0]), "size {n}");
            assert!(back[0] != 0);
        }
    }

    /// Largest error of an extreme residual pattern (values ±max of the depth) through
    /// quantisation at the finest QP of the depth, dequantisation and the inverse transform.
    fn extreme_error(bit_depth: u32, log2n: u32, pattern: usize) -> i32 {
        use crate::picture::{max_value, qp_offset};
        use crate::quant::{dequantize, quantize};
        let max = max_value(bit_depth);
        let n = 1usize << log2n;
        let residual: Vec<i32> = (0..n * n)
            .map(|i| {
                let (x, y) = (i % n, i / n);
                let positive = match pattern {
                    0 => true,
                    1 => false,
                    2 => (x + y) % 2 == 0,
                    3 => x < n / 2,
                    _ => (x * 7 + y * 3) % 5 < 2,
                };
                if positive { max } else { -max }
            })
            .collect();
        let mut coeffs = vec![0; n * n];
        forward(&residual, &mut coeffs, log2n, TxType::Dct);
        let qp = qp_offset(bit_depth);
        let mut levels = vec![0; n * n];
        quantize(&coeffs, &mut levels, qp, log2n, 0.5);
        let mut back = vec![0; n * n];
        dequantize(&levels, &mut back, qp, log2n, bit_depth);
        let mut rec = vec![0; n * n];
        inverse(&back, &mut rec, log2n, TxType::Dct, bit_depth);
        residual
            .iter()
            .zip(&rec)
            .map(|(a, b)| (a - b).abs())
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn extreme_deep_residuals_survive_quantisation_and_the_inverse() {
        // Deeper samples keep the 8-bit precision relative to their range: a clip of the
        // coefficients or intermediates, or an overflow, would be off by hundreds.
        for log2n in 2..=5u32 {
            for pattern in 0..5 {
                let eight = extreme_error(8, log2n, pattern);
                for bit_depth in [10u32, 12] {
                    let scale = 1 << (bit_depth - 8);
                    let deep = extreme_error(bit_depth, log2n, pattern);
                    assert!(
                        deep <= (eight + 1) * scale,
                        "{bit_depth}-bit size {} pattern {pattern}: error {deep}, 8-bit {eight}",
                        1 << log2n
                    );
                }
            }
        }
    }
    fn residual_4x4(seed: usize) -> Vec<i32> {
        (0..16)
            .map(|i| ((i * 7919 + seed * 104_729) % 511) as i32 - 255)
            .collect()
    }

    #[test]
    fn dst_matrix_is_the_dst_vii_definition() {
        for k in 0..4 {
            for j in 0..4 {
                let exact = 128.0 * 2.0 / 3.0
                    * (std::f64::consts::PI * (2 * k + 1) as f64 * (j + 1) as f64 / 9.0).sin();
                assert!(
                    (f64::from(DST4[k * 4 + j]) - exact).abs() < 1.0,
                    "row {k} column {j}: {} vs {exact}",
                    DST4[k * 4 + j]
                );
            }
        }
    }

    #[test]
    fn dst_forward_equals_matrix_product_and_round_trips() {
        for seed in 0..8 {
            let residual = residual_4x4(seed);
            let mut tmp = vec![0; 16];
            let mut expected = vec![0; 16];
            apply_columns(&DST4, &residual, &mut tmp, 4, 4, 1);
            transpose(&mut tmp, 4);
            apply_columns(&DST4, &tmp, &mut expected, 4, 4, 8);
            transpose(&mut expected, 4);
            let mut coeffs = vec![0; 16];
            forward(&residual, &mut coeffs, 2, TxType::Dst);
            assert_eq!(coeffs, expected, "seed {seed}");
            // Against the real-valued transform, scaled by 128/N = 32: the integer matrix is
            // within half a unit of it, so errors stay below 1 % of the largest coefficient.
            let basis = |k: usize, j: usize| {
                2.0 / 3.0 * (std::f64::consts::PI * (2 * k + 1) as f64 * (j + 1) as f64 / 9.0).sin()
            };
            let exact: Vec<f64> = (0..16)
                .map(|c| {
                    let (v, u) = (c / 4, c % 4);
                    (0..16)
                        .map(|i| basis(v, i / 4) * basis(u, i % 4) * f64::from(residual[i]))
                        .sum::<f64>()
                        * 32.0
                })
                .collect();
            let largest = exact.iter().fold(0f64, |m, e| m.max(e.abs()));
            for (&got, &want) in coeffs.iter().zip(&exact) {
                assert!(
                    (f64::from(got) - want).abs() < 0.01 * largest,
                    "{got} vs {want}"
                );
            }
            let mut back = vec![0; 16];
            inverse(&coeffs, &mut back, 2, TxType::Dst, 8);
            for (a, b) in residual.iter().zip(&back) {
                assert!((a - b).abs() <= 1, "seed {seed}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn transform_skip_round_trips_exactly() {
        for log2n in 2..=5u32 {
            let n = 1usize << log2n;
            let residual: Vec<i32> = (0..n * n)
                .map(|i| ((i * 7919) % 511) as i32 - 255)
                .collect();
            let mut coeffs = vec![0; n * n];
            forward(&residual, &mut coeffs, log2n, TxType::Skip);
            // Coefficients are the residual at the transforms' scale, 128/N.
            assert_eq!(coeffs[0], residual[0] * (128 >> log2n));
            let mut back = vec![0; n * n];
            inverse(&coeffs, &mut back, log2n, TxType::Skip, 8);
            assert_eq!(back, residual, "size {n}");
        }
    }

    #[test]
    fn block_transform_choice() {
        assert_eq!(block_transform(true, 2, true, false), TxType::Dst);
        assert_eq!(block_transform(false, 2, true, false), TxType::Dct);
        assert_eq!(block_transform(true, 3, true, false), TxType::Dct);
        assert_eq!(block_transform(true, 2, false, false), TxType::Dct);
        assert_eq!(block_transform(true, 2, true, true), TxType::Skip);
    }
}
