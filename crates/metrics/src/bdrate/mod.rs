//! Bjøntegaard deltas between two rate–quality curves.
//!
//! **BD-rate** is the average rate difference of a test curve against an anchor curve at equal
//! quality: ln(rate) is interpolated as a function of quality for each curve, both are integrated
//! over the quality interval the two curves share, and the mean log-rate difference `Δ` becomes
//! `100 · (e^Δ − 1)` percent. Negative means the test needs fewer bits. Three models of the curve:
//!
//! - [`Interpolation::Pchip`]: piecewise cubic Hermite, monotone (JCT-VC, AWCY; the reference),
//! - [`Interpolation::Akima`]: Akima's piecewise cubic,
//! - [`Interpolation::Cubic`]: one least-squares cubic polynomial (VCEG-M33).
//!
//! Each is integrated analytically, and the numbers agree with the `bjontegaard` Python package
//! (1.3.0) that `shared/bdrate/vectors.json` was produced with. **BD-quality** is the converse:
//! quality interpolated against ln(rate), averaged over the shared rate interval.
//!
//! Curves need at least [`MIN_POINTS`] points, finite positive rates and finite qualities, and,
//! once sorted by rate, quality must strictly increase with rate. Point order is free.
//!
//! The **overlap** reported is the length of the shared quality interval divided by the length of
//! the anchor's quality range: the fraction of the anchor's curve that the comparison covers. This
//! follows AWCY, whose reports measure a test against the anchor's range. (The `bjontegaard`
//! package divides by the union of both ranges instead, which gives a smaller figure.) Under
//! [`LOW_OVERLAP`] the report is flagged, since the delta then describes only part of the curve.
//!
//! Several clips are compared clip by clip, then averaged: see [`compare_clips`].

mod curve_file;
mod interpolate;

pub use curve_file::{CurveFile, CurveFileError, CurveSource, parse_curve};

use interpolate::FittedCurve;
use serde::{Deserialize, Serialize};
use std::fmt;
use thiserror::Error;

/// Fewest points a curve may have: the cubic model has four coefficients.
pub const MIN_POINTS: usize = 4;

/// Overlap fraction under which a comparison is flagged as covering too little of the anchor.
pub const LOW_OVERLAP: f64 = 0.75;

/// One operating point of a codec: a rate (any unit, the same for both curves) and a quality
/// (PSNR in dB, VMAF, SSIM, …: higher is better).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RdPoint {
    pub rate: f64,
    #[serde(alias = "psnr")]
    pub quality: f64,
}

/// How a curve is modelled between its points.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Interpolation {
    Pchip,
    Akima,
    Cubic,
}

impl Interpolation {
    pub const ALL: [Self; 3] = [Self::Pchip, Self::Akima, Self::Cubic];
}

impl fmt::Display for Interpolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pchip => "PCHIP",
            Self::Akima => "Akima",
            Self::Cubic => "cubic",
        })
    }
}

/// Which of the two curves an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Curve {
    Anchor,
    Test,
}

impl fmt::Display for Curve {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Anchor => "anchor",
            Self::Test => "test",
        })
    }
}

/// The axis along which two curves are compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Axis {
    Quality,
    Rate,
}

impl fmt::Display for Axis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Quality => "quality",
            Self::Rate => "rate",
        })
    }
}

/// Why a Bjøntegaard delta could not be computed. Point indices are positions in the input.
#[derive(Clone, Debug, PartialEq, Error, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BdRateError {
    #[error("the {curve} curve has {points} point(s); at least {MIN_POINTS} are needed")]
    TooFewPoints { curve: Curve, points: usize },
    #[error(
        "point {index} of the {curve} curve has rate {rate}; rates must be finite and positive"
    )]
    InvalidRate {
        curve: Curve,
        index: usize,
        rate: f64,
    },
    #[error("point {index} of the {curve} curve has quality {quality}; qualities must be finite")]
    NonFiniteQuality {
        curve: Curve,
        index: usize,
        quality: f64,
    },
    #[error(
        "the {curve} curve is not monotonic: (rate {lower_rate}, quality {lower_quality}) and \
         (rate {upper_rate}, quality {upper_quality}); sorted by rate, rate and quality must both \
         strictly increase"
    )]
    NonMonotonic {
        curve: Curve,
        lower_rate: f64,
        lower_quality: f64,
        upper_rate: f64,
        upper_quality: f64,
    },
    #[error(
        "the curves do not overlap in {axis}: anchor spans [{anchor_min}, {anchor_max}], test \
         spans [{test_min}, {test_max}]"
    )]
    NoOverlap {
        axis: Axis,
        anchor_min: f64,
        anchor_max: f64,
        test_min: f64,
        test_max: f64,
    },
    #[error("the {method} fit gave a non-finite result; the curves are too extreme to compare")]
    NonFiniteResult { method: Interpolation },
}

