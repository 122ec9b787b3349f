//! The reference SAO row kernels: the edge and band filters of one row segment, and the
//! encoder's per-category edge statistics.

use crate::picture::Sample;
use std::ops::Range;

/// Edge category 0 (none) to 4 of sample `c` between neighbours `a` and `b`.
#[inline]
pub fn edge_category(c: i32, a: i32, b: i32) -> usize {
    const CATEGORY: [usize; 5] = [1, 2, 0, 3, 4];
    CATEGORY[((c - a).signum() + (c - b).signum() + 2) as usize]
}

/// `out[x] = clip(cur[x] + table[category(cur[x], ra[x - dx], rb[x + dx])])` for `x` in `span`.
pub fn edge_row<T: Sample>(
    (ra, cur, rb): (&[T], &[T], &[T]),
    dx: isize,
    span: Range<usize>,
    table: &[i32; 5],
    max: i32,
    out: &mut [T],
) {
    for x in span {
        let c = cur[x].to_i32();
        let a = ra[x.wrapping_add_signed(-dx)].to_i32();
        let b = rb[x.wrapping_add_signed(dx)].to_i32();
        out[x] = T::clip(c + table[edge_category(c, a, b)], max);
    }
}

/// `out[x] = clip(cur[x] + table[cur[x] >> band_shift])` for `x` in `span`.
pub fn band_row<T: Sample>(
    cur: &[T],
    span: Range<usize>,
    table: &[i32; 32],
    band_shift: u32,
    max: i32,
    out: &mut [T],
) {
    for x in span {
        let c = cur[x].to_i32();
        out[x] = T::clip(c + table[(cur[x].to_u32() >> band_shift) as usize], max);
    }
}

/// Per edge category 1 to 4 of the samples of `span`: Σ(orig - cur) and their number (category
/// 0, no edge, is not returned).
pub fn edge_stats<T: Sample>(
    (ra, cur, rb): (&[T], &[T], &[T]),
    orig: &[T],
    dx: isize,
    span: Range<usize>,
) -> [(i32, i32); 4] {
    let mut acc = [(0i32, 0i32); 5];
    for x in span {
        let c = cur[x].to_i32();
        let a = ra[x.wrapping_add_signed(-dx)].to_i32();
        let b = rb[x.wrapping_add_signed(dx)].to_i32();
        let t = &mut acc[edge_category(c, a, b)];
        t.0 += orig[x].to_i32() - c;
        t.1 += 1;
    }
    [acc[1], acc[2], acc[3], acc[4]]
}
