//! Codec adapters: one trait, [`CodecAdapter`], over the lab's codec in-process, the lab's codec
//! as a separate binary, and external encoders through the `ffmpeg` command.
//!
//! An adapter encodes a Y4M source into a bitstream file and, in a separate call that receives
//! nothing but that file, decodes it into a Y4M file. The runner measures the rest.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use codeclab_codec::bitstream::{Crc32, SequenceHeader};
use codeclab_codec::{DecoderLimits, Genome, RateMode};
use codeclab_video::{VideoFormat, Y4mReader};

use crate::process::{self, ProcessError, StepCost};
use crate::secrets::Secrets;
use crate::spec::{CodecSpec, ExternalEncoder, RatePoint};
use codeclab_sandbox::{self as sandbox, Limits, Outcome, RunReport, RunRequest};

/// Why an adapter could not do its step. Every variant is a property of the spec or the codec,
/// so retrying would not help.
#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    #[error("invalid codec spec: {0}")]
    Spec(String),
    #[error("invalid genome: {0}")]
    Genome(String),
    #[error("the lab codec does not take {0}")]
    RatePoint(String),
    #[error("encoder: {0}")]
    Encode(String),
    #[error("decoder: {0}")]
    Decode(String),
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// A codec the runner can drive.
pub trait CodecAdapter: Send + Sync {
    /// Identifies the encoder build and settings source: part of anchor keys, recorded with
    /// results.
    fn version(&self) -> Result<String, AdapterError>;

    /// The file extension of the bitstream.
    fn bitstream_extension(&self) -> &'static str;

    /// Encodes `source` at `point` into `bitstream`, working (and logging to `log`) in `workdir`.
    fn encode(
        &self,
        source: &Path,
        point: RatePoint,
        bitstream: &Path,
        workdir: &Path,
        log: &Path,
    ) -> Result<StepCost, AdapterError>;

    /// Decodes `bitstream`, and nothing else, into the Y4M file `output`.
    fn decode(
        &self,
        bitstream: &Path,
        output: &Path,
        workdir: &Path,
        log: &Path,
    ) -> Result<StepCost, AdapterError>;

    /// A command that decodes only the first `frames` frames of `bitstream` (output discarded
    /// or written to `scratch`), for counting instructions; `None` when there is none.
    fn prefix_decode_command(
        &self,
        bitstream: &Path,
        scratch: &Path,
        frames: u64,
    ) -> Option<Command>;

    /// Multiply–accumulates per decoded luma pixel of the learned tools `bitstream` declares,
    /// read from the bitstream itself; `None` for a format that declares none (not applicable)
    /// or a stream whose header does not read (not measured).
    fn learned_mac_per_pixel(&self, bitstream: &[u8]) -> Option<f64>;
}

/// Limits and helper programs the adapters need.
#[derive(Clone, Debug)]
pub struct AdapterConfig {
    /// The `ffmpeg` program.
    pub ffmpeg: PathBuf,
    /// A program that decodes the first N frames of a lab-codec bitstream
    /// (`codeclab-lab-decode IN N`), for instruction counts of the in-process codec.
    pub lab_prefix_decoder: Option<PathBuf>,
    /// Wall-clock limit of each encode and decode.
    pub step_limit: Duration,
    /// Sandbox limits of candidate binaries (`lab_binary`), under `step_limit`.
    pub candidate_limits: CandidateLimits,
    /// Scrubbed from what candidate binaries print before it is logged or reported.
    pub secrets: Secrets,
}

impl Default for AdapterConfig {
    fn default() -> Self {
        let beside_us = std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(|dir| dir.join("codeclab-lab-decode")))
            .filter(|path| path.is_file());
        AdapterConfig {
            ffmpeg: PathBuf::from("ffmpeg"),
            lab_prefix_decoder: beside_us,
            step_limit: Duration::from_secs(3600),
            candidate_limits: CandidateLimits::default(),
            secrets: Secrets::default(),
        }
    }
}

/// How the sandbox limits of a candidate binary's encode or decode are sized for a clip.
#[derive(Clone, Debug, PartialEq)]
pub struct CandidateLimits {
    /// Wall-clock time any step gets (start-up, headers, a tiny clip).
    pub base_time: Duration,
    /// Further wall-clock time per million luma samples of the clip (width × height × frames).
    pub time_per_megapixel: Duration,
    /// Address space of the program.
    pub address_space_bytes: u64,
}

