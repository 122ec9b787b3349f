//! The lab's dashboard: server-rendered pages with small vanilla scripts, a JSON API under
//! `/api`, live updates over server-sent events, and admin actions behind a token.
//!
//! [`serve`] binds [`WebConfig::bind`] (127.0.0.1:8080 unless told otherwise) and serves
//! [`router`] until its shutdown watch turns true. Everything reads and writes the lab through
//! [`codeclab_lab::Store`] and [`codeclab_lab::Lab`]; charts use uPlot, vendored under
//! `assets/vendor/uplot/` and served from the binary.
//!
//! # Routes
//!
//! | route | what |
//! |---|---|
//! | `GET /` | overview: status, best codec against goals and anchors, counts, spend, planner |
//! | `GET /evolution?complexity=` | best fitness over time and experiments, lineage, Pareto front against `decoder_instructions_per_pixel` (default) or `learned_mac_per_pixel` |
//! | `GET /experiments?state=&proposer=&codec=&sort=&dir=&page=&per_page=` | the table |
//! | `GET /experiments/{id}` | one experiment (404 page for an unknown id) |
//! | `GET /experiments/{id}/files/{*key}` | an artifact under the experiment's prefix |
//! | `GET /api/overview`, `/api/evolution?complexity=`, `/api/planner`, `/api/events`, `/api/actions` | JSON |
//! | `GET /api/experiments?...` | the table's page as JSON (same parameters) |
//! | `GET /api/experiments/{id}` | `experiment`, `jobs`, `analysis` as `codeclab experiment show --json` prints them, and more |
//! | `GET /api/experiments/{id}/rd.json`, `rd.csv` | RD data |
//! | `GET /api/experiments/{id}/frame.png?clip=&rate=&frame=&view=source\|decoded\|diff&amplify=` | frame viewer |
//! | `GET /api/stream` | server-sent events: `update` with status, counts and newest ids |
//! | `POST /api/admin/{pause,resume,stop}` | lab status (body: optional `{"reason": ".."}`) |
//! | `POST /api/admin/experiments/{id}/{rerun,cancel,promote}` | experiment actions |
//! | `POST /api/admin/budget` (a `BudgetConfig`), `/api/admin/goals` (a list of `Goal`), `/api/admin/notes` (`{"body", "experiment_id"?}`) | settings and notes |
//!
//! Admin requests carry the token in `Authorization: Bearer TOKEN` or `X-Codeclab-Token`, and
//! optionally `X-Codeclab-Actor: NAME`; see [`auth`] for the rules.
//!
//! # Stable hooks for browser tests
//!
//! Every number a test checks sits in an element with `data-field="..."`; numbers also carry
//! `data-value` with the full-precision value as JSON prints it (the text is rounded). "Not
//! measured" cells have no `data-value`.
//!
//! - every page: `header-status` (the lab's state and reason, filled by the live stream), buttons
//!   `#token-input` (paste the token), `#token-save`, `#token-clear`, and `#admin-message`
//!   (the last admin reply, `data-status` = HTTP status).
//! - `/`: `status` (running / paused / stopping / stopped), `status-reason`, `count:<state>`
//!   for each experiment state and `count:total`, `queue:queued`,
//!   `queue:running`, `best:experiment`, `best:fitness`, `best:decoder-ipp`, `best:learned-mac`,
//!   `best:bd-rate:<anchor>:<metric>:<set>` (metric `psnr_y`, `vmaf`, `ssim`; set `dev`,
//!   `holdout`), `goal:<index>:value`, `goal:<index>:met` (`yes`/`no`), `budget:<cap name>`
//!   (used) and `budget:<cap name>:cap`, `spend:llm-usd-day`, `spend:llm-usd-month`,
//!   `spend:compute-hours-day`, `spend:experiments-day`, `planner:hypothesis`; buttons
//!   `#pause`, `#resume`, `#stop`; forms `#budget-input` + `#budget-save`, `#goals-input` +
//!   `#goals-save`, `#note-input` + `#note-save`.
//! - `/experiments`: `experiments-total`, rows `tr[data-id=ID]` with cells
//!   `row:<id>:<column>` (`state`, `proposer`, `codec`, `bd_psnr_y`, `bd_vmaf`, `bd_ssim`,
//!   `encode_fps`, `decode_fps`, `complexity`, `learned_mac`, `cost`, `duration`); sort links
//!   `a[data-sort=<column>]`; pagination `#page-prev`, `#page-next`, `page` ("N of M").
//! - `/experiments/{id}`: `experiment:id`, `experiment:state`, `experiment:codec`,
//!   `experiment:proposer`, `experiment:reason`, `jobs:<state>`,
//!   `bd-rate:<anchor>:<metric>:mean` and `bd-rate:<anchor>:<metric>:<clip>`,
//!   `rd:<clip>:<rate index>:<key>` (`kbps`, `bytes`, `psnr_y`, `psnr_yuv`, `ssim`, `ms_ssim`,
//!   `vmaf`, `encode_s`, `decode_s`, `decoder_ipp`, `learned_mac`), `cost`, `per-frame`
//!   (`data-value="measured"` under the per-frame charts, else says "not measured"),
//!   charts `[data-chart]`, frame viewer `#frame-clip`, `#frame-rate`, `#frame-index`,
//!   `#frame-amplify`, `#frame-zoom`, images `#frame-source`, `#frame-decoded`, `#frame-diff`;
//!   buttons `#rerun`, `#cancel`, `#promote`; `#note-input` + `#note-save`.
//! - `/evolution`: `programs-total`, `best:fitness`, `complexity` (the Pareto front's figure,
//!   in `data-value`) and links `a[data-complexity=<name>]` to the other, lineage rows
//!   `tr[data-id=ID]` with `program:<id>:fitness`, `program:<id>:decoder-ipp`,
//!   `program:<id>:learned-mac`, charts.
//! - error pages: `error-status`, `error-message`.

