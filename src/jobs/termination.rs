//! What a `vctp job …` process leaves in its container's termination message
//! (`/dev/termination-log`) for the operator to copy into the resource's status: small JSON,
//! one shape for every kind, success or failure.
//!
//! The kubelet keeps at most 4096 bytes of it, so [`JobResult::to_message`] drops the report
//! entries that do not fit and says how many it dropped.

use super::aggregate;
use serde::{Deserialize, Serialize};

/// Bytes of termination message the kubelet keeps.
pub const MAX_MESSAGE_BYTES: usize = 4096;
/// Where the kubelet reads the termination message from, unless `VCTP_TERMINATION_LOG` says
/// otherwise (tests, or a run outside Kubernetes).
pub const DEFAULT_PATH: &str = "/dev/termination-log";
/// The environment variable that moves [`DEFAULT_PATH`].
pub const PATH_ENV: &str = "VCTP_TERMINATION_LOG";

/// The outcome of one Job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobResult {
    pub succeeded: bool,
    /// Stable short name of the failure (the error's `reason()`), for Events and metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A human-readable summary, or the error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// What a snapshot Job stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<SnapshotResult>,
    /// What an aggregation Job wrote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregation: Option<AggregationResult>,
    /// What an export Job wrote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<ExportResult>,
}

/// What an export Job wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportResult {
    pub run_id: String,
    /// `Export` or `QueryRange`.
    pub method: String,
    pub series: u64,
    pub samples: u64,
    pub skipped: u64,
    pub windows: u64,
    pub splits: u64,
    /// Windows found done in the checkpoint.
    pub resumed: u64,
    pub bundle: BundleEntry,
}

/// The bundle an export Job wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BundleEntry {
    pub key: String,
    pub size: u64,
    pub sha256: String,
    pub manifest_key: String,
}

/// What a snapshot Job stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotResult {
    /// The snapshot time (Unix seconds) the rows are stored under.
    pub snapshot_time: i64,
    /// Rows stored.
    pub rows: i64,
    /// Virtual machines (templates included) the vCenter reported.
    pub inventory_size: i64,
    /// The vCenter's version and build, e.g. `8.0.2 build-22617221`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vcenter_version: Option<String>,
}

/// What an aggregation Job wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AggregationResult {
    pub rows_written: i64,
    pub reports: Vec<ReportEntry>,
    /// Report entries left out to keep the message within [`MAX_MESSAGE_BYTES`].
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reports_omitted: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// One report object (the CRD's `ReportObject`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportEntry {
    pub key: String,
    pub size: i64,
    pub sha256: String,
}

impl From<aggregate::Outcome> for AggregationResult {
    fn from(outcome: aggregate::Outcome) -> Self {
        AggregationResult {
            rows_written: i64::try_from(outcome.rows_written).unwrap_or(i64::MAX),
            reports: outcome
                .reports
                .into_iter()
                .map(|r| ReportEntry {
                    key: r.key,
                    size: r.size,
                    sha256: r.sha256,
                })
                .collect(),
            reports_omitted: 0,
        }
    }
}

impl JobResult {
    /// A success with its summary; the caller adds what was stored or written.
    pub fn succeeded(message: String) -> JobResult {
        JobResult {
            succeeded: true,
            reason: None,
            message: Some(message),
            snapshot: None,
            aggregation: None,
            export: None,
        }
    }

    /// A failure with its stable reason and message.
    pub fn failed(reason: &str, message: String) -> JobResult {
        JobResult {
            succeeded: false,
            reason: Some(reason.to_string()),
            message: Some(message),
            snapshot: None,
            aggregation: None,
            export: None,
        }
    }

