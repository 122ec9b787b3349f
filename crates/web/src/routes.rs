//! The route table.

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::routing::{get, post};

use crate::{AppState, admin, api, assets, live, pages};

pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/overview", get(api::overview))
        .route("/experiments", get(api::experiments))
        .route("/experiments/{id}", get(api::experiment))
        .route("/experiments/{id}/rd.json", get(api::rd_json))
        .route("/experiments/{id}/rd.csv", get(api::rd_csv_file))
        .route("/experiments/{id}/frame.png", get(api::frame))
        .route("/evolution", get(api::evolution))
        .route("/planner", get(api::planner))
        .route("/events", get(api::events))
        .route("/actions", get(api::actions))
        .route("/stream", get(live::stream))
        .route("/admin/pause", post(admin::pause))
        .route("/admin/resume", post(admin::resume))
        .route("/admin/stop", post(admin::stop))
        .route("/admin/experiments/{id}/rerun", post(admin::rerun))
        .route("/admin/experiments/{id}/cancel", post(admin::cancel))
        .route("/admin/experiments/{id}/promote", post(admin::promote))
        .route("/admin/budget", post(admin::set_budget))
        .route("/admin/goals", post(admin::set_goals))
        .route("/admin/notes", post(admin::add_note))
        .fallback(api::not_found);
    Router::new()
        .route("/", get(pages::overview::page))
        .route("/evolution", get(pages::evolution::page))
        .route("/experiments", get(pages::experiments::page))
        .route("/experiments/{id}", get(pages::experiment::page))
        .route("/experiments/{id}/files/{*key}", get(api::artifact))
        .route("/assets/{*name}", get(assets::asset))
        .nest("/api", api)
        .fallback(pages::not_found)
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

/// Headers every reply carries: no framing by other sites, no content sniffing, and only this
/// server's own scripts and styles.
async fn security_headers(mut response: axum::response::Response) -> axum::response::Response {
    let headers = response.headers_mut();
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; frame-ancestors 'none'",
        ),
    );
    response
}
