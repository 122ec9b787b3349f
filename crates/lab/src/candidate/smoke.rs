//! The smoke stage: a built candidate encodes and decodes the first frames of a dev clip in the
//! sandbox, and the decode must be that clip (its geometry, every frame, a sane PSNR-Y) before
//! the candidate earns a dev experiment.

use super::{Rejection, output_tail};
use crate::adapter::{bitstream_cap, decoded_y4m_cap};
use crate::process::StepCost;
use crate::sandbox::{self, Limits, RunReport, RunRequest, SandboxError};
use codeclab_metrics::{CompareError, CompareOptions, Metric, Score, compare};
use codeclab_video::{AnyFrame, VideoError, VideoFormat, Y4mReader, Y4mWriter};
use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// A decode whose luma scores under this PSNR does not reproduce its source: a flat grey
/// picture already scores about 10 to 15 dB against natural content, while any working codec
/// stays above 25 dB at its coarsest quantizer.
pub const MIN_SMOKE_PSNR_Y: f64 = 20.0;

/// How much of a failing candidate's stderr goes back to the planner.
const STDERR_TAIL_BYTES: usize = 2000;

/// What a candidate did on the smoke clip.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SmokeReport {
    pub frames: u64,
    pub width: usize,
    pub height: usize,
    pub qp: u8,
    pub bitstream_bytes: u64,
    /// Mean over frames of the luma PSNR, in dB.
    pub psnr_y: f64,
    pub encode: StepCost,
    pub decode: StepCost,
}

/// A quality in dB. Compared bit for bit, so that rejections holding one stay `Eq`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Decibels(pub f64);

impl PartialEq for Decibels {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}

impl Eq for Decibels {}

impl std::fmt::Display for Decibels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.2} dB", self.0)
    }
}

/// Why a candidate that ran to completion still fails the smoke stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SmokeFailure {
    #[error("the encoder wrote an empty bitstream")]
    EmptyBitstream,
    #[error("the decoder's output is not a Y4M clip: {message}")]
    NotY4m { message: String },
    #[error("the decoder returned {got} pictures; the source is {expected}")]
    Geometry { expected: String, got: String },
    #[error("decoded frame {frame} is damaged: {message}")]
    DamagedFrame { frame: u64, message: String },
    #[error("the decoder returned {got} frames; the source has {expected}")]
    FrameCount { expected: u64, got: u64 },
    #[error(
        "the decoded frames score {psnr_y} PSNR-Y against the source, under the floor of {floor}: the decoder does not reproduce what was encoded"
    )]
    Quality { psnr_y: Decibels, floor: Decibels },
}

/// The lab's own failures while smoke-testing: none of them is the candidate's doing.
#[derive(Debug, thiserror::Error)]
pub enum SmokeError {
    #[error("smoke clip {path}: {source}")]
    Source { path: PathBuf, source: VideoError },
    #[error("smoke clip {path} has no frames")]
    EmptySource { path: PathBuf },
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error("scoring the smoke decode: {0}")]
    Metrics(#[from] CompareError),
    #[error("the PSNR pass returned no PSNR-Y")]
    MissingScore,
}

