//! Stand-alone encoder and decoder of the lab's codec, for sandboxed candidate builds:
//!
//! ```text
//! codeclab-codec encode [--qp Q | --crf F | --bitrate KBPS] [--genome FILE.json | --genome-json JSON] [--threads N] IN.y4m [-o OUT.bin] [--reconstruction RECON.y4m]
//! codeclab-codec decode [--threads N] IN.bin -o OUT.y4m
//! ```
//! `-` stands for stdin or stdout. The encoder writes the bitstream (`-o`), its reconstruction
//! as Y4M (`--reconstruction`, which the decoder must reproduce bit for bit), or both; at most one
//! of them to stdout. `--threads` (default 1) codes independent frames in parallel; the output is
//! the same at any count. A summary line goes to stderr. In the sandbox, which refuses to open files,
//! the genome comes inline (`--genome-json`) and every stream is `-`.

use codeclab_codec::{
    EncodeSettings, Genome, RateMode, Summary, decode_to_y4m, encode_y4m, encode_y4m_reconstructed,
};
use std::io::{Read, Write};
use std::process::ExitCode;

const USAGE: &str = "usage: codeclab-codec encode [--qp Q | --crf F | --bitrate KBPS] [--genome FILE.json | --genome-json JSON] [--threads N] IN.y4m [-o OUT.bin] [--reconstruction RECON.y4m]\n       codeclab-codec decode [--threads N] IN.bin -o OUT.y4m";

struct Args {
    verb: String,
    input: String,
    output: Option<String>,
    reconstruction: Option<String>,
    mode: Option<RateMode>,
    genome: Option<GenomeSource>,
    threads: usize,
}

/// Where the encoder's genome comes from.
enum GenomeSource {
    File(String),
    Inline(String),
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let verb = args.next().ok_or("missing verb")?;
    let (mut input, mut output, mut reconstruction) = (None, None, None);
    let (mut mode, mut genome, mut threads) = (None, None, 1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "-o" | "--output" => output = Some(value("-o")?),
            "--reconstruction" => reconstruction = Some(value("--reconstruction")?),
            "--qp" | "--crf" | "--bitrate" if mode.is_some() => {
                return Err("--qp, --crf and --bitrate exclude each other".into());
            }
            "--qp" => {
                let qp = value("--qp")?.parse().map_err(|e| format!("--qp: {e}"))?;
                mode = Some(RateMode::ConstantQp(qp));
            }
            "--crf" => {
                let crf = value("--crf")?.parse().map_err(|e| format!("--crf: {e}"))?;
                mode = Some(RateMode::ConstantQuality { crf });
            }
            "--bitrate" => {
                let kbps = value("--bitrate")?
                    .parse()
                    .map_err(|e| format!("--bitrate: {e}"))?;
                mode = Some(RateMode::TargetBitrate { kbps });
            }
            "--genome" | "--genome-json" if genome.is_some() => {
                return Err("--genome and --genome-json exclude each other".into());
            }
            "--threads" => {
                threads = value("--threads")?
                    .parse()
                    .map_err(|e| format!("--threads: {e}"))?;
                if threads == 0 {
                    return Err("--threads must be at least 1".into());
                }
            }
            "--genome" => genome = Some(GenomeSource::File(value("--genome")?)),
            "--genome-json" => genome = Some(GenomeSource::Inline(value("--genome-json")?)),
            _ if input.is_none() => input = Some(arg),
            _ => return Err(format!("unexpected argument {arg}")),
        }
    }
    if output.is_none() && (reconstruction.is_none() || verb != "encode") {
        return Err("missing -o OUTPUT".into());
    }
    if reconstruction.is_some() && verb != "encode" {
        return Err("--reconstruction is an encoder's output".into());
    }
    if output.is_some() && output == reconstruction {
        return Err("-o and --reconstruction name the same output".into());
    }
    Ok(Args {
        verb,
        input: input.ok_or("missing input")?,
        output,
        reconstruction,
        mode,
        genome,
        threads,
    })
}

fn open_input(path: &str) -> std::io::Result<Box<dyn Read>> {
    Ok(if path == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::io::BufReader::new(std::fs::File::open(path)?))
    })
}

fn open_output(path: &str) -> std::io::Result<Box<dyn Write>> {
    Ok(if path == "-" {
        Box::new(std::io::BufWriter::new(std::io::stdout().lock()))
    } else {
        Box::new(std::io::BufWriter::new(std::fs::File::create(path)?))
    })
}

/// The writer of an optional output; nothing is written where it is not asked for.
fn open_optional(path: &Option<String>) -> Result<Box<dyn Write>, String> {
    match path {
        Some(path) => open_output(path).map_err(|e| format!("{path}: {e}")),
        None => Ok(Box::new(std::io::sink())),
    }
}

fn run(args: Args) -> Result<Summary, String> {
    let input = open_input(&args.input).map_err(|e| format!("{}: {e}", args.input))?;
    let output = open_optional(&args.output)?;
    let mut quiet = |_: u64, _: Option<u64>| {};
    match args.verb.as_str() {
        "encode" => {
            let genome = match &args.genome {
                Some(GenomeSource::File(path)) => {
                    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
                    Genome::from_json(&text).map_err(|e| format!("{path}: {e}"))?
                }
                Some(GenomeSource::Inline(text)) => {
                    Genome::from_json(text).map_err(|e| format!("--genome-json: {e}"))?
                }
                None => Genome::default(),
            };
            let settings = EncodeSettings {
                genome,
                mode: args.mode.unwrap_or(RateMode::ConstantQp(32)),
                threads: args.threads,
            };
            match &args.reconstruction {
                None => encode_y4m(input, &args.input, output, settings, &mut quiet),
                Some(_) => encode_y4m_reconstructed(
                    input,
                    &args.input,
                    output,
                    open_optional(&args.reconstruction)?,
                    settings,
                    &mut quiet,
                ),
            }
            .map_err(|e| e.to_string())
        }
        "decode" => {
            decode_to_y4m(input, output, args.threads, &mut quiet).map_err(|e| e.to_string())
        }
        other => Err(format!("unknown verb {other}")),
    }
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("error: {message}\n{USAGE}");
            return ExitCode::FAILURE;
        }
    };
    let verb = args.verb.clone();
    match run(args) {
        Ok(s) => {
            eprintln!(
                "{verb}: {} frames, {} bytes, {:.1} kbps, {:.2} fps",
                s.frames,
                s.bytes,
                s.kbps,
                s.coding_fps()
            );
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
