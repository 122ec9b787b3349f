//! `codeclab experiment submit | list | show | rerun | cancel`.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use codeclab_lab::experiment::{Analysis, ExperimentSpec};
use codeclab_lab::runner::QualityMetric;
use codeclab_lab::store::listing::ExperimentSummary;
use codeclab_lab::store::{ExperimentRecord, ExperimentState};

use super::run::{LabArgs, runtime};

#[derive(Subcommand)]
pub enum ExperimentCommand {
    /// Record an experiment from a JSON spec and queue its jobs.
    Submit(SubmitArgs),
    /// Experiments, newest first.
    List(ListArgs),
    /// One experiment: spec, state, RD table and BD-rates against the anchors.
    Show(IdArgs),
    /// Run an experiment again, as a new experiment linked to the old one.
    Rerun(IdArgs),
    /// Cancel a queued or running experiment.
    Cancel(IdArgs),
}

#[derive(Args)]
pub struct SubmitArgs {
    #[command(flatten)]
    lab: LabArgs,
    /// The experiment spec (JSON): codec, clips, rate_points, and optionally parents, proposer,
    /// hypothesis, anchors.
    file: PathBuf,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct ListArgs {
    #[command(flatten)]
    lab: LabArgs,
    /// Only experiments in this state (queued, running, completed, failed, analysed, cancelled).
    #[arg(long)]
    state: Option<String>,
    #[arg(long, default_value_t = 50)]
    limit: i64,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct IdArgs {
    #[command(flatten)]
    lab: LabArgs,
    id: i64,
    #[arg(long)]
    json: bool,
}

pub fn run(command: ExperimentCommand) -> anyhow::Result<()> {
    runtime()?.block_on(async move {
        match command {
            ExperimentCommand::Submit(args) => {
                let text = std::fs::read_to_string(&args.file)
                    .with_context(|| format!("reading {}", args.file.display()))?;
                let spec: ExperimentSpec = serde_json::from_str(&text).with_context(|| {
                    format!("{} is not an experiment spec", args.file.display())
                })?;
                let lab = args.lab.open().await?;
                let submitted = lab.submit(&spec, None).await?;
                print_submitted(&submitted, args.json)
            }
            ExperimentCommand::Rerun(args) => {
                let lab = args.lab.open().await?;
                let submitted = lab.rerun(args.id).await?;
                print_submitted(&submitted, args.json)
            }
            ExperimentCommand::Cancel(args) => {
                let lab = args.lab.open().await?;
                lab.store
                    .cancel(args.id, "cancelled by the operator")
                    .await?;
                if args.json {
                    println!(
                        "{}",
                        serde_json::json!({"id": args.id, "state": "cancelled"})
                    );
                } else {
                    println!("experiment {} cancelled", args.id);
                }
                Ok(())
            }
            ExperimentCommand::List(args) => {
                let state = args
                    .state
                    .as_deref()
                    .map(str::parse::<ExperimentState>)
                    .transpose()
                    .map_err(anyhow::Error::msg)?;
                let lab = args.lab.open().await?;
                let records = lab.store.experiments(state, args.limit).await?;
                if args.json {
                    println!("{}", serde_json::to_string_pretty(&records)?);
                } else {
                    println!(
                        "{:>5}  {:<10} {:<28} {:<10} clips  reason",
                        "id", "state", "codec", "proposer"
                    );
                    for r in &records {
                        println!(
                            "{:>5}  {:<10} {:<28} {:<10} {:>5}  {}",
                            r.id,
                            r.state,
                            truncate(&r.spec.codec_label(), 28),
                            truncate(&r.spec.proposer, 10),
                            r.spec.clips.len(),
                            r.reason.as_deref().unwrap_or("")
                        );
                    }
                }
                Ok(())
            }
            ExperimentCommand::Show(args) => {
                let lab = args.lab.open().await?;
                let record = lab
                    .store
                    .experiment(args.id)
                    .await?
                    .with_context(|| format!("experiment {} does not exist", args.id))?;
                let counts = lab.store.job_counts(args.id).await?;
                let analysis = lab.store.analysis(args.id).await?;
                if args.json {
                    let summary = analysis
                        .clone()
                        .map(serde_json::from_value::<Analysis>)
                        .transpose()?
                        .map(|analysis| ExperimentSummary::of(&analysis));
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&serde_json::json!({
                            "experiment": record,
                            "jobs": counts,
                            "analysis": analysis,
                            "summary": summary,
                        }))?
                    );
                    return Ok(());
                }
                print_record(&record);
                println!(
                    "jobs: {} done, {} running, {} queued, {} failed, {} cancelled",
                    counts.done, counts.running, counts.queued, counts.failed, counts.cancelled
                );
                match analysis {
                    Some(value) => {
                        let analysis: Analysis = serde_json::from_value(value)?;
                        print_analysis(&analysis);
                    }
                    None => {
                        let points = lab.store.points(args.id).await?;
                        print_curves(&codeclab_lab::experiment::curves(&points));
                        println!("BD-rates: not analysed yet");
                    }
                }
                Ok(())
            }
        }
    })
}

fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_string()
    } else {
        let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

fn print_submitted(submitted: &codeclab_lab::lab::Submitted, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(submitted)?);
    } else {
        match &submitted.reason {
            Some(reason) => println!("experiment {} failed: {reason}", submitted.id),
            None => println!("experiment {} {}", submitted.id, submitted.state),
        }
    }
    Ok(())
}

fn print_record(r: &ExperimentRecord) {
    println!("experiment {}  {}", r.id, r.state);
    if let Some(reason) = &r.reason {
        println!("reason: {reason}");
    }
    println!(
        "codec: {} ({})",
        r.spec.codec_label(),
        &r.codec_hash[..12.min(r.codec_hash.len())]
    );
    println!(
        "proposer: {}  parents: {:?}  rerun of: {}",
        r.spec.proposer,
        r.spec.parents,
        r.rerun_of.map_or("-".to_string(), |id| id.to_string())
    );
    if !r.spec.hypothesis.is_empty() {
        println!("hypothesis: {}", r.spec.hypothesis);
    }
}

fn cell(value: Option<f64>, decimals: usize) -> String {
    value.map_or("not measured".into(), |v| format!("{v:.decimals$}"))
}

fn print_curves(
    curves: &std::collections::BTreeMap<String, Vec<codeclab_lab::runner::PointRecord>>,
) {
    for (clip, points) in curves {
        println!("\nRD curve on {clip}:");
        println!(
            "{:>10} {:>9} {:>10} {:>8} {:>8} {:>7} {:>7} {:>12} {:>8} {:>8} {:>12} {:>14}",
            "rate",
            "bytes",
            "kbps",
            "PSNR-Y",
            "PSNR-YUV",
            "SSIM",
            "MS-SSIM",
            "VMAF",
            "enc s",
            "dec s",
            "dec instr/px",
            "learned MAC/px"
        );
        for p in points {
            println!(
                "{:>10} {:>9} {:>10.3} {:>8} {:>8} {:>7} {:>7} {:>12} {:>8.3} {:>8.3} {:>12} {:>14}",
                p.rate_point.to_string(),
                p.bytes,
                p.kbps,
                cell(p.quality(QualityMetric::PsnrY), 3),
                cell(p.quality(QualityMetric::PsnrYuv), 3),
                cell(p.quality(QualityMetric::Ssim), 4),
                cell(p.quality(QualityMetric::MsSsim), 4),
                cell(p.quality(QualityMetric::Vmaf), 3),
                p.encode.wall_seconds,
                p.decode.wall_seconds,
                cell(p.decoder_instructions_per_pixel, 1),
                cell(p.learned_mac_per_pixel, 1),
            );
        }
    }
}

fn print_analysis(analysis: &Analysis) {
    print_curves(&analysis.curves);
    let summary = ExperimentSummary::of(analysis);
    println!(
        "\nMean over points: decoder instructions per pixel {}, learned multiply-accumulates per \
         pixel {}",
        cell(summary.decoder_instructions_per_pixel, 1),
        cell(summary.learned_mac_per_pixel, 1)
    );
    if analysis.bd_rates.is_empty() {
        return;
    }
    println!("\nBD-rate (PCHIP, %; negative saves bits), mean over clips [per clip]:");
    for bd in &analysis.bd_rates {
        let text = match (&bd.report, &bd.not_measured) {
            (Some(report), _) => {
                let mean = report
                    .get("mean")
                    .and_then(|m| m.get("pchip"))
                    .and_then(|v| v.as_f64())
                    .map_or("not measured".to_string(), |v| format!("{v:+.2}"));
                let clips: Vec<String> = report
                    .get("clips")
                    .and_then(|c| c.as_array())
                    .map(|clips| {
                        clips
                            .iter()
                            .map(|c| {
                                let name = c.get("clip").and_then(|n| n.as_str()).unwrap_or("?");
                                match c
                                    .get("report")
                                    .and_then(|r| r.get("pchip"))
                                    .and_then(|v| v.as_f64())
                                {
                                    Some(v) => format!("{name} {v:+.2}"),
                                    None => format!(
                                        "{name} error: {}",
                                        c.get("error").map(|e| e.to_string()).unwrap_or_default()
                                    ),
                                }
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                format!("{mean} [{}]", clips.join(", "))
            }
            (None, reason) => format!("not measured ({})", reason.as_deref().unwrap_or("")),
        };
        println!("  {:<22} {:<9} {text}", bd.anchor, bd.metric.key());
    }
}
