//! The HTTP client of a VictoriaMetrics or Prometheus-compatible server, as an export source
//! or an import target: where each API lives for each kind of server, credentials, extra
//! headers, TLS, timeouts, and what its answers mean.
//!
//! Paths: `Single`, `VMAuth` and `Prometheus` answer under the URL itself
//! (`<url>/api/v1/export`); a `Cluster` under its tenant's path
//! (`<url>/select/<tenant>/prometheus/…` to read, `<url>/insert/<tenant>/prometheus/…` to
//! write), the only place VictoriaMetrics documents tenancy.
//!
//! Every text a server sends back is redacted ([`super::redact::Secrets`]) before it becomes
//! part of an error: vmauth, for one, echoes the Basic header it refused.

use super::redact::Secrets;
use super::windows::{Window, seconds};
use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use reqwest::header::{
    ACCEPT_ENCODING, AUTHORIZATION, CONTENT_ENCODING, HeaderMap, HeaderName, HeaderValue,
};
use reqwest::{Method, StatusCode};
use std::io::Read;
use std::time::Duration;

/// Bytes of a server's error answer kept for the message.
const MAX_ANSWER_BYTES: usize = 512;
/// What vmauth answers (HTTP 400) for credentials it does not know.
const VMAUTH_UNKNOWN_TOKEN: &str = "cannot find the provided auth token";

/// The flavour of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Single,
    Cluster,
    VMAuth,
    Prometheus,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Single => "Single",
            Kind::Cluster => "Cluster",
            Kind::VMAuth => "VMAuth",
            Kind::Prometheus => "Prometheus",
        }
    }
}

impl From<crate::crd::metrics_export::SourceKind> for Kind {
    fn from(kind: crate::crd::metrics_export::SourceKind) -> Self {
        use crate::crd::metrics_export::SourceKind;
        match kind {
            SourceKind::Single => Kind::Single,
            SourceKind::Cluster => Kind::Cluster,
            SourceKind::VMAuth => Kind::VMAuth,
            SourceKind::Prometheus => Kind::Prometheus,
        }
    }
}

/// Credentials.
#[derive(Clone, Default)]
pub enum Auth {
    #[default]
    None,
    Basic {
        username: String,
        password: String,
    },
    Bearer(String),
}

/// Certificate verification.
#[derive(Clone, Default)]
pub enum Tls {
    /// The built-in roots: the web PKI's and the system's.
    #[default]
    Verify,
    /// The built-in roots plus these PEM certificates: CAs, or the server's own certificate
    /// (see [`crate::tls`]).
    VerifyWith(Vec<u8>),
    /// No verification (lab servers only).
    Insecure,
}

/// Everything needed to reach one server.
#[derive(Clone)]
pub struct Endpoint {
    /// Base URL, without credentials, query or fragment.
    pub url: String,
    pub kind: Kind,
    /// `accountID[:projectID]`, for `Cluster`.
    pub tenant: Option<String>,
    pub auth: Auth,
    /// Extra headers; their values are treated as secrets.
    pub headers: Vec<(String, String)>,
    pub tls: Tls,
    /// Longest a request may take, its body included.
    pub timeout: Duration,
}

// By hand: credentials and header values never show.
impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("url", &self.url)
            .field("kind", &self.kind)
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid source URL {url:?}: {problem}")]
    Url { url: String, problem: String },
    #[error("invalid header {name:?}: {problem}")]
    Header { name: String, problem: String },
    #[error("invalid CA certificates for {url}: {problem}")]
    Certificates { url: String, problem: String },
    #[error("{url}: a Cluster server needs a tenant (accountID or accountID:projectID)")]
    NoTenant { url: String },
    #[error("failed to reach {url}: {message}")]
    Connect { url: String, message: String },
    /// The connection failed after the request was (perhaps) sent.
    #[error("the connection to {url} was lost: {message}")]
    ConnectionLost { url: String, message: String },
    #[error("{url} did not answer within {seconds} s")]
    Timeout { url: String, seconds: u64 },
    #[error("{url} refused the credentials (HTTP {status}): {answer}")]
    Unauthorized {
        url: String,
        status: u16,
        answer: String,
    },
    #[error("{url} answered HTTP {status}: {answer}")]
    Status {
        url: String,
        status: u16,
        answer: String,
    },
}

