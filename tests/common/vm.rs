//! Helpers for tests against real VictoriaMetrics processes (Debian's victoria-metrics 1.79.5: the
//! single-node server and vmauth) on 127.0.0.1. `scripts/test.sh` runs
//! `scripts/victoriametrics.sh`, which installs them and exports their paths and a test
//! certificate; every test starts its own [`Node`]s (fresh data on a free port) and [`VmAuth`]s,
//! and each stops when dropped.
//!
//! What this build does, as measured (TESTING.md has the rest):
//! - with `-http.pathPrefix=P` *every* path answers only under `P`, `/health`,
//!   `/internal/force_flush` and `/metrics` included; elsewhere 400 `missing -http.pathPrefix=…`;
//! - `/api/v1/import` answers 204 even for lines it skips (bad JSON, a `"NaN"` or `"+Inf"` string,
//!   a timestamp more than 2 days ahead of the clock); it only logs them, so [`Node::import`]
//!   reads the node's log and fails on such lines;
//! - `/api/v1/export` writes bare `+Inf`/`-Inf`/`NaN` (not JSON), which [`samples`] parses;
//! - vmauth answers 401 `missing \`Authorization\` request header` without credentials, 400
//!   `cannot find the provided auth token "Basic …" in config` for a wrong password or token (the
//!   body echoes the header), 400 `… missing route for "/path?query"` outside a user's `url_map`,
//!   and routes bearer-token users (who may also send the token as a Basic user name with no
//!   password); it answers `/health` itself, without credentials;
//! - a bare `NaN` sample is accepted (204, nothing logged) but not stored: it never comes back;
//! - a selector in a URL must be percent-encoded (`+` in `=~".+"` decodes to a space and matches
//!   nothing): build queries with reqwest's `.query()`, as [`Node::export_text`] does.

use anyhow::{Context, Result, anyhow, bail, ensure};
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a process may take to answer its health check (a node needs about 0.2 s).
const START_PATIENCE: Duration = Duration::from_secs(30);
/// Attempts with a new port when the free port was taken between probing and binding.
const START_ATTEMPTS: u32 = 5;
/// Per request: the seed (about 6 MB) imports in well under a second.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

fn env_path(var: &str) -> PathBuf {
    match std::env::var_os(var) {
        Some(value) if !value.is_empty() => PathBuf::from(value),
        _ => panic!(
            "{var} is not set: run the tests through scripts/test.sh, which sets up VictoriaMetrics (scripts/victoriametrics.sh)"
        ),
    }
}

/// The victoria-metrics program; fails with the script to run when it is not set.
pub fn vm_bin() -> PathBuf {
    env_path("VCTP_TEST_VM_BIN")
}

/// The vmauth program; fails with the script to run when it is not set.
pub fn vmauth_bin() -> PathBuf {
    env_path("VCTP_TEST_VMAUTH_BIN")
}

/// PEM of the test CA that signed [`tls_cert`]: what a client of a TLS node trusts.
pub fn tls_ca() -> PathBuf {
    env_path("VCTP_TEST_VM_TLS_CA")
}

/// PEM server certificate for 127.0.0.1 (SAN IP:127.0.0.1, DNS:localhost).
pub fn tls_cert() -> PathBuf {
    env_path("VCTP_TEST_VM_TLS_CERT")
}

/// The private key of [`tls_cert`].
pub fn tls_key() -> PathBuf {
    env_path("VCTP_TEST_VM_TLS_KEY")
}

/// An HTTP client that also trusts the test CA when `tls`.
pub fn http_client(tls: bool) -> Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder().timeout(REQUEST_TIMEOUT);
    if tls {
        let path = tls_ca();
        let pem = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let ca = reqwest::Certificate::from_pem(&pem)
            .with_context(|| format!("parsing the test CA {}", path.display()))?;
        builder = builder.add_root_certificate(ca);
    }
    builder.build().context("building an HTTP client")
}

