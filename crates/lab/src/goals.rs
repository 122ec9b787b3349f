//! Goals: how far the run's best program is from each target, read from what the loop stored
//! (program scores against the run's reference, experiment analyses against anchors).
//!
//! The best program is the `Candidate` with the lowest fitness, or the run's reference when no
//! candidate beats it. Its holdout figures come from the `Holdout` program that re-measured it
//! (`parent` = its experiment). What was not measured is `None` and says so.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::Goal;
use crate::experiment::Analysis;
use crate::runner::QualityMetric;
use crate::store::programs::{ProgramRecord, ProgramRole};
use crate::store::{Result, Store, StoreError};

/// The setting an admin's goals are stored under (a JSON list of [`Goal`]).
pub const SETTING: &str = "goals";

/// The anchor name that means "the run's reference" (the shipped default codec).
pub const REFERENCE_ANCHOR: &str = "default";

const NOT_MEASURED: &str = "not measured yet";

/// The configured goals, or the ones an admin set (setting [`SETTING`]).
pub async fn effective(store: &Store, goals: &[Goal]) -> Result<Vec<Goal>> {
    match store.setting(SETTING).await? {
        Some(value) => serde_json::from_value(value).map_err(|e| StoreError::Corrupt {
            what: format!("setting {SETTING}"),
            message: e.to_string(),
        }),
        None => Ok(goals.to_vec()),
    }
}

/// A program's scores as the loop writes them (`programs.scores`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProgramScores {
    /// The quality metric of `vs_reference`.
    pub metric: Option<QualityMetric>,
    /// BD-rate in percent against the run's reference measured on the same clips.
    pub vs_reference: Option<VsReference>,
    pub clips: Vec<String>,
    pub decoder_instructions_per_pixel: Option<f64>,
    pub learned_mac_per_pixel: Option<f64>,
    pub encode_seconds: Option<f64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VsReference {
    pub per_clip: BTreeMap<String, f64>,
    pub mean: Option<f64>,
}

impl ProgramScores {
    /// The scores of a program; `Ok(None)` when not measured, `Err` with the parser's message
    /// when the stored scores have another shape.
    pub fn of(program: &ProgramRecord) -> std::result::Result<Option<ProgramScores>, String> {
        program
            .scores
            .as_ref()
            .map(|value| serde_json::from_value(value.clone()).map_err(|e| e.to_string()))
            .transpose()
    }
}

/// How far one goal is.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GoalProgress {
    pub goal: Goal,
    /// The figure compared with the goal's bound: for several clip sets, the worst of them;
    /// `None` unless every set is measured.
    pub value: Option<f64>,
    pub met: bool,
    /// The figure of each set and where it comes from, or why it is missing.
    pub detail: String,
}

/// Every goal is met (false when there are none: a lab without goals never stops on them).
pub fn all_met(progress: &[GoalProgress]) -> bool {
    !progress.is_empty() && progress.iter().all(|p| p.met)
}

/// A goal in words.
pub fn describe(goal: &Goal) -> String {
    match goal {
        Goal::BdRate {
            anchor,
            metric,
            sets,
            at_most,
        } => {
            let anchor = if anchor == REFERENCE_ANCHOR {
                "the reference"
            } else {
                anchor
            };
            format!(
                "mean BD-rate ({}) vs {anchor} on {} at most {at_most} %",
                metric.key(),
                sets.join(" and ")
            )
        }
        Goal::DecoderInstructionsPerPixel { at_most } => {
            format!("decoder instructions per pixel at most {at_most}")
        }
        Goal::LearnedMacPerPixel { at_most } => {
            format!("learned multiply-accumulates per pixel at most {at_most}")
        }
    }
}

/// The programs of `run_id`, or of the newest run when `None` (fitness is relative to a run's
/// reference, so runs are never mixed). Returns the run's id too.
pub async fn run_programs(
    store: &Store,
    run_id: Option<&str>,
) -> Result<(Option<String>, Vec<ProgramRecord>)> {
    let Some(run) = chosen_run(store, run_id).await? else {
        return Ok((None, Vec::new()));
    };
    let programs = store.programs(Some(&run)).await?;
    Ok((Some(run), programs))
}

