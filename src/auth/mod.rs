//! Authentication of `vctp serve`: login (LDAP search + bind → group DNs → role → signed
//! JWT) and token verification, without HTTP: the middleware and the login routes that use
//! them are `crate::api`'s.
//!
//! `settings.auth_enabled` switches the LDAP and JWT parts on; `settings.auth_mode` says what
//! the middleware enforces. Unset, the mode follows `auth_enabled` (`required` when enabled,
//! `disabled` otherwise); `auth_enabled: false` with `optional`/`required`, and
//! `auth_enabled: true` with `disabled`, are settings errors, so nobody believes an API is
//! protected when it is not.

pub mod audit;
mod groups;
mod ldap;
pub mod roles;
mod throttle;
mod token;

pub use groups::{GroupPolicy, normalize_dn};
pub use ldap::{Directory, LdapUser};
pub use roles::{Access, Mode, Role};
pub use throttle::LoginThrottle;
pub use token::{Claims, Tokens};

use crate::config::Settings;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid auth settings: `{key}`: {message}")]
    Setting { key: String, message: String },
    #[error("invalid login request: {0}")]
    BadRequest(String),
    #[error("authentication is disabled on this server")]
    Disabled,
    #[error("invalid username or password")]
    EmptyPassword,
    #[error("invalid username or password")]
    UserNotFound,
    #[error("invalid username or password")]
    AmbiguousUser { count: usize },
    #[error("invalid username or password")]
    InvalidCredentials,
    #[error("user is not in any group allowed to use vctp")]
    NotInAllowedGroup,
    #[error("user has no vctp role")]
    NoMappedRole,
    #[error("failed to reach the LDAP server {url}: {message}")]
    LdapUnavailable { url: String, message: String },
    #[error("LDAP {operation} on {url} failed: {message}")]
    Ldap {
        operation: &'static str,
        url: String,
        message: String,
    },
    #[error("missing bearer token")]
    MissingToken,
    #[error("the Authorization header is not `Bearer <token>`")]
    MalformedHeader,
    #[error("invalid token: {reason}")]
    InvalidToken { reason: &'static str },
    #[error("failed to sign a token: {0}")]
    Sign(String),
    #[error("too many login attempts; retry in {retry_after} seconds")]
    TooManyAttempts { retry_after: u64 },
    #[error("this endpoint needs the {required} role, the token has {actual}")]
    InsufficientRole {
        required: &'static str,
        actual: &'static str,
    },
}

impl Error {
    /// A stable short name, for the audit log and metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Setting { .. } => "invalid_settings",
            Error::BadRequest(_) => "bad_request",
            Error::Disabled => "auth_disabled",
            Error::EmptyPassword => "empty_password",
            Error::UserNotFound => "user_not_found",
            Error::AmbiguousUser { .. } => "ambiguous_user",
            Error::InvalidCredentials => "invalid_credentials",
            Error::NotInAllowedGroup => "not_in_allowed_group",
            Error::NoMappedRole => "no_mapped_role",
            Error::LdapUnavailable { .. } => "ldap_unavailable",
            Error::Ldap { .. } => "ldap_error",
            Error::MissingToken => "missing_token",
            Error::MalformedHeader => "malformed_header",
            Error::InvalidToken { reason } => reason,
            Error::Sign(_) => "token_signing_failed",
            Error::InsufficientRole { .. } => "insufficient_role",
            Error::TooManyAttempts { .. } => "too_many_attempts",
        }
    }

    /// A failure of this server's setup or of the directory rather than of the caller: the
    /// audit log keeps its detail, the answer does not.
    pub fn is_backend_failure(&self) -> bool {
        matches!(
            self,
            Error::Setting { .. }
                | Error::Sign(_)
                | Error::LdapUnavailable { .. }
                | Error::Ldap { .. }
        )
    }
}

/// The LDAP and JWT parts, present when `settings.auth_enabled` is true.
pub struct Enabled {
    pub mode: Mode,
    pub directory: Directory,
    pub tokens: Tokens,
    pub groups: GroupPolicy,
    pub throttle: LoginThrottle,
}

/// Authentication as configured; [`Auth::disabled`] lets every request through.
pub struct Auth {
    enabled: Option<Enabled>,
}

impl Auth {
    pub fn disabled() -> Auth {
        Auth { enabled: None }
    }

    /// Validates the auth settings (errors name the key) and builds the LDAP client
    /// settings, the token keys and the group policy; no network access.
    pub fn from_settings(settings: &Settings) -> Result<Auth, Error> {
        let mode = effective_mode(settings.auth_enabled, settings.auth_mode)?;
        if !settings.auth_enabled {
            return Ok(Auth::disabled());
        }
        Ok(Auth {
            enabled: Some(Enabled {
                mode,
                directory: Directory::from_settings(settings)?,
                tokens: Tokens::from_settings(settings)?,
                groups: GroupPolicy::from_settings(settings)?,
                throttle: LoginThrottle::from_settings(settings)?,
            }),
        })
    }

    /// The enforced mode.
    pub fn mode(&self) -> Mode {
        self.enabled.as_ref().map_or(Mode::Disabled, |on| on.mode)
    }

    pub fn enabled(&self) -> Option<&Enabled> {
        self.enabled.as_ref()
    }
}