mod admin;
mod api;
mod assets;
pub mod auth;
pub mod data;
mod error;
pub mod frames;
mod live;
mod pages;
mod routes;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use codeclab_lab::Lab;

pub use auth::AdminToken;
pub use error::WebError;

/// Where the dashboard listens and who may act on the lab.
#[derive(Clone, Debug)]
pub struct WebConfig {
    pub bind: SocketAddr,
    pub admin_token: AdminToken,
}

/// The default address: loopback only.
pub const DEFAULT_BIND: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 8080);

impl WebConfig {
    /// Loopback port 8080 with this token.
    pub fn new(admin_token: AdminToken) -> WebConfig {
        WebConfig {
            bind: DEFAULT_BIND,
            admin_token,
        }
    }
}

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct AppState {
    pub lab: Arc<Lab>,
    pub token: AdminToken,
    pub frames: Arc<frames::DecodedCache>,
    /// Turns true when the server shuts down: open event streams end on it.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    /// The sender of `shutdown` when nobody outside holds it, kept so that the channel stays
    /// open for as long as the routes live.
    _own_shutdown: Option<Arc<tokio::sync::watch::Sender<bool>>>,
}

/// The dashboard's routes over `lab` (event streams end only when their client leaves).
pub fn router(lab: Arc<Lab>, config: WebConfig) -> axum::Router {
    let (sender, shutdown) = tokio::sync::watch::channel(false);
    app(lab, config, shutdown, Some(Arc::new(sender)))
}

fn app(
    lab: Arc<Lab>,
    config: WebConfig,
    shutdown: tokio::sync::watch::Receiver<bool>,
    own_shutdown: Option<Arc<tokio::sync::watch::Sender<bool>>>,
) -> axum::Router {
    routes::router(AppState {
        lab,
        token: config.admin_token,
        frames: Arc::new(frames::DecodedCache::new()),
        shutdown,
        _own_shutdown: own_shutdown,
    })
}

/// Serves the dashboard on `config.bind` until `shutdown` turns true (requests in progress
/// finish; open event streams end).
pub async fn serve(
    lab: Arc<Lab>,
    config: WebConfig,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<(), WebError> {
    let bind = config.bind;
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|source| WebError::Bind { bind, source })?;
    tracing::info!(
        "dashboard on http://{}",
        listener.local_addr().unwrap_or(bind)
    );
    let app = app(lab, config, shutdown.clone(), None);
    axum::serve(listener, app)
        .with_graceful_shutdown(live::shut_down(shutdown))
        .await
        .map_err(WebError::Serve)
}
