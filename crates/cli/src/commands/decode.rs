//! `codeclab decode`: the lab codec's bitstream back to Y4M.

use super::encode::{open_input, open_output, summary_line};
use crate::progress;
use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
pub struct DecodeArgs {
    /// Input bitstream (`-` for stdin).
    pub input: PathBuf,
    /// Output Y4M clip (`-` for stdout).
    #[arg(short, long)]
    pub output: PathBuf,
    /// Threads to decode independent frames on; the frames are the same at any count.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: u16,
}

pub fn run(args: DecodeArgs) -> Result<()> {
    let input = open_input(&args.input)?;
    let output = open_output(&args.output)?;
    let bar = progress::bar(None, "decoding");
    let mut on_frame = |done: u64, _: Option<u64>| bar.set_position(done);
    let threads = usize::from(args.threads);
    let summary = codeclab_codec::decode_to_y4m(input, output, threads, &mut on_frame)
        .with_context(|| format!("decoding {}", args.input.display()))?;
    bar.finish_and_clear();
    eprintln!("{}", summary_line("decode", &summary));
    Ok(())
}
