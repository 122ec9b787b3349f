//! VMAF against libvmaf's numbers on every pair of `shared/vmaf/fixtures/expected.json`:
//! pooled VMAF and VMAF NEG within 0.05, per-frame VMAF within 0.1, and each model feature
//! (integer_adm2, integer_motion2, integer_vif_scale0..3) within 0.0005 on every frame.

mod support;

use codeclab_metrics::vmaf::{Vmaf, VmafModel, VmafReport};
use codeclab_video::Y4mReader;

fn score_pair(pair: &support::FixturePair) -> VmafReport {
    let mut reference = Y4mReader::open(&pair.reference).expect("reference opens");
    let mut distorted = Y4mReader::open(&pair.distorted).expect("distorted opens");
    let format = *reference.format();
    let models = vec![VmafModel::v0_6_1(), VmafModel::v0_6_1_neg()];
    let mut vmaf = Vmaf::new(&format, models).expect("fixture size is supported");
    loop {
        let r = reference.read_frame().expect("reference frame reads");
        let d = distorted.read_frame().expect("distorted frame reads");
        match (r, d) {
            (Some(r), Some(d)) => vmaf.push(&r, &d).expect("frame scores"),
            (None, None) => break,
            _ => panic!("{}: frame counts differ", pair.name),
        }
    }
    vmaf.finish()
}

fn series<'a>(report: &'a VmafReport, name: &str) -> &'a [f64] {
    report
        .features
        .iter()
        .find(|s| s.name == name)
        .map(|s| s.per_frame.as_slice())
        .unwrap_or_else(|| panic!("no feature series {name}"))
}

/// Largest absolute difference between two series of the same length.
fn max_diff(got: &[f64], expected: &[f64]) -> (f64, usize) {
    assert_eq!(got.len(), expected.len(), "frame counts differ");
    got.iter()
        .zip(expected)
        .enumerate()
        .map(|(i, (g, e))| ((g - e).abs(), i))
        .fold((0.0, 0), |a, b| if b.0 > a.0 { b } else { a })
}

