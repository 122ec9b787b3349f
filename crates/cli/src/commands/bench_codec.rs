//! `codeclab bench codec`: the lab codec's presets beside x265 on one clip (720p by default):
//! encode and decode speed on 1 and N threads with the N-thread output checked identical to the
//! 1-thread output, bitrate and PSNR-Y, speed ratios, and BD-rate against x265 medium -tune psnr.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use codeclab_codec::{
    EncodeSettings, Genome, Preset, RateMode, Summary, decode_to_y4m, encode_y4m,
};
use codeclab_metrics::bdrate::{self, RdPoint};
use codeclab_metrics::compare::{CompareOptions, MemorySource, Metric, Score};
use codeclab_video::ffmpeg::DecodeRequest;
use codeclab_video::{AnyFrame, GeneratorSpec, Pattern, Rational, VideoFormat, Y4mReader};
use serde::Serialize;

use super::bench::{bikes_720p, cpu_seconds, load_frames, run_tool, thread_cpu_time, write_frames};
use super::encode::{DEFAULT_QP, load_genome};
use super::run::default_workers;

/// The BD-rate's rate points, the JCT-VC ones: lab QP and x265 CRF alike.
const LADDER: [u8; 4] = [22, 27, 32, 37];

/// x265's settings besides preset and CRF: one thread, so that it compares with one lab thread.
const X265_PARAMS: &str = "pools=1:frame-threads=1:log-level=error";
/// x265's settings, written into the stream as text, are not coded video (see
/// `ExternalEncoder::sei_stripping`).
const X265_SEI_STRIPPING: &str = "filter_units=remove_types=39|40";

