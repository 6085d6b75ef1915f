//! Tenant rules (`settings.tenant_rules`): ordered, first match wins, else `unassigned`.

use crate::aggregate::PlacementRef;
use crate::inventory::pattern::Pattern;
use serde::Deserialize;
use std::collections::BTreeMap;

/// The tenant of a VM no rule matches.
pub const UNASSIGNED: &str = "unassigned";

/// A tenant rule as written in the settings file. Every condition given must hold.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantRuleSpec {
    /// The tenant the rule assigns.
    pub tenant: Option<String>,
    /// Assign the value of this custom attribute as the tenant, when the VM has it non-empty.
    pub tenant_from_attribute: Option<String>,
    /// A folder path such as `/DC1/vm/Tenants/Acme`: the folder and everything below it.
    pub folder_prefix: Option<String>,
    pub resource_pool: Option<String>,
    pub vcenter: Option<String>,
    pub datacenter: Option<String>,
    pub cluster: Option<String>,
    /// A VM name pattern with `*` and `?`, ignoring case (as `srm_activeactive_vms`).
    pub name_pattern: Option<String>,
    /// A custom attribute the VM must have with exactly this value.
    pub attribute: Option<AttributeMatch>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AttributeMatch {
    pub name: String,
    pub value: String,
}

/// What a rule assigns.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Assign {
    Tenant(String),
    FromAttribute(String),
}

#[derive(Debug, Clone)]
struct Rule {
    assign: Assign,
    /// Lower-case path segments.
    folder_prefix: Option<Vec<String>>,
    resource_pool: Option<String>,
    vcenter: Option<String>,
    datacenter: Option<String>,
    cluster: Option<String>,
    name_pattern: Option<Pattern>,
    attribute: Option<AttributeMatch>,
}

/// The checked rules, in order.
#[derive(Debug, Clone, Default)]
pub struct TenantRules {
    rules: Vec<Rule>,
}

/// A rule that cannot be used, named by its position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("tenant_rules[{index}]: {message}")]
pub struct RuleError {
    pub index: usize,
    pub message: String,
}

/// What the rules see of a VM on one day.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub vcenter: &'a str,
    pub placement: PlacementRef<'a>,
    /// Custom attributes by name (empty when the VM has none or they are not collected).
    pub attributes: &'a BTreeMap<String, String>,
}

fn segments(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_lowercase)
        .collect()
}

impl Rule {
    /// The tenant this rule assigns to `vm`, if it matches.
    fn assign(&self, vm: &Subject<'_>) -> Option<String> {
        let same = |want: &Option<String>, have: &str| {
            want.as_deref().is_none_or(|w| w.eq_ignore_ascii_case(have))
        };
        let matches = same(&self.resource_pool, vm.placement.resource_pool)
            && self.vcenter.as_deref().is_none_or(|v| v == vm.vcenter)
            && same(&self.datacenter, vm.placement.datacenter)
            && same(&self.cluster, vm.placement.cluster)
            && self.folder_prefix.as_ref().is_none_or(|prefix| {
                let mut have = vm.placement.folder.split('/').filter(|s| !s.is_empty());
                prefix
                    .iter()
                    .all(|want| have.next().is_some_and(|h| h.to_lowercase() == *want))
            })
            && self
                .name_pattern
                .as_ref()
                .is_none_or(|p| p.matches(vm.placement.name))
            && self
                .attribute
                .as_ref()
                .is_none_or(|a| vm.attributes.get(&a.name) == Some(&a.value));
        if !matches {
            return None;
        }
        match &self.assign {
            Assign::Tenant(tenant) => Some(tenant.clone()),
            Assign::FromAttribute(name) => vm
                .attributes
                .get(name)
                .map(|v| v.trim())
                .filter(|v| !v.is_empty())
                .map(str::to_string),
        }
    }

    /// A rule with no condition at all matches every VM.
    fn matches_everything(&self) -> bool {
        matches!(self.assign, Assign::Tenant(_))
            && self.folder_prefix.is_none()
            && self.resource_pool.is_none()
            && self.vcenter.is_none()
            && self.datacenter.is_none()
            && self.cluster.is_none()
            && self.name_pattern.is_none()
            && self.attribute.is_none()
    }
}

impl TenantRules {
    pub fn from_specs(specs: &[TenantRuleSpec]) -> Result<TenantRules, RuleError> {
        let mut rules: Vec<Rule> = Vec::with_capacity(specs.len());
        for (index, spec) in specs.iter().enumerate() {
            let fail = |message: String| RuleError { index, message };
            let text = |v: &Option<String>| {
                v.as_deref()
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
            };
            let assign = match (text(&spec.tenant), text(&spec.tenant_from_attribute)) {
                (Some(tenant), None) => Assign::Tenant(tenant),
                (None, Some(name)) => Assign::FromAttribute(name),
                (Some(_), Some(_)) => {
                    return Err(fail(
                        "give `tenant` or `tenant_from_attribute`, not both".into(),
                    ));
                }
                (None, None) => {
                    return Err(fail(
                        "a rule needs `tenant` (the tenant it assigns) or `tenant_from_attribute`"
                            .into(),
                    ));
                }
            };
            if let Some(attribute) = &spec.attribute
                && attribute.name.trim().is_empty()
            {
                return Err(fail("`attribute.name` must not be empty".into()));
            }
            if let Some(earlier) = rules.iter().position(Rule::matches_everything) {
                return Err(fail(format!(
                    "can never match: tenant_rules[{earlier}] has no condition and matches every VM first"
                )));
            }
            rules.push(Rule {
                assign,
                folder_prefix: text(&spec.folder_prefix).map(|p| segments(&p)),
                resource_pool: text(&spec.resource_pool),
                vcenter: text(&spec.vcenter),
                datacenter: text(&spec.datacenter),
                cluster: text(&spec.cluster),
                name_pattern: text(&spec.name_pattern).map(|p| Pattern::new(&p)),
                attribute: spec.attribute.clone(),
            });
        }
        Ok(TenantRules { rules })
    }

