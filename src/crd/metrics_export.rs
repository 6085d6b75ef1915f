//! `MetricsExport` (short `mexp`): an export of time series from VictoriaMetrics or a
//! Prometheus-compatible API into a privacy-safe ZIP bundle in object storage (keyed
//! pseudonyms for IPs, hosts, jobs and chosen labels; metadata; SHA-256 sidecar and a
//! manifest written last), once or on a schedule, resumable window by window.

use super::snapshot_schedule::{CRON_PATTERN, TIME_ZONE_PATTERN};
use super::vcenter_target::TlsConfig;
use super::{DATA_KEY_PATTERN, SecretKeyRef};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Condition type: the bundle is written and its checksum recorded.
pub const CONDITION_COMPLETE: &str = "Complete";

/// A Prometheus label name.
const LABEL_NAME_PATTERN: &str = r"^[a-zA-Z_][a-zA-Z0-9_]*$";

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
    doc = "An export of time series from VictoriaMetrics or a Prometheus-compatible API into a privacy-safe ZIP bundle (keyed pseudonyms for IPs, hosts, jobs and labels; metadata; SHA-256; manifest) in object storage, once or on a schedule.",
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
        description = "Pending, Running, Succeeded, Failed or Suspended"
    ),
    printcolumn(
        name = "Method",
        type_ = "string",
        json_path = ".status.progress.method",
        description = "Export or QueryRange",
        priority = 1
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
        name = "Samples",
        type_ = "integer",
        json_path = ".status.progress.samples",
        description = "Samples exported so far"
    ),
    printcolumn(
        name = "ETA",
        type_ = "integer",
        json_path = ".status.progress.etaSeconds",
        description = "Seconds until the export is expected to finish",
        priority = 1
    ),
    printcolumn(
        name = "Bundle",
        type_ = "string",
        json_path = ".status.archive.key",
        description = "Object key of the bundle",
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
    validation = Rule::new("has(self.timeRange) != has(self.lookbackSeconds)")
        .message("set exactly one of timeRange (a fixed window) and lookbackSeconds (the window before each run)"),
    validation = Rule::new("!has(self.schedule) || has(self.lookbackSeconds)")
        .message("a scheduled export needs lookbackSeconds: a fixed timeRange would export the same window every time"),
    validation = Rule::new("(has(self.selectors) && size(self.selectors) > 0) || (has(self.jobs) && size(self.jobs) > 0) || (has(self.namespaces) && size(self.namespaces) > 0) || has(self.discover) || (has(self.queries) && size(self.queries) > 0)")
        .message("say what to export: selectors, jobs, namespaces, discover or queries"),
    validation = Rule::new("!has(self.discover) || !(has(self.selectors) && size(self.selectors) > 0)")
        .message("set at most one of selectors and discover"),
    validation = Rule::new("!(has(self.queries) && size(self.queries) > 0) || self.source.method != 'Export'")
        .message("queries are PromQL expressions read with query_range: they need source.method QueryRange or Auto"),
    // ips and jobs default to true: only an explicit false turns them off.
    validation = Rule::new("(has(self.obfuscation) && has(self.obfuscation.keySecretRef)) || (has(self.obfuscation) && has(self.obfuscation.ips) && !self.obfuscation.ips && has(self.obfuscation.jobs) && !self.obfuscation.jobs && !(has(self.obfuscation.ipsInAnyLabel) && self.obfuscation.ipsInAnyLabel) && !(has(self.obfuscation.labels) && size(self.obfuscation.labels) > 0))")
        .message("obfuscation needs a key: create one with `kubectl create secret generic export-key --from-literal=key=$(openssl rand -hex 32)` and set obfuscation.keySecretRef to {name: export-key, key: key} (or turn ips, jobs, ipsInAnyLabel and labels off)")
)]
#[serde(rename_all = "camelCase")]
pub struct MetricsExportSpec {
    /// Where the series are read.
    pub source: MetricsSource,
    /// Series selectors to export (`match[]`), e.g. `{job="vmagent"}`; OR-ed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(length(min = 1, max = 4_096)), length(max = 100))]
    pub selectors: Vec<String>,
    /// Only series of these `job` label values (matched literally, AND-ed with `namespaces`
    /// and applied to every selector).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(length(min = 1, max = 253)), length(max = 100))]
    pub jobs: Vec<String>,
    /// Only series of these `namespace` label values (matched literally, AND-ed with `jobs`
    /// and applied to every selector).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(length(min = 1, max = 253)), length(max = 100))]
    pub namespaces: Vec<String>,
    /// Export the series of the components and jobs discovered on the source (instead of
    /// `selectors`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discover: Option<Discover>,
    /// PromQL expressions exported with `query_range` at `batch.stepSeconds`, for sources
    /// without `/api/v1/export` (e.g. `rate(http_requests_total[5m])`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(length(min = 1, max = 4_096)), length(max = 100))]
    pub queries: Vec<String>,
    /// The fixed window to export.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_range: Option<TimeRange>,
    /// Export the window of this many seconds before each run (instead of `timeRange`). The
    /// operator resolves it once per run, so a retried or resumed run exports the same
    /// window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 60, max = 31_622_400))]
    pub lookback_seconds: Option<i64>,
    /// How the window is cut into requests, and how they are retried.
    #[serde(default)]
    pub batch: BatchOptions,
    /// What is obfuscated before anything is written.
    #[serde(default)]
    pub obfuscation: Obfuscation,
    /// Where in object storage the bundle goes, and how long bundles are kept.
    #[serde(default)]
    pub destination: Destination,
    /// Stop the running export (its Job is deleted, its progress kept) until set back to
    /// false, when the same run resumes.
    #[serde(default)]
    pub suspend: bool,
    /// Cron schedule (five fields, in `timeZone`) of recurring exports [default: export
    /// once].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 9, max = 256), regex(pattern = CRON_PATTERN))]
    pub schedule: Option<String>,
    /// IANA time zone of `schedule`, e.g. `Europe/Zurich`.
    #[serde(default = "default_time_zone")]
    #[schemars(length(min = 1, max = 64), regex(pattern = TIME_ZONE_PATTERN))]
    pub time_zone: String,
}

