//! Visual information fidelity at four scales, with libvmaf's integer arithmetic
//! (`integer_vif`): 16-bit Gaussian filters, mirrored borders, a log2 lookup table and the
//! enhancement-gain limit.
//!
//! Two implementations share the arithmetic: [`reference`] follows the definition pixel by pixel;
//! [`fast`] filters whole rows at a time (auto-vectorised) and only computes the samples that the
//! decimation keeps. A test checks that both give bit-identical numerators and denominators.

use std::sync::OnceLock;

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

/// The noise variance of the VIF model, in the Q16 units of the variances.
const SIGMA_NSQ: i32 = 65536 << 1;

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

/// `round(log2(i) * 2048)` for `i` in 32767..65536, computed in single precision like libvmaf.
fn log2_table() -> &'static [u16] {
    static TABLE: OnceLock<Vec<u16>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table = vec![0u16; 65536];
        for (i, entry) in table.iter_mut().enumerate().skip(32767) {
            *entry = ((i as f32).log2() * 2048.0).round() as u16;
        }
        table
    })
}

/// log2(x) in Q11 from the 16 most significant bits; `x >= 2^17` in every call.
#[inline]
fn log2_32(table: &[u16], x: u32) -> i64 {
    let k = 16i32 - x.leading_zeros() as i32;
    let k = k.max(0) as u32;
    i64::from(table[(x >> k) as usize & 0xffff]) + 2048 * i64::from(k)
}

