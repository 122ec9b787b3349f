//! The store behaves the same on SQLite and on a real PostgreSQL server: lifecycle, leases,
//! idempotent results, attempts, immutability, and claims that never hand a job out twice.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use codeclab_lab::experiment::ExperimentSpec;
use codeclab_lab::goals;
use codeclab_lab::process::StepCost;
use codeclab_lab::runner::PointRecord;
use codeclab_lab::spec::RatePoint;
use codeclab_lab::store::control::{LabStatus, RunState};
use codeclab_lab::store::programs::{ProgramRecord, ProgramRole};
use codeclab_lab::store::{ExperimentState, PlannerLogEntry, Store, StoreError};

fn spec(clips: &[&str], points: &[u32]) -> ExperimentSpec {
    ExperimentSpec {
        codec: serde_json::json!({"kind": "lab", "genome": {"keyint": 30}}),
        parents: vec![],
        proposer: "test".into(),
        hypothesis: "store behaviour".into(),
        clips: clips.iter().map(|c| c.to_string()).collect(),
        rate_points: points.iter().map(|&q| RatePoint::Qp(q)).collect(),
        anchors: vec![],
    }
}

fn record(point: RatePoint, bytes: u64) -> PointRecord {
    PointRecord {
        rate_point: point,
        clip_sha256: "00".into(),
        frames: 10,
        width: 96,
        height: 64,
        fps: "30/1".into(),
        bytes,
        kbps: bytes as f64 * 8.0 * 30.0 / 10.0 / 1000.0,
        metrics: BTreeMap::from([("psnr_y".to_string(), 40.0), ("ssim".to_string(), 0.98)]),
        encode: StepCost::default(),
        decode: StepCost::default(),
        decoder_instructions_per_pixel: None,
        learned_mac_per_pixel: None,
        bitstream_sha256: "ab".into(),
        codec_version: "test".into(),
    }
}

