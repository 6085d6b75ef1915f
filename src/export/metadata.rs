//! What a bundle says about itself (pure): `metadata.json` and `README.txt` inside the ZIP,
//! and `manifest.json` beside it, written last — a bundle without a manifest is incomplete and
//! every reader ignores it.
//!
//! `metadata.json` keeps the fields of vmgather's metadata (`export_id`, `export_date`,
//! `time_range`, `metrics_count`, `obfuscated`) so tools reading those keep working, and adds
//! what makes the bundle checkable. It never holds the obfuscation key or a mapping: only the
//! key's fingerprint, so two bundles can be seen to share a key.

use super::checkpoint::Method;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Version of the bundle layout.
pub const FORMAT_VERSION: u32 = 1;
/// The entries of a bundle.
pub const METRICS_ENTRY: &str = "metrics.jsonl";
pub const METADATA_ENTRY: &str = "metadata.json";
pub const README_ENTRY: &str = "README.txt";
/// How pseudonyms are made, as recorded in every obfuscated bundle.
pub const SCHEME: &str = "hex(HMAC-SHA256(key, \"vctp-obf-v1\\0\" + class + \"\\0\" + value)), truncated: IP hosts ip-<16 hex>.invalid, other hosts host-<16 hex>.invalid (ports kept), jobs job-<12 hex>, other labels <label>-<12 hex>";

/// A time range as the bundle records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeRange {
    /// RFC 3339, inclusive.
    pub start: String,
    /// RFC 3339, exclusive.
    pub end: String,
    pub start_ms: i64,
    pub end_ms: i64,
}

impl TimeRange {
    pub fn new(window: super::windows::Window) -> TimeRange {
        TimeRange {
            start: rfc3339_ms(window.start_ms),
            end: rfc3339_ms(window.end_ms),
            start_ms: window.start_ms,
            end_ms: window.end_ms,
        }
    }
}

/// Counts per metric name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricCounts {
    pub series: u64,
    pub samples: u64,
}

/// Where the series came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceInfo {
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Recorded only when nothing is obfuscated: a URL names hosts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// What was obfuscated, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObfuscationInfo {
    pub ips: bool,
    pub jobs: bool,
    pub labels: Vec<String>,
    pub drop_labels: Vec<String>,
    pub ips_in_any_label: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_fingerprint: Option<String>,
}

/// `metadata.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    pub format_version: u32,
    pub vctp_version: String,
    /// vmgather's: the run id.
    pub export_id: String,
    /// vmgather's: when the bundle was assembled (RFC 3339).
    pub export_date: String,
    /// vmgather's.
    pub time_range: TimeRange,
    /// vmgather's: series in the bundle.
    pub metrics_count: u64,
    /// vmgather's.
    pub obfuscated: bool,
    pub source: SourceInfo,
    pub method: Method,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method_reason: Option<String>,
    pub window_seconds: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_seconds: Option<f64>,
    /// The selectors, with obfuscated values as pseudonyms and regexes `<redacted>`.
    pub selectors: Vec<String>,
    /// PromQL expressions exported with query_range (`<redacted>` when obfuscating).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub queries: Vec<String>,
    pub series: u64,
    pub samples: u64,
    pub skipped_samples: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_timestamp_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_timestamp_ms: Option<i64>,
    pub windows: u64,
    pub split_windows: u64,
    pub per_metric: BTreeMap<String, MetricCounts>,
    pub obfuscation: ObfuscationInfo,
}

/// `<run>.manifest.json`: the bundle is complete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    pub export_id: String,
    /// The ZIP's key in the store.
    pub bundle_key: String,
    pub size: u64,
    pub sha256: String,
    pub series: u64,
    pub samples: u64,
    pub skipped_samples: u64,
    pub time_range: TimeRange,
    pub method: Method,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_fingerprint: Option<String>,
    pub created: String,
}

/// The manifest's key for a bundle key `<prefix>/<run>.zip`.
pub fn manifest_key(bundle_key: &str) -> String {
    format!(
        "{}.manifest.json",
        bundle_key.strip_suffix(".zip").unwrap_or(bundle_key)
    )
}

