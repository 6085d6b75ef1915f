//! The browser's side of auth: the `vctp_session` cookie holding the JWT (set by `POST
//! /login`, cleared by `POST /logout`), the `vctp_csrf` double-submit cookie, the CSRF check
//! of unsafe requests, and the `next` target of a login.

use super::error::error_body;
use crate::auth::Role;
use axum::body::Body;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use std::convert::Infallible;

pub const SESSION_COOKIE: &str = "vctp_session";
pub const CSRF_COOKIE: &str = "vctp_csrf";
/// What scripts send instead of the form field.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The hidden field of every form that posts.
pub const CSRF_FIELD: &str = "csrf_token";
/// Largest form body read for its CSRF field; the forms of vctp are a few hundred bytes.
const FORM_LIMIT: usize = 64 * 1024;

/// What the pages know of the browser's session; [`super::auth::require`] puts it on every
/// request.
#[derive(Debug, Clone, Default)]
pub struct Session {
    /// Auth is on: pages offer login or logout.
    pub login: bool,
    /// The logged-in user and their role.
    pub user: Option<(String, Role)>,
    /// The CSRF token the forms of the page carry.
    pub csrf: String,
}

impl Session {
    /// Admin controls show to admins, and to everybody when auth is disabled (as the admin
    /// routes answer everybody then).
    pub fn admin(&self) -> bool {
        !self.login || matches!(self.user, Some((_, Role::Admin)))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Session, Infallible> {
        Ok(parts
            .extensions
            .get::<Session>()
            .cloned()
            .unwrap_or_default())
    }
}

/// The value of the first cookie called `name` among the request's `Cookie` headers;
/// `None` when absent or empty.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(|line| cookie_in(line, name))
}

/// RFC 6265 `cookie-string`: `name=value` pairs separated by `;`, a value maybe quoted.
fn cookie_in<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    line.split(';')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| key.trim() == name)
        .map(|(_, value)| {
            let value = value.trim();
            value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value)
        })
        .filter(|value| !value.is_empty())
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, Path=/, `Max-Age` when given (else it
/// lasts the browser session), `Secure` when the server is reached over HTTPS.
pub fn set_cookie(name: &str, value: &str, max_age: Option<i64>, secure: bool) -> HeaderValue {
    let max_age = max_age.map_or_else(String::new, |seconds| format!("; Max-Age={seconds}"));
    let secure = if secure { "; Secure" } else { "" };
    let text = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict{max_age}{secure}");
    // Our values are base64url and JWTs; anything else is dropped rather than sent broken.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A fresh random CSRF token.
pub fn new_csrf_token() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Where a login may send the browser: a path on this server, else `/` (no open redirect).
pub fn local_target(next: &str) -> &str {
    // Visible ASCII only: what a `Location` header can carry as it is.
    let local = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && next.bytes().all(|b| b.is_ascii_graphic());
    if local { next } else { "/" }
}

/// POST, PUT, PATCH and DELETE change something.
pub fn is_unsafe(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

#[derive(Debug, thiserror::Error)]
pub enum CsrfError {
    #[error("cross-site request refused: its {header} {origin:?} is not this server ({host})")]
    Foreign {
        header: &'static str,
        origin: String,
        host: String,
    },
    #[error(
        "missing CSRF token: send the {CSRF_HEADER} header, or the {CSRF_FIELD} form field matching the {CSRF_COOKIE} cookie (reload the page)"
    )]
    Missing,
    #[error("the CSRF token does not match the {CSRF_COOKIE} cookie (reload the page)")]
    Mismatch,
    #[error("failed to read the form body: {0}")]
    Body(String),
}

impl CsrfError {
    /// A stable short name, for the audit log.
    pub fn reason(&self) -> &'static str {
        match self {
            CsrfError::Foreign { .. } => "cross_site_request",
            CsrfError::Missing => "missing_csrf_token",
            CsrfError::Mismatch => "wrong_csrf_token",
            CsrfError::Body(_) => "unreadable_form",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            CsrfError::Body(_) => StatusCode::BAD_REQUEST,
            _ => StatusCode::FORBIDDEN,
        }
    }
}

impl IntoResponse for CsrfError {
    fn into_response(self) -> Response {
        (self.status(), error_body(self.to_string())).into_response()
    }
}

/// Whether an unsafe request came from this server's own pages or a script: its `Origin`
/// (else `Referer`) names this server, and it carries the `X-CSRF-Token` header or a
/// `csrf_token` form field equal to the `vctp_csrf` cookie. The request comes back whole (a
/// form body that was read is put back).
pub async fn verify_csrf(request: Request) -> Result<Request, CsrfError> {
    same_origin(request.headers(), request.uri())?;
    let expected = cookie(request.headers(), CSRF_COOKIE).map(str::to_string);
    if let Some(sent) = request.headers().get(CSRF_HEADER) {
        // A custom header is proof enough on its own: a browser sends none cross-site without
        // a CORS preflight, which vctp never grants. Beside the cookie it must match it.
        let sent = sent.to_str().map_err(|_| CsrfError::Mismatch)?;
        return match expected {
            _ if sent.is_empty() => Err(CsrfError::Missing),
            Some(expected) if !same_token(&expected, sent) => Err(CsrfError::Mismatch),
            _ => Ok(request),
        };
    }
    let is_form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(CsrfError::Missing);
    }
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, FORM_LIMIT)
        .await
        .map_err(|e| CsrfError::Body(e.to_string()))?;
    let field = url::form_urlencoded::parse(&bytes)
        .find(|(key, _)| key == CSRF_FIELD)
        .map(|(_, value)| value.into_owned());
    match (expected, field) {
        (Some(expected), Some(field)) if same_token(&expected, &field) => {
            Ok(Request::from_parts(parts, Body::from(bytes)))
        }
        (Some(_), Some(_)) => Err(CsrfError::Mismatch),
        _ => Err(CsrfError::Missing),
    }
}

