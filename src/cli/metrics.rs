//! The flags of `vctp export-metrics`, `vctp import-metrics`, `vctp bundle …` and `vctp
//! obfuscation lookup`: one flag per field of a MetricsExport's spec.

use clap::{Args, Subcommand, ValueEnum};
use std::path::PathBuf;

/// The kind of a VictoriaMetrics / Prometheus server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ServerKind {
    /// Single-node VictoriaMetrics.
    Single,
    /// VictoriaMetrics cluster: `/select|insert/<tenant>/prometheus` is added to the URL.
    Cluster,
    /// vmauth in front of VictoriaMetrics.
    Vmauth,
    /// A Prometheus-compatible query API (query_range only).
    Prometheus,
}

/// How series are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MethodArg {
    /// Probe /api/v1/export once, fall back to query_range where it is refused.
    Auto,
    Export,
    QueryRange,
}

/// Credentials, headers and TLS of a server (the same flags for a source and a target).
#[derive(Debug, Clone, Args)]
pub struct ConnectionArgs {
    /// A file holding `USER:PASSWORD` for basic auth.
    #[arg(long, conflicts_with = "bearer_token_file")]
    pub basic_auth_file: Option<PathBuf>,
    /// A file holding a bearer token.
    #[arg(long)]
    pub bearer_token_file: Option<PathBuf>,
    /// An extra request header `NAME: VALUE` (repeatable); `NAME: @FILE` reads the value
    /// from a file. Values are redacted from every message.
    #[arg(long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// PEM CA certificates to trust (besides the system's).
    #[arg(long, conflicts_with = "insecure")]
    pub ca_file: Option<PathBuf>,
    /// Skip certificate verification (lab servers only).
    #[arg(long)]
    pub insecure: bool,
    /// Seconds one request may take, its body included.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(5..=3_600))]
    pub timeout_seconds: u64,
    /// Attempts after the first for a request that timed out, failed to connect or got HTTP
    /// 429 or 5xx.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(0..=20))]
    pub retries: u32,
}