/// The comparison of a test curve against an anchor curve.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BdReport {
    /// BD-rate in percent with each curve model; negative: the test saves bits.
    pub pchip: f64,
    pub akima: f64,
    pub cubic: f64,
    /// Quality gained at equal rate (PCHIP), in the quality's unit; `None` when the two curves
    /// share no rate interval.
    pub bd_quality_pchip: Option<f64>,
    /// Shared quality interval over the anchor's quality range, in (0, 1].
    pub overlap: f64,
    /// `overlap` is under [`LOW_OVERLAP`].
    pub low_overlap: bool,
}

/// A curve that passed validation: sorted by rate, as (ln rate, quality) columns.
struct ValidCurve {
    log_rate: Vec<f64>,
    quality: Vec<f64>,
}

impl ValidCurve {
    fn new(curve: Curve, points: &[RdPoint]) -> Result<Self, BdRateError> {
        if points.len() < MIN_POINTS {
            return Err(BdRateError::TooFewPoints {
                curve,
                points: points.len(),
            });
        }
        for (index, point) in points.iter().enumerate() {
            if !(point.rate.is_finite() && point.rate > 0.0) {
                return Err(BdRateError::InvalidRate {
                    curve,
                    index,
                    rate: point.rate,
                });
            }
            if !point.quality.is_finite() {
                return Err(BdRateError::NonFiniteQuality {
                    curve,
                    index,
                    quality: point.quality,
                });
            }
        }
        let mut sorted = points.to_vec();
        sorted.sort_by(|a, b| a.rate.total_cmp(&b.rate));
        if let Some(pair) = sorted
            .windows(2)
            .find(|pair| !(pair[1].rate > pair[0].rate && pair[1].quality > pair[0].quality))
        {
            return Err(BdRateError::NonMonotonic {
                curve,
                lower_rate: pair[0].rate,
                lower_quality: pair[0].quality,
                upper_rate: pair[1].rate,
                upper_quality: pair[1].quality,
            });
        }
        Ok(Self {
            log_rate: sorted.iter().map(|p| p.rate.ln()).collect(),
            quality: sorted.iter().map(|p| p.quality).collect(),
        })
    }

    fn quality_range(&self) -> (f64, f64) {
        (self.quality[0], self.quality[self.quality.len() - 1])
    }

    fn log_rate_range(&self) -> (f64, f64) {
        (self.log_rate[0], self.log_rate[self.log_rate.len() - 1])
    }
}

/// The shared part of two `(min, max)` ranges, or the error naming both ranges when empty.
/// `to_reported` turns the values back into the user's units for the message.
fn shared_interval(
    axis: Axis,
    anchor: (f64, f64),
    test: (f64, f64),
    to_reported: impl Fn(f64) -> f64,
) -> Result<(f64, f64), BdRateError> {
    let low = anchor.0.max(test.0);
    let high = anchor.1.min(test.1);
    if high > low {
        Ok((low, high))
    } else {
        Err(BdRateError::NoOverlap {
            axis,
            anchor_min: to_reported(anchor.0),
            anchor_max: to_reported(anchor.1),
            test_min: to_reported(test.0),
            test_max: to_reported(test.1),
        })
    }
}

/// Mean of `test − anchor` over `[low, high]`, each curve being `y(x)` fitted with `method`.
fn mean_difference(
    method: Interpolation,
    (anchor_x, anchor_y): (&[f64], &[f64]),
    (test_x, test_y): (&[f64], &[f64]),
    (low, high): (f64, f64),
) -> f64 {
    let anchor = FittedCurve::fit(method, anchor_x, anchor_y).integrate(low, high);
    let test = FittedCurve::fit(method, test_x, test_y).integrate(low, high);
    (test - anchor) / (high - low)
}

fn finite(method: Interpolation, value: f64) -> Result<f64, BdRateError> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(BdRateError::NonFiniteResult { method })
    }
}

fn bd_rate_of_valid(
    anchor: &ValidCurve,
    test: &ValidCurve,
    interval: (f64, f64),
    method: Interpolation,
) -> Result<f64, BdRateError> {
    let mean_log_ratio = mean_difference(
        method,
        (&anchor.quality, &anchor.log_rate),
        (&test.quality, &test.log_rate),
        interval,
    );
    finite(method, 100.0 * mean_log_ratio.exp_m1())
}

fn bd_quality_of_valid(
    anchor: &ValidCurve,
    test: &ValidCurve,
    method: Interpolation,
) -> Result<f64, BdRateError> {
    let interval = shared_interval(
        Axis::Rate,
        anchor.log_rate_range(),
        test.log_rate_range(),
        f64::exp,
    )?;
    let delta = mean_difference(
        method,
        (&anchor.log_rate, &anchor.quality),
        (&test.log_rate, &test.quality),
        interval,
    );
    finite(method, delta)
}

/// BD-rate of `test` against `anchor` in percent with one curve model.
pub fn bd_rate(
    anchor: &[RdPoint],
    test: &[RdPoint],
    method: Interpolation,
) -> Result<f64, BdRateError> {
    let anchor = ValidCurve::new(Curve::Anchor, anchor)?;
    let test = ValidCurve::new(Curve::Test, test)?;
    let interval = shared_interval(
        Axis::Quality,
        anchor.quality_range(),
        test.quality_range(),
        |q| q,
    )?;
    bd_rate_of_valid(&anchor, &test, interval, method)
}

