//! The reference deblocking filters: the sample arithmetic of one luma or chroma edge once the
//! loop filter has decided, per segment of four lines, which filter runs and how strongly.
//!
//! Samples are addressed as in the loop filter: `at` is the first sample on the q side of the
//! first line, `step` crosses the edge (q0 at `at`, p0 at `at - step`), `along` moves to the next
//! line.

use crate::picture::Sample;

/// How the four lines of one luma edge segment are filtered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LumaFilter {
    /// Left as they are.
    Skip,
    /// p2..q2 smoothed, each kept within ±2·tc of its value.
    Strong,
    /// p0 and q0 moved by a delta clipped to ±tc (a line whose delta reaches 10·tc is left
    /// alone), and p1 / q1 by a correction clipped to ±tc/2 where asked.
    Normal { p1: bool, q1: bool },
}

/// Filters the 8 lines of one luma edge, lines `4s..4s + 4` by `filters[s]`, within ±tc.
pub fn luma<T: Sample>(
    data: &mut [T],
    at: usize,
    (step, along): (isize, isize),
    filters: [LumaFilter; 2],
    tc: i32,
    max: i32,
) {
    for (segment, filter) in filters.into_iter().enumerate() {
        for line in 4 * segment as isize..4 * segment as isize + 4 {
            let idx = |k: isize| (at as isize + line * along + k * step) as usize;
            let at = |k: isize| data[idx(k)].to_i32();
            let [p3, p2, p1, p0, q0, q1, q2, q3] =
                [at(-4), at(-3), at(-2), at(-1), at(0), at(1), at(2), at(3)];
            match filter {
                LumaFilter::Skip => {}
                LumaFilter::Strong => {
                    let clip =
                        |v: i32, orig: i32| T::from_i32(v.clamp(orig - 2 * tc, orig + 2 * tc));
                    data[idx(-1)] = clip((p2 + 2 * p1 + 2 * p0 + 2 * q0 + q1 + 4) >> 3, p0);
                    data[idx(-2)] = clip((p2 + p1 + p0 + q0 + 2) >> 2, p1);
                    data[idx(-3)] = clip((2 * p3 + 3 * p2 + p1 + p0 + q0 + 4) >> 3, p2);
                    data[idx(0)] = clip((p1 + 2 * p0 + 2 * q0 + 2 * q1 + q2 + 4) >> 3, q0);
                    data[idx(1)] = clip((p0 + q0 + q1 + q2 + 2) >> 2, q1);
                    data[idx(2)] = clip((p0 + q0 + q1 + 3 * q2 + 2 * q3 + 4) >> 3, q2);
                }
                LumaFilter::Normal {
                    p1: filter_p1,
                    q1: filter_q1,
                } => {
                    let delta = (9 * (q0 - p0) - 3 * (q1 - p1) + 8) >> 4;
                    if delta.abs() >= tc * 10 {
                        continue;
                    }
                    let delta = delta.clamp(-tc, tc);
                    data[idx(-1)] = T::clip(p0 + delta, max);
                    data[idx(0)] = T::clip(q0 - delta, max);
                    let half = tc >> 1;
                    if filter_p1 {
                        let dp = ((((p2 + p0 + 1) >> 1) - p1 + delta) >> 1).clamp(-half, half);
                        data[idx(-2)] = T::clip(p1 + dp, max);
                    }
                    if filter_q1 {
                        let dq = ((((q2 + q0 + 1) >> 1) - q1 - delta) >> 1).clamp(-half, half);
                        data[idx(1)] = T::clip(q1 + dq, max);
                    }
                }
            }
        }
    }
}

/// Filters `lines` lines across one chroma edge: p0 and q0 moved by a delta clipped to ±tc.
pub fn chroma<T: Sample>(
    data: &mut [T],
    at: usize,
    (step, along): (isize, isize),
    lines: usize,
    tc: i32,
    max: i32,
) {
    for line in 0..lines as isize {
        let idx = |k: isize| (at as isize + line * along + k * step) as usize;
        let at = |k: isize| data[idx(k)].to_i32();
        let [p1, p0, q0, q1] = [at(-2), at(-1), at(0), at(1)];
        let delta = ((((q0 - p0) << 2) + p1 - q1 + 4) >> 3).clamp(-tc, tc);
        data[idx(-1)] = T::clip(p0 + delta, max);
        data[idx(0)] = T::clip(q0 - delta, max);
    }
}
