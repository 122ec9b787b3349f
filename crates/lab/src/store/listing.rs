//! Read queries for the dashboard: a filtered, sorted, paginated experiment table that stays
//! fast with tens of thousands of experiments, counts by state, the newest row ids (for live
//! updates), anchors by clip, and write-once experiment summaries.
//!
//! A summary holds the figures the table sorts on (BD-rates against [`SUMMARY_ANCHOR`], speeds,
//! decoder complexity, the learned tools' multiply–accumulates, compute time), taken from an
//! analysed experiment's stored analysis. Analyses never change, so a summary is written once, by
//! [`Store::summarise_analysed`], and the table sorts on indexed columns instead of parsing every
//! analysis.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{AnchorRecord, ExperimentState, Result, Store, corrupt};
use crate::experiment::Analysis;
use crate::runner::QualityMetric;

/// The anchor whose BD-rates the summaries (and so the experiment table) hold.
pub const SUMMARY_ANCHOR: &str = "x265-medium";

/// A column the experiment table sorts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SortKey {
    Id,
    State,
    Proposer,
    Codec,
    /// Seconds from the first claimed job to the end.
    Duration,
    BdPsnrY,
    BdVmaf,
    BdSsim,
    EncodeFps,
    DecodeFps,
    /// Decoder instructions per pixel.
    Complexity,
    /// Multiply–accumulates per pixel of the learned tools.
    LearnedMac,
    /// Planner spend on the experiment.
    Cost,
}

impl SortKey {
    pub const ALL: [SortKey; 13] = [
        SortKey::Id,
        SortKey::State,
        SortKey::Proposer,
        SortKey::Codec,
        SortKey::Duration,
        SortKey::BdPsnrY,
        SortKey::BdVmaf,
        SortKey::BdSsim,
        SortKey::EncodeFps,
        SortKey::DecodeFps,
        SortKey::Complexity,
        SortKey::LearnedMac,
        SortKey::Cost,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SortKey::Id => "id",
            SortKey::State => "state",
            SortKey::Proposer => "proposer",
            SortKey::Codec => "codec",
            SortKey::Duration => "duration",
            SortKey::BdPsnrY => "bd_psnr_y",
            SortKey::BdVmaf => "bd_vmaf",
            SortKey::BdSsim => "bd_ssim",
            SortKey::EncodeFps => "encode_fps",
            SortKey::DecodeFps => "decode_fps",
            SortKey::Complexity => "complexity",
            SortKey::LearnedMac => "learned_mac",
            SortKey::Cost => "cost",
        }
    }

    pub fn parse(text: &str) -> Option<SortKey> {
        SortKey::ALL.into_iter().find(|key| key.name() == text)
    }

    /// The SQL expression it sorts on (a fixed string: never built from input).
    fn expression(self) -> &'static str {
        match self {
            SortKey::Id => "e.id",
            SortKey::State => "e.state",
            SortKey::Proposer => "e.proposer",
            SortKey::Codec => "k.label",
            SortKey::Duration => "(e.finished_at - e.started_at)",
            SortKey::BdPsnrY => "s.bd_psnr_y",
            SortKey::BdVmaf => "s.bd_vmaf",
            SortKey::BdSsim => "s.bd_ssim",
            SortKey::EncodeFps => "s.encode_fps",
            SortKey::DecodeFps => "s.decode_fps",
            SortKey::Complexity => "s.decoder_instructions_per_pixel",
            SortKey::LearnedMac => "s.learned_mac_per_pixel",
            SortKey::Cost => "c.cost_usd",
        }
    }
}

/// Which experiments the table shows.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ExperimentFilter {
    pub state: Option<ExperimentState>,
    /// Exact proposer name.
    pub proposer: Option<String>,
    /// Part of the codec's label (`lab`, `libx265`, ...).
    pub codec: Option<String>,
}

/// One page of the experiment table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ListQuery {
    pub filter: ExperimentFilter,
    pub sort: SortKey,
    pub descending: bool,
    pub limit: i64,
    pub offset: i64,
}

impl Default for ListQuery {
    fn default() -> Self {
        ListQuery {
            filter: ExperimentFilter::default(),
            sort: SortKey::Id,
            descending: true,
            limit: 50,
            offset: 0,
        }
    }
}

