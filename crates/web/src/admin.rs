//! Admin actions. Each handler takes [`Admin`] first, so a request without the right token, or
//! from another site, is refused before its body is read; each action is recorded with
//! `record_admin_action` (actor, action, experiment, detail).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use codeclab_lab::anchors;
use codeclab_lab::budget;
use codeclab_lab::config::{BudgetConfig, Goal};
use codeclab_lab::goals;
use codeclab_lab::spec::CodecSpec;
use codeclab_lab::store::ExperimentState;
use codeclab_lab::store::control::{LabStatus, RunState};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::AppState;
use crate::auth::Admin;
use crate::data;
use crate::error::WebError;

/// The setting a promoted candidate is stored under.
pub const PROMOTED_SETTING: &str = "promoted_codec";

type Reply = Result<Json<serde_json::Value>, WebError>;

fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, WebError> {
    serde_json::from_slice(body).map_err(|e| WebError::BadRequest(format!("request body: {e}")))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ReasonBody {
    reason: Option<String>,
}

async fn set_status(state: &AppState, admin: &Admin, run: RunState, body: &Bytes) -> Reply {
    let reason = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        parse::<ReasonBody>(body)?.reason
    };
    let action = match run {
        RunState::Running => "resume",
        RunState::Paused => "pause",
        _ => "stop",
    };
    let reason = reason.unwrap_or_else(|| format!("{action} by {}", admin.by()));
    let status = LabStatus::new(run, Some(reason.clone()), admin.by());
    state.lab.store.set_lab_status(&status).await?;
    state
        .lab
        .store
        .record_admin_action(&admin.actor, action, None, &reason)
        .await?;
    Ok(Json(
        serde_json::json!({ "ok": true, "action": action, "status": status }),
    ))
}

pub async fn pause(State(state): State<AppState>, admin: Admin, body: Bytes) -> Reply {
    set_status(&state, &admin, RunState::Paused, &body).await
}

pub async fn resume(State(state): State<AppState>, admin: Admin, body: Bytes) -> Reply {
    set_status(&state, &admin, RunState::Running, &body).await
}

pub async fn stop(State(state): State<AppState>, admin: Admin, body: Bytes) -> Reply {
    set_status(&state, &admin, RunState::Stopping, &body).await
}

async fn existing(
    state: &AppState,
    id: i64,
) -> Result<codeclab_lab::store::ExperimentRecord, WebError> {
    state
        .lab
        .store
        .experiment(id)
        .await?
        .ok_or_else(|| WebError::NotFound(format!("experiment {id} does not exist")))
}

pub async fn rerun(State(state): State<AppState>, admin: Admin, Path(id): Path<i64>) -> Reply {
    existing(&state, id).await?;
    let submitted = state.lab.rerun(id).await?;
    state
        .lab
        .store
        .record_admin_action(
            &admin.actor,
            "rerun",
            Some(id),
            &format!("rerun as experiment {}", submitted.id),
        )
        .await?;
    Ok(Json(
        serde_json::json!({ "ok": true, "action": "rerun", "submitted": submitted }),
    ))
}

pub async fn cancel(State(state): State<AppState>, admin: Admin, Path(id): Path<i64>) -> Reply {
    existing(&state, id).await?;
    let reason = format!("cancelled by {}", admin.by());
    state.lab.store.cancel(id, &reason).await?;
    state
        .lab
        .store
        .record_admin_action(&admin.actor, "cancel", Some(id), &reason)
        .await?;
    Ok(Json(
        serde_json::json!({ "ok": true, "action": "cancel", "id": id }),
    ))
}

/// Makes an analysed experiment of the lab's codec the default codec: its full genome and its
/// source edits (empty for the built-in codec).
pub async fn promote(State(state): State<AppState>, admin: Admin, Path(id): Path<i64>) -> Reply {
    let record = existing(&state, id).await?;
    if record.state != ExperimentState::Analysed {
        return Err(WebError::Conflict(format!(
            "experiment {id} is {}: only an analysed experiment can be promoted",
            record.state
        )));
    }
    match serde_json::from_value::<CodecSpec>(record.spec.codec.clone()) {
        Ok(CodecSpec::Lab { .. } | CodecSpec::LabBinary { .. }) => {}
        _ => {
            return Err(WebError::Conflict(format!(
                "experiment {id} ran {}, not the lab's codec",
                record.spec.codec_label()
            )));
        }
    }
    let program = state.lab.store.program(id).await?;
    let genome = match &program {
        Some(p) => p.genome.clone(),
        None => data::full_genome(&record)
            .ok_or_else(|| WebError::Conflict(format!("experiment {id} has no valid genome")))?,
    };
    let edits = program
        .map(|p| p.edits)
        .unwrap_or_else(|| serde_json::json!([]));
    let value = serde_json::json!({ "experiment_id": id, "genome": genome, "edits": edits });
    state
        .lab
        .store
        .put_setting(PROMOTED_SETTING, &value)
        .await?;
    state
        .lab
        .store
        .record_admin_action(
            &admin.actor,
            "promote",
            Some(id),
            &format!("experiment {id} is the default codec"),
        )
        .await?;
    Ok(Json(
        serde_json::json!({ "ok": true, "action": "promote", "promoted": value }),
    ))
}

