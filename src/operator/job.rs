//! The Kubernetes Job every kind runs its work in: owner resource + name + `vctp job …`
//! arguments + the operator's [`JobTemplate`] → a `batch/v1` Job. Pure: no API calls, so the
//! controllers' "build" step is unit-tested from inline YAML.
//!
//! The template is a complete `batch/v1` Job: the Helm chart renders it into a ConfigMap
//! (`VCTP_JOB_TEMPLATE`), so image, ServiceAccount, resources, scheduling and Secrets are the
//! chart's values. Without a file the operator uses [`JobTemplate::restricted`]. The operator
//! fills in only what belongs to one run: name, namespace, owner reference (`controller:
//! true`, so deleting the resource deletes the Job and its Pod), labels, the container's
//! `args` and the env that references the resource's own Secrets.

use crate::crd::SecretKeyRef;
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapKeySelector, Container, EmptyDirVolumeSource, EnvVar, EnvVarSource,
    PodSecurityContext, PodSpec, PodTemplateSpec, SeccompProfile, SecretKeySelector,
    SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;

/// Name of the one container of the built-in template.
pub const CONTAINER_NAME: &str = "vctp";
/// The non-root user (and group) the container runs as: `nonroot` of distroless images.
pub const RUN_AS_USER: i64 = 65_532;
/// Environment variable with the database URL, read from a Secret.
pub const ENV_DATABASE_URL: &str = "VCTP_DATABASE_URL";
/// Environment variable with the object store URL of reports and export bundles.
pub const ENV_REPORTS_URL: &str = "VCTP_REPORTS_URL";
/// Longest Job name: the Job controller copies it into the `job-name` label of its Pods, and
/// label values are at most 63 characters.
pub const MAX_NAME_LEN: usize = 63;
/// Hex characters of the SHA-256 suffix [`job_name`] appends when it had to shorten or
/// rewrite the name.
const HASH_LEN: usize = 8;
const TMP_VOLUME: &str = "tmp";
/// Label naming the installation (the Helm release, `--instance` / `VCTP_INSTANCE`) on every
/// Job and Pod the operator creates: `kubectl get jobs -l vctp.io/instance=<release>` finds
/// them all. `app.kubernetes.io/instance` names the owning resource instead (see [`labels`]).
pub const INSTANCE_LABEL: &str = "vctp.io/instance";

/// The Job every run starts from (see the module documentation).
#[derive(Debug, Clone, PartialEq)]
pub struct JobTemplate {
    job: Job,
}

/// What the built-in template needs when there is no template file.
#[derive(Debug, Clone, PartialEq)]
pub struct Defaults {
    /// The vctp image; its entrypoint is `vctp`, the Job passes the subcommand as `args`.
    pub image: String,
    /// `Always`, `IfNotPresent` or `Never` [default: Kubernetes' default for the tag].
    pub image_pull_policy: Option<String>,
    /// Service account of the Job's Pod.
    pub service_account: String,
    /// The Secret key holding the database URL (`VCTP_DATABASE_URL`).
    pub database_url_secret: SecretKeyRef,
    /// Object store URL of reports and export bundles (`VCTP_REPORTS_URL`).
    pub reports_url: String,
    /// Pods started again after a failure before the Job fails.
    pub backoff_limit: i32,
    /// Seconds after the Job finished before Kubernetes deletes it.
    pub ttl_seconds_after_finished: i32,
}

/// A Secret or ConfigMap the Job template references: the Pod cannot start without it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prerequisite {
    /// `Secret` or `ConfigMap`.
    pub kind: &'static str,
    pub name: String,
    /// Where the template uses it, e.g. `env VCTP_DATABASE_URL`, `envFrom`, `volume settings`.
    pub used_as: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error(
        "failed to build Job {job}: {kind} {owner:?} has no {missing} (build from the object read back from the API server)"
    )]
    OwnerNotPersisted {
        job: String,
        kind: String,
        owner: String,
        missing: &'static str,
    },
    #[error("failed to build Job {job}: {kind} {owner:?} has no namespace")]
    OwnerNotNamespaced {
        job: String,
        kind: String,
        owner: String,
    },
    #[error(
        "failed to build Job {job:?}: the name is not a DNS-1123 label of at most {MAX_NAME_LEN} characters (make it with job_name)"
    )]
    InvalidName { job: String },
    #[error(
        "failed to build Job {job}: component {component:?} is not a label value (at most 63 of a-z 0-9 -, starting and ending alphanumeric)"
    )]
    InvalidComponent { job: String, component: String },
    #[error("failed to read the Job template {source_name}: {message}")]
    ReadTemplate {
        source_name: String,
        message: String,
    },
    #[error("the Job template {source_name} is not usable: {problem}")]
    InvalidTemplate {
        source_name: String,
        problem: &'static str,
    },
    #[error(
        "the instance name {instance:?} (--instance, VCTP_INSTANCE) is not a label value: at most {MAX_NAME_LEN} of a-z 0-9 -, starting and ending alphanumeric"
    )]
    InvalidInstance { instance: String },
}

