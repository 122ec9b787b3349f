//! The comparison pipeline on small synthetic clips: refusals (frame counts, sizes, depths,
//! non-finite values), thread-count independence, and the JSON shape.

use std::path::{Path, PathBuf};

use codeclab_metrics::compare::{
    CompareError, CompareOptions, Comparison, MemorySource, Metric, Score, compare,
};
use codeclab_metrics::compare_files;
use codeclab_video::{AnyFrame, ChromaSampling, Frame, Rational, VideoFormat, Y4mWriter};

fn format(width: usize, height: usize, bit_depth: u8, chroma: ChromaSampling) -> VideoFormat {
    VideoFormat {
        width,
        height,
        bit_depth,
        chroma,
        fps: Rational::new(25, 1),
        aspect: Rational::new(1, 1),
    }
}

/// Frames of smooth gradients plus pseudo-random texture; `seed` changes the texture.
fn clip(format: &VideoFormat, frames: usize, seed: u32) -> Vec<AnyFrame> {
    let mut state = seed;
    (0..frames)
        .map(|t| {
            let mut next = move |x: usize, y: usize| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                ((x * 3 + y * 2 + t * 5) % 160) as u32 + (state >> 24) % 48
            };
            if format.bit_depth > 8 {
                let mut f = Frame::<u16>::new_grey(format);
                for plane in &mut f.planes {
                    let w = plane.width();
                    for (i, v) in plane.data_mut().iter_mut().enumerate() {
                        *v = (next(i % w, i / w) << (format.bit_depth - 8)) as u16;
                    }
                }
                AnyFrame::U16(f)
            } else {
                let mut f = Frame::<u8>::new_grey(format);
                for plane in &mut f.planes {
                    let w = plane.width();
                    for (i, v) in plane.data_mut().iter_mut().enumerate() {
                        *v = next(i % w, i / w) as u8;
                    }
                }
                AnyFrame::U8(f)
            }
        })
        .collect()
}

fn write(dir: &Path, name: &str, format: &VideoFormat, frames: &[AnyFrame]) -> PathBuf {
    let path = dir.join(name);
    let mut writer = Y4mWriter::create(&path, format).unwrap();
    for f in frames {
        writer.write_frame(f).unwrap();
    }
    writer.finish().unwrap();
    path
}

fn run(
    reference: &Path,
    distorted: &Path,
    options: &CompareOptions,
) -> Result<Comparison, CompareError> {
    compare_files(reference, distorted, options, &|_| {})
}

#[test]
fn different_frame_counts_are_an_error_naming_both_files() {
    let dir = tempfile::tempdir().unwrap();
    let f = format(32, 32, 8, ChromaSampling::Cs420);
    let three = write(dir.path(), "three.y4m", &f, &clip(&f, 3, 1));
    let five = write(dir.path(), "five.y4m", &f, &clip(&f, 5, 2));
    for (r, d, counts) in [
        (&three, &five, "3 frames vs 5 frames"),
        (&five, &three, "5 frames vs 3 frames"),
    ] {
        let err = run(r, d, &CompareOptions::default()).unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, CompareError::Mismatch { .. }), "{message}");
        assert!(
            message.contains("three.y4m") && message.contains("five.y4m"),
            "{message}"
        );
        assert!(message.contains(counts), "{message}");
    }
}

#[test]
fn different_sizes_depths_or_samplings_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let base = format(32, 32, 8, ChromaSampling::Cs420);
    let reference = write(dir.path(), "ref.y4m", &base, &clip(&base, 2, 1));
    for (name, other, what) in [
        (
            "narrow.y4m",
            format(32, 16, 8, ChromaSampling::Cs420),
            "size 32x32 vs 32x16",
        ),
        (
            "deep.y4m",
            format(32, 32, 10, ChromaSampling::Cs420),
            "bit depth 8 vs 10",
        ),
        (
            "full.y4m",
            format(32, 32, 8, ChromaSampling::Cs444),
            "chroma sampling",
        ),
    ] {
        let distorted = write(dir.path(), name, &other, &clip(&other, 2, 1));
        let err = run(&reference, &distorted, &CompareOptions::default()).unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("ref.y4m") && message.contains(name),
            "{message}"
        );
        assert!(message.contains(what), "{message}");
    }
}

