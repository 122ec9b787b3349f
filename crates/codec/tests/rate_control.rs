//! Target-bitrate mode lands within 5 % of the target over a clip, low delay or with B frames;
//! constant quality follows complexity and the rate factor.

mod common;

use codeclab_codec::{Genome, RateMode};
use common::{format, round_trip, synthetic_clip};

#[test]
fn bitrate_lands_within_five_percent() {
    let format = format(96, 64);
    let clip = synthetic_clip(&format, 48, 3);
    for mini_gop in [1, 8, 16] {
        for kbps in [150.0, 600.0] {
            let genome = Genome {
                mini_gop,
                ..Genome::default()
            };
            let (stream, recons, decoded) =
                round_trip(format, &clip, genome, RateMode::TargetBitrate { kbps });
            assert!(recons == decoded);
            let actual = stream.len() as f64 * 8.0 * 30.0 / clip.len() as f64 / 1000.0;
            let error = (actual - kbps).abs() / kbps;
            assert!(
                error < 0.05,
                "mini-GOP {mini_gop}: target {kbps} kbps, got {actual:.1} kbps"
            );
        }
    }
}

/// The hard case for a controller that learns frame sizes as it goes: a still start, then a cut
/// to busier content it has not seen, in a clip too short to pay back a late surprise. The
/// targets are the bitrates of constant QP 26 and 34, the range rate control is tuned for.
#[test]
fn bitrate_lands_within_five_percent_across_a_cut_to_busier_content() {
    let format = format(96, 64);
    let still = synthetic_clip(&format, 1, 3).remove(0);
    let mut clip = vec![still; 16];
    clip.extend(
        synthetic_clip(&format, 32, 11)
            .into_iter()
            .map(|mut frame| {
                for plane in &mut frame.planes {
                    for sample in plane.data_mut() {
                        *sample = 255 - *sample;
                    }
                }
                frame
            }),
    );
    let kbps_of = |stream: &[u8]| stream.len() as f64 * 8.0 * 30.0 / clip.len() as f64 / 1000.0;
    for mini_gop in [1, 4, 16] {
        let genome = Genome {
            mini_gop,
            ..Genome::default()
        };
        for qp in [26, 34] {
            let (stream, _, _) =
                round_trip(format, &clip, genome.clone(), RateMode::ConstantQp(qp));
            let kbps = kbps_of(&stream);
            let (stream, recons, decoded) = round_trip(
                format,
                &clip,
                genome.clone(),
                RateMode::TargetBitrate { kbps },
            );
            assert!(recons == decoded);
            let actual = kbps_of(&stream);
            assert!(
                (actual - kbps).abs() / kbps < 0.05,
                "mini-GOP {mini_gop}: target {kbps:.1} kbps (QP {qp}), got {actual:.1} kbps"
            );
        }
    }
}

#[test]
fn invalid_rate_settings_are_errors() {
    let format = format(16, 16);
    for mode in [
        RateMode::ConstantQp(52),
        RateMode::TargetBitrate { kbps: 0.0 },
        RateMode::TargetBitrate { kbps: f64::NAN },
        RateMode::ConstantQuality { crf: -1.0 },
        RateMode::ConstantQuality { crf: f64::NAN },
    ] {
        assert!(codeclab_codec::Encoder::<u8>::new(format, Genome::default(), mode).is_err());
    }
}

/// Mean QP of the frames after the first, and the stream's size, at constant quality `crf`.
fn constant_quality(clip: &[codeclab_video::Frame<u8>], crf: f64) -> (f64, usize) {
    let format = format(96, 64);
    let (stream, recons, decoded) = round_trip(
        format,
        clip,
        Genome::default(),
        RateMode::ConstantQuality { crf },
    );
    assert!(recons == decoded);
    let mut encoder =
        codeclab_codec::Encoder::new(format, Genome::default(), RateMode::ConstantQuality { crf })
            .unwrap();
    let mut qps = Vec::new();
    for frame in clip {
        qps.extend(
            encoder
                .encode_frame(frame)
                .unwrap()
                .iter()
                .map(|f| (f.display_index, f.qp)),
        );
    }
    qps.extend(
        encoder
            .finish()
            .unwrap()
            .0
            .iter()
            .map(|f| (f.display_index, f.qp)),
    );
    let later: Vec<f64> = qps
        .iter()
        .filter(|(index, _)| *index > 0)
        .map(|&(_, qp)| f64::from(qp))
        .collect();
    (later.iter().sum::<f64>() / later.len() as f64, stream.len())
}

#[test]
fn constant_quality_follows_complexity_and_the_rate_factor() {
    let moving = synthetic_clip(&format(96, 64), 24, 5);
    let still = vec![moving[0].clone(); 24];
    let (moving_qp, moving_bytes) = constant_quality(&moving, 30.0);
    let (still_qp, _) = constant_quality(&still, 30.0);
    assert!(
        still_qp + 3.0 < moving_qp,
        "still {still_qp:.1}, moving {moving_qp:.1}"
    );
    let (higher_qp, higher_bytes) = constant_quality(&moving, 36.0);
    assert!(higher_qp > moving_qp + 4.0 && higher_bytes < moving_bytes);
}
