//! The planner loop: asks a planner for programs, measures them as experiments, scores them
//! against the run's reference, and validates the best on the holdout clips.
//!
//! A run measures, in order:
//! 1. the **reference**: the shipped default genome (or the promoted codec) on the dev clips,
//!    the yardstick every program's fitness is measured against, in the same run;
//! 2. **candidates**, in batches of `parallel`: the planner sees every result of the previous
//!    batch before it proposes the next, so that the same seed and the same results make the
//!    same proposals whatever the timing;
//! 3. **holdout validation**: the reference and the best candidate re-measured on the holdout
//!    clips, which no planner ever sees.
//!
//! Code candidates (proposals with edits) are built offline and pass a sandboxed smoke test
//! before their dev experiment; build errors and rejections go back to the planner.
//! The run's state lives in the store (programs, planner log, the `planner_run` setting), so a
//! restarted loop resumes where it stopped.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use codeclab_codec::Genome;
use codeclab_metrics::bdrate::{self, ClipCurves, RdPoint};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::{Features, Feedback, Outcome, Planner, PlannerView, Program, Proposal, Turn};
use crate::alerts::Alerter;
use crate::candidate::{Candidates, Edit, SmokeSpec};
use crate::config::LabConfig;
use crate::experiment::{ExperimentSpec, rd_curve};
use crate::runner::{PointRecord, QualityMetric};
use crate::spec::RatePoint;
use crate::store::control::{LabStatus, RunState};
use crate::store::programs::{ProgramRecord, ProgramRole};
use crate::store::{ExperimentState, PlannerLogEntry, now_ms};
use crate::{Lab, LabError};
use crate::{budget, goals, report};

/// The setting that names the run in progress.
const RUN_SETTING: &str = "planner_run";
/// Failures and rejections shown to the planner.
const FEEDBACK_LIMIT: usize = 12;

/// How a run goes.
#[derive(Clone, Debug)]
pub struct LoopOptions {
    /// Experiments the run may submit in all (reference, candidates, holdout validation);
    /// `None`: until the goals are met or the loop is stopped.
    pub max_experiments: Option<u64>,
    /// Candidates measured at once.
    pub parallel: usize,
    /// Builds code candidates; without it, proposals with edits are rejected.
    pub candidates: Option<Arc<Candidates>>,
    /// Where built candidate binaries are kept (one per experiment).
    pub binaries_dir: PathBuf,
    /// How often the loop looks at the store.
    pub poll: Duration,
}

/// The run recorded in the store.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub run_id: String,
    pub planner: String,
    pub started_at: i64,
    pub max_experiments: Option<u64>,
    pub finished: bool,
    pub stop_reason: Option<String>,
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LoopSummary {
    pub run_id: String,
    /// When the run started (Unix ms; a resumed run keeps its start).
    pub started_at: i64,
    pub experiments: u64,
    pub measured: u64,
    pub failed: u64,
    pub rejected: u64,
    /// The best candidate's experiment and its mean BD-rate against the reference on the dev
    /// clips (percent); `None` when no candidate beat the reference.
    pub best: Option<(i64, f64)>,
    /// The best candidate's encode CPU time over the reference's, on the dev clips.
    pub best_encode_time_ratio: Option<f64>,
    /// The best candidate whose encoder effort is no more than the reference's (a gain that
    /// costs no encoding time), with its fitness.
    pub best_at_reference_effort: Option<(i64, f64)>,
    /// The best candidate's BD-rate against the reference on the holdout clips, when measured.
    pub holdout: Option<HoldoutResult>,
    pub stop_reason: String,
    /// The latest report's artifact keys (Markdown and JSON).
    pub report_keys: Vec<String>,
}

/// The best candidate re-measured on the holdout clips.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HoldoutResult {
    pub candidate: i64,
    pub candidate_experiment: i64,
    pub reference_experiment: i64,
    pub per_clip: BTreeMap<String, f64>,
    pub mean: f64,
}

/// The measurement contract as planners are told it.
pub fn contract(qps: &[u32], metric: QualityMetric, dev_clips: &[String]) -> String {
    format!(
        "Every program encodes each dev clip ({}) at constant QP {} with the lab codec, is decoded \
         from its bitstream alone, and is scored against the source frames. Bitrate counts every \
         byte of the bitstream. Fitness is the mean over the dev clips of the BD-rate ({}, PCHIP) \
         against the reference (the shipped default genome) measured in the same run: negative \
         percent means fewer bits for the same quality; lower is better. Decoder instructions per \
         pixel are counted with callgrind. Holdout clips are never shown: the best program is \
         re-measured on them at the end.",
        dev_clips.join(", "),
        qps.iter().map(u32::to_string).collect::<Vec<_>>().join("/"),
        metric.key()
    )
}

/// The clips a run measures on.
struct Clips {
    dev: Vec<String>,
    holdout: Vec<String>,
}

