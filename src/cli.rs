//! The command line: one binary, `vctp`, with a subcommand per unit of work.

use crate::aggregate::Engine;
use crate::cost::GroupBy;
use crate::output::{CostFormat, OutputFormat};
use crate::sim;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;

pub mod metrics;

#[derive(Debug, Parser)]
#[command(
    name = "vctp",
    version,
    about = "vSphere chargeback: hourly VM snapshots → exact daily and monthly summaries"
)]
pub struct Cli {
    /// Settings file (YAML with a top-level `settings:` mapping).
    #[arg(long, global = true, env = "VCTP_CONFIG")]
    pub config: Option<PathBuf>,
    /// Database: a SQLite file path, sqlite://FILE or postgres://USER@HOST/DB
    /// [default: settings.database_url, else ./db.sqlite3].
    #[arg(long, global = true, env = "VCTP_DATABASE_URL")]
    pub database_url: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the whole pipeline against a built-in simulated vCenter: backfill a history of
    /// hourly snapshots into ./vctp-demo/, aggregate it, then keep snapshotting.
    Demo(DemoArgs),
    /// One machine, no Kubernetes: snapshot every configured vCenter on a schedule, aggregate
    /// each day and month, apply retention, and serve the UI and API on --listen; stops cleanly
    /// on SIGTERM or Ctrl-C.
    Standalone(ServeArgs),
    /// Serve the JSON API, `/metrics`, `/healthz` and `/readyz` over HTTP; stops cleanly on
    /// SIGTERM or Ctrl-C.
    Serve(ServeArgs),
    /// Serve simulated vCenters over SOAP (deterministic inventory that churns with the clock).
    Sim(SimArgs),
    /// Encrypt a secret for the setting named by --setting: reads it from stdin, prints
    /// `enc:v2:…` (the key is settings.encryption_key, else this host's identity).
    Encrypt(EncryptArgs),
    /// Print the API's OpenAPI document (the one `vctp serve` answers at /swagger.json).
    Openapi,
    /// Schema, retention and migration between databases.
    #[command(subcommand)]
    Db(DbCommand),
    /// Load, export or generate hourly snapshot rows.
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
    /// Compute daily or monthly summaries (replaces the period).
    #[command(subcommand)]
    Aggregate(AggregateCommand),
    /// Print stored daily or monthly summaries.
    #[command(subcommand)]
    Summary(SummaryCommand),
    /// What a day or a month costs: the daily summaries priced at each day's rate card
    /// (settings.rate_cards) and summed by VM, tenant (settings.tenant_rules), pool, vCenter or
    /// cluster. Every line is the sum of its charges, each rounded half-even once.
    #[command(subcommand)]
    Costs(CostsCommand),
    /// Build, list and download the XLSX/CSV reports in object storage (settings.reports_url).
    #[command(subcommand)]
    Report(ReportCommand),
    /// Print vCenter totals.
    #[command(subcommand)]
    Totals(TotalsCommand),
    /// The vCenter totals caches.
    #[command(subcommand)]
    Cache(CacheCommand),
    /// Measure the aggregation engines on synthetic data.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Print the CustomResourceDefinitions as one YAML stream, or write one file per kind.
    Crd(CrdArgs),
    /// Run the Kubernetes operator: reconcile VCenterTargets, SnapshotSchedules,
    /// AggregationJobs and MetricsExports into Jobs (the Helm chart sets every option through
    /// its `VCTP_*` environment variable).
    Operator(OperatorArgs),
    /// Export time series from VictoriaMetrics or a Prometheus-compatible API into a
    /// privacy-safe ZIP bundle (or to stdout); resumable. Exit 0 done, 2 bad input, 1 failed,
    /// 143 interrupted (the checkpoint is kept: run again with --resume).
    ExportMetrics(Box<metrics::ExportMetricsArgs>),
    /// Load a bundle into VictoriaMetrics: checksum first, then line-aligned gzip chunks,
    /// resumable, verified at the end.
    ImportMetrics(Box<metrics::ImportMetricsArgs>),
    /// Check or describe a bundle offline.
    #[command(subcommand)]
    Bundle(metrics::BundleCommand),
    /// What the obfuscation key does.
    #[command(subcommand)]
    Obfuscation(metrics::ObfuscationCommand),
    /// What the operator's Kubernetes Jobs run: one unit of work on one custom resource. The
    /// outcome is left as JSON in the termination message (VCTP_TERMINATION_LOG, default
    /// /dev/termination-log); exit status 0 = succeeded, 1 = the work failed, 2 = bad input.
    #[command(subcommand)]
    Job(JobCommand),
}

