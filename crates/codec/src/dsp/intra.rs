//! The reference of intra prediction's angular blend.

use crate::picture::Sample;

/// One row of an angular prediction: `out[i] = ((32 - fraction)·src[i] + fraction·src[i + 1] +
/// 16) >> 5` over `out`, `src` one sample longer than `out` and `fraction` below 32.
pub fn blend_row<T: Sample>(src: &[T], fraction: u32, out: &mut [T]) {
    for (o, (a, b)) in out.iter_mut().zip(src.iter().zip(&src[1..])) {
        *o = T::from_u32(((32 - fraction) * a.to_u32() + fraction * b.to_u32() + 16) >> 5);
    }
}