#[derive(Debug, Default, Clone)]
pub struct NodeOptions {
    /// `-http.pathPrefix`, e.g. `/select/1:2/prometheus`: the node then answers only under it.
    pub path_prefix: Option<String>,
    /// Serve HTTPS with the test certificate ([`tls_cert`], trusted through [`tls_ca`]).
    pub tls: bool,
    /// Serve HTTPS with this certificate and key instead (their own trust is the test's).
    pub tls_identity: Option<(PathBuf, PathBuf)>,
    /// `-dedup.minScrapeInterval=1ms`: a re-sent sample is stored once, not twice.
    pub dedup: bool,
    /// `-retentionPeriod`; default `100y` (the default 1 month silently drops older samples).
    pub retention: Option<String>,
}

/// A victoria-metrics process on a free 127.0.0.1 port with its own temp data dir; stopped
/// (SIGTERM, then wait) when dropped. Its log is kept for failure messages ([`Node::log`]).
pub struct Node {
    /// `scheme://127.0.0.1:PORT` plus the path prefix if any: the base under which
    /// `/api/v1/...` (and, with a prefix, also `/health` and `/internal/force_flush`) answers.
    pub url: String,
    base: String,
    client: reqwest::Client,
    process: Process,
}

impl Node {
    /// Starts a node and waits until `{url}/health` answers `OK`.
    pub async fn start(options: NodeOptions) -> Result<Node> {
        let prefix = match options.path_prefix.as_deref() {
            None | Some("") | Some("/") => String::new(),
            Some(p) if p.starts_with('/') => p.trim_end_matches('/').to_string(),
            Some(p) => bail!("path prefix {p:?} must start with '/'"),
        };
        let https = options.tls || options.tls_identity.is_some();
        let scheme = if https { "https" } else { "http" };
        let retention = options.retention.as_deref().unwrap_or("100y").to_string();
        let (client, tls_cert, tls_key) = match &options.tls_identity {
            // Only the readiness probe uses this client: it does not judge the certificate.
            Some((cert, key)) => (
                reqwest::Client::builder()
                    .danger_accept_invalid_certs(true)
                    .build()?,
                Some(cert.clone()),
                Some(key.clone()),
            ),
            None if options.tls => (http_client(true)?, Some(tls_cert()), Some(tls_key())),
            None => (http_client(false)?, None, None),
        };
        let args = |port: u16, dir: &Path| {
            let mut args: Vec<OsString> = vec![
                format!("-httpListenAddr=127.0.0.1:{port}").into(),
                flag_path("-storageDataPath=", &dir.join("data")),
                format!("-retentionPeriod={retention}").into(),
                // The default 30 s offset hides the newest samples.
                "-search.latencyOffset=0s".into(),
                // Backfilled old data confuses the rollup result cache.
                "-search.disableCache".into(),
            ];
            if options.dedup {
                args.push("-dedup.minScrapeInterval=1ms".into());
            }
            if !prefix.is_empty() {
                args.push(format!("-http.pathPrefix={prefix}").into());
            }
            if let (Some(cert), Some(key)) = (&tls_cert, &tls_key) {
                args.push("-tls".into());
                args.push(flag_path("-tlsCertFile=", cert));
                args.push(flag_path("-tlsKeyFile=", key));
            }
            args
        };
        let ready_url = |port: u16| format!("{scheme}://127.0.0.1:{port}{prefix}/health");
        let spec = Spec {
            what: "victoria-metrics",
            program: vm_bin(),
            dir_prefix: "vctp-vm-node.",
            args: &args,
            env: Vec::new(),
            ready_url: &ready_url,
        };
        let (process, port) = Process::start(spec, &client).await?;
        let base = format!("{scheme}://127.0.0.1:{port}");
        Ok(Node {
            url: format!("{base}{prefix}"),
            base,
            client,
            process,
        })
    }

