//! The settings file: YAML with a top-level `settings:` mapping, keys named as in vCTP's
//! settings reference. Unknown and ill-typed keys are errors naming the key and the file.

pub mod exports;
pub mod rewrite;

use crate::aggregate::Engine;
use crate::auth::roles::{Mode, Role};
use crate::cost::{Pricing, RateCardSpec, RateCards, TenantRuleSpec, TenantRules};
use crate::inventory::{Tier, TierMapping};
use crate::store::DatabaseUrl;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to read settings file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("settings file {path}: `{key}`: {message}")]
    Invalid {
        path: PathBuf,
        key: String,
        message: String,
    },
    #[error("settings file {path}: {message}")]
    Inconsistent { path: PathBuf, message: String },
    #[error(transparent)]
    DatabaseUrl(#[from] crate::store::Error),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogOutput {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DatabaseDriver {
    Sqlite,
    Postgres,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsFile {
    settings: Settings,
}

/// Everything under `settings:`. Each key has a default, so an empty mapping is valid.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// `trace`, `debug`, `info`, `warn` or `error`.
    pub log_level: String,
    /// Seconds to wait for a database connection (to open one, or for one to come free)
    /// before a query fails as "database unavailable" (503 in the API).
    pub database_timeout_seconds: u64,
    /// Seconds a GET request to the API may take before it answers 503 "request timed out";
    /// more than `database_timeout_seconds`, so a database that is down is reported as such.
    pub request_timeout_seconds: u64,
    pub log_output: LogOutput,
    /// Optional; when given it must agree with `database_url`.
    pub database_driver: Option<DatabaseDriver>,
    /// Accepted for vCTP settings files; PostgreSQL needs no opt-in here.
    pub enable_experimental_postgres: bool,
    /// A SQLite file path, `sqlite://FILE` or `postgres://…`; default `./db.sqlite3`.
    pub database_url: Option<String>,
    /// Hourly rows older than this many days are deleted by `vctp db cleanup`.
    pub hourly_snapshot_max_age_days: u32,
    /// Daily summaries older than this many months are deleted by `vctp db cleanup`.
    pub daily_snapshot_max_age_months: u32,
    /// The engine scheduled aggregations use (`rust`, alias `go`, or `sql`).
    pub scheduled_aggregation_engine: Engine,
    /// Extra resource pool names and the tier each stands for, on top of the pools named
    /// `Tin`, `Bronze`, `Silver` and `Gold`.
    pub pool_tiers: BTreeMap<String, Tier>,

    /// SDK URLs of the vCenters to snapshot (`https://vc.example.com/sdk`); each is named by
    /// its host. Use `vcenters` for names, CA files or per-vCenter TLS settings.
    pub vcenter_addresses: Vec<String>,
    /// vCenters with their own name or TLS settings; they share the account below.
    pub vcenters: Vec<VcenterEntry>,
    /// The account every vCenter is read with.
    pub vcenter_username: String,
    /// Its password; a plaintext value is encrypted in place (`enc:v2:…`) on start.
    pub vcenter_password: String,
    /// Skip TLS certificate verification for vCenters that do not say otherwise.
    pub vcenter_insecure: bool,
    /// Allow `http://` SDK URLs for vCenters that do not say otherwise. Plain HTTP sends the
    /// vCenter password in clear, so such a URL is refused unless this (or the entry's
    /// `allow_plain_http`) is true; each login over it logs a warning.
    pub vcenter_allow_plain_http: bool,
    /// A PEM file of CA certificates to trust for vCenters that do not say otherwise,
    /// instead of the built-in roots.
    pub vcenter_ca_file: Option<PathBuf>,
    /// Key material for credential encryption; when unset a key is derived from the host
    /// identity (`/etc/machine-id`), so a settings file moved to another host needs it.
    pub encryption_key: Option<String>,
    /// Seconds between inventory snapshots in `vctp standalone`.
    pub vcenter_inventory_snapshot_seconds: u64,
    /// Seconds to wait for a TCP/TLS connection to a vCenter.
    pub vcenter_connect_timeout_seconds: u64,
    /// Seconds a vCenter may stay silent in the middle of a response.
    pub vcenter_read_timeout_seconds: u64,
    /// Objects per page of a property retrieval (`maxObjects`).
    pub vcenter_max_objects: u32,
    /// vCenters snapshotted at once; 0 = all at once.
    pub hourly_snapshot_concurrency: usize,
    /// Seconds between attempts of a failed vCenter snapshot.
    pub hourly_snapshot_retry_seconds: u64,
    /// Attempts after the first one before a vCenter snapshot is recorded as failed.
    pub hourly_snapshot_max_retries: u32,
    /// When `vctp standalone` applies retention (cron with seconds: `sec min hour dom mon dow`).
    pub snapshot_cleanup_cron: String,
    /// VMs whose resource pool name or any folder on their path matches one of these
    /// patterns (`*` and `?` wildcards, any case) are left out of snapshots.
    pub tenants_to_filter: Vec<String>,
    /// Clusters charged per node rather than per VM (patterns as above): their VMs are left
    /// out of snapshots so they are not charged twice.
    pub node_charge_clusters: Vec<String>,
    /// SRM active/active VMs (name patterns): both copies are real VMs, so the powered-off
    /// copy is marked as the SRM placeholder and only the running one is charged.
    pub srm_activeactive_vms: Vec<String>,
    /// When `reports_url` is not set: the local directory that holds the `reports/…` tree.
    pub reports_dir: PathBuf,
    /// Object storage for reports, the root of the `reports/…` layout: `file:///dir`,
    /// `s3://bucket/prefix`, `gs://…`, `az://…`.
    pub reports_url: Option<String>,
    /// Seconds one request to object storage may take, retries included, before a report or
    /// export write (or a download) fails naming the store, the key and the time taken.
    pub object_store_retry_timeout_seconds: u64,
    /// object_store options for `reports_url` (aws_endpoint, aws_region, aws_allow_http,
    /// credentials, …); the standard AWS_*/GOOGLE_*/AZURE_* environment variables apply too.
    /// The secret ones ([`crate::credentials::SECRET_OBJECT_STORE_OPTIONS`]) are encrypted in
    /// place on start like `vcenter_password`.
    pub object_store_options: BTreeMap<String, String>,
    /// Write an hourly report after each snapshot round of `vctp standalone`.
    pub hourly_reports: bool,
    /// The pivot-style tables of the Summary sheet of daily and monthly reports: metric
    /// (`avg_vcpu`, `avg_ram`, `prorated_vm_count`, `vm_name_count`), title, pivot_name,
    /// pivot_range and optional title_cell. Default: all four metrics.
    pub report_summary_pivots: Vec<crate::report::PivotSpec>,
    /// `vctp serve` authentication: LDAP login and JWT bearer tokens (see README
    /// "Authentication"); `auth_mode` follows it when unset.
    pub auth_enabled: bool,
    /// `disabled`, `optional` or `required`; default `required` when `auth_enabled`, else
    /// `disabled`. Contradicting `auth_enabled` is an error.
    pub auth_mode: Option<Mode>,
    /// LDAP group DN → `viewer` or `admin`; the highest role of a user's groups wins.
    pub auth_group_role_mappings: BTreeMap<String, Role>,
    /// When not empty: only members of one of these group DNs may log in.
    pub ldap_groups: Vec<String>,
    /// `ldap://HOST:389` (StartTLS unless `ldap_insecure`) or `ldaps://HOST:636`.
    pub ldap_bind_address: Option<String>,
    /// Where groups are searched (and users, unless `ldap_user_base_dn` is set).
    pub ldap_base_dn: Option<String>,
    pub ldap_user_base_dn: Option<String>,
    /// The attribute holding the login name: `uid`, `sAMAccountName`, `userPrincipalName`, …
    pub ldap_user_attribute: String,
    /// A PEM file of CA certificates to trust for LDAPS/StartTLS instead of the system roots.
    pub ldap_trust_cert_file: Option<PathBuf>,
    /// Skip TLS certificate verification of the LDAP server.
    pub ldap_disable_validation: bool,
    /// Allow plain `ldap://` without StartTLS (passwords cross the network in clear text).
    pub ldap_insecure: bool,
    /// A service account for the user search; unset = anonymous search.
    pub ldap_bind_dn: Option<String>,
    /// Its password; encrypted in place on start like `vcenter_password`.
    pub ldap_bind_password: Option<String>,
    /// Seconds each LDAP operation (connect, bind, search) may take.
    pub ldap_timeout_seconds: u64,
    /// base64 of the HS256 key (at least 32 bytes) tokens are signed with; encrypted in place
    /// on start like `vcenter_password`.
    pub auth_jwt_signing_key: Option<String>,
    pub auth_token_lifespan_minutes: u64,
    pub auth_jwt_issuer: String,
    pub auth_jwt_audience: String,
    /// Leeway for `exp` and `nbf` checks.
    pub auth_clock_skew_seconds: u64,
    /// Login attempts one client address may make per `auth_login_window_seconds`.
    pub auth_login_max_attempts_per_address: u32,
    /// Login attempts per username (any address) per `auth_login_window_seconds`.
    pub auth_login_max_attempts_per_username: u32,
    pub auth_login_window_seconds: u64,
    /// Expose `/debug/pprof/…` (admin only when auth is on).
    pub enable_pprof: bool,
    /// MetricsExports `vctp standalone` runs on their schedules (see [`exports`]).
    pub metrics_exports: Vec<exports::StandaloneExport>,
    /// Effective-dated prices (see the README, "Costs"); checked whole when the file loads.
    pub rate_cards: Vec<RateCardSpec>,
    /// Ordered rules that assign each VM-day to a tenant; first match wins, else `unassigned`.
    pub tenant_rules: Vec<TenantRuleSpec>,
    /// `vctp serve`'s `/metrics` has a month-to-date cost gauge for the this many most costly
    /// VMs of each currency (`vctp_vm_cost_month_to_date`); 0, the default, has none, so the
    /// series are bounded by the tenants.
    pub cost_metrics_vm_limit: usize,
    /// Under `auth_mode: required` the cost gauges are left out of the public `/metrics`
    /// (nothing of the data is public) unless this says whoever can scrape may see them.
    pub cost_metrics_public: bool,
    /// `rate_cards` and `tenant_rules`, checked.
    #[serde(skip)]
    pub pricing: Pricing,
    /// The address `vctp serve` and `vctp standalone` listen on (`--listen` wins).
    pub bind_ip: IpAddr,
    /// Their port; below 1024 the process needs CAP_NET_BIND_SERVICE.
    pub bind_port: u16,
    /// Serve plain HTTP instead of HTTPS (e.g. behind an Ingress that terminates TLS).
    pub bind_disable_tls: bool,
    /// The PEM certificate chain served over HTTPS; re-read when the file changes. Unset
    /// (with `tls_key_filename`): a self-signed certificate is made and kept (README "TLS").
    pub tls_cert_filename: Option<PathBuf>,
    /// Its PEM private key.
    pub tls_key_filename: Option<PathBuf>,
    /// Seconds a client has to send a request's head: from the connection's start, or from
    /// the first byte of a later request on a kept-alive connection.
    pub http_read_header_timeout_seconds: u64,
    /// Seconds a connection may wait, with no request in flight, for its next request.
    pub http_idle_timeout_seconds: u64,
    /// Connections served at once; at the limit a new one replaces the oldest connection
    /// that has no request in flight. Kept below the process's open-file limit.
    pub http_max_connections: usize,
    /// Requests handled at once (others wait); `/healthz` and `/readyz` are not counted.
    pub http_max_concurrent_requests: usize,
    /// vCTP settings vctp accepts so a vCTP file loads unchanged, but ignores (see
    /// [`Settings::ignored_keys`] for why, each logged at start).
    #[serde(rename = "vcenter_event_polling_seconds")]
    pub ignored_event_polling_seconds: Option<serde_yaml::Value>,
    #[serde(rename = "vcenter_inventory_polling_seconds")]
    pub ignored_inventory_polling_seconds: Option<serde_yaml::Value>,
    #[serde(rename = "enable_legacy_api")]
    pub ignored_enable_legacy_api: Option<serde_yaml::Value>,
    #[serde(rename = "vcenter_inventory_aggregate_seconds")]
    pub ignored_inventory_aggregate_seconds: Option<serde_yaml::Value>,
    #[serde(rename = "hourly_index_max_age_days")]
    pub ignored_hourly_index_max_age_days: Option<serde_yaml::Value>,
    #[serde(rename = "capture_write_batch_size")]
    pub ignored_capture_write_batch_size: Option<serde_yaml::Value>,
    #[serde(rename = "snapshot_table_compat_mode")]
    pub ignored_snapshot_table_compat_mode: Option<serde_yaml::Value>,
    #[serde(rename = "async_report_generation")]
    pub ignored_async_report_generation: Option<serde_yaml::Value>,
    #[serde(rename = "postgres_vm_hourly_partitioning_enabled")]
    pub ignored_postgres_vm_hourly_partitioning: Option<serde_yaml::Value>,
}

