//! One export, resolved: what to read from where, over which range, in which windows, how
//! to obfuscate it and where the bundle goes. The Kubernetes Job builds it from a
//! `MetricsExport` and its Secrets, the CLI from its flags; both then run the same
//! [`crate::jobs::export::run`].

use super::client::Endpoint;
use super::obfuscate::{Key, Settings};
use super::windows::{self, Window};
use crate::crd::metrics_export::ExportMethod;
use crate::objstore::Objects;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// Components and jobs whose series are exported, found on the source.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Discover {
    pub components: Vec<String>,
    pub jobs: Vec<String>,
}

/// Bundles of an export kept after a new one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Retention {
    pub keep_last: Option<u32>,
    pub max_age_days: Option<u32>,
}

/// Where the output goes.
pub enum Output {
    /// A bundle `<prefix>/<run_id>.zip` in `objects`, with its parts under
    /// `<prefix>/<run_id>.parts/` while the run lasts.
    Bundle {
        objects: Objects,
        prefix: String,
        retention: Retention,
    },
    /// The rewritten lines on standard output, nothing stored.
    Stdout,
}

/// One export.
pub struct ExportPlan {
    /// Names the bundle and its parts; a retried or resumed run keeps it.
    pub run_id: String,
    pub source: Endpoint,
    pub method: ExportMethod,
    pub selectors: Vec<String>,
    pub jobs: Vec<String>,
    pub namespaces: Vec<String>,
    pub discover: Option<Discover>,
    pub queries: Vec<String>,
    pub range: Window,
    pub window_ms: i64,
    pub step_ms: i64,
    /// Attempts after the first for a transient failure of one request.
    pub retries: u32,
    pub obfuscation: Settings,
    pub key: Option<Key>,
    pub output: Output,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Windows(#[from] windows::Error),
    #[error(
        "{what} is not in the environment ({variable}): the operator passes it from the Secret the resource names"
    )]
    MissingCredential { what: String, variable: String },
    #[error(transparent)]
    Key(#[from] super::obfuscate::Error),
    #[error("nothing to export: give selectors, jobs, namespaces, discover or queries")]
    NothingSelected,
    #[error("invalid run id {run_id:?}: {problem}")]
    RunId {
        run_id: String,
        problem: &'static str,
    },
    #[error("queries are read with query_range, but the method is Export")]
    QueriesNeedQueryRange,
}

impl Error {
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Windows(e) => e.reason(),
            Error::MissingCredential { .. } => "MissingCredential",
            Error::Key(e) => e.reason(),
            Error::NothingSelected => "NothingSelected",
            Error::RunId { .. } => "InvalidRunId",
            Error::QueriesNeedQueryRange => "InvalidMethod",
        }
    }
}

/// The settings that decide what a run writes, hashed: a resumed run with another hash
/// starts over. Credentials, timeouts and retries are left out (they change how, not what).
#[derive(Serialize)]
struct Hashed<'a> {
    format: u32,
    url: &'a str,
    kind: &'static str,
    tenant: Option<&'a str>,
    method: &'static str,
    selectors: &'a [String],
    jobs: &'a [String],
    namespaces: &'a [String],
    discover: Option<&'a Discover>,
    queries: &'a [String],
    range: Window,
    window_ms: i64,
    step_ms: i64,
    ips: bool,
    jobs_obfuscated: bool,
    labels: &'a [String],
    drop_labels: &'a [String],
    ips_in_any_label: bool,
    key_fingerprint: Option<String>,
}

impl ExportPlan {
    /// Checks what the types cannot say.
    pub fn check(&self) -> Result<(), Error> {
        if self.selectors.is_empty()
            && self.jobs.is_empty()
            && self.namespaces.is_empty()
            && self.discover.is_none()
            && self.queries.is_empty()
        {
            return Err(Error::NothingSelected);
        }
        if !self.queries.is_empty() && self.method == ExportMethod::Export {
            return Err(Error::QueriesNeedQueryRange);
        }
        check_run_id(&self.run_id)?;
        windows::plan(self.range, self.window_ms)?;
        windows::check_step(self.step_ms)?;
        Ok(())
    }

