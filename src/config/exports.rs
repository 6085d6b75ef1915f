//! `settings.metrics_exports`: the MetricsExports `vctp standalone` runs on their schedules,
//! without Kubernetes. Each entry is a MetricsExport spec as in a resource (camelCase, checked
//! by the same CEL rules, client-side), with files standing in for the Secrets it would name.
//!
//! ```yaml
//! settings:
//!   metrics_exports:
//!     - name: vmagent-nightly
//!       spec:
//!         source: {url: "http://127.0.0.1:8428"}
//!         selectors: ['{job="vmagent"}']
//!         schedule: "0 3 * * *"
//!         lookbackSeconds: 86400
//!         destination: {retention: {keepLast: 7}}
//!       credentials:
//!         obfuscation_key_file: /etc/vctp/export.key
//! ```

use crate::crd::metrics_export::{AuthSecretRef, MetricsExportSpec};
use crate::crd::{MetricsExport, SecretKeyRef};
use crate::export::plan::env;
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One scheduled export of `vctp standalone`.
#[derive(Debug, Clone)]
pub struct StandaloneExport {
    /// Names it in logs and `cron_status`, and its default prefix `exports/standalone/<name>`.
    pub name: String,
    pub spec: MetricsExportSpec,
    pub credentials: Credentials,
}

/// Files in place of the Secrets a MetricsExport names in Kubernetes.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// `USER:PASSWORD` for basic auth.
    pub basic_auth_file: Option<PathBuf>,
    /// A bearer token.
    pub bearer_token_file: Option<PathBuf>,
    /// PEM CA certificates to trust for the source.
    pub ca_file: Option<PathBuf>,
    /// The obfuscation key (else the key in `VCTP_OBFUSCATION_KEY`).
    pub obfuscation_key_file: Option<PathBuf>,
    /// Values of the spec's `source.headers` that have `valueFrom`, by header name.
    #[serde(default)]
    pub header_files: BTreeMap<String, PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    spec: serde_yaml::Value,
    #[serde(default)]
    credentials: Credentials,
}

impl<'de> Deserialize<'de> for StandaloneExport {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let entry = Entry::deserialize(deserializer)?;
        // The spec's types accept unknown keys (the API server's schema refuses them); a
        // settings file refuses them here, naming the key.
        let mut unknown = Vec::new();
        let spec: MetricsExportSpec =
            serde_ignored::deserialize(entry.spec, |path| unknown.push(path.to_string()))
                .map_err(serde::de::Error::custom)?;
        if let Some(key) = unknown.first() {
            return Err(serde::de::Error::custom(format!(
                "unknown key `spec.{key}` in metrics export {:?}",
                entry.name
            )));
        }
        Ok(StandaloneExport {
            name: entry.name,
            spec,
            credentials: entry.credentials,
        })
    }
}

impl StandaloneExport {
    /// The spec as the Job would see it: the Secret references the CEL rules ask for stand
    /// for the credential files given.
    pub fn resolved_spec(&self) -> MetricsExportSpec {
        let mut spec = self.spec.clone();
        let credentials = &self.credentials;
        if credentials.obfuscation_key_file.is_some() || std::env::var(env::OBFUSCATION_KEY).is_ok()
        {
            spec.obfuscation.key_secret_ref = Some(SecretKeyRef {
                name: "settings".into(),
                key: "key".into(),
            });
        }
        let auth = |username: Option<&str>, password: Option<&str>, token: Option<&str>| {
            Some(AuthSecretRef {
                name: "settings".into(),
                username_key: username.map(str::to_string),
                password_key: password.map(str::to_string),
                token_key: token.map(str::to_string),
            })
        };
        if credentials.basic_auth_file.is_some() {
            spec.source.auth_secret_ref = auth(Some("username"), Some("password"), None);
        } else if credentials.bearer_token_file.is_some() {
            spec.source.auth_secret_ref = auth(None, None, Some("token"));
        }
        spec
    }

    /// Checks what the Job would find wrong; the error names the key.
    pub fn check(&self, index: usize) -> Result<(), (String, String)> {
        let key = format!("settings.metrics_exports[{index}]");
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 63
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !name_ok {
            return Err((
                format!("{key}.name"),
                "must be 1 to 63 of a-z, 0-9 and '-' (it names the bundles' prefix)".into(),
            ));
        }
        if self.spec.schedule.is_none() || self.spec.lookback_seconds.is_none() {
            return Err((
                format!("{key}.spec"),
                "vctp standalone runs exports on their schedule: set schedule and lookbackSeconds"
                    .into(),
            ));
        }
        MetricsExport::new(&self.name, self.resolved_spec())
            .validate_cel()
            .map_err(|e| (format!("{key}.spec"), format!("{e:?}")))?;
        crate::schedule::CronSchedule::parse(
            self.spec.schedule.as_deref().unwrap_or_default(),
            &self.spec.time_zone,
        )
        .map_err(|e| (format!("{key}.spec.schedule"), e.to_string()))?;
        if let Some(header) = self.spec.source.headers.iter().find(|h| {
            h.value_from.is_some() && !self.credentials.header_files.contains_key(&h.name)
        }) {
            return Err((
                format!("{key}.credentials.header_files"),
                format!(
                    "header {:?} takes its value from a file: name the file here",
                    header.name
                ),
            ));
        }
        Ok(())
    }