fn clips(lab: &Lab, config: &LabConfig) -> Result<Clips, LabError> {
    let corpus = lab.corpus()?;
    let of_set = |named: &[String], set: codeclab_video::corpus::ClipSet| -> Vec<String> {
        if named.is_empty() {
            corpus
                .clips()
                .iter()
                .filter(|c| c.set == set)
                .map(|c| c.id.clone())
                .collect()
        } else {
            named.to_vec()
        }
    };
    let dev = of_set(
        &config.evaluation.dev_clips,
        codeclab_video::corpus::ClipSet::Dev,
    );
    let holdout = of_set(
        &config.evaluation.holdout_clips,
        codeclab_video::corpus::ClipSet::Holdout,
    );
    if dev.is_empty() {
        return Err(LabError::Spec(
            "the corpus has no dev clip for the planner".into(),
        ));
    }
    if let Some(both) = dev.iter().find(|c| holdout.contains(c)) {
        return Err(LabError::Spec(format!(
            "clip {both} is both a dev and a holdout clip"
        )));
    }
    Ok(Clips { dev, holdout })
}

/// The run in progress, or a new one.
async fn open_run(lab: &Lab, planner: &str, options: &LoopOptions) -> Result<RunRecord, LabError> {
    if let Some(value) = lab.store.setting(RUN_SETTING).await?
        && let Ok(run) = serde_json::from_value::<RunRecord>(value)
        && !run.finished
        && run.planner == planner
    {
        tracing::info!("resuming planner run {}", run.run_id);
        return Ok(run);
    }
    let started_at = now_ms();
    let run = RunRecord {
        run_id: format!("run-{started_at}"),
        planner: planner.into(),
        started_at,
        max_experiments: options.max_experiments,
        finished: false,
        stop_reason: None,
    };
    save_run(lab, &run).await?;
    Ok(run)
}

async fn save_run(lab: &Lab, run: &RunRecord) -> Result<(), LabError> {
    let value = serde_json::to_value(run).map_err(|e| LabError::Spec(e.to_string()))?;
    Ok(lab.store.put_setting(RUN_SETTING, &value).await?)
}

/// The codec a program runs: the built-in codec with a genome, or a candidate binary.
fn codec_spec(genome: &Genome, binary: Option<&PathBuf>) -> serde_json::Value {
    let genome = serde_json::to_value(genome).unwrap_or_default();
    match binary {
        Some(path) => serde_json::json!({"kind": "lab_binary", "binary": path, "genome": genome}),
        None => serde_json::json!({"kind": "lab", "genome": genome}),
    }
}

/// The reference genome and edits: the promoted codec, or the shipped default.
async fn reference_program(lab: &Lab) -> Result<(Genome, Vec<Edit>, String), LabError> {
    if let Some(promoted) = lab.store.setting("promoted_codec").await? {
        let genome = promoted
            .get("genome")
            .cloned()
            .map(serde_json::from_value::<Genome>)
            .transpose()
            .map_err(|e| LabError::Spec(format!("the promoted codec's genome: {e}")))?
            .unwrap_or_default();
        genome
            .validate()
            .map_err(|e| LabError::Spec(format!("the promoted codec's genome: {e}")))?;
        let edits: Vec<Edit> = promoted
            .get("edits")
            .cloned()
            .map(serde_json::from_value)
            .transpose()
            .map_err(|e| LabError::Spec(format!("the promoted codec's edits: {e}")))?
            .unwrap_or_default();
        let from = promoted
            .get("experiment_id")
            .and_then(|v| v.as_i64())
            .map_or("an admin".to_string(), |id| format!("experiment {id}"));
        return Ok((genome, edits, format!("the codec promoted from {from}")));
    }
    Ok((
        Genome::default(),
        Vec::new(),
        "the shipped default genome".into(),
    ))
}

/// The programs of one run, reread from the store at every step.
#[derive(Clone)]
struct RunPrograms {
    programs: Vec<ProgramRecord>,
}

impl RunPrograms {
    fn of_role(&self, role: ProgramRole) -> impl Iterator<Item = &ProgramRecord> {
        self.programs.iter().filter(move |p| p.role == role)
    }

    fn reference(&self) -> Option<&ProgramRecord> {
        self.of_role(ProgramRole::Reference).next()
    }

    /// Programs not measured yet. The reference does not hold a batch back: its fitness is
    /// zero by definition, so planners learn nothing from waiting for it.
    fn pending(&self, count_reference: bool) -> usize {
        self.programs
            .iter()
            .filter(|p| p.scores.is_none() && (count_reference || p.role != ProgramRole::Reference))
            .count()
    }
}