    /// `scheme://127.0.0.1:PORT`, without the path prefix.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// A client that reaches this node (it trusts the test CA when the node serves TLS).
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Imports JSON lines (`/api/v1/import`), then forces a flush so they are readable. Fails
    /// when the node skipped a line (it answers 204 all the same and only logs it).
    pub async fn import(&self, jsonl: &[u8]) -> Result<()> {
        let log_start = self.process.log_len();
        let url = format!("{}/api/v1/import", self.url);
        let response = self
            .client
            .post(&url)
            .body(jsonl.to_vec())
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        expect_success(response, "POST", &url).await?;
        self.force_flush().await?;
        let skipped: Vec<String> = self
            .process
            .log_since(log_start)
            .lines()
            .filter(|line| line.contains("skipping it") || line.contains("cannot insert row"))
            .map(|line| line.chars().take(400).collect())
            .collect();
        ensure!(
            skipped.is_empty(),
            "victoria-metrics skipped imported data (answering 204 all the same; a timestamp outside \
             the retention or over 2 days ahead of this machine's clock?):\n{}",
            skipped.join("\n")
        );
        Ok(())
    }

    /// `/internal/force_flush`: makes recently imported samples readable.
    pub async fn force_flush(&self) -> Result<()> {
        let url = format!("{}/internal/force_flush", self.url);
        let response = self
            .client
            .get(&url)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        expect_success(response, "GET", &url).await.map(drop)
    }

    /// `/api/v1/export` of `selector` from `start_s` to `end_s` (decimal seconds, both inclusive
    /// on this server): JSON lines, one series each.
    pub async fn export_text(&self, selector: &str, start_s: f64, end_s: f64) -> Result<String> {
        let url = format!("{}/api/v1/export", self.url);
        let response = self
            .client
            .get(&url)
            .query(&[
                ("match[]", selector.to_string()),
                ("start", start_s.to_string()),
                ("end", end_s.to_string()),
            ])
            .send()
            .await
            .with_context(|| format!("GET {url} {selector}"))?;
        expect_success(response, "GET", &url).await
    }

    /// The node's output so far (for failure messages).
    pub fn log(&self) -> String {
        self.process.log()
    }

    /// The node's pid.
    pub fn pid(&self) -> u32 {
        self.process.child.id()
    }

    /// Stops the node (SIGTERM, then wait), keeping its data: a source that went away.
    pub fn stop(&mut self) {
        self.process.stop();
    }

    /// True while the node's process runs.
    pub fn running(&mut self) -> bool {
        self.process.running()
    }

    /// Stops the node if it runs and starts it again on the same port with the same data;
    /// waits until it is ready.
    pub async fn restart(&mut self) -> Result<()> {
        self.process.restart(&self.client).await
    }
}

/// One vmauth user (`-auth.config` `users:` entry) routed to the backend.
#[derive(Debug, Clone)]
pub enum AuthUser {
    /// Everything under the backend (`url_prefix`).
    Full { username: String, password: String },
    /// Only the query APIs (`url_map`: query, query_range, series, labels, label values,
    /// status/tsdb, status/buildinfo); `/api/v1/export` answers 400 `missing route for …`.
    QueryOnly { username: String, password: String },
    /// Everything under the backend, for `Authorization: Bearer TOKEN` (vmauth also takes the
    /// token as a Basic user name with an empty password).
    Bearer { token: String },
}

/// The paths a [`AuthUser::QueryOnly`] user may reach (vmauth anchors each regex).
pub const QUERY_ONLY_PATHS: &[&str] = &[
    "/api/v1/query",
    "/api/v1/query_range",
    "/api/v1/series",
    "/api/v1/labels",
    "/api/v1/label/[^/]+/values",
    "/api/v1/status/tsdb",
    "/api/v1/status/buildinfo",
];

/// vmauth in front of `backend_url` with these users on a free 127.0.0.1 port; stopped when
/// dropped.
pub struct VmAuth {
    /// `http://127.0.0.1:PORT`: a request to `{url}/api/v1/…` goes to `{backend_url}/api/v1/…`.
    pub url: String,
    process: Process,
}

