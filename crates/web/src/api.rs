//! The JSON API: the same data as the pages, from [`crate::data`].

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use codeclab_lab::artifacts::experiment_prefix;
use codeclab_lab::experiment;
use codeclab_lab::lab::rd_csv;
use codeclab_lab::store::ExperimentState;
use codeclab_lab::store::listing::{ExperimentFilter, ExperimentPage, ListQuery, SortKey};
use serde::Deserialize;

use crate::AppState;
use crate::data;
use crate::error::WebError;
use crate::frames::{self, FrameQuery};

/// The experiment table's query parameters (pages and API alike). Empty values mean "any".
#[derive(Clone, Debug, Default, Deserialize)]
pub struct TableParams {
    pub state: Option<String>,
    pub proposer: Option<String>,
    pub codec: Option<String>,
    /// A [`SortKey`] name; default `id`.
    pub sort: Option<String>,
    /// `asc` or `desc` (default).
    pub dir: Option<String>,
    /// 1-based.
    pub page: Option<i64>,
    /// 1 to 500; default 50.
    pub per_page: Option<i64>,
}

fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

impl TableParams {
    pub fn query(&self) -> Result<ListQuery, WebError> {
        let state = given(&self.state)
            .map(str::parse::<ExperimentState>)
            .transpose()
            .map_err(WebError::BadRequest)?;
        let sort = match given(&self.sort) {
            Some(name) => SortKey::parse(name).ok_or_else(|| {
                WebError::BadRequest(format!(
                    "unknown sort `{name}` (one of {})",
                    SortKey::ALL.map(SortKey::name).join(", ")
                ))
            })?,
            None => SortKey::Id,
        };
        let descending = match given(&self.dir) {
            None | Some("desc") => true,
            Some("asc") => false,
            Some(other) => {
                return Err(WebError::BadRequest(format!(
                    "dir must be asc or desc, not `{other}`"
                )));
            }
        };
        let per_page = self.per_page.unwrap_or(50).clamp(1, 500);
        let page = self.page.unwrap_or(1).max(1);
        Ok(ListQuery {
            filter: ExperimentFilter {
                state,
                proposer: given(&self.proposer).map(str::to_string),
                codec: given(&self.codec).map(str::to_string),
            },
            sort,
            descending,
            limit: per_page,
            offset: (page - 1).saturating_mul(per_page),
        })
    }
}

pub async fn overview(State(state): State<AppState>) -> Result<Json<data::Overview>, WebError> {
    Ok(Json(data::overview(&state.lab).await?))
}

pub async fn experiments(
    State(state): State<AppState>,
    Query(params): Query<TableParams>,
) -> Result<Json<ExperimentPage>, WebError> {
    Ok(Json(
        state.lab.store.list_experiments(&params.query()?).await?,
    ))
}

pub async fn experiment(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<data::ExperimentDetail>, WebError> {
    Ok(Json(data::experiment_detail(&state.lab, id).await?))
}

async fn curves_of(
    state: &AppState,
    id: i64,
) -> Result<std::collections::BTreeMap<String, Vec<codeclab_lab::runner::PointRecord>>, WebError> {
    if state.lab.store.experiment(id).await?.is_none() {
        return Err(WebError::NotFound(format!(
            "experiment {id} does not exist"
        )));
    }
    Ok(experiment::curves(&state.lab.store.points(id).await?))
}

fn attachment(name: String, content_type: &'static str, body: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
        ],
        body,
    )
        .into_response()
}

/// The RD data as JSON: the stored analysis once analysed, else the points measured so far.
pub async fn rd_json(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    let curves = curves_of(&state, id).await?;
    let body = match state.lab.store.analysis(id).await? {
        Some(analysis) => analysis,
        None => serde_json::json!({ "curves": curves, "bd_rates": null }),
    };
    let bytes = serde_json::to_vec_pretty(&body).map_err(|e| WebError::Internal(e.to_string()))?;
    Ok(attachment(
        format!("experiment-{id}-rd.json"),
        "application/json",
        bytes,
    ))
}

