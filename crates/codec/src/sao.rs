//! Sample adaptive offset (SAO): an in-loop filter after deblocking that adds small offsets to
//! samples, chosen per 64x64 superblock and plane. Band offset corrects 4 consecutive intensity
//! bands of 8 values; edge offset corrects local minima, maxima and corners along one of four
//! directions. A superblock may instead copy its left or upper neighbour's parameters.
//!
//! The filter reads a copy of the deblocked picture, so every sample sees unfiltered
//! neighbours; edge classes skip samples whose neighbours lie outside the picture. The encoder
//! chooses the parameters from per-class sums of differences and counts. All superblocks'
//! parameters follow the last superblock's coding units in the frame's range coder.
//!
//! Offsets and statistics are in 8-bit sample units at every depth: deeper samples take the
//! offsets scaled by 2^(bd-8) and the bands are the top 5 bits of the sample, as in HEVC.

use crate::entropy::{CostCounter, Prob, RangeDecoder, SaoContexts, Writer};
use crate::error::{CodecError, Result};
use crate::partition::SB_SIZE;
use crate::picture::{PaddedPlane, Picture, Sample};
use crate::rdo::RdCost;

/// Largest offset magnitude (8-bit sample units, as in HEVC).
pub const MAX_OFFSET: i8 = 7;
/// Intensity bands of the band offset (8 values each at 8-bit) and how many of them carry an
/// offset.
pub const BAND_COUNT: usize = 32;
pub const BANDS_CODED: usize = 4;
/// log2 of BAND_COUNT: a sample's band is its top bits.
const BAND_BITS: u32 = 5;
/// Edge classes as the step to the second neighbour (the first is the opposite step):
/// horizontal, vertical, 135° and 45°.
pub const EDGE_CLASSES: [(isize, isize); 4] = [(1, 0), (0, 1), (1, 1), (-1, 1)];

/// One plane's filter in one superblock. Edge offsets are indexed by category 1 to 4 (local
/// minimum, concave corner, convex corner, local maximum): the first two are at least 0, the
/// last two at most 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PlaneSao {
    #[default]
    Off,
    Band {
        start: u8,
        offsets: [i8; BANDS_CODED],
    },
    Edge {
        class: u8,
        offsets: [i8; 4],
    },
}

impl PlaneSao {
    /// The same filter with every value inside what the syntax can carry.
    pub fn legal(self) -> Self {
        let clip = |o: i8| o.clamp(-MAX_OFFSET, MAX_OFFSET);
        match self {
            PlaneSao::Off => PlaneSao::Off,
            PlaneSao::Band { start, offsets } => PlaneSao::Band {
                start: start % BAND_COUNT as u8,
                offsets: offsets.map(clip),
            },
            PlaneSao::Edge { class, offsets } => {
                let [a, b, c, d] = offsets.map(clip);
                PlaneSao::Edge {
                    class: class % EDGE_CLASSES.len() as u8,
                    offsets: [a.max(0), b.max(0), c.min(0), d.min(0)],
                }
            }
        }
    }
}

/// A superblock's three planes, coded or copied from a neighbour.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Merge {
    #[default]
    None,
    Left,
    Up,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SuperblockSao {
    pub merge: Merge,
    /// The filters in force (a neighbour's when merged).
    pub planes: [PlaneSao; 3],
}

/// Sum of (source - deblocked) and number of samples of one class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClassStats {
    pub sum: i64,
    pub count: i64,
}

impl ClassStats {
    /// Change of the squared error when `offset` is added to every sample of the class.
    #[inline]
    pub fn distortion_change(self, offset: i32) -> i64 {
        let o = i64::from(offset);
        self.count * o * o - 2 * o * self.sum
    }
}

/// The statistics of one plane in one superblock, over the visible samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlaneStats {
    /// [edge class][category 1..=4]
    pub edge: [[ClassStats; 4]; 4],
    pub band: [ClassStats; BAND_COUNT],
}

impl Default for PlaneStats {
    fn default() -> Self {
        PlaneStats {
            edge: [[ClassStats::default(); 4]; 4],
            band: [ClassStats::default(); BAND_COUNT],
        }
    }
}

