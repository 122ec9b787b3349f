//! Static files, compiled into the binary.

use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::error::WebError;

const FILES: &[(&str, &str, &[u8])] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/app.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_bytes!("../assets/style.css"),
    ),
    (
        "vendor/uplot/uPlot.iife.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/vendor/uplot/uPlot.iife.min.js"),
    ),
    (
        "vendor/uplot/uPlot.min.css",
        "text/css; charset=utf-8",
        include_bytes!("../assets/vendor/uplot/uPlot.min.css"),
    ),
    (
        "vendor/uplot/LICENSE",
        "text/plain; charset=utf-8",
        include_bytes!("../assets/vendor/uplot/LICENSE"),
    ),
];

pub async fn asset(Path(name): Path<String>) -> Result<Response, WebError> {
    let (_, content_type, bytes) = FILES
        .iter()
        .find(|(file, _, _)| *file == name)
        .ok_or_else(|| WebError::NotFound(format!("no asset {name}")))?;
    Ok((
        [
            (header::CONTENT_TYPE, *content_type),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        *bytes,
    )
        .into_response())
}