#[test]
fn empty_clips_are_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let f = format(32, 32, 8, ChromaSampling::Cs420);
    let a = write(dir.path(), "a.y4m", &f, &[]);
    let b = write(dir.path(), "b.y4m", &f, &[]);
    assert!(run(&a, &b, &CompareOptions::default()).is_err());
}

#[test]
fn non_finite_values_are_an_error() {
    let f = format(32, 32, 8, ChromaSampling::Cs420);
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let frames = vec![vec![(Score::Ssim, 0.9)], vec![(Score::Ssim, bad)]];
        let err = Comparison::from_frames(&frames, &f).unwrap_err();
        assert!(
            matches!(
                err,
                CompareError::NonFinite {
                    score: Score::Ssim,
                    frame: 1,
                    ..
                }
            ),
            "{err}"
        );
    }
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let f = format(200, 180, 8, ChromaSampling::Cs420);
    let reference = clip(&f, 7, 1);
    let distorted = clip(&f, 7, 2);
    let results: Vec<Comparison> = [1, 2, 3, 0]
        .into_iter()
        .map(|threads| {
            let mut r = MemorySource::new("reference", f, &reference);
            let mut d = MemorySource::new("distorted", f, &distorted);
            let options = CompareOptions {
                metrics: None,
                threads,
                vmaf: None,
            };
            compare(&mut r, &mut d, &options, &|_| {}).unwrap()
        })
        .collect();
    // Frames moved out of an owned source give the same result as copies.
    let mut r = MemorySource::owned("reference", f, reference.clone());
    let mut d = MemorySource::owned("distorted", f, distorted.clone());
    let owned = compare(&mut r, &mut d, &CompareOptions::default(), &|_| {}).unwrap();
    assert_eq!(owned, results[0]);
    assert_eq!(results[0].frames, 7);
    assert!(results[0].per_frame.contains_key(&Score::MsSsim));
    for other in &results[1..] {
        assert_eq!(&results[0], other);
    }
}

#[test]
fn an_absurd_thread_count_is_capped_not_allocated() {
    let f = format(32, 32, 8, ChromaSampling::Cs420);
    let reference = clip(&f, 3, 1);
    let distorted = clip(&f, 3, 2);
    let run_with = |threads: usize| {
        let mut r = MemorySource::new("a", f, &reference);
        let mut d = MemorySource::new("b", f, &distorted);
        let options = CompareOptions {
            metrics: None,
            threads,
            vmaf: None,
        };
        compare(&mut r, &mut d, &options, &|_| {}).unwrap()
    };
    assert_eq!(run_with(usize::MAX), run_with(1));
}

#[test]
fn identical_clips_give_the_ceiling_and_perfect_similarity() {
    for bit_depth in [8u8, 10] {
        let f = format(48, 40, bit_depth, ChromaSampling::Cs420);
        let frames = clip(&f, 2, 5);
        let mut r = MemorySource::new("a", f, &frames);
        let mut d = MemorySource::new("b", f, &frames);
        let options = CompareOptions {
            metrics: Some(vec![Metric::Psnr, Metric::Ssim]),
            threads: 1,
            vmaf: None,
        };
        let c = compare(&mut r, &mut d, &options, &|_| {}).unwrap();
        let ceiling = 6.0 * f64::from(bit_depth) + 12.0;
        for score in [
            Score::PsnrY,
            Score::PsnrCb,
            Score::PsnrYuv,
            Score::PsnrYGlobal,
            Score::PsnrAvgGlobal,
        ] {
            assert_eq!(c.pooled[&score], ceiling, "{score:?} at {bit_depth} bits");
        }
        assert_eq!(c.pooled[&Score::MseY], 0.0);
        assert!((c.pooled[&Score::Ssim] - 1.0).abs() < 1e-6);
    }
}

