//! The pure step of a capture: the VM properties read from one vCenter become the rows of
//! its snapshot, with the settings' filters applied. `collector` does the I/O around it.

use super::HourlyRow;
use super::pattern::Pattern;
use crate::config::Settings;
use crate::vsphere::{Places, PowerState, VmProperties};
use std::collections::BTreeMap;

fn any_match(patterns: &[Pattern], name: &str) -> bool {
    patterns.iter().any(|p| p.matches(name))
}

/// The snapshot filters of the settings.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    /// Matched against the resource pool name and every folder on the VM's path.
    pub tenants: Vec<Pattern>,
    /// Matched against the cluster name.
    pub node_charge_clusters: Vec<Pattern>,
    /// Matched against the VM name.
    pub srm_activeactive_vms: Vec<Pattern>,
}

impl Filters {
    pub fn from_settings(settings: &Settings) -> Filters {
        let compile = |patterns: &[String]| patterns.iter().map(|p| Pattern::new(p)).collect();
        Filters {
            tenants: compile(&settings.tenants_to_filter),
            node_charge_clusters: compile(&settings.node_charge_clusters),
            srm_activeactive_vms: compile(&settings.srm_activeactive_vms),
        }
    }
}

/// Rows of one snapshot and what the filters left out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Converted {
    pub rows: Vec<HourlyRow>,
    /// The custom attributes of each row's VM, in row order (`attributes[i]` are `rows[i]`'s).
    pub attributes: Vec<BTreeMap<String, String>>,
    pub filtered_tenant: usize,
    pub filtered_node_charge: usize,
}

const BYTES_PER_GB: f64 = (1u64 << 30) as f64;

