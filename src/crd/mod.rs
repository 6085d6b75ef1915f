//! The custom resources of group `vctp.io`, version `v1alpha1` (DESIGN.md §3), generated from
//! these Rust types into `crds/*.yaml` by `vctp crd --out crds/`.
//!
//! One module per kind; this one holds what they share (secret references, the retry policy,
//! the engine), [`all`] — the single source of the CustomResourceDefinitions — and their
//! rendering as YAML files for `crds/` and for the Helm chart.
//!
//! Invalid specs are rejected by the schema: bounds, patterns and enums where OpenAPI can say
//! it, CEL rules (`x-kubernetes-validations`) where it cannot. Every kind derives
//! `#[kube(cel)]`, so `Kind::validate_cel(&self)` evaluates the same CEL rules client-side, for
//! API servers that predate CEL (before 1.25 they drop the rules silently).

pub mod aggregation_job;
pub mod metrics_export;
pub mod snapshot_schedule;
pub mod time;
pub mod vcenter_target;

pub use aggregation_job::{AggregationJob, AggregationJobSpec, AggregationJobStatus};
pub use metrics_export::{MetricsExport, MetricsExportSpec, MetricsExportStatus};
pub use snapshot_schedule::{SnapshotSchedule, SnapshotScheduleSpec, SnapshotScheduleStatus};
pub use vcenter_target::{VCenterTarget, VCenterTargetSpec, VCenterTargetStatus};

/// The `metav1.Condition` every status lists under `conditions` (keyed by `type`).
pub use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use kube::CustomResourceExt;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The API group of every kind.
pub const GROUP: &str = "vctp.io";
/// The one served and stored version.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` of the resources.
pub const API_VERSION: &str = "vctp.io/v1alpha1";
/// The `kubectl get vctp` category all kinds belong to.
pub const CATEGORY: &str = "vctp";

/// The command that writes `crds/`; the drift test names it.
pub const OUT_COMMAND: &str = "vctp crd --out crds/";
/// The command that writes the chart's CRD templates; the drift test names it.
pub const CHART_COMMAND: &str = "vctp crd --chart charts/vctp/templates/crds/";
/// The values key that turns the chart's CRD templates on.
pub const CHART_INSTALL_VALUE: &str = ".Values.crds.install";

/// The condition type every kind sets: the resource is usable / its work went through.
pub const CONDITION_READY: &str = "Ready";

/// Every CustomResourceDefinition of vctp, in a fixed order; the single source of `crds/`
/// (use it rather than `Kind::crd()`, whose descriptions keep the line breaks of the source).
pub fn all() -> Vec<CustomResourceDefinition> {
    let mut crds = vec![
        VCenterTarget::crd(),
        SnapshotSchedule::crd(),
        AggregationJob::crd(),
        MetricsExport::crd(),
    ];
    for crd in &mut crds {
        for version in &mut crd.spec.versions {
            if let Some(schema) = version
                .schema
                .as_mut()
                .and_then(|s| s.open_api_v3_schema.as_mut())
            {
                unwrap_descriptions(schema);
            }
        }
    }
    crds
}

/// Join the lines of each `///` paragraph: `kubectl explain` wraps text itself, and the line
/// breaks of the Rust source would show as ragged lines.
fn unwrap_descriptions(schema: &mut JSONSchemaProps) {
    if let Some(description) = &mut schema.description {
        *description = description
            .split("\n\n")
            .map(|paragraph| {
                paragraph
                    .split('\n')
                    .map(str::trim)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect::<Vec<_>>()
            .join("\n\n");
    }
    let children = schema
        .properties
        .iter_mut()
        .flat_map(|p| p.values_mut())
        .chain(schema.all_of.iter_mut().flatten())
        .chain(schema.any_of.iter_mut().flatten())
        .chain(schema.one_of.iter_mut().flatten())
        .chain(schema.not.as_deref_mut());
    let mut children: Vec<&mut JSONSchemaProps> = children.collect();
    match &mut schema.items {
        Some(JSONSchemaPropsOrArray::Schema(items)) => children.push(items),
        Some(JSONSchemaPropsOrArray::Schemas(items)) => children.extend(items.iter_mut()),
        None => {}
    }
    if let Some(JSONSchemaPropsOrBool::Schema(values)) = &mut schema.additional_properties {
        children.push(values);
    }
    for child in children {
        unwrap_descriptions(child);
    }
}

/// What Kubernetes accepts as a key of a Secret's or ConfigMap's data.
pub(crate) const DATA_KEY_PATTERN: &str = r"^[-._a-zA-Z0-9]+$";

/// A key of a Secret in the resource's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret, in the namespace of this resource.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key within the Secret's data.
    #[schemars(length(min = 1, max = 253), regex(pattern = DATA_KEY_PATTERN))]
    pub key: String,
}

/// A key of a ConfigMap in the resource's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigMapKeyRef {
    /// Name of the ConfigMap, in the namespace of this resource.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key within the ConfigMap's data.
    #[schemars(length(min = 1, max = 253), regex(pattern = DATA_KEY_PATTERN))]
    pub key: String,
}

