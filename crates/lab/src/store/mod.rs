//! The lab's records: one [`Store`] API over SQLite (embedded, WAL, in the data directory) and
//! PostgreSQL (shared between machines), with one schema applied by versioned migrations
//! ([`migrations::MIGRATIONS`]). Every other part of the lab (runner, workers, planners,
//! dashboard) reads and writes through this API only.
//!
//! # Tables
//!
//! | table | holds |
//! |---|---|
//! | `clips` | each clip an experiment ran on: geometry, frames, fps, sha256, set (dev/holdout) |
//! | `codecs` | codec specs by the sha256 of their canonical JSON |
//! | `experiments` | spec, proposer, hypothesis, parents, `rerun_of`, state and failure reason |
//! | `jobs` | one per (experiment, clip, rate point): the queue, with leases and attempts |
//! | `rd_points` | one measured point per job, written once (unique per experiment/clip/rate) |
//! | `results` | the analysis of a completed experiment (RD curves, BD-rates), written once |
//! | `anchors` | anchor curves: key (spec, clip, encoder version, ladder) → the experiment |
//! | `planner_log` | planner turns: prompts, replies, reasoning, outcome, tokens and cost |
//! | `programs` | the planner's program database: genome, edits, lineage, island, fitness |
//! | `events` | alerts and the loop's notices |
//! | `settings` | the lab's control state: status, budget, goals, promoted codec, admin token hash |
//! | `admin_actions` | every admin action, with time and actor |
//! | `notes` | notes on the lab or on an experiment |
//! | `experiment_summaries` | write-once table figures of analysed experiments (see [`listing`]) |
//!
//! # Experiment lifecycle
//!
//! `queued` → `running` (first job claimed) → `completed` (every job measured) → `analysed`
//! (results written); or `failed` (with a reason) or `cancelled` from `queued`/`running`.
//! `completed` leads only to `analysed`; nothing leaves `analysed`, `failed` or `cancelled`: a
//! rerun is a new experiment whose `rerun_of` names the old one. A trigger on `experiments`
//! refuses any other change of state, whichever code path attempts it.
//!
//! # Queue
//!
//! Claims, leases, hand-ins, failures and their effect on experiments live in [`queue`], whose
//! module documentation states the queue's invariants. Times are Unix milliseconds.

pub mod control;
pub mod listing;
pub mod migrations;
pub mod programs;
pub mod queue;
pub mod usage;

use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};

use crate::experiment::ExperimentSpec;
use crate::runner::PointRecord;
use crate::spec::RatePoint;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("unsupported database URL `{0}`: use sqlite:PATH or postgres://...")]
    Url(String),
    #[error("migration {version} ({name}): {source}")]
    Migration {
        version: i64,
        name: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("the database has schema version {found}, newer than this program's {known}")]
    NewerSchema { found: i64, known: i64 },
    #[error("stored record is unreadable ({what}): {message}")]
    Corrupt { what: String, message: String },
    #[error("experiment {0} does not exist")]
    NoSuchExperiment(i64),
    #[error("experiment {id} is {state}: {action} is not possible")]
    InvalidState {
        id: i64,
        state: ExperimentState,
        action: &'static str,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Which database the store talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Where an experiment is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExperimentState {
    Queued,
    Running,
    Completed,
    Failed,
    Analysed,
    Cancelled,
}

impl ExperimentState {
    pub fn name(self) -> &'static str {
        match self {
            ExperimentState::Queued => "queued",
            ExperimentState::Running => "running",
            ExperimentState::Completed => "completed",
            ExperimentState::Failed => "failed",
            ExperimentState::Analysed => "analysed",
            ExperimentState::Cancelled => "cancelled",
        }
    }

    /// No further change will happen.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            ExperimentState::Failed | ExperimentState::Analysed | ExperimentState::Cancelled
        )
    }
}

impl std::fmt::Display for ExperimentState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

