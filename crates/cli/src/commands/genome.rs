//! `codeclab genome`: every gene of the lab codec's genome with its value, the values it may
//! take and what it does, so users and planners see what can be tuned.

use super::encode::load_genome;
use anyhow::Result;
use clap::Args;
use codeclab_codec::Preset;
use std::path::PathBuf;

#[derive(Args)]
pub struct GenomeArgs {
    /// A genome (JSON) to show instead of the default one.
    #[arg(long)]
    pub genome: Option<PathBuf>,
    /// Show a speed level's genome: faster, fast, medium (the default) or slow.
    #[arg(long)]
    pub preset: Option<Preset>,
    /// Print one JSON array of {"name", "value", "values", "meaning"}.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: GenomeArgs) -> Result<()> {
    let genes = load_genome(args.genome.as_deref(), args.preset)?.genes();
    if args.json {
        println!("{}", serde_json::to_string(&genes)?);
        return Ok(());
    }
    let width = |column: fn(&codeclab_codec::genome::Gene) -> String| {
        genes.iter().map(|g| column(g).len()).max().unwrap_or(0)
    };
    let name_width = width(|g| g.name.to_owned());
    let value_width = width(|g| g.value.to_string());
    let values_width = width(|g| g.values.clone());
    for gene in &genes {
        println!(
            "{:name_width$}  {:value_width$}  {:values_width$}  {}",
            gene.name,
            gene.value.to_string(),
            gene.values,
            gene.meaning
        );
    }
    Ok(())
}
