//! Measuring one (codec, clip, rate point): encode in an isolated working directory, decode from
//! the bitstream alone in a separate directory after the encoder's is gone, check that every
//! frame came back at the right size, compute every metric in one pass, count decoder
//! instructions with callgrind when valgrind is installed, and read the multiply–accumulates of
//! the learned tools from the bitstream's header.
//!
//! Bitrate follows the measurement contract: the bitstream file's bytes (every header and, for
//! AV1/VP9, the IVF framing the decoder reads) × 8 × the *source's* fps / the source's frames.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use codeclab_metrics::vmaf::{self, VmafOptions};
use codeclab_metrics::{CompareError, CompareOptions};
use codeclab_video::{VideoFormat, Y4mReader};
use serde::{Deserialize, Serialize};

use crate::adapter::{AdapterError, CodecAdapter};
use crate::process::{self, StepCost};
use crate::spec::RatePoint;

/// The qualities BD-rates are computed on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QualityMetric {
    PsnrY,
    PsnrYuv,
    Ssim,
    MsSsim,
    Vmaf,
}

impl QualityMetric {
    pub const ALL: [QualityMetric; 5] = [
        QualityMetric::PsnrY,
        QualityMetric::PsnrYuv,
        QualityMetric::Ssim,
        QualityMetric::MsSsim,
        QualityMetric::Vmaf,
    ];

    /// The pooled score's key in the metrics pipeline's output.
    pub fn key(self) -> &'static str {
        match self {
            QualityMetric::PsnrY => "psnr_y",
            QualityMetric::PsnrYuv => "psnr_yuv",
            QualityMetric::Ssim => "ssim",
            QualityMetric::MsSsim => "ms_ssim",
            QualityMetric::Vmaf => "vmaf",
        }
    }
}

/// Everything measured at one rate point. `None` everywhere means "not measured".
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PointRecord {
    pub rate_point: RatePoint,
    /// The source clip's file hash, so the point stays tied to the exact frames it measured.
    pub clip_sha256: String,
    pub frames: u64,
    pub width: usize,
    pub height: usize,
    /// The source's frame rate, `num/den`.
    pub fps: String,
    pub bytes: u64,
    pub kbps: f64,
    /// Pooled (mean over frames) scores of the metrics pipeline by key: `psnr_y`, `psnr_yuv`,
    /// `ssim`, `ms_ssim`, `psnr_y_global`, ... (and `vmaf` when the pipeline computes it).
    pub metrics: BTreeMap<String, f64>,
    pub encode: StepCost,
    pub decode: StepCost,
    /// Callgrind instructions per luma pixel of decoding, marginal over the first frames.
    pub decoder_instructions_per_pixel: Option<f64>,
    /// Multiply–accumulates per luma pixel of the learned tools the bitstream declares (0: none);
    /// `None` where the format declares none (the anchors): not applicable.
    pub learned_mac_per_pixel: Option<f64>,
    pub bitstream_sha256: String,
    pub codec_version: String,
}

impl PointRecord {
    pub fn quality(&self, metric: QualityMetric) -> Option<f64> {
        self.metrics.get(metric.key()).copied()
    }
}