impl FromStr for ExperimentState {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        [
            ExperimentState::Queued,
            ExperimentState::Running,
            ExperimentState::Completed,
            ExperimentState::Failed,
            ExperimentState::Analysed,
            ExperimentState::Cancelled,
        ]
        .into_iter()
        .find(|state| state.name() == s)
        .ok_or_else(|| format!("unknown experiment state `{s}`"))
    }
}

/// An experiment as stored.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ExperimentRecord {
    pub id: i64,
    /// The codec spec's hash (see [`crate::spec::CodecSpec::hash`]).
    pub codec_hash: String,
    pub spec: ExperimentSpec,
    pub rerun_of: Option<i64>,
    /// Set when this experiment computes an anchor curve.
    pub anchor_name: Option<String>,
    pub state: ExperimentState,
    /// Why it failed or was cancelled.
    pub reason: Option<String>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

/// Job counts of one experiment by state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct JobCounts {
    pub queued: i64,
    pub running: i64,
    pub done: i64,
    pub failed: i64,
    pub cancelled: i64,
}

impl JobCounts {
    pub fn total(&self) -> i64 {
        self.queued + self.running + self.done + self.failed + self.cancelled
    }
}

/// A job a worker holds the lease of.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClaimedJob {
    pub id: i64,
    pub experiment_id: i64,
    pub clip_id: String,
    pub rate_index: i64,
    pub rate_point: RatePoint,
    /// Including this one.
    pub attempts: i64,
    /// The fencing token of this claim: larger than any earlier claim's of the job. Every
    /// write about the job is refused once the token is no longer the job's current one.
    pub lease_token: i64,
}

/// A measured point as stored.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StoredPoint {
    pub experiment_id: i64,
    pub job_id: i64,
    pub clip_id: String,
    pub rate_index: i64,
    pub record: PointRecord,
    pub worker: String,
    pub created_at: i64,
}

/// What handing in a job's point did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct FinishOutcome {
    /// The worker still held the job's lease: the job is done. False: the lease had gone to
    /// another worker or the experiment ended, and nothing was written.
    pub accepted: bool,
    /// This call wrote the point (false: it was already there, from an earlier attempt).
    pub inserted: bool,
    /// This call moved the experiment to `completed`: the caller should analyse it.
    pub experiment_completed: bool,
}

/// A row of the planner log: one planner turn (one model call, or one offline proposal).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlannerLogEntry {
    /// The experiment the turn produced; `None` when it produced none (rejected, failed call).
    pub experiment_id: Option<i64>,
    pub planner: String,
    /// The model, for LLM planners.
    pub model: Option<String>,
    pub prompt: String,
    pub reply: String,
    pub hypothesis: Option<String>,
    pub reasoning: String,
    /// `proposed` (became an experiment), `rejected` (the reply or its change was unusable) or
    /// `error` (the call failed).
    pub outcome: String,
    /// Why it was rejected or failed, as fed back to the planner.
    pub detail: Option<String>,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub cost_usd: Option<f64>,
}

impl PlannerLogEntry {
    /// A turn of `planner` with its outcome and nothing else: the caller sets what the turn has
    /// (model, prompt, reply, reasoning, tokens, cost).
    pub fn new(planner: &str, outcome: &str) -> Self {
        PlannerLogEntry {
            experiment_id: None,
            planner: planner.into(),
            model: None,
            prompt: String::new(),
            reply: String::new(),
            hypothesis: None,
            reasoning: String::new(),
            outcome: outcome.into(),
            detail: None,
            input_tokens: None,
            output_tokens: None,
            cost_usd: None,
        }
    }
}

/// A planner log row as stored.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlannerLogRecord {
    pub id: i64,
    pub created_at: i64,
    #[serde(flatten)]
    pub entry: PlannerLogEntry,
}

/// What the planner spent over a period.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PlannerSpend {
    pub usd: f64,
    pub turns: i64,
    /// Model calls whose price is unknown (not counted in `usd`).
    pub unpriced_turns: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
}

/// An admin action or alert.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Event {
    pub id: i64,
    pub kind: String,
    pub experiment_id: Option<i64>,
    pub message: String,
    pub created_at: i64,
}