impl VmAuth {
    /// Starts vmauth and waits until its own `/health` answers. An `https://` backend is trusted
    /// through the test CA (vmauth 1.79 has no backend CA flag; Go reads `SSL_CERT_FILE`).
    pub async fn start(backend_url: &str, users: &[AuthUser]) -> Result<VmAuth> {
        let backend = backend_url.trim_end_matches('/');
        let users: Vec<serde_json::Value> = users
            .iter()
            .map(|user| match user {
                AuthUser::Full { username, password } => serde_json::json!({
                    "username": username, "password": password, "url_prefix": backend,
                }),
                AuthUser::QueryOnly { username, password } => serde_json::json!({
                    "username": username, "password": password,
                    "url_map": [{ "src_paths": QUERY_ONLY_PATHS, "url_prefix": backend }],
                }),
                AuthUser::Bearer { token } => serde_json::json!({
                    "bearer_token": token, "url_prefix": backend,
                }),
            })
            .collect();
        // JSON is YAML: serde_json quotes every name and password safely.
        let config = serde_json::to_string_pretty(&serde_json::json!({ "users": users }))
            .context("writing the vmauth config")?;
        let config_dir = tempfile::Builder::new()
            .prefix("vctp-vmauth-config.")
            .tempdir()
            .context("creating a temp dir for the vmauth config")?;
        let config_path = config_dir.path().join("auth.yml");
        std::fs::write(&config_path, config)
            .with_context(|| format!("writing {}", config_path.display()))?;
        let client = http_client(false)?;
        let mut env: Vec<(OsString, OsString)> = Vec::new();
        if backend.starts_with("https://") {
            env.push(("SSL_CERT_FILE".into(), tls_ca().into_os_string()));
        }
        let args = |port: u16, _: &Path| {
            vec![
                format!("-httpListenAddr=127.0.0.1:{port}").into(),
                flag_path("-auth.config=", &config_path),
                // Requests with a wrong password or token are logged: the log says who was refused.
                "-logInvalidAuthTokens".into(),
            ]
        };
        let ready_url = |port: u16| format!("http://127.0.0.1:{port}/health");
        let spec = Spec {
            what: "vmauth",
            program: vmauth_bin(),
            dir_prefix: "vctp-vmauth.",
            args: &args,
            env,
            ready_url: &ready_url,
        };
        let (mut process, port) = Process::start(spec, &client).await?;
        process.keep(config_dir);
        Ok(VmAuth {
            url: format!("http://127.0.0.1:{port}"),
            process,
        })
    }

    /// vmauth's output so far (for failure messages).
    pub fn log(&self) -> String {
        self.process.log()
    }
}

/// The suite's seed data as `/api/v1/import` JSON lines: [`SEED_SERIES`] series, one sample every
/// 15 s for 6 hours from [`SEED_START_MS`] (end exclusive).
pub struct Seed {
    pub jsonl: String,
    pub start_ms: i64,
    /// Exclusive: the last sample is at `end_ms - 15_000`.
    pub end_ms: i64,
    pub series: usize,
    pub samples: usize,
}

/// 2026-11-30T00:00:00Z, an hour boundary (and a 5-minute one).
pub const SEED_START_MS: i64 = 1_795_996_800_000;
pub const SEED_STEP_MS: i64 = 15_000;
pub const SEED_SERIES: usize = 200;
/// 6 h of 15 s samples per series.
pub const SEED_POINTS: usize = 6 * 3600 / 15;
/// Where the single `+Inf` sample is: series index and sample index.
pub const SEED_INF_AT: (usize, usize) = (13, 700);

const SEED_JOBS: [&str; 5] = [
    "node-exporter",
    "kube-state-metrics",
    "payments-api",
    "vmagent",
    "blackbox-exporter",
];
const SEED_NAMESPACES: [&str; 3] = ["prod", "staging", "kube-system"];