/// Turns the VMs of one vCenter into the rows of its snapshot at `snapshot_time`, naming
/// pools, folders, clusters and datacenters through `places`.
pub fn rows_from(
    vcenter: &str,
    snapshot_time: i64,
    vms: Vec<VmProperties>,
    places: &Places,
    filters: &Filters,
) -> Converted {
    let mut out = Converted {
        rows: Vec::with_capacity(vms.len()),
        attributes: Vec::with_capacity(vms.len()),
        ..Converted::default()
    };
    for vm in vms {
        let name_of = |moref: &Option<String>| {
            moref
                .as_deref()
                .and_then(|m| places.name(m))
                .unwrap_or_default()
                .to_string()
        };
        let resource_pool = name_of(&vm.resource_pool);
        let folder = vm
            .parent
            .as_deref()
            .map(|m| places.folder_path(m))
            .unwrap_or_default();
        let tenant_filtered = any_match(&filters.tenants, &resource_pool)
            || folder
                .split('/')
                .filter(|segment| !segment.is_empty())
                .any(|segment| any_match(&filters.tenants, segment));
        if tenant_filtered {
            out.filtered_tenant += 1;
            continue;
        }
        // The host says which cluster the VM runs in; a VM without one (a template, a
        // placeholder) still sits under its pool's cluster.
        let anchor = vm
            .host
            .as_deref()
            .or(vm.resource_pool.as_deref())
            .or(vm.parent.as_deref())
            .unwrap_or_default();
        let cluster = places.cluster_of(anchor).unwrap_or_default().to_string();
        if any_match(&filters.node_charge_clusters, &cluster) {
            out.filtered_node_charge += 1;
            continue;
        }
        let datacenter = places.datacenter_of(anchor).unwrap_or_default().to_string();
        let name = vm.name.unwrap_or_else(|| vm.moref.clone());
        let powered_on = vm.power_state == Some(PowerState::PoweredOn);
        let srm_placeholder = vm
            .managed_by
            .as_ref()
            .is_some_and(|m| m.is_srm_placeholder())
            || (!powered_on && any_match(&filters.srm_activeactive_vms, &name));
        let disk_bytes = vm.storage_committed.unwrap_or(0).max(0) as f64
            + vm.storage_uncommitted.unwrap_or(0).max(0) as f64;
        out.rows.push(HourlyRow {
            vcenter: vcenter.to_string(),
            vm_id: vm.moref,
            vm_uuid: vm.uuid.unwrap_or_default(),
            inventory_id: vm.instance_uuid.unwrap_or_default(),
            name,
            event_key: String::new(),
            cloud_id: String::new(),
            creation_time: vm.create_date.unwrap_or(0),
            deletion_time: 0,
            snapshot_time,
            resource_pool,
            datacenter,
            cluster,
            folder,
            provisioned_disk_gb: disk_bytes / BYTES_PER_GB,
            vcpu_count: vm.num_cpu.unwrap_or(0),
            ram_gb: vm.memory_mb.unwrap_or(0) as f64 / 1024.0,
            is_template: vm.template.unwrap_or(false),
            powered_on,
            srm_placeholder,
        });
        out.attributes.push(vm.attributes);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vsphere::{ManagedBy, Place, PlaceKind};

    fn places() -> Places {
        let mut places = Places::default();
        for (moref, kind, name, parent) in [
            ("group-d1", PlaceKind::Folder, "Datacenters", None),
            (
                "datacenter-2",
                PlaceKind::Datacenter,
                "DC1",
                Some("group-d1"),
            ),
            ("group-v3", PlaceKind::Folder, "vm", Some("datacenter-2")),
            ("group-v4", PlaceKind::Folder, "Tenants", Some("group-v3")),
            ("group-v5", PlaceKind::Folder, "Acme", Some("group-v4")),
            ("group-h6", PlaceKind::Folder, "host", Some("datacenter-2")),
            (
                "domain-c7",
                PlaceKind::ClusterComputeResource,
                "Cluster-A",
                Some("group-h6"),
            ),
            (
                "domain-c8",
                PlaceKind::ClusterComputeResource,
                "Dedicated-1",
                Some("group-h6"),
            ),
            ("host-9", PlaceKind::HostSystem, "esx1", Some("domain-c7")),
            ("host-10", PlaceKind::HostSystem, "esx2", Some("domain-c8")),
            (
                "resgroup-11",
                PlaceKind::ResourcePool,
                "Resources",
                Some("domain-c7"),
            ),
            (
                "resgroup-12",
                PlaceKind::ResourcePool,
                "Gold",
                Some("resgroup-11"),
            ),
            (
                "resgroup-13",
                PlaceKind::ResourcePool,
                "Scratch",
                Some("resgroup-11"),
            ),
        ] {
            places.insert(
                moref.into(),
                Place {
                    kind,
                    name: name.into(),
                    parent: parent.map(String::from),
                },
            );
        }
        places
    }

    fn vm(moref: &str, name: &str) -> VmProperties {
        VmProperties {
            moref: moref.into(),
            name: Some(name.into()),
            uuid: Some(format!("uuid-{moref}")),
            instance_uuid: Some(format!("inst-{moref}")),
            num_cpu: Some(4),
            memory_mb: Some(6144),
            storage_committed: Some(30 << 30),
            storage_uncommitted: Some(1 << 29),
            template: Some(false),
            power_state: Some(PowerState::PoweredOn),
            create_date: Some(1_767_225_600),
            managed_by: None,
            resource_pool: Some("resgroup-12".into()),
            parent: Some("group-v5".into()),
            host: Some("host-9".into()),
            attributes: BTreeMap::from([("Tenant".to_string(), format!("t-{name}"))]),
        }
    }

    #[test]
    fn a_vm_becomes_a_row_with_names_sizes_and_placement_resolved() {
        let out = rows_from(
            "vc1",
            1_767_229_200,
            vec![vm("vm-42", "web-01")],
            &places(),
            &Filters::default(),
        );
        assert_eq!(out.rows.len(), 1);
        let row = &out.rows[0];
        assert_eq!(row.vcenter, "vc1");
        assert_eq!(row.vm_id, "vm-42");
        assert_eq!(row.vm_uuid, "uuid-vm-42");
        assert_eq!(row.inventory_id, "inst-vm-42");
        assert_eq!(row.name, "web-01");
        assert_eq!(row.snapshot_time, 1_767_229_200);
        assert_eq!(row.creation_time, 1_767_225_600);
        assert_eq!(row.resource_pool, "Gold");
        assert_eq!(row.folder, "/DC1/vm/Tenants/Acme");
        assert_eq!(row.cluster, "Cluster-A");
        assert_eq!(row.datacenter, "DC1");
        assert_eq!(row.vcpu_count, 4);
        assert_eq!(row.ram_gb, 6.0);
        assert_eq!(row.provisioned_disk_gb, 30.5, "committed + uncommitted");
        assert!(row.powered_on && !row.is_template && !row.srm_placeholder);
    }

    #[test]
    fn unset_properties_give_the_unknown_values() {
        let bare = VmProperties {
            moref: "vm-7".into(),
            ..VmProperties::default()
        };
        let out = rows_from("vc1", 10, vec![bare], &places(), &Filters::default());
        let row = &out.rows[0];
        assert_eq!(
            row.name, "vm-7",
            "a VM without a name is named by its moref"
        );
        assert_eq!((row.creation_time, row.vcpu_count, row.ram_gb), (0, 0, 0.0));
        assert_eq!(row.provisioned_disk_gb, 0.0);
        assert_eq!(
            (
                row.resource_pool.as_str(),
                row.folder.as_str(),
                row.cluster.as_str()
            ),
            ("", "", "")
        );
        assert!(!row.powered_on);
    }

    #[test]
    fn a_template_without_a_host_or_pool_is_placed_by_its_folder() {
        let mut template = vm("vm-8", "tpl-debian");
        template.template = Some(true);
        template.resource_pool = None;
        template.host = None;
        let row = &rows_from("vc1", 10, vec![template], &places(), &Filters::default()).rows[0];
        assert!(row.is_template);
        assert_eq!(row.resource_pool, "");
        assert_eq!(row.datacenter, "DC1");
        assert_eq!(row.cluster, "");
    }

    #[test]
    fn tenant_patterns_filter_by_pool_or_any_folder_on_the_path() {
        let mut scratch = vm("vm-2", "tmp");
        scratch.resource_pool = Some("resgroup-13".into());
        let mut elsewhere = vm("vm-3", "other");
        elsewhere.parent = Some("group-v4".into());
        let vms = vec![vm("vm-1", "acme-web"), scratch, elsewhere];
        let by_folder = Filters {
            tenants: vec![Pattern::new("acme")],
            ..Filters::default()
        };
        let out = rows_from("vc1", 10, vms.clone(), &places(), &by_folder);
        assert_eq!(
            out.filtered_tenant, 2,
            "vm-1 and vm-2 sit in the Acme folder"
        );
        assert_eq!(
            out.rows
                .iter()
                .map(|r| r.vm_id.as_str())
                .collect::<Vec<_>>(),
            ["vm-3"]
        );
        let by_pool = Filters {
            tenants: vec![Pattern::new("scr*")],
            ..Filters::default()
        };
        let out = rows_from("vc1", 10, vms, &places(), &by_pool);
        assert_eq!(out.filtered_tenant, 1);
        assert_eq!(out.rows.len(), 2);
    }

    #[test]
    fn node_charge_clusters_leave_their_vms_out() {
        let mut dedicated = vm("vm-5", "sap-01");
        dedicated.host = Some("host-10".into());
        let filters = Filters {
            node_charge_clusters: vec![Pattern::new("dedicated-*")],
            ..Filters::default()
        };
        let out = rows_from(
            "vc1",
            10,
            vec![vm("vm-4", "web"), dedicated],
            &places(),
            &filters,
        );
        assert_eq!(out.filtered_node_charge, 1);
        assert_eq!(out.rows.len(), 1);
        assert_eq!(out.rows[0].vm_id, "vm-4");
        assert_eq!(
            out.attributes,
            [BTreeMap::from([(
                "Tenant".to_string(),
                "t-web".to_string()
            )])],
            "the attributes of the rows kept, in their order"
        );
    }

    #[test]
    fn srm_placeholders_come_from_managed_by_or_a_powered_off_active_active_copy() {
        let mut placeholder = vm("vm-1", "db-01");
        placeholder.managed_by = Some(ManagedBy {
            extension_key: ManagedBy::SRM_EXTENSION.into(),
            kind: "placeholderVm".into(),
        });
        let mut passive = vm("vm-2", "aa-app-01");
        passive.power_state = Some(PowerState::PoweredOff);
        let active = vm("vm-3", "aa-app-02");
        let mut other_off = vm("vm-4", "web-01");
        other_off.power_state = Some(PowerState::PoweredOff);
        let filters = Filters {
            srm_activeactive_vms: vec![Pattern::new("aa-*")],
            ..Filters::default()
        };
        let rows = rows_from(
            "vc1",
            10,
            vec![placeholder, passive, active, other_off],
            &places(),
            &filters,
        )
        .rows;
        let flags: Vec<bool> = rows.iter().map(|r| r.srm_placeholder).collect();
        assert_eq!(flags, [true, true, false, false]);
    }
}
