//! Motion-vector prediction from decoded motion: the predictor a coded vector difference is
//! relative to, and the merge candidate list (motion reused as is). Candidates come from the
//! spatial neighbours of the coding unit, from the co-located unit of a reference picture's
//! stored motion field (scaled by the ratio of display-index distances, as HEVC's temporal
//! candidates), and in bi-predicted frames from pairs of earlier candidates' vectors.

use super::{Mv, clamp_mv};
use crate::partition::{SB_LOG2, UNIT_LOG2, UnitGrid};

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

/// A vector of a stored motion field, with the display index of the picture it points into
/// (reference indices mean nothing outside their own frame).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FieldVector {
    mv: Mv,
    target: u64,
}

/// The motion of one 8x8 unit of a stored picture: empty for intra units.
type FieldUnit = [Option<FieldVector>; 2];

/// The motion a picture was coded with, kept with it while it serves as a reference: its
/// display index and, per 8x8 unit, its vectors.
#[derive(Clone, Debug)]
pub struct MotionField {
    pub poc: u64,
    cols: usize,
    rows: usize,
    units: Vec<FieldUnit>,
    /// Some unit is inter: only such a field can give temporal candidates.
    inter: bool,
}

impl MotionField {
    /// The field of the picture at `poc` whose coding units `grid` records, coded from the
    /// references at `reference_pocs` (in list order).
    pub fn new(poc: u64, grid: &UnitGrid, reference_pocs: &[u64]) -> Self {
        Self::new_in(poc, grid, reference_pocs, None)
    }

    /// A field of no units with room for those of `grid`, which [`MotionField::new_in`] fills
    /// without allocating: the memory is taken here and first touched there.
    pub fn with_room_for(grid: &UnitGrid) -> Self {
        MotionField {
            poc: 0,
            cols: 0,
            rows: 0,
            units: Vec::with_capacity(grid.units.len()),
            inter: false,
        }
    }

    /// [`MotionField::new`] written into the memory of `spare`, a field no longer needed: a
    /// fresh field of a large picture costs page faults.
    pub fn new_in(
        poc: u64,
        grid: &UnitGrid,
        reference_pocs: &[u64],
        spare: Option<MotionField>,
    ) -> Self {
        let resolve = |v: Vector| {
            reference_pocs
                .get(usize::from(v.ref_idx))
                .map(|&target| FieldVector { mv: v.mv, target })
        };
        let mut units = spare.map(|field| field.units).unwrap_or_default();
        units.clear();
        units.extend(grid.units.iter().map(|info| {
            if info.intra {
                [None, None]
            } else {
                [
                    resolve(info.motion.first),
                    info.motion.second.and_then(resolve),
                ]
            }
        }));
        let inter = units.iter().any(|u| u[0].is_some());
        MotionField {
            poc,
            cols: grid.cols,
            rows: grid.rows,
            units,
            inter,
        }
    }

    /// The unit at (ux, uy) if it lies in the picture and is inter.
    fn inter_unit(&self, ux: usize, uy: usize) -> Option<&FieldUnit> {
        (ux < self.cols && uy < self.rows)
            .then(|| &self.units[uy * self.cols + ux])
            .filter(|u| u[0].is_some())
    }
}

/// Largest distance in display indices the scaling takes, as HEVC's 8-bit POC differences.
const MAX_POC_DISTANCE: i64 = 128;
/// Vector components a scaled vector is clamped to (HEVC's 16-bit range).
const MAX_SCALED_MV: i64 = 1 << 15;

