//! Daily summary of one VM from its hourly samples (DESIGN §4, "Daily summary").

use super::{Figures, Placement, PlacementRef, VmSummary, earliest_known};
use crate::inventory::{HourlyRow, Tier, TierMapping};
use std::collections::{BTreeMap, HashMap};

/// The numeric part of one hourly sample: all that the daily arithmetic reads per row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub snapshot_time: i64,
    pub vcpu_count: i64,
    pub ram_gb: f64,
    pub provisioned_disk_gb: f64,
    pub tier: Option<Tier>,
    pub creation_time: i64,
    pub deletion_time: i64,
    pub class: SampleClass,
}

/// What a VM was in one sample, as pricing tells them apart. The flags are read in this
/// order: a template is a template whatever its power state, and an SRM placeholder (never
/// running, though vCenter may report it powered on) is not counted as powered on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleClass {
    Template,
    Placeholder,
    PoweredOn,
    PoweredOff,
}

impl SampleClass {
    pub fn of(is_template: bool, srm_placeholder: bool, powered_on: bool) -> SampleClass {
        if is_template {
            SampleClass::Template
        } else if srm_placeholder {
            SampleClass::Placeholder
        } else if powered_on {
            SampleClass::PoweredOn
        } else {
            SampleClass::PoweredOff
        }
    }
}

/// Running sums of one VM's samples within one day.
#[derive(Debug, Clone, Default)]
pub struct DailyAccumulator {
    samples_present: i64,
    vcpu_sum: i64,
    ram_sum: f64,
    disk_sum: f64,
    tier_hits: [i64; 4],
    powered_on: i64,
    templates: i64,
    placeholders: i64,
    creation_time: i64,
    deletion_time: i64,
    latest_time: i64,
}

impl DailyAccumulator {
    /// Adds one sample; returns whether it is the latest seen so far, i.e. whether the
    /// caller should take this sample's identity and placement.
    pub fn add(&mut self, sample: &Sample) -> bool {
        self.samples_present += 1;
        self.vcpu_sum += sample.vcpu_count;
        self.ram_sum += sample.ram_gb;
        self.disk_sum += sample.provisioned_disk_gb;
        if let Some(tier) = sample.tier {
            self.tier_hits[tier.index()] += 1;
        }
        match sample.class {
            SampleClass::Template => self.templates += 1,
            SampleClass::Placeholder => self.placeholders += 1,
            SampleClass::PoweredOn => self.powered_on += 1,
            SampleClass::PoweredOff => {}
        }
        self.creation_time = earliest_known(self.creation_time, sample.creation_time);
        self.deletion_time = self.deletion_time.max(sample.deletion_time);
        let latest = sample.snapshot_time > self.latest_time;
        if latest {
            self.latest_time = sample.snapshot_time;
        }
        latest
    }

    /// Time of the latest sample added (0 before any).
    pub fn latest_time(&self) -> i64 {
        self.latest_time
    }

    /// The day's figures, given the number of snapshots the vCenter had that day.
    ///
    /// Averages divide by `total_samples`, so a VM present for part of the day is prorated;
    /// pool percentages divide by `samples_present`, so they describe only its lifetime.
    /// The order of operations is the one the `sql` engine uses, so both round alike.
    pub fn figures(&self, total_samples: i64) -> Figures {
        let per_snapshot = |sum: f64| {
            if total_samples == 0 {
                0.0
            } else {
                sum / total_samples as f64
            }
        };
        let pool_pct = self.tier_hits.map(|hits| {
            if self.samples_present == 0 {
                0.0
            } else {
                hits as f64 / self.samples_present as f64 * 100.0
            }
        });
        let tier_days = self.tier_hits.map(|hits| per_snapshot(hits as f64));
        let mut figures = Figures {
            samples_present: self.samples_present,
            total_samples,
            avg_is_present: per_snapshot(self.samples_present as f64),
            avg_vcpu_count: per_snapshot(self.vcpu_sum as f64),
            avg_ram_gb: per_snapshot(self.ram_sum),
            avg_provisioned_disk: per_snapshot(self.disk_sum),
            creation_time: self.creation_time,
            deletion_time: self.deletion_time,
            snapshot_time: self.latest_time,
            samples_powered_on: self.powered_on,
            samples_template: self.templates,
            samples_placeholder: self.placeholders,
            ..Figures::default()
        };
        figures.set_tiers(pool_pct, tier_days);
        figures
    }
}

impl HourlyRow {
    pub fn sample(&self, mapping: &TierMapping) -> Sample {
        Sample {
            snapshot_time: self.snapshot_time,
            vcpu_count: self.vcpu_count,
            ram_gb: self.ram_gb,
            provisioned_disk_gb: self.provisioned_disk_gb,
            tier: mapping.tier_of(&self.resource_pool),
            creation_time: self.creation_time,
            deletion_time: self.deletion_time,
            class: SampleClass::of(self.is_template, self.srm_placeholder, self.powered_on),
        }
    }

    pub fn placement(&self) -> PlacementRef<'_> {
        PlacementRef {
            vm_uuid: &self.vm_uuid,
            name: &self.name,
            resource_pool: &self.resource_pool,
            datacenter: &self.datacenter,
            cluster: &self.cluster,
            folder: &self.folder,
        }
    }
}

/// Daily summaries of in-memory rows of one day, sorted by `(vcenter, vm_id)`.
/// `total_samples` maps each vCenter to its number of snapshots that day.
pub fn summarize_day<'a>(
    rows: impl IntoIterator<Item = &'a HourlyRow>,
    total_samples: &HashMap<String, i64>,
    mapping: &TierMapping,
) -> Vec<VmSummary> {
    let mut vms: BTreeMap<(&str, &str), (DailyAccumulator, Placement)> = BTreeMap::new();
    for row in rows {
        let (acc, placement) = vms.entry((&row.vcenter, &row.vm_id)).or_default();
        if acc.add(&row.sample(mapping)) {
            placement.assign(row.placement());
        }
    }
    vms.into_iter()
        .map(|((vcenter, vm_id), (acc, placement))| VmSummary {
            vcenter: vcenter.to_string(),
            vm_id: vm_id.to_string(),
            placement,
            figures: acc.figures(total_samples.get(vcenter).copied().unwrap_or(0)),
        })
        .collect()
}
