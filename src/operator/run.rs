//! `vctp operator`: connect to the API server, serve `/metrics` and `/healthz`, wait for the
//! leader Lease (when enabled), then run every controller in every watched namespace until
//! SIGTERM or the Lease is lost.

use super::job::{Defaults, JobTemplate};
use super::leader::Elector;
use super::metrics::Metrics;
use super::{Context, aggregation_job, metrics_export, snapshot_schedule, vcenter_target};
use crate::crd::SecretKeyRef;
use futures_util::future::join_all;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::api::Api;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Everything `vctp operator` is told (the chart sets them as `VCTP_*` environment).
#[derive(Debug, Clone)]
pub struct Options {
    /// Namespaces to watch and run Jobs in; empty = the pod's namespace, else the client's
    /// default namespace.
    pub namespaces: Vec<String>,
    /// A complete batch/v1 Job every Job starts from; without it, the built-in restricted
    /// template from `defaults`.
    pub job_template: Option<PathBuf>,
    pub defaults: Defaults,
    /// The installation's name, labelled on every Job and Pod (`vctp.io/instance`).
    pub instance: Option<String>,
    pub leader_election: bool,
    pub lease_name: String,
    pub pod_namespace: Option<String>,
    pub pod_name: Option<String>,
    pub metrics_addr: SocketAddr,
    pub recheck_every: Duration,
    /// How long a Job's Pod may wait for its image before the run is given up.
    pub image_pull_timeout: Duration,
    /// The default store of export bundles (`--reports-url`, else settings.reports_url).
    pub export_store: super::ExportStore,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to connect to the Kubernetes API server: {0}")]
    Connect(#[source] kube::Error),
    #[error(transparent)]
    Template(#[from] super::job::Error),
    #[error("failed to register the operator metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("failed to listen on {addr} for /metrics: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(
        "leader election needs the pod's namespace and name (VCTP_POD_NAMESPACE, VCTP_POD_NAME)"
    )]
    NoIdentity,
    #[error(transparent)]
    Leader(Box<super::leader::Error>),
    #[error("failed to print the example Job: {0}")]
    Print(String),
}

impl Error {
    /// Whether the settings are wrong (exit status 2) rather than something failing.
    pub fn is_bad_input(&self) -> bool {
        matches!(self, Error::Template(_) | Error::NoIdentity)
    }
}

/// The built-in template's defaults when no file is given.
pub fn default_defaults(image: String) -> Defaults {
    Defaults {
        image,
        image_pull_policy: None,
        service_account: "default".into(),
        database_url_secret: SecretKeyRef {
            name: "vctp-database".into(),
            key: super::job::ENV_DATABASE_URL.into(),
        },
        reports_url: String::new(),
        backoff_limit: 2,
        ttl_seconds_after_finished: 86_400,
    }
}

/// The Job `template` gives for an example `AggregationJob` (`vctp operator --check`): what
/// every Job of the operator looks like, as YAML.
pub fn example_job(template: &JobTemplate) -> Result<String, Error> {
    let example = crate::crd::AggregationJob {
        metadata: kube::api::ObjectMeta {
            name: Some("daily-2026-03-10".into()),
            namespace: Some("default".into()),
            uid: Some("00000000-0000-0000-0000-000000000000".into()),
            ..kube::api::ObjectMeta::default()
        },
        spec: crate::crd::AggregationJobSpec {
            period: crate::crd::aggregation_job::AggregationPeriod::Daily,
            date: Some("2026-03-10".into()),
            month: None,
            at: None,
            vcenters: Vec::new(),
            engine: crate::crd::Engine::default(),
            report: crate::crd::aggregation_job::ReportOptions::default(),
        },
        status: None,
    };
    let request = aggregation_job::build(&example);
    let job = super::job::build_job(
        &example,
        &request.name,
        request.component,
        request.args,
        request.env,
        template,
    )?;
    serde_yaml::to_string(&job).map_err(|e| Error::Print(e.to_string()))
}

/// The template every Job starts from: the file, else the built-in one, with the instance
/// label when there is an instance name.
pub fn job_template(options: &Options) -> Result<JobTemplate, Error> {
    let template = match &options.job_template {
        Some(path) => JobTemplate::load(path)?,
        None => JobTemplate::restricted(&options.defaults),
    };
    Ok(match &options.instance {
        Some(instance) => template.with_instance(instance)?,
        None => template,
    })
}

