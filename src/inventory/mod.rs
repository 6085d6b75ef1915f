//! The hourly snapshot row, the resource-pool → tier mapping, and the CSV form of rows.

pub mod capture;
pub mod collector;
pub mod csv;
pub mod pattern;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One VM as seen in one snapshot of one vCenter (DESIGN §4). Times are Unix seconds UTC,
/// `0` = unknown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HourlyRow {
    pub vcenter: String,
    pub vm_id: String,
    pub vm_uuid: String,
    pub inventory_id: String,
    pub name: String,
    pub event_key: String,
    pub cloud_id: String,
    pub creation_time: i64,
    pub deletion_time: i64,
    pub snapshot_time: i64,
    pub resource_pool: String,
    pub datacenter: String,
    pub cluster: String,
    pub folder: String,
    pub provisioned_disk_gb: f64,
    pub vcpu_count: i64,
    pub ram_gb: f64,
    pub is_template: bool,
    pub powered_on: bool,
    pub srm_placeholder: bool,
}

/// The chargeback tiers, in the column order used everywhere (`tin, bronze, silver, gold`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Tin,
    Bronze,
    Silver,
    Gold,
}

impl Tier {
    pub const ALL: [Tier; 4] = [Tier::Tin, Tier::Bronze, Tier::Silver, Tier::Gold];

    /// The value stored in the `tier` column: 1..=4, with 0 meaning "no tier".
    pub fn code(self) -> i64 {
        self.index() as i64 + 1
    }

    /// Position in `[tin, bronze, silver, gold]` arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The inverse of [`Tier::code`]; anything outside 1..=4 is "no tier".
    pub fn from_code(code: i64) -> Option<Tier> {
        usize::try_from(code - 1)
            .ok()
            .and_then(|i| Tier::ALL.get(i).copied())
    }

    pub fn name(self) -> &'static str {
        match self {
            Tier::Tin => "Tin",
            Tier::Bronze => "Bronze",
            Tier::Silver => "Silver",
            Tier::Gold => "Gold",
        }
    }
}

/// Resolves a resource pool name to its tier. By default a pool named `Tin`, `Bronze`,
/// `Silver` or `Gold` (any case) is that tier; explicit entries add or override pool names.
#[derive(Debug, Clone, Default)]
pub struct TierMapping {
    /// Lower-cased pool name → tier.
    overrides: BTreeMap<String, Tier>,
}

impl TierMapping {
    pub fn new(pools: &BTreeMap<String, Tier>) -> TierMapping {
        let overrides = pools
            .iter()
            .map(|(pool, tier)| (pool.trim().to_lowercase(), *tier))
            .collect();
        TierMapping { overrides }
    }

    pub fn tier_of(&self, resource_pool: &str) -> Option<Tier> {
        let pool = resource_pool.trim();
        if !self.overrides.is_empty()
            && let Some(tier) = self.overrides.get(&pool.to_lowercase())
        {
            return Some(*tier);
        }
        Tier::ALL
            .into_iter()
            .find(|tier| pool.eq_ignore_ascii_case(tier.name()))
    }

    /// The `tier` column value of a pool (0 = no tier).
    pub fn code_of(&self, resource_pool: &str) -> i64 {
        self.tier_of(resource_pool).map_or(0, Tier::code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_mapping_matches_the_four_pool_names_in_any_case() {
        let mapping = TierMapping::default();
        assert_eq!(mapping.tier_of("gold"), Some(Tier::Gold));
        assert_eq!(mapping.tier_of(" Tin "), Some(Tier::Tin));
        assert_eq!(mapping.tier_of("SILVER"), Some(Tier::Silver));
        assert_eq!(mapping.tier_of("Resources"), None);
        assert_eq!(mapping.tier_of("Gold-2"), None);
        assert_eq!(mapping.code_of("Bronze"), 2);
        assert_eq!(mapping.code_of("Dev"), 0);
    }

    #[test]
    fn explicit_pools_add_to_and_override_the_default_names() {
        let pools = BTreeMap::from([
            ("Prod-Critical".to_string(), Tier::Gold),
            ("gold".to_string(), Tier::Silver),
        ]);
        let mapping = TierMapping::new(&pools);
        assert_eq!(mapping.tier_of("prod-critical"), Some(Tier::Gold));
        assert_eq!(mapping.tier_of("Gold"), Some(Tier::Silver));
        assert_eq!(mapping.tier_of("Tin"), Some(Tier::Tin));
    }

    #[test]
    fn tier_codes_round_trip_and_unknown_codes_are_no_tier() {
        for tier in Tier::ALL {
            assert_eq!(Tier::from_code(tier.code()), Some(tier));
        }
        assert_eq!(Tier::from_code(0), None);
        assert_eq!(Tier::from_code(5), None);
        assert_eq!(Tier::from_code(-3), None);
    }
}