/// Runs the planner loop until the experiment budget is spent, the goals are met, or the loop is
/// told to stop (the shutdown watch, or the lab status set to `stopping`).
pub async fn run_loop<P: Planner>(
    lab: Arc<Lab>,
    planner: &mut P,
    config: &LabConfig,
    options: LoopOptions,
    mut shutdown: watch::Receiver<bool>,
) -> Result<LoopSummary, LabError> {
    let clips = clips(&lab, config)?;
    let metric = config.evaluation.metric;
    let contract = contract(&config.evaluation.qps, metric, &clips.dev);
    let mut run = open_run(&lab, planner.name(), &options).await?;
    let holdout_reserve: u64 = if clips.holdout.is_empty() { 0 } else { 2 };
    let parallel = options.parallel.max(1);
    // A pause outlives restarts; anything else means the lab runs now.
    if lab.store.lab_status().await?.state != RunState::Paused {
        lab.store
            .set_lab_status(&LabStatus::new(
                RunState::Running,
                Some(format!("planner run {} ({})", run.run_id, planner.name())),
                "loop",
            ))
            .await?;
    }
    let mut alerter = Alerter::new(config.alerts.clone());
    let report_every = Duration::from_secs(config.report.interval_minutes * 60);
    let mut last_report = tokio::time::Instant::now();
    let stop_reason = loop {
        let before = RunPrograms {
            programs: lab.store.programs(Some(&run.run_id)).await?,
        };
        let best_before = best_candidate(&before).and_then(|p| p.fitness);
        let state = score_finished(&lab, before.clone(), metric).await?;
        if state.programs != before.programs {
            observe_scores(&lab, &mut alerter, &before, &state, best_before).await?;
            let goal_list = goals::effective(&lab.store, &config.goals).await?;
            let progress = goals::progress(&lab.store, &goal_list, Some(&run.run_id)).await?;
            if goals::all_met(&progress) {
                break "every goal is met".to_string();
            }
        }
        if !report_every.is_zero() && last_report.elapsed() >= report_every {
            last_report = tokio::time::Instant::now();
            store_report(&lab, config, &run.run_id, run.started_at).await?;
        }
        if *shutdown.borrow() {
            break "interrupted".to_string();
        }
        let status = lab.store.lab_status().await?;
        if status.state == RunState::Stopping {
            break format!(
                "stopped by {}{}",
                status.by,
                status.reason.map(|r| format!(": {r}")).unwrap_or_default()
            );
        }
        let submitted = state.programs.len() as u64;
        let candidates_left = options
            .max_experiments
            .map(|max| max.saturating_sub(submitted + holdout_reserve));
        if state.reference().is_none() {
            submit_reference(&lab, &run, &clips, config, &options).await?;
            continue;
        }
        let holdout_started = state.of_role(ProgramRole::Holdout).next().is_some();
        if holdout_started || candidates_left == Some(0) {
            if state.pending(true) > 0 {
                wait(&mut shutdown, options.poll).await;
                continue;
            }
            if !holdout_started
                && !clips.holdout.is_empty()
                && let Some(best) = best_candidate(&state)
            {
                submit_holdout(&lab, &run, &clips, config, &state, best, &options).await?;
                continue;
            }
            break match candidates_left {
                Some(0) => format!(
                    "the run's {} experiments are spent",
                    options.max_experiments.unwrap_or_default()
                ),
                _ => "holdout validation done".into(),
            };
        }
        let budget = budget::check(
            &lab.store,
            &budget::effective(&lab.store, &config.budget).await?,
            now_ms(),
        )
        .await?;
        alerter.observe_budget(&lab.store, &budget).await?;
        match (&budget.blocked, status.state) {
            (Some(reason), RunState::Running) => {
                lab.store
                    .set_lab_status(&LabStatus::new(
                        RunState::Paused,
                        Some(reason.clone()),
                        "budget",
                    ))
                    .await?;
                alerter
                    .send(
                        &lab.store,
                        "paused",
                        None,
                        &format!("the loop pauses: {reason}"),
                    )
                    .await?;
                continue;
            }
            (None, RunState::Paused) if status.by == "budget" => {
                lab.store
                    .set_lab_status(&LabStatus::new(
                        RunState::Running,
                        Some("the budget allows proposals again".into()),
                        "budget",
                    ))
                    .await?;
                continue;
            }
            _ => {}
        }
        if status.state == RunState::Paused || state.pending(false) > 0 {
            wait(&mut shutdown, options.poll).await;
            continue;
        }
        if let Some(pause) = budget.wait {
            wait(&mut shutdown, pause.min(options.poll)).await;
            continue;
        }
        // A batch: the planner sees every earlier result before proposing.
        let batch = candidates_left.map_or(parallel as u64, |left| left.min(parallel as u64));
        let feedback = feedback(&lab, &run, &state).await?;
        // The goals an admin set, as the stopping rule reads them.
        let goal_list = goals::effective(&lab.store, &config.goals).await?;
        let mut programs = view_programs(&lab, &state).await?;
        let mut turns_feedback = feedback.clone();
        for _ in 0..batch {
            let view = PlannerView {
                programs: &programs,
                feedback: &turns_feedback,
                goals: &goal_list,
                contract: &contract,
                remaining: candidates_left.unwrap_or(u64::MAX),
            };
            match planner.propose(&view).await? {
                Turn::Propose(proposal) => {
                    match submit_candidate(&lab, &run, &clips, config, &options, planner, &proposal)
                        .await?
                    {
                        Ok(id) => programs.push(Program {
                            experiment_id: id,
                            parent: proposal.parent,
                            island: proposal.island,
                            genome: proposal.genome.clone(),
                            edits: proposal.edits.clone(),
                            hypothesis: proposal.hypothesis.clone(),
                            outcome: Outcome::Pending,
                        }),
                        Err(reason) => {
                            alerter
                                .observe_outcome(&lab.store, false, None, &reason)
                                .await?;
                            turns_feedback.push(Feedback {
                                experiment_id: None,
                                log_id: proposal.log_id,
                                reason,
                            });
                        }
                    }
                }
                Turn::Rejected { log_id, reason } => {
                    tracing::warn!("{} turn rejected: {reason}", planner.name());
                    alerter
                        .observe_outcome(&lab.store, false, None, &reason)
                        .await?;
                    let log_id = match log_id {
                        Some(id) => Some(id),
                        None => Some(record_turn_rejection(&lab, planner.name(), &reason).await?),
                    };
                    turns_feedback.push(Feedback {
                        experiment_id: None,
                        log_id,
                        reason,
                    });
                }
            }
        }
    };
    let reason = stop_reason;
    let state = RunPrograms {
        programs: lab.store.programs(Some(&run.run_id)).await?,
    };
    let interrupted = reason == "interrupted";
    if !interrupted {
        run.finished = true;
        run.stop_reason = Some(reason.clone());
        save_run(&lab, &run).await?;
        lab.store
            .set_lab_status(&LabStatus::new(
                RunState::Stopped,
                Some(format!("planner run {} ended: {reason}", run.run_id)),
                "loop",
            ))
            .await?;
    }
    let report_keys = store_report(&lab, config, &run.run_id, run.started_at).await?;
    let mut summary = summary(&lab, &run, &state, reason).await?;
    summary.report_keys = report_keys;
    Ok(summary)
}

