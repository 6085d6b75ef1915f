//! The Kubernetes operator: one controller per custom resource (DESIGN.md §2), each a pipeline
//! of the steps it needs, named alike in all four: validate (pure) → read → plan (pure) →
//! build (pure) → apply (server-side apply) → status; each reconcile runs in a span naming
//! its object. The pure Job builder all kinds share lives in [`job`], what they do with their
//! Jobs in [`workload`]; [`schedule`] is the cron math, [`leader`] the Lease election,
//! [`metrics`] the operator's own `/metrics` and `/healthz`. This module holds what every
//! controller shares: the [`Context`], the [`Error`] and its retry policy, status conditions
//! and Events.

pub mod aggregation_job;
#[cfg(test)]
pub mod argocd;
pub mod job;
pub mod leader;
pub mod metrics;
pub mod metrics_export;
pub mod run;
#[cfg(test)]
pub mod scenario;
pub mod secrets;
pub mod snapshot_schedule;
pub mod vcenter_target;
pub mod workload;

use crate::crd::Condition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource, ResourceExt};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::Instrument;

/// Field manager of everything the operator applies, and the Events' reporting controller.
pub const MANAGER: &str = "vctp-operator";
/// First retry delay after a transient error; doubled per consecutive failure.
const BACKOFF_FIRST: Duration = Duration::from_secs(2);
/// Longest retry delay.
const BACKOFF_MAX: Duration = Duration::from_secs(300);
/// How soon a reconcile that waits for something runs again.
const WAIT_INTERVAL: Duration = Duration::from_secs(2);
/// How long a Job's Pod may wait for its image before the run is given up, unless
/// `--image-pull-timeout-seconds` says otherwise: long enough for a slow registry and a few
/// of the kubelet's back-offs, short enough that a typo shows within minutes.
pub const DEFAULT_IMAGE_PULL_TIMEOUT: Duration = Duration::from_secs(300);

/// What every reconcile gets.
pub struct Context {
    pub client: Client,
    /// The Job every run starts from.
    pub template: job::JobTemplate,
    pub metrics: Arc<metrics::Metrics>,
    recorder: Recorder,
    /// How often a `VCenterTarget`'s Secret and reachability are checked again.
    pub recheck_every: Duration,
    /// Consecutive failures per object, for the exponential backoff.
    failures: Mutex<HashMap<String, u32>>,
    /// Where export bundles go by default, for cleaning up a deleted `MetricsExport`'s parts.
    pub export_store: Option<ExportStore>,
    /// The namespaces the operator watches (empty: only the reconciled object's own).
    pub watched: Vec<String>,
    /// How long a Job's Pod may wait for its image (see [`workload::Patience`]).
    pub image_pull_timeout: Duration,
}

/// The operator's default object store of export bundles.
#[derive(Debug, Clone)]
pub struct ExportStore {
    pub url: String,
    /// object_store options (the backend's environment variables are read too).
    pub options: std::collections::BTreeMap<String, String>,
}

impl Context {
    pub fn new(
        client: Client,
        template: job::JobTemplate,
        metrics: Arc<metrics::Metrics>,
        instance: Option<String>,
        recheck_every: Duration,
    ) -> Context {
        let recorder = Recorder::new(
            client.clone(),
            Reporter {
                controller: MANAGER.into(),
                instance,
            },
        );
        Context {
            client,
            template,
            metrics,
            recorder,
            recheck_every,
            failures: Mutex::new(HashMap::new()),
            export_store: None,
            watched: Vec::new(),
            image_pull_timeout: DEFAULT_IMAGE_PULL_TIMEOUT,
        }
    }

    /// How long a Job's Pod may wait for its image before its run is given up.
    pub fn with_image_pull_timeout(mut self, timeout: Duration) -> Context {
        self.image_pull_timeout = timeout;
        self
    }

    /// When to look at an unfinished Job again: its Pod's status (an image that cannot be
    /// pulled) changes nothing in the Job, so no watch event would come.
    pub fn until_unfinished_checked(&self) -> Action {
        Action::requeue(
            self.image_pull_timeout
                .clamp(Duration::from_secs(1), Duration::from_secs(60)),
        )
    }

    /// What observing a Job needs now.
    pub fn patience(&self) -> workload::Patience {
        workload::Patience {
            now: now(),
            image_pull_timeout: self.image_pull_timeout,
        }
    }

    /// The namespaces the operator watches: a snapshot Job is told every `VCenterTarget`
    /// of its target's name in them (see `jobs::snapshot::adopt_legacy`).
    pub fn watching(mut self, namespaces: Vec<String>) -> Context {
        self.watched = namespaces;
        self
    }