/// The figures of an analysed experiment the table shows and sorts on. `None`: not measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExperimentSummary {
    /// The anchor the BD-rates compare with ([`SUMMARY_ANCHOR`]).
    pub anchor: String,
    /// Mean over clips of the PCHIP BD-rate, percent (negative saves bits).
    pub bd_psnr_y: Option<f64>,
    pub bd_vmaf: Option<f64>,
    pub bd_ssim: Option<f64>,
    /// Mean over points of frames per second of wall time.
    pub encode_fps: Option<f64>,
    pub decode_fps: Option<f64>,
    /// Mean over points; `None` unless every point was counted.
    pub decoder_instructions_per_pixel: Option<f64>,
    /// Mean over points; `None` unless every point has the figure (an anchor's never do).
    pub learned_mac_per_pixel: Option<f64>,
    /// Encode and decode wall seconds over every point.
    pub compute_seconds: f64,
}

impl ExperimentSummary {
    /// The summary of an analysis.
    pub fn of(analysis: &Analysis) -> ExperimentSummary {
        let bd = |metric: QualityMetric| {
            analysis
                .bd_rates
                .iter()
                .find(|bd| bd.anchor == SUMMARY_ANCHOR && bd.metric == metric)
                .and_then(|bd| bd.report.as_ref())
                .and_then(|report| report.get("mean")?.get("pchip")?.as_f64())
        };
        let points: Vec<&crate::runner::PointRecord> = analysis.curves.values().flatten().collect();
        let mean = |values: Vec<Option<f64>>| -> Option<f64> {
            let values: Option<Vec<f64>> = values.into_iter().collect();
            let values = values.filter(|v| !v.is_empty())?;
            Some(values.iter().sum::<f64>() / values.len() as f64)
        };
        let fps = |frames: u64, seconds: f64| (seconds > 0.0).then(|| frames as f64 / seconds);
        ExperimentSummary {
            anchor: SUMMARY_ANCHOR.into(),
            bd_psnr_y: bd(QualityMetric::PsnrY),
            bd_vmaf: bd(QualityMetric::Vmaf),
            bd_ssim: bd(QualityMetric::Ssim),
            encode_fps: mean(
                points
                    .iter()
                    .map(|p| fps(p.frames, p.encode.wall_seconds))
                    .collect(),
            ),
            decode_fps: mean(
                points
                    .iter()
                    .map(|p| fps(p.frames, p.decode.wall_seconds))
                    .collect(),
            ),
            decoder_instructions_per_pixel: mean(
                points
                    .iter()
                    .map(|p| p.decoder_instructions_per_pixel)
                    .collect(),
            ),
            learned_mac_per_pixel: mean(points.iter().map(|p| p.learned_mac_per_pixel).collect()),
            compute_seconds: points
                .iter()
                .map(|p| p.encode.wall_seconds + p.decode.wall_seconds)
                .sum(),
        }
    }
}

/// A row of the experiment table.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ExperimentRow {
    pub id: i64,
    pub state: ExperimentState,
    pub proposer: String,
    pub codec: String,
    pub hypothesis: String,
    pub reason: Option<String>,
    pub anchor_name: Option<String>,
    pub rerun_of: Option<i64>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    /// Present once the experiment is analysed and summarised.
    pub summary: Option<ExperimentSummary>,
    /// Priced planner spend on the experiment, in dollars; `None` without a priced turn.
    pub cost_usd: Option<f64>,
}

/// A page of the table and how many rows match in all.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ExperimentPage {
    pub total: i64,
    pub rows: Vec<ExperimentRow>,
}

/// The newest id of each table that the dashboard watches (0: empty).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LatestIds {
    pub experiment: i64,
    pub point: i64,
    pub event: i64,
    pub admin_action: i64,
    pub planner_turn: i64,
    pub note: i64,
}

const SUMMARY_COLUMNS: &str = "s.anchor, s.bd_psnr_y, s.bd_vmaf, s.bd_ssim, s.encode_fps, \
                               s.decode_fps, s.decoder_instructions_per_pixel, \
                               s.learned_mac_per_pixel, s.compute_seconds";

fn summary_from_row(row: &AnyRow) -> Result<Option<ExperimentSummary>> {
    let anchor: Option<String> = row.try_get("anchor")?;
    let Some(anchor) = anchor else {
        return Ok(None);
    };
    Ok(Some(ExperimentSummary {
        anchor,
        bd_psnr_y: row.try_get("bd_psnr_y")?,
        bd_vmaf: row.try_get("bd_vmaf")?,
        bd_ssim: row.try_get("bd_ssim")?,
        encode_fps: row.try_get("encode_fps")?,
        decode_fps: row.try_get("decode_fps")?,
        decoder_instructions_per_pixel: row.try_get("decoder_instructions_per_pixel")?,
        learned_mac_per_pixel: row.try_get("learned_mac_per_pixel")?,
        compute_seconds: row.try_get("compute_seconds")?,
    }))
}