impl Error {
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Url { .. } | Error::Header { .. } | Error::NoTenant { .. } => "InvalidSource",
            Error::Certificates { .. } => "InvalidCertificates",
            Error::Connect { .. } => "SourceUnreachable",
            Error::ConnectionLost { .. } => "ConnectionLost",
            Error::Timeout { .. } => "Timeout",
            Error::Unauthorized { .. } => "Unauthorized",
            Error::Status { .. } => "HttpError",
        }
    }

    /// Worth another attempt: the server may answer later (connection, timeout, 429, 5xx).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Connect { .. } | Error::ConnectionLost { .. } | Error::Timeout { .. } => true,
            Error::Status { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }

    /// The request or the settings are wrong: retrying cannot help.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            Error::Url { .. }
                | Error::Header { .. }
                | Error::Certificates { .. }
                | Error::NoTenant { .. }
                | Error::Unauthorized { .. }
        ) || matches!(self, Error::Status { status, .. } if (400..500).contains(status) && *status != 429)
    }

    /// The HTTP status of a refused request.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Status { status, .. } | Error::Unauthorized { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// What a probe of `/api/v1/export` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// Raw export works.
    Export,
    /// Export is not available here, but queries are: why, in words.
    QueryRangeOnly(String),
}

/// An answer's body as it arrives, and whether it is gzip-compressed.
pub struct Body {
    pub gzip: bool,
    pub chunks: BoxStream<'static, Result<Bytes, Error>>,
}

/// A connection to one server (cheap to clone: the connection pool is shared).
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    endpoint: Endpoint,
    /// Where reads go (`…/select/<tenant>/prometheus` for a cluster).
    select: String,
    /// Where writes go (`…/insert/<tenant>/prometheus` for a cluster).
    insert: String,
    secrets: Secrets,
}

