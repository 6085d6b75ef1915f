//! `AggregationJob` (short `aggjob`): one aggregation request — an hour's report, a day's or a
//! month's summaries and report — reconciled into one Kubernetes Job. A `SnapshotSchedule`
//! creates them on its crons; a user creates one by hand to regenerate a period.

use super::{Engine, Phase};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Condition type: the aggregation and its report are written.
pub const CONDITION_COMPLETE: &str = "Complete";

/// A request to aggregate one period: `Hourly` (the report of the hour containing `at`),
/// `Daily` (the summaries of `date`) or `Monthly` (the summaries of `month`).
// clippy takes the repeated `type_`/`priority` keys of the `printcolumn(…)` lists for
// duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "vctp.io",
    version = "v1alpha1",
    kind = "AggregationJob",
    plural = "aggregationjobs",
    shortname = "aggjob",
    category = "vctp",
    namespaced,
    status = "AggregationJobStatus",
    derive = "PartialEq",
    cel,
    doc = "One aggregation request (an hour's report, a day's or a month's summaries and report), run as a Kubernetes Job. Create one to regenerate a period.",
    printcolumn(
        name = "Type",
        type_ = "string",
        json_path = ".spec.period",
        description = "Hourly, Daily or Monthly"
    ),
    printcolumn(
        name = "Period",
        type_ = "string",
        json_path = ".status.period",
        description = "The hour (2026-03-10T14, UTC), day (2026-03-10) or month (2026-03) covered"
    ),
    printcolumn(
        name = "Phase",
        type_ = "string",
        json_path = ".status.phase",
        description = "Pending, Running, Succeeded or Failed"
    ),
    printcolumn(
        name = "Rows",
        type_ = "integer",
        json_path = ".status.rowsWritten",
        description = "Summary rows written"
    ),
    printcolumn(
        name = "Job",
        type_ = "string",
        json_path = ".status.jobName",
        description = "The Kubernetes Job doing the work",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    printcolumn(
        name = "Message",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].message",
        description = "The Ready condition's message: the outcome, or why it is not done"
    )
)]
#[x_kube(
    validation = Rule::new("self.period != 'Hourly' || (has(self.at) && !has(self.date) && !has(self.month))")
        .message("period Hourly needs `at` (a time within the hour) and neither `date` nor `month`"),
    validation = Rule::new("self.period != 'Daily' || (has(self.date) && !has(self.month) && !has(self.at))")
        .message("period Daily needs `date` (YYYY-MM-DD) and neither `month` nor `at`"),
    validation = Rule::new("self.period != 'Monthly' || (has(self.month) && !has(self.date) && !has(self.at))")
        .message("period Monthly needs `month` (YYYY-MM) and neither `date` nor `at`"),
    validation = Rule::new("self == oldSelf")
        .message("spec is immutable: create another AggregationJob to aggregate another period")
)]
#[serde(rename_all = "camelCase")]
pub struct AggregationJobSpec {
    /// What to aggregate: `Hourly` (the hour's report), `Daily` (a UTC day's summaries) or
    /// `Monthly` (a UTC month's summaries, from its daily summaries).
    pub period: AggregationPeriod,
    /// The UTC day of a `Daily` aggregation, `YYYY-MM-DD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(max = 10),
        regex(pattern = r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"),
        extend("format" = "date")
    )]
    pub date: Option<String>,
    /// The UTC month of a `Monthly` aggregation, `YYYY-MM`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 7), regex(pattern = r"^[0-9]{4}-(0[1-9]|1[0-2])$"))]
    pub month: Option<String>,
    /// A time (RFC 3339) within the UTC hour of an `Hourly` report, e.g. the tick that
    /// snapshotted it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Time>,
    /// The vCenters (`VCenterTarget` names of this namespace, or `NAMESPACE/NAME` keys) to
    /// aggregate [default: all].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 100),
        inner(length(min = 1, max = 253)),
        extend("x-kubernetes-list-type" = "set")
    )]
    pub vcenters: Vec<String>,
    /// The aggregation core.
    #[serde(default)]
    pub engine: Engine,
    /// The report written after the aggregation.
    #[serde(default)]
    pub report: ReportOptions,
}

/// The period an `AggregationJob` covers.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum AggregationPeriod {
    /// The report of one hour (interval totals so far that day).
    Hourly,
    /// The summaries and report of one UTC day.
    Daily,
    /// The summaries and report of one UTC month.
    Monthly,
}

/// The report written after an aggregation.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReportOptions {
    /// Write the period's XLSX and CSV report to object storage.
    #[serde(default = "default_true")]
    pub enabled: bool,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions { enabled: true }
    }
}

fn default_true() -> bool {
    true
}

/// What became of the request.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AggregationJobStatus {
    /// The period covered, UTC: `2026-03-10T14` (an hour), `2026-03-10` (a day) or `2026-03`
    /// (a month).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<String>,
    /// `Pending`, `Running`, `Succeeded` or `Failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// The Kubernetes Job doing the work; written as soon as it is created, so a Job deleted
    /// after it finished is never created again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_name: Option<String>,
    /// When the Job started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    /// When the Job finished, successfully or not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,
    /// Summary rows written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows_written: Option<i64>,
    /// The report objects written.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["key"]))]
    pub reports: Vec<ReportObject>,
    /// A human-readable summary of the outcome, or the error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// `Complete` and `Ready`: `True` once the aggregation and its report are written,
    /// `False` once the run failed, `Unknown` while it is pending or running.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// One object written to object storage. No download link: whoever can read the resource
/// could use it; `vctp report url KEY` and the API's `/api/reports/download` hand out
/// short-lived ones.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReportObject {
    /// The object key, e.g. `reports/daily/2026-03-10/all.xlsx`.
    pub key: String,
    /// Size in bytes.
    pub size: i64,
    /// SHA-256 of the contents, lowercase hex.
    pub sha256: String,
}
