//! The simulated estate of each vCenter: a fixed tree of datacenters, folders, clusters,
//! hosts and resource pools, and VMs that come and go with the clock.
//!
//! Nothing is replayed. Every VM *slot* has a hash-derived lifetime period; the slot's
//! occupant at time `t` (if any), its size, pool, host and power state all follow from
//! `(seed, vCenter, slot, t)` in closed form, so building the inventory at any `t` is one
//! pass over the slots and costs the same for any hour of any year.

mod dice;
mod estate;
mod vm;

use crate::vsphere::PowerState;
use dice::{Dice, Roll};
pub(crate) use estate::Estate;
use std::fmt;

const HOUR: i64 = 3_600;
const DAY: i64 = 86_400;
/// Times are clamped to about ±34,000 years (2^40 s) so that period arithmetic can never
/// overflow, whatever a manual clock is set to.
pub(crate) const TIME_LIMIT: i64 = 1 << 40;
/// The pools chargeback maps to tiers, cheapest first, and how VMs spread over them (%).
const TIERS: [&str; 4] = ["Tin", "Bronze", "Silver", "Gold"];
const TIER_WEIGHTS: [u64; 4] = [12, 30, 33, 25];

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
    /// The `Tenant` custom attribute ([`TENANT_FIELD`]).
    pub(crate) tenant: Option<&'static str>,
    prefix: &'static str,
    role: &'static str,
}

/// The one custom field the simulated vCenters define: `(key, name)`.
pub(crate) const TENANT_FIELD: (i32, &str) = (1, "Tenant");

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

/// Displays as `<tenant>-<role>-<number>`. The parts come from the tables of `estate` and
/// `vm`, which a test holds to `[a-z0-9]`, so the name never needs XML escaping.
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
