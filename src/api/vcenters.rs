//! `/api/vcenters…`: each vCenter's latest totals, and its totals over time from the
//! precomputed `vcenter_totals` caches (per snapshot, day and month).

use super::{ApiError, NoParameters, Params, now, parse_day, parse_time, require_vcenter};
use crate::store::Store;
use crate::store::grain::TotalsGrain;
use crate::store::totals::VcenterTotals;
use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};

/// How far back the hourly view reaches by default, as the UI's *Hourly Detail* page.
const HOURLY_DEFAULT_DAYS: i64 = 45;

/// One vCenter as of its newest snapshot.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VcenterLatest {
    /// The key its data is stored under: a settings `vcenters[]` name, or a
    /// `VCenterTarget`'s `NAMESPACE/NAME` (percent-encode the `/` in the paths below).
    pub vcenter: String,
    /// The host it was last captured from; null when not known (rows imported from CSV or
    /// stored before hosts were recorded).
    pub host: Option<String>,
    pub snapshot_time: i64,
    pub vm_count: f64,
    pub vcpu_count: f64,
    pub ram_gb: f64,
    pub disk_gb: f64,
}

#[utoipa::path(get, path = "/api/vcenters", operation_id = "list_vcenters", tag = "vcenters",
    responses((status = 200, description = "Every vCenter with its newest snapshot totals", body = [VcenterLatest])))]
pub async fn list(State(store): State<Store>) -> Result<Json<Vec<VcenterLatest>>, ApiError> {
    let latest = store.latest_totals().await?;
    let mut hosts = store.vcenter_hosts().await?;
    Ok(Json(
        latest
            .into_iter()
            .map(|t| VcenterLatest {
                host: hosts.remove(&t.vcenter),
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

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HourlyQuery {
    /// Start (inclusive): Unix seconds or YYYY-MM-DD; default `until` minus 45 days.
    since: Option<String>,
    /// End (exclusive): Unix seconds or YYYY-MM-DD; default now.
    until: Option<String>,
}

/// Snapshot totals in `[since, until)`; the last 45 days by default.
#[utoipa::path(get, path = "/api/vcenters/{vcenter}/totals/hourly", operation_id = "vcenter_hourly_totals", tag = "vcenters",
    params(("vcenter" = String, Path, description = "vCenter key (a VCenterTarget's NAMESPACE/NAME with the / percent-encoded as %2F)"), HourlyQuery),
    responses(
        (status = 200, description = "One row per hourly snapshot, oldest first", body = [VcenterTotals]),
        (status = 400, description = "A parameter is not a time"),
        (status = 404, description = "Unknown vCenter")))]
pub async fn hourly(
    State(store): State<Store>,
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
    vcenter_totals(&store, &vcenter, TotalsGrain::Snapshot, since, until).await
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DailyQuery {
    /// First day (YYYY-MM-DD, inclusive); default the first day there is.
    from: Option<String>,
    /// Last day (YYYY-MM-DD, inclusive); default the last day there is.
    to: Option<String>,
}

/// Daily totals of the days `from..=to` (both optional: all days by default).
#[utoipa::path(get, path = "/api/vcenters/{vcenter}/totals/daily", operation_id = "vcenter_daily_totals", tag = "vcenters",
    params(("vcenter" = String, Path, description = "vCenter key (a VCenterTarget's NAMESPACE/NAME with the / percent-encoded as %2F)"), DailyQuery),
    responses(
        (status = 200, description = "Prorated totals per UTC day, oldest first", body = [VcenterTotals]),
        (status = 400, description = "A parameter is not a date"),
        (status = 404, description = "Unknown vCenter")))]
pub async fn daily(
    State(store): State<Store>,
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
    vcenter_totals(&store, &vcenter, TotalsGrain::Daily, from, to).await
}

/// Monthly totals: the month's average VM count and prorated sums.
#[utoipa::path(get, path = "/api/vcenters/{vcenter}/totals/monthly", operation_id = "vcenter_monthly_totals", tag = "vcenters",
    params(("vcenter" = String, Path, description = "vCenter key (a VCenterTarget's NAMESPACE/NAME with the / percent-encoded as %2F)")),
    responses(
        (status = 200, description = "Totals per UTC month, oldest first", body = [VcenterTotals]),
        (status = 404, description = "Unknown vCenter")))]
pub async fn monthly(
    State(store): State<Store>,
    Path(vcenter): Path<String>,
    Params(NoParameters {}): Params<NoParameters>,
) -> Result<Json<Vec<VcenterTotals>>, ApiError> {
    vcenter_totals(&store, &vcenter, TotalsGrain::Monthly, i64::MIN, i64::MAX).await
}

/// The cache rows of one known vCenter; an unknown one is a 404, not an empty list.
async fn vcenter_totals(
    store: &Store,
    vcenter: &str,
    grain: TotalsGrain,
    from: i64,
    to: i64,
) -> Result<Json<Vec<VcenterTotals>>, ApiError> {
    let rows = store.vcenter_totals_range(grain, vcenter, from, to).await?;
    // Snapshot rows already prove the vCenter known: the busy hourly view skips the probe.
    if grain != TotalsGrain::Snapshot || rows.is_empty() {
        require_vcenter(store, vcenter).await?;
    }
    Ok(Json(rows))
}
