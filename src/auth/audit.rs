//! Auth decisions → `tracing` events with target `auth_audit` (decision, reason, method,
//! path, remote address, username, role). Passwords and tokens are never passed in.

use super::{Error, Role};
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

pub fn allow(request: &RequestInfo, reason: &str, username: &str, role: Role) {
    tracing::info!(
        target: "auth_audit",
        decision = "allow",
        reason,
        method = %request.method,
        path = %request.path,
        remote = %request.remote,
        username,
        role = role.as_str(),
        "auth decision"
    );
}

pub fn deny(request: &RequestInfo, error: &Error, username: Option<&str>, role: Option<Role>) {
    let required = match error {
        Error::InsufficientRole { required, .. } => required,
        _ => "-",
    };
    tracing::warn!(
        target: "auth_audit",
        decision = "deny",
        reason = error.reason(),
        method = %request.method,
        path = %request.path,
        remote = %request.remote,
        username = username.unwrap_or("-"),
        role = role.map_or("-", Role::as_str),
        required,
        "auth decision"
    );
    // The detail (LDAP server messages) only for server-side failures; never credentials.
    if error.is_backend_failure() {
        tracing::error!(target: "auth_audit", reason = error.reason(), error = %error, "auth backend failure");
    }
}
