//! The reference SATD.

use crate::picture::Sample;

/// Sum of absolute 4x4 Hadamard-transformed differences (halved), a cheap proxy for the rate of
/// a coded residual. `w` and `h` are multiples of 4.
pub fn satd<T: Sample>(
    a: &[T],
    a_stride: usize,
    b: &[T],
    b_stride: usize,
    w: usize,
    h: usize,
) -> u32 {
    let mut total = 0u32;
    // Vertical butterflies across a strip of 4 rows (vectorisable), then horizontal ones in
    // groups of 4 columns.
    let mut rows = [[0i32; 64]; 4];
    for by in (0..h).step_by(4) {
        for (y, row) in rows.iter_mut().enumerate() {
            let ra = &a[(by + y) * a_stride..(by + y) * a_stride + w];
            let rb = &b[(by + y) * b_stride..(by + y) * b_stride + w];
            for ((d, &p), &q) in row[..w].iter_mut().zip(ra).zip(rb) {
                *d = p.to_i32() - q.to_i32();
            }
        }
        let [r0, r1, r2, r3] = &mut rows;
        for x in 0..w {
            let (s0, s1) = (r0[x] + r1[x], r2[x] + r3[x]);
            let (d0, d1) = (r0[x] - r1[x], r2[x] - r3[x]);
            r0[x] = s0 + s1;
            r1[x] = s0 - s1;
            r2[x] = d0 + d1;
            r3[x] = d0 - d1;
        }
        for row in &rows {
            for group in row[..w].chunks_exact(4) {
                let (s0, s1) = (group[0] + group[1], group[2] + group[3]);
                let (d0, d1) = (group[0] - group[1], group[2] - group[3]);
                total +=
                    ((s0 + s1).abs() + (s0 - s1).abs() + (d0 + d1).abs() + (d0 - d1).abs()) as u32;
            }
        }
    }
    total / 2
}

/// [`satd`] of an 8x8 block.
pub fn satd_8x8<T: Sample>(a: &[T], a_stride: usize, b: &[T], b_stride: usize) -> u32 {
    satd(a, a_stride, b, b_stride, 8, 8)
}