impl PlaneStats {
    /// Change of the squared error that `filter` makes (clipping aside).
    pub fn distortion_change(&self, filter: &PlaneSao) -> i64 {
        match *filter {
            PlaneSao::Off => 0,
            PlaneSao::Band { start, offsets } => offsets
                .iter()
                .enumerate()
                .map(|(k, &o)| {
                    self.band[(usize::from(start) + k) % BAND_COUNT].distortion_change(o.into())
                })
                .sum(),
            PlaneSao::Edge { class, offsets } => self.edge[usize::from(class) % 4]
                .iter()
                .zip(offsets)
                .map(|(s, o)| s.distortion_change(o.into()))
                .sum(),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SuperblockStats {
    pub planes: [PlaneStats; 3],
}

/// Superblock columns and rows of a picture.
pub fn grid_size<T: Sample>(picture: &Picture<T>) -> (usize, usize) {
    let luma = &picture.planes[0];
    (luma.width.div_ceil(SB_SIZE), luma.height.div_ceil(SB_SIZE))
}

fn superblock_side(plane: usize) -> usize {
    if plane == 0 { SB_SIZE } else { SB_SIZE / 2 }
}

pub use crate::dsp::edge_category;

/// Rows above, at and below a sample, the outer ones where they exist.
type RowsAround<'a, T> = (Option<&'a [T]>, &'a [T], Option<&'a [T]>);

/// The rows of the first and second neighbours along `step`, if both lie in the picture.
#[inline]
fn neighbour_rows<'a, T: Sample>(
    (above, cur, below): RowsAround<'a, T>,
    (_, dy): (isize, isize),
) -> Option<(&'a [T], &'a [T])> {
    if dy == 0 {
        Some((cur, cur))
    } else {
        Some((above?, below?))
    }
}

/// Columns of `x0..x1` whose neighbours along `step` (x - dx and x + dx) lie in `0..width`.
#[inline]
fn edge_span(
    x0: usize,
    x1: usize,
    width: usize,
    (dx, _): (isize, isize),
) -> std::ops::Range<usize> {
    let margin = usize::from(dx != 0);
    x0.max(margin)..x1.min(width.saturating_sub(margin))
}

/// Rows y - 1, y and y + 1 of the coded area, the outer ones where they exist.
fn rows_around<T: Sample>(plane: &PaddedPlane<T>, y: usize) -> RowsAround<'_, T> {
    let w = plane.width;
    (
        y.checked_sub(1).map(|up| plane.row(0, up, w)),
        plane.row(0, y, w),
        (y + 1 < plane.height).then(|| plane.row(0, y + 1, w)),
    )
}

/// Interleaved copies of the band histograms [`gather_stats`] keeps.
const INTERLEAVED: usize = 4;
/// What one sample adds to its band's packed entry besides its difference: the count lives in
/// the upper 32 bits.
const COUNT_ONE: i64 = 1 << 32;

/// Per band, Σ(source - deblocked + 2^32) over the samples, in `INTERLEAVED` copies: the sum
/// of differences in the lower 32 bits (a superblock's fits in ±2^31) and the count in the
/// upper ones, so that a sample costs one update.
#[derive(Clone)]
struct BandHistograms {
    packed: [[i64; BAND_COUNT]; INTERLEAVED],
}

impl Default for BandHistograms {
    fn default() -> Self {
        BandHistograms {
            packed: [[0; BAND_COUNT]; INTERLEAVED],
        }
    }
}

impl BandHistograms {
    /// Adds the samples of `cur` (deblocked) and `orig` (source), of one length: neighbouring
    /// samples mostly share a band, so consecutive ones go to different copies, or each update
    /// would wait for the last.
    #[inline]
    fn add_row<T: Sample>(&mut self, cur: &[T], orig: &[T], band_shift: u32) {
        // The mask only keeps the index provably in range: samples of the depth have 5 bits
        // above `band_shift`.
        let add = |copy: &mut [i64; BAND_COUNT], c: T, o: T| {
            let band = (c.to_u32() >> band_shift) as usize & (BAND_COUNT - 1);
            copy[band] += COUNT_ONE + i64::from(o.to_i32() - c.to_i32());
        };
        let [h0, h1, h2, h3] = &mut self.packed;
        let (cur, orig) = (
            cur.chunks_exact(INTERLEAVED),
            orig.chunks_exact(INTERLEAVED),
        );
        for (&c, &o) in cur.remainder().iter().zip(orig.remainder()) {
            add(h0, c, o);
        }
        for (c, o) in cur.zip(orig) {
            add(h0, c[0], o[0]);
            add(h1, c[1], o[1]);
            add(h2, c[2], o[2]);
            add(h3, c[3], o[3]);
        }
    }

    /// Adds the copies to `band` and clears them.
    fn add_to(&mut self, band: &mut [ClassStats; BAND_COUNT]) {
        for (b, class) in band.iter_mut().enumerate() {
            let total: i64 = self.packed.iter().map(|copy| copy[b]).sum();
            // The sum of differences lies in -2^31..2^31, so rounding recovers the count.
            let count = (total + (1 << 31)) >> 32;
            class.sum += total - count * COUNT_ONE;
            class.count += count;
        }
        *self = BandHistograms::default();
    }
}