    /// The JSON to write, at most [`MAX_MESSAGE_BYTES`] long: report entries are dropped from
    /// the end, then the message is cut.
    pub fn to_message(&self) -> String {
        let mut result = self.clone();
        let fits = |r: &JobResult| {
            let json = serde_json::to_string(r).unwrap_or_default();
            (json.len() <= MAX_MESSAGE_BYTES).then_some(json)
        };
        if let Some(json) = fits(&result) {
            return json;
        }
        if result.aggregation.is_some() {
            while fits(&result).is_none() {
                let Some(aggregation) = &mut result.aggregation else {
                    break;
                };
                if aggregation.reports.pop().is_none() {
                    break;
                }
                aggregation.reports_omitted += 1;
            }
        }
        if let Some(json) = fits(&result) {
            return json;
        }
        if let Some(message) = &mut result.message {
            let mut cut = MAX_MESSAGE_BYTES / 2;
            while !message.is_char_boundary(cut.min(message.len())) {
                cut -= 1;
            }
            message.truncate(cut.min(message.len()));
            message.push('…');
        }
        fits(&result).unwrap_or_else(|| {
            r#"{"succeeded":false,"reason":"ResultTooLarge","message":"the job result did not fit the termination message"}"#.to_string()
        })
    }

    /// Reads a termination message. `None` when it is not ours (e.g. the log tail a crashed
    /// container leaves with `FallbackToLogsOnError`).
    pub fn from_message(message: &str) -> Option<JobResult> {
        serde_json::from_str(message.trim()).ok()
    }

    /// Writes [`Self::to_message`] to the termination log (`VCTP_TERMINATION_LOG`, else
    /// [`DEFAULT_PATH`]). Outside a container the default path is not writable; that is only
    /// logged, the process's exit status still tells success from failure.
    pub fn write(&self) {
        let path = std::env::var(PATH_ENV).unwrap_or_else(|_| DEFAULT_PATH.to_string());
        if let Err(e) = std::fs::write(&path, self.to_message()) {
            tracing::warn!(path, error = %e, "could not write the termination message");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(i: usize) -> ReportEntry {
        ReportEntry {
            key: format!("reports/daily/2026-03-10/vc{i:03}.xlsx"),
            size: 12_345,
            sha256: "ab".repeat(32),
        }
    }

    #[test]
    fn a_small_result_is_written_whole_and_reads_back() {
        let result = JobResult {
            succeeded: true,
            reason: None,
            message: Some("aggregated 2026-03-10".into()),
            snapshot: None,
            export: None,
            aggregation: Some(AggregationResult {
                rows_written: 3,
                reports: vec![report(1)],
                reports_omitted: 0,
            }),
        };
        let message = result.to_message();
        assert_eq!(JobResult::from_message(&message), Some(result));
    }

    #[test]
    fn a_large_result_drops_entries_and_says_how_many() {
        let result = JobResult {
            succeeded: true,
            reason: None,
            message: None,
            snapshot: None,
            export: None,
            aggregation: Some(AggregationResult {
                rows_written: 100,
                reports: (0..100).map(report).collect(),
                reports_omitted: 0,
            }),
        };
        let message = result.to_message();
        assert!(message.len() <= MAX_MESSAGE_BYTES, "{}", message.len());
        let back = JobResult::from_message(&message)
            .unwrap()
            .aggregation
            .unwrap();
        assert!(back.reports_omitted > 0);
        assert_eq!(back.reports.len() + back.reports_omitted, 100);
        assert_eq!(back.reports[0].key, report(0).key);
    }

    #[test]
    fn a_long_error_is_cut_to_fit() {
        let result = JobResult::failed("Parse", "é".repeat(5_000));
        let message = result.to_message();
        assert!(message.len() <= MAX_MESSAGE_BYTES);
        let back = JobResult::from_message(&message).unwrap();
        assert_eq!(back.reason.as_deref(), Some("Parse"));
        assert!(back.message.unwrap().ends_with('…'));
    }

    #[test]
    fn a_log_tail_is_not_a_result() {
        assert_eq!(JobResult::from_message("thread 'main' panicked at …"), None);
    }
}
