//! Experiments: what to run (a codec spec on clips at rate points, with its provenance) and the
//! analysis of what was measured (RD curves per clip, BD-rates against anchors per clip and
//! averaged, for every quality metric).

use std::collections::BTreeMap;

use codeclab_metrics::bdrate::{self, ClipCurves, RdPoint};
use serde::{Deserialize, Serialize};

use crate::runner::QualityMetric;
use crate::spec::{CodecSpec, RatePoint};
use crate::store::StoredPoint;

/// An experiment as submitted (the JSON file of `codeclab experiment submit`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentSpec {
    /// The codec spec (see [`CodecSpec`]); kept as JSON so that a spec naming an unknown codec
    /// is recorded and fails as an experiment, with the parser's reason.
    pub codec: serde_json::Value,
    /// Experiments this one derives from.
    #[serde(default)]
    pub parents: Vec<i64>,
    /// Who proposed it: `user`, `baseline`, a planner's name.
    #[serde(default = "default_proposer")]
    pub proposer: String,
    /// What it is expected to show.
    #[serde(default)]
    pub hypothesis: String,
    /// Corpus clip ids.
    pub clips: Vec<String>,
    pub rate_points: Vec<RatePoint>,
    /// Anchor names to compare with (see [`crate::anchors::standard_anchors`]); empty: all.
    #[serde(default)]
    pub anchors: Vec<String>,
}

fn default_proposer() -> String {
    "user".into()
}

impl ExperimentSpec {
    /// The codec's short name, or what is wrong with its spec.
    pub fn codec_label(&self) -> String {
        match serde_json::from_value::<CodecSpec>(self.codec.clone()) {
            Ok(spec) => spec.label(),
            Err(_) => format!("invalid spec {}", self.codec),
        }
    }

    /// Problems that make the experiment impossible whatever the clips hold.
    pub fn check_shape(&self) -> Result<(), String> {
        if self.clips.is_empty() {
            return Err("the experiment names no clip".into());
        }
        if self.rate_points.is_empty() {
            return Err("the experiment names no rate point".into());
        }
        let mut seen = std::collections::BTreeSet::new();
        if let Some(clip) = self.clips.iter().find(|c| !seen.insert(c.as_str())) {
            return Err(format!("clip {clip} is named twice"));
        }
        Ok(())
    }
}

/// One anchor comparison on one metric.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BdComparison {
    pub anchor: String,
    pub metric: QualityMetric,
    /// `codeclab_metrics::bdrate::ClipSetReport` as JSON: per clip, then the mean; `None`
    /// when not measured (see `not_measured`).
    pub report: Option<serde_json::Value>,
    /// Why there is no report.
    pub not_measured: Option<String>,
}

/// The analysis of a completed experiment, stored once in `results`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    /// Per clip: the points in rate order of the spec's ladder.
    pub curves: BTreeMap<String, Vec<crate::runner::PointRecord>>,
    pub bd_rates: Vec<BdComparison>,
}

/// The RD points of a curve for one metric, `None` if any point lacks it.
pub fn rd_curve(
    points: &[crate::runner::PointRecord],
    metric: QualityMetric,
) -> Option<Vec<RdPoint>> {
    points
        .iter()
        .map(|p| {
            Some(RdPoint {
                rate: p.kbps,
                quality: p.quality(metric)?,
            })
        })
        .collect()
}

/// Groups stored points by clip.
pub fn curves(points: &[StoredPoint]) -> BTreeMap<String, Vec<crate::runner::PointRecord>> {
    let mut curves: BTreeMap<String, Vec<(i64, crate::runner::PointRecord)>> = BTreeMap::new();
    for point in points {
        curves
            .entry(point.clip_id.clone())
            .or_default()
            .push((point.rate_index, point.record.clone()));
    }
    curves
        .into_iter()
        .map(|(clip, mut points)| {
            points.sort_by_key(|(index, _)| *index);
            (clip, points.into_iter().map(|(_, p)| p).collect())
        })
        .collect()
}

/// Anchor curves by anchor name then clip; a missing clip means the anchor has no curve there,
/// with the reason.
pub type AnchorCurves =
    BTreeMap<String, BTreeMap<String, Result<Vec<crate::runner::PointRecord>, String>>>;

/// BD-rates of `test` against each anchor on each metric, per clip then averaged.
pub fn analyse(
    test: BTreeMap<String, Vec<crate::runner::PointRecord>>,
    anchors: &AnchorCurves,
) -> Analysis {
    let mut bd_rates = Vec::new();
    for (anchor, anchor_clips) in anchors {
        for metric in QualityMetric::ALL {
            let mut pairs: Vec<(String, Vec<RdPoint>, Vec<RdPoint>)> = Vec::new();
            let mut missing = None;
            for (clip, points) in &test {
                let anchor_points = match anchor_clips.get(clip) {
                    Some(Ok(points)) => points,
                    Some(Err(reason)) => {
                        missing = Some(format!("{anchor} on {clip}: {reason}"));
                        break;
                    }
                    None => {
                        missing = Some(format!(
                            "{anchor} has no curve on {clip} (run `codeclab baseline run`)"
                        ));
                        break;
                    }
                };
                match (rd_curve(anchor_points, metric), rd_curve(points, metric)) {
                    (Some(a), Some(t)) => pairs.push((clip.clone(), a, t)),
                    _ => {
                        missing = Some(format!("{} not measured on {clip}", metric.key()));
                        break;
                    }
                }
            }
            let (report, not_measured) = match missing {
                Some(reason) => (None, Some(reason)),
                None => {
                    let report =
                        bdrate::compare_clips(pairs.iter().map(|(clip, a, t)| ClipCurves {
                            clip,
                            anchor: a,
                            test: t,
                        }));
                    (serde_json::to_value(&report).ok(), None)
                }
            };
            bd_rates.push(BdComparison {
                anchor: anchor.clone(),
                metric,
                report,
                not_measured,
            });
        }
    }
    Analysis {
        curves: test,
        bd_rates,
    }
}
