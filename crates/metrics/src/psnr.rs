//! PSNR as libvmaf's `psnr` feature defines it, and the global-MSE variant that ffmpeg's `psnr`
//! filter prints in its summary.
//!
//! libvmaf: per plane and frame, MSE = (sum of squared errors) / samples, PSNR = 10·log10(peak² /
//! MSE) with peak = 2^bitdepth − 1 (255 at 8 bits, 1023 at 10), capped at 6·bitdepth + 12 dB (60 dB
//! at 8 bits, 72 dB at 10). ffmpeg pools differently: it averages the per-frame MSE of each plane
//! over the clip and converts that mean once; its `average` weights each plane's MSE by its share
//! of the frame's samples. ffmpeg prints `inf` for a lossless clip; here the global values carry the
//! same cap as the per-frame ones, so identical inputs give a finite number.

use codeclab_video::{AnyFrame, Pixel, Plane};

use crate::error::MetricError;

/// Sum of squared differences between two equally long sample slices of `bit_depth` bits.
///
/// Squares are summed in `u32` over chunks short enough that the sum cannot overflow (so the
/// compiler can vectorise the inner loop), and the chunk sums in `u64`.
pub fn sum_squared_error<T: Pixel>(reference: &[T], distorted: &[T], bit_depth: u8) -> u64 {
    let peak = (1u64 << bit_depth.min(16)) - 1;
    let chunk_len =
        usize::try_from((u64::from(u32::MAX) / (peak * peak).max(1)).max(1)).unwrap_or(usize::MAX);
    reference
        .chunks(chunk_len)
        .zip(distorted.chunks(chunk_len))
        .map(|(r, d)| {
            let chunk: u32 = r
                .iter()
                .zip(d)
                .map(|(&a, &b)| {
                    let e = a.to_u32().abs_diff(b.to_u32());
                    e * e
                })
                .sum();
            u64::from(chunk)
        })
        .sum()
}

/// Mean squared error of two planes of the same size.
pub fn plane_mse<T: Pixel>(
    plane: usize,
    reference: &Plane<T>,
    distorted: &Plane<T>,
    bit_depth: u8,
) -> Result<f64, MetricError> {
    if (reference.width(), reference.height()) != (distorted.width(), distorted.height()) {
        return Err(MetricError::PlaneSizeMismatch {
            plane,
            ref_width: reference.width(),
            ref_height: reference.height(),
            dist_width: distorted.width(),
            dist_height: distorted.height(),
        });
    }
    let samples = reference.data().len();
    if samples == 0 {
        return Ok(0.0);
    }
    let sse = sum_squared_error(reference.data(), distorted.data(), bit_depth);
    Ok(sse as f64 / samples as f64)
}

/// Per-plane MSE of a frame pair (Y, Cb, Cr; Y alone for monochrome).
pub fn frame_mse(
    reference: &AnyFrame,
    distorted: &AnyFrame,
    bit_depth: u8,
) -> Result<Vec<f64>, MetricError> {
    fn planes<T: Pixel>(
        r: &[Plane<T>],
        d: &[Plane<T>],
        bit_depth: u8,
    ) -> Result<Vec<f64>, MetricError> {
        if r.len() != d.len() {
            return Err(MetricError::FrameKindMismatch);
        }
        r.iter()
            .zip(d)
            .enumerate()
            .map(|(i, (r, d))| plane_mse(i, r, d, bit_depth))
            .collect()
    }
    match (reference, distorted) {
        (AnyFrame::U8(r), AnyFrame::U8(d)) => planes(&r.planes, &d.planes, bit_depth),
        (AnyFrame::U16(r), AnyFrame::U16(d)) => planes(&r.planes, &d.planes, bit_depth),
        _ => Err(MetricError::FrameKindMismatch),
    }
}

/// libvmaf's PSNR ceiling: 6·bitdepth + 12 dB.
pub fn psnr_cap_db(bit_depth: u8) -> f64 {
    6.0 * f64::from(bit_depth) + 12.0
}

/// PSNR in dB of a mean squared error at `bit_depth`, capped as libvmaf caps it.
pub fn psnr_from_mse(mse: f64, bit_depth: u8) -> f64 {
    let peak = ((1u64 << bit_depth.min(16)) - 1) as f64;
    (10.0 * (peak * peak / mse.max(1e-16)).log10()).min(psnr_cap_db(bit_depth))
}

/// PSNR-YUV: luma weighted 6 to 1 against each chroma plane.
pub fn psnr_yuv(y: f64, cb: f64, cr: f64) -> f64 {
    (6.0 * y + cb + cr) / 8.0
}

/// Share of a frame's samples held by each plane: the weights of ffmpeg's `average` PSNR.
pub fn plane_weights(plane_sizes: &[(usize, usize)]) -> Vec<f64> {
    let total: usize = plane_sizes.iter().map(|&(w, h)| w * h).sum();
    plane_sizes
        .iter()
        .map(|&(w, h)| {
            if total == 0 {
                0.0
            } else {
                (w * h) as f64 / total as f64
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_counts_every_sample() {
        let a = [0u8, 10, 255, 7];
        let b = [3u8, 10, 0, 9];
        assert_eq!(sum_squared_error(&a, &b, 8), 9 + 255 * 255 + 4);
    }

    #[test]
    fn sse_does_not_overflow_at_full_swing() {
        let a = vec![0u16; 70_000];
        let b = vec![65_535u16; 70_000];
        assert_eq!(sum_squared_error(&a, &b, 16), 70_000 * 65_535u64 * 65_535);
        let a = vec![0u8; 200_000];
        let b = vec![255u8; 200_000];
        assert_eq!(sum_squared_error(&a, &b, 8), 200_000 * 255 * 255);
    }

    #[test]
    fn psnr_is_capped_like_libvmaf() {
        assert_eq!(psnr_from_mse(0.0, 8), 60.0);
        assert_eq!(psnr_from_mse(0.0, 10), 72.0);
        // MSE 1 at 8 bits: 20·log10(255).
        assert!((psnr_from_mse(1.0, 8) - 48.130_803_608).abs() < 1e-6);
        // The peak follows the bit depth: 1023 at 10 bits.
        assert!((psnr_from_mse(1.0, 10) - 60.197_512_674).abs() < 1e-6);
    }

    #[test]
    fn mismatched_planes_are_refused() {
        let a = Plane::filled(4, 4, 0u8);
        let b = Plane::filled(4, 3, 0u8);
        assert!(matches!(
            plane_mse(1, &a, &b, 8),
            Err(MetricError::PlaneSizeMismatch { plane: 1, .. })
        ));
    }

    #[test]
    fn weights_follow_plane_areas() {
        let w = plane_weights(&[(4, 4), (2, 2), (2, 2)]);
        assert_eq!(w, vec![16.0 / 24.0, 4.0 / 24.0, 4.0 / 24.0]);
    }
}