impl Default for CandidateLimits {
    fn default() -> Self {
        CandidateLimits {
            base_time: Duration::from_secs(30),
            // The lab's codec encodes about 2.5 megapixels per second on one core of a small
            // machine: 25 times that leaves room for slower genomes and a loaded machine.
            time_per_megapixel: Duration::from_secs(10),
            address_space_bytes: 4 << 30,
        }
    }
}

impl CandidateLimits {
    /// Sandbox limits of one step over `frames` frames of `format`, with at most `ceiling` of
    /// wall-clock time and at most `stdout_cap_bytes` of output.
    pub fn for_clip(
        &self,
        format: &VideoFormat,
        frames: u64,
        ceiling: Duration,
        stdout_cap_bytes: usize,
    ) -> Limits {
        let megapixels = (format.width * format.height) as f64 * frames as f64 / 1e6;
        let budget = self
            .base_time
            .saturating_add(self.time_per_megapixel.mul_f64(megapixels));
        // Whole seconds, so that a limit reads plainly in an error.
        let wall_clock = Duration::from_secs(budget.as_secs_f64().ceil() as u64).min(ceiling);
        Limits {
            wall_clock,
            // The sandbox allows no threads, so CPU time cannot run ahead of wall-clock time.
            cpu_seconds: wall_clock.as_secs_f64().ceil() as u64,
            address_space_bytes: self.address_space_bytes,
            stdout_cap_bytes,
            ..Limits::default()
        }
    }
}

/// Room for a Y4M stream header (its tags vary between writers).
const Y4M_HEADER_ALLOWANCE: usize = 4096;
/// Room for the parameters a `FRAME` line may carry.
const Y4M_FRAME_LINE_ALLOWANCE: usize = 64;

/// The most bytes a Y4M clip of `frames` frames of `format` takes: a decoder's output is capped
/// here, one byte more is no decode of this clip.
pub fn decoded_y4m_cap(format: &VideoFormat, frames: u64) -> usize {
    let frames = usize::try_from(frames).unwrap_or(usize::MAX);
    frames
        .saturating_mul(format.frame_bytes() + Y4M_FRAME_LINE_ALLOWANCE)
        .saturating_add(Y4M_HEADER_ALLOWANCE)
}

/// The most bytes an encoder of that clip may write: even noise coded losslessly stays close to
/// the raw size, so twice the raw clip is no bitstream but a flood.
pub fn bitstream_cap(format: &VideoFormat, frames: u64) -> usize {
    decoded_y4m_cap(format, frames).saturating_mul(2)
}

/// The adapter for a spec (a JSON value: an unknown codec kind is reported here).
pub fn adapter_for(
    spec: &serde_json::Value,
    config: &AdapterConfig,
) -> Result<Box<dyn CodecAdapter>, AdapterError> {
    let spec: CodecSpec =
        serde_json::from_value(spec.clone()).map_err(|e| AdapterError::Spec(e.to_string()))?;
    Ok(match spec {
        CodecSpec::Lab { genome, threads } => {
            if !(1..=MAX_LAB_THREADS).contains(&threads) {
                return Err(AdapterError::Spec(format!(
                    "threads {threads}: 1 to {MAX_LAB_THREADS}"
                )));
            }
            Box::new(LabInProcess {
                genome: parse_genome(&genome)?,
                genome_json: genome,
                threads,
                prefix_decoder: config.lab_prefix_decoder.clone(),
            })
        }
        CodecSpec::LabBinary { binary, genome } => {
            parse_genome(&genome)?;
            Box::new(LabBinary {
                binary: PathBuf::from(binary),
                genome,
                limit: config.step_limit,
                limits: config.candidate_limits.clone(),
                secrets: config.secrets.clone(),
                decoded_clip: std::sync::Mutex::new(None),
            })
        }
        CodecSpec::Ffmpeg {
            encoder,
            preset,
            params,
        } => Box::new(FfmpegEncoder {
            ffmpeg: config.ffmpeg.clone(),
            encoder,
            preset,
            params,
            limit: config.step_limit,
        }),
    })
}

fn parse_genome(value: &serde_json::Value) -> Result<Genome, AdapterError> {
    let genome =
        Genome::from_json(&value.to_string()).map_err(|e| AdapterError::Genome(e.to_string()))?;
    genome
        .validate()
        .map_err(|e| AdapterError::Genome(e.to_string()))?;
    Ok(genome)
}

