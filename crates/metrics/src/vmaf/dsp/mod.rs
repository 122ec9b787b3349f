//! The DSP layer of the VMAF features, laid out as the codec's (`codeclab_codec::dsp`): every hot
//! kernel has a plain-Rust reference, which defines the right answer, and x86-64 versions
//! selected once at run time, each tested bit-exact against the reference. `unsafe` lives only in
//! the ISA modules and at the one call through each table entry.
//!
//! [`Kernels::new`] builds a table for any level up to the detected one (tests keep one per
//! level side by side); the features use [`kernels`], the table of [`max_isa`]. Setting
//! `CODECLAB_ISA=reference` in the environment lowers that level to the reference code, for the
//! kernels and for the code around them (it can only lower it).

pub(crate) mod adm;
pub(crate) mod vif;
#[cfg(target_arch = "x86_64")]
mod x86_adm;
#[cfg(target_arch = "x86_64")]
mod x86_vif;

use std::ops::Range;
use std::sync::OnceLock;

pub(crate) use adm::{BandRows, DecoupledRows};
pub(crate) use vif::{RowMoments, VerticalPass, VerticalRow, VifPlanes};

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
    *ISA.get_or_init(|| match std::env::var("CODECLAB_ISA").as_deref() {
        Ok("reference") => Isa::Reference,
        _ => detect(),
    })
}

fn detect() -> Isa {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        return Isa::Avx2;
    }
    Isa::Reference
}

/// `vif_vertical(planes, pass, out, offset, columns)`.
type VifVerticalFn =
    unsafe fn(VifPlanes<'_>, VerticalPass<'_>, &mut VerticalRow, usize, Range<usize>);
/// `vif_horizontal(input, filter, out, columns)`.
type VifHorizontalFn = unsafe fn(&VerticalRow, &[u32], &mut RowMoments, Range<usize>);
/// `vif_statistic_row(moments, columns, gain_limit, acc)`.
type VifStatisticRowFn = unsafe fn(&RowMoments, Range<usize>, f64, &mut vif::Accumulators);
/// `adm_decouple_row_level0(bands, gain_limit, out)`, and the same of levels 1 to 3.
type AdmDecoupleRowFn = unsafe fn(BandRows<'_>, f64, DecoupledRows<'_>);

/// The kernels of one instruction set level.
pub(crate) struct Kernels {
    isa: Isa,
    vif_vertical: VifVerticalFn,
    vif_horizontal: VifHorizontalFn,
    vif_statistic_row: VifStatisticRowFn,
    adm_decouple_row_level0: AdmDecoupleRowFn,
    adm_decouple_row_level123: AdmDecoupleRowFn,
}

impl Kernels {
    /// The kernels of `isa`, or of the detected level where that is lower.
    pub fn new(isa: Isa) -> Self {
        let mut kernels = Kernels {
            isa: Isa::Reference,
            vif_vertical: vif::vertical,
            vif_horizontal: vif::horizontal,
            vif_statistic_row: vif::statistic_row,
            adm_decouple_row_level0: adm::decouple_row_level0,
            adm_decouple_row_level123: adm::decouple_row_level123,
        };
        #[cfg(target_arch = "x86_64")]
        if isa.min(detect()) >= Isa::Avx2 {
            kernels.isa = Isa::Avx2;
            kernels.vif_vertical = x86_vif::vertical_avx2;
            kernels.vif_horizontal = x86_vif::horizontal_avx2;
            kernels.vif_statistic_row = x86_vif::statistic_row_avx2;
            kernels.adm_decouple_row_level0 = x86_adm::decouple_row_level0_avx2;
            kernels.adm_decouple_row_level123 = x86_adm::decouple_row_level123_avx2;
        }
        let _ = isa;
        kernels
    }

    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// VIF's vertical filter over `columns` of the rows `pass.rows`: the five moments of each
    /// column, rounded and shifted, into column `offset + column` of `out`.
    #[inline]
    pub fn vif_vertical(
        &self,
        planes: VifPlanes<'_>,
        pass: VerticalPass<'_>,
        out: &mut VerticalRow,
        offset: usize,
        columns: Range<usize>,
    ) {
        let width = planes.width;
        assert!(columns.start <= columns.end && columns.end <= width);
        assert!(pass.rows.len() == pass.filter.len() && pass.filter.len() % 2 == 1);
        let max_tap = if pass.samples_8bit { 1 << 15 } else { 1 << 16 };
        assert!(pass.filter.iter().all(|&c| c < max_tap) && pass.shift_mu > 0);
        assert!(pass.shift_mu <= 32 && pass.shift_sq <= 32);
        let rows_end = pass
            .rows
            .iter()
            .map(|&y| (y + 1) * width)
            .max()
            .unwrap_or(0);
        assert!(rows_end <= planes.reference.len() && rows_end <= planes.distorted.len());
        assert!(out.len() >= offset + columns.end);
        // SAFETY: the table holds only kernels of levels the CPU runs (see `new`); every row
        // read and every output written lies inside its slice (asserted above).
        unsafe { (self.vif_vertical)(planes, pass, out, offset, columns) }
    }

