//! `codeclab metrics REF DIST`: PSNR, SSIM and MS-SSIM of a distorted clip against its reference,
//! and `codeclab bench metrics`: their speed beside ffmpeg's and libvmaf's on the same pair.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use codeclab_metrics::compare::{CompareOptions, Comparison, MemorySource, Metric, Score};
use codeclab_metrics::vmaf::{VmafModel, VmafOptions};
use codeclab_video::Y4mReader;
use codeclab_video::ffmpeg::{DecodeRequest, decode_to_y4m};

use super::bench::{
    bikes_720p, cpu_seconds, load_frames, run_tool, thread_cpu_time, tool_available, write_frames,
};

const KEYS_HELP: &str = "\
Keys (table rows, JSON keys):
  psnr_y, psnr_cb, psnr_cr  libvmaf's PSNR per plane and frame: 10·log10(peak²/MSE), peak =
                            2^bitdepth − 1, capped at 6·bitdepth + 12 dB; pooled: the mean
  psnr_yuv                  (6·psnr_y + psnr_cb + psnr_cr) / 8
  mse_y, mse_cb, mse_cr     mean squared error per plane and frame
  psnr_y_global, psnr_cb_global, psnr_cr_global
                            ffmpeg's psnr summary: PSNR of the clip's mean MSE of that plane
                            (pooled only; same cap)
  psnr_avg_global           ffmpeg's `average`: PSNR of the mean MSE with each plane weighted by
                            its share of the samples (pooled only)
  ssim                      libvmaf's float_ssim on luma
  ms_ssim                   libvmaf's float_ms_ssim on luma; left out by default (an error when
                            asked for) when a side is under 176, sizes libvmaf refuses too
  vmaf, vmaf_neg            with --vmaf / --vmaf-neg

Both clips must have the same size, bit depth, chroma sampling and number of frames; NaN or
infinite values are errors.";

#[derive(Args)]
#[command(after_long_help = KEYS_HELP)]
pub struct MetricsArgs {
    /// The reference clip (Y4M).
    reference: PathBuf,
    /// The distorted clip (Y4M): same size, bit depth, chroma sampling and frame count.
    distorted: PathBuf,
    /// Print one JSON object: {"frames", "pooled": {key: value}, "per_frame": {key: [values]}}.
    #[arg(long)]
    json: bool,
    /// Also print the per-frame values in the table (the JSON always carries them).
    #[arg(long)]
    per_frame: bool,
    /// Worker threads: 1 computes on one thread, 0 uses every core.
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Comma-separated metrics among psnr, ssim, ms_ssim [default: all that apply to the size].
    #[arg(long, value_delimiter = ',')]
    metrics: Option<Vec<Metric>>,
    /// Also compute VMAF (model v0.6.1 unless --vmaf-model names another), as `vmaf`.
    #[arg(long)]
    vmaf: bool,
    /// The VMAF model: vmaf_v0.6.1, vmaf_v0.6.1neg, vmaf_4k_v0.6.1 (built in) or a JSON model
    /// file. Implies --vmaf.
    #[arg(long, value_name = "PATH|NAME")]
    vmaf_model: Option<String>,
    /// Also compute VMAF NEG (v0.6.1neg), as `vmaf_neg`. Implies --vmaf.
    #[arg(long)]
    vmaf_neg: bool,
    /// With VMAF: every feature value (integer_adm2, integer_vif_scale0, ...) under its libvmaf
    /// name, in the JSON's `vmaf.features`.
    #[arg(long)]
    features: bool,
}

pub fn run(args: MetricsArgs) -> anyhow::Result<()> {
    let hint = Y4mReader::open(&args.reference)
        .ok()
        .and_then(|r| r.frame_count_hint());
    let vmaf = vmaf_options(
        args.vmaf,
        args.vmaf_model.as_deref(),
        args.vmaf_neg,
        args.features,
    )?;
    let bar = crate::progress::bar(hint, "frames");
    let options = CompareOptions {
        metrics: args.metrics,
        threads: args.threads,
        vmaf,
    };
    let progress = |done| bar.set_position(done);
    let comparison =
        codeclab_metrics::compare_files(&args.reference, &args.distorted, &options, &progress)?;
    bar.finish_and_clear();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&comparison)?);
    } else {
        print_table(&comparison, args.per_frame);
    }
    Ok(())
}

/// The VMAF the flags ask for; `None` when they ask for none.
fn vmaf_options(
    vmaf: bool,
    model: Option<&str>,
    neg: bool,
    features: bool,
) -> anyhow::Result<Option<VmafOptions>> {
    if !(vmaf || model.is_some() || neg) {
        if features {
            bail!("--features lists VMAF's features: add --vmaf");
        }
        return Ok(None);
    }
    let model = match model {
        Some(spec) => VmafModel::from_name_or_path(spec)?,
        None => VmafModel::v0_6_1(),
    };
    Ok(Some(VmafOptions {
        model,
        neg,
        features,
    }))
}

