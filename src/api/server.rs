//! Running the server: settings + options → [`AppState`] → a listener serving [`router`] on a
//! task of its own, for `vctp serve`, `vctp standalone` and `vctp demo`.
//!
//! Connections are driven here rather than by `axum::serve`, which has no header-read or idle
//! deadline and no connection limit: every connection has a deadline while no request is in
//! flight (its head must arrive in time, an idle keep-alive ends), the number open is capped
//! below the open-file limit, and at the cap a new connection replaces the oldest one with no
//! request in flight. So silent or slow clients cannot starve `/healthz` and `/readyz`, which
//! also bypass the app's concurrency limit.

use super::tls;
use super::{Aggregation, AppState, Trigger, router};
use crate::auth::{Auth, roles::Mode};
use crate::config::Settings;
use crate::objstore::Objects;
use crate::store::Store;
use axum::body::Bytes;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

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
    /// HTTPS with this certificate, or plain HTTP.
    pub tls: Option<tls::Source>,
    /// Cookies `Secure` although this server speaks plain HTTP (TLS ends at a proxy in front);
    /// they are with HTTPS anyway.
    pub secure_cookies_behind_proxy: bool,
    pub limits: Limits,
}

/// What one client may hold of the server (README "Settings": `http_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub read_header_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    pub max_concurrent_requests: usize,
}

impl Limits {
    pub fn from_settings(settings: &Settings) -> Limits {
        Limits {
            read_header_timeout: Duration::from_secs(settings.http_read_header_timeout_seconds),
            idle_timeout: Duration::from_secs(settings.http_idle_timeout_seconds),
            max_connections: settings.http_max_connections,
            max_concurrent_requests: settings.http_max_concurrent_requests,
        }
    }
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
    #[error("failed to set up HTTPS")]
    Tls(#[from] tls::Error),
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
    let login_live = auth.mode() != Mode::Disabled;
    let mut state = AppState::new(store, objects)?
        .with_auth(auth)
        .with_response_cache(Duration::from_secs(options.cache_seconds))
        .with_pprof(settings.enable_pprof)
        .with_request_timeout(settings.request_timeout())
        .with_secure_cookies(options.tls.is_some() || options.secure_cookies_behind_proxy)
        .with_pricing(
            settings.pricing.clone(),
            settings.cost_metrics_vm_limit,
            settings.cost_metrics_public,
        )
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
    if login_live && options.tls.is_none() && !listen.ip().is_loopback() {
        tracing::warn!(
            %listen,
            "authentication is on but the server speaks plain HTTP on a non-loopback address: passwords and tokens cross the network in clear text unless a proxy in front terminates TLS"
        );
    }
    super::prewarm(&state).await;
    let acceptor = options.tls.as_ref().map(tls::acceptor).transpose()?;
    let server = Background::start(listen, state, acceptor, options.limits)
        .await
        .map_err(|source| StartError::Listen { listen, source })?;
    tracing::info!(url = %server.url, "API server listening");
    Ok(server)
}

/// A server running beside other work until [`Background::stop`].
pub struct Background {
    /// `https://ADDR` or `http://ADDR` as bound (a port 0 is resolved).
    pub url: String,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
    /// Computes the kept costs now and then ([`super::finance::REFRESH_EVERY`]).
    costs: tokio::task::JoinHandle<()>,
}

impl Background {
    /// Binds `listen` and serves [`router`] on a task of its own.
    async fn start(
        listen: SocketAddr,
        state: AppState,
        tls: Option<tokio_rustls::TlsAcceptor>,
        limits: Limits,
    ) -> std::io::Result<Background> {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://{}", listener.local_addr()?);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let costs = tokio::spawn(state.finance.clone().refresh_every(state.store.clone()));
        let task = tokio::spawn(serve(
            listener,
            App::new(state, limits),
            tls,
            limits,
            async {
                let _ = stopped.await;
            },
        ));
        Ok(Background {
            url,
            stop,
            task,
            costs,
        })
    }

