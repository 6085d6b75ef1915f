//! What every controller does with the Jobs (and other objects) it owns: observe one (pure:
//! Job + its Pods + the clock → phase, times, the [`JobResult`] its container left, or why it
//! failed without one), create one idempotently (server-side apply of a deterministic name),
//! list its Pods, delete it.
//!
//! A Pod that cannot pull its image waits forever: Kubernetes never fails its Job. The
//! operator gives such a run up once a Pod has waited [`Patience::image_pull_timeout`] (at
//! once for an image name that cannot be valid), records it as failed with the kubelet's
//! reason, and deletes the Job.

use super::job::build_job;
use super::{Context, Error, MANAGER};
use crate::crd::Phase;
use crate::jobs::termination::JobResult;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ContainerStateTerminated, EnvVar, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::core::NamespaceResourceScope;
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};

/// The kubelet's waiting reasons of a container whose image cannot be had.
const IMAGE_PULL_REASONS: [&str; 4] = [
    "ErrImagePull",
    "ImagePullBackOff",
    "ErrImageNeverPull",
    "InvalidImageName",
];
/// The one of them no wait can cure.
const INVALID_IMAGE: &str = "InvalidImageName";
/// The reason of a run whose container stopped without a result (a crash, a missing library).
pub const CONTAINER_FAILED: &str = "ContainerFailed";
/// The kubelet's reason of a container killed for going over its memory limit.
pub const OOM_KILLED: &str = "OOMKilled";

/// What observing a Job needs besides the Job: the time, and how long a Pod may wait for its
/// image before the run is given up.
#[derive(Debug, Clone, PartialEq)]
pub struct Patience {
    pub now: Time,
    pub image_pull_timeout: std::time::Duration,
}

/// What a Job has come to.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub phase: Phase,
    /// When the Job started (its first Pod was created).
    pub start_time: Option<Time>,
    /// When it finished, successfully or not.
    pub completion_time: Option<Time>,
    /// What the work reported in its termination message, when it left one.
    pub result: Option<JobResult>,
    /// Why it is not running or failed, in words: the Job's failure condition, a Pod's
    /// waiting reason (image pull, missing Secret) or a log tail without a result.
    pub message: Option<String>,
    /// Why it failed when its container left no result: [`OOM_KILLED`], [`CONTAINER_FAILED`]
    /// or the image-pull reason it was given up for.
    pub failure: Option<String>,
    /// The operator gave the run up (its Pod cannot get its image): the Job must be deleted,
    /// Kubernetes would keep it waiting.
    pub abandoned: bool,
}

impl Observed {
    /// A stable reason for Events and conditions: the result's, else the Job's.
    pub fn reason(&self) -> &str {
        match (&self.result, self.phase) {
            (
                Some(JobResult {
                    reason: Some(reason),
                    ..
                }),
                _,
            ) => reason,
            _ if self.failure.is_some() => self.failure.as_deref().unwrap_or_default(),
            (_, Phase::Succeeded) => "Succeeded",
            (_, Phase::Failed) => "JobFailed",
            (_, Phase::Running) => "Running",
            (_, Phase::Pending) => "Pending",
        }
    }

    /// The result's message, else the Job's.
    pub fn summary(&self) -> Option<String> {
        self.result
            .as_ref()
            .and_then(|r| r.message.clone())
            .or_else(|| self.message.clone())
    }
}