#[derive(Debug, Args)]
pub struct ExportMetricsArgs {
    /// Base URL of the source, e.g. http://victoria-metrics:8428.
    #[arg(long, env = "VCTP_SOURCE_URL")]
    pub source_url: String,
    #[arg(long, value_enum, default_value_t = ServerKind::Single)]
    pub source_kind: ServerKind,
    /// Tenant of a Cluster source: ACCOUNT[:PROJECT].
    #[arg(long)]
    pub tenant: Option<String>,
    #[command(flatten)]
    pub connection: ConnectionArgs,
    #[arg(long, value_enum, default_value_t = MethodArg::Auto)]
    pub method: MethodArg,
    /// A series selector (`match[]`, repeatable, OR-ed), e.g. '{job="vmagent"}'.
    #[arg(long = "match", value_name = "SELECTOR")]
    pub selectors: Vec<String>,
    /// Only series of this job (repeatable; literal, AND-ed with --namespace).
    #[arg(long = "job")]
    pub jobs: Vec<String>,
    /// Only series of this namespace (repeatable; literal, AND-ed with --job).
    #[arg(long = "namespace")]
    pub namespaces: Vec<String>,
    /// Export the jobs of this VictoriaMetrics component found in vm_app_version
    /// (repeatable, e.g. vmagent).
    #[arg(long = "discover-component")]
    pub discover_components: Vec<String>,
    /// A PromQL expression exported with query_range (repeatable).
    #[arg(long = "query")]
    pub queries: Vec<String>,
    /// Start of the range: RFC 3339 or Unix seconds (inclusive).
    #[arg(long, requires = "end", conflicts_with = "last")]
    pub start: Option<String>,
    /// End of the range: RFC 3339 or Unix seconds (exclusive).
    #[arg(long, requires = "start")]
    pub end: Option<String>,
    /// The range ending now, e.g. 24h, 90m, 7d.
    #[arg(long)]
    pub last: Option<String>,
    /// Data per request, e.g. 1h [default: 5m up to 2h, 1h up to 2d, else 6h].
    #[arg(long)]
    pub window: Option<String>,
    /// Resolution of query_range samples.
    #[arg(long, default_value = "30s")]
    pub step: String,
    #[command(flatten)]
    pub obfuscation: ObfuscationArgs,
    /// Where the bundle goes: an object store URL (s3://bucket/prefix, file:///dir, …) or a
    /// directory.
    #[arg(long, required_unless_present = "stdout", conflicts_with = "stdout")]
    pub out: Option<String>,
    /// Key prefix of the bundle in --out.
    #[arg(long, default_value = "exports")]
    pub prefix: String,
    /// An object store option KEY=VALUE for --out (repeatable, e.g. aws_endpoint=…).
    #[arg(long = "store-option", value_name = "KEY=VALUE")]
    pub store_options: Vec<String>,
    /// Names the bundle (<prefix>/<run-id>.zip) and its parts [default: START-END].
    #[arg(long)]
    pub run_id: Option<String>,
    /// Continue the run's checkpoint in --out (same run id and settings) instead of starting
    /// over.
    #[arg(long)]
    pub resume: bool,
    /// After writing, keep only this many newest bundles under the prefix.
    #[arg(long)]
    pub keep_last: Option<u32>,
    /// After writing, delete bundles under the prefix older than this many days.
    #[arg(long)]
    pub max_age_days: Option<u32>,
    /// Write the (obfuscated) lines to standard output instead of a bundle.
    #[arg(long)]
    pub stdout: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ObfuscationArgs {
    /// Turn every obfuscation off (no key needed).
    #[arg(long, conflicts_with_all = ["obfuscate_label", "obfuscate_ips_in_any_label"])]
    pub no_obfuscation: bool,
    /// Replace the host of `instance` labels (on by default).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub obfuscate_ips: bool,
    /// Replace `job` values (on by default).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub obfuscate_jobs: bool,
    /// Replace the values of this label too (repeatable).
    #[arg(long)]
    pub obfuscate_label: Vec<String>,
    /// Replace IP addresses found inside any label value.
    #[arg(long)]
    pub obfuscate_ips_in_any_label: bool,
    /// Remove this label from every series (repeatable).
    #[arg(long)]
    pub drop_label: Vec<String>,
    /// The obfuscation key file (at least 16 bytes; e.g. `openssl rand -hex 32 > key`)
    /// [default: the key itself from VCTP_OBFUSCATION_KEY].
    #[arg(long)]
    pub obfuscation_key_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VerifyMode {
    /// Re-export what was imported and compare every series' samples.
    Exact,
    /// Compare the numbers of series and samples only.
    Counts,
    /// No verification.
    None,
}

#[derive(Debug, Args)]
pub struct ImportMetricsArgs {
    /// The bundle: a ZIP file, or a key in --from-store.
    pub bundle: String,
    /// Read the bundle from this object store (its manifest is required).
    #[arg(long)]
    pub from_store: Option<String>,
    /// An object store option KEY=VALUE for --from-store (repeatable).
    #[arg(long = "store-option", value_name = "KEY=VALUE")]
    pub store_options: Vec<String>,
    /// Base URL of the target, e.g. http://victoria-metrics:8428.
    #[arg(long, env = "VCTP_TARGET_URL")]
    pub target_url: String,
    #[arg(long, value_enum, default_value_t = ServerKind::Single)]
    pub target_kind: ServerKind,
    /// Tenant of a Cluster target: ACCOUNT[:PROJECT].
    #[arg(long)]
    pub tenant: Option<String>,
    /// Where a Cluster target is read (vmselect) for its retention and the verification
    /// [default: --target-url].
    #[arg(long)]
    pub select_url: Option<String>,
    #[command(flatten)]
    pub connection: ConnectionArgs,
    /// The bundle's expected SHA-256 (else its .sha256 sidecar or its manifest).
    #[arg(long)]
    pub sha256: Option<String>,
    /// Import a bundle whose checksum cannot be found.
    #[arg(long)]
    pub allow_unverified: bool,
    /// Uncompressed bytes of lines per request (cut at line ends).
    #[arg(long, default_value_t = 4 << 20, value_parser = clap::value_parser!(u64).range(1_024..=(256 << 20)))]
    pub chunk_bytes: u64,
    /// Move the samples so the newest is one minute ago (whole seconds).
    #[arg(long, conflicts_with = "shift_ms")]
    pub shift_to_now: bool,
    /// Move every sample by this many milliseconds.
    #[arg(long, allow_hyphen_values = true)]
    pub shift_ms: Option<i64>,
    /// Send samples older than the target's retention too (it drops them).
    #[arg(long)]
    pub no_trim: bool,
    /// The target's retention, when it does not tell (e.g. 30d).
    #[arg(long)]
    pub retention: Option<String>,
    /// Add this label to every series (KEY=VALUE, repeatable).
    #[arg(long = "extra-label", value_name = "KEY=VALUE")]
    pub extra_labels: Vec<String>,
    /// Continue an interrupted import of the same bundle to the same target.
    #[arg(long)]
    pub resume: bool,
    /// Where the import's progress is kept [default: <bundle>.import-state.json].
    #[arg(long)]
    pub state_file: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = VerifyMode::Exact)]
    pub verify: VerifyMode,
}

#[derive(Debug, Subcommand)]
pub enum BundleCommand {
    /// Check a bundle offline: its SHA-256 (sidecar, manifest or --sha256), every entry's
    /// CRC and the counts in its metadata.
    Verify {
        bundle: PathBuf,
        #[arg(long)]
        sha256: Option<String>,
    },
    /// Print what a bundle holds: its metadata, entries and counts.
    Inspect {
        bundle: PathBuf,
        /// Print metadata.json as it is.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ObfuscationCommand {
    /// Print the pseudonym each VALUE of LABEL has in bundles made with this key (no mapping
    /// is stored anywhere: only the key holder can do this).
    Lookup {
        /// The key file [default: the key itself from VCTP_OBFUSCATION_KEY].
        #[arg(long)]
        key_file: Option<PathBuf>,
        /// The label: `instance` (hosts), `job`, or any other label.
        #[arg(long)]
        label: String,
        #[arg(required = true)]
        values: Vec<String>,
    },
}