/// BD-quality of `test` against `anchor`: the mean quality difference at equal rate, over the
/// rate interval both curves span.
pub fn bd_quality(
    anchor: &[RdPoint],
    test: &[RdPoint],
    method: Interpolation,
) -> Result<f64, BdRateError> {
    let anchor = ValidCurve::new(Curve::Anchor, anchor)?;
    let test = ValidCurve::new(Curve::Test, test)?;
    bd_quality_of_valid(&anchor, &test, method)
}

/// The full comparison: BD-rate with every model, BD-quality (PCHIP) and the overlap.
pub fn compare(anchor: &[RdPoint], test: &[RdPoint]) -> Result<BdReport, BdRateError> {
    let anchor = ValidCurve::new(Curve::Anchor, anchor)?;
    let test = ValidCurve::new(Curve::Test, test)?;
    let anchor_range = anchor.quality_range();
    let interval = shared_interval(Axis::Quality, anchor_range, test.quality_range(), |q| q)?;
    let overlap = (interval.1 - interval.0) / (anchor_range.1 - anchor_range.0);
    let bd_quality_pchip = match bd_quality_of_valid(&anchor, &test, Interpolation::Pchip) {
        Ok(delta) => Some(delta),
        Err(BdRateError::NoOverlap { .. }) => None,
        Err(other) => return Err(other),
    };
    Ok(BdReport {
        pchip: bd_rate_of_valid(&anchor, &test, interval, Interpolation::Pchip)?,
        akima: bd_rate_of_valid(&anchor, &test, interval, Interpolation::Akima)?,
        cubic: bd_rate_of_valid(&anchor, &test, interval, Interpolation::Cubic)?,
        bd_quality_pchip,
        overlap,
        low_overlap: overlap < LOW_OVERLAP,
    })
}

/// The anchor and test curves of one clip.
#[derive(Clone, Copy, Debug)]
pub struct ClipCurves<'a> {
    pub clip: &'a str,
    pub anchor: &'a [RdPoint],
    pub test: &'a [RdPoint],
}

/// One clip's comparison, or why it failed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClipBdRate {
    pub clip: String,
    #[serde(flatten)]
    pub outcome: ClipOutcome,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClipOutcome {
    Report(BdReport),
    Error(BdRateError),
}

/// Arithmetic means over clips of the per-clip figures.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct BdMean {
    pub pchip: f64,
    pub akima: f64,
    pub cubic: f64,
    /// `None` when any clip has no BD-quality.
    pub bd_quality_pchip: Option<f64>,
    /// Clips in the mean (all of them).
    pub clips: usize,
    /// Clips flagged for low overlap.
    pub low_overlap_clips: usize,
}

/// Per-clip results, in input order, and their mean.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClipSetReport {
    pub clips: Vec<ClipBdRate>,
    /// `None` when there are no clips or any clip failed: a mean over the clips that happened to
    /// succeed would silently score a subset.
    pub mean: Option<BdMean>,
}

impl ClipSetReport {
    /// The clips whose comparison failed, with the reason.
    pub fn failures(&self) -> impl Iterator<Item = (&str, &BdRateError)> {
        self.clips.iter().filter_map(|clip| match &clip.outcome {
            ClipOutcome::Error(error) => Some((clip.clip.as_str(), error)),
            ClipOutcome::Report(_) => None,
        })
    }
}

/// Compares each clip on its own, then averages the per-clip BD-rates (the rule "per clip first,
/// then the mean over clips"; averaging curves first would let one clip's rates dominate).
pub fn compare_clips<'a>(clips: impl IntoIterator<Item = ClipCurves<'a>>) -> ClipSetReport {
    let clips: Vec<ClipBdRate> = clips
        .into_iter()
        .map(|curves| ClipBdRate {
            clip: curves.clip.to_owned(),
            outcome: match compare(curves.anchor, curves.test) {
                Ok(report) => ClipOutcome::Report(report),
                Err(error) => ClipOutcome::Error(error),
            },
        })
        .collect();
    let reports: Option<Vec<&BdReport>> = clips
        .iter()
        .map(|clip| match &clip.outcome {
            ClipOutcome::Report(report) => Some(report),
            ClipOutcome::Error(_) => None,
        })
        .collect();
    let mean = reports
        .filter(|reports| !reports.is_empty())
        .map(|reports| {
            let count = reports.len() as f64;
            let mean_of = |field: fn(&BdReport) -> f64| -> f64 {
                reports.iter().map(|r| field(r)).sum::<f64>() / count
            };
            let bd_quality: Option<Vec<f64>> = reports.iter().map(|r| r.bd_quality_pchip).collect();
            BdMean {
                pchip: mean_of(|r| r.pchip),
                akima: mean_of(|r| r.akima),
                cubic: mean_of(|r| r.cubic),
                bd_quality_pchip: bd_quality.map(|values| values.iter().sum::<f64>() / count),
                clips: reports.len(),
                low_overlap_clips: reports.iter().filter(|r| r.low_overlap).count(),
            }
        });
    ClipSetReport { clips, mean }
}
