//! Goal progress and the report on a store filled through its API: a run with a reference,
//! candidates, a holdout re-measurement and anchor analyses; a lab paused at its budget cap.

use std::collections::BTreeMap;

use codeclab_codec::Genome;
use codeclab_lab::alerts::Alerter;
use codeclab_lab::artifacts::Artifacts;
use codeclab_lab::config::{AlertConfig, BudgetConfig, Goal, LabConfig};
use codeclab_lab::experiment::ExperimentSpec;
use codeclab_lab::goals::{self, GoalProgress};
use codeclab_lab::process::StepCost;
use codeclab_lab::report;
use codeclab_lab::runner::{PointRecord, QualityMetric};
use codeclab_lab::spec::RatePoint;
use codeclab_lab::store::control::{LabStatus, RunState};
use codeclab_lab::store::programs::{ProgramRecord, ProgramRole};
use codeclab_lab::store::{PlannerLogEntry, Store};
use serde_json::{Value, json};

const RUN: &str = "run-1";

fn spec(hypothesis: &str) -> ExperimentSpec {
    ExperimentSpec {
        codec: json!({"kind": "lab"}),
        parents: vec![],
        proposer: "evolve".into(),
        hypothesis: hypothesis.into(),
        clips: vec!["clip".into()],
        rate_points: vec![RatePoint::Qp(27)],
        anchors: vec![],
    }
}

fn point() -> PointRecord {
    PointRecord {
        rate_point: RatePoint::Qp(27),
        clip_sha256: "00".into(),
        frames: 10,
        width: 96,
        height: 64,
        fps: "30/1".into(),
        bytes: 1000,
        kbps: 24.0,
        metrics: BTreeMap::from([("psnr_y".to_string(), 40.0)]),
        encode: StepCost::default(),
        decode: StepCost::default(),
        decoder_instructions_per_pixel: None,
        learned_mac_per_pixel: None,
        bitstream_sha256: "ab".into(),
        codec_version: "test".into(),
    }
}

/// Submits an experiment and, when `analysis_mean` is given, measures it and stores an
/// analysis with that mean BD-rate against `x265-medium` on PSNR-Y.
async fn experiment(store: &Store, hypothesis: &str, analysis_mean: Option<f64>) -> i64 {
    let id = store
        .submit(&spec(hypothesis), None, None, 3)
        .await
        .unwrap();
    if let Some(mean) = analysis_mean {
        let job = store.claim_job("w", 60_000).await.unwrap().unwrap();
        assert_eq!(job.experiment_id, id);
        store.finish_job(&job, "w", &point()).await.unwrap();
        let analysis = json!({
            "curves": {},
            "bd_rates": [{
                "anchor": "x265-medium",
                "metric": "psnr_y",
                "report": {
                    "clips": [{"clip": "clip", "report": {"pchip": mean, "akima": mean,
                        "cubic": mean, "bd_quality_pchip": 0.5, "overlap": 1.0,
                        "low_overlap": false}}],
                    "mean": {"pchip": mean, "akima": mean, "cubic": mean,
                        "bd_quality_pchip": 0.5, "clips": 1, "low_overlap_clips": 0}
                },
                "not_measured": null
            }]
        });
        assert!(store.record_analysis(id, &analysis).await.unwrap());
    }
    id
}

fn scores(per_clip: &[(&str, f64)], ipp: Option<f64>) -> Value {
    let mean = per_clip.iter().map(|(_, v)| v).sum::<f64>() / per_clip.len() as f64;
    json!({
        "metric": "psnr_y",
        "vs_reference": {
            "per_clip": per_clip.iter().map(|(c, v)| (c.to_string(), json!(v)))
                .collect::<serde_json::Map<String, Value>>(),
            "mean": mean
        },
        "clips": per_clip.iter().map(|(c, _)| c.to_string()).collect::<Vec<_>>(),
        "decoder_instructions_per_pixel": ipp,
        // The programs of these runs leave the learned filter off.
        "learned_mac_per_pixel": 0.0,
        "encode_seconds": 1.5
    })
}

async fn program(
    store: &Store,
    experiment_id: i64,
    role: ProgramRole,
    parent: Option<i64>,
    genome: Value,
    result: Option<(f64, Value)>,
) {
    store
        .put_program(&ProgramRecord {
            experiment_id,
            run_id: RUN.into(),
            planner: "evolve".into(),
            role,
            parent,
            island: 0,
            stage: if role == ProgramRole::Holdout {
                "holdout"
            } else {
                "dev"
            }
            .into(),
            genome,
            edits: json!([]),
            features: None,
            fitness: None,
            scores: None,
            created_at: 0,
        })
        .await
        .unwrap();
    if let Some((fitness, scores)) = result {
        store
            .set_program_result(experiment_id, None, Some(fitness), &scores)
            .await
            .unwrap();
    }
}