/// A stored anchor curve reference.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AnchorRecord {
    pub key: String,
    pub name: String,
    pub clip_id: String,
    pub experiment_id: i64,
}

/// The clip facts recorded beside results.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClipRecord {
    pub id: String,
    pub sha256: String,
    pub width: i64,
    pub height: i64,
    pub frames: i64,
    pub fps: String,
    pub clip_set: String,
    pub class: String,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn corrupt(what: impl Into<String>, message: impl ToString) -> StoreError {
    StoreError::Corrupt {
        what: what.into(),
        message: message.to_string(),
    }
}

/// The condition under which a change of an experiment's state is refused: results are
/// immutable once an experiment ended (`completed` may only become `analysed`).
macro_rules! leaves_final_state {
    () => {
        "(OLD.state IN ('analysed', 'failed', 'cancelled') AND NEW.state <> OLD.state) \
         OR (OLD.state = 'completed' AND NEW.state NOT IN ('completed', 'analysed'))"
    };
}

const SQLITE_EXPERIMENT_STATE_GUARD: &str = concat!(
    "CREATE TRIGGER experiments_immutable_end BEFORE UPDATE OF state ON experiments WHEN ",
    leaves_final_state!(),
    " BEGIN SELECT RAISE(ABORT, 'an ended experiment cannot change state'); END"
);

const POSTGRES_EXPERIMENT_STATE_GUARD_FUNCTION: &str = concat!(
    "CREATE FUNCTION experiments_immutable_end() RETURNS trigger LANGUAGE plpgsql AS $$ \
     BEGIN IF ",
    leaves_final_state!(),
    " THEN RAISE EXCEPTION 'experiment % is %: an ended experiment cannot change state', \
     OLD.id, OLD.state; END IF; RETURN NEW; END $$"
);

const POSTGRES_EXPERIMENT_STATE_GUARD_TRIGGER: &str = "CREATE TRIGGER experiments_immutable_end \
     BEFORE UPDATE OF state ON experiments FOR EACH ROW EXECUTE FUNCTION experiments_immutable_end()";

const EXPERIMENT_COLUMNS: &str = "id, codec_hash, spec, rerun_of, anchor_name, state, reason, \
                                  created_at, started_at, finished_at";

/// The lab's database.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// Added to this process's clock where the store records a local time (see
    /// [`Store::with_clock_skew`]); leases never read that clock.
    clock_skew_ms: i64,
}