#[derive(Debug, Subcommand)]
pub enum JobCommand {
    /// Snapshot the vCenter of one VCenterTarget and store its rows under the resource's
    /// name. The account comes from VCTP_VCENTER_USERNAME and VCTP_VCENTER_PASSWORD, a CA
    /// bundle to trust (PEM) from VCTP_VCENTER_CA_BUNDLE.
    Snapshot(JobSnapshotArgs),
    /// Run one AggregationJob: aggregate its day or month and write the period's reports.
    Aggregate(JobAggregateArgs),
    /// Run one MetricsExport: the run the operator resolved (--run-id, --start, --end), resumed
    /// from its checkpoint when there is one. Credentials come from VCTP_SOURCE_USERNAME,
    /// VCTP_SOURCE_PASSWORD or VCTP_SOURCE_TOKEN, VCTP_SOURCE_HEADER_<n>, VCTP_SOURCE_CA_BUNDLE,
    /// VCTP_OBFUSCATION_KEY and VCTP_STORE_<option>; progress is patched into the resource's
    /// status. Exit 143 when stopped by SIGTERM (the checkpoint is kept).
    Export(JobExportArgs),
}

#[derive(Debug, Args)]
pub struct JobSnapshotArgs {
    /// The VCenterTarget, NAMESPACE/NAME.
    #[arg(long)]
    pub target: String,
    /// The schedule tick the snapshot stands for, RFC 3339 (e.g. 2026-03-10T14:00:00Z); the
    /// rows are stored under this time.
    #[arg(long)]
    pub at: String,
    /// Attempts after the first one when the vCenter fails transiently (unreachable, timeout,
    /// HTTP 5xx); a wrong password or certificate fails at once.
    #[arg(long, default_value_t = 3)]
    pub max_retries: u32,
    /// Seconds between those attempts.
    #[arg(long, default_value_t = 300)]
    pub retry_interval_seconds: u64,
    /// After the snapshot, delete hourly rows older than this many days (with
    /// --daily-max-age-months: the SnapshotSchedule's retention).
    #[arg(long, requires = "daily_max_age_months", value_parser = clap::value_parser!(u32).range(1..))]
    pub hourly_max_age_days: Option<u32>,
    /// After the snapshot, delete daily summaries older than this many months.
    #[arg(long, requires = "hourly_max_age_days", value_parser = clap::value_parser!(u32).range(1..))]
    pub daily_max_age_months: Option<u32>,
    /// Every VCenterTarget (NAMESPACE/NAME) with this target's name in the operator's
    /// watched namespaces, comma-separated. Rows an older operator stored under the bare
    /// name are taken over when this target is the only one; else they are left and the
    /// result says so.
    #[arg(long, value_delimiter = ',')]
    pub legacy_owners: Option<Vec<String>>,
}

