//! Integer DCT-like transforms of 4x4 to 32x32, separable, with fixed-point scaling chosen so
//! intermediate values fit 16 bits for 8-bit video.

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

/// Row-major N×N basis matrices for N = 4, 8, 16, 32 (index log2N - 2).
fn matrices() -> &'static [Vec<i32>; 4] {
    static MATRICES: OnceLock<[Vec<i32>; 4]> = OnceLock::new();
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

/// out[k][c] = round(Σ_j t[k][j] · input[j][c] >> shift), rows of `input` beyond `rows` are zero.
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

/// out[j][c] = clip16(round(Σ_k t[k][j] · input[k][c] >> shift)), skipping rows of zeros.
fn apply_columns_transposed(t: &[i32], input: &[i32], out: &mut [i32], n: usize, shift: u32) {
    let round = 1 << (shift - 1);
    out[..n * n].fill(0);
    for k in 0..n {
        let src = &input[k * n..(k + 1) * n];
        if src.iter().all(|&v| v == 0) {
            continue;
        }
        for j in 0..n {
            let coef = t[k * n + j];
            let acc = &mut out[j * n..(j + 1) * n];
            for (a, &s) in acc.iter_mut().zip(src) {
                *a += coef * s;
            }
        }
    }
    for a in out[..n * n].iter_mut() {
        *a = ((*a + round) >> shift).clamp(-32768, 32767);
    }
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
pub fn forward(residual: &[i32], coeffs: &mut [i32], log2n: u32) {
    let n = 1 << log2n;
    let t = &matrices()[log2n as usize - 2];
    let mut tmp = [0i32; 32 * 32];
    apply_columns(t, residual, &mut tmp, n, n, log2n - 1);
    transpose(&mut tmp, n);
    apply_columns(t, &tmp, coeffs, n, n, log2n + 6);
    transpose(coeffs, n);
}
// EVOLVE-BLOCK-END

/// Inverse transform: coefficients back to an N×N residual. Exactly the same integer arithmetic
/// runs in the encoder's reconstruction and in the decoder.
pub fn inverse(coeffs: &[i32], residual: &mut [i32], log2n: u32) {
    let n = 1 << log2n;
    let t = &matrices()[log2n as usize - 2];
    let mut tmp = [0i32; 32 * 32];
    apply_columns_transposed(t, coeffs, &mut tmp, n, 7);
    transpose(&mut tmp, n);
    apply_columns_transposed(t, &tmp, residual, n, 12);
    transpose(residual, n);
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
            forward(&residual, &mut coeffs, log2n);
            let mut back = vec![0; n * n];
            inverse(&coeffs, &mut back, log2n);
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
    fn dc_only_block_is_flat() {
        for log2n in 2..=5 {
            let n = 1usize << log2n;
            let mut coeffs = vec![0; n * n];
            coeffs[0] = 64 * 4;
            let mut back = vec![0; n * n];
            inverse(&coeffs, &mut back, log2n);
            assert!(back.iter().all(|&v| v == back[0]), "size {n}");
            assert!(back[0] != 0);
        }
    }
}