    /// VIF's horizontal filter over `columns`: `out.*[j] = Σ filter[k] · input.*[j + k]`, the
    /// means wrapping at 32 bits, the second moments rounded and shifted right by 16. The input
    /// holds one column more than the filter reads (the vector kernels take the taps in pairs).
    #[inline]
    pub fn vif_horizontal(
        &self,
        input: &VerticalRow,
        filter: &[u32],
        out: &mut RowMoments,
        columns: Range<usize>,
    ) {
        assert!(columns.start <= columns.end && filter.len() % 2 == 1);
        assert!(filter.iter().all(|&c| c < 1 << 16));
        assert!(input.len() >= columns.end + filter.len() && out.len() >= columns.end);
        // SAFETY: the table holds only kernels of levels the CPU runs (see `new`); every input
        // read and every output written lies inside its slice (asserted above).
        unsafe { (self.vif_horizontal)(input, filter, out, columns) }
    }
}

impl Kernels {
    /// VIF's statistic over `columns` of a filtered row, for one gain limit (at least 0, which
    /// bounds every product the kernels form), added to `acc`.
    #[inline]
    pub fn vif_statistic_row(
        &self,
        moments: &RowMoments,
        columns: Range<usize>,
        gain_limit: f64,
        acc: &mut vif::Accumulators,
    ) {
        assert!(columns.start <= columns.end && columns.end <= moments.len());
        assert!(gain_limit >= 0.0);
        // SAFETY: the table holds only kernels of levels the CPU runs (see `new`); every read
        // lies inside the rows (asserted above).
        unsafe { (self.vif_statistic_row)(moments, columns, gain_limit, acc) }
    }
}

impl Kernels {
    /// ADM's decoupling of one row of level 0 (coefficients within 16 bits, as the level-0
    /// wavelet stores them): the restored and additive parts of each band.
    #[inline]
    pub fn adm_decouple_row_level0(
        &self,
        bands: BandRows<'_>,
        gain_limit: f64,
        out: DecoupledRows<'_>,
    ) {
        Self::check_decouple_rows(&bands, &out);
        // SAFETY: the table holds only kernels of levels the CPU runs (see `new`); the rows all
        // have the same length (checked above), which the kernels' slicing relies on.
        unsafe { (self.adm_decouple_row_level0)(bands, gain_limit, out) }
    }

    /// ADM's decoupling of one row of levels 1 to 3.
    #[inline]
    pub fn adm_decouple_row_level123(
        &self,
        bands: BandRows<'_>,
        gain_limit: f64,
        out: DecoupledRows<'_>,
    ) {
        Self::check_decouple_rows(&bands, &out);
        // SAFETY: the table holds only kernels of levels the CPU runs (see `new`); the rows all
        // have the same length (checked above), which the kernels' slicing relies on.
        unsafe { (self.adm_decouple_row_level123)(bands, gain_limit, out) }
    }