#[derive(Args)]
pub struct BenchCodecArgs {
    /// Clip (Y4M); default: the bikes corpus clip scaled to 1280x720 by ffmpeg, or a generated
    /// 1280x720 pan when ffmpeg or the corpus is missing.
    #[arg(long)]
    clip: Option<PathBuf>,
    /// Frames to code (from the start of the clip).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    frames: u64,
    /// Lab QP of the speed runs; x265 runs at CRF of the same number.
    #[arg(long, default_value_t = DEFAULT_QP, value_parser = clap::value_parser!(u8).range(0..=51))]
    qp: u8,
    /// Threads of the multi-threaded runs [default: the logical cores]; 1 leaves them out.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
    /// Comma-separated lab presets among faster, fast, medium, slow [default: all four].
    #[arg(long, value_delimiter = ',', conflicts_with_all = ["genome", "preset"])]
    presets: Option<Vec<Preset>>,
    /// Genome JSON: bench this genome alone (its fields over --preset's).
    #[arg(long)]
    genome: Option<PathBuf>,
    /// Bench this one preset alone (with --genome: the genome's base).
    #[arg(long)]
    preset: Option<Preset>,
    /// The faster x265 preset measured beside x265 medium.
    #[arg(long, default_value = "fast", value_name = "PRESET")]
    x265_fast_preset: String,
    /// Runs of each timed measurement; the fastest counts.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// Leave out the rate ladders (QP/CRF 22, 27, 32, 37) and the BD-rates.
    #[arg(long)]
    no_bd_rate: bool,
    /// Also write the figures as JSON to FILE (null: not measured).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

#[derive(Serialize)]
struct Report {
    machine: Machine,
    clip: ClipInfo,
    qp: u8,
    threads: usize,
    /// Runs of each timed measurement; the fastest counts.
    runs: u32,
    lab: Vec<LabRow>,
    x265: X265Report,
}

#[derive(Serialize)]
struct Machine {
    cpu_model: Option<String>,
    logical_cores: usize,
    /// 1, 5 and 15 minute load averages (`/proc/loadavg`).
    load_average_start: Option<[f64; 3]>,
    load_average_end: Option<[f64; 3]>,
    /// The level of the codec's DSP kernels (`CODECLAB_ISA=reference` forces the reference).
    kernels: String,
}

#[derive(Serialize)]
struct ClipInfo {
    description: String,
    width: usize,
    height: usize,
    bit_depth: u8,
    frames: usize,
    fps: f64,
}

/// One timed run.
#[derive(Clone, Copy, Serialize)]
struct Speed {
    /// Wall-clock seconds.
    seconds: f64,
    /// Frames per wall-clock second.
    fps: f64,
    /// Frames per CPU second (the coding thread, or the ffmpeg process); single-thread runs only.
    cpu_fps: Option<f64>,
}

/// One rate point: bitstream size and PSNR-Y (mean over frames) of the decoded frames.
#[derive(Clone, Copy, Serialize)]
struct Point {
    /// Lab QP or x265 CRF.
    qp: u8,
    bytes: u64,
    kbps: f64,
    psnr_y: f64,
}

#[derive(Serialize)]
struct BdRate {
    anchor: &'static str,
    /// PCHIP BD-rate of PSNR-Y in percent; negative: fewer bits than the anchor.
    pchip_percent: Option<f64>,
    /// Shared PSNR-Y interval over the anchor's PSNR-Y range.
    overlap: Option<f64>,
    low_overlap: Option<bool>,
    /// Why there is no figure, when there is none.
    error: Option<String>,
}

#[derive(Serialize)]
struct LabRow {
    name: String,
    /// The point at `--qp`, from the 1-thread stream.
    point: Point,
    encode_1_thread: Speed,
    decode_1_thread: Speed,
    encode_n_threads: Option<Speed>,
    decode_n_threads: Option<Speed>,
    /// The N-thread bitstream equals the 1-thread one byte for byte.
    identical_stream: Option<bool>,
    /// The N-thread decode of the N-thread stream equals the 1-thread decode of the 1-thread one.
    identical_frames: Option<bool>,
    encode_speedup: Option<f64>,
    decode_speedup: Option<f64>,
    /// 1-thread encode fps over x265 medium's.
    encode_vs_x265_medium: Option<f64>,
    /// 1-thread decode fps over ffmpeg's HEVC decoder's on x265 medium's stream.
    decode_vs_ffmpeg_hevc: Option<f64>,
    rate_points: Option<Vec<Point>>,
    bd_rate_vs_x265_medium: Option<BdRate>,
}

#[derive(Serialize)]
struct X265Row {
    preset: String,
    point: Point,
    encode: Speed,
    encode_vs_x265_medium: Option<f64>,
    rate_points: Option<Vec<Point>>,
    bd_rate_vs_x265_medium: Option<BdRate>,
}

#[derive(Serialize)]
struct X265Report {
    /// Why x265 was not measured, when it was not.
    not_measured: Option<String>,
    ffmpeg_version: Option<String>,
    medium: Option<X265Row>,
    faster: Option<X265Row>,
    /// ffmpeg's HEVC decoder, `-threads 1`, on x265 medium's stream at `--qp`.
    ffmpeg_hevc_decode: Option<Speed>,
}

pub fn run(args: BenchCodecArgs) -> Result<()> {
    let load_average_start = load_average();
    let threads = args.threads.map_or_else(default_workers, usize::from);
    let genomes = genomes(&args)?;
    let temp = tempfile::Builder::new()
        .prefix("codeclab-bench-codec-")
        .tempdir()
        .context("creating a scratch folder")?;
    let dir = temp.path();
    let (source, description) = match &args.clip {
        Some(clip) => (clip.clone(), clip.display().to_string()),
        None => default_clip(dir, args.frames)?,
    };
    let (format, frames) = load_frames(&source, args.frames)?;
    if frames.is_empty() {
        bail!("{} holds no frames", source.display());
    }
    // Every codec reads the same frames: the first `frames` of the clip, as Y4M.
    let input = dir.join("input.y4m");
    write_frames(&input, &format, &frames)?;
    let input_y4m =
        std::fs::read(&input).with_context(|| format!("reading {}", input.display()))?;
    let clip = ClipInfo {
        description,
        width: format.width,
        height: format.height,
        bit_depth: format.bit_depth,
        frames: frames.len(),
        fps: format.fps.as_f64(),
    };
    let bench = Bench {
        format,
        frames: &frames,
        input: &input,
        input_y4m: &input_y4m,
        dir,
        threads,
        qp: args.qp,
        ladder: !args.no_bd_rate,
        runs: args.runs,
    };

    let mut lab = Vec::new();
    for (name, genome) in &genomes {
        lab.push(bench.lab_row(name, genome)?);
    }
    let x265 = bench.x265(&args.x265_fast_preset)?;
    for row in &mut lab {
        row.compare_with(&x265);
    }
    let report = Report {
        machine: Machine {
            cpu_model: cpu_model(),
            logical_cores: default_workers(),
            load_average_start,
            load_average_end: load_average(),
            kernels: format!("{:?}", codeclab_codec::dsp::max_isa()),
        },
        clip,
        qp: args.qp,
        threads,
        runs: args.runs,
        lab,
        x265,
    };
    print_report(&report);
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    let differing: Vec<&str> = report
        .lab
        .iter()
        .filter(|r| r.identical_stream == Some(false) || r.identical_frames == Some(false))
        .map(|r| r.name.as_str())
        .collect();
    if !differing.is_empty() {
        bail!(
            "the {threads}-thread output differs from the 1-thread output for {}: threads must \
             not change the stream or the decoded frames",
            differing.join(", ")
        );
    }
    Ok(())
}

/// The genomes to bench, named: `--genome`/`--preset` alone, else the presets asked for.
fn genomes(args: &BenchCodecArgs) -> Result<Vec<(String, Genome)>> {
    if args.genome.is_some() || args.preset.is_some() {
        let genome = load_genome(args.genome.as_deref(), args.preset)?;
        let name = match (&args.genome, args.preset) {
            (Some(path), Some(preset)) => format!("{} ({preset})", path.display()),
            (Some(path), None) => path.display().to_string(),
            (None, preset) => preset.unwrap_or_default().name().to_string(),
        };
        return Ok(vec![(name, genome)]);
    }
    let presets = args.presets.clone().unwrap_or_else(|| Preset::ALL.to_vec());
    Ok(presets
        .into_iter()
        .map(|p| (p.name().to_string(), p.genome()))
        .collect())
}

/// Writes the default 720p clip into `dir`; returns it with its description.
fn default_clip(dir: &Path, frames: u64) -> Result<(PathBuf, String)> {
    let path = dir.join("bench_720p.y4m");
    let bikes = if codeclab_video::ffmpeg::available() {
        bikes_720p(&path, frames)
    } else {
        Err(anyhow::anyhow!("ffmpeg not found on PATH"))
    };
    let why_not = match bikes {
        Ok(()) => {
            return Ok((
                path,
                "bikes_640x272.mp4 scaled to 1280x720 by ffmpeg".into(),
            ));
        }
        Err(e) => e,
    };
    let spec = GeneratorSpec {
        pattern: Pattern::Pan,
        width: 1280,
        height: 720,
        frames,
        fps: Rational::new(25, 1),
        seed: 1,
        bit_depth: 8,
    };
    let file = std::fs::File::create(&path)?;
    codeclab_video::Generator::new(&spec)?
        .write_y4m(std::io::BufWriter::new(file))?
        .flush()?;
    Ok((
        path,
        format!("generated 1280x720 pan (no bikes clip: {why_not:#})"),
    ))
}

/// How CPU time is read for a timed run.
#[derive(Clone, Copy)]
enum Cpu {
    /// The calling thread's (a 1-thread lab run: it codes on this thread).
    Thread,
    /// Finished child processes' (ffmpeg).
    Children,
    /// Not read (N-thread runs).
    No,
}

fn cpu_now(cpu: Cpu) -> Option<f64> {
    match cpu {
        Cpu::Thread => thread_cpu_time().map(|d| d.as_secs_f64()),
        Cpu::Children => cpu_seconds().map(|(_, children)| children),
        Cpu::No => None,
    }
}

/// Times `f`, which codes `frames` frames.
fn timed<T>(frames: usize, cpu: Cpu, f: impl FnOnce() -> Result<T>) -> Result<(T, Speed)> {
    let cpu_start = cpu_now(cpu);
    let start = Instant::now();
    let value = f()?;
    let seconds = start.elapsed().as_secs_f64().max(1e-9);
    let cpu_seconds = cpu_now(cpu)
        .zip(cpu_start)
        .map(|(end, start)| end - start)
        .filter(|&s| s > 0.0);
    let frames = frames as f64;
    Ok((
        value,
        Speed {
            seconds,
            fps: frames / seconds,
            cpu_fps: cpu_seconds.map(|s| frames / s),
        },
    ))
}

/// What every measurement shares.
struct Bench<'a> {
    format: VideoFormat,
    frames: &'a [AnyFrame],
    input: &'a Path,
    input_y4m: &'a [u8],
    dir: &'a Path,
    threads: usize,
    qp: u8,
    /// Whether to code the rate ladders for BD-rates.
    ladder: bool,
    /// Runs of each timed measurement.
    runs: u32,
}

