//! Float luma planes and the separable filters of libvmaf's SSIM family: the 11-tap Gaussian
//! window, and decimation with a low-pass filter and symmetric borders.

use codeclab_video::{AnyFrame, Pixel, Plane};

use crate::error::MetricError;

/// Taps of the SSIM window.
pub const WINDOW_LEN: usize = 11;

/// A plane of `f32` samples, rows contiguous (stride == width). Buffers are reused across frames.
#[derive(Clone, Debug, Default)]
pub struct FloatPlane {
    width: usize,
    height: usize,
    data: Vec<f32>,
}

impl FloatPlane {
    /// Wraps samples; `None` when `data.len() != width * height`.
    pub fn from_vec(width: usize, height: usize, data: Vec<f32>) -> Option<Self> {
        (data.len() == width * height).then_some(FloatPlane {
            width,
            height,
            data,
        })
    }

    pub fn width(&self) -> usize {
        self.width
    }

    pub fn height(&self) -> usize {
        self.height
    }

    pub fn data(&self) -> &[f32] {
        &self.data
    }

    pub fn row(&self, y: usize) -> &[f32] {
        &self.data[y * self.width..(y + 1) * self.width]
    }

    /// Reshapes to `width` x `height`, keeping the allocation; the contents are unspecified.
    fn reshape(&mut self, width: usize, height: usize) {
        self.width = width;
        self.height = height;
        self.data.resize(width * height, 0.0);
    }

    /// Loads the luma plane of `frame` on libvmaf's 8-bit scale: deeper samples are divided by
    /// 2^(bitdepth − 8), as libvmaf's float features do.
    pub fn load_luma(&mut self, frame: &AnyFrame, bit_depth: u8) -> Result<(), MetricError> {
        fn load<T: Pixel>(out: &mut FloatPlane, plane: Option<&Plane<T>>, scale: f32) {
            let Some(plane) = plane else {
                out.reshape(0, 0);
                return;
            };
            out.reshape(plane.width(), plane.height());
            for (o, &v) in out.data.iter_mut().zip(plane.data()) {
                *o = v.to_u32() as f32 * scale;
            }
        }
        if !(8..=16).contains(&bit_depth) {
            return Err(MetricError::BitDepth(bit_depth));
        }
        // A power of two, so multiplying by its inverse is exact, like libvmaf's division.
        let scale = 1.0 / (1u32 << (bit_depth - 8)) as f32;
        match frame {
            AnyFrame::U8(f) => load(self, f.planes.first(), 1.0),
            AnyFrame::U16(f) => load(self, f.planes.first(), scale),
        }
        Ok(())
    }
}

/// The SSIM window: a Gaussian of σ = 1.5 over 11 taps, normalised, and rounded to six decimals as
/// in the tables of libvmaf (and the IQA library it comes from), so sums match theirs.
pub fn gaussian_window() -> [f32; WINDOW_LEN] {
    let half = (WINDOW_LEN / 2) as f64;
    let raw: Vec<f64> = (0..WINDOW_LEN)
        .map(|i| {
            let d = i as f64 - half;
            (-d * d / (2.0 * 1.5 * 1.5)).exp()
        })
        .collect();
    let total: f64 = raw.iter().sum();
    let mut taps = [0.0f32; WINDOW_LEN];
    for (t, r) in taps.iter_mut().zip(&raw) {
        *t = ((r / total * 1e6).round() / 1e6) as f32;
    }
    taps
}

/// Position of sample `i` in a line of `len` samples under symmetric (half-sample) reflection,
/// `-1 -> 0`, `len -> len - 1`; clamped for kernels wider than the line.
fn reflect(i: isize, len: usize) -> usize {
    let len_i = len as isize;
    let mirrored = if i < 0 {
        -1 - i
    } else if i >= len_i {
        2 * len_i - i - 1
    } else {
        i
    };
    mirrored.clamp(0, len_i - 1) as usize
}

/// Size of a line of `len` samples decimated by `factor`, as libvmaf computes it (an odd line keeps
/// one extra sample, whatever the factor).
pub fn decimated_len(len: usize, factor: usize) -> usize {
    len / factor + (len & 1)
}

/// A separable low-pass filter for decimation: `taps[k]` applies to the sample at offset
/// `first + k` from the centre.
#[derive(Clone, Copy, Debug)]
pub struct LowPass<'a> {
    pub taps: &'a [f32],
    pub first: isize,
}

