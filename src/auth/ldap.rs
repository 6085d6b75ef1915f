//! Login against the directory: connect (LDAPS, StartTLS or plain) → optional service bind →
//! search the user by an escaped filter → bind as that DN with the password → read the
//! user's group DNs (`memberOf`, else groups whose `member` is the user).

use super::{Error, setting};
use crate::config::Settings;
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, Scope, SearchEntry, ldap_escape};
use std::sync::Arc;
use std::time::Duration;

/// `invalidCredentials` (RFC 4511).
const RC_INVALID_CREDENTIALS: u32 = 49;

/// A user who proved their password, with the group DNs the directory lists for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdapUser {
    pub dn: String,
    pub groups: Vec<String>,
}

/// How to reach and search the directory.
#[derive(Clone)]
pub struct Directory {
    url: String,
    starttls: bool,
    no_tls_verify: bool,
    /// Trusting only `ldap_trust_cert_file`; `None` = the system roots (ldap3's default).
    tls_config: Option<Arc<rustls::ClientConfig>>,
    base_dn: String,
    user_base_dn: String,
    user_attribute: String,
    service_account: Option<(String, String)>,
    timeout: Duration,
}

impl Directory {
    pub(super) fn from_settings(settings: &Settings) -> Result<Directory, Error> {
        let url = settings
            .ldap_bind_address
            .as_deref()
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .ok_or_else(|| {
                setting(
                    "ldap_bind_address",
                    "is required when auth is enabled (ldap://HOST:389 or ldaps://HOST:636)",
                )
            })?;
        let parsed = url::Url::parse(url)
            .map_err(|e| setting("ldap_bind_address", format!("{url:?} is not a URL: {e}")))?;
        let tls = match parsed.scheme() {
            "ldaps" => true,
            "ldap" => false,
            other => {
                return Err(setting(
                    "ldap_bind_address",
                    format!("{url:?} has scheme {other:?}; use ldap:// or ldaps://"),
                ));
            }
        };
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(setting(
                "ldap_bind_address",
                format!("{url:?} names no host"),
            ));
        }
        let base_dn = required_text(settings.ldap_base_dn.as_deref(), "ldap_base_dn")?;
        let user_base_dn = match settings.ldap_user_base_dn.as_deref().map(str::trim) {
            Some(dn) if !dn.is_empty() => dn.to_string(),
            _ => base_dn.clone(),
        };
        let user_attribute = settings.ldap_user_attribute.trim();
        let valid_attribute = !user_attribute.is_empty()
            && user_attribute
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !valid_attribute {
            return Err(setting(
                "ldap_user_attribute",
                format!(
                    "{user_attribute:?} is not an attribute name (e.g. uid, sAMAccountName, userPrincipalName)"
                ),
            ));
        }
        let service_account = match (&settings.ldap_bind_dn, &settings.ldap_bind_password) {
            (None, None) => None,
            (Some(dn), Some(password)) if !dn.trim().is_empty() && !password.is_empty() => {
                Some((dn.trim().to_string(), password.clone()))
            }
            _ => {
                return Err(setting(
                    "ldap_bind_dn",
                    "and settings.ldap_bind_password go together, both non-empty (or both unset for an anonymous search)",
                ));
            }
        };
        if settings.ldap_timeout_seconds == 0 {
            return Err(setting("ldap_timeout_seconds", "must be at least 1"));
        }
        let tls_config = settings
            .ldap_trust_cert_file
            .as_deref()
            .map(trusting)
            .transpose()?;
        Ok(Directory {
            url: url.to_string(),
            // Plain ldap:// is upgraded with StartTLS unless ldap_insecure says otherwise.
            starttls: !tls && !settings.ldap_insecure,
            no_tls_verify: settings.ldap_disable_validation,
            tls_config,
            base_dn,
            user_base_dn,
            user_attribute: user_attribute.to_string(),
            service_account,
            timeout: Duration::from_secs(settings.ldap_timeout_seconds),
        })
    }

    /// The user with this login name and password, with their groups; the password is only
    /// ever sent in the user's bind.
    pub async fn authenticate(&self, username: &str, password: &str) -> Result<LdapUser, Error> {
        // An empty password is an "unauthenticated bind" that many servers accept.
        if password.is_empty() {
            return Err(Error::EmptyPassword);
        }
        let mut ldap = self.connect().await?;
        let result = self.authenticate_on(&mut ldap, username, password).await;
        // Best effort: the connection task ends either way when `ldap` is dropped.
        let _ = ldap.unbind().await;
        result
    }

    async fn authenticate_on(
        &self,
        ldap: &mut Ldap,
        username: &str,
        password: &str,
    ) -> Result<LdapUser, Error> {
        if let Some((dn, service_password)) = &self.service_account {
            let bound = ldap
                .with_timeout(self.timeout)
                .simple_bind(dn, service_password)
                .await
                .and_then(|result| result.success());
            bound.map_err(|e| self.failure("service account bind", e))?;
        }
        let dn = match self.find_user(ldap, username).await {
            Ok(dn) => dn,
            Err(e @ (Error::UserNotFound | Error::AmbiguousUser { .. })) => {
                self.dummy_bind(ldap, password).await;
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        let bound = ldap
            .with_timeout(self.timeout)
            .simple_bind(&dn, password)
            .await
            .and_then(|result| result.success());
        match bound {
            Ok(_) => {}
            Err(LdapError::LdapResult { result }) if result.rc == RC_INVALID_CREDENTIALS => {
                return Err(Error::InvalidCredentials);
            }
            Err(e) => return Err(self.failure("user bind", e)),
        }
        let groups = self.groups_of(ldap, &dn).await?;
        Ok(LdapUser { dn, groups })
    }

    /// A bind that fails, where the user search found nobody: the same round trips as a
    /// wrong password, so neither the answer nor its time tells whether the user exists. The
    /// DN is one no entry has (binding a real account, say the service account, with a wrong
    /// password could count towards its lockout).
    async fn dummy_bind(&self, ldap: &mut Ldap, password: &str) {
        let dn = format!("cn=vctp-no-such-user,{}", self.user_base_dn);
        // Its outcome (invalidCredentials, or a failure) changes nothing: the login is refused.
        let _ = ldap
            .with_timeout(self.timeout)
            .simple_bind(&dn, password)
            .await;
    }

    /// The DN of the one entry whose login attribute is `username`.
    async fn find_user(&self, ldap: &mut Ldap, username: &str) -> Result<String, Error> {
        let filter = user_filter(&self.user_attribute, username);
        let (entries, _) = ldap
            .with_timeout(self.timeout)
            .search(&self.user_base_dn, Scope::Subtree, &filter, vec!["1.1"])
            .await
            .and_then(|result| result.success())
            .map_err(|e| self.failure("user search", e))?;
        let count = entries.len();
        let mut entries = entries.into_iter();
        match (entries.next(), count) {
            (Some(entry), 1) => Ok(SearchEntry::construct(entry).dn),
            (None, _) => Err(Error::UserNotFound),
            (Some(_), count) => Err(Error::AmbiguousUser { count }),
        }
    }

    /// The user's groups: `memberOf` of their entry, else every `groupOfNames` or
    /// `groupOfUniqueNames` under the base DN listing them.
    async fn groups_of(&self, ldap: &mut Ldap, dn: &str) -> Result<Vec<String>, Error> {
        let (entries, _) = ldap
            .with_timeout(self.timeout)
            .search(dn, Scope::Base, "(objectClass=*)", vec!["memberOf"])
            .await
            .and_then(|result| result.success())
            .map_err(|e| self.failure("memberOf read", e))?;
        let member_of: Vec<String> = entries
            .into_iter()
            .flat_map(|entry| SearchEntry::construct(entry).attrs)
            .filter(|(name, _)| name.eq_ignore_ascii_case("memberOf"))
            .flat_map(|(_, values)| values)
            .collect();
        if !member_of.is_empty() {
            return Ok(member_of);
        }
        let (entries, _) = ldap
            .with_timeout(self.timeout)
            .search(
                &self.base_dn,
                Scope::Subtree,
                &group_filter(dn),
                vec!["1.1"],
            )
            .await
            .and_then(|result| result.success())
            .map_err(|e| self.failure("group search", e))?;
        Ok(entries
            .into_iter()
            .map(|entry| SearchEntry::construct(entry).dn)
            .collect())
    }

    async fn connect(&self) -> Result<Ldap, Error> {
        let mut settings = LdapConnSettings::new()
            .set_conn_timeout(self.timeout)
            .set_starttls(self.starttls)
            .set_no_tls_verify(self.no_tls_verify);
        if let Some(config) = &self.tls_config
            && !self.no_tls_verify
        {
            settings = settings.set_config(config.clone());
        }
        let connected = tokio::time::timeout(
            self.timeout,
            LdapConnAsync::with_settings(settings, &self.url),
        )
        .await;
        let (conn, ldap) = match connected {
            Ok(Ok(pair)) => pair,
            Ok(Err(e)) => return Err(self.unavailable(e.to_string())),
            Err(_) => {
                return Err(self.unavailable(format!("no connection within {:?}", self.timeout)));
            }
        };
        ldap3::drive!(conn);
        Ok(ldap)
    }

    fn unavailable(&self, message: String) -> Error {
        Error::LdapUnavailable {
            url: self.url.clone(),
            message,
        }
    }

    /// A failed operation: a dropped connection or timeout is the server being unavailable,
    /// anything else the server refusing the operation.
    fn failure(&self, operation: &'static str, e: LdapError) -> Error {
        match e {
            LdapError::LdapResult { result } => Error::Ldap {
                operation,
                url: self.url.clone(),
                message: format!("result code {}: {}", result.rc, result.text),
            },
            other => self.unavailable(format!("{operation}: {other}")),
        }
    }
}

fn required_text(value: Option<&str>, key: &str) -> Result<String, Error> {
    value
        .map(str::trim)
        .filter(|text| !text.is_empty())
        .map(str::to_string)
        .ok_or_else(|| setting(key, "is required when auth is enabled"))
}

/// A TLS client configuration trusting only the certificates of `path` (PEM): CAs, or the
/// server's own certificate (see [`crate::tls`]).
fn trusting(path: &std::path::Path) -> Result<Arc<rustls::ClientConfig>, Error> {
    let key = "ldap_trust_cert_file";
    let pem = std::fs::read(path)
        .map_err(|e| setting(key, format!("failed to read {}: {e}", path.display())))?;
    let config = crate::tls::client_config(&pem, crate::tls::Roots::FileOnly)
        .map_err(|e| setting(key, format!("{} {e}", path.display())))?;
    Ok(Arc::new(config))
}

/// The search filter for a login name; every filter metacharacter of the name is escaped, so
/// `*` or `)(uid=*` match only themselves.
fn user_filter(attribute: &str, username: &str) -> String {
    format!("({attribute}={})", ldap_escape(username))
}

/// Groups listing `dn` as a member.
fn group_filter(dn: &str) -> String {
    let dn = ldap_escape(dn);
    format!(
        "(|(&(objectClass=groupOfNames)(member={dn}))(&(objectClass=groupOfUniqueNames)(uniqueMember={dn})))"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_metacharacters_in_a_login_name_are_escaped() {
        assert_eq!(user_filter("uid", "alice"), "(uid=alice)");
        assert_eq!(user_filter("uid", "*"), r"(uid=\2a)");
        assert_eq!(
            user_filter("uid", "*)(uid=*))(|(uid=*"),
            r"(uid=\2a\29\28uid=\2a\29\29\28|\28uid=\2a)"
        );
        assert_eq!(
            user_filter("sAMAccountName", r"a\b"),
            r"(sAMAccountName=a\5cb)"
        );
        let parsed = ldap3::parse_filter(user_filter("uid", "alice)(|(objectClass=*"));
        assert!(
            parsed.is_ok(),
            "an escaped name still makes one valid filter"
        );
    }

    #[test]
    fn the_group_filter_escapes_the_member_dn() {
        let filter = group_filter(r"uid=o'neil (ops)\, jr,ou=Users,dc=example,dc=com");
        assert!(
            filter.contains(r"(member=uid=o'neil \28ops\29\5c, jr,ou=Users,dc=example,dc=com)"),
            "{filter}"
        );
        assert!(ldap3::parse_filter(&filter).is_ok());
    }

    #[test]
    fn plain_ldap_uses_starttls_unless_ldap_insecure() {
        let settings = super::super::tests::settings("").unwrap();
        assert!(Directory::from_settings(&settings).unwrap().starttls);
        let insecure = Settings {
            ldap_insecure: true,
            ..settings.clone()
        };
        assert!(!Directory::from_settings(&insecure).unwrap().starttls);
        let ldaps = Settings {
            ldap_bind_address: Some("ldaps://127.0.0.1:636".into()),
            ..settings
        };
        assert!(!Directory::from_settings(&ldaps).unwrap().starttls);
    }

    #[test]
    fn the_user_base_dn_defaults_to_the_base_dn() {
        let settings = super::super::tests::settings("").unwrap();
        let directory = Directory::from_settings(&settings).unwrap();
        assert_eq!(directory.user_base_dn, "dc=example,dc=com");
        let half_account = Settings {
            ldap_bind_dn: Some("cn=reader,dc=example,dc=com".into()),
            ..settings
        };
        assert!(matches!(
            Directory::from_settings(&half_account),
            Err(Error::Setting { key, .. }) if key == "settings.ldap_bind_dn"
        ));
    }

    #[tokio::test]
    async fn an_empty_password_is_refused_before_connecting() {
        let settings = super::super::tests::settings("").unwrap();
        let directory = Directory {
            // Nothing listens there: reaching the network would be ldap_unavailable.
            url: "ldap://127.0.0.1:1".into(),
            ..Directory::from_settings(&settings).unwrap()
        };
        assert!(matches!(
            directory.authenticate("alice", "").await,
            Err(Error::EmptyPassword)
        ));
        assert!(matches!(
            directory.authenticate("alice", "secret").await,
            Err(Error::LdapUnavailable { .. })
        ));
    }
}