    /// The default store of export bundles, for cleanups.
    pub fn with_export_store(mut self, store: ExportStore) -> Context {
        self.export_store = Some(store);
        self
    }

    /// Publishes an Event about `object`. Events are best effort: a failure is only logged,
    /// the reconcile goes on.
    pub async fn event<K: Resource<DynamicType = ()>>(
        &self,
        object: &K,
        type_: EventType,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let event = Event {
            type_,
            reason: reason.to_string(),
            note: Some(truncate(note, 1024)),
            action: action.to_string(),
            secondary: None,
        };
        if let Err(error) = self.recorder.publish(&event, &object.object_ref(&())).await {
            tracing::warn!(
                kind = %K::kind(&()), name = %object.meta().name.clone().unwrap_or_default(),
                reason, %error, "could not publish an Event"
            );
        }
    }

    /// Announces an invalid spec of `object` as a Warning Event and returns its error (the
    /// controller then waits for the spec to change).
    pub async fn reject<K: Resource<DynamicType = ()>>(
        &self,
        object: &K,
        reason: &'static str,
        message: String,
    ) -> Error {
        self.event(
            object,
            EventType::Warning,
            reason,
            "Validate",
            message.clone(),
        )
        .await;
        Error::invalid_spec(object, reason, message)
    }

    fn backoff_key<K: Resource<DynamicType = ()>>(object: &K) -> String {
        format!(
            "{}/{}/{}",
            K::kind(&()),
            object.meta().namespace.clone().unwrap_or_default(),
            object.meta().name.clone().unwrap_or_default()
        )
    }

    /// Forgets the failures of `object` after a good reconcile.
    fn succeeded<K: Resource<DynamicType = ()>>(&self, object: &K) {
        if let Ok(mut failures) = self.failures.lock() {
            failures.remove(&Self::backoff_key(object));
        }
    }

    /// The delay before retrying `object` after one more failure: 2 s, 4 s, 8 s … 5 min.
    fn next_backoff<K: Resource<DynamicType = ()>>(&self, object: &K) -> Duration {
        let failures = match self.failures.lock() {
            Ok(mut failures) => {
                let count = failures.entry(Self::backoff_key(object)).or_insert(0);
                *count = count.saturating_add(1);
                *count
            }
            Err(_) => 1,
        };
        backoff(failures)
    }
}

/// The delay after `failures` consecutive failures.
fn backoff(failures: u32) -> Duration {
    BACKOFF_FIRST
        .saturating_mul(2u32.saturating_pow(failures.saturating_sub(1).min(16)))
        .min(BACKOFF_MAX)
}

fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut cut = max - '…'.len_utf8();
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to {action} {kind} {namespace}/{name}: {source}")]
    Api {
        action: &'static str,
        kind: String,
        namespace: String,
        name: String,
        source: kube::Error,
    },
    #[error(transparent)]
    BuildJob(#[from] job::Error),
    /// Not an error: the reconcile must wait for something (e.g. a Pod to stop) before it
    /// can finish, and runs again shortly.
    #[error("waiting for {0}")]
    Waiting(String),
    /// The spec cannot work as written; the controller waits for it to change.
    #[error("{kind} {namespace}/{name} is invalid: {message}")]
    InvalidSpec {
        kind: String,
        namespace: String,
        name: String,
        reason: &'static str,
        message: String,
    },
}

impl Error {
    pub fn api(
        action: &'static str,
        kind: &str,
        namespace: &str,
        name: &str,
        source: kube::Error,
    ) -> Error {
        Error::Api {
            action,
            kind: kind.to_string(),
            namespace: namespace.to_string(),
            name: name.to_string(),
            source,
        }
    }

    /// The spec of `object` cannot work as written: `reason` is stable, `message` names the
    /// field.
    pub fn invalid_spec<K: Resource<DynamicType = ()>>(
        object: &K,
        reason: &'static str,
        message: String,
    ) -> Error {
        Error::InvalidSpec {
            kind: K::kind(&()).to_string(),
            namespace: object.meta().namespace.clone().unwrap_or_default(),
            name: object.meta().name.clone().unwrap_or_default(),
            reason,
            message,
        }
    }

