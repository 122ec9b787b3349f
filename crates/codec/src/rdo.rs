//! Distortion measures and the Lagrangian trade-off J = D + λ·R used by every decision.

use crate::entropy::COST_SHIFT;
use crate::picture::Sample;

/// Sum of absolute differences of a `w`×`h` block.
pub fn sad<T: Sample>(
    a: &[T],
    a_stride: usize,
    b: &[T],
    b_stride: usize,
    w: usize,
    h: usize,
) -> u32 {
    T::kernels().sad(a, a_stride, b, b_stride, w, h)
}

/// Sum of squared differences of a `w`×`h` block (`w` and `h` at most 64).
pub fn sse<T: Sample>(
    a: &[T],
    a_stride: usize,
    b: &[T],
    b_stride: usize,
    w: usize,
    h: usize,
) -> u64 {
    T::kernels().sse(a, a_stride, b, b_stride, w, h)
}

/// Sum of absolute 4x4 Hadamard-transformed differences (halved), a cheap proxy for the rate of
/// a coded residual. `w` and `h` are multiples of 4, `w` at most 64.
#[inline]
pub fn satd<T: Sample>(
    a: &[T],
    a_stride: usize,
    b: &[T],
    b_stride: usize,
    w: usize,
    h: usize,
) -> u32 {
    T::kernels().satd(a, a_stride, b, b_stride, w, h)
}

// EVOLVE-BLOCK-START lambda
/// Lagrange multiplier for squared-error distortion at `qp`, scaled by the genome's factor.
pub fn lambda(qp: u8, scale: f64) -> f64 {
    0.57 * 2f64.powf((f64::from(qp) - 12.0) / 3.0) * scale
}
// EVOLVE-BLOCK-END

/// A rate-distortion cost: distortion plus λ times a rate counted in 1/256 bit.
#[derive(Clone, Copy, Debug)]
pub struct RdCost {
    /// λ in fixed point: cost units per 1/256 bit, times 2^16.
    lambda_fixed: u64,
}

impl RdCost {
    pub fn new(lambda: f64) -> Self {
        RdCost {
            lambda_fixed: (lambda * 65536.0 / f64::from(1u32 << COST_SHIFT)).max(1.0) as u64,
        }
    }

    /// J = D + λ·R with R in 1/256 bit.
    #[inline]
    pub fn cost(&self, distortion: u64, rate: u64) -> u64 {
        distortion.saturating_add((rate * self.lambda_fixed) >> 16)
    }

    /// √λ per 1/256 bit in 1/256 units, for SAD-domain decisions such as motion search.
    pub fn lambda_sad(lambda: f64) -> u64 {
        (lambda.sqrt() * 256.0) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distortions_of_known_blocks() {
        let a = [10u8; 16];
        let mut b = [10u8; 16];
        assert_eq!(satd(&a, 4, &b, 4, 4, 4), 0);
        b[5] = 14;
        assert_eq!(sad(&a, 4, &b, 4, 4, 4), 4);
        assert_eq!(sse(&a, 4, &b, 4, 4, 4), 16);
        // One difference of 4 spreads over all 16 Hadamard coefficients: 16 · 4 / 2.
        assert_eq!(satd(&a, 4, &b, 4, 4, 4), 32);
    }

    #[test]
    fn lambda_grows_with_qp() {
        assert!(lambda(37, 1.0) > 4.0 * lambda(31, 1.0) * 0.99);
        let rd = RdCost::new(10.0);
        assert_eq!(rd.cost(100, 256), 110);
    }
}