impl Bench<'_> {
    /// The fastest (wall-clock) of `runs` timed runs of `f`, with the last run's result.
    fn fastest<T>(&self, cpu: Cpu, mut f: impl FnMut() -> Result<T>) -> Result<(T, Speed)> {
        let (mut value, mut best) = timed(self.frames.len(), cpu, &mut f)?;
        for _ in 1..self.runs {
            let (next, speed) = timed(self.frames.len(), cpu, &mut f)?;
            value = next;
            if speed.seconds < best.seconds {
                best = speed;
            }
        }
        Ok((value, best))
    }

    fn lab_encode(&self, genome: &Genome, qp: u8, threads: usize) -> Result<(Vec<u8>, Summary)> {
        let mut stream = Vec::new();
        let settings = EncodeSettings {
            genome: genome.clone(),
            mode: RateMode::ConstantQp(qp),
            threads,
        };
        let summary = encode_y4m(
            self.input_y4m,
            "input",
            &mut stream,
            settings,
            &mut |_, _| {},
        )
        .context("lab encode")?;
        Ok((stream, summary))
    }

    /// Decodes `stream` into `y4m` (emptied first).
    fn lab_decode(&self, stream: &[u8], threads: usize, y4m: &mut Vec<u8>) -> Result<()> {
        y4m.clear();
        decode_to_y4m(stream, &mut *y4m, threads, &mut |_, _| {}).context("lab decode")?;
        Ok(())
    }

    /// Memory for a decoded Y4M, written once before any timing: runs then reuse it, so that
    /// the timing holds the decoder's work rather than the output's first touch of fresh
    /// pages (ffmpeg's timed decode writes to `-f null`).
    fn decode_buffer(&self) -> Vec<u8> {
        // Not zeros: zeroed memory comes as pages still to be touched.
        vec![u8::MAX; self.input_y4m.len() + 64]
    }

    /// PSNR-Y (libvmaf's per-frame luma PSNR, mean over frames) of a decoded Y4M stream.
    fn psnr_y(&self, decoded_y4m: &[u8]) -> Result<f64> {
        let mut reference = MemorySource::new("input", self.format, self.frames);
        let mut decoded = Y4mReader::new(decoded_y4m, "decoded")?;
        let options = CompareOptions {
            metrics: Some(vec![Metric::Psnr]),
            threads: self.threads,
            vmaf: None,
        };
        let comparison =
            codeclab_metrics::compare(&mut reference, &mut decoded, &options, &|_| {})?;
        comparison
            .pooled
            .get(&Score::PsnrY)
            .copied()
            .context("the comparison gave no PSNR-Y")
    }

    fn point(&self, qp: u8, bytes: u64, decoded_y4m: &[u8]) -> Result<Point> {
        Ok(Point {
            qp,
            bytes,
            kbps: kbps(bytes, self.frames.len(), self.format.fps.as_f64()),
            psnr_y: self.psnr_y(decoded_y4m)?,
        })
    }

    fn lab_row(&self, name: &str, genome: &Genome) -> Result<LabRow> {
        let n = self.frames.len();
        eprintln!("lab {name}: QP {}, 1 thread...", self.qp);
        let ((stream, summary), encode_1) =
            self.fastest(Cpu::Thread, || self.lab_encode(genome, self.qp, 1))?;
        if summary.bytes != stream.len() as u64 || summary.frames != n as u64 {
            bail!(
                "lab {name}: the encoder reported {} frames and {} bytes, not {n} and {}",
                summary.frames,
                summary.bytes,
                stream.len()
            );
        }
        let mut decoded = self.decode_buffer();
        let ((), decode_1) =
            self.fastest(Cpu::Thread, || self.lab_decode(&stream, 1, &mut decoded))?;
        let point = self.point(self.qp, stream.len() as u64, &decoded)?;
        let mut row = LabRow {
            name: name.to_string(),
            point,
            encode_1_thread: encode_1,
            decode_1_thread: decode_1,
            encode_n_threads: None,
            decode_n_threads: None,
            identical_stream: None,
            identical_frames: None,
            encode_speedup: None,
            decode_speedup: None,
            encode_vs_x265_medium: None,
            decode_vs_ffmpeg_hevc: None,
            rate_points: None,
            bd_rate_vs_x265_medium: None,
        };
        if self.threads > 1 {
            eprintln!("lab {name}: QP {}, {} threads...", self.qp, self.threads);
            let ((stream_n, _), encode_n) =
                self.fastest(Cpu::No, || self.lab_encode(genome, self.qp, self.threads))?;
            let mut decoded_n = self.decode_buffer();
            let ((), decode_n) = self.fastest(Cpu::No, || {
                self.lab_decode(&stream_n, self.threads, &mut decoded_n)
            })?;
            row.identical_stream = Some(stream_n == stream);
            row.identical_frames = Some(decoded_n == decoded);
            row.encode_speedup = Some(encode_n.fps / encode_1.fps);
            row.decode_speedup = Some(decode_n.fps / decode_1.fps);
            row.encode_n_threads = Some(encode_n);
            row.decode_n_threads = Some(decode_n);
        }
        if self.ladder {
            row.rate_points = Some(self.ladder_points(point, |qp| {
                eprintln!(
                    "lab {name}: QP {qp}, {} threads (rate point)...",
                    self.threads
                );
                // The stream is the same at any thread count (checked above at `--qp`).
                let (stream, _) = self.lab_encode(genome, qp, self.threads)?;
                let mut decoded = Vec::new();
                self.lab_decode(&stream, self.threads, &mut decoded)?;
                self.point(qp, stream.len() as u64, &decoded)
            })?);
        }
        Ok(row)
    }

    /// The points of [`LADDER`], `known` (at `--qp`) reused where it falls on it.
    fn ladder_points(
        &self,
        known: Point,
        mut code: impl FnMut(u8) -> Result<Point>,
    ) -> Result<Vec<Point>> {
        LADDER
            .iter()
            .map(|&qp| if qp == known.qp { Ok(known) } else { code(qp) })
            .collect()
    }

    fn x265(&self, fast_preset: &str) -> Result<X265Report> {
        let mut report = X265Report {
            not_measured: x265_missing(),
            ffmpeg_version: None,
            medium: None,
            faster: None,
            ffmpeg_hevc_decode: None,
        };
        if report.not_measured.is_some() {
            return Ok(report);
        }
        report.ffmpeg_version = ffmpeg_version();
        let (medium, medium_stream) = self.x265_row("medium")?;
        eprintln!("ffmpeg HEVC decoder, 1 thread, on x265 medium's stream...");
        let stream = medium_stream.to_string_lossy().into_owned();
        let decode_args = [
            "-nostdin",
            "-hide_banner",
            "-loglevel",
            "error",
            "-threads",
            "1",
            "-i",
            &stream,
            "-f",
            "null",
            "-",
        ];
        let ((), decode) =
            self.fastest(Cpu::Children, || run_tool("ffmpeg", &decode_args).map(drop))?;
        report.ffmpeg_hevc_decode = Some(decode);
        let (mut faster, _) = self.x265_row(fast_preset)?;
        faster.encode_vs_x265_medium = Some(faster.encode.fps / medium.encode.fps);
        if let (Some(anchor), Some(test)) = (&medium.rate_points, &faster.rate_points) {
            faster.bd_rate_vs_x265_medium = Some(bd_rate(anchor, test));
        }
        report.medium = Some(medium);
        report.faster = Some(faster);
        Ok(report)
    }

    /// x265 at `preset`: the timed run at CRF `--qp`, and the ladder; also the path of the
    /// timed run's stream.
    fn x265_row(&self, preset: &str) -> Result<(X265Row, PathBuf)> {
        eprintln!("x265 {preset}: CRF {}, 1 thread...", self.qp);
        let stream = self.dir.join(format!("x265-{preset}-{}.hevc", self.qp));
        let ((), encode) =
            self.fastest(Cpu::Children, || self.x265_encode(preset, self.qp, &stream))?;
        let point = self.x265_point(preset, self.qp, &stream)?;
        let rate_points = if self.ladder {
            Some(self.ladder_points(point, |crf| {
                eprintln!("x265 {preset}: CRF {crf} (rate point)...");
                let stream = self.dir.join(format!("x265-{preset}-{crf}.hevc"));
                self.x265_encode(preset, crf, &stream)?;
                self.x265_point(preset, crf, &stream)
            })?)
        } else {
            None
        };
        let row = X265Row {
            preset: preset.to_string(),
            point,
            encode,
            encode_vs_x265_medium: None,
            rate_points,
            bd_rate_vs_x265_medium: None,
        };
        Ok((row, stream))
    }

    fn x265_encode(&self, preset: &str, crf: u8, output: &Path) -> Result<()> {
        let (input, output) = (self.input.to_string_lossy(), output.to_string_lossy());
        run_tool(
            "ffmpeg",
            &[
                "-nostdin",
                "-hide_banner",
                "-loglevel",
                "error",
                "-y",
                "-i",
                &input,
                "-c:v",
                "libx265",
                "-preset",
                preset,
                "-tune",
                "psnr",
                "-crf",
                &crf.to_string(),
                "-x265-params",
                X265_PARAMS,
                "-bsf:v",
                X265_SEI_STRIPPING,
                "-f",
                "hevc",
                &output,
            ],
        )?;
        Ok(())
    }

    /// Size and PSNR-Y of an x265 stream, decoded by ffmpeg.
    fn x265_point(&self, preset: &str, crf: u8, stream: &Path) -> Result<Point> {
        let decoded = self.dir.join(format!("x265-{preset}-{crf}.y4m"));
        codeclab_video::ffmpeg::decode_to_y4m(&DecodeRequest {
            input: stream,
            output: &decoded,
            frames: None,
            pix_fmt: pix_fmt(self.format.bit_depth),
        })?;
        let bytes = std::fs::metadata(stream)?.len();
        let y4m = std::fs::read(&decoded)?;
        let point = self.point(crf, bytes, &y4m)?;
        std::fs::remove_file(&decoded)?;
        Ok(point)
    }
}

