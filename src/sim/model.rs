//! The simulated estate of each vCenter: a fixed tree of datacenters, folders, clusters,
//! hosts and resource pools, and VMs that come and go with the clock.
//!
//! Nothing is replayed. Every VM *slot* has a hash-derived lifetime period; the slot's
//! occupant at time `t` (if any), its size, pool, host and power state all follow from
//! `(seed, vCenter, slot, t)` in closed form, so building the inventory at any `t` is one
//! pass over the slots and costs the same for any hour of any year.

use super::SimVm;
use crate::synth::mix;
use crate::vsphere::PowerState;
use std::collections::HashMap;
use std::fmt;

const HOUR: i64 = 3_600;
const DAY: i64 = 86_400;
/// Churning slots lay out their lifetimes from here (2016-01-01 UTC).
const CHURN_EPOCH: i64 = 1_451_606_400;
/// vCenter has recorded `config.createDate` only since vSphere 6.7 (2018-04-17): older VMs
/// have none, as in a real estate that has been upgraded over the years.
const CREATE_DATE_SINCE: i64 = 1_523_923_200;
/// Slots that never churn hold a VM created between 2012 and 2022.
const ANCIENT_FROM: i64 = 1_325_376_000;
const ANCIENT_TO: i64 = 1_640_995_200;
/// Times are clamped to about ±34,000 years (2^40 s) so that period arithmetic can never
/// overflow, whatever a manual clock is set to.
pub(crate) const TIME_LIMIT: i64 = 1 << 40;

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
const ROLES: [&str; 12] = [
    "web", "app", "db", "api", "cache", "mq", "batch", "ci", "etl", "proxy", "dc", "file",
];
const TEMPLATE_OSES: [&str; 5] = ["rhel9", "ubuntu2204", "win2022", "debian12", "sles15"];
const VAPPS: [&str; 4] = ["Analytics", "Billing", "Reporting", "Search"];
/// The pools chargeback maps to tiers, cheapest first, and how VMs spread over them (%).
const TIERS: [&str; 4] = ["Tin", "Bronze", "Silver", "Gold"];
const TIER_WEIGHTS: [u64; 4] = [12, 30, 33, 25];
const VCPUS: [i64; 9] = [1, 2, 4, 6, 8, 12, 16, 24, 32];
const VCPU_WEIGHTS: [u64; 9] = [12, 35, 28, 3, 14, 2, 4, 1, 1];
const RAM_MIB: [i64; 16] = [
    512, 1024, 2048, 3072, 4096, 6144, 8192, 12288, 16384, 24576, 32768, 49152, 65536, 131072,
    196608, 262144,
];
/// GiB of RAM per vCPU a VM is sized with.
const RAM_PER_VCPU: [i64; 5] = [1, 2, 4, 4, 8];
const DISK_GB: [i64; 17] = [
    10, 15, 20, 30, 40, 60, 80, 100, 150, 200, 300, 400, 600, 800, 1000, 1500, 2000,
];

/// The managed object types the simulator serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Folder,
    Datacenter,
    ClusterComputeResource,
    ComputeResource,
    HostSystem,
    ResourcePool,
    VirtualApp,
    VirtualMachine,
}

impl Kind {
    pub(crate) const ALL: [Kind; 8] = [
        Kind::Folder,
        Kind::Datacenter,
        Kind::ClusterComputeResource,
        Kind::ComputeResource,
        Kind::HostSystem,
        Kind::ResourcePool,
        Kind::VirtualApp,
        Kind::VirtualMachine,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::Folder => "Folder",
            Kind::Datacenter => "Datacenter",
            Kind::ClusterComputeResource => "ClusterComputeResource",
            Kind::ComputeResource => "ComputeResource",
            Kind::HostSystem => "HostSystem",
            Kind::ResourcePool => "ResourcePool",
            Kind::VirtualApp => "VirtualApp",
            Kind::VirtualMachine => "VirtualMachine",
        }
    }

    /// Whether objects of this kind are `type_name`s in the vSphere type hierarchy: property
    /// specs and container views that name a type mean its subtypes too.
    pub(crate) fn is_a(self, type_name: &str) -> bool {
        type_name == self.as_str()
            || type_name == "ManagedEntity"
            || (type_name == "ComputeResource" && self == Kind::ClusterComputeResource)
            || (type_name == "ResourcePool" && self == Kind::VirtualApp)
    }
}