async fn lifecycle(store: &Store) {
    assert_eq!(
        store.schema_version().await.unwrap(),
        codeclab_lab::store::migrations::MIGRATIONS.len() as i64
    );
    let id = store
        .submit(&spec(&["a", "b"], &[22, 32]), None, None, 3)
        .await
        .unwrap();
    let record0 = store.experiment(id).await.unwrap().unwrap();
    assert_eq!(record0.state, ExperimentState::Queued);
    assert_eq!(store.job_counts(id).await.unwrap().queued, 4);

    let first = store.claim_job("w1", 60_000).await.unwrap().unwrap();
    assert_eq!((first.experiment_id, first.attempts), (id, 1));
    assert_eq!(
        store.experiment(id).await.unwrap().unwrap().state,
        ExperimentState::Running
    );
    assert!(store.heartbeat(&first, "w1", 60_000).await.unwrap());
    assert!(!store.heartbeat(&first, "w2", 60_000).await.unwrap());
    let done = store
        .finish_job(&first, "w1", &record(first.rate_point, 1000))
        .await
        .unwrap();
    assert!(done.inserted && !done.experiment_completed);
    // Handing the same point in again (a worker that lost its lease and finished anyway)
    // writes nothing.
    let again = store
        .finish_job(&first, "w1", &record(first.rate_point, 999))
        .await
        .unwrap();
    assert!(!again.inserted);
    let points = store.points(id).await.unwrap();
    assert_eq!(points.len(), 1);
    assert_eq!(points[0].record.bytes, 1000);

    // An expired lease returns the job to the queue, and it goes to the next worker.
    let second = store.claim_job("w1", 1).await.unwrap().unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    assert_eq!(store.requeue_expired().await.unwrap(), 1);
    let retaken = store.claim_job("w2", 60_000).await.unwrap().unwrap();
    assert_eq!((retaken.id, retaken.attempts), (second.id, 2));
    assert!(!store.heartbeat(&second, "w1", 60_000).await.unwrap());

    let mut completed = 0;
    let mut job = Some(retaken);
    while let Some(current) = job {
        let outcome = store
            .finish_job(&current, "w2", &record(current.rate_point, 500))
            .await
            .unwrap();
        completed += outcome.experiment_completed as usize;
        job = store.claim_job("w2", 60_000).await.unwrap();
    }
    assert_eq!(completed, 1, "exactly one hand-in completes the experiment");
    assert_eq!(store.points(id).await.unwrap().len(), 4);
    assert_eq!(
        store.experiment(id).await.unwrap().unwrap().state,
        ExperimentState::Completed
    );

    let analysis = serde_json::json!({"curves": {}, "bd_rates": []});
    assert!(store.record_analysis(id, &analysis).await.unwrap());
    assert!(
        !store
            .record_analysis(id, &serde_json::json!({"changed": true}))
            .await
            .unwrap(),
        "results are written once"
    );
    assert_eq!(store.analysis(id).await.unwrap(), Some(analysis));
    assert!(matches!(
        store.cancel(id, "too late").await,
        Err(StoreError::InvalidState { .. })
    ));

    // Attempts are capped: a job whose lease keeps expiring fails its experiment.
    let capped = store
        .submit(&spec(&["a"], &[30]), Some(id), None, 1)
        .await
        .unwrap();
    assert_eq!(
        store.experiment(capped).await.unwrap().unwrap().rerun_of,
        Some(id)
    );
    store.claim_job("w3", 1).await.unwrap().unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    assert_eq!(store.requeue_expired().await.unwrap(), 0);
    let failed = store.experiment(capped).await.unwrap().unwrap();
    assert_eq!(failed.state, ExperimentState::Failed);
    assert!(failed.reason.unwrap().contains("lease expired"));

    // Cancelling takes the queued jobs out of the queue.
    let cancelled = store
        .submit(&spec(&["a"], &[30, 35]), None, None, 3)
        .await
        .unwrap();
    store.cancel(cancelled, "operator").await.unwrap();
    assert!(store.claim_job("w4", 60_000).await.unwrap().is_none());
    assert_eq!(store.job_counts(cancelled).await.unwrap().cancelled, 2);
    assert_eq!(store.events(10).await.unwrap()[0].kind, "cancel");

    let entry = PlannerLogEntry {
        experiment_id: None,
        planner: "llm".into(),
        model: Some("m".into()),
        prompt: "p".into(),
        reply: "r".into(),
        hypothesis: Some("h".into()),
        reasoning: "because".into(),
        outcome: "proposed".into(),
        detail: None,
        input_tokens: Some(10),
        output_tokens: None,
        cost_usd: Some(0.5),
    };
    let log_id = store.log_planner(&entry).await.unwrap();
    let unpriced = PlannerLogEntry {
        outcome: "error".into(),
        detail: Some("HTTP 529".into()),
        cost_usd: None,
        input_tokens: None,
        ..entry.clone()
    };
    store.log_planner(&unpriced).await.unwrap();
    store.link_planner_turn(log_id, id).await.unwrap();
    let turns = store.planner_turns(id).await.unwrap();
    assert_eq!(turns.len(), 1);
    assert_eq!(turns[0].id, log_id);
    assert_eq!(
        turns[0].entry,
        PlannerLogEntry {
            experiment_id: Some(id),
            ..entry
        }
    );
    let newest = store.planner_log(5).await.unwrap();
    assert_eq!(newest.len(), 2);
    assert_eq!(newest[0].entry, unpriced);
    let spend = store.planner_spend(0).await.unwrap();
    assert_eq!((spend.usd, spend.turns, spend.unpriced_turns), (0.5, 2, 1));
    assert_eq!(spend.input_tokens, 10);
    assert_eq!(store.planner_spend(i64::MAX).await.unwrap().turns, 0);
    control_and_programs(store, id).await;
    let listed = store
        .experiments(Some(ExperimentState::Analysed), 10)
        .await
        .unwrap();
    assert_eq!(listed.iter().map(|e| e.id).collect::<Vec<_>>(), vec![id]);
}