#[test]
fn vmaf_matches_libvmaf_on_every_fixture_pair() {
    let mut failures = Vec::new();
    for pair in support::fixture_pairs() {
        let report = score_pair(&pair);
        let features = [
            ("integer_adm2", "integer_adm2"),
            ("integer_motion2", "integer_motion2"),
            ("integer_vif_scale0", "integer_vif_scale0"),
            ("integer_vif_scale1", "integer_vif_scale1"),
            ("integer_vif_scale2", "integer_vif_scale2"),
            ("integer_vif_scale3", "integer_vif_scale3"),
            ("integer_adm2_egl_1", "integer_adm2_egl_1"),
            ("integer_vif_scale0_egl_1", "integer_vif_scale0_egl_1"),
            ("integer_vif_scale1_egl_1", "integer_vif_scale1_egl_1"),
            ("integer_vif_scale2_egl_1", "integer_vif_scale2_egl_1"),
            ("integer_vif_scale3_egl_1", "integer_vif_scale3_egl_1"),
        ];
        for (ours, theirs) in features {
            let expected = pair.per_frame(theirs).expect("libvmaf feature present");
            let (diff, frame) = max_diff(series(&report, ours), &expected);
            eprintln!(
                "{:32} {:28} max diff {diff:.2e} (frame {frame})",
                pair.name, ours
            );
            if diff > 5e-4 {
                failures.push(format!(
                    "{}: {ours} off by {diff} at frame {frame}",
                    pair.name
                ));
            }
        }
        for (model, key) in [(0, "vmaf"), (1, "vmaf_neg")] {
            let scores = &report.models[model];
            let expected = pair.per_frame(key).expect("libvmaf score present");
            let (diff, frame) = max_diff(&scores.per_frame, &expected);
            let pooled = scores.pooled.expect("frames were scored");
            let pooled_expected = pair.number("pooled_mean", key).expect("pooled score");
            let pooled_diff = (pooled.mean - pooled_expected).abs();
            eprintln!(
                "{:32} {key:28} max diff {diff:.2e} (frame {frame}), pooled {:.6} vs {pooled_expected:.6}",
                pair.name, pooled.mean
            );
            if diff > 0.1 {
                failures.push(format!(
                    "{}: {key} off by {diff} at frame {frame}",
                    pair.name
                ));
            }
            if pooled_diff > 0.05 {
                failures.push(format!("{}: pooled {key} off by {pooled_diff}", pair.name));
            }
            if let Some(h) = pair.number("pooled_harmonic_mean", key) {
                assert!(
                    (pooled.harmonic_mean - h).abs() < 0.05,
                    "{}: harmonic mean {key} {} vs {h}",
                    pair.name,
                    pooled.harmonic_mean
                );
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn comparison_pipeline_carries_vmaf_and_neg() {
    use codeclab_metrics::compare::{CompareOptions, Metric, Score, compare_files};
    use codeclab_metrics::vmaf::VmafOptions;
    let pairs = support::fixture_pairs();
    let pair = pairs
        .iter()
        .find(|p| p.name == "bikes60__x264_crf32.mp4")
        .expect("the x264 CRF 32 pair is in the manifest");
    let vmaf = VmafOptions {
        neg: true,
        features: true,
        ..VmafOptions::default()
    };
    let mut results = Vec::new();
    for threads in [1, 2] {
        let options = CompareOptions {
            metrics: Some(vec![Metric::Psnr]),
            threads,
            vmaf: Some(vmaf.clone()),
        };
        let c = compare_files(&pair.reference, &pair.distorted, &options, &|_| {})
            .expect("the pair compares");
        results.push(c);
    }
    assert_eq!(results[0], results[1], "one thread and two threads differ");
    let c = &results[0];
    for (score, key) in [(Score::Vmaf, "vmaf"), (Score::VmafNeg, "vmaf_neg")] {
        let expected = pair.number("pooled_mean", key).expect("pooled score");
        assert!((c.pooled[&score] - expected).abs() < 0.05, "{key}");
        let frames = pair.per_frame(key).expect("per-frame scores");
        let (diff, frame) = max_diff(&c.per_frame[&score], &frames);
        assert!(diff < 0.1, "{key} off by {diff} at frame {frame}");
    }
    let report = c.vmaf.as_ref().expect("the VMAF report is attached");
    let adm2 = pair.per_frame("integer_adm2").expect("adm2");
    assert!(max_diff(series(report, "integer_adm2"), &adm2).0 < 5e-4);
    assert!(c.per_frame.contains_key(&Score::PsnrY));
}

#[test]
fn sizes_libvmaf_refuses_are_refused_with_a_message() {
    use codeclab_metrics::compare::{CompareError, CompareOptions, MemorySource, compare};
    use codeclab_metrics::vmaf::{VmafError, VmafOptions};
    use codeclab_video::{AnyFrame, ChromaSampling, Rational, VideoFormat};
    for (width, height) in [(32, 64), (64, 32), (16, 16)] {
        let format = VideoFormat {
            width,
            height,
            bit_depth: 8,
            chroma: ChromaSampling::Cs420,
            fps: Rational::new(25, 1),
            aspect: Rational::new(1, 1),
        };
        let frames = vec![AnyFrame::new_grey(&format); 2];
        let mut r = MemorySource::new("reference", format, &frames);
        let mut d = MemorySource::new("distorted", format, &frames);
        let options = CompareOptions {
            metrics: Some(vec![]),
            threads: 1,
            vmaf: Some(VmafOptions::default()),
        };
        let err =
            compare(&mut r, &mut d, &options, &|_| {}).expect_err("libvmaf refuses this size");
        assert!(
            matches!(
                err,
                CompareError::Vmaf(VmafError::UnsupportedSize { width: w, height: h })
                    if (w, h) == (width, height)
            ),
            "{err}"
        );
        assert!(err.to_string().contains("greater than 32"), "{err}");
    }
}
