//! `codeclab corpus ...`: the clip corpus (list, add, import, generate, verify), and
//! `codeclab bench video`: Y4M and generator speed.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use codeclab_video::corpus::{Clip, ClipLabel, ClipSet, ClipStatus, Corpus, Progress};
use codeclab_video::{AnyFrame, Generator, GeneratorSpec, Pattern, Rational, Y4mReader, Y4mWriter};
use indicatif::ProgressBar;

#[derive(Args)]
pub struct CorpusArgs {
    /// Data directory; the corpus lives in its `corpus/` folder (manifest: `corpus/corpus.toml`).
    #[arg(
        long,
        env = "CODECLAB_DATA",
        default_value = "./codeclab-data",
        global = true
    )]
    data_dir: PathBuf,
    #[command(subcommand)]
    command: CorpusCommand,
}

#[derive(Subcommand)]
enum CorpusCommand {
    /// List the clips of the manifest.
    List {
        /// Only the clips of this set (`dev` or `holdout`).
        #[arg(long)]
        set: Option<ClipSet>,
        /// Print the clip records as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Add an existing Y4M file: read it through, count its frames, hash it. A file outside the
    /// corpus folder is copied into `corpus/clips/<id>.y4m`.
    Add {
        /// The Y4M file.
        file: PathBuf,
        #[command(flatten)]
        label: LabelArgs,
        /// Print the new clip record as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Decode any file ffmpeg reads into `corpus/clips/<id>.y4m` and add it; or, with `--real`,
    /// decode the real clips of the shared folder (only those missing or changed).
    Import {
        /// The video file to decode.
        #[arg(required_unless_present = "real", conflicts_with = "real")]
        input: Option<PathBuf>,
        /// Import the shared real clips (carphone, bikes) instead of a file.
        #[arg(long)]
        real: bool,
        #[command(flatten)]
        label: LabelArgs,
        /// Decode only the first N frames.
        #[arg(long)]
        frames: Option<u64>,
        /// ffmpeg pixel format of the decoded clip: yuv420p, yuv420p10le, yuv444p, ...
        #[arg(long, default_value = "yuv420p")]
        pix_fmt: String,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Render a procedural clip (deterministic from its seed) into `corpus/clips/<id>.y4m` and
    /// add it, with its generator spec.
    Generate {
        /// plasma, mandelbrot, shapes, pan, grain, gradient or scene-cut.
        #[arg(long)]
        pattern: Pattern,
        /// Picture width, 1 to 4096.
        #[arg(long, default_value_t = 640)]
        width: usize,
        /// Picture height, 1 to 4096 (at most 4096x2160 pixels in all).
        #[arg(long, default_value_t = 360)]
        height: usize,
        /// Number of frames.
        #[arg(long, default_value_t = 60)]
        frames: u64,
        /// Frame rate: `num/den` or a whole number.
        #[arg(long, default_value = "30")]
        fps: Rational,
        /// Seed of the pseudo-random choices (shapes, colours, motion); same seed, same bytes.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// 8 or 10.
        #[arg(long, default_value_t = 8)]
        bit_depth: u8,
        /// Clip id [default: <pattern>-<width>x<height>-<depth>bit-s<seed>].
        #[arg(long)]
        id: Option<String>,
        /// `dev` or `holdout` (planners never see holdout clips).
        #[arg(long, default_value = "dev")]
        set: ClipSet,
        /// Print the new clip record as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Re-hash every clip and report ok, missing or changed; fails when any clip is not ok.
    Verify {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// How a clip added by hand is labelled.
#[derive(Args)]
struct LabelArgs {
    /// Clip id: a-z, 0-9, `.`, `_`, `-` [default: from the file name].
    #[arg(long)]
    id: Option<String>,
    /// Content class, e.g. talking-head, pan, sports, animation.
    #[arg(long, required_unless_present = "real")]
    class: Option<String>,
    /// Where the clip comes from [default: the file's path].
    #[arg(long)]
    source: Option<String>,
    /// `dev` or `holdout` (planners never see holdout clips).
    #[arg(long, default_value = "dev")]
    set: ClipSet,
}

impl LabelArgs {
    fn into_label(self, file: &Path, default_source: String) -> anyhow::Result<ClipLabel> {
        let id = match self.id {
            Some(id) => id,
            None => id_from_file_name(file)?,
        };
        Ok(ClipLabel {
            id,
            class: self.class.context("--class is required")?,
            source: self.source.unwrap_or(default_source),
            set: self.set,
        })
    }
}

/// A clip id from a file name: its stem, lowercased, other characters turned into `-`.
fn id_from_file_name(file: &Path) -> anyhow::Result<String> {
    let stem = file
        .file_stem()
        .and_then(|s| s.to_str())
        .with_context(|| format!("cannot make a clip id from {}; pass --id", file.display()))?;
    Ok(stem
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '.' | '_' | '-') => c,
            _ => '-',
        })
        .collect())
}

/// Shows each long step of the corpus as a progress bar.
struct Bars {
    current: Option<ProgressBar>,
}

impl Progress for Bars {
    fn begin(&mut self, what: &str, total: Option<u64>) {
        self.current = Some(crate::progress::bar(total, what));
    }

    fn advance(&mut self) {
        if let Some(bar) = &self.current {
            bar.inc(1);
        }
    }

    fn end(&mut self) {
        if let Some(bar) = self.current.take() {
            bar.finish_and_clear();
        }
    }
}

pub fn run(args: CorpusArgs) -> anyhow::Result<()> {
    let mut corpus = Corpus::open(&args.data_dir)
        .with_context(|| format!("opening the corpus of {}", args.data_dir.display()))?;
    let mut bars = Bars { current: None };
    match args.command {
        CorpusCommand::List { set, json } => {
            let clips: Vec<&Clip> = corpus
                .clips()
                .iter()
                .filter(|c| set.is_none_or(|s| c.set == s))
                .collect();
            if json {
                println!("{}", serde_json::to_string_pretty(&clips)?);
            } else {
                print_table(&clips);
            }
        }
        CorpusCommand::Add { file, label, json } => {
            let label = label.into_label(&file, format!("added from {}", file.display()))?;
            let clip = corpus.add_y4m(&file, label, &mut bars)?.clone();
            corpus.save()?;
            print_clip(&clip, json)?;
        }
        CorpusCommand::Import {
            input,
            real,
            label,
            frames,
            pix_fmt,
            json,
        } => match input {
            Some(input) if !real => {
                let first = frames.map_or(String::new(), |n| format!(", first {n} frames"));
                let source = format!(
                    "imported from {} by ffmpeg as {pix_fmt}{first}",
                    input.display()
                );
                let label = label.into_label(&input, source)?;
                let clip = corpus
                    .import(&input, label, frames, &pix_fmt, &mut bars)?
                    .clone();
                corpus.save()?;
                print_clip(&clip, json)?;
            }
            _ => {
                let outcomes = corpus.ensure_real_clips(&mut bars)?;
                corpus.save()?;
                if json {
                    let records: Vec<_> = outcomes
                        .iter()
                        .map(|(id, outcome)| serde_json::json!({ "id": id, "outcome": outcome }))
                        .collect();
                    println!("{}", serde_json::to_string_pretty(&records)?);
                } else {
                    for (id, outcome) in outcomes {
                        println!("{:<9} {id}", format!("{outcome:?}").to_lowercase());
                    }
                }
            }
        },
        CorpusCommand::Generate {
            pattern,
            width,
            height,
            frames,
            fps,
            seed,
            bit_depth,
            id,
            set,
            json,
        } => {
            let spec = GeneratorSpec {
                pattern,
                width,
                height,
                frames,
                fps,
                seed,
                bit_depth,
            };
            let label = ClipLabel {
                id: id.unwrap_or_else(|| {
                    format!("{pattern}-{width}x{height}-{bit_depth}bit-s{seed}")
                }),
                class: pattern.content_class(),
                source: format!("generated by codeclab ({pattern}, seed {seed})"),
                set,
            };
            let clip = corpus.generate(&spec, label, &mut bars)?.clone();
            corpus.save()?;
            print_clip(&clip, json)?;
        }
        CorpusCommand::Verify { json } => {
            let checks = corpus.verify(&mut bars)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&checks)?);
            } else {
                for check in &checks {
                    let status = match &check.status {
                        ClipStatus::Ok => "ok".to_string(),
                        ClipStatus::Missing => "MISSING".to_string(),
                        ClipStatus::Changed { actual_sha256 } => {
                            format!("CHANGED (now sha256 {actual_sha256})")
                        }
                    };
                    println!("{:<24} {status}  {}", check.id, check.path.display());
                }
            }
            let failed = checks.iter().filter(|c| c.status != ClipStatus::Ok).count();
            if failed > 0 {
                bail!("{failed} of {} clips failed verification", checks.len());
            }
        }
    }
    Ok(())
}

