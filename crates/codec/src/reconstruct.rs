//! What a coding unit carries once decided (encoder) or parsed (decoder), and the one
//! reconstruction both run from it, which is what makes the decoder's output bit-exact with the
//! encoder's reference pictures.

use crate::inter::Mv;
use crate::inter::interp::{predict_chroma, predict_luma};
use crate::inter::mvpred::{Motion, Vector};
use crate::intra::{DC, Edges, predict};
use crate::partition::{MAX_TX_LOG2, UNIT_LOG2, UnitGrid, UnitInfo};
use crate::picture::{PaddedPlane, Picture, Sample, max_value, qp_offset};
use crate::quant::dequantize;
use crate::transform::{TxType, block_transform, inverse, with_block_buffers};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prediction {
    /// `chroma_option` indexes `syntax::chroma_mode_options(luma_mode)`; `chroma_mode` is the
    /// mode it stands for.
    Intra {
        luma_mode: u8,
        chroma_option: u8,
        chroma_mode: u8,
    },
    /// `merge_index` is set for merged and skipped blocks, else `mvd` holds the coded
    /// difference of each vector.
    Inter {
        motion: Motion,
        merge_index: Option<u8>,
        mvd: [Mv; 2],
    },
}

/// One coding unit: position, size, prediction and quantised levels per transform block.
#[derive(Clone, Debug, PartialEq)]
pub struct CodedCu {
    pub x: usize,
    pub y: usize,
    pub log2: u32,
    pub skip: bool,
    /// QP of the unit's luma levels (chroma follows at the sequence's offset).
    pub qp: u8,
    pub prediction: Prediction,
    /// Luma transform blocks in z-order (one, or four 32x32 in a 64x64 unit); `None`: no levels.
    pub luma: Vec<Option<Vec<i32>>>,
    pub chroma: [Option<Vec<i32>>; 2],
    /// Transform blocks coded without a transform: bit `skip_bit(luma, index)` per block.
    pub transform_skip: u8,
    /// The luma residual is coded as four transforms of half the unit's (see
    /// [`tx_split_allowed`]).
    pub tx_split: bool,
}

/// Whether a coding unit may split its luma residual: inter units of 16x16 and 32x32 with
/// levels, in sequences that enable the residual quadtree. Transforms stay at least 8x8, the
/// deblocking grid.
pub fn tx_split_allowed(residual_quadtree: bool, log2: u32, intra: bool) -> bool {
    residual_quadtree && !intra && (4..=MAX_TX_LOG2).contains(&log2)
}

/// The bit of `CodedCu::transform_skip` of a transform block: luma blocks 0 to 3 (z-order),
/// then the two chroma planes.
pub fn skip_bit(luma: bool, index: usize) -> u8 {
    1 << if luma { index } else { 4 + index }
}

impl CodedCu {
    pub fn luma_tx_log2(&self) -> u32 {
        self.log2.min(MAX_TX_LOG2) - u32::from(self.tx_split)
    }

    pub fn chroma_tx_log2(&self) -> u32 {
        (self.log2 - 1).min(MAX_TX_LOG2)
    }

    /// Offset within the unit of its luma transform block `index` (raster order).
    pub fn luma_tx_offset(&self, index: usize) -> (usize, usize) {
        let n = 1usize << self.luma_tx_log2();
        let per_row = (1usize << self.log2) / n;
        ((index % per_row) * n, (index / per_row) * n)
    }

    /// The transform of a block of the unit (luma block `index`, or chroma plane `index`).
    pub fn transform(&self, luma: bool, index: usize, intra_dst: bool) -> TxType {
        let log2n = if luma {
            self.luma_tx_log2()
        } else {
            self.chroma_tx_log2()
        };
        let intra = matches!(self.prediction, Prediction::Intra { .. });
        let skip = self.transform_skip & skip_bit(luma, index) != 0;
        block_transform(intra, log2n, intra_dst, skip)
    }

    pub fn unit(&self) -> (usize, usize) {
        (self.x >> UNIT_LOG2, self.y >> UNIT_LOG2)
    }
}

/// QP of the chroma planes.
pub fn chroma_qp(qp: u8, offset: i8) -> u8 {
    (i32::from(qp) + i32::from(offset)).clamp(0, i32::from(crate::quant::MAX_QP)) as u8
}

/// Adds the residual of `levels` (if any) to `prediction` into `out`, all n×n tight rows of
/// `bit_depth` samples; `qp` is the coded QP (the quantiser adds the depth's offset).
pub fn add_residual<T: Sample>(
    prediction: &[T],
    levels: Option<&[i32]>,
    qp: u8,
    (log2n, tx): (u32, TxType),
    bit_depth: u32,
    out: &mut [T],
) {
    with_block_buffers(log2n, |coeffs, residual| {
        add_residual_with(
            prediction,
            levels,
            qp,
            (log2n, tx),
            bit_depth,
            out,
            (coeffs, residual),
        );
    });
}

