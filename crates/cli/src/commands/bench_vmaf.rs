//! `codeclab bench vmaf`: VMAF v0.6.1 speed on a frame pair, beside libvmaf's `vmaf` command
//! on the same frames at the same thread count when it is on PATH.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::bench::{cpu_seconds, load_frames, tool_available, write_frames};
use anyhow::{Context, bail};
use clap::Args;
use codeclab_metrics::vmaf::{VmafModel, score_frames};
use codeclab_video::ffmpeg::{DecodeRequest, decode_to_y4m};

#[derive(Args)]
pub struct BenchVmafArgs {
    /// Reference clip (Y4M) [default: the corpus bikes clip (640x272), decoded by ffmpeg].
    #[arg(requires = "distorted")]
    reference: Option<PathBuf>,
    /// Distorted clip (Y4M) [default: the shared fixture bikes60__x264_crf32.mp4, decoded].
    distorted: Option<PathBuf>,
    /// Frames to time (the first ones of the pair).
    #[arg(long, default_value_t = 60)]
    frames: u64,
    /// Runs of each measurement; the fastest counts.
    #[arg(long, default_value_t = 3)]
    runs: u32,
    /// Worker threads, for us and for libvmaf.
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

/// Wall time and CPU time of the fastest of `runs` runs; `children` picks the CPU time of
/// child processes rather than this one's.
fn fastest(
    runs: u32,
    children: bool,
    mut f: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<(Duration, Option<f64>)> {
    let mut best: (Duration, Option<f64>) = (Duration::MAX, None);
    for _ in 0..runs.max(1) {
        let cpu_before = cpu_seconds();
        let start = Instant::now();
        f()?;
        let wall = start.elapsed();
        let cpu = cpu_before.zip(cpu_seconds()).map(
            |(b, a)| {
                if children { a.1 - b.1 } else { a.0 - b.0 }
            },
        );
        if wall < best.0 {
            best = (wall, cpu);
        }
    }
    Ok(best)
}

/// The default pair: the corpus bikes clip and its x264 CRF 32 encode from the VMAF fixtures.
fn default_pair(dir: &Path, frames: u64) -> anyhow::Result<(PathBuf, PathBuf)> {
    let shared = codeclab_video::shared::shared_dir()
        .context("the shared data folder was not found (set CODECLAB_SHARED)")?;
    let reference = dir.join("reference.y4m");
    let distorted = dir.join("distorted.y4m");
    for (input, output) in [
        (shared.join("corpus/bikes_640x272.mp4"), &reference),
        (
            shared.join("vmaf/fixtures/bikes60__x264_crf32.mp4"),
            &distorted,
        ),
    ] {
        decode_to_y4m(&DecodeRequest {
            input: &input,
            output,
            frames: Some(frames),
            pix_fmt: "yuv420p",
        })?;
    }
    Ok((reference, distorted))
}

/// Runs libvmaf's `vmaf` command with its default model; returns its pooled VMAF.
fn run_libvmaf(
    reference: &Path,
    distorted: &Path,
    output: &Path,
    threads: usize,
) -> anyhow::Result<f64> {
    let out = Command::new("vmaf")
        .arg("--reference")
        .arg(reference)
        .arg("--distorted")
        .arg(distorted)
        .args([
            "--threads",
            &threads.to_string(),
            "--json",
            "--quiet",
            "--output",
        ])
        .arg(output)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .context("running vmaf")?;
    if !out.status.success() {
        bail!(
            "vmaf failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(output)
            .with_context(|| format!("reading {}", output.display()))?,
    )?;
    json["pooled_metrics"]["vmaf"]["mean"]
        .as_f64()
        .context("vmaf's JSON has no pooled_metrics.vmaf.mean")
}

pub fn run(args: BenchVmafArgs) -> anyhow::Result<()> {
    if args.frames == 0 || args.threads == 0 {
        bail!("--frames and --threads must be at least 1");
    }
    let temp = tempfile::Builder::new()
        .prefix("codeclab-bench-vmaf-")
        .tempdir()
        .context("creating a scratch folder")?;
    let (ref_input, dist_input) = match (&args.reference, &args.distorted) {
        (Some(r), Some(d)) => (r.clone(), d.clone()),
        _ => default_pair(temp.path(), args.frames)?,
    };
    let (format, ref_frames) = load_frames(&ref_input, args.frames)?;
    let (dist_format, dist_frames) = load_frames(&dist_input, args.frames)?;
    let frames = ref_frames.len();
    if frames == 0 || frames != dist_frames.len() || format != dist_format {
        bail!(
            "{} and {} do not hold {} comparable frames",
            ref_input.display(),
            dist_input.display(),
            args.frames
        );
    }
    let mut ours_score = 0.0;
    let (ours, ours_cpu) = fastest(args.runs, false, || {
        let report = score_frames(
            &format,
            vec![VmafModel::v0_6_1()],
            &ref_frames,
            &dist_frames,
            args.threads,
        )?;
        ours_score = report.models[0].pooled.map_or(f64::NAN, |p| p.mean);
        Ok(())
    })?;
    let fps = |t: f64| frames as f64 / t.max(1e-9);
    println!(
        "pair: {} vs {}",
        args.reference
            .as_deref()
            .map_or("bikes_640x272.mp4".into(), |p| p.display().to_string()),
        args.distorted
            .as_deref()
            .map_or("bikes60__x264_crf32.mp4".into(), |p| p
                .display()
                .to_string())
    );
    println!(
        "      {}x{}, {}-bit, {frames} frames, {} thread(s), model vmaf_v0.6.1, fastest of {} runs",
        format.width, format.height, format.bit_depth, args.threads, args.runs
    );
    println!(
        "ours: frames already in memory, {:?} kernels (CODECLAB_ISA=reference for the plain \
         Rust ones); libvmaf: its command on the same frames as Y4M.",
        codeclab_metrics::vmaf::dsp::active_isa()
    );
    println!(
        "cpu fps: frames per CPU-second of the process (steadier than wall time on a busy machine)."
    );
    println!();
    println!(
        "{:<10} {:>9} {:>9} {:>9} {:>11}",
        "tool", "wall s", "fps", "cpu fps", "pooled vmaf"
    );
    let cpu_fps = |c: Option<f64>| {
        c.filter(|&c| c > 0.0)
            .map_or("-".to_string(), |c| format!("{:.1}", fps(c)))
    };
    println!(
        "{:<10} {:>9.3} {:>9.1} {:>9} {:>11.6}",
        "codeclab",
        ours.as_secs_f64(),
        fps(ours.as_secs_f64()),
        cpu_fps(ours_cpu),
        ours_score
    );
    if !tool_available("vmaf", "--version") {
        println!("{:<10} not on PATH: no side-by-side figure", "vmaf");
        return Ok(());
    }
    let ref_y4m = temp.path().join("bench-reference.y4m");
    let dist_y4m = temp.path().join("bench-distorted.y4m");
    write_frames(&ref_y4m, &format, &ref_frames)?;
    write_frames(&dist_y4m, &dist_format, &dist_frames)?;
    let output = temp.path().join("vmaf.json");
    let mut theirs_score = f64::NAN;
    let (theirs, theirs_cpu) = fastest(args.runs, true, || {
        theirs_score = run_libvmaf(&ref_y4m, &dist_y4m, &output, args.threads)?;
        Ok(())
    })?;
    println!(
        "{:<10} {:>9.3} {:>9.1} {:>9} {:>11.6}",
        "libvmaf",
        theirs.as_secs_f64(),
        fps(theirs.as_secs_f64()),
        cpu_fps(theirs_cpu),
        theirs_score
    );
    let ratio_cpu = ours_cpu
        .zip(theirs_cpu)
        .filter(|(o, t)| *o > 0.0 && *t > 0.0)
        .map_or("-".to_string(), |(o, t)| format!("{:.2}", t / o));
    println!(
        "speed ours/libvmaf: {:.2} (wall), {ratio_cpu} (cpu)",
        theirs.as_secs_f64() / ours.as_secs_f64().max(1e-9)
    );
    Ok(())
}
