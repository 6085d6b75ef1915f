//! The chargeback arithmetic of DESIGN §4: daily summaries from hourly samples, monthly
//! summaries from daily ones, interval-based hourly totals, and the two engines that run it
//! over the store (`rust` streams rows once; `sql` groups in the database).

pub mod daily;
pub mod engine;
pub mod hourly;
pub mod monthly;
pub mod period;

pub use engine::{Engine, Error as EngineError};
pub use period::{Day, Month};

use serde::{Deserialize, Serialize};

/// Placement and identity of a VM, taken from its latest sample in the period.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Placement {
    pub vm_uuid: String,
    pub name: String,
    pub resource_pool: String,
    pub datacenter: String,
    pub cluster: String,
    pub folder: String,
}

impl Placement {
    /// Copies `other` into `self`, reusing the existing string buffers.
    pub fn assign(&mut self, other: PlacementRef<'_>) {
        for (field, value) in [
            (&mut self.vm_uuid, other.vm_uuid),
            (&mut self.name, other.name),
            (&mut self.resource_pool, other.resource_pool),
            (&mut self.datacenter, other.datacenter),
            (&mut self.cluster, other.cluster),
            (&mut self.folder, other.folder),
        ] {
            field.clear();
            field.push_str(value);
        }
    }
}

/// A borrowed [`Placement`], as decoded straight from a database row.
#[derive(Debug, Clone, Copy)]
pub struct PlacementRef<'a> {
    pub vm_uuid: &'a str,
    pub name: &'a str,
    pub resource_pool: &'a str,
    pub datacenter: &'a str,
    pub cluster: &'a str,
    pub folder: &'a str,
}

/// The figures of one VM over one day or month; daily and monthly summaries share this shape.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Figures {
    pub samples_present: i64,
    pub total_samples: i64,
    pub avg_is_present: f64,
    pub avg_vcpu_count: f64,
    pub avg_ram_gb: f64,
    pub avg_provisioned_disk: f64,
    pub pool_tin_pct: f64,
    pub pool_bronze_pct: f64,
    pub pool_silver_pct: f64,
    pub pool_gold_pct: f64,
    pub tin: f64,
    pub bronze: f64,
    pub silver: f64,
    pub gold: f64,
    pub creation_time: i64,
    pub deletion_time: i64,
    pub snapshot_time: i64,
    /// Of `samples_present`, those in which the VM was powered on (and neither a template nor
    /// an SRM placeholder); the powered-off ones are the samples left after these three.
    pub samples_powered_on: i64,
    /// Of `samples_present`, those in which the VM was a template.
    pub samples_template: i64,
    /// Of `samples_present`, those in which the VM was an SRM placeholder (and not a template).
    pub samples_placeholder: i64,
}

impl Figures {
    /// `pool_<tier>_pct` in tier order.
    pub fn pool_pct(&self) -> [f64; 4] {
        [
            self.pool_tin_pct,
            self.pool_bronze_pct,
            self.pool_silver_pct,
            self.pool_gold_pct,
        ]
    }

    /// The tier columns (VM-days in each tier) in tier order.
    pub fn tier_days(&self) -> [f64; 4] {
        [self.tin, self.bronze, self.silver, self.gold]
    }

    /// samples_powered_on, samples_template, samples_placeholder.
    pub fn sample_classes(&self) -> [i64; 3] {
        [
            self.samples_powered_on,
            self.samples_template,
            self.samples_placeholder,
        ]
    }

    fn set_tiers(&mut self, pool_pct: [f64; 4], tier_days: [f64; 4]) {
        [
            self.pool_tin_pct,
            self.pool_bronze_pct,
            self.pool_silver_pct,
            self.pool_gold_pct,
        ] = pool_pct;
        [self.tin, self.bronze, self.silver, self.gold] = tier_days;
    }
}

/// One VM's summary row for a day or a month.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VmSummary {
    pub vcenter: String,
    pub vm_id: String,
    #[serde(flatten)]
    pub placement: Placement,
    #[serde(flatten)]
    pub figures: Figures,
}

/// Keeps the smallest known (non-zero) creation time: vCenter's creation date of a VM does
/// not change, and `0` means "not given".
fn earliest_known(current: i64, candidate: i64) -> i64 {
    match (current, candidate) {
        (0, c) => c,
        (c, 0) => c,
        (a, b) => a.min(b),
    }
}