impl Store {
    /// One page of experiments, filtered and sorted (ties newest first). Summaries missing for
    /// analysed experiments are written first, so sorting on them sees every analysed row.
    pub async fn list_experiments(&self, query: &ListQuery) -> Result<ExperimentPage> {
        self.summarise_analysed().await?;
        let mut conditions = Vec::new();
        let mut binds: Vec<String> = Vec::new();
        if let Some(state) = query.filter.state {
            binds.push(state.name().into());
            conditions.push(format!("e.state = ${}", binds.len()));
        }
        if let Some(proposer) = &query.filter.proposer {
            binds.push(proposer.clone());
            conditions.push(format!("e.proposer = ${}", binds.len()));
        }
        if let Some(codec) = &query.filter.codec {
            // LIKE wildcards in the input are matched literally.
            let escaped = codec
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            binds.push(format!("%{escaped}%"));
            conditions.push(format!("k.label LIKE ${} ESCAPE '\\'", binds.len()));
        }
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let count_sql = format!(
            "SELECT COUNT(*) AS n FROM experiments e JOIN codecs k ON k.hash = e.codec_hash {filter}"
        );
        let mut count = sqlx::query(&count_sql);
        for value in &binds {
            count = count.bind(value);
        }
        let total: i64 = count.fetch_one(&self.pool).await?.try_get("n")?;
        let direction = if query.descending { "DESC" } else { "ASC" };
        let sql = format!(
            "SELECT e.id, e.state, e.proposer, k.label, e.hypothesis, e.reason, e.anchor_name, \
             e.rerun_of, e.created_at, e.started_at, e.finished_at, {SUMMARY_COLUMNS}, c.cost_usd \
             FROM experiments e JOIN codecs k ON k.hash = e.codec_hash \
             LEFT JOIN experiment_summaries s ON s.experiment_id = e.id \
             LEFT JOIN (SELECT experiment_id, SUM(cost_usd) AS cost_usd FROM planner_log \
             WHERE experiment_id IS NOT NULL GROUP BY experiment_id) c ON c.experiment_id = e.id \
             {filter} ORDER BY {} {direction} NULLS LAST, e.id DESC LIMIT ${} OFFSET ${}",
            query.sort.expression(),
            binds.len() + 1,
            binds.len() + 2
        );
        let mut select = sqlx::query(&sql);
        for value in &binds {
            select = select.bind(value);
        }
        let rows = select
            .bind(query.limit.clamp(1, 1000))
            .bind(query.offset.max(0))
            .fetch_all(&self.pool)
            .await?;
        let rows = rows
            .iter()
            .map(|row| {
                let id: i64 = row.try_get("id")?;
                let state: String = row.try_get("state")?;
                Ok(ExperimentRow {
                    id,
                    state: state
                        .parse()
                        .map_err(|e: String| corrupt(format!("experiment {id} state"), e))?,
                    proposer: row.try_get("proposer")?,
                    codec: row.try_get("label")?,
                    hypothesis: row.try_get("hypothesis")?,
                    reason: row.try_get("reason")?,
                    anchor_name: row.try_get("anchor_name")?,
                    rerun_of: row.try_get("rerun_of")?,
                    created_at: row.try_get("created_at")?,
                    started_at: row.try_get("started_at")?,
                    finished_at: row.try_get("finished_at")?,
                    summary: summary_from_row(row)?,
                    cost_usd: row.try_get("cost_usd")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(ExperimentPage { total, rows })
    }

    /// Writes the summary of every analysed experiment that has none yet; returns how many.
    pub async fn summarise_analysed(&self) -> Result<usize> {
        let mut written = 0;
        loop {
            let rows = sqlx::query(
                "SELECT r.experiment_id, r.analysis FROM results r \
                 LEFT JOIN experiment_summaries s ON s.experiment_id = r.experiment_id \
                 WHERE s.experiment_id IS NULL ORDER BY r.experiment_id LIMIT 500",
            )
            .fetch_all(&self.pool)
            .await?;
            if rows.is_empty() {
                return Ok(written);
            }
            let mut tx = self.begin_write().await?;
            for row in &rows {
                let id: i64 = row.try_get("experiment_id")?;
                let text: String = row.try_get("analysis")?;
                let analysis: Analysis = serde_json::from_str(&text)
                    .map_err(|e| corrupt(format!("analysis of {id}"), e))?;
                let summary = ExperimentSummary::of(&analysis);
                sqlx::query(
                    "INSERT INTO experiment_summaries (experiment_id, anchor, bd_psnr_y, bd_vmaf, \
                     bd_ssim, encode_fps, decode_fps, decoder_instructions_per_pixel, \
                     learned_mac_per_pixel, compute_seconds, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                     ON CONFLICT (experiment_id) DO NOTHING",
                )
                .bind(id)
                .bind(&summary.anchor)
                .bind(summary.bd_psnr_y)
                .bind(summary.bd_vmaf)
                .bind(summary.bd_ssim)
                .bind(summary.encode_fps)
                .bind(summary.decode_fps)
                .bind(summary.decoder_instructions_per_pixel)
                .bind(summary.learned_mac_per_pixel)
                .bind(summary.compute_seconds)
                .bind(super::now_ms())
                .execute(&mut *tx)
                .await?;
                written += 1;
            }
            tx.commit().await?;
        }
    }

    /// The summary of one experiment, once analysed and summarised.
    pub async fn summary(&self, experiment_id: i64) -> Result<Option<ExperimentSummary>> {
        let row = sqlx::query(&format!(
            "SELECT {SUMMARY_COLUMNS} FROM experiment_summaries s WHERE s.experiment_id = $1"
        ))
        .bind(experiment_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some(row) => summary_from_row(&row)?,
            None => None,
        })
    }

    /// Experiments by state name (states without experiments are absent).
    pub async fn state_counts(&self) -> Result<BTreeMap<String, i64>> {
        let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM experiments GROUP BY state")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("state")?, row.try_get("n")?)))
            .collect()
    }

    /// The newest id of each watched table.
    pub async fn latest_ids(&self) -> Result<LatestIds> {
        let row = sqlx::query(
            "SELECT (SELECT COALESCE(MAX(id), 0) FROM experiments) AS experiment, \
             (SELECT COALESCE(MAX(id), 0) FROM rd_points) AS point, \
             (SELECT COALESCE(MAX(id), 0) FROM events) AS event, \
             (SELECT COALESCE(MAX(id), 0) FROM admin_actions) AS admin_action, \
             (SELECT COALESCE(MAX(id), 0) FROM planner_log) AS planner_turn, \
             (SELECT COALESCE(MAX(id), 0) FROM notes) AS note",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(LatestIds {
            experiment: row.try_get("experiment")?,
            point: row.try_get("point")?,
            event: row.try_get("event")?,
            admin_action: row.try_get("admin_action")?,
            planner_turn: row.try_get("planner_turn")?,
            note: row.try_get("note")?,
        })
    }

    /// The newest anchor curve of each anchor on a clip.
    pub async fn anchors_on_clip(&self, clip_id: &str) -> Result<Vec<AnchorRecord>> {
        let rows = sqlx::query(
            "SELECT anchor_key, name, clip_id, experiment_id FROM anchors \
             WHERE clip_id = $1 ORDER BY name, created_at DESC",
        )
        .bind(clip_id)
        .fetch_all(&self.pool)
        .await?;
        let mut newest: Vec<AnchorRecord> = Vec::new();
        for row in &rows {
            let name: String = row.try_get("name")?;
            if newest.last().is_some_and(|a| a.name == name) {
                continue;
            }
            newest.push(AnchorRecord {
                key: row.try_get("anchor_key")?,
                name,
                clip_id: row.try_get("clip_id")?,
                experiment_id: row.try_get("experiment_id")?,
            });
        }
        Ok(newest)
    }

    /// The analysed experiment (not an anchor) with the lowest summary PSNR-Y BD-rate.
    pub async fn best_summarised_experiment(&self) -> Result<Option<i64>> {
        self.summarise_analysed().await?;
        let row = sqlx::query(
            "SELECT s.experiment_id FROM experiment_summaries s \
             JOIN experiments e ON e.id = s.experiment_id \
             WHERE s.bd_psnr_y IS NOT NULL AND e.anchor_name IS NULL \
             ORDER BY s.bd_psnr_y ASC, s.experiment_id ASC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| Ok(row.try_get("experiment_id")?)).transpose()
    }

    /// Priced planner spend on one experiment, in dollars (`None` without a priced turn).
    pub async fn experiment_cost(&self, experiment_id: i64) -> Result<Option<f64>> {
        let row = sqlx::query(
            "SELECT SUM(cost_usd) AS cost_usd FROM planner_log WHERE experiment_id = $1",
        )
        .bind(experiment_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("cost_usd")?)
    }
}
