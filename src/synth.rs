//! A deterministic synthetic inventory for tests, benchmarks and the demo sample: VMs spread
//! over vCenters with creations, deletions, reconfigurations, pool moves, power changes and
//! the odd missed snapshot. The same seed always gives the same rows.
//!
//! Sizes are what vCenter reports (RAM in MiB, disk in bytes) converted to GB, so they are
//! binary fractions and sums of them are exact in `f64`.

use crate::aggregate::daily::{Sample, SampleClass};
use crate::aggregate::hourly::HOUR;
use crate::aggregate::{Day, Placement, PlacementRef};
use crate::inventory::{HourlyRow, TierMapping};

const POOLS: [&str; 7] = [
    "Tin",
    "Bronze",
    "Silver",
    "Gold",
    "Resources",
    "Dev",
    "gold",
];
const VCPUS: [i64; 6] = [1, 2, 2, 4, 8, 16];
const RAM_MIB: [i64; 7] = [512, 1024, 2048, 3072, 4096, 8192, 16384];

/// splitmix64: tiny, fast, and good enough for synthetic data (the simulator derives its
/// inventory from it too).
pub(crate) fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// One synthetic VM: its fixed identity and the times its state changes.
#[derive(Debug, Clone)]
struct Vm {
    vcenter: usize,
    id: String,
    uuid: String,
    name: String,
    /// Known creation time, 0 when vCenter gave none.
    creation_time: i64,
    /// When it appears in snapshots (its creation, or the start for pre-existing VMs).
    appears: i64,
    /// When it disappears (`i64::MAX` = never).
    deleted: i64,
    pools: [usize; 2],
    vcpus: [i64; 2],
    ram_mib: [i64; 2],
    disk_bytes: i64,
    /// From this time on the second pool / size applies.
    moved_at: i64,
    resized_at: i64,
    powered_off_from: i64,
    /// A template or an SRM placeholder for all its life. Either may also be reported
    /// powered on, which exercises the order in which a sample is classed.
    template: bool,
    placeholder: bool,
}

/// A synthetic estate over a range of days.
pub struct Inventory {
    vcenters: Vec<String>,
    vms: Vec<Vm>,
    seed: u64,
    start: i64,
    end: i64,
}

impl Inventory {
    pub fn new(vms: usize, vcenters: usize, start: Day, days: u32, seed: u64) -> Inventory {
        let vcenters = vcenters.max(1);
        let begin = start.start();
        let end = begin + i64::from(days.max(1)) * 86_400;
        let span = (end - begin) as u64;
        let vcenter_names = (0..vcenters)
            .map(|i| format!("vc{:02}.example.com", i + 1))
            .collect();
        let vms = (0..vms)
            .map(|i| {
                let r = |k: u64| mix(seed ^ mix((i as u64) << 8 | k));
                let pick = |k: u64, n: usize| (r(k) % n as u64) as usize;
                let at = |k: u64| begin + (r(k) % span) as i64;
                let created_inside = r(1) % 100 < 6;
                let appears = if created_inside { at(2) } else { begin };
                let creation_time = match (created_inside, r(3) % 100 < 20) {
                    (true, _) => appears,
                    (false, true) => 0,
                    (false, false) => begin - 86_400 * (1 + (r(4) % 900) as i64),
                };
                let deleted = if r(5) % 100 < 5 {
                    (appears + 1 + (r(6) % span) as i64).min(end + 1)
                } else {
                    i64::MAX
                };
                let first_pool = pick(7, POOLS.len());
                let moved = r(8) % 100 < 8;
                let resized = r(9) % 100 < 10;
                Vm {
                    vcenter: i % vcenters,
                    id: format!("vm-{}", 1000 + i),
                    uuid: format!("4210{:012x}-{:04x}", r(10) & 0xFFFF_FFFF_FFFF, i % 0x10000),
                    name: format!(
                        "{}-{:05}",
                        ["web", "db", "app", "batch", "ci"][pick(11, 5)],
                        i
                    ),
                    creation_time,
                    appears,
                    deleted,
                    pools: [
                        first_pool,
                        if moved {
                            pick(12, POOLS.len())
                        } else {
                            first_pool
                        },
                    ],
                    vcpus: [VCPUS[pick(13, VCPUS.len())], VCPUS[pick(14, VCPUS.len())]],
                    ram_mib: [
                        RAM_MIB[pick(15, RAM_MIB.len())],
                        RAM_MIB[pick(16, RAM_MIB.len())],
                    ],
                    disk_bytes: (16 + (r(17) % 2000) as i64) << 30 | ((r(18) % 1024) as i64) << 20,
                    moved_at: if moved { at(19) } else { i64::MAX },
                    resized_at: if resized { at(20) } else { i64::MAX },
                    powered_off_from: if r(21) % 100 < 10 { at(22) } else { i64::MAX },
                    template: r(23) % 100 < 3,
                    placeholder: r(24) % 100 < 3,
                }
            })
            .collect();
        Inventory {
            vcenters: vcenter_names,
            vms,
            seed,
            start: begin,
            end,
        }
    }

    pub fn vcenters(&self) -> &[String] {
        &self.vcenters
    }

    /// Snapshot times of vCenter `v` within `day`: hourly, a few seconds past the hour, with
    /// about one snapshot in forty missed.
    pub fn snapshot_times(&self, v: usize, day: Day) -> Vec<i64> {
        (0..24)
            .map(|h| day.start() + h * HOUR + 5 + v as i64 * 7)
            .filter(|t| *t >= self.start && *t < self.end)
            .filter(|t| !mix(self.seed ^ mix(*t as u64 ^ (v as u64) << 40)).is_multiple_of(40))
            .collect()
    }

