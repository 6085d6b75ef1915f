//! Controller tests without a cluster: a scripted API server (tower-test) answers the
//! requests a reconcile makes, in order, and each step checks what was asked — the
//! kube-rs `controller-rs` "fixtures" way. One scenario per behaviour, each bounded by a
//! timeout so a reconcile waiting for an answer that never comes fails instead of hanging.

use super::Context;
use super::job::JobTemplate;
use super::metrics::Metrics;
use super::run::default_defaults;
use http::{Request, Response};
use kube::Client;
use kube::client::Body;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

pub type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

/// A context whose client talks to the returned scripted API.
pub fn context() -> (Arc<Context>, Handle) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "finance");
    let template = JobTemplate::restricted(&default_defaults("vctp:test".into()));
    let metrics = Arc::new(Metrics::new().expect("metrics"));
    let ctx = Context::new(client, template, metrics, None, Duration::from_secs(300));
    (Arc::new(ctx), handle)
}

/// The next request must be `method` on a path starting with `path`; it is answered with
/// `status` and `body` (`Null`: the request's own body, as a create or apply echoes the
/// object). Returns the request's JSON body (`Null` when empty).
pub async fn expect(
    handle: &mut Handle,
    method: &str,
    path: &str,
    status: u16,
    body: Value,
) -> Value {
    let (request, send) = handle
        .next_request()
        .await
        .unwrap_or_else(|| panic!("expected {method} {path}, but the reconcile made no request"));
    let target = request.uri().to_string();
    assert_eq!(request.method().as_str(), method, "{target}");
    assert!(
        target.starts_with(path),
        "expected {method} {path}…, got {target}"
    );
    let bytes = request
        .into_body()
        .collect_bytes()
        .await
        .expect("request body");
    let sent = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).expect("a JSON request body")
    };
    let answer = if body.is_null() { &sent } else { &body };
    let response = Response::builder()
        .status(status)
        .body(Body::from(serde_json::to_vec(answer).expect("JSON")))
        .expect("response");
    send.send_response(response);
    sent
}

/// A 404 Status body.
pub fn not_found() -> Value {
    serde_json::json!({
        "kind": "Status", "apiVersion": "v1", "status": "Failure",
        "reason": "NotFound", "code": 404, "message": "not found",
    })
}

/// Runs `reconcile` against `script`, both within one second.
pub async fn run<R, S>(reconcile: R, script: S) -> R::Output
where
    R: Future,
    S: Future<Output = ()> + Send + 'static,
{
    let script = tokio::spawn(script);
    let result = tokio::time::timeout(Duration::from_secs(1), reconcile)
        .await
        .expect("the reconcile did not finish within 1 s");
    tokio::time::timeout(Duration::from_secs(1), script)
        .await
        .expect("the scripted API did not finish within 1 s")
        .expect("the scripted API panicked");
    result
}
