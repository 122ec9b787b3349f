//! The smoke stage: a built candidate encodes the first frames of a dev clip in the sandbox,
//! once for its bitstream and once for its reconstruction, and decodes the bitstream alone. The
//! decode must equal the encoder's reconstruction bit for bit (the design's contract: whatever
//! the encoder decided from, the decoder reproduces), and be that clip (its geometry, every
//! frame, a sane PSNR-Y) before the candidate earns a dev experiment.

use super::{Rejection, output_tail};
use crate::adapter::{bitstream_cap, decoded_y4m_cap};
use crate::process::StepCost;
use codeclab_metrics::{CompareError, CompareOptions, Metric, Score, compare};
use codeclab_sandbox::{self as sandbox, Limits, RunReport, RunRequest, SandboxError};
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
    #[error("the {output}'s output is not a Y4M clip: {message}")]
    NotY4m { output: Output, message: String },
    #[error("the {output} returned {got} pictures; the source is {expected}")]
    Geometry {
        output: Output,
        expected: String,
        got: String,
    },
    #[error("frame {frame} of the {output}'s output is damaged: {message}")]
    DamagedFrame {
        output: Output,
        frame: u64,
        message: String,
    },
    #[error("the {output} returned {got} frames; the source has {expected}")]
    FrameCount {
        output: Output,
        expected: u64,
        got: u64,
    },
    #[error(
        "the decode differs from the encoder's reconstruction at frame {frame}, plane {plane}, sample ({x}, {y}): the decoder must reproduce the encoder's reconstruction bit for bit"
    )]
    ReconstructionMismatch {
        frame: u64,
        plane: usize,
        x: usize,
        y: usize,
    },
    #[error(
        "the decoded frames score {psnr_y} PSNR-Y against the source, under the floor of {floor}: the decoder does not reproduce what was encoded"
    )]
    Quality { psnr_y: Decibels, floor: Decibels },
}

/// Which of a candidate's outputs a smoke failure is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Output {
    Decoder,
    /// The encoder's reconstruction.
    Encoder,
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Output::Decoder => "decoder",
            Output::Encoder => "encoder's reconstruction",
        })
    }
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

/// What a candidate is smoke-tested on.
#[derive(Debug, Clone, PartialEq)]
pub struct SmokeSpec {
    /// A dev clip (Y4M) of which the first `frames` frames are coded.
    pub clip: PathBuf,
    pub frames: u64,
    pub qp: u8,
    /// The genome the encoder gets inline.
    pub genome: serde_json::Value,
    /// Limits of each run; their stdout caps are lowered to what a bitstream and a decode of
    /// this clip can take.
    pub limits: Limits,
}

/// Encodes the first frames of the smoke clip with `binary` (a built candidate with the
/// `codeclab-codec` command line) under the sandbox, for its bitstream and for its
/// reconstruction, decodes the bitstream alone, and checks the decode against the reconstruction
/// and the source. The outer error is the lab's own failure; the inner one is the candidate's
/// rejection, for the planner.
pub fn smoke_test(
    binary: &Path,
    spec: &SmokeSpec,
) -> Result<Result<SmokeReport, Rejection>, SmokeError> {
    let (format, source_frames) = read_prefix(&spec.clip, spec.frames)?;
    let frame_count = source_frames.len() as u64;
    let clip = y4m_bytes(&format, &source_frames).map_err(|source| SmokeError::Source {
        path: spec.clip.clone(),
        source,
    })?;
    let capped = |cap: usize| Limits {
        stdout_cap_bytes: spec.limits.stdout_cap_bytes.min(cap),
        ..spec.limits.clone()
    };
    let encode_args = |output: &str| -> Vec<OsString> {
        vec![
            "encode".into(),
            "--qp".into(),
            spec.qp.to_string().into(),
            "--genome-json".into(),
            spec.genome.to_string().into(),
            "-".into(),
            output.into(),
            "-".into(),
        ]
    };
    let bitstream_limits = capped(bitstream_cap(&format, frame_count));
    let encoded = match run_candidate(binary, encode_args("-o"), clip.clone(), bitstream_limits)? {
        Ok(report) => report,
        Err(rejection) => return Ok(Err(rejection)),
    };
    if encoded.stdout.is_empty() {
        return Ok(Err(Rejection::Smoke(SmokeFailure::EmptyBitstream)));
    }
    let y4m_limits = capped(decoded_y4m_cap(&format, frame_count));
    let reconstruction = match run_candidate(
        binary,
        encode_args("--reconstruction"),
        clip,
        y4m_limits.clone(),
    )? {
        Ok(report) => report,
        Err(rejection) => return Ok(Err(rejection)),
    };
    let args = ["decode", "-", "-o", "-"].map(OsString::from).to_vec();
    let decoded = match run_candidate(binary, args, encoded.stdout.clone(), y4m_limits)? {
        Ok(report) => report,
        Err(rejection) => return Ok(Err(rejection)),
    };
    let checked = read_clip(
        &reconstruction.stdout,
        Output::Encoder,
        &format,
        frame_count,
    )
    .and_then(|reconstruction| {
        let decoded_frames = read_clip(&decoded.stdout, Output::Decoder, &format, frame_count)?;
        match first_mismatch(&decoded_frames, &reconstruction) {
            Some(mismatch) => Err(mismatch),
            None => Ok(decoded_frames),
        }
    });
    let decoded_frames = match checked {
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
        qp: spec.qp,
        bitstream_bytes: encoded.stdout.len() as u64,
        psnr_y,
        encode: cost(&encoded),
        decode: cost(&decoded),
    }))
}