impl Error {
    /// A stable short name, for metric labels and Kubernetes Event reasons.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::OwnerNotPersisted { .. } => "JobOwnerNotPersisted",
            Error::OwnerNotNamespaced { .. } => "JobOwnerNotNamespaced",
            Error::InvalidName { .. } => "InvalidJobName",
            Error::InvalidComponent { .. } => "InvalidJobComponent",
            Error::ReadTemplate { .. } => "JobTemplateUnreadable",
            Error::InvalidTemplate { .. } => "InvalidJobTemplate",
            Error::InvalidInstance { .. } => "InvalidInstance",
        }
    }
}

impl JobTemplate {
    /// Reads a template file (YAML of one `batch/v1` Job).
    pub fn load(path: &Path) -> Result<JobTemplate, Error> {
        let source_name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| Error::ReadTemplate {
            source_name: source_name.clone(),
            message: e.to_string(),
        })?;
        JobTemplate::parse(&text, &source_name)
    }

    /// Parses a template and checks what the operator relies on: one container, Pods that
    /// are not restarted in place (`restartPolicy: Never`, so every attempt leaves its own
    /// termination message).
    pub fn parse(text: &str, source_name: &str) -> Result<JobTemplate, Error> {
        let invalid = |problem| Error::InvalidTemplate {
            source_name: source_name.to_string(),
            problem,
        };
        let deserializer = serde_yaml::Deserializer::from_str(text);
        let job: Job =
            serde_path_to_error::deserialize(deserializer).map_err(|e| Error::ReadTemplate {
                source_name: source_name.to_string(),
                message: e.to_string(),
            })?;
        let pod = job
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .ok_or_else(|| invalid("it has no spec.template.spec"))?;
        if pod.containers.len() != 1 {
            return Err(invalid(
                "spec.template.spec.containers must hold exactly one container",
            ));
        }
        if pod.restart_policy.as_deref() != Some("Never") {
            return Err(invalid("spec.template.spec.restartPolicy must be Never"));
        }
        if pod.containers[0]
            .image
            .as_deref()
            .unwrap_or_default()
            .is_empty()
        {
            return Err(invalid("the container has no image"));
        }
        Ok(JobTemplate { job })
    }

    /// The built-in template: restricted Pod Security Standard (non-root 65532, no privilege
    /// escalation, no capabilities, RuntimeDefault seccomp, read-only root filesystem with a
    /// writable `/tmp`), `restartPolicy: Never`, the database URL from its Secret.
    pub fn restricted(defaults: &Defaults) -> JobTemplate {
        let container = Container {
            name: CONTAINER_NAME.into(),
            image: Some(defaults.image.clone()),
            image_pull_policy: defaults.image_pull_policy.clone(),
            env: Some(vec![
                secret_env(ENV_DATABASE_URL, &defaults.database_url_secret),
                EnvVar {
                    name: ENV_REPORTS_URL.into(),
                    value: Some(defaults.reports_url.clone()),
                    ..EnvVar::default()
                },
                EnvVar {
                    name: "TMPDIR".into(),
                    value: Some("/tmp".into()),
                    ..EnvVar::default()
                },
            ]),
            security_context: Some(SecurityContext {
                allow_privilege_escalation: Some(false),
                capabilities: Some(Capabilities {
                    drop: Some(vec!["ALL".into()]),
                    ..Capabilities::default()
                }),
                read_only_root_filesystem: Some(true),
                run_as_non_root: Some(true),
                ..SecurityContext::default()
            }),
            termination_message_policy: Some("FallbackToLogsOnError".into()),
            volume_mounts: Some(vec![VolumeMount {
                name: TMP_VOLUME.into(),
                mount_path: "/tmp".into(),
                ..VolumeMount::default()
            }]),
            ..Container::default()
        };
        let pod = PodSpec {
            containers: vec![container],
            restart_policy: Some("Never".into()),
            service_account_name: Some(defaults.service_account.clone()),
            security_context: Some(PodSecurityContext {
                run_as_non_root: Some(true),
                run_as_user: Some(RUN_AS_USER),
                run_as_group: Some(RUN_AS_USER),
                fs_group: Some(RUN_AS_USER),
                seccomp_profile: Some(SeccompProfile {
                    type_: "RuntimeDefault".into(),
                    ..SeccompProfile::default()
                }),
                ..PodSecurityContext::default()
            }),
            volumes: Some(vec![Volume {
                name: TMP_VOLUME.into(),
                empty_dir: Some(EmptyDirVolumeSource::default()),
                ..Volume::default()
            }]),
            ..PodSpec::default()
        };
        JobTemplate {
            job: Job {
                metadata: ObjectMeta::default(),
                spec: Some(JobSpec {
                    backoff_limit: Some(defaults.backoff_limit),
                    ttl_seconds_after_finished: Some(defaults.ttl_seconds_after_finished),
                    template: PodTemplateSpec {
                        metadata: None,
                        spec: Some(pod),
                    },
                    ..JobSpec::default()
                }),
                status: None,
            },
        }
    }

    /// The template with [`INSTANCE_LABEL`] set to `instance` on the Job and its Pod;
    /// [`build_job`] keeps it (it only lays its own labels over the template's).
    pub fn with_instance(mut self, instance: &str) -> Result<JobTemplate, Error> {
        if !is_dns1123_label(instance) {
            return Err(Error::InvalidInstance {
                instance: instance.to_string(),
            });
        }
        let label = || BTreeMap::from([(INSTANCE_LABEL.to_string(), instance.to_string())]);
        let meta = &mut self.job.metadata;
        meta.labels = Some(merged(meta.labels.take(), &label()));
        if let Some(spec) = self.job.spec.as_mut() {
            let pod_meta = spec
                .template
                .metadata
                .get_or_insert_with(ObjectMeta::default);
            pod_meta.labels = Some(merged(pod_meta.labels.take(), &label()));
        }
        Ok(self)
    }

    /// The template as a Job.
    pub fn job(&self) -> &Job {
        &self.job
    }

    /// The Secrets and ConfigMaps (not `optional`) every Job's Pod needs in its namespace
    /// before it can start, each with where the template uses it.
    pub fn prerequisites(&self) -> Vec<Prerequisite> {
        let need = |kind, name: &str, used_as: String| Prerequisite {
            kind,
            name: name.to_string(),
            used_as,
        };
        let pod = self
            .job
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref());
        let containers = pod.into_iter().flat_map(|p| &p.containers);
        let mut needed = Vec::new();
        for container in containers {
            for env in container.env.iter().flatten() {
                let from = env.value_from.as_ref();
                if let Some(r) = from.and_then(|f| f.secret_key_ref.as_ref())
                    && r.optional != Some(true)
                {
                    needed.push(need("Secret", &r.name, format!("env {}", env.name)));
                }
                if let Some(r) = from.and_then(|f| f.config_map_key_ref.as_ref())
                    && r.optional != Some(true)
                {
                    needed.push(need("ConfigMap", &r.name, format!("env {}", env.name)));
                }
            }
            for source in container.env_from.iter().flatten() {
                if let Some(r) = source
                    .secret_ref
                    .as_ref()
                    .filter(|r| r.optional != Some(true))
                {
                    needed.push(need("Secret", &r.name, "envFrom".into()));
                }
                if let Some(r) =
                    (source.config_map_ref.as_ref()).filter(|r| r.optional != Some(true))
                {
                    needed.push(need("ConfigMap", &r.name, "envFrom".into()));
                }
            }
        }
        for volume in pod.into_iter().flat_map(|p| p.volumes.iter().flatten()) {
            let used_as = format!("volume {}", volume.name);
            if let Some(name) = (volume.secret.as_ref())
                .filter(|s| s.optional != Some(true))
                .and_then(|s| s.secret_name.as_deref())
            {
                needed.push(need("Secret", name, used_as.clone()));
            }
            if let Some(c) = (volume.config_map.as_ref()).filter(|c| c.optional != Some(true)) {
                needed.push(need("ConfigMap", &c.name, used_as));
            }
        }
        needed
    }
}

