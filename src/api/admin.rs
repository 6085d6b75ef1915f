//! The admin endpoints of `vctp serve`: JSON body → validated request (400 naming the field) →
//! the same aggregation, repair and cache code the jobs run (each write all-or-nothing) → JSON
//! answer; plus the seed's legacy endpoints, which answer 410 Gone. Authorization is the auth
//! middleware's business, not this module's.

use super::error::ErrorBody;
use super::{ApiError, AppState};
use crate::aggregate::engine::Source;
use crate::aggregate::{Day, Engine, Month};
use crate::crd::AggregationJob;
use crate::crd::aggregation_job::{AggregationJobSpec, AggregationPeriod, ReportOptions};
use crate::jobs::Stores;
use crate::jobs::aggregate::{self as aggregate_job, Request, WhenEmpty};
use crate::jobs::report::Period;
use crate::report::PivotSpec;
use crate::store::diagnostics::Staleness;
use axum::extract::{FromRequest, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

/// How `POST /api/snapshots/aggregate` gets the work done, chosen when the server starts.
#[derive(Clone)]
pub enum Trigger {
    /// Run the Kubernetes Job's code path (`jobs::aggregate::run`) in this process and answer
    /// when it is done.
    InProcess,
    /// Create an `AggregationJob` in `namespace` and answer 202: the operator does the work.
    Operator {
        client: kube::Client,
        namespace: String,
    },
}

/// What the in-process aggregations use (the scheduled engine, the report pivots and prices).
#[derive(Clone, Default)]
pub struct Aggregation {
    pub engine: Engine,
    pub pivots: Arc<Vec<PivotSpec>>,
}

/// The legacy endpoints of the seed, answered with 410 Gone.
const LEGACY: &[&str] = &[
    "/api/event/vm/create",
    "/api/event/vm/modify",
    "/api/event/vm/move",
    "/api/event/vm/delete",
    "/api/cleanup/updates",
    "/api/cleanup/vcenter",
];

/// The legacy routes, merged into `api::router`.
pub fn legacy_routes() -> Router<AppState> {
    let mut router = Router::new();
    for path in LEGACY {
        router = router.route(path, any(legacy));
    }
    router
}

/// A JSON body decoded into `T`, or a 400 in the API's JSON error shape naming `body`.
pub struct Body<T>(pub T);

impl<T, S> FromRequest<S> for Body<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Body<T>, ApiError> {
        Json::<T>::from_request(request, state)
            .await
            .map(|Json(value)| Body(value))
            .map_err(|rejection| ApiError::bad_field("body", rejection.body_text()))
    }
}

/// `POST /api/snapshots/aggregate`.
#[derive(Deserialize, ToSchema)]
pub struct AggregateBody {
    /// `daily`, `monthly` or `hourly` (an hourly request writes the hour's report only).
    pub grain: Option<String>,
    /// `YYYY-MM-DD` (daily), `YYYY-MM` (monthly) or `YYYY-MM-DDTHH` (hourly), UTC.
    pub period: Option<String>,
    /// Write the period's reports after aggregating [default: true].
    pub reports: Option<bool>,
}

/// One report object written.
#[derive(Serialize, ToSchema)]
pub struct ReportKey {
    pub key: String,
    pub size: i64,
}