/// Per-superblock statistics of the deblocked picture against the source, over the visible
/// `width`x`height` luma area (and its chroma), in 8-bit sample units.
pub fn gather_stats<T: Sample>(
    deblocked: &Picture<T>,
    source: &Picture<T>,
    (width, height): (usize, usize),
) -> Vec<SuperblockStats> {
    let (cols, rows) = grid_size(deblocked);
    let depth_shift = deblocked.bit_depth() - 8;
    let band_shift = deblocked.bit_depth() - BAND_BITS;
    let mut stats = vec![SuperblockStats::default(); cols * rows];
    let kernels = T::kernels();
    for p in 0..3 {
        let (rec, src) = (&deblocked.planes[p], &source.planes[p]);
        let (vw, vh) = if p == 0 {
            (width, height)
        } else {
            (width.div_ceil(2), height.div_ceil(2))
        };
        let (vw, vh) = (vw.min(rec.width), vh.min(rec.height));
        let side = superblock_side(p);
        // Each superblock column's band histograms over the rows of the current superblock
        // row.
        let mut bands = vec![BandHistograms::default(); cols];
        for y in 0..vh {
            let (above, cur, below) = rows_around(rec, y);
            let orig = src.row(0, y, vw);
            let first = (y / side) * cols;
            for (col, x0) in (0..vw).step_by(side).enumerate() {
                let x1 = (x0 + side).min(vw);
                bands[col].add_row(&cur[x0..x1], &orig[x0..x1], band_shift);
                let s = &mut stats[first + col].planes[p];
                for (class, &step) in EDGE_CLASSES.iter().enumerate() {
                    let Some((ra, rb)) = neighbour_rows((above, cur, below), step) else {
                        continue;
                    };
                    // [category 1..=4]: (sum, count).
                    let span = edge_span(x0, x1, rec.width, step);
                    let acc = kernels.sao_edge_stats((ra, cur, rb), orig, step.0, span);
                    for (t, &(sum, count)) in s.edge[class].iter_mut().zip(&acc) {
                        t.sum += i64::from(sum);
                        t.count += i64::from(count);
                    }
                }
            }
            if (y + 1) % side == 0 || y + 1 == vh {
                for (col, histograms) in bands.iter_mut().enumerate() {
                    histograms.add_to(&mut stats[first + col].planes[p].band);
                }
            }
        }
    }
    // Sums of differences 2^s times 8-bit ones; the squared error the decisions weigh against
    // λ·R is then 4^s times too, which the 8-bit λ matches.
    if depth_shift > 0 {
        let round = 1i64 << (depth_shift - 1);
        for plane in stats.iter_mut().flat_map(|sb| sb.planes.iter_mut()) {
            for class in plane.edge.iter_mut().flatten().chain(&mut plane.band) {
                class.sum = (class.sum + round) >> depth_shift;
            }
        }
    }
    stats
}

/// Filters the picture in place with each superblock's parameters (raster order).
pub fn apply<T: Sample>(picture: &mut Picture<T>, params: &[[PlaneSao; 3]]) {
    let (cols, _) = grid_size(picture);
    let depth_shift = picture.bit_depth() - 8;
    let band_shift = picture.bit_depth() - BAND_BITS;
    let max = picture.planes[0].max_value();
    let kernels = T::kernels();
    for p in 0..3 {
        if params.iter().all(|sb| sb[p] == PlaneSao::Off) {
            continue;
        }
        let plane = &mut picture.planes[p];
        let (w, h) = (plane.width, plane.height);
        let side = superblock_side(p);
        // The filter reads deblocked samples only: row y is filtered in place after copying it,
        // from that copy, the copy of row y - 1 and row y + 1, which is not filtered yet.
        let mut above = vec![T::default(); w];
        let mut current = vec![T::default(); w];
        for y in 0..h {
            current.copy_from_slice(plane.row(0, y, w));
            let sb_first = (y / side) * cols;
            let next = plane.index(0, y as isize + 1);
            let (head, tail) = plane.data.split_at_mut(next);
            let out = &mut head[next - plane.stride..][..w];
            let rows = (
                (y > 0).then_some(&above[..]),
                &current[..],
                (y + 1 < h).then(|| &tail[..w]),
            );
            for (col, x0) in (0..w).step_by(side).enumerate() {
                let x1 = (x0 + side).min(w);
                match params[sb_first + col][p] {
                    PlaneSao::Off => {}
                    PlaneSao::Band { start, offsets } => {
                        let mut table = [0i32; BAND_COUNT];
                        for (k, &o) in offsets.iter().enumerate() {
                            table[(usize::from(start) + k) % BAND_COUNT] =
                                i32::from(o) << depth_shift;
                        }
                        kernels.sao_band_row(rows.1, x0..x1, &table, band_shift, max, out);
                    }
                    PlaneSao::Edge { class, offsets } => {
                        let step = EDGE_CLASSES[usize::from(class) % 4];
                        let Some((ra, rb)) = neighbour_rows(rows, step) else {
                            continue;
                        };
                        // [category]: offset; category 0 changes nothing.
                        let table = [0, offsets[0], offsets[1], offsets[2], offsets[3]]
                            .map(|o| i32::from(o) << depth_shift);
                        let span = edge_span(x0, x1, w, step);
                        kernels.sao_edge_row((ra, rows.1, rb), step.0, span, &table, max, out);
                    }
                }
            }
            std::mem::swap(&mut above, &mut current);
        }
    }
}

// ---- syntax -------------------------------------------------------------------------------

/// An offset magnitude: a context-coded "nonzero" bin, then a truncated unary remainder in
/// bypass bins.
fn write_magnitude<W: Writer>(w: &mut W, ctx: &mut Prob, magnitude: u8) {
    w.bit(ctx, magnitude > 0);
    if magnitude > 0 {
        for i in 1..MAX_OFFSET as u8 {
            let more = magnitude > i;
            w.bypass(u32::from(more), 1);
            if !more {
                break;
            }
        }
    }
}