/// Alerts on what the newly scored programs changed: a new best, failures in a row.
async fn observe_scores(
    lab: &Lab,
    alerter: &mut Alerter,
    before: &RunPrograms,
    after: &RunPrograms,
    best_before: Option<f64>,
) -> Result<(), LabError> {
    for program in after.programs.iter().filter(|p| {
        p.scores.is_some()
            && before
                .programs
                .iter()
                .any(|b| b.experiment_id == p.experiment_id && b.scores.is_none())
    }) {
        let detail = match program.fitness {
            Some(fitness) => format!("fitness {fitness:+.2} %"),
            None => program
                .scores
                .as_ref()
                .and_then(|s| s.get("failed"))
                .and_then(|v| v.as_str())
                .unwrap_or("failed")
                .to_string(),
        };
        alerter
            .observe_outcome(
                &lab.store,
                program.fitness.is_some(),
                Some(program.experiment_id),
                &detail,
            )
            .await?;
    }
    if let Some(best) = best_candidate(after)
        && let Some(fitness) = best.fitness
        && best_before.is_none_or(|previous| fitness < previous)
    {
        alerter
            .new_best(&lab.store, best.experiment_id, fitness, best_before)
            .await?;
    }
    Ok(())
}

/// Builds the run's report (counts and alerts since `started_at`) and stores it; its artifact
/// keys.
pub async fn store_report(
    lab: &Lab,
    config: &LabConfig,
    run_id: &str,
    started_at: i64,
) -> Result<Vec<String>, LabError> {
    let report = report::build(&lab.store, config, Some(started_at), Some(run_id)).await?;
    Ok(report::store_report(&lab.artifacts, &report).await?)
}

async fn wait(shutdown: &mut watch::Receiver<bool>, poll: Duration) {
    let _ = tokio::time::timeout(poll, shutdown.changed()).await;
}

async fn submit_reference(
    lab: &Lab,
    run: &RunRecord,
    clips: &Clips,
    config: &LabConfig,
    options: &LoopOptions,
) -> Result<(), LabError> {
    let (genome, edits, what) = reference_program(lab).await?;
    let binary = if edits.is_empty() {
        None
    } else {
        let smoke = smoke_spec(lab, config, &genome)?;
        match build_candidate(options, &edits, &format!("{}-reference", run.run_id), smoke).await? {
            Ok(binary) => Some(binary),
            Err(reason) => {
                return Err(LabError::Spec(format!(
                    "the promoted codec does not build: {reason}"
                )));
            }
        }
    };
    submit_program(
        lab,
        run,
        &Submission {
            role: ProgramRole::Reference,
            parent: None,
            island: 0,
            genome: &genome,
            edits: &edits,
            binary: binary.as_ref(),
            proposer: "reference",
            hypothesis: format!("{what}: the yardstick of planner run {}", run.run_id),
            clips: &clips.dev,
        },
        config,
    )
    .await?;
    Ok(())
}

/// A program to measure: its codec, its place in the run, and what its experiment says.
struct Submission<'a> {
    role: ProgramRole,
    parent: Option<i64>,
    island: i64,
    genome: &'a Genome,
    edits: &'a [Edit],
    /// The built code candidate, when `edits` is not empty.
    binary: Option<&'a PathBuf>,
    proposer: &'a str,
    hypothesis: String,
    clips: &'a [String],
}