fn lab_rate_mode(point: RatePoint) -> Result<RateMode, AdapterError> {
    match point {
        RatePoint::Qp(qp) => u8::try_from(qp)
            .map(RateMode::ConstantQp)
            .map_err(|_| AdapterError::RatePoint(format!("{point}: out of range"))),
        RatePoint::Kbps(kbps) => Ok(RateMode::TargetBitrate { kbps }),
        RatePoint::Crf(crf) => Ok(RateMode::ConstantQuality {
            crf: f64::from(crf),
        }),
    }
}

/// The learned tools' multiply–accumulates per luma pixel that a lab-codec stream's sequence
/// header declares (0 without any). Read from the stream, not the genome, so that a candidate
/// binary is held to what its streams make every decoder do (the header's code is outside the
/// evolvable blocks, so a candidate's streams read here); a header that does not read leaves
/// the figure unmeasured, which no goal takes as met.
fn lab_stream_mac_per_pixel(bitstream: &[u8]) -> Option<f64> {
    match SequenceHeader::read(
        &mut &bitstream[..],
        &DecoderLimits::default(),
        &mut Crc32::default(),
    ) {
        Ok(header) => Some(header.learned_mac_per_pixel() as f64),
        Err(e) => {
            tracing::warn!("learned MAC per pixel not measured: the sequence header: {e}");
            None
        }
    }
}

/// Most threads a spec may give the linked codec.
const MAX_LAB_THREADS: usize = 256;

/// The lab's codec linked into this process.
pub struct LabInProcess {
    genome: Genome,
    genome_json: serde_json::Value,
    threads: usize,
    prefix_decoder: Option<PathBuf>,
}

impl CodecAdapter for LabInProcess {
    fn version(&self) -> Result<String, AdapterError> {
        let threads = match self.threads {
            1 => String::new(),
            n => format!(" threads {n}"),
        };
        Ok(format!(
            "codeclab-codec {} genome {}{threads}",
            env!("CARGO_PKG_VERSION"),
            self.genome_json
        ))
    }

    fn bitstream_extension(&self) -> &'static str {
        "ccb"
    }

    fn encode(
        &self,
        source: &Path,
        point: RatePoint,
        bitstream: &Path,
        _workdir: &Path,
        _log: &Path,
    ) -> Result<StepCost, AdapterError> {
        let mode = lab_rate_mode(point)?;
        let input = std::io::BufReader::new(std::fs::File::open(source)?);
        let output = std::io::BufWriter::new(std::fs::File::create(bitstream)?);
        let cpu_before = process::thread_cpu_seconds();
        let start = Instant::now();
        codeclab_codec::encode_y4m(
            input,
            &source.display().to_string(),
            output,
            codeclab_codec::EncodeSettings {
                threads: self.threads,
                ..codeclab_codec::EncodeSettings::new(self.genome.clone(), mode)
            },
            &mut |_: u64, _: Option<u64>| {},
        )
        .map_err(|e| AdapterError::Encode(e.to_string()))?;
        Ok(in_process_cost(start, cpu_before, self.threads))
    }

    fn decode(
        &self,
        bitstream: &Path,
        output: &Path,
        _workdir: &Path,
        _log: &Path,
    ) -> Result<StepCost, AdapterError> {
        let input = std::io::BufReader::new(std::fs::File::open(bitstream)?);
        let writer = std::io::BufWriter::new(std::fs::File::create(output)?);
        let cpu_before = process::thread_cpu_seconds();
        let start = Instant::now();
        let progress = &mut |_: u64, _: Option<u64>| {};
        codeclab_codec::decode_to_y4m(input, writer, self.threads, progress)
            .map_err(|e| AdapterError::Decode(e.to_string()))?;
        Ok(in_process_cost(start, cpu_before, self.threads))
    }

    fn prefix_decode_command(
        &self,
        bitstream: &Path,
        _scratch: &Path,
        frames: u64,
    ) -> Option<Command> {
        let mut command = Command::new(self.prefix_decoder.as_ref()?);
        command.arg(bitstream).arg(frames.to_string());
        Some(command)
    }

    fn learned_mac_per_pixel(&self, bitstream: &[u8]) -> Option<f64> {
        lab_stream_mac_per_pixel(bitstream)
    }
}

