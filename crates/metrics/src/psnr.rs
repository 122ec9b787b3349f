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

/// Sample types with a sum-of-squared-errors kernel.
pub trait ErrorSample: Pixel {
    /// Sum of squared differences between two equally long slices of `bit_depth`-bit samples.
    fn sum_squared_error(reference: &[Self], distorted: &[Self], bit_depth: u8) -> u64;
}

/// Sums `square(a, b)` over chunks of `chunk_len` pairs in `u32` (the caller picks `chunk_len` so
/// that a chunk cannot overflow; a narrow accumulator lets the compiler vectorise), and the chunk
/// sums in `u64`.
#[inline(always)]
fn chunked_sum<T: Copy>(a: &[T], b: &[T], chunk_len: usize, square: impl Fn(T, T) -> u32) -> u64 {
    a.chunks(chunk_len)
        .zip(b.chunks(chunk_len))
        .map(|(x, y)| {
            let chunk: u32 = x.iter().zip(y).map(|(&p, &q)| square(p, q)).sum();
            u64::from(chunk)
        })
        .sum()
}

impl ErrorSample for u8 {
    fn sum_squared_error(reference: &[u8], distorted: &[u8], _bit_depth: u8) -> u64 {
        // Sixteen independent `i32` lanes of 16-bit differences: the compiler turns each step
        // into a multiply-add of 16-bit pairs. A lane sees at most 2^15 / 16 squares of 255², and
        // the lanes of a 2^15-sample chunk sum to under 2^31.
        const LANES: usize = 16;
        reference
            .chunks(1 << 15)
            .zip(distorted.chunks(1 << 15))
            .map(|(r, d)| {
                let mut lanes = [0i32; LANES];
                let (r_lanes, d_lanes) = (r.chunks_exact(LANES), d.chunks_exact(LANES));
                let tail: i32 = r_lanes
                    .remainder()
                    .iter()
                    .zip(d_lanes.remainder())
                    .map(|(&p, &q)| {
                        let e = i32::from(p) - i32::from(q);
                        e * e
                    })
                    .sum();
                for (rs, ds) in r_lanes.zip(d_lanes) {
                    for ((lane, &p), &q) in lanes.iter_mut().zip(rs).zip(ds) {
                        let e = i32::from(i16::from(p) - i16::from(q));
                        *lane += e * e;
                    }
                }
                (lanes.iter().sum::<i32>() + tail) as u64
            })
            .sum()
    }
}

impl ErrorSample for u16 {
    fn sum_squared_error(reference: &[u16], distorted: &[u16], bit_depth: u8) -> u64 {
        if bit_depth <= 15 {
            // Differences of 15-bit samples fit `i16`: a 16-bit multiply-add.
            let peak = (1u64 << bit_depth) - 1;
            let chunk_len = (u64::from(u32::MAX) / (peak * peak).max(1)).max(1) as usize;
            chunked_sum(reference, distorted, chunk_len, |p, q| {
                let e = i32::from((p as i16).wrapping_sub(q as i16));
                (e * e) as u32
            })
        } else {
            reference
                .iter()
                .zip(distorted)
                .map(|(&p, &q)| {
                    let e = u64::from(p.abs_diff(q));
                    e * e
                })
                .sum()
        }
    }
}

/// Mean squared error of two planes of the same size.
pub fn plane_mse<T: ErrorSample>(
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
    let sse = T::sum_squared_error(reference.data(), distorted.data(), bit_depth);
    Ok(sse as f64 / samples as f64)
}

/// Per-plane MSE of a frame pair (Y, Cb, Cr; Y alone for monochrome).
pub fn frame_mse(
    reference: &AnyFrame,
    distorted: &AnyFrame,
    bit_depth: u8,
) -> Result<Vec<f64>, MetricError> {
    fn planes<T: ErrorSample>(
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
        assert_eq!(u8::sum_squared_error(&a, &b, 8), 9 + 255 * 255 + 4);
    }

    #[test]
    fn sse_kernels_equal_a_plain_sum_at_every_length() {
        fn plain<T: Pixel>(a: &[T], b: &[T]) -> u64 {
            a.iter()
                .zip(b)
                .map(|(&p, &q)| u64::from(p.to_u32().abs_diff(q.to_u32())).pow(2))
                .sum()
        }
        for len in (0..80).chain([1000, 33_000, 70_001]) {
            let a: Vec<u8> = (0..len).map(|i| (i * 37 % 256) as u8).collect();
            let b: Vec<u8> = (0..len).map(|i| (i * 101 % 253) as u8).collect();
            assert_eq!(u8::sum_squared_error(&a, &b, 8), plain(&a, &b), "{len}");
            let a: Vec<u16> = (0..len).map(|i| (i * 37 % 1024) as u16).collect();
            let b: Vec<u16> = (0..len).map(|i| (i * 101 % 1021) as u16).collect();
            assert_eq!(u16::sum_squared_error(&a, &b, 10), plain(&a, &b), "{len}");
        }
    }

    #[test]
    fn sse_does_not_overflow_at_full_swing() {
        let a = vec![0u16; 70_000];
        let b = vec![65_535u16; 70_000];
        assert_eq!(
            u16::sum_squared_error(&a, &b, 16),
            70_000 * 65_535u64 * 65_535
        );
        let a = vec![0u8; 200_000];
        let b = vec![255u8; 200_000];
        assert_eq!(u8::sum_squared_error(&a, &b, 8), 200_000 * 255 * 255);
    }

    #[test]
    fn deep_sse_handles_both_signs_and_the_chunk_limit() {
        let a: Vec<u16> = (0..9000)
            .map(|i| if i % 2 == 0 { 0 } else { 1023 })
            .collect();
        let b: Vec<u16> = (0..9000)
            .map(|i| if i % 2 == 0 { 1023 } else { 0 })
            .collect();
        assert_eq!(u16::sum_squared_error(&a, &b, 10), 9000 * 1023 * 1023);
        let a = vec![32_767u16; 10];
        let b = vec![0u16; 10];
        assert_eq!(u16::sum_squared_error(&a, &b, 15), 10 * 32_767 * 32_767);
        assert_eq!(u16::sum_squared_error(&b, &a, 15), 10 * 32_767 * 32_767);
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