/// [`add_residual`] with the caller's coefficient and residual buffers (at least n² long, any
/// contents: both are written before they are read), for callers that keep them between blocks.
pub fn add_residual_with<T: Sample>(
    prediction: &[T],
    levels: Option<&[i32]>,
    qp: u8,
    (log2n, tx): (u32, TxType),
    bit_depth: u32,
    out: &mut [T],
    (coeffs, residual): (&mut [i32], &mut [i32]),
) {
    let n = 1usize << log2n;
    let Some(levels) = levels else {
        out[..n * n].copy_from_slice(&prediction[..n * n]);
        return;
    };
    let (coeffs, residual) = (&mut coeffs[..n * n], &mut residual[..n * n]);
    let quant_qp = qp + qp_offset(bit_depth);
    dequantize(&levels[..n * n], coeffs, quant_qp, log2n, bit_depth);
    inverse(coeffs, residual, log2n, tx, bit_depth);
    T::kernels().add_clipped(
        prediction,
        residual,
        max_value(bit_depth),
        &mut out[..n * n],
    );
}

/// [`add_residual`] of an n×n prediction (rows `pred_stride` apart) written straight into
/// `plane` at (x, y), with no intermediate block to copy.
fn add_residual_to_plane<T: Sample>(
    plane: &mut PaddedPlane<T>,
    (x, y): (usize, usize),
    (prediction, pred_stride): (&[T], usize),
    levels: Option<&[i32]>,
    qp: u8,
    (log2n, tx): (u32, TxType),
) {
    let n = 1usize << log2n;
    let rows = prediction.chunks(pred_stride).take(n);
    let Some(levels) = levels else {
        match n {
            4 => copy_rows::<T, 4>(plane, (x, y), rows),
            8 => copy_rows::<T, 8>(plane, (x, y), rows),
            16 => copy_rows::<T, 16>(plane, (x, y), rows),
            32 => copy_rows::<T, 32>(plane, (x, y), rows),
            _ => {
                for (j, pred) in rows.enumerate() {
                    plane.row_mut(x, y + j, n).copy_from_slice(&pred[..n]);
                }
            }
        }
        return;
    };
    let bit_depth = plane.bit_depth;
    with_block_buffers(log2n, |coeffs, residual| {
        let quant_qp = qp + qp_offset(bit_depth);
        dequantize(&levels[..n * n], coeffs, quant_qp, log2n, bit_depth);
        inverse(coeffs, residual, log2n, tx, bit_depth);
        let (max, kernels) = (max_value(bit_depth), T::kernels());
        for (j, (pred, residual)) in rows.zip(residual.chunks_exact(n)).enumerate() {
            kernels.add_clipped(pred, residual, max, plane.row_mut(x, y + j, n));
        }
    });
}

/// Copies rows of `N` samples into `plane` from (x, y) down: fixed-size copies compile to a few
/// moves, where a copy of a run-time length calls `memcpy` per row.
#[inline]
fn copy_rows<'a, T: Sample, const N: usize>(
    plane: &mut PaddedPlane<T>,
    (x, y): (usize, usize),
    rows: impl Iterator<Item = &'a [T]>,
) {
    for (j, src) in rows.enumerate() {
        let dst: &mut [T; N] = plane.row_mut(x, y + j, N).try_into().unwrap();
        *dst = src[..N].try_into().unwrap();
    }
}

/// Runs `f` on a stack buffer of n×n samples (n = 1 << `log2n`, at most 32), sized to the
/// block so small blocks clear little memory.
fn with_sample_buffer<T: Sample, R>(log2n: u32, f: impl FnOnce(&mut [T]) -> R) -> R {
    fn run<T: Sample, const LEN: usize, R>(f: impl FnOnce(&mut [T]) -> R) -> R {
        f(&mut [T::default(); LEN])
    }
    match log2n {
        0..=2 => run::<T, 16, R>(f),
        3 => run::<T, 64, R>(f),
        4 => run::<T, 256, R>(f),
        _ => run::<T, 1024, R>(f),
    }
}