/// Why a point could not be measured. Every variant fails the experiment: none is retried.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Adapter(#[from] AdapterError),
    #[error("{0}")]
    Honesty(String),
    #[error("metrics: {0}")]
    Metrics(#[from] CompareError),
    #[error("source clip: {0}")]
    Source(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// The facts of the source clip the runner trusts (from the corpus manifest).
#[derive(Clone, Debug)]
pub struct SourceClip {
    pub id: String,
    pub path: PathBuf,
    pub sha256: String,
    pub format: VideoFormat,
    pub frames: u64,
}

/// How the runner works.
#[derive(Clone, Debug)]
pub struct RunnerConfig {
    /// Where isolated working directories are made.
    pub work_root: PathBuf,
    /// Frames decoded under callgrind (0: do not count instructions).
    pub callgrind_frames: u64,
    /// The `valgrind` program, when installed.
    pub valgrind: Option<PathBuf>,
    /// Threads of the metrics pass (1 when each worker has its own core).
    pub metric_threads: usize,
    pub callgrind_limit: Duration,
}

impl RunnerConfig {
    pub fn new(work_root: PathBuf) -> Self {
        RunnerConfig {
            work_root,
            callgrind_frames: 4,
            valgrind: process::which("valgrind"),
            metric_threads: 1,
            callgrind_limit: Duration::from_secs(600),
        }
    }
}

/// The file, beside a point's logs, with its per-frame scores: `{"frames": N, "scores":
/// {"psnr_y": [..], ...}}`, one value per frame for every metric of the point.
pub const PER_FRAME_FILE: &str = "frames.json";

/// A measured point and the files it left: the bitstream and the logs, in a working
/// directory removed when this is dropped.
#[derive(Debug)]
pub struct RunOutput {
    pub record: PointRecord,
    pub bitstream: PathBuf,
    pub logs: Vec<PathBuf>,
    _workdir: tempfile::TempDir,
}

/// Measures one rate point of `adapter` on `clip`.
pub fn run_point(
    adapter: &dyn CodecAdapter,
    clip: &SourceClip,
    point: RatePoint,
    config: &RunnerConfig,
) -> Result<RunOutput, RunError> {
    if !clip.path.is_file() {
        return Err(RunError::Source(format!(
            "{}: {} is missing",
            clip.id,
            clip.path.display()
        )));
    }
    std::fs::create_dir_all(&config.work_root)?;
    let workdir = tempfile::Builder::new()
        .prefix("point-")
        .tempdir_in(&config.work_root)?;
    let encode_dir = workdir.path().join("encode");
    let decode_dir = workdir.path().join("decode");
    let logs_dir = workdir.path().join("logs");
    for dir in [&encode_dir, &decode_dir, &logs_dir] {
        std::fs::create_dir(dir)?;
    }
    let codec_version = adapter.version()?;
    let name = format!("bitstream.{}", adapter.bitstream_extension());
    let encode_log = logs_dir.join("encode.log");
    let decode_log = logs_dir.join("decode.log");

    let encoded = encode_dir.join(&name);
    let encode = adapter.encode(&clip.path, point, &encoded, &encode_dir, &encode_log)?;
    if !encoded.is_file() {
        return Err(RunError::Honesty("the encoder wrote no bitstream".into()));
    }
    // Rule 1: the decoder gets the bitstream and nothing else; whatever the encoder left
    // beside it is deleted before the decoder starts.
    let bitstream = decode_dir.join(&name);
    std::fs::rename(&encoded, &bitstream)?;
    std::fs::remove_dir_all(&encode_dir)?;
    let bitstream_bytes = std::fs::read(&bitstream)?;
    let bytes = bitstream_bytes.len() as u64;
    let bitstream_sha256 = crate::spec::sha256_hex(&bitstream_bytes);
    let learned_mac_per_pixel = adapter.learned_mac_per_pixel(&bitstream_bytes);
    drop(bitstream_bytes);

    let decoded = workdir.path().join("decoded.y4m");
    let decode = adapter.decode(&bitstream, &decoded, &decode_dir, &decode_log)?;
    check_decoded(clip, &decoded)?;

    let options = CompareOptions {
        metrics: None,
        threads: config.metric_threads,
        vmaf: vmaf_options(&clip.format),
    };
    let comparison = codeclab_metrics::compare_files(&clip.path, &decoded, &options, &|_| {})?;
    std::fs::remove_file(&decoded)?;
    if comparison.frames != clip.frames {
        return Err(RunError::Honesty(format!(
            "metrics covered {} frames of {}",
            comparison.frames, clip.frames
        )));
    }
    let mut metrics = BTreeMap::new();
    for (score, value) in &comparison.pooled {
        metrics.insert(score.key().to_string(), *value);
    }
    check_finite(&metrics)?;
    let per_frame: BTreeMap<&str, &Vec<f64>> = comparison
        .per_frame
        .iter()
        .map(|(score, values)| (score.key(), values))
        .collect();
    let frames_log = logs_dir.join(PER_FRAME_FILE);
    std::fs::write(
        &frames_log,
        serde_json::to_vec(
            &serde_json::json!({ "frames": comparison.frames, "scores": per_frame }),
        )
        .map_err(|e| RunError::Honesty(format!("per-frame scores: {e}")))?,
    )?;

    let fps = clip.format.fps.as_f64();
    let kbps = bytes as f64 * 8.0 * fps / clip.frames as f64 / 1000.0;
    let decoder_instructions_per_pixel =
        count_instructions(adapter, &bitstream, clip, config, workdir.path(), &logs_dir);
    Ok(RunOutput {
        record: PointRecord {
            rate_point: point,
            clip_sha256: clip.sha256.clone(),
            frames: clip.frames,
            width: clip.format.width,
            height: clip.format.height,
            fps: format!("{}/{}", clip.format.fps.num, clip.format.fps.den),
            bytes,
            kbps,
            metrics,
            encode,
            decode,
            decoder_instructions_per_pixel,
            learned_mac_per_pixel,
            bitstream_sha256,
            codec_version,
        },
        bitstream,
        logs: vec![encode_log, decode_log, frames_log],
        _workdir: workdir,
    })
}

/// Rule 2: the decoded clip has exactly the source's frames, at the source's geometry.
fn check_decoded(clip: &SourceClip, decoded: &Path) -> Result<(), RunError> {
    let mut reader = Y4mReader::open(decoded)
        .map_err(|e| RunError::Honesty(format!("the decoder's output is not valid Y4M: {e}")))?;
    let format = *reader.format();
    let (want, got) = (&clip.format, &format);
    if (want.width, want.height, want.bit_depth, want.chroma)
        != (got.width, got.height, got.bit_depth, got.chroma)
    {
        return Err(RunError::Honesty(format!(
            "decoded frames are {}x{} {:?} {}-bit; the source is {}x{} {:?} {}-bit",
            got.width,
            got.height,
            got.chroma,
            got.bit_depth,
            want.width,
            want.height,
            want.chroma,
            want.bit_depth
        )));
    }
    let mut frames = 0u64;
    loop {
        match reader.read_frame() {
            Ok(Some(_)) => frames += 1,
            Ok(None) => break,
            Err(e) => {
                return Err(RunError::Honesty(format!(
                    "decoded frame {frames} is damaged: {e}"
                )));
            }
        }
    }
    if frames != clip.frames {
        return Err(RunError::Honesty(format!(
            "the decoder returned {frames} frames; the source has {}",
            clip.frames
        )));
    }
    Ok(())
}

/// Rule 3: a NaN or infinite score fails the point.
pub fn check_finite(metrics: &BTreeMap<String, f64>) -> Result<(), RunError> {
    match metrics.iter().find(|(_, v)| !v.is_finite()) {
        Some((key, value)) => Err(RunError::Honesty(format!(
            "{key} is {value}: not a finite number"
        ))),
        None => Ok(()),
    }
}

/// Marginal decoder instructions per luma pixel: callgrind's total for the first N frames minus
/// that for the first frame, over N−1 frames, so program start-up is not counted. `None` when
/// valgrind or a prefix decoder is missing or the count fails (rule 6: never estimated).
fn count_instructions(
    adapter: &dyn CodecAdapter,
    bitstream: &Path,
    clip: &SourceClip,
    config: &RunnerConfig,
    workdir: &Path,
    logs_dir: &Path,
) -> Option<f64> {
    let valgrind = config.valgrind.as_ref()?;
    let frames = config.callgrind_frames.min(clip.frames);
    if frames < 2 {
        return None;
    }
    let count = |n: u64| -> Option<u64> {
        let inner = adapter.prefix_decode_command(bitstream, workdir, n)?;
        let out = workdir.join(format!("callgrind-{n}.out"));
        let mut command = Command::new(valgrind);
        command
            .arg("--tool=callgrind")
            .arg(format!("--callgrind-out-file={}", out.display()))
            .arg(inner.get_program())
            .args(inner.get_args());
        let log = logs_dir.join(format!("callgrind-{n}.log"));
        if let Err(err) = process::run_measured(command, workdir, &log, config.callgrind_limit) {
            tracing::warn!("callgrind on {}: {err}", clip.id);
            return None;
        }
        let text = std::fs::read_to_string(&out).ok()?;
        let _ = std::fs::remove_file(&out);
        callgrind_total(&text)
    };
    let all = count(frames)?;
    let first = count(1)?;
    let pixels = (clip.format.width * clip.format.height) as f64 * (frames - 1) as f64;
    Some(all.saturating_sub(first) as f64 / pixels)
}

/// The instruction total of a callgrind output file.
fn callgrind_total(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| {
            line.strip_prefix("summary:")
                .or(line.strip_prefix("totals:"))
        })
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
}

/// VMAF and VMAF NEG for every clip libvmaf can score; the others leave both unmeasured (null).
fn vmaf_options(format: &VideoFormat) -> Option<VmafOptions> {
    match vmaf::check_format(format) {
        Ok(()) => Some(VmafOptions {
            neg: true,
            ..VmafOptions::default()
        }),
        Err(reason) => {
            tracing::info!("VMAF not measured: {reason}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nan_metric_fails_the_point() {
        let mut metrics = BTreeMap::from([("psnr_y".to_string(), 35.0)]);
        assert!(check_finite(&metrics).is_ok());
        metrics.insert("ssim".into(), f64::NAN);
        let err = check_finite(&metrics).unwrap_err().to_string();
        assert!(err.contains("ssim is NaN"), "{err}");
        metrics.insert("ssim".into(), f64::INFINITY);
        assert!(check_finite(&metrics).is_err());
    }

    #[test]
    fn reads_callgrind_totals() {
        assert_eq!(callgrind_total("events: Ir\nsummary: 12345\n"), Some(12345));
        assert_eq!(callgrind_total("events: Ir\ntotals: 99\n"), Some(99));
        assert_eq!(callgrind_total("events: Ir\n"), None);
    }
}