/// The first sample where the decode and the reconstruction differ (both already hold the
/// source's geometry and frame count).
fn first_mismatch(decoded: &[AnyFrame], reconstruction: &[AnyFrame]) -> Option<SmokeFailure> {
    fn in_planes<T: codeclab_video::Pixel>(
        a: &codeclab_video::Frame<T>,
        b: &codeclab_video::Frame<T>,
    ) -> Option<(usize, usize, usize)> {
        a.planes
            .iter()
            .zip(&b.planes)
            .enumerate()
            .find_map(|(plane, (a, b))| {
                let index = a.data().iter().zip(b.data()).position(|(x, y)| x != y)?;
                Some((plane, index % a.width().max(1), index / a.width().max(1)))
            })
    }
    decoded
        .iter()
        .zip(reconstruction)
        .enumerate()
        .find_map(|(frame, pair)| {
            let (plane, x, y) = match pair {
                (AnyFrame::U8(a), AnyFrame::U8(b)) => in_planes(a, b)?,
                (AnyFrame::U16(a), AnyFrame::U16(b)) => in_planes(a, b)?,
                _ => (0, 0, 0),
            };
            Some(SmokeFailure::ReconstructionMismatch {
                frame: frame as u64,
                plane,
                x,
                y,
            })
        })
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

/// The frames of a candidate's Y4M output, when they are exactly the source's frames in number
/// and geometry.
fn read_clip(
    bytes: &[u8],
    output: Output,
    source: &VideoFormat,
    frames: u64,
) -> Result<Vec<AnyFrame>, SmokeFailure> {
    let mut reader = Y4mReader::new(bytes, "the output").map_err(|e| SmokeFailure::NotY4m {
        output,
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
            output,
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
                    output,
                    frame: decoded.len() as u64,
                    message: e.to_string(),
                });
            }
        }
    }
    if decoded.len() as u64 != frames {
        return Err(SmokeFailure::FrameCount {
            output,
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
        let decoded = read_clip(&clip(&source, 3), Output::Decoder, &source, 3).unwrap();
        assert_eq!(decoded.len(), 3);
    }

    #[test]
    fn a_decode_with_a_missing_or_extra_frame_is_refused() {
        let source = format(16, 8);
        assert_eq!(
            read_clip(&clip(&source, 2), Output::Decoder, &source, 3).unwrap_err(),
            SmokeFailure::FrameCount {
                output: Output::Decoder,
                expected: 3,
                got: 2
            }
        );
        assert_eq!(
            read_clip(&clip(&source, 4), Output::Decoder, &source, 3).unwrap_err(),
            SmokeFailure::FrameCount {
                output: Output::Decoder,
                expected: 3,
                got: 4
            }
        );
    }

    #[test]
    fn a_decode_of_another_size_is_refused_with_both_sizes() {
        let failure =
            read_clip(&clip(&format(8, 8), 3), Output::Decoder, &format(16, 8), 3).unwrap_err();
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
            read_clip(&bytes, Output::Decoder, &source, 3).unwrap_err(),
            SmokeFailure::DamagedFrame { frame: 2, .. }
        ));
        assert!(matches!(
            read_clip(b"not a clip", Output::Decoder, &source, 3).unwrap_err(),
            SmokeFailure::NotY4m { .. }
        ));
    }
}