    /// The hash of what the run writes (see [`Hashed`]).
    pub fn spec_hash(&self) -> String {
        let method = match self.method {
            ExportMethod::Auto => "Auto",
            ExportMethod::Export => "Export",
            ExportMethod::QueryRange => "QueryRange",
        };
        let hashed = Hashed {
            format: super::checkpoint::FORMAT,
            url: &self.source.url,
            kind: self.source.kind.name(),
            tenant: self.source.tenant.as_deref(),
            method,
            selectors: &self.selectors,
            jobs: &self.jobs,
            namespaces: &self.namespaces,
            discover: self.discover.as_ref(),
            queries: &self.queries,
            range: self.range,
            window_ms: self.window_ms,
            step_ms: self.step_ms,
            ips: self.obfuscation.ips,
            jobs_obfuscated: self.obfuscation.jobs,
            labels: &self.obfuscation.labels,
            drop_labels: &self.obfuscation.drop_labels,
            ips_in_any_label: self.obfuscation.ips_in_any_label,
            key_fingerprint: self.key.as_ref().map(Key::fingerprint),
        };
        let json = serde_json::to_vec(&hashed).unwrap_or_default();
        let digest = Sha256::digest(&json);
        digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
    }
}

/// Environment of an export Job's container: the operator fills it from the Secrets the
/// `MetricsExport` names (`secretKeyRef`), so the Job itself reads no Secret.
pub mod env {
    pub const SOURCE_USERNAME: &str = "VCTP_SOURCE_USERNAME";
    pub const SOURCE_PASSWORD: &str = "VCTP_SOURCE_PASSWORD";
    pub const SOURCE_TOKEN: &str = "VCTP_SOURCE_TOKEN";
    /// `VCTP_SOURCE_HEADER_<n>`: the value of `source.headers[n]` taken from a Secret.
    pub const SOURCE_HEADER_PREFIX: &str = "VCTP_SOURCE_HEADER_";
    /// PEM CA certificates to trust for the source.
    pub const SOURCE_CA_BUNDLE: &str = "VCTP_SOURCE_CA_BUNDLE";
    pub const OBFUSCATION_KEY: &str = "VCTP_OBFUSCATION_KEY";
    /// `VCTP_STORE_<option>`: object_store options of the destination, from its Secret.
    pub const STORE_OPTION_PREFIX: &str = "VCTP_STORE_";
}