/// Wall time, and on one thread the CPU time of the calling thread, of a step done in this
/// process; the CPU time of worker threads and the memory of one step of a shared process
/// cannot be told apart, so they are not measured.
fn in_process_cost(start: Instant, cpu_before: Option<f64>, threads: usize) -> StepCost {
    let wall_seconds = start.elapsed().as_secs_f64();
    let cpu_seconds = match (cpu_before, process::thread_cpu_seconds()) {
        (Some(before), Some(after)) if threads == 1 => Some(after - before),
        _ => None,
    };
    StepCost {
        wall_seconds,
        cpu_seconds,
        peak_memory_bytes: None,
    }
}

/// The lab's codec as a separate program with the `codeclab-codec` command line: a code
/// candidate's build, untrusted, so it runs only through the sandbox. It reads the clip or the
/// bitstream on stdin and writes its output on stdout (the sandbox opens no files), gets the
/// genome inline, and is held to limits sized for the clip.
pub struct LabBinary {
    binary: PathBuf,
    genome: serde_json::Value,
    limit: Duration,
    limits: CandidateLimits,
    secrets: Secrets,
    /// The geometry and frame count of the clip last encoded, which its decode must reproduce:
    /// they size the decoder's limits, since the decoder itself is given nothing but the
    /// bitstream.
    decoded_clip: std::sync::Mutex<Option<(VideoFormat, u64)>>,
}

/// Which step a candidate was running, for messages.
#[derive(Clone, Copy)]
enum Step {
    Encode,
    Decode,
}

impl LabBinary {
    /// Runs the binary in the sandbox, keeps its stderr in `log`, and turns every ending but a
    /// clean exit into an error that says what the candidate did.
    fn run_sandboxed(
        &self,
        step: Step,
        args: Vec<std::ffi::OsString>,
        stdin: Vec<u8>,
        limits: Limits,
        log: &Path,
    ) -> Result<RunReport, AdapterError> {
        let failed = |message: String| match step {
            Step::Encode => AdapterError::Encode(message),
            Step::Decode => AdapterError::Decode(message),
        };
        let program = std::fs::canonicalize(&self.binary).map_err(|e| {
            AdapterError::Spec(format!("codec binary {}: {e}", self.binary.display()))
        })?;
        let report = sandbox::run(&RunRequest {
            program,
            args,
            stdin,
            limits: limits.clone(),
        })
        .map_err(|e| failed(format!("the sandbox could not run the candidate: {e}")))?;
        let stderr = self.secrets.scrub(&String::from_utf8_lossy(&report.stderr));
        append_log(log, stderr.as_bytes())?;
        if report.outcome.is_ok() {
            return Ok(report);
        }
        let tail = crate::candidate::output_tail(stderr.as_bytes(), 1000);
        let tail = if tail.trim().is_empty() {
            String::new()
        } else {
            format!("; its last output: {}", tail.trim_end())
        };
        Err(failed(format!(
            "{}{tail}",
            candidate_ending(&report.outcome, &limits)
        )))
    }
}

/// What a candidate's abnormal ending means, in the terms of the limits it broke.
pub fn candidate_ending(outcome: &Outcome, limits: &Limits) -> String {
    match outcome {
        Outcome::Ok => "the candidate exited successfully".into(),
        Outcome::Failed { code } => format!("the candidate exited with status {code}"),
        Outcome::Timeout { .. } => format!(
            "the candidate was killed: wall-clock limit of {} s",
            limits.wall_clock.as_secs_f64()
        ),
        Outcome::CpuLimit { limit_seconds } => {
            format!("the candidate was stopped: CPU-time limit of {limit_seconds} s")
        }
        Outcome::OutOfMemory { limit_bytes } => format!(
            "the candidate ran out of memory: address-space limit of {} MiB",
            limit_bytes >> 20
        ),
        Outcome::ForbiddenSyscall => "the candidate was killed for a system call outside the \
             sandbox allowlist (files, network, processes)"
            .into(),
        Outcome::OutputCap { stream, cap_bytes } => {
            format!("the candidate was killed: it wrote more than {cap_bytes} bytes to {stream}")
        }
        Outcome::FileSizeLimit { limit_bytes } => {
            format!("the candidate was stopped: file-size limit of {limit_bytes} bytes")
        }
        Outcome::Signal { signal } => format!("the candidate was killed by signal {signal}"),
        Outcome::Stopped => "the candidate was killed: its measurement was abandoned".into(),
    }
}

