//! Motion-vector prediction from decoded neighbours: the predictor a coded vector difference is
//! relative to, and the merge candidate list (a neighbour's motion reused as is).

use super::Mv;
use crate::partition::UnitGrid;

/// One vector on one picture of the frame's reference list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Vector {
    pub ref_idx: u8,
    pub mv: Mv,
}

/// Motion of an inter block: one vector, or two whose predictions are averaged
/// (bi-prediction, in bi-predicted frames).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Motion {
    pub first: Vector,
    pub second: Option<Vector>,
}

impl Motion {
    pub const fn single(ref_idx: u8, mv: Mv) -> Motion {
        Motion {
            first: Vector { ref_idx, mv },
            second: None,
        }
    }

    /// The vectors, one or two.
    pub fn vectors(&self) -> impl Iterator<Item = Vector> + '_ {
        std::iter::once(self.first).chain(self.second)
    }
}

pub const MAX_MERGE_CANDIDATES: usize = 5;

/// Neighbour positions in 8x8 units around a coding unit at (cx, cy) of `size` units: left,
/// above, above-right, below-left, above-left.
fn neighbour_units(cx: usize, cy: usize, size: usize) -> [(isize, isize); 5] {
    let (x, y, s) = (cx as isize, cy as isize, size as isize);
    [
        (x - 1, y + s - 1),
        (x + s - 1, y - 1),
        (x + s, y - 1),
        (x - 1, y + s),
        (x - 1, y - 1),
    ]
}

fn inter_neighbour(
    grid: &UnitGrid,
    (ux, uy): (isize, isize),
    cx: usize,
    cy: usize,
) -> Option<Motion> {
    grid.neighbour(ux, uy, cx, cy)
        .filter(|info| !info.intra)
        .map(|info| info.motion)
}

// EVOLVE-BLOCK-START motion_vector_prediction
/// Merge candidates for the coding unit at (cx, cy) (units) of `size` units: distinct neighbour
/// motions in a fixed order, then (in bi-predicted frames) the zero vectors on the two nearest
/// references averaged, then zero vectors on each reference, `count` in all.
pub fn merge_candidates(
    grid: &UnitGrid,
    cx: usize,
    cy: usize,
    size: usize,
    count: usize,
    reference_count: usize,
    bi_predicted: bool,
) -> Vec<Motion> {
    let mut list: Vec<Motion> = Vec::with_capacity(count);
    for position in neighbour_units(cx, cy, size) {
        if list.len() >= count {
            break;
        }
        if let Some(motion) = inter_neighbour(grid, position, cx, cy)
            && !list.contains(&motion)
        {
            list.push(motion);
        }
    }
    if bi_predicted && reference_count >= 2 && list.len() < count {
        let zeros = Motion {
            first: Vector::default(),
            second: Some(Vector {
                ref_idx: 1,
                mv: Mv::ZERO,
            }),
        };
        if !list.contains(&zeros) {
            list.push(zeros);
        }
    }
    let mut ref_idx = 0;
    while list.len() < count {
        let zero = Motion::single((ref_idx % reference_count.max(1)) as u8, Mv::ZERO);
        ref_idx += 1;
        if !list.contains(&zero) || ref_idx > reference_count {
            list.push(zero);
        }
    }
    list
}

/// The vector a coded difference is relative to: the component-wise median of the left, above
/// and above-right (else above-left) neighbours' vectors (a neighbour's vector on the same
/// reference where it has one); a single neighbour on the same reference is taken as is.
pub fn predict_mv(grid: &UnitGrid, cx: usize, cy: usize, size: usize, ref_idx: u8) -> Mv {
    let units = neighbour_units(cx, cy, size);
    let on_reference = |motion: Option<Motion>| {
        motion.map(|m| {
            m.vectors()
                .find(|v| v.ref_idx == ref_idx)
                .unwrap_or(m.first)
        })
    };
    let left = on_reference(inter_neighbour(grid, units[0], cx, cy));
    let above = on_reference(inter_neighbour(grid, units[1], cx, cy));
    let corner = on_reference(
        inter_neighbour(grid, units[2], cx, cy).or_else(|| inter_neighbour(grid, units[4], cx, cy)),
    );
    let candidates = [left, above, corner];
    let same_ref: Vec<Mv> = candidates
        .iter()
        .flatten()
        .filter(|v| v.ref_idx == ref_idx)
        .map(|v| v.mv)
        .collect();
    if same_ref.len() == 1 {
        return same_ref[0];
    }
    let mvs = candidates.map(|c| c.map_or(Mv::ZERO, |v| v.mv));
    let median = |a: i32, b: i32, c: i32| a.max(b).min(a.min(b).max(c));
    Mv::new(
        median(mvs[0].x, mvs[1].x, mvs[2].x),
        median(mvs[0].y, mvs[1].y, mvs[2].y),
    )
}
// EVOLVE-BLOCK-END

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partition::UnitInfo;

    #[test]
    fn candidates_come_from_decoded_inter_neighbours_and_are_distinct() {
        let mut grid = UnitGrid::new(128, 128);
        let inter = |x, y| UnitInfo {
            cu_log2: 3,
            motion: Motion::single(0, Mv::new(x, y)),
            ..UnitInfo::default()
        };
        grid.fill(0, 0, 1, inter(4, 4));
        grid.fill(1, 0, 1, inter(4, 4));
        grid.fill(
            0,
            1,
            1,
            UnitInfo {
                intra: true,
                ..UnitInfo::default()
            },
        );
        // Coding unit at unit (1, 1): left is intra, above and above-left carry the same motion.
        let list = merge_candidates(&grid, 1, 1, 1, 3, 1, false);
        assert_eq!(list[0].first.mv, Mv::new(4, 4));
        assert_eq!(list[1].first.mv, Mv::ZERO);
        assert_eq!(list.len(), 3);
        assert_eq!(predict_mv(&grid, 1, 1, 1, 0), Mv::new(4, 4));
    }
}
