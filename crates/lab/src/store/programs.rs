//! The planner's program database: one row per experiment a planner loop submitted, with its
//! genome, its source edits, its lineage and island, and (once measured) its diversity features,
//! fitness and scores. A restarted loop rebuilds its state from these rows.

use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Result, Store, corrupt, now_ms};

/// What a program is in its run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProgramRole {
    /// The shipped default codec, measured in the same run as the yardstick.
    Reference,
    /// A planner's proposal.
    Candidate,
    /// A re-measurement on the holdout clips (of the reference or of the best candidate).
    Holdout,
}

impl ProgramRole {
    pub fn name(self) -> &'static str {
        match self {
            ProgramRole::Reference => "reference",
            ProgramRole::Candidate => "candidate",
            ProgramRole::Holdout => "holdout",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [
            ProgramRole::Reference,
            ProgramRole::Candidate,
            ProgramRole::Holdout,
        ]
        .into_iter()
        .find(|role| role.name() == text)
    }
}

/// A row of the program database.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProgramRecord {
    pub experiment_id: i64,
    /// The loop run that made it (runs resume under their id after a restart).
    pub run_id: String,
    pub planner: String,
    pub role: ProgramRole,
    /// The program it was derived from (an experiment id).
    pub parent: Option<i64>,
    pub island: i64,
    /// Evaluation stage: `smoke`, `dev` or `holdout`.
    pub stage: String,
    /// The full genome (JSON object).
    pub genome: serde_json::Value,
    /// SEARCH/REPLACE edits from the shipped sources (JSON array; empty: the built-in codec).
    pub edits: serde_json::Value,
    /// Diversity features, once measured.
    pub features: Option<serde_json::Value>,
    /// Lower is better (the loop's objective, e.g. mean BD-rate in percent); `None` until
    /// measured or when the experiment failed.
    pub fitness: Option<f64>,
    /// Every score the loop derived (per clip, per metric), once measured.
    pub scores: Option<serde_json::Value>,
    pub created_at: i64,
}

const COLUMNS: &str = "experiment_id, run_id, planner, role, parent, island, stage, genome, \
                       edits, features, fitness, scores, created_at";

fn json(text: Option<String>, what: &str) -> Result<Option<serde_json::Value>> {
    text.map(|text| serde_json::from_str(&text).map_err(|e| corrupt(what, e)))
        .transpose()
}

impl Store {
    /// Records a submitted program (its result comes later, from [`Store::set_program_result`]).
    pub async fn put_program(&self, program: &ProgramRecord) -> Result<()> {
        sqlx::query(&format!(
            "INSERT INTO programs ({COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        ))
        .bind(program.experiment_id)
        .bind(&program.run_id)
        .bind(&program.planner)
        .bind(program.role.name())
        .bind(program.parent)
        .bind(program.island)
        .bind(&program.stage)
        .bind(program.genome.to_string())
        .bind(program.edits.to_string())
        .bind(program.features.as_ref().map(|v| v.to_string()))
        .bind(program.fitness)
        .bind(program.scores.as_ref().map(|v| v.to_string()))
        .bind(now_ms())
        // Not a cached prepared statement: after a NULL fitness went through one, PostgreSQL
        // (15.18, through sqlx's Any driver) rejected later fitness values as "incorrect binary
        // data format".
        .persistent(false)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records what a program's measurement gave.
    pub async fn set_program_result(
        &self,
        experiment_id: i64,
        features: Option<&serde_json::Value>,
        fitness: Option<f64>,
        scores: &serde_json::Value,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE programs SET features = $1, fitness = $2, scores = $3 WHERE experiment_id = $4",
        )
        .bind(features.map(|v| v.to_string()))
        .bind(fitness)
        .bind(scores.to_string())
        .bind(experiment_id)
        // Not cached, for the reason given in `put_program`.
        .persistent(false)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The programs of a run (every run when `None`), oldest first.
    pub async fn programs(&self, run_id: Option<&str>) -> Result<Vec<ProgramRecord>> {
        let rows = match run_id {
            Some(run) => {
                sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM programs WHERE run_id = $1 ORDER BY experiment_id"
                ))
                .bind(run)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM programs ORDER BY experiment_id"
                ))
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter().map(program_from_row).collect()
    }

    /// The program database row of an experiment.
    pub async fn program(&self, experiment_id: i64) -> Result<Option<ProgramRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM programs WHERE experiment_id = $1"
        ))
        .bind(experiment_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(program_from_row).transpose()
    }

    /// The run of the newest program, if any.
    pub async fn newest_program_run(&self) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT run_id FROM programs ORDER BY experiment_id DESC LIMIT 1")
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// The programs that decide a run's standing, oldest first: its newest reference, its
    /// candidate with the lowest finite fitness (the oldest on a tie), and the holdout
    /// re-measurements of those two. Reads a handful of rows however long the run.
    pub async fn run_leaders(&self, run_id: &str) -> Result<Vec<ProgramRecord>> {
        // The bounds exclude infinities and (on PostgreSQL, where NaN is stored) NaN.
        let rows = sqlx::query(&format!(
            "WITH leaders AS ( \
                 SELECT experiment_id FROM (SELECT experiment_id FROM programs \
                     WHERE run_id = $1 AND role = 'reference' \
                     ORDER BY experiment_id DESC LIMIT 1) AS reference \
                 UNION ALL \
                 SELECT experiment_id FROM (SELECT experiment_id FROM programs \
                     WHERE run_id = $1 AND role = 'candidate' \
                       AND fitness > -1e300 AND fitness < 1e300 \
                     ORDER BY fitness, experiment_id LIMIT 1) AS candidate) \
             SELECT {COLUMNS} FROM programs WHERE run_id = $1 AND ( \
                 experiment_id IN (SELECT experiment_id FROM leaders) \
                 OR (role = 'holdout' AND parent IN (SELECT experiment_id FROM leaders))) \
             ORDER BY experiment_id"
        ))
        .bind(run_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(program_from_row).collect()
    }
}

fn program_from_row(row: &AnyRow) -> Result<ProgramRecord> {
    let role: String = row.try_get("role")?;
    let genome: String = row.try_get("genome")?;
    let edits: String = row.try_get("edits")?;
    Ok(ProgramRecord {
        experiment_id: row.try_get("experiment_id")?,
        run_id: row.try_get("run_id")?,
        planner: row.try_get("planner")?,
        role: ProgramRole::parse(&role).ok_or_else(|| corrupt("program role", role.clone()))?,
        parent: row.try_get("parent")?,
        island: row.try_get("island")?,
        stage: row.try_get("stage")?,
        genome: serde_json::from_str(&genome).map_err(|e| corrupt("program genome", e))?,
        edits: serde_json::from_str(&edits).map_err(|e| corrupt("program edits", e))?,
        features: json(row.try_get("features")?, "program features")?,
        fitness: row.try_get("fitness")?,
        scores: json(row.try_get("scores")?, "program scores")?,
        created_at: row.try_get("created_at")?,
    })
}
