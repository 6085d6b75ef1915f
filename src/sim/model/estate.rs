//! The fixed tree of one vCenter (datacenters, folders, clusters, hosts, pools) and the
//! churn of its VM slots: which generation of VM, if any, holds a slot at `t`.

use super::dice::{Dice, Roll, zigzag};
use super::vm::{Cluster, Datacenter, Standalone, vm};
use super::{DAY, Kind, Place, Snapshot, TIERS, TIME_LIMIT, Uuid, Vm};
use crate::sim::SimVm;
use std::collections::HashMap;

/// Churning slots lay out their lifetimes from here (2016-01-01 UTC).
const CHURN_EPOCH: i64 = 1_451_606_400;
/// Slots that never churn hold a VM created between 2012 and 2022.
const ANCIENT_FROM: i64 = 1_325_376_000;
const ANCIENT_TO: i64 = 1_640_995_200;

/// Tenants (folder name, VM name prefix); each datacenter hosts a run of them.
const TENANTS: [(&str, &str); 12] = [
    ("Acme", "acme"),
    ("Globex", "globex"),
    ("Initech", "initech"),
    ("Umbrella", "umbrella"),
    ("Hooli", "hooli"),
    ("Stark", "stark"),
    ("Wayne", "wayne"),
    ("Tyrell", "tyrell"),
    ("Cyberdyne", "cyberdyne"),
    ("Soylent", "soylent"),
    ("Wonka", "wonka"),
    ("Massive", "massive"),
];
const VAPPS: [&str; 4] = ["Analytics", "Billing", "Reporting", "Search"];

/// Adds places, numbering them from one counter.
#[derive(Default)]
struct Builder {
    places: Vec<Place>,
    counter: u64,
}

impl Builder {
    fn add(&mut self, prefix: &str, kind: Kind, name: String, parent: Option<usize>) -> usize {
        self.counter += 1;
        self.places.push(Place {
            moref: format!("{prefix}{}", self.counter),
            kind,
            name,
            parent,
        });
        self.places.len() - 1
    }
}

/// One simulated vCenter: its fixed tree and the rules its VMs follow.
#[derive(Debug)]
pub(crate) struct Estate {
    pub(crate) name: String,
    pub(crate) instance_uuid: Uuid,
    pub(crate) places: Vec<Place>,
    by_moref: HashMap<String, usize>,
    datacenters: Vec<Datacenter>,
    slots: usize,
    /// VM numbers start above every place's number, as in a vCenter that built its tree
    /// before its VMs.
    vm_base: u64,
    dice: Dice,
}

impl Estate {
    /// vCenter `index` (0-based) of a simulator seeded with `seed`, with `slots` VM slots.
    pub(crate) fn new(seed: u64, index: usize, slots: usize) -> Estate {
        let dice = Dice::new(seed).sub(index as u64);
        let vc = index + 1;
        let mut b = Builder::default();
        let root = b.add("group-d", Kind::Folder, "Datacenters".into(), None);
        // A bigger estate is split over two datacenters, most of it in the first.
        let first_share = if slots >= 1000 {
            slots * 65 / 100
        } else {
            slots
        };
        let shares = [(0, first_share), (first_share, slots - first_share)];
        let datacenters = shares
            .iter()
            .enumerate()
            .filter(|(d, (_, n))| *d == 0 || *n > 0)
            .map(|(d, &(first_slot, n))| {
                build_datacenter(
                    &mut b,
                    // Numbered above any slot, so no datacenter shares a slot's dice.
                    dice.sub(1 << 32 | d as u64),
                    root,
                    vc,
                    d + 1,
                    first_slot,
                    n,
                )
            })
            .collect();
        let by_moref = b
            .places
            .iter()
            .enumerate()
            .map(|(i, p)| (p.moref.clone(), i))
            .collect();
        Estate {
            name: format!("vc{vc}.sim.vctp.local"),
            instance_uuid: Uuid::new(0x6a, dice.roll(Roll::Uuid), dice.roll(Roll::UuidLow)),
            places: b.places,
            by_moref,
            datacenters,
            slots,
            vm_base: (b.counter / 1000 + 1) * 1000,
            dice,
        }
    }

    pub(crate) fn root_folder(&self) -> &str {
        &self.places[0].moref
    }

    pub(crate) fn place(&self, moref: &str) -> Option<usize> {
        self.by_moref.get(moref).copied()
    }

