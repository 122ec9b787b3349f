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
}

pub fn run(args: DecodeArgs) -> Result<()> {
    let input = open_input(&args.input)?;
    let output = open_output(&args.output)?;
    let bar = progress::bar(None, "decoding");
    let mut on_frame = |done: u64, _: Option<u64>| bar.set_position(done);
    let summary = codeclab_codec::decode_to_y4m(input, output, &mut on_frame)
        .with_context(|| format!("decoding {}", args.input.display()))?;
    bar.finish_and_clear();
    eprintln!("{}", summary_line("decode", &summary));
    Ok(())
}