fn read_magnitude(r: &mut RangeDecoder, ctx: &mut Prob) -> i8 {
    if !r.bit(ctx) {
        return 0;
    }
    let mut magnitude = 1;
    while magnitude < MAX_OFFSET && r.bypass(1) == 1 {
        magnitude += 1;
    }
    magnitude
}

/// One plane's filter: on, edge rather than band, then the offsets and the start band (5
/// bypass bits) or the edge class (2 bypass bits). `plane_type` is 0 for luma, 1 for chroma.
pub fn write_plane<W: Writer>(w: &mut W, ctx: &mut SaoContexts, plane_type: usize, f: &PlaneSao) {
    let pt = plane_type.min(1);
    match *f {
        PlaneSao::Off => w.bit(&mut ctx.kind[pt][0], false),
        PlaneSao::Band { start, offsets } => {
            w.bit(&mut ctx.kind[pt][0], true);
            w.bit(&mut ctx.kind[pt][1], false);
            for o in offsets {
                write_magnitude(w, &mut ctx.magnitude[pt][1], o.unsigned_abs());
                if o != 0 {
                    w.bypass(u32::from(o < 0), 1);
                }
            }
            w.bypass(u32::from(start), 5);
        }
        PlaneSao::Edge { class, offsets } => {
            w.bit(&mut ctx.kind[pt][0], true);
            w.bit(&mut ctx.kind[pt][1], true);
            for o in offsets {
                write_magnitude(w, &mut ctx.magnitude[pt][0], o.unsigned_abs());
            }
            w.bypass(u32::from(class), 2);
        }
    }
}

fn read_plane(r: &mut RangeDecoder, ctx: &mut SaoContexts, plane_type: usize) -> PlaneSao {
    let pt = plane_type.min(1);
    if !r.bit(&mut ctx.kind[pt][0]) {
        return PlaneSao::Off;
    }
    let mut offsets = [0i8; 4];
    if r.bit(&mut ctx.kind[pt][1]) {
        for (i, o) in offsets.iter_mut().enumerate() {
            let m = read_magnitude(r, &mut ctx.magnitude[pt][0]);
            *o = if i < 2 { m } else { -m };
        }
        let class = r.bypass(2) as u8;
        PlaneSao::Edge { class, offsets }
    } else {
        for o in &mut offsets {
            let m = read_magnitude(r, &mut ctx.magnitude[pt][1]);
            *o = if m != 0 && r.bypass(1) == 1 { -m } else { m };
        }
        let start = r.bypass(5) as u8;
        PlaneSao::Band { start, offsets }
    }
}

/// A superblock's parameters: "merge left" where a left neighbour exists, "merge up" where an
/// upper one exists, then the three planes unless merged.
pub fn write_superblock<W: Writer>(
    w: &mut W,
    ctx: &mut SaoContexts,
    sb: &SuperblockSao,
    has_left: bool,
    has_up: bool,
) {
    if has_left {
        w.bit(&mut ctx.merge[0], sb.merge == Merge::Left);
        if sb.merge == Merge::Left {
            return;
        }
    }
    if has_up {
        w.bit(&mut ctx.merge[1], sb.merge == Merge::Up);
        if sb.merge == Merge::Up {
            return;
        }
    }
    for (p, f) in sb.planes.iter().enumerate() {
        write_plane(w, ctx, p, f);
    }
}

/// Reads a superblock's parameters; returns the filters in force.
pub fn read_superblock(
    r: &mut RangeDecoder,
    ctx: &mut SaoContexts,
    left: Option<[PlaneSao; 3]>,
    up: Option<[PlaneSao; 3]>,
) -> [PlaneSao; 3] {
    if let Some(left) = left
        && r.bit(&mut ctx.merge[0])
    {
        return left;
    }
    if let Some(up) = up
        && r.bit(&mut ctx.merge[1])
    {
        return up;
    }
    [0, 1, 2].map(|p| read_plane(r, ctx, p))
}

/// Rate of one plane's filter with the given contexts, in 1/256 bit.
pub fn plane_rate(ctx: &SaoContexts, plane_type: usize, f: &PlaneSao) -> u64 {
    let mut counter = CostCounter::default();
    write_plane(&mut counter, &mut ctx.clone(), plane_type, f);
    counter.cost
}

/// Rate of one offset magnitude (and its sign bit for band offsets), in 1/256 bit.
pub fn offset_rate(ctx: &SaoContexts, plane_type: usize, band: bool, offset: i32) -> u64 {
    let mut counter = CostCounter::default();
    let mut prob = ctx.magnitude[plane_type.min(1)][usize::from(band)];
    let magnitude = offset.unsigned_abs().min(MAX_OFFSET as u32) as u8;
    write_magnitude(&mut counter, &mut prob, magnitude);
    if band && magnitude != 0 {
        counter.bypass(0, 1);
    }
    counter.cost
}

// ---- encoder and decoder -----------------------------------------------------------------