#[derive(Debug, Args)]
pub struct JobAggregateArgs {
    /// The AggregationJob, NAMESPACE/NAME.
    #[arg(long)]
    pub name: String,
    /// Object storage for the reports (file:///dir, s3://bucket/prefix, …)
    /// [default: settings.reports_url, else settings.reports_dir].
    #[arg(long, env = "VCTP_REPORTS_URL")]
    pub reports_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct JobExportArgs {
    /// The MetricsExport, NAMESPACE/NAME.
    #[arg(long)]
    pub name: String,
    /// The run: names its bundle and checkpoint.
    #[arg(long)]
    pub run_id: String,
    /// Start of the range, RFC 3339 (inclusive).
    #[arg(long)]
    pub start: String,
    /// End of the range, RFC 3339 (exclusive).
    #[arg(long)]
    pub end: String,
    /// Object store of the bundle when the resource names none [default:
    /// settings.reports_url, else settings.reports_dir].
    #[arg(long, env = "VCTP_REPORTS_URL")]
    pub reports_url: Option<String>,
    /// Least seconds between two progress patches of the resource's status (0.1 to 3600).
    #[arg(long, default_value_t = 5.0, value_parser = finite_seconds)]
    pub status_interval_seconds: f64,
}

/// A number of seconds that is a number: `NaN` and `inf` parse as `f64` but are no interval.
fn finite_seconds(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(seconds) if seconds.is_finite() => Ok(seconds),
        Ok(_) => Err(format!("{text:?} is not a finite number of seconds")),
        Err(e) => Err(format!("{text:?} is not a number of seconds: {e}")),
    }
}

/// Longest lifetime of a download link `vctp report url` prints.
pub const MAX_LINK_LIFETIME: std::time::Duration = std::time::Duration::from_secs(3_600);

