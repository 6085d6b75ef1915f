//! What the collector reads from vCenter, as plain data: the properties of each VM and the
//! inventory objects (folders, pools, hosts, clusters, datacenters) its references point at.
//! Turning these into snapshot rows is `inventory::capture`'s job. Also the vocabulary the
//! envelopes, the parser and the client share: the server's identity, managed object
//! references and the property paths asked for.

use std::collections::{BTreeMap, HashMap};

/// What [`super::Client::virtual_machine_pages`] hands over, page by page.
#[derive(Debug, Clone, PartialEq)]
pub enum VmPage {
    /// The VMs of the page just read.
    Vms(Vec<VmProperties>),
    /// The session expired and the retrieval starts over in a new one: the pages handed
    /// over before are to be forgotten.
    Restart,
}

/// The properties of one VM as vCenter returned them. `None` means vCenter omitted the
/// property (unset, e.g. a template has no resource pool).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VmProperties {
    /// The managed object id (`vm-123`): the VM's identity within its vCenter.
    pub moref: String,
    pub name: Option<String>,
    /// `config.uuid` (the BIOS UUID).
    pub uuid: Option<String>,
    /// `config.instanceUuid` (vCenter's own id of the VM).
    pub instance_uuid: Option<String>,
    /// `config.hardware.numCPU`.
    pub num_cpu: Option<i64>,
    /// `config.hardware.memoryMB` (MiB).
    pub memory_mb: Option<i64>,
    /// `summary.storage.committed`, bytes.
    pub storage_committed: Option<i64>,
    /// `summary.storage.uncommitted`, bytes.
    pub storage_uncommitted: Option<i64>,
    /// `config.template`.
    pub template: Option<bool>,
    /// `runtime.powerState`.
    pub power_state: Option<PowerState>,
    /// `config.createDate`, Unix seconds.
    pub create_date: Option<i64>,
    /// `config.managedBy`: set by SRM on placeholder VMs.
    pub managed_by: Option<ManagedBy>,
    /// Moref of `resourcePool` (a ResourcePool or VirtualApp).
    pub resource_pool: Option<String>,
    /// Moref of `parent` (a Folder, or a VirtualApp for vApp members).
    pub parent: Option<String>,
    /// Moref of `runtime.host`.
    pub host: Option<String>,
    /// `customValue`: the VM's custom attributes, name → value, named by the vCenter's
    /// custom field definitions (`CustomFieldsManager.field`). A value whose key has no
    /// definition is left out: it can only be a field defined after the names were read
    /// (the next capture names it) or a server's mistake, and a rule can only name it by name.
    pub attributes: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerState {
    PoweredOn,
    PoweredOff,
    Suspended,
}

impl PowerState {
    /// The `VirtualMachinePowerState` enum value as written in SOAP.
    pub fn parse(text: &str) -> Option<PowerState> {
        match text {
            "poweredOn" => Some(PowerState::PoweredOn),
            "poweredOff" => Some(PowerState::PoweredOff),
            "suspended" => Some(PowerState::Suspended),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PowerState::PoweredOn => "poweredOn",
            PowerState::PoweredOff => "poweredOff",
            PowerState::Suspended => "suspended",
        }
    }
}

/// `ManagedByInfo`: which extension manages the VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedBy {
    pub extension_key: String,
    pub kind: String,
}

impl ManagedBy {
    /// The extension key Site Recovery Manager sets on the placeholder VMs it creates.
    pub const SRM_EXTENSION: &'static str = "com.vmware.vcDr";

    pub fn is_srm_placeholder(&self) -> bool {
        self.extension_key == Self::SRM_EXTENSION
    }
}

/// The managed object types a VM's references can point at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaceKind {
    Folder,
    Datacenter,
    ClusterComputeResource,
    /// A standalone host's compute resource.
    ComputeResource,
    HostSystem,
    ResourcePool,
    VirtualApp,
}

impl PlaceKind {
    /// From the `type` attribute of a ManagedObjectReference.
    pub fn parse(text: &str) -> Option<PlaceKind> {
        match text {
            "Folder" => Some(PlaceKind::Folder),
            "Datacenter" => Some(PlaceKind::Datacenter),
            "ClusterComputeResource" => Some(PlaceKind::ClusterComputeResource),
            "ComputeResource" => Some(PlaceKind::ComputeResource),
            "HostSystem" => Some(PlaceKind::HostSystem),
            "ResourcePool" => Some(PlaceKind::ResourcePool),
            "VirtualApp" => Some(PlaceKind::VirtualApp),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PlaceKind::Folder => "Folder",
            PlaceKind::Datacenter => "Datacenter",
            PlaceKind::ClusterComputeResource => "ClusterComputeResource",
            PlaceKind::ComputeResource => "ComputeResource",
            PlaceKind::HostSystem => "HostSystem",
            PlaceKind::ResourcePool => "ResourcePool",
            PlaceKind::VirtualApp => "VirtualApp",
        }
    }
}