/// A `MetricsExport`'s spec as a plan for the run `run_id` over `range`, with credentials
/// read through `env` (see [`env`]) and the bundle going to `output`.
pub fn from_spec(
    spec: &crate::crd::MetricsExportSpec,
    run_id: &str,
    range: Window,
    env: impl Fn(&str) -> Option<String>,
    output: Output,
) -> Result<ExportPlan, Error> {
    use super::client::{Auth, Tls};
    let missing = |what: &str, variable: &str| Error::MissingCredential {
        what: what.to_string(),
        variable: variable.to_string(),
    };
    let source = &spec.source;
    let auth = match &source.auth_secret_ref {
        None => Auth::None,
        Some(secret) if secret.token_key.is_some() => Auth::Bearer(
            env(env::SOURCE_TOKEN)
                .ok_or_else(|| missing("the source's bearer token", env::SOURCE_TOKEN))?,
        ),
        Some(_) => Auth::Basic {
            username: env(env::SOURCE_USERNAME)
                .ok_or_else(|| missing("the source's user name", env::SOURCE_USERNAME))?,
            password: env(env::SOURCE_PASSWORD)
                .ok_or_else(|| missing("the source's password", env::SOURCE_PASSWORD))?,
        },
    };
    let mut headers = Vec::new();
    for (index, header) in source.headers.iter().enumerate() {
        let value = match (&header.value, &header.value_from) {
            (Some(value), _) => value.clone(),
            (None, _) => {
                let variable = format!("{}{index}", env::SOURCE_HEADER_PREFIX);
                env(&variable)
                    .ok_or_else(|| missing(&format!("header {}", header.name), &variable))?
            }
        };
        headers.push((header.name.clone(), value));
    }
    let tls = match &source.tls {
        Some(tls) if tls.insecure => Tls::Insecure,
        Some(tls)
            if tls.ca_bundle_secret_ref.is_some() || tls.ca_bundle_config_map_ref.is_some() =>
        {
            Tls::VerifyWith(
                env(env::SOURCE_CA_BUNDLE)
                    .ok_or_else(|| missing("the source's CA bundle", env::SOURCE_CA_BUNDLE))?
                    .into_bytes(),
            )
        }
        _ => Tls::Verify,
    };
    let obfuscation = &spec.obfuscation;
    let key = match (&obfuscation.key_secret_ref, env(env::OBFUSCATION_KEY)) {
        (None, _) => None,
        (Some(_), Some(text)) => Some(Key::from_text(&text)?),
        (Some(_), None) => return Err(missing("the obfuscation key", env::OBFUSCATION_KEY)),
    };
    let window_ms = match spec.batch.window_seconds {
        Some(seconds) => i64::from(seconds) * 1000,
        None => windows::default_window_ms(range),
    };
    let plan = ExportPlan {
        run_id: run_id.to_string(),
        source: Endpoint {
            url: source.url.clone(),
            kind: source.kind.into(),
            tenant: source.tenant.clone(),
            auth,
            headers,
            tls,
            timeout: std::time::Duration::from_secs(
                u64::try_from(spec.batch.timeout_seconds).unwrap_or(300),
            ),
        },
        method: source.method,
        selectors: spec.selectors.clone(),
        jobs: spec.jobs.clone(),
        namespaces: spec.namespaces.clone(),
        discover: spec.discover.as_ref().map(|d| Discover {
            components: d.components.clone(),
            jobs: d.jobs.clone(),
        }),
        queries: spec.queries.clone(),
        range,
        window_ms,
        step_ms: i64::from(spec.batch.step_seconds) * 1000,
        retries: u32::try_from(spec.batch.retries).unwrap_or(0),
        obfuscation: Settings {
            ips: obfuscation.ips,
            jobs: obfuscation.jobs,
            labels: obfuscation.labels.clone(),
            drop_labels: obfuscation.drop_labels.clone(),
            ips_in_any_label: obfuscation.ips_in_any_label,
        },
        key,
        output,
    };
    plan.check()?;
    Ok(plan)
}

/// Where a MetricsExport's bundles go: `destination.prefix`, else `exports/<namespace>/<name>`;
/// and how many are kept.
pub fn bundle_place(
    destination: &crate::crd::metrics_export::Destination,
    namespace: &str,
    name: &str,
) -> (String, Retention) {
    let prefix = destination
        .prefix
        .clone()
        .unwrap_or_else(|| format!("exports/{namespace}/{name}"));
    let retention = destination
        .retention
        .as_ref()
        .map_or(Retention::default(), |r| Retention {
            keep_last: r.keep_last.and_then(|n| u32::try_from(n).ok()),
            max_age_days: r.max_age_days.and_then(|n| u32::try_from(n).ok()),
        });
    (prefix, retention)
}

/// The object_store options found in the environment under [`env::STORE_OPTION_PREFIX`].
pub fn store_options_from_env(
    vars: impl Iterator<Item = (String, String)>,
) -> std::collections::BTreeMap<String, String> {
    vars.filter_map(|(name, value)| {
        name.strip_prefix(env::STORE_OPTION_PREFIX)
            .filter(|key| !key.is_empty())
            .map(|key| (key.to_string(), value))
    })
    .collect()
}