    /// The tenant of `vm`: the first rule that matches, else [`UNASSIGNED`].
    pub fn tenant_of(&self, vm: &Subject<'_>) -> String {
        self.rules
            .iter()
            .find_map(|r| r.assign(vm))
            .unwrap_or_else(|| UNASSIGNED.to_string())
    }

    /// Whether any rule reads custom attributes (so they must be loaded).
    pub fn reads_attributes(&self) -> bool {
        self.rules
            .iter()
            .any(|r| r.attribute.is_some() || matches!(r.assign, Assign::FromAttribute(_)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(yaml: &str) -> TenantRules {
        let specs: Vec<TenantRuleSpec> = serde_yaml::from_str(yaml).unwrap();
        TenantRules::from_specs(&specs).unwrap()
    }

    fn tenant(
        rules: &TenantRules,
        vcenter: &str,
        place: [&str; 4],
        attrs: &[(&str, &str)],
    ) -> String {
        let attributes = attrs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let [name, pool, cluster, folder] = place;
        rules.tenant_of(&Subject {
            vcenter,
            placement: PlacementRef {
                vm_uuid: "",
                name,
                resource_pool: pool,
                datacenter: "DC1",
                cluster,
                folder,
            },
            attributes: &attributes,
        })
    }

    #[test]
    fn the_first_matching_rule_wins_else_unassigned() {
        let r = rules(
            r#"
- {tenant: acme, folder_prefix: /DC1/vm/Acme/}
- {tenant: gold-db, resource_pool: gold, name_pattern: "db-*"}
- {tenant_from_attribute: Tenant}
- {tenant: costcenter, attribute: {name: CostCenter, value: "4711"}}
- {tenant: vc-b, vcenter: vc-b, cluster: C2}
"#,
        );
        // folder prefix on whole segments, ignoring case
        assert_eq!(
            tenant(&r, "vc-a", ["x", "Gold", "C1", "/DC1/vm/acme/web"], &[]),
            "acme"
        );
        assert_eq!(
            tenant(&r, "vc-a", ["x", "Gold", "C1", "/DC1/vm/Acme"], &[]),
            "acme"
        );
        assert_eq!(
            tenant(&r, "vc-a", ["x", "Tin", "C1", "/DC1/vm/Acme2"], &[]),
            UNASSIGNED
        );
        // both conditions of rule 1 must hold
        assert_eq!(
            tenant(&r, "vc-a", ["DB-01", "Gold", "C1", "/DC1/vm"], &[]),
            "gold-db"
        );
        assert_eq!(
            tenant(&r, "vc-a", ["web-01", "Gold", "C1", "/DC1/vm"], &[]),
            UNASSIGNED
        );
        // an earlier rule wins over the attribute
        assert_eq!(
            tenant(&r, "vc-a", ["db-1", "Gold", "C1", "/"], &[("Tenant", "t1")]),
            "gold-db"
        );
        assert_eq!(
            tenant(&r, "vc-a", ["x", "Tin", "C1", "/"], &[("Tenant", " t1 ")]),
            "t1"
        );
        // an empty attribute value does not assign; the next rule is tried
        assert_eq!(
            tenant(
                &r,
                "vc-a",
                ["x", "Tin", "C1", "/"],
                &[("Tenant", ""), ("CostCenter", "4711")]
            ),
            "costcenter"
        );
        assert_eq!(
            tenant(
                &r,
                "vc-a",
                ["x", "Tin", "C1", "/"],
                &[("CostCenter", "4712")]
            ),
            UNASSIGNED
        );
        assert_eq!(tenant(&r, "vc-b", ["x", "Tin", "c2", "/"], &[]), "vc-b");
        assert_eq!(tenant(&r, "VC-B", ["x", "Tin", "c2", "/"], &[]), UNASSIGNED);
    }

    #[test]
    fn a_rule_that_cannot_be_used_is_refused_by_position() {
        let err = |yaml: &str| {
            let specs: Vec<TenantRuleSpec> = serde_yaml::from_str(yaml).unwrap();
            TenantRules::from_specs(&specs).unwrap_err().to_string()
        };
        assert!(err("- {vcenter: a}").starts_with("tenant_rules[0]: a rule needs `tenant`"));
        assert!(err("- {tenant: a, tenant_from_attribute: T}").contains("not both"));
        assert_eq!(
            err("- {tenant: a, vcenter: x}\n- {tenant: rest}\n- {tenant: b, vcenter: y}"),
            "tenant_rules[2]: can never match: tenant_rules[1] has no condition and matches every VM first"
        );
        let unknown: Result<Vec<TenantRuleSpec>, _> =
            serde_yaml::from_str("- {tenant: a, pool: x}");
        assert!(
            unknown
                .unwrap_err()
                .to_string()
                .contains("unknown field `pool`")
        );
    }
}
