//! `MetricsExport` (short `mexp`): a vmgather-style export of time series from
//! VictoriaMetrics or a Prometheus-compatible API into a privacy-safe ZIP bundle (obfuscated
//! IPs, jobs and labels, metadata, SHA-256) in object storage; once, or on a schedule.

use super::Phase;
use super::snapshot_schedule::CRON_PATTERN;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Condition type: the bundle is written and its checksum recorded.
pub const CONDITION_COMPLETE: &str = "Complete";

/// An export of time series into a ZIP bundle in object storage.
// clippy takes the repeated `type_`/`priority` keys of the `printcolumn(…)` lists for
// duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "vctp.io",
    version = "v1alpha1",
    kind = "MetricsExport",
    plural = "metricsexports",
    shortname = "mexp",
    category = "vctp",
    namespaced,
    status = "MetricsExportStatus",
    derive = "PartialEq",
    cel,
    doc = "An export of time series from VictoriaMetrics or a Prometheus-compatible API into a privacy-safe ZIP bundle (obfuscated IPs, jobs and labels, metadata, SHA-256) in object storage.",
    printcolumn(
        name = "Source",
        type_ = "string",
        json_path = ".spec.source.kind",
        description = "Kind of the metrics source",
        priority = 1
    ),
    printcolumn(
        name = "Phase",
        type_ = "string",
        json_path = ".status.phase",
        description = "Pending, Running, Succeeded or Failed"
    ),
    printcolumn(
        name = "Batches",
        type_ = "integer",
        json_path = ".status.progress.batchesDone",
        description = "Batches exported so far"
    ),
    printcolumn(
        name = "Of",
        type_ = "integer",
        json_path = ".status.progress.batchesTotal",
        description = "Batches in the export"
    ),
    printcolumn(
        name = "ETA",
        type_ = "integer",
        json_path = ".status.progress.etaSeconds",
        description = "Seconds until the export is expected to finish",
        priority = 1
    ),
    printcolumn(
        name = "Series",
        type_ = "integer",
        json_path = ".status.seriesExported",
        description = "Series exported"
    ),
    printcolumn(
        name = "Archive",
        type_ = "string",
        json_path = ".status.archive.key",
        description = "Object key of the bundle",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(
    validation = Rule::new("has(self.timeRange) != has(self.lookbackSeconds)")
        .message("set exactly one of timeRange (a fixed window) and lookbackSeconds (the window before each run)"),
    validation = Rule::new("!has(self.schedule) || has(self.lookbackSeconds)")
        .message("a scheduled export needs lookbackSeconds: a fixed timeRange would export the same window every time"),
    validation = Rule::new("(has(self.selectors) && size(self.selectors) > 0) != has(self.discover)")
        .message("set exactly one of selectors and discover")
)]
#[serde(rename_all = "camelCase")]
pub struct MetricsExportSpec {
    /// Where the series are read.
    pub source: MetricsSource,
    /// The fixed window to export.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_range: Option<TimeRange>,
    /// Export the window of this many seconds before each run (instead of `timeRange`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 60, max = 31_622_400))]
    pub lookback_seconds: Option<i64>,
    /// Series selectors to export, e.g. `{job="vmagent"}` (instead of `discover`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(length(min = 1, max = 4_096)), length(max = 100))]
    pub selectors: Vec<String>,
    /// Export the series of the components and jobs discovered on the source (instead of
    /// `selectors`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discover: Option<Discover>,
    /// How the window is cut into queries.
    #[serde(default)]
    pub batch: BatchOptions,
    /// What is obfuscated before anything is written.
    #[serde(default)]
    pub obfuscation: Obfuscation,
    /// Where in object storage the bundle goes.
    #[serde(default)]
    pub destination: Destination,
    /// Cron schedule (five fields, UTC) of recurring exports [default: export once].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 9, max = 256), regex(pattern = CRON_PATTERN))]
    pub schedule: Option<String>,
}

/// The metrics source.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[x_kube(validation = Rule::new("!has(self.tenant) || self.kind == 'VictoriaMetricsCluster'")
    .message("tenant applies to kind VictoriaMetricsCluster only"))]
#[serde(rename_all = "camelCase")]
pub struct MetricsSource {
    /// Base URL of the query API, e.g. `http://vmselect:8481` or `http://prometheus:9090`.
    #[schemars(
        length(min = 1, max = 2048),
        regex(pattern = r"^https?://[^\s/?#]+(/[^\s]*)?$")
    )]
    pub url: String,
    /// `VictoriaMetricsSingle`, `VictoriaMetricsCluster` or `Prometheus` (any
    /// Prometheus-compatible query API).
    #[serde(default)]
    pub kind: SourceKind,
    /// Credentials for the source [default: none].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_secret_ref: Option<AuthSecretRef>,
    /// Tenant of a VictoriaMetrics cluster: `accountID` or `accountID:projectID`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]+(:[0-9]+)?$"))]
    pub tenant: Option<String>,
}