/// Equal without telling by its time how much of a guess was right.
fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |diff, (x, y)| diff | (x ^ y))
            == 0
}

/// A request whose `Origin` (or, without it, `Referer`) names another host or port than the
/// one it was sent to is refused; one with neither passes to the token check.
fn same_origin(headers: &HeaderMap, uri: &Uri) -> Result<(), CsrfError> {
    let (name, value) = match (headers.get(header::ORIGIN), headers.get(header::REFERER)) {
        (Some(origin), _) => ("Origin", origin),
        (None, Some(referer)) => ("Referer", referer),
        (None, None) => return Ok(()),
    };
    let origin = value.to_str().unwrap_or_default();
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()))
        .unwrap_or_default();
    let foreign = || CsrfError::Foreign {
        header: name,
        origin: origin.to_string(),
        host: host.to_string(),
    };
    // "null" (a sandboxed or file page) and anything not http(s) is foreign.
    let origin_url = url::Url::parse(origin).map_err(|_| foreign())?;
    if !matches!(origin_url.scheme(), "http" | "https") {
        return Err(foreign());
    }
    let host_url =
        url::Url::parse(&format!("{}://{host}", origin_url.scheme())).map_err(|_| foreign())?;
    let same = origin_url.host_str().is_some()
        && origin_url.host_str() == host_url.host_str()
        && origin_url.port_or_known_default() == host_url.port_or_known_default();
    if same { Ok(()) } else { Err(foreign()) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn headers(cookies: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for line in cookies {
            map.append(header::COOKIE, HeaderValue::from_str(line).unwrap());
        }
        map
    }

    #[test]
    fn cookies_are_found_by_exact_name_in_any_cookie_header() {
        let map = headers(&["a=1; vctp_session=tok.en.x ;b=2", "vctp_csrf=\"q\""]);
        assert_eq!(cookie(&map, SESSION_COOKIE), Some("tok.en.x"));
        assert_eq!(cookie(&map, CSRF_COOKIE), Some("q"));
        assert_eq!(cookie(&map, "vctp"), None);
        assert_eq!(
            cookie(&headers(&["x_vctp_session=1"]), SESSION_COOKIE),
            None
        );
        assert_eq!(cookie(&headers(&["vctp_session="]), SESSION_COOKIE), None);
        assert_eq!(
            cookie(
                &headers(&["vctp_session=1; vctp_session=2"]),
                SESSION_COOKIE
            ),
            Some("1")
        );
    }

    #[test]
    fn a_login_goes_only_to_local_paths() {
        for local in ["/", "/reports", "/vm/trace?vm=a&view=daily"] {
            assert_eq!(local_target(local), local);
        }
        for foreign in [
            "",
            "reports",
            "//evil.example",
            "/\\evil.example",
            "https://evil.example",
            "javascript:alert(1)",
            "/\tx",
            "/caf\u{e9}",
            "/a b",
        ] {
            assert_eq!(local_target(foreign), "/", "{foreign:?}");
        }
    }

    #[test]
    fn the_origin_must_name_the_host_the_request_was_sent_to() {
        let with = |origin: &str| {
            let mut map = HeaderMap::new();
            map.insert(header::HOST, HeaderValue::from_static("vctp.example:8443"));
            map.insert(header::ORIGIN, HeaderValue::from_str(origin).unwrap());
            same_origin(&map, &Uri::from_static("/api/x"))
        };
        assert!(with("https://vctp.example:8443").is_ok());
        for foreign in [
            "https://vctp.example",
            "https://evil.example:8443",
            "null",
            "file:///x",
        ] {
            assert!(
                matches!(with(foreign), Err(CsrfError::Foreign { .. })),
                "{foreign}"
            );
        }
        assert!(same_origin(&HeaderMap::new(), &Uri::from_static("/")).is_ok());
    }

    proptest! {
        /// Whatever the header holds, the parser answers without panicking, and what it
        /// answers is a non-empty, trimmed part of that header.
        #[test]
        fn any_cookie_header_parses_without_panicking(line in "\\PC{0,200}", name in "[a-z_=; ]{0,12}") {
            if let Some(value) = cookie_in(&line, &name) {
                prop_assert!(!value.is_empty());
                prop_assert!(line.contains(value));
                prop_assert_eq!(value.trim(), value);
            }
        }

        /// Every well-formed cookie list gives back the first value of each name.
        #[test]
        fn well_formed_cookie_lists_round_trip(
            pairs in proptest::collection::vec(("[a-zA-Z0-9_]{1,10}", "[a-zA-Z0-9._~-]{1,40}"), 1..8),
            spaces in proptest::collection::vec(" {0,2}", 8),
        ) {
            let line = pairs
                .iter()
                .zip(&spaces)
                .map(|((name, value), space)| format!("{space}{name}={value}"))
                .collect::<Vec<_>>()
                .join(";");
            let map = headers(&[&line]);
            for (name, _) in &pairs {
                let first = pairs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
                prop_assert_eq!(cookie(&map, name), first);
            }
        }
    }
}