    /// The VMs of vCenter `v` present at time `t`, as hourly rows.
    pub fn rows_at(&self, v: usize, t: i64) -> impl Iterator<Item = HourlyRow> + '_ {
        self.present(v, t).map(move |vm| self.row(vm, t))
    }

    /// The daily summaries the hourly rows of `day` would give, computed from the model
    /// without materialising rows: for benchmark data of many days.
    pub fn daily_summaries(
        &self,
        day: Day,
        mapping: &TierMapping,
    ) -> Vec<crate::aggregate::VmSummary> {
        use crate::aggregate::daily::DailyAccumulator;
        let mut out = Vec::new();
        for v in 0..self.vcenters.len() {
            let times = self.snapshot_times(v, day);
            let mut vms: Vec<(usize, DailyAccumulator)> = Vec::new();
            for (i, vm) in self
                .vms
                .iter()
                .enumerate()
                .filter(|(_, vm)| vm.vcenter == v)
            {
                let mut acc = DailyAccumulator::default();
                for &t in times
                    .iter()
                    .filter(|t| vm.appears <= **t && **t < vm.deleted)
                {
                    acc.add(&self.sample(vm, t, mapping));
                }
                if acc.latest_time() > 0 {
                    vms.push((i, acc));
                }
            }
            let total = times.len() as i64;
            out.extend(vms.into_iter().map(|(i, acc)| {
                let vm = &self.vms[i];
                let mut placement = Placement::default();
                let pool = self.pool(vm, acc.latest_time());
                placement.assign(self.placement(vm, pool));
                crate::aggregate::VmSummary {
                    vcenter: self.vcenters[v].clone(),
                    vm_id: vm.id.clone(),
                    placement,
                    figures: acc.figures(total),
                }
            }));
        }
        out.sort_by(|a, b| (&a.vcenter, &a.vm_id).cmp(&(&b.vcenter, &b.vm_id)));
        out
    }

    fn present(&self, v: usize, t: i64) -> impl Iterator<Item = &Vm> {
        self.vms
            .iter()
            .filter(move |vm| vm.vcenter == v && vm.appears <= t && t < vm.deleted)
    }

    fn pool(&self, vm: &Vm, t: i64) -> &'static str {
        POOLS[vm.pools[usize::from(t >= vm.moved_at)]]
    }

    fn sample(&self, vm: &Vm, t: i64, mapping: &TierMapping) -> Sample {
        let after = usize::from(t >= vm.resized_at);
        Sample {
            snapshot_time: t,
            vcpu_count: vm.vcpus[after],
            ram_gb: vm.ram_mib[after] as f64 / 1024.0,
            provisioned_disk_gb: vm.disk_bytes as f64 / (1u64 << 30) as f64,
            tier: mapping.tier_of(self.pool(vm, t)),
            creation_time: vm.creation_time,
            deletion_time: 0,
            class: SampleClass::of(vm.template, vm.placeholder, t < vm.powered_off_from),
        }
    }

    fn placement<'a>(&'a self, vm: &'a Vm, pool: &'a str) -> PlacementRef<'a> {
        PlacementRef {
            vm_uuid: &vm.uuid,
            name: &vm.name,
            resource_pool: pool,
            datacenter: "DC1",
            cluster: ["Cluster-A", "Cluster-B"][vm.vcenter % 2],
            folder: "/DC1/vm/Tenants",
        }
    }

    fn row(&self, vm: &Vm, t: i64) -> HourlyRow {
        let sample = self.sample(vm, t, &TierMapping::default());
        let placement = self.placement(vm, self.pool(vm, t));
        HourlyRow {
            vcenter: self.vcenters[vm.vcenter].clone(),
            vm_id: vm.id.clone(),
            vm_uuid: placement.vm_uuid.to_string(),
            inventory_id: format!("inv-{}", &vm.id[3..]),
            name: placement.name.to_string(),
            event_key: String::new(),
            cloud_id: format!("tenant-{}", vm.id.len() % 3),
            creation_time: sample.creation_time,
            deletion_time: sample.deletion_time,
            snapshot_time: t,
            resource_pool: placement.resource_pool.to_string(),
            datacenter: placement.datacenter.to_string(),
            cluster: placement.cluster.to_string(),
            folder: placement.folder.to_string(),
            provisioned_disk_gb: sample.provisioned_disk_gb,
            vcpu_count: sample.vcpu_count,
            ram_gb: sample.ram_gb,
            is_template: vm.template,
            powered_on: t < vm.powered_off_from,
            srm_placeholder: vm.placeholder,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::daily::summarize_day;
    use std::collections::HashMap;

    /// `daily_summaries` skips the rows for speed; it must still be what the engines
    /// compute from those rows, sample classes included.
    #[test]
    fn daily_summaries_are_what_the_day_of_hourly_rows_gives() {
        let day = Day::parse("2026-03-10").unwrap();
        let inventory = Inventory::new(300, 2, day, 1, 5);
        let mut rows = Vec::new();
        let mut totals = HashMap::new();
        for (v, vcenter) in inventory.vcenters().iter().enumerate() {
            let times = inventory.snapshot_times(v, day);
            totals.insert(vcenter.clone(), times.len() as i64);
            for t in times {
                rows.extend(inventory.rows_at(v, t));
            }
        }
        let mapping = TierMapping::default();
        let expected = summarize_day(&rows, &totals, &mapping);
        let summaries = inventory.daily_summaries(day, &mapping);
        assert_eq!(summaries, expected);
        // The estate has templates and placeholders, so their classing is compared too.
        assert!(summaries.iter().any(|s| s.figures.samples_template > 0));
        assert!(summaries.iter().any(|s| s.figures.samples_placeholder > 0));
    }
}
