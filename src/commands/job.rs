//! `vctp job snapshot|aggregate|export`, what the operator's Kubernetes Jobs run: check the
//! arguments and environment → read the custom resource from the API → do one unit of work →
//! leave a [`JobResult`] as the termination message, success or not. The caller turns the
//! error into the exit status: 1 when the work failed, 2 for bad input ([`Error::is_bad_input`]).

use crate::cli::{JobAggregateArgs, JobCommand, JobExportArgs, JobSnapshotArgs};
use crate::config::Settings;
use crate::crd::vcenter_target::data_key;
use crate::crd::{AggregationJob, MetricsExport, VCenterTarget};
use crate::jobs::termination::JobResult;
use crate::jobs::{Stores, aggregate, export, retention, snapshot};
use crate::objstore::Objects;
use crate::store::{DatabaseUrl, Store};
use kube::api::Api;
use std::fmt;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid resource {text:?}: {problem} (expected NAMESPACE/NAME, e.g. finance/vc01)")]
    Reference { text: String, problem: &'static str },
    #[error("invalid --at {text:?}: expected an RFC 3339 time, e.g. 2026-03-10T14:00:00Z")]
    At { text: String },
    #[error(
        "no database configured: set VCTP_DATABASE_URL, or settings.database_url in the settings file (VCTP_CONFIG)"
    )]
    NoDatabase,
    #[error(transparent)]
    Settings(#[from] crate::config::Error),
    #[error(
        "invalid reports location (VCTP_REPORTS_URL, else settings.reports_url or settings.reports_dir): {source}"
    )]
    Reports { source: Box<crate::objstore::Error> },
    #[error(
        "failed to configure the Kubernetes client (KUBECONFIG or ~/.kube/config, else the in-cluster service account): {source}"
    )]
    KubeClient { source: Box<kube::Error> },
    #[error("{kind} {resource} not found")]
    NotFound { kind: String, resource: ResourceRef },
    #[error("failed to read {kind} {resource}: {source}")]
    Read {
        kind: String,
        resource: ResourceRef,
        source: Box<kube::Error>,
    },
    #[error(transparent)]
    Store(#[from] crate::store::Error),
    #[error(transparent)]
    Snapshot(#[from] snapshot::Error),
    /// Boxed: the aggregation's errors are large, and most Jobs never see one.
    #[error(transparent)]
    Aggregate(Box<aggregate::Error>),
    #[error("invalid --{flag} {text:?}: expected an RFC 3339 time, e.g. 2026-03-10T14:00:00Z")]
    Time { flag: &'static str, text: String },
    #[error(transparent)]
    Plan(#[from] crate::export::plan::Error),
    /// Boxed: large, and most Jobs never see one.
    #[error(transparent)]
    Export(Box<export::Error>),
}

impl From<aggregate::Error> for Error {
    fn from(e: aggregate::Error) -> Error {
        Error::Aggregate(Box::new(e))
    }
}

impl Error {
    /// A stable short name for metrics labels, Events and the termination message.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Reference { .. } => "InvalidReference",
            Error::At { .. } => "InvalidTime",
            Error::NoDatabase => "NoDatabase",
            Error::Settings(_) => "InvalidSettings",
            Error::Reports { source } => source.reason(),
            Error::KubeClient { .. } => "KubernetesClientUnavailable",
            Error::NotFound { .. } => "NotFound",
            Error::Read { .. } => "ResourceUnreadable",
            Error::Store(e) => e.reason(),
            Error::Snapshot(e) => e.reason(),
            Error::Aggregate(e) => e.reason(),
            Error::Time { .. } => "InvalidTime",
            Error::Plan(e) => e.reason(),
            Error::Export(e) => e.reason(),
        }
    }

    /// Stopped by SIGTERM: the work is not done, but nothing failed (exit status 143).
    pub fn is_cancelled(&self) -> bool {
        matches!(self, Error::Export(e) if matches!(e.as_ref(), export::Error::Cancelled))
    }

    /// Whether the input is wrong (arguments, environment, settings, the resource or its
    /// spec): the Job cannot succeed until it changes. Otherwise the work failed, and may
    /// succeed when retried (exit status 1).
    pub fn is_bad_input(&self) -> bool {
        match self {
            Error::Reference { .. }
            | Error::At { .. }
            | Error::NoDatabase
            | Error::Settings(_)
            | Error::Reports { .. }
            | Error::KubeClient { .. }
            | Error::NotFound { .. }
            | Error::Time { .. }
            | Error::Plan(_) => true,
            // Refused, or not a resource of ours; an unreachable API server may come back.
            Error::Read { source, .. } => match source.as_ref() {
                kube::Error::Api(status) => status.code == 401 || status.code == 403,
                kube::Error::SerdeError(_) => true,
                _ => false,
            },
            Error::Snapshot(e) => e.is_bad_input(),
            Error::Aggregate(e) => e.is_bad_input(),
            Error::Export(e) => e.is_bad_input(),
            Error::Store(_) => false,
        }
    }

    /// The failure as the termination message states it.
    pub fn result(&self) -> JobResult {
        JobResult::failed(self.reason(), self.to_string())
    }
}

/// A namespaced resource as the Job's arguments name it: `NAMESPACE/NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceRef {
    pub namespace: String,
    pub name: String,
}