/// The answer of an aggregation done in process (200) or handed to the operator (202).
#[derive(Serialize, ToSchema)]
pub struct AggregateAnswer {
    pub grain: String,
    pub period: String,
    /// In process: summary rows written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows_written: Option<u64>,
    /// In process: the report objects written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reports: Option<Vec<ReportKey>>,
    /// Operator mode: the `AggregationJob` created.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aggregation_job: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// Validates an aggregate body: errors name the field.
fn period_of(body: &AggregateBody) -> Result<Period, ApiError> {
    let grain = body
        .grain
        .as_deref()
        .ok_or_else(|| ApiError::bad_field("grain", "missing; one of daily, monthly, hourly"))?;
    let text = body
        .period
        .as_deref()
        .ok_or_else(|| ApiError::bad_field("period", "missing"))?;
    let bad_period = |example: &str| {
        ApiError::bad_field(
            "period",
            format!("{text:?} is not a {grain} period ({example})"),
        )
    };
    match grain {
        "daily" => Day::parse(text)
            .map(Period::Day)
            .map_err(|_| bad_period("YYYY-MM-DD")),
        "monthly" => Month::parse(text)
            .map(Period::Month)
            .map_err(|_| bad_period("YYYY-MM")),
        "hourly" => Period::hour(text).map_err(|_| bad_period("YYYY-MM-DDTHH")),
        other => Err(ApiError::bad_field(
            "grain",
            format!("{other:?} is not one of daily, monthly, hourly"),
        )),
    }
}

/// Regenerates one period's summaries (and reports), in process or through the operator.
#[utoipa::path(
    post,
    path = "/api/snapshots/aggregate",
    request_body = AggregateBody,
    responses(
        (status = 200, description = "Aggregated in process", body = AggregateAnswer),
        (status = 202, description = "AggregationJob created for the operator", body = AggregateAnswer),
        (status = 400, description = "A field is missing or invalid", body = ErrorBody),
        (status = 422, description = "The period has nothing to aggregate", body = ErrorBody),
    ),
    tag = "admin"
)]
pub async fn aggregate(
    State(state): State<AppState>,
    Body(body): Body<AggregateBody>,
) -> Result<Response, ApiError> {
    let period = period_of(&body)?;
    let report = body.reports.unwrap_or(true);
    let mut answer = AggregateAnswer {
        grain: period.kind().to_string(),
        period: period.label(),
        rows_written: None,
        reports: None,
        aggregation_job: None,
        namespace: None,
    };
    match &state.trigger {
        Trigger::InProcess => {
            let request = Request {
                period,
                vcenters: Vec::new(),
                engine: state.aggregation.engine,
                report,
            };
            let outcome =
                aggregate_job::run(&stores(&state), &request, Source::Api, WhenEmpty::Fail).await?;
            answer.rows_written = Some(outcome.rows_written);
            answer.reports = Some(
                outcome
                    .reports
                    .into_iter()
                    .map(|r| ReportKey {
                        key: r.key,
                        size: r.size,
                    })
                    .collect(),
            );
            Ok((StatusCode::OK, Json(answer)).into_response())
        }
        Trigger::Operator { client, namespace } => {
            let job = aggregation_job(period, report, state.aggregation.engine);
            let api: kube::Api<AggregationJob> = kube::Api::namespaced(client.clone(), namespace);
            let created = api
                .create(&kube::api::PostParams::default(), &job)
                .await
                .map_err(|source| ApiError::CreateAggregationJob {
                    namespace: namespace.clone(),
                    source: Box::new(source),
                })?;
            answer.aggregation_job = created.metadata.name;
            answer.namespace = Some(namespace.clone());
            Ok((StatusCode::ACCEPTED, Json(answer)).into_response())
        }
    }
}

/// The `AggregationJob` standing for `period`, named by the API server from a readable
/// prefix (`api-daily-2026-03-10-x7k2p`) so repeated requests never collide.
pub fn aggregation_job(period: Period, report: bool, engine: Engine) -> AggregationJob {
    let mut spec = AggregationJobSpec {
        period: AggregationPeriod::Daily,
        date: None,
        month: None,
        at: None,
        vcenters: Vec::new(),
        engine,
        report: ReportOptions { enabled: report },
    };
    match period {
        Period::Day(day) => spec.date = Some(day.to_string()),
        Period::Month(month) => {
            spec.period = AggregationPeriod::Monthly;
            spec.month = Some(month.to_string());
        }
        Period::Hour(start) => {
            spec.period = AggregationPeriod::Hourly;
            let at = chrono::DateTime::from_timestamp(start, 0).unwrap_or_default();
            spec.at = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                crate::operator::to_timestamp(at),
            ));
        }
    }
    let mut job = AggregationJob::new("", spec);
    job.metadata.name = None;
    job.metadata.generate_name = Some(format!(
        "api-{}-{}-",
        period.kind(),
        period.label().to_lowercase()
    ));
    job
}

/// What the in-process units of work read and write.
fn stores(state: &AppState) -> Stores<'_> {
    Stores {
        store: &state.store,
        objects: &state.objects,
        pivots: &state.aggregation.pivots,
        pricing: &state.finance.pricing,
    }
}

/// `POST /api/snapshots/repair`.
#[derive(Deserialize, ToSchema)]
pub struct RepairBody {
    /// The UTC day to re-aggregate, `YYYY-MM-DD`.
    pub date: Option<String>,
}

/// What repairing one day did.
#[derive(Serialize, ToSchema)]
pub struct Repaired {
    pub date: String,
    /// Daily summary rows written.
    pub rows_written: u64,
    /// vCenters whose snapshot totals of that day were recomputed.
    pub vcenters: usize,
    /// Why `repair/all` chose the day (absent for a single-day repair).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub reason: Option<Staleness>,
}

