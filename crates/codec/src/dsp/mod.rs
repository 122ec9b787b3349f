//! The DSP layer: every hot kernel has a plain-Rust reference, which defines the right answer,
//! and x86-64 versions selected once at run time, each tested bit-exact against the reference.
//! `unsafe` lives only in the ISA modules and at the one call through each table entry.
//!
//! Kernels are reached through [`Kernels`], a table per sample type filled for an instruction
//! set level: [`Kernels::new`] builds one for any level up to the detected one (tests keep one
//! per level side by side), and the codec uses the table of the detected level. Setting
//! `CODECLAB_ISA=reference` (or `avx2`) in the environment lowers that level to the reference
//! code (or AVX2); it can only lower it.

mod conv;
mod deblock;
mod intra;
mod mc;
mod network;
mod quant;
mod residual;
mod sad;
mod sao;
mod satd;
mod sse;
mod transform;
#[cfg(target_arch = "x86_64")]
mod x86;
#[cfg(target_arch = "x86_64")]
mod x86_conv;
#[cfg(target_arch = "x86_64")]
mod x86_conv_avx512;
#[cfg(target_arch = "x86_64")]
mod x86_deblock;
#[cfg(target_arch = "x86_64")]
mod x86_intra;
#[cfg(target_arch = "x86_64")]
mod x86_residual;
#[cfg(target_arch = "x86_64")]
mod x86_sad;
#[cfg(target_arch = "x86_64")]
mod x86_sse;
#[cfg(target_arch = "x86_64")]
mod x86_transform;

pub use conv::ConvShape;
pub use deblock::LumaFilter;
pub use mc::interpolate as reference_interpolate;
pub use network::{MAX_TAPS, Network, network};
pub use sao::edge_category;
pub use satd::satd as reference_satd;
pub use transform::Matrices;

use crate::picture::{PaddedPlane, Sample};
use std::ops::Range;
use std::sync::OnceLock;

/// Panics unless a `w`×`h` block at the start of each slice, rows `stride` apart, lies inside
/// it: what the block kernels read.
fn assert_blocks_inside<T>(
    (a, a_stride): (&[T], usize),
    (b, b_stride): (&[T], usize),
    w: usize,
    h: usize,
) {
    if h > 0 {
        assert!(a.len() >= (h - 1) * a_stride + w && b.len() >= (h - 1) * b_stride + w);
    }
}

/// Instruction set levels, in increasing order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Isa {
    Reference,
    Avx2,
    /// AVX-512 with its byte/word (BW) and vector neural network (VNNI) instructions; a table
    /// without kernels of this level uses its AVX2 ones.
    Avx512,
}

impl Isa {
    /// Every level up to `self`, the reference first.
    pub fn up_to(self) -> impl Iterator<Item = Isa> {
        [Isa::Reference, Isa::Avx2, Isa::Avx512]
            .into_iter()
            .filter(move |&isa| isa <= self)
    }
}

/// The highest level this CPU runs, lowered by `CODECLAB_ISA=reference` or `avx2`.
pub fn max_isa() -> Isa {
    static ISA: OnceLock<Isa> = OnceLock::new();
    *ISA.get_or_init(|| {
        let detected = detect();
        match std::env::var("CODECLAB_ISA").as_deref() {
            Ok("reference") => Isa::Reference,
            Ok("avx2") => detected.min(Isa::Avx2),
            _ => detected,
        }
    })
}

fn detect() -> Isa {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx2") && has!("avx512f") && has!("avx512bw") && has!("avx512vnni") {
            return Isa::Avx512;
        }
        if has!("avx2") {
            return Isa::Avx2;
        }
    }
    Isa::Reference
}

/// `sad(a, a_stride, b, b_stride, w, h)`.
type SadFn<T> = unsafe fn(&[T], usize, &[T], usize, usize, usize) -> u32;
/// `sse(a, a_stride, b, b_stride, w, h)`.
type SseFn<T> = unsafe fn(&[T], usize, &[T], usize, usize, usize) -> u64;
/// `satd(a, a_stride, b, b_stride, w, h)`.
type SatdFn<T> = unsafe fn(&[T], usize, &[T], usize, usize, usize) -> u32;
/// `satd_8x8(a, a_stride, b, b_stride)`.
type Satd8x8Fn<T> = unsafe fn(&[T], usize, &[T], usize) -> u32;
/// `interpolate(plane, origin, size, (horizontal taps, vertical taps), out)`.
type InterpolateFn<T, const TAPS: usize> = unsafe fn(
    &PaddedPlane<T>,
    (isize, isize),
    (usize, usize),
    (Option<&[i32; TAPS]>, Option<&[i32; TAPS]>),
    &mut [T],
);

