//! BD-rate against the reference vectors in `shared/bdrate/vectors.json`, and its properties.

use codeclab_metrics::bdrate::{
    Axis, BdRateError, ClipCurves, ClipOutcome, Curve, Interpolation, LOW_OVERLAP, RdPoint,
    bd_quality, bd_rate, compare, compare_clips,
};
use proptest::prelude::*;
use serde::Deserialize;

#[derive(Deserialize)]
struct VectorFile {
    vectors: Vec<Vector>,
}

#[derive(Deserialize)]
struct Vector {
    name: String,
    anchor: Vec<RdPoint>,
    test: Vec<RdPoint>,
    expected_bd_rate_percent: ExpectedBdRate,
    expected_bd_psnr_db_pchip: f64,
}

#[derive(Deserialize)]
struct ExpectedBdRate {
    pchip: f64,
    akima: f64,
    cubic: f64,
}

impl ExpectedBdRate {
    fn get(&self, method: Interpolation) -> f64 {
        match method {
            Interpolation::Pchip => self.pchip,
            Interpolation::Akima => self.akima,
            Interpolation::Cubic => self.cubic,
        }
    }
}

fn reference_vectors() -> Vec<Vector> {
    let shared = codeclab_video::shared::shared_dir().expect("the shared data folder is missing");
    let path = shared.join("bdrate/vectors.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
    let file: VectorFile = serde_json::from_str(&text).expect("vectors.json does not parse");
    assert!(!file.vectors.is_empty(), "vectors.json holds no vectors");
    file.vectors
}

/// The tolerance the reference numbers are to be met with, in percentage points and in dB.
const BD_RATE_TOLERANCE: f64 = 1e-4;
const BD_QUALITY_TOLERANCE: f64 = 1e-4;

#[test]
fn every_reference_vector_matches_for_every_method() {
    for vector in reference_vectors() {
        let report = compare(&vector.anchor, &vector.test)
            .unwrap_or_else(|err| panic!("{}: {err}", vector.name));
        for method in Interpolation::ALL {
            let expected = vector.expected_bd_rate_percent.get(method);
            let alone = bd_rate(&vector.anchor, &vector.test, method).unwrap();
            let in_report = match method {
                Interpolation::Pchip => report.pchip,
                Interpolation::Akima => report.akima,
                Interpolation::Cubic => report.cubic,
            };
            for got in [alone, in_report] {
                assert!(
                    (got - expected).abs() < BD_RATE_TOLERANCE,
                    "{} {method}: {got} % instead of {expected} %",
                    vector.name
                );
            }
        }
        let bd_psnr = report.bd_quality_pchip.expect("the vectors' rates overlap");
        let expected = vector.expected_bd_psnr_db_pchip;
        assert!(
            (bd_psnr - expected).abs() < BD_QUALITY_TOLERANCE,
            "{}: BD-PSNR {bd_psnr} dB instead of {expected} dB",
            vector.name
        );
    }
}

#[test]
fn reference_vectors_give_the_same_numbers_in_reverse_order() {
    for vector in reference_vectors() {
        let reversed = |points: &[RdPoint]| points.iter().rev().copied().collect::<Vec<_>>();
        assert_eq!(
            compare(&vector.anchor, &vector.test),
            compare(&reversed(&vector.anchor), &reversed(&vector.test)),
            "{}",
            vector.name
        );
    }
}

fn points(pairs: &[(f64, f64)]) -> Vec<RdPoint> {
    pairs
        .iter()
        .map(|&(rate, quality)| RdPoint { rate, quality })
        .collect()
}

#[test]
fn overlap_is_the_shared_quality_range_over_the_anchors() {
    let anchor = points(&[(100.0, 30.0), (200.0, 32.0), (400.0, 34.0), (800.0, 36.0)]);
    let test = points(&[(150.0, 33.0), (300.0, 35.0), (600.0, 37.0), (1200.0, 39.0)]);
    let report = compare(&anchor, &test).unwrap();
    // Shared [33, 36] over the anchor's [30, 36].
    assert!((report.overlap - 0.5).abs() < 1e-12, "{}", report.overlap);
    assert!(report.low_overlap);
    let full = compare(&anchor, &anchor).unwrap();
    assert_eq!(full.overlap, 1.0);
    assert!(!full.low_overlap);
    // Exactly at the threshold is enough: shared [32, 38] over [30, 38].
    let anchor = points(&[(100.0, 30.0), (200.0, 32.0), (400.0, 35.0), (800.0, 38.0)]);
    let test = points(&[(150.0, 32.0), (300.0, 36.0), (600.0, 40.0), (1200.0, 44.0)]);
    let at_threshold = compare(&anchor, &test).unwrap();
    assert_eq!(at_threshold.overlap, LOW_OVERLAP);
    assert!(!at_threshold.low_overlap);
}

#[test]
fn bd_quality_is_absent_when_the_rates_do_not_overlap() {
    let anchor = points(&[(100.0, 30.0), (200.0, 32.0), (400.0, 34.0), (800.0, 36.0)]);
    // Much better and far cheaper: the quality ranges meet, the rate ranges do not.
    let test = points(&[(10.0, 33.0), (20.0, 35.0), (40.0, 37.0), (80.0, 39.0)]);
    let report = compare(&anchor, &test).unwrap();
    assert_eq!(report.bd_quality_pchip, None);
    assert!(report.pchip < -90.0, "{}", report.pchip);
    match bd_quality(&anchor, &test, Interpolation::Pchip) {
        Err(BdRateError::NoOverlap {
            axis: Axis::Rate,
            anchor_min,
            test_max,
            ..
        }) => {
            // Reported in rate units, not log-rate.
            assert!((anchor_min - 100.0).abs() < 1e-9 && (test_max - 80.0).abs() < 1e-9);
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn clips_are_compared_one_by_one_then_averaged() {
    let vectors = reference_vectors();
    let clips: Vec<ClipCurves> = vectors
        .iter()
        .map(|v| ClipCurves {
            clip: &v.name,
            anchor: &v.anchor,
            test: &v.test,
        })
        .collect();
    let report = compare_clips(clips.iter().copied());
    assert_eq!(report.clips.len(), vectors.len());
    assert_eq!(report.failures().count(), 0);
    let mean = report.mean.expect("every clip succeeded");
    assert_eq!(mean.clips, vectors.len());
    let count = vectors.len() as f64;
    for method in Interpolation::ALL {
        let expected = vectors
            .iter()
            .map(|v| v.expected_bd_rate_percent.get(method))
            .sum::<f64>()
            / count;
        let got = match method {
            Interpolation::Pchip => mean.pchip,
            Interpolation::Akima => mean.akima,
            Interpolation::Cubic => mean.cubic,
        };
        assert!(
            (got - expected).abs() < BD_RATE_TOLERANCE,
            "{method}: {got}"
        );
    }
    let expected_bd_psnr = vectors
        .iter()
        .map(|v| v.expected_bd_psnr_db_pchip)
        .sum::<f64>()
        / count;
    assert!((mean.bd_quality_pchip.unwrap() - expected_bd_psnr).abs() < BD_QUALITY_TOLERANCE);

    // One clip with three points: it is reported, and no mean over the others is made up.
    let short = &vectors[0].test[..3];
    let mut with_failure = clips.clone();
    with_failure.push(ClipCurves {
        clip: "short",
        anchor: &vectors[0].anchor,
        test: short,
    });
    let report = compare_clips(with_failure);
    assert_eq!(report.mean, None);
    let failures: Vec<_> = report.failures().collect();
    assert_eq!(
        failures,
        vec![(
            "short",
            &BdRateError::TooFewPoints {
                curve: Curve::Test,
                points: 3
            }
        )]
    );
    assert!(matches!(report.clips[0].outcome, ClipOutcome::Report(_)));
    assert_eq!(compare_clips([]).mean, None);
}

/// A valid curve: 4 to 8 points, rates growing by 5 % to 200 %, qualities by 0.05 to 4.
fn curve() -> impl Strategy<Value = Vec<RdPoint>> {
    (4usize..=8)
        .prop_flat_map(|n| {
            (
                1.0f64..1e5,
                prop::collection::vec(1.05f64..3.0, n - 1),
                20.0f64..45.0,
                prop::collection::vec(0.05f64..4.0, n - 1),
            )
        })
        .prop_map(|(first_rate, rate_steps, first_quality, quality_steps)| {
            let mut point = RdPoint {
                rate: first_rate,
                quality: first_quality,
            };
            let mut curve = vec![point];
            for (rate_step, quality_step) in rate_steps.into_iter().zip(quality_steps) {
                point.rate *= rate_step;
                point.quality += quality_step;
                curve.push(point);
            }
            curve
        })
}

/// A test curve close to `anchor`: all rates scaled by one factor, then each point nudged.
fn curve_pair() -> impl Strategy<Value = (Vec<RdPoint>, Vec<RdPoint>)> {
    curve().prop_flat_map(|anchor| {
        let n = anchor.len();
        let nudges = prop::collection::vec((0.98f64..1.02, -0.02f64..0.02), n);
        (Just(anchor), 0.5f64..2.0, nudges).prop_map(|(anchor, scale, nudges)| {
            // Rate steps of at least 5 % and quality steps of at least 0.05 survive nudges of
            // ±2 % and ±0.02, so the test curve stays monotonic.
            let test = anchor
                .iter()
                .zip(nudges)
                .map(|(p, (rate_nudge, quality_nudge))| RdPoint {
                    rate: p.rate * scale * rate_nudge,
                    quality: p.quality + quality_nudge,
                })
                .collect();
            (anchor, test)
        })
    })
}

/// A curve pair, and the same two curves with their points shuffled.
fn shuffled_curve_pair() -> impl Strategy<Value = [Vec<RdPoint>; 4]> {
    curve_pair().prop_flat_map(|(anchor, test)| {
        (
            Just(anchor.clone()),
            Just(test.clone()),
            Just(anchor).prop_shuffle(),
            Just(test).prop_shuffle(),
        )
            .prop_map(|(a, t, shuffled_a, shuffled_t)| [a, t, shuffled_a, shuffled_t])
    })
}

proptest! {
    #[test]
    fn identical_curves_differ_by_nothing(anchor in curve()) {
        let report = compare(&anchor, &anchor).unwrap();
        for value in [report.pchip, report.akima, report.cubic] {
            prop_assert!(value.abs() < 1e-9, "{report:?}");
        }
        prop_assert!(report.bd_quality_pchip.unwrap().abs() < 1e-9);
        prop_assert_eq!(report.overlap, 1.0);
    }

    #[test]
    fn ten_percent_fewer_bits_everywhere_is_minus_ten_percent(anchor in curve()) {
        let test: Vec<RdPoint> = anchor
            .iter()
            .map(|p| RdPoint { rate: 0.9 * p.rate, quality: p.quality })
            .collect();
        let report = compare(&anchor, &test).unwrap();
        for value in [report.pchip, report.akima, report.cubic] {
            prop_assert!((value + 10.0).abs() < 1e-6, "{report:?}");
        }
    }

    #[test]
    fn a_uniform_quality_gain_is_the_bd_quality(anchor in curve(), gain in -2.0f64..2.0) {
        let test: Vec<RdPoint> = anchor
            .iter()
            .map(|p| RdPoint { rate: p.rate, quality: p.quality + gain })
            .collect();
        for method in Interpolation::ALL {
            let delta = bd_quality(&anchor, &test, method).unwrap();
            prop_assert!((delta - gain).abs() < 1e-9, "{method}: {delta} vs {gain}");
        }
    }

    #[test]
    fn point_order_does_not_matter([anchor, test, shuffled_anchor, shuffled_test] in shuffled_curve_pair()) {
        prop_assert_eq!(compare(&anchor, &test), compare(&shuffled_anchor, &shuffled_test));
    }

    #[test]
    fn swapping_anchor_and_test_inverts_the_rate_ratio((anchor, test) in curve_pair()) {
        for method in Interpolation::ALL {
            let forward = bd_rate(&anchor, &test, method).unwrap();
            let backward = bd_rate(&test, &anchor, method).unwrap();
            let product: f64 = (1.0 + forward / 100.0) * (1.0 + backward / 100.0);
            prop_assert!((product - 1.0).abs() < 1e-9, "{method}: {forward} / {backward}");
        }
    }

    #[test]
    fn fewer_than_four_points_are_rejected(anchor in curve(), kept in 0usize..4) {
        let short = &anchor[..kept];
        prop_assert_eq!(
            compare(&anchor, short),
            Err(BdRateError::TooFewPoints { curve: Curve::Test, points: kept })
        );
        prop_assert_eq!(
            bd_rate(short, &anchor, Interpolation::Cubic),
            Err(BdRateError::TooFewPoints { curve: Curve::Anchor, points: kept })
        );
    }

    #[test]
    fn bad_rates_are_rejected(
        anchor in curve(),
        which in any::<prop::sample::Index>(),
        bad in prop_oneof![Just(0.0), Just(-1.0), -1e6f64..=0.0, Just(f64::NAN),
                           Just(f64::INFINITY), Just(f64::NEG_INFINITY)],
    ) {
        let index = which.index(anchor.len());
        let mut test = anchor.clone();
        test[index].rate = bad;
        match compare(&anchor, &test) {
            Err(BdRateError::InvalidRate { curve: Curve::Test, index: reported, .. }) => {
                prop_assert_eq!(reported, index);
            }
            other => prop_assert!(false, "unexpected {:?}", other),
        }
    }

    #[test]
    fn non_finite_qualities_are_rejected(
        anchor in curve(),
        which in any::<prop::sample::Index>(),
        bad in prop_oneof![Just(f64::NAN), Just(f64::INFINITY), Just(f64::NEG_INFINITY)],
    ) {
        let index = which.index(anchor.len());
        let mut broken = anchor.clone();
        broken[index].quality = bad;
        let is_rejected = matches!(
            compare(&broken, &anchor),
            Err(BdRateError::NonFiniteQuality { curve: Curve::Anchor, index: i, .. }) if i == index
        );
        prop_assert!(is_rejected);
    }

    #[test]
    fn non_monotonic_curves_are_rejected(
        anchor in curve(),
        which in any::<prop::sample::Index>(),
        equal in any::<bool>(),
    ) {
        // Make one point's quality fall to (or stay at) its predecessor's.
        let index = 1 + which.index(anchor.len() - 1);
        let mut broken = anchor.clone();
        broken[index].quality = if equal {
            broken[index - 1].quality
        } else {
            broken[index - 1].quality - 0.5
        };
        let is_rejected = matches!(
            compare(&anchor, &broken),
            Err(BdRateError::NonMonotonic { curve: Curve::Test, .. })
        );
        prop_assert!(is_rejected);
        // Two points at the same rate are not monotonic either.
        let mut repeated_rate = anchor.clone();
        repeated_rate[index].rate = repeated_rate[index - 1].rate;
        let is_rejected = matches!(
            compare(&repeated_rate, &anchor),
            Err(BdRateError::NonMonotonic { curve: Curve::Anchor, .. })
        );
        prop_assert!(is_rejected);
    }

    #[test]
    fn curves_without_shared_quality_are_rejected(anchor in curve(), gap in 0.0f64..10.0) {
        let anchor_max = anchor[anchor.len() - 1].quality;
        let offset = anchor_max - anchor[0].quality + gap;
        let test: Vec<RdPoint> = anchor
            .iter()
            .map(|p| RdPoint { rate: p.rate, quality: p.quality + offset })
            .collect();
        for method in Interpolation::ALL {
            let is_rejected = matches!(
                bd_rate(&anchor, &test, method),
                Err(BdRateError::NoOverlap { axis: Axis::Quality, .. })
            );
            prop_assert!(is_rejected);
        }
        let is_rejected = matches!(
            compare(&test, &anchor),
            Err(BdRateError::NoOverlap { axis: Axis::Quality, .. })
        );
        prop_assert!(is_rejected);
    }
}
