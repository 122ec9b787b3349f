//! The DSP layer: every hot kernel has a plain-Rust reference, which defines the right answer,
//! and x86-64 versions selected once at run time, each tested bit-exact against the reference.
//! `unsafe` lives only in the ISA modules and at the one call through each table entry.
//!
//! Kernels are reached through [`Kernels`], a table per sample type filled for an instruction
//! set level: [`Kernels::new`] builds one for any level up to the detected one (tests keep one
//! per level side by side), and the codec uses the table of the detected level. Setting
//! `CODECLAB_ISA=reference` in the environment lowers that level to the reference code (it can
//! only lower it).

mod mc;
mod sao;
mod satd;
mod transform;
#[cfg(target_arch = "x86_64")]
mod x86;

pub use mc::interpolate as reference_interpolate;
pub use sao::edge_category;
pub use satd::satd as reference_satd;
pub use transform::Matrices;

use crate::picture::{PaddedPlane, Sample};
use std::ops::Range;
use std::sync::OnceLock;

/// Instruction set levels, in increasing order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Isa {
    Reference,
    Avx2,
}

impl Isa {
    /// Every level up to `self`, the reference first.
    pub fn up_to(self) -> impl Iterator<Item = Isa> {
        [Isa::Reference, Isa::Avx2]
            .into_iter()
            .filter(move |&isa| isa <= self)
    }
}

/// The highest level this CPU runs, lowered to the reference by `CODECLAB_ISA=reference`.
pub fn max_isa() -> Isa {
    static ISA: OnceLock<Isa> = OnceLock::new();
    *ISA.get_or_init(|| {
        let detected = detect();
        match std::env::var("CODECLAB_ISA").as_deref() {
            Ok("reference") => Isa::Reference,
            _ => detected,
        }
    })
}

fn detect() -> Isa {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        return Isa::Avx2;
    }
    Isa::Reference
}

