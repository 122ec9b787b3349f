//! The reference SSE.

use crate::picture::Sample;

/// Sum of squared differences of a `w`×`h` block.
pub fn sse<T: Sample>(
    a: &[T],
    a_stride: usize,
    b: &[T],
    b_stride: usize,
    w: usize,
    h: usize,
) -> u64 {
    let mut total = 0u64;
    for y in 0..h {
        let ra = &a[y * a_stride..y * a_stride + w];
        let rb = &b[y * b_stride..y * b_stride + w];
        total += u64::from(
            ra.iter()
                .zip(rb)
                .map(|(&p, &q)| {
                    let d = p.to_i32() - q.to_i32();
                    (d * d) as u32
                })
                .sum::<u32>(),
        );
    }
    total
}
