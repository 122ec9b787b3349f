//! SSIM as libvmaf's `float_ssim` feature defines it, and the SSIM map means MS-SSIM builds on.
//!
//! libvmaf (after the IQA library): luma on the 8-bit scale as `f32`; when min(width, height) is
//! 384 or more, first decimated by `round(min / 256)` with a box filter (symmetric borders, an odd
//! side keeping one extra sample); then local means, variances and covariance under an 11x11
//! Gaussian window (σ = 1.5) at every position where the window fits inside the picture (no
//! padding: the map is (w − 10) x (h − 10)); K1 = 0.01, K2 = 0.03, L = 255 whatever the bit depth,
//! C3 = C2 / 2; variances clamped at 0; SSIM = l·c·s with c and s computed from σ_ref·σ_dist, and a
//! flat, identical neighbourhood scoring exactly 1. The score is the mean of the map.
//!
//! The window is separable, so each row is filtered horizontally once into a ring of the last 11
//! rows, and each output row filtered vertically from the ring: the working set is a few rows.

use codeclab_video::AnyFrame;

use crate::error::MetricError;
use crate::filter::{Decimator, FloatPlane, LowPass, WINDOW_LEN, gaussian_window};

const K1: f32 = 0.01;
const K2: f32 = 0.03;
const DYNAMIC_RANGE: f32 = 255.0;

/// Window statistics per output row: mean and second moments of both pictures.
const MOMENTS: usize = 5;

/// Means over the SSIM map of luminance, contrast and structure terms and of their product.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SsimMeans {
    pub luminance: f64,
    pub contrast: f64,
    pub structure: f64,
    pub ssim: f64,
}

/// Reusable buffers of an SSIM map computation (one per thread).
#[derive(Clone, Debug)]
pub struct SsimWorkspace {
    window: [f32; WINDOW_LEN],
    /// Products of one input row: ref², dist², ref·dist.
    products: Vec<f32>,
    /// Horizontally filtered rows, `WINDOW_LEN` slots of `MOMENTS` rows each.
    ring: Vec<f32>,
    /// Window moments of one output row.
    moments: Vec<f32>,
    /// Luminance, contrast, structure and SSIM of one output row.
    terms: Vec<f32>,
}

impl Default for SsimWorkspace {
    fn default() -> Self {
        SsimWorkspace {
            window: gaussian_window(),
            products: Vec::new(),
            ring: Vec::new(),
            moments: Vec::new(),
            terms: Vec::new(),
        }
    }
}

/// Adds `taps` applied at each position of `input` into `out` (`out.len()` positions): the taps are
/// symmetric, so pairs of samples share a multiply.
#[inline(always)]
fn filter_horizontal(input: &[f32], taps: &[f32; WINDOW_LEN], out: &mut [f32]) {
    let n = out.len();
    let half = WINDOW_LEN / 2;
    for (o, &v) in out.iter_mut().zip(&input[half..half + n]) {
        *o = taps[half] * v;
    }
    for k in 0..half {
        let left = &input[k..k + n];
        let right = &input[WINDOW_LEN - 1 - k..WINDOW_LEN - 1 - k + n];
        let t = taps[k];
        for ((o, &a), &b) in out.iter_mut().zip(left).zip(right) {
            *o += t * (a + b);
        }
    }
}

/// `out = Σ taps[k] · rows[k]`, with symmetric taps.
#[inline(always)]
fn filter_vertical(rows: [&[f32]; WINDOW_LEN], taps: &[f32; WINDOW_LEN], out: &mut [f32]) {
    let half = WINDOW_LEN / 2;
    for (o, &v) in out.iter_mut().zip(rows[half]) {
        *o = taps[half] * v;
    }
    for k in 0..half {
        let t = taps[k];
        for ((o, &a), &b) in out.iter_mut().zip(rows[k]).zip(rows[WINDOW_LEN - 1 - k]) {
            *o += t * (a + b);
        }
    }
}

