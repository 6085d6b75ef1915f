//! A scripted Kubernetes API server for controller tests without a cluster (the way kube-rs
//! `controller-rs` tests its reconciler): the test answers each request the reconcile makes,
//! in order, checking its method and path; a request the script does not expect, or one it
//! waits for in vain, fails the test within the scenario's timeout. Also the controllers'
//! [`Context`] for tests, around this client or a real one.
#![allow(dead_code)]

use kube::client::Body;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use vctp::operator::job::{Defaults, JobTemplate};
use vctp::operator::{Context, metrics::Metrics};

type Request = axum::http::Request<Body>;
type Response = axum::http::Response<Body>;

/// How long a scenario may take before it counts as stuck.
pub const TIMEOUT: Duration = Duration::from_secs(1);

/// The test's side of the API: see [`ApiServer::expect`].
pub struct ApiServer(tower_test::mock::Handle<Request, Response>);

/// One request the reconcile made.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// The decoded query parameters.
    pub query: Vec<(String, String)>,
    /// The JSON body (`null` when empty).
    pub body: Value,
}

impl Exchange {
    pub fn param(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A client whose requests the returned [`ApiServer`] answers, and a [`Context`] around it.
pub fn context() -> (Arc<Context>, ApiServer) {
    let (service, handle) = tower_test::mock::pair::<Request, Response>();
    let client = kube::Client::new(service, "default");
    (context_for(client), ApiServer(handle))
}

/// A [`Context`] around `client`: the built-in Job template (ServiceAccount `vctp-job`, no
/// retries of a failed Pod), fresh metrics.
pub fn context_for(client: kube::Client) -> Arc<Context> {
    let template = JobTemplate::restricted(&Defaults {
        image: "ghcr.io/example/vctp:test".into(),
        image_pull_policy: None,
        service_account: "vctp-job".into(),
        database_url_secret: vctp::crd::SecretKeyRef {
            name: "vctp-database".into(),
            key: "url".into(),
        },
        reports_url: "s3://reports/vctp".into(),
        backoff_limit: 0,
        ttl_seconds_after_finished: 86_400,
    });
    let metrics = Arc::new(Metrics::new().expect("register the metrics"));
    Arc::new(Context::new(
        client,
        template,
        metrics,
        Some("test".into()),
        Duration::from_secs(300),
    ))
}

impl ApiServer {
    /// Waits for the next request, checks that it is `method` on `path` and answers it with
    /// the JSON `reply` makes of it (status 200).
    pub async fn expect(
        &mut self,
        method: &str,
        path: &str,
        reply: impl FnOnce(&Exchange) -> Value,
    ) -> Exchange {
        let (request, respond) = self
            .0
            .next_request()
            .await
            .unwrap_or_else(|| panic!("expected {method} {path}, the client is gone"));
        let got = format!("{} {}", request.method(), request.uri().path());
        assert_eq!(got, format!("{method} {path}"), "unexpected request");
        let query =
            url::form_urlencoded::parse(request.uri().query().unwrap_or_default().as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
        let bytes = request
            .into_body()
            .collect_bytes()
            .await
            .expect("read the request body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).expect("a JSON request body")
        };
        let exchange = Exchange { query, body };
        let answer = serde_json::to_vec(&reply(&exchange)).expect("serialize the reply");
        respond.send_response(
            axum::http::Response::builder()
                .status(200)
                .header("content-type", "application/json")
                .body(Body::from(answer))
                .expect("a response"),
        );
        exchange
    }

    /// Answers a list request on `path` with `items`.
    pub async fn list(&mut self, path: &str, items: Vec<Value>) -> Exchange {
        self.expect("GET", path, |_| list(items)).await
    }

    /// Answers a server-side apply on `path` with the object applied.
    pub async fn apply(&mut self, path: &str) -> Exchange {
        self.expect("PATCH", path, |exchange| exchange.body.clone())
            .await
    }
}

/// A list response.
pub fn list(items: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": "1"}, "items": items})
}

/// Runs `reconcile` while `script` (spawned with the [`ApiServer`]) answers its requests;
/// both must finish within [`TIMEOUT`]. Returns what each returned.
pub async fn scenario<T, R: Send + 'static>(
    reconcile: impl Future<Output = T>,
    script: impl Future<Output = R> + Send + 'static,
) -> (T, R) {
    let script = tokio::spawn(script);
    let reconciled = tokio::time::timeout(TIMEOUT, reconcile)
        .await
        .expect("the reconcile finished within the timeout (a request the script did not answer?)");
    let scripted = tokio::time::timeout(TIMEOUT, script)
        .await
        .expect("the script finished within the timeout (a request the reconcile did not make?)")
        .expect("the script's checks passed");
    (reconciled, scripted)
}

/// Applies the JSON merge patch (RFC 7386) `patch` to `target`, as the API server does.
pub fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    if let Value::Object(fields) = target {
        for (key, value) in patch {
            if value.is_null() {
                fields.remove(key);
            } else {
                merge(fields.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}