impl LabRow {
    fn compare_with(&mut self, x265: &X265Report) {
        if let Some(medium) = &x265.medium {
            self.encode_vs_x265_medium = Some(self.encode_1_thread.fps / medium.encode.fps);
            if let (Some(anchor), Some(test)) = (&medium.rate_points, &self.rate_points) {
                self.bd_rate_vs_x265_medium = Some(bd_rate(anchor, test));
            }
        }
        if let Some(decode) = &x265.ffmpeg_hevc_decode {
            self.decode_vs_ffmpeg_hevc = Some(self.decode_1_thread.fps / decode.fps);
        }
    }
}

fn bd_rate(anchor: &[Point], test: &[Point]) -> BdRate {
    let curve = |points: &[Point]| -> Vec<RdPoint> {
        points
            .iter()
            .map(|p| RdPoint {
                rate: p.kbps,
                quality: p.psnr_y,
            })
            .collect()
    };
    match bdrate::compare(&curve(anchor), &curve(test)) {
        Ok(report) => BdRate {
            anchor: "x265 medium -tune psnr",
            pchip_percent: Some(report.pchip),
            overlap: Some(report.overlap),
            low_overlap: Some(report.low_overlap),
            error: None,
        },
        Err(e) => BdRate {
            anchor: "x265 medium -tune psnr",
            pchip_percent: None,
            overlap: None,
            low_overlap: None,
            error: Some(e.to_string()),
        },
    }
}

