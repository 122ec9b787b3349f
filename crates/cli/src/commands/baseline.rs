//! `codeclab baseline run`: computes (or finds cached) the anchor curves on the corpus.

use std::sync::Arc;

use clap::{Args, Subcommand};

use super::run::{LabArgs, WorkerArgs, default_workers, run_workers, runtime, shutdown_on_ctrl_c};

#[derive(Subcommand)]
pub enum BaselineCommand {
    /// Queue the anchor curves that are missing or stale (clip, encoder build or settings
    /// changed) and compute them with local workers.
    Run(BaselineArgs),
}

#[derive(Args)]
pub struct BaselineArgs {
    #[command(flatten)]
    lab: LabArgs,
    #[command(flatten)]
    worker: WorkerArgs,
    /// Only these anchors (repeatable; default: all standard anchors).
    #[arg(long = "anchor")]
    anchors: Vec<String>,
    /// Only these clips (repeatable; default: the whole corpus).
    #[arg(long = "clip")]
    clips: Vec<String>,
    /// Local workers (default: one per core; 0: only queue, let other workers compute).
    #[arg(long)]
    workers: Option<usize>,
    #[arg(long)]
    json: bool,
}

pub fn run(command: BaselineCommand) -> anyhow::Result<()> {
    let BaselineCommand::Run(args) = command;
    runtime()?.block_on(async move {
        let lab = args.lab.open().await?;
        lab.ensure_corpus()?;
        let entries = lab.baseline(&args.anchors, &args.clips).await?;
        let workers = args.workers.unwrap_or_else(default_workers);
        let lab = Arc::new(lab);
        if workers > 0 {
            run_workers(
                lab.clone(),
                &args.worker,
                workers,
                true,
                false,
                &shutdown_on_ctrl_c(),
            )
            .await?;
        }
        let mut report = Vec::new();
        for entry in &entries {
            let state = match entry.experiment_id {
                Some(id) => lab.store.experiment(id).await?.map(|e| (e.state, e.reason)),
                None => None,
            };
            report.push(serde_json::json!({
                "anchor": entry.anchor,
                "clip": entry.clip,
                "experiment": entry.experiment_id,
                "was": entry.status,
                "state": state.as_ref().map(|s| s.0),
                "reason": state.and_then(|s| s.1),
            }));
        }
        if args.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            for entry in &report {
                println!(
                    "{:<22} {:<16} experiment {:<6} {} → {}{}",
                    entry["anchor"].as_str().unwrap_or(""),
                    entry["clip"].as_str().unwrap_or(""),
                    entry["experiment"],
                    entry["was"].as_str().unwrap_or(""),
                    entry["state"].as_str().unwrap_or("-"),
                    entry["reason"]
                        .as_str()
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default()
                );
            }
        }
        Ok(())
    })
}