/// Re-aggregates one day from its hourly rows (daily summaries and daily totals in one
/// transaction), then recomputes that day's snapshot totals (a second transaction, a pure
/// recomputation from the hourly rows).
async fn repair_day(
    state: &AppState,
    day: Day,
    reason: Option<Staleness>,
) -> Result<Repaired, ApiError> {
    let request = Request {
        period: Period::Day(day),
        vcenters: Vec::new(),
        engine: state.aggregation.engine,
        report: false,
    };
    let outcome =
        aggregate_job::run(&stores(state), &request, Source::Api, WhenEmpty::Fail).await?;
    let vcenters = state.store.rebuild_day_snapshot_totals(day.start()).await?;
    Ok(Repaired {
        date: day.to_string(),
        rows_written: outcome.rows_written,
        vcenters,
        reason,
    })
}

/// Re-aggregates one day from its hourly rows and rebuilds its caches.
#[utoipa::path(
    post,
    path = "/api/snapshots/repair",
    request_body = RepairBody,
    responses(
        (status = 200, description = "The day was re-aggregated", body = Repaired),
        (status = 400, description = "date is missing or invalid", body = ErrorBody),
        (status = 422, description = "The day has no snapshots", body = ErrorBody),
    ),
    tag = "admin"
)]
pub async fn repair(
    State(state): State<AppState>,
    Body(body): Body<RepairBody>,
) -> Result<Json<Repaired>, ApiError> {
    let text = body
        .date
        .as_deref()
        .ok_or_else(|| ApiError::bad_field("date", "missing (YYYY-MM-DD)"))?;
    let day = Day::parse(text)
        .map_err(|_| ApiError::bad_field("date", format!("{text:?} is not a date YYYY-MM-DD")))?;
    Ok(Json(repair_day(&state, day, None).await?))
}

/// What `repair/all` did.
#[derive(Serialize, ToSchema)]
pub struct RepairedAll {
    pub repaired: Vec<Repaired>,
    /// Days whose repair failed (each left as it was), with the error.
    pub failed: Vec<RepairFailure>,
}

#[derive(Serialize, ToSchema)]
pub struct RepairFailure {
    pub date: String,
    pub error: String,
}

/// Re-aggregates every day whose daily summary is missing or stale: a vCenter with
/// snapshots that day has no summary rows, its summary counts another number of snapshots
/// than are registered, or a snapshot was stored after the day's last successful recorded
/// aggregation started. Each day is its own transaction; a failed day is reported and the
/// others still run.
#[utoipa::path(
    post,
    path = "/api/snapshots/repair/all",
    responses(
        (status = 200, description = "The days repaired and the days that failed", body = RepairedAll),
    ),
    tag = "admin"
)]
pub async fn repair_all(State(state): State<AppState>) -> Result<Json<RepairedAll>, ApiError> {
    let mut answer = RepairedAll {
        repaired: Vec::new(),
        failed: Vec::new(),
    };
    for stale in state.store.days_needing_repair().await? {
        let day = Day::containing(stale.day_start).map_err(|e| {
            ApiError::NothingToAggregate(format!("snapshot day {}: {e}", stale.day_start))
        })?;
        match repair_day(&state, day, Some(stale.reason)).await {
            Ok(repaired) => answer.repaired.push(repaired),
            Err(e) => {
                tracing::error!(day = %day, reason = e.reason(), error = %e, "repair of a day failed");
                // 5xx detail stays in the log, as for any error answer.
                let error = if e.status().is_server_error() {
                    e.reason().to_string()
                } else {
                    e.to_string()
                };
                answer.failed.push(RepairFailure {
                    date: day.to_string(),
                    error,
                });
            }
        }
    }
    Ok(Json(answer))
}

/// What a cache rebuild recomputed.
#[derive(Serialize, ToSchema)]
pub struct CacheRebuilt {
    /// vCenters whose snapshot totals were rebuilt.
    pub vcenters: usize,
    /// Days and months whose totals were rebuilt from their summaries.
    pub days: usize,
    pub months: usize,
}

/// Rebuilds every `vcenter_totals` row (snapshot, daily, monthly) from its source rows, in
/// one transaction.
#[utoipa::path(
    post,
    path = "/api/vcenters/cache/rebuild",
    responses((status = 200, description = "The caches were rebuilt", body = CacheRebuilt)),
    tag = "admin"
)]
pub async fn rebuild_cache(State(state): State<AppState>) -> Result<Json<CacheRebuilt>, ApiError> {
    let done = state.store.backfill_totals().await?;
    Ok(Json(CacheRebuilt {
        vcenters: done.vcenters,
        days: done.days,
        months: done.months,
    }))
}

