//! `codeclab bdrate ANCHOR TEST`: Bjøntegaard deltas between two rate–quality curves.

use anyhow::Context;
use clap::Args;
use codeclab_metrics::bdrate::{self, BdReport, CurveFile, CurveSource, LOW_OVERLAP};
use std::path::{Path, PathBuf};

const INPUT_HELP: &str = "\
Curve files:
  JSON  a file whose first non-blank character is '[': a list of objects with \"rate\" and
        \"quality\" (or \"psnr\"), e.g. [{\"rate\": 1358.2, \"psnr\": 34.85}, ...]; other fields
        are ignored.
  CSV   anything else: a header line, then one point per line, comma-separated, no quoting;
        blank lines and lines starting with '#' are skipped. The rate column is the one named
        rate, bitrate, bps, kbps or mbps (any case); the quality column is the only other
        column, or the one named by --quality, e.g.:
          kbps,psnr_y
          1358.24,34.851

Both curves must use the same rate unit and the same quality metric. Each needs at least 4
points, finite positive rates, and quality strictly increasing with rate; point order is free.

BD-rate is the mean rate difference at equal quality over the quality interval both curves
share (negative: the test needs fewer bits); BD-quality is the mean quality difference at equal
rate. The overlap is the shared quality interval over the anchor's quality range; under 75 %
a warning is logged and the result is flagged.";

#[derive(Args)]
#[command(after_long_help = INPUT_HELP)]
pub struct BdrateArgs {
    /// The reference curve (CSV or JSON; see --help).
    anchor: PathBuf,
    /// The curve compared against the anchor (CSV or JSON).
    test: PathBuf,
    /// Print one JSON object: pchip, akima, cubic (percent), bd_quality_pchip, overlap,
    /// low_overlap.
    #[arg(long)]
    json: bool,
    /// CSV column holding the quality, for CSV files with several columns besides the rate.
    #[arg(long, value_name = "COLUMN")]
    quality: Option<String>,
}

pub fn run(args: BdrateArgs) -> anyhow::Result<()> {
    let anchor = read_curve(&args.anchor, args.quality.as_deref())?;
    let test = read_curve(&args.test, args.quality.as_deref())?;
    warn_on_mismatched_columns(&anchor.source, &test.source);
    let report = bdrate::compare(&anchor.points, &test.points).with_context(|| {
        format!(
            "cannot compare {} against {}",
            args.test.display(),
            args.anchor.display()
        )
    })?;
    if report.low_overlap {
        tracing::warn!(
            overlap = report.overlap,
            "the curves share only {:.1} % of the anchor's quality range (under {:.0} %): the \
             deltas describe part of the curve only",
            100.0 * report.overlap,
            100.0 * LOW_OVERLAP
        );
    }
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_summary(&report);
    }
    Ok(())
}

fn read_curve(path: &Path, quality_column: Option<&str>) -> anyhow::Result<CurveFile> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    bdrate::parse_curve(&text, quality_column).with_context(|| {
        format!(
            "cannot read a curve from {} (formats: see --help)",
            path.display()
        )
    })
}

/// Different column names usually mean different units or metrics, which makes the deltas
/// meaningless; they may also just be spelled differently, so this warns rather than fails.
fn warn_on_mismatched_columns(anchor: &CurveSource, test: &CurveSource) {
    if let (
        CurveSource::Csv {
            rate_column: anchor_rate,
            quality_column: anchor_quality,
        },
        CurveSource::Csv {
            rate_column: test_rate,
            quality_column: test_quality,
        },
    ) = (anchor, test)
    {
        if !anchor_rate.eq_ignore_ascii_case(test_rate) {
            tracing::warn!(
                "rate columns differ ({anchor_rate} vs {test_rate}): both curves must use the same unit"
            );
        }
        if !anchor_quality.eq_ignore_ascii_case(test_quality) {
            tracing::warn!(
                "quality columns differ ({anchor_quality} vs {test_quality}): both curves must use \
                 the same metric"
            );
        }
    }
}

fn print_summary(report: &BdReport) {
    println!("BD-rate of the test against the anchor (negative: the test needs fewer bits)");
    println!("  PCHIP  {:+9.4} %", report.pchip);
    println!("  Akima  {:+9.4} %", report.akima);
    println!("  cubic  {:+9.4} %", report.cubic);
    match report.bd_quality_pchip {
        Some(delta) => println!("BD-quality (PCHIP): {delta:+.4}"),
        None => println!("BD-quality (PCHIP): not measured (the rate ranges do not overlap)"),
    }
    println!(
        "Overlap: {:.1} % of the anchor's quality range{}",
        100.0 * report.overlap,
        if report.low_overlap { " (low)" } else { "" }
    );
}