/// Encodes the first `frames` frames of `source_y4m` at `qp` with `binary` (a built candidate
/// with the `codeclab-codec` command line) under the sandbox, decodes the bitstream alone, and
/// checks the decode against those frames. `limits` bound both runs; their stdout caps are
/// lowered to what a bitstream and a decode of this clip can take. The outer error is the lab's
/// own failure; the inner one is the candidate's rejection, for the planner.
pub fn smoke_test(
    binary: &Path,
    source_y4m: &Path,
    frames: u64,
    qp: u8,
    genome_json: &serde_json::Value,
    limits: &Limits,
) -> Result<Result<SmokeReport, Rejection>, SmokeError> {
    let (format, source_frames) = read_prefix(source_y4m, frames)?;
    let frame_count = source_frames.len() as u64;
    let clip = y4m_bytes(&format, &source_frames).map_err(|source| SmokeError::Source {
        path: source_y4m.to_path_buf(),
        source,
    })?;

    let encode_limits = Limits {
        stdout_cap_bytes: limits
            .stdout_cap_bytes
            .min(bitstream_cap(&format, frame_count)),
        ..limits.clone()
    };
    let args = [
        "encode".into(),
        "--qp".into(),
        qp.to_string().into(),
        "--genome-json".into(),
        genome_json.to_string().into(),
        "-".into(),
        "-o".into(),
        "-".into(),
    ];
    let encoded = match run_candidate(binary, args.to_vec(), clip, encode_limits)? {
        Ok(report) => report,
        Err(rejection) => return Ok(Err(rejection)),
    };
    if encoded.stdout.is_empty() {
        return Ok(Err(Rejection::Smoke(SmokeFailure::EmptyBitstream)));
    }

    let decode_limits = Limits {
        stdout_cap_bytes: limits
            .stdout_cap_bytes
            .min(decoded_y4m_cap(&format, frame_count)),
        ..limits.clone()
    };
    let args = ["decode", "-", "-o", "-"].map(OsString::from).to_vec();
    let decoded = match run_candidate(binary, args, encoded.stdout.clone(), decode_limits)? {
        Ok(report) => report,
        Err(rejection) => return Ok(Err(rejection)),
    };
    let decoded_frames = match read_decode(&decoded.stdout, &format, frame_count) {
        Ok(decoded_frames) => decoded_frames,
        Err(failure) => return Ok(Err(Rejection::Smoke(failure))),
    };

    let psnr_y = luma_psnr(&format, source_frames, decoded_frames)?;
    if psnr_y.is_nan() || psnr_y < MIN_SMOKE_PSNR_Y {
        return Ok(Err(Rejection::Smoke(SmokeFailure::Quality {
            psnr_y: Decibels(psnr_y),
            floor: Decibels(MIN_SMOKE_PSNR_Y),
        })));
    }
    Ok(Ok(SmokeReport {
        frames: frame_count,
        width: format.width,
        height: format.height,
        qp,
        bitstream_bytes: encoded.stdout.len() as u64,
        psnr_y,
        encode: cost(&encoded),
        decode: cost(&decoded),
    }))
}

/// The format and the first `frames` frames of a clip.
fn read_prefix(path: &Path, frames: u64) -> Result<(VideoFormat, Vec<AnyFrame>), SmokeError> {
    let source_error = |source| SmokeError::Source {
        path: path.to_path_buf(),
        source,
    };
    let mut reader = Y4mReader::open(path).map_err(source_error)?;
    let format = *reader.format();
    let mut kept = Vec::new();
    while (kept.len() as u64) < frames {
        match reader.read_frame().map_err(source_error)? {
            Some(frame) => kept.push(frame),
            None => break,
        }
    }
    if kept.is_empty() {
        return Err(SmokeError::EmptySource {
            path: path.to_path_buf(),
        });
    }
    Ok((format, kept))
}

fn y4m_bytes(format: &VideoFormat, frames: &[AnyFrame]) -> Result<Vec<u8>, VideoError> {
    let mut writer = Y4mWriter::new(Vec::new(), format)?;
    for frame in frames {
        writer.write_frame(frame)?;
    }
    writer.finish()
}

/// Runs the candidate once: its report when it exits cleanly, otherwise the rejection that says
/// how it ended.
fn run_candidate(
    binary: &Path,
    args: Vec<OsString>,
    stdin: Vec<u8>,
    limits: Limits,
) -> Result<Result<RunReport, Rejection>, SmokeError> {
    let report = sandbox::run(&RunRequest {
        program: std::path::absolute(binary).map_err(|source| SandboxError::Spawn {
            program: binary.to_path_buf(),
            source,
        })?,
        args,
        stdin,
        limits,
    })?;
    if report.outcome.is_ok() {
        return Ok(Ok(report));
    }
    Ok(Err(Rejection::Run {
        outcome: report.outcome,
        stderr_tail: output_tail(&report.stderr, STDERR_TAIL_BYTES),
    }))
}