/// Rows before, at and after a sample along an SAO edge class (one row three times for the
/// horizontal class).
pub type SaoRows<'a, T> = (&'a [T], &'a [T], &'a [T]);
/// `sao_edge_row(rows, dx, span, table, max, out)`.
type SaoEdgeRowFn<T> = unsafe fn(SaoRows<'_, T>, isize, Range<usize>, &[i32; 5], i32, &mut [T]);
/// `sao_band_row(cur, span, table, band_shift, max, out)`.
type SaoBandRowFn<T> = unsafe fn(&[T], Range<usize>, &[i32; 32], u32, i32, &mut [T]);
/// `sao_edge_stats(rows, orig, dx, span)`.
type SaoEdgeStatsFn<T> = unsafe fn(SaoRows<'_, T>, &[T], isize, Range<usize>) -> [(i32, i32); 4];

/// `blend_row(src, fraction, out)`.
type BlendRowFn<T> = unsafe fn(&[T], u32, &mut [T]);
/// `add_clipped(prediction, residual, max, out)`.
type AddClippedFn<T> = unsafe fn(&[T], &[i32], i32, &mut [T]);

/// `deblock_luma(data, at, (step, along), filters, tc, max)`.
type DeblockLumaFn<T> = unsafe fn(&mut [T], usize, (isize, isize), [LumaFilter; 2], i32, i32);
/// `deblock_chroma(data, at, (step, along), lines, tc, max)`.
type DeblockChromaFn<T> = unsafe fn(&mut [T], usize, (isize, isize), usize, i32, i32);

/// The kernels of one sample type at one instruction set level.
pub struct Kernels<T: Sample> {
    isa: Isa,
    sad: SadFn<T>,
    sse: SseFn<T>,
    satd: SatdFn<T>,
    satd_8x8: Satd8x8Fn<T>,
    interpolate_8tap: InterpolateFn<T, 8>,
    interpolate_4tap: InterpolateFn<T, 4>,
    sao_edge_row: SaoEdgeRowFn<T>,
    sao_band_row: SaoBandRowFn<T>,
    sao_edge_stats: SaoEdgeStatsFn<T>,
    deblock_luma: DeblockLumaFn<T>,
    deblock_chroma: DeblockChromaFn<T>,
    add_clipped: AddClippedFn<T>,
    blend_row: BlendRowFn<T>,
}

impl<T: Sample> Kernels<T> {
    /// The reference kernels.
    fn reference() -> Self {
        Kernels {
            isa: Isa::Reference,
            sad: sad::sad::<T>,
            sse: sse::sse::<T>,
            satd: satd::satd::<T>,
            satd_8x8: satd::satd_8x8::<T>,
            interpolate_8tap: mc::interpolate::<T, 8>,
            interpolate_4tap: mc::interpolate::<T, 4>,
            sao_edge_row: sao::edge_row::<T>,
            sao_band_row: sao::band_row::<T>,
            sao_edge_stats: sao::edge_stats::<T>,
            deblock_luma: deblock::luma::<T>,
            deblock_chroma: deblock::chroma::<T>,
            add_clipped: residual::add_clipped::<T>,
            blend_row: intra::blend_row::<T>,
        }
    }

    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// Sum of absolute differences of a `w`×`h` block.
    #[inline]
    pub fn sad(
        &self,
        a: &[T],
        a_stride: usize,
        b: &[T],
        b_stride: usize,
        w: usize,
        h: usize,
    ) -> u32 {
        assert!(w <= 64 && w <= a_stride && w <= b_stride);
        assert_blocks_inside((a, a_stride), (b, b_stride), w, h);
        // SAFETY: the table holds only kernels of levels `max_isa()` detected (see `new`), and
        // the block lies inside both slices (asserted above).
        unsafe { (self.sad)(a, a_stride, b, b_stride, w, h) }
    }

    /// Reconstruction: `out[i] = clip(prediction[i] + residual[i])` to `0..=max` over `out`.
    #[inline]
    pub fn add_clipped(&self, prediction: &[T], residual: &[i32], max: i32, out: &mut [T]) {
        assert!(prediction.len() >= out.len() && residual.len() >= out.len());
        // SAFETY: the table holds only kernels of levels `max_isa()` detected (see `new`), and
        // both inputs are at least as long as `out` (asserted above).
        unsafe { (self.add_clipped)(prediction, residual, max, out) }
    }

    /// One row of an angular intra prediction: `out[i] = ((32 - fraction)·src[i] +
    /// fraction·src[i + 1] + 16) >> 5`, `src` longer than `out`, `fraction` below 32.
    #[inline]
    pub fn blend_row(&self, src: &[T], fraction: u32, out: &mut [T]) {
        assert!(src.len() > out.len() && fraction < 32);
        // SAFETY: the table holds only kernels of levels `max_isa()` detected (see `new`), and
        // the lengths and fraction are as the kernels need (asserted above).
        unsafe { (self.blend_row)(src, fraction, out) }
    }

    /// Sum of squared differences of a `w`×`h` block, `w` and `h` at most 64.
    #[inline]
    pub fn sse(
        &self,
        a: &[T],
        a_stride: usize,
        b: &[T],
        b_stride: usize,
        w: usize,
        h: usize,
    ) -> u64 {
        assert!(w <= 64 && h <= 64 && w <= a_stride && w <= b_stride);
        assert_blocks_inside((a, a_stride), (b, b_stride), w, h);
        // SAFETY: the table holds only kernels of levels `max_isa()` detected (see `new`), and
        // the block lies inside both slices (asserted above).
        unsafe { (self.sse)(a, a_stride, b, b_stride, w, h) }
    }

    /// Sum of absolute 4x4 Hadamard-transformed differences of a `w`×`h` block (halved); `w`
    /// and `h` are multiples of 4.
    #[inline]
    pub fn satd(
        &self,
        a: &[T],
        a_stride: usize,
        b: &[T],
        b_stride: usize,
        w: usize,
        h: usize,
    ) -> u32 {
        assert!(
            w.is_multiple_of(4) && h.is_multiple_of(4) && w <= 64 && w <= a_stride && w <= b_stride
        );
        assert_blocks_inside((a, a_stride), (b, b_stride), w, h);
        if w == 8 && h == 8 {
            // SAFETY: as below.
            return unsafe { (self.satd_8x8)(a, a_stride, b, b_stride) };
        }
        // SAFETY: the table holds only kernels of levels `max_isa()` detected (see `new`), and
        // the block lies inside both slices (asserted above).
        unsafe { (self.satd)(a, a_stride, b, b_stride, w, h) }
    }

    /// Separable sub-sample interpolation of a `w`×`h` block (`w` ≤ 64) whose top-left integer
    /// sample is `origin`, with 8 taps: each pass `Σ taps[t]·sample[x - 3 + t]`, one rounding
    /// at the end, clipped to the plane's depth. The block and the filter's reach must lie
    /// inside the plane's padded data.
    #[inline]
    pub fn interpolate_8tap(
        &self,
        plane: &PaddedPlane<T>,
        origin: (isize, isize),
        size: (usize, usize),
        taps: (Option<&[i32; 8]>, Option<&[i32; 8]>),
        out: &mut [T],
    ) {
        check_reach::<T, 8>(plane, origin, size, out);
        // SAFETY: the table holds only kernels of levels `max_isa()` detected (see `new`), and
        // every sample the filter reads lies in `plane.data` (checked by `check_reach`).
        unsafe { (self.interpolate_8tap)(plane, origin, size, taps, out) }
    }

    /// The same with 4 taps, `Σ taps[t]·sample[x - 1 + t]`.
    #[inline]
    pub fn interpolate_4tap(
        &self,
        plane: &PaddedPlane<T>,
        origin: (isize, isize),
        size: (usize, usize),
        taps: (Option<&[i32; 4]>, Option<&[i32; 4]>),
        out: &mut [T],
    ) {
        check_reach::<T, 4>(plane, origin, size, out);
        // SAFETY: as in `interpolate_8tap`.
        unsafe { (self.interpolate_4tap)(plane, origin, size, taps, out) }
    }
}

/// Panics unless the SAO edge kernels' reads at `span` lie inside the rows: `cur[x]`,
/// `ra[x - dx]` and `rb[x + dx]`.
#[inline]
fn check_sao_edge<T>((ra, cur, rb): SaoRows<'_, T>, dx: isize, span: &Range<usize>) {
    if span.is_empty() {
        return;
    }
    let reach = dx.unsigned_abs();
    assert!(reach <= 1 && span.start >= reach && span.end <= cur.len());
    assert!(span.end + reach <= ra.len().min(rb.len()));
}

impl<T: Sample> Kernels<T> {
    /// SAO edge filter of one row segment: for `x` in `span`,
    /// `out[x] = clip(cur[x] + table[edge_category(cur[x], ra[x - dx], rb[x + dx])])`; `dx` is
    /// -1, 0 or 1 and every neighbour must lie inside its row.
    #[inline]
    pub fn sao_edge_row(
        &self,
        rows: SaoRows<'_, T>,
        dx: isize,
        span: Range<usize>,
        table: &[i32; 5],
        max: i32,
        out: &mut [T],
    ) {
        check_sao_edge(rows, dx, &span);
        assert!(span.end <= out.len());
        // SAFETY: the table holds only kernels of levels `max_isa()` detected (see `new`); the
        // kernels index through bounds-checked slices (the reach is asserted above as well).
        unsafe { (self.sao_edge_row)(rows, dx, span, table, max, out) }
    }

    /// SAO band filter of one row segment: for `x` in `span`,
    /// `out[x] = clip(cur[x] + table[cur[x] >> band_shift])`.
    #[inline]
    pub fn sao_band_row(
        &self,
        cur: &[T],
        span: Range<usize>,
        table: &[i32; 32],
        band_shift: u32,
        max: i32,
        out: &mut [T],
    ) {
        assert!(span.end <= cur.len().min(out.len()) || span.is_empty());
        // SAFETY: as in `sao_edge_row`.
        unsafe { (self.sao_band_row)(cur, span, table, band_shift, max, out) }
    }

    /// SAO edge statistics of one row segment: per edge category 1 to 4 (see
    /// `edge_category`), Σ(orig[x] - cur[x]) and the number of samples.
    #[inline]
    pub fn sao_edge_stats(
        &self,
        rows: SaoRows<'_, T>,
        orig: &[T],
        dx: isize,
        span: Range<usize>,
    ) -> [(i32, i32); 4] {
        check_sao_edge(rows, dx, &span);
        assert!(span.end <= orig.len() || span.is_empty());
        // SAFETY: as in `sao_edge_row`.
        unsafe { (self.sao_edge_stats)(rows, orig, dx, span) }
    }
}

/// Panics unless every sample of `lines` lines across an edge, `before` samples on the p side
/// and `after` on the q side, lies inside `data`, with positive steps.
#[inline]
fn check_edge<T>(
    data: &[T],
    at: usize,
    (step, along): (isize, isize),
    lines: usize,
    (before, after): (usize, usize),
) {
    assert!(step > 0 && along > 0 && lines > 0);
    let (step, along) = (step as usize, along as usize);
    assert!(at >= before * step);
    assert!(at + (lines - 1) * along + (after - 1) * step < data.len());
}

impl<T: Sample> Kernels<T> {
    /// Deblocks the 8 lines of one luma edge: lines `4s..4s + 4` by `filters[s]` (see
    /// [`LumaFilter`]), changing samples by at most `tc` (2·tc for the strong filter) and
    /// clipping to 0..=`max`. `at` is q0 of the first line, `step` crosses the edge, `along`
    /// moves to the next line; p3..q3 of every line must lie in `data`.
    #[inline]
    pub fn deblock_luma(
        &self,
        data: &mut [T],
        at: usize,
        steps: (isize, isize),
        filters: [LumaFilter; 2],
        tc: i32,
        max: i32,
    ) {
        check_edge(data, at, steps, 8, (4, 4));
        assert!(tc >= 0);
        // SAFETY: the table holds only kernels of levels `max_isa()` detected (see `new`); the
        // kernels index through bounds-checked slices (the reach is asserted above as well).
        unsafe { (self.deblock_luma)(data, at, steps, filters, tc, max) }
    }

    /// Deblocks `lines` lines across one chroma edge: p0 and q0 moved by
    /// `clip(((q0 - p0)·4 + p1 - q1 + 4) >> 3, ±tc)`, clipped to 0..=`max`; addressed as in
    /// [`Self::deblock_luma`], p1..q1 of every line in `data`.
    #[inline]
    pub fn deblock_chroma(
        &self,
        data: &mut [T],
        at: usize,
        steps: (isize, isize),
        lines: usize,
        tc: i32,
        max: i32,
    ) {
        if lines == 0 {
            return;
        }
        check_edge(data, at, steps, lines, (2, 2));
        assert!(tc >= 0);
        // SAFETY: as in `deblock_luma`.
        unsafe { (self.deblock_chroma)(data, at, steps, lines, tc, max) }
    }
}

/// Panics unless a `TAPS`-tap filter of a `size` block at `origin` reads only inside the
/// plane's data and writes only inside `out`.
#[inline]
fn check_reach<T: Sample, const TAPS: usize>(
    plane: &PaddedPlane<T>,
    origin: (isize, isize),
    (w, h): (usize, usize),
    out: &[T],
) {
    assert!(w <= 64 && out.len() >= w * h);
    if w == 0 || h == 0 {
        return;
    }
    let before = (TAPS / 2 - 1) as isize;
    let border = plane.border as isize;
    assert!(origin.0 - before >= -border && origin.1 - before >= -border);
    // One past the last sample read: the last row's last column of the filter's reach.
    let end = plane.index(
        origin.0 + (w + TAPS - 1) as isize - before,
        origin.1 + (h + TAPS - 2) as isize - before,
    );
    assert!(end <= plane.data.len());
}

impl Kernels<u8> {
    /// The 8-bit kernels at `isa`, clamped to the detected level.
    pub fn new(isa: Isa) -> Self {
        let mut kernels = Self::reference();
        #[cfg(target_arch = "x86_64")]
        if isa.min(detect()) >= Isa::Avx2 {
            kernels.isa = Isa::Avx2;
            kernels.sad = x86_sad::sad_avx2;
            kernels.sse = x86_sse::sse_avx2;
            kernels.satd = x86::satd_avx2;
            kernels.satd_8x8 = x86::satd_8x8_avx2;
            kernels.interpolate_8tap = x86::interpolate_avx2::<8>;
            kernels.interpolate_4tap = x86::interpolate_avx2::<4>;
            kernels.sao_edge_row = x86::sao_edge_row_avx2;
            kernels.sao_band_row = x86::sao_band_row_avx2;
            kernels.sao_edge_stats = x86::sao_edge_stats_avx2;
            kernels.deblock_luma = x86_deblock::luma_avx2;
            kernels.deblock_chroma = x86_deblock::chroma_avx2;
            kernels.add_clipped = x86_residual::add_clipped_avx2;
            kernels.blend_row = x86_intra::blend_row_avx2;
        }
        let _ = isa;
        kernels
    }
}

impl Kernels<u16> {
    /// Deeper samples run the reference kernels at every level for now.
    pub fn new(_isa: Isa) -> Self {
        Self::reference()
    }
}

/// The 8-bit kernels of [`max_isa`], which the codec runs.
pub fn kernels_u8() -> &'static Kernels<u8> {
    static KERNELS: OnceLock<Kernels<u8>> = OnceLock::new();
    KERNELS.get_or_init(|| Kernels::<u8>::new(max_isa()))
}

/// The kernels of deeper samples of [`max_isa`], which the codec runs.
pub fn kernels_u16() -> &'static Kernels<u16> {
    static KERNELS: OnceLock<Kernels<u16>> = OnceLock::new();
    KERNELS.get_or_init(|| Kernels::<u16>::new(max_isa()))
}

