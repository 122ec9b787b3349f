//! `codeclab report`: the lab's report (status, experiments, best program, goals, spend,
//! alerts, next steps) as Markdown or JSON, from its store alone.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};
use codeclab_lab::budget::parse_rfc3339;
use codeclab_lab::config::LabConfig;
use codeclab_lab::report;
use codeclab_lab::store::now_ms;

use super::run::{LabArgs, runtime};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Md,
    Json,
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    #[command(flatten)]
    pub lab: LabArgs,
    /// Lab configuration (TOML: budget, goals); default: DATA_DIR/codeclab.toml (a missing file
    /// is the default configuration). An admin's budget and goals in the store take precedence.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Count experiments and alerts since T: RFC 3339 (2026-11-21T08:00:00Z) or an age (90m,
    /// 24h, 7d); default: all.
    #[arg(long, value_name = "T", value_parser = parse_since)]
    pub since: Option<i64>,
    #[arg(long, value_enum, default_value_t = ReportFormat::Md)]
    pub format: ReportFormat,
    /// The loop run whose programs and goals are shown; default: the newest.
    #[arg(long, value_name = "RUN")]
    pub run: Option<String>,
    /// Also store the report as artifacts (reports/<UTC timestamp>.md and .json); their keys
    /// go to stderr.
    #[arg(long)]
    pub save: bool,
}

/// An RFC 3339 time or an age before now (`45s`, `90m`, `24h`, `7d`, `2w`), as Unix ms.
fn parse_since(text: &str) -> Result<i64, String> {
    if let Some(ms) = parse_rfc3339(text) {
        return Ok(ms);
    }
    let invalid = || {
        format!(
            "`{text}` is neither an RFC 3339 time (2026-11-21T08:00:00Z) nor an age (90m, 24h, 7d)"
        )
    };
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(invalid)?;
    let (number, unit) = text.split_at(split);
    let count: i64 = number.parse().map_err(|_| invalid())?;
    let unit_ms: i64 = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 604_800_000,
        _ => return Err(invalid()),
    };
    let age = count.checked_mul(unit_ms).ok_or_else(invalid)?;
    Ok(now_ms().saturating_sub(age))
}

pub fn run(args: ReportArgs) -> anyhow::Result<()> {
    let config_path = args
        .config
        .clone()
        .unwrap_or_else(|| args.lab.data_dir.join("codeclab.toml"));
    let config = LabConfig::load(&config_path)?;
    runtime()?.block_on(async move {
        let lab = args.lab.open().await?;
        let report = report::build(&lab.store, &config, args.since, args.run.as_deref())
            .await
            .context("building the report")?;
        match args.format {
            ReportFormat::Md => print!("{}", report.to_markdown()),
            ReportFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        }
        if args.save {
            let keys = report::store_report(&lab.artifacts, &report)
                .await
                .context("storing the report")?;
            for key in keys {
                eprintln!("stored {key}");
            }
        }
        lab.store.close().await;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_a_time_or_an_age() {
        assert_eq!(parse_since("2026-11-21T08:00:00Z"), Ok(1_795_248_000_000));
        let before = now_ms();
        let day_ago = parse_since("24h").unwrap();
        assert!((before - 86_400_000..=now_ms() - 86_400_000).contains(&day_ago));
        assert!(parse_since("90m").unwrap() > parse_since("2h").unwrap());
        for bad in [
            "",
            "h",
            "24",
            "24 h",
            "1y",
            "-3d",
            "yesterday",
            "99999999999999999999d",
        ] {
            let error = parse_since(bad).unwrap_err();
            assert!(error.contains("neither an RFC 3339 time"), "{bad}: {error}");
        }
    }
}