async fn control_and_programs(store: &Store, id: i64) {
    assert_eq!(store.lab_status().await.unwrap().state, RunState::Stopped);
    let paused = LabStatus::new(RunState::Paused, Some("budget".into()), "budget");
    store.set_lab_status(&paused).await.unwrap();
    assert_eq!(store.lab_status().await.unwrap(), paused);
    store
        .put_setting("goals", &serde_json::json!([{"metric": "psnr_y"}]))
        .await
        .unwrap();
    store
        .put_setting("goals", &serde_json::json!([]))
        .await
        .unwrap();
    assert_eq!(
        store.setting("goals").await.unwrap(),
        Some(serde_json::json!([]))
    );
    assert_eq!(store.setting("absent").await.unwrap(), None);

    store
        .record_admin_action("ops", "pause", None, "maintenance")
        .await
        .unwrap();
    store
        .record_admin_action("ops", "rerun", Some(id), "")
        .await
        .unwrap();
    let actions = store.admin_actions(10).await.unwrap();
    assert_eq!(
        actions
            .iter()
            .map(|a| (a.action.as_str(), a.experiment_id))
            .collect::<Vec<_>>(),
        vec![("rerun", Some(id)), ("pause", None)]
    );
    store.add_note(Some(id), "ops", "odd curve").await.unwrap();
    store.add_note(None, "ops", "lab note").await.unwrap();
    assert_eq!(store.notes(Some(id)).await.unwrap()[0].body, "odd curve");
    assert_eq!(store.notes(None).await.unwrap()[0].body, "lab note");

    let program = ProgramRecord {
        experiment_id: id,
        run_id: "run-1".into(),
        planner: "evolve".into(),
        role: ProgramRole::Candidate,
        parent: None,
        island: 2,
        stage: "dev".into(),
        genome: serde_json::json!({"lambda_scale": 0.9}),
        edits: serde_json::json!([]),
        features: None,
        fitness: None,
        scores: None,
        created_at: 0,
    };
    store.put_program(&program).await.unwrap();
    let scores = serde_json::json!({"bd_rate": {"a": -3.0}});
    store
        .set_program_result(
            id,
            Some(&serde_json::json!({"cell": [1, 2]})),
            Some(-3.0),
            &scores,
        )
        .await
        .unwrap();
    let stored = store.programs(Some("run-1")).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].fitness, Some(-3.0));
    assert_eq!(stored[0].scores, Some(scores));
    assert_eq!(stored[0].role, ProgramRole::Candidate);
    assert_eq!(stored[0].genome, program.genome);
    assert!(store.programs(Some("run-2")).await.unwrap().is_empty());
    assert_eq!(store.programs(None).await.unwrap().len(), 1);
}

