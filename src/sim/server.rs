//! HTTP: the SDK endpoint of each simulated vCenter and its API version document.

use super::service::{API_VERSION, PRIOR_API_VERSIONS, Reply, Service};
use super::soap::Fault;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::sync::Arc;

const SESSION_COOKIE: &str = "vmware_soap_session";
const XML: &str = "text/xml; charset=utf-8";

/// `/vc{i}/sdk` for vCenter i (1-based), `/sdk` for the first, and each one's
/// `vimServiceVersions.xml` (pyvmomi reads it before connecting).
pub(crate) fn router(service: Arc<Service>) -> Router {
    Router::new()
        .route("/sdk", post(first_vcenter))
        .route("/sdk/vimServiceVersions.xml", get(versions))
        .route("/{vcenter}/sdk", post(vcenter))
        .route(
            "/{vcenter}/sdk/vimServiceVersions.xml",
            get(vcenter_versions),
        )
        .with_state(service)
}

async fn first_vcenter(
    State(service): State<Arc<Service>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    soap(service, 0, "/sdk".into(), &headers, body).await
}

async fn vcenter(
    State(service): State<Arc<Service>>,
    Path(segment): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match vcenter_index(&service, &segment) {
        Some(index) => soap(service, index, format!("/{segment}/sdk"), &headers, body).await,
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn vcenter_versions(
    State(service): State<Arc<Service>>,
    Path(segment): Path<String>,
) -> Response {
    match vcenter_index(&service, &segment) {
        Some(_) => versions().await,
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn versions() -> Response {
    let mut document = String::from(concat!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n",
        "<namespaces version=\"1.0\">\n <namespace>\n  <name>urn:vim25</name>\n  <version>"
    ));
    document.push_str(API_VERSION);
    document.push_str("</version>\n  <priorVersions>\n");
    for version in PRIOR_API_VERSIONS {
        document.push_str("   <version>");
        document.push_str(version);
        document.push_str("</version>\n");
    }
    document.push_str("  </priorVersions>\n </namespace>\n</namespaces>\n");
    ([(header::CONTENT_TYPE, XML)], document).into_response()
}

/// The 0-based index of the vCenter a path segment `vc{i}` names.
fn vcenter_index(service: &Service, segment: &str) -> Option<usize> {
    let number: usize = segment.strip_prefix("vc")?.parse().ok()?;
    let canonical = segment == format!("vc{number}");
    (canonical && (1..=service.estates.len()).contains(&number)).then(|| number - 1)
}

async fn soap(
    service: Arc<Service>,
    vcenter: usize,
    sdk_path: String,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let cookies = session_cookies(headers);
    // Building a snapshot and writing a page of a big inventory is CPU work of up to tens
    // of milliseconds: keep it off the threads that drive connections.
    let reply =
        tokio::task::spawn_blocking(move || service.call(vcenter, &sdk_path, &cookies, &body))
            .await
            .unwrap_or_else(|e| Reply::fault(&Fault::Internal(e.to_string())));
    let status = match reply.ok {
        true => StatusCode::OK,
        false => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let mut response = (status, [(header::CONTENT_TYPE, XML)], reply.body).into_response();
    if let Some(cookie) = reply.cookie {
        match HeaderValue::from_str(&cookie) {
            Ok(value) => {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            Err(e) => tracing::error!(%e, "session cookie is not a valid header value"),
        }
    }
    response
}

/// The values of the `vmware_soap_session` cookies a request carries. pyvmomi sends back
/// the whole `Set-Cookie` value, attributes and quotes included, so both are tolerated.
fn session_cookies(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim().trim_matches('"').to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_cookies_are_found_bare_quoted_or_echoed_with_attributes() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static(r#"vmware_soap_session="abc"; Path=/vc1/sdk; HttpOnly"#),
        );
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("other=1; vmware_soap_session=def"),
        );
        assert_eq!(session_cookies(&headers), ["abc", "def"]);
    }
}
