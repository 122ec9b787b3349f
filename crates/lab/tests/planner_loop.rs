//! The planner loop end to end on tiny generated clips: the reference, batches of proposals,
//! scoring against the reference, rejections fed back, holdout validation, pause, resume after
//! an interruption, and the offline planner's reproducibility.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use codeclab_codec::Genome;
use codeclab_lab::LabError;
use codeclab_lab::candidate::Edit;
use codeclab_lab::config::{Goal, LabConfig, PlannerConfig};
use codeclab_lab::goals;
use codeclab_lab::planner::evolve::EvolvePlanner;
use codeclab_lab::planner::run_loop::LoopOptions;
use codeclab_lab::planner::{Feedback, Planner, PlannerView, Proposal, Turn};
use codeclab_lab::runner::QualityMetric;
use codeclab_lab::store::control::{LabStatus, RunState};
use codeclab_lab::store::programs::ProgramRole;

fn config() -> LabConfig {
    let mut config = LabConfig::from_toml("", "test").unwrap();
    // The anchors are not part of these runs.
    config.evaluation.anchors = vec!["x264-medium".into()];
    config
}

fn options(dir: &std::path::Path, max_experiments: u64) -> LoopOptions {
    LoopOptions {
        max_experiments: Some(max_experiments),
        parallel: 2,
        candidates: None,
        binaries_dir: dir.join("binaries"),
        poll: Duration::from_millis(100),
    }
}

/// Proposes the scripted turns in order, then the default genome with growing lambda, and keeps
/// what each turn was shown.
struct Scripted {
    turns: Vec<Turn>,
    seen_feedback: Arc<Mutex<Vec<Vec<Feedback>>>>,
    seen_goals: Arc<Mutex<Vec<Vec<Goal>>>>,
}

impl Planner for Scripted {
    fn name(&self) -> &'static str {
        "scripted"
    }

    async fn propose(&mut self, view: &PlannerView<'_>) -> Result<Turn, LabError> {
        self.seen_feedback
            .lock()
            .unwrap()
            .push(view.feedback.to_vec());
        self.seen_goals.lock().unwrap().push(view.goals.to_vec());
        if !self.turns.is_empty() {
            return Ok(self.turns.remove(0));
        }
        let genome = Genome {
            lambda_scale: 1.0 + 0.1 * view.programs.len() as f64,
            ..Genome::default()
        };
        Ok(Turn::Propose(proposal(genome, Vec::new())))
    }
}

fn proposal(genome: Genome, edits: Vec<Edit>) -> Proposal {
    Proposal {
        parent: None,
        island: 0,
        genome,
        edits,
        hypothesis: "scripted".into(),
        reasoning: "a test".into(),
        expected_effect: "none".into(),
        log_id: None,
    }
}

