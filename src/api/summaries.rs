//! `/api/summaries/daily|monthly`: the per-VM summaries of one day or month, optionally of
//! one vCenter.

use super::{ApiError, AppState, Params, parse_day, require_vcenter};
use crate::aggregate::{Month, VmSummary};
use crate::store::summaries::Grain;
use axum::Json;
use axum::extract::State;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct DailyQuery {
    date: Option<String>,
    vcenter: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct MonthlyQuery {
    month: Option<String>,
    vcenter: Option<String>,
}

pub async fn daily(
    State(state): State<AppState>,
    Params(query): Params<DailyQuery>,
) -> Result<Json<Vec<VmSummary>>, ApiError> {
    let date = query
        .date
        .as_deref()
        .ok_or_else(|| ApiError::bad("date", "is required (YYYY-MM-DD)"))?;
    let day = parse_day("date", date)?;
    period_summaries(&state, Grain::Daily, day.start(), query.vcenter).await
}

pub async fn monthly(
    State(state): State<AppState>,
    Params(query): Params<MonthlyQuery>,
) -> Result<Json<Vec<VmSummary>>, ApiError> {
    let text = query
        .month
        .as_deref()
        .ok_or_else(|| ApiError::bad("month", "is required (YYYY-MM)"))?;
    let month = Month::parse(text)
        .map_err(|_| ApiError::bad("month", format!("{text:?} is not a month YYYY-MM")))?;
    period_summaries(&state, Grain::Monthly, month.start(), query.vcenter).await
}

async fn period_summaries(
    state: &AppState,
    grain: Grain,
    period_start: i64,
    vcenter: Option<String>,
) -> Result<Json<Vec<VmSummary>>, ApiError> {
    if let Some(vcenter) = &vcenter {
        require_vcenter(state, vcenter).await?;
    }
    let mut rows = state.store.summaries(grain, period_start).await?;
    if let Some(vcenter) = vcenter {
        rows.retain(|s| s.vcenter == vcenter);
    }
    Ok(Json(rows))
}
