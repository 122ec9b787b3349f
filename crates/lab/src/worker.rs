//! Workers: claim a job with a lease, keep the lease alive with heartbeats while the point is
//! measured, hand the point in (idempotently), analyse the experiment when it was the last job,
//! and start over. Any number of workers, in one process or on many machines, share a queue.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;

use crate::lab::{Lab, LabError};
use crate::store::control::RunState;

/// How a worker behaves.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// Unique among live workers: it owns leases.
    pub name: String,
    /// How long a claimed job stays this worker's without a heartbeat.
    pub lease: Duration,
    /// How often the lease is renewed (well under `lease`).
    pub heartbeat: Duration,
    /// How long to wait when the queue is empty.
    pub idle_poll: Duration,
    /// Stop when no job is queued or running anywhere.
    pub exit_when_idle: bool,
}

impl WorkerConfig {
    /// A worker named after the host, the process and `index`, with a 60 s lease.
    pub fn new(index: usize) -> Self {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "host".into());
        WorkerConfig {
            name: format!("{host}:{}:{index}", std::process::id()),
            lease: Duration::from_secs(60),
            heartbeat: Duration::from_secs(10),
            idle_poll: Duration::from_millis(500),
            exit_when_idle: false,
        }
    }
}

/// What a worker did before it stopped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct WorkerStats {
    pub jobs_done: u64,
    pub jobs_failed: u64,
    pub jobs_lost: u64,
    pub experiments_analysed: u64,
}

/// Events a worker reports, for progress displays.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum WorkerEvent {
    Claimed {
        worker: String,
        job: i64,
        experiment: i64,
        clip: String,
        rate_point: String,
    },
    Done {
        worker: String,
        job: i64,
        experiment: i64,
    },
    Failed {
        worker: String,
        job: i64,
        experiment: i64,
        reason: String,
    },
    Analysed {
        experiment: i64,
    },
}

/// Runs a worker until `shutdown` turns true (or, with `exit_when_idle`, the queue is empty).
/// On shutdown a job in progress is handed back to the queue. While the lab is paused it claims
/// no new job.
pub async fn run_worker(
    lab: Arc<Lab>,
    config: WorkerConfig,
    mut shutdown: watch::Receiver<bool>,
    events: Option<tokio::sync::mpsc::UnboundedSender<WorkerEvent>>,
) -> Result<WorkerStats, LabError> {
    let mut stats = WorkerStats::default();
    let report = |event: WorkerEvent| {
        if let Some(events) = &events {
            let _ = events.send(event);
        }
    };
    let lease_ms = config.lease.as_millis() as i64;
    loop {
        if *shutdown.borrow() {
            return Ok(stats);
        }
        lab.store.requeue_expired().await?;
        lab.store.reconcile().await?;
        if lab.store.lab_status().await?.state == RunState::Paused {
            tokio::select! {
                _ = tokio::time::sleep(config.idle_poll) => {}
                _ = shutdown.changed() => {}
            }
            continue;
        }
        let Some(job) = lab.store.claim_job(&config.name, lease_ms).await? else {
            let analysed = lab.analyse_pending().await?;
            stats.experiments_analysed += analysed as u64;
            if config.exit_when_idle {
                let counts = lab.store.queue_counts().await?;
                if counts.queued == 0 && counts.running == 0 {
                    return Ok(stats);
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(config.idle_poll) => {}
                _ = shutdown.changed() => {}
            }
            continue;
        };
        report(WorkerEvent::Claimed {
            worker: config.name.clone(),
            job: job.id,
            experiment: job.experiment_id,
            clip: job.clip_id.clone(),
            rate_point: job.rate_point.to_string(),
        });
        let (lost_tx, mut lost_rx) = watch::channel(false);
        let heartbeat = {
            let store = lab.store.clone();
            let name = config.name.clone();
            let period = config.heartbeat;
            let held = job.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(period).await;
                    match store.heartbeat(&held, &name, lease_ms).await {
                        Ok(true) => {}
                        Ok(false) => {
                            let _ = lost_tx.send(true);
                            return;
                        }
                        Err(err) => tracing::warn!("heartbeat of job {}: {err}", held.id),
                    }
                }
            })
        };
        let outcome = tokio::select! {
            outcome = lab.execute(&job) => Some(outcome),
            _ = shutdown.changed() => None,
            _ = lost_rx.changed() => {
                // The lease went to another worker (or the experiment ended): drop the work,
                // which kills the programs measuring it (see `Lab::execute`).
                stats.jobs_lost += 1;
                heartbeat.abort();
                continue;
            }
        };
        heartbeat.abort();
        let Some(outcome) = outcome else {
            lab.store.release_job(&job, &config.name).await?;
            return Ok(stats);
        };
        match outcome? {
            Ok(output) => {
                // A worker whose lease went elsewhere uploads nothing (its hand-in would be
                // refused anyway); checking renews the lease for the upload.
                if !lab.store.heartbeat(&job, &config.name, lease_ms).await? {
                    stats.jobs_lost += 1;
                    continue;
                }
                lab.store_point_artifacts(&job, &output).await?;
                let finished = lab
                    .store
                    .finish_job(&job, &config.name, &output.record)
                    .await?;
                if !finished.accepted {
                    // The lease went to another worker meanwhile: its hand-in counts, not ours.
                    stats.jobs_lost += 1;
                    continue;
                }
                stats.jobs_done += 1;
                report(WorkerEvent::Done {
                    worker: config.name.clone(),
                    job: job.id,
                    experiment: job.experiment_id,
                });
                if finished.experiment_completed && lab.analyse(job.experiment_id).await? {
                    stats.experiments_analysed += 1;
                    report(WorkerEvent::Analysed {
                        experiment: job.experiment_id,
                    });
                }
            }
            Err(reason) => {
                if !lab.store.fail_job(&job, &reason).await? {
                    stats.jobs_lost += 1;
                    continue;
                }
                stats.jobs_failed += 1;
                report(WorkerEvent::Failed {
                    worker: config.name.clone(),
                    job: job.id,
                    experiment: job.experiment_id,
                    reason,
                });
            }
        }
    }
}