impl Client {
    pub fn new(endpoint: Endpoint) -> Result<Client, Error> {
        let base = endpoint.url.trim_end_matches('/').to_string();
        let parsed = url::Url::parse(&base).map_err(|e| Error::Url {
            url: base.clone(),
            problem: e.to_string(),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(Error::Url {
                url: base,
                problem: "only http:// and https:// are supported".into(),
            });
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(Error::Url {
                url: parsed.host_str().unwrap_or_default().to_string(),
                problem: "credentials belong in the auth settings, not in the URL".into(),
            });
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(Error::Url {
                url: base,
                problem: "a base URL takes no query or fragment".into(),
            });
        }
        let (select, insert) = match (endpoint.kind, &endpoint.tenant) {
            (Kind::Cluster, Some(tenant)) => (
                format!("{base}/select/{tenant}/prometheus"),
                format!("{base}/insert/{tenant}/prometheus"),
            ),
            (Kind::Cluster, None) => return Err(Error::NoTenant { url: base }),
            _ => (base.clone(), base.clone()),
        };

        let mut secrets = Secrets::new();
        let mut headers = HeaderMap::new();
        match &endpoint.auth {
            Auth::None => {}
            Auth::Basic { username, password } => secrets.basic(username, password),
            Auth::Bearer(token) => secrets.add(token),
        }
        for (name, value) in &endpoint.headers {
            secrets.add(value);
            let invalid = |problem: String| Error::Header {
                name: name.clone(),
                problem,
            };
            let name =
                HeaderName::from_bytes(name.as_bytes()).map_err(|e| invalid(e.to_string()))?;
            let mut value = HeaderValue::from_str(value)
                .map_err(|_| invalid("the value holds characters a header cannot carry".into()))?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        let mut builder = reqwest::Client::builder()
            .default_headers(headers)
            .connect_timeout(endpoint.timeout.min(Duration::from_secs(30)))
            .user_agent(concat!("vctp/", env!("CARGO_PKG_VERSION")));
        match &endpoint.tls {
            Tls::Verify => {}
            Tls::VerifyWith(pem) => {
                let config = crate::tls::client_config(pem, crate::tls::Roots::AlsoBuiltIn)
                    .map_err(|e| Error::Certificates {
                        url: base.clone(),
                        problem: format!("the CA bundle {e}"),
                    })?;
                builder = builder.use_preconfigured_tls(config);
            }
            Tls::Insecure => builder = builder.danger_accept_invalid_certs(true),
        }
        let http = builder.build().map_err(|e| Error::Certificates {
            url: base,
            problem: e.to_string(),
        })?;
        Ok(Client {
            http,
            endpoint,
            select,
            insert,
            secrets,
        })
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// `text` with this connection's secrets taken out, cut to `max` bytes.
    pub fn redact(&self, text: &str, max: usize) -> String {
        self.secrets.redact(text, max)
    }

    /// Whether `/api/v1/export` is served, found with one tiny request over the last second
    /// of `window`: 404/405/501, a 400 "missing route" or "unsupported path", or a 403 while
    /// `/api/v1/query` answers all mean "use query_range". A refused credential is an error.
    pub async fn probe_export(&self, selector: &str, window: Window) -> Result<Probe, Error> {
        if self.endpoint.kind == Kind::Prometheus {
            return Ok(Probe::QueryRangeOnly(
                "Prometheus has no /api/v1/export".into(),
            ));
        }
        let probe = Window {
            start_ms: (window.end_ms - 1_000).max(window.start_ms),
            end_ms: window.end_ms,
        };
        let refused = match self.export(&[selector.to_string()], None, probe).await {
            Ok(mut body) => {
                // Drain the few bytes so the connection can be reused.
                while let Some(chunk) = body.chunks.next().await {
                    chunk?;
                }
                return Ok(Probe::Export);
            }
            Err(e) => e,
        };
        let answer = match &refused {
            Error::Status { answer, .. } => answer.to_lowercase(),
            _ => return Err(refused),
        };
        match refused.status() {
            Some(404 | 405 | 501) => Ok(Probe::QueryRangeOnly(format!(
                "/api/v1/export is not served here: {refused}"
            ))),
            Some(400)
                if answer.contains("missing route") || answer.contains("unsupported path") =>
            {
                Ok(Probe::QueryRangeOnly(format!(
                    "/api/v1/export is not routed here: {refused}"
                )))
            }
            Some(403) => {
                self.query("vector(1)").await?;
                Ok(Probe::QueryRangeOnly(format!(
                    "/api/v1/export is forbidden here while queries are allowed: {refused}"
                )))
            }
            _ => Err(refused),
        }
    }

    /// `/api/v1/export` of `window` for `selectors` (OR-ed), each AND-ed with
    /// `extra_filter`, gzip-compressed, at most [`super::line::MAX_ROWS_PER_LINE`] samples a
    /// line.
    pub async fn export(
        &self,
        selectors: &[String],
        extra_filter: Option<&str>,
        window: Window,
    ) -> Result<Body, Error> {
        let (start, end) = window.export_bounds();
        let mut form: Vec<(&str, String)> =
            selectors.iter().map(|s| ("match[]", s.clone())).collect();
        if let Some(filter) = extra_filter {
            form.push(("extra_filters[]", filter.to_string()));
        }
        form.push(("start", start));
        form.push(("end", end));
        form.push((
            "max_rows_per_line",
            super::line::MAX_ROWS_PER_LINE.to_string(),
        ));
        self.send_form("/api/v1/export", &form).await
    }

    /// `/api/v1/query_range` of `query` from `start_ms` to `end_ms` (both points) every
    /// `step_ms`.
    pub async fn query_range(
        &self,
        query: &str,
        extra_filter: Option<&str>,
        (start_ms, end_ms): (i64, i64),
        step_ms: i64,
    ) -> Result<Body, Error> {
        let mut form = vec![
            ("query", query.to_string()),
            ("start", seconds(start_ms)),
            ("end", seconds(end_ms)),
            ("step", seconds(step_ms)),
        ];
        if let Some(filter) = extra_filter {
            form.push(("extra_filters[]", filter.to_string()));
        }
        self.send_form("/api/v1/query_range", &form).await
    }

    /// An instant query, answered whole (small: probes and discovery).
    pub async fn query(&self, query: &str) -> Result<serde_json::Value, Error> {
        let body = self
            .send_form("/api/v1/query", &[("query", query.to_string())])
            .await?;
        self.json(body, "/api/v1/query").await
    }

    /// `/api/v1/series` of `selector` within `window`: the label sets, answered whole.
    pub async fn series(&self, selector: &str, window: Window) -> Result<serde_json::Value, Error> {
        let (start, end) = window.export_bounds();
        let form = [
            ("match[]", selector.to_string()),
            ("start", start),
            ("end", end),
        ];
        let body = self.send_form("/api/v1/series", &form).await?;
        self.json(body, "/api/v1/series").await
    }

    /// Sends one gzip-compressed body of export lines to `/api/v1/import`.
    pub async fn import(
        &self,
        gzipped: Bytes,
        extra_labels: &[(String, String)],
    ) -> Result<(), Error> {
        let url = format!("{}/api/v1/import", self.insert);
        let query: Vec<(&str, String)> = extra_labels
            .iter()
            .map(|(k, v)| ("extra_label", format!("{k}={v}")))
            .collect();
        let request = self
            .request(Method::POST, &url)
            .query(&query)
            .header(CONTENT_ENCODING, "gzip")
            .body(gzipped);
        let response = self.execute(request, &url).await?;
        let _ = response.bytes().await;
        Ok(())
    }

    /// The server's retention, where it tells: VictoriaMetrics' `-retentionPeriod` from
    /// `/flags`, Prometheus' `storage.tsdb.retention.time` from `/api/v1/status/flags`.
    pub async fn retention(&self) -> Result<Option<Duration>, Error> {
        if self.endpoint.kind == Kind::Prometheus {
            let body = self
                .get(&format!("{}/api/v1/status/flags", self.select))
                .await?;
            let flags = self.json(body, "/api/v1/status/flags").await?;
            return Ok(flags["data"]["storage.tsdb.retention.time"]
                .as_str()
                .and_then(parse_retention));
        }
        let base = self.endpoint.url.trim_end_matches('/');
        let url = format!("{base}/flags");
        let body = match self.get(&url).await {
            Ok(body) => body,
            // vmauth and vmselect's tenant paths do not route /flags.
            Err(e) if e.status().is_some_and(|s| (400..500).contains(&s)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let text = collect(body).await?;
        Ok(String::from_utf8_lossy(&text).lines().find_map(|line| {
            let value = line.trim().strip_prefix("-retentionPeriod=")?;
            parse_retention(value.trim_matches('"'))
        }))
    }

    /// Asks a single node to make just-imported samples searchable (best effort: other
    /// servers do it within seconds on their own).
    pub async fn force_flush(&self) {
        let url = format!(
            "{}/internal/force_flush",
            self.endpoint.url.trim_end_matches('/')
        );
        if let Err(e) = self.get(&url).await {
            tracing::debug!(error = %e, "force_flush not available");
        }
    }

    async fn get(&self, url: &str) -> Result<Body, Error> {
        let request = self
            .request(Method::GET, url)
            .header(ACCEPT_ENCODING, "gzip");
        let response = self.execute(request, url).await?;
        Ok(self.body(response, url))
    }

    async fn send_form(&self, path: &str, form: &[(&str, String)]) -> Result<Body, Error> {
        let url = format!("{}{path}", self.select);
        let request = self
            .request(Method::POST, &url)
            .header(ACCEPT_ENCODING, "gzip")
            .form(form);
        let response = self.execute(request, &url).await?;
        Ok(self.body(response, &url))
    }

    fn request(&self, method: Method, url: &str) -> reqwest::RequestBuilder {
        let request = self
            .http
            .request(method, url)
            .timeout(self.endpoint.timeout);
        match &self.endpoint.auth {
            Auth::None => request,
            Auth::Basic { username, password } => request.basic_auth(username, Some(password)),
            Auth::Bearer(token) => {
                let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
                    .unwrap_or_else(|_| HeaderValue::from_static("Bearer"));
                value.set_sensitive(true);
                request.header(AUTHORIZATION, value)
            }
        }
    }

    /// Sends `request`; a refusal becomes an error carrying the redacted answer.
    async fn execute(
        &self,
        request: reqwest::RequestBuilder,
        url: &str,
    ) -> Result<reqwest::Response, Error> {
        let response = request.send().await.map_err(|e| self.transport(e, url))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let gzip = is_gzip(response.headers());
        let answer = match response.bytes().await {
            Ok(bytes) => {
                let text = if gzip { gunzip(&bytes) } else { bytes.to_vec() };
                self.redact(String::from_utf8_lossy(&text).trim(), MAX_ANSWER_BYTES)
            }
            Err(_) => String::new(),
        };
        let url = url.to_string();
        let status_code = status.as_u16();
        if status == StatusCode::UNAUTHORIZED
            || (status == StatusCode::BAD_REQUEST && answer.contains(VMAUTH_UNKNOWN_TOKEN))
        {
            return Err(Error::Unauthorized {
                url,
                status: status_code,
                answer,
            });
        }
        Err(Error::Status {
            url,
            status: status_code,
            answer,
        })
    }

    fn body(&self, response: reqwest::Response, url: &str) -> Body {
        let gzip = is_gzip(response.headers());
        let secrets = self.secrets.clone();
        let (url, timeout) = (url.to_string(), self.endpoint.timeout);
        let chunks = response
            .bytes_stream()
            .map_err(move |e| transport_error(&secrets, e, &url, timeout))
            .boxed();
        Body { gzip, chunks }
    }

    fn transport(&self, e: reqwest::Error, url: &str) -> Error {
        transport_error(&self.secrets, e, url, self.endpoint.timeout)
    }

    async fn json(&self, body: Body, what: &str) -> Result<serde_json::Value, Error> {
        let bytes = collect(body).await?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Status {
            url: format!("{}{what}", self.select),
            status: 200,
            answer: format!("not JSON: {e}"),
        })
    }
}

fn transport_error(secrets: &Secrets, e: reqwest::Error, url: &str, timeout: Duration) -> Error {
    if e.is_timeout() {
        return Error::Timeout {
            url: url.to_string(),
            seconds: timeout.as_secs(),
        };
    }
    // The whole chain: reqwest's own text says only "error sending request".
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    let (url, message) = (url.to_string(), secrets.redact(&message, MAX_ANSWER_BYTES));
    if e.is_connect() {
        Error::Connect { url, message }
    } else {
        Error::ConnectionLost { url, message }
    }
}

fn is_gzip(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_ENCODING)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"))
}

/// A small gzip body (an error answer), or what of it decompresses.
fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut text = Vec::new();
    let mut decoder = flate2::read::MultiGzDecoder::new(bytes).take(64 * 1024);
    let _ = std::io::Read::read_to_end(&mut decoder, &mut text);
    text
}

/// A whole (small) body, decompressed.
async fn collect(body: Body) -> Result<Vec<u8>, Error> {
    let gzip = body.gzip;
    let chunks: Vec<Bytes> = body.chunks.try_collect().await?;
    let raw = chunks.concat();
    if !gzip {
        return Ok(raw);
    }
    let mut text = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(&raw[..]), &mut text)
        .map_err(|e| Error::Connect {
            url: String::new(),
            message: format!("invalid gzip answer: {e}"),
        })?;
    Ok(text)
}

/// A retention as VictoriaMetrics (`100y`, `3d`, `2w`, `12h`, a bare number = months) or
/// Prometheus (`15d`, `1y`) writes it.
pub fn parse_retention(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let unit_seconds = match unit {
        "" | "M" => 31.0 * 86_400.0,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3_600.0,
        "d" => 86_400.0,
        "w" => 7.0 * 86_400.0,
        "y" => 365.0 * 86_400.0,
        _ => return None,
    };
    let seconds = number * unit_seconds;
    // `try_`: a finite figure can still overflow a Duration (`-retentionPeriod=1e15y`).
    Duration::try_from_secs_f64(seconds)
        .ok()
        .filter(|d| !d.is_zero())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(kind: Kind, tenant: Option<&str>) -> Endpoint {
        Endpoint {
            url: "http://127.0.0.1:8481/".into(),
            kind,
            tenant: tenant.map(str::to_string),
            auth: Auth::Basic {
                username: "reader".into(),
                password: "s3cret-pass".into(),
            },
            headers: vec![("X-Api-Key".into(), "key-123456".into())],
            tls: Tls::Verify,
            timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn a_cluster_reads_and_writes_under_its_tenant() {
        let client = Client::new(endpoint(Kind::Cluster, Some("1:2"))).unwrap();
        assert_eq!(client.select, "http://127.0.0.1:8481/select/1:2/prometheus");
        assert_eq!(client.insert, "http://127.0.0.1:8481/insert/1:2/prometheus");
        let single = Client::new(endpoint(Kind::Single, None)).unwrap();
        assert_eq!(single.select, "http://127.0.0.1:8481");
        let err = Client::new(endpoint(Kind::Cluster, None)).err().unwrap();
        assert_eq!(err.reason(), "InvalidSource");
    }

    #[test]
    fn urls_with_credentials_are_refused_without_showing_them() {
        let mut with_password = endpoint(Kind::Single, None);
        with_password.url = "http://user:hunter22@vm:8428".into();
        let err = Client::new(with_password).err().unwrap().to_string();
        assert!(!err.contains("hunter22"), "{err}");
        let mut ftp = endpoint(Kind::Single, None);
        ftp.url = "ftp://vm".into();
        assert!(Client::new(ftp).is_err());
    }

    #[test]
    fn secrets_never_show_in_the_debug_form_or_redacted_answers() {
        let client = Client::new(endpoint(Kind::Single, None)).unwrap();
        let shown = format!("{:?}", client.endpoint());
        assert!(
            !shown.contains("s3cret") && !shown.contains("key-123456"),
            "{shown}"
        );
        let answer = client.redact("bad token s3cret-pass and key-123456", 200);
        assert!(
            !answer.contains("s3cret-pass") && !answer.contains("key-123456"),
            "{answer}"
        );
    }

    #[test]
    fn transient_failures_are_told_from_refusals() {
        let status = |status| Error::Status {
            url: "u".into(),
            status,
            answer: String::new(),
        };
        assert!(status(503).is_transient() && status(429).is_transient());
        assert!(!status(400).is_transient() && status(400).is_bad_input());
        assert!(!status(429).is_bad_input());
        let unauthorized = Error::Unauthorized {
            url: "u".into(),
            status: 401,
            answer: String::new(),
        };
        assert!(!unauthorized.is_transient() && unauthorized.is_bad_input());
    }

    #[test]
    fn retentions_read_as_victoriametrics_and_prometheus_write_them() {
        let days = |d: u64| Some(Duration::from_secs(d * 86_400));
        assert_eq!(parse_retention("100y"), days(36_500));
        assert_eq!(parse_retention("1"), days(31));
        assert_eq!(parse_retention("15d"), days(15));
        assert_eq!(parse_retention("2w"), days(14));
        assert_eq!(parse_retention("12h"), Some(Duration::from_secs(43_200)));
        assert_eq!(parse_retention("x"), None);
        assert_eq!(parse_retention("0"), None);
        assert_eq!(parse_retention("1000000000000y"), None);
    }
}