/// The Job running `vctp <args…>` for `owner`: in the owner's namespace, owned by it, labelled
/// for `kubectl get jobs -l app.kubernetes.io/instance=<owner>` and built from `template`,
/// with `env` added to (or replacing same-named variables of) the container's environment.
///
/// `name` must be a DNS-1123 label of at most 63 characters (see [`job_name`]); `component`
/// (`snapshot`, `aggregate`, `export`) goes into the `app.kubernetes.io/component` label.
pub fn build_job<K: Resource<DynamicType = ()>>(
    owner: &K,
    name: &str,
    component: &str,
    args: Vec<String>,
    env: Vec<EnvVar>,
    template: &JobTemplate,
) -> Result<Job, Error> {
    if !is_dns1123_label(name) {
        return Err(Error::InvalidName {
            job: name.to_string(),
        });
    }
    if !is_dns1123_label(component) {
        return Err(Error::InvalidComponent {
            job: name.to_string(),
            component: component.to_string(),
        });
    }
    let kind = K::kind(&()).to_string();
    let owner_name = owner.meta().name.clone().unwrap_or_default();
    let not_persisted = |missing| Error::OwnerNotPersisted {
        job: name.to_string(),
        kind: kind.clone(),
        owner: owner_name.clone(),
        missing,
    };
    if owner_name.is_empty() {
        return Err(not_persisted("name"));
    }
    let mut owner_ref = owner
        .controller_owner_ref(&())
        .ok_or_else(|| not_persisted("uid"))?;
    owner_ref.block_owner_deletion = Some(true);
    let namespace = owner
        .meta()
        .namespace
        .clone()
        .ok_or_else(|| Error::OwnerNotNamespaced {
            job: name.to_string(),
            kind: kind.clone(),
            owner: owner_name.clone(),
        })?;
    let labels = labels(&owner_name, component);

    let mut job = template.job.clone();
    job.status = None;
    job.metadata = ObjectMeta {
        name: Some(name.to_string()),
        namespace: Some(namespace),
        labels: Some(merged(job.metadata.labels.take(), &labels)),
        annotations: job.metadata.annotations.take(),
        owner_references: Some(vec![owner_ref]),
        ..ObjectMeta::default()
    };
    // `parse` and `restricted` guarantee the spec and its one container.
    if let Some(spec) = job.spec.as_mut() {
        let pod_meta = spec
            .template
            .metadata
            .get_or_insert_with(ObjectMeta::default);
        pod_meta.labels = Some(merged(pod_meta.labels.take(), &labels));
        if let Some(container) = spec
            .template
            .spec
            .as_mut()
            .and_then(|pod| pod.containers.first_mut())
        {
            container.args = Some(args);
            let container_env = container.env.get_or_insert_with(Vec::new);
            container_env.retain(|existing| env.iter().all(|e| e.name != existing.name));
            container_env.extend(env);
        }
    }
    Ok(job)
}