type MatrixRowsFn = unsafe fn(&[i32], &[i32], &mut [i32], usize);
type ColumnsTransposedFn = unsafe fn(&[i32], &[i32], &mut [i32], usize, u32, i32);
/// `forward_dct(matrices, residual, coeffs)` of one block size.
type ForwardDctFn = unsafe fn(&Matrices, &[i32], &mut [i32]);
/// `inverse_dct(matrices, coeffs, residual, limit)` of one block size.
type InverseDctFn = unsafe fn(&Matrices, &[i32], &mut [i32], i32);
/// `quantize(coeffs, levels, scale, offset, shift, max_level)`.
type QuantizeFn = unsafe fn(&[i32], &mut [i32], u32, u32, u32, u32) -> usize;
type DequantizeFn = unsafe fn(&[i32], &mut [i32], (i32, u32), i32, i32);
type LargestMagnitudeFn = unsafe fn(&[i32]) -> u32;
type LastNonzeroIndexFn = unsafe fn(&[i32], &[u16]) -> i32;

/// The transform and quantisation kernels at one instruction set level (they work on 32-bit
/// coefficients, the same at every sample depth).
pub struct Transforms {
    isa: Isa,
    matrix_rows: MatrixRowsFn,
    columns_transposed: ColumnsTransposedFn,
    /// Per block size, 4x4 to 32x32.
    forward_dct: [ForwardDctFn; 4],
    inverse_dct: [InverseDctFn; 4],
    quantize: QuantizeFn,
    dequantize: DequantizeFn,
    largest_magnitude: LargestMagnitudeFn,
    last_nonzero_index: LastNonzeroIndexFn,
}