/// A run id is one object key segment: letters, digits, `.`, `_`, `-`, not starting with
/// `.`, at most 100 characters.
pub fn check_run_id(run_id: &str) -> Result<(), Error> {
    let invalid = |problem| Error::RunId {
        run_id: run_id.to_string(),
        problem,
    };
    if run_id.is_empty() || run_id.len() > 100 {
        return Err(invalid("it must be 1 to 100 characters"));
    }
    if run_id.starts_with('.') {
        return Err(invalid("it must not start with '.'"));
    }
    if !run_id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(invalid(
            "only letters, digits, '.', '_' and '-' are allowed",
        ));
    }
    Ok(())
}

/// A point in time as flags and arguments give it: RFC 3339 or Unix seconds; in Unix ms.
pub fn parse_time(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<i64>() {
        return seconds.checked_mul(1000);
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// A duration as flags give it: a number and a unit `ms`, `s`, `m`, `h`, `d` or `w`
/// (`90s`, `24h`, `7d`); in ms.
pub fn parse_duration(text: &str) -> Option<i64> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let number: i64 = number.parse().ok()?;
    let unit_ms = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        _ => return None,
    };
    number.checked_mul(unit_ms).filter(|ms| *ms > 0)
}

/// The run id of a run standing for time `at`: `YYYYMMDDTHHMMSSZ`.
pub fn run_id_at(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y%m%dT%H%M%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::client::{Auth, Kind, Tls};
    use std::time::Duration;

    fn plan() -> ExportPlan {
        ExportPlan {
            run_id: "20261130T000000Z".into(),
            source: Endpoint {
                url: "http://vm:8428".into(),
                kind: Kind::Single,
                tenant: None,
                auth: Auth::Bearer("t".into()),
                headers: vec![],
                tls: Tls::Verify,
                timeout: Duration::from_secs(60),
            },
            method: ExportMethod::Auto,
            selectors: vec!["{job=\"a\"}".into()],
            jobs: vec![],
            namespaces: vec![],
            discover: None,
            queries: vec![],
            range: Window::new(0, 3_600_000).unwrap(),
            window_ms: 300_000,
            step_ms: 30_000,
            retries: 3,
            obfuscation: Settings::default(),
            key: None,
            output: Output::Stdout,
        }
    }

    #[test]
    fn the_hash_changes_with_what_is_written_not_with_how() {
        let base = plan().spec_hash();
        let mut other = plan();
        other.source.auth = Auth::None;
        other.retries = 9;
        other.source.timeout = Duration::from_secs(1);
        assert_eq!(other.spec_hash(), base);
        let mut other = plan();
        other.selectors.push("{job=\"b\"}".into());
        assert_ne!(other.spec_hash(), base);
        let mut other = plan();
        other.range = Window::new(0, 7_200_000).unwrap();
        assert_ne!(other.spec_hash(), base);
        assert_eq!(base.len(), 32);
    }

    #[test]
    fn a_plan_without_selection_or_with_a_bad_run_id_is_refused() {
        let mut empty = plan();
        empty.selectors.clear();
        assert_eq!(empty.check().unwrap_err().reason(), "NothingSelected");
        for bad in ["", ".x", "a/b", "a b"] {
            let mut p = plan();
            p.run_id = bad.into();
            assert_eq!(p.check().unwrap_err().reason(), "InvalidRunId", "{bad:?}");
        }
        assert!(plan().check().is_ok());
        let at = chrono::DateTime::from_timestamp(1_795_996_800, 0).unwrap();
        assert_eq!(run_id_at(at), "20261130T000000Z");
    }

    #[test]
    fn times_and_durations_read_as_flags_give_them() {
        assert_eq!(parse_time("1795996800"), Some(1_795_996_800_000));
        assert_eq!(
            parse_time("2026-11-30T01:00:00+01:00"),
            Some(1_795_996_800_000)
        );
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(parse_duration("24h"), Some(86_400_000));
        assert_eq!(parse_duration("90s"), Some(90_000));
        assert_eq!(parse_duration("7d"), Some(604_800_000));
        for bad in ["", "h", "5", "5y", "0s", "-1h"] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
    }
}
