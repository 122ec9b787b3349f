//! MS-SSIM as libvmaf's `float_ms_ssim` feature defines it (Wang, Simoncelli and Bovik, 2003).
//!
//! Five scales of the luma (on the 8-bit scale as `f32`): each next scale is the previous one
//! low-passed by the 9-tap 9/7 biorthogonal wavelet filter (symmetric borders) and decimated by 2,
//! an odd side keeping one extra sample. At every scale the SSIM map of [`crate::ssim`] is averaged
//! term by term; the score is Π c̄ᵢ^βᵢ · s̄ᵢ^γᵢ · l̄₄^α₄ with Wang's exponents. libvmaf refuses a
//! picture whose side, halved four times, falls under the 11-sample window; so does this.
//!
//! libvmaf applies the low-pass filter as a 9x9 table of rounded products; the separable form used
//! here differs from it in the sixth decimal of a few coefficients, far below the tolerance.

use codeclab_video::AnyFrame;

use crate::error::MetricError;
use crate::filter::{Decimator, FloatPlane, LowPass, WINDOW_LEN};
use crate::ssim::{SsimWorkspace, ssim_means};

/// Number of scales.
pub const SCALES: usize = 5;

/// Low-pass filter of the 9/7 biorthogonal wavelet, as tabulated by libvmaf.
const LOW_PASS: [f32; 9] = [
    0.026727, -0.016828, -0.078201, 0.266846, 0.602914, 0.266846, -0.078201, -0.016828, 0.026727,
];

/// Wang's exponents per scale: luminance (only the coarsest scale counts), contrast, structure.
const ALPHAS: [f32; SCALES] = [0.0, 0.0, 0.0, 0.0, 0.1333];
const BETAS: [f32; SCALES] = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333];
const GAMMAS: [f32; SCALES] = BETAS;

/// Why a luma of `width` x `height` is too small for MS-SSIM, if it is.
pub fn check_size(width: usize, height: usize) -> Result<(), MetricError> {
    let (mut w, mut h) = (width, height);
    for scale in 0..SCALES {
        if w < WINDOW_LEN || h < WINDOW_LEN {
            return Err(MetricError::TooSmall {
                metric: "MS-SSIM",
                width,
                height,
                reason: format!(
                    "scale {} of {SCALES} would be {w}x{h}, under the {WINDOW_LEN}x{WINDOW_LEN} \
                     window (libvmaf refuses it too; the luma needs at least {}x{})",
                    scale + 1,
                    WINDOW_LEN << (SCALES - 1),
                    WINDOW_LEN << (SCALES - 1),
                ),
            });
        }
        w /= 2;
        h /= 2;
    }
    Ok(())
}

/// Buffers of `float_ms_ssim` for one thread.
#[derive(Clone, Debug, Default)]
pub struct MsSsimScratch {
    /// Reference and distorted planes of each scale.
    levels: Vec<[FloatPlane; 2]>,
    decimator: Decimator,
    workspace: SsimWorkspace,
}

/// libvmaf's `float_ms_ssim` of the luma of two frames of `bit_depth` bits.
pub fn float_ms_ssim(
    reference: &AnyFrame,
    distorted: &AnyFrame,
    bit_depth: u8,
    scratch: &mut MsSsimScratch,
) -> Result<f64, MetricError> {
    scratch
        .levels
        .resize_with(SCALES, <[FloatPlane; 2]>::default);
    let [r, d] = &mut scratch.levels[0];
    r.load_luma(reference, bit_depth)?;
    d.load_luma(distorted, bit_depth)?;
    check_size(r.width(), r.height())?;
    let filter = LowPass {
        taps: &LOW_PASS,
        first: -((LOW_PASS.len() / 2) as isize),
    };
    let mut score = 1.0f64;
    for scale in 0..SCALES {
        let (done, rest) = scratch.levels.split_at_mut(scale + 1);
        let [r, d] = &done[scale];
        let means = ssim_means("MS-SSIM", r, d, &mut scratch.workspace)?;
        // libvmaf raises each mean, stored as `float`, to its `float` exponent in double.
        score *= means.luminance.powf(f64::from(ALPHAS[scale]))
            * means.contrast.powf(f64::from(BETAS[scale]))
            * means.structure.powf(f64::from(GAMMAS[scale]));
        if let Some([next_r, next_d]) = rest.first_mut() {
            scratch.decimator.decimate(r, 2, filter, next_r);
            scratch.decimator.decimate(d, 2, filter, next_d);
        }
    }
    Ok(score)
}

#[cfg(test)]
mod tests {
    use super::*;
    use codeclab_video::{ChromaSampling, Frame, Rational, VideoFormat};

    fn textured(width: usize, height: usize, seed: u32, amplitude: u32) -> AnyFrame {
        let format = VideoFormat {
            width,
            height,
            bit_depth: 8,
            chroma: ChromaSampling::Mono,
            fps: Rational::new(25, 1),
            aspect: Rational::new(1, 1),
        };
        let mut f = Frame::<u8>::new_grey(&format);
        let mut state = seed;
        for (i, v) in f.planes[0].data_mut().iter_mut().enumerate() {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let smooth = ((i % width) * 2 + (i / width)) as u32 % 200;
            *v = (smooth + (state >> 24) % amplitude.max(1)) as u8;
        }
        AnyFrame::U8(f)
    }

    #[test]
    fn refuses_qcif_like_libvmaf() {
        let err = check_size(176, 144).unwrap_err();
        assert!(err.to_string().contains("176x144"), "{err}");
        assert!(check_size(176, 176).is_ok());
        assert!(check_size(175, 176).is_err());
        assert!(check_size(640, 272).is_ok());
    }

    #[test]
    fn identical_is_one_and_distortion_lowers_it() {
        let a = textured(200, 180, 1, 40);
        let b = textured(200, 180, 2, 40);
        let mut scratch = MsSsimScratch::default();
        let same = float_ms_ssim(&a, &a, 8, &mut scratch).unwrap();
        assert!((same - 1.0).abs() < 1e-5, "{same}");
        let diff = float_ms_ssim(&a, &b, 8, &mut scratch).unwrap();
        assert!(diff < 0.95 && diff > 0.0, "{diff}");
    }
}
