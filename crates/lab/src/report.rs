//! The lab's report: where the lab stands, what it measured, how far the goals are, what it
//! spent, what went wrong, and what comes next. Built from the store alone, rendered as JSON
//! (the [`Report`] type is the schema) or Markdown, and stored as artifacts under `reports/`.

use std::collections::BTreeMap;

use codeclab_codec::Genome;
use serde::Serialize;

use crate::alerts;
use crate::artifacts::{ArtifactError, Artifacts};
use crate::budget::{self, BudgetState, cap_label, usage_figures, utc_timestamp};
use crate::config::LabConfig;
use crate::goals::{self, GoalProgress, ProgramScores};
use crate::runner::QualityMetric;
use crate::store::control::LabStatus;
use crate::store::programs::{ProgramRecord, ProgramRole};
use crate::store::usage::ExperimentCounts;
use crate::store::{Event, ExperimentState, Result, Store, now_ms};

/// Alerts a report lists at most.
const ALERTS_SHOWN: i64 = 10;
/// Pending programs a report lists at most.
const PENDING_SHOWN: usize = 10;

/// A report (its JSON form is this structure).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// RFC 3339 UTC.
    pub generated_at: String,
    pub generated_at_ms: i64,
    /// Experiment counts and alerts cover what ended since then (RFC 3339 UTC); `None`: all.
    pub since: Option<String>,
    /// The loop run the programs come from (the newest when none was asked for).
    pub run_id: Option<String>,
    pub status: LabStatus,
    pub experiments: ExperimentCounts,
    /// The run's best program (see [`goals::best_program`]).
    pub best: Option<ProgramSummary>,
    /// The run's reference (the shipped default codec), unless it is the best.
    pub reference: Option<ProgramSummary>,
    pub goals: Vec<GoalProgress>,
    /// Spend against caps (the effective budget: an admin's, or the configuration's).
    pub budget: BudgetState,
    /// Newest first.
    pub alerts: Vec<Event>,
    /// Webhook deliveries that failed, newest first.
    pub webhook_failures: Vec<Event>,
    pub next: NextSteps,
}

/// A program of the run and what it scored.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProgramSummary {
    pub experiment_id: i64,
    pub role: ProgramRole,
    pub planner: String,
    pub parent: Option<i64>,
    pub hypothesis: Option<String>,
    /// Lower is better: mean BD-rate against the run's reference, percent.
    pub fitness: Option<f64>,
    /// Its genome's parameters that differ from the shipped default.
    pub genome_changes: Vec<GenomeChange>,
    /// SEARCH/REPLACE edits to the codec's sources (0: the built-in codec).
    pub edits: usize,
    /// The dev scores; `None` when not measured.
    pub dev: Option<SetScores>,
    /// The holdout re-measurement; `None` when not measured.
    pub holdout: Option<SetScores>,
}

/// BD-rates against the run's reference on one clip set.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SetScores {
    /// The experiment that measured them.
    pub experiment_id: i64,
    pub metric: Option<QualityMetric>,
    /// Percent, per clip.
    pub per_clip: BTreeMap<String, f64>,
    pub mean: Option<f64>,
    pub decoder_instructions_per_pixel: Option<f64>,
    pub learned_mac_per_pixel: Option<f64>,
    pub encode_seconds: Option<f64>,
}

/// One genome parameter that differs from the default.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GenomeChange {
    pub name: String,
    pub default: serde_json::Value,
    pub value: serde_json::Value,
}