fn default_genome() -> Value {
    serde_json::to_value(Genome::default()).unwrap()
}

/// The run's ids.
struct Run {
    reference: i64,
    best: i64,
    worse: i64,
    pending: i64,
}

/// A reference, a good and a worse candidate (the good one measured against x265 at -12 %),
/// and a candidate still queued. No holdout yet.
async fn fill_run(store: &Store) -> Run {
    let reference = experiment(store, "the shipped default", Some(-6.0)).await;
    program(
        store,
        reference,
        ProgramRole::Reference,
        None,
        default_genome(),
        Some((
            0.0,
            scores(&[("clip-a", 0.0), ("clip-b", 0.0)], Some(420.0)),
        )),
    )
    .await;
    let mut genome = default_genome();
    let deblock = genome["deblock"].as_bool().unwrap();
    genome["deblock"] = json!(!deblock);
    let best = experiment(store, "the other deblocking setting", Some(-12.0)).await;
    program(
        store,
        best,
        ProgramRole::Candidate,
        Some(reference),
        genome.clone(),
        Some((
            -2.0,
            scores(&[("clip-a", -1.5), ("clip-b", -2.5)], Some(350.0)),
        )),
    )
    .await;
    let worse = experiment(store, "a worse idea", None).await;
    program(
        store,
        worse,
        ProgramRole::Candidate,
        Some(reference),
        default_genome(),
        Some((1.0, scores(&[("clip-a", 1.0), ("clip-b", 1.0)], None))),
    )
    .await;
    let pending = experiment(store, "wait for it", None).await;
    program(
        store,
        pending,
        ProgramRole::Candidate,
        Some(best),
        genome,
        None,
    )
    .await;
    Run {
        reference,
        best,
        worse,
        pending,
    }
}

fn goals_under_test() -> Vec<Goal> {
    vec![
        Goal::BdRate {
            anchor: "x265-medium".into(),
            metric: QualityMetric::PsnrY,
            sets: vec!["dev".into(), "holdout".into()],
            at_most: -10.0,
        },
        Goal::BdRate {
            anchor: "default".into(),
            metric: QualityMetric::PsnrY,
            sets: vec!["dev".into()],
            at_most: -1.5,
        },
        Goal::BdRate {
            anchor: "default".into(),
            metric: QualityMetric::Ssim,
            sets: vec!["dev".into()],
            at_most: -1.5,
        },
        Goal::DecoderInstructionsPerPixel { at_most: 400.0 },
        Goal::LearnedMacPerPixel { at_most: 0.0 },
    ]
}

fn summary(progress: &[GoalProgress]) -> Vec<(Option<f64>, bool)> {
    progress.iter().map(|p| (p.value, p.met)).collect()
}

#[tokio::test]
async fn goal_progress_follows_the_best_program_and_its_holdout() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_data_dir(dir.path()).await.unwrap();
    let goals = goals_under_test();

    let empty = goals::progress(&store, &goals, None).await.unwrap();
    assert!(empty.iter().all(|p| p.value.is_none() && !p.met));
    assert!(empty[0].detail.starts_with("not measured yet"), "{empty:?}");

    let run = fill_run(&store).await;
    let progress = goals::progress(&store, &goals, Some(RUN)).await.unwrap();
    assert_eq!(
        summary(&progress),
        [
            (None, false),
            (Some(-2.0), true),
            (None, false),
            (Some(350.0), true),
            (Some(0.0), true)
        ]
    );
    assert_eq!(
        progress[0].detail,
        format!(
            "dev: -12.00 % (candidate {}); holdout: not measured yet",
            run.best
        )
    );
    assert!(
        progress[2]
            .detail
            .contains("compares psnr_y with the reference, not ssim"),
        "{}",
        progress[2].detail
    );
    assert!(!goals::all_met(&progress));

    // The holdout re-measurement of the best: the worse of the two sets counts. (The queued
    // experiments go first, so that the holdout's job is the next one claimed.)
    store.cancel(run.worse, "not needed").await.unwrap();
    store.cancel(run.pending, "not needed").await.unwrap();
    let holdout = experiment(&store, "holdout of the best", Some(-8.0)).await;
    program(
        &store,
        holdout,
        ProgramRole::Holdout,
        Some(run.best),
        default_genome(),
        Some((-1.0, scores(&[("clip-h", -1.0)], Some(351.0)))),
    )
    .await;
    let progress = goals::progress(&store, &goals, None).await.unwrap();
    assert_eq!(progress[0].value, Some(-8.0));
    assert!(!progress[0].met);
    assert!(
        progress[0]
            .detail
            .contains(&format!("holdout: -8.00 % (holdout {holdout})"))
    );

    // The goals an admin set replace the configured ones.
    store
        .put_setting(goals::SETTING, &serde_json::to_value(&goals[1..2]).unwrap())
        .await
        .unwrap();
    let effective = goals::effective(&store, &goals).await.unwrap();
    assert_eq!(effective, goals[1..2]);
    assert!(goals::all_met(
        &goals::progress(&store, &effective, None).await.unwrap()
    ));

    // When no candidate beats the reference, the reference is the best.
    let programs = store.programs(Some(RUN)).await.unwrap();
    let without_best: Vec<ProgramRecord> = programs
        .into_iter()
        .filter(|p| p.experiment_id != run.best)
        .collect();
    assert_eq!(
        goals::best_program(&without_best).map(|p| p.experiment_id),
        Some(run.reference)
    );
}

