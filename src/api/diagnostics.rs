//! `GET /api/diagnostics/daily-creation`: query → the day's registered snapshots, its daily
//! summary and its recorded aggregation runs, read from the store → why a daily summary is
//! (or is not) what it should be. Read-only.

use super::error::ErrorBody;
use super::{ApiError, Params, parse_day};
use crate::aggregate::hourly::HOUR;
use crate::store::Store;
use crate::store::runs::AggregationRun;
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DailyCreationQuery {
    /// The UTC day, `YYYY-MM-DD`.
    pub date: Option<String>,
    /// Only this vCenter.
    pub vcenter: Option<String>,
}

/// One vCenter's day.
#[derive(Debug, Serialize, ToSchema)]
pub struct VcenterDay {
    pub vcenter: String,
    /// Snapshots registered that day.
    pub snapshots: usize,
    /// Their distinct times (Unix seconds), oldest first.
    pub snapshot_times: Vec<i64>,
    /// Hours of the day (0–23, UTC) without any snapshot.
    pub missing_hours: Vec<i64>,
    pub summary_exists: bool,
    /// Daily summary rows of this vCenter.
    pub summary_rows: i64,
    /// The snapshots the summary was computed from (its total_samples), 0 without summary.
    pub summary_samples: i64,
}

/// The diagnostics of one day's daily summary.
#[derive(Debug, Serialize, ToSchema)]
pub struct DailyCreation {
    pub date: String,
    pub day_start: i64,
    pub summary_exists: bool,
    pub summary_rows: i64,
    pub vcenters: Vec<VcenterDay>,
    /// Every recorded daily aggregation attempt of the day, oldest first.
    #[schema(value_type = Vec<Object>)]
    pub aggregation_runs: Vec<AggregationRun>,
}

/// How a day's daily summary came to be: snapshots per vCenter, missing hours, the summary's
/// rows, and the aggregation attempts with their durations and errors.
#[utoipa::path(
    get,
    path = "/api/diagnostics/daily-creation",
    params(DailyCreationQuery),
    responses(
        (status = 200, description = "The day's diagnostics", body = DailyCreation),
        (status = 400, description = "date is missing or invalid", body = ErrorBody),
    ),
    tag = "diagnostics"
)]
pub async fn daily_creation(
    State(store): State<Store>,
    Params(query): Params<DailyCreationQuery>,
) -> Result<Json<DailyCreation>, ApiError> {
    let text = query
        .date
        .as_deref()
        .ok_or_else(|| ApiError::bad("date", "missing (YYYY-MM-DD)"))?;
    let day = parse_day("date", text)?;
    let wanted = |vcenter: &str| query.vcenter.as_deref().is_none_or(|v| v == vcenter);
    let times = store.snapshot_times(day.start(), day.end()).await?;
    let counts = store.daily_summary_counts(day.start()).await?;
    let mut names: Vec<&str> = times
        .iter()
        .map(|(v, _)| v.as_str())
        .chain(counts.iter().map(|c| c.vcenter.as_str()))
        .filter(|v| wanted(v))
        .collect();
    names.sort_unstable();
    names.dedup();
    let vcenters: Vec<VcenterDay> = names
        .into_iter()
        .map(|vcenter| {
            let mut snapshot_times: Vec<i64> = times
                .iter()
                .filter(|(v, _)| v == vcenter)
                .map(|(_, t)| *t)
                .collect();
            snapshot_times.dedup();
            let missing_hours = (0..24)
                .filter(|hour| {
                    let start = day.start() + hour * HOUR;
                    !snapshot_times
                        .iter()
                        .any(|t| (start..start + HOUR).contains(t))
                })
                .collect();
            let count = counts.iter().find(|c| c.vcenter == vcenter);
            VcenterDay {
                vcenter: vcenter.to_string(),
                snapshots: snapshot_times.len(),
                snapshot_times,
                missing_hours,
                summary_exists: count.is_some(),
                summary_rows: count.map_or(0, |c| c.rows),
                summary_samples: count.map_or(0, |c| c.total_samples),
            }
        })
        .collect();
    let summary_rows = vcenters.iter().map(|v| v.summary_rows).sum();
    Ok(Json(DailyCreation {
        date: day.to_string(),
        day_start: day.start(),
        summary_exists: summary_rows > 0,
        summary_rows,
        aggregation_runs: store.aggregation_runs("daily", day.start()).await?,
        vcenters,
    }))
}