/// What the planner intends next.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct NextSteps {
    /// The newest planner turn.
    pub last_turn: Option<TurnSummary>,
    /// Programs submitted and not measured yet, newest first.
    pub pending: Vec<PendingProgram>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TurnSummary {
    pub planner: String,
    pub model: Option<String>,
    pub at: String,
    /// `proposed`, `rejected` or `error`.
    pub outcome: String,
    pub hypothesis: Option<String>,
    pub detail: Option<String>,
    pub experiment_id: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PendingProgram {
    pub experiment_id: i64,
    pub state: ExperimentState,
    pub parent: Option<i64>,
    pub hypothesis: String,
}

/// Why a report could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Artifacts(#[from] ArtifactError),
    #[error("serialising the report: {0}")]
    Json(#[from] serde_json::Error),
}

/// The genome's parameters that differ from the shipped default (a genome that is not a JSON
/// object shows as one change named `genome`).
pub fn genome_changes(genome: &serde_json::Value) -> Vec<GenomeChange> {
    let default = serde_json::to_value(Genome::default()).unwrap_or_default();
    match (genome.as_object(), default.as_object()) {
        (Some(genome), Some(default)) => genome
            .iter()
            .filter(|(name, value)| default.get(name.as_str()) != Some(value))
            .map(|(name, value)| GenomeChange {
                name: name.clone(),
                default: default
                    .get(name.as_str())
                    .cloned()
                    .unwrap_or(serde_json::Value::Null),
                value: value.clone(),
            })
            .collect(),
        _ => vec![GenomeChange {
            name: "genome".into(),
            default,
            value: genome.clone(),
        }],
    }
}

fn set_scores(program: &ProgramRecord) -> Option<SetScores> {
    let scores = ProgramScores::of(program).ok().flatten()?;
    let (per_clip, mean) = scores
        .vs_reference
        .map_or((BTreeMap::new(), None), |v| (v.per_clip, v.mean));
    Some(SetScores {
        experiment_id: program.experiment_id,
        metric: scores.metric,
        per_clip,
        mean,
        decoder_instructions_per_pixel: scores.decoder_instructions_per_pixel,
        learned_mac_per_pixel: scores.learned_mac_per_pixel,
        encode_seconds: scores.encode_seconds,
    })
}

async fn summary(
    store: &Store,
    programs: &[ProgramRecord],
    program: &ProgramRecord,
) -> Result<ProgramSummary> {
    let hypothesis = store
        .experiment(program.experiment_id)
        .await?
        .map(|e| e.spec.hypothesis)
        .filter(|h| !h.is_empty());
    Ok(ProgramSummary {
        experiment_id: program.experiment_id,
        role: program.role,
        planner: program.planner.clone(),
        parent: program.parent,
        hypothesis,
        fitness: program.fitness,
        genome_changes: genome_changes(&program.genome),
        edits: program.edits.as_array().map_or(0, Vec::len),
        dev: set_scores(program),
        holdout: goals::holdout_of(programs, program).and_then(set_scores),
    })
}

/// Builds the report at this moment: experiment counts and alerts since `since_ms` (all when
/// `None`), programs and goals of `run_id` (the newest run when `None`).
pub async fn build(
    store: &Store,
    config: &LabConfig,
    since_ms: Option<i64>,
    run_id: Option<&str>,
) -> Result<Report> {
    let now = now_ms();
    let budget = budget::effective(store, &config.budget).await?;
    let goal_list = goals::effective(store, &config.goals).await?;
    let (run_id, programs) = goals::run_programs(store, run_id).await?;
    let goals = goals::progress(store, &goal_list, run_id.as_deref()).await?;
    let best = goals::best_program(&programs);
    let reference = goals::reference(&programs)
        .filter(|r| best.is_none_or(|b| b.experiment_id != r.experiment_id));
    let best = match best {
        Some(program) => Some(summary(store, &programs, program).await?),
        None => None,
    };
    let reference = match reference {
        Some(program) => Some(summary(store, &programs, program).await?),
        None => None,
    };
    let recent = |events: Vec<Event>| -> Vec<Event> {
        events
            .into_iter()
            .filter(|e| since_ms.is_none_or(|since| e.created_at >= since))
            .collect()
    };
    let alerts = recent(
        store
            .events_of_kind(alerts::EVENT_PREFIX, ALERTS_SHOWN)
            .await?,
    );
    let webhook_failures = recent(
        store
            .events_of_kind(alerts::WEBHOOK_FAILED, ALERTS_SHOWN)
            .await?,
    );
    let last_turn = store.planner_log(1).await?.into_iter().next().map(|turn| {
        let entry = turn.entry;
        TurnSummary {
            planner: entry.planner,
            model: entry.model,
            at: utc_timestamp(turn.created_at),
            outcome: entry.outcome,
            hypothesis: entry.hypothesis,
            detail: entry.detail,
            experiment_id: entry.experiment_id,
        }
    });
    let mut pending = Vec::new();
    for program in programs
        .iter()
        .rev()
        .filter(|p| p.scores.is_none() && p.fitness.is_none())
    {
        if pending.len() == PENDING_SHOWN {
            break;
        }
        let Some(experiment) = store.experiment(program.experiment_id).await? else {
            continue;
        };
        if !experiment.state.is_final() {
            pending.push(PendingProgram {
                experiment_id: program.experiment_id,
                state: experiment.state,
                parent: program.parent,
                hypothesis: experiment.spec.hypothesis,
            });
        }
    }
    Ok(Report {
        generated_at: utc_timestamp(now),
        generated_at_ms: now,
        since: since_ms.map(utc_timestamp),
        run_id,
        status: store.lab_status().await?,
        experiments: store.experiment_counts(since_ms).await?,
        best,
        reference,
        goals,
        budget: budget::check(store, &budget, now).await?,
        alerts,
        webhook_failures,
        next: NextSteps { last_turn, pending },
    })
}

/// Stores the report as `reports/<UTC timestamp>.md` and `.json`; returns the two keys.
pub async fn store_report(
    artifacts: &Artifacts,
    report: &Report,
) -> std::result::Result<Vec<String>, ReportError> {
    let stamp: String = report
        .generated_at
        .chars()
        .filter(|c| !matches!(c, '-' | ':'))
        .collect();
    let markdown = format!("reports/{stamp}.md");
    let json = format!("reports/{stamp}.json");
    artifacts
        .put(&markdown, report.to_markdown().into_bytes())
        .await?;
    artifacts
        .put(&json, serde_json::to_vec_pretty(report)?)
        .await?;
    Ok(vec![markdown, json])
}

/// A Markdown table cell: no line breaks, pipes escaped.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
        .replace(['\n', '\r'], " ")
        .trim()
        .to_string()
}

