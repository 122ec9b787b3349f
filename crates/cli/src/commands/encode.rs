//! `codeclab encode`: Y4M to the lab codec's bitstream; and `codeclab bench codec`: its
//! single-thread encode and decode speed at 720p.

use crate::progress;
use anyhow::{Context, Result, bail};
use clap::Args;
use codeclab_codec::{
    EncodeSettings, Genome, Preset, RateMode, Summary, decode_to_y4m, encode_y4m,
};
use codeclab_video::{GeneratorSpec, Pattern, Rational};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Args)]
pub struct EncodeArgs {
    /// Input Y4M clip (`-` for stdin).
    pub input: PathBuf,
    /// Output bitstream (`-` for stdout).
    #[arg(short, long)]
    pub output: PathBuf,
    /// Constant QP (0-51) for P frames; key frames use the genome's offset below it.
    #[arg(long, conflicts_with_all = ["crf", "bitrate"])]
    pub qp: Option<u8>,
    /// Constant quality (0-51, fractions allowed): QP CRF on frames of typical complexity,
    /// higher on busier ones, as x264's and x265's CRF.
    #[arg(long, conflicts_with = "bitrate")]
    pub crf: Option<f64>,
    /// Target bitrate in kbps over the clip, instead of a constant QP.
    #[arg(long)]
    pub bitrate: Option<f64>,
    /// Genome JSON (tool switches and parameters); defaults otherwise.
    #[arg(long)]
    pub genome: Option<PathBuf>,
    /// Speed level: faster, fast, medium (the default genome) or slow; a genome given too
    /// overrides the fields it sets.
    #[arg(long)]
    pub preset: Option<Preset>,
    /// Threads to code independent frames on; the bitstream is the same at any count.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: u16,
}

/// QP used when none of --qp, --crf and --bitrate is given.
pub const DEFAULT_QP: u8 = 32;

pub fn open_input(path: &Path) -> Result<Box<dyn Read>> {
    Ok(if path == Path::new("-") {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(BufReader::new(
            File::open(path).with_context(|| format!("opening {}", path.display()))?,
        ))
    })
}

pub fn open_output(path: &Path) -> Result<Box<dyn Write>> {
    Ok(if path == Path::new("-") {
        Box::new(BufWriter::new(std::io::stdout().lock()))
    } else {
        Box::new(BufWriter::new(
            File::create(path).with_context(|| format!("creating {}", path.display()))?,
        ))
    })
}

/// The genome in `path` (its fields over its preset's), or `preset`'s genome, or the default.
pub fn load_genome(path: Option<&Path>, preset: Option<Preset>) -> Result<Genome> {
    let (mut fields, source) = match path {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let fields: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("genome {}", path.display()))?;
            (fields, format!("genome {}", path.display()))
        }
        None => (serde_json::json!({}), "genome".to_owned()),
    };
    if let (Some(preset), Some(object)) = (preset, fields.as_object_mut()) {
        match object.get("preset") {
            Some(named) if named != preset.name() => {
                bail!("--preset {preset} and the {source}'s preset {named} differ")
            }
            _ => object.insert("preset".into(), preset.name().into()),
        };
    }
    Genome::from_json(&fields.to_string()).context(source)
}

/// One line: what was coded and how fast.
pub fn summary_line(verb: &str, s: &Summary) -> String {
    format!(
        "{verb}: {} frames, {} bytes, {:.2} kbps at {:.3} fps, {:.2} frames/s coding",
        s.frames,
        s.bytes,
        s.kbps,
        s.clip_fps,
        s.coding_fps()
    )
}

pub fn run(args: EncodeArgs) -> Result<()> {
    let genome = load_genome(args.genome.as_deref(), args.preset)?;
    let mode = match (args.crf, args.bitrate) {
        (Some(crf), _) => RateMode::ConstantQuality { crf },
        (None, Some(kbps)) => RateMode::TargetBitrate { kbps },
        (None, None) => RateMode::ConstantQp(args.qp.unwrap_or(DEFAULT_QP)),
    };
    let input = open_input(&args.input)?;
    let output = open_output(&args.output)?;
    let bar = progress::bar(None, "encoding");
    let mut on_frame = |done: u64, total: Option<u64>| {
        if let Some(total) = total {
            bar.set_length(total);
        }
        bar.set_position(done);
    };
    let name = args.input.display().to_string();
    let settings = EncodeSettings {
        genome,
        mode,
        threads: usize::from(args.threads),
    };
    let summary = encode_y4m(input, &name, output, settings, &mut on_frame)
        .with_context(|| format!("encoding {name}"))?;
    bar.finish_and_clear();
    eprintln!("{}", summary_line("encode", &summary));
    Ok(())
}

#[derive(Args)]
pub struct BenchCodecArgs {
    /// Clip to code; default: the bikes corpus clip scaled to 1280x720 by ffmpeg, or a generated
    /// 720p pan when ffmpeg or the corpus is missing.
    #[arg(long)]
    pub clip: Option<PathBuf>,
    /// Constant QP.
    #[arg(long, default_value_t = DEFAULT_QP)]
    pub qp: u8,
    /// Frames to code (from the start of the clip).
    #[arg(long, default_value_t = 30)]
    pub frames: u64,
    /// Genome JSON; defaults otherwise (the default speed).
    #[arg(long)]
    pub genome: Option<PathBuf>,
    /// Speed level: faster, fast, medium (the default genome) or slow.
    #[arg(long)]
    pub preset: Option<Preset>,
}