fn print_table(comparison: &Comparison, per_frame: bool) {
    println!("frames: {}", comparison.frames);
    for (score, value) in &comparison.pooled {
        println!("{:>16}  {}", score.key(), format_value(*score, *value));
    }
    if !per_frame {
        return;
    }
    let columns: Vec<(&Score, &Vec<f64>)> = comparison.per_frame.iter().collect();
    print!("{:>6}", "frame");
    for (score, _) in &columns {
        print!("  {:>12}", score.key());
    }
    println!();
    for frame in 0..comparison.frames as usize {
        print!("{frame:>6}");
        for (score, values) in &columns {
            let cell = values
                .get(frame)
                .map_or_else(String::new, |v| format_value(**score, *v));
            print!("  {cell:>12}");
        }
        println!();
    }
}

fn format_value(score: Score, value: f64) -> String {
    match score {
        Score::Ssim | Score::MsSsim => format!("{value:.6}"),
        _ => format!("{value:.4}"),
    }
}

#[derive(Args)]
pub struct BenchMetricsArgs {
    /// Reference clip (Y4M) [default: the corpus bikes clip scaled to 1280x720 by ffmpeg, made
    /// at run time in a temporary folder].
    #[arg(requires = "distorted")]
    reference: Option<PathBuf>,
    /// Distorted clip (Y4M) [default: the reference's libx264 CRF 32 encode, decoded].
    distorted: Option<PathBuf>,
    /// Frames to time (the first ones of the pair).
    #[arg(long, default_value_t = 60)]
    frames: u64,
    /// Runs of each measurement; the fastest counts.
    #[arg(long, default_value_t = 3)]
    runs: u32,
}

/// How long something took: wall-clock and, where measured, CPU time (all threads).
#[derive(Clone, Copy, Debug)]
struct Timing {
    wall: Duration,
    cpu: Option<Duration>,
}

impl Timing {
    /// CPU time when measured (steadier on a shared machine), else wall-clock time.
    fn best_estimate(self) -> Duration {
        self.cpu.unwrap_or(self.wall)
    }

    fn fastest(self, other: Timing) -> Timing {
        if other.best_estimate() < self.best_estimate() {
            other
        } else {
            self
        }
    }
}

/// The fastest of `runs` runs of `f`, which times itself.
fn fastest(runs: u32, mut f: impl FnMut() -> anyhow::Result<Timing>) -> anyhow::Result<Timing> {
    let mut best = f()?;
    for _ in 1..runs.max(1) {
        best = best.fastest(f()?);
    }
    Ok(best)
}