/// Submits a program's experiment on the run's ladder and anchors, and records it in the
/// program database; the experiment's id.
async fn submit_program(
    lab: &Lab,
    run: &RunRecord,
    program: &Submission<'_>,
    config: &LabConfig,
) -> Result<i64, LabError> {
    let spec = ExperimentSpec {
        codec: codec_spec(program.genome, program.binary),
        parents: program.parent.into_iter().collect(),
        proposer: program.proposer.into(),
        hypothesis: program.hypothesis.clone(),
        clips: program.clips.to_vec(),
        rate_points: config
            .evaluation
            .qps
            .iter()
            .copied()
            .map(RatePoint::Qp)
            .collect(),
        anchors: config.evaluation.anchors.clone(),
    };
    let submitted = lab.submit(&spec, None).await?;
    lab.store
        .put_program(&ProgramRecord {
            experiment_id: submitted.id,
            run_id: run.run_id.clone(),
            planner: run.planner.clone(),
            role: program.role,
            parent: program.parent,
            island: program.island,
            stage: match program.role {
                ProgramRole::Holdout => "holdout",
                ProgramRole::Reference | ProgramRole::Candidate => "dev",
            }
            .into(),
            genome: serde_json::to_value(program.genome).unwrap_or_default(),
            edits: serde_json::to_value(program.edits).unwrap_or_default(),
            features: None,
            fitness: None,
            scores: None,
            created_at: 0,
        })
        .await?;
    Ok(submitted.id)
}

/// QP of the smoke test: mid-ladder, where every tool is exercised.
const SMOKE_QP: u8 = 32;

/// The smoke stage a new code candidate with `genome` passes before its dev experiment: the
/// first `evaluation.smoke_frames` frames of the run's first dev clip.
pub fn smoke_spec(lab: &Lab, config: &LabConfig, genome: &Genome) -> Result<SmokeSpec, LabError> {
    let corpus = lab.corpus()?;
    let first_dev = clips(lab, config)?.dev.into_iter().next();
    let clip = first_dev
        .and_then(|id| corpus.clip(&id).map(|clip| corpus.clip_path(clip)))
        .ok_or_else(|| LabError::Spec("no dev clip to smoke-test candidates on".into()))?;
    Ok(SmokeSpec {
        clip,
        frames: u64::from(config.evaluation.smoke_frames),
        qp: SMOKE_QP,
        genome: serde_json::to_value(genome).unwrap_or_default(),
        limits: codeclab_sandbox::Limits::default(),
    })
}

/// Takes a code candidate through the pipeline (edits, policy, build, smoke); its binary, or
/// why it is rejected.
async fn build_candidate(
    options: &LoopOptions,
    edits: &[Edit],
    name: &str,
    smoke: SmokeSpec,
) -> Result<Result<PathBuf, String>, LabError> {
    let Some(candidates) = options.candidates.clone() else {
        return Ok(Err(
            "code changes are not enabled in this lab (no codec sources to build from); \
             propose a genome change instead"
                .into(),
        ));
    };
    let destination = options.binaries_dir.join(name);
    let edits = edits.to_vec();
    tokio::task::spawn_blocking(
        move || match candidates.evaluate(&edits, &destination, &smoke) {
            Ok(Ok(report)) => {
                tracing::info!(
                    "candidate {} passed the smoke test: {report:?}",
                    destination.display()
                );
                Ok(Ok(destination))
            }
            Ok(Err(rejection)) => Ok(Err(rejection.to_string())),
            Err(error) => Err(LabError::Spec(format!("evaluating a candidate: {error}"))),
        },
    )
    .await
    .map_err(|e| LabError::Join(e.to_string()))?
}

/// Submits a proposal as a dev experiment: its id, or the reason it was rejected (recorded in
/// the planner log).
async fn submit_candidate<P: Planner>(
    lab: &Lab,
    run: &RunRecord,
    clips: &Clips,
    config: &LabConfig,
    options: &LoopOptions,
    planner: &P,
    proposal: &Proposal,
) -> Result<Result<i64, String>, LabError> {
    let log_id = match proposal.log_id {
        Some(id) => id,
        None => {
            lab.store
                .log_planner(&PlannerLogEntry {
                    reply: serde_json::to_string_pretty(proposal).unwrap_or_default(),
                    hypothesis: Some(proposal.hypothesis.clone()),
                    reasoning: proposal.reasoning.clone(),
                    ..PlannerLogEntry::new(planner.name(), "proposed")
                })
                .await?
        }
    };
    let binary = if proposal.edits.is_empty() {
        None
    } else {
        let smoke = smoke_spec(lab, config, &proposal.genome)?;
        match build_candidate(
            options,
            &proposal.edits,
            &format!("{}-turn-{log_id}", run.run_id),
            smoke,
        )
        .await?
        {
            Ok(binary) => Some(binary),
            Err(reason) => {
                record_rejection(lab, planner.name(), proposal, &reason).await?;
                return Ok(Err(reason));
            }
        }
    };
    let id = submit_program(
        lab,
        run,
        &Submission {
            role: ProgramRole::Candidate,
            parent: proposal.parent,
            island: proposal.island,
            genome: &proposal.genome,
            edits: &proposal.edits,
            binary: binary.as_ref(),
            proposer: planner.name(),
            hypothesis: proposal.hypothesis.clone(),
            clips: &clips.dev,
        },
        config,
    )
    .await?;
    lab.store.link_planner_turn(log_id, id).await?;
    Ok(Ok(id))
}

