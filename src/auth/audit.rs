//! Auth decisions → `tracing` events with target `auth_audit` (decision, reason, method,
//! path, remote address, username, role, token id, answer status). Passwords and tokens are
//! never passed in.

use super::{Claims, Error, Role};
use std::net::SocketAddr;

/// The request fields every audit event carries.
pub struct RequestInfo {
    method: String,
    path: String,
    remote: String,
}

impl RequestInfo {
    /// `remote` is `None` when the peer address is not known.
    pub fn new(method: &str, path: &str, remote: Option<SocketAddr>) -> RequestInfo {
        RequestInfo {
            method: method.to_string(),
            path: path.to_string(),
            remote: remote.map_or_else(|| "-".to_string(), |addr| addr.to_string()),
        }
    }
}

/// Who made the request, as far as it is known: a login name before a token exists, a
/// token's claims after.
#[derive(Debug, Clone, Copy, Default)]
pub struct Subject<'a> {
    pub username: Option<&'a str>,
    pub role: Option<Role>,
    /// The token's `jti`, which names the token without revealing it.
    pub token_id: Option<&'a str>,
}

impl<'a> Subject<'a> {
    pub fn of(claims: &'a Claims) -> Subject<'a> {
        Subject {
            username: Some(&claims.sub),
            role: Some(claims.role),
            token_id: Some(&claims.jti),
        }
    }

    pub fn named(username: Option<&'a str>) -> Subject<'a> {
        Subject {
            username,
            ..Subject::default()
        }
    }
}

/// `status` is the answer's HTTP status.
pub fn allow(request: &RequestInfo, reason: &str, subject: Subject<'_>, status: u16) {
    tracing::info!(
        target: "auth_audit",
        decision = "allow",
        reason,
        method = %request.method,
        path = %request.path,
        remote = %request.remote,
        username = subject.username.unwrap_or("-"),
        role = subject.role.map_or("-", Role::as_str),
        token_id = subject.token_id.unwrap_or("-"),
        status,
        "auth decision"
    );
}

pub fn deny(request: &RequestInfo, error: &Error, subject: Subject<'_>, status: u16) {
    let required = match error {
        Error::InsufficientRole { required, .. } => required,
        _ => "-",
    };
    denied(request, error.reason(), required, subject, status);
    // The detail (LDAP server messages) only for server-side failures; never credentials.
    if error.is_backend_failure() {
        tracing::error!(target: "auth_audit", reason = error.reason(), error = %error, "auth backend failure");
    }
}

/// A refusal for a reason outside [`Error`] (a failed CSRF check).
pub fn refuse(request: &RequestInfo, reason: &str, subject: Subject<'_>, status: u16) {
    denied(request, reason, "-", subject, status);
}

fn denied(request: &RequestInfo, reason: &str, required: &str, subject: Subject<'_>, status: u16) {
    tracing::warn!(
        target: "auth_audit",
        decision = "deny",
        reason,
        method = %request.method,
        path = %request.path,
        remote = %request.remote,
        username = subject.username.unwrap_or("-"),
        role = subject.role.map_or("-", Role::as_str),
        token_id = subject.token_id.unwrap_or("-"),
        required,
        status,
        "auth decision"
    );
}