/// The decoded frames, when they are exactly the source's frames in number and geometry.
fn read_decode(
    bytes: &[u8],
    source: &VideoFormat,
    frames: u64,
) -> Result<Vec<AnyFrame>, SmokeFailure> {
    let mut reader = Y4mReader::new(bytes, "the decode").map_err(|e| SmokeFailure::NotY4m {
        message: e.to_string(),
    })?;
    let format = *reader.format();
    let picture = |f: &VideoFormat| {
        format!(
            "{}x{} {:?} {}-bit",
            f.width, f.height, f.chroma, f.bit_depth
        )
    };
    if (format.width, format.height, format.chroma, format.bit_depth)
        != (source.width, source.height, source.chroma, source.bit_depth)
    {
        return Err(SmokeFailure::Geometry {
            expected: picture(source),
            got: picture(&format),
        });
    }
    let mut decoded = Vec::new();
    loop {
        match reader.read_frame() {
            Ok(Some(frame)) => decoded.push(frame),
            Ok(None) => break,
            Err(e) => {
                return Err(SmokeFailure::DamagedFrame {
                    frame: decoded.len() as u64,
                    message: e.to_string(),
                });
            }
        }
    }
    if decoded.len() as u64 != frames {
        return Err(SmokeFailure::FrameCount {
            expected: frames,
            got: decoded.len() as u64,
        });
    }
    Ok(decoded)
}

/// Mean luma PSNR of the decode against the source, with the metrics crate's definition.
fn luma_psnr(
    format: &VideoFormat,
    source: Vec<AnyFrame>,
    decoded: Vec<AnyFrame>,
) -> Result<f64, SmokeError> {
    let options = CompareOptions {
        metrics: Some(vec![Metric::Psnr]),
        threads: 1,
        vmaf: None,
    };
    let comparison = compare(
        &mut codeclab_metrics::compare::MemorySource::owned("source", *format, source),
        // The decode's own header may differ in what is not geometry (frame rate, aspect).
        &mut codeclab_metrics::compare::MemorySource::owned("decode", *format, decoded),
        &options,
        &|_| {},
    )?;
    comparison
        .pooled
        .get(&Score::PsnrY)
        .copied()
        .ok_or(SmokeError::MissingScore)
}

fn cost(report: &RunReport) -> StepCost {
    StepCost {
        wall_seconds: report.wall_time.as_secs_f64(),
        cpu_seconds: Some(report.cpu_time.as_secs_f64()),
        peak_memory_bytes: Some(report.peak_memory_bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use codeclab_video::{ChromaSampling, Rational};

    fn format(width: usize, height: usize) -> VideoFormat {
        VideoFormat {
            width,
            height,
            bit_depth: 8,
            chroma: ChromaSampling::Cs420,
            fps: Rational { num: 30, den: 1 },
            aspect: Rational { num: 1, den: 1 },
        }
    }

    fn clip(format: &VideoFormat, frames: usize) -> Vec<u8> {
        let frame = AnyFrame::new_grey(format);
        y4m_bytes(format, &vec![frame; frames]).unwrap()
    }

    #[test]
    fn a_decode_of_the_right_shape_is_read_back() {
        let source = format(16, 8);
        let decoded = read_decode(&clip(&source, 3), &source, 3).unwrap();
        assert_eq!(decoded.len(), 3);
    }

    #[test]
    fn a_decode_with_a_missing_or_extra_frame_is_refused() {
        let source = format(16, 8);
        assert_eq!(
            read_decode(&clip(&source, 2), &source, 3).unwrap_err(),
            SmokeFailure::FrameCount {
                expected: 3,
                got: 2
            }
        );
        assert_eq!(
            read_decode(&clip(&source, 4), &source, 3).unwrap_err(),
            SmokeFailure::FrameCount {
                expected: 3,
                got: 4
            }
        );
    }

    #[test]
    fn a_decode_of_another_size_is_refused_with_both_sizes() {
        let failure = read_decode(&clip(&format(8, 8), 3), &format(16, 8), 3).unwrap_err();
        assert!(
            matches!(failure, SmokeFailure::Geometry { .. }),
            "{failure}"
        );
        let text = failure.to_string();
        assert!(text.contains("8x8") && text.contains("16x8"), "{text}");
    }

    #[test]
    fn a_truncated_frame_or_no_y4m_at_all_is_refused() {
        let source = format(16, 8);
        let mut bytes = clip(&source, 3);
        bytes.truncate(bytes.len() - 10);
        assert!(matches!(
            read_decode(&bytes, &source, 3).unwrap_err(),
            SmokeFailure::DamagedFrame { frame: 2, .. }
        ));
        assert!(matches!(
            read_decode(b"not a clip", &source, 3).unwrap_err(),
            SmokeFailure::NotY4m { .. }
        ));
    }
}