/// The suite's seed data: 200 series × 6 h × 15 s (288,000 samples) from 2026-11-30T00:00Z.
/// 100 instances, half IPs (`10.20.x.y:9100`) half host names (`node-N.prod.example.com:9100`),
/// two series each (two metric names of the instance's job), with `namespace` and `pod` labels.
/// Values are integers and multiples of 0.25 (exact in binary and in VictoriaMetrics' decimal
/// storage), plus exactly one `+Inf` ([`SEED_INF_AT`]). Deterministic: derived from indices.
pub fn seed() -> Seed {
    let mut jsonl = String::with_capacity(7 << 20);
    for series in 0..SEED_SERIES {
        let labels = seed_labels(series);
        let values: Vec<String> = (0..SEED_POINTS)
            .map(|point| format_value(seed_value(series, point)))
            .collect();
        let timestamps: Vec<String> = (0..SEED_POINTS)
            .map(|point| (SEED_START_MS + point as i64 * SEED_STEP_MS).to_string())
            .collect();
        // serde_json escapes label names and values; inserted from a BTreeMap, the names are
        // sorted, so the line is the same on every run.
        let metric = serde_json::Value::Object(
            labels
                .into_iter()
                .map(|(k, v)| (k, serde_json::Value::String(v)))
                .collect(),
        )
        .to_string();
        jsonl.push_str(&format!(
            "{{\"metric\":{metric},\"values\":[{}],\"timestamps\":[{}]}}\n",
            values.join(","),
            timestamps.join(",")
        ));
    }
    Seed {
        jsonl,
        start_ms: SEED_START_MS,
        end_ms: SEED_START_MS + SEED_POINTS as i64 * SEED_STEP_MS,
        series: SEED_SERIES,
        samples: SEED_SERIES * SEED_POINTS,
    }
}

/// Labels of seed series `series` (`__name__` included).
fn seed_labels(series: usize) -> BTreeMap<String, String> {
    let instance_index = series / 2;
    let job = SEED_JOBS[instance_index % SEED_JOBS.len()];
    let second = series % 2 == 1;
    let instance = if instance_index.is_multiple_of(2) {
        format!(
            "10.20.{}.{}:9100",
            instance_index / 20,
            10 + instance_index % 20
        )
    } else {
        format!("node-{instance_index}.prod.example.com:9100")
    };
    let namespace = SEED_NAMESPACES[instance_index % SEED_NAMESPACES.len()];
    let pod = format!(
        "{job}-{:05x}-{:03}",
        (instance_index * 7919) % 0xfffff,
        instance_index
    );
    let mut labels: BTreeMap<String, String> = [
        ("job", job.to_string()),
        ("instance", instance),
        ("namespace", namespace.to_string()),
        ("pod", pod),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let mut add = |k: &str, v: String| {
        labels.insert(k.to_string(), v);
    };
    let name = match (job, second) {
        ("node-exporter", false) => {
            add("cpu", (instance_index % 4).to_string());
            add(
                "mode",
                ["user", "system", "idle"][instance_index % 3].to_string(),
            );
            "node_cpu_seconds_total"
        }
        ("node-exporter", true) => "node_memory_MemAvailable_bytes",
        ("kube-state-metrics", false) => {
            add("container", "app".to_string());
            "kube_pod_container_status_restarts_total"
        }
        ("kube-state-metrics", true) => "kube_pod_status_ready",
        ("payments-api", false) => {
            add("method", ["GET", "POST"][instance_index % 2].to_string());
            add("code", ["200", "500"][instance_index % 3 / 2].to_string());
            add("handler", "/api/v1/payments".to_string());
            "http_requests_total"
        }
        ("payments-api", true) => "http_request_duration_seconds_sum",
        ("vmagent", false) => "vmagent_remotewrite_bytes_sent_total",
        ("vmagent", true) => "scrape_duration_seconds",
        (_, false) => "probe_success",
        (_, true) => "probe_duration_seconds",
    };
    add("__name__", name.to_string());
    labels
}

/// Value of seed series `series` at sample `point`: counters count up in integer steps (one in
/// seven resets half-way), gauges move in steps of 0.25, `*_ready`/`probe_success` are 0 or 1.
fn seed_value(series: usize, point: usize) -> f64 {
    if (series, point) == SEED_INF_AT {
        return f64::INFINITY;
    }
    let (s, p) = (series as u64, point as u64);
    match series_kind(series) {
        Kind::Counter => {
            let step = s % 7 + 1;
            let start = s * 1000;
            if s % 7 == 3 && p >= SEED_POINTS as u64 / 2 {
                ((p - SEED_POINTS as u64 / 2) * step) as f64
            } else {
                (start + p * step) as f64
            }
        }
        Kind::Gauge => ((s * 37 + p * 11) % 40_000) as f64 / 4.0,
        Kind::Bool => f64::from(u8::from((s + p / 40) % 5 != 0)),
    }
}

enum Kind {
    Counter,
    Gauge,
    Bool,
}

fn series_kind(series: usize) -> Kind {
    let job = SEED_JOBS[(series / 2) % SEED_JOBS.len()];
    match (job, series % 2 == 1) {
        ("kube-state-metrics", true) | ("blackbox-exporter", false) => Kind::Bool,
        (_, false) => Kind::Counter,
        (_, true) => Kind::Gauge,
    }
}

/// A value as VictoriaMetrics' import takes and its export writes it: bare `+Inf`/`-Inf`/`NaN`.
fn format_value(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_string()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else {
        value.to_string()
    }
}

/// One sample as compared across source, bundle and target: the series in canonical form
/// (`name{a="x",b="y"}`, labels sorted by name, values escaped as in the Prometheus text
/// format), the timestamp in ms and the value's bits (every NaN as `f64::NAN`).
pub type Sample = (String, i64, u64);

/// Every sample of export (or import) JSON lines, which may hold bare `+Inf`/`-Inf`/`NaN`.
pub fn samples(export_text: &str) -> Result<BTreeSet<Sample>> {
    let mut out = BTreeSet::new();
    for (index, line) in export_text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        parse_line(line, &mut out).with_context(|| {
            format!(
                "line {} of the export: {}",
                index + 1,
                line.chars().take(200).collect::<String>()
            )
        })?;
    }
    Ok(out)
}