fn append_log(log: &Path, bytes: &[u8]) -> Result<(), AdapterError> {
    use std::io::Write as _;
    let mut file = std::fs::File::options()
        .create(true)
        .append(true)
        .open(log)?;
    file.write_all(bytes)?;
    Ok(())
}

fn sandboxed_cost(report: &RunReport) -> StepCost {
    StepCost {
        wall_seconds: report.wall_time.as_secs_f64(),
        cpu_seconds: Some(report.cpu_time.as_secs_f64()),
        peak_memory_bytes: Some(report.peak_memory_bytes),
    }
}

impl CodecAdapter for LabBinary {
    fn version(&self) -> Result<String, AdapterError> {
        let bytes = std::fs::read(&self.binary).map_err(|e| {
            AdapterError::Spec(format!("codec binary {}: {e}", self.binary.display()))
        })?;
        Ok(format!(
            "lab-binary sha256 {} genome {}",
            crate::spec::sha256_hex(&bytes),
            self.genome
        ))
    }

    fn bitstream_extension(&self) -> &'static str {
        "ccb"
    }

    fn encode(
        &self,
        source: &Path,
        point: RatePoint,
        bitstream: &Path,
        _workdir: &Path,
        log: &Path,
    ) -> Result<StepCost, AdapterError> {
        let rate = match lab_rate_mode(point)? {
            RateMode::ConstantQp(qp) => ["--qp".to_string(), qp.to_string()],
            RateMode::ConstantQuality { crf } => ["--crf".to_string(), crf.to_string()],
            RateMode::TargetBitrate { kbps } => ["--bitrate".to_string(), kbps.to_string()],
        };
        let reader = Y4mReader::open(source)
            .map_err(|e| AdapterError::Encode(format!("source {}: {e}", source.display())))?;
        let format = *reader.format();
        let frames = reader.frame_count_hint().unwrap_or(0);
        drop(reader);
        *self
            .decoded_clip
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some((format, frames));
        let limits =
            self.limits
                .for_clip(&format, frames, self.limit, bitstream_cap(&format, frames));
        let mut args: Vec<std::ffi::OsString> = vec!["encode".into()];
        args.extend(rate.map(Into::into));
        args.extend(["--genome-json".into(), self.genome.to_string().into()]);
        args.extend(["-".into(), "-o".into(), "-".into()]);
        let report = self.run_sandboxed(Step::Encode, args, std::fs::read(source)?, limits, log)?;
        std::fs::write(bitstream, &report.stdout)?;
        Ok(sandboxed_cost(&report))
    }

    fn decode(
        &self,
        bitstream: &Path,
        output: &Path,
        _workdir: &Path,
        log: &Path,
    ) -> Result<StepCost, AdapterError> {
        let clip = *self
            .decoded_clip
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let (format, frames) = clip.ok_or_else(|| {
            AdapterError::Decode(
                "a candidate binary decodes only what this adapter encoded: its limits are \
                 sized for that clip"
                    .into(),
            )
        })?;
        let limits = self.limits.for_clip(
            &format,
            frames,
            self.limit,
            decoded_y4m_cap(&format, frames),
        );
        let args = ["decode", "-", "-o", "-"].map(Into::into).to_vec();
        let report =
            self.run_sandboxed(Step::Decode, args, std::fs::read(bitstream)?, limits, log)?;
        std::fs::write(output, &report.stdout)?;
        Ok(sandboxed_cost(&report))
    }

    fn prefix_decode_command(&self, _: &Path, _: &Path, _: u64) -> Option<Command> {
        // Counting instructions runs the decoder under valgrind, outside the sandbox: never
        // for untrusted code.
        None
    }

    fn learned_mac_per_pixel(&self, bitstream: &[u8]) -> Option<f64> {
        lab_stream_mac_per_pixel(bitstream)
    }
}

/// An external encoder run through `ffmpeg`, decoded by ffmpeg's default decoder.
pub struct FfmpegEncoder {
    ffmpeg: PathBuf,
    encoder: ExternalEncoder,
    preset: Option<String>,
    params: Vec<String>,
    limit: Duration,
}