/// Several stores (separate connection pools, as separate workers have) claim concurrently:
/// every job is handed out exactly once.
async fn concurrent_claims(url: &str) {
    let store = Store::open(url).await.unwrap();
    let points: Vec<u32> = (0..30).collect();
    store
        .submit(&spec(&["a"], &points), None, None, 3)
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for worker in 0..4 {
        let url = url.to_string();
        tasks.push(tokio::spawn(async move {
            let store = Store::open(&url).await.unwrap();
            let mut claimed = Vec::new();
            while let Some(job) = store
                .claim_job(&format!("w{worker}"), 60_000)
                .await
                .unwrap()
            {
                claimed.push(job.id);
            }
            claimed
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    let unique: BTreeSet<i64> = all.iter().copied().collect();
    assert_eq!(all.len(), 30, "every job claimed once: {all:?}");
    assert_eq!(unique.len(), 30);
}

/// A run's leaders (newest reference, best finite candidate, their holdouts) are what the
/// goal and overview code would choose from the run's full program list.
async fn run_leaders(store: &Store) {
    let program = |experiment_id: i64, run: &str, role, parent, fitness| ProgramRecord {
        experiment_id,
        run_id: run.into(),
        planner: "evolve".into(),
        role,
        parent,
        island: 0,
        stage: "dev".into(),
        genome: serde_json::json!({}),
        edits: serde_json::json!([]),
        features: None,
        fitness,
        scores: None,
        created_at: 0,
    };
    use ProgramRole::{Candidate, Holdout, Reference};
    let programs = [
        // An older run with a far better candidate: runs are never mixed.
        program(50, "run-old", Reference, None, Some(0.0)),
        program(51, "run-old", Candidate, Some(50), Some(-40.0)),
        program(100, "run-new", Reference, None, None),
        program(101, "run-new", Reference, None, Some(0.0)),
        program(102, "run-new", Candidate, Some(101), Some(-2.0)),
        program(103, "run-new", Candidate, Some(102), Some(-5.0)),
        program(104, "run-new", Candidate, Some(102), Some(-5.0)),
        program(105, "run-new", Candidate, Some(102), Some(f64::NAN)),
        program(
            106,
            "run-new",
            Candidate,
            Some(102),
            Some(f64::NEG_INFINITY),
        ),
        program(107, "run-new", Candidate, Some(102), None),
        program(108, "run-new", Holdout, Some(101), None),
        program(109, "run-new", Holdout, Some(103), None),
        program(110, "run-new", Holdout, Some(102), None),
        program(111, "run-new", Holdout, Some(104), None),
    ];
    for program in &programs {
        store.put_program(program).await.unwrap();
    }
    assert_eq!(
        store.newest_program_run().await.unwrap().as_deref(),
        Some("run-new")
    );
    let leaders = store.run_leaders("run-new").await.unwrap();
    let ids: Vec<i64> = leaders.iter().map(|p| p.experiment_id).collect();
    assert_eq!(ids, [101, 103, 108, 109]);
    let all = store.programs(Some("run-new")).await.unwrap();
    let best = goals::best_program(&all).unwrap();
    assert_eq!(goals::best_program(&leaders), Some(best));
    assert_eq!(
        goals::holdout_of(&leaders, best).map(|p| p.experiment_id),
        goals::holdout_of(&all, best).map(|p| p.experiment_id)
    );
    let old: Vec<i64> = store
        .run_leaders("run-old")
        .await
        .unwrap()
        .iter()
        .map(|p| p.experiment_id)
        .collect();
    assert_eq!(old, [50, 51]);
    assert!(store.run_leaders("no-such-run").await.unwrap().is_empty());
}

/// Schema 5 fills `measure_seconds` of points stored before schema 4 from their records, so a
/// compute budget still counts them.
async fn measuring_time_of_older_points(url: &str) {
    let store = Store::open(url).await.unwrap();
    store
        .submit(&spec(&["a"], &[22]), None, None, 3)
        .await
        .unwrap();
    let job = store.claim_job("w1", 60_000).await.unwrap().unwrap();
    let mut point = record(job.rate_point, 1000);
    point.encode.wall_seconds = 1.5;
    point.decode.wall_seconds = 0.25;
    store.finish_job(&job, "w1", &point).await.unwrap();
    assert_eq!(store.measuring_time(0).await.unwrap().seconds, 1.75);

    // Back to schema 4 with a point stored before it.
    let raw = sqlx::AnyPool::connect(url).await.unwrap();
    for statement in [
        "UPDATE rd_points SET measure_seconds = NULL",
        "DELETE FROM schema_migrations WHERE version = 5",
        "DROP INDEX programs_run_role_fitness",
        "DROP INDEX rd_points_created_seconds",
        "CREATE INDEX programs_fitness ON programs (fitness)",
        "CREATE INDEX rd_points_created ON rd_points (created_at)",
    ] {
        sqlx::query(statement).execute(&raw).await.unwrap();
    }
    raw.close().await;
    assert_eq!(store.measuring_time(0).await.unwrap().seconds, 0.0);
    store.close().await;

    let migrated = Store::open(url).await.unwrap();
    let time = migrated.measuring_time(0).await.unwrap();
    assert_eq!((time.seconds, time.points), (1.75, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_data_dir(dir.path()).await.unwrap();
    lifecycle(&store).await;
    // Opening again applies no migration twice.
    let reopened = Store::open_data_dir(dir.path()).await.unwrap();
    assert_eq!(
        reopened.schema_version().await.unwrap(),
        codeclab_lab::store::migrations::MIGRATIONS.len() as i64
    );
    let other = tempfile::tempdir().unwrap();
    concurrent_claims(&codeclab_lab::store::sqlite_url(
        &other.path().join("lab.sqlite"),
    ))
    .await;
    let leaders = tempfile::tempdir().unwrap();
    run_leaders(&Store::open_data_dir(leaders.path()).await.unwrap()).await;
    let older = tempfile::tempdir().unwrap();
    measuring_time_of_older_points(&codeclab_lab::store::sqlite_url(
        &older.path().join("lab.sqlite"),
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_store() {
    let Some(admin) = common::postgres_admin_url() else {
        return;
    };
    let url = common::fresh_postgres(&admin).await;
    let store = Store::open(&url).await.unwrap();
    assert_eq!(store.backend(), codeclab_lab::store::Backend::Postgres);
    lifecycle(&store).await;
    let reopened = Store::open(&url).await.unwrap();
    assert_eq!(
        reopened.schema_version().await.unwrap(),
        codeclab_lab::store::migrations::MIGRATIONS.len() as i64
    );
    concurrent_claims(&common::fresh_postgres(&admin).await).await;
    run_leaders(
        &Store::open(&common::fresh_postgres(&admin).await)
            .await
            .unwrap(),
    )
    .await;
}

#[tokio::test]
async fn unknown_database_url_is_an_error() {
    assert!(matches!(
        Store::open("mysql://localhost/x").await,
        Err(StoreError::Url(_))
    ));
}

#[tokio::test]
async fn anchor_jobs_are_claimed_after_every_other_job() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_data_dir(dir.path()).await.unwrap();
    let anchor = store
        .submit(&spec(&["a"], &[22]), None, Some("x265-medium"), 3)
        .await
        .unwrap();
    let planned = store
        .submit(&spec(&["a"], &[22, 27]), None, None, 3)
        .await
        .unwrap();
    let mut order = Vec::new();
    while let Some(job) = store.claim_job("w", 60_000).await.unwrap() {
        order.push(job.experiment_id);
    }
    assert_eq!(order, [planned, planned, anchor]);
}
