//! `codeclab bench ...`: speed measurements, side by side with the reference tools where present.

use std::path::Path;
use std::process::{Command, Stdio};

use clap::Subcommand;
use codeclab_video::{AnyFrame, VideoFormat, Y4mReader, Y4mWriter};

#[derive(Subcommand)]
pub enum BenchCommand {
    /// The lab codec's single-thread encode and decode speed at 1280x720 (clip, QP, frames, fps, kbps).
    Codec(super::encode::BenchCodecArgs),
    /// Experiments per hour through the whole lab: the lab codec on carphone at 4 QPs, 2 workers.
    Lab(super::run::BenchLabArgs),
    /// PSNR, SSIM and MS-SSIM speed, one thread, beside ffmpeg's psnr/ssim filters and libvmaf.
    Metrics(super::metrics::BenchMetricsArgs),
    /// VMAF v0.6.1 speed (fps), beside libvmaf's `vmaf` command at the same thread count when on PATH.
    Vmaf(super::bench_vmaf::BenchVmafArgs),
    /// Procedural generator speed per pattern, and Y4M write and read speed.
    Video(super::corpus::BenchVideoArgs),
    /// Server-side rendering time (median, p95) of the dashboard's experiment table and overview
    /// over a store filled with 10,000 synthetic experiments.
    Web(super::bench_web::BenchWebArgs),
}

pub fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Codec(args) => super::encode::bench(args),
        BenchCommand::Lab(args) => super::run::bench(args),
        BenchCommand::Metrics(args) => super::metrics::bench(args),
        BenchCommand::Vmaf(args) => super::bench_vmaf::run(args),
        BenchCommand::Video(args) => super::corpus::bench(args),
        BenchCommand::Web(args) => super::bench_web::run(args),
    }
}

/// Reads the first `frames` frames of a Y4M file into memory, so timings leave file reading out.
pub fn load_frames(path: &Path, frames: u64) -> anyhow::Result<(VideoFormat, Vec<AnyFrame>)> {
    let mut reader = Y4mReader::open(path)?;
    let format = *reader.format();
    let mut out = Vec::new();
    while (out.len() as u64) < frames {
        match reader.read_frame()? {
            Some(f) => out.push(f),
            None => break,
        }
    }
    Ok((format, out))
}

/// Writes frames as a Y4M file: the exact inputs handed to the reference tools.
pub fn write_frames(path: &Path, format: &VideoFormat, frames: &[AnyFrame]) -> anyhow::Result<()> {
    let mut writer = Y4mWriter::create(path, format)?;
    for f in frames {
        writer.write_frame(f)?;
    }
    writer.finish()?;
    Ok(())
}

/// True when `program` runs and answers `version_flag` successfully.
pub fn tool_available(program: &str, version_flag: &str) -> bool {
    Command::new(program)
        .arg(version_flag)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
