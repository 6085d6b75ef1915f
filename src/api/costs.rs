//! `/api/costs/daily|monthly`: what a day or a month costs, summed by VM, tenant, pool,
//! vCenter or cluster — `jobs::costs::report`, answered as it is (the CLI's `--format json`).

use super::{ApiError, AppState, Params, parse_day};
use crate::aggregate::Month;
use crate::cost::price::CostReport;
use crate::cost::{GroupBy, Period};
use axum::Json;
use axum::extract::State;
use clap::ValueEnum;
use serde::Deserialize;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DailyQuery {
    /// The UTC day, YYYY-MM-DD (required).
    date: Option<String>,
    /// vm, tenant (default), pool, vcenter or cluster.
    group_by: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MonthlyQuery {
    /// The UTC month, YYYY-MM (required).
    month: Option<String>,
    /// vm, tenant (default), pool, vcenter or cluster.
    group_by: Option<String>,
}

#[utoipa::path(get, path = "/api/costs/daily", operation_id = "daily_costs", tag = "costs", params(DailyQuery),
    responses(
        (status = 200, description = "The day's costs: lines (each the sum of its rounded charges), a total per currency, the cards used", body = CostReport),
        (status = 400, description = "Missing or malformed date, or an unknown group_by"),
        (status = 404, description = "No daily summaries are stored for the day"),
        (status = 409, description = "The settings cannot price the day: no rate card is configured, or none is in effect on it"),
        (status = 503, description = "The database is unavailable (with Retry-After)")))]
pub async fn daily(
    State(state): State<AppState>,
    Params(query): Params<DailyQuery>,
) -> Result<Json<CostReport>, ApiError> {
    let date = query
        .date
        .as_deref()
        .ok_or_else(|| ApiError::bad("date", "is required (YYYY-MM-DD)"))?;
    let period = Period::Day(parse_day("date", date)?);
    answer(&state, period, query.group_by.as_deref()).await
}

#[utoipa::path(get, path = "/api/costs/monthly", operation_id = "monthly_costs", tag = "costs", params(MonthlyQuery),
    responses(
        (status = 200, description = "The month's costs, each day at its own card: lines (each the sum of its rounded charges), a total per currency, the cards used", body = CostReport),
        (status = 400, description = "Missing or malformed month, or an unknown group_by"),
        (status = 404, description = "No daily summaries are stored for the month"),
        (status = 409, description = "The settings cannot price the month: no rate card is configured, or none is in effect on one of its days"),
        (status = 503, description = "The database is unavailable (with Retry-After)")))]
pub async fn monthly(
    State(state): State<AppState>,
    Params(query): Params<MonthlyQuery>,
) -> Result<Json<CostReport>, ApiError> {
    let text = query
        .month
        .as_deref()
        .ok_or_else(|| ApiError::bad("month", "is required (YYYY-MM)"))?;
    let month = Month::parse(text)
        .map_err(|_| ApiError::bad("month", format!("{text:?} is not a month YYYY-MM")))?;
    answer(&state, Period::Month(month), query.group_by.as_deref()).await
}

async fn answer(
    state: &AppState,
    period: Period,
    group_by: Option<&str>,
) -> Result<Json<CostReport>, ApiError> {
    let by = match group_by {
        None => GroupBy::Tenant,
        Some(text) => parse_group_by(text).map_err(|reason| ApiError::bad("group_by", reason))?,
    };
    let report =
        crate::jobs::costs::report(&state.store, &state.finance.pricing, period, by).await?;
    Ok(Json(report))
}

/// A `group_by` value as the CLI spells it, or why not.
pub fn parse_group_by(text: &str) -> Result<GroupBy, String> {
    GroupBy::from_str(text, false).map_err(|_| {
        let names: Vec<String> = GroupBy::value_variants()
            .iter()
            .filter_map(|v| v.to_possible_value().map(|p| p.get_name().to_string()))
            .collect();
        format!("{text:?} is not one of {}", names.join(", "))
    })
}