/// bytes · 8 · clip fps / frames / 1000, as the lab codec's summary computes it.
fn kbps(bytes: u64, frames: usize, fps: f64) -> f64 {
    bytes as f64 * 8.0 * fps / frames.max(1) as f64 / 1000.0
}

fn pix_fmt(bit_depth: u8) -> &'static str {
    match bit_depth {
        8 => "yuv420p",
        9 | 10 => "yuv420p10le",
        _ => "yuv420p12le",
    }
}

/// Why x265 cannot be run, or `None` when ffmpeg has libx265.
fn x265_missing() -> Option<String> {
    if !codeclab_video::ffmpeg::available() {
        return Some("ffmpeg/libx265 not found: no ffmpeg on PATH".into());
    }
    match Command::new("ffmpeg")
        .args(["-hide_banner", "-encoders"])
        .output()
    {
        Ok(out) if String::from_utf8_lossy(&out.stdout).contains("libx265") => None,
        _ => Some("ffmpeg/libx265 not found: ffmpeg lists no libx265 encoder".into()),
    }
}

fn ffmpeg_version() -> Option<String> {
    let out = Command::new("ffmpeg").arg("-version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().next().map(|l| l.trim().to_string())
}

fn cpu_model() -> Option<String> {
    let text = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    text.lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, model)| model.trim().to_string())
}