/// How a failed unit of work is retried before it is reported as failed.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetryPolicy {
    /// Seconds to wait between attempts.
    #[serde(default = "default_retry_interval_seconds")]
    #[schemars(range(min = 1, max = 86_400))]
    pub interval_seconds: i32,
    /// Attempts after the first one; 0 = never retry.
    #[serde(default = "default_max_retries")]
    #[schemars(range(min = 0, max = 100))]
    pub max_retries: i32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            interval_seconds: default_retry_interval_seconds(),
            max_retries: default_max_retries(),
        }
    }
}

fn default_retry_interval_seconds() -> i32 {
    300
}

fn default_max_retries() -> i32 {
    3
}

pub use crate::aggregate::Engine;

// The phase of a unit of work run as a Kubernetes Job. (A `//` comment: schemars would put a
// doc comment in place of the description of every `Option<Phase>` field.)
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum Phase {
    /// Accepted, no Job running yet.
    Pending,
    /// Its Job is running.
    Running,
    /// Its Job completed.
    Succeeded,
    /// Its Job failed after the retries it was allowed.
    Failed,
}

impl Phase {
    /// Whether the work is over (nothing more will happen without a new resource).
    pub fn is_finished(self) -> bool {
        matches!(self, Phase::Succeeded | Phase::Failed)
    }
}

/// One CRD rendered as a file: its name and its contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrdFile {
    /// `<plural>.<group>.yaml`, e.g. `vcentertargets.vctp.io.yaml`.
    pub file_name: String,
    pub contents: String,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to serialize CustomResourceDefinition {name} as YAML: {source}")]
    Serialize {
        name: String,
        source: serde_yaml::Error,
    },
    #[error(
        "CustomResourceDefinition {name} contains `{{{{`, which a Helm template would interpret; reword the documentation"
    )]
    TemplateSyntax { name: String },
    #[error("failed to create directory {}: {source}", path.display())]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("failed to read directory {}: {source}", path.display())]
    ReadDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("failed to write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("failed to remove stale generated file {}: {source}", path.display())]
    Remove {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Error {
    /// A stable short name, for exit codes, metric labels and Kubernetes Event reasons.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Serialize { .. } => "CrdSerializeFailed",
            Error::TemplateSyntax { .. } => "CrdTemplateSyntax",
            Error::CreateDir { .. } => "CrdDirectoryUnavailable",
            Error::ReadDir { .. } => "CrdDirectoryUnreadable",
            Error::Write { .. } => "CrdWriteFailed",
            Error::Remove { .. } => "CrdRemoveFailed",
        }
    }
}

fn crd_name(crd: &CustomResourceDefinition) -> String {
    crd.metadata.name.clone().unwrap_or_default()
}

/// One CRD as a YAML document (no `---`, no header).
pub fn to_yaml(crd: &CustomResourceDefinition) -> Result<String, Error> {
    serde_yaml::to_string(crd).map_err(|source| Error::Serialize {
        name: crd_name(crd),
        source,
    })
}

/// All CRDs as one YAML stream, each document starting with `---` (what `vctp crd` prints).
pub fn yaml_stream() -> Result<String, Error> {
    let mut out = String::new();
    for crd in all() {
        out.push_str("---\n");
        out.push_str(&to_yaml(&crd)?);
    }
    Ok(out)
}

const GENERATED: &str = "GENERATED by";
const SOURCE: &str = "Source: the Rust types in src/crd/.";

fn header(command: &str) -> String {
    format!("# {GENERATED} `{command}`; do not edit.\n# {SOURCE}\n")
}

/// The files of `crds/`: one per kind, each with a header naming [`OUT_COMMAND`].
pub fn files() -> Result<Vec<CrdFile>, Error> {
    all()
        .iter()
        .map(|crd| {
            Ok(CrdFile {
                file_name: format!("{}.yaml", crd_name(crd)),
                contents: format!("{}{}", header(OUT_COMMAND), to_yaml(crd)?),
            })
        })
        .collect()
}