    /// The VM number of a `vm-<n>` moref, if it names one this vCenter could have.
    pub(crate) fn vm_number(&self, moref: &str) -> Option<u64> {
        let number: u64 = moref.strip_prefix("vm-")?.parse().ok()?;
        (number >= self.vm_base).then_some(number)
    }

    /// The VMs present at `t`.
    pub(crate) fn snapshot(&self, t: i64) -> Snapshot {
        let t = t.clamp(-TIME_LIMIT, TIME_LIMIT);
        let mut vms: Vec<Vm> = (0..self.slots)
            .filter_map(|slot| self.occupant(slot, t))
            .collect();
        vms.sort_unstable_by_key(|vm| vm.number);
        Snapshot { vms }
    }

    /// The VM in `slot` at `t`, if the slot is occupied then.
    fn occupant(&self, slot: usize, t: i64) -> Option<Vm> {
        let s = self.dice.sub(slot as u64);
        // Most slots turn over every few months to years, a quarter every few weeks, a few
        // (CI, tests) every few days; a tenth hold one long-lived VM. This gives ≈2% of VMs
        // created and deleted per day.
        let (generation, born, dies) = match s.below(Roll::Class, 100) {
            0..10 => (0, s.between(Roll::Born, ANCIENT_FROM, ANCIENT_TO), i64::MAX),
            class => {
                let (lo, hi) = match class {
                    10..72 => (90, 1080),
                    72..96 => (14, 90),
                    _ => (1, 7),
                };
                let mut grid = s.grid(Roll::Period, Roll::Phase, lo * DAY, hi * DAY);
                grid.phase += CHURN_EPOCH;
                let k = grid.index(t);
                let g = s.sub(zigzag(k));
                // A slot stays empty for a moment between two VMs.
                let gap = grid.period / 50;
                let start = grid.start(k);
                (
                    k,
                    start + g.between(Roll::Delay, 0, gap),
                    start + grid.period - g.between(Roll::Margin, 0, gap),
                )
            }
        };
        if t < born || t >= dies {
            return None;
        }
        let number = self.vm_base + zigzag(generation) * self.slots as u64 + slot as u64;
        let dc = self
            .datacenters
            .iter()
            .rev()
            .find(|dc| dc.first_slot <= slot)
            .unwrap_or(&self.datacenters[0]);
        Some(vm(s.sub(zigzag(generation)), number, born, t, dc))
    }

    /// What a collector should make of `vm`: names instead of indexes.
    pub(crate) fn describe(&self, vm: &Vm) -> SimVm {
        let host = &self.places[vm.host];
        let compute = host.parent.map(|p| &self.places[p]);
        SimVm {
            moref: vm.moref().to_string(),
            name: vm.name().to_string(),
            uuid: vm.uuid().to_string(),
            instance_uuid: vm.instance_uuid().to_string(),
            num_cpu: vm.num_cpu,
            memory_mb: vm.memory_mb,
            committed_bytes: vm.committed,
            uncommitted_bytes: vm.uncommitted,
            template: vm.template,
            power_state: vm.power,
            create_date: vm.create_date,
            srm_placeholder: vm.placeholder,
            pool_name: vm.pool.map(|p| self.places[p].name.clone()),
            folder_path: vm.folder.map(|f| self.folder_path(f)).unwrap_or_default(),
            cluster: compute
                .filter(|c| c.kind == Kind::ClusterComputeResource)
                .map(|c| c.name.clone()),
            datacenter: self
                .ancestors(vm.host)
                .find(|p| p.kind == Kind::Datacenter)
                .map(|p| p.name.clone())
                .unwrap_or_default(),
            host: host.name.clone(),
            tenant: vm.tenant.map(String::from),
        }
    }

    /// `place` and the places above it, nearest first.
    fn ancestors(&self, place: usize) -> impl Iterator<Item = &Place> {
        std::iter::successors(Some(&self.places[place]), |p| {
            p.parent.map(|q| &self.places[q])
        })
    }

    /// A folder's path from its datacenter down, as the vSphere client shows it:
    /// `/DC1/vm/Tenants/Acme`.
    fn folder_path(&self, folder: usize) -> String {
        let mut names: Vec<&str> = Vec::new();
        for place in self.ancestors(folder) {
            names.push(&place.name);
            if place.kind == Kind::Datacenter {
                break;
            }
        }
        names
            .iter()
            .rev()
            .fold(String::new(), |path, name| path + "/" + name)
    }