impl Transforms {
    /// The kernels at `isa`, clamped to the detected level.
    pub fn new(isa: Isa) -> Self {
        use transform::reference;
        let mut kernels = Transforms {
            isa: Isa::Reference,
            matrix_rows: reference::matrix_rows,
            columns_transposed: reference::columns_transposed,
            forward_dct: [
                reference::forward_dct::<4, 16, 48>,
                reference::forward_dct::<8, 64, 192>,
                reference::forward_dct::<16, 256, 768>,
                reference::forward_dct::<32, 1024, 3072>,
            ],
            inverse_dct: [
                reference::inverse_dct::<4, 16>,
                reference::inverse_dct::<8, 64>,
                reference::inverse_dct::<16, 256>,
                reference::inverse_dct::<32, 1024>,
            ],
            quantize: quant::quantize,
            dequantize: quant::dequantize,
            largest_magnitude: quant::largest_magnitude,
            last_nonzero_index: quant::last_nonzero_index,
        };
        #[cfg(target_arch = "x86_64")]
        if isa.min(detect()) >= Isa::Avx2 {
            use x86_transform as avx2;
            kernels.isa = Isa::Avx2;
            kernels.matrix_rows = transform::avx2::matrix_rows;
            kernels.columns_transposed = transform::avx2::columns_transposed;
            kernels.forward_dct = [
                avx2::forward_dct4,
                avx2::forward_dct8,
                avx2::forward_dct16,
                avx2::forward_dct32,
            ];
            kernels.inverse_dct = [
                avx2::inverse_dct4,
                avx2::inverse_dct8,
                avx2::inverse_dct16,
                avx2::inverse_dct32,
            ];
            kernels.quantize = avx2::quantize;
            kernels.dequantize = avx2::dequantize;
            kernels.largest_magnitude = avx2::largest_magnitude;
            kernels.last_nonzero_index = avx2::last_nonzero_index;
        }
        let _ = isa;
        kernels
    }

    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// `out[k] = Σ_j t[k][j]·input[j]` over 4 row vectors of `width` values, for a 4×4 `t`.
    #[inline]
    pub fn matrix_rows(&self, t: &[i32], input: &[i32], out: &mut [i32], width: usize) {
        // SAFETY: the table holds only kernels of levels the CPU supports (see `new`); the
        // kernel itself indexes only through bounds-checked slices.
        unsafe { (self.matrix_rows)(t, input, out, width) }
    }

    /// `out[j][c] = clip(round(Σ_k t[k][j]·input[k][c] >> shift), -limit, limit - 1)` for
    /// N×N blocks, skipping rows of zeros.
    #[inline]
    pub fn columns_transposed(
        &self,
        t: &[i32],
        input: &[i32],
        out: &mut [i32],
        n: usize,
        shift: u32,
        limit: i32,
    ) {
        // SAFETY: as in `matrix_rows`.
        unsafe { (self.columns_transposed)(t, input, out, n, shift, limit) }
    }

    /// The 2-D DCT of an N×N residual (row-major, N = 1 << `log2n`, 4 to 32) with the basis
    /// `matrices`: columns rounded by log2(N) - 1, then rows rounded by log2(N) + 6;
    /// coefficients row-major, the vertical frequency as the row.
    #[inline]
    pub fn forward_dct(
        &self,
        matrices: &Matrices,
        residual: &[i32],
        coeffs: &mut [i32],
        log2n: u32,
    ) {
        assert!((2..=5).contains(&log2n));
        let len = 1 << (2 * log2n);
        let (residual, coeffs) = (&residual[..len], &mut coeffs[..len]);
        let index = log2n as usize - 2;
        // SAFETY: as in `matrix_rows`; both blocks are N² long (sliced above).
        unsafe { (self.forward_dct[index])(matrices, residual, coeffs) }
    }

    /// The 2-D inverse of [`Self::forward_dct`]: columns rounded by 7, then rows rounded by 12,
    /// each pass clipped to [-limit, limit - 1].
    #[inline]
    pub fn inverse_dct(
        &self,
        matrices: &Matrices,
        coeffs: &[i32],
        residual: &mut [i32],
        log2n: u32,
        limit: i32,
    ) {
        assert!((2..=5).contains(&log2n) && limit > 0);
        let len = 1 << (2 * log2n);
        let (coeffs, residual) = (&coeffs[..len], &mut residual[..len]);
        let index = log2n as usize - 2;
        // SAFETY: as in `forward_dct`.
        unsafe { (self.inverse_dct[index])(matrices, coeffs, residual, limit) }
    }

    /// Dead-zone quantisation in 32 bits: `levels[i] = ±min((|coeffs[i]|·scale + offset) >>
    /// shift, max_level)` with the coefficient's sign, over the shorter slice; the number of
    /// nonzero levels. `|c|·scale + offset` must fit 32 bits unsigned for every coefficient
    /// (it wraps otherwise, as the reference does).
    #[inline]
    pub fn quantize(
        &self,
        coeffs: &[i32],
        levels: &mut [i32],
        scale: u32,
        offset: u32,
        shift: u32,
        max_level: u32,
    ) -> usize {
        assert!(shift < 32);
        // SAFETY: as in `matrix_rows`.
        unsafe { (self.quantize)(coeffs, levels, scale, offset, shift, max_level) }
    }

    /// `coeffs[i] = clamp((clamp(levels[i], -most, most)·scale + 2^(shift - 1)) >> shift,
    /// -limit, limit - 1)` over the shorter slice; `most` must keep `most·scale + 2^(shift - 1)`
    /// within 32 bits.
    #[inline]
    pub fn dequantize(
        &self,
        levels: &[i32],
        coeffs: &mut [i32],
        (scale, shift): (i32, u32),
        most: i32,
        limit: i32,
    ) {
        assert!((1..32).contains(&shift) && most >= 0 && limit > 0);
        assert!(
            i64::from(most) * i64::from(scale).abs() + (1 << (shift - 1)) <= i64::from(i32::MAX)
        );
        // SAFETY: as in `matrix_rows`.
        unsafe { (self.dequantize)(levels, coeffs, (scale, shift), most, limit) }
    }

    /// The largest `|c|` of `coeffs` (0 when empty), unsigned so that `i32::MIN` has one.
    #[inline]
    pub fn largest_magnitude(&self, coeffs: &[i32]) -> u32 {
        // SAFETY: as in `matrix_rows`.
        unsafe { (self.largest_magnitude)(coeffs) }
    }

