//! `/api/summaries/daily|monthly`: the per-VM summaries of one day or month, optionally of
//! one vCenter.

use super::{ApiError, Params, parse_day, require_vcenter};
use crate::aggregate::{Month, VmSummary};
use crate::store::Store;
use crate::store::grain::Grain;
use axum::Json;
use axum::extract::State;
use serde::Deserialize;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DailyQuery {
    /// The UTC day, YYYY-MM-DD (required).
    date: Option<String>,
    /// Only this vCenter's VMs.
    vcenter: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MonthlyQuery {
    /// The UTC month, YYYY-MM (required).
    month: Option<String>,
    /// Only this vCenter's VMs.
    vcenter: Option<String>,
}

#[utoipa::path(get, path = "/api/summaries/daily", operation_id = "daily_summaries", tag = "summaries", params(DailyQuery),
    responses(
        (status = 200, description = "One summary per VM present that day", body = [VmSummary]),
        (status = 400, description = "Missing or malformed date"),
        (status = 404, description = "Unknown vCenter")))]
pub async fn daily(
    State(store): State<Store>,
    Params(query): Params<DailyQuery>,
) -> Result<Json<Vec<VmSummary>>, ApiError> {
    let date = query
        .date
        .as_deref()
        .ok_or_else(|| ApiError::bad("date", "is required (YYYY-MM-DD)"))?;
    let day = parse_day("date", date)?;
    period_summaries(&store, Grain::Daily, day.start(), query.vcenter).await
}

#[utoipa::path(get, path = "/api/summaries/monthly", operation_id = "monthly_summaries", tag = "summaries", params(MonthlyQuery),
    responses(
        (status = 200, description = "One summary per VM present that month", body = [VmSummary]),
        (status = 400, description = "Missing or malformed month"),
        (status = 404, description = "Unknown vCenter")))]
pub async fn monthly(
    State(store): State<Store>,
    Params(query): Params<MonthlyQuery>,
) -> Result<Json<Vec<VmSummary>>, ApiError> {
    let text = query
        .month
        .as_deref()
        .ok_or_else(|| ApiError::bad("month", "is required (YYYY-MM)"))?;
    let month = Month::parse(text)
        .map_err(|_| ApiError::bad("month", format!("{text:?} is not a month YYYY-MM")))?;
    period_summaries(&store, Grain::Monthly, month.start(), query.vcenter).await
}

async fn period_summaries(
    store: &Store,
    grain: Grain,
    period_start: i64,
    vcenter: Option<String>,
) -> Result<Json<Vec<VmSummary>>, ApiError> {
    if let Some(vcenter) = &vcenter {
        require_vcenter(store, vcenter).await?;
    }
    let mut rows = store.summaries(grain, period_start).await?;
    if let Some(vcenter) = vcenter {
        rows.retain(|s| s.vcenter == vcenter);
    }
    Ok(Json(rows))
}
