//! vctp: vSphere chargeback. Hourly inventory snapshots of every VM become exact,
//! time-weighted daily and monthly summaries.
//!
//! Reading guide, from the edges inwards:

/// The command line (clap): every subcommand and flag.
pub mod cli;
/// What each subcommand does, wired from settings, store and engines.
pub mod commands;
/// The settings file (`settings:` YAML with vCTP's key names), validated.
pub mod config;
/// Secret settings encrypted as `enc:v2:` values (Argon2id, AES-256-GCM bound to the setting's
/// name), `enc:v1:` read, and rewriting them in place.
pub mod credentials;
/// Printing summaries and totals as CSV or JSON.
pub mod output;
/// Five-field cron schedules in an IANA time zone, and when a missed tick runs.
pub mod schedule;
/// Stopping cleanly on SIGTERM or Ctrl-C.
pub mod signal;
/// Logging setup.
pub mod telemetry;

/// The chargeback arithmetic (pure) and the `rust`/`sql` engines that run it over the store.
pub mod aggregate;
/// `vctp serve`: the JSON REST API, the HTML pages, `/metrics` from the run records, health
/// probes, and authentication over HTTP.
pub mod api;
/// `vctp serve` authentication: LDAP login, JWT bearer tokens, roles per endpoint.
pub mod auth;
/// Money: rate cards, tenant rules, and pricing the daily summaries into charges.
pub mod cost;
/// MetricsExport: VictoriaMetrics / Prometheus series into privacy-safe ZIP bundles, and back.
pub mod export;
/// The hourly snapshot row, pool → tier mapping and the CSV form of rows.
pub mod inventory;
/// Object storage (local directory, S3, GCS, Azure) for reports and exports, with sha256 sidecars.
pub mod objstore;
/// XLSX reports (pure rows → workbook bytes) and their CSV twins.
pub mod report;
/// The database (SQLite or PostgreSQL via sqlx): tables per grain, caches, migrations.
pub mod store;
/// TLS client configurations trusting a PEM file (LDAP, vCenter, object storage, metrics).
pub mod tls;
/// The vSphere SOAP client and the data it returns.
pub mod vsphere;

/// `vctp bench aggregations|collect`: timed phases and peak RSS.
pub mod bench;
/// `vctp demo`: simulator + SOAP collector + SQLite + aggregation, then the scheduler.
pub mod demo;
/// Units of work shared by the CLI, the scheduler and Kubernetes Jobs (`vctp job …`).
pub mod jobs;
/// The Kubernetes operator: schedule math, leader election, Job building, controllers.
pub mod operator;
/// The built-in simulated vCenter: a SOAP server over a deterministic, churning inventory.
pub mod sim;
/// `vctp standalone`: the in-process scheduler, catch-up after restarts, clean shutdown.
pub mod standalone;
/// A deterministic synthetic inventory for tests, the benchmark and sample data.
pub mod synth;

/// The custom resources (`vctp.io/v1alpha1`): the Rust types behind `crds/*.yaml`.
pub mod crd;
