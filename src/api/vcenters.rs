//! `/api/vcenters…`: each vCenter's latest totals, and its totals over time from the
//! precomputed `vcenter_totals` caches (per snapshot, day and month).

use super::{ApiError, AppState, Params, now, parse_day, parse_time, require_vcenter};
use crate::store::totals::VcenterTotals;
use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};

/// How far back the hourly view reaches by default, as the UI's *Hourly Detail* page.
const HOURLY_DEFAULT_DAYS: i64 = 45;

/// One vCenter as of its newest snapshot.
#[derive(Debug, Serialize)]
pub struct VcenterLatest {
    pub vcenter: String,
    pub snapshot_time: i64,
    pub vm_count: f64,
    pub vcpu_count: f64,
    pub ram_gb: f64,
    pub disk_gb: f64,
}

pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<VcenterLatest>>, ApiError> {
    let latest = state.store.latest_totals().await?;
    Ok(Json(
        latest
            .into_iter()
            .map(|t| VcenterLatest {
                vcenter: t.vcenter,
                snapshot_time: t.period_start,
                vm_count: t.vm_count,
                vcpu_count: t.vcpu_count,
                ram_gb: t.ram_gb,
                disk_gb: t.disk_gb,
            })
            .collect(),
    ))
}

#[derive(Debug, Deserialize)]
pub struct HourlyQuery {
    since: Option<String>,
    until: Option<String>,
}

/// Snapshot totals in `[since, until)`; the last 45 days by default.
pub async fn hourly(
    State(state): State<AppState>,
    Path(vcenter): Path<String>,
    Params(query): Params<HourlyQuery>,
) -> Result<Json<Vec<VcenterTotals>>, ApiError> {
    let until = match &query.until {
        Some(text) => parse_time("until", text)?,
        None => now() + 1,
    };
    let since = match &query.since {
        Some(text) => parse_time("since", text)?,
        None => until - HOURLY_DEFAULT_DAYS * 86_400,
    };
    if since > until {
        return Err(ApiError::bad("since", "is after until"));
    }
    vcenter_totals(&state, &vcenter, "snapshot", since, until).await
}

#[derive(Debug, Deserialize)]
pub struct DailyQuery {
    from: Option<String>,
    to: Option<String>,
}

/// Daily totals of the days `from..=to` (both optional: all days by default).
pub async fn daily(
    State(state): State<AppState>,
    Path(vcenter): Path<String>,
    Params(query): Params<DailyQuery>,
) -> Result<Json<Vec<VcenterTotals>>, ApiError> {
    let from = match &query.from {
        Some(text) => parse_day("from", text)?.start(),
        None => i64::MIN,
    };
    let to = match &query.to {
        Some(text) => parse_day("to", text)?.end(),
        None => i64::MAX,
    };
    if from >= to {
        return Err(ApiError::bad("from", "is after to"));
    }
    vcenter_totals(&state, &vcenter, "daily", from, to).await
}

pub async fn monthly(
    State(state): State<AppState>,
    Path(vcenter): Path<String>,
) -> Result<Json<Vec<VcenterTotals>>, ApiError> {
    vcenter_totals(&state, &vcenter, "monthly", i64::MIN, i64::MAX).await
}

/// The cache rows of one known vCenter; an unknown one is a 404, not an empty list.
async fn vcenter_totals(
    state: &AppState,
    vcenter: &str,
    grain: &str,
    from: i64,
    to: i64,
) -> Result<Json<Vec<VcenterTotals>>, ApiError> {
    let rows = state
        .store
        .vcenter_totals_range(grain, vcenter, from, to)
        .await?;
    // Snapshot rows already prove the vCenter known: the busy hourly view skips the probe.
    if grain != "snapshot" || rows.is_empty() {
        require_vcenter(state, vcenter).await?;
    }
    Ok(Json(rows))
}
