//! `codeclab bench ...`: speed measurements, side by side with the reference tools where present.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Subcommand;
use codeclab_video::{AnyFrame, VideoFormat, Y4mReader, Y4mWriter};

#[derive(Subcommand)]
pub enum BenchCommand {
    /// The lab codec's presets beside x265 (medium -tune psnr and a faster preset) on a 720p
    /// clip: encode and decode fps on 1 and N threads (the N-thread output checked identical),
    /// kbps, PSNR-Y, speed ratios and BD-rate (PSNR-Y, PCHIP) against x265 medium.
    Codec(super::bench_codec::BenchCodecArgs),
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
        BenchCommand::Codec(args) => super::bench_codec::run(args),
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

/// Runs an external command; its stderr when it succeeds, an error carrying it when it fails.
pub fn run_tool(program: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("running {program}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        bail!("{program} {} failed: {}", args.join(" "), stderr.trim());
    }
    Ok(stderr)
}

/// Writes the first `frames` frames of the corpus bikes clip scaled to 1280x720 by ffmpeg to
/// `output` (Y4M, 8-bit 4:2:0): the real 720p clip the benchmarks default to.
pub fn bikes_720p(output: &Path, frames: u64) -> anyhow::Result<()> {
    let corpus = codeclab_video::shared::corpus_dir()
        .context("the shared corpus folder was not found (set CODECLAB_CORPUS)")?;
    let source = corpus.join("bikes_640x272.mp4");
    if !source.is_file() {
        bail!("{} is missing", source.display());
    }
    let path = |p: &Path| p.to_string_lossy().into_owned();
    run_tool(
        "ffmpeg",
        &[
            "-nostdin",
            "-y",
            "-loglevel",
            "error",
            "-i",
            &path(&source),
            "-frames:v",
            &frames.to_string(),
            "-vf",
            "scale=1280:720",
            "-pix_fmt",
            "yuv420p",
            "-f",
            "yuv4mpegpipe",
            &path(output),
        ],
    )?;
    Ok(())
}

/// CPU time of the calling thread from the scheduler's accounting (Linux, nanoseconds);
/// `None` elsewhere.
pub fn thread_cpu_time() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(nanos))
}

/// CPU seconds used so far by this process (all its threads) and by its waited-for children,
/// from `/proc/self/stat` (Linux; clock ticks of 1/100 s). `None` elsewhere.
pub fn cpu_seconds() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<f64> = rest
        .split_whitespace()
        .skip(11)
        .take(4)
        .map(|f| f.parse::<f64>())
        .collect::<Result<_, _>>()
        .ok()?;
    let [utime, stime, cutime, cstime] = fields[..] else {
        return None;
    };
    Some(((utime + stime) / 100.0, (cutime + cstime) / 100.0))
}