async fn record_rejection(
    lab: &Lab,
    planner: &str,
    proposal: &Proposal,
    reason: &str,
) -> Result<(), LabError> {
    lab.store
        .log_planner(&PlannerLogEntry {
            reply: serde_json::to_string_pretty(&proposal.edits).unwrap_or_default(),
            hypothesis: Some(proposal.hypothesis.clone()),
            reasoning: "the proposal's code was built and smoke-tested before measuring".into(),
            detail: Some(reason.into()),
            ..PlannerLogEntry::new(planner, "rejected")
        })
        .await?;
    Ok(())
}

/// Records a rejected turn the planner did not log itself.
async fn record_turn_rejection(lab: &Lab, planner: &str, reason: &str) -> Result<i64, LabError> {
    Ok(lab
        .store
        .log_planner(&PlannerLogEntry {
            detail: Some(reason.into()),
            ..PlannerLogEntry::new(planner, "rejected")
        })
        .await?)
}

/// Re-measures the reference and the best candidate on the holdout clips.
async fn submit_holdout(
    lab: &Lab,
    run: &RunRecord,
    clips: &Clips,
    config: &LabConfig,
    state: &RunPrograms,
    best: &ProgramRecord,
    options: &LoopOptions,
) -> Result<(), LabError> {
    let reference = state
        .reference()
        .ok_or_else(|| LabError::Spec("the run has no reference".into()))?;
    for program in [reference, best] {
        let genome: Genome = serde_json::from_value(program.genome.clone())
            .map_err(|e| LabError::Spec(format!("program genome: {e}")))?;
        let edits: Vec<Edit> = serde_json::from_value(program.edits.clone())
            .map_err(|e| LabError::Spec(format!("program edits: {e}")))?;
        let binary = if edits.is_empty() {
            None
        } else {
            match build_candidate(
                options,
                &edits,
                &format!("{}-holdout-{}", run.run_id, program.experiment_id),
                smoke_spec(lab, config, &genome)?,
            )
            .await?
            {
                Ok(binary) => Some(binary),
                Err(reason) => {
                    return Err(LabError::Spec(format!(
                        "program {} no longer builds: {reason}",
                        program.experiment_id
                    )));
                }
            }
        };
        submit_program(
            lab,
            run,
            &Submission {
                role: ProgramRole::Holdout,
                parent: Some(program.experiment_id),
                island: program.island,
                genome: &genome,
                edits: &edits,
                binary: binary.as_ref(),
                proposer: "holdout",
                hypothesis: format!(
                    "experiment {} ({}) re-measured on the holdout clips",
                    program.experiment_id,
                    program.role.name()
                ),
                clips: &clips.holdout,
            },
            config,
        )
        .await?;
    }
    Ok(())
}

/// The measured candidate with the lowest fitness, if it beats the reference.
fn best_candidate(state: &RunPrograms) -> Option<&ProgramRecord> {
    state
        .of_role(ProgramRole::Candidate)
        .filter_map(|p| p.fitness.map(|f| (f, p)))
        .filter(|(f, _)| *f < 0.0)
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, p)| p)
}

/// Per clip, the RD curve of an experiment for `metric`.
fn experiment_curves(
    points: &BTreeMap<String, Vec<PointRecord>>,
    metric: QualityMetric,
) -> BTreeMap<String, Option<Vec<RdPoint>>> {
    points
        .iter()
        .map(|(clip, points)| (clip.clone(), rd_curve(points, metric)))
        .collect()
}

/// BD-rate per clip of `test` against `anchor`, and the mean; or why not.
fn bd_rates(
    anchor: &BTreeMap<String, Option<Vec<RdPoint>>>,
    test: &BTreeMap<String, Option<Vec<RdPoint>>>,
) -> Result<(BTreeMap<String, f64>, f64), String> {
    let mut pairs = Vec::new();
    for (clip, test_curve) in test {
        let test_curve = test_curve
            .as_ref()
            .ok_or_else(|| format!("{clip}: a point lacks the fitness metric"))?;
        let anchor_curve = anchor
            .get(clip)
            .and_then(Option::as_ref)
            .ok_or_else(|| format!("{clip}: the reference has no curve"))?;
        pairs.push((
            clip.as_str(),
            anchor_curve.as_slice(),
            test_curve.as_slice(),
        ));
    }
    let report = bdrate::compare_clips(pairs.iter().map(|(clip, anchor, test)| ClipCurves {
        clip,
        anchor,
        test,
    }));
    if let Some((clip, error)) = report.failures().next() {
        return Err(format!("BD-rate on {clip}: {error}"));
    }
    let mean = report
        .mean
        .ok_or_else(|| "no clip to compare".to_string())?;
    let per_clip = report
        .clips
        .iter()
        .filter_map(|c| match &c.outcome {
            bdrate::ClipOutcome::Report(r) => Some((c.clip.clone(), r.pchip)),
            bdrate::ClipOutcome::Error(_) => None,
        })
        .collect();
    Ok((per_clip, mean.pchip))
}

fn mean_of(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let values: Option<Vec<f64>> = values.collect();
    values
        .filter(|v| !v.is_empty())
        .map(|v| v.iter().sum::<f64>() / v.len() as f64)
}