    /// For each place, whether a container view on `container` shows it: its children, or
    /// all its descendants when `recursive`.
    pub(crate) fn places_inside(&self, container: usize, recursive: bool) -> Vec<bool> {
        (0..self.places.len())
            .map(|i| {
                let mut above = self.places[i].parent;
                while let Some(p) = above {
                    if p == container {
                        return true;
                    }
                    if !recursive {
                        return false;
                    }
                    above = self.places[p].parent;
                }
                false
            })
            .collect()
    }

    /// Whether a container view on `container` shows `vm`. A VM sits in two trees (its
    /// folder's and its resource pool's) and is also listed by its host; `inside` is
    /// [`Estate::places_inside`] for the same container and recursion.
    pub(crate) fn vm_inside(
        &self,
        vm: &Vm,
        container: usize,
        recursive: bool,
        inside: &[bool],
    ) -> bool {
        [vm.folder, vm.pool, Some(vm.host)]
            .into_iter()
            .flatten()
            .any(|p| p == container || (recursive && inside[p]))
    }
}

fn build_datacenter(
    b: &mut Builder,
    d: Dice,
    root: usize,
    vc: usize,
    number: usize,
    first_slot: usize,
    slots: usize,
) -> Datacenter {
    let dc = b.add(
        "datacenter-",
        Kind::Datacenter,
        format!("DC{number}"),
        Some(root),
    );
    let vm_folder = b.add("group-v", Kind::Folder, "vm".into(), Some(dc));
    let host_folder = b.add("group-h", Kind::Folder, "host".into(), Some(dc));
    b.add("group-s", Kind::Folder, "datastore".into(), Some(dc));
    b.add("group-n", Kind::Folder, "network".into(), Some(dc));
    let tenants_folder = b.add("group-v", Kind::Folder, "Tenants".into(), Some(vm_folder));
    let offset = d.below(Roll::TenantOffset, TENANTS.len());
    let tenants = (0..3 + d.below(Roll::TenantCount, 6))
        .map(|i| {
            let (name, prefix) = TENANTS[(offset + i) % TENANTS.len()];
            let folder = b.add("group-v", Kind::Folder, name.into(), Some(tenants_folder));
            (folder, prefix)
        })
        .collect();
    let infra_folder = b.add("group-v", Kind::Folder, "Infra".into(), Some(vm_folder));
    let templates_folder = b.add("group-v", Kind::Folder, "Templates".into(), Some(vm_folder));
    let cluster_count = match slots {
        0..300 => 1,
        300..3000 => 2,
        _ => 3,
    };
    let clusters = (0..cluster_count)
        .map(|c| {
            let letter = char::from(b'a' + c as u8);
            let cluster = b.add(
                "domain-c",
                Kind::ClusterComputeResource,
                format!("Cluster-{}", letter.to_ascii_uppercase()),
                Some(host_folder),
            );
            let hosts = (slots / cluster_count / 60).clamp(2, 32)
                + d.sub(c as u64).below(Roll::HostCount, 3);
            let hosts = (1..=hosts)
                .map(|h| {
                    let name = format!("esx{number}{letter}{h:02}.vc{vc}.sim.vctp.local");
                    b.add("host-", Kind::HostSystem, name, Some(cluster))
                })
                .collect();
            let resources = b.add(
                "resgroup-",
                Kind::ResourcePool,
                "Resources".into(),
                Some(cluster),
            );
            let mut pool = |name: &str| {
                b.add(
                    "resgroup-",
                    Kind::ResourcePool,
                    name.into(),
                    Some(resources),
                )
            };
            let tiers = TIERS.map(&mut pool);
            let dev = pool("Dev");
            let infra = pool("Infra");
            let vapp_name = format!("{} vApp", d.sub(c as u64).pick(Roll::VApp, &VAPPS));
            let vapp = b.add("resgroup-v", Kind::VirtualApp, vapp_name, Some(resources));
            Cluster {
                resources,
                tiers,
                dev,
                infra,
                vapp,
                hosts,
            }
        })
        .collect();
    // The first datacenter always has a standalone host; others sometimes.
    let standalone = (number == 1 || d.below(Roll::Standalone, 2) == 0).then(|| {
        let name = format!("esx{number}s01.vc{vc}.sim.vctp.local");
        let compute = b.add(
            "domain-s",
            Kind::ComputeResource,
            name.clone(),
            Some(host_folder),
        );
        let host = b.add("host-", Kind::HostSystem, name, Some(compute));
        let resources = b.add(
            "resgroup-",
            Kind::ResourcePool,
            "Resources".into(),
            Some(compute),
        );
        Standalone { resources, host }
    });
    Datacenter {
        first_slot,
        vm_folder,
        tenants,
        infra_folder,
        templates_folder,
        clusters,
        standalone,
    }
}