/// Sum of `f32` values in `f64`, four lanes at a time so the loop vectorises.
#[inline(always)]
fn sum_wide(values: &[f32]) -> f64 {
    let mut lanes = [0.0f64; 4];
    let chunks = values.chunks_exact(4);
    let tail: f64 = chunks.remainder().iter().map(|&v| f64::from(v)).sum();
    for c in chunks {
        for (lane, &v) in lanes.iter_mut().zip(c) {
            *lane += f64::from(v);
        }
    }
    lanes.iter().sum::<f64>() + tail
}

/// SSIM terms of one output row from its window moments.
#[inline(always)]
fn ssim_row(moments: &[f32], width: usize, terms: &mut [f32]) {
    let c1 = (K1 * DYNAMIC_RANGE) * (K1 * DYNAMIC_RANGE);
    let c2 = (K2 * DYNAMIC_RANGE) * (K2 * DYNAMIC_RANGE);
    let c3 = c2 / 2.0;
    let (mu_r, rest) = moments.split_at(width);
    let (mu_d, rest) = rest.split_at(width);
    let (rr, rest) = rest.split_at(width);
    let (dd, rd) = rest.split_at(width);
    let rd = &rd[..width];
    let (lum, rest) = terms.split_at_mut(width);
    let (con, rest) = rest.split_at_mut(width);
    let (stru, prod) = rest.split_at_mut(width);
    let prod = &mut prod[..width];
    for i in 0..width {
        let (m1, m2) = (mu_r[i], mu_d[i]);
        let var_r = (rr[i] - m1 * m1).max(0.0);
        let var_d = (dd[i] - m2 * m2).max(0.0);
        let cov = rd[i] - m1 * m2;
        let sigma_rd = (var_r * var_d).sqrt();
        let l = (2.0 * m1 * m2 + c1) / (m1 * m1 + m2 * m2 + c1);
        let c = (2.0 * sigma_rd + c2) / (var_r + var_d + c2);
        // Rounding can leave a small negative covariance in a flat, identical neighbourhood
        // (σ = 0); libvmaf treats it as 0 so the structure term is exactly 1 there.
        let cov = if cov < 0.0 && sigma_rd <= 0.0 {
            0.0
        } else {
            cov
        };
        let s = (cov + c3) / (sigma_rd + c3);
        lum[i] = l;
        con[i] = c;
        stru[i] = s;
        prod[i] = l * c * s;
    }
}

/// Means of the SSIM map of two planes of the same size, at least 11x11.
pub fn ssim_means(
    metric: &'static str,
    reference: &FloatPlane,
    distorted: &FloatPlane,
    ws: &mut SsimWorkspace,
) -> Result<SsimMeans, MetricError> {
    #[cfg(target_arch = "x86_64")]
    if crate::vmaf::dsp::active_isa() >= crate::vmaf::dsp::Isa::Avx2 {
        // SAFETY: the kernels' level is AVX2 only where the CPU supports it, the only
        // requirement of `ssim_means_avx2`.
        return unsafe { ssim_means_avx2(metric, reference, distorted, ws) };
    }
    ssim_means_portable(metric, reference, distorted, ws)
}

/// The same code compiled for AVX2: wider vectors, the same operations in the same order (Rust
/// never fuses a multiply and an add), so the same results.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn ssim_means_avx2(
    metric: &'static str,
    reference: &FloatPlane,
    distorted: &FloatPlane,
    ws: &mut SsimWorkspace,
) -> Result<SsimMeans, MetricError> {
    ssim_means_portable(metric, reference, distorted, ws)
}