/// Times `f` on the calling thread.
fn time_here(f: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<Timing> {
    let cpu_start = thread_cpu_time();
    let start = Instant::now();
    f()?;
    let wall = start.elapsed();
    let cpu = thread_cpu_time()
        .zip(cpu_start)
        .map(|(end, start)| end.saturating_sub(start));
    Ok(Timing { wall, cpu })
}

/// CPU time of this process's finished children (10 ms resolution); `None` off Linux.
fn children_cpu_time() -> Option<Duration> {
    cpu_seconds().map(|(_, children)| Duration::from_secs_f64(children))
}

/// Times an external command: wall-clock, and its CPU time (10 ms resolution).
fn time_tool(program: &str, args: &[&str]) -> anyhow::Result<Timing> {
    let cpu_start = children_cpu_time();
    let start = Instant::now();
    run_tool(program, args)?;
    let wall = start.elapsed();
    let cpu = children_cpu_time()
        .zip(cpu_start)
        .map(|(end, start)| end.saturating_sub(start));
    Ok(Timing { wall, cpu })
}

/// Runs ffmpeg with `-benchmark` and reads the times it reports (`bench: utime=… stime=…
/// rtime=…`): its CPU time over all its threads, and its wall-clock time.
fn time_ffmpeg(args: &[&str]) -> anyhow::Result<Timing> {
    let mut full = vec!["-benchmark"];
    full.extend_from_slice(args);
    let stderr = run_tool("ffmpeg", &full)?;
    let field = |name: &str| -> Option<f64> {
        let line = stderr.lines().find(|l| l.starts_with("bench: utime="))?;
        let value = line.split_whitespace().find_map(|w| w.strip_prefix(name))?;
        value.trim_end_matches('s').parse().ok()
    };
    let (Some(user), Some(system), Some(real)) =
        (field("utime="), field("stime="), field("rtime="))
    else {
        bail!("ffmpeg -benchmark printed no times: {}", stderr.trim());
    };
    Ok(Timing {
        wall: Duration::from_secs_f64(real),
        cpu: Some(Duration::from_secs_f64(user + system)),
    })
}

/// Makes the default pair in `dir`: the corpus bikes clip scaled to 1280x720 as reference, its
/// libx264 CRF 32 encode decoded as distorted.
fn make_default_pair(dir: &Path, frames: u64) -> anyhow::Result<(PathBuf, PathBuf)> {
    let reference = dir.join("reference.y4m");
    let encoded = dir.join("distorted.mp4");
    let distorted = dir.join("distorted.y4m");
    let path = |p: &Path| p.to_string_lossy().into_owned();
    bikes_720p(&reference, frames)?;
    run_tool(
        "ffmpeg",
        &[
            "-nostdin",
            "-y",
            "-loglevel",
            "error",
            "-i",
            &path(&reference),
            "-c:v",
            "libx264",
            "-crf",
            "32",
            "-preset",
            "medium",
            &path(&encoded),
        ],
    )?;
    decode_to_y4m(&DecodeRequest {
        input: &encoded,
        output: &distorted,
        frames: None,
        pix_fmt: "yuv420p",
    })?;
    Ok((reference, distorted))
}

/// ffmpeg reading both files and running `filter` on them, and ffmpeg reading both files with no
/// filter (its Y4M demuxing and frame handling), each on one thread.
fn ffmpeg_filter_time(
    reference: &Path,
    distorted: &Path,
    filter: &str,
    runs: u32,
) -> anyhow::Result<(Timing, Timing)> {
    let (r, d) = (
        reference.to_string_lossy().into_owned(),
        distorted.to_string_lossy().into_owned(),
    );
    let common = [
        "-nostdin",
        "-threads",
        "1",
        "-i",
        &r,
        "-threads",
        "1",
        "-i",
        &d,
        "-filter_threads",
        "1",
    ];
    let graph = format!("[1:v][0:v]{filter}");
    let mut with_filter: Vec<&str> = common.to_vec();
    with_filter.extend(["-lavfi", &graph, "-f", "null", "-"]);
    // Both inputs read, one output, nothing computed: what the filter run costs besides the filter.
    let mut read_only: Vec<&str> = common.to_vec();
    read_only.extend(["-lavfi", "[0:v]nullsink;[1:v]null", "-f", "null", "-"]);
    let total = fastest(runs, || time_ffmpeg(&with_filter))?;
    let reading = fastest(runs, || time_ffmpeg(&read_only))?;
    Ok((total, reading))
}

pub fn bench(args: BenchMetricsArgs) -> anyhow::Result<()> {
    if args.frames == 0 {
        bail!("--frames must be at least 1");
    }
    let temp = tempfile::Builder::new()
        .prefix("codeclab-bench-metrics-")
        .tempdir()
        .context("creating a scratch folder")?;
    let (description, ref_input, dist_input) = match (&args.reference, &args.distorted) {
        (Some(r), Some(d)) => (
            format!("{} vs {}", r.display(), d.display()),
            r.clone(),
            d.clone(),
        ),
        _ => {
            eprintln!(
                "making the default pair with ffmpeg (bikes scaled to 1280x720, libx264 CRF 32)..."
            );
            let (r, d) = make_default_pair(temp.path(), args.frames)?;
            (
                "bikes_640x272.mp4 scaled to 1280x720 by ffmpeg (reference) vs its libx264 \
                 CRF 32 encode (distorted)"
                    .to_string(),
                r,
                d,
            )
        }
    };
    let (format, ref_frames) = load_frames(&ref_input, args.frames)?;
    let (dist_format, dist_frames) = load_frames(&dist_input, args.frames)?;
    let frames = ref_frames.len();
    if frames == 0 || dist_frames.len() != frames || format != dist_format {
        bail!(
            "{} and {} do not hold {} comparable frames",
            ref_input.display(),
            dist_input.display(),
            args.frames
        );
    }
    // Every tool reads the same frames: the first `frames` of each, as Y4M.
    let ref_y4m = temp.path().join("bench-reference.y4m");
    let dist_y4m = temp.path().join("bench-distorted.y4m");
    write_frames(&ref_y4m, &format, &ref_frames)?;
    write_frames(&dist_y4m, &dist_format, &dist_frames)?;

    println!("pair: {description}");
    println!(
        "      {}x{}, {}-bit, {:?}, {frames} frames; one thread everywhere; fastest of {} runs",
        format.width, format.height, format.bit_depth, format.chroma, args.runs
    );
    println!("times are CPU seconds where measured (*: wall-clock seconds):");
    println!("  ours: the comparison pipeline with one metric on frames already in memory (thread");
    println!("        CPU time from /proc/thread-self/schedstat)");
    println!("  ffmpeg: `-benchmark` utime+stime with the filter minus the same without it (both");
    println!("        inputs read, `nullsink`), -threads 1 -filter_threads 1");
    println!(
        "  vmaf: the libvmaf command on the same Y4M files, --threads 1, its Y4M reading included"
    );
    println!("        (its user+system time from /proc/self/stat, 10 ms resolution)");
    println!();
    println!(
        "{:<8} {:>8} {:>9}   {:<36} {:>8} {:>9} {:>11}",
        "metric", "ours s", "ours fps", "reference tool", "their s", "their fps", "ours/theirs"
    );
    let has_ffmpeg = tool_available("ffmpeg", "-version");
    let has_vmaf = tool_available("vmaf", "--version");
    let seconds = |t: Timing| {
        let mark = if t.cpu.is_some() { "" } else { "*" };
        format!("{:.3}{mark}", t.best_estimate().as_secs_f64())
    };
    let fps = |d: Duration| frames as f64 / d.as_secs_f64().max(1e-9);
    for metric in Metric::ALL {
        if let Err(e) = metric.check(&format) {
            println!("{:<8} not applicable: {e}", metric.name());
            continue;
        }
        let options = CompareOptions {
            metrics: Some(vec![metric]),
            threads: 1,
            vmaf: None,
        };
        let ours = fastest(args.runs, || {
            let mut r = MemorySource::owned("reference", format, ref_frames.clone());
            let mut d = MemorySource::owned("distorted", format, dist_frames.clone());
            time_here(|| {
                codeclab_metrics::compare(&mut r, &mut d, &options, &|_| {})?;
                Ok(())
            })
        })?;
        let mut theirs: Vec<(String, Option<Timing>)> = Vec::new();
        if metric != Metric::MsSsim {
            if has_ffmpeg {
                let filter = if metric == Metric::Psnr {
                    "psnr"
                } else {
                    "ssim"
                };
                let (total, reading) = ffmpeg_filter_time(&ref_y4m, &dist_y4m, filter, args.runs)?;
                let net = Timing {
                    wall: total.wall.saturating_sub(reading.wall),
                    cpu: total.cpu.zip(reading.cpu).map(|(t, r)| t.saturating_sub(r)),
                };
                let label = format!(
                    "ffmpeg {filter}{} {}-{}",
                    if metric == Metric::Ssim {
                        " (8x8, 3 planes)"
                    } else {
                        ""
                    },
                    seconds(total),
                    seconds(reading)
                );
                theirs.push((label, Some(net)));
            } else {
                theirs.push(("ffmpeg: not on PATH".to_string(), None));
            }
        }
        if metric != Metric::Psnr {
            let feature = if metric == Metric::Ssim {
                "float_ssim"
            } else {
                "float_ms_ssim"
            };
            if has_vmaf {
                let (r, d) = (ref_y4m.to_string_lossy(), dist_y4m.to_string_lossy());
                let out = temp.path().join("vmaf.json");
                let out = out.to_string_lossy();
                let vmaf_args = [
                    "--reference",
                    &r,
                    "--distorted",
                    &d,
                    "--no_prediction",
                    "--feature",
                    feature,
                    "--threads",
                    "1",
                    "--json",
                    "--output",
                    &out,
                    "--quiet",
                ];
                let t = fastest(args.runs, || time_tool("vmaf", &vmaf_args))?;
                theirs.push((format!("vmaf --feature {feature}"), Some(t)));
            } else {
                theirs.push((format!("vmaf {feature}: not on PATH"), None));
            }
        }
        for (i, (label, time)) in theirs.iter().enumerate() {
            let (name, ours_s, ours_fps) = if i == 0 {
                (
                    metric.name().to_string(),
                    seconds(ours),
                    format!("{:.1}", fps(ours.best_estimate())),
                )
            } else {
                Default::default()
            };
            let (their_s, their_fps, ratio) = match time {
                Some(t) => {
                    let d = t.best_estimate();
                    (
                        seconds(*t),
                        format!("{:.1}", fps(d)),
                        format!("{:.2}", fps(ours.best_estimate()) / fps(d)),
                    )
                }
                None => ("-".to_string(), "-".to_string(), "-".to_string()),
            };
            println!(
                "{name:<8} {ours_s:>8} {ours_fps:>9}   {label:<36} {their_s:>8} {their_fps:>9} {ratio:>11}"
            );
        }
    }
    Ok(())
}