    /// A stable short name, for metric labels and Event reasons.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Api { source, .. } => match source {
                kube::Error::Api(status) => match status.code {
                    401 | 403 => "ApiForbidden",
                    404 => "ApiNotFound",
                    409 => "ApiConflict",
                    422 => "ApiInvalid",
                    429 | 500.. => "ApiUnavailable",
                    _ => "ApiRequestFailed",
                },
                _ => "ApiUnreachable",
            },
            Error::BuildJob(e) => e.reason(),
            Error::InvalidSpec { reason, .. } => reason,
            Error::Waiting(_) => "Waiting",
        }
    }

    /// Whether retrying cannot help until the resource changes.
    pub fn waits_for_change(&self) -> bool {
        matches!(self, Error::InvalidSpec { .. } | Error::BuildJob(_))
    }
}

/// Writes `status` to `object`'s status subresource by server-side apply as `manager`:
/// the fields `manager` applied before and leaves out now are removed, fields other
/// managers own are kept (several controllers write parts of one status).
pub async fn apply_status<K>(
    ctx: &Context,
    object: &K,
    manager: &str,
    status: serde_json::Value,
) -> Result<(), Error>
where
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let patch = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    patch_status(
        ctx,
        object,
        &kube::api::PatchParams::apply(manager).force(),
        &kube::api::Patch::Apply(patch),
    )
    .await
}

/// Sends one patch to `object`'s status subresource.
async fn patch_status<K>(
    ctx: &Context,
    object: &K,
    params: &kube::api::PatchParams,
    patch: &kube::api::Patch<serde_json::Value>,
) -> Result<(), Error>
where
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let namespace = object.meta().namespace.clone().unwrap_or_default();
    let name = object.meta().name.clone().unwrap_or_default();
    kube::Api::<K>::namespaced(ctx.client.clone(), &namespace)
        .patch_status(&name, params, patch)
        .await
        .map_err(|source| {
            Error::api(
                "update the status of",
                &K::kind(&()),
                &namespace,
                &name,
                source,
            )
        })?;
    Ok(())
}

/// Writes `status` to `object`'s status subresource when it differs from `current` (the
/// status as read), as a JSON merge patch: fields of `current` left out of `status` are
/// removed, lists are replaced whole. For a status one controller writes alone; unlike
/// [`apply_status`] it needs no field ownership, which Kubernetes 1.20 tracks wrongly on the
/// status subresource of custom resources (seen there: a no-op apply hands every field to an
/// "unknown" manager, so list entries applied away stay; a list applied away entirely
/// becomes `null`, which the schema refuses).
pub async fn replace_status<K>(
    ctx: &Context,
    object: &K,
    current: &serde_json::Value,
    status: &serde_json::Value,
) -> Result<(), Error>
where
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let Some(patch) = merge_patch(current, status) else {
        return Ok(());
    };
    let params = kube::api::PatchParams {
        field_manager: Some(MANAGER.to_string()),
        ..kube::api::PatchParams::default()
    };
    let patch = kube::api::Patch::Merge(serde_json::json!({ "status": patch }));
    patch_status(ctx, object, &params, &patch).await
}

/// The JSON merge patch (RFC 7386) that turns `from` into `to`, or `None` when they are
/// equal: changed and new keys with their new value, removed keys as `null`, objects
/// compared key by key, anything else (lists included) replaced whole.
pub fn merge_patch(from: &serde_json::Value, to: &serde_json::Value) -> Option<serde_json::Value> {
    use serde_json::Value;
    match (from, to) {
        (Value::Object(from), Value::Object(to)) => {
            let mut patch = serde_json::Map::new();
            for (key, old) in from {
                match to.get(key) {
                    None => {
                        patch.insert(key.clone(), Value::Null);
                    }
                    Some(new) => {
                        if let Some(change) = merge_patch(old, new) {
                            patch.insert(key.clone(), change);
                        }
                    }
                }
            }
            for (key, new) in to {
                if !from.contains_key(key) {
                    patch.insert(key.clone(), new.clone());
                }
            }
            (!patch.is_empty()).then_some(Value::Object(patch))
        }
        (from, to) if from == to => None,
        (_, to) => Some(to.clone()),
    }
}

/// `object` as the API server has it now, or `None` once it is gone. The controller's cache
/// can lag behind the status this operator wrote a moment ago; deciding from a stale status
/// would announce one transition twice.
pub async fn fresh<K>(ctx: &Context, object: &K) -> Result<Option<K>, Error>
where
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let namespace = object.meta().namespace.clone().unwrap_or_default();
    let name = object.meta().name.clone().unwrap_or_default();
    kube::Api::<K>::namespaced(ctx.client.clone(), &namespace)
        .get_opt(&name)
        .await
        .map_err(|source| Error::api("read", &K::kind(&()), &namespace, &name, source))
}

