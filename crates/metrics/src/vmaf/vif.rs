//! Visual information fidelity at four scales, with libvmaf's integer arithmetic
//! (`integer_vif`): 16-bit Gaussian filters, mirrored borders, a log2 lookup table and the
//! enhancement-gain limit.
//!
//! Two implementations share the arithmetic: [`reference`] follows the definition pixel by pixel;
//! [`fast`] filters whole rows at a time through the kernels of [`super::dsp`] and only computes
//! the samples that the decimation keeps. A test checks that both give bit-identical numerators and denominators.

use super::buffers::Buf;
use super::dsp::vif::{
    Accumulators, Log2Table, SIGMA_NSQ, gain, log2_32, log2_64, log2_table, round_shift, sigmas,
};
use super::dsp::{self, Isa, RowMoments, VerticalPass, VerticalRow, VifPlanes};

/// Gaussian kernels per scale, Q16, symmetric.
const FILTER_S0: [u32; 17] = [
    489, 935, 1640, 2640, 3896, 5274, 6547, 7455, 7784, 7455, 6547, 5274, 3896, 2640, 1640, 935,
    489,
];
const FILTER_S1: [u32; 9] = [1244, 3663, 7925, 12590, 14692, 12590, 7925, 3663, 1244];
const FILTER_S2: [u32; 5] = [3571, 16004, 26386, 16004, 3571];
const FILTER_S3: [u32; 3] = [10904, 43728, 10904];

fn filter(scale: usize) -> &'static [u32] {
    match scale {
        0 => &FILTER_S0,
        1 => &FILTER_S1,
        2 => &FILTER_S2,
        _ => &FILTER_S3,
    }
}

/// Numerator and denominator of one scale, as libvmaf keeps them (single precision).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct VifRatio {
    pub num: f32,
    pub den: f32,
}

impl VifRatio {
    /// The scale's score: the division happens in single precision, as in libvmaf.
    pub fn score(self) -> f64 {
        f64::from(self.num / self.den)
    }
}

/// Mirror without repeating the edge sample (…2 1 | 0 1 2 … n-2 n-1 | n-2 …).
#[inline]
pub(crate) fn mirror(index: isize, size: usize) -> usize {
    let size = size as isize;
    let m = if index < 0 {
        -index
    } else if index >= size {
        2 * (size - 1) - index
    } else {
        index
    };
    m.clamp(0, size - 1) as usize
}

impl Accumulators {
    fn ratio(&self) -> VifRatio {
        let num = self.num_log as f64 / 2048.0
            + (self.den_non_log as f64 - (self.num_non_log as f64 / 16384.0) / 65025.0);
        let den = self.den_log as f64 / 2048.0 + self.den_non_log as f64;
        VifRatio {
            num: num as f32,
            den: den as f32,
        }
    }
}

/// Adds one pixel's contribution, given its variances and covariance (Q16), to the accumulators
/// of every gain limit.
#[inline(always)]
fn add_pixel(
    acc: &mut [Accumulators],
    table: &Log2Table,
    gain_limits: &[f64],
    sigma1_sq: i32,
    sigma2_sq: i32,
    sigma12: i32,
) {
    let (g0, sv_sq) = gain(sigma1_sq, sigma2_sq, sigma12);
    add_pixel_with(
        acc,
        table,
        gain_limits,
        sigma1_sq,
        sigma2_sq,
        sigma12,
        g0,
        sv_sq,
    );
}

/// [`add_pixel`] with the pixel's [`gain`] already computed.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn add_pixel_with(
    acc: &mut [Accumulators],
    table: &Log2Table,
    gain_limits: &[f64],
    sigma1_sq: i32,
    sigma2_sq: i32,
    sigma12: i32,
    g0: f64,
    sv_sq: i32,
) {
    if sigma1_sq >= SIGMA_NSQ {
        let den = log2_32(table, SIGMA_NSQ.wrapping_add(sigma1_sq) as u32) - 2048 * 17;
        if sigma12 > 0 && sigma2_sq > 0 {
            let numer1 = (sv_sq as u32).wrapping_add(SIGMA_NSQ as u32);
            let log_numer1 = log2_64(table, u64::from(numer1));
            for (a, &limit) in acc.iter_mut().zip(gain_limits) {
                let g = if g0 < limit { g0 } else { limit };
                let numer1_tmp = ((g * g * f64::from(sigma1_sq)) as i64) + i64::from(numer1);
                a.num_log += log2_64(table, numer1_tmp as u64) - log_numer1;
                a.den_log += den;
            }
        } else {
            for a in acc.iter_mut() {
                a.den_log += den;
            }
        }
    } else {
        for a in acc.iter_mut() {
            a.num_non_log += i64::from(sigma2_sq);
            a.den_non_log += 1;
        }
    }
}