/// The phase, times and result of `job`, whose Pods are `pods` (in any order).
pub fn observe(job: &Job, pods: &[Pod], patience: &Patience) -> Observed {
    let status = job.status.clone().unwrap_or_default();
    let condition = |type_: &str| {
        status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == type_ && c.status == "True")
    };
    let (phase, finished) = if let Some(c) = condition("Complete") {
        (Phase::Succeeded, Some(c))
    } else if let Some(c) = condition("Failed") {
        (Phase::Failed, Some(c))
    } else if status.active.unwrap_or(0) > 0 {
        (Phase::Running, None)
    } else {
        (Phase::Pending, None)
    };

    // Newest Pod first: its result is the one of the last attempt.
    let mut pods: Vec<&Pod> = pods.iter().collect();
    pods.sort_by_key(|p| std::cmp::Reverse(p.metadata.creation_timestamp.clone()));
    let container = |pod: &&Pod| {
        let status = pod.status.as_ref()?;
        status.container_statuses.as_ref()?.first().cloned()
    };
    let terminated: Vec<ContainerStateTerminated> = pods
        .iter()
        .filter_map(|pod| container(pod)?.state?.terminated)
        .collect();
    let mut result = None;
    let mut log_tail = None;
    for message in terminated.iter().filter_map(|t| t.message.as_deref()) {
        match JobResult::from_message(message) {
            Some(r) => {
                result = Some(r);
                break;
            }
            None if log_tail.is_none() => log_tail = Some(last_lines(message, 5)),
            None => {}
        }
    }
    // The last attempt, when it stopped without a result: a crash or the OOM killer.
    let crash = terminated
        .first()
        .filter(|t| t.exit_code != 0 && result.is_none())
        .map(|t| crashed(t, memory_limit(job)));
    let waiting = pods.iter().find_map(|pod| {
        let waiting = container(pod)?.state?.waiting?;
        let reason = waiting.reason?;
        // ContainerCreating is the normal way up, not news.
        (reason != "ContainerCreating").then(|| Waiting {
            text: match &waiting.message {
                Some(m) => format!("{reason}: {m}"),
                None => reason.clone(),
            },
            reason,
            since: pod.metadata.creation_timestamp.clone(),
        })
    });
    let gave_up = match (&waiting, phase) {
        (Some(w), Phase::Pending | Phase::Running) => w.image_given_up(patience),
        _ => None,
    };
    if let (Some(w), Some(waited)) = (&waiting, gave_up) {
        return Observed {
            phase: Phase::Failed,
            start_time: status.start_time.clone(),
            completion_time: Some(patience.now.clone()),
            result: None,
            message: Some(format!(
                "{}; the Pod waited {} for its image, so the operator gave the run up \
                 (--image-pull-timeout-seconds {}) and deleted the Job",
                w.text,
                humantime::format_duration(waited),
                patience.image_pull_timeout.as_secs()
            )),
            failure: Some(w.reason.clone()),
            abandoned: true,
        };
    }
    let message = match phase {
        Phase::Failed => {
            let parts: Vec<String> = [
                finished.and_then(|c| {
                    Some(format!(
                        "{}: {}",
                        c.reason.clone()?,
                        c.message.clone().unwrap_or_default()
                    ))
                }),
                crash.as_ref().map(|(_, text)| text.clone()),
                log_tail.map(|tail| format!("last output: {tail}")),
            ]
            .into_iter()
            .flatten()
            .collect();
            (!parts.is_empty()).then(|| parts.join("; "))
        }
        Phase::Pending | Phase::Running => waiting.map(|w| w.text).or_else(|| {
            crash
                .as_ref()
                .map(|(_, text)| format!("the last attempt failed, retrying: {text}"))
        }),
        Phase::Succeeded => None,
    };
    let failure = crash
        .filter(|_| phase == Phase::Failed)
        .map(|(reason, _)| reason.to_string());
    Observed {
        phase,
        start_time: status.start_time.clone(),
        completion_time: status
            .completion_time
            .clone()
            .or_else(|| finished.and_then(|c| c.last_transition_time.clone())),
        result,
        message,
        failure,
        abandoned: false,
    }
}

/// A container waiting to start, and since when its Pod exists.
struct Waiting {
    reason: String,
    text: String,
    since: Option<Time>,
}

impl Waiting {
    /// How long it waited for its image, when that is long enough to give the run up (at
    /// once for a name that cannot be valid).
    fn image_given_up(&self, patience: &Patience) -> Option<std::time::Duration> {
        if !IMAGE_PULL_REASONS.contains(&self.reason.as_str()) {
            return None;
        }
        let since = self.since.as_ref().map_or(patience.now.0, |t| t.0);
        let waited = std::time::Duration::from_secs(
            u64::try_from(patience.now.0.as_second() - since.as_second()).unwrap_or(0),
        );
        (self.reason == INVALID_IMAGE || waited >= patience.image_pull_timeout).then_some(waited)
    }
}