/// `base` with `ours` laid over it.
fn merged(
    base: Option<BTreeMap<String, String>>,
    ours: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut labels = base.unwrap_or_default();
    labels.extend(ours.iter().map(|(k, v)| (k.clone(), v.clone())));
    labels
}

/// The labels of a Job and its Pod: `app.kubernetes.io/{name, instance, component,
/// managed-by, part-of}`. `instance` is the owner's name, shortened with a hash suffix when
/// it is longer than a label value may be.
pub fn labels(instance: &str, component: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".into(), "vctp".into()),
        ("app.kubernetes.io/instance".into(), label_value(instance)),
        ("app.kubernetes.io/component".into(), component.to_string()),
        (
            "app.kubernetes.io/managed-by".into(),
            "vctp-operator".into(),
        ),
        ("app.kubernetes.io/part-of".into(), "vctp".into()),
    ])
}

/// `name` (of a Kubernetes object) as a label value: kept when it fits in 63 characters,
/// else shortened with a hash suffix (deterministic, so selectors built from the same name
/// find the labelled objects).
pub fn label_value(name: &str) -> String {
    if name.len() <= MAX_NAME_LEN {
        name.to_string()
    } else {
        with_hash(name, name)
    }
}

/// An environment variable read from a Secret key (the Pod does not start while it is
/// missing).
pub fn secret_env(name: &str, secret: &SecretKeyRef) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.name.clone(),
                key: secret.key.clone(),
                optional: Some(false),
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

