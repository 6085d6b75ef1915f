//! The web UI of `vctp serve`: GET request → handler reading the store → askama template
//! (HTML, escaped) with charts drawn as inline SVG by [`chart`]; CSS and favicon embedded.
//! Pages load nothing from anywhere but this server. Who may see them is the auth
//! middleware's decision (`auth::Access::Page`); the layout shows the session it found.

pub mod assets;
pub mod chart;
mod finance;
mod pages;
mod trace;

pub use super::session::Session;
use crate::store::Store;
use askama::Template;
use axum::Router;
use axum::extract::FromRef;
use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid query parameter {name}: {reason}")]
    BadParameter { name: &'static str, reason: String },
    #[error("unknown vCenter {0:?}")]
    UnknownVcenter(String),
    #[error("no VM has the id or name {0:?}")]
    UnknownVm(String),
    #[error(transparent)]
    Store(#[from] crate::store::Error),
    /// A month the settings cannot price, or with nothing stored to price.
    #[error(transparent)]
    Costs(crate::jobs::costs::Error),
    #[error("failed to render page {page}: {source}")]
    Render {
        page: &'static str,
        source: askama::Error,
    },
}

impl Error {
    /// A stable short name, for logs.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::BadParameter { .. } => "BadParameter",
            Error::UnknownVcenter(_) => "UnknownVcenter",
            Error::UnknownVm(_) => "UnknownVm",
            Error::Store(e) => e.reason(),
            Error::Costs(e) => super::error::cost_reason(e),
            Error::Render { .. } => "RenderFailed",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Error::Store(e) if e.is_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
            Error::BadParameter { .. } => StatusCode::BAD_REQUEST,
            Error::UnknownVcenter(_) | Error::UnknownVm(_) => StatusCode::NOT_FOUND,
            Error::Store(_) | Error::Render { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            Error::Costs(e) => super::error::cost_status(e),
        }
    }

    fn bad(name: &'static str, reason: impl Into<String>) -> Error {
        Error::BadParameter {
            name,
            reason: reason.into(),
        }
    }
}

impl From<crate::jobs::costs::Error> for Error {
    fn from(e: crate::jobs::costs::Error) -> Error {
        match e {
            crate::jobs::costs::Error::Store(e) => Error::Store(e),
            e => Error::Costs(e),
        }
    }
}

impl From<QueryRejection> for Error {
    fn from(rejection: QueryRejection) -> Error {
        Error::bad("query", rejection.body_text())
    }
}

#[derive(Template)]
#[template(path = "error.html", config = "src/api/ui/askama.toml")]
struct ErrorPage {
    layout: Layout,
    message: String,
}

impl IntoResponse for Error {
    /// An HTML page with the message; 5xx detail stays in the log.
    fn into_response(self) -> Response {
        let status = self.status();
        let message = if status == StatusCode::SERVICE_UNAVAILABLE {
            tracing::warn!(reason = self.reason(), error = %self, "page failed: database unavailable");
            "The database is unavailable; the page will work again once it answers.".to_string()
        } else if status.is_server_error() {
            tracing::error!(reason = self.reason(), error = %self, "page failed");
            "Internal error: the server log has the details.".to_string()
        } else {
            self.to_string()
        };
        let title = status.canonical_reason().unwrap_or("Error");
        // The error has no request to show a session from; its page offers no forms.
        let page = ErrorPage {
            layout: Layout::new(title, &Session::default()),
            message,
        };
        let mut response = match page.render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(e) => {
                tracing::error!(error = %e, "error page failed to render");
                (status, title.to_string()).into_response()
            }
        };
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(super::error::RETRY_AFTER_SECONDS),
            );
        }
        response
    }
}

/// What the shared layout shows around every page.
pub struct Layout {
    pub title: String,
    pub css: String,
    pub favicon: String,
    pub version: &'static str,
    /// Auth is on: the header offers login, or names the user and offers logout.
    pub login: bool,
    pub user: Option<String>,
    /// Admin-only controls are shown.
    pub admin: bool,
    /// The hidden `csrf_token` field of every form that posts.
    pub csrf: String,
}

impl Layout {
    fn new(title: impl Into<String>, session: &Session) -> Layout {
        Layout {
            title: title.into(),
            css: assets::CSS.url(),
            favicon: assets::FAVICON.url(),
            version: env!("CARGO_PKG_VERSION"),
            login: session.login,
            user: session.user.as_ref().map(|(name, _)| name.clone()),
            admin: session.admin(),
            csrf: session.csrf.clone(),
        }
    }
}