#[cfg(test)]
mod tests {
    use super::super::vm::{ROLES, TEMPLATE_OSES};
    use super::super::{HOUR, TIERS};
    use super::*;
    use crate::vsphere::PowerState;
    use std::collections::{HashMap, HashSet};

    /// 2024-06-01 00:00 UTC.
    const T0: i64 = 1_717_200_000;

    fn described(estate: &Estate, t: i64) -> HashMap<String, SimVm> {
        estate
            .snapshot(t)
            .vms
            .iter()
            .map(|vm| (vm.moref().to_string(), estate.describe(vm)))
            .collect()
    }

    #[test]
    fn the_same_seed_and_time_give_the_same_inventory() {
        let a = described(&Estate::new(7, 0, 500), T0);
        assert_eq!(a, described(&Estate::new(7, 0, 500), T0));
        assert_ne!(a, described(&Estate::new(8, 0, 500), T0), "another seed");
        assert_ne!(a, described(&Estate::new(7, 1, 500), T0), "another vCenter");
    }

    #[test]
    fn the_inventory_stays_near_its_size_for_weeks() {
        let estate = Estate::new(1, 0, 2000);
        for day in 0..70 {
            let count = estate.snapshot(T0 + day * DAY).vms.len();
            assert!((1900..=2020).contains(&count), "day {day}: {count} VMs");
        }
    }

    #[test]
    fn consecutive_hours_differ_by_a_handful_of_changes() {
        let estate = Estate::new(1, 0, 1000);
        let (mut created, mut deleted, mut changed) = (0, 0, 0);
        let mut before = described(&estate, T0);
        for hour in 1..=48 {
            let after = described(&estate, T0 + hour * HOUR);
            let new = after.keys().filter(|m| !before.contains_key(*m)).count();
            let gone = before.keys().filter(|m| !after.contains_key(*m)).count();
            let modified = after
                .iter()
                .filter(|(m, vm)| before.get(*m).is_some_and(|old| old != *vm))
                .count();
            assert!(
                new + gone + modified <= 30,
                "hour {hour}: {new} new, {gone} gone, {modified} changed"
            );
            (created, deleted, changed) = (created + new, deleted + gone, changed + modified);
            before = after;
        }
        assert!(
            created >= 10 && deleted >= 10 && changed >= 10,
            "{created} created, {deleted} deleted, {changed} changed in 48 hours"
        );
    }

    #[test]
    fn new_vms_carry_their_creation_time_as_create_date() {
        let estate = Estate::new(3, 0, 1000);
        let mut before = described(&estate, T0);
        let mut seen = 0;
        for hour in 1..=24 * 7 {
            let t = T0 + hour * HOUR;
            let after = described(&estate, t);
            for (moref, vm) in after.iter().filter(|(m, _)| !before.contains_key(*m)) {
                let created = vm.create_date.unwrap_or_default();
                assert!(
                    t - HOUR < created && created <= t,
                    "{moref} created at {created}, seen at {t}"
                );
                seen += 1;
            }
            before = after;
        }
        assert!(seen > 50, "only {seen} VMs created in a week");
    }

    #[test]
    fn a_moref_once_gone_never_comes_back() {
        let estate = Estate::new(5, 0, 300);
        let days = 3 * 365;
        let mut seen: HashMap<u64, (i64, String)> = HashMap::new();
        for day in 0..days {
            for vm in &estate.snapshot(T0 + day * DAY).vms {
                let uuid = vm.uuid().to_string();
                if let Some((last, first_uuid)) = seen.insert(vm.number, (day, uuid.clone())) {
                    assert_eq!(last, day - 1, "vm-{} came back after a gap", vm.number);
                    assert_eq!(first_uuid, uuid, "vm-{} changed identity", vm.number);
                }
            }
        }
        let gone = seen.values().filter(|(last, _)| *last < days - 1).count();
        assert!(
            gone > 300,
            "only {gone} of {} VMs deleted in three years",
            seen.len()
        );
    }