/// Writes the benchmark's default 720p clip into `dir` and returns it with its description.
fn default_clip(dir: &Path, frames: u64) -> Result<(PathBuf, String)> {
    let path = dir.join("bench_720p.y4m");
    let bikes = codeclab_video::shared::corpus_dir().map(|d| d.join("bikes_640x272.mp4"));
    if let Some(bikes) = bikes.filter(|b| b.is_file())
        && codeclab_video::ffmpeg::available()
    {
        let status = std::process::Command::new("ffmpeg")
            .args(["-loglevel", "error", "-y", "-i"])
            .arg(&bikes)
            .args([
                "-frames:v",
                &frames.to_string(),
                "-vf",
                "scale=1280:720",
                "-pix_fmt",
                "yuv420p",
            ])
            .args(["-f", "yuv4mpegpipe"])
            .arg(&path)
            .status()
            .context("running ffmpeg")?;
        if status.success() {
            return Ok((path, "bikes_640x272.mp4 scaled to 1280x720 (ffmpeg)".into()));
        }
    }
    let spec = GeneratorSpec {
        pattern: Pattern::Pan,
        width: 1280,
        height: 720,
        frames,
        fps: Rational::new(25, 1),
        seed: 1,
        bit_depth: 8,
    };
    let generator = codeclab_video::Generator::new(&spec)?;
    let writer = BufWriter::new(File::create(&path)?);
    generator.write_y4m(writer)?.flush()?;
    Ok((path, "generated 1280x720 pan".into()))
}

pub fn bench(args: BenchCodecArgs) -> Result<()> {
    let genome = load_genome(args.genome.as_deref(), args.preset)?;
    let dir = ScratchDir::new()?;
    let result = bench_in(&args, genome, &dir.0);
    drop(dir);
    result
}

/// A private temporary folder, removed when dropped.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new() -> Result<Self> {
        let path =
            std::env::temp_dir().join(format!("codeclab-bench-codec-{}", std::process::id()));
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(ScratchDir(path))
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        // Best effort: a leftover temporary folder is harmless.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn bench_in(args: &BenchCodecArgs, genome: Genome, dir: &Path) -> Result<()> {
    let (clip, description) = match &args.clip {
        Some(clip) => (clip.clone(), clip.display().to_string()),
        None => default_clip(dir, args.frames)?,
    };
    // Only the first `frames` frames: cut the input short through a counting Y4M pass.
    let limited = dir.join("input.y4m");
    {
        let mut reader = codeclab_video::Y4mReader::open(&clip)?;
        let mut writer = codeclab_video::Y4mWriter::create(&limited, reader.format())?;
        while writer.frames_written() < args.frames {
            let Some(frame) = reader.read_frame()? else {
                break;
            };
            writer.write_frame(&frame)?;
        }
        writer.finish()?;
    }
    let format = *codeclab_video::Y4mReader::open(&limited)?.format();
    if format.width * format.height == 0 {
        bail!("empty clip");
    }
    let stream = dir.join("stream.bin");
    let cpu_started = thread_cpu_seconds();
    let started = Instant::now();
    let encoded = encode_y4m(
        open_input(&limited)?,
        "input",
        open_output(&stream)?,
        EncodeSettings::new(genome, RateMode::ConstantQp(args.qp)),
        &mut |_, _| {},
    )?;
    let encode_seconds = started.elapsed().as_secs_f64();
    let encode_cpu = thread_cpu_seconds().zip(cpu_started).map(|(b, a)| b - a);
    let cpu_started = thread_cpu_seconds();
    let started = Instant::now();
    let decoded = decode_to_y4m(open_input(&stream)?, std::io::sink(), 1, &mut |_, _| {})?;
    let decode_seconds = started.elapsed().as_secs_f64();
    let decode_cpu = thread_cpu_seconds().zip(cpu_started).map(|(b, a)| b - a);
    let frames = encoded.frames as f64;
    let cpu_fps = |cpu: Option<f64>| match cpu {
        Some(seconds) if seconds > 0.0 => format!("{:.2} fps on CPU time", frames / seconds),
        _ => "CPU time not measured".to_string(),
    };
    println!("clip: {description}, {}x{}", format.width, format.height);
    println!(
        "kernels: {:?} (CODECLAB_ISA=reference forces the reference code)",
        codeclab_codec::dsp::max_isa()
    );
    println!(
        "qp {}, {} frames, {} bytes, {:.1} kbps",
        args.qp, encoded.frames, encoded.bytes, encoded.kbps
    );
    println!(
        "encode: {:.2} fps wall ({:.2} s), {}; 1 thread",
        frames / encode_seconds,
        encode_seconds,
        cpu_fps(encode_cpu)
    );
    println!(
        "decode: {:.2} fps wall ({:.2} s), {}; 1 thread",
        decoded.frames as f64 / decode_seconds,
        decode_seconds,
        cpu_fps(decode_cpu)
    );
    Ok(())
}

/// CPU time of the calling thread (Linux `/proc/thread-self/schedstat`); `None` where that is
/// not available. On a loaded machine wall-clock speed understates the codec, CPU time does not.
fn thread_cpu_seconds() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos: f64 = text.split_whitespace().next()?.parse().ok()?;
    Some(nanos / 1e9)
}
