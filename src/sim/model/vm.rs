//! One VM generation as it is at `t`: its purpose, folder, pool and host, its power state
//! and its size, each a closed-form function of its dice and the time.

use super::dice::{Dice, Roll};
use super::{DAY, HOUR, TIER_WEIGHTS, Vm};
use crate::vsphere::PowerState;

/// vCenter has recorded `config.createDate` only since vSphere 6.7 (2018-04-17): older VMs
/// have none, as in a real estate that has been upgraded over the years.
const CREATE_DATE_SINCE: i64 = 1_523_923_200;
pub(super) const ROLES: [&str; 12] = [
    "web", "app", "db", "api", "cache", "mq", "batch", "ci", "etl", "proxy", "dc", "file",
];
pub(super) const TEMPLATE_OSES: [&str; 5] =
    ["rhel9", "ubuntu2204", "win2022", "debian12", "sles15"];
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

/// Where the VMs of one datacenter go.
#[derive(Debug)]
pub(super) struct Datacenter {
    pub(super) first_slot: usize,
    pub(super) vm_folder: usize,
    pub(super) tenants: Vec<(usize, &'static str)>,
    pub(super) infra_folder: usize,
    pub(super) templates_folder: usize,
    pub(super) clusters: Vec<Cluster>,
    pub(super) standalone: Option<Standalone>,
}

#[derive(Debug)]
pub(super) struct Cluster {
    pub(super) resources: usize,
    pub(super) tiers: [usize; 4],
    pub(super) dev: usize,
    pub(super) infra: usize,
    pub(super) vapp: usize,
    pub(super) hosts: Vec<usize>,
}

/// A host outside any cluster, with the root pool of its ComputeResource.
#[derive(Debug)]
pub(super) struct Standalone {
    pub(super) resources: usize,
    pub(super) host: usize,
}

/// The VM of generation dice `g`, born at `born`, as it is at `t`.
pub(super) fn vm(g: Dice, number: u64, born: i64, t: i64, dc: &Datacenter) -> Vm {
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
    // Tenant VMs carry their tenant as a custom attribute, except a fifth of them: tagging
    // is seldom complete, and tenant rules must fall back for the rest.
    let tenant = (!matches!(purpose, Purpose::Template | Purpose::Infra)
        && g.below(Roll::TenantAttribute, 10) >= 2)
        .then_some(tenant);
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
        tenant,
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