/// One reconcile of `object` as the API server has it now (see [`fresh`]) with its metrics
/// and backoff bookkeeping: `apply` runs on the fresh object; one that is gone needs nothing.
pub async fn reconcile_fresh<K, F>(
    controller: &'static str,
    object: &K,
    ctx: &Context,
    apply: F,
) -> Result<Action, Error>
where
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    F: AsyncFnOnce(&K, &Context) -> Result<Action, Error>,
{
    instrumented(controller, object, ctx, async {
        match fresh(ctx, object).await? {
            Some(current) => apply(&current, ctx).await,
            None => Ok(Action::await_change()),
        }
    })
    .await
}

/// Drives a controller's stream to its end, logging each reconcile's outcome.
pub async fn drain<S, T, E>(controller: &'static str, namespace: &str, results: S)
where
    S: futures_util::Stream<Item = Result<T, E>>,
    T: std::fmt::Debug,
    E: std::fmt::Display,
{
    use futures_util::StreamExt;
    results
        .for_each(|result| async move {
            match result {
                Ok(object) => tracing::debug!(controller, namespace, ?object, "reconciled"),
                Err(error) => tracing::debug!(controller, namespace, %error, "not reconciled"),
            }
        })
        .await;
    tracing::info!(controller, namespace, "controller stopped");
}

/// Runs one reconcile in its span (`reconcile_span`), with its metrics and the backoff
/// bookkeeping.
pub async fn instrumented<K, F>(
    controller: &'static str,
    object: &K,
    ctx: &Context,
    reconcile: F,
) -> Result<Action, Error>
where
    K: Resource<DynamicType = ()>,
    F: Future<Output = Result<Action, Error>>,
{
    let timer = ctx.metrics.reconcile(controller);
    let result = reconcile.instrument(reconcile_span(object)).await;
    timer.done(result.as_ref().err().map(Error::reason));
    if result.is_ok() {
        ctx.succeeded(object);
    }
    result
}

/// The span of one reconcile of `object`, so that every log line of the reconcile says which
/// object (and which generation of its spec) it is about.
fn reconcile_span<K: Resource<DynamicType = ()>>(object: &K) -> tracing::Span {
    let meta = object.meta();
    tracing::info_span!(
        "reconcile",
        kind = %K::kind(&()),
        namespace = %meta.namespace.as_deref().unwrap_or_default(),
        name = %meta.name.as_deref().unwrap_or_default(),
        generation = meta.generation,
    )
}

/// The retry policy of every controller: invalid specs wait for a change, everything else
/// is retried with exponential backoff.
pub fn error_policy<K: Resource<DynamicType = ()>>(
    object: Arc<K>,
    error: &Error,
    ctx: Arc<Context>,
) -> Action {
    if let Error::Waiting(what) = error {
        tracing::debug!(kind = %K::kind(&()), name = %object.name_any(), what, "waiting");
        return Action::requeue(WAIT_INTERVAL);
    }
    tracing::warn!(
        kind = %K::kind(&()), namespace = object.namespace().unwrap_or_default(),
        name = %object.name_any(), reason = error.reason(), %error, "reconcile failed"
    );
    if error.waits_for_change() {
        Action::await_change()
    } else {
        Action::requeue(ctx.next_backoff(object.as_ref()))
    }
}

/// A `metav1.Condition` of `type_`, keeping the transition time of the previous condition
/// of that type when the status did not change.
pub fn condition(
    previous: &[Condition],
    type_: &str,
    ok: bool,
    reason: &str,
    message: impl Into<String>,
    generation: Option<i64>,
    now: Time,
) -> Condition {
    condition_of(previous, type_, Some(ok), reason, message, generation, now)
}

/// [`condition`] with status `True` (`Some(true)`), `False` or `Unknown` (`None`: no
/// verdict yet, e.g. before a first result).
pub fn condition_of(
    previous: &[Condition],
    type_: &str,
    verdict: Option<bool>,
    reason: &str,
    message: impl Into<String>,
    generation: Option<i64>,
    now: Time,
) -> Condition {
    let status = match verdict {
        Some(true) => "True",
        Some(false) => "False",
        None => "Unknown",
    };
    let last_transition_time = previous
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map_or(now, |c| c.last_transition_time.clone());
    let reason = condition_reason(reason);
    // Server-side apply on some API servers reads an empty message as null, which the schema
    // refuses: say the reason in words instead.
    let message = match message.into() {
        m if m.is_empty() => reason.clone(),
        m => truncate(m, 32_768),
    };
    Condition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason,
        message,
        observed_generation: generation,
        last_transition_time,
    }
}

