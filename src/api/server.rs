//! Running the server: settings + options → [`AppState`] → a listener serving [`router`] on a
//! task of its own, for `vctp serve`, `vctp standalone` and `vctp demo`.

use super::{Aggregation, AppState, Trigger, router};
use crate::auth::Auth;
use crate::config::Settings;
use crate::objstore::Objects;
use crate::store::Store;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// How the server is run, beside what the settings say.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Address to listen on (port 0 picks a free one).
    pub listen: SocketAddr,
    /// Operator mode: `POST /api/snapshots/aggregate` creates an AggregationJob in this
    /// namespace instead of aggregating in this process.
    pub kube_namespace: Option<String>,
    /// Seconds an answer of the totals endpoints and pages is served from memory; 0 is off.
    pub cache_seconds: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("invalid authentication settings")]
    Auth(#[source] crate::auth::Error),
    #[error(transparent)]
    Metrics(#[from] prometheus::Error),
    // Names the flag: the namespace comes from `--kube-namespace` in every caller that sets it.
    #[error("failed to build a Kubernetes client for --kube-namespace")]
    KubeClient(#[source] kube::Error),
    #[error("failed to listen on {listen}")]
    Listen {
        listen: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Builds the state the settings describe (auth, pprof, aggregation engine and pivots,
/// credential key) and serves it on `options.listen` until [`Background::stop`].
pub async fn start(
    settings: &Settings,
    store: Store,
    objects: Objects,
    options: ServerOptions,
) -> Result<Background, StartError> {
    let settings = settings.clone().with_secrets_from_env();
    let auth = Auth::from_settings(&settings).map_err(StartError::Auth)?;
    let mut state = AppState::new(store, objects)?
        .with_auth(auth)
        .with_response_cache(Duration::from_secs(options.cache_seconds))
        .with_pprof(settings.enable_pprof)
        .with_request_timeout(settings.request_timeout())
        .with_aggregation(Aggregation {
            engine: settings.scheduled_aggregation_engine,
            pivots: Arc::new(settings.report_summary_pivots.clone()),
        });
    match crate::credentials::key_from_settings(&settings) {
        Ok(key) => state = state.with_encryption_key(key),
        // Serving reads needs no key; only POST /api/encrypt answers 503 without one.
        Err(e) => tracing::warn!(error = %e, "no credential key: POST /api/encrypt is unavailable"),
    }
    if let Some(namespace) = options.kube_namespace {
        let client = kube::Client::try_default()
            .await
            .map_err(StartError::KubeClient)?;
        tracing::info!(namespace, "aggregation requests create AggregationJobs");
        state = state.with_trigger(Trigger::Operator { client, namespace });
    }
    let listen = options.listen;
    let server = Background::start(listen, state)
        .await
        .map_err(|source| StartError::Listen { listen, source })?;
    tracing::info!(url = %server.url, "API server listening");
    Ok(server)
}

/// Serves [`router`] on `listener` until `shutdown` completes, then finishes open requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // With the peer address, so the auth audit log can name it.
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// A server running beside other work (`vctp standalone`, `vctp demo`) until [`Background::stop`].
pub struct Background {
    /// `http://ADDR` as bound (a port 0 is resolved).
    pub url: String,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Background {
    /// Binds `listen` and serves [`router`] on a task of its own.
    async fn start(listen: SocketAddr, state: AppState) -> std::io::Result<Background> {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let url = format!("http://{}", listener.local_addr()?);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, state, async {
            let _ = stopped.await;
        }));
        Ok(Background { url, stop, task })
    }

    /// Stops accepting, finishes open requests, and reports how the server ended.
    pub async fn stop(self) -> std::io::Result<()> {
        let _ = self.stop.send(());
        self.task.await.map_err(std::io::Error::other)?
    }
}