impl Store {
    /// Opens `url` (`sqlite:PATH`, `sqlite://PATH` or `postgres://...`), creating an SQLite
    /// file if needed, and brings the schema up to date.
    pub async fn open(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            return Err(StoreError::Url(url.to_string()));
        };
        let url = match backend {
            Backend::Sqlite if !url.contains('?') => format!("{url}?mode=rwc"),
            _ => url.to_string(),
        };
        let options = AnyConnectOptions::from_str(&url)?;
        let mut pool_options = AnyPoolOptions::new().max_connections(match backend {
            Backend::Sqlite => 4,
            Backend::Postgres => 8,
        });
        if backend == Backend::Sqlite {
            pool_options = pool_options.after_connect(|conn, _| {
                Box::pin(async move {
                    // Writers wait for each other instead of failing at once.
                    sqlx::Executor::execute(&mut *conn, "PRAGMA busy_timeout = 30000").await?;
                    Ok(())
                })
            });
        }
        let pool = pool_options.connect_with(options).await?;
        if backend == Backend::Sqlite {
            // WAL lets readers (dashboard, CLI) read while workers write; it is persistent.
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await?;
        }
        let store = Store {
            pool,
            backend,
            clock_skew_ms: 0,
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Opens the SQLite database of a data directory (`DIR/lab.sqlite`), creating both.
    pub async fn open_data_dir(dir: &Path) -> Result<Store> {
        std::fs::create_dir_all(dir)?;
        Store::open(&sqlite_url(&dir.join("lab.sqlite"))).await
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The same database as seen from a machine whose clock is `skew_ms` off: every time this
    /// handle records from the local clock is shifted. Leases and heartbeats take the
    /// database's clock, so such a machine neither loses nor steals leases.
    pub fn with_clock_skew(&self, skew_ms: i64) -> Store {
        Store {
            clock_skew_ms: skew_ms,
            ..self.clone()
        }
    }

    /// This machine's clock, as the store records it (creation times, log entries).
    fn local_now_ms(&self) -> i64 {
        now_ms() + self.clock_skew_ms
    }

    /// The database's clock in Unix milliseconds, as an SQL expression: the one clock every
    /// worker shares, so that leases do not depend on any worker's clock.
    fn db_now_ms(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)",
            Backend::Postgres => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
        }
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    fn dialect(&self, sql: &str) -> String {
        let (id, float) = match self.backend {
            Backend::Sqlite => ("INTEGER PRIMARY KEY AUTOINCREMENT", "REAL"),
            Backend::Postgres => (
                "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
                "DOUBLE PRECISION",
            ),
        };
        let record_wall_seconds = |step: &str| match self.backend {
            Backend::Sqlite => {
                format!("COALESCE(json_extract(record, '$.{step}.wall_seconds'), 0.0)")
            }
            Backend::Postgres => format!(
                "COALESCE(CAST(CAST(record AS json) -> '{step}' ->> 'wall_seconds' \
                 AS DOUBLE PRECISION), 0.0)"
            ),
        };
        let (guard_function, guard_trigger) = match self.backend {
            Backend::Sqlite => ("", SQLITE_EXPERIMENT_STATE_GUARD),
            Backend::Postgres => (
                POSTGRES_EXPERIMENT_STATE_GUARD_FUNCTION,
                POSTGRES_EXPERIMENT_STATE_GUARD_TRIGGER,
            ),
        };
        sql.replace("{id}", id)
            .replace("{float}", float)
            .replace(
                "{point_wall_seconds}",
                &format!(
                    "{} + {}",
                    record_wall_seconds("encode"),
                    record_wall_seconds("decode")
                ),
            )
            .replace("{experiment_state_guard_function}", guard_function)
            .replace("{experiment_state_guard_trigger}", guard_trigger)
    }

    /// A write transaction that holds the write lock from its start on SQLite, so that
    /// concurrent read-then-write sequences never interleave.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        let statement = match self.backend {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        };
        Ok(self.pool.begin_with(statement).await?)
    }

    /// Serialises schema changes between processes: PostgreSQL's transaction-scoped advisory
    /// lock (SQLite's immediate transaction already holds the write lock).
    async fn lock_schema(&self, tx: &mut sqlx::Transaction<'static, sqlx::Any>) -> Result<()> {
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock(7212604400591)")
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    /// The schema version the database is at (0: empty).
    pub async fn schema_version(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<i64, _>("v")?)
    }

    /// Applies every migration the database lacks, each in its own transaction, serialised
    /// between processes (an advisory lock on PostgreSQL, the write lock on SQLite).
    pub async fn migrate(&self) -> Result<()> {
        let mut tx = self.begin_write().await?;
        self.lock_schema(&mut tx).await?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, \
             name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        let known = migrations::MIGRATIONS.last().map_or(0, |m| m.version);
        for migration in migrations::MIGRATIONS {
            let mut tx = self.begin_write().await?;
            self.lock_schema(&mut tx).await?;
            let applied = sqlx::query("SELECT version FROM schema_migrations WHERE version = $1")
                .bind(migration.version)
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
            if applied {
                continue;
            }
            let fail = |source| StoreError::Migration {
                version: migration.version,
                name: migration.name,
                source,
            };
            let statements = migration.sql.split(';').map(|s| self.dialect(s));
            for statement in statements.filter(|s| !s.trim().is_empty()) {
                sqlx::query(&statement)
                    .execute(&mut *tx)
                    .await
                    .map_err(fail)?;
            }
            sqlx::query(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
            )
            .bind(migration.version)
            .bind(migration.name)
            .bind(self.local_now_ms())
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
            tx.commit().await.map_err(fail)?;
        }
        let found = self.schema_version().await?;
        if found > known {
            return Err(StoreError::NewerSchema { found, known });
        }
        Ok(())
    }

