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

/// Downsamples `src` by `factor`: output sample (x, y) is the filtered input at (x·factor,
/// y·factor), borders mirrored. `rows` is scratch space for the horizontally filtered rows.
pub fn decimate(
    src: &FloatPlane,
    factor: usize,
    filter: LowPass<'_>,
    out: &mut FloatPlane,
    rows: &mut Vec<f32>,
) {
    let (w, h) = (src.width, src.height);
    let (sw, sh) = (decimated_len(w, factor), decimated_len(h, factor));
    out.reshape(sw, sh);
    if w == 0 || h == 0 {
        return;
    }
    let n_taps = filter.taps.len();
    let columns: Vec<usize> = (0..sw)
        .flat_map(|x| {
            (0..n_taps).map(move |k| reflect((x * factor) as isize + filter.first + k as isize, w))
        })
        .collect();
    rows.resize(h * sw, 0.0);
    for (line, filtered) in src.data.chunks_exact(w).zip(rows.chunks_exact_mut(sw)) {
        for (o, idx) in filtered.iter_mut().zip(columns.chunks_exact(n_taps)) {
            *o = idx
                .iter()
                .zip(filter.taps)
                .map(|(&i, &t)| line[i] * t)
                .sum();
        }
    }
    for (y, o_row) in out.data.chunks_exact_mut(sw).enumerate() {
        o_row.fill(0.0);
        for (k, &t) in filter.taps.iter().enumerate() {
            let src_y = reflect((y * factor) as isize + filter.first + k as isize, h);
            let line = &rows[src_y * sw..(src_y + 1) * sw];
            for (o, &v) in o_row.iter_mut().zip(line) {
                *o += t * v;
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
        let mut rows = Vec::new();
        decimate(
            &src,
            2,
            LowPass {
                taps: &taps,
                first: -1,
            },
            &mut out,
            &mut rows,
        );
        assert_eq!((out.width(), out.height()), (5, 3));
        assert!(out.data().iter().all(|&v| (v - 7.0).abs() < 1e-6));
    }

    #[test]
    fn decimation_samples_the_centre() {
        // A single tap picks input (x·3, y·3).
        let src = plane(7, 4, |x, y| (10 * y + x) as f32);
        let mut out = FloatPlane::default();
        let mut rows = Vec::new();
        decimate(
            &src,
            3,
            LowPass {
                taps: &[1.0],
                first: 0,
            },
            &mut out,
            &mut rows,
        );
        assert_eq!((out.width(), out.height()), (3, 1));
        assert_eq!(out.data(), &[0.0, 3.0, 6.0]);
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
