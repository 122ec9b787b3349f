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

/// The anchor PSNR goals compare with unless they name another: x265, tuned for PSNR.
pub const PSNR_ANCHOR: &str = "x265-medium-psnr";

fn ffmpeg(encoder: ExternalEncoder, preset: &str, params: &[&str]) -> CodecSpec {
    CodecSpec::Ffmpeg {
        encoder,
        preset: Some(preset.to_string()),
        params: params.iter().map(|p| p.to_string()).collect(),
    }
}

/// The standard anchors: default presets and CRF ladders (the JCT-VC CRF/QP points for the
/// H.26x encoders, AV1/VP9 ladders of similar reach), plus low-delay variants without B-frames.
///
/// A comparison on a metric is fair against an encoder tuned for that metric. x264 and x265
/// tune for what viewers see by default (psychovisual rate–distortion, adaptive quantisation),
/// which costs them PSNR, so each has a `-psnr` twin run with `-tune psnr`, the anchor PSNR goals
/// compare with; the untuned ones stay for VMAF and SSIM. libaom, SVT-AV1 and libvpx tune for
/// PSNR by default; their anchors say so explicitly, so that a change of default in a later
/// build cannot change what they measure.
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
            name: PSNR_ANCHOR,
            spec: ffmpeg(ExternalEncoder::X265, "medium", &["-tune", "psnr"]),
            rate_points: h26x.clone(),
        },
        AnchorDef {
            name: "x264-medium",
            spec: ffmpeg(ExternalEncoder::X264, "medium", &[]),
            rate_points: h26x.clone(),
        },
        AnchorDef {
            name: "x264-medium-psnr",
            spec: ffmpeg(ExternalEncoder::X264, "medium", &["-tune", "psnr"]),
            rate_points: h26x.clone(),
        },
        AnchorDef {
            name: "svt-av1-p8",
            spec: ffmpeg(ExternalEncoder::SvtAv1, "8", &["-svtav1-params", "tune=1"]),
            rate_points: av1.clone(),
        },
        AnchorDef {
            name: "libaom-cpu6",
            spec: ffmpeg(
                ExternalEncoder::Libaom,
                "6",
                &["-row-mt", "1", "-tune", "psnr"],
            ),
            rate_points: av1.clone(),
        },
        AnchorDef {
            name: "vp9-cpu4",
            spec: ffmpeg(
                ExternalEncoder::Vp9,
                "4",
                &["-row-mt", "1", "-tune", "psnr"],
            ),
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
        let tuned = anchor(PSNR_ANCHOR).unwrap();
        assert_ne!(base, anchor_key(&tuned, "aa", "ffmpeg 5.1"));
    }

    /// The `-tune psnr` twins differ from their untuned anchors by that option alone, and every
    /// AV1 and VP9 anchor pins its PSNR tuning.
    #[test]
    fn psnr_anchors_are_tuned_for_psnr() {
        let params = |name: &str| match anchor(name).unwrap().spec {
            CodecSpec::Ffmpeg { params, .. } => params,
            other => panic!("{name} is not an ffmpeg anchor: {other:?}"),
        };
        for (untuned, tuned) in [
            ("x265-medium", PSNR_ANCHOR),
            ("x264-medium", "x264-medium-psnr"),
        ] {
            assert!(params(untuned).is_empty());
            assert_eq!(params(tuned), ["-tune", "psnr"]);
        }
        assert!(params("svt-av1-p8").ends_with(&["-svtav1-params".into(), "tune=1".into()]));
        for name in ["libaom-cpu6", "vp9-cpu4"] {
            assert!(
                params(name).ends_with(&["-tune".into(), "psnr".into()]),
                "{name}"
            );
        }
        let names: std::collections::BTreeSet<_> =
            standard_anchors().iter().map(|a| a.name).collect();
        assert_eq!(names.len(), standard_anchors().len(), "names are unique");
    }
}