/// One inventory object that is not a VM. Places are numbered in creation order from one
/// counter, as vCenter does, so their index order is their moref order.
#[derive(Debug, Clone)]
pub(crate) struct Place {
    pub(crate) moref: String,
    pub(crate) kind: Kind,
    pub(crate) name: String,
    /// Index of the parent place; `None` only for the root folder.
    pub(crate) parent: Option<usize>,
}

/// One VM at one moment. Strings are derived on demand (`name`, `uuid`, …) so that a
/// snapshot of 100k VMs stays small.
#[derive(Debug, Clone)]
pub(crate) struct Vm {
    /// `vm-<number>`: unique forever within its vCenter.
    pub(crate) number: u64,
    /// Everything fixed for the VM's whole life is rolled from this.
    dice: Dice,
    pub(crate) create_date: Option<i64>,
    pub(crate) num_cpu: i64,
    pub(crate) memory_mb: i64,
    pub(crate) committed: i64,
    pub(crate) uncommitted: i64,
    /// Place index of the `parent` folder; `None` for vApp members, which vCenter gives no
    /// parent (their `parentVApp` is set instead).
    pub(crate) folder: Option<usize>,
    /// Place index of the resource pool or vApp; `None` for templates.
    pub(crate) pool: Option<usize>,
    pub(crate) host: usize,
    pub(crate) power: PowerState,
    pub(crate) template: bool,
    pub(crate) placeholder: bool,
    prefix: &'static str,
    role: &'static str,
}

impl Vm {
    pub(crate) fn moref(&self) -> VmMoref {
        VmMoref(self.number)
    }

    pub(crate) fn name(&self) -> VmName<'_> {
        VmName(self)
    }

    /// `config.uuid`: the BIOS UUID, which vCenter generates with a leading 0x42.
    pub(crate) fn uuid(&self) -> Uuid {
        Uuid::new(
            0x42,
            self.dice.roll(Roll::Uuid),
            self.dice.roll(Roll::UuidLow),
        )
    }

    /// `config.instanceUuid`: vCenter's own id of the VM, leading 0x50.
    pub(crate) fn instance_uuid(&self) -> Uuid {
        Uuid::new(
            0x50,
            self.dice.roll(Roll::InstanceUuid),
            self.dice.roll(Roll::InstanceUuidLow),
        )
    }
}

/// Displays as `vm-<number>`.
pub(crate) struct VmMoref(u64);

impl fmt::Display for VmMoref {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "vm-{}", self.0)
    }
}

/// Displays as `<tenant>-<role>-<number>`. The parts come from this module's tables, which a
/// test holds to `[a-z0-9]`, so the name never needs XML escaping.
pub(crate) struct VmName<'a>(&'a Vm);

impl fmt::Display for VmName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.0.prefix, self.0.role, self.0.number)
    }
}

/// A UUID in its usual 8-4-4-4-12 hex form.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Uuid(u64, u64);

impl Uuid {
    fn new(lead: u8, high: u64, low: u64) -> Uuid {
        Uuid(u64::from(lead) << 56 | high >> 8, low)
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Uuid(hi, lo) = *self;
        write!(
            f,
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            hi >> 32,
            hi >> 16 & 0xFFFF,
            hi & 0xFFFF,
            lo >> 48,
            lo & 0xFFFF_FFFF_FFFF
        )
    }
}

/// The VMs of one vCenter at one time, sorted by moref number.
#[derive(Debug)]
pub(crate) struct Snapshot {
    pub(crate) vms: Vec<Vm>,
}