/// `mv`, which spans `td` display indices (nonzero), scaled to span `tb`: HEVC's fixed-point
/// rule, so encoder and decoder agree on every platform.
pub fn scale_mv(mv: Mv, tb: i64, td: i64) -> Mv {
    if tb == td {
        return mv;
    }
    let tb = tb.clamp(-MAX_POC_DISTANCE, MAX_POC_DISTANCE - 1);
    let td = td.clamp(-MAX_POC_DISTANCE, MAX_POC_DISTANCE - 1);
    let tx = (16384 + td.abs() / 2) / td;
    let factor = ((tb * tx + 32) >> 6).clamp(-4096, 4095);
    let scale = |v: i32| {
        let product = factor * i64::from(v);
        let magnitude = (product.abs() + 127) >> 8;
        (product.signum() * magnitude).clamp(-MAX_SCALED_MV, MAX_SCALED_MV - 1) as i32
    };
    Mv::new(scale(mv.x), scale(mv.y))
}

/// What motion-vector prediction knows of a frame beyond its decoded neighbours: the display
/// indices of the frame and its references, and the co-located picture's motion field.
pub struct FrameMotion<'a> {
    poc: u64,
    reference_pocs: Vec<u64>,
    bi_predicted: bool,
    /// Temporal candidates come from this field (none when the sequence does not use them or
    /// no reference has inter motion).
    colocated: Option<&'a MotionField>,
    /// Merge lists add combined and zero bi-predicted candidates.
    bi_merge: bool,
}

impl<'a> FrameMotion<'a> {
    /// The frame at `poc` predicting from the pictures whose fields are `fields` (in list
    /// order). The co-located picture is derived, not signalled: the reference nearest in
    /// display order that has inter motion, the later one of two as near (its vectors cross
    /// the current picture in a hierarchical mini-GOP).
    pub fn new(
        poc: u64,
        bi_predicted: bool,
        fields: &[&'a MotionField],
        temporal: bool,
        bi_merge: bool,
    ) -> Self {
        let colocated = fields
            .iter()
            .filter(|f| temporal && f.inter)
            .min_by_key(|f| (f.poc.abs_diff(poc), f.poc < poc))
            .copied();
        FrameMotion {
            poc,
            reference_pocs: fields.iter().map(|f| f.poc).collect(),
            bi_predicted,
            colocated,
            bi_merge,
        }
    }

    /// Display indices of the references, in list order.
    pub fn reference_pocs(&self) -> &[u64] {
        &self.reference_pocs
    }

    fn reference_count(&self) -> usize {
        self.reference_pocs.len()
    }

    /// The unit of the co-located field that gives the temporal candidate of the coding unit
    /// at (cx, cy) of `size` units: the one below and right of it if inter and in the same
    /// superblock row (HEVC's bound on the field's reach), else the one at its centre.
    fn colocated_unit(&self, cx: usize, cy: usize, size: usize) -> Option<&'a FieldUnit> {
        let field = self.colocated?;
        let (bx, by) = (cx + size, cy + size);
        let sb_row = |uy: usize| uy >> (SB_LOG2 - UNIT_LOG2);
        let below_right = (sb_row(by) == sb_row(cy))
            .then(|| field.inter_unit(bx, by))
            .flatten();
        below_right.or_else(|| field.inter_unit(cx + size / 2, cy + size / 2))
    }

    /// The co-located motion scaled to the reference `ref_idx` and clamped to the vectors the
    /// stream allows for the unit. Of a unit's two vectors it takes the one whose trajectory
    /// crosses the current picture, else the first.
    fn scaled(
        &self,
        unit: &FieldUnit,
        ref_idx: u8,
        grid: &UnitGrid,
        (cx, cy, size): (usize, usize, usize),
    ) -> Option<Mv> {
        let col = self.colocated?.poc;
        let target = *self.reference_pocs.get(usize::from(ref_idx))?;
        let crosses = |v: &FieldVector| (v.target < self.poc) != (col < self.poc);
        let vector = unit
            .iter()
            .flatten()
            .find(|v| crosses(v))
            .or(unit[0].as_ref())?;
        let td = col as i64 - vector.target as i64;
        // A picture never points into itself; the guard keeps the scaling from dividing by 0.
        if td == 0 {
            return None;
        }
        let mv = scale_mv(vector.mv, self.poc as i64 - target as i64, td);
        let (x, y, n) = (cx << UNIT_LOG2, cy << UNIT_LOG2, size << UNIT_LOG2);
        let coded = (grid.cols << UNIT_LOG2, grid.rows << UNIT_LOG2);
        Some(clamp_mv(x, y, n, n, mv, coded))
    }