/// `reason` as the API server accepts it in a condition: `^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$`.
fn condition_reason(reason: &str) -> String {
    let cleaned: String = reason
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ',' | ':'))
        .collect();
    let cleaned = cleaned.trim_start_matches(|c: char| !c.is_ascii_alphabetic());
    let cleaned = cleaned.trim_end_matches([',', ':']);
    if cleaned.is_empty() {
        "Unknown".into()
    } else {
        cleaned.chars().take(1024).collect()
    }
}

// The Kubernetes time helpers live with the resources' types; the controllers use them a lot.
pub use crate::crd::time::{from_timestamp, now, to_timestamp};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_two_seconds_to_five_minutes() {
        let delays: Vec<u64> = (1..=10).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(delays, [2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(backoff(u32::MAX), BACKOFF_MAX);
    }

    #[test]
    fn a_condition_keeps_its_transition_time_while_its_status_holds() {
        let then = Time(k8s_openapi::jiff::Timestamp::from_second(1_773_151_200).unwrap());
        let later = Time(k8s_openapi::jiff::Timestamp::from_second(1_773_154_800).unwrap());
        let first = condition(&[], "Ready", true, "Reachable", "ok", Some(1), then.clone());
        let same = condition(
            std::slice::from_ref(&first),
            "Ready",
            true,
            "Reachable",
            "ok",
            Some(2),
            later.clone(),
        );
        assert_eq!(same.last_transition_time, then);
        assert_eq!(same.observed_generation, Some(2));
        let flipped = condition(
            &[same],
            "Ready",
            false,
            "InvalidLogin",
            "no",
            Some(2),
            later.clone(),
        );
        assert_eq!(flipped.last_transition_time, later);
        assert_eq!(flipped.status, "False");
    }

    #[test]
    fn condition_reasons_are_made_acceptable_to_the_api_server() {
        assert_eq!(condition_reason("InvalidLogin"), "InvalidLogin");
        assert_eq!(condition_reason("not-found 404"), "notfound404");
        assert_eq!(condition_reason("42:,"), "Unknown");
        assert_eq!(condition_reason(""), "Unknown");
    }

    #[test]
    fn long_event_notes_are_cut_on_a_character_boundary() {
        let cut = truncate("é".repeat(600), 1024);
        assert!(cut.len() <= 1024 && cut.ends_with('…'));
        assert_eq!(truncate("short".into(), 1024), "short");
    }

    #[test]
    fn a_merge_patch_holds_the_changes_removes_what_is_gone_and_replaces_lists() {
        let from = serde_json::json!({
            "kept": 1, "changed": "a", "gone": true,
            "nested": {"same": 1, "dropped": 2, "list": [1, 2]},
            "list": [{"name": "a"}, {"name": "b"}],
        });
        let to = serde_json::json!({
            "kept": 1, "changed": "b", "new": [],
            "nested": {"same": 1, "list": [1, 2]},
            "list": [{"name": "b"}],
        });
        assert_eq!(
            merge_patch(&from, &to),
            Some(serde_json::json!({
                "changed": "b", "gone": null, "new": [],
                "nested": {"dropped": null},
                "list": [{"name": "b"}],
            }))
        );
        assert_eq!(merge_patch(&to, &to), None);
        assert_eq!(merge_patch(&serde_json::Value::Null, &to), Some(to.clone()));
    }

    #[test]
    fn every_log_line_of_a_reconcile_names_the_kind_namespace_name_and_generation() {
        use tracing_subscriber::fmt::MakeWriter;
        let schedule: crate::crd::SnapshotSchedule = serde_json::from_value(serde_json::json!({
            "apiVersion": "vctp.io/v1alpha1", "kind": "SnapshotSchedule",
            "metadata": {"name": "hourly", "namespace": "finance", "generation": 3},
            "spec": {"schedule": "0 * * * *"},
        }))
        .unwrap();
        // The writer must outlive the subscriber, which `with_default` keeps.
        static LINES: Mutex<Vec<u8>> = Mutex::new(Vec::new());
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(|| LINES.make_writer())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let _reconcile = reconcile_span(&schedule).entered();
            tracing::info!("a step");
        });
        let text = String::from_utf8(LINES.lock().unwrap().clone()).unwrap();
        assert!(
            text.contains(
                "reconcile{kind=SnapshotSchedule namespace=finance name=hourly generation=3}: "
            ),
            "{text}"
        );
    }
}
