//! What budgets, rate limits, goals and reports read: spend and work over a time window,
//! experiment counts, recent planner turns and alert events.

use serde::Serialize;
use sqlx::Row;

use super::{Event, Result, Store};

/// Tokens of the model calls of one model whose cost was not recorded (no price was known when
/// the turn was logged).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct UnpricedModel {
    pub model: String,
    pub turns: i64,
    /// Calls that recorded both token counts (only these can be priced afterwards).
    pub turns_with_tokens: i64,
    /// Tokens of the calls that recorded both counts.
    pub input_tokens: i64,
    pub output_tokens: i64,
}

/// Worker time spent measuring over a window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct MeasuringTime {
    /// Encode plus decode wall seconds of every point handed in.
    pub seconds: f64,
    pub points: i64,
}

/// Experiments by state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ExperimentCounts {
    /// Measured (`completed` or `analysed`).
    pub completed: i64,
    pub failed: i64,
    pub cancelled: i64,
    pub running: i64,
    pub queued: i64,
}

/// A `LIKE` pattern matching the strings that start with `prefix` (its wildcards escaped).
fn like_prefix(prefix: &str) -> String {
    let mut pattern = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// Proposers that are not planners: experiments they submit do not count against planner caps.
const NON_PLANNER_PROPOSERS: &str = "('user', 'baseline')";

impl Store {
    /// Model calls since `since_ms` whose cost is unknown, by model.
    pub async fn unpriced_turns(&self, since_ms: i64) -> Result<Vec<UnpricedModel>> {
        let rows = sqlx::query(
            "SELECT model, COUNT(*) AS turns, \
             CAST(COALESCE(SUM(CASE WHEN input_tokens IS NOT NULL AND output_tokens IS NOT NULL \
             THEN 1 ELSE 0 END), 0) AS BIGINT) AS with_tokens, \
             CAST(COALESCE(SUM(CASE WHEN output_tokens IS NOT NULL THEN input_tokens END), 0) \
             AS BIGINT) AS input_tokens, \
             CAST(COALESCE(SUM(CASE WHEN input_tokens IS NOT NULL THEN output_tokens END), 0) \
             AS BIGINT) AS output_tokens \
             FROM planner_log WHERE created_at >= $1 AND cost_usd IS NULL AND model IS NOT NULL \
             GROUP BY model ORDER BY model",
        )
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(UnpricedModel {
                    model: row.try_get("model")?,
                    turns: row.try_get("turns")?,
                    turns_with_tokens: row.try_get("with_tokens")?,
                    input_tokens: row.try_get("input_tokens")?,
                    output_tokens: row.try_get("output_tokens")?,
                })
            })
            .collect()
    }

    /// Encode and decode seconds of the points handed in since `since_ms` (the pooled time
    /// workers spent measuring; metric time is not recorded per point).
    pub async fn measuring_time(&self, since_ms: i64) -> Result<MeasuringTime> {
        // Every point has `measure_seconds` since schema 5, so the sum reads only the index.
        let sql = "SELECT CAST(COALESCE(SUM(measure_seconds), 0.0) AS DOUBLE PRECISION) \
                   AS seconds, COUNT(*) AS points FROM rd_points WHERE created_at >= $1";
        let row = sqlx::query(sql)
            .bind(since_ms)
            .fetch_one(&self.pool)
            .await?;
        Ok(MeasuringTime {
            seconds: row.try_get("seconds")?,
            points: row.try_get("points")?,
        })
    }

    /// Turns of `planner` since `since_ms` that produced no experiment (rejected replies or
    /// changes, failed calls).
    pub async fn turns_without_experiment(&self, planner: &str, since_ms: i64) -> Result<i64> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM planner_log \
             WHERE planner = $1 AND created_at >= $2 AND outcome <> 'proposed'",
        )
        .bind(planner)
        .bind(since_ms)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("n")?)
    }

    /// Experiments submitted by planners (any proposer but `user` and `baseline`) since
    /// `since_ms`.
    pub async fn planner_experiments_since(&self, since_ms: i64) -> Result<i64> {
        let row = sqlx::query(&format!(
            "SELECT COUNT(*) AS n FROM experiments WHERE created_at >= $1 \
             AND proposer NOT IN {NON_PLANNER_PROPOSERS}"
        ))
        .bind(since_ms)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("n")?)
    }

    /// Times (Unix ms) of the model calls since `since_ms`, newest first.
    pub async fn model_call_times(&self, since_ms: i64) -> Result<Vec<i64>> {
        let rows = sqlx::query(
            "SELECT created_at FROM planner_log WHERE created_at >= $1 AND model IS NOT NULL \
             ORDER BY created_at DESC",
        )
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| Ok(row.try_get("created_at")?))
            .collect()
    }

    /// When the newest planner turn was logged.
    pub async fn last_planner_turn_at(&self) -> Result<Option<i64>> {
        let row = sqlx::query("SELECT MAX(created_at) AS at FROM planner_log")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("at")?)
    }

    /// Experiments by state: those still queued or running whenever they were submitted, the
    /// others only when they ended at or after `since_ms` (all of them when `None`).
    pub async fn experiment_counts(&self, since_ms: Option<i64>) -> Result<ExperimentCounts> {
        let rows = sqlx::query(
            "SELECT state, COUNT(*) AS n FROM experiments \
             WHERE state IN ('queued', 'running') OR COALESCE(finished_at, created_at) >= $1 \
             GROUP BY state",
        )
        .bind(since_ms.unwrap_or(i64::MIN))
        .fetch_all(&self.pool)
        .await?;
        let mut counts = ExperimentCounts::default();
        for row in rows {
            let state: String = row.try_get("state")?;
            let n: i64 = row.try_get("n")?;
            match state.as_str() {
                "completed" | "analysed" => counts.completed += n,
                "failed" => counts.failed += n,
                "cancelled" => counts.cancelled += n,
                "running" => counts.running += n,
                "queued" => counts.queued += n,
                other => return Err(super::corrupt("experiment state", other)),
            }
        }
        Ok(counts)
    }

    /// The newest events whose kind starts with `prefix`, newest first.
    pub async fn events_of_kind(&self, prefix: &str, limit: i64) -> Result<Vec<Event>> {
        let rows = sqlx::query(
            "SELECT id, kind, experiment_id, message, created_at FROM events \
             WHERE kind LIKE $1 ESCAPE '\\' ORDER BY id DESC LIMIT $2",
        )
        .bind(like_prefix(prefix))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Event {
                    id: row.try_get("id")?,
                    kind: row.try_get("kind")?,
                    experiment_id: row.try_get("experiment_id")?,
                    message: row.try_get("message")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect()
    }
}