/// Reusable buffers of [`Decimator::decimate`].
#[derive(Clone, Debug, Default)]
pub struct Decimator {
    /// One vertically filtered row with mirrored borders.
    padded: Vec<f32>,
    /// The padded row split into `factor` phases (every `factor`-th sample), so that each tap
    /// reads a contiguous run and the loops vectorise.
    phases: Vec<f32>,
}

impl Decimator {
    /// Downsamples `src` by `factor`: output sample (x, y) is the filtered input at (x·factor,
    /// y·factor), borders mirrored. Filters vertically first, so that only the kept rows are
    /// filtered horizontally.
    pub fn decimate(
        &mut self,
        src: &FloatPlane,
        factor: usize,
        filter: LowPass<'_>,
        out: &mut FloatPlane,
    ) {
        #[cfg(target_arch = "x86_64")]
        if crate::vmaf::dsp::active_isa() >= crate::vmaf::dsp::Isa::Avx2 {
            // SAFETY: the kernels' level is AVX2 only where the CPU supports it, the only
            // requirement of `decimate_avx2`.
            return unsafe { self.decimate_avx2(src, factor, filter, out) };
        }
        self.decimate_portable(src, factor, filter, out)
    }

    /// The same code compiled for AVX2 (the same operations in the same order).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn decimate_avx2(
        &mut self,
        src: &FloatPlane,
        factor: usize,
        filter: LowPass<'_>,
        out: &mut FloatPlane,
    ) {
        self.decimate_portable(src, factor, filter, out)
    }

    #[inline(always)]
    fn decimate_portable(
        &mut self,
        src: &FloatPlane,
        factor: usize,
        filter: LowPass<'_>,
        out: &mut FloatPlane,
    ) {
        let (w, h) = (src.width, src.height);
        let (sw, sh) = (decimated_len(w, factor), decimated_len(h, factor));
        out.reshape(sw, sh);
        let factor = factor.max(1);
        if w == 0 || h == 0 {
            return;
        }
        let n_taps = filter.taps.len();
        // Enough mirrored samples on each side for every tap of every output sample.
        let pad = n_taps + filter.first.unsigned_abs();
        let padded_len = w + 2 * pad;
        let phase_len = padded_len.div_ceil(factor);
        // Tap k of output x reads padded[factor·x + offset_k] = phase[offset_k % factor][x +
        // offset_k / factor].
        let tap_sources: Vec<(usize, usize)> = (0..n_taps)
            .map(|k| {
                let offset = (filter.first + (pad + k) as isize) as usize;
                (offset % factor, offset / factor)
            })
            .collect();
        self.padded.resize(padded_len, 0.0);
        self.phases.resize(factor * phase_len, 0.0);
        for (y, o_row) in out.data.chunks_exact_mut(sw).enumerate() {
            let row = &mut self.padded[pad..pad + w];
            row.fill(0.0);
            for (k, &t) in filter.taps.iter().enumerate() {
                let src_y = reflect((y * factor) as isize + filter.first + k as isize, h);
                for (o, &v) in row.iter_mut().zip(src.row(src_y)) {
                    *o += t * v;
                }
            }
            for i in (0..pad).chain(pad + w..padded_len) {
                self.padded[i] = self.padded[pad + reflect(i as isize - pad as isize, w)];
            }
            if factor == 2 {
                let (even, odd) = self.phases.split_at_mut(phase_len);
                for ((e, o), pair) in even.iter_mut().zip(odd).zip(self.padded.chunks_exact(2)) {
                    *e = pair[0];
                    *o = pair[1];
                }
            } else {
                for (m, group) in self.padded.chunks(factor).enumerate() {
                    for (phase, &v) in group.iter().enumerate() {
                        self.phases[phase * phase_len + m] = v;
                    }
                }
            }
            o_row.fill(0.0);
            for (&t, &(phase, start)) in filter.taps.iter().zip(&tap_sources) {
                let samples = &self.phases[phase * phase_len + start..][..sw];
                for (o, &v) in o_row.iter_mut().zip(samples) {
                    *o += t * v;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plane(width: usize, height: usize, f: impl Fn(usize, usize) -> f32) -> FloatPlane {
        let data = (0..height)
            .flat_map(|y| (0..width).map(move |x| (x, y)))
            .map(|(x, y)| f(x, y))
            .collect();
        FloatPlane {
            width,
            height,
            data,
        }
    }

    #[test]
    fn window_is_symmetric_and_normalised() {
        let w = gaussian_window();
        for k in 0..WINDOW_LEN {
            assert_eq!(w[k], w[WINDOW_LEN - 1 - k]);
        }
        let sum: f32 = w.iter().sum();
        assert!((sum - 1.0).abs() < 1e-5, "{sum}");
        assert!(w[5] > w[4] && w[4] > w[3] && w[0] > 0.0);
    }

    #[test]
    fn reflection_is_half_sample_symmetric() {
        assert_eq!(reflect(-1, 5), 0);
        assert_eq!(reflect(-2, 5), 1);
        assert_eq!(reflect(5, 5), 4);
        assert_eq!(reflect(6, 5), 3);
        assert_eq!(reflect(-40, 5), 4);
    }

    #[test]
    fn decimation_keeps_constants_and_uses_libvmaf_sizes() {
        let src = plane(9, 6, |_, _| 7.0);
        let taps = [0.5f32, 0.5];
        let mut out = FloatPlane::default();
        Decimator::default().decimate(
            &src,
            2,
            LowPass {
                taps: &taps,
                first: -1,
            },
            &mut out,
        );
        assert_eq!((out.width(), out.height()), (5, 3));
        assert!(out.data().iter().all(|&v| (v - 7.0).abs() < 1e-6));
    }

    #[test]
    fn decimation_samples_the_centre() {
        // A single tap picks input (x·3, y·3).
        let src = plane(7, 4, |x, y| (10 * y + x) as f32);
        let mut out = FloatPlane::default();
        Decimator::default().decimate(
            &src,
            3,
            LowPass {
                taps: &[1.0],
                first: 0,
            },
            &mut out,
        );
        assert_eq!((out.width(), out.height()), (3, 1));
        assert_eq!(out.data(), &[0.0, 3.0, 6.0]);
    }

    /// The phase-split filter equals a direct evaluation with mirrored borders.
    #[test]
    fn decimation_matches_a_direct_evaluation() {
        let taps9 = [0.1f32, -0.2, 0.3, 0.4, 0.9, 0.4, 0.3, -0.2, 0.1];
        let taps3 = [0.25f32, 0.5, 0.25];
        let taps2 = [0.5f32, 0.5];
        let cases: [(&[f32], isize, usize); 3] =
            [(&taps9, -4, 2), (&taps3, -1, 3), (&taps2, -1, 2)];
        for (w, h) in [(23, 17), (24, 16), (9, 11)] {
            let src = plane(w, h, |x, y| ((x * 7 + y * 13) % 31) as f32 + 0.5 * y as f32);
            for &(taps, first, factor) in &cases {
                let mut out = FloatPlane::default();
                Decimator::default().decimate(&src, factor, LowPass { taps, first }, &mut out);
                for y in 0..out.height() {
                    for x in 0..out.width() {
                        let mut direct = 0.0f64;
                        for (v, &tv) in taps.iter().enumerate() {
                            for (u, &tu) in taps.iter().enumerate() {
                                let sy = reflect((y * factor) as isize + first + v as isize, h);
                                let sx = reflect((x * factor) as isize + first + u as isize, w);
                                direct +=
                                    f64::from(tv) * f64::from(tu) * f64::from(src.row(sy)[sx]);
                            }
                        }
                        let got = f64::from(out.row(y)[x]);
                        assert!(
                            (got - direct).abs() < 1e-4,
                            "{w}x{h} /{factor} ({x},{y}): {got} vs {direct}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn deep_luma_is_brought_to_the_8_bit_scale() {
        let format = codeclab_video::VideoFormat {
            width: 2,
            height: 2,
            bit_depth: 10,
            chroma: codeclab_video::ChromaSampling::Cs420,
            fps: codeclab_video::Rational::new(25, 1),
            aspect: codeclab_video::Rational::new(1, 1),
        };
        let mut frame = codeclab_video::Frame::<u16>::new_grey(&format);
        frame.planes[0].set(1, 0, 1023);
        let mut p = FloatPlane::default();
        p.load_luma(&AnyFrame::U16(frame), 10).unwrap();
        assert_eq!(p.data(), &[128.0, 255.75, 128.0, 128.0]);
    }
}