fn parse_line(line: &str, out: &mut BTreeSet<Sample>) -> Result<()> {
    let value: serde_json::Value =
        serde_json::from_str(&quote_bare_scalars(line)).context("not a JSON line")?;
    let metric = value
        .get("metric")
        .and_then(|m| m.as_object())
        .ok_or_else(|| anyhow!("no \"metric\" object"))?;
    let mut labels = BTreeMap::new();
    for (name, label_value) in metric {
        let text = label_value
            .as_str()
            .ok_or_else(|| anyhow!("label {name} is not a string"))?;
        labels.insert(name.as_str(), text);
    }
    let series = canonical_series(&labels);
    let array = |key: &str| {
        value
            .get(key)
            .and_then(|a| a.as_array())
            .ok_or_else(|| anyhow!("no \"{key}\" array"))
    };
    let (values, timestamps) = (array("values")?, array("timestamps")?);
    ensure!(
        values.len() == timestamps.len(),
        "{} values but {} timestamps",
        values.len(),
        timestamps.len()
    );
    for (v, t) in values.iter().zip(timestamps) {
        // Both were quoted by quote_bare_scalars: parsed here with Rust's exact parsers.
        let t = t
            .as_str()
            .ok_or_else(|| anyhow!("timestamp {t} is not a number"))?;
        let t: i64 = t.parse().with_context(|| format!("timestamp {t}"))?;
        let v = v
            .as_str()
            .ok_or_else(|| anyhow!("value {v} is not a number"))?;
        let v = parse_value(v)?;
        let bits = if v.is_nan() {
            f64::NAN.to_bits()
        } else {
            v.to_bits()
        };
        out.insert((series.clone(), t, bits));
    }
    Ok(())
}

fn parse_value(text: &str) -> Result<f64> {
    match text {
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => text.parse().with_context(|| format!("value {text}")),
    }
}