/// Runs the operator until `shutdown` completes (Ok) or the Lease is lost (Err).
pub async fn run(options: Options, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
    let template = job_template(&options)?;
    if options.leader_election && (options.pod_namespace.is_none() || options.pod_name.is_none()) {
        return Err(Error::NoIdentity);
    }
    let client = Client::try_default().await.map_err(Error::Connect)?;
    let metrics = Arc::new(Metrics::new()?);
    let listener = tokio::net::TcpListener::bind(options.metrics_addr)
        .await
        .map_err(|source| Error::Listen {
            addr: options.metrics_addr,
            source,
        })?;
    let router = metrics.clone().router();
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "the metrics server stopped");
        }
    });

    let namespaces = if options.namespaces.is_empty() {
        vec![
            options
                .pod_namespace
                .clone()
                .unwrap_or_else(|| client.default_namespace().to_string()),
        ]
    } else {
        options.namespaces.clone()
    };
    let ctx = Arc::new(
        Context::new(
            client.clone(),
            template,
            metrics.clone(),
            options.pod_name.clone(),
            options.recheck_every,
        )
        .with_export_store(options.export_store.clone())
        .watching(namespaces.clone())
        .with_image_pull_timeout(options.image_pull_timeout),
    );
    tracing::info!(
        ?namespaces,
        leader_election = options.leader_election,
        "operator starting"
    );
    let controllers = controllers(ctx, namespaces);

    let work = async {
        metrics.set_leader(true);
        controllers.await;
    };
    let outcome = if options.leader_election {
        let namespace = options.pod_namespace.clone().unwrap_or_default();
        let elector = Elector {
            api: Api::<Lease>::namespaced(client, &namespace),
            namespace,
            name: options.lease_name.clone(),
            identity: format!(
                "{}_{:08x}",
                options.pod_name.clone().unwrap_or_default(),
                rand::random::<u32>()
            ),
            lease_duration: Duration::from_secs(15),
            renew_every: Duration::from_secs(5),
        };
        let led = tokio::select! {
            led = elector.lead(work) => led.map_err(|e| Error::Leader(Box::new(e))),
            () = shutdown => Ok(()),
        };
        // The controllers are stopped (their future is dropped): hand the Lease on.
        if let Err(e) = elector.release().await {
            tracing::warn!(error = %e, "could not release the Lease; it runs out by itself");
        }
        led
    } else {
        tokio::select! {
            () = work => Ok(()),
            () = shutdown => Ok(()),
        }
    };
    metrics.set_leader(false);
    tracing::info!("operator stopped");
    outcome
}

/// Every controller of every namespace, run together.
async fn controllers(ctx: Arc<Context>, namespaces: Vec<String>) {
    let all: Vec<_> = namespaces
        .into_iter()
        .map(|namespace| tokio::spawn(namespace_controllers(ctx.clone(), namespace)))
        .collect();
    // Dropping a JoinHandle does not stop its task: abort them all when this future is dropped
    // (shutdown, lost Lease), so no controller acts without the Lease.
    let guards: Vec<AbortOnDrop> = all.iter().map(|h| AbortOnDrop(h.abort_handle())).collect();
    join_all(all).await;
    drop(guards);
}

/// The four controllers of `namespace`, once it exists. Dropping this future stops them.
async fn namespace_controllers(ctx: Arc<Context>, namespace: String) {
    wait_for_namespace(&ctx, &namespace).await;
    futures_util::join!(
        vcenter_target::run(ctx.clone(), namespace.clone()),
        snapshot_schedule::run(ctx.clone(), namespace.clone()),
        aggregation_job::run(ctx.clone(), namespace.clone()),
        metrics_export::run(ctx.clone(), namespace.clone()),
    );
}

/// Longest wait between two looks for a watched namespace that does not exist yet.
const NAMESPACE_POLL_MAX: Duration = Duration::from_secs(30);

/// Returns once `namespace` exists, saying (log and metric) while it does not: a watched
/// namespace created after the operator must not need a restart, nor a missing one stop
/// the others. When the namespace cannot be read (no `get` on it), it is taken as there.
async fn wait_for_namespace(ctx: &Context, namespace: &str) {
    let namespaces = Api::<Namespace>::all(ctx.client.clone());
    let mut said = false;
    loop {
        match namespaces.get_opt(namespace).await {
            Ok(None) => {
                ctx.metrics.set_namespace_missing(namespace, true);
                if !said {
                    tracing::warn!(
                        namespace,
                        "watched namespace {namespace} does not exist; its controllers start when it is created"
                    );
                    said = true;
                }
            }
            Ok(Some(_)) => {
                ctx.metrics.set_namespace_missing(namespace, false);
                if said {
                    tracing::info!(namespace, "watched namespace {namespace} exists now");
                }
                return;
            }
            Err(error) => {
                tracing::debug!(namespace, %error, "cannot read the watched namespace; starting its controllers");
                return;
            }
        }
        tokio::time::sleep(ctx.recheck_every.min(NAMESPACE_POLL_MAX)).await;
    }
}

struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_check_prints_the_job_of_an_example_aggregation_job() {
        let template = JobTemplate::restricted(&default_defaults("vctp:test".into()));
        let job: k8s_openapi::api::batch::v1::Job =
            serde_yaml::from_str(&example_job(&template).unwrap()).unwrap();
        let container = &job.spec.unwrap().template.spec.unwrap().containers[0];
        assert_eq!(
            container.args.as_deref().unwrap(),
            ["job", "aggregate", "--name", "default/daily-2026-03-10"]
        );
        assert_eq!(container.image.as_deref(), Some("vctp:test"));
        assert_eq!(
            job.metadata.name.as_deref(),
            Some("daily-2026-03-10-aggregate")
        );
    }
}
