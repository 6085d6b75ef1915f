//! Interval-based hourly totals (DESIGN §4, "Hourly totals in reports"): the row for
//! `[HH:00, HH+1:00)` uses, per vCenter, the first snapshot at or after the hour's end and
//! counts each VM in it by the fraction of the hour it existed.

use serde::Serialize;

pub const HOUR: i64 = 3_600;

/// The first snapshot time at or after `hour_end` in `sorted_times`, if any.
pub fn snapshot_for_hour(sorted_times: &[i64], hour_end: i64) -> Option<i64> {
    let i = sorted_times.partition_point(|t| *t < hour_end);
    sorted_times.get(i).copied()
}

/// Fraction of `[hour_start, hour_start + 1h)` covered by `[creation_time, deletion_time)`;
/// an unknown (0) creation means the VM existed all hour, an unknown deletion that it was
/// not deleted.
pub fn presence_fraction(hour_start: i64, creation_time: i64, deletion_time: i64) -> f64 {
    let hour_end = hour_start + HOUR;
    let from = if creation_time > 0 {
        creation_time.max(hour_start)
    } else {
        hour_start
    };
    let to = if deletion_time > 0 {
        deletion_time.min(hour_end)
    } else {
        hour_end
    };
    (to - from).max(0) as f64 / HOUR as f64
}

/// Prorated totals of one vCenter over one hour.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HourTotals {
    pub vcenter: String,
    pub hour_start: i64,
    pub hour_end: i64,
    /// The snapshot whose VMs were counted (the first at or after `hour_end`).
    pub snapshot_time: i64,
    pub vm_count: f64,
    pub vcpu_count: f64,
    pub ram_gb: f64,
    pub disk_gb: f64,
}

impl HourTotals {
    pub fn new(vcenter: &str, hour_start: i64, snapshot_time: i64) -> HourTotals {
        HourTotals {
            vcenter: vcenter.to_string(),
            hour_start,
            hour_end: hour_start + HOUR,
            snapshot_time,
            vm_count: 0.0,
            vcpu_count: 0.0,
            ram_gb: 0.0,
            disk_gb: 0.0,
        }
    }

    /// Counts one VM of the snapshot by the fraction of the hour it existed.
    pub fn add_vm(&mut self, vm: &IntervalVm) {
        let share = presence_fraction(self.hour_start, vm.creation_time, vm.deletion_time);
        self.vm_count += share;
        self.vcpu_count += share * vm.vcpu_count as f64;
        self.ram_gb += share * vm.ram_gb;
        self.disk_gb += share * vm.provisioned_disk_gb;
    }
}

/// What the interval totals read of one VM in a snapshot.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IntervalVm {
    pub creation_time: i64,
    pub deletion_time: i64,
    pub vcpu_count: i64,
    pub ram_gb: f64,
    pub provisioned_disk_gb: f64,
}