/// One vCenter of `settings.vcenters`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VcenterEntry {
    /// The name rows and reports use; default: the URL's host.
    pub name: Option<String>,
    /// The SDK URL, e.g. `https://vc.example.com/sdk`.
    pub url: String,
    /// Default: `settings.vcenter_insecure`.
    pub insecure: Option<bool>,
    /// Default: `settings.vcenter_ca_file`.
    pub ca_file: Option<PathBuf>,
    /// Allow an `http://` URL for this vCenter. Default: `settings.vcenter_allow_plain_http`.
    pub allow_plain_http: Option<bool>,
}

/// A vCenter to snapshot, with everything but the account resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VcenterTarget {
    pub name: String,
    pub url: String,
    pub insecure: bool,
    pub ca_file: Option<PathBuf>,
    /// An `http://` URL was explicitly allowed.
    pub allow_plain_http: bool,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            log_level: "info".to_string(),
            database_timeout_seconds: crate::store::DEFAULT_TIMEOUT.as_secs(),
            request_timeout_seconds: DEFAULT_REQUEST_TIMEOUT.as_secs(),
            log_output: LogOutput::Text,
            database_driver: None,
            enable_experimental_postgres: false,
            database_url: None,
            hourly_snapshot_max_age_days: 60,
            daily_snapshot_max_age_months: 12,
            scheduled_aggregation_engine: Engine::Rust,
            pool_tiers: BTreeMap::new(),
            vcenter_addresses: Vec::new(),
            vcenters: Vec::new(),
            vcenter_username: String::new(),
            vcenter_password: String::new(),
            vcenter_insecure: false,
            vcenter_allow_plain_http: false,
            vcenter_ca_file: None,
            encryption_key: None,
            vcenter_inventory_snapshot_seconds: 3_600,
            vcenter_connect_timeout_seconds: 10,
            vcenter_read_timeout_seconds: 120,
            vcenter_max_objects: 1_000,
            hourly_snapshot_concurrency: 0,
            hourly_snapshot_retry_seconds: 300,
            hourly_snapshot_max_retries: 3,
            snapshot_cleanup_cron: DEFAULT_CLEANUP_CRON.to_string(),
            tenants_to_filter: Vec::new(),
            node_charge_clusters: Vec::new(),
            srm_activeactive_vms: Vec::new(),
            bind_ip: IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            bind_port: 8080,
            bind_disable_tls: false,
            tls_cert_filename: None,
            tls_key_filename: None,
            http_read_header_timeout_seconds: 10,
            http_idle_timeout_seconds: 60,
            http_max_connections: 4_096,
            http_max_concurrent_requests: 256,
            ignored_event_polling_seconds: None,
            ignored_inventory_polling_seconds: None,
            ignored_enable_legacy_api: None,
            ignored_inventory_aggregate_seconds: None,
            ignored_hourly_index_max_age_days: None,
            ignored_capture_write_batch_size: None,
            ignored_snapshot_table_compat_mode: None,
            ignored_async_report_generation: None,
            ignored_postgres_vm_hourly_partitioning: None,
            hourly_reports: true,
            reports_dir: PathBuf::from("."),
            reports_url: None,
            object_store_options: BTreeMap::new(),
            object_store_retry_timeout_seconds: crate::objstore::DEFAULT_RETRY_TIMEOUT.as_secs(),
            report_summary_pivots: crate::report::PivotSpec::defaults(),
            auth_enabled: false,
            auth_mode: None,
            auth_group_role_mappings: BTreeMap::new(),
            ldap_groups: Vec::new(),
            ldap_bind_address: None,
            ldap_base_dn: None,
            ldap_user_base_dn: None,
            ldap_user_attribute: "uid".to_string(),
            ldap_trust_cert_file: None,
            ldap_disable_validation: false,
            ldap_insecure: false,
            ldap_bind_dn: None,
            ldap_bind_password: None,
            ldap_timeout_seconds: 10,
            auth_jwt_signing_key: None,
            auth_token_lifespan_minutes: 60,
            auth_jwt_issuer: "vctp".to_string(),
            auth_jwt_audience: "vctp-api".to_string(),
            auth_clock_skew_seconds: 60,
            auth_login_max_attempts_per_address: 20,
            auth_login_max_attempts_per_username: 10,
            auth_login_window_seconds: 300,
            enable_pprof: false,
            metrics_exports: Vec::new(),
            rate_cards: Vec::new(),
            tenant_rules: Vec::new(),
            pricing: Pricing::default(),
            cost_metrics_vm_limit: 0,
            cost_metrics_public: false,
        }
    }
}