/// The few programs of `run_id` (the newest run when `None`) that [`best_program`] and
/// [`holdout_of`] choose from: they choose the same from these as from all the run's programs.
pub async fn run_leaders(
    store: &Store,
    run_id: Option<&str>,
) -> Result<(Option<String>, Vec<ProgramRecord>)> {
    let Some(run) = chosen_run(store, run_id).await? else {
        return Ok((None, Vec::new()));
    };
    let programs = store.run_leaders(&run).await?;
    Ok((Some(run), programs))
}

async fn chosen_run(store: &Store, run_id: Option<&str>) -> Result<Option<String>> {
    Ok(match run_id {
        Some(run) => Some(run.to_string()),
        None => store.newest_program_run().await?,
    })
}

/// The newest reference of the run.
pub fn reference(programs: &[ProgramRecord]) -> Option<&ProgramRecord> {
    programs
        .iter()
        .filter(|p| p.role == ProgramRole::Reference)
        .max_by_key(|p| p.experiment_id)
}

/// The candidate with the lowest fitness (the first one on a tie), or the reference when none
/// beats it (its fitness, or 0 % against itself when not stored).
pub fn best_program(programs: &[ProgramRecord]) -> Option<&ProgramRecord> {
    let candidate = programs
        .iter()
        .filter(|p| p.role == ProgramRole::Candidate)
        .filter_map(|p| p.fitness.filter(|f| f.is_finite()).map(|f| (p, f)))
        .min_by(|a, b| a.1.total_cmp(&b.1));
    match (candidate, reference(programs)) {
        (Some((candidate, fitness)), Some(reference)) => {
            if fitness < reference.fitness.unwrap_or(0.0) {
                Some(candidate)
            } else {
                Some(reference)
            }
        }
        (Some((candidate, _)), None) => Some(candidate),
        (None, reference) => reference,
    }
}

/// The newest holdout re-measurement of `program` that has scores (or, failing that, the newest
/// one at all).
pub fn holdout_of<'a>(
    programs: &'a [ProgramRecord],
    program: &ProgramRecord,
) -> Option<&'a ProgramRecord> {
    let holdouts: Vec<&ProgramRecord> = programs
        .iter()
        .filter(|p| p.role == ProgramRole::Holdout && p.parent == Some(program.experiment_id))
        .collect();
    holdouts
        .iter()
        .rev()
        .find(|p| p.scores.is_some())
        .or_else(|| holdouts.last())
        .copied()
}

/// Progress of each goal for the best program of `run_id` (the newest run when `None`).
pub async fn progress(
    store: &Store,
    goals: &[Goal],
    run_id: Option<&str>,
) -> Result<Vec<GoalProgress>> {
    let (_, programs) = run_leaders(store, run_id).await?;
    let best = best_program(&programs);
    let mut progress = Vec::with_capacity(goals.len());
    for goal in goals {
        progress.push(match best {
            None => GoalProgress {
                goal: goal.clone(),
                value: None,
                met: false,
                detail: format!("{NOT_MEASURED}: the run has no program"),
            },
            Some(best) => goal_progress(store, &programs, best, goal).await?,
        });
    }
    Ok(progress)
}