/// One inventory object: its kind, name and parent (`None` for the root folder).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub kind: PlaceKind,
    pub name: String,
    pub parent: Option<String>,
}

/// The inventory objects of one vCenter by moref, fetched in one property retrieval so that
/// naming a VM's placement never costs a round trip.
#[derive(Debug, Clone, Default)]
pub struct Places {
    objects: HashMap<String, Place>,
}

/// Parent chains deeper than this are treated as a cycle (a corrupt or hostile response).
const MAX_DEPTH: usize = 64;

impl Places {
    pub fn insert(&mut self, moref: String, place: Place) {
        self.objects.insert(moref, place);
    }

    pub fn len(&self) -> usize {
        self.objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    pub fn get(&self, moref: &str) -> Option<&Place> {
        self.objects.get(moref)
    }

    pub fn name(&self, moref: &str) -> Option<&str> {
        self.get(moref).map(|p| p.name.as_str())
    }

    /// The object `moref` followed by its ancestors, nearest first.
    fn ancestry<'a>(&'a self, moref: &str) -> impl Iterator<Item = &'a Place> + use<'a> {
        let mut next = self.objects.get(moref);
        std::iter::from_fn(move || {
            let place = next?;
            next = place.parent.as_deref().and_then(|p| self.objects.get(p));
            Some(place)
        })
        .take(MAX_DEPTH)
    }

    /// The datacenter above `moref`, by name.
    pub fn datacenter_of(&self, moref: &str) -> Option<&str> {
        self.ancestry(moref)
            .find(|p| p.kind == PlaceKind::Datacenter)
            .map(|p| p.name.as_str())
    }

    /// The cluster a host belongs to; `None` for a standalone host.
    pub fn cluster_of(&self, moref: &str) -> Option<&str> {
        self.ancestry(moref)
            .find(|p| {
                matches!(
                    p.kind,
                    PlaceKind::ClusterComputeResource | PlaceKind::ComputeResource
                )
            })
            .filter(|p| p.kind == PlaceKind::ClusterComputeResource)
            .map(|p| p.name.as_str())
    }