    /// Stops accepting, finishes open requests, and reports how the server ended.
    pub async fn stop(self) -> std::io::Result<()> {
        self.costs.abort();
        let _ = self.stop.send(());
        self.task.await.map_err(std::io::Error::other)
    }
}

/// The router twice: behind the concurrency limit, and without it for the probes, so an
/// orchestrator still sees a live process while requests queue.
#[derive(Clone)]
struct App {
    probes: axum::Router,
    limited: tower::limit::ConcurrencyLimit<axum::Router>,
}

impl App {
    fn new(state: AppState, limits: Limits) -> App {
        let router = router(state);
        let limited =
            tower::limit::GlobalConcurrencyLimitLayer::new(limits.max_concurrent_requests);
        App {
            limited: tower::Layer::layer(&limited, router.clone()),
            probes: router,
        }
    }

    async fn call<B>(self, request: axum::http::Request<B>) -> axum::response::Response
    where
        B: axum::body::HttpBody<Data = Bytes> + Send + 'static,
        B::Error: Into<axum::BoxError>,
    {
        let answer = if matches!(request.uri().path(), "/healthz" | "/readyz") {
            self.probes.oneshot(request).await
        } else {
            self.limited.oneshot(request).await
        };
        match answer {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }
}

/// Accepts on `listener` until `shutdown` completes, then lets open requests finish.
async fn serve(
    listener: tokio::net::TcpListener,
    app: App,
    tls: Option<tokio_rustls::TlsAcceptor>,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let open = Arc::new(Open::new(limits));
    let reaper = tokio::spawn(open.clone().reap());
    let draining = CancellationToken::new();
    let tasks = tokio_util::task::TaskTracker::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors or a connection reset before it was accepted:
                    // the listener itself is fine, so wait a moment and go on.
                    tracing::warn!(error = %e, "failed to accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(admitted) = open.admit() else {
            // Every open connection has a request in flight: this one waits its turn in
            // the client's retry, not in the server's memory.
            drop(stream);
            continue;
        };
        tasks.spawn(connection(
            stream,
            peer,
            tls.clone(),
            app.clone(),
            admitted,
            draining.clone(),
        ));
    }
    drop(listener);
    draining.cancel();
    tasks.close();
    tasks.wait().await;
    reaper.abort();
}

/// Serves one connection until it ends, is closed by [`Open`], or the server drains.
async fn connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    tls: Option<tokio_rustls::TlsAcceptor>,
    app: App,
    admitted: Admitted,
    draining: CancellationToken,
) {
    let close = admitted.close.clone();
    match tls {
        None => http(stream, peer, app, &admitted, &draining).await,
        Some(acceptor) => {
            // The handshake is part of the first request's header-read deadline.
            let handshake = tokio::select! {
                handshake = acceptor.accept(stream) => handshake,
                () = close.cancelled() => return,
            };
            match handshake {
                Ok(stream) => http(stream, peer, app, &admitted, &draining).await,
                Err(e) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
            }
        }
    }
}