#[test]
fn global_psnr_pools_mse_not_decibels() {
    // Frame 0 is perfect, frame 1 has luma error 2 everywhere (MSE 4): the mean of per-frame PSNR
    // is (60 + 42.11) / 2, the global PSNR that of the mean MSE 2.
    let f = format(16, 16, 8, ChromaSampling::Cs420);
    let reference = vec![AnyFrame::U8(Frame::new_grey(&f)); 2];
    let mut distorted = reference.clone();
    if let AnyFrame::U8(frame) = &mut distorted[1] {
        frame.planes[0].data_mut().iter_mut().for_each(|v| *v += 2);
    }
    let mut r = MemorySource::new("a", f, &reference);
    let mut d = MemorySource::new("b", f, &distorted);
    let options = CompareOptions {
        metrics: Some(vec![Metric::Psnr]),
        threads: 1,
        vmaf: None,
    };
    let c = compare(&mut r, &mut d, &options, &|_| {}).unwrap();
    let db = |mse: f64| 10.0 * (255.0f64 * 255.0 / mse).log10();
    assert!((c.pooled[&Score::PsnrY] - (60.0 + db(4.0)) / 2.0).abs() < 1e-9);
    assert!((c.pooled[&Score::PsnrYGlobal] - db(2.0)).abs() < 1e-9);
    // ffmpeg's average weights luma by its 256 of 384 samples.
    assert!((c.pooled[&Score::PsnrAvgGlobal] - db(2.0 * 256.0 / 384.0)).abs() < 1e-9);
    assert_eq!(c.per_frame[&Score::MseY], vec![0.0, 4.0]);
}

#[test]
fn json_has_the_documented_shape_and_only_requested_keys() {
    let f = format(32, 32, 8, ChromaSampling::Cs420);
    let reference = clip(&f, 3, 1);
    let distorted = clip(&f, 3, 2);
    let mut r = MemorySource::new("a", f, &reference);
    let mut d = MemorySource::new("b", f, &distorted);
    let options = CompareOptions {
        metrics: Some(vec![Metric::Psnr]),
        threads: 2,
        vmaf: None,
    };
    let c = compare(&mut r, &mut d, &options, &|_| {}).unwrap();
    let json: serde_json::Value = serde_json::to_value(&c).unwrap();
    assert_eq!(json["frames"], 3);
    for key in [
        "psnr_y",
        "psnr_cb",
        "psnr_cr",
        "psnr_yuv",
        "psnr_y_global",
        "psnr_avg_global",
    ] {
        assert!(json["pooled"][key].is_f64(), "{key} in {json}");
    }
    assert_eq!(
        json["per_frame"]["psnr_y"].as_array().map(Vec::len),
        Some(3)
    );
    assert!(json["pooled"].get("ssim").is_none());
    assert!(json["per_frame"].get("psnr_y_global").is_none());
    let back: Comparison = serde_json::from_value(json).unwrap();
    assert_eq!(back, c);
}

#[test]
fn monochrome_clips_have_luma_scores_only() {
    let f = format(32, 32, 8, ChromaSampling::Mono);
    let reference = clip(&f, 2, 1);
    let distorted = clip(&f, 2, 2);
    let mut r = MemorySource::new("a", f, &reference);
    let mut d = MemorySource::new("b", f, &distorted);
    let c = compare(&mut r, &mut d, &CompareOptions::default(), &|_| {}).unwrap();
    assert!(c.pooled.contains_key(&Score::PsnrY));
    assert!(!c.pooled.contains_key(&Score::PsnrCb));
    assert!(!c.pooled.contains_key(&Score::PsnrYuv));
    // 32x32 is too small for MS-SSIM: left out by default.
    assert!(!c.pooled.contains_key(&Score::MsSsim));
    assert!(c.pooled.contains_key(&Score::Ssim));
}