/// Encoder: chooses, writes and applies the parameters of every superblock of the deblocked
/// `picture`. `visible` is the display size, where distortion counts. `rd` weighs distortion
/// in 8-bit sample units.
pub fn encode<W: Writer, T: Sample>(
    w: &mut W,
    ctx: &mut SaoContexts,
    picture: &mut Picture<T>,
    source: &Picture<T>,
    visible: (usize, usize),
    rd: &RdCost,
) {
    let (cols, rows) = grid_size(picture);
    let stats = gather_stats(picture, source, visible);
    let mut params: Vec<[PlaneSao; 3]> = Vec::with_capacity(cols * rows);
    for i in 0..cols * rows {
        let left = (i % cols > 0).then(|| params[i - 1]);
        let up = (i >= cols).then(|| params[i - cols]);
        let choice = choose_parameters(&stats[i], left, up, ctx, rd);
        // Whatever the decision says, the stream carries exactly what is applied.
        let sb = match (choice.merge, left, up) {
            (Merge::Left, Some(planes), _) | (Merge::Up, _, Some(planes)) => SuperblockSao {
                merge: choice.merge,
                planes,
            },
            _ => SuperblockSao {
                merge: Merge::None,
                planes: choice.planes.map(PlaneSao::legal),
            },
        };
        write_superblock(w, ctx, &sb, left.is_some(), up.is_some());
        params.push(sb.planes);
    }
    apply(picture, &params);
}

/// Decoder: reads the parameters of every superblock and filters the deblocked `picture`.
pub fn decode<T: Sample>(
    r: &mut RangeDecoder,
    ctx: &mut SaoContexts,
    picture: &mut Picture<T>,
) -> Result<()> {
    let (cols, rows) = grid_size(picture);
    let mut params: Vec<[PlaneSao; 3]> = Vec::with_capacity(cols * rows);
    for i in 0..cols * rows {
        let left = (i % cols > 0).then(|| params[i - 1]);
        let up = (i >= cols).then(|| params[i - cols]);
        params.push(read_superblock(r, ctx, left, up));
        if r.overrun() {
            return Err(CodecError::Truncated);
        }
    }
    apply(picture, &params);
    Ok(())
}

// EVOLVE-BLOCK-START sample_adaptive_offset
/// Rate-distortion choice of one superblock's parameters from its statistics: per plane the
/// best band and edge filters (each offset from the class mean towards zero, whichever costs
/// least), against "off" and against copying the left or upper neighbour.
pub fn choose_parameters(
    stats: &SuperblockStats,
    left: Option<[PlaneSao; 3]>,
    up: Option<[PlaneSao; 3]>,
    ctx: &SaoContexts,
    rd: &RdCost,
) -> SuperblockSao {
    let rate_cost = |rate: u64| rd.cost(0, rate) as i64;
    let mut planes = [PlaneSao::Off; 3];
    let mut new_rate = 0;
    if left.is_some() {
        new_rate += u64::from(ctx.merge[0].cost(false));
    }
    if up.is_some() {
        new_rate += u64::from(ctx.merge[1].cost(false));
    }
    let mut best_cost = rate_cost(new_rate);
    for (p, (slot, s)) in planes.iter_mut().zip(&stats.planes).enumerate() {
        let (filter, cost) = best_plane_filter(s, p, ctx, rd);
        *slot = filter;
        best_cost += cost;
    }
    let mut best = SuperblockSao {
        merge: Merge::None,
        planes,
    };
    let merged_cost = |planes: &[PlaneSao; 3], rate: u64| {
        stats
            .planes
            .iter()
            .zip(planes)
            .map(|(s, f)| s.distortion_change(f))
            .sum::<i64>()
            + rate_cost(rate)
    };
    if let Some(planes) = left {
        let cost = merged_cost(&planes, u64::from(ctx.merge[0].cost(true)));
        if cost < best_cost {
            best_cost = cost;
            best = SuperblockSao {
                merge: Merge::Left,
                planes,
            };
        }
    }
    if let Some(planes) = up {
        let mut rate = u64::from(ctx.merge[1].cost(true));
        if left.is_some() {
            rate += u64::from(ctx.merge[0].cost(false));
        }
        if merged_cost(&planes, rate) < best_cost {
            best = SuperblockSao {
                merge: Merge::Up,
                planes,
            };
        }
    }
    best
}

