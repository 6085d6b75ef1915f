//! The PropertyCollector: which objects a PropertyFilterSpec selects at one moment, and
//! their requested properties written as `ObjectContent`s.

use super::model::{Estate, Kind, Place, Snapshot, TENANT_FIELD, Vm};
use super::soap::{DateTime, Element, Fault, MoRef, Xml};
use std::collections::{HashMap, HashSet};
use std::fmt::Display;
use std::ops::Range;
use std::sync::Arc;

/// A ContainerView: what CreateContainerView was asked for.
#[derive(Debug, Clone)]
pub(crate) struct View {
    /// Place index of the container.
    pub(crate) container: usize,
    /// Types to show (with their subtypes); empty shows every type.
    pub(crate) types: Vec<String>,
    pub(crate) recursive: bool,
}

/// The properties the simulator knows. Paths it does not know are treated as unset and
/// left out, which is what vCenter does for properties that have no value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prop {
    Name,
    Parent,
    Uuid,
    InstanceUuid,
    NumCpu,
    MemoryMb,
    Committed,
    Uncommitted,
    Template,
    PowerState,
    CreateDate,
    ManagedBy,
    ResourcePool,
    Host,
    CustomValue,
}

const ENTITY_PROPS: [Prop; 2] = [Prop::Name, Prop::Parent];
const VM_PROPS: [Prop; 13] = [
    Prop::Uuid,
    Prop::InstanceUuid,
    Prop::NumCpu,
    Prop::MemoryMb,
    Prop::Committed,
    Prop::Uncommitted,
    Prop::Template,
    Prop::PowerState,
    Prop::CreateDate,
    Prop::ManagedBy,
    Prop::ResourcePool,
    Prop::Host,
    Prop::CustomValue,
];

impl Prop {
    fn path(self) -> &'static str {
        match self {
            Prop::Name => "name",
            Prop::Parent => "parent",
            Prop::Uuid => "config.uuid",
            Prop::InstanceUuid => "config.instanceUuid",
            Prop::NumCpu => "config.hardware.numCPU",
            Prop::MemoryMb => "config.hardware.memoryMB",
            Prop::Committed => "summary.storage.committed",
            Prop::Uncommitted => "summary.storage.uncommitted",
            Prop::Template => "config.template",
            Prop::PowerState => "runtime.powerState",
            Prop::CreateDate => "config.createDate",
            Prop::ManagedBy => "config.managedBy",
            Prop::ResourcePool => "resourcePool",
            Prop::Host => "runtime.host",
            Prop::CustomValue => "customValue",
        }
    }

    /// The properties objects of `kind` have.
    fn of(kind: Kind) -> impl Iterator<Item = Prop> + Clone {
        let vm = if kind == Kind::VirtualMachine {
            &VM_PROPS[..]
        } else {
            &[]
        };
        ENTITY_PROPS.iter().chain(vm).copied()
    }
}

/// A PropertySpec: the properties wanted from objects of a type.
#[derive(Debug)]
struct PropSpec {
    type_name: String,
    all: bool,
    paths: Vec<String>,
}

/// An ObjectSpec: where selection starts.
#[derive(Debug)]
struct ObjSpec {
    obj: MoRef,
    skip: bool,
    /// Whether it traverses a ContainerView's `view`: the only traversal supported.
    through_view: bool,
}

/// The PropertyFilterSpecs of one call, merged.
#[derive(Debug)]
pub(crate) struct FilterSpec {
    props: Vec<PropSpec>,
    objects: Vec<ObjSpec>,
}

impl FilterSpec {
    /// The `specSet`s of a RetrieveProperties(Ex) call.
    pub(crate) fn parse(call: &Element) -> Result<FilterSpec, Fault> {
        let mut spec = FilterSpec {
            props: Vec::new(),
            objects: Vec::new(),
        };
        for set in call.children("specSet") {
            for prop in set.children("propSet") {
                spec.props.push(PropSpec {
                    type_name: prop
                        .child_text("type")
                        .ok_or_else(|| Fault::Malformed("a propSet has no type".into()))?
                        .to_string(),
                    all: prop.child_bool("all")?.unwrap_or(false),
                    paths: prop
                        .children("pathSet")
                        .map(|p| p.text().to_string())
                        .collect(),
                });
            }
            for object in set.children("objectSet") {
                let mut through_view = false;
                for select in object.children("selectSet") {
                    match (select.child_text("type"), select.child_text("path")) {
                        (Some("ContainerView"), Some("view")) => through_view = true,
                        (kind, path) => {
                            return Err(Fault::NotImplemented(format!(
                                "traversal {}.{} (only ContainerView.view is)",
                                kind.unwrap_or("?"),
                                path.unwrap_or("?")
                            )));
                        }
                    }
                }
                spec.objects.push(ObjSpec {
                    obj: object.child_moref("obj")?,
                    skip: object.child_bool("skip")?.unwrap_or(false),
                    through_view,
                });
            }
        }
        Ok(spec)
    }
}