    /// The credentials as the Job's environment would hold them (see
    /// [`crate::export::plan::env`]): read from the files, else from the process environment.
    pub fn env(&self) -> impl Fn(&str) -> Option<String> + '_ {
        move |name| {
            let credentials = &self.credentials;
            let read = |path: &Path| std::fs::read_to_string(path).ok();
            let basic = || {
                credentials
                    .basic_auth_file
                    .as_deref()
                    .and_then(read)
                    .and_then(|text| {
                        text.trim_end_matches(['\r', '\n'])
                            .split_once(':')
                            .map(|(u, p)| (u.to_string(), p.to_string()))
                    })
            };
            let from_files = match name {
                env::SOURCE_USERNAME => basic().map(|(user, _)| user),
                env::SOURCE_PASSWORD => basic().map(|(_, password)| password),
                env::SOURCE_TOKEN => credentials
                    .bearer_token_file
                    .as_deref()
                    .and_then(read)
                    .map(|t| t.trim().to_string()),
                env::SOURCE_CA_BUNDLE => credentials.ca_file.as_deref().and_then(read),
                env::OBFUSCATION_KEY => credentials.obfuscation_key_file.as_deref().and_then(read),
                other => other
                    .strip_prefix(env::SOURCE_HEADER_PREFIX)
                    .and_then(|index| index.parse::<usize>().ok())
                    .and_then(|index| self.spec.source.headers.get(index))
                    .and_then(|header| credentials.header_files.get(&header.name))
                    .and_then(|path| read(path))
                    .map(|value| value.trim().to_string()),
            };
            from_files.or_else(|| std::env::var(name).ok())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<Vec<StandaloneExport>, String> {
        serde_yaml::from_str(yaml).map_err(|e| e.to_string())
    }

    const ENTRY: &str = r#"
- name: vmagent-nightly
  spec:
    source: {url: "http://127.0.0.1:8428"}
    selectors: ['{job="vmagent"}']
    schedule: "0 3 * * *"
    lookbackSeconds: 86400
  credentials:
    obfuscation_key_file: /etc/vctp/export.key
"#;

    #[test]
    fn an_entry_reads_as_a_resource_spec_with_files_for_its_secrets() {
        let exports = parse(ENTRY).unwrap();
        assert_eq!(exports[0].name, "vmagent-nightly");
        assert!(exports[0].check(0).is_ok());
        assert!(
            exports[0]
                .resolved_spec()
                .obfuscation
                .key_secret_ref
                .is_some()
        );
    }

    #[test]
    fn unknown_keys_in_the_spec_are_refused_by_name() {
        let err = parse(&ENTRY.replace("lookbackSeconds", "lookbackSecs")).unwrap_err();
        assert!(err.contains("spec.lookbackSecs"), "{err}");
    }

    #[test]
    fn an_entry_without_a_schedule_or_a_key_says_what_is_missing() {
        let mut exports = parse(ENTRY).unwrap();
        exports[0].spec.schedule = None;
        let (key, message) = exports[0].check(3).unwrap_err();
        assert_eq!(key, "settings.metrics_exports[3].spec");
        assert!(message.contains("schedule"), "{message}");
        let mut exports = parse(ENTRY).unwrap();
        exports[0].credentials.obfuscation_key_file = None;
        if std::env::var(env::OBFUSCATION_KEY).is_err() {
            let (_, message) = exports[0].check(0).unwrap_err();
            assert!(message.contains("obfuscation needs a key"), "{message}");
        }
        exports[0].name = "Bad Name".into();
        assert!(exports[0].check(0).unwrap_err().0.ends_with(".name"));
    }

    #[test]
    fn credentials_come_from_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let basic = dir.path().join("basic");
        std::fs::write(&basic, "reader:s3cret\n").unwrap();
        let mut exports = parse(ENTRY).unwrap();
        exports[0].credentials.basic_auth_file = Some(basic);
        let export = &exports[0];
        let env = export.env();
        assert_eq!(env(env::SOURCE_USERNAME).as_deref(), Some("reader"));
        assert_eq!(env(env::SOURCE_PASSWORD).as_deref(), Some("s3cret"));
        assert!(export.resolved_spec().source.auth_secret_ref.is_some());
    }
}