/// Every coding tool off: a reference any sensible genome beats.
fn weak_genome() -> Genome {
    Genome {
        rdoq: false,
        deblock: false,
        intra_angular: false,
        subpel_precision: 0,
        me_range: 1,
        merge_candidates: 1,
        max_block_log2: 4,
        ..Genome::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_run_scores_proposals_against_the_reference_and_validates_the_best_on_holdout() {
    let dir = tempfile::tempdir().unwrap();
    let lab = common::tiny_lab(dir.path()).await;
    // The promoted codec is the run's reference.
    lab.store
        .put_setting(
            "promoted_codec",
            &serde_json::json!({"experiment_id": null, "genome": weak_genome(), "edits": []}),
        )
        .await
        .unwrap();
    // The goals an admin set are the ones the planner is shown (the first is out of reach, so
    // the run does not stop on them).
    let admin_goals = vec![
        Goal::BdRate {
            anchor: goals::REFERENCE_ANCHOR.into(),
            metric: QualityMetric::PsnrY,
            sets: vec!["dev".into()],
            at_most: -100.0,
        },
        Goal::LearnedMacPerPixel { at_most: 0.0 },
    ];
    lab.store
        .put_setting(goals::SETTING, &serde_json::to_value(&admin_goals).unwrap())
        .await
        .unwrap();
    let seen_goals = Arc::new(Mutex::new(Vec::new()));
    let mut planner = Scripted {
        turns: vec![Turn::Propose(proposal(Genome::default(), Vec::new()))],
        seen_feedback: Arc::default(),
        seen_goals: seen_goals.clone(),
    };
    let summary = common::drive(&lab, &mut planner, &config(), options(dir.path(), 5), None)
        .await
        .unwrap();
    let seen_goals = seen_goals.lock().unwrap().clone();
    assert!(!seen_goals.is_empty());
    assert!(seen_goals.iter().all(|goals| *goals == admin_goals));
    // Reference + 2 proposals (one batch of `parallel`) + 2 holdout measurements.
    assert_eq!(summary.experiments, 5, "{summary:?}");
    assert_eq!(summary.failed, 0, "{summary:?}");
    let programs = lab.store.programs(Some(&summary.run_id)).await.unwrap();
    let roles: Vec<ProgramRole> = programs.iter().map(|p| p.role).collect();
    assert_eq!(
        roles,
        [
            ProgramRole::Reference,
            ProgramRole::Candidate,
            ProgramRole::Candidate,
            ProgramRole::Holdout,
            ProgramRole::Holdout
        ]
    );
    assert_eq!(programs[0].fitness, Some(0.0));
    let default_program = &programs[1];
    // Read from its streams: the default genome declares no learned tool.
    assert_eq!(
        default_program.scores.as_ref().unwrap()["learned_mac_per_pixel"],
        0.0
    );
    assert_eq!(
        default_program.features.as_ref().unwrap()["learned_mac_per_pixel"],
        0.0
    );
    let (best, fitness) = summary.best.expect("the default genome beats the weak one");
    assert!(fitness < -5.0, "{fitness}");
    assert!(
        programs[1..3].iter().any(|p| p.experiment_id == best),
        "{summary:?}"
    );
    assert_eq!(
        default_program.scores.as_ref().unwrap()["vs_reference"]["per_clip"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["dev_shapes"]
    );
    let holdout = summary
        .holdout
        .clone()
        .expect("the best was re-measured on holdout");
    assert_eq!(holdout.candidate, best);
    assert_eq!(holdout.per_clip.keys().collect::<Vec<_>>(), ["holdout_pan"]);
    assert!(holdout.mean < 0.0, "{holdout:?}");
    let holdout_spec = lab
        .store
        .experiment(holdout.candidate_experiment)
        .await
        .unwrap()
        .unwrap()
        .spec;
    assert_eq!(holdout_spec.clips, ["holdout_pan"]);
    assert_eq!(holdout_spec.parents, [best]);
    // Each offline turn is in the planner log, linked to its experiment.
    let turns = lab.store.planner_turns(best).await.unwrap();
    assert_eq!(turns.len(), 1);
    assert_eq!(turns[0].entry.outcome, "proposed");
    assert_eq!(turns[0].entry.planner, "scripted");
    let status = lab.store.lab_status().await.unwrap();
    assert_eq!(status.state, RunState::Stopped);
    assert!(
        status.reason.unwrap().contains("experiments are spent"),
        "{summary:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rejections_and_failures_go_back_to_the_planner() {
    let dir = tempfile::tempdir().unwrap();
    let lab = common::tiny_lab(dir.path()).await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let edit = Edit {
        block: "lambda".into(),
        search: "x".into(),
        replace: "y".into(),
    };
    let mut planner = Scripted {
        turns: vec![
            Turn::Rejected {
                log_id: None,
                reason: "the reply's JSON is invalid at line 1, column 2".into(),
            },
            Turn::Propose(proposal(Genome::default(), vec![edit])),
        ],
        seen_feedback: seen.clone(),
        seen_goals: Arc::default(),
    };
    // The reference, a batch of two turns that both end rejected, then a batch of proposals.
    let summary = common::drive(&lab, &mut planner, &config(), options(dir.path(), 5), None)
        .await
        .unwrap();
    let seen = seen.lock().unwrap().clone();
    assert!(seen.len() >= 3, "{seen:?}");
    assert!(seen[0].is_empty());
    let second: Vec<&str> = seen[1].iter().map(|f| f.reason.as_str()).collect();
    assert_eq!(
        second,
        ["the reply's JSON is invalid at line 1, column 2"],
        "the rejection reaches the very next turn"
    );
    let third: Vec<&str> = seen[2].iter().map(|f| f.reason.as_str()).collect();
    assert!(
        third
            .iter()
            .any(|r| r.contains("code changes are not enabled")),
        "{third:?}"
    );
    // The code proposal's rejection is recorded in the planner log.
    let log = lab.store.planner_log(50).await.unwrap();
    assert!(log.iter().any(|r| {
        r.entry.outcome == "rejected"
            && r.entry
                .detail
                .as_deref()
                .is_some_and(|d| d.contains("code changes are not enabled"))
    }));
    assert!(summary.rejected >= 1, "{summary:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_paused_lab_proposes_nothing_and_an_interrupted_run_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let lab = common::tiny_lab(dir.path()).await;
    lab.store
        .set_lab_status(&LabStatus::new(
            RunState::Paused,
            Some("paused by admin".into()),
            "admin:test",
        ))
        .await
        .unwrap();
    let mut planner = Scripted {
        turns: Vec::new(),
        seen_feedback: Arc::default(),
        seen_goals: Arc::default(),
    };
    let first = common::drive(
        &lab,
        &mut planner,
        &config(),
        options(dir.path(), 5),
        Some(Duration::from_secs(3)),
    )
    .await
    .unwrap();
    assert_eq!(first.stop_reason, "interrupted");
    let programs = lab.store.programs(Some(&first.run_id)).await.unwrap();
    assert!(
        programs.iter().all(|p| p.role == ProgramRole::Reference),
        "a paused lab proposes nothing: {programs:?}"
    );
    assert_eq!(
        lab.store.lab_status().await.unwrap().state,
        RunState::Paused,
        "a pause outlives the loop"
    );
    lab.store
        .set_lab_status(&LabStatus::new(RunState::Running, None, "admin:test"))
        .await
        .unwrap();
    let second = common::drive(&lab, &mut planner, &config(), options(dir.path(), 5), None)
        .await
        .unwrap();
    assert_eq!(second.run_id, first.run_id, "the interrupted run resumes");
    assert!(second.experiments >= 3, "{second:?}");
    let programs = lab.store.programs(Some(&second.run_id)).await.unwrap();
    assert_eq!(
        programs
            .iter()
            .filter(|p| p.role == ProgramRole::Reference)
            .count(),
        1,
        "the reference is measured once per run"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_offline_planner_makes_the_same_proposals_with_the_same_seed() {
    let mut sequences = Vec::new();
    for _ in 0..2 {
        let dir = tempfile::tempdir().unwrap();
        let lab = common::tiny_lab(dir.path()).await;
        let mut planner = EvolvePlanner::new(&PlannerConfig {
            seed: 11,
            ..PlannerConfig::default()
        });
        let summary = common::drive(&lab, &mut planner, &config(), options(dir.path(), 5), None)
            .await
            .unwrap();
        let programs = lab.store.programs(Some(&summary.run_id)).await.unwrap();
        let genomes: Vec<(ProgramRole, serde_json::Value, Option<f64>)> = programs
            .into_iter()
            .map(|p| (p.role, p.genome, p.fitness))
            .collect();
        assert!(
            genomes
                .iter()
                .filter(|(role, ..)| *role == ProgramRole::Candidate)
                .count()
                >= 2
        );
        sequences.push(genomes);
    }
    assert_eq!(sequences[0], sequences[1]);
}

/// Logs each turn as a priced model call would be logged: a million input tokens of
/// `fake-model`, whose price comes from the configuration's table.
struct Spending;

impl Planner for Spending {
    fn name(&self) -> &'static str {
        "spending"
    }

    async fn propose(&mut self, view: &PlannerView<'_>) -> Result<Turn, LabError> {
        Err(LabError::Spec(format!(
            "unreachable in this test: {} programs",
            view.programs.len()
        )))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_loop_pauses_at_the_budget_cap_and_the_report_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let lab = common::tiny_lab(dir.path()).await;
    let mut config = config();
    config.budget = toml::from_str(
        r#"
        llm_usd_per_day = 2.0
        [prices.fake-model]
        input_usd_per_million = 1.0
        output_usd_per_million = 0.0
        "#,
    )
    .unwrap();
    let store = lab.store.clone();
    let log_turn = |n: i64| {
        let store = store.clone();
        async move {
            store
                .log_planner(&codeclab_lab::store::PlannerLogEntry {
                    experiment_id: None,
                    planner: "spending".into(),
                    model: Some("fake-model".into()),
                    prompt: format!("turn {n}"),
                    reply: "{}".into(),
                    hypothesis: None,
                    reasoning: String::new(),
                    outcome: "rejected".into(),
                    detail: Some("no change".into()),
                    input_tokens: Some(1_000_000),
                    output_tokens: Some(10),
                    cost_usd: None,
                })
                .await
                .unwrap();
        }
    };
    // Two dollars spent: the cap is reached before any proposal.
    log_turn(1).await;
    log_turn(2).await;
    let mut planner = Spending;
    let summary = common::drive(
        &lab,
        &mut planner,
        &config,
        options(dir.path(), 5),
        Some(Duration::from_secs(3)),
    )
    .await
    .unwrap();
    assert_eq!(summary.stop_reason, "interrupted");
    let status = lab.store.lab_status().await.unwrap();
    assert_eq!(status.state, RunState::Paused);
    assert_eq!(status.by, "budget");
    let reason = status.reason.unwrap();
    assert!(reason.contains("daily LLM budget reached"), "{reason}");
    assert!(reason.contains("$2.00 of $2.00"), "{reason}");
    let report = codeclab_lab::report::build(&lab.store, &config, None, None)
        .await
        .unwrap();
    let markdown = report.to_markdown();
    assert!(markdown.contains("paused"), "{markdown}");
    assert!(markdown.contains("daily LLM budget reached"), "{markdown}");
    let events = lab.store.events(20).await.unwrap();
    assert!(
        events.iter().any(|e| e.kind == "alert:paused"),
        "{events:?}"
    );
    // A raised cap lets the loop go on, by itself.
    lab.store
        .put_setting("budget", &serde_json::json!({"llm_usd_per_day": 10.0}))
        .await
        .unwrap();
    let mut scripted = Scripted {
        turns: Vec::new(),
        seen_feedback: Arc::default(),
        seen_goals: Arc::default(),
    };
    let resumed = common::drive(
        &lab,
        &mut scripted,
        &config,
        options(dir.path(), 5),
        Some(Duration::from_secs(60)),
    )
    .await
    .unwrap();
    assert!(resumed.experiments >= 3, "{resumed:?}");
}