/// An environment variable read from a ConfigMap key.
pub fn config_map_env(name: &str, config_map: &crate::crd::ConfigMapKeyRef) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value_from: Some(EnvVarSource {
            config_map_key_ref: Some(ConfigMapKeySelector {
                name: config_map.name.clone(),
                key: config_map.key.clone(),
                optional: Some(false),
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

/// A deterministic Job name from its parts (owner name, kind of work, run key), joined with
/// `-`: a DNS-1123 label of at most 63 characters, so the same parts always name the same Job
/// and a restarted operator finds the Job it created instead of creating another.
///
/// Parts that are already lowercase `a-z 0-9 -` and fit are used as they are. Otherwise other
/// characters become `-`, the name is cut to fit and `-` plus 8 hex characters of the SHA-256
/// of the original parts is appended, so two different inputs never share a name because
/// of the rewriting (`vc1.lab` and `vc1-lab` differ).
pub fn job_name(parts: &[&str]) -> String {
    let joined = parts.join("-");
    let sanitized: String = joined
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '-' => c,
            'A'..='Z' => c.to_ascii_lowercase(),
            _ => '-',
        })
        .collect();
    let sanitized = sanitized.trim_matches('-');
    if sanitized == joined && is_dns1123_label(sanitized) {
        return joined;
    }
    with_hash(sanitized, &joined)
}

/// `prefix` cut so that `-` and the hash of `source` fit in [`MAX_NAME_LEN`].
fn with_hash(prefix: &str, source: &str) -> String {
    let digest = Sha256::digest(source.as_bytes());
    let hash: String = digest
        .iter()
        .take(HASH_LEN / 2)
        .map(|b| format!("{b:02x}"))
        .collect();
    let keep = MAX_NAME_LEN - 1 - HASH_LEN;
    let prefix = prefix
        .char_indices()
        .nth(keep)
        .map_or(prefix, |(end, _)| &prefix[..end])
        .trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
    if prefix.is_empty() {
        hash
    } else {
        format!("{prefix}-{hash}")
    }
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters.
fn is_dns1123_label(s: &str) -> bool {
    let bytes = s.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_NAME_LEN
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{AggregationJob, MetricsExport, VCenterTarget};
    use serde_json::json;

    /// A template as the chart renders it (trimmed).
    const CHART_TEMPLATE: &str = r#"
apiVersion: batch/v1
kind: Job
metadata:
  labels:
    helm.sh/chart: vctp-0.1.0
    app.kubernetes.io/component: job
spec:
  backoffLimit: 3
  ttlSecondsAfterFinished: 86400
  template:
    metadata:
      labels:
        team: finance
    spec:
      restartPolicy: Never
      serviceAccountName: vctp-job
      nodeSelector:
        kubernetes.io/os: linux
      containers:
        - name: vctp
          image: ghcr.io/example/vctp:0.1.0
          args: []
          env:
            - name: VCTP_CONFIG
              value: /etc/vctp/vctp.yml
            - name: VCTP_VCENTER_USERNAME
              value: overridden-by-the-operator
          envFrom:
            - secretRef:
                name: vctp-object-store
"#;

    fn template() -> JobTemplate {
        JobTemplate::parse(CHART_TEMPLATE, "test").unwrap()
    }

    #[test]
    fn the_secrets_and_config_maps_a_job_needs_are_listed_with_where_they_are_used() {
        let chart = JobTemplate::parse(
            r#"
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: vctp
          image: vctp:test
          env:
            - name: VCTP_DATABASE_URL
              valueFrom:
                secretKeyRef: {name: vctp-database, key: url}
            - name: OPTIONAL
              valueFrom:
                secretKeyRef: {name: maybe, key: x, optional: true}
          envFrom:
            - secretRef: {name: vctp-object-store}
      volumes:
        - name: settings
          configMap: {name: vctp-settings}
        - name: tmp
          emptyDir: {}
"#,
            "test",
        )
        .unwrap();
        let listed: Vec<(&str, String, String)> = (chart.prerequisites().into_iter())
            .map(|p| (p.kind, p.name, p.used_as))
            .collect();
        assert_eq!(
            listed,
            [
                (
                    "Secret",
                    "vctp-database".into(),
                    "env VCTP_DATABASE_URL".into()
                ),
                ("Secret", "vctp-object-store".into(), "envFrom".into()),
                (
                    "ConfigMap",
                    "vctp-settings".into(),
                    "volume settings".into()
                ),
            ]
        );
        let restricted = JobTemplate::restricted(&defaults()).prerequisites();
        assert_eq!(restricted.len(), 1);
        assert_eq!(restricted[0].name, "vctp-database");
    }

    fn defaults() -> Defaults {
        Defaults {
            image: "ghcr.io/example/vctp:0.1.0".into(),
            image_pull_policy: Some("IfNotPresent".into()),
            service_account: "vctp-job".into(),
            database_url_secret: SecretKeyRef {
                name: "vctp-database".into(),
                key: "url".into(),
            },
            reports_url: "s3://finance-reports/vctp".into(),
            backoff_limit: 3,
            ttl_seconds_after_finished: 86_400,
        }
    }

    fn vcenter_target() -> VCenterTarget {
        serde_yaml::from_str(
            r#"
apiVersion: vctp.io/v1alpha1
kind: VCenterTarget
metadata:
  name: vc01
  namespace: finance
  uid: 5c1d0c9e-7c0e-4c57-9d6a-2f1f4bb2b6a1
  generation: 2
spec:
  url: https://vc01.example.com/sdk
  credentialsSecretRef:
    name: vc01-account
"#,
        )
        .unwrap()
    }

    #[test]
    fn the_built_in_template_gives_an_owned_labelled_restricted_job() {
        let target = vcenter_target();
        let args = vec![
            "job".into(),
            "snapshot".into(),
            "--target".into(),
            "finance/vc01".into(),
        ];
        let env = vec![secret_env(
            "VCTP_VCENTER_PASSWORD",
            &SecretKeyRef {
                name: "vc01-account".into(),
                key: "password".into(),
            },
        )];
        let template = JobTemplate::restricted(&defaults());
        let job = build_job(
            &target,
            "vc01-snapshot-20260310t1400",
            "snapshot",
            args,
            env,
            &template,
        )
        .unwrap();

        let expected: serde_json::Value = serde_yaml::from_str(
            r#"
apiVersion: batch/v1
kind: Job
metadata:
  name: vc01-snapshot-20260310t1400
  namespace: finance
  labels: &labels
    app.kubernetes.io/name: vctp
    app.kubernetes.io/instance: vc01
    app.kubernetes.io/component: snapshot
    app.kubernetes.io/managed-by: vctp-operator
    app.kubernetes.io/part-of: vctp
  ownerReferences:
    - apiVersion: vctp.io/v1alpha1
      kind: VCenterTarget
      name: vc01
      uid: 5c1d0c9e-7c0e-4c57-9d6a-2f1f4bb2b6a1
      controller: true
      blockOwnerDeletion: true
spec:
  backoffLimit: 3
  ttlSecondsAfterFinished: 86400
  template:
    metadata:
      labels: *labels
    spec:
      restartPolicy: Never
      serviceAccountName: vctp-job
      securityContext:
        runAsNonRoot: true
        runAsUser: 65532
        runAsGroup: 65532
        fsGroup: 65532
        seccompProfile:
          type: RuntimeDefault
      containers:
        - name: vctp
          image: ghcr.io/example/vctp:0.1.0
          imagePullPolicy: IfNotPresent
          args: [job, snapshot, --target, finance/vc01]
          env:
            - name: VCTP_DATABASE_URL
              valueFrom:
                secretKeyRef:
                  name: vctp-database
                  key: url
                  optional: false
            - name: VCTP_REPORTS_URL
              value: s3://finance-reports/vctp
            - name: TMPDIR
              value: /tmp
            - name: VCTP_VCENTER_PASSWORD
              valueFrom:
                secretKeyRef:
                  name: vc01-account
                  key: password
                  optional: false
          securityContext:
            allowPrivilegeEscalation: false
            capabilities:
              drop: [ALL]
            readOnlyRootFilesystem: true
            runAsNonRoot: true
          terminationMessagePolicy: FallbackToLogsOnError
          volumeMounts:
            - name: tmp
              mountPath: /tmp
      volumes:
        - name: tmp
          emptyDir: {}
"#,
        )
        .unwrap();
        assert_eq!(serde_json::to_value(&job).unwrap(), expected);
    }

    #[test]
    fn a_template_file_keeps_its_settings_and_gets_the_run_filled_in() {
        let request: AggregationJob = serde_yaml::from_str(
            r#"
apiVersion: vctp.io/v1alpha1
kind: AggregationJob
metadata:
  name: daily-2026-03-10
  namespace: finance
  uid: 0b7f7c58-1111-4d6e-8f0e-2a4a7c3f9e10
spec:
  period: Daily
  date: "2026-03-10"
"#,
        )
        .unwrap();
        let name = job_name(&["daily-2026-03-10", "aggregate"]);
        let env = vec![EnvVar {
            name: "VCTP_VCENTER_USERNAME".into(),
            value: Some("from-the-resource".into()),
            ..EnvVar::default()
        }];
        let args = vec!["job".into(), "aggregate".into()];
        let job = build_job(&request, &name, "aggregate", args, env, &template()).unwrap();
        let job = serde_json::to_value(&job).unwrap();

        assert_eq!(job["metadata"]["name"], "daily-2026-03-10-aggregate");
        assert_eq!(job["metadata"]["namespace"], "finance");
        assert_eq!(
            job["metadata"]["ownerReferences"],
            json!([{
                "apiVersion": "vctp.io/v1alpha1",
                "kind": "AggregationJob",
                "name": "daily-2026-03-10",
                "uid": "0b7f7c58-1111-4d6e-8f0e-2a4a7c3f9e10",
                "controller": true,
                "blockOwnerDeletion": true,
            }])
        );
        let labels = &job["metadata"]["labels"];
        assert_eq!(labels["app.kubernetes.io/component"], "aggregate");
        assert_eq!(labels["helm.sh/chart"], "vctp-0.1.0");
        let pod_labels = &job["spec"]["template"]["metadata"]["labels"];
        assert_eq!(pod_labels["team"], "finance");
        assert_eq!(pod_labels["app.kubernetes.io/instance"], "daily-2026-03-10");
        assert_eq!(job["spec"]["backoffLimit"], 3);
        let pod = &job["spec"]["template"]["spec"];
        assert_eq!(pod["nodeSelector"]["kubernetes.io/os"], "linux");
        let container = &pod["containers"][0];
        assert_eq!(container["args"], json!(["job", "aggregate"]));
        assert_eq!(
            container["envFrom"][0]["secretRef"]["name"],
            "vctp-object-store"
        );
        assert_eq!(
            container["env"],
            json!([
                {"name": "VCTP_CONFIG", "value": "/etc/vctp/vctp.yml"},
                {"name": "VCTP_VCENTER_USERNAME", "value": "from-the-resource"},
            ])
        );
    }

    #[test]
    fn every_job_and_pod_carries_the_instance_label_users_select_by() {
        // `kubectl get jobs -l vctp.io/instance=<release>` (the chart's NOTES.txt) finds the
        // Jobs of every kind, from the chart's template and from the built-in one alike.
        let target = vcenter_target();
        for template in [template(), JobTemplate::restricted(&defaults())] {
            let template = template.with_instance("finance").unwrap();
            let job = build_job(
                &target,
                "vc01-snapshot",
                "snapshot",
                vec![],
                vec![],
                &template,
            )
            .unwrap();
            let job = serde_json::to_value(&job).unwrap();
            for labels in [
                &job["metadata"]["labels"],
                &job["spec"]["template"]["metadata"]["labels"],
            ] {
                assert_eq!(labels[INSTANCE_LABEL], "finance", "{labels}");
                assert_eq!(labels["app.kubernetes.io/managed-by"], "vctp-operator");
                assert_eq!(labels["app.kubernetes.io/part-of"], "vctp");
                // The owner keeps its own label: the schedules select their Jobs by it.
                assert_eq!(labels["app.kubernetes.io/instance"], "vc01");
            }
        }
        for bad in ["", "Finance", "fin ance", &"x".repeat(64)] {
            let err = template().with_instance(bad).unwrap_err();
            assert_eq!(err.reason(), "InvalidInstance", "{bad:?}");
            assert!(err.to_string().contains("VCTP_INSTANCE"), "{err}");
        }
    }

    #[test]
    fn templates_the_operator_cannot_use_are_refused_with_the_reason() {
        let two = CHART_TEMPLATE.replace(
            "      containers:\n",
            "      containers:\n        - {name: sidecar, image: busybox}\n",
        );
        let restarting = CHART_TEMPLATE.replace("restartPolicy: Never", "restartPolicy: OnFailure");
        for (text, expected) in [
            (two.as_str(), "exactly one container"),
            (restarting.as_str(), "restartPolicy must be Never"),
            ("apiVersion: batch/v1\nkind: Job\n", "no spec.template.spec"),
        ] {
            let err = JobTemplate::parse(text, "job-template.yaml").unwrap_err();
            assert_eq!(err.reason(), "InvalidJobTemplate");
            assert!(err.to_string().contains(expected), "{err}");
            assert!(err.to_string().contains("job-template.yaml"), "{err}");
        }
        let err = JobTemplate::parse("spec: [", "job-template.yaml").unwrap_err();
        assert_eq!(err.reason(), "JobTemplateUnreadable");
        let err = JobTemplate::load(Path::new("/nonexistent/job-template.yaml")).unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/job-template.yaml"),
            "{err}"
        );
    }

    #[test]
    fn a_resource_not_read_back_from_the_api_server_cannot_own_a_job() {
        let mut target = vcenter_target();
        target.metadata.uid = None;
        let err = build_job(
            &target,
            "vc01-snapshot",
            "snapshot",
            vec![],
            vec![],
            &template(),
        )
        .unwrap_err();
        assert_eq!(err.reason(), "JobOwnerNotPersisted");
        assert!(err.to_string().contains("has no uid"), "{err}");

        let mut target = vcenter_target();
        target.metadata.namespace = None;
        let err = build_job(
            &target,
            "vc01-snapshot",
            "snapshot",
            vec![],
            vec![],
            &template(),
        )
        .unwrap_err();
        assert_eq!(err.reason(), "JobOwnerNotNamespaced");
    }

    #[test]
    fn names_and_components_that_kubernetes_would_refuse_are_errors() {
        let target = vcenter_target();
        for name in ["", "Upper", "-dash", "dash-", "dot.ted", &"x".repeat(64)] {
            let err =
                build_job(&target, name, "snapshot", vec![], vec![], &template()).unwrap_err();
            assert_eq!(err.reason(), "InvalidJobName", "{name:?}");
        }
        let err =
            build_job(&target, "vc01-x", "Snap Shot", vec![], vec![], &template()).unwrap_err();
        assert_eq!(err.reason(), "InvalidJobComponent");
    }

    #[test]
    fn a_long_owner_name_is_shortened_in_the_instance_label() {
        let mut export: MetricsExport = serde_yaml::from_str(
            r#"
apiVersion: vctp.io/v1alpha1
kind: MetricsExport
metadata:
  namespace: support
  uid: 9d3c4f0a-2222-4e4e-9a9a-0c0c0c0c0c0c
spec:
  source: {url: "http://vmselect:8481"}
  lookbackSeconds: 3600
  selectors: ['{job="vmagent"}']
"#,
        )
        .unwrap();
        let long = format!("support-case-{}", "a".repeat(80));
        export.metadata.name = Some(long.clone());
        let name = job_name(&[&long, "export"]);
        let job = build_job(&export, &name, "export", vec![], vec![], &template()).unwrap();
        let labels = job.metadata.labels.unwrap();
        let instance = &labels["app.kubernetes.io/instance"];
        assert!(instance.len() <= 63 && instance.starts_with("support-case-aaa"));
        assert_eq!(
            instance,
            &super::labels(&long, "export")["app.kubernetes.io/instance"]
        );
    }

    #[test]
    fn job_names_that_are_already_valid_are_kept() {
        assert_eq!(
            job_name(&["vc01", "snapshot", "20260310t1400"]),
            "vc01-snapshot-20260310t1400"
        );
        let exactly_63 = "a".repeat(63);
        assert_eq!(job_name(&[&exactly_63]), exactly_63);
    }

    #[test]
    fn job_names_are_valid_deterministic_and_distinct_after_rewriting() {
        let cases: [&[&str]; 6] = [
            &["vc1.lab", "snapshot"],
            &["vc1-lab", "snapshot"],
            &["VC1", "snapshot"],
            &["", "", ""],
            &["ünïcödé", "x"],
            &[&"long-target-name-".repeat(8), "snapshot", "20260310t1400"],
        ];
        let names: Vec<String> = cases.iter().map(|parts| job_name(parts)).collect();
        for (parts, name) in cases.iter().zip(&names) {
            assert!(is_dns1123_label(name), "{parts:?} → {name:?}");
            assert_eq!(&job_name(parts), name, "not deterministic");
        }
        assert_eq!(names[1], "vc1-lab-snapshot");
        assert!(names[0].starts_with("vc1-lab-snapshot-") && names[0] != names[1]);
        assert!(names[2].starts_with("vc1-snapshot-"));
        assert_eq!(names[5].len(), MAX_NAME_LEN);
        assert!(names[5].starts_with("long-target-name-long-target-name-"));
        // Long names differing only past the cut still differ.
        let a = job_name(&[&"x".repeat(70), "a"]);
        let b = job_name(&[&"x".repeat(70), "b"]);
        assert_ne!(a, b);
    }
}