impl Snapshot {
    pub(crate) fn find(&self, number: u64) -> Option<usize> {
        self.vms.binary_search_by_key(&number, |vm| vm.number).ok()
    }
}

/// What a VM generation is for; decides its folder, pool and name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Template,
    Infra,
    Dev,
    VApp,
    /// Directly in the cluster's root `Resources` pool.
    Unpooled,
    Tiered,
}

/// The independent values rolled for one thing; each label gives its own value, so adding
/// a property never shifts the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Roll {
    Class,
    Period,
    Phase,
    Born,
    Delay,
    Margin,
    Purpose,
    Placeholder,
    Tenant,
    RootFolder,
    Cluster,
    Standalone,
    Tier,
    Role,
    Cpu,
    Ram,
    RamRatio,
    Disk,
    DiskJitter,
    Thin,
    Uncommitted,
    AlwaysOff,
    PowerPeriod,
    PowerPhase,
    PowerOff,
    OffStart,
    OffLength,
    Suspend,
    ResizePeriod,
    ResizePhase,
    CpuStep,
    RamStep,
    MovePeriod,
    MovePhase,
    Move,
    MoveUp,
    DrsPeriod,
    DrsPhase,
    Host,
    HostCount,
    TenantCount,
    TenantOffset,
    VApp,
    Uuid,
    UuidLow,
    InstanceUuid,
    InstanceUuidLow,
}

/// A hash-derived source of values for one thing (a vCenter, a slot, a VM generation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Dice(u64);

impl Dice {
    fn new(seed: u64) -> Dice {
        Dice(mix(seed))
    }

    /// The dice of a numbered part of this thing (a slot of a vCenter, a period of a VM).
    fn sub(self, part: u64) -> Dice {
        Dice(mix(mix(self.0) ^ part))
    }

    fn roll(self, label: Roll) -> u64 {
        mix(self.0 ^ mix(label as u64))
    }

    /// A value in `0..n`; `n` must not be zero.
    fn below(self, label: Roll, n: usize) -> usize {
        (self.roll(label) % n as u64) as usize
    }

    /// A value in `lo..hi`; `hi` must be above `lo`.
    fn between(self, label: Roll, lo: i64, hi: i64) -> i64 {
        lo + (self.roll(label) % (hi - lo) as u64) as i64
    }

    fn pick<T: Copy>(self, label: Roll, items: &[T]) -> T {
        items[self.below(label, items.len())]
    }

    /// An index drawn with the given percentage weights (they sum to 100).
    fn weighted(self, label: Roll, weights: &[u64]) -> usize {
        let mut r = self.roll(label) % 100;
        for (i, w) in weights.iter().enumerate() {
            if r < *w {
                return i;
            }
            r -= w;
        }
        weights.len() - 1
    }

    /// A per-VM grid of periods of hash-derived length in `lo..hi` seconds.
    fn grid(self, period: Roll, phase: Roll, lo: i64, hi: i64) -> Grid {
        let period = self.between(period, lo, hi);
        Grid {
            period,
            phase: self.between(phase, 0, period),
        }
    }
}

/// Time cut into equal periods: a VM's state changes only where its grids' periods turn.
#[derive(Debug, Clone, Copy)]
struct Grid {
    period: i64,
    phase: i64,
}

impl Grid {
    fn index(self, t: i64) -> i64 {
        (t - self.phase).div_euclid(self.period)
    }

    fn start(self, index: i64) -> i64 {
        self.phase + index * self.period
    }
}

/// Maps every integer to a distinct natural number, so generation numbers before the churn
/// epoch still give unique morefs.
fn zigzag(k: i64) -> u64 {
    ((k << 1) ^ (k >> 63)) as u64
}