#[inline(always)]
fn ssim_means_portable(
    metric: &'static str,
    reference: &FloatPlane,
    distorted: &FloatPlane,
    ws: &mut SsimWorkspace,
) -> Result<SsimMeans, MetricError> {
    let (w, h) = (reference.width(), reference.height());
    if (distorted.width(), distorted.height()) != (w, h) {
        return Err(MetricError::PlaneSizeMismatch {
            plane: 0,
            ref_width: w,
            ref_height: h,
            dist_width: distorted.width(),
            dist_height: distorted.height(),
        });
    }
    if w < WINDOW_LEN || h < WINDOW_LEN {
        return Err(MetricError::TooSmall {
            metric,
            width: w,
            height: h,
            reason: format!("the {WINDOW_LEN}x{WINDOW_LEN} window does not fit"),
        });
    }
    let ow = w - (WINDOW_LEN - 1);
    let oh = h - (WINDOW_LEN - 1);
    ws.products.resize(3 * w, 0.0);
    ws.ring.resize(WINDOW_LEN * MOMENTS * ow, 0.0);
    ws.moments.resize(MOMENTS * ow, 0.0);
    ws.terms.resize(4 * ow, 0.0);
    let taps = ws.window;
    let mut sums = [0.0f64; 4];
    for y in 0..h {
        let (r, d) = (reference.row(y), distorted.row(y));
        let (rr, rest) = ws.products.split_at_mut(w);
        let (dd, rd) = rest.split_at_mut(w);
        for ((((a, b), pr), pd), px) in r
            .iter()
            .zip(d)
            .zip(rr.iter_mut())
            .zip(dd.iter_mut())
            .zip(rd.iter_mut())
        {
            *pr = a * a;
            *pd = b * b;
            *px = a * b;
        }
        let slot = &mut ws.ring[(y % WINDOW_LEN) * MOMENTS * ow..][..MOMENTS * ow];
        for (input, out) in [r, d, &*rr, &*dd, &*rd]
            .into_iter()
            .zip(slot.chunks_exact_mut(ow))
        {
            filter_horizontal(input, &taps, out);
        }
        if y + 1 < WINDOW_LEN {
            continue;
        }
        let top = y + 1 - WINDOW_LEN;
        for (m, out) in ws.moments.chunks_exact_mut(ow).enumerate() {
            let rows: [&[f32]; WINDOW_LEN] = std::array::from_fn(|k| {
                let slot = (top + k) % WINDOW_LEN;
                &ws.ring[(slot * MOMENTS + m) * ow..][..ow]
            });
            filter_vertical(rows, &taps, out);
        }
        ssim_row(&ws.moments, ow, &mut ws.terms);
        for (sum, terms) in sums.iter_mut().zip(ws.terms.chunks_exact(ow)) {
            *sum += sum_wide(terms);
        }
    }
    // libvmaf returns each mean as `float`.
    let count = (ow * oh) as f64;
    let mean = |s: f64| f64::from((s / count) as f32);
    Ok(SsimMeans {
        luminance: mean(sums[0]),
        contrast: mean(sums[1]),
        structure: mean(sums[2]),
        ssim: mean(sums[3]),
    })
}

/// libvmaf's automatic downscaling factor for `float_ssim`: `max(1, round(min(w, h) / 256))`,
/// halves rounded up.
pub fn ssim_scale(width: usize, height: usize) -> usize {
    let ratio = width.min(height) as f32 / 256.0;
    let whole = ratio.trunc();
    let rounded = if ratio - whole >= 0.5 {
        whole + 1.0
    } else {
        whole
    };
    (rounded as usize).max(1)
}

/// Buffers of `float_ssim` for one thread.
#[derive(Clone, Debug, Default)]
pub struct SsimScratch {
    reference: FloatPlane,
    distorted: FloatPlane,
    small_reference: FloatPlane,
    small_distorted: FloatPlane,
    decimator: Decimator,
    workspace: SsimWorkspace,
}

