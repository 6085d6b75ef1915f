//! A running export Job's live status: its progress and checkpoint are patched into the
//! `MetricsExport`'s `status.progress` and `status.checkpoint` (a JSON merge patch of those two
//! fields only, at most once per interval: the operator owns the rest of the status), and its
//! notices become Events on the resource. Failures to patch are logged, never fatal: the
//! export itself matters more than its progress report.

use crate::crd::MetricsExport;
use crate::crd::metrics_export::{CheckpointStatus, Progress as StatusProgress};
use crate::crd::time::{now, span_of_millis};
use crate::jobs::export::{Notice, Observer, Progress};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource, ResourceExt};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The Events' reporting controller.
const REPORTER: &str = "vctp-export-job";

/// Patches progress and publishes notices in the background.
pub struct StatusReporter {
    progress: watch::Sender<Option<Progress>>,
    notices: mpsc::UnboundedSender<Notice>,
    task: JoinHandle<()>,
}

impl StatusReporter {
    /// Starts reporting on `export` (as read from the API server), patching at most every
    /// `interval`.
    pub fn start(client: Client, export: &MetricsExport, interval: Duration) -> StatusReporter {
        let (progress, mut latest) = watch::channel(None);
        let (notices, mut incoming) = mpsc::unbounded_channel();
        let api: Api<MetricsExport> =
            Api::namespaced(client.clone(), &export.namespace().unwrap_or_default());
        let name = export.name_any();
        let reference = export.object_ref(&());
        let recorder = Recorder::new(
            client,
            Reporter {
                controller: REPORTER.into(),
                instance: std::env::var("HOSTNAME").ok(),
            },
        );
        let task = tokio::spawn(async move {
            let mut last = Instant::now()
                .checked_sub(interval)
                .unwrap_or_else(Instant::now);
            let mut pending = false;
            loop {
                tokio::select! {
                    notice = incoming.recv() => match notice {
                        Some(notice) => publish(&recorder, &reference, &notice).await,
                        None => break,
                    },
                    changed = latest.changed(), if !pending => {
                        if changed.is_err() {
                            break;
                        }
                        pending = true;
                    }
                    () = tokio::time::sleep_until(last + interval), if pending => {
                        let current = latest.borrow_and_update().clone();
                        if let Some(current) = current {
                            patch(&api, &name, &current).await;
                        }
                        pending = false;
                        last = Instant::now();
                    }
                }
            }
            // The last progress always goes out: the final counts.
            let current = latest.borrow().clone();
            if let Some(current) = current {
                patch(&api, &name, &current).await;
            }
        });
        StatusReporter {
            progress,
            notices,
            task,
        }
    }

    /// Sends what is left and waits for it (bounded: a hung API server must not keep the
    /// Job alive).
    pub async fn finish(self) {
        let StatusReporter {
            progress,
            notices,
            task,
        } = self;
        drop(notices);
        drop(progress);
        if tokio::time::timeout(Duration::from_secs(3), task)
            .await
            .is_err()
        {
            tracing::warn!("the last status patch did not finish within 3 s");
        }
    }
}

impl Observer for StatusReporter {
    fn progress(&mut self, progress: &Progress) {
        self.progress.send_replace(Some(progress.clone()));
    }

    fn notice(&mut self, notice: &Notice) {
        tracing::info!(?notice, "export notice");
        let _ = self.notices.send(notice.clone());
    }
}

/// `status.progress` and `status.checkpoint` of `progress`.
pub fn status_patch(progress: &Progress) -> serde_json::Value {
    let status = StatusProgress {
        batches_done: i64::try_from(progress.windows_done).unwrap_or(i64::MAX),
        batches_total: i64::try_from(progress.windows_total).unwrap_or(i64::MAX),
        method: progress.method.map(|m| m.name().to_string()),
        current_window: progress
            .current
            .map(|w| span_of_millis(w.start_ms, w.end_ms)),
        series: i64::try_from(progress.series).unwrap_or(i64::MAX),
        samples: i64::try_from(progress.samples).unwrap_or(i64::MAX),
        bytes: i64::try_from(progress.bytes).unwrap_or(i64::MAX),
        eta_seconds: progress
            .eta
            .map(|eta| i64::try_from(eta.as_secs()).unwrap_or(i64::MAX)),
        updated: Some(now()),
    };
    let checkpoint = progress
        .checkpoint
        .as_ref()
        .map(|(key, spec_hash)| CheckpointStatus {
            key: key.clone(),
            segments: i64::try_from(progress.windows_done).unwrap_or(i64::MAX),
            spec_hash: spec_hash.clone(),
        });
    // `currentWindow: null` removes a window that is done.
    let mut progress_json = serde_json::to_value(status).unwrap_or_default();
    if progress.current.is_none() {
        progress_json["currentWindow"] = serde_json::Value::Null;
    }
    serde_json::json!({ "status": { "progress": progress_json, "checkpoint": checkpoint } })
}

async fn patch(api: &Api<MetricsExport>, name: &str, progress: &Progress) {
    if let Err(e) = api
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(status_patch(progress)),
        )
        .await
    {
        tracing::warn!(error = %e, "could not patch the export's progress");
    }
}

async fn publish(
    recorder: &Recorder,
    reference: &k8s_openapi::api::core::v1::ObjectReference,
    notice: &Notice,
) {
    let (type_, reason, note) = match notice {
        Notice::ExportUnavailable(why) => (
            EventType::Warning,
            "ExportUnavailable",
            format!("reading with query_range: {why}"),
        ),
        Notice::SpecChanged => (
            EventType::Warning,
            "SpecChanged",
            "the run's checkpoint was made with other settings: its parts were discarded and the run starts over".to_string(),
        ),
        Notice::Resumed { windows } => (
            EventType::Normal,
            "Resumed",
            format!("continuing the run after {windows} windows"),
        ),
        Notice::WindowSplit(window) => (
            EventType::Normal,
            "WindowSplit",
            format!(
                "{} timed out and was halved",
                crate::export::fetch::describe(*window)
            ),
        ),
        Notice::Retrying { attempt, error } => (
            EventType::Warning,
            "Retrying",
            format!("attempt {attempt}: {error}"),
        ),
    };
    let event = Event {
        type_,
        reason: reason.to_string(),
        note: Some(note.chars().take(1024).collect()),
        action: "Export".to_string(),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&event, reference).await {
        tracing::warn!(reason, error = %e, "could not publish an Event");
    }
}