pub async fn rd_csv_file(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    let curves = curves_of(&state, id).await?;
    Ok(attachment(
        format!("experiment-{id}-rd.csv"),
        "text/csv; charset=utf-8",
        rd_csv(&curves).into_bytes(),
    ))
}

pub async fn frame(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Query(query): Query<FrameQuery>,
) -> Result<Response, WebError> {
    let png = frames::frame_png(&state.lab, &state.frames, id, &query).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/png"),
            (header::CACHE_CONTROL, "private, max-age=3600"),
        ],
        png,
    )
        .into_response())
}

/// An artifact under the experiment's prefix (`key` relative to it).
pub async fn artifact(
    State(state): State<AppState>,
    Path((id, key)): Path<(i64, String)>,
) -> Result<Response, WebError> {
    if key.is_empty()
        || key
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return Err(WebError::BadRequest(format!("bad artifact path `{key}`")));
    }
    let full = format!("{}/{key}", experiment_prefix(id));
    let bytes = state.lab.artifacts.get(&full).await.map_err(|e| match e {
        codeclab_lab::artifacts::ArtifactError::Store(object_store::Error::NotFound { .. }) => {
            WebError::NotFound(format!("experiment {id} has no artifact {key}"))
        }
        other => other.into(),
    })?;
    let name = key.rsplit('/').next().unwrap_or("artifact").to_string();
    let is_text = [".log", ".json", ".csv", ".txt", ".rs", ".toml"]
        .iter()
        .any(|ext| name.ends_with(ext));
    if is_text {
        return Ok((
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            bytes,
        )
            .into_response());
    }
    Ok(attachment(name, "application/octet-stream", bytes))
}

/// The evolution view's query parameters (page and API alike).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct EvolutionParams {
    /// A [`data::Complexity`] name: what the Pareto front weighs fitness against; default
    /// `decoder_instructions_per_pixel`.
    pub complexity: Option<String>,
}

impl EvolutionParams {
    pub fn complexity(&self) -> Result<data::Complexity, WebError> {
        match given(&self.complexity) {
            Some(name) => data::Complexity::parse(name).ok_or_else(|| {
                WebError::BadRequest(format!(
                    "unknown complexity `{name}` (one of {})",
                    data::Complexity::ALL.map(data::Complexity::name).join(", ")
                ))
            }),
            None => Ok(data::Complexity::default()),
        }
    }
}

pub async fn evolution(
    State(state): State<AppState>,
    Query(params): Query<EvolutionParams>,
) -> Result<Json<data::Evolution>, WebError> {
    Ok(Json(
        data::evolution(&state.lab.store, params.complexity()?).await?,
    ))
}

#[derive(Deserialize)]
pub struct Limit {
    pub limit: Option<i64>,
}

impl Limit {
    fn get(&self) -> i64 {
        self.limit.unwrap_or(50).clamp(1, 1000)
    }
}

pub async fn planner(
    State(state): State<AppState>,
    Query(limit): Query<Limit>,
) -> Result<Json<Vec<codeclab_lab::store::PlannerLogRecord>>, WebError> {
    Ok(Json(state.lab.store.planner_log(limit.get()).await?))
}

pub async fn events(
    State(state): State<AppState>,
    Query(limit): Query<Limit>,
) -> Result<Json<Vec<codeclab_lab::store::Event>>, WebError> {
    Ok(Json(state.lab.store.events(limit.get()).await?))
}

pub async fn actions(
    State(state): State<AppState>,
    Query(limit): Query<Limit>,
) -> Result<Json<serde_json::Value>, WebError> {
    Ok(Json(serde_json::json!({
        "admin_actions": state.lab.store.admin_actions(limit.get()).await?,
        "notes": state.lab.store.notes(None).await?,
    })))
}

pub async fn not_found(uri: axum::http::Uri) -> WebError {
    WebError::NotFound(format!("no API route {}", uri.path()))
}