fn load_average() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut fields = text.split_whitespace().map(|f| f.parse::<f64>().ok());
    Some([fields.next()??, fields.next()??, fields.next()??])
}

/// A table: the first column left-aligned, the others right-aligned, each as wide as its
/// widest cell.
fn print_table(header: &[String], rows: &[Vec<String>]) {
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            rows.iter()
                .map(|r| r[c].chars().count())
                .chain([header[c].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in std::iter::once(header).chain(rows.iter().map(Vec::as_slice)) {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(c, (cell, &w))| {
                if c == 0 {
                    format!("{cell:<w$}")
                } else {
                    format!("{cell:>w$}")
                }
            })
            .collect();
        println!("  {}", cells.join("  ").trim_end());
    }
}

/// A measured figure, or `-` for one not measured.
fn cell(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "-".to_string(), |v| format!("{v:.decimals$}"))
}

fn load_text(load: Option<[f64; 3]>) -> String {
    load.map_or_else(
        || "not measured".to_string(),
        |[a, b, c]| format!("{a:.2} {b:.2} {c:.2}"),
    )
}

fn print_report(report: &Report) {
    let m = &report.machine;
    let n = report.threads;
    println!(
        "machine: {}, {} logical cores, kernels {}",
        m.cpu_model.as_deref().unwrap_or("CPU model unknown"),
        m.logical_cores,
        m.kernels
    );
    println!(
        "load average (1, 5, 15 min): {} at start, {} at end",
        load_text(m.load_average_start),
        load_text(m.load_average_end)
    );
    let c = &report.clip;
    println!(
        "clip: {}, {}x{}, {}-bit, {} frames at {:.3} fps",
        c.description, c.width, c.height, c.bit_depth, c.frames, c.fps
    );
    println!(
        "lab QP {q}, x265 CRF {q}; fps: frames per wall-clock second, fastest of {runs} run(s); \
         cpu fps: per CPU second (1-thread runs; the coding thread, or the ffmpeg process); -: \
         not measured",
        q = report.qp,
        runs = report.runs
    );
    println!(
        "  lab: in process, Y4M in memory to a bitstream in memory and back (decoded into memory written before the timing)"
    );
    match &report.x265.not_measured {
        Some(why) => println!("  x265 and ffmpeg's HEVC decoder: not measured: {why}"),
        None => {
            println!(
                "  x265: ffmpeg -i input.y4m -c:v libx265 -preset P -tune psnr -crf Q \
                 -x265-params {X265_PARAMS} -bsf:v {X265_SEI_STRIPPING} -f hevc (SEI dropped: \
                 x265's settings text is not coded video): the whole ffmpeg process, its start \
                 and Y4M reading included"
            );
            println!(
                "  x265 rows' decode: ffmpeg -threads 1 -i x265-medium.hevc -f null - (x265 \
                 medium's stream; the whole process)"
            );
            if let Some(version) = &report.x265.ffmpeg_version {
                println!("  {version}");
            }
        }
    }
    println!(
        "  PSNR-Y: mean over frames of luma PSNR (this project's metrics); the lab's frames \
         decoded by its decoder, x265's by ffmpeg"
    );
    println!();

    let mut header: Vec<String> = ["codec", "enc fps", "enc cpu fps"]
        .map(String::from)
        .to_vec();
    if n > 1 {
        header.extend([format!("enc {n}t fps"), format!("{n}t/1t")]);
    }
    header.extend(["dec fps", "dec cpu fps"].map(String::from));
    if n > 1 {
        header.extend([format!("dec {n}t fps"), format!("{n}t/1t")]);
    }
    header.extend(["kbps", "PSNR-Y"].map(String::from));
    if n > 1 {
        header.push(format!("{n}-thread output"));
    }
    let mut rows = Vec::new();
    for r in &report.lab {
        let mut row = vec![
            format!("lab {}", r.name),
            cell(Some(r.encode_1_thread.fps), 2),
            cell(r.encode_1_thread.cpu_fps, 2),
        ];
        if n > 1 {
            row.extend([
                cell(r.encode_n_threads.map(|s| s.fps), 2),
                cell(r.encode_speedup, 2),
            ]);
        }
        row.extend([
            cell(Some(r.decode_1_thread.fps), 1),
            cell(r.decode_1_thread.cpu_fps, 1),
        ]);
        if n > 1 {
            row.extend([
                cell(r.decode_n_threads.map(|s| s.fps), 1),
                cell(r.decode_speedup, 2),
            ]);
        }
        row.extend([cell(Some(r.point.kbps), 1), cell(Some(r.point.psnr_y), 3)]);
        if n > 1 {
            row.push(
                match (r.identical_stream, r.identical_frames) {
                    (Some(true), Some(true)) => "identical",
                    (Some(false), _) => "STREAM DIFFERS",
                    (_, Some(false)) => "FRAMES DIFFER",
                    _ => "-",
                }
                .to_string(),
            );
        }
        rows.push(row);
    }
    let x265 = &report.x265;
    for (row, decode) in [
        (&x265.medium, x265.ffmpeg_hevc_decode),
        (&x265.faster, None),
    ] {
        let Some(x) = row else { continue };
        let mut cells = vec![
            format!("x265 {}", x.preset),
            cell(Some(x.encode.fps), 2),
            cell(x.encode.cpu_fps, 2),
        ];
        if n > 1 {
            cells.extend(["-".into(), "-".into()]);
        }
        cells.extend([
            cell(decode.map(|d| d.fps), 1),
            cell(decode.and_then(|d| d.cpu_fps), 1),
        ]);
        if n > 1 {
            cells.extend(["-".into(), "-".into()]);
        }
        cells.extend([cell(Some(x.point.kbps), 1), cell(Some(x.point.psnr_y), 3)]);
        if n > 1 {
            cells.push("-".into());
        }
        rows.push(cells);
    }
    println!("speed and size at QP/CRF {}:", report.qp);
    print_table(&header, &rows);
    println!();

    println!(
        "ratios (wall-clock fps, 1 thread against 1 thread){}:",
        if report.lab.iter().any(|r| r.rate_points.is_some()) {
            "; BD-rate: PSNR-Y, PCHIP, QP/CRF 22-37, negative: fewer bits than x265 medium"
        } else {
            ""
        }
    );
    let mut header: Vec<String> = ["codec", "enc / x265 medium", "dec / ffmpeg HEVC"]
        .map(String::from)
        .to_vec();
    if n > 1 {
        header.extend([format!("enc {n}t/1t"), format!("dec {n}t/1t")]);
    }
    header.extend(["BD-rate vs x265 medium", "overlap"].map(String::from));
    let bd_cells = |bd: &Option<BdRate>| -> [String; 2] {
        match bd {
            Some(BdRate {
                pchip_percent: Some(p),
                overlap: Some(o),
                low_overlap,
                ..
            }) => [
                format!("{p:+.2} %"),
                format!(
                    "{:.0} %{}",
                    100.0 * o,
                    if *low_overlap == Some(true) {
                        " (low)"
                    } else {
                        ""
                    }
                ),
            ],
            Some(BdRate { error: Some(_), .. }) => ["no figure (see below)".into(), "-".into()],
            _ => ["-".into(), "-".into()],
        }
    };
    let mut rows = Vec::new();
    for r in &report.lab {
        let mut row = vec![
            format!("lab {}", r.name),
            cell(r.encode_vs_x265_medium, 3),
            cell(r.decode_vs_ffmpeg_hevc, 3),
        ];
        if n > 1 {
            row.extend([cell(r.encode_speedup, 2), cell(r.decode_speedup, 2)]);
        }
        row.extend(bd_cells(&r.bd_rate_vs_x265_medium));
        rows.push(row);
    }
    if let Some(x) = &x265.faster {
        let mut row = vec![
            format!("x265 {}", x.preset),
            cell(x.encode_vs_x265_medium, 3),
            "-".into(),
        ];
        if n > 1 {
            row.extend(["-".into(), "-".into()]);
        }
        row.extend(bd_cells(&x.bd_rate_vs_x265_medium));
        rows.push(row);
    }
    print_table(&header, &rows);
    let errors = report
        .lab
        .iter()
        .map(|r| (format!("lab {}", r.name), &r.bd_rate_vs_x265_medium))
        .chain(
            x265.faster
                .iter()
                .map(|x| (format!("x265 {}", x.preset), &x.bd_rate_vs_x265_medium)),
        );
    for (name, bd) in errors {
        if let Some(BdRate {
            error: Some(error), ..
        }) = bd
        {
            println!("  {name}: no BD-rate: {error}");
        }
    }

    let mut curves: Vec<(String, &Vec<Point>)> = report
        .lab
        .iter()
        .filter_map(|r| Some((format!("lab {}", r.name), r.rate_points.as_ref()?)))
        .collect();
    for x in [&x265.medium, &x265.faster].into_iter().flatten() {
        if let Some(points) = &x.rate_points {
            curves.push((format!("x265 {}", x.preset), points));
        }
    }
    if !curves.is_empty() {
        println!();
        println!("rate points (kbps / PSNR-Y dB) at lab QP, x265 CRF:");
        let mut header = vec!["codec".to_string()];
        header.extend(LADDER.map(|q| q.to_string()));
        let rows: Vec<Vec<String>> = curves
            .iter()
            .map(|(name, points)| {
                let by_qp: BTreeMap<u8, &Point> = points.iter().map(|p| (p.qp, p)).collect();
                let mut row = vec![name.clone()];
                row.extend(LADDER.map(|q| {
                    by_qp
                        .get(&q)
                        .map_or("-".into(), |p| format!("{:.1} / {:.3}", p.kbps, p.psnr_y))
                }));
                row
            })
            .collect();
        print_table(&header, &rows);
    }
}
