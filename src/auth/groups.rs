//! A user's group DNs → allowlist check (`settings.ldap_groups`) → highest mapped role
//! (`settings.auth_group_role_mappings`), comparing DNs in one normalized form.

use super::{Error, Role, setting};
use crate::config::Settings;

/// A DN in the form used for comparisons: trimmed, lowercase, no whitespace around `,`
/// and `=`, so `CN=Admins, DC=Example` and `cn=admins,dc=example` are the same group.
pub fn normalize_dn(dn: &str) -> String {
    let mut out = String::with_capacity(dn.len());
    let mut chars = dn.trim().chars().peekable();
    while let Some(c) = chars.next() {
        if c == ',' || c == '=' {
            while out.ends_with(char::is_whitespace) {
                out.pop();
            }
            out.push(c);
            while chars.peek().is_some_and(|next| next.is_whitespace()) {
                chars.next();
            }
        } else {
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// Who may log in and with which role.
#[derive(Debug, Clone)]
pub struct GroupPolicy {
    /// Normalized group DN → role.
    roles: Vec<(String, Role)>,
    /// Normalized DNs of `settings.ldap_groups`; empty = no allowlist.
    allowed: Vec<String>,
}

impl GroupPolicy {
    pub fn new<'a>(
        roles: impl IntoIterator<Item = (&'a str, Role)>,
        allowed: impl IntoIterator<Item = &'a str>,
    ) -> GroupPolicy {
        GroupPolicy {
            roles: roles
                .into_iter()
                .map(|(dn, role)| (normalize_dn(dn), role))
                .collect(),
            allowed: allowed.into_iter().map(normalize_dn).collect(),
        }
    }

    pub(super) fn from_settings(settings: &Settings) -> Result<GroupPolicy, Error> {
        if settings.auth_group_role_mappings.is_empty() {
            return Err(setting(
                "auth_group_role_mappings",
                "must map at least one LDAP group DN to viewer or admin when auth is enabled",
            ));
        }
        if let Some(dn) = settings
            .auth_group_role_mappings
            .keys()
            .find(|dn| dn.trim().is_empty())
        {
            return Err(setting(
                "auth_group_role_mappings",
                format!("{dn:?} is not a group DN"),
            ));
        }
        if let Some(i) = settings
            .ldap_groups
            .iter()
            .position(|dn| dn.trim().is_empty())
        {
            return Err(setting(
                &format!("ldap_groups[{i}]"),
                "an empty group DN allows nobody; remove it",
            ));
        }
        Ok(GroupPolicy::new(
            settings
                .auth_group_role_mappings
                .iter()
                .map(|(dn, role)| (dn.as_str(), *role)),
            settings.ldap_groups.iter().map(String::as_str),
        ))
    }

    /// The role of a member of `groups`: the allowlist first (when set), then the highest
    /// mapped role; no mapped group means no login.
    pub fn resolve(&self, groups: &[String]) -> Result<Role, Error> {
        let groups: Vec<String> = groups.iter().map(|dn| normalize_dn(dn)).collect();
        if !self.allowed.is_empty() && !groups.iter().any(|dn| self.allowed.contains(dn)) {
            return Err(Error::NotInAllowedGroup);
        }
        self.roles
            .iter()
            .filter(|(dn, _)| groups.contains(dn))
            .map(|(_, role)| *role)
            .max()
            .ok_or(Error::NoMappedRole)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dns(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn dns_compare_without_case_and_whitespace_around_separators() {
        assert_eq!(
            normalize_dn("  CN=VCTP Admins , OU = Groups,DC=Example,  DC=com "),
            "cn=vctp admins,ou=groups,dc=example,dc=com"
        );
        assert_eq!(normalize_dn("cn=a,dc=b"), normalize_dn("CN = A , DC = B"));
        assert_ne!(normalize_dn("cn=a b,dc=c"), normalize_dn("cn=ab,dc=c"));
    }

    #[test]
    fn the_highest_mapped_role_wins() {
        let policy = GroupPolicy::new(
            [
                ("cn=viewers,dc=x", Role::Viewer),
                ("CN=Admins, DC=X", Role::Admin),
            ],
            [],
        );
        assert_eq!(
            policy
                .resolve(&dns(&["cn=viewers,dc=x", "cn=admins,dc=x"]))
                .unwrap(),
            Role::Admin
        );
        assert_eq!(
            policy
                .resolve(&dns(&["CN=Viewers,DC=X", "cn=other,dc=x"]))
                .unwrap(),
            Role::Viewer
        );
    }

    #[test]
    fn a_user_without_a_mapped_group_gets_no_role() {
        let policy = GroupPolicy::new([("cn=viewers,dc=x", Role::Viewer)], []);
        assert!(matches!(
            policy.resolve(&dns(&["cn=other,dc=x"])),
            Err(Error::NoMappedRole)
        ));
        assert!(matches!(policy.resolve(&[]), Err(Error::NoMappedRole)));
    }

    #[test]
    fn the_allowlist_is_checked_before_roles_and_only_when_set() {
        let policy = GroupPolicy::new(
            [
                ("cn=viewers,dc=x", Role::Viewer),
                ("cn=ops,dc=x", Role::Viewer),
            ],
            ["cn=viewers,dc=x"],
        );
        assert!(matches!(
            policy.resolve(&dns(&["cn=ops,dc=x"])),
            Err(Error::NotInAllowedGroup)
        ));
        assert_eq!(
            policy.resolve(&dns(&["cn=Viewers, dc=x"])).unwrap(),
            Role::Viewer
        );
        let allowed_but_unmapped =
            GroupPolicy::new([("cn=viewers,dc=x", Role::Viewer)], ["cn=platform,dc=x"]);
        assert!(matches!(
            allowed_but_unmapped.resolve(&dns(&["cn=platform,dc=x"])),
            Err(Error::NoMappedRole)
        ));
    }
}