impl ResourceRef {
    pub fn parse(text: &str) -> Result<ResourceRef, Error> {
        let invalid = |problem| Error::Reference {
            text: text.to_string(),
            problem,
        };
        let (namespace, name) = text
            .split_once('/')
            .ok_or_else(|| invalid("the namespace is missing"))?;
        if namespace.is_empty() {
            return Err(invalid("the namespace is empty"));
        }
        if name.is_empty() {
            return Err(invalid("the name is empty"));
        }
        if name.contains('/') {
            return Err(invalid("more than one `/`"));
        }
        // Kubernetes names are lower-case DNS names: a label for the namespace, a subdomain
        // for the resource.
        let dns = |s: &str| {
            s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        };
        if !dns(namespace) || namespace.contains('.') || namespace.len() > 63 {
            return Err(invalid(
                "the namespace is not a Kubernetes name (a-z, 0-9 and `-`, at most 63)",
            ));
        }
        if !dns(name) || name.len() > 253 {
            return Err(invalid(
                "the name is not a Kubernetes name (a-z, 0-9, `-` and `.`, at most 253)",
            ));
        }
        Ok(ResourceRef {
            namespace: namespace.to_string(),
            name: name.to_string(),
        })
    }
}

impl fmt::Display for ResourceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// A schedule tick, RFC 3339, as Unix seconds.
pub fn parse_at(text: &str) -> Result<i64, Error> {
    chrono::DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.timestamp())
        .map_err(|_| Error::At {
            text: text.to_string(),
        })
}

/// Runs one Job command and writes its [`JobResult`], whatever the outcome.
pub async fn run(
    command: JobCommand,
    settings: &Settings,
    database_url: Option<&str>,
) -> Result<(), Error> {
    let outcome = match &command {
        JobCommand::Snapshot(args) => snapshot_job(args, settings, database_url).await,
        JobCommand::Aggregate(args) => aggregate_job(args, settings, database_url).await,
        JobCommand::Export(args) => export_job(args, settings).await,
    };
    match outcome {
        Ok(result) => {
            tracing::info!(
                message = result.message.as_deref().unwrap_or_default(),
                "job succeeded"
            );
            result.write();
            Ok(())
        }
        Err(e) => {
            tracing::error!(reason = e.reason(), bad_input = e.is_bad_input(), error = %e, "job failed");
            e.result().write();
            Err(e)
        }
    }
}