/// Filtered local statistics of one pixel: means (Q16 sums of the vertical means) and second
/// moments.
#[derive(Clone, Copy, Debug)]
struct Moments {
    mu1: u32,
    mu2: u32,
    xx: u32,
    yy: u32,
    xy: u32,
}

/// Rounding and shifts of the vertical pass at `scale`: (mean shift, squares shift).
fn vertical_shifts(scale: usize, bit_depth: u32) -> (u32, u32) {
    if scale == 0 {
        (bit_depth, 2 * (bit_depth - 8))
    } else {
        (16, 16)
    }
}

/// One image of a scale: samples narrowed to `u16` (scale 0 holds the input samples), in a
/// recycled buffer (fresh ones cost page faults every frame).
#[derive(Clone, Debug)]
pub(crate) struct Image {
    pub width: usize,
    pub height: usize,
    pub data: Buf<u16>,
}

impl Image {
    /// From samples already limited to 16 bits.
    pub fn from_i32(width: usize, height: usize, data: &[i32]) -> Self {
        Image {
            width,
            height,
            data: Buf::from_iter(data.len(), data.iter().map(|&s| s as u16)),
        }
    }

    #[inline]
    fn at(&self, x: usize, y: usize) -> u32 {
        u32::from(self.data[y * self.width + x])
    }
}

/// The reference definition, pixel by pixel, close to libvmaf's C code.
pub(crate) mod reference {
    use super::*;

    fn moments(r: &Image, d: &Image, scale: usize, bit_depth: u32, x: usize, y: usize) -> Moments {
        let f = filter(scale);
        let half = (f.len() / 2) as isize;
        let (shift_mu, shift_sq) = vertical_shifts(scale, bit_depth);
        let (mut mu1, mut mu2, mut xx, mut yy, mut xy) = (0u32, 0u32, 0u64, 0u64, 0u64);
        for (kx, &cx) in f.iter().enumerate() {
            let xs = mirror(x as isize - half + kx as isize, r.width);
            let (mut vm1, mut vm2, mut vxx, mut vyy, mut vxy) = (0u64, 0u64, 0u64, 0u64, 0u64);
            for (ky, &cy) in f.iter().enumerate() {
                let ys = mirror(y as isize - half + ky as isize, r.height);
                let a = u64::from(r.at(xs, ys));
                let b = u64::from(d.at(xs, ys));
                let c = u64::from(cy);
                vm1 += c * a;
                vm2 += c * b;
                vxx += c * a * a;
                vyy += c * b * b;
                vxy += c * a * b;
            }
            let c = cx;
            mu1 = mu1.wrapping_add(c * round_shift(vm1, shift_mu) as u32);
            mu2 = mu2.wrapping_add(c * round_shift(vm2, shift_mu) as u32);
            xx += u64::from(c) * u64::from(round_shift(vxx, shift_sq) as u32);
            yy += u64::from(c) * u64::from(round_shift(vyy, shift_sq) as u32);
            xy += u64::from(c) * u64::from(round_shift(vxy, shift_sq) as u32);
        }
        Moments {
            mu1,
            mu2,
            xx: round_shift(xx, 16) as u32,
            yy: round_shift(yy, 16) as u32,
            xy: round_shift(xy, 16) as u32,
        }
    }

    fn statistic(
        r: &Image,
        d: &Image,
        scale: usize,
        bit_depth: u32,
        gain_limits: &[f64],
    ) -> Vec<VifRatio> {
        let table = log2_table();
        let mut acc = vec![Accumulators::default(); gain_limits.len()];
        for y in 0..r.height {
            for x in 0..r.width {
                let m = moments(r, d, scale, bit_depth, x, y);
                let (s1, s2, s12) = sigmas(m.mu1, m.mu2, m.xx, m.yy, m.xy);
                add_pixel(&mut acc, table, gain_limits, s1, s2, s12);
            }
        }
        acc.iter().map(Accumulators::ratio).collect()
    }