/// libvmaf's `float_ssim` of the luma of two frames of `bit_depth` bits.
pub fn float_ssim(
    reference: &AnyFrame,
    distorted: &AnyFrame,
    bit_depth: u8,
    scratch: &mut SsimScratch,
) -> Result<f64, MetricError> {
    scratch.reference.load_luma(reference, bit_depth)?;
    scratch.distorted.load_luma(distorted, bit_depth)?;
    let scale = ssim_scale(scratch.reference.width(), scratch.reference.height());
    if scale == 1 {
        return Ok(ssim_means(
            "SSIM",
            &scratch.reference,
            &scratch.distorted,
            &mut scratch.workspace,
        )?
        .ssim);
    }
    // A box of `scale` taps centred on the kept sample (one more tap left of centre when even).
    let taps = vec![1.0 / scale as f32; scale];
    let filter = LowPass {
        taps: &taps,
        first: -((scale / 2) as isize),
    };
    scratch.decimator.decimate(
        &scratch.reference,
        scale,
        filter,
        &mut scratch.small_reference,
    );
    scratch.decimator.decimate(
        &scratch.distorted,
        scale,
        filter,
        &mut scratch.small_distorted,
    );
    Ok(ssim_means(
        "SSIM",
        &scratch.small_reference,
        &scratch.small_distorted,
        &mut scratch.workspace,
    )?
    .ssim)
}

#[cfg(test)]
mod tests {
    use super::*;
    use codeclab_video::{ChromaSampling, Frame, Rational, VideoFormat};

    fn format(width: usize, height: usize) -> VideoFormat {
        VideoFormat {
            width,
            height,
            bit_depth: 8,
            chroma: ChromaSampling::Mono,
            fps: Rational::new(25, 1),
            aspect: Rational::new(1, 1),
        }
    }

    fn textured(width: usize, height: usize, seed: u32) -> AnyFrame {
        let mut f = Frame::<u8>::new_grey(&format(width, height));
        let mut state = seed;
        for v in f.planes[0].data_mut() {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            *v = (state >> 24) as u8;
        }
        AnyFrame::U8(f)
    }

    #[test]
    fn scale_follows_libvmaf_rounding() {
        assert_eq!(ssim_scale(176, 144), 1);
        assert_eq!(ssim_scale(640, 272), 1);
        assert_eq!(ssim_scale(640, 383), 1);
        assert_eq!(ssim_scale(640, 384), 2);
        assert_eq!(ssim_scale(1280, 720), 3);
        assert_eq!(ssim_scale(1920, 1080), 4);
    }

    #[test]
    fn identical_frames_score_one() {
        let a = textured(64, 48, 1);
        let mut scratch = SsimScratch::default();
        let s = float_ssim(&a, &a, 8, &mut scratch).unwrap();
        assert!((s - 1.0).abs() < 1e-6, "{s}");
        let flat = AnyFrame::U8(Frame::new_grey(&format(32, 32)));
        assert_eq!(float_ssim(&flat, &flat, 8, &mut scratch).unwrap(), 1.0);
    }

    #[test]
    fn unrelated_noise_scores_near_zero_and_symmetric() {
        let a = textured(64, 48, 1);
        let b = textured(64, 48, 2);
        let mut scratch = SsimScratch::default();
        let ab = float_ssim(&a, &b, 8, &mut scratch).unwrap();
        let ba = float_ssim(&b, &a, 8, &mut scratch).unwrap();
        assert!(ab.abs() < 0.1, "{ab}");
        assert!((ab - ba).abs() < 1e-6);
    }

    #[test]
    fn pictures_smaller_than_the_window_are_refused() {
        let a = textured(10, 40, 1);
        let mut scratch = SsimScratch::default();
        assert!(matches!(
            float_ssim(&a, &a, 8, &mut scratch),
            Err(MetricError::TooSmall { .. })
        ));
    }