/// The info the unit grid records for a coding unit.
pub fn commit_info(grid: &mut UnitGrid, cu: &CodedCu) {
    let (ux, uy) = cu.unit();
    let units = 1usize << (cu.log2 - UNIT_LOG2);
    let mut info = UnitInfo {
        cu_log2: cu.log2 as u8,
        skip: cu.skip,
        qp: cu.qp,
        ..UnitInfo::default()
    };
    match cu.prediction {
        Prediction::Intra { luma_mode, .. } => {
            info.intra = true;
            info.luma_mode = luma_mode;
        }
        Prediction::Inter { motion, .. } => {
            info.luma_mode = DC;
            info.motion = motion;
        }
    }
    info.tx_log2 = cu.luma_tx_log2() as u8;
    let tx_units = 1usize << (cu.luma_tx_log2() - UNIT_LOG2);
    let per_row = units / tx_units;
    for (i, levels) in cu.luma.iter().enumerate() {
        let (tx, ty) = (i % per_row, i / per_row);
        info.luma_coded = levels.is_some();
        grid.fill(ux + tx * tx_units, uy + ty * tx_units, tx_units, info);
    }
}

/// Predicts one intra transform block of `plane` and adds its residual, in place.
#[allow(clippy::too_many_arguments)]
pub fn reconstruct_intra_block<T: Sample>(
    plane: &mut PaddedPlane<T>,
    grid: &UnitGrid,
    (x, y): (usize, usize),
    (log2n, tx): (u32, TxType),
    subsampling: u32,
    mode: u8,
    levels: Option<&[i32]>,
    qp: u8,
) {
    let n = 1usize << log2n;
    let unit = (
        (x << subsampling) >> UNIT_LOG2,
        (y << subsampling) >> UNIT_LOG2,
    );
    let edges = Edges::gather(plane, grid, (x, y, n), subsampling, unit);
    with_sample_buffer(log2n, |pred| {
        predict(&edges, mode, subsampling == 0, pred);
        add_residual_to_plane(plane, (x, y), (pred, n), levels, qp, (log2n, tx));
    });
}

/// Prediction of a whole coding unit from its motion: one vector's prediction, or the rounded
/// average of two. `scratch` (at least as long as `out`) holds the second prediction.
pub fn predict_motion<T: Sample>(
    references: &[&Picture<T>],
    x: usize,
    y: usize,
    size: usize,
    motion: &Motion,
    out: [&mut [T]; 3],
    scratch: [&mut [T]; 3],
) {
    let [a, b, c] = out;
    let [sa, sb, sc] = scratch;
    predict_motion_luma(references, x, y, size, motion, a, sa);
    predict_motion_chroma(references, x, y, size, motion, [b, c], [sb, sc]);
}

/// The luma plane of [`predict_motion`].
pub fn predict_motion_luma<T: Sample>(
    references: &[&Picture<T>],
    x: usize,
    y: usize,
    size: usize,
    motion: &Motion,
    out: &mut [T],
    scratch: &mut [T],
) {
    let predict = |vector: Vector, plane: &mut [T]| {
        let reference = references[usize::from(vector.ref_idx)];
        predict_luma(&reference.planes[0], x, y, size, size, vector.mv, plane);
    };
    predict(motion.first, out);
    if let Some(second) = motion.second {
        let scratch = &mut scratch[..out.len()];
        predict(second, scratch);
        average_into(out, scratch);
    }
}

/// The chroma planes of [`predict_motion`].
pub fn predict_motion_chroma<T: Sample>(
    references: &[&Picture<T>],
    x: usize,
    y: usize,
    size: usize,
    motion: &Motion,
    out: [&mut [T]; 2],
    scratch: [&mut [T]; 2],
) {
    let half = size / 2;
    let predict = |vector: Vector, [cb, cr]: [&mut [T]; 2]| {
        let reference = references[usize::from(vector.ref_idx)];
        predict_chroma(
            &reference.planes[1],
            x / 2,
            y / 2,
            half,
            half,
            vector.mv,
            cb,
        );
        predict_chroma(
            &reference.planes[2],
            x / 2,
            y / 2,
            half,
            half,
            vector.mv,
            cr,
        );
    };
    let [cb, cr] = out;
    predict(motion.first, [&mut *cb, &mut *cr]);
    if let Some(second) = motion.second {
        let [scb, scr] = scratch;
        let (scb, scr) = (&mut scb[..cb.len()], &mut scr[..cr.len()]);
        predict(second, [&mut *scb, &mut *scr]);
        average_into(cb, scb);
        average_into(cr, scr);
    }
}

/// `plane` becomes the rounded average of itself and `other`.
fn average_into<T: Sample>(plane: &mut [T], other: &[T]) {
    for (p, &q) in plane.iter_mut().zip(other) {
        *p = p.average(q);
    }
}