/// The reason and the words for a container that stopped with `terminated` and no result.
fn crashed(terminated: &ContainerStateTerminated, limit: Option<String>) -> (&'static str, String) {
    let code = terminated.exit_code;
    if terminated.reason.as_deref() == Some(OOM_KILLED) {
        let text = match limit {
            Some(limit) => format!(
                "OOMKilled: the container went over its memory limit {limit} (exit code {code}): raise resources.limits.memory in the Job template"
            ),
            None => format!(
                "OOMKilled: the node ran out of memory (exit code {code}; the container has no memory limit)"
            ),
        };
        return (OOM_KILLED, text);
    }
    let how = match terminated.reason.as_deref() {
        Some(reason) if reason != "Error" => format!(" ({reason})"),
        _ => String::new(),
    };
    (
        CONTAINER_FAILED,
        format!("the container stopped with exit code {code}{how} and left no result"),
    )
}

/// The memory limit of the Job's container, e.g. `512Mi`.
fn memory_limit(job: &Job) -> Option<String> {
    let pod = job.spec.as_ref()?.template.spec.as_ref()?;
    let limits = pod
        .containers
        .first()?
        .resources
        .as_ref()?
        .limits
        .as_ref()?;
    limits.get("memory").map(|q| q.0.clone())
}

/// One run of a resource's work as a Job, and what the reconcile found of it.
#[derive(Debug, Clone, PartialEq)]
pub enum Run {
    /// The Job was created by this reconcile.
    Created { job_name: String },
    /// The Job exists; this is what it has come to.
    Observed {
        job_name: String,
        observed: Box<Observed>,
    },
    /// Status names the Job but it is gone (deleted by hand, or by its TTL before the
    /// operator saw it finish).
    Vanished { job_name: String },
}

/// What starting a run needs: the Job's name, `app.kubernetes.io/component`, the `vctp job …`
/// arguments and the env referencing the resource's own Secrets.
pub struct JobRequest {
    pub name: String,
    pub component: &'static str,
    pub args: Vec<String>,
    pub env: Vec<EnvVar>,
}

/// Finds the Job of `request` and observes it, or creates it — unless `status_names_it`
/// says it was created before: a Job that is gone then is reported, never made again.
pub async fn ensure_run<K: Resource<DynamicType = ()>>(
    ctx: &Context,
    owner: &K,
    controller: &'static str,
    request: JobRequest,
    status_names_it: bool,
) -> Result<Run, Error> {
    let namespace = owner.meta().namespace.clone().unwrap_or_default();
    let job_name = request.name.clone();
    if let Some(job) = get_job(ctx, &namespace, &job_name).await? {
        let observed = observe_job(ctx, &job).await?;
        return Ok(Run::Observed {
            job_name,
            observed: Box::new(observed),
        });
    }
    if status_names_it {
        return Ok(Run::Vanished { job_name });
    }
    let job = build_job(
        owner,
        &request.name,
        request.component,
        request.args,
        request.env,
        &ctx.template,
    )?;
    create_job(ctx, &job, controller).await?;
    Ok(Run::Created { job_name })
}

impl Run {
    pub fn job_name(&self) -> &str {
        match self {
            Run::Created { job_name }
            | Run::Observed { job_name, .. }
            | Run::Vanished { job_name } => job_name,
        }
    }

    /// The phase the resource's status should show.
    pub fn phase(&self) -> Phase {
        match self {
            Run::Created { .. } => Phase::Pending,
            Run::Observed { observed, .. } => observed.phase,
            Run::Vanished { .. } => Phase::Failed,
        }
    }

    /// The verdict of the resource's `Complete`/`Ready` conditions: `Some(true)` once it
    /// succeeded, `Some(false)` once it failed, `None` (`Unknown`) while it runs, so a run in
    /// progress is not read as a failure.
    pub fn verdict(&self) -> Option<bool> {
        match self.phase() {
            Phase::Succeeded => Some(true),
            Phase::Failed => Some(false),
            Phase::Pending | Phase::Running => None,
        }
    }