/// The mode `auth_enabled` and `auth_mode` mean together; contradictions are errors.
fn effective_mode(enabled: bool, mode: Option<Mode>) -> Result<Mode, Error> {
    match (enabled, mode) {
        (false, None | Some(Mode::Disabled)) => Ok(Mode::Disabled),
        (false, Some(mode)) => Err(setting(
            "auth_mode",
            format!(
                "is {} but settings.auth_enabled is false; set auth_enabled: true (with the LDAP and JWT settings) or auth_mode: disabled",
                mode_name(mode)
            ),
        )),
        (true, None) => Ok(Mode::Required),
        (true, Some(Mode::Disabled)) => Err(setting(
            "auth_mode",
            "is disabled but settings.auth_enabled is true; use optional or required, or set auth_enabled: false",
        )),
        (true, Some(mode)) => Ok(mode),
    }
}

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Disabled => "disabled",
        Mode::Optional => "optional",
        Mode::Required => "required",
    }
}

/// A settings error for `settings.{key}`.
fn setting(key: &str, message: impl Into<String>) -> Error {
    Error::Setting {
        key: format!("settings.{key}"),
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// A settings file with auth enabled and everything valid, plus `extra` lines.
    pub(crate) fn settings(extra: &str) -> Result<Settings, crate::config::Error> {
        let text = format!(
            "settings:\n  auth_enabled: true\n  ldap_bind_address: ldap://127.0.0.1:389\n  ldap_base_dn: dc=example,dc=com\n  auth_jwt_signing_key: {}\n  auth_group_role_mappings:\n    cn=admins,dc=example,dc=com: admin\n{extra}",
            token::tests::KEY_B64
        );
        Settings::parse(&text, Path::new("test.yml"))
    }

    fn setting_error(settings: &Settings) -> (String, String) {
        match Auth::from_settings(settings) {
            Err(Error::Setting { key, message }) => (key, message),
            Err(other) => panic!("expected a settings error, got {other}"),
            Ok(_) => panic!("expected a settings error"),
        }
    }

    #[test]
    fn auth_mode_defaults_to_required_when_enabled_and_disabled_otherwise() {
        let on = Auth::from_settings(&settings("").unwrap()).unwrap();
        assert_eq!(on.mode(), Mode::Required);
        let off = Auth::from_settings(&Settings::default()).unwrap();
        assert_eq!(off.mode(), Mode::Disabled);
        assert!(off.enabled().is_none());
        let optional = Auth::from_settings(&settings("  auth_mode: optional\n").unwrap()).unwrap();
        assert_eq!(optional.mode(), Mode::Optional);
    }

    #[test]
    fn contradictory_auth_enabled_and_auth_mode_are_settings_errors() {
        let off = Settings {
            auth_mode: Some(Mode::Required),
            ..Settings::default()
        };
        let (key, message) = setting_error(&off);
        assert_eq!(key, "settings.auth_mode");
        assert!(message.contains("auth_enabled is false"), "{message}");
        let (key, _) = setting_error(&settings("  auth_mode: disabled\n").unwrap());
        assert_eq!(key, "settings.auth_mode");
    }

    #[test]
    fn an_unknown_auth_mode_is_a_settings_error_naming_the_key() {
        let e = settings("  auth_mode: sometimes\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("settings.auth_mode"), "{e}");
    }

    #[test]
    fn missing_or_bad_auth_settings_name_their_key() {
        let mut base = settings("").unwrap();
        base.ldap_bind_address = None;
        assert_eq!(setting_error(&base).0, "settings.ldap_bind_address");

        let mut bad_url = settings("").unwrap();
        bad_url.ldap_bind_address = Some("http://dir.example.com".into());
        let (key, message) = setting_error(&bad_url);
        assert_eq!(key, "settings.ldap_bind_address");
        assert!(message.contains("ldap://"), "{message}");

        let mut no_base = settings("").unwrap();
        no_base.ldap_base_dn = None;
        assert_eq!(setting_error(&no_base).0, "settings.ldap_base_dn");

        let mut no_key = settings("").unwrap();
        no_key.auth_jwt_signing_key = None;
        assert_eq!(setting_error(&no_key).0, "settings.auth_jwt_signing_key");

        let mut not_base64 = settings("").unwrap();
        not_base64.auth_jwt_signing_key = Some("not base64!".into());
        let (key, message) = setting_error(&not_base64);
        assert_eq!(key, "settings.auth_jwt_signing_key");
        assert!(message.contains("base64"), "{message}");

        let mut short = settings("").unwrap();
        short.auth_jwt_signing_key = Some("c2hvcnQ=".into());
        let (key, message) = setting_error(&short);
        assert_eq!(key, "settings.auth_jwt_signing_key");
        assert!(message.contains("32 bytes"), "{message}");

        let mut no_roles = settings("").unwrap();
        no_roles.auth_group_role_mappings.clear();
        assert_eq!(
            setting_error(&no_roles).0,
            "settings.auth_group_role_mappings"
        );

        let mut missing_ca = settings("").unwrap();
        missing_ca.ldap_trust_cert_file = Some("/nonexistent/ca.pem".into());
        let (key, message) = setting_error(&missing_ca);
        assert_eq!(key, "settings.ldap_trust_cert_file");
        assert!(message.contains("/nonexistent/ca.pem"), "{message}");

        let mut zero = settings("").unwrap();
        zero.auth_token_lifespan_minutes = 0;
        assert_eq!(
            setting_error(&zero).0,
            "settings.auth_token_lifespan_minutes"
        );
    }

    #[test]
    fn a_role_other_than_viewer_or_admin_is_a_settings_error_naming_the_key_and_dn() {
        let e = settings("    cn=ops,dc=example,dc=com: superuser\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("auth_group_role_mappings"), "{e}");
        assert!(e.contains("cn=ops,dc=example,dc=com"), "{e}");
        assert!(e.contains("superuser"), "{e}");
    }
}
