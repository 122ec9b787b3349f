//! Reading a rate–quality curve from text: a JSON list of points or a CSV table.
//!
//! - **JSON**: text whose first non-blank character is `[`, a list of objects each with `rate`
//!   and `quality` (or `psnr`); other fields are ignored.
//! - **CSV** otherwise: comma-separated, no quoting; blank lines and lines starting with `#` are
//!   skipped; the first remaining line is the header. The rate column is the one named `rate`,
//!   `bitrate`, `bps`, `kbps` or `mbps` (any case; exactly one). The quality column is the one
//!   named by the caller or, when none is named, the only other column.

use super::RdPoint;
use thiserror::Error;

/// Header names recognised as the rate column.
const RATE_COLUMN_NAMES: [&str; 5] = ["rate", "bitrate", "bps", "kbps", "mbps"];

#[derive(Debug, Error)]
pub enum CurveFileError {
    #[error(
        "invalid JSON curve (expected a list of {{\"rate\": .., \"quality\": ..}} objects): {0}"
    )]
    Json(#[from] serde_json::Error),
    #[error("the CSV has no header line")]
    MissingHeader,
    #[error(
        "the CSV header has no rate column (one named rate, bitrate, bps, kbps or mbps); \
         columns: {columns}"
    )]
    NoRateColumn { columns: String },
    #[error("the CSV header has several rate columns: {columns}")]
    SeveralRateColumns { columns: String },
    #[error("the CSV header has no quality column besides the rate column {rate_column}")]
    NoQualityColumn { rate_column: String },
    #[error("the CSV has several possible quality columns ({columns}); name the one to use")]
    AmbiguousQualityColumn { columns: String },
    #[error("the CSV has no quality column named {name:?}; columns: {columns}")]
    UnknownQualityColumn { name: String, columns: String },
    #[error("line {line}: expected {expected} comma-separated fields, found {found}")]
    FieldCount {
        line: usize,
        expected: usize,
        found: usize,
    },
    #[error("line {line}: {value:?} in column {column} is not a number")]
    NotANumber {
        line: usize,
        column: String,
        value: String,
    },
    #[error("a quality column can only be chosen for a CSV curve, not a JSON one")]
    QualityColumnForJson,
}

/// A curve read from text, with where its numbers came from.
#[derive(Clone, Debug, PartialEq)]
pub struct CurveFile {
    pub points: Vec<RdPoint>,
    pub source: CurveSource,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CurveSource {
    Json,
    Csv {
        rate_column: String,
        quality_column: String,
    },
}

/// Parses a curve (format rules in the module documentation). `quality_column` picks the CSV
/// quality column by name, case-insensitively. Values are not validated here: that is the
/// BD computation's job, which names the faulty point.
pub fn parse_curve(text: &str, quality_column: Option<&str>) -> Result<CurveFile, CurveFileError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim_start().starts_with('[') {
        if quality_column.is_some() {
            return Err(CurveFileError::QualityColumnForJson);
        }
        return Ok(CurveFile {
            points: serde_json::from_str(text)?,
            source: CurveSource::Json,
        });
    }
    parse_csv(text, quality_column)
}