async fn snapshot_job(
    args: &JobSnapshotArgs,
    settings: &Settings,
    database_url: Option<&str>,
) -> Result<JobResult, Error> {
    let resource = ResourceRef::parse(&args.target)?;
    let snapshot_time = parse_at(&args.at)?;
    let credentials = snapshot::Credentials::from_env(|name| std::env::var(name).ok())?;
    let url = database(settings, database_url)?;
    let target: VCenterTarget = read_with(&kube_client().await?, &resource).await?;
    let key = data_key(&resource.namespace, &resource.name);
    let plan = snapshot::plan(
        &key,
        &target.spec,
        &credentials,
        snapshot::Retry {
            max_retries: args.max_retries,
            interval: Duration::from_secs(args.retry_interval_seconds),
        },
    )?;
    tracing::info!(target = %resource, url = %plan.target.url, at = %args.at, "snapshot starting");
    let store = Store::connect_with(&url, settings.database_timeout()).await?;
    let legacy =
        snapshot::adopt_legacy(&store, &resource.name, &key, args.legacy_owners.as_deref()).await;
    let legacy = match legacy {
        Ok(legacy) => legacy,
        Err(e) => {
            store.close().await;
            return Err(e.into());
        }
    };
    match &legacy {
        snapshot::Legacy::None => {}
        snapshot::Legacy::Moved { .. } => tracing::info!(target = %resource, "{legacy}"),
        snapshot::Legacy::Left { .. } => tracing::warn!(target = %resource, "{legacy}"),
    }
    let stored = snapshot::run(&store, plan, snapshot_time).await;
    // Retention runs only after a stored snapshot, and its failure does not undo it: the
    // next tick tries again.
    let retention = match (&stored, args.hourly_max_age_days, args.daily_max_age_months) {
        (Ok(_), Some(days), Some(months)) => {
            let policy = retention::Policy {
                hourly_max_age_days: days,
                daily_max_age_months: months,
            };
            match retention::run(&store, policy, chrono::Utc::now().timestamp()).await {
                Ok(done) => format!("; retention: {done}"),
                Err(e) => {
                    tracing::warn!(error = %e, "retention failed after the snapshot");
                    format!("; retention failed: {e}")
                }
            }
        }
        _ => String::new(),
    };
    store.close().await;
    let stored = stored?;
    let legacy = match legacy {
        snapshot::Legacy::None => String::new(),
        legacy => format!("; {legacy}"),
    };
    let mut result = JobResult::succeeded(format!(
        "stored {} rows of {} at {} ({} VMs in the inventory{}){retention}{legacy}",
        stored.rows,
        key,
        args.at.trim(),
        stored.inventory_size,
        stored
            .vcenter_version
            .as_deref()
            .map(|v| format!(", vCenter {v}"))
            .unwrap_or_default()
    ));
    result.snapshot = Some(stored);
    Ok(result)
}

async fn aggregate_job(
    args: &JobAggregateArgs,
    settings: &Settings,
    database_url: Option<&str>,
) -> Result<JobResult, Error> {
    let resource = ResourceRef::parse(&args.name)?;
    let url = database(settings, database_url)?;
    let reports_url = args
        .reports_url
        .clone()
        .unwrap_or_else(|| settings.reports_url());
    let objects = Objects::from_url_with(
        &reports_url,
        &settings.object_store_options,
        settings.object_store_retry_timeout(),
    )
    .map_err(|source| Error::Reports {
        source: Box::new(source),
    })?;
    let job: AggregationJob = read_with(&kube_client().await?, &resource).await?;
    let request = aggregate::Request::from_spec(&job.spec)?.in_namespace(&resource.namespace);
    let label = request.period.label();
    tracing::info!(resource = %resource, period = %label, "aggregation starting");
    let store = Store::connect_with(&url, settings.database_timeout()).await?;
    let stores = Stores {
        store: &store,
        objects: &objects,
        pivots: &settings.report_summary_pivots,
        pricing: &settings.pricing,
    };
    let outcome = aggregate::run(
        &stores,
        &request,
        crate::aggregate::engine::Source::Job,
        aggregate::WhenEmpty::Fail,
    )
    .await;
    store.close().await;
    let outcome = outcome?;
    let mut result = JobResult::succeeded(format!(
        "{} {label}: {} summary rows, {} report objects",
        request.period.kind(),
        outcome.rows_written,
        outcome.reports.len()
    ));
    result.aggregation = Some(outcome.into());
    Ok(result)
}