fn link_lifetime(text: &str) -> Result<std::time::Duration, String> {
    let lifetime = humantime::parse_duration(text.trim())
        .map_err(|e| format!("{text:?} is not a duration such as 15m or 1h: {e}"))?;
    if lifetime < std::time::Duration::from_secs(1) || lifetime > MAX_LINK_LIFETIME {
        return Err(format!(
            "{text:?} is not between 1s and {}",
            humantime::format_duration(MAX_LINK_LIFETIME)
        ));
    }
    Ok(lifetime)
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where the demo keeps its database and reports (its database is started afresh).
    #[arg(long, default_value = "vctp-demo")]
    pub dir: PathBuf,
    /// Days of hourly history to take before following the real clock.
    #[arg(long, default_value_t = 35)]
    pub days: u32,
    /// VMs in the simulated estate, over all vCenters.
    #[arg(long, default_value_t = 400)]
    pub vms: usize,
    /// Simulated vCenters.
    #[arg(long, default_value_t = 2)]
    pub vcenters: usize,
    /// Seed of the simulated inventory.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Where the simulator listens.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: String,
    /// Stop after the history instead of following the real clock.
    #[arg(long)]
    pub no_follow: bool,
    /// Where the UI and API listen while the demo follows the real clock.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub ui_listen: std::net::SocketAddr,
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Apply the schema migrations (also done on every start).
    Migrate,
    /// Delete hourly rows older than settings.hourly_snapshot_max_age_days and daily
    /// summaries older than settings.daily_snapshot_max_age_months.
    Cleanup {
        /// Treat this Unix time as "now" (default: the current time).
        #[arg(long)]
        now: Option<i64>,
    },
    /// Move everything stored under one vCenter name to another, in one transaction: e.g.
    /// rows an older operator stored under a VCenterTarget's bare name (`vc01`) to its
    /// NAMESPACE/NAME key (`finance/vc01`). Refused when the new name holds rows already.
    /// Reports already written keep their object keys.
    RenameVcenter {
        #[arg(long = "from")]
        from: String,
        #[arg(long = "to")]
        to: String,
    },
    /// Copy a vctp SQLite database into the configured PostgreSQL database, replacing
    /// what its tables held (one transaction per table).
    ImportSqlite {
        /// The SQLite database file to copy from.
        #[arg(long = "from")]
        from: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// Load hourly rows from CSV; the whole file is stored or nothing is. A snapshot
    /// (vcenter + snapshot_time) already stored is replaced.
    Import {
        /// CSV file with a header naming the hourly columns (see `snapshot export`).
        #[arg(long)]
        csv: PathBuf,
    },
    /// Print hourly rows in the CSV form `snapshot import` reads.
    Export {
        #[arg(long)]
        vcenter: Option<String>,
        /// First snapshot time to include (Unix seconds).
        #[arg(long)]
        from: Option<i64>,
        /// Snapshot time to stop before (Unix seconds, exclusive).
        #[arg(long)]
        to: Option<i64>,
        #[arg(long, value_enum, default_value_t = RowFormat::Csv)]
        format: RowFormat,
    },
    /// Print a deterministic synthetic inventory (churn, reconfigurations, pool moves) as
    /// hourly CSV rows.
    Generate(SynthArgs),
    /// Take one snapshot of every configured vCenter now, store it and exit (non-zero when a
    /// vCenter failed).
    Run {
        /// Only this vCenter (by name).
        #[arg(long)]
        vcenter: Option<String>,
    },
}

#[derive(Debug, Clone, Args)]
pub struct SynthArgs {
    /// Number of VMs (spread over the vCenters).
    #[arg(long, default_value_t = 100)]
    pub vms: usize,
    /// Number of vCenters.
    #[arg(long, default_value_t = 2)]
    pub vcenters: usize,
    /// First day (YYYY-MM-DD).
    #[arg(long, default_value = "2026-01-01")]
    pub start: String,
    /// Number of days of hourly snapshots.
    #[arg(long, default_value_t = 1)]
    pub days: u32,
    /// Seed of the generator; the same seed gives the same rows.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RowFormat {
    Csv,
}

#[derive(Debug, Subcommand)]
pub enum AggregateCommand {
    /// Daily summaries of one UTC day from its hourly snapshots.
    Daily {
        /// The day, YYYY-MM-DD.
        #[arg(long)]
        date: String,
        /// [default: settings.scheduled_aggregation_engine, else rust]
        #[arg(long, value_enum)]
        engine: Option<Engine>,
        /// Do not write the day's report afterwards.
        #[arg(long)]
        no_report: bool,
    },
    /// Monthly summaries of one UTC month from its daily summaries.
    Monthly {
        /// The month, YYYY-MM.
        #[arg(long)]
        month: String,
        /// [default: settings.scheduled_aggregation_engine, else rust]
        #[arg(long, value_enum)]
        engine: Option<Engine>,
        /// Do not write the month's report afterwards.
        #[arg(long)]
        no_report: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Build the report of one period from the stored data and write it as XLSX and CSV
    /// (each with a `.sha256` sidecar) to settings.reports_url; replaces an earlier one.
    Generate {
        #[command(subcommand)]
        period: ReportPeriod,
        /// Only this vCenter [default: all vCenters in one report].
        #[arg(long, global = true)]
        vcenter: Option<String>,
    },
    /// List the reports written, newest period first.
    List {
        #[arg(long, value_enum)]
        kind: Option<ReportKind>,
        #[arg(long, value_enum, default_value_t = OutputFormat::Csv)]
        format: OutputFormat,
    },
    /// Print a short-lived presigned download URL of a report object (S3, GCS, Azure stores).
    Url {
        /// The object key, e.g. reports/daily/2026-03-10/all.xlsx.
        key: String,
        /// How long the URL stays valid, e.g. 90s, 15m, 1h (at most 1h: anyone holding the
        /// link can download the report).
        #[arg(long, default_value = "15m", value_parser = link_lifetime)]
        expires: std::time::Duration,
    },
    /// Download a report object (a key from `report list`) and check its SHA-256.
    Get {
        /// The object key, e.g. reports/daily/2026-03-10/all.xlsx.
        key: String,
        /// Where to write it.
        #[arg(short, long)]
        output: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum ReportPeriod {
    /// The snapshots of one hour with that day's interval totals so far.
    Hourly {
        /// The hour: YYYY-MM-DDTHH (UTC) or Unix seconds within it.
        #[arg(long)]
        at: String,
    },
    /// One UTC day's summaries, pivot tables and totals.
    Daily {
        #[arg(long)]
        date: String,
    },
    /// One UTC month's summaries, pivot tables and daily totals.
    Monthly {
        #[arg(long)]
        month: String,
    },
    /// One UTC month's costs as a FinOps FOCUS 1.2 CSV (reports/focus/<YYYY-MM>/…csv): one
    /// row per charge. Needs a rate card (settings.rate_cards); written with every monthly
    /// report too.
    Focus {
        #[arg(long)]
        month: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportKind {
    Hourly,
    Daily,
    Monthly,
    Focus,
}

impl ReportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ReportKind::Hourly => "hourly",
            ReportKind::Daily => "daily",
            ReportKind::Monthly => "monthly",
            ReportKind::Focus => "focus",
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum SummaryCommand {
    /// The daily summaries of one day, sorted by vcenter and vm_id.
    Daily {
        #[arg(long)]
        date: String,
        #[arg(long, value_enum, default_value_t = OutputFormat::Csv)]
        format: OutputFormat,
    },
    /// The monthly summaries of one month, sorted by vcenter and vm_id.
    Monthly {
        #[arg(long)]
        month: String,
        #[arg(long, value_enum, default_value_t = OutputFormat::Csv)]
        format: OutputFormat,
    },
}

#[derive(Debug, Subcommand)]
pub enum CostsCommand {
    /// The costs of one UTC day.
    Daily {
        /// YYYY-MM-DD
        #[arg(long)]
        date: String,
        #[command(flatten)]
        view: CostsView,
    },
    /// The costs of one month: each day at its own card.
    Monthly {
        /// YYYY-MM
        #[arg(long)]
        month: String,
        #[command(flatten)]
        view: CostsView,
    },
}

#[derive(Debug, Args)]
pub struct CostsView {
    #[arg(long, value_enum, default_value = "tenant")]
    pub group_by: GroupBy,
    #[arg(long, value_enum, default_value_t = CostFormat::Table)]
    pub format: CostFormat,
}

#[derive(Debug, Subcommand)]
pub enum TotalsCommand {
    /// Interval-based totals per vCenter and hour [HH:00, HH+1:00) of one day.
    Hourly {
        #[arg(long)]
        date: String,
        #[arg(long, value_enum, default_value_t = OutputFormat::Csv)]
        format: OutputFormat,
    },
    /// Daily totals per vCenter for the days from..=to.
    Daily {
        #[arg(long = "from")]
        from: String,
        #[arg(long)]
        to: String,
        #[arg(long, value_enum, default_value_t = OutputFormat::Csv)]
        format: OutputFormat,
    },
    /// The newest snapshot totals of each vCenter.
    Latest {
        #[arg(long, value_enum, default_value_t = OutputFormat::Csv)]
        format: OutputFormat,
    },
}

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Rebuild the vCenter totals caches from snapshots and summaries.
    Backfill,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Time loading, a bare scan, and daily/monthly aggregation with both engines.
    Aggregations(BenchArgs),
    /// Time the collector: the bare SOAP exchange, a full collection and the capture write.
    Collect(BenchCollectArgs),
    /// Time the daily report: building the workbook, and the whole job with the upload.
    Report(BenchReportArgs),
    /// Seed a database with hourly vCenter totals for loading `vctp serve` (scripts/bench-api.sh).
    Api(BenchApiArgs),
    /// Print deterministic series as export JSON lines, to load into VictoriaMetrics before
    /// timing exports and imports (scripts/bench-export.sh).
    ExportData(BenchExportDataArgs),
    /// Hold many idle and half-sent connections open against a running `vctp serve` (plain
    /// HTTP) and time `/healthz` meanwhile: median, p99 and max latency, and the server's RSS.
    Connections(BenchConnectionsArgs),
}

#[derive(Debug, Args)]
pub struct BenchConnectionsArgs {
    /// The server, `http://HOST:PORT`.
    #[arg(long)]
    pub url: String,
    /// Connections opened and held; one in two sends half a request head and stops.
    #[arg(long, default_value_t = 20_000)]
    pub connections: usize,
    /// Open a connection again when the server closes it (a flood that keeps coming back),
    /// instead of letting it go.
    #[arg(long)]
    pub reconnect: bool,
    /// Connections per holding process (each process has its own open-file limit).
    #[arg(long, default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub per_process: u64,
    /// Seconds to wait once the connections are open, before the first probe (so the
    /// server has accepted what it will).
    #[arg(long, default_value_t = 5)]
    pub settle_seconds: u64,
    /// `/healthz` requests timed, one after the other, each on a new connection.
    #[arg(long, default_value_t = 200)]
    pub probes: usize,
    /// Seconds a probe may take before it counts as failed.
    #[arg(long, default_value_t = 5)]
    pub probe_timeout_seconds: u64,
    /// The server's process id, to report its resident memory.
    #[arg(long)]
    pub pid: Option<u32>,
    /// Internal: be one holding process of this many connections.
    #[arg(long, hide = true)]
    pub hold: Option<usize>,
}

#[derive(Debug, Args)]
pub struct BenchExportDataArgs {
    /// Series (instances × metric names).
    #[arg(long, default_value_t = 1_000)]
    pub series: usize,
    /// Hours of samples per series.
    #[arg(long, default_value_t = 24)]
    pub hours: u32,
    /// Seconds between two samples.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u32).range(1..))]
    pub step_seconds: u32,
    /// First sample: RFC 3339 or Unix seconds.
    #[arg(long, default_value = "2026-11-01T00:00:00Z")]
    pub start: String,
}

#[derive(Debug, Args)]
pub struct BenchApiArgs {
    /// vCenters to seed, named vc-01, vc-02, …
    #[arg(long, default_value_t = 50)]
    pub vcenters: usize,
    /// Days of hourly snapshot totals, ending at the current hour.
    #[arg(long, default_value_t = 45)]
    pub days: u32,
}

#[derive(Debug, Args)]
pub struct BenchReportArgs {
    /// VM summaries in the day's report.
    #[arg(long, default_value_t = 100_000)]
    pub vms: usize,
    /// vCenters the VMs are spread over.
    #[arg(long, default_value_t = 4)]
    pub vcenters: usize,
    /// Repetitions of each phase.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Object store to write to [default: a scratch directory]; S3 options come from the
    /// standard AWS_* environment variables.
    #[arg(long)]
    pub reports_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct BenchCollectArgs {
    /// SDK URL of the vCenter to read; without it a `vctp sim` process is started.
    #[arg(long)]
    pub url: Option<String>,
    /// VMs of the started simulator.
    #[arg(long, default_value_t = 10_000)]
    pub vms: usize,
    #[arg(long, default_value = "vctp")]
    pub username: String,
    #[arg(long, default_value = "vctp-sim", env = "VCTP_BENCH_PASSWORD")]
    pub password: String,
    /// Skip TLS certificate verification.
    #[arg(long)]
    pub insecure: bool,
    /// PEM file of CA certificates to trust.
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// Allow an http:// --url, which sends the password in clear (implied for the simulator
    /// started without --url).
    #[arg(long)]
    pub allow_plain_http: bool,
    /// Objects per page (`maxObjects`).
    #[arg(long, default_value_t = 1_000)]
    pub max_objects: u32,
    /// Repetitions of each phase.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// VMs in the synthetic inventory.
    #[arg(long, default_value_t = 10_000)]
    pub vms: usize,
    /// Days of daily summaries behind the monthly phase (hourly rows are generated for the
    /// last day, which the daily phase aggregates).
    #[arg(long, default_value_t = 30)]
    pub days: u32,
    /// Repetitions of each timed phase; the report gives min, median and max.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// vCenters the VMs are spread over.
    #[arg(long, default_value_t = 4)]
    pub vcenters: usize,
}

#[derive(Debug, Args)]
pub struct CrdArgs {
    /// Write one file per kind into this directory (e.g. `crds/`) instead of printing; stale
    /// files an earlier run generated there are removed.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Write one Helm template per kind into this directory (e.g.
    /// `charts/vctp/templates/crds/`), installed when `crds.install` is true and kept on
    /// uninstall.
    #[arg(long)]
    pub chart: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct OperatorArgs {
    /// Comma-separated namespaces to watch and run Jobs in [default: the pod's namespace,
    /// else the kubeconfig's].
    #[arg(long, env = "VCTP_WATCH_NAMESPACES", value_delimiter = ',')]
    pub namespaces: Vec<String>,
    /// A YAML file with the complete batch/v1 Job every Job starts from (the chart's
    /// ConfigMap); without it the built-in restricted template is used with the `--job-*`
    /// options.
    #[arg(long, env = "VCTP_JOB_TEMPLATE")]
    pub job_template: Option<PathBuf>,
    /// Name of this installation (the chart sets the Helm release), put on every Job and Pod
    /// as the `vctp.io/instance` label so `kubectl get jobs -l vctp.io/instance=NAME` finds
    /// them [default: no such label].
    #[arg(long, env = "VCTP_INSTANCE")]
    pub instance: Option<String>,
    /// Image of the built-in Job template (needed without --job-template).
    #[arg(long, env = "VCTP_JOB_IMAGE")]
    pub job_image: Option<String>,
    /// ServiceAccount of the built-in Job template's Pods.
    #[arg(long, env = "VCTP_JOB_SERVICE_ACCOUNT", default_value = "default")]
    pub job_service_account: String,
    /// `SECRET[:KEY]` holding the database URL for the built-in Job template.
    #[arg(
        long,
        env = "VCTP_DATABASE_SECRET",
        default_value = "vctp-database:VCTP_DATABASE_URL"
    )]
    pub database_secret: String,
    /// Pod retries of one Job in the built-in Job template.
    #[arg(long, env = "VCTP_JOB_BACKOFF_LIMIT", default_value_t = 2)]
    pub job_backoff_limit: i32,
    /// Object store URL of reports and bundles for the built-in Job template.
    #[arg(long, env = "VCTP_REPORTS_URL", default_value = "")]
    pub reports_url: String,
    /// Hold a coordination.k8s.io Lease so only one replica acts.
    #[arg(long, env = "VCTP_LEADER_ELECTION", default_value_t = false, action = clap::ArgAction::Set)]
    pub leader_election: bool,
    /// Name of the Lease, in the pod's namespace.
    #[arg(long, env = "VCTP_LEASE_NAME", default_value = "vctp-operator-leader")]
    pub lease_name: String,
    /// The operator pod's namespace (downward API).
    #[arg(long, env = "VCTP_POD_NAMESPACE")]
    pub pod_namespace: Option<String>,
    /// The operator pod's name (downward API): the Lease holder identity.
    #[arg(long, env = "VCTP_POD_NAME")]
    pub pod_name: Option<String>,
    /// Where `/metrics` and `/healthz` are served.
    #[arg(long, env = "VCTP_METRICS_ADDR", default_value = "127.0.0.1:8080")]
    pub metrics_addr: std::net::SocketAddr,
    /// Seconds between two checks of a VCenterTarget's Secret and reachability.
    #[arg(long, env = "VCTP_RECHECK_SECONDS", default_value_t = 300)]
    pub recheck_seconds: u64,
    /// Seconds a Job's Pod may wait for its image (ErrImagePull, ImagePullBackOff,
    /// ErrImageNeverPull) before the operator fails the run with that reason and deletes the
    /// Job; an InvalidImageName fails at once.
    #[arg(long, env = "VCTP_IMAGE_PULL_TIMEOUT_SECONDS", default_value_t = 300)]
    pub image_pull_timeout_seconds: u64,
    /// Only check the Job template: print (YAML) the Job it gives for an example
    /// AggregationJob and exit, without connecting to Kubernetes.
    #[arg(long)]
    pub check: bool,
}

#[derive(Debug, Args)]
pub struct EncryptArgs {
    /// The setting the value is for; it is bound to the ciphertext, which no other setting
    /// accepts: vcenter_password, ldap_bind_password, auth_jwt_signing_key or
    /// object_store_options.<secret option>, e.g. object_store_options.aws_secret_access_key.
    #[arg(long, default_value = "vcenter_password")]
    pub setting: String,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on; default: settings.bind_ip and settings.bind_port (127.0.0.1:8080).
    #[arg(long, env = "VCTP_LISTEN")]
    pub listen: Option<std::net::SocketAddr>,
    /// Serve plain HTTP whatever settings.bind_disable_tls says (e.g. behind an Ingress or
    /// a proxy that terminates TLS).
    #[arg(long, env = "VCTP_DISABLE_TLS")]
    pub disable_tls: bool,
    /// Mark the session and CSRF cookies `Secure` over plain HTTP too: a proxy or Ingress in
    /// front terminates TLS, so browsers reach the server over HTTPS. Always on with HTTPS.
    #[arg(long, env = "VCTP_SECURE_COOKIES")]
    pub secure_cookies: bool,
    /// Operator mode: `POST /api/snapshots/aggregate` creates an AggregationJob in this
    /// namespace (with the in-cluster or KUBECONFIG credentials) instead of aggregating in
    /// this process.
    #[arg(long, env = "VCTP_KUBE_NAMESPACE")]
    pub kube_namespace: Option<String>,
    /// Seconds an answer of the totals endpoints and pages is served from memory (totals
    /// change once per snapshot); 0 turns the cache off.
    #[arg(long, env = "VCTP_API_CACHE_SECONDS", default_value_t = 10)]
    pub cache_seconds: u64,
}

/// `vctp sim`: serve simulated vCenters until Ctrl-C or SIGTERM.
#[derive(Debug, Clone, clap::Args)]
pub struct SimArgs {
    /// Address to serve plain HTTP on.
    #[arg(long, default_value = "127.0.0.1:8989", env = "VCTP_SIM_LISTEN")]
    pub listen: SocketAddr,
    /// Number of VMs, spread evenly over the vCenters (the count drifts by a few % as VMs
    /// come and go).
    #[arg(long, default_value_t = sim::DEFAULT_VMS)]
    pub vms: usize,
    /// Number of vCenters, served at /vc1/sdk, /vc2/sdk, …
    #[arg(long, default_value_t = 1, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub vcenters: usize,
    /// Seed of the inventory: the same seed and time always give the same VMs.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Most objects per RetrievePropertiesEx page (a client's smaller maxObjects wins).
    #[arg(long, default_value_t = sim::DEFAULT_PAGE_SIZE, value_parser = clap::value_parser!(u32).range(1..))]
    pub page_size: u32,
    /// User name the simulated vCenters accept.
    #[arg(long, default_value = sim::DEFAULT_USERNAME, env = "VCTP_SIM_USERNAME")]
    pub username: String,
    /// Password the simulated vCenters accept.
    #[arg(long, default_value = sim::DEFAULT_PASSWORD, env = "VCTP_SIM_PASSWORD", hide_env_values = true)]
    pub password: String,
}

impl Command {
    /// Whether the command runs as a service or a Job (its log says which version started),
    /// rather than a one-shot command whose log is only its errors.
    pub fn is_long_running(&self) -> bool {
        matches!(
            self,
            Command::Demo(_)
                | Command::Standalone(_)
                | Command::Serve(_)
                | Command::Sim(_)
                | Command::Operator(_)
                | Command::Job(_)
        )
    }
}

impl From<SimArgs> for sim::SimConfig {
    fn from(args: SimArgs) -> sim::SimConfig {
        sim::SimConfig {
            vms: args.vms,
            vcenters: args.vcenters,
            seed: args.seed,
            page_size: args.page_size,
            username: args.username,
            password: args.password,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job_export(interval: &str) -> Result<Cli, clap::Error> {
        // `=`: a separate `-inf` would read as flags.
        let interval = format!("--status-interval-seconds={interval}");
        Cli::try_parse_from([
            "vctp",
            "job",
            "export",
            "--name",
            "monitoring/nightly",
            "--run-id",
            "20260310T140000Z",
            "--start",
            "2026-03-10T13:00:00Z",
            "--end",
            "2026-03-10T14:00:00Z",
            &interval,
        ])
    }

    #[test]
    fn a_status_interval_that_is_not_a_finite_number_is_refused_naming_the_flag() {
        for text in ["NaN", "inf", "-inf", "soon"] {
            let err = job_export(text).unwrap_err().to_string();
            assert!(err.contains("--status-interval-seconds"), "{text}: {err}");
            assert!(err.contains("number of seconds"), "{text}: {err}");
        }
        assert!(job_export("0.5").is_ok());
    }
}
