//! The one error type of the HTTP API: each variant maps to a status and a JSON
//! `{"error": …}` body; server-side failures are logged and answered with "internal error".

use axum::Json;
use axum::http::{StatusCode, header};
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
    #[error("invalid field {name}: {reason}")]
    BadField { name: &'static str, reason: String },
    #[error(
        "{0} is a legacy endpoint that vctp does not provide (settings.enable_legacy_api is not supported)"
    )]
    Gone(String),
    /// The period has nothing to aggregate (no snapshots, or no daily summaries for a month).
    #[error("{0}")]
    NothingToAggregate(String),
    #[error(transparent)]
    Aggregation(Box<crate::jobs::aggregate::Error>),
    #[error("failed to create an AggregationJob in namespace {namespace}: {source}")]
    CreateAggregationJob {
        namespace: String,
        source: Box<kube::Error>,
    },
    #[error("no credential key: {0}")]
    NoEncryptionKey(String),
    #[error("failed to encrypt: {0}")]
    Encrypt(crate::credentials::Error),
    /// A period the settings cannot price, or with nothing stored to price.
    #[error(transparent)]
    Costs(crate::jobs::costs::Error),
    /// The handler outlived the per-request deadline (settings.request_timeout_seconds).
    #[error("the request did not finish within {} s", .0.as_secs_f64())]
    Deadline(std::time::Duration),
}

impl From<crate::jobs::aggregate::Error> for ApiError {
    fn from(e: crate::jobs::aggregate::Error) -> ApiError {
        use crate::aggregate::EngineError;
        use crate::jobs::aggregate::Error as Job;
        match e {
            Job::Aggregate {
                source: source @ (EngineError::NoSnapshots(_) | EngineError::NoDailySummaries(_)),
                ..
            } => ApiError::NothingToAggregate(source.to_string()),
            e => ApiError::Aggregation(Box::new(e)),
        }
    }
}

impl From<crate::jobs::costs::Error> for ApiError {
    fn from(e: crate::jobs::costs::Error) -> ApiError {
        match e {
            // Answered as every other store failure (503 when the database is down).
            crate::jobs::costs::Error::Store(e) => ApiError::Store(e),
            e => ApiError::Costs(e),
        }
    }
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
            ApiError::BadField { .. } => "BadField",
            ApiError::Gone(_) => "LegacyEndpoint",
            ApiError::NothingToAggregate(_) => "NothingToAggregate",
            ApiError::Aggregation(e) => e.reason(),
            ApiError::CreateAggregationJob { .. } => "CreateAggregationJobFailed",
            ApiError::NoEncryptionKey(_) => "NoEncryptionKey",
            ApiError::Encrypt(e) => e.reason(),
            ApiError::Deadline(_) => "RequestTimedOut",
            ApiError::Costs(e) => cost_reason(e),
        }
    }

    /// What a 503 tells the client when a dependency is down or slow: which one, never its
    /// address or the driver's message.
    fn unavailable(&self) -> Option<&'static str> {
        match self {
            ApiError::Store(e) if e.is_unavailable() => Some("database unavailable"),
            ApiError::Objects(e) if e.is_unavailable() => Some("object store unavailable"),
            ApiError::Deadline(_) => Some("request timed out"),
            _ => None,
        }
    }

    pub fn status(&self) -> StatusCode {
        if self.unavailable().is_some() {
            return StatusCode::SERVICE_UNAVAILABLE;
        }
        match self {
            ApiError::BadParameter { .. } | ApiError::BadField { .. } => StatusCode::BAD_REQUEST,
            ApiError::Gone(_) => StatusCode::GONE,
            // The request is well-formed, but the period has no source rows to summarise.
            ApiError::NothingToAggregate(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::NoEncryptionKey(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Aggregation(_) | ApiError::CreateAggregationJob { .. } => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            ApiError::Encrypt(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Costs(e) => cost_status(e),
            ApiError::UnknownVcenter(_)
            | ApiError::UnknownReport(_)
            | ApiError::UnknownVm(_)
            | ApiError::UnknownRoute(_) => StatusCode::NOT_FOUND,
            ApiError::Store(_)
            | ApiError::Objects(_)
            | ApiError::Metrics(_)
            | ApiError::Deadline(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A 400 naming the JSON body field that is wrong.
    pub fn bad_field(name: &'static str, reason: impl Into<String>) -> ApiError {
        ApiError::BadField {
            name,
            reason: reason.into(),
        }
    }

    pub fn bad(name: &'static str, reason: impl Into<String>) -> ApiError {
        ApiError::BadParameter {
            name,
            reason: reason.into(),
        }
    }
}

/// A period with no daily summaries is a 404, as an unknown report is. A period the settings
/// cannot price (no card at all, or none in effect on one of its days) is a 409: the request
/// is right and the data are there, but the server's configuration conflicts with answering
/// it, and only changing the settings (not the request) fixes it.
pub fn cost_status(e: &crate::jobs::costs::Error) -> StatusCode {
    use crate::jobs::costs::Error;
    match e {
        Error::NoSummaries { .. } => StatusCode::NOT_FOUND,
        Error::Price(_) => StatusCode::CONFLICT,
        Error::Store(e) if e.is_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
        Error::Store(_) | Error::Period(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

pub fn cost_reason(e: &crate::jobs::costs::Error) -> &'static str {
    use crate::cost::price::Error as Price;
    use crate::jobs::costs::Error;
    match e {
        Error::NoSummaries { .. } => "NoSummaries",
        Error::Price(Price::NoCards) => "NoRateCard",
        Error::Price(Price::NoCardOn { .. }) => "NoRateCardOnDay",
        Error::Store(e) => e.reason(),
        Error::Period(_) => "CorruptSummary",
    }
}

/// The JSON body of every error answer.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: String,
}

pub fn error_body(message: String) -> Json<ErrorBody> {
    Json(ErrorBody { error: message })
}

/// Seconds a client is told to wait (`Retry-After`) when the database or object store is
/// down: long enough for a restarted database to accept connections again (the pool
/// reconnects by itself), short enough that a client is not kept waiting after it has.
pub const RETRY_AFTER_SECONDS: u64 = 5;

/// A 503 with `Retry-After` and the JSON error body `message`.
pub fn unavailable(message: &str) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, RETRY_AFTER_SECONDS.to_string())],
        error_body(message.to_string()),
    )
        .into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Some(message) = self.unavailable() {
            // A dependency being down is expected now and then: a warning, not an error.
            tracing::warn!(reason = self.reason(), error = %self, "{message}");
            return unavailable(message);
        }
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
