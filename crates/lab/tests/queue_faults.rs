//! The queue under faults a slow worker causes, on SQLite and (when the test servers run) on
//! PostgreSQL: a worker whose lease expired and went elsewhere writes nothing more for the job,
//! ended experiments never change state, a crash between a job's failure and its experiment's is
//! settled when a worker starts, and two measurements of one job never share an artifact key.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use codeclab_lab::artifacts::Artifacts;
use codeclab_lab::experiment::ExperimentSpec;
use codeclab_lab::spec::{RatePoint, sha256_hex};
use codeclab_lab::store::{ClaimedJob, ExperimentState, Store, sqlite_url};
use codeclab_lab::worker::{WorkerConfig, run_worker};
use sqlx::Connection;
use tokio::sync::watch;

fn spec(codec: serde_json::Value, clip: &str, qp: u32) -> ExperimentSpec {
    ExperimentSpec {
        codec,
        parents: vec![],
        proposer: "test".into(),
        hypothesis: "faults".into(),
        clips: vec![clip.into()],
        rate_points: vec![RatePoint::Qp(qp)],
        anchors: vec![],
    }
}

fn lab_codec() -> serde_json::Value {
    serde_json::json!({"kind": "lab", "genome": {"keyint": 30}})
}

/// Submits a one-job experiment; returns it with a claim of its job whose lease has gone to
/// `next_worker` since (the stale claim) and the claim `next_worker` holds now.
async fn lease_lost_to(
    store: &Store,
    stale_worker: &str,
    next_worker: &str,
) -> (i64, ClaimedJob, ClaimedJob) {
    let id = store
        .submit(&spec(lab_codec(), "a", 30), None, None, 3)
        .await
        .unwrap();
    let stale = store.claim_job(stale_worker, 1).await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert_eq!(store.requeue_expired().await.unwrap(), 1);
    let current = store.claim_job(next_worker, 60_000).await.unwrap().unwrap();
    assert_eq!(current.id, stale.id);
    (id, stale, current)
}