/// `README.txt`: what the bundle holds and how to load it.
pub fn readme(metadata: &Metadata, bundle_name: &str) -> String {
    let obfuscation = if metadata.obfuscated {
        let o = &metadata.obfuscation;
        let mut what = Vec::new();
        if o.ips {
            what.push("the hosts of `instance` labels".to_string());
        }
        if o.jobs {
            what.push("`job` values".to_string());
        }
        if !o.labels.is_empty() {
            what.push(format!("the values of {}", o.labels.join(", ")));
        }
        if o.ips_in_any_label {
            what.push("IP addresses inside any label".to_string());
        }
        let dropped = if o.drop_labels.is_empty() {
            String::new()
        } else {
            format!(" Labels removed: {}.", o.drop_labels.join(", "))
        };
        format!(
            "Obfuscated: {}. Each value was replaced by a keyed pseudonym (HMAC-SHA256 under a key \
             that is not in this bundle; key fingerprint {}): the same value always has the same \
             pseudonym, so series can be correlated, but the original cannot be recovered from \
             the bundle. Only the key holder can find a value's pseudonym, with \
             `vctp obfuscation lookup --key-file KEY --label LABEL VALUE`. Metric names, values \
             and timestamps are unchanged.{dropped}",
            what.join(", "),
            o.key_fingerprint.as_deref().unwrap_or("-"),
        )
    } else {
        "Not obfuscated: label values are as the source had them.".to_string()
    };
    format!(
        "vctp metrics export {id}\n\
         \n\
         Exported {date} by vctp {version} from a {kind} source ({method}).\n\
         Time range: {start} to {end} (end exclusive).\n\
         Series: {series}; samples: {samples}; samples skipped (NaN): {skipped}.\n\
         \n\
         {obfuscation}\n\
         \n\
         Files: metrics.jsonl holds one series per line in VictoriaMetrics' export format \
         (`{{\"metric\":{{…}},\"values\":[…],\"timestamps\":[…]}}`, timestamps in ms); \
         metadata.json describes the export.\n\
         \n\
         To load it into a VictoriaMetrics (checksum verified first):\n\
         \n    vctp import-metrics {bundle} --target-url http://victoria-metrics:8428 --sha256 <the SHA-256 of this file>\n\
         \n\
         or with plain curl (no verification):\n\
         \n    unzip -p {bundle} metrics.jsonl | curl --data-binary @- http://victoria-metrics:8428/api/v1/import\n",
        id = metadata.export_id,
        date = metadata.export_date,
        version = metadata.vctp_version,
        kind = metadata.source.kind,
        method = metadata.method.name(),
        start = metadata.time_range.start,
        end = metadata.time_range.end,
        series = metadata.series,
        samples = metadata.samples,
        skipped = metadata.skipped_samples,
        bundle = bundle_name,
    )
}

/// Unix milliseconds as RFC 3339 UTC.
pub fn rfc3339_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::windows::Window;

    fn metadata(obfuscated: bool) -> Metadata {
        Metadata {
            format_version: FORMAT_VERSION,
            vctp_version: "0.1.0".into(),
            export_id: "20261130T000000Z".into(),
            export_date: "2026-11-30T06:01:00Z".into(),
            time_range: TimeRange::new(Window::new(1_795_996_800_000, 1_796_018_400_000).unwrap()),
            metrics_count: 200,
            obfuscated,
            source: SourceInfo {
                kind: "Single".into(),
                tenant: None,
                url: None,
            },
            method: Method::Export,
            method_reason: None,
            window_seconds: 300.0,
            step_seconds: None,
            selectors: vec![],
            queries: vec![],
            series: 200,
            samples: 288_000,
            skipped_samples: 0,
            first_timestamp_ms: None,
            last_timestamp_ms: None,
            windows: 72,
            split_windows: 0,
            per_metric: BTreeMap::new(),
            obfuscation: ObfuscationInfo {
                ips: obfuscated,
                jobs: obfuscated,
                labels: vec!["customer".into()],
                drop_labels: vec![],
                ips_in_any_label: false,
                scheme: obfuscated.then(|| SCHEME.to_string()),
                key_fingerprint: obfuscated.then(|| "1a2b3c4d".into()),
            },
        }
    }

    #[test]
    fn the_readme_says_what_when_how_many_and_how_to_import() {
        let text = readme(&metadata(true), "20261130T000000Z.zip");
        for expected in [
            "2026-11-30T00:00:00Z to 2026-11-30T06:00:00Z",
            "Series: 200; samples: 288000",
            "key fingerprint 1a2b3c4d",
            "vctp import-metrics 20261130T000000Z.zip --target-url",
            "vctp obfuscation lookup",
        ] {
            assert!(text.contains(expected), "{expected:?} not in\n{text}");
        }
        assert!(readme(&metadata(false), "x.zip").contains("Not obfuscated"));
    }

    #[test]
    fn metadata_keeps_vmgathers_field_names() {
        let json = serde_json::to_value(metadata(true)).unwrap();
        for key in [
            "export_id",
            "export_date",
            "time_range",
            "metrics_count",
            "obfuscated",
        ] {
            assert!(json.get(key).is_some(), "{key}");
        }
        assert!(json["source"].get("url").is_none());
    }

    #[test]
    fn the_manifest_sits_beside_the_bundle() {
        assert_eq!(
            manifest_key("exports/a/b/r1.zip"),
            "exports/a/b/r1.manifest.json"
        );
    }
}
