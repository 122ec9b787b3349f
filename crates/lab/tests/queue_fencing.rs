//! Lease tokens, reconciliation and the database's clock, on SQLite and (when the test servers
//! run) on PostgreSQL.

mod common;

use std::time::Duration;

use codeclab_lab::experiment::ExperimentSpec;
use codeclab_lab::spec::RatePoint;
use codeclab_lab::store::{ExperimentState, Store};
use sqlx::Connection;

const TEN_MINUTES_MS: i64 = 10 * 60 * 1000;

fn spec(points: &[u32]) -> ExperimentSpec {
    ExperimentSpec {
        codec: serde_json::json!({"kind": "lab", "genome": {"keyint": 30}}),
        parents: vec![],
        proposer: "test".into(),
        hypothesis: "fencing".into(),
        clips: vec!["a".into()],
        rate_points: points.iter().map(|&q| RatePoint::Qp(q)).collect(),
        anchors: vec![],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_needs_the_current_lease_token() {
    let dir = tempfile::tempdir().unwrap();
    for url in common::database_urls(dir.path()).await {
        let store = Store::open(&url).await.unwrap();
        let id = store.submit(&spec(&[30]), None, None, 3).await.unwrap();
        let stale = store.claim_job("w", 1).await.unwrap().unwrap();
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(store.requeue_expired().await.unwrap(), 1);
        let current = store.claim_job("w", 60_000).await.unwrap().unwrap();
        assert!(current.lease_token > stale.lease_token, "{url}");

        assert!(
            !store.heartbeat(&stale, "w", 60_000).await.unwrap(),
            "{url}"
        );
        assert!(
            store.heartbeat(&current, "w", 60_000).await.unwrap(),
            "{url}"
        );
        let refused = store
            .finish_job(&stale, "w", &common::point_record(stale.rate_point, 100))
            .await
            .unwrap();
        assert!(!refused.accepted && !refused.inserted, "{url}");
        assert!(!store.fail_job(&stale, "late").await.unwrap(), "{url}");
        assert!(!store.release_job(&stale, "w").await.unwrap(), "{url}");
        assert_eq!(store.job_counts(id).await.unwrap().running, 1, "{url}");

        let accepted = store
            .finish_job(
                &current,
                "w",
                &common::point_record(current.rate_point, 100),
            )
            .await
            .unwrap();
        assert!(accepted.accepted && accepted.inserted && accepted.experiment_completed);
        // Handing in again under the same token is refused too: the job is done.
        let again = store
            .finish_job(
                &current,
                "w",
                &common::point_record(current.rate_point, 100),
            )
            .await
            .unwrap();
        assert!(!again.accepted, "{url}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciliation_completes_or_fails_what_a_crash_left_running() {
    let dir = tempfile::tempdir().unwrap();
    for url in common::database_urls(dir.path()).await {
        let store = Store::open(&url).await.unwrap();
        let done = store.submit(&spec(&[30, 35]), None, None, 3).await.unwrap();
        let failed = store.submit(&spec(&[40]), None, None, 3).await.unwrap();
        let healthy = store.submit(&spec(&[45]), None, None, 3).await.unwrap();
        let mut claimed = Vec::new();
        while let Some(job) = store.claim_job("w", 60_000).await.unwrap() {
            claimed.push(job);
        }
        assert_eq!(claimed.len(), 4);
        let mut raw = sqlx::AnyConnection::connect(&url).await.unwrap();
        for job in &claimed {
            let (state, error) = match job.experiment_id {
                id if id == done => ("done", None),
                id if id == failed => ("failed", Some("decode mismatch")),
                _ => continue,
            };
            sqlx::query("UPDATE jobs SET state = $1, error = $2 WHERE id = $3")
                .bind(state)
                .bind(error)
                .bind(job.id)
                .execute(&mut raw)
                .await
                .unwrap();
        }

        assert_eq!(store.reconcile().await.unwrap(), 2, "{url}");
        let state = |id| {
            let store = store.clone();
            async move { store.experiment(id).await.unwrap().unwrap() }
        };
        assert_eq!(state(done).await.state, ExperimentState::Completed, "{url}");
        let failed_record = state(failed).await;
        assert_eq!(failed_record.state, ExperimentState::Failed, "{url}");
        assert_eq!(
            failed_record.reason.as_deref(),
            Some("a at qp 40: decode mismatch"),
            "{url}"
        );
        assert_eq!(
            state(healthy).await.state,
            ExperimentState::Running,
            "{url}"
        );
        assert_eq!(store.reconcile().await.unwrap(), 0, "settled once");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_follow_the_database_clock_not_a_worker_clock() {
    let dir = tempfile::tempdir().unwrap();
    for url in common::database_urls(dir.path()).await {
        let store = Store::open(&url).await.unwrap();
        let behind = store.with_clock_skew(-TEN_MINUTES_MS);
        let ahead = store.with_clock_skew(TEN_MINUTES_MS);
        let id = store.submit(&spec(&[30, 35]), None, None, 3).await.unwrap();

        // A worker whose clock is slow takes a one-minute lease: it is not expired at once.
        let slow_clock = behind.claim_job("slow", 60_000).await.unwrap().unwrap();
        assert_eq!(store.requeue_expired().await.unwrap(), 0, "{url}");
        // A worker whose clock is fast does not see a fresh lease as expired.
        let on_time = store.claim_job("on-time", 60_000).await.unwrap().unwrap();
        assert_eq!(ahead.requeue_expired().await.unwrap(), 0, "{url}");
        assert!(behind.heartbeat(&slow_clock, "slow", 60_000).await.unwrap());
        assert!(ahead.heartbeat(&on_time, "on-time", 60_000).await.unwrap());
        assert_eq!(store.job_counts(id).await.unwrap().running, 2, "{url}");

        // The lease's expiry is the database's now plus the lease.
        let mut raw = sqlx::AnyConnection::connect(&url).await.unwrap();
        let expires: i64 = sqlx::query_scalar("SELECT lease_expires FROM jobs WHERE id = $1")
            .bind(slow_clock.id)
            .fetch_one(&mut raw)
            .await
            .unwrap();
        let local_now = codeclab_lab::store::now_ms();
        assert!(
            (expires - (local_now + 60_000)).abs() < 5_000,
            "{url}: the lease ends at {expires}, {} ms from a minute after now",
            expires - (local_now + 60_000)
        );
    }
}