async fn http<IO>(
    io: IO,
    peer: SocketAddr,
    app: App,
    admitted: &Admitted,
    draining: &CancellationToken,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = admitted.activity.clone();
    let io = hyper_util::rt::TokioIo::new(Watched {
        io,
        activity: activity.clone(),
    });
    let service = hyper::service::service_fn(
        move |mut request: axum::http::Request<hyper::body::Incoming>| {
            // With the peer address, so the auth audit log can name it.
            request
                .extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
            let flight = Flight::begin(activity.clone());
            let app = app.clone();
            async move {
                let response = app.call(request).await;
                Ok::<_, Infallible>(response.map(|body| Tracked {
                    body,
                    _flight: flight,
                }))
            }
        },
    );
    let conn = hyper::server::conn::http1::Builder::new().serve_connection(io, service);
    tokio::pin!(conn);
    let outcome = tokio::select! {
        outcome = conn.as_mut() => Some(outcome),
        () = admitted.close.cancelled() => None,
        () = draining.cancelled() => {
            // Finish the request in flight, if any, then close; still closed by a deadline.
            conn.as_mut().graceful_shutdown();
            tokio::select! {
                outcome = conn.as_mut() => Some(outcome),
                () = admitted.close.cancelled() => None,
            }
        }
    };
    if let Some(Err(e)) = outcome {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// The open connections, oldest first, and their deadlines.
struct Open {
    epoch: Instant,
    limits: Limits,
    capacity: usize,
    next: AtomicU64,
    connections: Mutex<BTreeMap<u64, Entry>>,
}

struct Entry {
    activity: Arc<Activity>,
    close: CancellationToken,
}

/// A connection's slot; dropping it frees the slot.
struct Admitted {
    id: u64,
    open: Arc<Open>,
    activity: Arc<Activity>,
    close: CancellationToken,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.open.lock().remove(&self.id);
    }
}

/// File descriptors kept for everything but connections: the database, object storage,
/// LDAP, vCenters.
const RESERVED_FILES: u64 = 256;

impl Open {
    fn new(limits: Limits) -> Open {
        let capacity = capacity(limits.max_connections);
        Open {
            epoch: Instant::now(),
            limits,
            capacity,
            next: AtomicU64::new(0),
            connections: Mutex::new(BTreeMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Entry>> {
        self.connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// A slot for a new connection; at capacity the oldest connection with no request in
    /// flight is closed to make room (a silent or slow client, or an idle keep-alive), and
    /// when every connection is busy there is no slot.
    fn admit(self: &Arc<Open>) -> Option<Admitted> {
        let mut connections = self.lock();
        if connections.len() >= self.capacity {
            let idle = connections
                .iter()
                .find(|(_, entry)| entry.activity.in_flight.load(Ordering::Acquire) == 0)
                .map(|(id, _)| *id)?;
            if let Some(entry) = connections.remove(&idle) {
                entry.close.cancel();
            }
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let activity = Arc::new(Activity::new(self.epoch));
        let close = CancellationToken::new();
        connections.insert(
            id,
            Entry {
                activity: activity.clone(),
                close: close.clone(),
            },
        );
        Some(Admitted {
            id,
            open: self.clone(),
            activity,
            close,
        })
    }

    /// Closes, a few times per shortest deadline, every connection past its deadline.
    async fn reap(self: Arc<Open>) {
        let shortest = self
            .limits
            .read_header_timeout
            .min(self.limits.idle_timeout);
        let tick = (shortest / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
        let mut interval = tokio::time::interval(tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            let now = self.epoch.elapsed();
            for entry in self.lock().values() {
                if entry.activity.expired(now, &self.limits) {
                    entry.close.cancel();
                }
            }
        }
    }
}

/// `max_connections`, lowered to fit the open-file limit (raised to its hard limit first,
/// as the Go runtime does), so the server never runs out of descriptors for its probes.
fn capacity(max_connections: usize) -> usize {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        let raised = rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            limit = raised;
        }
    }
    let Some(files) = limit.current else {
        return max_connections;
    };
    let fits = files.saturating_sub(RESERVED_FILES).max(files / 2);
    let fits = usize::try_from(fits).unwrap_or(usize::MAX);
    if fits < max_connections {
        tracing::warn!(
            http_max_connections = max_connections,
            open_file_limit = files,
            connections = fits,
            "http_max_connections is above what the open-file limit allows; serving fewer"
        );
    }
    max_connections.min(fits).max(1)
}

/// What a connection is doing, for its deadline and for eviction.
struct Activity {
    epoch: Instant,
    /// Requests whose answer is not yet fully sent.
    in_flight: AtomicUsize,
    /// Whether a request was answered on this connection.
    answered: AtomicBool,
    /// Whether bytes of the next request's head arrived (on a kept-alive connection).
    head_started: AtomicBool,
    /// Milliseconds since `epoch` at which the current wait began: the connection's start,
    /// the last answer's end, or the next head's first byte.
    waiting_since: AtomicU64,
}

impl Activity {
    fn new(epoch: Instant) -> Activity {
        let activity = Activity {
            epoch,
            in_flight: AtomicUsize::new(0),
            answered: AtomicBool::new(false),
            head_started: AtomicBool::new(false),
            waiting_since: AtomicU64::new(0),
        };
        activity.mark();
        activity
    }

    fn mark(&self) {
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.waiting_since.store(now, Ordering::Release);
    }

    /// Whether the connection waited past its deadline: the head of its first request (TLS
    /// handshake included) or of a later one must arrive within `read_header_timeout`, and a
    /// kept-alive connection may idle `idle_timeout`. A request in flight has no deadline
    /// here: handlers bound their own work.
    fn expired(&self, now: Duration, limits: &Limits) -> bool {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return false;
        }
        let reading_head =
            !self.answered.load(Ordering::Acquire) || self.head_started.load(Ordering::Acquire);
        let allowed = if reading_head {
            limits.read_header_timeout
        } else {
            limits.idle_timeout
        };
        let since = Duration::from_millis(self.waiting_since.load(Ordering::Acquire));
        now.saturating_sub(since) > allowed
    }
}

/// One request from the moment its head is parsed until its answer is sent (or dropped).
struct Flight(Arc<Activity>);

impl Flight {
    fn begin(activity: Arc<Activity>) -> Flight {
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        activity.head_started.store(false, Ordering::Release);
        Flight(activity)
    }
}

impl Drop for Flight {
    fn drop(&mut self) {
        let activity = &self.0;
        activity.answered.store(true, Ordering::Release);
        activity.head_started.store(false, Ordering::Release);
        activity.mark();
        activity.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that holds its request's [`Flight`] until it is sent.
struct Tracked {
    body: axum::body::Body,
    _flight: Flight,
}

impl axum::body::HttpBody for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// The connection's bytes, watched for the first byte of a kept-alive connection's next
/// head (which starts that head's deadline).
struct Watched<IO> {
    io: IO,
    activity: Arc<Activity>,
}

impl<IO: AsyncRead + Unpin> AsyncRead for Watched<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        let activity = &this.activity;
        if buf.filled().len() > before
            && activity.answered.load(Ordering::Acquire)
            && activity.in_flight.load(Ordering::Acquire) == 0
            && !activity.head_started.swap(true, Ordering::AcqRel)
        {
            activity.mark();
        }
        polled
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Watched<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str) -> axum::http::Request<axum::body::Body> {
        axum::http::Request::get(path)
            .body(axum::body::Body::empty())
            .unwrap()
    }

    #[tokio::test]
    async fn at_the_concurrency_limit_requests_wait_and_the_probes_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let url = crate::store::DatabaseUrl::Sqlite(dir.path().join("db.sqlite3"));
        let store = Store::connect(&url).await.unwrap();
        let objects = Objects::from_url(dir.path().to_str().unwrap(), &Default::default()).unwrap();
        let limits = Limits {
            read_header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(10),
            max_connections: 10,
            max_concurrent_requests: 1,
        };
        let app = App::new(AppState::new(store, objects).unwrap(), limits);
        // A request in flight: it holds the one permit.
        let mut busy = app.limited.clone();
        std::future::poll_fn(|cx| {
            tower::Service::<axum::http::Request<axum::body::Body>>::poll_ready(&mut busy, cx)
        })
        .await
        .unwrap();
        let waited = Duration::from_millis(300);
        for probe in ["/healthz", "/readyz"] {
            let answer = tokio::time::timeout(waited, app.clone().call(get(probe))).await;
            assert!(answer.is_ok_and(|r| r.status().is_success()), "{probe}");
        }
        let queued = tokio::spawn(app.clone().call(get("/api/vcenters")));
        tokio::time::sleep(waited).await;
        assert!(
            !queued.is_finished(),
            "the API request waits for the permit"
        );
        drop(busy);
        let answer = tokio::time::timeout(Duration::from_secs(5), queued)
            .await
            .unwrap()
            .unwrap();
        assert!(answer.status().is_success(), "{}", answer.status());
    }
}
