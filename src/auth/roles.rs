//! Who may do what: the auth mode, the roles, and which endpoint needs which role. A leaf
//! (nothing of the crate), so the settings can name these types without pulling in LDAP,
//! tokens or the server.

use axum::http::Method;
use serde::{Deserialize, Serialize};

/// What the middleware enforces (`settings.auth_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// No checks at all.
    Disabled,
    /// Protected endpoints accept a request without a token, but a token given must be valid.
    Optional,
    /// Protected endpoints need a valid bearer token with a sufficient role.
    Required,
}

/// A role granted through `settings.auth_group_role_mappings`; `Admin` implies `Viewer`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Admin => "admin",
        }
    }
}

/// Who may call an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Public,
    /// A UI page: a viewer, like reading the API (under `required` a browser without one is
    /// sent to the login page).
    Page,
    Viewer,
    Admin,
}

impl Access {
    /// The one place that says which endpoint needs which role: the login and logout pages,
    /// assets, Swagger, probes and metrics are public; `/api/…` needs viewer to read
    /// (GET/HEAD) and admin for anything else, except the login; `/debug/pprof/…` needs admin;
    /// every other path is a page, which shows the data as the API does.
    pub fn of(method: &Method, path: &str) -> Access {
        let under = |prefix: &str| {
            path == prefix
                || path
                    .strip_prefix(prefix)
                    .is_some_and(|rest| rest.starts_with('/'))
        };
        if under("/debug/pprof") {
            return Access::Admin;
        }
        if under("/api") {
            if method == Method::POST && path == "/api/auth/login" {
                return Access::Public;
            }
            return if method == Method::GET || method == Method::HEAD {
                Access::Viewer
            } else {
                Access::Admin
            };
        }
        let public = ["/login", "/logout", "/metrics", "/healthz", "/readyz"].contains(&path)
            || under("/assets")
            || path.starts_with("/favicon")
            || path.starts_with("/swagger");
        if public { Access::Public } else { Access::Page }
    }

    /// The role an endpoint needs, or `None` for public ones.
    pub fn role(self) -> Option<Role> {
        match self {
            Access::Public => None,
            Access::Page | Access::Viewer => Some(Role::Viewer),
            Access::Admin => Some(Role::Admin),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_swagger_probes_metrics_and_login_are_public_and_pages_need_a_viewer() {
        for path in [
            "/assets/app.css",
            "/favicon.ico",
            "/favicon.svg",
            "/swagger",
            "/swagger/index.html",
            "/swagger.json",
            "/metrics",
            "/healthz",
            "/readyz",
            "/login",
        ] {
            assert_eq!(Access::of(&Method::GET, path), Access::Public, "{path}");
        }
        assert_eq!(Access::of(&Method::POST, "/api/auth/login"), Access::Public);
        assert_eq!(Access::of(&Method::POST, "/login"), Access::Public);
        assert_eq!(Access::of(&Method::POST, "/logout"), Access::Public);
        for path in [
            "/",
            "/vcenters",
            "/vcenters/vc1",
            "/snapshots/hourly",
            "/vm/trace",
            "/reports",
            "/assetsx",
            "/no-such-page",
        ] {
            assert_eq!(Access::of(&Method::GET, path), Access::Page, "{path}");
        }
        assert_eq!(Access::Page.role(), Some(Role::Viewer));
    }

    #[test]
    fn reading_the_api_needs_viewer_and_everything_else_needs_admin() {
        for path in [
            "/api/vcenters",
            "/api/reports/download",
            "/api/report/x",
            "/api/diagnostics/daily-creation",
            "/api/auth/me",
            "/api",
        ] {
            assert_eq!(Access::of(&Method::GET, path), Access::Viewer, "{path}");
            assert_eq!(Access::of(&Method::HEAD, path), Access::Viewer, "{path}");
        }
        for (method, path) in [
            (Method::POST, "/api/snapshots/aggregate"),
            (Method::POST, "/api/snapshots/repair"),
            (Method::POST, "/api/encrypt"),
            (Method::POST, "/api/vcenters/cache/rebuild"),
            (Method::DELETE, "/api/reports"),
            (Method::PUT, "/api/vcenters"),
            (Method::GET, "/api/auth/login"),
        ] {
            let expected = if method == Method::GET {
                Access::Viewer
            } else {
                Access::Admin
            };
            assert_eq!(Access::of(&method, path), expected, "{method} {path}");
        }
    }

    #[test]
    fn pprof_needs_admin_and_lookalike_prefixes_are_not_the_api() {
        assert_eq!(Access::of(&Method::GET, "/debug/pprof/"), Access::Admin);
        assert_eq!(Access::of(&Method::GET, "/debug/pprof"), Access::Admin);
        assert_eq!(Access::of(&Method::GET, "/apidocs"), Access::Page);
        assert_eq!(
            Access::of(&Method::POST, "/api/auth/login/x"),
            Access::Admin
        );
    }

    #[test]
    fn admin_implies_viewer() {
        assert!(Role::Admin > Role::Viewer);
    }
}