fn parse_csv(text: &str, quality_column: Option<&str>) -> Result<CurveFile, CurveFileError> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(index, line)| (index + 1, line.trim()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'));
    let (_, header) = lines.next().ok_or(CurveFileError::MissingHeader)?;
    let names: Vec<&str> = header.split(',').map(str::trim).collect();
    let all_columns = || names.join(", ");

    let rate_indices: Vec<usize> = (0..names.len())
        .filter(|&i| {
            RATE_COLUMN_NAMES
                .iter()
                .any(|known| names[i].eq_ignore_ascii_case(known))
        })
        .collect();
    let rate_index = match rate_indices.as_slice() {
        [] => {
            return Err(CurveFileError::NoRateColumn {
                columns: all_columns(),
            });
        }
        [index] => *index,
        several => {
            return Err(CurveFileError::SeveralRateColumns {
                columns: several
                    .iter()
                    .map(|&i| names[i])
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    };

    let others: Vec<usize> = (0..names.len()).filter(|&i| i != rate_index).collect();
    let quality_index = match quality_column {
        Some(wanted) => others
            .iter()
            .copied()
            .find(|&i| names[i].eq_ignore_ascii_case(wanted))
            .ok_or_else(|| CurveFileError::UnknownQualityColumn {
                name: wanted.to_owned(),
                columns: all_columns(),
            })?,
        None => match others.as_slice() {
            [] => {
                return Err(CurveFileError::NoQualityColumn {
                    rate_column: names[rate_index].to_owned(),
                });
            }
            [index] => *index,
            several => {
                return Err(CurveFileError::AmbiguousQualityColumn {
                    columns: several
                        .iter()
                        .map(|&i| names[i])
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        },
    };

    let mut points = Vec::new();
    for (line, row) in lines {
        let fields: Vec<&str> = row.split(',').map(str::trim).collect();
        if fields.len() != names.len() {
            return Err(CurveFileError::FieldCount {
                line,
                expected: names.len(),
                found: fields.len(),
            });
        }
        let number = |index: usize| {
            fields[index]
                .parse::<f64>()
                .map_err(|_| CurveFileError::NotANumber {
                    line,
                    column: names[index].to_owned(),
                    value: fields[index].to_owned(),
                })
        };
        points.push(RdPoint {
            rate: number(rate_index)?,
            quality: number(quality_index)?,
        });
    }
    Ok(CurveFile {
        points,
        source: CurveSource::Csv {
            rate_column: names[rate_index].to_owned(),
            quality_column: names[quality_index].to_owned(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(rate: f64, quality: f64) -> RdPoint {
        RdPoint { rate, quality }
    }

    #[test]
    fn reads_a_two_column_csv_with_comments_and_spaces() {
        let text = "# x264 medium\nkbps, psnr_y\n100, 30.5\n\n200 ,33\n";
        let curve = parse_curve(text, None).unwrap();
        assert_eq!(curve.points, vec![point(100.0, 30.5), point(200.0, 33.0)]);
        assert_eq!(
            curve.source,
            CurveSource::Csv {
                rate_column: "kbps".into(),
                quality_column: "psnr_y".into()
            }
        );
    }

    #[test]
    fn a_named_quality_column_resolves_a_wider_csv() {
        let text = "qp,Rate,psnr,vmaf\n32,100,30,70\n27,200,33,80\n";
        assert!(matches!(
            parse_curve(text, None),
            Err(CurveFileError::AmbiguousQualityColumn { .. })
        ));
        let curve = parse_curve(text, Some("VMAF")).unwrap();
        assert_eq!(curve.points, vec![point(100.0, 70.0), point(200.0, 80.0)]);
        assert!(matches!(
            parse_curve(text, Some("ssim")),
            Err(CurveFileError::UnknownQualityColumn { .. })
        ));
    }

    #[test]
    fn reads_json_with_quality_or_psnr() {
        let text = r#"[{"rate": 10, "quality": 30}, {"rate": 20, "psnr": 32.5, "qp": 22}]"#;
        let curve = parse_curve(text, None).unwrap();
        assert_eq!(curve.points, vec![point(10.0, 30.0), point(20.0, 32.5)]);
        assert_eq!(curve.source, CurveSource::Json);
        assert!(matches!(
            parse_curve(text, Some("psnr")),
            Err(CurveFileError::QualityColumnForJson)
        ));
    }

    #[test]
    fn malformed_input_is_rejected_with_its_location() {
        assert!(matches!(
            parse_curve("# only a comment\n", None),
            Err(CurveFileError::MissingHeader)
        ));
        assert!(matches!(
            parse_curve("size,psnr\n1,2\n", None),
            Err(CurveFileError::NoRateColumn { .. })
        ));
        assert!(matches!(
            parse_curve("rate,kbps,psnr\n", None),
            Err(CurveFileError::SeveralRateColumns { .. })
        ));
        assert!(matches!(
            parse_curve("rate\n1\n", None),
            Err(CurveFileError::NoQualityColumn { .. })
        ));
        assert!(matches!(
            parse_curve("rate,psnr\n1,2\n3\n", None),
            Err(CurveFileError::FieldCount {
                line: 3,
                expected: 2,
                found: 1
            })
        ));
        match parse_curve("rate,psnr\n1,2\n3,abc\n", None) {
            Err(CurveFileError::NotANumber {
                line,
                column,
                value,
            }) => {
                assert_eq!((line, column.as_str(), value.as_str()), (3, "psnr", "abc"));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            parse_curve(r#"[{"rate": 1}]"#, None),
            Err(CurveFileError::Json(_))
        ));
    }
}