    /// At scale 2 libvmaf averages the 2x2 box whose kept sample is the bottom-right one (taps at
    /// offsets −1 and 0), mirroring at the borders, before the SSIM map.
    #[test]
    fn even_scales_average_the_box_left_of_and_above_the_kept_sample() {
        let (w, h) = (771, 513);
        assert_eq!(ssim_scale(w, h), 2);
        let a = textured(w, h, 7);
        // Related pictures (a third of the samples changed), so the score depends on alignment.
        let mut b = a.clone();
        if let AnyFrame::U8(f) = &mut b {
            for (i, v) in f.planes[0].data_mut().iter_mut().enumerate() {
                if i % 3 == 0 {
                    *v = v.wrapping_add(40);
                }
            }
        }
        let decimate_directly = |frame: &AnyFrame| -> FloatPlane {
            let mut full = FloatPlane::default();
            full.load_luma(frame, 8).unwrap();
            let (sw, sh) = (w / 2 + (w & 1), h / 2 + (h & 1));
            let mirror = |i: isize, len: usize| -> usize {
                if i < 0 {
                    (-1 - i) as usize
                } else if i as usize >= len {
                    2 * len - 1 - i as usize
                } else {
                    i as usize
                }
            };
            let mut data = Vec::with_capacity(sw * sh);
            for y in 0..sh {
                for x in 0..sw {
                    let mut sum = 0.0f32;
                    for v in -1..=0isize {
                        for u in -1..=0isize {
                            let sy = mirror(2 * y as isize + v, h);
                            let sx = mirror(2 * x as isize + u, w);
                            sum += full.row(sy)[sx] * 0.25;
                        }
                    }
                    data.push(sum);
                }
            }
            FloatPlane::from_vec(sw, sh, data).unwrap()
        };
        let direct = ssim_means(
            "SSIM",
            &decimate_directly(&a),
            &decimate_directly(&b),
            &mut SsimWorkspace::default(),
        )
        .unwrap()
        .ssim;
        let ours = float_ssim(&a, &b, 8, &mut SsimScratch::default()).unwrap();
        assert!((ours - direct).abs() < 1e-6, "{ours} vs {direct}");
    }

    /// The ring-buffer map equals a direct evaluation of the definition.
    #[test]
    fn map_matches_a_direct_evaluation() {
        let a = textured(23, 17, 3);
        let b = textured(23, 17, 4);
        let (mut pa, mut pb) = (FloatPlane::default(), FloatPlane::default());
        pa.load_luma(&a, 8).unwrap();
        pb.load_luma(&b, 8).unwrap();
        let g = gaussian_window();
        let (w, h) = (23, 17);
        let (c1, c2) = ((0.01f64 * 255.0).powi(2), (0.03f64 * 255.0).powi(2));
        let mut total = 0.0;
        for y in 0..h - 10 {
            for x in 0..w - 10 {
                let mut m = [0.0f64; 5];
                for v in 0..11 {
                    for u in 0..11 {
                        let k = f64::from(g[v]) * f64::from(g[u]);
                        let p = f64::from(pa.row(y + v)[x + u]);
                        let q = f64::from(pb.row(y + v)[x + u]);
                        m[0] += k * p;
                        m[1] += k * q;
                        m[2] += k * p * p;
                        m[3] += k * q * q;
                        m[4] += k * p * q;
                    }
                }
                let vr = (m[2] - m[0] * m[0]).max(0.0);
                let vd = (m[3] - m[1] * m[1]).max(0.0);
                let cov = m[4] - m[0] * m[1];
                let srd = (vr * vd).sqrt();
                let l = (2.0 * m[0] * m[1] + c1) / (m[0] * m[0] + m[1] * m[1] + c1);
                let c = (2.0 * srd + c2) / (vr + vd + c2);
                let s = (cov + c2 / 2.0) / (srd + c2 / 2.0);
                total += l * c * s;
            }
        }
        let direct = total / ((w - 10) * (h - 10)) as f64;
        let mut ws = SsimWorkspace::default();
        let ours = ssim_means("SSIM", &pa, &pb, &mut ws).unwrap().ssim;
        assert!((ours - direct).abs() < 1e-4, "{ours} vs {direct}");
    }
}
