//! Codec specifications and rate points: plain data (JSON) that names a codec, its settings and
//! how a rate ladder maps onto it, hashed stably so the same spec is recognised wherever it
//! comes from.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The external encoders reached through the `ffmpeg` command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExternalEncoder {
    X264,
    X265,
    SvtAv1,
    Libaom,
    Vp9,
    Rav1e,
}

impl ExternalEncoder {
    pub const ALL: [ExternalEncoder; 6] = [
        ExternalEncoder::X264,
        ExternalEncoder::X265,
        ExternalEncoder::SvtAv1,
        ExternalEncoder::Libaom,
        ExternalEncoder::Vp9,
        ExternalEncoder::Rav1e,
    ];

    /// ffmpeg's name for the encoder (`-c:v`).
    pub fn ffmpeg_name(self) -> &'static str {
        match self {
            ExternalEncoder::X264 => "libx264",
            ExternalEncoder::X265 => "libx265",
            ExternalEncoder::SvtAv1 => "libsvtav1",
            ExternalEncoder::Libaom => "libaom-av1",
            ExternalEncoder::Vp9 => "libvpx-vp9",
            ExternalEncoder::Rav1e => "librav1e",
        }
    }

    /// ffmpeg arguments that drop SEI messages from the stream: x264 and x265 write their version
    /// and settings into it as text (0.7 and 2.4 KB), which is not coded video and would count
    /// as bits of it (x265's is 40 % of a 20-frame QCIF stream at CRF 32). The decoded pictures
    /// are the same without them.
    pub fn sei_stripping(self) -> &'static [&'static str] {
        match self {
            ExternalEncoder::X264 => &["-bsf:v", "filter_units=remove_types=6"],
            ExternalEncoder::X265 => &["-bsf:v", "filter_units=remove_types=39|40"],
            _ => &[],
        }
    }

    /// The elementary-stream muxer the bitstream is written with: raw Annex B for H.264/HEVC,
    /// IVF for AV1 and VP9 (their decoders need its frame sizes).
    pub fn muxer(self) -> (&'static str, &'static str) {
        match self {
            ExternalEncoder::X264 => ("h264", "h264"),
            ExternalEncoder::X265 => ("hevc", "hevc"),
            _ => ("ivf", "ivf"),
        }
    }

    /// The encoder's own name for its speed preset option, and the range of its quality scale.
    fn preset_option(self) -> &'static str {
        match self {
            ExternalEncoder::X264 | ExternalEncoder::X265 | ExternalEncoder::SvtAv1 => "-preset",
            ExternalEncoder::Libaom | ExternalEncoder::Vp9 => "-cpu-used",
            ExternalEncoder::Rav1e => "-speed",
        }
    }

    /// The largest CRF or QP value the encoder accepts.
    pub fn max_quality_value(self) -> u32 {
        match self {
            ExternalEncoder::X264 | ExternalEncoder::X265 => 51,
            ExternalEncoder::SvtAv1 | ExternalEncoder::Libaom | ExternalEncoder::Vp9 => 63,
            ExternalEncoder::Rav1e => 255,
        }
    }

    /// The ffmpeg arguments that set a rate point on this encoder.
    pub fn rate_arguments(self, point: RatePoint) -> Result<Vec<String>, String> {
        let check = |value: u32| {
            if value > self.max_quality_value() {
                Err(format!(
                    "{point} is out of range for {} (0..={})",
                    self.ffmpeg_name(),
                    self.max_quality_value()
                ))
            } else {
                Ok(value.to_string())
            }
        };
        Ok(match (self, point) {
            (_, RatePoint::Kbps(kbps)) if !(kbps.is_finite() && kbps > 0.0) => {
                return Err(format!("{point}: a target bitrate must be positive"));
            }
            (_, RatePoint::Kbps(kbps)) => vec!["-b:v".into(), format!("{}k", kbps)],
            (ExternalEncoder::Rav1e, RatePoint::Crf(_)) => {
                return Err("rav1e has no CRF; use a QP ladder".into());
            }
            (ExternalEncoder::Rav1e, RatePoint::Qp(qp)) => vec!["-qp".into(), check(qp)?],
            (ExternalEncoder::Libaom | ExternalEncoder::Vp9, RatePoint::Crf(crf)) => {
                // libaom and libvpx read `-crf` only as constrained quality unless the bitrate is 0.
                vec!["-crf".into(), check(crf)?, "-b:v".into(), "0".into()]
            }
            (ExternalEncoder::Libaom | ExternalEncoder::Vp9, RatePoint::Qp(qp)) => {
                let q = check(qp)?;
                vec![
                    "-qmin".into(),
                    q.clone(),
                    "-qmax".into(),
                    q,
                    "-b:v".into(),
                    "0".into(),
                ]
            }
            (ExternalEncoder::SvtAv1, RatePoint::Qp(qp)) => vec!["-qp".into(), check(qp)?],
            (ExternalEncoder::X265, RatePoint::Qp(qp)) => {
                vec!["-x265-params".into(), format!("qp={}", check(qp)?)]
            }
            (_, RatePoint::Crf(crf)) => vec!["-crf".into(), check(crf)?],
            (ExternalEncoder::X264, RatePoint::Qp(qp)) => vec!["-qp".into(), check(qp)?],
        })
    }
}