/// Reconstructs `cu` into `picture` from its prediction and levels. `references` must hold the
/// motion's references and the vectors must be in bounds (the caller checked both).
pub fn reconstruct_cu<T: Sample>(
    picture: &mut Picture<T>,
    grid: &UnitGrid,
    references: &[&Picture<T>],
    cu: &CodedCu,
    (chroma_qp_offset, intra_dst): (i8, bool),
) {
    match cu.prediction {
        Prediction::Intra {
            luma_mode,
            chroma_mode,
            ..
        } => {
            let (qp, chroma_qp) = (cu.qp, chroma_qp(cu.qp, chroma_qp_offset));
            let (luma_log2, chroma_log2) = (cu.luma_tx_log2(), cu.chroma_tx_log2());
            for (i, levels) in cu.luma.iter().enumerate() {
                let (bx, by) = cu.luma_tx_offset(i);
                reconstruct_intra_block(
                    &mut picture.planes[0],
                    grid,
                    (cu.x + bx, cu.y + by),
                    (luma_log2, cu.transform(true, i, intra_dst)),
                    0,
                    luma_mode,
                    levels.as_deref(),
                    qp,
                );
            }
            for (p, (plane, levels)) in picture.planes[1..].iter_mut().zip(&cu.chroma).enumerate() {
                reconstruct_intra_block(
                    plane,
                    grid,
                    (cu.x / 2, cu.y / 2),
                    (chroma_log2, cu.transform(false, p, intra_dst)),
                    1,
                    chroma_mode,
                    levels.as_deref(),
                    chroma_qp,
                );
            }
        }
        Prediction::Inter { motion, .. } => {
            let size = 1usize << cu.log2;
            with_inter_buffers(cu.log2, |[luma, cb, cr]| {
                if motion.second.is_some() {
                    with_inter_buffers(cu.log2, |scratch| {
                        predict_motion(
                            references,
                            cu.x,
                            cu.y,
                            size,
                            &motion,
                            [luma, cb, cr],
                            scratch,
                        );
                    });
                } else {
                    predict_motion(
                        references,
                        cu.x,
                        cu.y,
                        size,
                        &motion,
                        [luma, cb, cr],
                        [&mut [], &mut [], &mut []],
                    );
                }
                add_inter_residuals(picture, cu, [luma, cb, cr], (chroma_qp_offset, intra_dst));
            });
        }
    }
}

/// Reconstructs the inter `cu` into `picture` from its motion-compensated prediction (luma and
/// both chroma planes, tight rows) and its levels: the encoder passes the prediction it already
/// made while searching.
pub fn add_inter_residuals<T: Sample>(
    picture: &mut Picture<T>,
    cu: &CodedCu,
    [luma, cb, cr]: [&[T]; 3],
    (chroma_qp_offset, intra_dst): (i8, bool),
) {
    let (qp, chroma_qp) = (cu.qp, chroma_qp(cu.qp, chroma_qp_offset));
    let size = 1usize << cu.log2;
    let (luma_log2, chroma_log2) = (cu.luma_tx_log2(), cu.chroma_tx_log2());
    for (i, levels) in cu.luma.iter().enumerate() {
        let (bx, by) = cu.luma_tx_offset(i);
        add_residual_to_plane(
            &mut picture.planes[0],
            (cu.x + bx, cu.y + by),
            (&luma[by * size + bx..], size),
            levels.as_deref(),
            qp,
            (luma_log2, cu.transform(true, i, intra_dst)),
        );
    }
    let half = size / 2;
    for (p, ((plane, levels), pred)) in picture.planes[1..]
        .iter_mut()
        .zip(&cu.chroma)
        .zip([cb, cr])
        .enumerate()
    {
        add_residual_to_plane(
            plane,
            (cu.x / 2, cu.y / 2),
            (pred, half),
            levels.as_deref(),
            chroma_qp,
            (chroma_log2, cu.transform(false, p, intra_dst)),
        );
    }
}

/// Runs `f` on stack buffers for the luma and both chroma predictions of a coding unit of
/// `1 << log2` luma samples, sized to the unit so small units clear little memory.
fn with_inter_buffers<T: Sample, R>(log2: u32, f: impl FnOnce([&mut [T]; 3]) -> R) -> R {
    fn run<T: Sample, const LUMA: usize, const CHROMA: usize, R>(
        f: impl FnOnce([&mut [T]; 3]) -> R,
    ) -> R {
        let mut luma = [T::default(); LUMA];
        let (mut cb, mut cr) = ([T::default(); CHROMA], [T::default(); CHROMA]);
        f([&mut luma, &mut cb, &mut cr])
    }
    match log2 {
        ..=3 => run::<T, 64, 16, R>(f),
        4 => run::<T, 256, 64, R>(f),
        5 => run::<T, 1024, 256, R>(f),
        _ => run::<T, 4096, 1024, R>(f),
    }
}