    /// The temporal candidate of a vector on `ref_idx`, for motion search and prediction.
    pub fn temporal_mv(
        &self,
        grid: &UnitGrid,
        cx: usize,
        cy: usize,
        size: usize,
        ref_idx: u8,
    ) -> Option<Mv> {
        let unit = self.colocated_unit(cx, cy, size)?;
        self.scaled(unit, ref_idx, grid, (cx, cy, size))
    }

    /// The temporal merge candidate: the co-located motion scaled to the first reference, and
    /// in bi-predicted frames also to the second (HEVC's reference index 0 of each list).
    fn temporal_motion(
        &self,
        grid: &UnitGrid,
        cx: usize,
        cy: usize,
        size: usize,
    ) -> Option<Motion> {
        let unit = self.colocated_unit(cx, cy, size)?;
        let at = (cx, cy, size);
        let vector = |ref_idx: u8| {
            self.scaled(unit, ref_idx, grid, at)
                .map(|mv| Vector { ref_idx, mv })
        };
        let first = vector(0)?;
        let second = if self.bi_predicted && self.reference_count() >= 2 {
            vector(1)
        } else {
            None
        };
        Some(Motion { first, second })
    }

    /// The vector of `motion` on a reference before (`earlier`) or after the frame.
    fn vector_toward(&self, motion: &Motion, earlier: bool) -> Option<Vector> {
        motion.vectors().find(|v| {
            self.reference_pocs
                .get(usize::from(v.ref_idx))
                .is_some_and(|&p| (p < self.poc) == earlier)
        })
    }

    /// Indices of the references before (`earlier`) or after the frame, nearest first.
    fn references_toward(&self, earlier: bool) -> impl Iterator<Item = u8> + '_ {
        (0..self.reference_count())
            .filter(move |&i| (self.reference_pocs[i] < self.poc) == earlier)
            .map(|i| i as u8)
    }
}

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

/// Distinct motions of the inter neighbours of the coding unit at (cx, cy) of `size` units, in
/// the merge list's order, at most `limit`.
pub fn spatial_candidates(
    grid: &UnitGrid,
    cx: usize,
    cy: usize,
    size: usize,
    limit: usize,
) -> Vec<Motion> {
    let mut list: Vec<Motion> = Vec::with_capacity(limit);
    for position in neighbour_units(cx, cy, size) {
        if list.len() >= limit {
            break;
        }
        if let Some(motion) = inter_neighbour(grid, position, cx, cy)
            && !list.contains(&motion)
        {
            list.push(motion);
        }
    }
    list
}

/// Pairs of merge candidates whose earlier and later vectors combine into a bi-predicted
/// candidate, in HEVC's order.
const COMBINED_PAIRS: [(usize, usize); 12] = [
    (0, 1),
    (1, 0),
    (0, 2),
    (2, 0),
    (1, 2),
    (2, 1),
    (0, 3),
    (3, 0),
    (1, 3),
    (3, 1),
    (2, 3),
    (3, 2),
];

// EVOLVE-BLOCK-START motion_vector_prediction
/// Spatial candidates a merge list keeps when a temporal one follows: two rather than HEVC's
/// four. With the temporal candidate on, PSNR-Y BD-rate (QP 22-37, 30 frames) moved by -0.9 %
/// on carphone and -3.9 % on bikes with two, -0.1 and -2.9 % with three or four, +2.4 and
/// -3.3 % with one; two spatial ones, the temporal one, then the others: -0.8 and -3.1 %.
const SPATIAL_BEFORE_TEMPORAL: usize = 2;