fn print_clip(clip: &Clip, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(clip)?);
    } else {
        print_table(&[clip]);
    }
    Ok(())
}

fn print_table(clips: &[&Clip]) {
    println!(
        "{:<28} {:<7} {:<20} {:>10} {:>5} {:>6} {:>10} {:>7}  path",
        "id", "set", "class", "size", "bits", "chroma", "fps", "frames"
    );
    for c in clips {
        let chroma = serde_json::to_value(c.chroma)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        println!(
            "{:<28} {:<7} {:<20} {:>10} {:>5} {:>6} {:>10} {:>7}  {}",
            c.id,
            c.set.to_string(),
            c.class,
            format!("{}x{}", c.width, c.height),
            c.bit_depth,
            chroma,
            c.fps.to_string(),
            c.frames,
            c.path
        );
    }
}

#[derive(Args)]
pub struct BenchVideoArgs {
    /// Picture width of the generated test clip.
    #[arg(long, default_value_t = 1920)]
    width: usize,
    /// Picture height of the generated test clip.
    #[arg(long, default_value_t = 1080)]
    height: usize,
    /// Frames per measurement.
    #[arg(long, default_value_t = 30)]
    frames: u64,
    /// 8 or 10.
    #[arg(long, default_value_t = 8)]
    bit_depth: u8,
    /// Folder for the temporary Y4M file [default: the system's temporary folder].
    #[arg(long)]
    scratch: Option<PathBuf>,
}