/// The sample rate cards and tenant rules of `config/costs.yml`.
const SAMPLE_COSTS: &str = include_str!("../config/costs.yml");

/// The sample pricing the demo falls back to and the benchmark prices with.
pub fn sample_pricing() -> Result<Pricing, Error> {
    Settings::parse(SAMPLE_COSTS, Path::new("config/costs.yml")).map(|s| s.pricing)
}

/// The per-request deadline of API reads unless `request_timeout_seconds` says otherwise.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// The database used when neither the command line nor the settings name one.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://db.sqlite3";

/// Retention runs daily at 02:30 UTC unless `snapshot_cleanup_cron` says otherwise.
pub const DEFAULT_CLEANUP_CRON: &str = "0 30 2 * * *";

impl Settings {
    /// Reads and validates a settings file.
    pub fn load(path: &Path) -> Result<Settings, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Settings::parse(&text, path)
    }

    /// Parses settings text; `path` only names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Settings, Error> {
        let invalid = |key: String, message: String| Error::Invalid {
            path: path.to_path_buf(),
            key,
            message,
        };
        let file: SettingsFile = serde_path_to_error::deserialize(
            serde_yaml::Deserializer::from_str(text),
        )
        .map_err(|e| {
            let key = e.path().to_string();
            let key = if key == "." {
                "settings".to_string()
            } else {
                key
            };
            invalid(key, without_the_key_list(e.into_inner().to_string()))
        })?;
        let mut settings = file.settings;
        settings.pricing = Pricing {
            cards: RateCards::from_specs(&settings.rate_cards).map_err(|e| {
                invalid(
                    format!("settings.rate_cards[{}].{}", e.index, e.field),
                    format!("rate card `{}`: {}", e.card, e.message),
                )
            })?,
            rules: TenantRules::from_specs(&settings.tenant_rules)
                .map_err(|e| invalid(format!("settings.tenant_rules[{}]", e.index), e.message))?,
        };
        if settings.hourly_snapshot_max_age_days == 0 {
            return Err(invalid(
                "settings.hourly_snapshot_max_age_days".into(),
                "must be at least 1".into(),
            ));
        }
        if settings.daily_snapshot_max_age_months == 0 {
            return Err(invalid(
                "settings.daily_snapshot_max_age_months".into(),
                "must be at least 1".into(),
            ));
        }
        let positive = [
            (
                "vcenter_inventory_snapshot_seconds",
                settings.vcenter_inventory_snapshot_seconds,
            ),
            (
                "vcenter_connect_timeout_seconds",
                settings.vcenter_connect_timeout_seconds,
            ),
            (
                "vcenter_read_timeout_seconds",
                settings.vcenter_read_timeout_seconds,
            ),
            (
                "vcenter_max_objects",
                u64::from(settings.vcenter_max_objects),
            ),
            (
                "database_timeout_seconds",
                settings.database_timeout_seconds,
            ),
            ("request_timeout_seconds", settings.request_timeout_seconds),
            (
                "object_store_retry_timeout_seconds",
                settings.object_store_retry_timeout_seconds,
            ),
            (
                "http_read_header_timeout_seconds",
                settings.http_read_header_timeout_seconds,
            ),
            (
                "http_idle_timeout_seconds",
                settings.http_idle_timeout_seconds,
            ),
            ("http_max_connections", settings.http_max_connections as u64),
            (
                "http_max_concurrent_requests",
                settings.http_max_concurrent_requests as u64,
            ),
        ];
        if let Some((key, _)) = positive.iter().find(|(_, value)| *value == 0) {
            return Err(invalid(
                format!("settings.{key}"),
                "must be at least 1".into(),
            ));
        }
        if settings.request_timeout_seconds <= settings.database_timeout_seconds {
            return Err(invalid(
                "settings.request_timeout_seconds".into(),
                format!(
                    "must be more than database_timeout_seconds ({}), so that a request finds out the database is down before its own deadline",
                    settings.database_timeout_seconds
                ),
            ));
        }
        if let Err(e) = settings.snapshot_cleanup_cron.parse::<cron::Schedule>() {
            return Err(invalid(
                "settings.snapshot_cleanup_cron".into(),
                format!(
                    "{e} (six fields: sec min hour day-of-month month day-of-week, e.g. {DEFAULT_CLEANUP_CRON:?})"
                ),
            ));
        }
        for (key, patterns) in [
            ("tenants_to_filter", &settings.tenants_to_filter),
            ("node_charge_clusters", &settings.node_charge_clusters),
            ("srm_activeactive_vms", &settings.srm_activeactive_vms),
        ] {
            if let Some(i) = patterns.iter().position(|p| p.trim().is_empty()) {
                return Err(invalid(
                    format!("settings.{key}[{i}]"),
                    "an empty pattern would match nothing useful; remove it".into(),
                ));
            }
        }
        settings
            .vcenter_targets()
            .map_err(|(key, message)| invalid(key, message))?;
        let mut names = std::collections::BTreeSet::new();
        for (index, export) in settings.metrics_exports.iter().enumerate() {
            export
                .check(index)
                .map_err(|(key, message)| invalid(key, message))?;
            if !names.insert(export.name.clone()) {
                return Err(invalid(
                    format!("settings.metrics_exports[{index}].name"),
                    format!("{:?} is used twice", export.name),
                ));
            }
        }
        if settings.tls_cert_filename.is_some() != settings.tls_key_filename.is_some() {
            let (given, missing) = if settings.tls_cert_filename.is_some() {
                ("tls_cert_filename", "tls_key_filename")
            } else {
                ("tls_key_filename", "tls_cert_filename")
            };
            return Err(invalid(
                format!("settings.{missing}"),
                format!("is needed with settings.{given} (a certificate and its key)"),
            ));
        }
        if let (Some(driver), Some(url)) = (settings.database_driver, &settings.database_url) {
            let parsed = DatabaseUrl::parse(url)?;
            let matches = matches!(
                (driver, &parsed),
                (DatabaseDriver::Sqlite, DatabaseUrl::Sqlite(_))
                    | (DatabaseDriver::Postgres, DatabaseUrl::Postgres(_))
            );
            if !matches {
                return Err(Error::Inconsistent {
                    path: path.to_path_buf(),
                    message: format!(
                        "settings.database_driver is {driver:?} but settings.database_url is {parsed}"
                    ),
                });
            }
        }
        Ok(settings)
    }

    /// Secrets a deployment passes as environment variables rather than in the settings
    /// file (the Helm chart maps them from Secrets): each one that is set replaces its setting.
    pub fn with_secrets_from_env(mut self) -> Settings {
        for (name, setting) in [
            ("VCTP_AUTH_JWT_SIGNING_KEY", &mut self.auth_jwt_signing_key),
            ("VCTP_LDAP_BIND_DN", &mut self.ldap_bind_dn),
            ("VCTP_LDAP_BIND_PASSWORD", &mut self.ldap_bind_password),
        ] {
            if let Some(value) = std::env::var(name).ok().filter(|v| !v.is_empty()) {
                *setting = Some(value);
            }
        }
        self
    }

    /// The database to use: the command line (or `VCTP_DATABASE_URL`) first, then the
    /// settings, then [`DEFAULT_DATABASE_URL`].
    pub fn database_url(&self, cli: Option<&str>) -> Result<DatabaseUrl, Error> {
        let text = cli
            .or(self.database_url.as_deref())
            .unwrap_or(DEFAULT_DATABASE_URL);
        Ok(DatabaseUrl::parse(text)?)
    }

    pub fn tier_mapping(&self) -> TierMapping {
        TierMapping::new(&self.pool_tiers)
    }

    pub fn database_timeout(&self) -> Duration {
        Duration::from_secs(self.database_timeout_seconds)
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_seconds)
    }

    pub fn object_store_retry_timeout(&self) -> Duration {
        Duration::from_secs(self.object_store_retry_timeout_seconds)
    }

    /// The object store URL reports are written to: `reports_url`, else `reports_dir`.
    pub fn reports_url(&self) -> String {
        self.reports_url
            .clone()
            .unwrap_or_else(|| self.reports_dir.display().to_string())
    }

    /// vCTP keys that were given but do nothing in vctp, each with why, for a warning at start.
    pub fn ignored_keys(&self) -> Vec<(&'static str, &'static str)> {
        [
            (
                "settings.vcenter_event_polling_seconds",
                &self.ignored_event_polling_seconds,
                "deprecated in vCTP: events are not polled",
            ),
            (
                "settings.vcenter_inventory_polling_seconds",
                &self.ignored_inventory_polling_seconds,
                "deprecated in vCTP: vcenter_inventory_snapshot_seconds sets the snapshot cadence",
            ),
            (
                "settings.enable_legacy_api",
                &self.ignored_enable_legacy_api,
                "vctp does not implement the legacy endpoints: they answer 410 Gone",
            ),
            (
                "settings.vcenter_inventory_aggregate_seconds",
                &self.ignored_inventory_aggregate_seconds,
                "vctp standalone aggregates each day once it is over (and each month likewise); a day's summary needs the whole day",
            ),
            (
                "settings.hourly_index_max_age_days",
                &self.ignored_hourly_index_max_age_days,
                "vctp keeps one table per grain, not one per hour, so there are no per-hour indexes to trim",
            ),
            (
                "settings.capture_write_batch_size",
                &self.ignored_capture_write_batch_size,
                "vctp writes captured rows in batches sized to the databases' bind-parameter limits",
            ),
            (
                "settings.snapshot_table_compat_mode",
                &self.ignored_snapshot_table_compat_mode,
                "vctp has no legacy per-snapshot tables",
            ),
            (
                "settings.async_report_generation",
                &self.ignored_async_report_generation,
                "vctp writes reports after the capture is stored, never inside it",
            ),
            (
                "settings.postgres_vm_hourly_partitioning_enabled",
                &self.ignored_postgres_vm_hourly_partitioning,
                "vctp's PostgreSQL schema is not partitioned; retention deletes old rows",
            ),
        ]
        .into_iter()
        .filter_map(|(key, value, why)| value.is_some().then_some((key, why)))
        .collect()
    }

    /// Every configured vCenter (`vcenter_addresses`, then `vcenters`) with its name and TLS
    /// settings. Errors name the offending key: a URL that is not http(s), an `http://` URL
    /// that is not allowed, a name used twice.
    pub fn vcenter_targets(&self) -> Result<Vec<VcenterTarget>, (String, String)> {
        let addresses = self.vcenter_addresses.iter().enumerate().map(|(i, url)| {
            (
                format!("settings.vcenter_addresses[{i}]"),
                None,
                url,
                None,
                None,
                None,
            )
        });
        let entries = self.vcenters.iter().enumerate().map(|(i, entry)| {
            (
                format!("settings.vcenters[{i}]"),
                entry.name.as_deref(),
                &entry.url,
                entry.insecure,
                entry.ca_file.as_ref(),
                entry.allow_plain_http,
            )
        });
        let mut targets: Vec<VcenterTarget> = Vec::new();
        for (key, name, url, insecure, ca_file, allow_plain_http) in addresses.chain(entries) {
            let host = url_host(url).ok_or_else(|| {
                (
                    key.clone(),
                    format!("{url:?} is not a vCenter SDK URL (expected https://HOST/sdk)"),
                )
            })?;
            let allow_plain_http = allow_plain_http.unwrap_or(self.vcenter_allow_plain_http);
            if url.trim().starts_with("http://") && !allow_plain_http {
                let allow = if key.starts_with("settings.vcenters[") {
                    format!("{key}.allow_plain_http")
                } else {
                    "settings.vcenter_allow_plain_http".to_string()
                };
                return Err((
                    key,
                    format!(
                        "{url:?} would send the vCenter password in clear; use https://, or set {allow}: true if plain HTTP is really meant"
                    ),
                ));
            }
            let name = name.map_or(host, str::trim).to_string();
            if name.is_empty() {
                return Err((format!("{key}.name"), "must not be empty".into()));
            }
            if targets.iter().any(|t| t.name == name) {
                return Err((
                    key,
                    format!(
                        "a second vCenter named {name:?}; give each a distinct `name` under settings.vcenters"
                    ),
                ));
            }
            targets.push(VcenterTarget {
                name,
                url: url.trim().to_string(),
                insecure: insecure.unwrap_or(self.vcenter_insecure),
                ca_file: ca_file.or(self.vcenter_ca_file.as_ref()).cloned(),
                allow_plain_http,
            });
        }
        Ok(targets)
    }
}

