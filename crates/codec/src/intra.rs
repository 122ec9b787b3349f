//! Intra prediction from the decoded samples above and to the left: planar, DC and 33 angular
//! directions (pure horizontal and vertical among them).

use crate::partition::{UNIT_LOG2, UnitGrid};
use crate::picture::{PaddedPlane, Sample, mid_grey};

pub const PLANAR: u8 = 0;
pub const DC: u8 = 1;
pub const HORIZONTAL: u8 = 10;
pub const VERTICAL: u8 = 26;
pub const MODE_COUNT: u8 = 35;

/// Displacement per row (1/32 sample) of angular modes 2..=34.
const ANGLES: [i32; 33] = [
    32, 26, 21, 17, 13, 9, 5, 2, 0, -2, -5, -9, -13, -17, -21, -26, -32, -26, -21, -17, -13, -9,
    -5, -2, 0, 2, 5, 9, 13, 17, 21, 26, 32,
];

const MAX_N: usize = 32;
const LINE_LEN: usize = 4 * MAX_N + 1;

/// The reference samples of one block: from the bottom of the left column (index 0) up to the
/// corner (index 2n) and along the top row to the right (index 4n), unavailable ones
/// substituted; also a [1 2 1] smoothed copy.
pub struct Edges<T: Sample> {
    n: usize,
    raw: [T; LINE_LEN],
    smooth: [T; LINE_LEN],
}

impl<T: Sample> Edges<T> {
    /// Collects the edges of the `n`×`n` block at (x, y) of `plane`. `subsampling` is 0 for luma
    /// and 1 for 4:2:0 chroma; (cu_ux, cu_uy) is the coding unit's top-left 8x8 luma unit.
    /// With no neighbour available the edges are mid-grey of the plane's depth.
    pub fn gather(
        plane: &PaddedPlane<T>,
        grid: &UnitGrid,
        (x, y, n): (usize, usize, usize),
        subsampling: u32,
        (cu_ux, cu_uy): (usize, usize),
    ) -> Edges<T> {
        let unit_log2 = UNIT_LOG2 - subsampling;
        let chunk = (1usize << unit_log2).min(n);
        let available =
            |px: isize, py: isize| grid.available(px >> unit_log2, py >> unit_log2, cu_ux, cu_uy);
        let mut raw = [T::default(); LINE_LEN];
        let mut known = [false; LINE_LEN];
        let (xi, yi) = (x as isize, y as isize);
        // Left column, bottom to top.
        for start in (0..2 * n).step_by(chunk) {
            if available(xi - 1, yi + start as isize) {
                for i in start..start + chunk {
                    raw[2 * n - 1 - i] = plane.at(x - 1, y + i);
                    known[2 * n - 1 - i] = true;
                }
            }
        }
        if available(xi - 1, yi - 1) {
            raw[2 * n] = plane.at(x - 1, y - 1);
            known[2 * n] = true;
        }
        for start in (0..2 * n).step_by(chunk) {
            if available(xi + start as isize, yi - 1) {
                let row = plane.row(x + start, y - 1, chunk);
                raw[2 * n + 1 + start..2 * n + 1 + start + chunk].copy_from_slice(row);
                known[2 * n + 1 + start..2 * n + 1 + start + chunk].fill(true);
            }
        }
        let len = 4 * n + 1;
        match known[..len].iter().position(|&k| k) {
            None => raw[..len].fill(T::from_u32(mid_grey(plane.bit_depth))),
            Some(first) => {
                let first_value = raw[first];
                raw[..first].fill(first_value);
                for i in first + 1..len {
                    if !known[i] {
                        raw[i] = raw[i - 1];
                    }
                }
            }
        }
        let mut smooth = raw;
        for i in 1..len - 1 {
            smooth[i] = T::from_u32(
                (raw[i - 1].to_u32() + 2 * raw[i].to_u32() + raw[i + 1].to_u32() + 2) >> 2,
            );
        }
        Edges { n, raw, smooth }
    }
}

// EVOLVE-BLOCK-START intra_prediction
/// Whether the smoothed edges serve `mode` for a luma block of side n.
fn use_smoothed(mode: u8, n: usize) -> bool {
    if mode == DC || n < 8 {
        return false;
    }
    let distance = (i32::from(mode) - i32::from(VERTICAL))
        .abs()
        .min((i32::from(mode) - i32::from(HORIZONTAL)).abs());
    let threshold = match n {
        8 => 7,
        16 => 1,
        _ => 0,
    };
    distance > threshold
}

/// Predicts an n×n block (tight rows into `out`) with `mode`; `luma` enables edge smoothing.
pub fn predict<T: Sample>(edges: &Edges<T>, mode: u8, luma: bool, out: &mut [T]) {
    let n = edges.n;
    let line = if luma && use_smoothed(mode, n) {
        &edges.smooth
    } else {
        &edges.raw
    };
    let left = |i: usize| line[2 * n - 1 - i].to_u32();
    let top = |i: usize| line[2 * n + 1 + i].to_u32();
    match mode {
        PLANAR => {
            let log2n = n.trailing_zeros();
            let (top_right, bottom_left) = (top(n), left(n));
            // The top row gathered once, so that each row is computed whole (which vectorises).
            let mut top_row = [0u32; MAX_N];
            for (x, t) in top_row[..n].iter_mut().enumerate() {
                *t = top(x);
            }
            for (y, dst) in out[..n * n].chunks_exact_mut(n).enumerate() {
                let (l, above, below) = (left(y), (n - 1 - y) as u32, (y + 1) as u32);
                for (x, (d, &t)) in dst.iter_mut().zip(&top_row[..n]).enumerate() {
                    let h = (n - 1 - x) as u32 * l + (x + 1) as u32 * top_right;
                    let v = above * t + below * bottom_left;
                    *d = T::from_u32((h + v + n as u32) >> (log2n + 1));
                }
            }
        }
        DC => {
            let sum: u32 = (0..n).map(|i| left(i) + top(i)).sum();
            let dc = T::from_u32((sum + n as u32) / (2 * n as u32));
            out[..n * n].fill(dc);
        }
        _ => predict_angular(line, n, mode, out),
    }
}
// EVOLVE-BLOCK-END