    #[test]
    fn sizes_and_placements_are_realistic() {
        let estate = Estate::new(11, 0, 5000);
        let vms: Vec<SimVm> = described(&estate, T0).into_values().collect();
        let share =
            |f: &dyn Fn(&SimVm) -> bool| vms.iter().filter(|vm| f(vm)).count() * 1000 / vms.len();
        for vm in &vms {
            assert!((1..=32).contains(&vm.num_cpu), "{vm:?}");
            assert!((512..=262_144).contains(&vm.memory_mb), "{vm:?}");
            if vm.srm_placeholder {
                assert!(vm.committed_bytes < 1 << 20, "{vm:?}");
            } else {
                assert!(
                    (10 << 30..=5000 << 30).contains(&vm.committed_bytes),
                    "{vm:?}"
                );
            }
            assert!(
                (0..=vm.committed_bytes * 3 / 2).contains(&vm.uncommitted_bytes),
                "{vm:?}"
            );
            if vm.template {
                assert_eq!(vm.pool_name, None);
                assert_eq!(vm.power_state, PowerState::PoweredOff);
                assert!(vm.folder_path.ends_with("/vm/Templates"), "{vm:?}");
            } else {
                assert!(vm.pool_name.is_some(), "{vm:?}");
            }
            if vm.folder_path.is_empty() {
                assert!(
                    vm.pool_name
                        .as_deref()
                        .is_some_and(|p| p.ends_with(" vApp")),
                    "{vm:?}"
                );
            } else {
                assert!(
                    vm.folder_path
                        .starts_with(&format!("/{}/vm", vm.datacenter)),
                    "{vm:?}"
                );
            }
        }
        assert!((10..=60).contains(&share(&|vm| vm.template)), "templates");
        assert!(
            (1..=10).contains(&share(&|vm| vm.srm_placeholder)),
            "placeholders"
        );
        assert!(
            share(&|vm| vm.power_state == PowerState::PoweredOn) >= 800,
            "powered on"
        );
        assert!(
            (550..=800).contains(&share(&|vm| {
                vm.pool_name.as_deref().is_some_and(|p| TIERS.contains(&p))
            })),
            "in tier pools"
        );
        assert!(share(&|vm| vm.cluster.is_none()) > 0, "on standalone hosts");
        assert!(
            share(&|vm| vm.create_date.is_none()) > 0,
            "created before createDate existed"
        );
        let datacenters: HashSet<&str> = vms.iter().map(|vm| vm.datacenter.as_str()).collect();
        assert_eq!(datacenters.len(), 2);
    }

    #[test]
    fn generated_names_need_no_xml_escaping() {
        let parts = TENANTS.iter().map(|(_, prefix)| *prefix);
        for part in parts
            .chain(ROLES)
            .chain(TEMPLATE_OSES)
            .chain(["tpl", "infra"])
        {
            assert!(
                part.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
                "{part}"
            );
        }
    }

    #[test]
    fn every_vm_is_inside_the_root_folder_and_its_own_cluster() {
        let estate = Estate::new(2, 0, 1500);
        let snapshot = estate.snapshot(T0);
        let root = estate.place("group-d1").unwrap_or_default();
        let everywhere = estate.places_inside(root, true);
        assert!(everywhere[1..].iter().all(|inside| *inside));
        assert!(
            snapshot
                .vms
                .iter()
                .all(|vm| estate.vm_inside(vm, root, true, &everywhere))
        );
        let children = estate.places_inside(root, false);
        assert!(
            !snapshot
                .vms
                .iter()
                .any(|vm| estate.vm_inside(vm, root, false, &children))
        );
        let cluster = estate
            .places
            .iter()
            .position(|p| p.kind == Kind::ClusterComputeResource)
            .unwrap_or_default();
        let inside = estate.places_inside(cluster, true);
        let in_cluster = snapshot
            .vms
            .iter()
            .filter(|vm| estate.vm_inside(vm, cluster, true, &inside))
            .count();
        assert!(0 < in_cluster && in_cluster < snapshot.vms.len());
    }
}