/// Puts every bare scalar outside strings (numbers, `+Inf`, `-Inf`, `NaN`) in quotes, so
/// serde_json reads the line and the numbers are parsed later with Rust's correctly rounded
/// parsers (serde_json's default float parser may be off by one ulp). `true`, `false` and
/// `null` stay as they are.
fn quote_bare_scalars(line: &str) -> String {
    let mut out = String::with_capacity(line.len() + line.len() / 4);
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '"' {
            out.push(c);
            // Copy the string, escapes included.
            while let Some(s) = chars.next() {
                out.push(s);
                match s {
                    '\\' => {
                        if let Some(escaped) = chars.next() {
                            out.push(escaped);
                        }
                    }
                    '"' => break,
                    _ => {}
                }
            }
        } else if c.is_ascii_alphanumeric() || c == '-' || c == '+' || c == '.' {
            let mut token = String::from(c);
            while let Some(&next) = chars.peek() {
                if next.is_ascii_alphanumeric() || matches!(next, '-' | '+' | '.') {
                    token.push(next);
                    chars.next();
                } else {
                    break;
                }
            }
            if matches!(token.as_str(), "true" | "false" | "null") {
                out.push_str(&token);
            } else {
                out.push('"');
                out.push_str(&token);
                out.push('"');
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `name{a="x",b="y"}`: labels sorted by name (`__name__` as the prefix), values escaped as in
/// the Prometheus text format.
fn canonical_series(labels: &BTreeMap<&str, &str>) -> String {
    let mut out = labels
        .get("__name__")
        .copied()
        .unwrap_or_default()
        .to_string();
    out.push('{');
    let mut first = true;
    for (name, value) in labels {
        if *name == "__name__" {
            continue;
        }
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(name);
        out.push_str("=\"");
        for c in value.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                _ => out.push(c),
            }
        }
        out.push('"');
    }
    out.push('}');
    out
}

/// `-flag=PATH` as an OsString (paths need not be UTF-8).
fn flag_path(flag: &str, path: &Path) -> OsString {
    let mut arg = OsString::from(flag);
    arg.push(path.as_os_str());
    arg
}

/// The body of a successful response, or an error with the status and the body.
async fn expect_success(response: reqwest::Response, method: &str, url: &str) -> Result<String> {
    let status = response.status();
    let body = response
        .text()
        .await
        .with_context(|| format!("{method} {url}: reading the body"))?;
    ensure!(
        status.is_success(),
        "{method} {url}: {status}: {}",
        body.chars().take(1000).collect::<String>()
    );
    Ok(body)
}

/// What to run: the program, its arguments for a port and a directory, extra environment, and
/// the URL that answers 200 once it is ready.
struct Spec<'a> {
    what: &'static str,
    program: PathBuf,
    dir_prefix: &'static str,
    args: &'a (dyn Fn(u16, &Path) -> Vec<OsString> + Sync),
    env: Vec<(OsString, OsString)>,
    ready_url: &'a (dyn Fn(u16) -> String + Sync),
}

/// A child process with its own temp dir (data, `log`), stopped with SIGTERM when dropped.
struct Process {
    what: &'static str,
    program: PathBuf,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    ready_url: String,
    child: Child,
    log: PathBuf,
    // Removed after `child` is stopped (Drop for Process runs before the fields drop).
    dirs: Vec<tempfile::TempDir>,
}

impl Process {
    /// Starts `spec` on a free port until its ready URL answers 200, retrying with a new port
    /// when the process exits because the port was taken since it was probed.
    async fn start(spec: Spec<'_>, client: &reqwest::Client) -> Result<(Process, u16)> {
        let what = spec.what;
        let mut last_error = None;
        for attempt in 1..=START_ATTEMPTS {
            // A fresh directory per attempt: a node that lost the port race may have created
            // its storage already.
            let dir = tempfile::Builder::new()
                .prefix(spec.dir_prefix)
                .tempdir()
                .with_context(|| format!("creating a temp dir for {what}"))?;
            let port = free_port()?;
            let log = dir.path().join("log");
            let args = (spec.args)(port, dir.path());
            let child = spawn(&spec.program, &args, &spec.env, &log)?;
            let mut process = Process {
                what,
                program: spec.program.clone(),
                args,
                env: spec.env.clone(),
                ready_url: (spec.ready_url)(port),
                child,
                log,
                dirs: vec![dir],
            };
            match process.wait_ready(client).await {
                Ok(()) => return Ok((process, port)),
                Err(Exit::PortTaken) => {
                    last_error = Some(anyhow!(
                        "{what}: port {port} was taken (attempt {attempt}):\n{}",
                        process.log_tail()
                    ));
                }
                Err(Exit::Failed(e)) => {
                    return Err(e.context(format!("{what} did not start:\n{}", process.log_tail())));
                }
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow!("{what} did not start")))
    }