/// Generator speed per pattern (frames per second, all cores), then Y4M write and read speed
/// through a file, one thread.
pub fn bench(args: BenchVideoArgs) -> anyhow::Result<()> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "{}x{} {}-bit 4:2:0, {} frames per measurement; generator on {threads} threads",
        args.width, args.height, args.bit_depth, args.frames
    );
    let spec = |pattern| GeneratorSpec {
        pattern,
        width: args.width,
        height: args.height,
        frames: args.frames,
        fps: Rational::new(30, 1),
        seed: 1,
        bit_depth: args.bit_depth,
    };
    for pattern in Pattern::ALL {
        let generator = Generator::new(&spec(pattern))?;
        let mut frame = AnyFrame::new_grey(generator.format());
        let start = Instant::now();
        for index in 0..args.frames {
            generator.frame_into(index, &mut frame);
        }
        let seconds = start.elapsed().as_secs_f64();
        println!(
            "generate {:<11} {:>8.2} fps  ({:.1} ms/frame)",
            pattern.name(),
            args.frames as f64 / seconds,
            1000.0 * seconds / args.frames as f64
        );
    }

    let generator = Generator::new(&spec(Pattern::Shapes))?;
    let frames: Vec<AnyFrame> = (0..args.frames).map(|i| generator.frame(i)).collect();
    let scratch = args.scratch.unwrap_or_else(std::env::temp_dir);
    let path = scratch.join(format!("codeclab-bench-{}.y4m", std::process::id()));
    let start = Instant::now();
    let mut writer = Y4mWriter::create(&path, generator.format())?;
    for frame in &frames {
        writer.write_frame(frame)?;
    }
    writer.finish()?;
    let write_seconds = start.elapsed().as_secs_f64();
    let bytes = std::fs::metadata(&path)?.len() as f64;

    let start = Instant::now();
    let mut reader = Y4mReader::open(&path)?;
    let mut frame = AnyFrame::new_grey(reader.format());
    let mut count = 0u64;
    while reader.read_frame_into(&mut frame)? {
        count += 1;
    }
    let read_seconds = start.elapsed().as_secs_f64();
    std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
    if count != args.frames {
        bail!("read {count} frames back, wrote {}", args.frames);
    }
    for (what, seconds) in [("write", write_seconds), ("read", read_seconds)] {
        println!(
            "y4m {what:<5} {:>8.1} fps  {:>7.0} MB/s (file in page cache)",
            args.frames as f64 / seconds,
            bytes / seconds / 1e6
        );
    }
    Ok(())
}