#[derive(Template)]
#[template(path = "login.html", config = "src/api/ui/askama.toml")]
struct LoginPage<'a> {
    layout: Layout,
    next: &'a str,
    username: &'a str,
    error: Option<&'a str>,
}

/// The login form, posting to `/login` with `next` (already a local path) and the session's
/// CSRF token; `error` says why the last attempt failed.
pub fn login_page(
    session: &Session,
    next: &str,
    username: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let page = LoginPage {
        layout: Layout::new("Log in", session),
        next,
        username,
        error,
    };
    match html("login", &page) {
        Ok(html) => (status, html).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Renders a page template into an HTML answer.
fn html(page: &'static str, template: &impl Template) -> Result<Html<String>, Error> {
    template
        .render()
        .map(Html)
        .map_err(|source| Error::Render { page, source })
}

/// Every UI route, to be merged into the API router; the pages read the store (and the
/// finance page the costs the server keeps).
pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Store: FromRef<S>,
    std::sync::Arc<super::Finance>: FromRef<S>,
{
    Router::new()
        .route("/", get(pages::dashboard))
        .route("/vcenters", get(pages::vcenters))
        .route("/vcenters/totals/daily", get(pages::daily_totals))
        .route("/vcenters/totals/hourly", get(pages::hourly_totals))
        .route("/snapshots/{grain}", get(pages::snapshots))
        .route("/vm/trace", get(trace::page))
        .route("/reports", get(pages::reports))
        .route("/finance", get(finance::page))
        .route("/assets/vctp.css", get(css))
        .route("/favicon.svg", get(favicon))
}

#[derive(Debug, Deserialize)]
struct AssetQuery {
    v: Option<String>,
}

async fn css(query: Result<Query<AssetQuery>, QueryRejection>, headers: HeaderMap) -> Response {
    let version = query.ok().and_then(|Query(q)| q.v);
    assets::serve(&assets::CSS, version.as_deref(), &headers)
}

async fn favicon(query: Result<Query<AssetQuery>, QueryRejection>, headers: HeaderMap) -> Response {
    let version = query.ok().and_then(|Query(q)| q.v);
    assets::serve(&assets::FAVICON, version.as_deref(), &headers)
}

/// A UTC time for a table cell; "unknown" for 0.
fn time_text(t: i64) -> String {
    if t == 0 {
        return "unknown".to_string();
    }
    chrono::DateTime::from_timestamp(t, 0)
        .map_or_else(|| t.to_string(), |d| d.format("%Y-%m-%d %H:%M").to_string())
}

/// A required, non-empty query parameter.
fn required(name: &'static str, value: Option<String>, what: &str) -> Result<String, Error> {
    value
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| Error::bad(name, format!("is required ({what})")))
}

/// An optional parameter where an empty value (a blank form field) means absent.
fn optional(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

/// A link with query parameters, each value percent-encoded.
fn link(path: &str, params: &[(&str, &str)]) -> String {
    if params.is_empty() {
        return path.to_string();
    }
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    format!("{path}?{query}")
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// One chart of a page, its SVG already escaped by [`chart`].
struct Chart {
    title: &'static str,
    svg: String,
}

/// A table cell of the pages: text, linked when `href` is given.
pub(super) struct Cell {
    pub(super) text: String,
    pub(super) href: Option<String>,
}

impl Cell {
    pub(super) fn text(text: impl Into<String>) -> Cell {
        Cell {
            text: text.into(),
            href: None,
        }
    }

    pub(super) fn link(text: impl Into<String>, href: String) -> Cell {
        Cell {
            text: text.into(),
            href: Some(href),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_percent_encode_their_values() {
        assert_eq!(
            link("/vm/trace", &[("vm", "a&b <c>"), ("view", "daily")]),
            "/vm/trace?vm=a%26b+%3Cc%3E&view=daily"
        );
        assert_eq!(link("/reports", &[]), "/reports");
    }

    #[test]
    fn times_show_as_utc_minutes_and_zero_as_unknown() {
        assert_eq!(time_text(1_773_100_800 + 3_660), "2026-03-10 01:01");
        assert_eq!(time_text(0), "unknown");
    }
}