    /// The reason for conditions and Events.
    pub fn reason(&self) -> &str {
        match self {
            Run::Created { .. } => "JobCreated",
            Run::Observed { observed, .. } => observed.reason(),
            Run::Vanished { .. } => "JobDeleted",
        }
    }

    /// The message for status, conditions and Events.
    pub fn message(&self) -> Option<String> {
        match self {
            Run::Created { job_name } => Some(format!("created Job {job_name}")),
            Run::Observed { job_name, observed } => observed.summary().or_else(|| {
                Some(match observed.phase {
                    Phase::Pending => format!("Job {job_name} is waiting for its Pod to start"),
                    Phase::Running => format!("Job {job_name} is running"),
                    Phase::Succeeded => format!("Job {job_name} succeeded"),
                    Phase::Failed => format!("Job {job_name} failed"),
                })
            }),
            Run::Vanished { job_name } => Some(format!(
                "Job {job_name} was deleted before its outcome was recorded"
            )),
        }
    }

    pub fn observed(&self) -> Option<&Observed> {
        match self {
            Run::Observed { observed, .. } => Some(observed),
            _ => None,
        }
    }

    /// Deletes the Job when the run was given up (see [`Observed::abandoned`]); called once
    /// the status says why, so the reason is never lost with the Job.
    pub async fn stop_if_abandoned(&self, ctx: &Context, namespace: &str) -> Result<(), Error> {
        match self {
            Run::Observed { job_name, observed } if observed.abandoned => {
                delete::<Job>(ctx, namespace, job_name).await
            }
            _ => Ok(()),
        }
    }

    /// The Event this run deserves given the phase status showed before: one when the Job
    /// is created, one when it finishes, none while nothing changes.
    pub fn event(&self, previous: Option<Phase>) -> Option<(EventType, String, String)> {
        let phase = self.phase();
        if previous == Some(phase) && !matches!(self, Run::Created { .. }) {
            return None;
        }
        let message = self.message().unwrap_or_default();
        match (self, phase) {
            (Run::Created { .. }, _) => {
                Some((EventType::Normal, "JobCreated".to_string(), message))
            }
            (_, Phase::Succeeded) => Some((EventType::Normal, "Succeeded".to_string(), message)),
            (_, Phase::Failed) => Some((EventType::Warning, self.reason().to_string(), message)),
            _ => None,
        }
    }
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.trim_end().lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The Job named `name` in `namespace`, if it exists.
pub async fn get_job(ctx: &Context, namespace: &str, name: &str) -> Result<Option<Job>, Error> {
    Api::<Job>::namespaced(ctx.client.clone(), namespace)
        .get_opt(name)
        .await
        .map_err(|source| Error::api("read", "Job", namespace, name, source))
}

/// Creates `job` unless a Job of its name exists (see [`create`]).
pub async fn create_job(ctx: &Context, job: &Job, controller: &'static str) -> Result<Job, Error> {
    let created = create(ctx, job).await?;
    ctx.metrics.job_created(controller);
    Ok(created)
}

/// Creates `object` (named and namespaced) unless one of its name exists: server-side apply
/// without force, so applying the same object again changes nothing and a restarted
/// operator never makes a second one.
pub async fn create<K>(ctx: &Context, object: &K) -> Result<K, Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + serde::Serialize
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let namespace = object.namespace().unwrap_or_default();
    let name = object.name_any();
    Api::<K>::namespaced(ctx.client.clone(), &namespace)
        .patch(&name, &PatchParams::apply(MANAGER), &Patch::Apply(object))
        .await
        .map_err(|source| Error::api("create", &K::kind(&()), &namespace, &name, source))
}

/// Deletes the object `name`; what it owns (a Job's Pods) goes in the background. An object
/// already gone is fine.
pub async fn delete<K>(ctx: &Context, namespace: &str, name: &str) -> Result<(), Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    match Api::<K>::namespaced(ctx.client.clone(), namespace)
        .delete(name, &DeleteParams::background())
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(source) => Err(Error::api("delete", &K::kind(&()), namespace, name, source)),
    }
}