/// The host of an `http://` or `https://` URL, without port or credentials.
fn url_host(url: &str) -> Option<&str> {
    let rest = url
        .trim()
        .strip_prefix("https://")
        .or_else(|| url.trim().strip_prefix("http://"))?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit('@').next()?;
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next()?
    } else {
        host_port.split(':').next()?
    };
    (!host.is_empty()).then_some(host)
}

/// serde's "unknown field `x`, expected one of … at line L column C" lists every key (over
/// 2 KB for `settings:`); the message keeps the misspelt key and its place, and names the
/// closest known key instead.
fn without_the_key_list(message: String) -> String {
    let Some((head, rest)) = message.split_once(", expected one of ") else {
        return message;
    };
    let Some((_, field)) = head.rsplit_once("unknown field `") else {
        return message;
    };
    let field = field.trim_end_matches('`');
    let (expected, place) = rest.split_once(" at line ").unwrap_or((rest, ""));
    let closest = expected
        .split(", ")
        .map(|known| known.trim_matches('`'))
        .map(|known| (edit_distance(field, known), known))
        .min()
        .filter(|(distance, _)| *distance <= field.chars().count().div_ceil(3))
        .map(|(_, known)| format!("; did you mean `{known}`?"))
        .unwrap_or_default();
    let place = if place.is_empty() {
        String::new()
    } else {
        format!(" at line {place}")
    };
    format!("{head}{closest}{place} (config/vctp.yml lists every key)")
}

