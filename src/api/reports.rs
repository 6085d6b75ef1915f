//! `/api/reports`: the report registry, and downloads (a redirect to a presigned URL when the
//! object store gives one, else the object's bytes).

use super::{ApiError, AppState, Params};
use crate::store::Store;
use crate::store::reports::ReportEntry;
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only reports of this kind (e.g. `daily`, `monthly`, `hourly`).
    kind: Option<String>,
}

#[utoipa::path(get, path = "/api/reports", operation_id = "list_reports", tag = "reports", params(ListQuery),
    responses((status = 200, description = "The report registry, newest first", body = [ReportEntry])))]
pub async fn list(
    State(store): State<Store>,
    Params(query): Params<ListQuery>,
) -> Result<Json<Vec<ReportEntry>>, ApiError> {
    Ok(Json(store.reports(query.kind.as_deref()).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DownloadQuery {
    /// A registered report's `object_key` (required).
    key: Option<String>,
}

#[utoipa::path(get, path = "/api/reports/download", operation_id = "download_report", tag = "reports", params(DownloadQuery),
    responses(
        (status = 200, description = "The report's bytes (local or file-system storage)", content_type = "application/octet-stream"),
        (status = 302, description = "Redirect to a presigned URL (S3, GCS, Azure)"),
        (status = 400, description = "Missing key"),
        (status = 404, description = "Not a registered report"),
        (status = 503, description = "The database or the object store is unavailable (with Retry-After)")))]
pub async fn download(
    State(state): State<AppState>,
    Params(query): Params<DownloadQuery>,
) -> Result<Response, ApiError> {
    let key = query
        .key
        .ok_or_else(|| ApiError::bad("key", "is required (a report's object_key)"))?;
    // Only registered keys: the endpoint must not become a reader of the whole bucket.
    let entry = state
        .store
        .report(&key)
        .await?
        .ok_or_else(|| ApiError::UnknownReport(key.clone()))?;
    // A second inside the request deadline, so that a store that does not answer is named in
    // the 503 rather than by the deadline's "request timed out". (Writes through the API, by
    // in-process aggregations, keep the full object_store_retry_timeout_seconds.)
    let objects = &state
        .objects
        .clone()
        .capped(state.request_timeout.saturating_sub(Duration::from_secs(1)));
    // Asked even where a presigned URL will do, so that a store that is down answers 503
    // here rather than through a redirect to the store's own error.
    if objects.size_of(&key).await?.is_none() {
        return Err(crate::objstore::Error::NotFound {
            url: objects.url().to_string(),
            key,
        }
        .into());
    }
    if let Some(url) = objects.presign_get(&key, state.presign_expiry).await? {
        return Ok((StatusCode::FOUND, [(header::LOCATION, url)]).into_response());
    }
    let bytes = objects.get(&key).await?;
    // `reports/{kind}/{period}/` then the scope: `all.xlsx`, or `NAMESPACE/NAME.xlsx` for a
    // VCenterTarget, whose namespace is kept (`_` is in neither a namespace nor a name).
    let file_name = key
        .splitn(4, '/')
        .nth(3)
        .unwrap_or(&key)
        .replace('/', "_")
        .replace('"', "");
    Ok((
        [
            (
                header::CONTENT_TYPE,
                content_type(&entry.format).to_string(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file_name}\""),
            ),
        ],
        bytes,
    )
        .into_response())
}

fn content_type(format: &str) -> &'static str {
    match format {
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "csv" => "text/csv; charset=utf-8",
        _ => "application/octet-stream",
    }
}
