//! `/api/snapshots?grain=…`: the hourly snapshot runs (newest first), or the days and months
//! that have summaries.

use super::{ApiError, Params};
use crate::aggregate::Day;
use crate::store::Store;
use crate::store::grain::Grain;
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

/// Most runs one answer lists unless `limit` says otherwise.
const DEFAULT_LIMIT: i64 = 1_000;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SnapshotsQuery {
    /// `hourly` (default: snapshot runs), `daily` or `monthly` (summarised periods).
    grain: Option<String>,
    /// Only this vCenter's runs (hourly grain).
    vcenter: Option<String>,
    /// At most this many runs, newest first (hourly grain; default 1000).
    limit: Option<String>,
}

/// One entry of the listing: a run for `hourly`, a summarised period otherwise.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Snapshot {
    Run {
        vcenter: String,
        snapshot_time: i64,
        started_at: i64,
        finished_at: i64,
        success: bool,
        row_count: i64,
        error: String,
    },
    Period {
        period: String,
        period_start: i64,
    },
}

#[utoipa::path(get, path = "/api/snapshots", operation_id = "list_snapshots", tag = "snapshots", params(SnapshotsQuery),
    responses(
        (status = 200, description = "Snapshot runs (hourly) or summarised periods (daily, monthly), newest first", body = [Snapshot]),
        (status = 400, description = "Unknown grain or bad limit")))]
pub async fn list(
    State(store): State<Store>,
    Params(query): Params<SnapshotsQuery>,
) -> Result<Json<Vec<Snapshot>>, ApiError> {
    let grain = match query.grain.as_deref().unwrap_or("hourly") {
        "hourly" => None,
        "daily" => Some(Grain::Daily),
        "monthly" => Some(Grain::Monthly),
        other => {
            return Err(ApiError::bad(
                "grain",
                format!("{other:?} is not one of hourly, daily, monthly"),
            ));
        }
    };
    let Some(grain) = grain else {
        let limit = match &query.limit {
            Some(text) => text
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    ApiError::bad("limit", format!("{text:?} is not a positive count"))
                })?,
            None => DEFAULT_LIMIT,
        };
        let runs = store.snapshot_runs(query.vcenter.as_deref(), limit).await?;
        return Ok(Json(
            runs.into_iter()
                .map(|r| Snapshot::Run {
                    vcenter: r.vcenter,
                    snapshot_time: r.snapshot_time,
                    started_at: r.started_at,
                    finished_at: r.finished_at,
                    success: r.success,
                    row_count: r.row_count,
                    error: r.error,
                })
                .collect(),
        ));
    };
    let mut periods = Vec::new();
    for start in store.summary_periods(grain).await? {
        // A start the calendar cannot hold would be a corrupt row: list it by number only.
        let day = Day::containing(start).ok();
        let period = match (grain, day) {
            (Grain::Daily, Some(day)) => day.to_string(),
            (Grain::Monthly, Some(day)) => day.month().to_string(),
            (_, None) => String::new(),
        };
        periods.push(Snapshot::Period {
            period,
            period_start: start,
        });
    }
    periods.reverse();
    Ok(Json(periods))
}