fn percent(value: Option<f64>) -> String {
    value.map_or("not measured".into(), |v| format!("{v:+.2} %"))
}

fn state_name(status: &LabStatus) -> &'static str {
    match status.state {
        crate::store::control::RunState::Running => "running",
        crate::store::control::RunState::Paused => "paused",
        crate::store::control::RunState::Stopping => "stopping",
        crate::store::control::RunState::Stopped => "stopped",
    }
}

impl Report {
    /// The report as Markdown (tables for figures, one section per subject).
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        let mut line = |text: String| {
            out.push_str(&text);
            out.push('\n');
        };
        line(format!("# codeclab report, {}", self.generated_at));
        line(String::new());
        line(format!(
            "Run: {}. Counts and alerts since: {}.",
            self.run_id.as_deref().unwrap_or("none yet"),
            self.since.as_deref().unwrap_or("the start")
        ));
        line(String::new());

        line("## Status".into());
        line(String::new());
        let since = if self.status.since > 0 {
            format!(" since {}", utc_timestamp(self.status.since))
        } else {
            String::new()
        };
        line(format!(
            "**{}** (set by {}{}){}",
            state_name(&self.status),
            self.status.by,
            since,
            self.status
                .reason
                .as_deref()
                .map_or(String::new(), |r| format!(": {r}"))
        ));
        if let Some(blocked) = &self.budget.blocked {
            line(format!("\nBudget: {blocked}."));
        }
        line(String::new());

        line("## Experiments".into());
        line(String::new());
        line("| completed | failed | cancelled | running | queued |".into());
        line("|---:|---:|---:|---:|---:|".into());
        let e = &self.experiments;
        line(format!(
            "| {} | {} | {} | {} | {} |",
            e.completed, e.failed, e.cancelled, e.running, e.queued
        ));
        line(String::new());

        for (title, program) in [("Best program", &self.best), ("Reference", &self.reference)] {
            let Some(program) = program else {
                if title == "Best program" {
                    line(format!("## {title}\n\nNo program measured yet.\n"));
                }
                continue;
            };
            line(format!("## {title}"));
            line(String::new());
            program_markdown(program, &mut line);
        }

        line("## Goals".into());
        line(String::new());
        if self.goals.is_empty() {
            line("No goals are set.".into());
        } else {
            line("| goal | value | met | detail |".into());
            line("|---|---:|---|---|".into());
            for goal in &self.goals {
                line(format!(
                    "| {} | {} | {} | {} |",
                    cell(&goals::describe(&goal.goal)),
                    goal.value
                        .map_or("not measured".into(), |v| format!("{v:.2}")),
                    if goal.met { "yes" } else { "no" },
                    cell(&goal.detail)
                ));
            }
        }
        line(String::new());

        line("## Budget".into());
        line(String::new());
        if self.budget.usage.is_empty() {
            line("No caps are set.".into());
        } else {
            line("| cap | period | used | % | note |".into());
            line("|---|---|---|---:|---|".into());
            for usage in &self.budget.usage {
                line(format!(
                    "| {} | {} | {} | {:.0} % | {} |",
                    cap_label(&usage.name),
                    usage.period,
                    usage_figures(usage),
                    usage.fraction * 100.0,
                    cell(usage.note.as_deref().unwrap_or(""))
                ));
            }
        }
        line(String::new());
        let spend = &self.budget.spend;
        for (period, llm, hours) in [
            ("today (UTC)", &spend.llm_day, spend.compute_hours_day),
            ("this month", &spend.llm_month, spend.compute_hours_month),
        ] {
            line(format!(
                "- Spent {period}: LLM ${:.2} over {} planner turns ({} input, {} output tokens){}; \
                 compute {hours:.2} h (encode + decode).",
                llm.usd,
                llm.turns,
                llm.input_tokens,
                llm.output_tokens,
                llm.unpriced_note()
                    .map_or(String::new(), |note| format!("; {note}"))
            ));
        }
        line(format!(
            "- Planner experiments today: {}; LLM requests in the last minute: {}.",
            spend.planner_experiments_day, spend.llm_requests_last_minute
        ));
        if let Some(wait) = self.budget.wait {
            line(format!(
                "- The next proposal waits {:.0} s (rate limits).",
                wait.as_secs_f64().ceil()
            ));
        }
        line(String::new());