#[inline]
fn log2_64(table: &[u16], x: u64) -> i64 {
    let k = 48i32 - x.leading_zeros() as i32;
    let k = k.max(0) as u32;
    i64::from(table[(x >> k) as usize & 0xffff]) + 2048 * i64::from(k)
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

/// The integer accumulators of one scale's statistic, summed over pixels.
#[derive(Clone, Copy, Debug, Default)]
struct Accumulators {
    num_log: i64,
    den_log: i64,
    num_non_log: i64,
    den_non_log: i64,
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

    /// Adds one pixel's contribution from its filtered means (Q16 sums) and second moments.
    #[inline]
    fn pixel(&mut self, table: &[u16], m: Moments, gain_limit: f64) {
        let mu1_sq = ((u64::from(m.mu1) * u64::from(m.mu1) + 0x8000_0000) >> 32) as u32;
        let mu2_sq = ((u64::from(m.mu2) * u64::from(m.mu2) + 0x8000_0000) >> 32) as u32;
        let mu1_mu2 = ((u64::from(m.mu1) * u64::from(m.mu2) + 0x8000_0000) >> 32) as u32;
        let sigma1_sq = m.xx.wrapping_sub(mu1_sq) as i32;
        let sigma2_sq = (m.yy.wrapping_sub(mu2_sq) as i32).max(0);
        let sigma12 = m.xy.wrapping_sub(mu1_mu2) as i32;
        if sigma1_sq >= SIGMA_NSQ {
            self.den_log += log2_32(table, SIGMA_NSQ.wrapping_add(sigma1_sq) as u32) - 2048 * 17;
            if sigma12 > 0 && sigma2_sq > 0 {
                let eps = 65536.0 * 1.0e-10;
                let g = f64::from(sigma12) / (f64::from(sigma1_sq) + eps);
                let sv_sq = (f64::from(sigma2_sq) - g * f64::from(sigma12)) as i32;
                let sv_sq = sv_sq.max(0);
                let g = if g < gain_limit { g } else { gain_limit };
                let numer1 = (sv_sq as u32).wrapping_add(SIGMA_NSQ as u32);
                let numer1_tmp = ((g * g * f64::from(sigma1_sq)) as i64) + i64::from(numer1);
                self.num_log +=
                    log2_64(table, numer1_tmp as u64) - log2_64(table, u64::from(numer1));
            }
        } else {
            self.num_non_log += i64::from(sigma2_sq);
            self.den_non_log += 1;
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

#[inline]
fn round_shift(value: u64, shift: u32) -> u64 {
    if shift == 0 {
        value
    } else {
        (value + (1u64 << (shift - 1))) >> shift
    }
}

/// One image of a scale: samples widened to `u16` (scale 0 holds the input samples).
#[derive(Clone, Debug)]
pub(crate) struct Image {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u16>,
}

impl Image {
    /// From samples already limited to 16 bits.
    pub fn from_i32(width: usize, height: usize, data: &[i32]) -> Self {
        Image {
            width,
            height,
            data: data.iter().map(|&s| s as u16).collect(),
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
                for (a, &limit) in acc.iter_mut().zip(gain_limits) {
                    a.pixel(table, m, limit);
                }
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
            data,
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

/// Row-at-a-time implementation: vertical sums over whole rows (vectorised by the compiler),
/// mirrored padding only at the borders, and the decimation computes only the kept samples.
pub(crate) mod fast {
    use super::*;

    /// Vertical pass of the statistic for row `y`: means and second moments of every column.
    struct VerticalRow {
        mu1: Vec<u32>,
        mu2: Vec<u32>,
        xx: Vec<u32>,
        yy: Vec<u32>,
        xy: Vec<u32>,
        acc_mu1: Vec<u64>,
        acc_mu2: Vec<u64>,
        acc_xx: Vec<u64>,
        acc_yy: Vec<u64>,
        acc_xy: Vec<u64>,
    }

    impl VerticalRow {
        fn new(width: usize, half: usize) -> Self {
            let padded = width + 2 * half;
            VerticalRow {
                mu1: vec![0; padded],
                mu2: vec![0; padded],
                xx: vec![0; padded],
                yy: vec![0; padded],
                xy: vec![0; padded],
                acc_mu1: vec![0; width],
                acc_mu2: vec![0; width],
                acc_xx: vec![0; width],
                acc_yy: vec![0; width],
                acc_xy: vec![0; width],
            }
        }

        #[allow(clippy::too_many_arguments)]
        fn fill(
            &mut self,
            r: &Image,
            d: &Image,
            y: usize,
            f: &[u32],
            shift_mu: u32,
            shift_sq: u32,
        ) {
            let w = r.width;
            let half = f.len() / 2;
            self.acc_mu1.fill(0);
            self.acc_mu2.fill(0);
            self.acc_xx.fill(0);
            self.acc_yy.fill(0);
            self.acc_xy.fill(0);
            for (k, &c) in f.iter().enumerate() {
                let ys = mirror(y as isize - half as isize + k as isize, r.height);
                let rr = &r.data[ys * w..ys * w + w];
                let dr = &d.data[ys * w..ys * w + w];
                let c = u64::from(c);
                for j in 0..w {
                    let a = u64::from(rr[j]);
                    let b = u64::from(dr[j]);
                    let ca = c * a;
                    let cb = c * b;
                    self.acc_mu1[j] += ca;
                    self.acc_mu2[j] += cb;
                    self.acc_xx[j] += ca * a;
                    self.acc_yy[j] += cb * b;
                    self.acc_xy[j] += ca * b;
                }
            }
            let mu_round = 1u64 << (shift_mu - 1);
            let sq_round = if shift_sq == 0 {
                0
            } else {
                1u64 << (shift_sq - 1)
            };
            for j in 0..w {
                let p = j + half;
                self.mu1[p] = ((self.acc_mu1[j] + mu_round) >> shift_mu) as u32;
                self.mu2[p] = ((self.acc_mu2[j] + mu_round) >> shift_mu) as u32;
                self.xx[p] = ((self.acc_xx[j] + sq_round) >> shift_sq) as u32;
                self.yy[p] = ((self.acc_yy[j] + sq_round) >> shift_sq) as u32;
                self.xy[p] = ((self.acc_xy[j] + sq_round) >> shift_sq) as u32;
            }
            for buf in [
                &mut self.mu1,
                &mut self.mu2,
                &mut self.xx,
                &mut self.yy,
                &mut self.xy,
            ] {
                pad_mirror(buf, w, half);
            }
        }
    }

    /// Fills `half` samples each side of `buf[half..half + width]` by mirroring.
    fn pad_mirror<V: Copy>(buf: &mut [V], width: usize, half: usize) {
        for k in 1..=half {
            buf[half - k] = buf[half + mirror(-(k as isize), width)];
            buf[half + width - 1 + k] = buf[half + mirror((width - 1 + k) as isize, width)];
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
        let f = filter(scale);
        let half = f.len() / 2;
        let (shift_mu, shift_sq) = vertical_shifts(scale, bit_depth);
        let w = r.width;
        let mut row = VerticalRow::new(w, half);
        let mut acc = vec![Accumulators::default(); gain_limits.len()];
        let mut mu1 = vec![0u32; w];
        let mut mu2 = vec![0u32; w];
        let mut xx = vec![0u64; w];
        let mut yy = vec![0u64; w];
        let mut xy = vec![0u64; w];
        for y in 0..r.height {
            row.fill(r, d, y, f, shift_mu, shift_sq);
            mu1.fill(0);
            mu2.fill(0);
            xx.fill(0);
            yy.fill(0);
            xy.fill(0);
            for (k, &c) in f.iter().enumerate() {
                let c64 = u64::from(c);
                let m1 = &row.mu1[k..k + w];
                let m2 = &row.mu2[k..k + w];
                let sx = &row.xx[k..k + w];
                let sy = &row.yy[k..k + w];
                let sxy = &row.xy[k..k + w];
                for j in 0..w {
                    mu1[j] = mu1[j].wrapping_add(c.wrapping_mul(m1[j]));
                    mu2[j] = mu2[j].wrapping_add(c.wrapping_mul(m2[j]));
                    xx[j] += c64 * u64::from(sx[j]);
                    yy[j] += c64 * u64::from(sy[j]);
                    xy[j] += c64 * u64::from(sxy[j]);
                }
            }
            for j in 0..w {
                let m = Moments {
                    mu1: mu1[j],
                    mu2: mu2[j],
                    xx: ((xx[j] + 32768) >> 16) as u32,
                    yy: ((yy[j] + 32768) >> 16) as u32,
                    xy: ((xy[j] + 32768) >> 16) as u32,
                };
                for (a, &limit) in acc.iter_mut().zip(gain_limits) {
                    a.pixel(table, m, limit);
                }
            }
        }
        acc.iter().map(Accumulators::ratio).collect()
    }

    fn subsample(img: &Image, next_scale: usize, bit_depth: u32) -> Image {
        let f = filter(next_scale);
        let half = f.len() / 2;
        let shift = if next_scale == 1 { bit_depth } else { 16 };
        let round = 1u32 << (shift - 1);
        let (w, h) = (img.width / 2, img.height / 2);
        let src_w = img.width;
        let mut vertical = vec![0u32; src_w];
        let mut padded = vec![0u16; src_w + 2 * half];
        let mut data = vec![0u16; w * h];
        for y in 0..h {
            vertical.fill(0);
            for (k, &c) in f.iter().enumerate() {
                let ys = mirror(2 * y as isize - half as isize + k as isize, img.height);
                let src = &img.data[ys * src_w..ys * src_w + src_w];
                for (v, &s) in vertical.iter_mut().zip(src) {
                    *v += c * u32::from(s);
                }
            }
            for (p, &v) in padded[half..half + src_w].iter_mut().zip(&vertical) {
                *p = ((u64::from(v) + u64::from(round)) >> shift) as u16;
            }
            pad_mirror(&mut padded, src_w, half);
            let out = &mut data[y * w..y * w + w];
            for (x, o) in out.iter_mut().enumerate() {
                let taps = &padded[2 * x..2 * x + f.len()];
                let acc: u64 = taps
                    .iter()
                    .zip(f)
                    .map(|(&s, &c)| u64::from(c) * u64::from(s))
                    .sum();
                *o = ((acc + 32768) >> 16) as u16;
            }
        }
        Image {
            width: w,
            height: h,
            data,
        }
    }

    /// Ratios per scale (outer) and per gain limit (inner).
    pub fn vif(r: &Image, d: &Image, bit_depth: u32, gain_limits: &[f64]) -> [Vec<VifRatio>; 4] {
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
}