fn default_time_zone() -> String {
    "UTC".into()
}

/// The metrics source.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[x_kube(
    validation = Rule::new("!has(self.tenant) || self.kind == 'Cluster'")
        .message("tenant applies to kind Cluster only"),
    validation = Rule::new("self.kind != 'Cluster' || has(self.tenant)")
        .message("a Cluster source needs a tenant (accountID or accountID:projectID, e.g. \"0\")"),
    validation = Rule::new("self.kind != 'Prometheus' || self.method != 'Export'")
        .message("Prometheus has no /api/v1/export: use method QueryRange or Auto")
)]
#[serde(rename_all = "camelCase")]
pub struct MetricsSource {
    /// Base URL of the query API, e.g. `http://victoria-metrics:8428`, `http://vmselect:8481`
    /// (with `tenant`), `https://vmauth.example.com` or `http://prometheus:9090`.
    #[schemars(
        length(min = 1, max = 2048),
        regex(pattern = r"^https?://[^\s/?#@]+(/[^\s?#]*)?$")
    )]
    pub url: String,
    /// `Single` (single-node VictoriaMetrics), `Cluster` (vmselect: `/select/<tenant>/prometheus`
    /// is added to the URL), `VMAuth` (the URL is vmauth's, routes as it maps them) or
    /// `Prometheus` (any Prometheus-compatible query API).
    #[serde(default)]
    pub kind: SourceKind,
    /// Tenant of a VictoriaMetrics cluster: `accountID` or `accountID:projectID`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]{1,10}(:[0-9]{1,10})?$"))]
    pub tenant: Option<String>,
    /// How series are read: `Auto` probes `/api/v1/export` once per run and falls back to
    /// `query_range` where the source refuses it; `Export` or `QueryRange` force one.
    #[serde(default)]
    pub method: ExportMethod,
    /// Credentials for the source [default: none].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_secret_ref: Option<AuthSecretRef>,
    /// Extra request headers, e.g. a tenant or API-key header of a gateway.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub headers: Vec<Header>,
    /// How the source's certificate is verified [default: against the system trust store].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
}

/// The flavour of the metrics source.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum SourceKind {
    /// Single-node VictoriaMetrics.
    #[default]
    Single,
    /// VictoriaMetrics cluster (vmselect), with a tenant.
    Cluster,
    /// vmauth in front of VictoriaMetrics.
    VMAuth,
    /// A Prometheus-compatible query API.
    Prometheus,
}

/// How series are read from the source.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ExportMethod {
    /// Probe `/api/v1/export` once per run; fall back to `query_range` where it is refused.
    #[default]
    Auto,
    /// Raw samples from `/api/v1/export`.
    Export,
    /// Samples at `batch.stepSeconds` from `/api/v1/query_range`.
    QueryRange,
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
    #[schemars(length(min = 1, max = 253), regex(pattern = DATA_KEY_PATTERN))]
    pub username_key: Option<String>,
    /// Key of the basic-auth password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = DATA_KEY_PATTERN))]
    pub password_key: Option<String>,
    /// Key of the bearer token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = DATA_KEY_PATTERN))]
    pub token_key: Option<String>,
}