/// The flavour of the metrics source.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum SourceKind {
    /// Single-node VictoriaMetrics.
    #[default]
    VictoriaMetricsSingle,
    /// VictoriaMetrics cluster (vmselect, with a tenant).
    VictoriaMetricsCluster,
    /// A Prometheus-compatible query API.
    Prometheus,
}

/// A Secret with the source's credentials: basic auth (`usernameKey` and `passwordKey`) or a
/// bearer token (`tokenKey`).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[x_kube(validation = Rule::new("has(self.tokenKey) ? !(has(self.usernameKey) || has(self.passwordKey)) : (has(self.usernameKey) && has(self.passwordKey))")
    .message("set tokenKey (bearer token), or usernameKey and passwordKey (basic auth)"))]
#[serde(rename_all = "camelCase")]
pub struct AuthSecretRef {
    /// Name of the Secret, in the namespace of this resource.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key of the basic-auth user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub username_key: Option<String>,
    /// Key of the basic-auth password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub password_key: Option<String>,
    /// Key of the bearer token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub token_key: Option<String>,
}

/// A fixed window of time.
// `start` and `end` have `format: date-time`, so CEL compares them as timestamps, whatever
// their UTC offsets.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[x_kube(validation = Rule::new("self.end > self.start")
    .message("end must be after start"))]
#[serde(rename_all = "camelCase")]
pub struct TimeRange {
    /// Start of the window (RFC 3339, inclusive).
    pub start: Time,
    /// End of the window (RFC 3339, exclusive).
    pub end: Time,
}

/// Components and jobs to export, found through `vm_app_version` and the series API.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[x_kube(validation = Rule::new("(has(self.components) && size(self.components) > 0) || (has(self.jobs) && size(self.jobs) > 0)")
    .message("discover needs at least one component or job"))]
#[serde(rename_all = "camelCase")]
pub struct Discover {
    /// Components, e.g. `vmagent`, `vmstorage`, `vmselect`, `vminsert`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(length(min = 1, max = 253)))]
    pub components: Vec<String>,
    /// Values of the `job` label.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(length(min = 1, max = 253)))]
    pub jobs: Vec<String>,
}

/// Batching of the export queries.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[x_kube(validation = Rule::new("!has(self.windowSeconds) || !has(self.stepSeconds) || self.stepSeconds <= self.windowSeconds")
    .message("stepSeconds must not exceed windowSeconds"))]
#[serde(rename_all = "camelCase")]
pub struct BatchOptions {
    /// Seconds of data per query [default: 30 s, 1 min or 5 min, chosen from the window's
    /// length].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 30, max = 86_400))]
    pub window_seconds: Option<i32>,
    /// Resolution of the exported samples in seconds [default: the batch window's cadence].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 86_400))]
    pub step_seconds: Option<i32>,
}

/// Deterministic obfuscation, applied as the data streams (the maps go into the bundle's
/// metadata so support can correlate series).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Obfuscation {
    /// Replace IP addresses in `instance` and other labels (ports are kept).
    #[serde(default = "default_true")]
    pub ips: bool,
    /// Rename `job` values to `<component>-job-<n>`.
    #[serde(default = "default_true")]
    pub jobs: bool,
    /// Further label names whose values are obfuscated.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-zA-Z_][a-zA-Z0-9_]*$")
    ))]
    pub labels: Vec<String>,
}

impl Default for Obfuscation {
    fn default() -> Self {
        Obfuscation {
            ips: true,
            jobs: true,
            labels: Vec::new(),
        }
    }
}

fn default_true() -> bool {
    true
}

/// Where the bundle is written.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Destination {
    /// Key prefix in the object store [default: `exports/<namespace>/<name>`]; the bundle is
    /// `<prefix>/<timestamp>.zip`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 512),
        regex(pattern = r"^[A-Za-z0-9_-][A-Za-z0-9._-]*(/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$")
    )]
    pub prefix: Option<String>,
}

/// How far the export got.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricsExportStatus {
    /// `Pending`, `Running`, `Succeeded` or `Failed` (of the latest run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// The Kubernetes Job of the latest run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_name: Option<String>,
    /// When the latest run started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    /// When the latest run finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,
    /// Batches done and to do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
    /// Series written to the bundle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series_exported: Option<i64>,
    /// Samples written to the bundle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples_exported: Option<i64>,
    /// The bundle written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<Archive>,
    /// Errors of the latest run, most recent last.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// `Complete`: the bundle is written and its checksum recorded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// Progress of a running export.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// Batches exported.
    pub batches_done: i64,
    /// Batches in the export.
    pub batches_total: i64,
    /// Seconds until the export is expected to finish.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta_seconds: Option<i64>,
}

/// The bundle in object storage.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Archive {
    /// The object key, e.g. `exports/monitoring/support-case/20260310T140000Z.zip`.
    pub key: String,
    /// Size in bytes.
    pub size: i64,
    /// SHA-256 of the ZIP file, lowercase hex.
    pub sha256: String,
}