/// The best filter of one plane and its cost: distortion change plus λ·rate.
fn best_plane_filter(
    stats: &PlaneStats,
    plane: usize,
    ctx: &SaoContexts,
    rd: &RdCost,
) -> (PlaneSao, i64) {
    let rate_cost = |rate: u64| rd.cost(0, rate) as i64;
    let total = |f: PlaneSao| stats.distortion_change(&f) + rate_cost(plane_rate(ctx, plane, &f));
    let mut best = (PlaneSao::Off, total(PlaneSao::Off));
    // The offset of one class that minimises its distortion change plus its own rate.
    let best_offset = |s: ClassStats, band: bool, low: i32, high: i32| -> (i32, i64) {
        if s.count == 0 {
            return (0, rate_cost(offset_rate(ctx, plane, band, 0)));
        }
        let mean = (2 * s.sum + s.count * s.sum.signum()) / (2 * s.count);
        let start = mean.clamp(i64::from(low), i64::from(high)) as i32;
        let mut choice = (0, i64::MAX);
        let mut o = start;
        loop {
            let cost = s.distortion_change(o) + rate_cost(offset_rate(ctx, plane, band, o));
            if cost < choice.1 {
                choice = (o, cost);
            }
            if o == 0 {
                break;
            }
            o -= o.signum();
        }
        choice
    };
    let m = i32::from(MAX_OFFSET);
    for class in 0..EDGE_CLASSES.len() {
        let mut offsets = [0i8; 4];
        for (k, o) in offsets.iter_mut().enumerate() {
            let (low, high) = if k < 2 { (0, m) } else { (-m, 0) };
            *o = best_offset(stats.edge[class][k], false, low, high).0 as i8;
        }
        let f = PlaneSao::Edge {
            class: class as u8,
            offsets,
        };
        let cost = total(f);
        if cost < best.1 {
            best = (f, cost);
        }
    }
    let bands: Vec<(i32, i64)> = stats
        .band
        .iter()
        .map(|&s| best_offset(s, true, -m, m))
        .collect();
    let window = |start: usize| -> i64 {
        (0..BANDS_CODED)
            .map(|k| bands[(start + k) % BAND_COUNT].1)
            .sum()
    };
    let start = (0..BAND_COUNT).min_by_key(|&s| window(s)).unwrap_or(0);
    let mut offsets = [0i8; BANDS_CODED];
    for (k, o) in offsets.iter_mut().enumerate() {
        *o = bands[(start + k) % BAND_COUNT].0 as i8;
    }
    let f = PlaneSao::Band {
        start: start as u8,
        offsets,
    };
    let cost = total(f);
    if cost < best.1 {
        best = (f, cost);
    }
    best
}
// EVOLVE-BLOCK-END

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::RangeEncoder;
    use crate::test_rng::Rng;

    fn picture_from(width: usize, height: usize, luma: impl Fn(usize, usize) -> u8) -> Picture<u8> {
        let mut picture = Picture::new(width, height, 8);
        for y in 0..height {
            for x in 0..width {
                picture.planes[0].row_mut(x, y, 1)[0] = luma(x, y);
            }
        }
        picture
    }

    fn luma_only(f: PlaneSao, count: usize) -> Vec<[PlaneSao; 3]> {
        vec![[f, PlaneSao::Off, PlaneSao::Off]; count]
    }

    #[test]
    fn edge_categories_follow_hevc() {
        assert_eq!(edge_category(10, 20, 20), 1);
        assert_eq!(edge_category(10, 10, 20), 2);
        assert_eq!(edge_category(10, 20, 10), 2);
        assert_eq!(edge_category(10, 10, 10), 0);
        assert_eq!(edge_category(10, 5, 20), 0);
        assert_eq!(edge_category(20, 20, 10), 3);
        assert_eq!(edge_category(20, 10, 10), 4);
    }

    #[test]
    fn band_offset_changes_only_its_four_bands_and_clips() {
        let mut picture = picture_from(16, 16, |x, y| (x * 16 + y) as u8);
        let before = picture.clone();
        // Bands 30, 31, 0, 1 (the window wraps).
        let f = PlaneSao::Band {
            start: 30,
            offsets: [1, 7, -3, 2],
        };
        apply(&mut picture, &luma_only(f, 1));
        for y in 0..16 {
            for x in 0..16 {
                let c = i32::from(before.planes[0].at(x, y));
                let o = match c >> 3 {
                    30 => 1,
                    31 => 7,
                    0 => -3,
                    1 => 2,
                    _ => 0,
                };
                assert_eq!(
                    i32::from(picture.planes[0].at(x, y)),
                    (c + o).clamp(0, 255),
                    "{x},{y}"
                );
            }
        }
    }

    #[test]
    fn edge_offset_corrects_extrema_and_skips_borders() {
        // Vertical stripes: columns alternate 100 and 120, so every sample is a horizontal
        // extremum, and no sample is one vertically.
        let stripes = |x: usize, _y: usize| if x.is_multiple_of(2) { 100 } else { 120 };
        for class in 0..4u8 {
            let mut picture = picture_from(24, 16, stripes);
            let f = PlaneSao::Edge {
                class,
                offsets: [3, 1, -1, -4],
            };
            apply(&mut picture, &luma_only(f, 1));
            for y in 0..16 {
                for x in 0..24 {
                    let got = picture.planes[0].at(x, y);
                    let base = stripes(x, y);
                    let border_x = x == 0 || x == 23;
                    let border_y = y == 0 || y == 15;
                    let expected = match class {
                        0 if !border_x => {
                            if base == 100 {
                                103
                            } else {
                                116
                            }
                        }
                        // Vertical neighbours are equal: category 0.
                        1 => base,
                        // Diagonal neighbours lie in the other kind of column.
                        2 | 3 if !border_x && !border_y => {
                            if base == 100 {
                                103
                            } else {
                                116
                            }
                        }
                        _ => base,
                    };
                    assert_eq!(got, expected, "class {class} at {x},{y}");
                }
            }
        }
    }

    #[test]
    fn filter_reads_unfiltered_neighbours_and_only_its_superblock() {
        // A lone minimum next to a superblock edge: the offsets of one superblock must not
        // change what the other classifies.
        let mut picture = picture_from(128, 8, |x, _| match x {
            64 => 50,
            65 => 56,
            _ => 60,
        });
        let params = vec![
            [PlaneSao::Off; 3],
            [
                PlaneSao::Edge {
                    class: 0,
                    offsets: [7, 0, -1, -2],
                },
                PlaneSao::Off,
                PlaneSao::Off,
            ],
        ];
        apply(&mut picture, &params);
        // 63 lies in the unfiltered superblock; 65 stays between 50 and 60 (filtered, 64
        // would make it a minimum); 66 is a convex corner next to 56.
        assert_eq!(picture.planes[0].at(63, 3), 60);
        assert_eq!(picture.planes[0].at(64, 3), 57);
        assert_eq!(picture.planes[0].at(65, 3), 56);
        assert_eq!(picture.planes[0].at(66, 3), 59);
    }

    fn random_filter(rng: &mut Rng) -> PlaneSao {
        let kind = rng.next() % 3;
        let position = rng.next();
        let offsets = [0; 4].map(|_| (rng.next() % 15) as i8 - 7);
        match kind {
            0 => PlaneSao::Off,
            1 => PlaneSao::Band {
                start: (position % 32) as u8,
                offsets,
            },
            _ => PlaneSao::Edge {
                class: (position % 4) as u8,
                offsets,
            }
            .legal(),
        }
    }

    #[test]
    fn parameters_round_trip() {
        let (cols, rows) = (5, 4);
        let mut rng = Rng(77);
        let mut ctx = SaoContexts::default();
        let mut writer = RangeEncoder::new();
        let mut applied: Vec<[PlaneSao; 3]> = Vec::new();
        for i in 0..cols * rows {
            let left = (i % cols > 0).then(|| applied[i - 1]);
            let up = (i >= cols).then(|| applied[i - cols]);
            let sb = match rng.next() % 4 {
                0 if left.is_some() => SuperblockSao {
                    merge: Merge::Left,
                    planes: left.unwrap_or_default(),
                },
                1 if up.is_some() => SuperblockSao {
                    merge: Merge::Up,
                    planes: up.unwrap_or_default(),
                },
                _ => SuperblockSao {
                    merge: Merge::None,
                    planes: [0; 3].map(|_| random_filter(&mut rng)),
                },
            };
            write_superblock(&mut writer, &mut ctx, &sb, left.is_some(), up.is_some());
            applied.push(sb.planes);
        }
        // A trailing context-coded bin checks that the reader stays in step.
        let mut tail = Prob::default();
        writer.bit(&mut tail, true);
        let bytes = writer.finish();
        let mut reader = RangeDecoder::new(&bytes);
        let mut ctx = SaoContexts::default();
        let mut read: Vec<[PlaneSao; 3]> = Vec::new();
        for i in 0..cols * rows {
            let left = (i % cols > 0).then(|| read[i - 1]);
            let up = (i >= cols).then(|| read[i - cols]);
            read.push(read_superblock(&mut reader, &mut ctx, left, up));
        }
        assert_eq!(read, applied);
        assert!(reader.bit(&mut Prob::default()));
        assert!(!reader.overrun());
    }

    fn luma_sse(a: &Picture<u8>, b: &Picture<u8>) -> i64 {
        let (pa, pb) = (&a.planes[0], &b.planes[0]);
        let mut total = 0;
        for y in 0..pa.height {
            for x in 0..pa.width {
                let d = i64::from(pa.at(x, y)) - i64::from(pb.at(x, y));
                total += d * d;
            }
        }
        total
    }

    #[test]
    fn statistics_predict_the_distortion_change() {
        let mut rng = Rng(5);
        let source = picture_from(72, 40, |_, _| 0);
        let mut source = source;
        let mut deblocked = picture_from(72, 40, |_, _| 0);
        for y in 0..40 {
            for x in 0..72 {
                let s = 30 + (rng.next() % 190) as u8;
                source.planes[0].row_mut(x, y, 1)[0] = s;
                deblocked.planes[0].row_mut(x, y, 1)[0] = s + (rng.next() % 9) as u8;
            }
        }
        let (cols, rows) = grid_size(&deblocked);
        assert_eq!((cols, rows), (2, 1));
        let stats = gather_stats(&deblocked, &source, (72, 40));
        for _ in 0..20 {
            let filters = [random_filter(&mut rng), random_filter(&mut rng)];
            let mut filtered = deblocked.clone();
            apply(
                &mut filtered,
                &[
                    [filters[0], PlaneSao::Off, PlaneSao::Off],
                    [filters[1], PlaneSao::Off, PlaneSao::Off],
                ],
            );
            let predicted: i64 = stats
                .iter()
                .zip(&filters)
                .map(|(s, f)| s.planes[0].distortion_change(f))
                .sum();
            assert_eq!(
                luma_sse(&filtered, &source) - luma_sse(&deblocked, &source),
                predicted
            );
        }
    }

    /// Band statistics summed sample by sample, for pictures whose superblocks are extreme:
    /// every difference the largest of one sign, or random, samples of any value.
    fn band_stats_are_sums<T: Sample>(bit_depth: u32) {
        let (width, height) = (136, 72);
        let max = (1u32 << bit_depth) - 1;
        let mut rng = Rng(bit_depth);
        let mut source = Picture::<T>::new(width, height, bit_depth);
        let mut deblocked = source.clone();
        for p in 0..3 {
            let (w, h) = if p == 0 {
                (width, height)
            } else {
                (width / 2, height / 2)
            };
            for y in 0..h {
                for x in 0..w {
                    let (s, d) = match (x / superblock_side(p), y / superblock_side(p)) {
                        (0, 0) => (0, max),
                        (1, 0) => (max, 0),
                        _ => (rng.next() & max, rng.next() & max),
                    };
                    source.planes[p].row_mut(x, y, 1)[0] = T::from_u32(s);
                    deblocked.planes[p].row_mut(x, y, 1)[0] = T::from_u32(d);
                }
            }
        }
        let stats = gather_stats(&deblocked, &source, (width, height));
        let (cols, _) = grid_size(&deblocked);
        let shift = bit_depth - 8;
        for p in 0..3 {
            let (w, h) = if p == 0 {
                (width, height)
            } else {
                (width / 2, height / 2)
            };
            let mut direct = vec![[(0i64, 0i64); BAND_COUNT]; stats.len()];
            for y in 0..h {
                for x in 0..w {
                    let d = deblocked.planes[p].at(x, y).to_u32();
                    let s = source.planes[p].at(x, y).to_u32();
                    let sb = (y / superblock_side(p)) * cols + x / superblock_side(p);
                    let class = &mut direct[sb][(d >> (bit_depth - BAND_BITS)) as usize];
                    class.0 += i64::from(s) - i64::from(d);
                    class.1 += 1;
                }
            }
            for (sb, bands) in direct.iter().enumerate() {
                for (band, &(sum, count)) in bands.iter().enumerate() {
                    let sum = if shift > 0 {
                        (sum + (1 << (shift - 1))) >> shift
                    } else {
                        sum
                    };
                    let got = stats[sb].planes[p].band[band];
                    assert_eq!(
                        (got.sum, got.count),
                        (sum, count),
                        "plane {p}, {sb}, {band}"
                    );
                }
            }
        }
    }

    #[test]
    fn band_statistics_are_the_sums_of_their_samples() {
        band_stats_are_sums::<u8>(8);
        band_stats_are_sums::<u16>(10);
        band_stats_are_sums::<u16>(12);
    }

    /// A source and its deblocked version, the source plus 4 (8-bit units) in a band of dark
    /// samples, at `bit_depth`; SAO encodes and decodes. Returns the source, the deblocked
    /// picture and the filtered one, after checking the decoder filters the same.
    fn remove_bias<T: Sample>(bit_depth: u32) -> [Picture<T>; 3] {
        let shift = bit_depth - 8;
        let mut source = Picture::<T>::new(64, 64, bit_depth);
        let mut deblocked = source.clone();
        for y in 0..64 {
            for x in 0..64 {
                let v = (40 + (x * 3 + y * 5) % 120) as u32;
                source.planes[0].row_mut(x, y, 1)[0] = T::from_u32(v << shift);
                let biased = if v < 72 { v + 4 } else { v };
                deblocked.planes[0].row_mut(x, y, 1)[0] = T::from_u32(biased << shift);
            }
        }
        let rd = RdCost::new(10.0);
        let mut writer = RangeEncoder::new();
        let mut filtered = deblocked.clone();
        encode(
            &mut writer,
            &mut SaoContexts::default(),
            &mut filtered,
            &source,
            (64, 64),
            &rd,
        );
        let bytes = writer.finish();
        let mut decoded = deblocked.clone();
        decode(
            &mut RangeDecoder::new(&bytes),
            &mut SaoContexts::default(),
            &mut decoded,
        )
        .unwrap();
        assert_eq!(decoded.planes[0].data, filtered.planes[0].data);
        [source, deblocked, filtered]
    }

    #[test]
    fn encoder_removes_a_bias_and_its_stream_decodes() {
        let [source, deblocked, filtered] = remove_bias::<u8>(8);
        assert!(luma_sse(&filtered, &source) * 4 < luma_sse(&deblocked, &source));
    }

    #[test]
    fn deep_samples_get_the_8_bit_filter_scaled() {
        // Bands are the top 5 bits and offsets scale with the depth, so a picture 2^(bd-8)
        // times an 8-bit one is filtered into 2^(bd-8) times the 8-bit result.
        let [_, _, eight] = remove_bias::<u8>(8);
        for bit_depth in [10, 12] {
            let [_, _, deep] = remove_bias::<u16>(bit_depth);
            let scaled: Vec<u16> = eight.planes[0]
                .data
                .iter()
                .map(|&v| u16::from(v) << (bit_depth - 8))
                .collect();
            assert!(deep.planes[0].data == scaled, "{bit_depth}-bit");
        }
    }
}