/// One request header: a literal value, or one read from a Secret.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[x_kube(validation = Rule::new("has(self.value) != has(self.valueFrom)")
    .message("set exactly one of value and valueFrom"))]
#[serde(rename_all = "camelCase")]
pub struct Header {
    /// Header name, e.g. `X-Scope-OrgID`.
    #[schemars(
        length(min = 1, max = 128),
        regex(pattern = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
    )]
    pub name: String,
    /// A literal value (not a secret: it shows in the resource).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4_096))]
    pub value: Option<String>,
    /// The value from a Secret key (redacted from every log, status and Event).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from: Option<SecretKeyRef>,
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

/// A span of time in status (written by vctp, so not validated again).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Span {
    /// Start (inclusive).
    pub start: Time,
    /// End (exclusive).
    pub end: Time,
}

/// Components and jobs to export, found through `vm_app_version` and the series API.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[x_kube(validation = Rule::new("(has(self.components) && size(self.components) > 0) || (has(self.jobs) && size(self.jobs) > 0)")
    .message("discover needs at least one component or job"))]
#[serde(rename_all = "camelCase")]
pub struct Discover {
    /// Components, e.g. `vmagent`, `vmstorage`, `vmselect`, `vminsert`: the jobs whose
    /// `vm_app_version` series name them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(length(min = 1, max = 253)), length(max = 50))]
    pub components: Vec<String>,
    /// Values of the `job` label.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(length(min = 1, max = 253)), length(max = 100))]
    pub jobs: Vec<String>,
}

/// Batching of the requests.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[x_kube(validation = Rule::new("!has(self.windowSeconds) || !has(self.stepSeconds) || self.stepSeconds <= self.windowSeconds")
    .message("stepSeconds must not exceed windowSeconds"))]
#[serde(rename_all = "camelCase")]
pub struct BatchOptions {
    /// Seconds of data per request [default: 5 min for ranges up to 2 h, 1 h up to 2 days,
    /// else 6 h]. A window that times out is halved (down to 30 s) and the split recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 30, max = 604_800))]
    pub window_seconds: Option<i32>,
    /// Resolution of `query_range` samples in seconds (QueryRange only).
    #[serde(default = "default_step_seconds")]
    #[schemars(range(min = 1, max = 86_400))]
    pub step_seconds: i32,
    /// Seconds one request may take, body included.
    #[serde(default = "default_timeout_seconds")]
    #[schemars(range(min = 5, max = 3_600))]
    pub timeout_seconds: i32,
    /// Attempts after the first one for a request that timed out, failed to connect or got
    /// HTTP 429 or 5xx (with exponential backoff).
    #[serde(default = "default_retries")]
    #[schemars(range(min = 0, max = 20))]
    pub retries: i32,
}

impl Default for BatchOptions {
    fn default() -> Self {
        BatchOptions {
            window_seconds: None,
            step_seconds: default_step_seconds(),
            timeout_seconds: default_timeout_seconds(),
            retries: default_retries(),
        }
    }
}

fn default_step_seconds() -> i32 {
    30
}

fn default_timeout_seconds() -> i32 {
    300
}

fn default_retries() -> i32 {
    3
}

/// Keyed obfuscation, applied as the data streams: pseudonym = HMAC-SHA256 of the value
/// under the key, so the same key gives the same pseudonyms in every export and a different
/// key shares none. No mapping is stored anywhere; the key holder can look pseudonyms up
/// with `vctp obfuscation lookup`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Obfuscation {
    /// Replace the host of the `instance` label: IPs become `ip-<hex>.invalid`, other hosts
    /// `host-<hex>.invalid`; ports are kept.
    #[serde(default = "default_true")]
    pub ips: bool,
    /// Replace `job` values with `job-<hex>`.
    #[serde(default = "default_true")]
    pub jobs: bool,
    /// Further label names whose values become `<label>-<hex>`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        inner(
            length(min = 1, max = 253),
            regex(pattern = LABEL_NAME_PATTERN)
        ),
        length(max = 100)
    )]
    pub labels: Vec<String>,
    /// Labels removed from every series.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        inner(
            length(min = 1, max = 253),
            regex(pattern = LABEL_NAME_PATTERN)
        ),
        length(max = 100)
    )]
    pub drop_labels: Vec<String>,
    /// Also replace IP addresses found inside any other label's value.
    #[serde(default)]
    pub ips_in_any_label: bool,
    /// The Secret key holding the obfuscation key (at least 16 bytes, e.g. `openssl rand -hex
    /// 32`). Required whenever anything is obfuscated; the bundle holds only its fingerprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_secret_ref: Option<SecretKeyRef>,
}