fn check_budget(budget: &BudgetConfig) -> Result<(), WebError> {
    let caps = [
        ("llm_usd_per_day", budget.llm_usd_per_day),
        ("llm_usd_per_month", budget.llm_usd_per_month),
        ("compute_hours_per_day", budget.compute_hours_per_day),
        ("compute_hours_per_month", budget.compute_hours_per_month),
        ("min_interval_seconds", budget.min_interval_seconds),
    ];
    for (name, value) in caps {
        if let Some(v) = value
            && !(v.is_finite() && v >= 0.0)
        {
            return Err(WebError::BadRequest(format!(
                "{name} must be a non-negative number, not {v}"
            )));
        }
    }
    for (model, price) in &budget.prices {
        let value = serde_json::to_value(price).unwrap_or_default();
        let bad = value
            .as_object()
            .into_iter()
            .flatten()
            .any(|(_, v)| v.as_f64().is_some_and(|p| !(p.is_finite() && p >= 0.0)));
        if bad {
            return Err(WebError::BadRequest(format!(
                "the prices of {model} must be non-negative numbers"
            )));
        }
    }
    Ok(())
}

/// Replaces the budget (a whole `BudgetConfig`, validated).
pub async fn set_budget(State(state): State<AppState>, admin: Admin, body: Bytes) -> Reply {
    let budget: BudgetConfig = parse(&body)?;
    check_budget(&budget)?;
    let value = serde_json::to_value(&budget).map_err(|e| WebError::Internal(e.to_string()))?;
    state.lab.store.put_setting(budget::SETTING, &value).await?;
    state
        .lab
        .store
        .record_admin_action(&admin.actor, "budget", None, &value.to_string())
        .await?;
    Ok(Json(
        serde_json::json!({ "ok": true, "action": "budget", "budget": value }),
    ))
}

fn check_goals(goals: &[Goal]) -> Result<(), WebError> {
    if goals.is_empty() {
        return Err(WebError::BadRequest("name at least one goal".into()));
    }
    for goal in goals {
        match goal {
            Goal::BdRate {
                anchor,
                sets,
                at_most,
                ..
            } => {
                if anchor != goals::REFERENCE_ANCHOR && anchors::anchor(anchor).is_none() {
                    return Err(WebError::BadRequest(format!(
                        "unknown anchor `{anchor}` (an anchor name or `{}`)",
                        goals::REFERENCE_ANCHOR
                    )));
                }
                if sets.is_empty() || sets.iter().any(|s| s != "dev" && s != "holdout") {
                    return Err(WebError::BadRequest(
                        "sets must name `dev`, `holdout` or both".into(),
                    ));
                }
                if !at_most.is_finite() {
                    return Err(WebError::BadRequest("at_most must be a number".into()));
                }
            }
            Goal::DecoderInstructionsPerPixel { at_most } => {
                if !(at_most.is_finite() && *at_most > 0.0) {
                    return Err(WebError::BadRequest(
                        "at_most must be a positive number".into(),
                    ));
                }
            }
            // 0 is a goal of its own here: no learned tool at all.
            Goal::LearnedMacPerPixel { at_most } => {
                if !(at_most.is_finite() && *at_most >= 0.0) {
                    return Err(WebError::BadRequest(
                        "at_most must be a number, 0 or more".into(),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Replaces the goals (a JSON list of goals, validated).
pub async fn set_goals(State(state): State<AppState>, admin: Admin, body: Bytes) -> Reply {
    let goals: Vec<Goal> = parse(&body)?;
    check_goals(&goals)?;
    let value = serde_json::to_value(&goals).map_err(|e| WebError::Internal(e.to_string()))?;
    state.lab.store.put_setting(goals::SETTING, &value).await?;
    state
        .lab
        .store
        .record_admin_action(&admin.actor, "goals", None, &value.to_string())
        .await?;
    Ok(Json(
        serde_json::json!({ "ok": true, "action": "goals", "goals": value }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoteBody {
    body: String,
    experiment_id: Option<i64>,
}

/// Adds a note on the lab or on an experiment.
pub async fn add_note(State(state): State<AppState>, admin: Admin, body: Bytes) -> Reply {
    let note: NoteBody = parse(&body)?;
    let text = note.body.trim();
    if text.is_empty() || text.chars().count() > 10_000 {
        return Err(WebError::BadRequest(
            "a note has 1 to 10,000 characters".into(),
        ));
    }
    if let Some(id) = note.experiment_id {
        existing(&state, id).await?;
    }
    let note_id = state
        .lab
        .store
        .add_note(note.experiment_id, &admin.actor, text)
        .await?;
    state
        .lab
        .store
        .record_admin_action(&admin.actor, "note", note.experiment_id, text)
        .await?;
    Ok(Json(
        serde_json::json!({ "ok": true, "action": "note", "note_id": note_id }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_and_goals_are_validated() {
        assert!(check_budget(&BudgetConfig::default()).is_ok());
        let negative = BudgetConfig {
            llm_usd_per_day: Some(-1.0),
            ..BudgetConfig::default()
        };
        assert!(check_budget(&negative).is_err());
        assert!(check_goals(&Goal::defaults()).is_ok());
        assert!(check_goals(&[]).is_err());
        let unknown = Goal::BdRate {
            anchor: "h266".into(),
            metric: codeclab_lab::runner::QualityMetric::PsnrY,
            sets: vec!["dev".into()],
            at_most: -5.0,
        };
        assert!(check_goals(&[unknown]).is_err());
        let bad_set = Goal::BdRate {
            anchor: "x265-medium".into(),
            metric: codeclab_lab::runner::QualityMetric::PsnrY,
            sets: vec!["train".into()],
            at_most: -5.0,
        };
        assert!(check_goals(&[bad_set]).is_err());
        // No learned tool at all is a bound of its own; below it, or not a number, is none.
        let mac = |at_most| check_goals(&[Goal::LearnedMacPerPixel { at_most }]);
        assert!(mac(0.0).is_ok() && mac(1296.0).is_ok());
        assert!(mac(-1.0).is_err() && mac(f64::NAN).is_err() && mac(f64::INFINITY).is_err());
    }
}
