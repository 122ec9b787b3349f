//! The lab's control state, admin actions and notes.
//!
//! Settings are named JSON values (`status`, `budget`, `goals`, `promoted_codec`,
//! `admin_token_sha256`, ...); the status has a typed accessor because the loop, the workers and
//! the dashboard all act on it.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::{Result, Store, corrupt, now_ms};

/// Whether the lab is working.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// The planner proposes and the workers measure.
    Running,
    /// No new proposals and no new jobs; jobs in progress finish.
    Paused,
    /// Asked to stop: the loop ends once jobs in progress are handed back.
    Stopping,
    /// Not running (never started, finished, or stopped).
    Stopped,
}

/// The lab's status and why it is so.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LabStatus {
    pub state: RunState,
    /// Why, in words (e.g. "paused by admin", "daily LLM budget of $5.00 reached").
    pub reason: Option<String>,
    /// Who set it: `admin:<actor>`, `budget`, `goals`, `loop`.
    pub by: String,
    /// Unix milliseconds.
    pub since: i64,
}

impl LabStatus {
    pub fn new(state: RunState, reason: Option<String>, by: impl Into<String>) -> Self {
        LabStatus {
            state,
            reason,
            by: by.into(),
            since: now_ms(),
        }
    }
}

/// A recorded admin action.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AdminAction {
    pub id: i64,
    pub actor: String,
    pub action: String,
    pub experiment_id: Option<i64>,
    pub detail: String,
    pub created_at: i64,
}

/// A note on the lab (no experiment) or on an experiment.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Note {
    pub id: i64,
    pub experiment_id: Option<i64>,
    pub author: String,
    pub body: String,
    pub created_at: i64,
}

const STATUS: &str = "status";

impl Store {
    /// A setting's value, `None` if never set.
    pub async fn setting(&self, name: &str) -> Result<Option<serde_json::Value>> {
        let row = sqlx::query("SELECT value FROM settings WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| {
            let text: String = row.try_get("value")?;
            serde_json::from_str(&text).map_err(|e| corrupt(format!("setting {name}"), e))
        })
        .transpose()
    }

    /// Stores `value` under `name` unless the setting exists; whether it was stored (of two
    /// processes racing to create a setting, exactly one wins).
    pub async fn put_setting_if_absent(
        &self,
        name: &str,
        value: &serde_json::Value,
    ) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO settings (name, value, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(value.to_string())
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn put_setting(&self, name: &str, value: &serde_json::Value) -> Result<()> {
        sqlx::query(
            "INSERT INTO settings (name, value, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(name)
        .bind(value.to_string())
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The lab's status (`stopped` when never set).
    pub async fn lab_status(&self) -> Result<LabStatus> {
        Ok(match self.setting(STATUS).await? {
            Some(value) => serde_json::from_value(value).map_err(|e| corrupt(STATUS, e))?,
            None => LabStatus {
                state: RunState::Stopped,
                reason: None,
                by: "loop".into(),
                since: 0,
            },
        })
    }

    pub async fn set_lab_status(&self, status: &LabStatus) -> Result<()> {
        let value = serde_json::to_value(status).map_err(|e| corrupt(STATUS, e))?;
        self.put_setting(STATUS, &value).await
    }

    /// Records an admin action (who did what, when, to which experiment).
    pub async fn record_admin_action(
        &self,
        actor: &str,
        action: &str,
        experiment_id: Option<i64>,
        detail: &str,
    ) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO admin_actions (actor, action, experiment_id, detail, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(actor)
        .bind(action)
        .bind(experiment_id)
        .bind(detail)
        .bind(now_ms())
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("id")?)
    }

    /// The newest admin actions, newest first.
    pub async fn admin_actions(&self, limit: i64) -> Result<Vec<AdminAction>> {
        let rows = sqlx::query(
            "SELECT id, actor, action, experiment_id, detail, created_at FROM admin_actions \
             ORDER BY id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(AdminAction {
                    id: row.try_get("id")?,
                    actor: row.try_get("actor")?,
                    action: row.try_get("action")?,
                    experiment_id: row.try_get("experiment_id")?,
                    detail: row.try_get("detail")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect()
    }

    pub async fn add_note(
        &self,
        experiment_id: Option<i64>,
        author: &str,
        body: &str,
    ) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO notes (experiment_id, author, body, created_at) VALUES ($1, $2, $3, $4) \
             RETURNING id",
        )
        .bind(experiment_id)
        .bind(author)
        .bind(body)
        .bind(now_ms())
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("id")?)
    }

    /// Notes on one experiment (or, with `None`, on the lab), oldest first.
    pub async fn notes(&self, experiment_id: Option<i64>) -> Result<Vec<Note>> {
        let rows = match experiment_id {
            Some(id) => {
                sqlx::query(
                    "SELECT id, experiment_id, author, body, created_at FROM notes \
                     WHERE experiment_id = $1 ORDER BY id",
                )
                .bind(id)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(
                    "SELECT id, experiment_id, author, body, created_at FROM notes \
                     WHERE experiment_id IS NULL ORDER BY id",
                )
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter()
            .map(|row| {
                Ok(Note {
                    id: row.try_get("id")?,
                    experiment_id: row.try_get("experiment_id")?,
                    author: row.try_get("author")?,
                    body: row.try_get("body")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect()
    }
}