/// Scores every program whose experiment finished since the last look, and returns the state
/// with the scores in.
async fn score_finished(
    lab: &Lab,
    state: RunPrograms,
    metric: QualityMetric,
) -> Result<RunPrograms, LabError> {
    let mut changed = false;
    for program in state.programs.iter().filter(|p| p.scores.is_none()) {
        let Some(experiment) = lab.store.experiment(program.experiment_id).await? else {
            continue;
        };
        let scores = match experiment.state {
            ExperimentState::Queued | ExperimentState::Running => continue,
            ExperimentState::Failed | ExperimentState::Cancelled => {
                let reason = format!(
                    "experiment {} {}: {}",
                    experiment.id,
                    experiment.state,
                    experiment.reason.unwrap_or_default()
                );
                lab.store
                    .set_program_result(
                        program.experiment_id,
                        None,
                        None,
                        &serde_json::json!({ "failed": reason }),
                    )
                    .await?;
                changed = true;
                continue;
            }
            ExperimentState::Completed | ExperimentState::Analysed => {
                let points =
                    crate::experiment::curves(&lab.store.points(program.experiment_id).await?);
                // Its yardstick: the reference for dev programs, the reference's holdout
                // measurement for holdout programs.
                let yardstick = match program.role {
                    ProgramRole::Reference => None,
                    ProgramRole::Candidate => state
                        .programs
                        .iter()
                        .find(|p| p.role == ProgramRole::Reference),
                    ProgramRole::Holdout => {
                        let reference = state
                            .programs
                            .iter()
                            .find(|p| p.role == ProgramRole::Reference)
                            .map(|p| p.experiment_id);
                        state
                            .programs
                            .iter()
                            .find(|p| p.role == ProgramRole::Holdout && p.parent == reference)
                    }
                };
                let is_yardstick = yardstick.is_none()
                    || yardstick.map(|y| y.experiment_id) == Some(program.experiment_id);
                let vs_reference = if is_yardstick {
                    Some(Ok((points.keys().map(|c| (c.clone(), 0.0)).collect(), 0.0)))
                } else {
                    let yardstick = yardstick.expect("checked above");
                    let yardstick_state = lab
                        .store
                        .experiment(yardstick.experiment_id)
                        .await?
                        .map(|e| e.state);
                    match yardstick_state {
                        Some(ExperimentState::Completed | ExperimentState::Analysed) => {
                            let anchor = crate::experiment::curves(
                                &lab.store.points(yardstick.experiment_id).await?,
                            );
                            Some(bd_rates(
                                &experiment_curves(&anchor, metric),
                                &experiment_curves(&points, metric),
                            ))
                        }
                        Some(ExperimentState::Queued | ExperimentState::Running) => None,
                        _ => Some(Err(format!(
                            "its yardstick, experiment {}, was not measured",
                            yardstick.experiment_id
                        ))),
                    }
                };
                let Some(vs_reference) = vs_reference else {
                    continue;
                };
                let all_points = || points.values().flatten();
                let decoder_ipp = mean_of(all_points().map(|p| p.decoder_instructions_per_pixel));
                let learned_mac = mean_of(all_points().map(|p| p.learned_mac_per_pixel));
                let encode_seconds: f64 = all_points()
                    .map(|p| p.encode.cpu_seconds.unwrap_or(p.encode.wall_seconds))
                    .sum();
                let genome: Genome =
                    serde_json::from_value(program.genome.clone()).unwrap_or_default();
                let features = Features {
                    decoder_instructions_per_pixel: decoder_ipp,
                    learned_mac_per_pixel: learned_mac,
                    encoder_effort: super::evolve::encoder_effort(&genome),
                };
                match vs_reference {
                    Ok((per_clip, mean)) => {
                        let scores = serde_json::json!({
                            "metric": metric.key(),
                            "vs_reference": {"per_clip": per_clip, "mean": mean},
                            "clips": points.keys().collect::<Vec<_>>(),
                            "decoder_instructions_per_pixel": decoder_ipp,
                            "learned_mac_per_pixel": learned_mac,
                            "encode_seconds": encode_seconds,
                        });
                        (
                            Some(serde_json::to_value(&features).unwrap_or_default()),
                            Some(mean),
                            scores,
                        )
                    }
                    Err(reason) => (None, None, serde_json::json!({ "failed": reason })),
                }
            }
        };
        let (features, fitness, scores) = scores;
        lab.store
            .set_program_result(program.experiment_id, features.as_ref(), fitness, &scores)
            .await?;
        changed = true;
    }
    if !changed {
        return Ok(state);
    }
    let run_id = state
        .programs
        .first()
        .map(|p| p.run_id.clone())
        .unwrap_or_default();
    Ok(RunPrograms {
        programs: lab.store.programs(Some(&run_id)).await?,
    })
}