    /// The largest `index_of[k]` of a nonzero `levels[k]` over the shorter slice, -1 when
    /// every level is zero (with a scan's inverse: the scan index of the last nonzero level).
    #[inline]
    pub fn last_nonzero_index(&self, levels: &[i32], index_of: &[u16]) -> i32 {
        // SAFETY: as in `matrix_rows`.
        unsafe { (self.last_nonzero_index)(levels, index_of) }
    }
}

/// The transform kernels of [`max_isa`], which the codec runs.
pub fn transforms() -> &'static Transforms {
    static TRANSFORMS: OnceLock<Transforms> = OnceLock::new();
    TRANSFORMS.get_or_init(|| Transforms::new(max_isa()))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_rng::Rng;

    const SEED: u32 = 0x9E37_79B9;

    fn levels() -> impl Iterator<Item = Isa> {
        max_isa().up_to()
    }

    /// Random bytes, and the extremes where 16-bit sums are at their largest.
    fn block(rng: &mut Rng, len: usize, pattern: u32) -> Vec<u8> {
        (0..len)
            .map(|i| match pattern {
                0 => rng.next() as u8,
                1 => 255 * (i % 2) as u8,
                2 => 255,
                _ => 0,
            })
            .collect()
    }

    #[test]
    fn satd_of_every_level_equals_the_reference() {
        let mut rng = Rng(SEED);
        for isa in levels() {
            let kernels = Kernels::<u8>::new(isa);
            for w in (4..=64).step_by(4) {
                for h in [4, 8, 12, 16, 32, 64] {
                    for pattern in 0..4 {
                        let (sa, sb) = (w + 3, 80);
                        let a = block(&mut rng, sa * h, pattern);
                        let b = block(&mut rng, sb * h, 3 - pattern.min(3));
                        assert_eq!(
                            kernels.satd(&a, sa, &b, sb, w, h),
                            satd::satd(&a, sa, &b, sb, w, h),
                            "{isa:?} {w}x{h} pattern {pattern} seed {SEED:#x}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn sad_of_every_level_equals_the_reference() {
        let mut rng = Rng(SEED);
        for isa in levels() {
            let (bytes, words) = (Kernels::<u8>::new(isa), Kernels::<u16>::new(isa));
            for w in 1..=64 {
                for h in [1, 2, 3, 4, 8, 16, 32, 64] {
                    for pattern in 0..4 {
                        let (sa, sb) = (w + 3, 80);
                        let a = block(&mut rng, sa * h, pattern);
                        let b = block(&mut rng, sb * h, 3 - pattern.min(3));
                        assert_eq!(
                            bytes.sad(&a, sa, &b, sb, w, h),
                            sad::sad(&a, sa, &b, sb, w, h),
                            "{isa:?} {w}x{h} pattern {pattern} seed {SEED:#x}"
                        );
                        // Deeper samples: the bytes scaled up to 10 and 16 bits.
                        for shift in [2, 8] {
                            let wide = |v: &[u8]| -> Vec<u16> {
                                v.iter().map(|&s| u16::from(s) << shift).collect()
                            };
                            let (a, b) = (wide(&a), wide(&b));
                            assert_eq!(
                                words.sad(&a, sa, &b, sb, w, h),
                                sad::sad(&a, sa, &b, sb, w, h),
                                "{isa:?} {w}x{h} pattern {pattern} << {shift} seed {SEED:#x}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn sse_of_every_level_equals_the_reference() {
        let mut rng = Rng(SEED);
        for isa in levels() {
            let (bytes, words) = (Kernels::<u8>::new(isa), Kernels::<u16>::new(isa));
            for w in 1..=64 {
                for h in [1, 2, 3, 4, 8, 16, 32, 64] {
                    for pattern in 0..4 {
                        // Tight rows (as the codec's blocks) and rows inside wider ones.
                        for (sa, sb) in [(w, w), (w + 3, 80), (w, 80)] {
                            let a = block(&mut rng, sa * h, pattern);
                            let b = block(&mut rng, sb * h, 3 - pattern.min(3));
                            assert_eq!(
                                bytes.sse(&a, sa, &b, sb, w, h),
                                sse::sse(&a, sa, &b, sb, w, h),
                                "{isa:?} {w}x{h} strides {sa} {sb} pattern {pattern}"
                            );
                            // 10-bit samples, whose squares still fit the reference's rows.
                            let wide = |v: &[u8]| -> Vec<u16> {
                                v.iter().map(|&s| u16::from(s) << 2).collect()
                            };
                            let (a, b) = (wide(&a), wide(&b));
                            assert_eq!(
                                words.sse(&a, sa, &b, sb, w, h),
                                sse::sse(&a, sa, &b, sb, w, h),
                                "{isa:?} {w}x{h} strides {sa} {sb} pattern {pattern} 10-bit"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn interpolation_of_every_level_equals_the_reference() {
        let mut rng = Rng(SEED);
        // The codec's own filters, whatever they are.
        let (luma, chroma) = (
            crate::inter::interp::LUMA_TAPS,
            crate::inter::interp::CHROMA_TAPS,
        );
        // Σ|taps| = 128, the most that 16-bit sums of bytes hold: the kernels run them.
        let bound_8: [i32; 8] = [-8, 8, -16, 64, 16, -8, 8, 0];
        let bound_4: [i32; 4] = [-16, 96, 8, -8];
        // Too large for 16-bit sums: the kernels must still match (by falling back).
        let large_8: [i32; 8] = [-3, 9, -30, 120, 60, -40, 12, -4];
        let large_4: [i32; 4] = [-20, 120, 60, -32];
        let luma_taps = [
            None,
            Some(&luma[0]),
            Some(&luma[1]),
            Some(&luma[2]),
            Some(&bound_8),
            Some(&large_8),
        ];
        let chroma_taps: Vec<Option<&[i32; 4]>> = std::iter::once(None)
            .chain(chroma.iter().map(Some))
            .chain([Some(&bound_4), Some(&large_4)])
            .collect();
        // Every block width the codec predicts (luma 8 to 64, chroma 4 to 32, the search's
        // half-sample tiles 64 and 34 wide), odd heights, and widths it never uses.
        let sizes = [
            (4, 4),
            (4, 8),
            (4, 16),
            (4, 32),
            (4, 64),
            (4, 1),
            (4, 3),
            (4, 7),
            (4, 65),
            (8, 8),
            (8, 4),
            (16, 16),
            (32, 32),
            (64, 64),
            (64, 50),
            (34, 64),
            (34, 50),
            (24, 3),
            (48, 17),
            (56, 5),
            (40, 9),
            (2, 2),
            (12, 4),
            (20, 6),
        ];
        // Random, columns of 0 and 255, all 255, checkerboard, rows of 0 and 255.
        for pattern in 0..5 {
            let mut plane = PaddedPlane::<u8>::new(96, 80, 16, 8);
            let (len, stride) = (plane.data.len(), plane.stride);
            let values = match pattern {
                0..=2 => block(&mut rng, len, pattern),
                3 => (0..len)
                    .map(|i| 255 * ((i % stride + i / stride) % 2) as u8)
                    .collect(),
                _ => (0..len).map(|i| 255 * ((i / stride) % 2) as u8).collect(),
            };
            plane.data.copy_from_slice(&values);
            for isa in levels() {
                let kernels = Kernels::<u8>::new(isa);
                for (w, h) in sizes {
                    for origin in [(0, 0), (5, 7), (-3, -2), (96 - w as isize, 80 - h as isize)] {
                        // A sentinel tail: nothing past the block is written.
                        let mut out = vec![0xa5u8; w * h + 16];
                        let mut expected = out.clone();
                        for tx in luma_taps {
                            for ty in luma_taps {
                                kernels.interpolate_8tap(
                                    &plane,
                                    origin,
                                    (w, h),
                                    (tx, ty),
                                    &mut out,
                                );
                                mc::interpolate(&plane, origin, (w, h), (tx, ty), &mut expected);
                                assert_eq!(
                                    out, expected,
                                    "{isa:?} {w}x{h} at {origin:?} 8-tap {tx:?} {ty:?} \
                                     pattern {pattern} seed {SEED:#x}"
                                );
                            }
                        }
                        for &tx in &chroma_taps {
                            for &ty in &chroma_taps {
                                kernels.interpolate_4tap(
                                    &plane,
                                    origin,
                                    (w, h),
                                    (tx, ty),
                                    &mut out,
                                );
                                mc::interpolate(&plane, origin, (w, h), (tx, ty), &mut expected);
                                assert_eq!(
                                    out, expected,
                                    "{isa:?} {w}x{h} at {origin:?} 4-tap {tx:?} {ty:?} \
                                     pattern {pattern} seed {SEED:#x}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn transforms_of_every_level_equal_the_reference() {
        let mut rng = Rng(SEED);
        let matrices: Matrices = std::array::from_fn(|i| {
            let n = 4usize << i;
            (0..n * n).map(|_| (rng.next() % 181) as i32 - 90).collect()
        });
        let reference = Transforms::new(Isa::Reference);
        for isa in levels() {
            let kernels = Transforms::new(isa);
            for log2n in 2..=5u32 {
                let n = 1usize << log2n;
                for pattern in 0..3 {
                    // Residual-sized inputs for the rows, coefficient-sized for the columns
                    // (some rows left zero, as the inverse skips them).
                    let input: Vec<i32> = (0..n * n)
                        .map(|i| match pattern {
                            0 => (rng.next() % 511) as i32 - 255,
                            1 => {
                                if i % 3 == 0 {
                                    255
                                } else {
                                    -255
                                }
                            }
                            _ => {
                                if (i / n).is_multiple_of(2) {
                                    (rng.next() % 65536) as i32 - 32768
                                } else {
                                    0
                                }
                            }
                        })
                        .collect();
                    let (mut got, mut want) = (vec![0; n * n], vec![0; n * n]);
                    let small: Vec<i32> = input.iter().map(|&v| v.clamp(-255, 255)).collect();
                    if n == 4 {
                        kernels.matrix_rows(&matrices[0], &small, &mut got, 4);
                        reference.matrix_rows(&matrices[0], &small, &mut want, 4);
                        assert_eq!(got, want, "{isa:?} 4x4 rows pattern {pattern}");
                    }
                    let t = &matrices[log2n as usize - 2];
                    kernels.columns_transposed(t, &input, &mut got, n, 7, 1 << 15);
                    reference.columns_transposed(t, &input, &mut want, n, 7, 1 << 15);
                    assert_eq!(got, want, "{isa:?} columns {n} pattern {pattern}");
                }
            }
        }
    }

    /// N×N blocks to test the 2-D transforms with at `bit_depth`: random residuals, the
    /// extremes ±max in patterns (all one sign, alternating, halves, checkerboard), and the
    /// same built from random values over the whole 32-bit range.
    fn residual_blocks(rng: &mut Rng, n: usize, bit_depth: u32) -> Vec<Vec<i32>> {
        let max = (1 << bit_depth) - 1;
        let mut blocks: Vec<Vec<i32>> = (0..8)
            .map(|p| {
                (0..n * n)
                    .map(|i| {
                        let (x, y) = (i % n, i / n);
                        let positive = match p {
                            0 => true,
                            1 => false,
                            2 => (x + y) % 2 == 0,
                            3 => x < n / 2,
                            4 => y < n / 2,
                            5 => x % 2 == 0,
                            6 => y % 2 == 1,
                            _ => (x * 7 + y * 3) % 5 < 2,
                        };
                        if positive { max } else { -max }
                    })
                    .collect()
            })
            .collect();
        for _ in 0..8 {
            blocks.push(
                (0..n * n)
                    .map(|_| rng.below(2 * max as u32 + 1) - max)
                    .collect(),
            );
        }
        blocks
    }

    /// Coefficient blocks for the inverse at a clip `limit`: the clip limits in patterns,
    /// random values within them, and sparse blocks (only a top-left corner nonzero, or only a
    /// row or column), as quantisation leaves them.
    fn coefficient_blocks(rng: &mut Rng, n: usize, limit: i32) -> Vec<Vec<i32>> {
        let mut blocks = Vec::new();
        for p in 0..6 {
            blocks.push(
                (0..n * n)
                    .map(|i| {
                        let (x, y) = (i % n, i / n);
                        let high = match p {
                            0 => true,
                            1 => false,
                            2 => (x + y) % 2 == 0,
                            3 => x % 3 == 0,
                            4 => (x * 5 + y * 3) % 7 < 3,
                            _ => y % 2 == 0,
                        };
                        if high { limit - 1 } else { -limit }
                    })
                    .collect(),
            );
        }
        let random = |rng: &mut Rng| rng.below(2 * limit as u32) - limit;
        for _ in 0..6 {
            blocks.push((0..n * n).map(|_| random(rng)).collect());
        }
        for _ in 0..24 {
            let (w, h) = (
                1 + rng.below(n as u32) as usize,
                1 + rng.below(n as u32) as usize,
            );
            let density = 1 + rng.below(4) as u32;
            let block = (0..n * n)
                .map(|i| {
                    let (x, y) = (i % n, i / n);
                    if x < w && y < h && rng.next().is_multiple_of(density) {
                        random(rng) >> rng.below(16)
                    } else {
                        0
                    }
                })
                .collect();
            blocks.push(block);
        }
        blocks.push(vec![0; n * n]);
        blocks
    }

    #[test]
    fn dcts_of_every_level_equal_the_reference() {
        let mut rng = Rng(SEED);
        let matrices = crate::transform::matrices();
        let reference = Transforms::new(Isa::Reference);
        for isa in levels() {
            let kernels = Transforms::new(isa);
            for log2n in 2..=5u32 {
                let n = 1usize << log2n;
                for bit_depth in [8, 10, 12] {
                    for (b, residual) in residual_blocks(&mut rng, n, bit_depth).iter().enumerate()
                    {
                        let (mut got, mut want) = (vec![7; n * n], vec![0; n * n]);
                        kernels.forward_dct(matrices, residual, &mut got, log2n);
                        reference.forward_dct(matrices, residual, &mut want, log2n);
                        assert_eq!(got, want, "{isa:?} forward {n} {bit_depth}-bit block {b}");
                        // The coefficients of a residual go back through the inverse.
                        let limit = crate::transform::coefficient_limit(bit_depth);
                        let coeffs: Vec<i32> =
                            want.iter().map(|&c| c.clamp(-limit, limit - 1)).collect();
                        kernels.inverse_dct(matrices, &coeffs, &mut got, log2n, limit);
                        reference.inverse_dct(matrices, &coeffs, &mut want, log2n, limit);
                        assert_eq!(
                            got, want,
                            "{isa:?} round trip {n} {bit_depth}-bit block {b}"
                        );
                    }
                    let limit = crate::transform::coefficient_limit(bit_depth);
                    for (b, coeffs) in coefficient_blocks(&mut rng, n, limit).iter().enumerate() {
                        let (mut got, mut want) = (vec![7; n * n], vec![0; n * n]);
                        kernels.inverse_dct(matrices, coeffs, &mut got, log2n, limit);
                        reference.inverse_dct(matrices, coeffs, &mut want, log2n, limit);
                        assert_eq!(got, want, "{isa:?} inverse {n} {bit_depth}-bit block {b}");
                    }
                }
                // Inputs no codec block reaches still give the reference's (wrapping) result.
                let wild: Vec<i32> = (0..n * n).map(|_| rng.next() as i32).collect();
                let (mut got, mut want) = (vec![0; n * n], vec![0; n * n]);
                kernels.forward_dct(matrices, &wild, &mut got, log2n);
                reference.forward_dct(matrices, &wild, &mut want, log2n);
                assert_eq!(got, want, "{isa:?} forward {n} full-range input");
                kernels.inverse_dct(matrices, &wild, &mut got, log2n, i32::MAX);
                reference.inverse_dct(matrices, &wild, &mut want, log2n, i32::MAX);
                assert_eq!(got, want, "{isa:?} inverse {n} full-range input");
            }
        }
    }

    #[test]
    fn quantisation_of_every_level_equals_the_reference() {
        let mut rng = Rng(SEED);
        let reference = Transforms::new(Isa::Reference);
        for isa in levels() {
            let kernels = Transforms::new(isa);
            for len in [0, 1, 7, 16, 21, 64, 256, 1024] {
                for (scale, shift) in [(26214u32, 14 + 5), (14564, 14 + 8), (16384, 14 + 15)] {
                    let largest = (u32::MAX - (1 << (shift - 1))) / scale;
                    for rounding in [0u32, 1 << (shift - 3), 1 << (shift - 1), 1 << shift] {
                        let coeffs: Vec<i32> = (0..len)
                            .map(|i| match i % 5 {
                                0 => 0,
                                1 => largest as i32,
                                2 => -(largest as i32),
                                _ => rng.below(2 * largest + 1) - largest as i32,
                            })
                            .collect();
                        let (mut got, mut want) = (vec![0; len], vec![0; len]);
                        let g =
                            kernels.quantize(&coeffs, &mut got, scale, rounding, shift, 1 << 15);
                        let w =
                            reference.quantize(&coeffs, &mut want, scale, rounding, shift, 1 << 15);
                        assert_eq!(
                            (g, &got),
                            (w, &want),
                            "{isa:?} {len} {scale} {shift} {rounding}"
                        );
                    }
                }
            }
            for extreme in [i32::MIN, i32::MAX, -1, 0] {
                for len in [1, 9, 16] {
                    let mut coeffs = vec![3; len];
                    coeffs[len / 2] = extreme;
                    assert_eq!(
                        kernels.largest_magnitude(&coeffs),
                        reference.largest_magnitude(&coeffs),
                        "{isa:?} largest {extreme} of {len}"
                    );
                }
            }
            for len in [0, 1, 7, 16, 21, 64, 1024] {
                let index_of: Vec<u16> = (0..len).map(|_| rng.below(1024) as u16).collect();
                for nonzero in [0, 1, 3, len] {
                    let mut levels = vec![0i32; len];
                    for _ in 0..nonzero {
                        if len > 0 {
                            levels[rng.below(len as u32) as usize] = rng.next() as i32 | 1;
                        }
                    }
                    // A longer index list than levels: only the common length counts.
                    let longer: Vec<u16> = index_of.iter().copied().chain([1023; 5]).collect();
                    for indices in [&index_of, &longer] {
                        assert_eq!(
                            kernels.last_nonzero_index(&levels, indices),
                            reference.last_nonzero_index(&levels, indices),
                            "{isa:?} last nonzero of {len} with {nonzero} set"
                        );
                    }
                }
            }
            for len in [0, 1, 7, 16, 21, 64, 1024] {
                for (scale, shift, limit) in [
                    (40 * 16, 4, 1 << 15),
                    ((72 * 16) << 8, 8, 1 << 15),
                    ((64 * 16) << 3, 6, 1 << 17),
                ] {
                    let most = ((i64::from(limit) << shift) + scale as i64 - 1) / scale as i64;
                    let levels: Vec<i32> = (0..len)
                        .map(|i| match i % 3 {
                            0 => (rng.next() % 9) as i32 - 4,
                            1 => rng.next() as i32,
                            _ => (rng.next() % 4001) as i32 - 2000,
                        })
                        .collect();
                    let (mut got, mut want) = (vec![9; len + 3], vec![9; len + 3]);
                    kernels.dequantize(&levels, &mut got, (scale, shift), most as i32, limit);
                    reference.dequantize(&levels, &mut want, (scale, shift), most as i32, limit);
                    assert_eq!(got, want, "{isa:?} dequantise {len} {scale} {shift}");
                }
            }
            // A longer output than input: only the common length is written.
            let coeffs = [5000, -5000, 0, 1];
            let (mut got, mut want) = ([9; 12], [9; 12]);
            let g = kernels.quantize(&coeffs, &mut got, 16384, 1 << 18, 19, 1 << 15);
            let w = reference.quantize(&coeffs, &mut want, 16384, 1 << 18, 19, 1 << 15);
            assert_eq!((g, got), (w, want), "{isa:?} short input");
        }
    }

    #[test]
    fn intra_blend_of_every_level_equals_the_reference() {
        let mut rng = Rng(SEED);
        for isa in levels() {
            let kernels = Kernels::<u8>::new(isa);
            for len in [1, 4, 7, 8, 16, 24, 32, 33] {
                for pattern in 0..4 {
                    let src = block(&mut rng, len + 1 + pattern as usize, pattern);
                    for fraction in [0, 1, 13, 16, 31] {
                        let (mut got, mut want) = (vec![0u8; len], vec![0u8; len]);
                        kernels.blend_row(&src, fraction, &mut got);
                        intra::blend_row(&src, fraction, &mut want);
                        assert_eq!(got, want, "{isa:?} {len} {fraction} pattern {pattern}");
                    }
                }
            }
        }
    }

    #[test]
    fn reconstruction_of_every_level_equals_the_reference() {
        let mut rng = Rng(SEED);
        for isa in levels() {
            let kernels = Kernels::<u8>::new(isa);
            for len in [0, 1, 4, 15, 16, 17, 32, 64, 1024] {
                let prediction = block(&mut rng, len, 0);
                // Small residuals, ones that clip at either end, and ones past 16 bits (an inverse
                // transform's stay far inside 32 bits, where the sum cannot overflow).
                let residual: Vec<i32> = (0..len)
                    .map(|i| match i % 4 {
                        0 => (rng.next() % 64) as i32 - 32,
                        1 => (rng.next() % 1024) as i32 - 512,
                        2 => (rng.next() >> 8) as i32 - (1 << 23),
                        _ => [-(1 << 24), 1 << 24, -40_000, 40_000][(i / 4) % 4],
                    })
                    .collect();
                let (mut got, mut want) = (vec![7u8; len], vec![7u8; len]);
                kernels.add_clipped(&prediction, &residual, 255, &mut got);
                residual::add_clipped(&prediction, &residual, 255, &mut want);
                assert_eq!(got, want, "{isa:?} {len} seed {SEED:#x}");
            }
        }
    }

    #[test]
    fn sao_kernels_of_every_level_equal_the_reference() {
        let mut rng = Rng(SEED);
        let w = 100;
        for pattern in 0..4 {
            // Rows near each other (so that edge categories other than 0 occur) or extremes.
            let mut row = |bias: u8| -> Vec<u8> {
                (0..w)
                    .map(|i| match pattern {
                        0 => 120u8
                            .wrapping_add(bias)
                            .wrapping_add((rng.next() % 5) as u8),
                        1 => rng.next() as u8,
                        2 => 255 * ((i + usize::from(bias)) % 2) as u8,
                        _ => [0, 255][(rng.next() % 2) as usize],
                    })
                    .collect()
            };
            let (ra, cur, rb, orig) = (row(1), row(0), row(2), row(3));
            let original: Vec<u8> = (0..w).map(|_| rng.next() as u8).collect();
            for isa in levels() {
                let kernels = Kernels::<u8>::new(isa);
                for (start, end) in [
                    (0, 100),
                    (1, 99),
                    (1, 64),
                    (64, 99),
                    (3, 20),
                    (5, 9),
                    (7, 7),
                ] {
                    let span = start..end;
                    for table in [
                        [0, 7, 3, -2, -7],
                        [5, -1, 0, 1, 6],
                        [0, 127, 127, -127, -127],
                    ] {
                        for dx in [-1isize, 0, 1] {
                            if dx != 0 && (start == 0 || end == w) {
                                continue;
                            }
                            let rows = (&ra[..], &cur[..], &rb[..]);
                            let (mut got, mut want) = (original.clone(), original.clone());
                            kernels.sao_edge_row(rows, dx, span.clone(), &table, 255, &mut got);
                            sao::edge_row(rows, dx, span.clone(), &table, 255, &mut want);
                            assert_eq!(got, want, "{isa:?} edge {span:?} {dx} pattern {pattern}");
                            assert_eq!(
                                kernels.sao_edge_stats(rows, &orig, dx, span.clone()),
                                sao::edge_stats(rows, &orig, dx, span.clone()),
                                "{isa:?} stats {span:?} {dx} pattern {pattern}"
                            );
                        }
                    }
                    for start_band in [0, 13, 30] {
                        let mut table = [0i32; 32];
                        for (k, o) in [7, -7, 3, -127].into_iter().enumerate() {
                            table[(start_band + k) % 32] = o;
                        }
                        let (mut got, mut want) = (original.clone(), original.clone());
                        kernels.sao_band_row(&cur, span.clone(), &table, 3, 255, &mut got);
                        sao::band_row(&cur, span.clone(), &table, 3, 255, &mut want);
                        assert_eq!(got, want, "{isa:?} band {span:?} pattern {pattern}");
                    }
                }
            }
        }
    }

    /// A plane of `T` samples for the deblocking tests: random (anywhere, or near a level so the
    /// filters' thresholds pass), a step, or the extremes.
    fn edge_plane<T: Sample>(
        rng: &mut Rng,
        len: usize,
        stride: usize,
        max: u32,
        pattern: u32,
    ) -> Vec<T> {
        let base = rng.next() % (max + 1);
        (0..len)
            .map(|i| {
                let v = match pattern {
                    0 => rng.next() % (max + 1),
                    1 => (base + rng.next() % (max / 16 + 1)).min(max),
                    2 => [0, max][(i % stride >= stride / 2) as usize],
                    3 => [0, max][(rng.next() % 2) as usize],
                    _ => (base + (i % stride) as u32 * 3 + rng.next() % 4).min(max),
                };
                T::from_u32(v)
            })
            .collect()
    }

    fn deblock_kernels_match<T: Sample>(kernels: &Kernels<T>, bit_depth: u32) {
        use LumaFilter::*;
        let mut rng = Rng(SEED);
        let max = (1u32 << bit_depth) - 1;
        let filters = [
            Skip,
            Strong,
            Normal {
                p1: false,
                q1: false,
            },
            Normal {
                p1: true,
                q1: false,
            },
            Normal {
                p1: false,
                q1: true,
            },
            Normal { p1: true, q1: true },
        ];
        let scale = 1 << (bit_depth - 8);
        let tcs = [0, 1, 2, 5, 13, 28]
            .map(|t| t * scale)
            .into_iter()
            .chain([1000, 1001, 5000]);
        // 24 columns by 24 rows; edges at column/row 8, or at 12 with a padded stride.
        for stride in [24usize, 40] {
            for pattern in 0..5 {
                let original: Vec<T> = edge_plane(&mut rng, stride * 24, stride, max, pattern);
                for tc in tcs.clone() {
                    for (a, b) in filters.iter().flat_map(|&a| filters.map(|b| (a, b))) {
                        for (at, steps) in [
                            (4 * stride + 8, (1, stride as isize)),
                            (5 * stride + 12, (1, stride as isize)),
                            (8 * stride + 4, (stride as isize, 1)),
                            (12 * stride + 9, (stride as isize, 1)),
                            // Neither layout the vector code takes.
                            (6 * stride + 7, (2, 2 * stride as isize)),
                        ] {
                            let (mut got, mut want) = (original.clone(), original.clone());
                            kernels.deblock_luma(&mut got, at, steps, [a, b], tc, max as i32);
                            deblock::luma(&mut want, at, steps, [a, b], tc, max as i32);
                            assert!(
                                got == want,
                                "{:?} {bit_depth}-bit luma {a:?} {b:?} tc {tc} at {at} {steps:?} \
                                 pattern {pattern} seed {SEED:#x}",
                                kernels.isa()
                            );
                            for lines in [4, 2, 1] {
                                let (mut got, mut want) = (original.clone(), original.clone());
                                kernels.deblock_chroma(&mut got, at, steps, lines, tc, max as i32);
                                deblock::chroma(&mut want, at, steps, lines, tc, max as i32);
                                assert!(
                                    got == want,
                                    "{:?} {bit_depth}-bit chroma {lines} lines tc {tc} at {at} \
                                     {steps:?} pattern {pattern} seed {SEED:#x}",
                                    kernels.isa()
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn deblocking_kernels_of_every_level_equal_the_reference() {
        for isa in levels() {
            deblock_kernels_match(&Kernels::<u8>::new(isa), 8);
            for bit_depth in [10, 12] {
                deblock_kernels_match(&Kernels::<u16>::new(isa), bit_depth);
            }
        }
    }

    #[test]
    fn tables_never_exceed_the_detected_level() {
        assert!(Transforms::new(Isa::Avx2).isa() <= detect());
        assert!(Kernels::<u8>::new(Isa::Avx2).isa() <= detect());
        assert_eq!(Kernels::<u8>::new(Isa::Reference).isa(), Isa::Reference);
        assert_eq!(Kernels::<u16>::new(Isa::Avx2).isa(), Isa::Reference);
    }
}
