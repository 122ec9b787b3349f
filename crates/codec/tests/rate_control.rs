//! Target-bitrate mode lands within 5 % of the target over a clip, low delay or with B frames.

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

#[test]
fn invalid_rate_settings_are_errors() {
    let format = format(16, 16);
    for mode in [
        RateMode::ConstantQp(52),
        RateMode::TargetBitrate { kbps: 0.0 },
        RateMode::TargetBitrate { kbps: f64::NAN },
    ] {
        assert!(codeclab_codec::Encoder::<u8>::new(format, Genome::default(), mode).is_err());
    }
}