#[tokio::test]
async fn a_learned_mac_goal_holds_the_best_programs_streams_to_its_bound() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_data_dir(dir.path()).await.unwrap();
    let reference = experiment(&store, "the shipped default", None).await;
    program(
        &store,
        reference,
        ProgramRole::Reference,
        None,
        default_genome(),
        Some((0.0, scores(&[("clip-a", 0.0)], None))),
    )
    .await;
    let filtered = experiment(&store, "the learned filter on", None).await;
    let mut with_filter = scores(&[("clip-a", -3.0)], None);
    with_filter["learned_mac_per_pixel"] = json!(1296.0);
    program(
        &store,
        filtered,
        ProgramRole::Candidate,
        Some(reference),
        json!({"learned_filter": true}),
        Some((-3.0, with_filter)),
    )
    .await;
    let progress = |at_most: f64| {
        let store = &store;
        async move {
            let goals = [Goal::LearnedMacPerPixel { at_most }];
            goals::progress(store, &goals, Some(RUN))
                .await
                .unwrap()
                .remove(0)
        }
    };
    // The best program (the filtered one) is what the bound applies to.
    let over = progress(1000.0).await;
    assert_eq!((over.value, over.met), (Some(1296.0), false));
    assert_eq!(
        over.detail,
        format!("1296.0 multiply-accumulates per pixel (candidate {filtered})")
    );
    let within = progress(1296.0).await;
    assert_eq!((within.value, within.met), (Some(1296.0), true));

    // Scores stored before the figure existed: not measured, so not met.
    let mut older = scores(&[("clip-a", -4.0)], None);
    older
        .as_object_mut()
        .unwrap()
        .remove("learned_mac_per_pixel");
    let unmeasured = experiment(&store, "scored before the figure", None).await;
    program(
        &store,
        unmeasured,
        ProgramRole::Candidate,
        Some(reference),
        default_genome(),
        Some((-4.0, older)),
    )
    .await;
    let missing = progress(1e9).await;
    assert_eq!((missing.value, missing.met), (None, false));
    assert_eq!(
        missing.detail,
        format!("not measured yet (candidate {unmeasured})")
    );
}

