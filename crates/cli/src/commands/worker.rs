//! `codeclab worker`: one worker process joining a lab's queue, from this machine or another
//! one that reaches the database and the artifact store.

use std::sync::Arc;

use clap::Args;
use codeclab_lab::Lab;

use super::run::{LabArgs, WorkerArgs, print_stats, run_workers, runtime, shutdown_on_ctrl_c};

#[derive(Args)]
pub struct WorkerCommandArgs {
    #[command(flatten)]
    pub lab: LabArgs,
    #[command(flatten)]
    pub worker: WorkerArgs,
    /// Workers in this process.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Stop when the queue is empty.
    #[arg(long)]
    pub exit_when_idle: bool,
    /// Print worker events and the final summary as JSON lines.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: WorkerCommandArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async move {
        let lab = args.lab.open().await?;
        let lab = Lab {
            max_attempts: args.worker.max_attempts,
            ..lab
        };
        let stats = run_workers(
            Arc::new(lab),
            &args.worker,
            args.workers,
            args.exit_when_idle,
            args.json,
            &shutdown_on_ctrl_c(),
        )
        .await?;
        print_stats(&stats, args.json);
        Ok(())
    })
}