impl Default for Obfuscation {
    fn default() -> Self {
        Obfuscation {
            ips: true,
            jobs: true,
            labels: Vec::new(),
            drop_labels: Vec::new(),
            ips_in_any_label: false,
            key_secret_ref: None,
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
    /// `<prefix>/<runId>.zip`, with `<runId>.zip.sha256` and `<runId>.manifest.json` beside it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 512),
        regex(pattern = r"^[A-Za-z0-9_-][A-Za-z0-9._-]*(/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$")
    )]
    pub prefix: Option<String>,
    /// Object store URL (`s3://bucket/prefix`, `gs://…`, `az://…`, `file:///dir`) [default: the
    /// operator's reports store].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 2048),
        regex(pattern = r"^(s3|gs|az|file|https)://[^\s?#@]+$")
    )]
    pub store_url: Option<String>,
    /// A Secret whose keys are object_store options of that store (e.g.
    /// `aws_access_key_id`, `aws_secret_access_key`, `aws_endpoint`) [default: the
    /// operator's object store credentials].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<LocalSecretRef>,
    /// How many bundles of this export are kept [default: all].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<BundleRetention>,
    /// Delete this export's bundles when the resource is deleted.
    #[serde(default)]
    pub delete_on_resource_deletion: bool,
}

/// A Secret in the resource's namespace, used whole.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalSecretRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// Which of an export's bundles are kept after a new one is written.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[x_kube(validation = Rule::new("has(self.keepLast) || has(self.maxAgeDays)")
    .message("set keepLast, maxAgeDays or both"))]
#[serde(rename_all = "camelCase")]
pub struct BundleRetention {
    /// Keep this many newest bundles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10_000))]
    pub keep_last: Option<i32>,
    /// Delete bundles older than this many days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 36_500))]
    pub max_age_days: Option<i32>,
}

// The phase of a MetricsExport's latest run. (A `//` comment: schemars would put a doc
// comment in place of the description of the `phase` field.)
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ExportPhase {
    /// Accepted, no Job running yet.
    Pending,
    /// Its Job is running.
    Running,
    /// The bundle is written.
    Succeeded,
    /// Its Job failed after the retries it was allowed.
    Failed,
    /// `spec.suspend` stopped it; its progress is kept.
    Suspended,
}

impl ExportPhase {
    /// Whether the run is over (nothing more happens until the next tick or a new resource).
    pub fn is_finished(self) -> bool {
        matches!(self, ExportPhase::Succeeded | ExportPhase::Failed)
    }
}

impl From<super::Phase> for ExportPhase {
    fn from(phase: super::Phase) -> Self {
        match phase {
            super::Phase::Pending => ExportPhase::Pending,
            super::Phase::Running => ExportPhase::Running,
            super::Phase::Succeeded => ExportPhase::Succeeded,
            super::Phase::Failed => ExportPhase::Failed,
        }
    }
}

/// How far the export got. The operator writes it, except `progress` and `checkpoint`,
/// which the running Job patches (at most every 5 s).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricsExportStatus {
    /// `Pending`, `Running`, `Succeeded`, `Failed` or `Suspended` (of the latest run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<ExportPhase>,
    /// The latest run: the time it stands for, `YYYYMMDDTHHMMSSZ`; a retried or resumed
    /// run keeps it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// The window the latest run exports, resolved once for the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<Span>,
    /// The Kubernetes Job of the latest run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_name: Option<String>,
    /// When the latest run started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    /// When the latest run finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,
    /// Live progress of the running Job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
    /// Where the running Job's resumable state is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<CheckpointStatus>,
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
    /// `Complete` and `Ready`: `True` once the bundle is written and its checksum recorded,
    /// `False` once the run failed (or cannot start), `Unknown` while it is pending or
    /// running.
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
    /// Batches (windows) exported.
    pub batches_done: i64,
    /// Batches in the export (grows when a window is split).
    pub batches_total: i64,
    /// `Export` or `QueryRange`: how the series are being read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// The window being exported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_window: Option<Span>,
    /// Distinct series exported so far.
    #[serde(default)]
    pub series: i64,
    /// Samples exported so far.
    #[serde(default)]
    pub samples: i64,
    /// Compressed bytes written so far.
    #[serde(default)]
    pub bytes: i64,
    /// Seconds until the export is expected to finish.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta_seconds: Option<i64>,
    /// When the Job last updated this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated: Option<Time>,
}

/// The resumable state of a run in object storage.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckpointStatus {
    /// Object key of the checkpoint, e.g. `exports/monitoring/case/20260310T000000Z.parts/checkpoint.json`.
    pub key: String,
    /// Segments (windows) stored.
    pub segments: i64,
    /// Hash of the export's settings: a run with other settings starts over.
    pub spec_hash: String,
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
    /// The manifest written last: a bundle without one is incomplete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_key: Option<String>,
}
