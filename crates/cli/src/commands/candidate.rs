//! `codeclab candidate try EDITS.json`: takes a list of SEARCH/REPLACE edits through exactly the
//! path a planner's proposal takes (edit check, static policy, confined offline build, sandboxed
//! smoke stage) and says whether it passed, and if not where and why. Records nothing.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use codeclab_codec::Genome;
use codeclab_lab::candidate::Edit;
use codeclab_lab::config::LabConfig;
use codeclab_lab::planner::run_loop::smoke_spec;

use super::run::{LabArgs, codec_candidates, runtime};

#[derive(Subcommand)]
pub enum CandidateCommand {
    /// Tries edits to the codec's evolvable blocks: edit check → static policy → confined build →
    /// sandboxed smoke stage. Exit status 0: passed; 1: rejected; 2: no verdict (a usage error,
    /// or the lab could not try it).
    Try(TryArgs),
}

#[derive(Args)]
pub struct TryArgs {
    #[command(flatten)]
    pub lab: LabArgs,
    /// A JSON list of `{"block", "search", "replace"}` edits, as planners propose them (`-` for
    /// stdin).
    pub edits: PathBuf,
    /// Lab configuration (its smoke frames, dev clips and API key variable); default:
    /// DATA_DIR/codeclab.toml, or the embedded defaults.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Print one JSON line: {"outcome", "stage", "reason"}.
    #[arg(long)]
    pub json: bool,
}

/// What trying a candidate found.
#[derive(Debug, serde::Serialize)]
struct Verdict {
    outcome: &'static str,
    stage: &'static str,
    reason: String,
}

pub fn run(command: CandidateCommand) -> ExitCode {
    let CandidateCommand::Try(args) = command;
    let verdict = match try_candidate(&args) {
        Ok(verdict) => verdict,
        Err(error) => {
            eprintln!("error: {error:#}");
            return ExitCode::from(2);
        }
    };
    if args.json {
        // Fields in the documented order: outcome, stage, reason.
        match serde_json::to_string(&verdict) {
            Ok(line) => println!("{line}"),
            Err(error) => {
                eprintln!("error: {error}");
                return ExitCode::from(2);
            }
        }
    } else if verdict.outcome == "passed" {
        println!("passed: {}", verdict.reason);
    } else {
        println!(
            "rejected at the {} stage: {}",
            verdict.stage, verdict.reason
        );
    }
    if verdict.outcome == "passed" {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn read_edits(path: &PathBuf) -> anyhow::Result<Vec<Edit>> {
    let text = if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the edits from stdin")?;
        text
    } else {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
    };
    serde_json::from_str(&text).with_context(|| {
        format!(
            "{}: expected a JSON list of {{\"block\", \"search\", \"replace\"}} edits",
            path.display()
        )
    })
}

fn try_candidate(args: &TryArgs) -> anyhow::Result<Verdict> {
    let edits = read_edits(&args.edits)?;
    let path = args
        .config
        .clone()
        .unwrap_or_else(|| args.lab.data_dir.join("codeclab.toml"));
    let config = LabConfig::load(&path)?;
    runtime()?.block_on(async {
        let lab = args.lab.open_configured(&config).await?;
        lab.ensure_corpus().context("preparing the corpus")?;
        let candidates = codec_candidates(&lab)?;
        let smoke = smoke_spec(&lab, &config, &Genome::default())?;
        let scratch = tempfile::tempdir().context("a folder for the candidate binary")?;
        let destination = scratch.path().join("candidate");
        let outcome =
            tokio::task::spawn_blocking(move || candidates.evaluate(&edits, &destination, &smoke))
                .await?
                .context("trying the candidate")?;
        Ok(match outcome {
            Ok(report) => Verdict {
                outcome: "passed",
                stage: "smoke",
                reason: format!(
                    "it built, and its decode of {} frames ({}x{}, QP {}, {} bytes) equals the \
                     encoder's reconstruction bit for bit at {:.2} dB PSNR-Y",
                    report.frames,
                    report.width,
                    report.height,
                    report.qp,
                    report.bitstream_bytes,
                    report.psnr_y
                ),
            },
            Err(rejection) => Verdict {
                outcome: "rejected",
                stage: rejection.stage(),
                reason: rejection.to_string(),
            },
        })
    })
}