async fn export_job(args: &JobExportArgs, settings: &Settings) -> Result<JobResult, Error> {
    let resource = ResourceRef::parse(&args.name)?;
    let time = |flag, text: &str| {
        chrono::DateTime::parse_from_rfc3339(text.trim())
            .map(|t| t.timestamp_millis())
            .map_err(|_| Error::Time {
                flag,
                text: text.to_string(),
            })
    };
    let range =
        crate::export::windows::Window::new(time("start", &args.start)?, time("end", &args.end)?)
            .map_err(|e| Error::Plan(e.into()))?;
    crate::export::plan::check_run_id(&args.run_id)?;
    let client = kube_client().await?;
    let export: MetricsExport = read_with(&client, &resource).await?;
    let reports_url = args
        .reports_url
        .clone()
        .unwrap_or_else(|| settings.reports_url());
    let stores = export::BundleStores::new(
        export::Reports::Url(reports_url),
        &settings.object_store_options,
        std::env::vars(),
    )
    .with_retry_timeout(settings.object_store_retry_timeout());
    tracing::info!(resource = %resource, run = %args.run_id, start = %args.start, end = %args.end, "export starting");
    // Finite by its parser; clamped so that neither 0 nor an hour-long silence is asked for.
    let interval = Duration::from_secs_f64(args.status_interval_seconds.clamp(0.1, 3_600.0));
    let mut reporter = super::job_progress::StatusReporter::start(client, &export, interval);
    let cancel = crate::signal::cancel_on_shutdown();
    let outcome = export::run_resource(
        &export::Resource {
            spec: &export.spec,
            namespace: &resource.namespace,
            name: &resource.name,
        },
        &export::RunAt {
            run_id: args.run_id.clone(),
            range,
        },
        |name| std::env::var(name).ok(),
        &stores,
        &mut reporter,
        &cancel,
    )
    .await;
    reporter.finish().await;
    let outcome = outcome.map_err(|e| Error::Export(Box::new(e)))?;
    let Some(assembled) = outcome.bundle else {
        return Err(Error::Export(Box::new(export::Error::Cancelled)));
    };
    let mut result = JobResult::succeeded(format!(
        "run {}: {} series, {} samples in {} ({} bytes, sha256 {})",
        outcome.run_id,
        outcome.series,
        outcome.samples,
        assembled.bundle.key,
        assembled.bundle.size,
        assembled.bundle.sha256
    ));
    result.export = Some(crate::jobs::termination::ExportResult {
        run_id: outcome.run_id,
        method: outcome.method.name().to_string(),
        series: outcome.series,
        samples: outcome.samples,
        skipped: outcome.skipped,
        windows: outcome.windows,
        splits: outcome.splits,
        resumed: outcome.resumed,
        bundle: crate::jobs::termination::BundleEntry {
            key: assembled.bundle.key,
            size: assembled.bundle.size,
            sha256: assembled.bundle.sha256,
            manifest_key: assembled.manifest_key,
        },
    });
    Ok(result)
}

/// The database from `VCTP_DATABASE_URL` or the settings; a Job has no sensible default.
fn database(settings: &Settings, cli: Option<&str>) -> Result<DatabaseUrl, Error> {
    if cli.is_none() && settings.database_url.is_none() {
        return Err(Error::NoDatabase);
    }
    Ok(settings.database_url(cli)?)
}

/// A client with KUBECONFIG (or ~/.kube/config) when there is one, else with the Pod's
/// service account.
async fn kube_client() -> Result<kube::Client, Error> {
    kube::Client::try_default()
        .await
        .map_err(|source| Error::KubeClient {
            source: Box::new(source),
        })
}