/// `POST /api/encrypt`. The plaintext is never logged.
#[derive(Deserialize, ToSchema)]
pub struct EncryptBody {
    /// The value to encrypt; more than 2 characters.
    pub plaintext: Option<String>,
    /// The setting it is for (default `vcenter_password`); only that setting accepts the
    /// ciphertext: `vcenter_password`, `ldap_bind_password`, `auth_jwt_signing_key` or
    /// `object_store_options.<secret option>`.
    pub setting: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Encrypted {
    /// `enc:v2:…`, for the setting named in the request.
    pub ciphertext: String,
}

/// Encrypts a value with the key `vctp encrypt` uses (`settings.encryption_key`, else the
/// host's identity).
#[utoipa::path(
    post,
    path = "/api/encrypt",
    request_body = EncryptBody,
    responses(
        (status = 200, description = "The encrypted value", body = Encrypted),
        (status = 400, description = "plaintext is missing or 2 characters or fewer, or setting names no encrypted setting", body = ErrorBody),
    ),
    tag = "admin"
)]
pub async fn encrypt(
    State(state): State<AppState>,
    Body(body): Body<EncryptBody>,
) -> Result<Json<Encrypted>, ApiError> {
    let plaintext = body
        .plaintext
        .ok_or_else(|| ApiError::bad_field("plaintext", "missing"))?;
    let setting = body.setting.as_deref().unwrap_or("vcenter_password");
    let key = state.encryption_key.as_ref().ok_or_else(|| {
        ApiError::NoEncryptionKey("vctp serve started without a credential key".into())
    })?;
    match crate::credentials::encrypt(key, setting, &plaintext) {
        Ok(ciphertext) => Ok(Json(Encrypted { ciphertext })),
        Err(e @ crate::credentials::Error::TooShort) => {
            Err(ApiError::bad_field("plaintext", e.to_string()))
        }
        Err(e @ crate::credentials::Error::NotASecretSetting(_)) => {
            Err(ApiError::bad_field("setting", e.to_string()))
        }
        Err(e) => Err(ApiError::Encrypt(e)),
    }
}

/// The seed's legacy endpoints: never provided, always 410 Gone (and left out of the
/// OpenAPI document).
pub async fn legacy(uri: axum::http::Uri) -> ApiError {
    ApiError::Gone(uri.path().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_admin_and_diagnostics_handler_is_in_the_openapi_document() {
        let doc = crate::api::openapi();
        let paths: Vec<&str> = doc.paths.paths.keys().map(String::as_str).collect();
        for path in [
            "/api/snapshots/aggregate",
            "/api/snapshots/repair",
            "/api/snapshots/repair/all",
            "/api/vcenters/cache/rebuild",
            "/api/encrypt",
            "/api/diagnostics/daily-creation",
        ] {
            assert!(paths.contains(&path), "{path} missing from {paths:?}");
        }
        let schemas = doc.components.map(|c| c.schemas).unwrap_or_default();
        for schema in [
            "AggregateBody",
            "AggregateAnswer",
            "ErrorBody",
            "DailyCreation",
        ] {
            assert!(schemas.contains_key(schema), "{schema} missing");
        }
    }

    #[test]
    fn an_aggregation_job_is_named_by_the_server_from_its_period() {
        let day = Day::parse("2026-03-10").unwrap();
        let job = aggregation_job(Period::Day(day), false, Engine::Sql);
        assert_eq!(job.metadata.name, None);
        assert_eq!(
            job.metadata.generate_name.as_deref(),
            Some("api-daily-2026-03-10-")
        );
        assert_eq!(job.spec.date.as_deref(), Some("2026-03-10"));
        assert_eq!(job.spec.engine, crate::crd::Engine::Sql);
        assert!(!job.spec.report.enabled);
        let month = aggregation_job(
            Period::Month(Month::parse("2026-03").unwrap()),
            true,
            Engine::Rust,
        );
        assert_eq!(month.spec.period, AggregationPeriod::Monthly);
        assert_eq!(month.spec.month.as_deref(), Some("2026-03"));
        assert_eq!(month.spec.date, None);
        // The spec passes the same validation the Job entrypoint applies.
        assert!(Request::from_spec(&month.spec).is_ok());
        let hour = aggregation_job(Period::hour("2026-03-10T14").unwrap(), true, Engine::Rust);
        assert_eq!(
            Request::from_spec(&hour.spec).unwrap().period,
            Period::hour("2026-03-10T14").unwrap()
        );
        assert_eq!(
            hour.metadata.generate_name.as_deref(),
            Some("api-hourly-2026-03-10t14-")
        );
    }
}
