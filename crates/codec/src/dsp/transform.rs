//! Transform kernels in plain Rust. The 4×4 matrix product and the column pass of the inverse
//! (which the DST-VII uses) are written so that they vectorise across rows and compiled once for
//! the baseline and once for AVX2; the 2-D DCTs in `reference` define what the AVX2 kernels of
//! `x86_transform` must give. Integer arithmetic, so every build gives the same result.

/// Row-major N×N basis matrices for N = 4, 8, 16, 32 (index log2N - 2).
pub type Matrices = [Vec<i32>; 4];

macro_rules! transform_kernels {
    ($(#[$feature:meta])*) => {
        /// out[k] = Σ_j t[k][j] · input[j] over row vectors of `width` samples, for a 4×4 matrix.
        $(#[$feature])*
        #[inline]
        pub fn matrix_rows(t: &[i32], input: &[i32], out: &mut [i32], width: usize) {
            for k in 0..4 {
                let dst = &mut out[k * width..(k + 1) * width];
                dst.fill(0);
                for j in 0..4 {
                    axpy(dst, t[k * 4 + j], &input[j * width..(j + 1) * width]);
                }
            }
        }

        $(#[$feature])*
        #[inline]
        fn axpy(dst: &mut [i32], coef: i32, src: &[i32]) {
            for (d, &s) in dst.iter_mut().zip(src) {
                *d += coef * s;
            }
        }

        /// out[j][c] = clip(round(Σ_k t[k][j] · input[k][c] >> shift)), skipping rows of zeros.
        $(#[$feature])*
        pub fn columns_transposed(
            t: &[i32],
            input: &[i32],
            out: &mut [i32],
            n: usize,
            shift: u32,
            limit: i32,
        ) {
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
                *a = ((*a + round) >> shift).clamp(-limit, limit - 1);
            }
        }
    };
}

pub mod reference {
    use super::Matrices;

    transform_kernels!();

    /// out[k] = Σ_j T_n[k][j] · input[j] over row vectors of `width` samples (rows `n`), by
    /// even/odd decomposition: even outputs are the half-size transform of the folded sums, odd
    /// outputs come from the folded differences. Integer-exact, so it equals the matrix product;
    /// the row-vector form lets the compiler vectorise across the width.
    pub fn forward_rows(
        matrices: &Matrices,
        input: &[i32],
        out: &mut [i32],
        n: usize,
        width: usize,
        scratch: &mut [i32],
    ) {
        let t = &matrices[n.trailing_zeros() as usize - 2];
        if n == 4 {
            matrix_rows(t, input, out, width);
            return;
        }
        let half = n / 2;
        let len = half * width;
        let (even, rest) = scratch.split_at_mut(len);
        let (odd, rest) = rest.split_at_mut(len);
        let (even_out, rest) = rest.split_at_mut(len);
        for i in 0..half {
            let top = &input[i * width..(i + 1) * width];
            let bottom = &input[(n - 1 - i) * width..(n - i) * width];
            for (((e, o), &a), &b) in even[i * width..(i + 1) * width]
                .iter_mut()
                .zip(&mut odd[i * width..(i + 1) * width])
                .zip(top)
                .zip(bottom)
            {
                *e = a + b;
                *o = a - b;
            }
        }
        forward_rows(matrices, even, even_out, half, width, rest);
        for k in 0..half {
            out[2 * k * width..(2 * k + 1) * width]
                .copy_from_slice(&even_out[k * width..(k + 1) * width]);
            let dst = &mut out[(2 * k + 1) * width..(2 * k + 2) * width];
            dst.fill(0);
            for i in 0..half {
                axpy(
                    dst,
                    t[(2 * k + 1) * n + i],
                    &odd[i * width..(i + 1) * width],
                );
            }
        }
    }

    /// The 2-D forward DCT of an N×N residual (`LEN` = N², `SCRATCH` = 3·N²): columns,
    /// rounding by `log2(N) - 1`, rows, rounding by `log2(N) + 6`, coefficients row-major with
    /// the vertical frequency as the row.
    pub fn forward_dct<const N: usize, const LEN: usize, const SCRATCH: usize>(
        matrices: &Matrices,
        residual: &[i32],
        coeffs: &mut [i32],
    ) {
        let log2n = N.trailing_zeros();
        let (shift1, shift2) = (log2n - 1, log2n + 6);
        let (mut tmp, mut out, mut scratch) = ([0i32; LEN], [0i32; LEN], [0i32; SCRATCH]);
        forward_rows(matrices, &residual[..LEN], &mut tmp, N, N, &mut scratch);
        for v in tmp.iter_mut() {
            *v = (*v + (1 << (shift1 - 1))) >> shift1;
        }
        transpose(&mut tmp, N);
        forward_rows(matrices, &tmp, &mut out, N, N, &mut scratch);
        for (c, &v) in coeffs[..LEN].iter_mut().zip(&out) {
            *c = (v + (1 << (shift2 - 1))) >> shift2;
        }
        transpose(coeffs, N);
    }

    /// The 2-D inverse DCT of N×N coefficients (`LEN` = N²): columns, rounding by 7, rows,
    /// rounding by 12, each pass clipped to [-limit, limit - 1].
    pub fn inverse_dct<const N: usize, const LEN: usize>(
        matrices: &Matrices,
        coeffs: &[i32],
        residual: &mut [i32],
        limit: i32,
    ) {
        let t = &matrices[N.trailing_zeros() as usize - 2];
        let mut tmp = [0i32; LEN];
        columns_transposed(t, coeffs, &mut tmp, N, 7, limit);
        transpose(&mut tmp, N);
        columns_transposed(t, &tmp, residual, N, 12, limit);
        transpose(residual, N);
    }

    /// Transposes the N×N block at the start of `block` in place.
    pub fn transpose(block: &mut [i32], n: usize) {
        for y in 0..n {
            for x in y + 1..n {
                block.swap(y * n + x, x * n + y);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
pub mod avx2 {
    transform_kernels!(#[target_feature(enable = "avx2")]);
}
