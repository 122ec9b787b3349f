//! `codeclab bench ...`: speed measurements, side by side with the reference tools where present.

use clap::Subcommand;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Procedural generator speed per pattern, and Y4M write and read speed.
    Video(super::corpus::BenchVideoArgs),
}

pub fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Video(args) => super::corpus::bench(args),
    }
}