    /// The full path of a folder from its datacenter down, as in the vSphere client:
    /// `/DC1/vm/Tenants/Acme`. Folders above the datacenter are left out; a folder outside
    /// any datacenter gives its path from the root.
    pub fn folder_path(&self, moref: &str) -> String {
        let mut names: Vec<&str> = Vec::new();
        for place in self.ancestry(moref) {
            if place.parent.is_none() && place.kind == PlaceKind::Folder {
                break; // the root folder ("Datacenters") is not part of a path
            }
            names.push(&place.name);
            if place.kind == PlaceKind::Datacenter {
                break;
            }
        }
        names.iter().rev().fold(String::new(), |mut path, name| {
            path.push('/');
            path.push_str(name);
            path
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn places() -> Places {
        let mut places = Places::default();
        let mut add = |moref: &str, kind, name: &str, parent: Option<&str>| {
            places.insert(
                moref.into(),
                Place {
                    kind,
                    name: name.into(),
                    parent: parent.map(String::from),
                },
            )
        };
        add("group-d1", PlaceKind::Folder, "Datacenters", None);
        add("group-d2", PlaceKind::Folder, "Europe", Some("group-d1"));
        add(
            "datacenter-3",
            PlaceKind::Datacenter,
            "DC1",
            Some("group-d2"),
        );
        add("group-v4", PlaceKind::Folder, "vm", Some("datacenter-3"));
        add("group-v9", PlaceKind::Folder, "Tenants", Some("group-v4"));
        add("group-h5", PlaceKind::Folder, "host", Some("datacenter-3"));
        add(
            "domain-c7",
            PlaceKind::ClusterComputeResource,
            "Cluster-A",
            Some("group-h5"),
        );
        add("host-8", PlaceKind::HostSystem, "esx1", Some("domain-c7"));
        add(
            "domain-s10",
            PlaceKind::ComputeResource,
            "esx2",
            Some("group-h5"),
        );
        add("host-11", PlaceKind::HostSystem, "esx2", Some("domain-s10"));
        add(
            "resgroup-12",
            PlaceKind::ResourcePool,
            "Gold",
            Some("domain-c7"),
        );
        places
    }

    #[test]
    fn folder_paths_start_at_the_datacenter() {
        let places = places();
        assert_eq!(places.folder_path("group-v9"), "/DC1/vm/Tenants");
        assert_eq!(places.folder_path("group-v4"), "/DC1/vm");
        assert_eq!(places.folder_path("group-d2"), "/Europe");
        assert_eq!(places.folder_path("unknown-1"), "");
    }

    #[test]
    fn hosts_resolve_to_their_cluster_and_datacenter() {
        let places = places();
        assert_eq!(places.cluster_of("host-8"), Some("Cluster-A"));
        assert_eq!(places.cluster_of("host-11"), None, "standalone host");
        assert_eq!(places.datacenter_of("host-8"), Some("DC1"));
        assert_eq!(places.datacenter_of("resgroup-12"), Some("DC1"));
        assert_eq!(places.datacenter_of("group-d2"), None);
    }

    #[test]
    fn a_parent_cycle_ends_instead_of_looping() {
        let mut places = Places::default();
        for (a, b) in [("group-1", "group-2"), ("group-2", "group-1")] {
            places.insert(
                a.into(),
                Place {
                    kind: PlaceKind::Folder,
                    name: a.into(),
                    parent: Some(b.into()),
                },
            );
        }
        assert_eq!(places.datacenter_of("group-1"), None);
        assert!(places.folder_path("group-1").len() < 1000);
    }
}

/// `ServiceContent.about`: what the server is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct About {
    pub name: String,
    pub full_name: String,
    pub version: String,
    pub build: String,
    /// `VirtualCenter` or `HostAgent`.
    pub api_type: String,
    pub api_version: String,
    pub instance_uuid: String,
}

impl About {
    /// Version and build as vSphere quotes them, e.g. `8.0.2 build-22617221`; `None` when
    /// the server did not say.
    pub fn version_and_build(&self) -> Option<String> {
        match (self.version.trim(), self.build.trim()) {
            ("", _) => None,
            (version, "") => Some(version.to_string()),
            (version, build) => Some(format!("{version} build-{build}")),
        }
    }
}

/// A managed object reference: the object's type and its id (`VirtualMachine`, `vm-42`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Moref {
    pub kind: &'static str,
    pub value: String,
}

/// The properties the collector reads, by their vSphere property path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Property {
    Name,
    Uuid,
    InstanceUuid,
    NumCpu,
    MemoryMb,
    StorageCommitted,
    StorageUncommitted,
    Template,
    PowerState,
    CreateDate,
    ManagedBy,
    ResourcePool,
    Parent,
    Host,
    CustomValue,
}

impl Property {
    /// Everything [`VmProperties`] holds.
    pub(crate) const VM: [Property; 15] = [
        Property::Name,
        Property::Uuid,
        Property::InstanceUuid,
        Property::NumCpu,
        Property::MemoryMb,
        Property::StorageCommitted,
        Property::StorageUncommitted,
        Property::Template,
        Property::PowerState,
        Property::CreateDate,
        Property::ManagedBy,
        Property::ResourcePool,
        Property::Parent,
        Property::Host,
        Property::CustomValue,
    ];

    /// What a [`Place`] needs; every ManagedEntity has these two.
    pub(crate) const PLACE: [Property; 2] = [Property::Name, Property::Parent];

    // Inlined: the parser compares every property element's path with these, and without
    // it the call crosses codegen units (a collection ran 1.2x slower when this moved here).
    #[inline]
    pub(crate) fn path(self) -> &'static str {
        match self {
            Property::Name => "name",
            Property::Uuid => "config.uuid",
            Property::InstanceUuid => "config.instanceUuid",
            Property::NumCpu => "config.hardware.numCPU",
            Property::MemoryMb => "config.hardware.memoryMB",
            Property::StorageCommitted => "summary.storage.committed",
            Property::StorageUncommitted => "summary.storage.uncommitted",
            Property::Template => "config.template",
            Property::PowerState => "runtime.powerState",
            Property::CreateDate => "config.createDate",
            Property::ManagedBy => "config.managedBy",
            Property::ResourcePool => "resourcePool",
            Property::Parent => "parent",
            Property::Host => "runtime.host",
            Property::CustomValue => "customValue",
        }
    }
}