fn predict_angular<T: Sample>(line: &[T; LINE_LEN], n: usize, mode: u8, out: &mut [T]) {
    let vertical = mode >= 18;
    let angle = ANGLES[usize::from(mode) - 2];
    // Main reference at offset `n` in `reference`: index n is the corner, n + 1 + i the i-th
    // sample along the main edge; negative offsets are projected from the side edge.
    let mut reference = [T::default(); 3 * MAX_N + 1];
    let corner = line[2 * n];
    let main = |i: usize| {
        if vertical {
            line[2 * n + 1 + i]
        } else {
            line[2 * n - 1 - i]
        }
    };
    let side = |i: usize| {
        if vertical {
            line[2 * n - 1 - i]
        } else {
            line[2 * n + 1 + i]
        }
    };
    reference[n] = corner;
    for i in 0..2 * n {
        reference[n + 1 + i] = main(i);
    }
    let last = (n as i32 * angle) >> 5;
    if last < -1 {
        let inverse = -((8192 * 2 / -angle + 1) / 2);
        for k in (last..=-1).rev() {
            let j = ((k * inverse + 128) >> 8) - 1;
            reference[(n as i32 + k) as usize] = if j < 0 { corner } else { side(j as usize) };
        }
    }
    // Each row of the block along the main direction is a 2-tap blend of the reference at one
    // offset, computed whole by the DSP kernel; horizontal modes are predicted transposed, then
    // turned.
    for (row, dst) in out[..n * n].chunks_exact_mut(n).enumerate() {
        let pos = (row as i32 + 1) * angle;
        let start = (n as i32 + 1 + (pos >> 5)) as usize;
        let fraction = (pos & 31) as u32;
        if fraction == 0 {
            dst.copy_from_slice(&reference[start..start + n]);
        } else {
            T::kernels().blend_row(&reference[start..start + n + 1], fraction, dst);
        }
    }
    if !vertical {
        // Turned through a copy, column by column: swapping in place cost a bounds-checked
        // load and store per sample.
        let mut turned = [T::default(); MAX_N * MAX_N];
        let turned = &mut turned[..n * n];
        turned.copy_from_slice(&out[..n * n]);
        for (y, row) in out[..n * n].chunks_exact_mut(n).enumerate() {
            for (o, &t) in row.iter_mut().zip(turned[y..].iter().step_by(n)) {
                *o = t;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edges_from(left: &[u8], corner: u8, top: &[u8]) -> Edges<u8> {
        let n = top.len() / 2;
        let mut raw = [0u8; LINE_LEN];
        for (i, &v) in left.iter().enumerate() {
            raw[2 * n - 1 - i] = v;
        }
        raw[2 * n] = corner;
        raw[2 * n + 1..4 * n + 1].copy_from_slice(top);
        Edges {
            n,
            raw,
            smooth: raw,
        }
    }

    #[test]
    fn pure_directions_copy_edges() {
        let left: Vec<u8> = (0..16).map(|i| 10 + i * 3).collect();
        let top: Vec<u8> = (0..16).map(|i| 100 + i * 5).collect();
        let edges = edges_from(&left, 7, &top);
        let mut out = [0u8; 64];
        predict(&edges, VERTICAL, false, &mut out);
        assert!((0..8).all(|y| out[y * 8..y * 8 + 8] == top[..8]));
        predict(&edges, HORIZONTAL, false, &mut out);
        assert!((0..8).all(|y| out[y * 8..y * 8 + 8].iter().all(|&v| v == left[y])));
        predict(&edges, DC, false, &mut out);
        let expected = (left[..8]
            .iter()
            .chain(&top[..8])
            .map(|&v| u32::from(v))
            .sum::<u32>()
            + 8)
            / 16;
        assert!(out.iter().all(|&v| u32::from(v) == expected));
        // Mode 34 runs down-left at 45 degrees: row y starts at top[y + 1].
        predict(&edges, 34, false, &mut out);
        assert!((0..8).all(|y| out[y * 8] == top[y + 1]));
        // Mode 18 runs down-right: the diagonal repeats the corner.
        predict(&edges, 18, false, &mut out);
        assert!((0..8).all(|i| out[i * 8 + i] == 7));
    }

    #[test]
    fn flat_edges_predict_flat_blocks_in_every_mode() {
        let edges = edges_from(&[90; 64], 90, &[90; 64]);
        let mut out = [0u8; 32 * 32];
        for mode in 0..MODE_COUNT {
            predict(&edges, mode, true, &mut out);
            assert!(out.iter().all(|&v| v == 90), "mode {mode}");
        }
    }
}