/// Levenshtein distance over characters: how many edits turn `a` into `b`.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substituted = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substituted.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Settings, Error> {
        Settings::parse(text, Path::new("vctp.yml"))
    }

    #[test]
    fn a_vctp_settings_file_with_seed_key_names_loads() {
        let settings = parse(
            "settings:\n  log_level: debug\n  log_output: json\n  database_driver: postgres\n  enable_experimental_postgres: true\n  database_url: postgres://vctp@db/vctp\n  hourly_snapshot_max_age_days: 30\n  daily_snapshot_max_age_months: 6\n  scheduled_aggregation_engine: go\n  pool_tiers:\n    Critical: gold\n",
        )
        .unwrap();
        assert_eq!(settings.log_output, LogOutput::Json);
        assert_eq!(settings.hourly_snapshot_max_age_days, 30);
        assert_eq!(settings.scheduled_aggregation_engine, Engine::Rust);
        assert_eq!(
            settings.tier_mapping().tier_of("critical"),
            Some(Tier::Gold)
        );
        assert!(matches!(
            settings.database_url(None).unwrap(),
            DatabaseUrl::Postgres(_)
        ));
    }

    #[test]
    fn an_empty_settings_mapping_takes_the_defaults() {
        let settings = parse("settings: {}\n").unwrap();
        assert_eq!(settings.hourly_snapshot_max_age_days, 60);
        assert_eq!(settings.daily_snapshot_max_age_months, 12);
        assert_eq!(
            settings.database_url(None).unwrap(),
            DatabaseUrl::Sqlite("db.sqlite3".into())
        );
        assert_eq!(
            settings.database_url(Some("/tmp/x.sqlite3")).unwrap(),
            DatabaseUrl::Sqlite("/tmp/x.sqlite3".into())
        );
    }

    #[test]
    fn an_unknown_key_is_named_with_the_file() {
        let err = parse("settings:\n  hourly_snapshot_max_age_dayz: 3\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("settings file vctp.yml: `settings"),
            "{err}"
        );
        assert!(
            err.contains("unknown field `hourly_snapshot_max_age_dayz`"),
            "{err}"
        );
    }

    #[test]
    fn an_ill_typed_value_names_its_key() {
        let err = parse("settings:\n  hourly_snapshot_max_age_days: soon\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("settings file vctp.yml: `settings.hourly_snapshot_max_age_days`:"),
            "{err}"
        );
        let err = parse("settings:\n  pool_tiers:\n    Dev: platinum\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("`settings.pool_tiers.Dev`"), "{err}");
    }

    #[test]
    fn a_missing_settings_mapping_and_zero_retention_are_rejected() {
        assert!(parse("log_level: info\n").is_err());
        let err = parse("settings:\n  daily_snapshot_max_age_months: 0\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("daily_snapshot_max_age_months`: must be at least 1"),
            "{err}"
        );
    }

    #[test]
    fn a_driver_that_contradicts_the_url_is_rejected() {
        let err = parse("settings:\n  database_driver: postgres\n  database_url: ./db.sqlite3\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("database_driver is Postgres"), "{err}");
    }

    #[test]
    fn vcenters_are_named_by_host_unless_named_explicitly() {
        let settings = parse(
            "settings:\n  vcenter_addresses: [\"https://vc1.example.com/sdk\", \"http://[::1]:8989/sdk\"]\n  vcenter_insecure: true\n  vcenter_allow_plain_http: true\n  vcenters:\n    - name: lab\n      url: https://10.0.0.5:443/sdk\n      insecure: false\n      ca_file: /etc/vctp/lab-ca.pem\n",
        )
        .unwrap();
        let targets = settings.vcenter_targets().unwrap();
        let names: Vec<&str> = targets.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["vc1.example.com", "::1", "lab"]);
        assert!(targets[0].insecure && targets[1].insecure);
        assert!(!targets[2].insecure);
        assert_eq!(
            targets[2].ca_file.as_deref(),
            Some(Path::new("/etc/vctp/lab-ca.pem"))
        );
    }

    #[test]
    fn a_vcenter_url_that_is_not_http_or_a_repeated_name_is_rejected() {
        let err = parse("settings:\n  vcenter_addresses: [\"vc1.example.com\"]\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("`settings.vcenter_addresses[0]`"), "{err}");
        assert!(err.contains("is not a vCenter SDK URL"), "{err}");
        let err = parse(
            "settings:\n  vcenter_addresses: [\"https://vc1/sdk\"]\n  vcenters:\n    - url: https://vc1:8080/sdk\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("`settings.vcenters[0]`"), "{err}");
        assert!(err.contains("a second vCenter named \"vc1\""), "{err}");
    }

    #[test]
    fn a_plain_http_vcenter_is_refused_unless_allowed_by_its_entry_or_globally() {
        let err = parse("settings:\n  vcenter_addresses: [\"http://vc1/sdk\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`settings.vcenter_addresses[0]`")
                && err.contains("password in clear")
                && err.contains("settings.vcenter_allow_plain_http: true"),
            "{err}"
        );
        let entries =
            "settings:\n  vcenters:\n    - url: https://vc0/sdk\n    - url: http://vc1/sdk\n";
        let err = parse(entries).unwrap_err().to_string();
        assert!(
            err.contains("settings.vcenters[1].allow_plain_http: true"),
            "{err}"
        );
        let allowed = parse(&format!("{entries}      allow_plain_http: true\n")).unwrap();
        let targets = allowed.vcenter_targets().unwrap();
        assert!(!targets[0].allow_plain_http && targets[1].allow_plain_http);
        let global = parse(&format!("{entries}  vcenter_allow_plain_http: true\n")).unwrap();
        assert!(global.vcenter_targets().unwrap()[1].allow_plain_http);
        // The entry's own `false` wins over the global allowance.
        let err = parse(&format!(
            "{entries}      allow_plain_http: false\n  vcenter_allow_plain_http: true\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("`settings.vcenters[1]`"), "{err}");
    }

    #[test]
    fn a_bad_cleanup_cron_or_empty_filter_pattern_is_rejected() {
        let err = parse("settings:\n  snapshot_cleanup_cron: every night\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("`settings.snapshot_cleanup_cron`"), "{err}");
        let err = parse("settings:\n  tenants_to_filter: [acme, \" \"]\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("`settings.tenants_to_filter[1]`"), "{err}");
        let err = parse("settings:\n  vcenter_read_timeout_seconds: 0\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("vcenter_read_timeout_seconds`: must be at least 1"),
            "{err}"
        );
    }

    /// Every key of vCTP's settings reference, as a vCTP file sets them.
    const EVERY_SEED_KEY: &str = include_str!("../config/vctp-seed.yml");

    #[test]
    fn timeouts_that_cannot_work_are_rejected_naming_their_key() {
        let err = parse("settings:\n  object_store_retry_timeout_seconds: 0\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("object_store_retry_timeout_seconds`: must be at least 1"),
            "{err}"
        );
        // A request deadline inside the database's wait would report a database that is
        // down as a request that timed out.
        let err = parse("settings:\n  database_timeout_seconds: 5\n  request_timeout_seconds: 5\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("`settings.request_timeout_seconds`"), "{err}");
        assert!(err.contains("database_timeout_seconds (5)"), "{err}");
        let settings =
            parse("settings:\n  database_timeout_seconds: 2\n  request_timeout_seconds: 3\n")
                .unwrap();
        assert_eq!(
            (settings.database_timeout(), settings.request_timeout()),
            (Duration::from_secs(2), Duration::from_secs(3))
        );
    }

    #[test]
    fn a_settings_file_with_every_seed_key_loads() {
        let settings = parse(EVERY_SEED_KEY).unwrap();
        assert_eq!(settings.bind_ip.to_string(), "0.0.0.0");
        assert_eq!(settings.bind_port, 9443);
        assert_eq!(
            settings.tls_cert_filename.as_deref(),
            Some(Path::new("/etc/dtms/vctp.crt"))
        );
        let ignored: Vec<&str> = settings.ignored_keys().iter().map(|(k, _)| *k).collect();
        assert_eq!(
            ignored,
            [
                "settings.vcenter_event_polling_seconds",
                "settings.vcenter_inventory_polling_seconds",
                "settings.enable_legacy_api",
                "settings.vcenter_inventory_aggregate_seconds",
                "settings.hourly_index_max_age_days",
                "settings.capture_write_batch_size",
                "settings.snapshot_table_compat_mode",
                "settings.async_report_generation",
                "settings.postgres_vm_hourly_partitioning_enabled",
            ]
        );
        // Next to the seed's keys, a misspelt one is still refused by name.
        let err = parse(&format!("{EVERY_SEED_KEY}  bind_prot: 443\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `bind_prot`"), "{err}");
    }

    #[test]
    fn an_unknown_key_is_named_with_the_closest_known_one_not_the_whole_list() {
        let err = parse("settings:\n  vcenter_pasword: x\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unknown field `vcenter_pasword`; did you mean `vcenter_password`?"),
            "{err}"
        );
        assert!(err.len() < 300, "{err}");
        let err = parse("settings:\n  quite_unlike_anything: 1\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.ends_with(
                "unknown field `quite_unlike_anything` at line 2 column 3 (config/vctp.yml lists every key)"
            ),
            "{err}"
        );
        assert_eq!(edit_distance("bind_prot", "bind_port"), 2);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn a_tls_certificate_without_its_key_is_rejected() {
        let err = parse("settings:\n  tls_cert_filename: /etc/vctp/tls.crt\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`settings.tls_key_filename`: is needed"),
            "{err}"
        );
        let err = parse("settings:\n  http_max_connections: 0\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("http_max_connections`: must be at least 1"),
            "{err}"
        );
    }

    #[test]
    fn the_sample_costs_load_and_a_bad_card_names_its_field() {
        let pricing = sample_pricing().unwrap();
        assert_eq!(pricing.cards.cards().len(), 2);
        let err = parse("settings:\n  rate_cards:\n    - {name: x, currency: EUR, effective_from: 2026-01-01, tiers: {iron: 1}}\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`settings.rate_cards[0].tiers.iron`: rate card `x`: unknown tier `iron`"),
            "{err}"
        );
        let err = parse("settings:\n  tenant_rules:\n    - {vcenter: a}\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`settings.tenant_rules[0]`: a rule needs `tenant`"),
            "{err}"
        );
    }
}