async fn state(store: &Store, id: i64) -> ExperimentState {
    store.experiment(id).await.unwrap().unwrap().state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_failure_does_not_fail_a_completed_experiment() {
    let dir = tempfile::tempdir().unwrap();
    for url in common::database_urls(dir.path()).await {
        let store = Store::open(&url).await.unwrap();
        let (id, stale, current) = lease_lost_to(&store, "slow", "fast").await;
        let outcome = store
            .finish_job(
                &current,
                "fast",
                &common::point_record(current.rate_point, 100),
            )
            .await
            .unwrap();
        assert!(outcome.experiment_completed);
        // The slow worker's encoder finally crashes, and it reports the failure.
        let _ = store.fail_job(&stale, "encoder crashed").await.unwrap();
        assert_eq!(state(&store, id).await, ExperimentState::Completed, "{url}");
        assert_eq!(store.job_counts(id).await.unwrap().done, 1, "{url}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_hand_in_under_the_same_worker_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for url in common::database_urls(dir.path()).await {
        let store = Store::open(&url).await.unwrap();
        // A restarted worker keeps its name: only the lease token tells its claims apart.
        let (id, stale, current) = lease_lost_to(&store, "w", "w").await;
        let _ = store
            .finish_job(&stale, "w", &common::point_record(stale.rate_point, 999))
            .await
            .unwrap();
        assert!(store.points(id).await.unwrap().is_empty(), "{url}");
        assert_eq!(store.job_counts(id).await.unwrap().running, 1, "{url}");
        store
            .finish_job(
                &current,
                "w",
                &common::point_record(current.rate_point, 100),
            )
            .await
            .unwrap();
        let points = store.points(id).await.unwrap();
        assert_eq!(points.len(), 1, "{url}");
        assert_eq!(points[0].record.bytes, 100, "{url}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_release_does_not_requeue_a_job_another_claim_holds() {
    let dir = tempfile::tempdir().unwrap();
    for url in common::database_urls(dir.path()).await {
        let store = Store::open(&url).await.unwrap();
        let (id, stale, _current) = lease_lost_to(&store, "w", "w").await;
        let _ = store.release_job(&stale, "w").await.unwrap();
        let counts = store.job_counts(id).await.unwrap();
        assert_eq!((counts.running, counts.queued), (1, 0), "{url}");
        assert!(
            store.claim_job("other", 60_000).await.unwrap().is_none(),
            "{url}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ended_experiments_never_change_state() {
    let dir = tempfile::tempdir().unwrap();
    for url in common::database_urls(dir.path()).await {
        let store = Store::open(&url).await.unwrap();
        let id = store
            .submit(&spec(lab_codec(), "a", 30), None, None, 3)
            .await
            .unwrap();
        let job = store.claim_job("w", 60_000).await.unwrap().unwrap();
        store
            .finish_job(&job, "w", &common::point_record(job.rate_point, 100))
            .await
            .unwrap();
        assert_eq!(state(&store, id).await, ExperimentState::Completed);
        assert!(!store.fail_experiment(id, "late").await.unwrap(), "{url}");
        assert_eq!(state(&store, id).await, ExperimentState::Completed, "{url}");

        // The database itself refuses, whatever code path tries.
        let cancelled = store
            .submit(&spec(lab_codec(), "a", 35), None, None, 3)
            .await
            .unwrap();
        store.cancel(cancelled, "operator").await.unwrap();
        let mut raw = sqlx::AnyConnection::connect(&url).await.unwrap();
        for (experiment, to) in [(id, "failed"), (id, "running"), (cancelled, "queued")] {
            let changed = sqlx::query("UPDATE experiments SET state = $1 WHERE id = $2")
                .bind(to)
                .bind(experiment)
                .execute(&mut raw)
                .await;
            assert!(
                changed.is_err(),
                "{url}: experiment {experiment} became {to}"
            );
        }
        assert_eq!(state(&store, id).await, ExperimentState::Completed, "{url}");
        assert_eq!(state(&store, cancelled).await, ExperimentState::Cancelled);
        // Completed still leads to analysed.
        assert!(
            store
                .record_analysis(id, &serde_json::json!({}))
                .await
                .unwrap()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_starting_worker_settles_an_experiment_a_crash_left_running() {
    let dir = tempfile::tempdir().unwrap();
    let data_dirs = [dir.path().join("sqlite"), dir.path().join("postgres")];
    let mut databases = vec![None];
    if let Some(admin) = common::postgres_admin_url() {
        databases.push(Some(common::fresh_postgres(&admin).await));
    }
    for (data_dir, database) in data_dirs.iter().zip(databases) {
        let lab = Arc::new(common::lab(data_dir, database.as_deref()).await);
        let id = lab
            .store
            .submit(&spec(lab_codec(), "a", 30), None, None, 3)
            .await
            .unwrap();
        let job = lab.store.claim_job("w", 60_000).await.unwrap().unwrap();
        // What an older worker crashing between "job failed" and "experiment failed" leaves.
        let url = database
            .clone()
            .unwrap_or_else(|| sqlite_url(&data_dir.join("lab.sqlite")));
        let mut raw = sqlx::AnyConnection::connect(&url).await.unwrap();
        sqlx::query("UPDATE jobs SET state = 'failed', error = 'encoder crashed' WHERE id = $1")
            .bind(job.id)
            .execute(&mut raw)
            .await
            .unwrap();
        assert_eq!(state(&lab.store, id).await, ExperimentState::Running);

        let mut config = WorkerConfig::new(0);
        config.exit_when_idle = true;
        config.idle_poll = Duration::from_millis(50);
        let (_shutdown, receiver) = watch::channel(false);
        run_worker(lab.clone(), config, receiver, None)
            .await
            .unwrap();
        let record = lab.store.experiment(id).await.unwrap().unwrap();
        assert_eq!(record.state, ExperimentState::Failed, "{url}");
        assert!(
            record.reason.unwrap().contains("encoder crashed"),
            "the job's error is the experiment's reason"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_measurements_of_one_job_never_share_an_artifact_key() {
    let dir = tempfile::tempdir().unwrap();
    common::add_generated_clip(dir.path(), "dev_shapes", 3);
    let mut artifact_urls = vec![dir.path().join("artifacts").display().to_string()];
    if let Some(bucket) = common::s3_url() {
        artifact_urls.push(format!("{bucket}/faults-{}", std::process::id()));
    }
    for (round, artifacts) in artifact_urls.iter().enumerate() {
        let mut lab = common::lab(dir.path(), None).await;
        lab.artifacts = Artifacts::open(artifacts).unwrap();
        measure_one_job_twice(&lab, round).await;
    }
}

/// Measures round `round`'s job on two workers, the first of which lost its lease, and checks
/// what is stored.
async fn measure_one_job_twice(lab: &codeclab_lab::Lab, round: usize) {
    let id = lab
        .submit(&spec(lab_codec(), "dev_shapes", 37 + round as u32), None)
        .await
        .unwrap()
        .id;
    let stale = lab.store.claim_job("slow", 1).await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(30)).await;
    lab.store.requeue_expired().await.unwrap();
    let current = lab.store.claim_job("fast", 60_000).await.unwrap().unwrap();
    let measured = lab.execute(&current).await.unwrap().unwrap();
    // The slow worker's measurement of the same job came out different (another build of the
    // encoder, say): other bytes, and its own hash of them.
    let mut late = lab.execute(&stale).await.unwrap().unwrap();
    let mut other_bytes = std::fs::read(&late.bitstream).unwrap();
    other_bytes.push(0);
    std::fs::write(&late.bitstream, &other_bytes).unwrap();
    late.record.bitstream_sha256 = sha256_hex(&other_bytes);

    lab.store_point_artifacts(&current, &measured)
        .await
        .unwrap();
    lab.store
        .finish_job(&current, "fast", &measured.record)
        .await
        .unwrap();
    lab.store_point_artifacts(&stale, &late).await.unwrap();
    let _ = lab
        .store
        .finish_job(&stale, "slow", &late.record)
        .await
        .unwrap();

    let stored = lab.store.points(id).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(
        stored[0].record.bitstream_sha256,
        measured.record.bitstream_sha256
    );
    let prefix = format!("experiments/{id}/dev_shapes/0/");
    let mut bitstreams = BTreeMap::new();
    for key in lab.artifacts.list(&prefix).await.unwrap() {
        let bytes = lab.artifacts.get(&key).await.unwrap();
        let hash = sha256_hex(&bytes);
        assert!(
            key.contains(&hash),
            "{key} does not name its content {hash}"
        );
        if key.rsplit('/').next().unwrap().starts_with("bitstream.") {
            bitstreams.insert(hash, key);
        }
    }
    assert_eq!(
        bitstreams.len(),
        2,
        "both measurements are kept: {bitstreams:?}"
    );
    assert!(
        bitstreams.contains_key(&stored[0].record.bitstream_sha256),
        "the stored point's hash names a stored bitstream"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_measurement_kills_its_encoder_and_the_encoder_s_children() {
    let dir = tempfile::tempdir().unwrap();
    common::add_generated_clip(dir.path(), "dev_shapes", 3);
    // An ffmpeg whose encode never ends, and which started a child of its own.
    let pid_file = dir.path().join("encoder-child.pid");
    let ffmpeg = dir.path().join("ffmpeg");
    std::fs::write(
        &ffmpeg,
        format!(
            "#!/bin/sh\ncase \"$*\" in\n  *-nostdin*) sleep 120 & echo $! > {}; wait ;;\n  \
             *) echo 'ffmpeg version test libx265' ;;\nesac\n",
            pid_file.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&ffmpeg, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut lab = common::lab(dir.path(), None).await;
    lab.adapters.ffmpeg = ffmpeg;
    let codec = serde_json::json!({"kind": "ffmpeg", "encoder": "x265", "preset": "ultrafast"});
    lab.submit(&spec(codec, "dev_shapes", 30), None)
        .await
        .unwrap();
    let job = lab.store.claim_job("w", 60_000).await.unwrap().unwrap();

    // The worker drops the measurement when its lease is lost, as a timeout does here.
    let measuring = tokio::time::timeout(Duration::from_secs(3), lab.execute(&job)).await;
    assert!(measuring.is_err(), "the fake encoder ended: {measuring:?}");
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let pid = pid.trim();
    let gone = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
            stat.rsplit(')')
                .next()
                .is_some_and(|rest| rest.trim_start().starts_with('Z'))
        })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !gone() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        gone(),
        "the encoder's child {pid} outlived the abandoned measurement"
    );
}