    fn subsample(img: &Image, next_scale: usize, bit_depth: u32) -> Image {
        let f = filter(next_scale);
        let half = (f.len() / 2) as isize;
        let shift = if next_scale == 1 { bit_depth } else { 16 };
        let (w, h) = (img.width / 2, img.height / 2);
        let mut data = Vec::with_capacity(w * h);
        for y in 0..h {
            for x in 0..w {
                let mut acc = 0u64;
                for (kx, &cx) in f.iter().enumerate() {
                    let xs = mirror(2 * x as isize - half + kx as isize, img.width);
                    let mut v = 0u64;
                    for (ky, &cy) in f.iter().enumerate() {
                        let ys = mirror(2 * y as isize - half + ky as isize, img.height);
                        v += u64::from(cy) * u64::from(img.at(xs, ys));
                    }
                    acc += u64::from(cx) * u64::from(round_shift(v, shift) as u16);
                }
                data.push(round_shift(acc, 16) as u16);
            }
        }
        Image {
            width: w,
            height: h,
            data: Buf::from_iter(data.len(), data.into_iter()),
        }
    }

    /// Ratios per scale (outer) and per gain limit (inner).
    pub fn vif(r: &Image, d: &Image, bit_depth: u32, gain_limits: &[f64]) -> [Vec<VifRatio>; 4] {
        let mut r = r.clone();
        let mut d = d.clone();
        std::array::from_fn(|scale| {
            if scale > 0 {
                r = subsample(&r, scale, bit_depth);
                d = subsample(&d, scale, bit_depth);
            }
            statistic(&r, &d, scale, bit_depth, gain_limits)
        })
    }
}

/// Row-at-a-time implementation: the statistic's filters are the DSP table's kernels; the rest
/// (statistic per pixel, decimation, which computes only the samples it keeps) is compiled a
/// second time for AVX2 and picked with the table's level.
pub(crate) mod fast {
    use super::*;

    /// Ratios per scale (outer) and per gain limit (inner).
    pub fn vif(r: &Image, d: &Image, bit_depth: u32, gain_limits: &[f64]) -> [Vec<VifRatio>; 4] {
        #[cfg(target_arch = "x86_64")]
        if dsp::active_isa() >= Isa::Avx2 {
            // SAFETY: the kernels' level is AVX2 only where the CPU supports it
            // (`dsp::Kernels::new`), the only requirement of `vif_avx2`.
            return unsafe { vif_avx2(r, d, bit_depth, gain_limits) };
        }
        vif_portable(r, d, bit_depth, gain_limits)
    }

