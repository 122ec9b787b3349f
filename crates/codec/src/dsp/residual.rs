//! The reference of adding a decoded residual to a prediction.

use crate::picture::Sample;

/// `out[i] = clip(prediction[i] + residual[i])` to `0..=max` over `out`, which is no longer than
/// either input; residuals (an inverse transform's) lie far enough inside 32 bits that the sum
/// does not overflow.
pub fn add_clipped<T: Sample>(prediction: &[T], residual: &[i32], max: i32, out: &mut [T]) {
    for ((o, &p), &r) in out.iter_mut().zip(prediction).zip(residual) {
        *o = T::clip(p.to_i32() + r, max);
    }
}
