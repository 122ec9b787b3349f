//! Codec adapters: one trait, [`CodecAdapter`], over the lab's codec in-process, the lab's codec
//! as a separate binary, and external encoders through the `ffmpeg` command.
//!
//! An adapter encodes a Y4M source into a bitstream file and, in a separate call that receives
//! nothing but that file, decodes it into a Y4M file. The runner measures the rest.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use codeclab_codec::{Genome, RateMode};

use crate::process::{self, ProcessError, StepCost};
use crate::spec::{CodecSpec, ExternalEncoder, RatePoint};

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
        }
    }
}

/// The adapter for a spec (a JSON value: an unknown codec kind is reported here).
pub fn adapter_for(
    spec: &serde_json::Value,
    config: &AdapterConfig,
) -> Result<Box<dyn CodecAdapter>, AdapterError> {
    let spec: CodecSpec =
        serde_json::from_value(spec.clone()).map_err(|e| AdapterError::Spec(e.to_string()))?;
    Ok(match spec {
        CodecSpec::Lab { genome } => Box::new(LabInProcess {
            genome: parse_genome(&genome)?,
            genome_json: genome,
            prefix_decoder: config.lab_prefix_decoder.clone(),
        }),
        CodecSpec::LabBinary { binary, genome } => {
            parse_genome(&genome)?;
            Box::new(LabBinary {
                binary: PathBuf::from(binary),
                genome,
                limit: config.step_limit,
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
        RatePoint::Crf(_) => Err(AdapterError::RatePoint(format!("{point}: use qp or kbps"))),
    }
}

/// The lab's codec linked into this process.
pub struct LabInProcess {
    genome: Genome,
    genome_json: serde_json::Value,
    prefix_decoder: Option<PathBuf>,
}

impl CodecAdapter for LabInProcess {
    fn version(&self) -> Result<String, AdapterError> {
        Ok(format!(
            "codeclab-codec {} genome {}",
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
            self.genome.clone(),
            mode,
            &mut |_: u64, _: Option<u64>| {},
        )
        .map_err(|e| AdapterError::Encode(e.to_string()))?;
        Ok(in_process_cost(start, cpu_before))
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
        codeclab_codec::decode_to_y4m(input, writer, &mut |_: u64, _: Option<u64>| {})
            .map_err(|e| AdapterError::Decode(e.to_string()))?;
        Ok(in_process_cost(start, cpu_before))
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
}

/// Wall and thread CPU time of work done on the calling thread; the memory of one step of a
/// shared process cannot be told apart, so it is not measured.
fn in_process_cost(start: Instant, cpu_before: Option<f64>) -> StepCost {
    let wall_seconds = start.elapsed().as_secs_f64();
    let cpu_seconds = match (cpu_before, process::thread_cpu_seconds()) {
        (Some(before), Some(after)) => Some(after - before),
        _ => None,
    };
    StepCost {
        wall_seconds,
        cpu_seconds,
        peak_memory_bytes: None,
    }
}

/// The lab's codec as a separate program with the `codeclab-codec` command line.
pub struct LabBinary {
    binary: PathBuf,
    genome: serde_json::Value,
    limit: Duration,
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
        workdir: &Path,
        log: &Path,
    ) -> Result<StepCost, AdapterError> {
        let genome_file = workdir.join("genome.json");
        std::fs::write(&genome_file, self.genome.to_string())?;
        let mut command = Command::new(&self.binary);
        command.arg("encode");
        match lab_rate_mode(point)? {
            RateMode::ConstantQp(qp) => command.args(["--qp", &qp.to_string()]),
            RateMode::TargetBitrate { kbps } => command.args(["--bitrate", &kbps.to_string()]),
        };
        command
            .arg("--genome")
            .arg(&genome_file)
            .arg(source)
            .arg("-o")
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
        let mut command = Command::new(&self.binary);
        command.arg("decode").arg(bitstream).arg("-o").arg(output);
        Ok(process::run_measured(command, workdir, log, self.limit)?)
    }

    fn prefix_decode_command(&self, _: &Path, _: &Path, _: u64) -> Option<Command> {
        // The stand-alone binary has no frame limit; a whole-clip count would not be comparable.
        None
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
}
