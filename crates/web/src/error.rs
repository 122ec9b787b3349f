//! One error type for every handler, mapped to a status code: JSON for `/api`, an HTML page
//! elsewhere (see [`Page`]).

use std::net::SocketAddr;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use codeclab_lab::LabError;
use codeclab_lab::artifacts::ArtifactError;
use codeclab_lab::store::StoreError;

/// Why a request or the server failed.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Conflict(String),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("artifacts: {0}")]
    Artifacts(#[from] ArtifactError),
    #[error("{0}")]
    Internal(String),
    #[error("cannot listen on {bind}: {source}")]
    Bind {
        bind: SocketAddr,
        source: std::io::Error,
    },
    #[error("serving: {0}")]
    Serve(std::io::Error),
}

impl From<LabError> for WebError {
    fn from(error: LabError) -> Self {
        match error {
            LabError::Store(e) => e.into(),
            LabError::Artifacts(e) => e.into(),
            other => WebError::Internal(other.to_string()),
        }
    }
}

impl WebError {
    pub fn status(&self) -> StatusCode {
        match self {
            WebError::NotFound(_) | WebError::Store(StoreError::NoSuchExperiment(_)) => {
                StatusCode::NOT_FOUND
            }
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::Forbidden(_) => StatusCode::FORBIDDEN,
            WebError::Conflict(_) | WebError::Store(StoreError::InvalidState { .. }) => {
                StatusCode::CONFLICT
            }
            WebError::Artifacts(ArtifactError::Store(object_store::Error::NotFound { .. })) => {
                StatusCode::NOT_FOUND
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The message a client sees: the lab's own failures are logged and summarised, never
    /// echoed with their internals.
    fn public_message(&self) -> String {
        if self.status() == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!("dashboard: {self}");
            "internal error (see the server log)".into()
        } else {
            self.to_string()
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = serde_json::json!({ "error": self.public_message(), "status": status.as_u16() });
        (status, Json(body)).into_response()
    }
}

/// A [`WebError`] shown as an HTML error page.
#[derive(Debug)]
pub struct Page(pub WebError);

impl<E: Into<WebError>> From<E> for Page {
    fn from(error: E) -> Self {
        Page(error.into())
    }
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        let status = self.0.status();
        let message = self.0.public_message();
        let body = crate::pages::error_page(status, &message);
        (status, axum::response::Html(body)).into_response()
    }
}