#[tokio::test]
async fn the_report_shows_a_budget_pause_the_best_program_goals_spend_and_next_steps() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_data_dir(dir.path()).await.unwrap();
    let run = fill_run(&store).await;
    let turn = PlannerLogEntry {
        experiment_id: Some(run.pending),
        planner: "llm".into(),
        model: Some("fake-model".into()),
        prompt: "p".into(),
        reply: "r".into(),
        hypothesis: Some("a | wider motion search".into()),
        reasoning: String::new(),
        outcome: "proposed".into(),
        detail: None,
        input_tokens: Some(1000),
        output_tokens: Some(200),
        cost_usd: Some(5.02),
    };
    store.log_planner(&turn).await.unwrap();
    let reason = "daily LLM budget reached: $5.02 of $5.00";
    store
        .set_lab_status(&LabStatus::new(
            RunState::Paused,
            Some(reason.into()),
            "budget",
        ))
        .await
        .unwrap();
    Alerter::new(AlertConfig::default())
        .send(
            &store,
            "budget",
            None,
            "daily LLM budget at 95 %: $4.80 of $5.00",
        )
        .await
        .unwrap();
    let config = LabConfig {
        budget: BudgetConfig {
            llm_usd_per_day: Some(5.0),
            ..BudgetConfig::default()
        },
        goals: goals_under_test(),
        ..LabConfig::default()
    };

    let report = report::build(&store, &config, None, None).await.unwrap();
    assert_eq!(report.status.state, RunState::Paused);
    assert_eq!(report.budget.blocked.as_deref(), Some(reason));
    assert_eq!(report.run_id.as_deref(), Some(RUN));
    assert_eq!(
        (report.experiments.completed, report.experiments.queued),
        (2, 2)
    );
    let best = report.best.as_ref().unwrap();
    assert_eq!(best.experiment_id, run.best);
    assert_eq!(best.genome_changes.len(), 1);
    assert_eq!(best.genome_changes[0].name, "deblock");
    assert_eq!(best.dev.as_ref().unwrap().mean, Some(-2.0));
    assert_eq!(best.holdout, None);
    assert_eq!(
        report.reference.as_ref().unwrap().experiment_id,
        run.reference
    );
    assert_eq!(report.goals.len(), 5);
    assert_eq!(report.alerts.len(), 1);
    assert_eq!(report.next.pending.len(), 1);
    assert_eq!(report.next.pending[0].experiment_id, run.pending);
    assert_eq!(
        report
            .next
            .last_turn
            .as_ref()
            .unwrap()
            .hypothesis
            .as_deref(),
        Some("a | wider motion search")
    );

    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["status"]["state"], "paused");
    assert_eq!(json["status"]["reason"], reason);
    assert_eq!(json["budget"]["blocked"], reason);
    assert_eq!(json["budget"]["usage"][0]["used"], 5.02);
    assert_eq!(json["best"]["dev"]["per_clip"]["clip-b"], -2.5);
    assert_eq!(json["goals"][1]["met"], true);

    let markdown = report.to_markdown();
    let expected: Vec<String> = vec![
        "**paused** (set by budget since ".to_string(),
        format!("): {reason}"),
        format!("Budget: {reason}."),
        "| 2 | 0 | 0 | 0 | 2 |".to_string(),
        format!(
            "Experiment {} (candidate, by evolve, parent {})",
            run.best, run.reference
        ),
        "| clip-b | -2.50 % |".to_string(),
        "| **mean** | -2.00 % |".to_string(),
        format!(
            "| deblock | {} | {} |",
            best.genome_changes[0].default, best.genome_changes[0].value
        ),
        "holdout: not measured yet.".to_string(),
        "| daily LLM budget | day | $5.02 of $5.00 | 100 % |".to_string(),
        "| decoder instructions per pixel at most 400 | 350.00 | yes |".to_string(),
        "| learned multiply-accumulates per pixel at most 0 | 0.00 | yes |".to_string(),
        "Decoder instructions per pixel: 350.0; learned multiply-accumulates per pixel: 0.0; \
         encode time: 1.50 s."
            .to_string(),
        "daily LLM budget at 95 %".to_string(),
        "hypothesis: a \\| wider motion search".to_string(),
        format!("| {} | queued |", run.pending),
    ];
    for expected in &expected {
        assert!(
            markdown.contains(expected.as_str()),
            "missing `{expected}` in\n{markdown}"
        );
    }

    // Counted since a moment after everything: nothing ended since, the queue is still there.
    let later = report::build(&store, &config, Some(report.generated_at_ms + 1), Some(RUN))
        .await
        .unwrap();
    assert_eq!(
        (later.experiments.completed, later.experiments.queued),
        (0, 2)
    );
    assert!(later.alerts.is_empty());

    let artifacts = Artifacts::open(&dir.path().join("artifacts").display().to_string()).unwrap();
    let keys = report::store_report(&artifacts, &report).await.unwrap();
    let stamp: String = report
        .generated_at
        .chars()
        .filter(|c| !matches!(c, '-' | ':'))
        .collect();
    assert_eq!(
        keys,
        [
            format!("reports/{stamp}.md"),
            format!("reports/{stamp}.json")
        ]
    );
    assert_eq!(
        artifacts.get(&keys[0]).await.unwrap(),
        markdown.into_bytes()
    );
    let stored: Value = serde_json::from_slice(&artifacts.get(&keys[1]).await.unwrap()).unwrap();
    assert_eq!(stored, json);
}
