//! Anchor curves: the encoders people use today, with the settings they would pick, run on the
//! corpus once and kept until the clip, the encoder build or the settings change (all three are
//! in the anchor's key).

use serde::Serialize;

use crate::spec::{CodecSpec, ExternalEncoder, RatePoint};

/// One anchor: a named codec spec and its rate ladder.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AnchorDef {
    pub name: &'static str,
    pub spec: CodecSpec,
    pub rate_points: Vec<RatePoint>,
}

fn ffmpeg(encoder: ExternalEncoder, preset: &str, params: &[&str]) -> CodecSpec {
    CodecSpec::Ffmpeg {
        encoder,
        preset: Some(preset.to_string()),
        params: params.iter().map(|p| p.to_string()).collect(),
    }
}

/// The standard anchors: default presets and CRF ladders (the JCT-VC CRF/QP points for the
/// H.26x encoders, AV1/VP9 ladders of similar reach), plus low-delay variants without B-frames.
pub fn standard_anchors() -> Vec<AnchorDef> {
    let h26x: Vec<RatePoint> = [22, 27, 32, 37].map(RatePoint::Crf).to_vec();
    let av1: Vec<RatePoint> = [27, 35, 43, 51].map(RatePoint::Crf).to_vec();
    vec![
        AnchorDef {
            name: "x265-medium",
            spec: ffmpeg(ExternalEncoder::X265, "medium", &[]),
            rate_points: h26x.clone(),
        },
        AnchorDef {
            name: "x264-medium",
            spec: ffmpeg(ExternalEncoder::X264, "medium", &[]),
            rate_points: h26x.clone(),
        },
        AnchorDef {
            name: "svt-av1-p8",
            spec: ffmpeg(ExternalEncoder::SvtAv1, "8", &[]),
            rate_points: av1.clone(),
        },
        AnchorDef {
            name: "libaom-cpu6",
            spec: ffmpeg(ExternalEncoder::Libaom, "6", &["-row-mt", "1"]),
            rate_points: av1.clone(),
        },
        AnchorDef {
            name: "vp9-cpu4",
            spec: ffmpeg(ExternalEncoder::Vp9, "4", &["-row-mt", "1"]),
            rate_points: av1,
        },
        AnchorDef {
            name: "x265-medium-lowdelay",
            spec: ffmpeg(
                ExternalEncoder::X265,
                "medium",
                &["-x265-params", "bframes=0"],
            ),
            rate_points: h26x.clone(),
        },
        AnchorDef {
            name: "x264-medium-lowdelay",
            spec: ffmpeg(ExternalEncoder::X264, "medium", &["-bf", "0"]),
            rate_points: h26x,
        },
    ]
}

/// The anchor with this name.
pub fn anchor(name: &str) -> Option<AnchorDef> {
    standard_anchors().into_iter().find(|a| a.name == name)
}

/// The key under which an anchor's curve on a clip is cached: it changes with the settings,
/// the ladder, the clip's content and the encoder build.
pub fn anchor_key(anchor: &AnchorDef, clip_sha256: &str, codec_version: &str) -> String {
    let identity = serde_json::json!({
        // Streams measured without the encoders' informational SEI (see
        // `ExternalEncoder::sei_stripping`); results measured with it are not reused.
        "measurement": "sei-stripped",
        "name": anchor.name,
        "spec": serde_json::to_value(&anchor.spec).unwrap_or_default(),
        "rate_points": serde_json::to_value(&anchor.rate_points).unwrap_or_default(),
        "clip_sha256": clip_sha256,
        "codec_version": codec_version,
    });
    crate::spec::sha256_hex(identity.to_string().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_change_with_clip_version_and_settings() {
        let x265 = anchor("x265-medium").unwrap();
        let base = anchor_key(&x265, "aa", "ffmpeg 5.1");
        assert_eq!(base, anchor_key(&x265, "aa", "ffmpeg 5.1"));
        assert_ne!(base, anchor_key(&x265, "ab", "ffmpeg 5.1"));
        assert_ne!(base, anchor_key(&x265, "aa", "ffmpeg 6.0"));
        let low_delay = anchor("x265-medium-lowdelay").unwrap();
        assert_ne!(base, anchor_key(&low_delay, "aa", "ffmpeg 5.1"));
    }
}