impl std::fmt::Display for ExternalEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.ffmpeg_name())
    }
}

/// One point of a rate ladder.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RatePoint {
    /// Constant quantiser.
    Qp(u32),
    /// Constant rate factor (x264/x265/SVT-AV1 CRF, libaom/libvpx constant quality).
    Crf(u32),
    /// Average bitrate target in kilobits per second.
    Kbps(f64),
}

impl std::fmt::Display for RatePoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RatePoint::Qp(v) => write!(f, "qp {v}"),
            RatePoint::Crf(v) => write!(f, "crf {v}"),
            RatePoint::Kbps(v) => write!(f, "{v} kbps"),
        }
    }
}

/// What codec to run and how: the data an experiment names, hashed by [`CodecSpec::hash`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum CodecSpec {
    /// The lab's codec, linked into the worker, configured by a genome (JSON; missing fields take
    /// their defaults; it is validated when the experiment runs, so a bad value fails that
    /// experiment with the codec's own message).
    Lab {
        #[serde(default = "empty_object")]
        genome: serde_json::Value,
        /// Threads it encodes and decodes on (the stream is the same at any count). With more
        /// than one, a step's wall-clock time is measured and its CPU time is not: the workers'
        /// time cannot be told apart from the rest of the process's.
        #[serde(default = "one_thread", skip_serializing_if = "is_one_thread")]
        threads: usize,
    },
    /// The lab's codec as a separate `codeclab-codec`-compatible binary (how code candidates are
    /// run), always inside the sandbox, on stdin and stdout:
    /// `BINARY encode --qp Q --genome-json JSON - -o -` and `BINARY decode - -o -`.
    LabBinary {
        binary: String,
        #[serde(default = "empty_object")]
        genome: serde_json::Value,
    },
    /// An external encoder through the `ffmpeg` command, decoded by ffmpeg.
    Ffmpeg {
        encoder: ExternalEncoder,
        /// Speed preset (`medium`, `8`, ...): the encoder's default when absent.
        #[serde(default)]
        preset: Option<String>,
        /// Further ffmpeg output arguments, placed after the rate arguments (e.g. `["-bf", "0"]`).
        #[serde(default)]
        params: Vec<String>,
    },
}

fn one_thread() -> usize {
    1
}

