//! The job queue: claims, leases, hand-ins, failures, and what they do to experiments.
//!
//! # Invariants
//!
//! - **Fencing.** Every claim increases the job's `lease_token`, and [`ClaimedJob`] carries the
//!   token it was claimed with. A heartbeat, hand-in, failure or release changes the job only
//!   while the job is `running` under that very token, checked by the same statement that writes
//!   (and, for hand-ins and failures, in the same transaction as every other write they make).
//!   A worker whose lease expired and went to another worker therefore writes nothing: its
//!   point, its failure and its release are refused, and it learns so from the return value.
//! - **One clock.** Lease expiry, heartbeats and every time written here are the database's
//!   clock ([`Store::db_now_ms`]), never a worker's: a worker whose clock is off neither loses
//!   its own leases nor takes over others'.
//! - **One transaction per outcome.** A job's end and its experiment's change of state commit
//!   together: a hand-in that completes the experiment, a failure that fails it, an exhausted
//!   lease that fails it. No crash can leave a job failed under a running experiment.
//! - **Reconciliation.** [`Store::reconcile`], run by workers as they start and before each
//!   claim, settles anything an older program or a crash left inconsistent: an experiment still
//!   live with no job left to run fails (some job did not succeed) or completes (all did), and
//!   open jobs of an ended experiment are cancelled.
//! - **Immutable ends.** Nothing here moves an experiment out of `completed`, `failed`,
//!   `cancelled` or `analysed`; the database's trigger refuses it besides (see [`super`]).

use sqlx::Row;

use super::{ClaimedJob, ExperimentState, FinishOutcome, Result, Store, corrupt};
use crate::runner::PointRecord;
use crate::spec::RatePoint;

type Transaction = sqlx::Transaction<'static, sqlx::Any>;