/// `satd(a, a_stride, b, b_stride, w, h)`.
type SatdFn<T> = unsafe fn(&[T], usize, &[T], usize, usize, usize) -> u32;
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
type SaoEdgeStatsFn<T> = unsafe fn(SaoRows<'_, T>, &[T], isize, Range<usize>) -> [(i32, i32); 5];

/// The kernels of one sample type at one instruction set level.
pub struct Kernels<T: Sample> {
    isa: Isa,
    satd: SatdFn<T>,
    interpolate_8tap: InterpolateFn<T, 8>,
    interpolate_4tap: InterpolateFn<T, 4>,
    sao_edge_row: SaoEdgeRowFn<T>,
    sao_band_row: SaoBandRowFn<T>,
    sao_edge_stats: SaoEdgeStatsFn<T>,
}

impl<T: Sample> Kernels<T> {
    /// The reference kernels.
    fn reference() -> Self {
        Kernels {
            isa: Isa::Reference,
            satd: satd::satd::<T>,
            interpolate_8tap: mc::interpolate::<T, 8>,
            interpolate_4tap: mc::interpolate::<T, 4>,
            sao_edge_row: sao::edge_row::<T>,
            sao_band_row: sao::band_row::<T>,
            sao_edge_stats: sao::edge_stats::<T>,
        }
    }

    pub fn isa(&self) -> Isa {
        self.isa
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
        if h > 0 {
            assert!(a.len() >= (h - 1) * a_stride + w && b.len() >= (h - 1) * b_stride + w);
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

    /// SAO edge statistics of one row segment: per edge category 0 to 4 (see
    /// `edge_category`), Σ(orig[x] - cur[x]) and the number of samples.
    #[inline]
    pub fn sao_edge_stats(
        &self,
        rows: SaoRows<'_, T>,
        orig: &[T],
        dx: isize,
        span: Range<usize>,
    ) -> [(i32, i32); 5] {
        check_sao_edge(rows, dx, &span);
        assert!(span.end <= orig.len() || span.is_empty());
        // SAFETY: as in `sao_edge_row`.
        unsafe { (self.sao_edge_stats)(rows, orig, dx, span) }
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
            kernels.satd = x86::satd_avx2;
            kernels.interpolate_8tap = x86::interpolate_avx2::<8>;
            kernels.interpolate_4tap = x86::interpolate_avx2::<4>;
            kernels.sao_edge_row = x86::sao_edge_row_avx2;
            kernels.sao_band_row = x86::sao_band_row_avx2;
            kernels.sao_edge_stats = x86::sao_edge_stats_avx2;
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

type ForwardRowsFn = unsafe fn(&Matrices, &[i32], &mut [i32], usize, usize, &mut [i32]);
type MatrixRowsFn = unsafe fn(&[i32], &[i32], &mut [i32], usize);
type ColumnsTransposedFn = unsafe fn(&[i32], &[i32], &mut [i32], usize, u32, i32);

/// The transform kernels at one instruction set level (they work on 32-bit coefficients, the
/// same at every sample depth).
pub struct Transforms {
    isa: Isa,
    forward_rows: ForwardRowsFn,
    matrix_rows: MatrixRowsFn,
    columns_transposed: ColumnsTransposedFn,
}

impl Transforms {
    /// The kernels at `isa`, clamped to the detected level.
    pub fn new(isa: Isa) -> Self {
        #[cfg(target_arch = "x86_64")]
        if isa.min(detect()) >= Isa::Avx2 {
            return Transforms {
                isa: Isa::Avx2,
                forward_rows: transform::avx2::forward_rows,
                matrix_rows: transform::avx2::matrix_rows,
                columns_transposed: transform::avx2::columns_transposed,
            };
        }
        let _ = isa;
        Transforms {
            isa: Isa::Reference,
            forward_rows: transform::reference::forward_rows,
            matrix_rows: transform::reference::matrix_rows,
            columns_transposed: transform::reference::columns_transposed,
        }
    }

    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// `out[k] = Σ_j T_n[k][j]·input[j]` over the `n` row vectors of `width` values of `input`
    /// (`T_n` from `matrices`), by even/odd butterflies; `scratch` holds 3·n·width values.
    #[inline]
    pub fn forward_rows(
        &self,
        matrices: &Matrices,
        input: &[i32],
        out: &mut [i32],
        n: usize,
        width: usize,
        scratch: &mut [i32],
    ) {
        // SAFETY: the table holds only kernels of levels the CPU supports (see `new`); the
        // kernels themselves are safe code.
        unsafe { (self.forward_rows)(matrices, input, out, n, width, scratch) }
    }

    /// `out[k] = Σ_j t[k][j]·input[j]` over 4 row vectors of `width` values, for a 4×4 `t`.
    #[inline]
    pub fn matrix_rows(&self, t: &[i32], input: &[i32], out: &mut [i32], width: usize) {
        // SAFETY: as in `forward_rows`.
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
        // SAFETY: as in `forward_rows`.
        unsafe { (self.columns_transposed)(t, input, out, n, shift, limit) }
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
    fn interpolation_of_every_level_equals_the_reference() {
        let mut rng = Rng(SEED);
        let luma: [[i32; 8]; 3] = [
            [-1, 4, -10, 58, 17, -5, 1, 0],
            [-1, 4, -11, 40, 40, -11, 4, -1],
            [0, 1, -5, 17, 58, -10, 4, -1],
        ];
        let chroma: [[i32; 4]; 7] = [
            [-2, 58, 10, -2],
            [-4, 54, 16, -2],
            [-6, 46, 28, -4],
            [-4, 36, 36, -4],
            [-4, 28, 46, -6],
            [-2, 16, 54, -4],
            [-2, 10, 58, -2],
        ];
        // Too large for 16-bit sums: the kernels must still match (by falling back).
        let large: [i32; 8] = [-3, 9, -30, 120, 60, -40, 12, -4];
        for pattern in 0..3 {
            let mut plane = PaddedPlane::<u8>::new(96, 80, 16, 8);
            let values = block(&mut rng, plane.data.len(), pattern);
            plane.data.copy_from_slice(&values);
            for isa in levels() {
                let kernels = Kernels::<u8>::new(isa);
                for (w, h) in [
                    (2, 2),
                    (4, 4),
                    (8, 8),
                    (8, 4),
                    (16, 16),
                    (24, 3),
                    (32, 32),
                    (64, 64),
                    (48, 17),
                    (56, 5),
                    (40, 9),
                ] {
                    for origin in [(0, 0), (5, 7), (-3, -2), (96 - w as isize, 80 - h as isize)] {
                        let mut out = vec![0u8; w * h];
                        let mut expected = vec![0u8; w * h];
                        let luma_taps = [
                            None,
                            Some(&luma[0]),
                            Some(&luma[1]),
                            Some(&luma[2]),
                            Some(&large),
                        ];
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
                                    "{isa:?} {w}x{h} 8-tap pattern {pattern}"
                                );
                            }
                        }
                        let chroma_taps = std::iter::once(None).chain(chroma.iter().map(Some));
                        for tx in chroma_taps.clone() {
                            for ty in chroma_taps.clone() {
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
                                    "{isa:?} {w}x{h} 4-tap pattern {pattern}"
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
                    let (mut s1, mut s2) = (vec![0; 3 * n * n], vec![0; 3 * n * n]);
                    let small: Vec<i32> = input.iter().map(|&v| v.clamp(-255, 255)).collect();
                    kernels.forward_rows(&matrices, &small, &mut got, n, n, &mut s1);
                    reference.forward_rows(&matrices, &small, &mut want, n, n, &mut s2);
                    assert_eq!(got, want, "{isa:?} forward rows {n} pattern {pattern}");
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

    #[test]
    fn tables_never_exceed_the_detected_level() {
        assert!(Transforms::new(Isa::Avx2).isa() <= detect());
        assert!(Kernels::<u8>::new(Isa::Avx2).isa() <= detect());
        assert_eq!(Kernels::<u8>::new(Isa::Reference).isa(), Isa::Reference);
        assert_eq!(Kernels::<u16>::new(Isa::Avx2).isa(), Isa::Reference);
    }
}