    /// Asserts that the decoupling's rows all have the same length.
    #[inline]
    fn check_decouple_rows(bands: &BandRows<'_>, out: &DecoupledRows<'_>) {
        let n = bands.reference[0].len();
        assert!(
            bands
                .reference
                .iter()
                .chain(&bands.distorted)
                .all(|r| r.len() == n)
        );
        assert!(
            out.restored
                .iter()
                .chain(&out.additive)
                .all(|r| r.len() == n)
        );
    }
}

/// The level of the kernels the features run.
pub fn active_isa() -> Isa {
    kernels().isa()
}

/// The kernels of [`max_isa`], which the features run.
pub(crate) fn kernels() -> &'static Kernels {
    static KERNELS: OnceLock<Kernels> = OnceLock::new();
    KERNELS.get_or_init(|| Kernels::new(max_isa()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic pseudo-random generator (64-bit LCG, high bits).
    struct Lcg(u64);

    impl Lcg {
        fn below(&mut self, bound: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 33) % bound
        }
    }

    const VIF_FILTERS: [&[u32]; 4] = [
        &[
            489, 935, 1640, 2640, 3896, 5274, 6547, 7455, 7784, 7455, 6547, 5274, 3896, 2640, 1640,
            935, 489,
        ],
        &[1244, 3663, 7925, 12590, 14692, 12590, 7925, 3663, 1244],
        &[3571, 16004, 26386, 16004, 3571],
        &[10904, 43728, 10904],
    ];

    fn random_samples(rng: &mut Lcg, len: usize, max: u64) -> Vec<u16> {
        // Runs of extremes as well as noise, so that the largest sums occur.
        (0..len)
            .map(|_| match rng.below(4) {
                0 => max as u16,
                1 => 0,
                _ => rng.below(max + 1) as u16,
            })
            .collect()
    }

    #[test]
    fn vif_kernels_match_the_reference_on_random_rows() {
        let reference = Kernels::new(Isa::Reference);
        let mut rng = Lcg(7);
        for isa in max_isa().up_to() {
            let kernels = Kernels::new(isa);
            assert_eq!(kernels.isa(), isa);
            for (scale, filter) in VIF_FILTERS.iter().enumerate() {
                for width in [1, 7, 8, 15, 16, 17, 33, 67, 100] {
                    let half = filter.len() / 2;
                    let height = filter.len() + 3;
                    // 8-bit samples at scale 0, 10-bit at scale 0, up to 16 bits at later scales.
                    let cases: &[(u64, u32, u32, bool)] = if scale == 0 {
                        &[(255, 8, 0, true), (1023, 10, 4, false)]
                    } else {
                        &[(65535, 16, 16, false)]
                    };
                    for &(max, shift_mu, shift_sq, samples_8bit) in cases {
                        let r = random_samples(&mut rng, width * height, max);
                        let d = random_samples(&mut rng, width * height, max);
                        let planes = VifPlanes {
                            reference: &r,
                            distorted: &d,
                            width,
                        };
                        let rows: Vec<usize> = (0..filter.len())
                            .map(|_| rng.below(height as u64) as usize)
                            .collect();
                        let pass = VerticalPass {
                            filter,
                            rows: &rows,
                            shift_mu,
                            shift_sq,
                            samples_8bit,
                        };
                        let run = |k: &Kernels| {
                            let mut vertical = VerticalRow::zeroed(width + 2 * half + 1);
                            k.vif_vertical(planes, pass, &mut vertical, half, 0..width);
                            // Random padding: the horizontal pass reads it.
                            for v in &mut vertical.planes {
                                let mut pad = Lcg(width as u64);
                                for i in (0..half).chain(half + width..width + 2 * half + 1) {
                                    v[i] = pad.below(1 << 16) as u16 as i16;
                                }
                            }
                            let mut out = RowMoments::zeroed(width);
                            k.vif_horizontal(&vertical, filter, &mut out, 0..width);
                            (vertical, out)
                        };
                        let (want_v, want_h) = run(&reference);
                        let (got_v, got_h) = run(&kernels);
                        let what = format!("{isa:?} scale {scale} width {width} max {max}");
                        assert_eq!(got_v, want_v, "vertical, {what}");
                        assert_eq!(got_h.fields(), want_h.fields(), "horizontal, {what}");
                    }
                }
            }
        }
    }

    /// Filtered moments of a row: realistic neighbourhoods (variances small, large, zero,
    /// negative through rounding) and arbitrary 32-bit values.
    fn random_moments(rng: &mut Lcg, width: usize) -> RowMoments {
        let mut m = RowMoments::zeroed(width);
        for j in 0..width {
            let mean = |rng: &mut Lcg| rng.below(1 << 32);
            let (mu1, mu2) = (mean(rng), mean(rng));
            let spread = [0, 1 << 10, 1 << 17, 1 << 24, 1 << 31][rng.below(5) as usize];
            let near = |rng: &mut Lcg, square: u64| {
                (square + rng.below(spread + 1)).wrapping_sub(rng.below(4)) as u32
            };
            let values = if rng.below(8) == 0 {
                [0; 5].map(|_: u32| rng.below(1 << 32) as u32)
            } else {
                [
                    mu1 as u32,
                    mu2 as u32,
                    near(rng, (mu1 * mu1) >> 32),
                    near(rng, (mu2 * mu2) >> 32),
                    near(rng, (mu1 * mu2) >> 32),
                ]
            };
            for (field, v) in m.fields_mut().into_iter().zip(values) {
                field[j] = v;
            }
        }
        m
    }

    #[test]
    fn vif_statistic_kernels_match_the_reference_on_random_rows() {
        let reference = Kernels::new(Isa::Reference);
        let mut rng = Lcg(11);
        for isa in max_isa().up_to() {
            let kernels = Kernels::new(isa);
            for width in [1, 3, 4, 5, 8, 9, 64, 67, 1000, 40_003] {
                let mut moments = random_moments(&mut rng, width);
                // Runs of flat pixels (no variance: no log terms), as the vector kernels
                // skip look-ups that no pixel of a block needs.
                let flat = rng.below(width as u64) as usize;
                for field in moments.fields_mut() {
                    field[flat / 2..flat].fill(0);
                }
                for limit in [1.0, 100.0] {
                    for columns in [0..width, width / 3..width] {
                        let mut want = vif::Accumulators::default();
                        let mut got = want;
                        reference.vif_statistic_row(&moments, columns.clone(), limit, &mut want);
                        kernels.vif_statistic_row(&moments, columns, limit, &mut got);
                        assert_eq!(got, want, "{isa:?} width {width} limit {limit}");
                    }
                }
            }
        }
    }

    /// Wavelet coefficients within `±bound` (`-bound..=top`): extremes, zeros and noise, and a
    /// distorted band that mostly follows the reference (scaled, negated or perturbed), so that
    /// the orientations often agree and the gain limit applies.
    fn random_band_pair(rng: &mut Lcg, len: usize, bound: i64, top: i64) -> (Vec<i32>, Vec<i32>) {
        let value = |rng: &mut Lcg| match rng.below(6) {
            0 => top,
            1 => -bound,
            2 => 0,
            _ => rng.below(2 * bound as u64 + 1) as i64 - bound,
        };
        let reference: Vec<i64> = (0..len).map(|_| value(rng)).collect();
        let distorted = reference
            .iter()
            .map(|&o| match rng.below(5) {
                0 => value(rng),
                1 => -o,
                2 => o * (rng.below(5) as i64) / 3,
                _ => o + rng.below(9) as i64 - 4,
            })
            .map(|t| t.clamp(-bound, top))
            .collect::<Vec<_>>();
        let narrow = |v: Vec<i64>| v.into_iter().map(|x| x as i32).collect::<Vec<_>>();
        (narrow(reference), narrow(distorted))
    }

    #[test]
    fn adm_decouple_kernels_match_the_reference_on_random_rows() {
        let reference = Kernels::new(Isa::Reference);
        let mut rng = Lcg(13);
        for isa in max_isa().up_to() {
            let kernels = Kernels::new(isa);
            for width in 1..=100 {
                // Coefficient ranges of 8-bit, 10-bit and 16-bit-derived pictures.
                for bound in [1 << 8, 1 << 10, 1 << 15] {
                    let bands: [(Vec<i32>, Vec<i32>); 3] = std::array::from_fn(|_| {
                        random_band_pair(&mut rng, width, bound, bound.min(32767))
                    });
                    let rows = BandRows {
                        reference: std::array::from_fn(|b| &bands[b].0[..]),
                        distorted: std::array::from_fn(|b| &bands[b].1[..]),
                    };
                    for gain_limit in [1.0, 100.0] {
                        let run = |k: &Kernels| {
                            decoupled(width, |out| {
                                k.adm_decouple_row_level0(rows, gain_limit, out)
                            })
                        };
                        let what =
                            format!("{isa:?} width {width} bound {bound} limit {gain_limit}");
                        assert_eq!(run(&kernels), run(&reference), "{what}");
                    }
                }
            }
        }
    }

    /// The restored and additive rows one decoupling kernel writes, `width` long, from zeros.
    fn decoupled(width: usize, decouple: impl FnOnce(DecoupledRows<'_>)) -> DecoupledOutput {
        let mut restored = [(); 3].map(|_| vec![0i32; width]);
        let mut additive = [(); 3].map(|_| vec![0i32; width]);
        let [r0, r1, r2] = &mut restored;
        let [a0, a1, a2] = &mut additive;
        decouple(DecoupledRows {
            restored: [r0, r1, r2].map(|r| &mut r[..]),
            additive: [a0, a1, a2].map(|a| &mut a[..]),
        });
        (restored, additive)
    }

    type DecoupledOutput = ([Vec<i32>; 3], [Vec<i32>; 3]);

    #[test]
    fn adm_decouple_level123_kernels_match_the_reference_on_random_rows() {
        let reference = Kernels::new(Isa::Reference);
        let mut rng = Lcg(17);
        for isa in max_isa().up_to() {
            let kernels = Kernels::new(isa);
            for width in 1..=50 {
                // Small and large coefficients, up to those the vector kernel hands back to
                // the reference (2^25 and beyond) and the extremes of 32 bits.
                for bound in [
                    1 << 8,
                    1 << 15,
                    1 << 20,
                    (1 << 25) - 1,
                    1 << 25,
                    i32::MAX as i64,
                ] {
                    let top = if rng.below(2) == 0 { bound } else { bound - 1 };
                    let top = top.min(i32::MAX as i64);
                    let bands: [(Vec<i32>, Vec<i32>); 3] = std::array::from_fn(|_| {
                        random_band_pair(&mut rng, width, bound.min(i32::MAX as i64), top)
                    });
                    let rows = BandRows {
                        reference: std::array::from_fn(|b| &bands[b].0[..]),
                        distorted: std::array::from_fn(|b| &bands[b].1[..]),
                    };
                    for gain_limit in [1.0, 100.0] {
                        let run = |k: &Kernels| {
                            decoupled(width, |out| {
                                k.adm_decouple_row_level123(rows, gain_limit, out)
                            })
                        };
                        let what =
                            format!("{isa:?} width {width} bound {bound} limit {gain_limit}");
                        assert_eq!(run(&kernels), run(&reference), "{what}");
                    }
                }
            }
        }
    }
}