impl FilterSpec {
    /// Whether the spec reads the CustomFieldsManager's `field`, which the simulator
    /// answers on its own: it is not in the inventory.
    pub(crate) fn reads_custom_fields(&self) -> bool {
        self.objects
            .iter()
            .any(|object| object.obj.kind == "CustomFieldsManager")
            && self.props.iter().any(|p| {
                p.type_name == "CustomFieldsManager"
                    && (p.all || p.paths.iter().any(|path| path == "field"))
            })
    }
}

/// The CustomFieldsManager's `field` as one `ObjectContent` in a `<{tag}>` element: the
/// [`TENANT_FIELD`] definition.
pub(crate) fn write_custom_fields(tag: &str, xml: &mut Xml) {
    let (key, name) = TENANT_FIELD;
    xml.raw("<")
        .raw(tag)
        .raw(r#"><obj type="CustomFieldsManager">CustomFieldsManager</obj>"#)
        .raw(r#"<propSet><name>field</name><val xsi:type="ArrayOfCustomFieldDef"><CustomFieldDef><key>"#)
        .display(key)
        .raw("</key><name>")
        .text(name)
        .raw("</name><type>string</type><managedObjectType>VirtualMachine</managedObjectType></CustomFieldDef></val></propSet></")
        .raw(tag)
        .raw(">");
}

/// Which properties to write for each kind of object; `None`: objects of that kind are
/// not returned at all, as no PropertySpec names their type.
#[derive(Debug)]
struct Plan([Option<Vec<Prop>>; Kind::ALL.len()]);

impl Plan {
    fn new(specs: &[PropSpec]) -> Plan {
        Plan(Kind::ALL.map(|kind| {
            let mut props: Option<Vec<Prop>> = None;
            for spec in specs.iter().filter(|s| kind.is_a(&s.type_name)) {
                let known = Prop::of(kind);
                let wanted: Vec<Prop> = if spec.all {
                    known.collect()
                } else {
                    spec.paths
                        .iter()
                        .filter_map(|path| known.clone().find(|p| p.path() == path))
                        .collect()
                };
                let props = props.get_or_insert_with(Vec::new);
                for prop in wanted {
                    if !props.contains(&prop) {
                        props.push(prop);
                    }
                }
            }
            props
        }))
    }

    fn props(&self, kind: Kind) -> Option<&[Prop]> {
        self.0[kind as usize].as_deref()
    }
}

/// The objects one retrieval returns, frozen at its first call so that every page of it
/// comes from the same moment.
#[derive(Debug)]
pub(crate) struct Selection {
    snapshot: Arc<Snapshot>,
    /// Places then VMs, as one index space (places first): sorted by moref number.
    items: Vec<u32>,
    plan: Plan,
}

impl Selection {
    /// Selects what `spec` asks for from `snapshot`. `views` are the caller's session's
    /// container views by moref.
    pub(crate) fn new(
        estate: &Estate,
        snapshot: Arc<Snapshot>,
        spec: &FilterSpec,
        views: &HashMap<String, View>,
    ) -> Result<Selection, Fault> {
        let plan = Plan::new(&spec.props);
        // Marks instead of a list, and each view expanded once: however often a spec names
        // the same objects, the selection takes one flag per object.
        let mut chosen = vec![false; estate.places.len() + snapshot.vms.len()];
        let mut expanded = HashSet::new();
        for object in &spec.objects {
            if object.obj.kind == "ContainerView" {
                let view = views
                    .get(&object.obj.value)
                    .ok_or_else(|| Fault::NotFound(object.obj.clone()))?;
                // The view itself has no properties the simulator serves; only its contents.
                if object.through_view && expanded.insert(&object.obj.value) {
                    let wanted = |kind: Kind| plan.props(kind).is_some();
                    view_contents(estate, &snapshot, view, &wanted, &mut chosen);
                }
                continue;
            }
            let (index, kind) = find(estate, &snapshot, &object.obj)
                .ok_or_else(|| Fault::NotFound(object.obj.clone()))?;
            if !object.skip && plan.props(kind).is_some() {
                chosen[index] = true;
            }
        }
        let items = (0..chosen.len() as u32)
            .filter(|&i| chosen[i as usize])
            .collect();
        Ok(Selection {
            snapshot,
            items,
            plan,
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    /// Writes the `ObjectContent`s of the items in `range`, each as a `<{tag}>` element.
    pub(crate) fn write(&self, estate: &Estate, range: Range<usize>, tag: &str, xml: &mut Xml) {
        for &item in &self.items[range] {
            let object = Object::at(estate, &self.snapshot, item as usize);
            let props = self.plan.props(object.kind()).unwrap_or_default();
            xml.raw("<").raw(tag).raw(">");
            object.write_ref("obj", xml);
            object.write_props(xml, estate, props, Slot::PropSet);
            xml.raw("</").raw(tag).raw(">");
        }
    }

    /// About how many bytes `count` objects take (a VM with every property the simulator
    /// knows takes about 1.4 KB), to size the response buffer once.
    pub(crate) fn estimate(count: usize) -> usize {
        count * 1500
    }
}

/// An inventory object at one moment, by its index among places then VMs.
enum Object<'a> {
    Place(&'a Place),
    Vm(&'a Vm),
}

impl<'a> Object<'a> {
    fn at(estate: &'a Estate, snapshot: &'a Snapshot, item: usize) -> Object<'a> {
        match item.checked_sub(estate.places.len()) {
            None => Object::Place(&estate.places[item]),
            Some(vm) => Object::Vm(&snapshot.vms[vm]),
        }
    }

    fn kind(&self) -> Kind {
        match self {
            Object::Place(place) => place.kind,
            Object::Vm(_) => Kind::VirtualMachine,
        }
    }

    /// `<{tag} type="{kind}">{moref}</{tag}>`
    fn write_ref(&self, tag: &str, xml: &mut Xml) {
        xml.raw("<")
            .raw(tag)
            .raw(r#" type=""#)
            .raw(self.kind().as_str())
            .raw(r#"">"#);
        match self {
            Object::Place(place) => xml.text(&place.moref),
            Object::Vm(vm) => xml.display(vm.moref()),
        };
        xml.raw("</").raw(tag).raw(">");
    }

    fn write_props(&self, xml: &mut Xml, estate: &Estate, props: &[Prop], slot: Slot) {
        match self {
            Object::Place(place) => write_place(xml, estate, place, props, slot),
            Object::Vm(vm) => write_vm(xml, estate, vm, props, slot),
        }
    }
}

/// Adds the objects of `view` that the plan wants to `items`.
fn view_contents(
    estate: &Estate,
    snapshot: &Snapshot,
    view: &View,
    wanted: &dyn Fn(Kind) -> bool,
    chosen: &mut [bool],
) {
    let shown = |kind: Kind| {
        wanted(kind) && (view.types.is_empty() || view.types.iter().any(|t| kind.is_a(t)))
    };
    let inside = estate.places_inside(view.container, view.recursive);
    let (places, vms) = chosen.split_at_mut(estate.places.len());
    for (i, place) in estate.places.iter().enumerate() {
        places[i] |= inside[i] && shown(place.kind);
    }
    if shown(Kind::VirtualMachine) {
        for (i, vm) in snapshot.vms.iter().enumerate() {
            vms[i] |= estate.vm_inside(vm, view.container, view.recursive, &inside);
        }
    }
}

/// The item index and kind of the object `obj` names, if it exists now.
fn find(estate: &Estate, snapshot: &Snapshot, obj: &MoRef) -> Option<(usize, Kind)> {
    if obj.kind == Kind::VirtualMachine.as_str() {
        let number = estate.vm_number(&obj.value)?;
        let index = snapshot.find(number)?;
        return Some((estate.places.len() + index, Kind::VirtualMachine));
    }
    let index = estate.place(&obj.value)?;
    let kind = estate.places[index].kind;
    (kind.as_str() == obj.kind).then_some((index, kind))
}

/// Writes property `path` of `obj` as the `returnval` of a Fetch call (pyvmomi's property
/// accessors); nothing when the property is unset.
pub(crate) fn fetch(
    estate: &Estate,
    snapshot: &Snapshot,
    obj: &MoRef,
    path: &str,
    xml: &mut Xml,
) -> Result<(), Fault> {
    let (item, kind) = find(estate, snapshot, obj).ok_or_else(|| Fault::NotFound(obj.clone()))?;
    let prop = Prop::of(kind)
        .find(|p| p.path() == path)
        .ok_or_else(|| Fault::NotImplemented(format!("fetching {}.{path}", kind.as_str())))?;
    Object::at(estate, snapshot, item).write_props(xml, estate, &[prop], Slot::Fetch);
    Ok(())
}

/// Writes what `view` shows as the `returnval` of Fetch(`view`): an array of references.
pub(crate) fn fetch_view(estate: &Estate, snapshot: &Snapshot, view: &View, xml: &mut Xml) {
    let mut chosen = vec![false; estate.places.len() + snapshot.vms.len()];
    view_contents(estate, snapshot, view, &|_| true, &mut chosen);
    xml.raw(r#"<returnval xsi:type="ArrayOfManagedObjectReference">"#);
    for (item, _) in chosen.iter().enumerate().filter(|(_, chosen)| **chosen) {
        Object::at(estate, snapshot, item).write_ref("ManagedObjectReference", xml);
    }
    xml.raw("</returnval>");
}

/// Where a property value goes: into an `ObjectContent` as a `DynamicProperty`, or
/// alone as the `returnval` of Fetch.
#[derive(Debug, Clone, Copy)]
enum Slot {
    PropSet,
    Fetch,
}

fn write_place(xml: &mut Xml, estate: &Estate, place: &Place, props: &[Prop], slot: Slot) {
    for &prop in props {
        match prop {
            Prop::Name => string(xml, slot, prop, &place.name),
            Prop::Parent => reference(xml, slot, prop, estate, place.parent),
            _ => {}
        }
    }
}

/// `config.managedBy` of the placeholder VMs Site Recovery Manager creates.
const SRM_PLACEHOLDER: &str =
    "<extensionKey>com.vmware.vcDr</extensionKey><type>placeholderVm</type>";

fn write_vm(xml: &mut Xml, estate: &Estate, vm: &Vm, props: &[Prop], slot: Slot) {
    for &prop in props {
        let mut value = |xsi_type: &str, value: &dyn Display| {
            open(xml, slot, prop, xsi_type).raw(">").display(value);
            close(xml, slot);
        };
        match prop {
            Prop::Name => value("xsd:string", &vm.name()),
            Prop::Uuid => value("xsd:string", &vm.uuid()),
            Prop::InstanceUuid => value("xsd:string", &vm.instance_uuid()),
            Prop::NumCpu => value("xsd:int", &vm.num_cpu),
            Prop::MemoryMb => value("xsd:int", &vm.memory_mb),
            Prop::Committed => value("xsd:long", &vm.committed),
            Prop::Uncommitted => value("xsd:long", &vm.uncommitted),
            Prop::Template => value("xsd:boolean", &vm.template),
            Prop::PowerState => value("VirtualMachinePowerState", &vm.power.as_str()),
            Prop::CreateDate => {
                if let Some(date) = vm.create_date {
                    value("xsd:dateTime", &DateTime(date));
                }
            }
            Prop::ManagedBy => {
                if vm.placeholder {
                    value("ManagedByInfo", &SRM_PLACEHOLDER);
                }
            }
            Prop::Parent => reference(xml, slot, prop, estate, vm.folder),
            Prop::ResourcePool => reference(xml, slot, prop, estate, vm.pool),
            Prop::Host => reference(xml, slot, prop, estate, Some(vm.host)),
            // Unset when the VM has no custom value, as the other unset properties.
            Prop::CustomValue => {
                if let Some(tenant) = vm.tenant {
                    open(xml, slot, prop, "ArrayOfCustomFieldValue")
                        .raw(r#"><CustomFieldValue xsi:type="CustomFieldStringValue"><key>"#)
                        .display(TENANT_FIELD.0)
                        .raw("</key><value>")
                        .text(tenant)
                        .raw("</value></CustomFieldValue>");
                    close(xml, slot);
                }
            }
        }
    }
}

/// Opens a value of type `xsi_type`, leaving its start tag open for more attributes.
/// Values written into it must need no escaping (numbers, enums, generated names, or
/// fixed markup), or go through [`Xml::text`].
fn open<'x>(xml: &'x mut Xml, slot: Slot, prop: Prop, xsi_type: &str) -> &'x mut Xml {
    match slot {
        Slot::PropSet => xml
            .raw("<propSet><name>")
            .raw(prop.path())
            .raw(r#"</name><val xsi:type=""#),
        Slot::Fetch => xml.raw(r#"<returnval xsi:type=""#),
    }
    .raw(xsi_type)
    .raw(r#"""#)
}

fn close(xml: &mut Xml, slot: Slot) {
    xml.raw(match slot {
        Slot::PropSet => "</val></propSet>",
        Slot::Fetch => "</returnval>",
    });
}

fn string(xml: &mut Xml, slot: Slot, prop: Prop, text: &str) {
    open(xml, slot, prop, "xsd:string").raw(">").text(text);
    close(xml, slot);
}

/// A reference to a place; left out when unset.
fn reference(xml: &mut Xml, slot: Slot, prop: Prop, estate: &Estate, place: Option<usize>) {
    let Some(place) = place.map(|p| &estate.places[p]) else {
        return;
    };
    open(xml, slot, prop, "ManagedObjectReference")
        .raw(r#" type=""#)
        .raw(place.kind.as_str())
        .raw(r#"">"#)
        .text(&place.moref);
    close(xml, slot);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::soap::parse_call;

    fn spec(body: &str) -> Result<FilterSpec, Fault> {
        let envelope = format!(
            r#"<Envelope><Body><RetrievePropertiesEx><_this type="PropertyCollector">propertyCollector</_this><specSet>{body}<objectSet><obj type="Folder">group-d1</obj></objectSet></specSet></RetrievePropertiesEx></Body></Envelope>"#
        );
        FilterSpec::parse(&parse_call(envelope.as_bytes())?)
    }

    fn plan_of(body: &str) -> Plan {
        Plan::new(&spec(body).unwrap_or_else(|e| panic!("{e}")).props)
    }

    #[test]
    fn a_property_spec_on_a_type_covers_its_subtypes() {
        let plan = plan_of("<propSet><type>ManagedEntity</type><pathSet>name</pathSet></propSet>");
        assert!(
            Kind::ALL
                .iter()
                .all(|k| plan.props(*k) == Some(&[Prop::Name][..]))
        );
        let plan = plan_of(concat!(
            "<propSet><type>ResourcePool</type><pathSet>name</pathSet></propSet>",
            "<propSet><type>ComputeResource</type><pathSet>parent</pathSet></propSet>"
        ));
        assert_eq!(plan.props(Kind::VirtualApp), Some(&[Prop::Name][..]));
        assert_eq!(
            plan.props(Kind::ClusterComputeResource),
            Some(&[Prop::Parent][..])
        );
        assert_eq!(plan.props(Kind::Folder), None);
        assert_eq!(plan.props(Kind::VirtualMachine), None);
    }

    #[test]
    fn properties_come_in_the_order_asked_once_each_and_unknown_ones_are_dropped() {
        let plan = plan_of(concat!(
            "<propSet><type>VirtualMachine</type><pathSet>runtime.host</pathSet>",
            "<pathSet>guest.ipAddress</pathSet><pathSet>name</pathSet></propSet>",
            "<propSet><type>ManagedEntity</type><pathSet>name</pathSet></propSet>"
        ));
        assert_eq!(
            plan.props(Kind::VirtualMachine),
            Some(&[Prop::Host, Prop::Name][..])
        );
        let all = plan_of("<propSet><type>VirtualMachine</type><all>true</all></propSet>");
        assert_eq!(all.props(Kind::VirtualMachine).map(<[Prop]>::len), Some(15));
        assert_eq!(all.props(Kind::HostSystem), None);
    }

    #[test]
    fn traversals_other_than_a_container_view_are_refused_as_not_implemented() {
        let fault = spec(concat!(
            "<propSet><type>VirtualMachine</type></propSet>",
            r#"<objectSet><obj type="Folder">group-d1</obj><selectSet><type>Folder</type>"#,
            "<path>childEntity</path></selectSet></objectSet>"
        ))
        .err();
        assert!(
            matches!(&fault, Some(Fault::NotImplemented(what)) if what.contains("Folder.childEntity")),
            "{fault:?}"
        );
    }
}