        line("## Alerts".into());
        line(String::new());
        if self.alerts.is_empty() {
            line("No alerts.".into());
        } else {
            line("| time | kind | experiment | message |".into());
            line("|---|---|---:|---|".into());
            for alert in &self.alerts {
                line(format!(
                    "| {} | {} | {} | {} |",
                    utc_timestamp(alert.created_at),
                    cell(
                        alert
                            .kind
                            .strip_prefix(alerts::EVENT_PREFIX)
                            .unwrap_or(&alert.kind)
                    ),
                    alert
                        .experiment_id
                        .map_or(String::new(), |id| id.to_string()),
                    cell(&alert.message)
                ));
            }
        }
        for failure in &self.webhook_failures {
            line(format!(
                "\n{}: {}",
                utc_timestamp(failure.created_at),
                cell(&failure.message)
            ));
        }
        line(String::new());

        line("## Next".into());
        line(String::new());
        match &self.next.last_turn {
            Some(turn) => line(format!(
                "Newest planner turn ({}{}, {}): {}{}{}.",
                turn.planner,
                turn.model
                    .as_deref()
                    .map_or(String::new(), |m| format!(" with {m}")),
                turn.at,
                turn.outcome,
                turn.hypothesis
                    .as_deref()
                    .map_or(String::new(), |h| format!(", hypothesis: {}", cell(h))),
                turn.detail
                    .as_deref()
                    .map_or(String::new(), |d| format!(" ({})", cell(d)))
            )),
            None => line("No planner turn yet.".into()),
        }
        line(String::new());
        if self.next.pending.is_empty() {
            line("No program is waiting to be measured.".into());
        } else {
            line("| experiment | state | parent | hypothesis |".into());
            line("|---:|---|---:|---|".into());
            for pending in &self.next.pending {
                line(format!(
                    "| {} | {} | {} | {} |",
                    pending.experiment_id,
                    pending.state.name(),
                    pending.parent.map_or(String::new(), |p| p.to_string()),
                    cell(&pending.hypothesis)
                ));
            }
        }
        out
    }
}

fn program_markdown(program: &ProgramSummary, line: &mut impl FnMut(String)) {
    line(format!(
        "Experiment {} ({}, by {}{}), fitness {}.",
        program.experiment_id,
        program.role.name(),
        program.planner,
        program
            .parent
            .map_or(String::new(), |p| format!(", parent {p}")),
        percent(program.fitness)
    ));
    if let Some(hypothesis) = &program.hypothesis {
        line(format!("\nHypothesis: {}", cell(hypothesis)));
    }
    line(String::new());
    for (set, scores) in [("dev", &program.dev), ("holdout", &program.holdout)] {
        let Some(scores) = scores else {
            line(format!("{set}: not measured yet.\n"));
            continue;
        };
        let metric = scores.metric.map_or("quality", QualityMetric::key);
        line(format!(
            "| {set} clip (experiment {}) | BD-rate vs reference ({metric}) |",
            scores.experiment_id
        ));
        line("|---|---:|".into());
        for (clip, value) in &scores.per_clip {
            line(format!("| {} | {} |", cell(clip), percent(Some(*value))));
        }
        line(format!("| **mean** | {} |", percent(scores.mean)));
        line(String::new());
        line(format!(
            "Decoder instructions per pixel: {}; learned multiply-accumulates per pixel: {}; \
             encode time: {}.",
            scores
                .decoder_instructions_per_pixel
                .map_or("not measured".into(), |v| format!("{v:.1}")),
            scores
                .learned_mac_per_pixel
                .map_or("not measured".into(), |v| format!("{v:.1}")),
            scores
                .encode_seconds
                .map_or("not measured".into(), |v| format!("{v:.2} s"))
        ));
        line(String::new());
    }
    if program.genome_changes.is_empty() {
        line("Genome: the shipped default.".into());
    } else {
        line("| genome parameter | default | value |".into());
        line("|---|---|---|".into());
        for change in &program.genome_changes {
            line(format!(
                "| {} | {} | {} |",
                cell(&change.name),
                cell(&change.default.to_string()),
                cell(&change.value.to_string())
            ));
        }
    }
    if program.edits > 0 {
        line(format!("\nSource edits: {}.", program.edits));
    }
    line(String::new());
}