impl Store {
    /// Claims the oldest queued job of a live experiment for `worker`, with a lease of
    /// `lease_ms` on the database's clock and a fresh lease token, and marks its experiment
    /// running.
    pub async fn claim_job(&self, worker: &str, lease_ms: i64) -> Result<Option<ClaimedJob>> {
        let now = self.db_now_ms();
        let lock = match self.backend {
            super::Backend::Postgres => "FOR UPDATE OF j SKIP LOCKED",
            super::Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE jobs SET state = 'running', lease_owner = $1, lease_expires = {now} + $2, \
             heartbeat_at = {now}, attempts = attempts + 1, lease_token = lease_token + 1, \
             updated_at = {now} \
             WHERE id = (SELECT j.id FROM jobs j JOIN experiments e ON e.id = j.experiment_id \
             WHERE j.state = 'queued' AND e.state IN ('queued', 'running') \
             ORDER BY (e.anchor_name IS NOT NULL), j.id LIMIT 1 {lock}) \
             RETURNING id, experiment_id, clip_id, rate_index, rate_point, attempts, lease_token"
        );
        let mut tx = self.begin_write().await?;
        let Some(row) = sqlx::query(&sql)
            .bind(worker)
            .bind(lease_ms)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(None);
        };
        let id: i64 = row.try_get("id")?;
        let point_text: String = row.try_get("rate_point")?;
        let job = ClaimedJob {
            id,
            experiment_id: row.try_get("experiment_id")?,
            clip_id: row.try_get("clip_id")?,
            rate_index: row.try_get("rate_index")?,
            rate_point: serde_json::from_str(&point_text)
                .map_err(|e| corrupt(format!("job {id} rate point"), e))?,
            attempts: row.try_get("attempts")?,
            lease_token: row.try_get("lease_token")?,
        };
        sqlx::query(&format!(
            "UPDATE experiments SET state = 'running', started_at = {now} \
             WHERE id = $1 AND state = 'queued'"
        ))
        .bind(job.experiment_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(job))
    }

    /// Extends the lease of a job this worker holds under `job`'s token. False: the lease is no
    /// longer this worker's (it expired and the job went to another, or the experiment ended).
    pub async fn heartbeat(&self, job: &ClaimedJob, worker: &str, lease_ms: i64) -> Result<bool> {
        let now = self.db_now_ms();
        let changed = sqlx::query(&format!(
            "UPDATE jobs SET lease_expires = {now} + $1, heartbeat_at = {now}, updated_at = {now} \
             WHERE id = $2 AND lease_token = $3 AND lease_owner = $4 AND state = 'running'"
        ))
        .bind(lease_ms)
        .bind(job.id)
        .bind(job.lease_token)
        .bind(worker)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(changed == 1)
    }

    /// Hands in a job's measured point, if the job's lease is still held under `job`'s token
    /// (otherwise nothing is written and `accepted` is false). The point is written at most once
    /// per (experiment, clip, rate point); the job becomes `done` and, when it was the
    /// experiment's last, the experiment becomes `completed`, all in one transaction.
    pub async fn finish_job(
        &self,
        job: &ClaimedJob,
        worker: &str,
        record: &PointRecord,
    ) -> Result<FinishOutcome> {
        let now = self.db_now_ms();
        let record_text = serde_json::to_string(record).map_err(|e| corrupt("point record", e))?;
        let mut tx = self.begin_write().await?;
        if !self.end_held_job(&mut tx, job, "done", None).await? {
            return Ok(FinishOutcome {
                accepted: false,
                inserted: false,
                experiment_completed: false,
            });
        }
        let inserted = sqlx::query(&format!(
            "INSERT INTO rd_points (experiment_id, job_id, clip_id, rate_index, record, bytes, \
             kbps, psnr_y, psnr_yuv, ssim, ms_ssim, vmaf, worker, created_at, measure_seconds) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, {now}, $14) \
             ON CONFLICT (experiment_id, clip_id, rate_index) DO NOTHING"
        ))
        .bind(job.experiment_id)
        .bind(job.id)
        .bind(&job.clip_id)
        .bind(job.rate_index)
        .bind(&record_text)
        .bind(record.bytes as i64)
        .bind(record.kbps)
        .bind(record.quality(crate::runner::QualityMetric::PsnrY))
        .bind(record.quality(crate::runner::QualityMetric::PsnrYuv))
        .bind(record.quality(crate::runner::QualityMetric::Ssim))
        .bind(record.quality(crate::runner::QualityMetric::MsSsim))
        .bind(record.quality(crate::runner::QualityMetric::Vmaf))
        .bind(worker)
        .bind(record.encode.wall_seconds + record.decode.wall_seconds)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        let completed = self.complete_if_done(&mut tx, job.experiment_id).await? == 1;
        tx.commit().await?;
        Ok(FinishOutcome {
            accepted: true,
            inserted,
            experiment_completed: completed,
        })
    }

    /// A job failed for a reason that another attempt would not change (bad spec, encoder
    /// crash, dropped frame): the job and its experiment fail with that reason, in one
    /// transaction, if the job's lease is still held under `job`'s token. Returns whether it
    /// was (false: nothing was written).
    pub async fn fail_job(&self, job: &ClaimedJob, reason: &str) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        if !self
            .end_held_job(&mut tx, job, "failed", Some(reason))
            .await?
        {
            return Ok(false);
        }
        let experiment_reason = format!("{} at {}: {reason}", job.clip_id, job.rate_point);
        self.end_experiment_in(
            &mut tx,
            job.experiment_id,
            ExperimentState::Failed,
            &experiment_reason,
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Gives a job back to the queue (a worker shutting down, or a transient error), if its
    /// lease is still held under `job`'s token. Returns whether it was.
    pub async fn release_job(&self, job: &ClaimedJob, worker: &str) -> Result<bool> {
        let now = self.db_now_ms();
        let changed = sqlx::query(&format!(
            "UPDATE jobs SET state = 'queued', lease_owner = NULL, attempts = attempts - 1, \
             updated_at = {now} \
             WHERE id = $1 AND lease_token = $2 AND lease_owner = $3 AND state = 'running'"
        ))
        .bind(job.id)
        .bind(job.lease_token)
        .bind(worker)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(changed == 1)
    }

    /// Returns jobs whose lease ran out (on the database's clock) to the queue; a job that used
    /// up its attempts fails instead, and its experiment with it in the same transaction.
    /// Returns how many jobs were requeued.
    pub async fn requeue_expired(&self) -> Result<u64> {
        let now = self.db_now_ms();
        let mut tx = self.begin_write().await?;
        let exhausted = sqlx::query(&format!(
            "UPDATE jobs SET state = 'failed', lease_owner = NULL, updated_at = {now}, \
             error = 'the lease expired on every attempt (worker lost or too slow)' \
             WHERE state = 'running' AND lease_expires < {now} AND attempts >= max_attempts \
             RETURNING experiment_id, attempts"
        ))
        .fetch_all(&mut *tx)
        .await?;
        for row in &exhausted {
            let experiment: i64 = row.try_get("experiment_id")?;
            let attempts: i64 = row.try_get("attempts")?;
            let reason = format!(
                "a job's lease expired on all {attempts} attempts (worker lost or too slow)"
            );
            self.end_experiment_in(&mut tx, experiment, ExperimentState::Failed, &reason)
                .await?;
        }
        let requeued = sqlx::query(&format!(
            "UPDATE jobs SET state = 'queued', lease_owner = NULL, updated_at = {now} \
             WHERE state = 'running' AND lease_expires < {now}"
        ))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(requeued)
    }

    /// Settles what a crash or an older program left inconsistent, in one transaction: a live
    /// experiment none of whose jobs is left to run fails (with its failed job's error) unless
    /// every job is done, in which case it completes; open jobs of an ended experiment are
    /// cancelled. Returns how many experiments it settled.
    pub async fn reconcile(&self) -> Result<u64> {
        let now = self.db_now_ms();
        let mut tx = self.begin_write().await?;
        sqlx::query(&format!(
            "UPDATE jobs SET state = 'cancelled', lease_owner = NULL, updated_at = {now} \
             WHERE state IN ('queued', 'running') AND experiment_id IN \
             (SELECT id FROM experiments WHERE state NOT IN ('queued', 'running'))"
        ))
        .execute(&mut *tx)
        .await?;
        let unfinished = sqlx::query(
            "SELECT id FROM experiments e WHERE e.state IN ('queued', 'running') \
             AND EXISTS (SELECT 1 FROM jobs j WHERE j.experiment_id = e.id AND j.state <> 'done') \
             AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.experiment_id = e.id \
             AND j.state IN ('queued', 'running'))",
        )
        .fetch_all(&mut *tx)
        .await?;
        let mut settled = 0;
        for row in &unfinished {
            let id: i64 = row.try_get("id")?;
            let job = sqlx::query(
                "SELECT clip_id, rate_point, state, error FROM jobs \
                 WHERE experiment_id = $1 AND state <> 'done' ORDER BY id LIMIT 1",
            )
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
            let clip: String = job.try_get("clip_id")?;
            let point_text: String = job.try_get("rate_point")?;
            let point: RatePoint = serde_json::from_str(&point_text)
                .map_err(|e| corrupt(format!("a job of {id}: rate point"), e))?;
            let state: String = job.try_get("state")?;
            let error: Option<String> = job.try_get("error")?;
            let error = error.unwrap_or_else(|| format!("the job was {state}"));
            let reason = format!("{clip} at {point}: {error}");
            settled += self
                .end_experiment_in(&mut tx, id, ExperimentState::Failed, &reason)
                .await? as u64;
        }
        let completed = sqlx::query(
            "SELECT id FROM experiments e WHERE e.state = 'running' \
             AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.experiment_id = e.id \
             AND j.state <> 'done')",
        )
        .fetch_all(&mut *tx)
        .await?;
        for row in &completed {
            settled += self.complete_if_done(&mut tx, row.try_get("id")?).await?;
        }
        tx.commit().await?;
        Ok(settled)
    }

    /// Ends a queued or running experiment in `tx` (failed or cancelled, with its reason) and
    /// cancels its open jobs. Returns false when it had ended already: the first outcome stays.
    pub(super) async fn end_experiment_in(
        &self,
        tx: &mut Transaction,
        id: i64,
        state: ExperimentState,
        reason: &str,
    ) -> Result<bool> {
        let now = self.db_now_ms();
        let changed = sqlx::query(&format!(
            "UPDATE experiments SET state = $1, reason = $2, finished_at = {now} \
             WHERE id = $3 AND state IN ('queued', 'running')"
        ))
        .bind(state.name())
        .bind(reason)
        .bind(id)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        if changed == 1 {
            sqlx::query(&format!(
                "UPDATE jobs SET state = 'cancelled', lease_owner = NULL, updated_at = {now} \
                 WHERE experiment_id = $1 AND state IN ('queued', 'running')"
            ))
            .bind(id)
            .execute(&mut **tx)
            .await?;
        }
        Ok(changed == 1)
    }

    /// Moves a running job held under `job`'s token to `state` (`done` or `failed`, with its
    /// error). Returns whether the lease was held, i.e. whether anything changed.
    async fn end_held_job(
        &self,
        tx: &mut Transaction,
        job: &ClaimedJob,
        state: &str,
        error: Option<&str>,
    ) -> Result<bool> {
        let now = self.db_now_ms();
        let changed = sqlx::query(&format!(
            "UPDATE jobs SET state = $1, lease_owner = NULL, error = $2, updated_at = {now} \
             WHERE id = $3 AND lease_token = $4 AND state = 'running'"
        ))
        .bind(state)
        .bind(error)
        .bind(job.id)
        .bind(job.lease_token)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        Ok(changed == 1)
    }

    /// Completes a running experiment every job of which is done. Returns 1 when it did.
    async fn complete_if_done(&self, tx: &mut Transaction, id: i64) -> Result<u64> {
        let now = self.db_now_ms();
        Ok(sqlx::query(&format!(
            "UPDATE experiments SET state = 'completed', finished_at = {now} \
             WHERE id = $1 AND state = 'running' \
             AND NOT EXISTS (SELECT 1 FROM jobs WHERE experiment_id = $1 AND state <> 'done')"
        ))
        .bind(id)
        .execute(&mut **tx)
        .await?
        .rows_affected())
    }
}