async fn goal_progress(
    store: &Store,
    programs: &[ProgramRecord],
    best: &ProgramRecord,
    goal: &Goal,
) -> Result<GoalProgress> {
    let of_best = format!("{} {}", best.role.name(), best.experiment_id);
    // A figure of the best program's scores, held to `at_most`.
    let capped = |figure: fn(&ProgramScores) -> Option<f64>, unit: &str, at_most: f64| {
        let (value, detail) = match ProgramScores::of(best) {
            Ok(Some(scores)) => match figure(&scores) {
                Some(value) => (Some(value), format!("{value:.1} {unit} ({of_best})")),
                None => (None, format!("{NOT_MEASURED} ({of_best})")),
            },
            Ok(None) => (None, format!("{NOT_MEASURED} ({of_best})")),
            Err(e) => (None, format!("{of_best}: unreadable scores: {e}")),
        };
        GoalProgress {
            goal: goal.clone(),
            met: value.is_some_and(|v| v <= at_most),
            value,
            detail,
        }
    };
    match goal {
        Goal::DecoderInstructionsPerPixel { at_most } => Ok(capped(
            |s| s.decoder_instructions_per_pixel,
            "instructions per pixel",
            *at_most,
        )),
        Goal::LearnedMacPerPixel { at_most } => Ok(capped(
            |s| s.learned_mac_per_pixel,
            "multiply-accumulates per pixel",
            *at_most,
        )),
        Goal::BdRate {
            anchor,
            metric,
            sets,
            at_most,
        } => {
            let mut values = Vec::new();
            let mut details = Vec::new();
            for set in sets {
                let (value, detail) =
                    set_bd_rate(store, programs, best, anchor, *metric, set).await?;
                details.push(format!("{set}: {detail}"));
                values.push(value);
            }
            let value = if values.is_empty() {
                None
            } else {
                values
                    .iter()
                    .copied()
                    .collect::<Option<Vec<f64>>>()
                    .map(|v| v.into_iter().fold(f64::NEG_INFINITY, f64::max))
            };
            Ok(GoalProgress {
                goal: goal.clone(),
                met: value.is_some_and(|v| v <= *at_most),
                value,
                detail: if details.is_empty() {
                    "the goal names no clip set".into()
                } else {
                    details.join("; ")
                },
            })
        }
    }
}

/// The mean BD-rate of `best` on one clip set against `anchor`, with where it comes from.
async fn set_bd_rate(
    store: &Store,
    programs: &[ProgramRecord],
    best: &ProgramRecord,
    anchor: &str,
    metric: QualityMetric,
    set: &str,
) -> Result<(Option<f64>, String)> {
    let program = match set {
        "dev" => best,
        "holdout" => match holdout_of(programs, best) {
            Some(holdout) => holdout,
            None => return Ok((None, NOT_MEASURED.into())),
        },
        other => return Ok((None, format!("unknown clip set `{other}`"))),
    };
    let source = format!("{} {}", program.role.name(), program.experiment_id);
    if anchor == REFERENCE_ANCHOR {
        return Ok(match ProgramScores::of(program) {
            Ok(Some(scores)) => match (scores.metric, scores.vs_reference) {
                (Some(measured), _) if measured != metric => (
                    None,
                    format!(
                        "the run compares {} with the reference, not {}",
                        measured.key(),
                        metric.key()
                    ),
                ),
                (
                    _,
                    Some(VsReference {
                        mean: Some(mean), ..
                    }),
                ) => (Some(mean), format!("{mean:.2} % ({source})")),
                _ => (None, format!("{NOT_MEASURED} ({source})")),
            },
            Ok(None) => (None, format!("{NOT_MEASURED} ({source})")),
            Err(e) => (None, format!("{source}: unreadable scores: {e}")),
        });
    }
    let Some(analysis) = store.analysis(program.experiment_id).await? else {
        return Ok((None, format!("{NOT_MEASURED} ({source})")));
    };
    let analysis: Analysis = match serde_json::from_value(analysis) {
        Ok(analysis) => analysis,
        Err(e) => return Ok((None, format!("{source}: unreadable analysis: {e}"))),
    };
    let Some(comparison) = analysis
        .bd_rates
        .iter()
        .find(|c| c.anchor == anchor && c.metric == metric)
    else {
        return Ok((
            None,
            format!(
                "{source} was not compared with {anchor} on {}",
                metric.key()
            ),
        ));
    };
    Ok(match (&comparison.report, &comparison.not_measured) {
        (Some(report), _) => match report["mean"]["pchip"].as_f64() {
            Some(mean) => (Some(mean), format!("{mean:.2} % ({source})")),
            None => {
                let failed: Vec<String> = report["clips"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|clip| !clip["error"].is_null())
                    .map(|clip| clip["clip"].as_str().unwrap_or("?").to_string())
                    .collect();
                (
                    None,
                    format!(
                        "no mean BD-rate ({source}): failed on {}",
                        if failed.is_empty() {
                            "every clip".to_string()
                        } else {
                            failed.join(", ")
                        }
                    ),
                )
            }
        },
        (None, Some(reason)) => (None, format!("not measured ({source}): {reason}")),
        (None, None) => (None, format!("{NOT_MEASURED} ({source})")),
    })
}