/// The Pods of the Job `job_name` (label `job-name`, which every Kubernetes version sets).
pub async fn job_pods(ctx: &Context, namespace: &str, job_name: &str) -> Result<Vec<Pod>, Error> {
    Api::<Pod>::namespaced(ctx.client.clone(), namespace)
        .list(&ListParams::default().labels(&format!("job-name={job_name}")))
        .await
        .map(|list| list.items)
        .map_err(|source| Error::api("list the Pods of", "Job", namespace, job_name, source))
}

/// [`observe`] with the Pods read from the API.
pub async fn observe_job(ctx: &Context, job: &Job) -> Result<Observed, Error> {
    let namespace = job.metadata.namespace.clone().unwrap_or_default();
    let name = job.metadata.name.clone().unwrap_or_default();
    let pods = job_pods(ctx, &namespace, &name).await?;
    Ok(observe(job, &pods, &ctx.patience()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(status: &str) -> Job {
        serde_yaml::from_str(&format!(
            "apiVersion: batch/v1\nkind: Job\nmetadata: {{name: j, namespace: n}}\nstatus:\n{status}"
        ))
        .unwrap()
    }

    fn pod(created: &str, container_state: &str) -> Pod {
        serde_yaml::from_str(&format!(
            r#"
apiVersion: v1
kind: Pod
metadata: {{name: p-{created}, namespace: n, creationTimestamp: "{created}"}}
status:
  containerStatuses:
    - name: vctp
      image: vctp
      imageID: ""
      ready: false
      restartCount: 0
      state:
{container_state}
"#
        ))
        .unwrap()
    }

    fn patience(now: &str) -> Patience {
        Patience {
            now: serde_json::from_value(serde_json::json!(now)).unwrap(),
            image_pull_timeout: std::time::Duration::from_secs(300),
        }
    }

    fn terminated(exit: i32, message: &str) -> String {
        format!(
            "        terminated:\n          exitCode: {exit}\n          message: {}\n",
            serde_json::to_string(message).unwrap()
        )
    }

    #[test]
    fn a_run_announces_its_creation_and_its_end_once() {
        let created = Run::Created {
            job_name: "j".into(),
        };
        let (kind, reason, note) = created.event(None).unwrap();
        assert_eq!(
            (kind, reason.as_str(), note.as_str()),
            (EventType::Normal, "JobCreated", "created Job j")
        );

        let running = Run::Observed {
            job_name: "j".into(),
            observed: Box::new(observe(
                &job("  active: 1"),
                &[],
                &patience("2026-03-10T14:01:00Z"),
            )),
        };
        assert_eq!(running.event(Some(Phase::Pending)), None);

        let failed = Run::Observed {
            job_name: "j".into(),
            observed: Box::new(Observed {
                phase: Phase::Failed,
                start_time: None,
                completion_time: None,
                result: Some(JobResult::failed("Unauthorized", "refused".into())),
                message: None,
                failure: None,
                abandoned: false,
            }),
        };
        let (kind, reason, _) = failed.event(Some(Phase::Running)).unwrap();
        assert_eq!(
            (kind, reason.as_str()),
            (EventType::Warning, "Unauthorized")
        );
        assert_eq!(failed.event(Some(Phase::Failed)), None);

        let vanished = Run::Vanished {
            job_name: "j".into(),
        };
        assert_eq!(vanished.phase(), Phase::Failed);
        assert_eq!(
            vanished.event(Some(Phase::Running)).unwrap().1,
            "JobDeleted"
        );
    }

    #[test]
    fn a_job_without_pods_is_pending_and_one_with_an_active_pod_running() {
        let pending = observe(&job("  {}"), &[], &patience("2026-03-10T14:01:00Z"));
        assert_eq!(pending.phase, Phase::Pending);
        assert_eq!(pending.message, None);
        let running = observe(
            &job("  active: 1\n  startTime: \"2026-03-10T14:00:05Z\""),
            &[],
            &patience("2026-03-10T14:01:00Z"),
        );
        assert_eq!(running.phase, Phase::Running);
        assert!(running.start_time.is_some());
    }

    #[test]
    fn a_pod_that_cannot_start_says_why() {
        let stuck = pod(
            "2026-03-10T14:00:05Z",
            "        waiting:\n          reason: CreateContainerConfigError\n          message: secret \"vc01-account\" not found\n",
        );
        let observed = observe(
            &job("  active: 1"),
            &[stuck],
            &patience("2026-03-10T14:01:00Z"),
        );
        assert_eq!(
            observed.message.as_deref(),
            Some("CreateContainerConfigError: secret \"vc01-account\" not found")
        );
    }

    #[test]
    fn a_complete_job_succeeds_with_the_result_of_its_pod() {
        let result = r#"{"succeeded":true,"message":"stored 412 rows","snapshot":{"snapshotTime":1773151200,"rows":412,"inventorySize":415}}"#;
        let observed = observe(
            &job(
                "  succeeded: 1\n  completionTime: \"2026-03-10T14:01:00Z\"\n  conditions:\n    - {type: Complete, status: \"True\"}",
            ),
            &[pod("2026-03-10T14:00:05Z", &terminated(0, result))],
            &patience("2026-03-10T14:02:00Z"),
        );
        assert_eq!(observed.phase, Phase::Succeeded);
        assert_eq!(observed.reason(), "Succeeded");
        assert_eq!(observed.summary().as_deref(), Some("stored 412 rows"));
        assert_eq!(observed.result.unwrap().snapshot.unwrap().rows, 412);
        assert!(observed.completion_time.is_some());
    }

    #[test]
    fn a_failed_job_reports_the_last_attempts_result_and_reason() {
        let first = r#"{"succeeded":false,"reason":"Connect","message":"first attempt"}"#;
        let last = r#"{"succeeded":false,"reason":"InvalidLogin","message":"failed to log in to vCenter vc01: wrong user name or password"}"#;
        let observed = observe(
            &job(
                "  failed: 2\n  conditions:\n    - {type: Failed, status: \"True\", reason: BackoffLimitExceeded, message: Job has reached the specified backoff limit, lastTransitionTime: \"2026-03-10T14:02:00Z\"}",
            ),
            &[
                pod("2026-03-10T14:01:00Z", &terminated(1, last)),
                pod("2026-03-10T14:00:05Z", &terminated(1, first)),
            ],
            &patience("2026-03-10T14:02:00Z"),
        );
        assert_eq!(observed.phase, Phase::Failed);
        assert_eq!(observed.reason(), "InvalidLogin");
        assert!(observed.summary().unwrap().contains("wrong user name"));
        assert_eq!(
            observed.completion_time.map(|t| t.0.as_second()),
            Some(1_773_151_320)
        );
    }

    #[test]
    fn a_crash_without_a_result_keeps_its_exit_code_and_the_tail_of_its_log() {
        let log = "line 1\nline 2\nline 3\nline 4\nline 5\nthread 'main' panicked at src/main.rs:1";
        let observed = observe(
            &job(
                "  failed: 1\n  conditions:\n    - {type: Failed, status: \"True\", reason: BackoffLimitExceeded, message: Job has reached the specified backoff limit}",
            ),
            &[pod("2026-03-10T14:00:05Z", &terminated(101, log))],
            &patience("2026-03-10T14:02:00Z"),
        );
        assert_eq!(observed.reason(), CONTAINER_FAILED);
        let message = observed.summary().unwrap();
        assert!(
            message.starts_with("BackoffLimitExceeded: Job has reached"),
            "{message}"
        );
        assert!(message.contains("exit code 101"), "{message}");
        assert!(message.ends_with("panicked at src/main.rs:1"), "{message}");
        assert!(!message.contains("line 1"), "{message}");
    }

    #[test]
    fn an_oom_killed_run_fails_with_that_reason_and_the_memory_limit_to_raise() {
        let mut failed = job(
            "  failed: 2\n  conditions:\n    - {type: Failed, status: \"True\", reason: BackoffLimitExceeded, message: Job has reached the specified backoff limit}",
        );
        failed.spec = serde_yaml::from_str(
            "template:\n  spec:\n    containers:\n      - name: vctp\n        resources: {limits: {memory: 64Mi}}\n",
        )
        .unwrap();
        let killed = "        terminated:\n          exitCode: 137\n          reason: OOMKilled\n";
        let observed = observe(
            &failed,
            &[pod("2026-03-10T14:00:05Z", killed)],
            &patience("2026-03-10T14:02:00Z"),
        );
        assert_eq!(observed.phase, Phase::Failed);
        assert_eq!(observed.reason(), OOM_KILLED);
        let message = observed.summary().unwrap();
        assert!(message.contains("exit code 137"), "{message}");
        assert!(message.contains("memory limit 64Mi"), "{message}");
        let run = Run::Observed {
            job_name: "j".into(),
            observed: Box::new(observed),
        };
        let (kind, reason, note) = run.event(Some(Phase::Running)).unwrap();
        assert_eq!((kind, reason.as_str()), (EventType::Warning, OOM_KILLED));
        assert!(note.contains("memory limit 64Mi"), "{note}");
    }

    #[test]
    fn a_retry_after_an_oom_kill_says_what_happened_to_the_attempt_before() {
        let killed = "        terminated:\n          exitCode: 137\n          reason: OOMKilled\n";
        let observed = observe(
            &job("  active: 1\n  failed: 1"),
            &[pod("2026-03-10T14:00:05Z", killed)],
            &patience("2026-03-10T14:02:00Z"),
        );
        assert_eq!(observed.phase, Phase::Running);
        let message = observed.message.unwrap_or_default();
        assert!(message.contains("OOMKilled"), "{message}");
    }

    #[test]
    fn a_pod_waiting_for_its_image_is_given_up_after_the_timeout_with_the_kubelets_reason() {
        let waiting = pod(
            "2026-03-10T14:00:05Z",
            "        waiting:\n          reason: ImagePullBackOff\n          message: Back-off pulling image \"vctp:typo\"\n",
        );
        let active = job("  active: 1\n  startTime: \"2026-03-10T14:00:05Z\"");
        let early = observe(
            &active,
            std::slice::from_ref(&waiting),
            &patience("2026-03-10T14:04:00Z"),
        );
        assert_eq!(early.phase, Phase::Running);
        assert!(!early.abandoned);
        assert!(
            early
                .message
                .as_deref()
                .is_some_and(|m| m.starts_with("ImagePullBackOff: Back-off pulling image")),
            "{early:?}"
        );

        let late = observe(&active, &[waiting], &patience("2026-03-10T14:05:06Z"));
        assert_eq!(late.phase, Phase::Failed);
        assert!(late.abandoned);
        assert_eq!(late.reason(), "ImagePullBackOff");
        let message = late.summary().unwrap();
        assert!(message.contains("vctp:typo"), "{message}");
        assert!(
            message.contains("5m 1s") && message.contains("--image-pull-timeout-seconds"),
            "{message}"
        );
        assert!(late.completion_time.is_some());
        let run = Run::Observed {
            job_name: "j".into(),
            observed: Box::new(late),
        };
        let (kind, reason, _) = run.event(Some(Phase::Running)).unwrap();
        assert_eq!(
            (kind, reason.as_str()),
            (EventType::Warning, "ImagePullBackOff")
        );
    }

    #[test]
    fn an_image_name_that_cannot_be_valid_is_given_up_at_once() {
        let waiting = pod(
            "2026-03-10T14:00:05Z",
            "        waiting:\n          reason: InvalidImageName\n          message: Failed to apply default image tag \"Vctp:X\"\n",
        );
        let observed = observe(
            &job("  active: 1"),
            &[waiting],
            &patience("2026-03-10T14:00:06Z"),
        );
        assert_eq!((observed.phase, observed.abandoned), (Phase::Failed, true));
        assert_eq!(observed.reason(), "InvalidImageName");
    }
}