    /// Stops the process (if it runs) and starts it again with the same arguments (same port,
    /// same data), appending to the same log.
    async fn restart(&mut self, client: &reqwest::Client) -> Result<()> {
        self.stop();
        self.child = spawn(&self.program, &self.args, &self.env, &self.log)?;
        match self.wait_ready(client).await {
            Ok(()) => Ok(()),
            Err(Exit::PortTaken) => bail!(
                "{} could not get its port back:\n{}",
                self.what,
                self.log_tail()
            ),
            Err(Exit::Failed(e)) => Err(e.context(format!(
                "{} did not restart:\n{}",
                self.what,
                self.log_tail()
            ))),
        }
    }

    async fn wait_ready(&mut self, client: &reqwest::Client) -> Result<(), Exit> {
        let started = Instant::now();
        let url = &self.ready_url;
        loop {
            if let Some(status) = self.child.try_wait().map_err(|e| Exit::Failed(e.into()))? {
                return if self.log().contains("address already in use") {
                    Err(Exit::PortTaken)
                } else {
                    Err(Exit::Failed(anyhow!("it exited ({status})")))
                };
            }
            let last = match client.get(url).timeout(Duration::from_secs(2)).send().await {
                Ok(response) if response.status().is_success() => return Ok(()),
                Ok(response) => format!("{url} answered {}", response.status()),
                Err(e) => format!("{url}: {e}"),
            };
            if started.elapsed() > START_PATIENCE {
                return Err(Exit::Failed(anyhow!(
                    "not ready within {START_PATIENCE:?}: {last}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGTERM, wait up to 10 s, then SIGKILL; always reaps the child.
    fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        // std has no SIGTERM; the kill program sends it (a node stops in about 0.15 s).
        let termed = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if termed {
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                match self.child.try_wait() {
                    Ok(Some(_)) => return,
                    Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                    Err(_) => break,
                }
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn keep(&mut self, dir: tempfile::TempDir) {
        self.dirs.push(dir);
    }

    fn log(&self) -> String {
        self.log_since(0)
    }

    fn log_len(&self) -> u64 {
        std::fs::metadata(&self.log).map_or(0, |m| m.len())
    }

    fn log_since(&self, offset: u64) -> String {
        let mut bytes = Vec::new();
        let read = File::open(&self.log).and_then(|mut f| {
            f.seek(SeekFrom::Start(offset))?;
            f.read_to_end(&mut bytes)
        });
        match read {
            Ok(_) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) => format!("(cannot read {}: {e})", self.log.display()),
        }
    }

    fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop();
    }
}

enum Exit {
    PortTaken,
    Failed(anyhow::Error),
}

/// Starts `program` with stdout and stderr appended to `log`.
fn spawn(
    program: &Path,
    args: &[OsString],
    env: &[(OsString, OsString)],
    log: &Path,
) -> Result<Child> {
    let out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("opening {}", log.display()))?;
    let err = out.try_clone().context("duplicating the log file handle")?;
    Command::new(program)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .with_context(|| format!("starting {}", program.display()))
}

/// A port that was free on 127.0.0.1 a moment ago (the caller retries if it is taken since).
fn free_port() -> Result<u16> {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0 to find a port")?;
    Ok(listener
        .local_addr()
        .context("reading the bound port")?
        .port())
}