    /// The same code compiled for AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn vif_avx2(
        r: &Image,
        d: &Image,
        bit_depth: u32,
        gain_limits: &[f64],
    ) -> [Vec<VifRatio>; 4] {
        vif_portable(r, d, bit_depth, gain_limits)
    }

    #[inline(always)]
    pub(crate) fn vif_portable(
        r: &Image,
        d: &Image,
        bit_depth: u32,
        gain_limits: &[f64],
    ) -> [Vec<VifRatio>; 4] {
        let s0 = statistic(r, d, 0, bit_depth, gain_limits);
        let r1 = subsample(r, 1, bit_depth);
        let d1 = subsample(d, 1, bit_depth);
        let s1 = statistic(&r1, &d1, 1, bit_depth, gain_limits);
        let r2 = subsample(&r1, 2, bit_depth);
        let d2 = subsample(&d1, 2, bit_depth);
        let s2 = statistic(&r2, &d2, 2, bit_depth, gain_limits);
        let r3 = subsample(&r2, 3, bit_depth);
        let d3 = subsample(&d2, 3, bit_depth);
        let s3 = statistic(&r3, &d3, 3, bit_depth, gain_limits);
        [s0, s1, s2, s3]
    }

    /// Fills `half` samples each side of `buf[half..half + width]` by mirroring.
    #[inline(always)]
    fn pad_mirror<V: Copy>(buf: &mut [V], width: usize, half: usize) {
        for k in 1..=half {
            buf[half - k] = buf[half + mirror(-(k as isize), width)];
            buf[half + width - 1 + k] = buf[half + mirror((width - 1 + k) as isize, width)];
        }
    }

    #[inline(always)]
    fn statistic(
        r: &Image,
        d: &Image,
        scale: usize,
        bit_depth: u32,
        gain_limits: &[f64],
    ) -> Vec<VifRatio> {
        let kernels = dsp::kernels();
        let f = filter(scale);
        let taps = f.len();
        let half = taps / 2;
        let (w, h) = (r.width, r.height);
        let (shift_mu, shift_sq) = vertical_shifts(scale, bit_depth);
        // Vertical sums, padded by the filter's half width on each side (and one more column,
        // which the horizontal kernels may read), then the row's moments.
        let mut vertical = VerticalRow::zeroed(w + 2 * half + 1);
        let mut moments = RowMoments::zeroed(w);
        let mut acc = vec![Accumulators::default(); gain_limits.len()];
        let planes = VifPlanes {
            reference: &r.data,
            distorted: &d.data,
            width: w,
        };
        let mut rows = [0usize; FILTER_S0.len()];
        for y in 0..h {
            for (k, row) in rows[..taps].iter_mut().enumerate() {
                *row = mirror(y as isize - half as isize + k as isize, h);
            }
            let pass = VerticalPass {
                filter: f,
                rows: &rows[..taps],
                shift_mu,
                shift_sq,
                samples_8bit: scale == 0 && bit_depth == 8,
            };
            kernels.vif_vertical(planes, pass, &mut vertical, half, 0..w);
            for v in &mut vertical.planes {
                pad_mirror(v, w, half);
            }
            kernels.vif_horizontal(&vertical, f, &mut moments, 0..w);
            for (a, &limit) in acc.iter_mut().zip(gain_limits) {
                kernels.vif_statistic_row(&moments, 0..w, limit, a);
            }
        }
        acc.iter().map(Accumulators::ratio).collect()
    }

    #[inline(always)]
    fn subsample(img: &Image, next_scale: usize, bit_depth: u32) -> Image {
        let f = filter(next_scale);
        let taps = f.len();
        let half = taps / 2;
        let shift = if next_scale == 1 { bit_depth } else { 16 };
        let round = 1u32 << (shift - 1);
        let (w, h) = (img.width / 2, img.height / 2);
        let src_w = img.width;
        let padded_len = src_w + 2 * half;
        let mut vertical = vec![0u32; src_w];
        let mut padded = vec![0u32; padded_len];
        // The padded row split into its even and odd samples, so that the filter at the kept
        // (even) positions reads contiguous memory.
        let mut even = vec![0u32; padded_len.div_ceil(2)];
        let mut odd = vec![0u32; padded_len / 2];
        let mut acc = vec![0u32; w];
        // Every sample is written below.
        let mut data = Buf::<u16>::recycled(w * h);
        for y in 0..h {
            // The first tap assigns (no zero-filling of the row), the others add.
            for (k, &c) in f.iter().enumerate() {
                let ys = mirror(2 * y as isize - half as isize + k as isize, img.height);
                let src = &img.data[ys * src_w..ys * src_w + src_w];
                if k == 0 {
                    for (v, &s) in vertical.iter_mut().zip(src) {
                        *v = c * u32::from(s);
                    }
                } else {
                    for (v, &s) in vertical.iter_mut().zip(src) {
                        *v = v.wrapping_add(c * u32::from(s));
                    }
                }
            }
            for (p, &v) in padded[half..half + src_w].iter_mut().zip(&vertical) {
                *p = u32::from(((u64::from(v) + u64::from(round)) >> shift) as u16);
            }
            pad_mirror(&mut padded, src_w, half);
            for (i, pair) in padded.chunks_exact(2).enumerate() {
                (even[i], odd[i]) = (pair[0], pair[1]);
            }
            if padded_len % 2 == 1 {
                even[padded_len / 2] = padded[padded_len - 1];
            }
            for (k, &c) in f.iter().enumerate() {
                let src = if k % 2 == 0 {
                    &even[k / 2..]
                } else {
                    &odd[k / 2..]
                };
                if k == 0 {
                    for (a, &s) in acc.iter_mut().zip(&src[..w]) {
                        *a = c * s;
                    }
                } else {
                    for (a, &s) in acc.iter_mut().zip(&src[..w]) {
                        *a = a.wrapping_add(c * s);
                    }
                }
            }
            for (o, &a) in data[y * w..y * w + w].iter_mut().zip(&acc) {
                *o = ((u64::from(a) + 32768) >> 16) as u16;
            }
        }
        Image {
            width: w,
            height: h,
            data,
        }
    }
}