/// Where the VMs of one datacenter go.
#[derive(Debug)]
struct Datacenter {
    first_slot: usize,
    vm_folder: usize,
    tenants: Vec<(usize, &'static str)>,
    infra_folder: usize,
    templates_folder: usize,
    clusters: Vec<Cluster>,
    standalone: Option<Standalone>,
}

#[derive(Debug)]
struct Cluster {
    resources: usize,
    tiers: [usize; 4],
    dev: usize,
    infra: usize,
    vapp: usize,
    hosts: Vec<usize>,
}

/// A host outside any cluster, with the root pool of its ComputeResource.
#[derive(Debug)]
struct Standalone {
    resources: usize,
    host: usize,
}

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

/// The VM of generation dice `g`, born at `born`, as it is at `t`.
fn vm(g: Dice, number: u64, born: i64, t: i64, dc: &Datacenter) -> Vm {
    let purpose = match g.below(Roll::Purpose, 1000) {
        0..30 => Purpose::Template,
        30..90 => Purpose::Infra,
        90..170 => Purpose::Dev,
        170..200 => Purpose::VApp,
        200..250 => Purpose::Unpooled,
        _ => Purpose::Tiered,
    };
    let template = purpose == Purpose::Template;
    // SRM creates placeholders at the recovery site for protected tenant VMs.
    let placeholder = purpose == Purpose::Tiered && g.below(Roll::Placeholder, 1000) < 5;
    let cluster = &dc.clusters[g.below(Roll::Cluster, dc.clusters.len())];
    let standalone = dc.standalone.as_ref().filter(|_| {
        matches!(purpose, Purpose::Infra | Purpose::Dev | Purpose::Unpooled)
            && g.below(Roll::Standalone, 100) < 5
    });
    let pool = match (purpose, standalone) {
        (Purpose::Template, _) => None,
        (_, Some(s)) => Some(s.resources),
        (Purpose::Infra, None) => Some(cluster.infra),
        (Purpose::Dev, None) => Some(cluster.dev),
        (Purpose::VApp, None) => Some(cluster.vapp),
        (Purpose::Unpooled, None) => Some(cluster.resources),
        (Purpose::Tiered, None) => Some(cluster.tiers[tier_at(g, born, t)]),
    };
    let (tenant_folder, tenant) = g.pick(Roll::Tenant, &dc.tenants);
    let (folder, prefix, role) = match purpose {
        Purpose::Template => (
            Some(dc.templates_folder),
            "tpl",
            g.pick(Roll::Role, &TEMPLATE_OSES),
        ),
        Purpose::Infra => (Some(dc.infra_folder), "infra", g.pick(Roll::Role, &ROLES)),
        Purpose::VApp => (None, tenant, g.pick(Roll::Role, &ROLES)),
        Purpose::Unpooled if g.below(Roll::RootFolder, 2) == 0 => {
            (Some(dc.vm_folder), tenant, g.pick(Roll::Role, &ROLES))
        }
        _ => (Some(tenant_folder), tenant, g.pick(Roll::Role, &ROLES)),
    };
    let hosts = standalone.map_or(cluster.hosts.as_slice(), |s| std::slice::from_ref(&s.host));
    let host = if template {
        g.pick(Roll::Host, hosts)
    } else {
        // DRS moves running VMs between the hosts of their cluster every few days.
        let drs = g.grid(Roll::DrsPeriod, Roll::DrsPhase, 2 * DAY, 30 * DAY);
        g.sub(drs.index(t) as u64).pick(Roll::Host, hosts)
    };
    let power = if template || placeholder || g.below(Roll::AlwaysOff, 100) < 5 {
        PowerState::PoweredOff
    } else {
        power_at(g, t)
    };
    let (num_cpu, memory_mb, growth) = size_at(g, born, t);
    let (committed, uncommitted) = if placeholder {
        // A placeholder is only a registered .vmx: a few KiB, no disks.
        ((4 + g.below(Roll::Disk, 60) as i64) << 10, 0)
    } else {
        let gb = g.pick(Roll::Disk, &DISK_GB) << 30;
        let base = gb + g.between(Roll::DiskJitter, 0, gb / 4);
        // Disks grow a little at every reconfiguration period the VM lives through.
        let committed = base * (100 + 4 * growth) / 100;
        let uncommitted = if g.below(Roll::Thin, 100) < 70 {
            committed * g.between(Roll::Uncommitted, 5, 150) / 100
        } else {
            0
        };
        (committed, uncommitted)
    };
    Vm {
        number,
        dice: g,
        create_date: (born >= CREATE_DATE_SINCE).then_some(born),
        num_cpu,
        memory_mb,
        committed,
        uncommitted,
        folder,
        pool,
        host,
        power,
        template,
        placeholder,
        prefix,
        role,
    }
}

/// The tier of a tiered VM at `t`: its own, except for the odd period spent in a
/// neighbouring tier (a tenant trying a cheaper or better class of service).
fn tier_at(g: Dice, born: i64, t: i64) -> usize {
    let own = g.weighted(Roll::Tier, &TIER_WEIGHTS);
    let moves = g.grid(Roll::MovePeriod, Roll::MovePhase, 60 * DAY, 720 * DAY);
    let period = moves.index(t);
    let p = g.sub(period as u64);
    if period == moves.index(born) || p.below(Roll::Move, 100) >= 12 {
        return own;
    }
    match own {
        0 => 1,
        3 => 2,
        _ if p.below(Roll::MoveUp, 2) == 0 => own + 1,
        _ => own - 1,
    }
}

/// Power state of a VM that normally runs: in about a third of its power periods it is
/// off (now and then suspended) for an hour to three days.
fn power_at(g: Dice, t: i64) -> PowerState {
    let grid = g.grid(Roll::PowerPeriod, Roll::PowerPhase, 7 * DAY, 60 * DAY);
    let period = grid.index(t);
    let p = g.sub(period as u64);
    if p.below(Roll::PowerOff, 100) >= 30 {
        return PowerState::PoweredOn;
    }
    // Both bounds keep the episode inside its period (at least 7 days long).
    let off = grid.start(period) + p.between(Roll::OffStart, 0, grid.period / 2);
    let length = p.between(Roll::OffLength, HOUR, 3 * DAY);
    match (off..off + length).contains(&t) {
        false => PowerState::PoweredOn,
        true if p.below(Roll::Suspend, 10) == 0 => PowerState::Suspended,
        true => PowerState::PoweredOff,
    }
}

/// vCPUs, RAM (MiB) and how many reconfiguration periods the VM has lived through at `t`.
/// Each period after the first may bring a step up or (less often) down from the size the
/// VM was created with.
fn size_at(g: Dice, born: i64, t: i64) -> (i64, i64, i64) {
    let cpu = g.weighted(Roll::Cpu, &VCPU_WEIGHTS);
    let ram_gib = VCPUS[cpu] * g.pick(Roll::RamRatio, &RAM_PER_VCPU);
    let ram = match (cpu, g.below(Roll::Ram, 10)) {
        (0, 0..3) => 0, // small 1-vCPU appliances get 512 MiB
        _ => RAM_MIB
            .iter()
            .position(|&mib| mib >= ram_gib << 10)
            .unwrap_or(RAM_MIB.len() - 1),
    };
    let resize = g.grid(Roll::ResizePeriod, Roll::ResizePhase, 30 * DAY, 365 * DAY);
    let (period, first) = (resize.index(t), resize.index(born));
    if period == first {
        return (VCPUS[cpu], RAM_MIB[ram], 0);
    }
    let p = g.sub(period as u64);
    let step = |label, index: usize, len: usize| match p.below(label, 10) {
        0..6 => index,
        6..9 => (index + 1).min(len - 1),
        _ => index.saturating_sub(1),
    };
    (
        VCPUS[step(Roll::CpuStep, cpu, VCPUS.len())],
        RAM_MIB[step(Roll::RamStep, ram, RAM_MIB.len())],
        (period - first).min(15),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
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
