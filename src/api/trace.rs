//! `/api/vm/trace?vm=…[&vcenter=…]&view=hourly|daily`: the history of every VM whose id or
//! exact name is `vm`, from the hourly rows or the daily summaries.

use super::{ApiError, Params};
use crate::store::Store;
use crate::store::trace::{TraceView, VmTrace};
use axum::Json;
use axum::extract::State;
use serde::Deserialize;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TraceQuery {
    /// A VM's managed object id (`vm-1234`) or its exact name.
    vm: Option<String>,
    /// Only VMs of this vCenter.
    vcenter: Option<String>,
    /// `hourly` (one point per snapshot, the default) or `daily` (one per day).
    view: Option<String>,
}

/// The traces of the VMs matching `vm`, ordered by vCenter then VM id; a 404 when none.
#[utoipa::path(
    get,
    path = "/api/vm/trace",
    operation_id = "vm_trace",
    params(TraceQuery),
    responses(
        (status = 200, description = "One trace per matching VM", body = [VmTrace]),
        (status = 400, description = "A missing or invalid parameter, named in `error`"),
        (status = 404, description = "No VM has this id or name"),
    ),
    tag = "vms"
)]
pub async fn trace(
    State(store): State<Store>,
    Params(query): Params<TraceQuery>,
) -> Result<Json<Vec<VmTrace>>, ApiError> {
    let vm = query
        .vm
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| ApiError::bad("vm", "is required (a VM id or exact name)"))?;
    let view = match query.view.as_deref() {
        None => TraceView::Hourly,
        Some(text) => TraceView::parse(text).ok_or_else(|| {
            ApiError::bad("view", format!("{text:?} is not one of hourly, daily"))
        })?,
    };
    let matches = store.vm_matches(&vm, query.vcenter.as_deref()).await?;
    if matches.is_empty() {
        return Err(ApiError::UnknownVm(vm));
    }
    let mut traces = Vec::with_capacity(matches.len());
    for found in &matches {
        traces.push(store.vm_trace(view, found).await?);
    }
    Ok(Json(traces))
}