/// Reads one resource with `client`.
async fn read_with<K>(client: &kube::Client, resource: &ResourceRef) -> Result<K, Error>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope>
        + Clone
        + fmt::Debug
        + serde::de::DeserializeOwned,
    K::DynamicType: Default,
{
    let kind = K::kind(&K::DynamicType::default()).to_string();
    let api: Api<K> = Api::namespaced(client.clone(), &resource.namespace);
    api.get(&resource.name)
        .await
        .map_err(|source| match &source {
            kube::Error::Api(status) if status.is_not_found() => Error::NotFound {
                kind,
                resource: resource.clone(),
            },
            _ => Error::Read {
                kind,
                resource: resource.clone(),
                source: Box::new(source),
            },
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resource_is_named_namespace_slash_name() {
        assert_eq!(
            ResourceRef::parse("finance/vc01.example").unwrap(),
            ResourceRef {
                namespace: "finance".into(),
                name: "vc01.example".into()
            }
        );
        assert_eq!(
            ResourceRef::parse("finance/vc01").unwrap().to_string(),
            "finance/vc01"
        );
    }

    #[test]
    fn a_malformed_resource_reference_says_what_is_wrong() {
        for (text, problem) in [
            ("vc01", "the namespace is missing"),
            ("/vc01", "the namespace is empty"),
            ("finance/", "the name is empty"),
            ("finance/vc01/x", "more than one `/`"),
            ("Finance/vc01", "the namespace is not a Kubernetes name"),
            ("finance/VC 01", "the name is not a Kubernetes name"),
        ] {
            let err = ResourceRef::parse(text).unwrap_err();
            let message = err.to_string();
            assert!(message.contains(problem), "{text}: {message}");
            assert!(message.contains("expected NAMESPACE/NAME"), "{message}");
            assert!(err.is_bad_input());
            assert_eq!(err.reason(), "InvalidReference");
        }
    }

    #[test]
    fn the_tick_is_rfc_3339_in_any_offset() {
        assert_eq!(parse_at("2026-03-10T14:00:00Z").unwrap(), 1_773_151_200);
        assert_eq!(
            parse_at("2026-03-10T15:00:00+01:00").unwrap(),
            1_773_151_200
        );
        let err = parse_at("2026-03-10 14:00").unwrap_err();
        assert!(err.is_bad_input());
        assert!(err.to_string().starts_with("invalid --at"), "{err}");
    }

    #[test]
    fn a_job_without_a_database_is_bad_input_naming_the_variable() {
        let err = database(&Settings::default(), None).unwrap_err();
        assert!(err.is_bad_input());
        assert!(err.to_string().contains("VCTP_DATABASE_URL"), "{err}");
        assert_eq!(
            database(&Settings::default(), Some("/data/vctp.sqlite3")).unwrap(),
            DatabaseUrl::Sqlite("/data/vctp.sqlite3".into())
        );
        let settings = Settings {
            database_url: Some("postgres://vctp@db/vctp".into()),
            ..Settings::default()
        };
        assert!(matches!(
            database(&settings, None).unwrap(),
            DatabaseUrl::Postgres(_)
        ));
    }

    #[test]
    fn a_missing_resource_is_bad_input_and_an_unreachable_api_is_a_failure() {
        let resource = ResourceRef::parse("finance/vc01").unwrap();
        let api = |code: u16| {
            Box::new(kube::Error::Api(Box::new(kube::core::Status {
                code,
                ..kube::core::Status::default()
            })))
        };
        let read = |source| Error::Read {
            kind: "VCenterTarget".into(),
            resource: resource.clone(),
            source,
        };
        let missing = Error::NotFound {
            kind: "VCenterTarget".into(),
            resource: resource.clone(),
        };
        assert_eq!(missing.to_string(), "VCenterTarget finance/vc01 not found");
        assert!(missing.is_bad_input());
        assert!(read(api(403)).is_bad_input());
        assert!(!read(api(503)).is_bad_input());
        assert_eq!(read(api(503)).reason(), "ResourceUnreadable");
    }
}