impl CodecAdapter for FfmpegEncoder {
    fn version(&self) -> Result<String, AdapterError> {
        let output = Command::new(&self.ffmpeg)
            .args([
                "-hide_banner",
                "-h",
                &format!("encoder={}", self.encoder.ffmpeg_name()),
            ])
            .output()
            .map_err(|e| AdapterError::Encode(format!("cannot run ffmpeg: {e}")))?;
        let help = String::from_utf8_lossy(&output.stdout);
        if !help.contains(self.encoder.ffmpeg_name()) {
            return Err(AdapterError::Spec(format!(
                "this ffmpeg has no {} encoder",
                self.encoder.ffmpeg_name()
            )));
        }
        let version = Command::new(&self.ffmpeg)
            .arg("-version")
            .output()
            .map_err(|e| AdapterError::Encode(format!("cannot run ffmpeg: {e}")))?;
        // The build line names every library version; the encoder's options fingerprint it.
        Ok(format!(
            "{} encoder-help-sha256 {}",
            String::from_utf8_lossy(&version.stdout)
                .lines()
                .next()
                .unwrap_or_default(),
            crate::spec::sha256_hex(help.as_bytes())
        ))
    }

    fn bitstream_extension(&self) -> &'static str {
        self.encoder.muxer().1
    }

    fn encode(
        &self,
        source: &Path,
        point: RatePoint,
        bitstream: &Path,
        workdir: &Path,
        log: &Path,
    ) -> Result<StepCost, AdapterError> {
        let rate = self
            .encoder
            .rate_arguments(point)
            .map_err(AdapterError::Spec)?;
        let mut command = Command::new(&self.ffmpeg);
        command
            .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i"])
            .arg(source)
            .args(["-an", "-c:v", self.encoder.ffmpeg_name()])
            .args(CodecSpec::preset_arguments(
                self.encoder,
                self.preset.as_deref(),
            ))
            .args(rate)
            .args(&self.params)
            .args(self.encoder.sei_stripping())
            .args(["-f", self.encoder.muxer().0])
            .arg(bitstream);
        Ok(process::run_measured(command, workdir, log, self.limit)?)
    }

    fn decode(
        &self,
        bitstream: &Path,
        output: &Path,
        workdir: &Path,
        log: &Path,
    ) -> Result<StepCost, AdapterError> {
        let mut command = Command::new(&self.ffmpeg);
        command
            .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i"])
            .arg(bitstream)
            // Every decoded frame exactly once: no frame-rate conversion may drop or repeat one.
            .args([
                "-fps_mode",
                "passthrough",
                "-f",
                "yuv4mpegpipe",
                "-strict",
                "-1",
            ])
            .arg(output);
        Ok(process::run_measured(command, workdir, log, self.limit)?)
    }

    fn prefix_decode_command(
        &self,
        bitstream: &Path,
        _scratch: &Path,
        frames: u64,
    ) -> Option<Command> {
        let mut command = Command::new(&self.ffmpeg);
        command
            .args([
                "-nostdin",
                "-hide_banner",
                "-loglevel",
                "error",
                "-threads",
                "1",
                "-i",
            ])
            .arg(bitstream)
            .args(["-frames:v", &frames.to_string(), "-f", "null", "-"]);
        Some(command)
    }

    fn learned_mac_per_pixel(&self, _: &[u8]) -> Option<f64> {
        // The anchors' formats have no learned tools to declare: not applicable, never 0.
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use codeclab_video::{ChromaSampling, Rational};

    #[test]
    fn a_lab_streams_learned_mac_comes_from_its_header_and_another_format_has_none() {
        let format = VideoFormat {
            width: 64,
            height: 48,
            bit_depth: 8,
            chroma: ChromaSampling::Cs420,
            fps: Rational::new(30, 1),
            aspect: Rational::new(1, 1),
        };
        let header = |genome: &Genome| SequenceHeader::new(format, genome).to_bytes();
        assert_eq!(
            lab_stream_mac_per_pixel(&header(&Genome::default())),
            Some(0.0)
        );
        let filtered = Genome {
            learned_filter: true,
            filter_layers: 3,
            filter_channels: 4,
            filter_kernel_radius: 2,
            ..Genome::default()
        };
        // 5x5 kernels over 1 → 4 → 4 → 1 planes.
        assert_eq!(
            lab_stream_mac_per_pixel(&header(&filtered)),
            Some(f64::from(25 * (4 + 16 + 4)))
        );
        assert_eq!(lab_stream_mac_per_pixel(b"YUV4MPEG2 W64 H48"), None);
    }
}