/// The files of the chart's `templates/crds/`: the same CRDs, installed only when
/// `crds.install` is true and kept by Helm on uninstall (deleting a CRD deletes every resource
/// of its kind).
pub fn chart_files() -> Result<Vec<CrdFile>, Error> {
    all()
        .into_iter()
        .map(|mut crd| {
            let name = crd_name(&crd);
            crd.metadata
                .annotations
                .get_or_insert_with(Default::default)
                .insert("helm.sh/resource-policy".into(), "keep".into());
            let yaml = to_yaml(&crd)?;
            if yaml.contains("{{") {
                return Err(Error::TemplateSyntax { name });
            }
            // The header is a template comment, so rendered manifests do not carry it.
            Ok(CrdFile {
                file_name: format!("{name}.yaml"),
                contents: format!(
                    "{{{{- /* {GENERATED} `{CHART_COMMAND}`; do not edit. {SOURCE} */}}}}\n\
                     {{{{- if {CHART_INSTALL_VALUE} }}}}\n{yaml}{{{{- end }}}}\n"
                ),
            })
        })
        .collect()
}

/// Whether a file's contents were written by [`files`] or [`chart_files`].
pub fn is_generated(contents: &str) -> bool {
    let first_line = contents.lines().next().unwrap_or_default();
    first_line.contains(&format!("{GENERATED} `vctp crd"))
}

/// Write `files` into `dir` (created when missing) and remove the `*.yaml` files there that an
/// earlier run generated but this one did not (a renamed or dropped kind). Returns the paths
/// written.
pub fn write_files(dir: &Path, files: &[CrdFile]) -> Result<Vec<PathBuf>, Error> {
    std::fs::create_dir_all(dir).map_err(|source| Error::CreateDir {
        path: dir.to_path_buf(),
        source,
    })?;
    let read_dir = |source| Error::ReadDir {
        path: dir.to_path_buf(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(read_dir)? {
        let path = entry.map_err(read_dir)?.path();
        let stale = path.extension().is_some_and(|e| e == "yaml")
            && !files
                .iter()
                .any(|f| path.file_name().is_some_and(|n| n == f.file_name.as_str()))
            && std::fs::read_to_string(&path).is_ok_and(|c| is_generated(&c));
        if stale {
            std::fs::remove_file(&path).map_err(|source| Error::Remove {
                path: path.clone(),
                source,
            })?;
        }
    }
    let mut written = Vec::with_capacity(files.len());
    for file in files {
        let path = dir.join(&file.file_name);
        std::fs::write(&path, &file.contents).map_err(|source| Error::Write {
            path: path.clone(),
            source,
        })?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_constants_agree_with_the_generated_crds() {
        assert_eq!(API_VERSION, format!("{GROUP}/{VERSION}"));
        for crd in all() {
            assert_eq!(crd.spec.group, GROUP);
            assert_eq!(crd.spec.scope, "Namespaced");
            assert_eq!(crd.spec.names.categories, Some(vec![CATEGORY.to_string()]));
            let versions: Vec<_> = crd.spec.versions.iter().map(|v| v.name.as_str()).collect();
            assert_eq!(versions, [VERSION]);
            assert_eq!(crd_name(&crd), format!("{}.{GROUP}", crd.spec.names.plural));
        }
    }

    #[test]
    fn chart_files_wrap_each_crd_in_the_install_switch_and_keep_it_on_uninstall() {
        for file in chart_files().unwrap() {
            let body: Vec<&str> = file.contents.lines().collect();
            assert!(body[0].starts_with("{{- /* GENERATED by `vctp crd --chart"));
            assert!(body[0].ends_with("*/}}"));
            assert!(is_generated(&file.contents));
            assert_eq!(body[1], "{{- if .Values.crds.install }}");
            assert_eq!(body.last(), Some(&"{{- end }}"));
            assert!(file.contents.contains("helm.sh/resource-policy: keep"));
        }
    }

    #[test]
    fn write_files_replaces_generated_files_and_leaves_others_alone() {
        let dir = tempfile::tempdir().unwrap();
        let stale = dir.path().join("oldkinds.vctp.io.yaml");
        std::fs::write(
            &stale,
            "# GENERATED by `vctp crd --out crds/`; do not edit.\n",
        )
        .unwrap();
        let readme = dir.path().join("README.md");
        std::fs::write(&readme, "hand-written").unwrap();
        let mine = dir.path().join("mine.yaml");
        std::fs::write(&mine, "kind: ConfigMap\n").unwrap();

        let files = files().unwrap();
        let written = write_files(dir.path(), &files).unwrap();

        assert_eq!(written.len(), 4);
        assert!(!stale.exists());
        assert!(readme.exists() && mine.exists());
        for file in &files {
            let on_disk = std::fs::read_to_string(dir.path().join(&file.file_name)).unwrap();
            assert_eq!(on_disk, file.contents);
        }
    }
}