// One thread is left out of the JSON, so that specs from before threads keep their hash.
fn is_one_thread(threads: &usize) -> bool {
    *threads == 1
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

impl CodecSpec {
    /// A short human name: `lab`, `lab-binary`, `libx265 medium`, ...
    pub fn label(&self) -> String {
        match self {
            CodecSpec::Lab { threads: 1, .. } => "lab".into(),
            CodecSpec::Lab { threads, .. } => format!("lab ({threads} threads)"),
            CodecSpec::LabBinary { binary, .. } => format!("lab-binary {binary}"),
            CodecSpec::Ffmpeg {
                encoder,
                preset,
                params,
            } => {
                let mut label = encoder.ffmpeg_name().to_string();
                if let Some(preset) = preset {
                    label.push(' ');
                    label.push_str(preset);
                }
                if !params.is_empty() {
                    label.push(' ');
                    label.push_str(&params.join(" "));
                }
                label
            }
        }
    }

    /// The speed-preset arguments of an ffmpeg spec.
    pub fn preset_arguments(encoder: ExternalEncoder, preset: Option<&str>) -> Vec<String> {
        preset
            .map(|p| vec![encoder.preset_option().to_string(), p.to_string()])
            .unwrap_or_default()
    }

    /// The spec as canonical JSON: object keys sorted, no whitespace. Equal specs give equal text.
    pub fn canonical_json(&self) -> String {
        // `serde_json::Value` keeps object keys in a sorted map, which makes the text canonical.
        let value = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        value.to_string()
    }

    /// The sha256 (hex) of [`CodecSpec::canonical_json`]: the codec's identity in the store.
    pub fn hash(&self) -> String {
        sha256_hex(self.canonical_json().as_bytes())
    }
}

/// Lowercase hex sha256 of some bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_ignores_key_order_and_whitespace() {
        let a: CodecSpec =
            serde_json::from_str(r#"{"kind":"lab","genome":{"keyint":30,"me_range":16}}"#).unwrap();
        let b: CodecSpec = serde_json::from_str(
            r#"{ "genome": { "me_range": 16, "keyint": 30 }, "kind": "lab" }"#,
        )
        .unwrap();
        assert_eq!(a.hash(), b.hash());
        let c: CodecSpec =
            serde_json::from_str(r#"{"kind":"lab","genome":{"keyint":31,"me_range":16}}"#).unwrap();
        assert_ne!(a.hash(), c.hash());
        // One thread is the default and leaves the hash as it was; two threads is another spec.
        let one: CodecSpec = serde_json::from_str(
            r#"{"kind":"lab","genome":{"keyint":30,"me_range":16},"threads":1}"#,
        )
        .unwrap();
        assert_eq!(a.hash(), one.hash());
        let two: CodecSpec = serde_json::from_str(
            r#"{"kind":"lab","genome":{"keyint":30,"me_range":16},"threads":2}"#,
        )
        .unwrap();
        assert_ne!(a.hash(), two.hash());
        assert_eq!(two.label(), "lab (2 threads)");
    }

    #[test]
    fn rate_arguments_follow_each_encoder() {
        assert_eq!(
            ExternalEncoder::X265
                .rate_arguments(RatePoint::Crf(27))
                .unwrap(),
            ["-crf", "27"]
        );
        assert_eq!(
            ExternalEncoder::Vp9
                .rate_arguments(RatePoint::Crf(40))
                .unwrap(),
            ["-crf", "40", "-b:v", "0"]
        );
        assert!(
            ExternalEncoder::X264
                .rate_arguments(RatePoint::Crf(52))
                .is_err()
        );
        assert!(
            ExternalEncoder::Rav1e
                .rate_arguments(RatePoint::Crf(30))
                .is_err()
        );
        assert!(
            ExternalEncoder::X264
                .rate_arguments(RatePoint::Kbps(-1.0))
                .is_err()
        );
    }

    #[test]
    fn unknown_codec_kind_is_rejected() {
        let err = serde_json::from_str::<CodecSpec>(r#"{"kind":"h266"}"#).unwrap_err();
        assert!(err.to_string().contains("h266"), "{err}");
    }
}
