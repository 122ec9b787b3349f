//! The reference SAD.

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
    let mut total = 0u32;
    for y in 0..h {
        let ra = &a[y * a_stride..y * a_stride + w];
        let rb = &b[y * b_stride..y * b_stride + w];
        total += ra
            .iter()
            .zip(rb)
            .map(|(&p, &q)| p.sample_diff(q))
            .sum::<u32>();
    }
    total
}
