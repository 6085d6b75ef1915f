//! The one error type of the HTTP API: each variant maps to a status and a JSON
//! `{"error": …}` body; server-side failures are logged and answered with "internal error".

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("invalid query parameter {name}: {reason}")]
    BadParameter { name: &'static str, reason: String },
    #[error("unknown vCenter {0:?}")]
    UnknownVcenter(String),
    #[error("no such endpoint {0}")]
    UnknownRoute(String),
    #[error("{path} does not answer {method}")]
    MethodNotAllowed { method: String, path: String },
    #[error("unknown report {0:?}")]
    UnknownReport(String),
    #[error("no VM has the id or name {0:?}")]
    UnknownVm(String),
    #[error(transparent)]
    Store(#[from] crate::store::Error),
    /// Boxed: the object store's error is large and every handler returns this type.
    #[error(transparent)]
    Objects(Box<crate::objstore::Error>),
    #[error("failed to render metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

impl From<crate::objstore::Error> for ApiError {
    fn from(e: crate::objstore::Error) -> ApiError {
        ApiError::Objects(Box::new(e))
    }
}

impl ApiError {
    /// A stable short name, for logs and metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            ApiError::BadParameter { .. } => "BadParameter",
            ApiError::UnknownVcenter(_) => "UnknownVcenter",
            ApiError::UnknownReport(_) => "UnknownReport",
            ApiError::UnknownVm(_) => "UnknownVm",
            ApiError::UnknownRoute(_) => "UnknownRoute",
            ApiError::MethodNotAllowed { .. } => "MethodNotAllowed",
            ApiError::Store(e) => e.reason(),
            ApiError::Objects(e) => e.reason(),
            ApiError::Metrics(_) => "MetricsFailed",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadParameter { .. } => StatusCode::BAD_REQUEST,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::UnknownVcenter(_)
            | ApiError::UnknownReport(_)
            | ApiError::UnknownVm(_)
            | ApiError::UnknownRoute(_) => StatusCode::NOT_FOUND,
            ApiError::Store(_) | ApiError::Objects(_) | ApiError::Metrics(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    pub fn bad(name: &'static str, reason: impl Into<String>) -> ApiError {
        ApiError::BadParameter {
            name,
            reason: reason.into(),
        }
    }
}

/// The JSON body of every error answer.
pub fn error_body(message: String) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "error": message }))
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        // 5xx detail (SQL, paths, credentials in URLs) stays in the log.
        let message = if status.is_server_error() {
            tracing::error!(reason = self.reason(), error = %self, "request failed");
            "internal error".to_string()
        } else {
            self.to_string()
        };
        (status, error_body(message)).into_response()
    }
}