/// The dev programs as the planner sees them (the reference first).
async fn view_programs(lab: &Lab, state: &RunPrograms) -> Result<Vec<Program>, LabError> {
    let mut programs = Vec::new();
    for record in state
        .programs
        .iter()
        .filter(|p| p.role != ProgramRole::Holdout)
    {
        let genome: Genome = serde_json::from_value(record.genome.clone())
            .map_err(|e| LabError::Spec(format!("program {} genome: {e}", record.experiment_id)))?;
        let edits: Vec<Edit> = serde_json::from_value(record.edits.clone())
            .map_err(|e| LabError::Spec(format!("program {} edits: {e}", record.experiment_id)))?;
        let outcome = match (&record.scores, record.fitness) {
            (None, _) => Outcome::Pending,
            (Some(scores), Some(fitness)) => Outcome::Measured {
                fitness,
                per_clip: scores
                    .pointer("/vs_reference/per_clip")
                    .cloned()
                    .and_then(|v| serde_json::from_value(v).ok())
                    .unwrap_or_default(),
                features: record
                    .features
                    .clone()
                    .and_then(|v| serde_json::from_value(v).ok())
                    .unwrap_or(Features {
                        decoder_instructions_per_pixel: None,
                        learned_mac_per_pixel: None,
                        encoder_effort: super::evolve::encoder_effort(&genome),
                    }),
            },
            (Some(scores), None) => Outcome::Failed {
                reason: scores
                    .get("failed")
                    .and_then(|v| v.as_str())
                    .unwrap_or("not measured")
                    .to_string(),
            },
        };
        programs.push(Program {
            experiment_id: record.experiment_id,
            parent: record.parent,
            island: record.island,
            genome,
            edits,
            hypothesis: lab
                .store
                .experiment(record.experiment_id)
                .await?
                .map(|e| e.spec.hypothesis)
                .unwrap_or_default(),
            outcome,
        });
    }
    Ok(programs)
}

/// The run's recent rejections and failures, oldest first.
async fn feedback(
    lab: &Lab,
    run: &RunRecord,
    state: &RunPrograms,
) -> Result<Vec<Feedback>, LabError> {
    let mut items: Vec<(i64, Feedback)> = Vec::new();
    for record in lab.store.planner_log(FEEDBACK_LIMIT as i64 * 4).await? {
        if record.created_at >= run.started_at
            && record.entry.planner == run.planner
            && matches!(record.entry.outcome.as_str(), "rejected" | "error")
        {
            items.push((
                record.created_at,
                Feedback {
                    experiment_id: None,
                    log_id: Some(record.id),
                    reason: record.entry.detail.unwrap_or_default(),
                },
            ));
        }
    }
    for program in &state.programs {
        if let Some(reason) = program
            .scores
            .as_ref()
            .and_then(|s| s.get("failed"))
            .and_then(|v| v.as_str())
        {
            items.push((
                program.created_at,
                Feedback {
                    experiment_id: Some(program.experiment_id),
                    log_id: None,
                    reason: reason.to_string(),
                },
            ));
        }
    }
    items.sort_by_key(|(at, _)| *at);
    let skip = items.len().saturating_sub(FEEDBACK_LIMIT);
    Ok(items.into_iter().skip(skip).map(|(_, f)| f).collect())
}

async fn summary(
    lab: &Lab,
    run: &RunRecord,
    state: &RunPrograms,
    stop_reason: String,
) -> Result<LoopSummary, LabError> {
    let measured = state
        .programs
        .iter()
        .filter(|p| p.fitness.is_some())
        .count() as u64;
    let failed = state
        .programs
        .iter()
        .filter(|p| p.scores.is_some() && p.fitness.is_none())
        .count() as u64;
    let rejected = lab
        .store
        .turns_without_experiment(&run.planner, run.started_at)
        .await? as u64;
    let best = best_candidate(state);
    let holdout = best.and_then(|best| {
        let measured = goals::holdout_of(&state.programs, best)?;
        let reference = goals::holdout_of(&state.programs, state.reference()?)?;
        let scores = measured.scores.as_ref()?;
        Some(HoldoutResult {
            candidate: best.experiment_id,
            candidate_experiment: measured.experiment_id,
            reference_experiment: reference.experiment_id,
            per_clip: scores
                .pointer("/vs_reference/per_clip")
                .cloned()
                .and_then(|v| serde_json::from_value(v).ok())?,
            mean: measured.fitness?,
        })
    });
    let encode_seconds = |program: &ProgramRecord| {
        program
            .scores
            .as_ref()?
            .get("encode_seconds")?
            .as_f64()
            .filter(|s| *s > 0.0)
    };
    let best_encode_time_ratio =
        best.and_then(|best| Some(encode_seconds(best)? / encode_seconds(state.reference()?)?));
    let effort = |program: &ProgramRecord| {
        serde_json::from_value::<Genome>(program.genome.clone())
            .map(|genome| super::evolve::encoder_effort(&genome))
            .unwrap_or(f64::INFINITY)
    };
    let reference_effort = state.reference().map_or(1.0, effort);
    let best_at_reference_effort = state
        .of_role(ProgramRole::Candidate)
        .filter(|p| effort(p) <= reference_effort)
        .filter_map(|p| Some((p.experiment_id, p.fitness?)))
        .filter(|(_, fitness)| *fitness < 0.0)
        .min_by(|a, b| a.1.total_cmp(&b.1));
    Ok(LoopSummary {
        run_id: run.run_id.clone(),
        started_at: run.started_at,
        experiments: state.programs.len() as u64,
        measured,
        failed,
        rejected,
        best: best.and_then(|b| Some((b.experiment_id, b.fitness?))),
        best_encode_time_ratio,
        best_at_reference_effort,
        holdout,
        stop_reason,
        report_keys: Vec::new(),
    })
}
