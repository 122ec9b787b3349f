//! The `codeclab` command: argument parsing and wiring; the work happens in the library crates.

mod commands;
mod logging;
mod progress;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "codeclab", version, about, propagate_version = true)]
struct Cli {
    /// More log output (-v: debug, -vv: trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Log line format on stderr.
    #[arg(long, value_enum, default_value_t = logging::LogFormat::Text, global = true)]
    log_format: logging::LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// BD-rate (PCHIP, Akima, cubic) and BD-quality of a test RD curve against an anchor curve.
    Bdrate(commands::bdrate::BdrateArgs),
    /// Anchor curves (x265, x264, SVT-AV1, libaom, VP9 and low-delay variants) on the corpus.
    #[command(subcommand)]
    Baseline(commands::baseline::BaselineCommand),
    /// Code candidates: `try EDITS.json` takes edits to the codec's evolvable blocks through the
    /// planner's pipeline (edit check, static policy, confined build, sandboxed smoke stage).
    #[command(subcommand)]
    Candidate(commands::candidate::CandidateCommand),
    /// Speed benchmarks, side by side with the reference tools when they are installed.
    #[command(subcommand)]
    Bench(commands::bench::BenchCommand),
    /// The clip corpus: list, add, import, generate and verify clips.
    Corpus(commands::corpus::CorpusArgs),
    /// Experiments: submit a JSON spec, list, show (RD table and BD-rates), rerun, cancel.
    #[command(subcommand)]
    Experiment(commands::experiment::ExperimentCommand),
    /// Encode a Y4M clip with the lab's own codec: [--qp Q | --crf F | --bitrate KBPS] [--preset P] [--genome FILE.json] IN.y4m -o OUT.bin (`-` for stdin/stdout).
    Encode(commands::encode::EncodeArgs),
    /// Decode a bitstream of the lab's own codec to Y4M: IN.bin -o OUT.y4m (`-` for stdin/stdout).
    Decode(commands::decode::DecodeArgs),
    /// Every gene of the lab codec's genome: value, values it may take, meaning [--preset P] [--genome FILE.json] [--json].
    Genome(commands::genome::GenomeArgs),
    /// PSNR, SSIM and MS-SSIM (libvmaf's definitions) of a distorted Y4M clip against its reference.
    Metrics(commands::metrics::MetricsArgs),
    /// The lab's report: status, experiments, best program, goals, spend, alerts, next steps [--since T] [--format md|json] [--run RUN].
    Report(commands::report::ReportArgs),
    /// The lab: prepare corpus and anchors, then process the queue with local workers (Ctrl-C stops).
    Run(commands::run::RunArgs),
    /// The dashboard alone: pages, JSON API and admin actions at http://127.0.0.1:8080 [--bind ADDR] until Ctrl-C.
    Serve(commands::serve::ServeArgs),
    /// Join a lab's queue as a worker (`--database URL --artifacts URL` from another machine).
    Worker(commands::worker::WorkerCommandArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.verbose, cli.log_format);
    let result: anyhow::Result<()> = match cli.command {
        // Its exit status tells a verdict apart from a failure to reach one.
        Command::Candidate(command) => return commands::candidate::run(command),
        Command::Bdrate(args) => commands::bdrate::run(args),
        Command::Baseline(command) => commands::baseline::run(command),
        Command::Bench(command) => commands::bench::run(command),
        Command::Experiment(command) => commands::experiment::run(command),
        Command::Report(args) => commands::report::run(args),
        Command::Run(args) => commands::run::run(args),
        Command::Serve(args) => commands::serve::run(args),
        Command::Worker(args) => commands::worker::run(args),
        Command::Corpus(args) => commands::corpus::run(args),
        Command::Metrics(args) => commands::metrics::run(args),
        Command::Encode(args) => commands::encode::run(args),
        Command::Decode(args) => commands::decode::run(args),
        Command::Genome(args) => commands::genome::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
