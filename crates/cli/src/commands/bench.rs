//! `codeclab bench ...`: speed measurements, side by side with the reference tools where present.

use clap::Subcommand;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// The lab codec's single-thread encode and decode speed at 1280x720 (clip, QP, frames, fps, kbps).
    Codec(super::encode::BenchCodecArgs),
    /// Experiments per hour through the whole lab: the lab codec on carphone at 4 QPs, 2 workers.
    Lab(super::run::BenchLabArgs),
    /// PSNR, SSIM and MS-SSIM speed, one thread, beside ffmpeg's psnr/ssim filters and libvmaf.
    Metrics(super::metrics::BenchMetricsArgs),
    /// VMAF v0.6.1 speed (fps), beside libvmaf's `vmaf` command at the same thread count when on PATH.
    Vmaf(super::bench_vmaf::BenchVmafArgs),
    /// Procedural generator speed per pattern, and Y4M write and read speed.
    Video(super::corpus::BenchVideoArgs),
}

pub fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Codec(args) => super::encode::bench(args),
        BenchCommand::Lab(args) => super::run::bench(args),
        BenchCommand::Metrics(args) => super::metrics::bench(args),
        BenchCommand::Vmaf(args) => super::bench_vmaf::run(args),
        BenchCommand::Video(args) => super::corpus::bench(args),
    }
}