/// Merge candidates for the coding unit at (cx, cy) (units) of `size` units, `count` in all:
/// distinct neighbour motions in a fixed order (`SPATIAL_BEFORE_TEMPORAL` at most when a
/// temporal candidate follows), the temporal candidate, then in bi-predicted frames the combinations of one
/// candidate's earlier vector with another's later one (with `bi_merge`) and the zero vectors
/// on the two nearest references averaged (with `bi_merge`, on each pair of references at the
/// same rank before and after), then zero vectors on each reference.
pub fn merge_candidates(
    grid: &UnitGrid,
    frame: &FrameMotion,
    cx: usize,
    cy: usize,
    size: usize,
    count: usize,
) -> Vec<Motion> {
    let temporal = frame.temporal_motion(grid, cx, cy, size);
    let spatial_limit = if temporal.is_some() {
        count.min(SPATIAL_BEFORE_TEMPORAL)
    } else {
        count
    };
    let mut list = spatial_candidates(grid, cx, cy, size, spatial_limit);
    list.reserve(count.saturating_sub(list.len()));
    let push = |list: &mut Vec<Motion>, motion: Motion| {
        if list.len() < count && !list.contains(&motion) {
            list.push(motion);
        }
    };
    if let Some(motion) = temporal {
        push(&mut list, motion);
    }
    let reference_count = frame.reference_count();
    if frame.bi_predicted && frame.bi_merge {
        let original = list.len();
        for (i, j) in COMBINED_PAIRS {
            if i >= original || j >= original {
                continue;
            }
            if let (Some(first), Some(second)) = (
                frame.vector_toward(&list[i], true),
                frame.vector_toward(&list[j], false),
            ) {
                let second = Some(second);
                push(&mut list, Motion { first, second });
            }
        }
        let zero = |ref_idx| Vector {
            ref_idx,
            mv: Mv::ZERO,
        };
        for (earlier, later) in frame
            .references_toward(true)
            .zip(frame.references_toward(false))
        {
            let second = Some(zero(later));
            push(
                &mut list,
                Motion {
                    first: zero(earlier),
                    second,
                },
            );
        }
    }
    if frame.bi_predicted && reference_count >= 2 {
        let zeros = Motion {
            first: Vector::default(),
            second: Some(Vector {
                ref_idx: 1,
                mv: Mv::ZERO,
            }),
        };
        push(&mut list, zeros);
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
/// Without any inter neighbour, the temporal candidate on the reference where there is one.
pub fn predict_mv(
    grid: &UnitGrid,
    frame: &FrameMotion,
    cx: usize,
    cy: usize,
    size: usize,
    ref_idx: u8,
) -> Mv {
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
    if candidates.iter().all(Option::is_none)
        && let Some(mv) = frame.temporal_mv(grid, cx, cy, size, ref_idx)
    {
        return mv;
    }
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

    fn inter(motion: Motion) -> UnitInfo {
        UnitInfo {
            cu_log2: 3,
            motion,
            ..UnitInfo::default()
        }
    }

    /// A 128x128 picture's units, all intra.
    fn intra_grid() -> UnitGrid {
        let mut grid = UnitGrid::new(128, 128);
        grid.fill(
            0,
            0,
            16,
            UnitInfo {
                intra: true,
                ..UnitInfo::default()
            },
        );
        grid
    }

    /// A 128x128 field at `poc` coded from `reference_pocs`, with `motion` over the units
    /// listed and intra elsewhere.
    fn field(poc: u64, reference_pocs: &[u64], units: &[(usize, usize, Motion)]) -> MotionField {
        let mut grid = intra_grid();
        for &(ux, uy, motion) in units {
            grid.fill(ux, uy, 1, inter(motion));
        }
        MotionField::new(poc, &grid, reference_pocs)
    }

    #[test]
    fn candidates_come_from_decoded_inter_neighbours_and_are_distinct() {
        let mut grid = UnitGrid::new(128, 128);
        let key = field(0, &[], &[]);
        let frame = FrameMotion::new(1, false, &[&key], true, true);
        let single = |x, y| inter(Motion::single(0, Mv::new(x, y)));
        grid.fill(0, 0, 1, single(4, 4));
        grid.fill(1, 0, 1, single(4, 4));
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
        let list = merge_candidates(&grid, &frame, 1, 1, 1, 3);
        assert_eq!(list[0].first.mv, Mv::new(4, 4));
        assert_eq!(list[1].first.mv, Mv::ZERO);
        assert_eq!(list.len(), 3);
        assert_eq!(predict_mv(&grid, &frame, 1, 1, 1, 0), Mv::new(4, 4));
    }

    #[test]
    fn scaling_follows_hevc_fixed_point_rule() {
        let mv = Mv::new(10, -10);
        assert_eq!(scale_mv(mv, 3, 3), mv);
        assert_eq!(scale_mv(mv, 1, 2), Mv::new(5, -5));
        assert_eq!(scale_mv(mv, -1, 1), Mv::new(-10, 10));
        assert_eq!(scale_mv(mv, 2, 1), Mv::new(20, -20));
        // Rounding: 3/2 and -3/2 round to the same magnitude; 7/3 to 2.
        assert_eq!(scale_mv(Mv::new(3, -3), 1, 2), Mv::new(1, -1));
        assert_eq!(scale_mv(Mv::new(7, 0), 1, 3), Mv::new(2, 0));
        // tx = 16384 / 4 = 4096, factor (3 * 4096 + 32) >> 6 = 192: 3/4 of 100 is 75.
        assert_eq!(scale_mv(Mv::new(100, 0), 3, 4), Mv::new(75, 0));
        // The factor stops at 4095/256 (16 times), distances at 127, vectors at 16 bits.
        assert_eq!(scale_mv(Mv::new(16, 0), 100, 1), Mv::new(256, 0));
        assert_eq!(scale_mv(Mv::new(256, 0), 1, 500), Mv::new(2, 0));
        assert_eq!(
            scale_mv(Mv::new(20_000, -20_000), 2, 1),
            Mv::new(32_767, -32_768)
        );
    }

    #[test]
    fn temporal_candidates_take_the_colocated_unit_scaled_by_distance() {
        // The anchor at 16 predicted from 0: its unit (5, 5) moved by (32, -16).
        let anchor = field(16, &[0], &[(5, 5, Motion::single(0, Mv::new(32, -16)))]);
        let key = field(0, &[], &[]);
        // The B frame at 8, from 0 and 16: the anchor's motion halves toward each side.
        let frame = FrameMotion::new(8, true, &[&key, &anchor], true, false);
        let grid = intra_grid();
        // A 16x16 unit at (4, 4): below right (6, 6) is intra, its centre (5, 5) is not.
        assert_eq!(
            frame.temporal_mv(&grid, 4, 4, 2, 0),
            Some(Mv::new(16, -8)),
            "toward the earlier reference"
        );
        assert_eq!(frame.temporal_mv(&grid, 4, 4, 2, 1), Some(Mv::new(-16, 8)));
        assert_eq!(
            merge_candidates(&grid, &frame, 4, 4, 2, 1),
            [Motion {
                first: Vector {
                    ref_idx: 0,
                    mv: Mv::new(16, -8)
                },
                second: Some(Vector {
                    ref_idx: 1,
                    mv: Mv::new(-16, 8)
                }),
            }]
        );
        // An 8x8 unit at (4, 4) reads below right first: (5, 5).
        assert!(frame.temporal_mv(&grid, 4, 4, 1, 0).is_some());
        // Below right in the next superblock row is not read: the centre (4, 7) is intra.
        assert_eq!(frame.temporal_mv(&grid, 4, 7, 1, 0), None);
        let below = field(16, &[0], &[(4, 8, Motion::single(0, Mv::new(4, 4)))]);
        let frame_below = FrameMotion::new(8, true, &[&key, &below], true, false);
        assert_eq!(frame_below.temporal_mv(&grid, 3, 7, 1, 0), None);
        // Switched off, or with only intra references, there is none.
        let off = FrameMotion::new(8, true, &[&key, &anchor], false, false);
        assert_eq!(off.temporal_mv(&grid, 4, 4, 2, 0), None);
        let intra_only = FrameMotion::new(8, true, &[&key, &key], true, false);
        assert_eq!(intra_only.temporal_mv(&grid, 4, 4, 2, 0), None);
        // Clamped to the vectors the stream allows for the unit.
        let far = field(16, &[0], &[(0, 0, Motion::single(0, Mv::new(-4000, 0)))]);
        let p = FrameMotion::new(24, false, &[&far, &key], true, false);
        let mv = p.temporal_mv(&grid, 0, 0, 1, 0).unwrap();
        assert!(crate::inter::mv_in_bounds(0, 0, 8, 8, mv, (128, 128)));
        assert!(!crate::inter::mv_in_bounds(
            0,
            0,
            8,
            8,
            Mv::new(mv.x - 4, 0),
            (128, 128)
        ));
    }

    #[test]
    fn the_colocated_picture_is_the_nearest_with_motion_and_crossing_vectors_win() {
        let key = field(0, &[], &[]);
        // The B reference at 4 (from 0 and 8) and the anchor at 8 (from 0).
        let bi = Motion {
            first: Vector {
                ref_idx: 0,
                mv: Mv::new(8, 0),
            },
            second: Some(Vector {
                ref_idx: 1,
                mv: Mv::new(-4, 0),
            }),
        };
        let b4 = field(4, &[0, 8], &[(2, 2, bi)]);
        let anchor = field(8, &[0], &[(2, 2, Motion::single(0, Mv::new(64, 0)))]);
        let grid = intra_grid();
        // Frame 6 (list 4, 8, 0): 4 and 8 are as near; 8, the later, is co-located.
        let frame = FrameMotion::new(6, true, &[&b4, &anchor, &key], true, false);
        // 64 over the 8 pictures to 0, over the 2 to 4 is 16.
        assert_eq!(frame.temporal_mv(&grid, 2, 2, 1, 0), Some(Mv::new(16, 0)));
        // Frame 5 (list 4, 8, 0): the B picture at 4 is nearest; of its vectors, the one to 8
        // crosses 5: -4 over 4 pictures, toward 4 (1 before 5) is +1.
        let frame = FrameMotion::new(5, true, &[&b4, &anchor, &key], true, false);
        assert_eq!(frame.temporal_mv(&grid, 2, 2, 1, 0), Some(Mv::new(1, 0)));
    }

    #[test]
    fn bi_merge_combines_earlier_and_later_vectors_then_pairs_zeros() {
        let key = field(0, &[], &[]);
        let anchor = field(16, &[0], &[]);
        let p8 = field(8, &[0, 16], &[]);
        // Frame 4, list 0, 8, 16: one reference earlier, two later.
        let fields = [&key, &p8, &anchor];
        let mut grid = intra_grid();
        let single = |r, x| inter(Motion::single(r, Mv::new(x, 0)));
        // Around the unit at (8, 8), first of its superblock: left and above right on the
        // earlier reference, above on a later one.
        grid.fill(7, 8, 1, single(0, 4));
        grid.fill(8, 7, 1, single(1, 8));
        grid.fill(9, 7, 1, single(0, 12));
        let on = FrameMotion::new(4, true, &fields, false, true);
        let list = merge_candidates(&grid, &on, 8, 8, 1, 5);
        let v = |ref_idx, x| Vector {
            ref_idx,
            mv: Mv::new(x, 0),
        };
        let bi = |a, b| Motion {
            first: a,
            second: Some(b),
        };
        assert_eq!(
            list,
            [
                Motion::single(0, Mv::new(4, 0)),
                Motion::single(1, Mv::new(8, 0)),
                Motion::single(0, Mv::new(12, 0)),
                bi(v(0, 4), v(1, 8)),
                bi(v(0, 12), v(1, 8)),
            ]
        );
        // Without bi_merge: the zero pair on the two nearest, then zero vectors.
        let off = FrameMotion::new(4, true, &fields, false, false);
        let list = merge_candidates(&grid, &off, 8, 8, 1, 5);
        assert_eq!(list[3], bi(v(0, 0), v(1, 0)));
        assert_eq!(list[4], Motion::single(0, Mv::ZERO));
        // With nothing to combine: zero pairs at each rank, then single zeros; no duplicates.
        let empty = intra_grid();
        let p24 = field(24, &[16], &[]);
        let frame = FrameMotion::new(12, true, &[&p8, &anchor, &key, &p24], false, true);
        let list = merge_candidates(&empty, &frame, 0, 0, 1, 5);
        assert_eq!(
            list,
            [
                bi(v(0, 0), v(1, 0)),
                bi(v(2, 0), v(3, 0)),
                Motion::single(0, Mv::ZERO),
                Motion::single(1, Mv::ZERO),
                Motion::single(2, Mv::ZERO),
            ]
        );
        for count in 1..=MAX_MERGE_CANDIDATES {
            assert_eq!(merge_candidates(&grid, &on, 8, 8, 1, count).len(), count);
            assert_eq!(
                merge_candidates(&empty, &frame, 0, 0, 1, count).len(),
                count
            );
        }
    }

    #[test]
    fn the_temporal_candidate_follows_two_spatial_ones_and_predicts_alone() {
        let key = field(0, &[], &[]);
        let anchor = field(16, &[0], &[(9, 9, Motion::single(0, Mv::new(40, 0)))]);
        let frame = FrameMotion::new(32, false, &[&anchor, &key], true, false);
        // A 16x16 unit at (8, 8), first of its superblock: all five neighbours are decoded.
        let mut grid = intra_grid();
        for (i, (ux, uy)) in [(7, 9), (9, 7), (10, 7), (7, 10), (7, 7)]
            .into_iter()
            .enumerate()
        {
            grid.fill(
                ux,
                uy,
                1,
                inter(Motion::single(0, Mv::new(4 * i as i32, 1))),
            );
        }
        // Its centre (9, 9) carries 40 over the 16 pictures to 0: 40 over the 16 to 16.
        let temporal = Motion::single(0, Mv::new(40, 0));
        let list = merge_candidates(&grid, &frame, 8, 8, 2, 5);
        assert_eq!(
            list,
            [
                Motion::single(0, Mv::new(0, 1)),
                Motion::single(0, Mv::new(4, 1)),
                temporal,
                Motion::single(0, Mv::ZERO),
                Motion::single(1, Mv::ZERO),
            ]
        );
        // With two candidates, the spatial ones fill the list.
        assert!(!merge_candidates(&grid, &frame, 8, 8, 2, 2).contains(&temporal));
        // Without a co-located picture, the spatial ones fill it all.
        let spatial = FrameMotion::new(32, false, &[&anchor, &key], false, false);
        let list = merge_candidates(&grid, &spatial, 8, 8, 2, 5);
        assert!(list.iter().all(|m| m.first.mv.y == 1));
        // Neighbours present: the median; none: the temporal vector.
        assert_eq!(predict_mv(&grid, &frame, 8, 8, 2, 0).y, 1);
        let empty = intra_grid();
        assert_eq!(predict_mv(&empty, &frame, 8, 8, 2, 0), Mv::new(40, 0));
        // On the second reference (at 0, twice as far): twice the vector.
        assert_eq!(predict_mv(&empty, &frame, 8, 8, 2, 1), Mv::new(80, 0));
    }
}