    // ---- clips and codecs ----

    /// Records the facts of a clip (the latest facts win: a clip id whose file changed gets
    /// its new hash, and results keep their own copy of the hash they were measured on).
    pub async fn put_clip(&self, clip: &ClipRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO clips (id, sha256, width, height, frames, fps, clip_set, class, recorded_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (id) DO UPDATE SET sha256 = excluded.sha256, width = excluded.width, \
             height = excluded.height, frames = excluded.frames, fps = excluded.fps, \
             clip_set = excluded.clip_set, class = excluded.class, recorded_at = excluded.recorded_at",
        )
        .bind(&clip.id)
        .bind(&clip.sha256)
        .bind(clip.width)
        .bind(clip.height)
        .bind(clip.frames)
        .bind(&clip.fps)
        .bind(&clip.clip_set)
        .bind(&clip.class)
        .bind(self.local_now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn clips(&self) -> Result<Vec<ClipRecord>> {
        let rows = sqlx::query(
            "SELECT id, sha256, width, height, frames, fps, clip_set, class FROM clips ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ClipRecord {
                    id: row.try_get("id")?,
                    sha256: row.try_get("sha256")?,
                    width: row.try_get("width")?,
                    height: row.try_get("height")?,
                    frames: row.try_get("frames")?,
                    fps: row.try_get("fps")?,
                    clip_set: row.try_get("clip_set")?,
                    class: row.try_get("class")?,
                })
            })
            .collect()
    }

    /// The codec spec (canonical JSON) stored under a hash.
    pub async fn codec(&self, hash: &str) -> Result<Option<serde_json::Value>> {
        let row = sqlx::query("SELECT spec FROM codecs WHERE hash = $1")
            .bind(hash)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| {
            let text: String = row.try_get("spec")?;
            serde_json::from_str(&text).map_err(|e| corrupt(format!("codec {hash}"), e))
        })
        .transpose()
    }

    // ---- experiments ----

    /// Records a new experiment and queues one job per (clip, rate point), in one transaction.
    pub async fn submit(
        &self,
        spec: &ExperimentSpec,
        rerun_of: Option<i64>,
        anchor_name: Option<&str>,
        max_attempts: i64,
    ) -> Result<i64> {
        let codec_text = spec.codec.to_string();
        let codec_hash = crate::spec::sha256_hex(codec_text.as_bytes());
        let spec_text = serde_json::to_string(spec).map_err(|e| corrupt("experiment spec", e))?;
        let now = self.local_now_ms();
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO codecs (hash, spec, label, created_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (hash) DO NOTHING",
        )
        .bind(&codec_hash)
        .bind(&codec_text)
        .bind(spec.codec_label())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query(
            "INSERT INTO experiments (codec_hash, spec, proposer, hypothesis, parents, rerun_of, \
                 anchor_name, state, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'queued', $8) \
                 RETURNING id",
        )
        .bind(&codec_hash)
        .bind(&spec_text)
        .bind(&spec.proposer)
        .bind(&spec.hypothesis)
        .bind(serde_json::to_string(&spec.parents).unwrap_or_else(|_| "[]".into()))
        .bind(rerun_of)
        .bind(anchor_name)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        let id: i64 = row.try_get("id")?;
        for clip in &spec.clips {
            for (index, point) in spec.rate_points.iter().enumerate() {
                sqlx::query(
                    "INSERT INTO jobs (experiment_id, clip_id, rate_index, rate_point, state, \
                         attempts, max_attempts, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, 'queued', 0, $5, $6, $6)",
                )
                .bind(id)
                .bind(clip)
                .bind(index as i64)
                .bind(serde_json::to_string(point).unwrap_or_default())
                .bind(max_attempts)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(id)
    }

    fn experiment_from_row(row: &AnyRow) -> Result<ExperimentRecord> {
        let id: i64 = row.try_get("id")?;
        let spec_text: String = row.try_get("spec")?;
        let state_text: String = row.try_get("state")?;
        Ok(ExperimentRecord {
            id,
            codec_hash: row.try_get("codec_hash")?,
            spec: serde_json::from_str(&spec_text)
                .map_err(|e| corrupt(format!("experiment {id} spec"), e))?,
            rerun_of: row.try_get("rerun_of")?,
            anchor_name: row.try_get("anchor_name")?,
            state: state_text
                .parse()
                .map_err(|e: String| corrupt(format!("experiment {id} state"), e))?,
            reason: row.try_get("reason")?,
            created_at: row.try_get("created_at")?,
            started_at: row.try_get("started_at")?,
            finished_at: row.try_get("finished_at")?,
        })
    }

    pub async fn experiment(&self, id: i64) -> Result<Option<ExperimentRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {EXPERIMENT_COLUMNS} FROM experiments WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(Self::experiment_from_row).transpose()
    }

    /// Experiments, newest first, optionally only those in one state.
    pub async fn experiments(
        &self,
        state: Option<ExperimentState>,
        limit: i64,
    ) -> Result<Vec<ExperimentRecord>> {
        let rows = match state {
            Some(state) => {
                sqlx::query(&format!(
                    "SELECT {EXPERIMENT_COLUMNS} FROM experiments WHERE state = $1 \
                     ORDER BY id DESC LIMIT $2"
                ))
                .bind(state.name())
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {EXPERIMENT_COLUMNS} FROM experiments ORDER BY id DESC LIMIT $1"
                ))
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter().map(Self::experiment_from_row).collect()
    }

    pub async fn job_counts(&self, experiment_id: i64) -> Result<JobCounts> {
        let rows = sqlx::query(
            "SELECT state, COUNT(*) AS n FROM jobs WHERE experiment_id = $1 GROUP BY state",
        )
        .bind(experiment_id)
        .fetch_all(&self.pool)
        .await?;
        let mut counts = JobCounts::default();
        for row in rows {
            let state: String = row.try_get("state")?;
            let n: i64 = row.try_get("n")?;
            match state.as_str() {
                "queued" => counts.queued = n,
                "running" => counts.running = n,
                "done" => counts.done = n,
                "failed" => counts.failed = n,
                "cancelled" => counts.cancelled = n,
                other => return Err(corrupt("job state", other)),
            }
        }
        Ok(counts)
    }

    /// Job counts over every experiment.
    pub async fn queue_counts(&self) -> Result<JobCounts> {
        let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state")
            .fetch_all(&self.pool)
            .await?;
        let mut counts = JobCounts::default();
        for row in rows {
            let state: String = row.try_get("state")?;
            let n: i64 = row.try_get("n")?;
            match state.as_str() {
                "queued" => counts.queued = n,
                "running" => counts.running = n,
                "done" => counts.done = n,
                "failed" => counts.failed = n,
                "cancelled" => counts.cancelled = n,
                other => return Err(corrupt("job state", other)),
            }
        }
        Ok(counts)
    }

    /// Fails a queued or running experiment, with its reason, and cancels its open jobs.
    /// Returns false when it had ended already (completed, analysed, failed or cancelled: the
    /// first outcome stays).
    pub async fn fail_experiment(&self, id: i64, reason: &str) -> Result<bool> {
        self.end_experiment(id, ExperimentState::Failed, reason)
            .await
    }

    /// Cancels a queued or running experiment (an operator's decision).
    pub async fn cancel(&self, id: i64, reason: &str) -> Result<()> {
        let record = self
            .experiment(id)
            .await?
            .ok_or(StoreError::NoSuchExperiment(id))?;
        if !self
            .end_experiment(id, ExperimentState::Cancelled, reason)
            .await?
        {
            return Err(StoreError::InvalidState {
                id,
                state: record.state,
                action: "cancel",
            });
        }
        self.log_event("cancel", Some(id), reason).await
    }

    async fn end_experiment(&self, id: i64, state: ExperimentState, reason: &str) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let ended = self.end_experiment_in(&mut tx, id, state, reason).await?;
        tx.commit().await?;
        Ok(ended)
    }

    /// Writes the analysis of a completed experiment and marks it `analysed`, once: a second
    /// call, or a call on an experiment that is not `completed`, changes nothing and returns
    /// false.
    pub async fn record_analysis(&self, id: i64, analysis: &serde_json::Value) -> Result<bool> {
        let now = self.local_now_ms();
        let mut tx = self.begin_write().await?;
        let changed = sqlx::query(
            "UPDATE experiments SET state = 'analysed' WHERE id = $1 AND state = 'completed'",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed == 1 {
            sqlx::query(
                "INSERT INTO results (experiment_id, analysis, created_at) VALUES ($1, $2, $3)",
            )
            .bind(id)
            .bind(analysis.to_string())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(changed == 1)
    }

    /// The analysis written by [`Store::record_analysis`].
    pub async fn analysis(&self, id: i64) -> Result<Option<serde_json::Value>> {
        let row = sqlx::query("SELECT analysis FROM results WHERE experiment_id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| {
            let text: String = row.try_get("analysis")?;
            serde_json::from_str(&text).map_err(|e| corrupt(format!("analysis of {id}"), e))
        })
        .transpose()
    }

    /// The measured points of an experiment, by clip then rate index.
    pub async fn points(&self, experiment_id: i64) -> Result<Vec<StoredPoint>> {
        let rows = sqlx::query(
            "SELECT experiment_id, job_id, clip_id, rate_index, record, worker, created_at \
             FROM rd_points WHERE experiment_id = $1 ORDER BY clip_id, rate_index",
        )
        .bind(experiment_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let text: String = row.try_get("record")?;
                Ok(StoredPoint {
                    experiment_id: row.try_get("experiment_id")?,
                    job_id: row.try_get("job_id")?,
                    clip_id: row.try_get("clip_id")?,
                    rate_index: row.try_get("rate_index")?,
                    record: serde_json::from_str(&text)
                        .map_err(|e| corrupt(format!("point of {experiment_id}"), e))?,
                    worker: row.try_get("worker")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect()
    }

    // ---- anchors ----

    pub async fn anchor(&self, key: &str) -> Result<Option<AnchorRecord>> {
        let row = sqlx::query(
            "SELECT anchor_key, name, clip_id, experiment_id FROM anchors WHERE anchor_key = $1",
        )
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(AnchorRecord {
                key: row.try_get("anchor_key")?,
                name: row.try_get("name")?,
                clip_id: row.try_get("clip_id")?,
                experiment_id: row.try_get("experiment_id")?,
            })
        })
        .transpose()
    }

    /// Points an anchor key at the experiment that computes it (replacing a failed one).
    pub async fn put_anchor(&self, anchor: &AnchorRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO anchors (anchor_key, name, clip_id, experiment_id, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (anchor_key) DO UPDATE \
             SET experiment_id = excluded.experiment_id, created_at = excluded.created_at",
        )
        .bind(&anchor.key)
        .bind(&anchor.name)
        .bind(&anchor.clip_id)
        .bind(anchor.experiment_id)
        .bind(self.local_now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    // ---- planner log and events ----

    pub async fn log_planner(&self, entry: &PlannerLogEntry) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO planner_log (experiment_id, planner, model, prompt, reply, hypothesis, \
             reasoning, outcome, detail, input_tokens, output_tokens, cost_usd, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id",
        )
        .bind(entry.experiment_id)
        .bind(&entry.planner)
        .bind(&entry.model)
        .bind(&entry.prompt)
        .bind(&entry.reply)
        .bind(&entry.hypothesis)
        .bind(&entry.reasoning)
        .bind(&entry.outcome)
        .bind(&entry.detail)
        .bind(entry.input_tokens)
        .bind(entry.output_tokens)
        .bind(entry.cost_usd)
        .bind(self.local_now_ms())
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("id")?)
    }

    /// Links a planner turn to the experiment it produced.
    pub async fn link_planner_turn(&self, log_id: i64, experiment_id: i64) -> Result<()> {
        sqlx::query("UPDATE planner_log SET experiment_id = $1 WHERE id = $2")
            .bind(experiment_id)
            .bind(log_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The newest planner log entries, newest first.
    pub async fn planner_log(&self, limit: i64) -> Result<Vec<PlannerLogRecord>> {
        self.planner_log_where("1 = 1", None, limit).await
    }

    /// The planner turns that produced (or were linked to) an experiment, oldest first.
    pub async fn planner_turns(&self, experiment_id: i64) -> Result<Vec<PlannerLogRecord>> {
        self.planner_log_where("experiment_id = $1", Some(experiment_id), i64::MAX)
            .await
    }

    async fn planner_log_where(
        &self,
        condition: &str,
        experiment_id: Option<i64>,
        limit: i64,
    ) -> Result<Vec<PlannerLogRecord>> {
        let (order, limit_slot) = if experiment_id.is_some() {
            ("ASC", "$2")
        } else {
            ("DESC", "$1")
        };
        let sql = format!(
            "SELECT id, created_at, experiment_id, planner, model, prompt, reply, hypothesis, \
             reasoning, outcome, detail, input_tokens, output_tokens, cost_usd FROM planner_log \
             WHERE {condition} ORDER BY id {order} LIMIT {limit_slot}"
        );
        let mut query = sqlx::query(&sql);
        if let Some(id) = experiment_id {
            query = query.bind(id);
        }
        let rows = query.bind(limit).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| {
                Ok(PlannerLogRecord {
                    id: row.try_get("id")?,
                    created_at: row.try_get("created_at")?,
                    entry: PlannerLogEntry {
                        experiment_id: row.try_get("experiment_id")?,
                        planner: row.try_get("planner")?,
                        model: row.try_get("model")?,
                        prompt: row.try_get("prompt")?,
                        reply: row.try_get("reply")?,
                        hypothesis: row.try_get("hypothesis")?,
                        reasoning: row.try_get("reasoning")?,
                        outcome: row.try_get("outcome")?,
                        detail: row.try_get("detail")?,
                        input_tokens: row.try_get("input_tokens")?,
                        output_tokens: row.try_get("output_tokens")?,
                        cost_usd: row.try_get("cost_usd")?,
                    },
                })
            })
            .collect()
    }

    /// LLM spend and calls since `since_ms`: (dollars with a known price, turns, turns whose
    /// cost is unknown).
    pub async fn planner_spend(&self, since_ms: i64) -> Result<PlannerSpend> {
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(cost_usd), 0.0) AS DOUBLE PRECISION) AS usd, COUNT(*) AS turns, \
             CAST(COALESCE(SUM(CASE WHEN cost_usd IS NULL AND model IS NOT NULL THEN 1 ELSE 0 END), 0) \
             AS BIGINT) AS unpriced, CAST(COALESCE(SUM(input_tokens), 0) AS BIGINT) AS input_tokens, \
             CAST(COALESCE(SUM(output_tokens), 0) AS BIGINT) AS output_tokens \
             FROM planner_log WHERE created_at >= $1",
        )
        .bind(since_ms)
        .fetch_one(&self.pool)
        .await?;
        Ok(PlannerSpend {
            usd: row.try_get("usd")?,
            turns: row.try_get("turns")?,
            unpriced_turns: row.try_get("unpriced")?,
            input_tokens: row.try_get("input_tokens")?,
            output_tokens: row.try_get("output_tokens")?,
        })
    }

    pub async fn log_event(
        &self,
        kind: &str,
        experiment_id: Option<i64>,
        message: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO events (kind, experiment_id, message, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(kind)
        .bind(experiment_id)
        .bind(message)
        .bind(self.local_now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The newest events, newest first.
    pub async fn events(&self, limit: i64) -> Result<Vec<Event>> {
        let rows = sqlx::query(
            "SELECT id, kind, experiment_id, message, created_at FROM events ORDER BY id DESC LIMIT $1",
        )
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

/// The `sqlite:` URL of a database file.
pub fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}
