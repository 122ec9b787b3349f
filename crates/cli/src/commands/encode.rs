//! `codeclab encode`: Y4M to the lab codec's bitstream.

use crate::progress;
use anyhow::{Context, Result, bail};
use clap::Args;
use codeclab_codec::{EncodeSettings, Genome, Preset, RateMode, Summary, encode_y4m};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

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
