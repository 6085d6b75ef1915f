//! What the collector reads out of each response: the service content, the container view
//! it created, and pages of object properties mapped straight into [`VmProperties`] and
//! [`Places`] as they stream in. Unknown elements and properties are skipped; a value that
//! does not parse is an error naming the object and the property.

use super::client::About;
use super::model::{ManagedBy, Place, PlaceKind, Places, PowerState, VmProperties};
use super::soap::Moref;
use super::xml::{AttributeName, Content, attribute, excerpt};
use chrono::{DateTime, NaiveDateTime};
use quick_xml::events::BytesStart;

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
}

impl Property {
    /// Everything [`VmProperties`] holds.
    pub(crate) const VM: [Property; 14] = [
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
    ];

    /// What a [`Place`] needs; every ManagedEntity has these two.
    pub(crate) const PLACE: [Property; 2] = [Property::Name, Property::Parent];

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
        }
    }
}

/// The managed objects of a vCenter that every session starts from.
#[derive(Debug, Clone)]
pub(crate) struct ServiceContent {
    pub root_folder: Moref,
    pub property_collector: Moref,
    pub view_manager: Moref,
    pub session_manager: Moref,
    pub about: About,
}

/// Reads the RetrieveServiceContent response.
#[derive(Debug, Default)]
pub(crate) struct ServiceContentReader {
    root_folder: String,
    property_collector: String,
    view_manager: String,
    session_manager: String,
    about: About,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum ServiceTag {
    Returnval,
    About,
    Field(ServiceField),
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum ServiceField {
    RootFolder,
    PropertyCollector,
    ViewManager,
    SessionManager,
    Name,
    FullName,
    Version,
    Build,
    ApiType,
    ApiVersion,
    InstanceUuid,
}

impl ServiceContentReader {
    fn field(&mut self, field: ServiceField) -> &mut String {
        match field {
            ServiceField::RootFolder => &mut self.root_folder,
            ServiceField::PropertyCollector => &mut self.property_collector,
            ServiceField::ViewManager => &mut self.view_manager,
            ServiceField::SessionManager => &mut self.session_manager,
            ServiceField::Name => &mut self.about.name,
            ServiceField::FullName => &mut self.about.full_name,
            ServiceField::Version => &mut self.about.version,
            ServiceField::Build => &mut self.about.build,
            ServiceField::ApiType => &mut self.about.api_type,
            ServiceField::ApiVersion => &mut self.about.api_version,
            ServiceField::InstanceUuid => &mut self.about.instance_uuid,
        }
    }
}

impl Content for ServiceContentReader {
    type Tag = ServiceTag;
    type Output = ServiceContent;

    fn open(
        &mut self,
        parent: Option<ServiceTag>,
        start: &BytesStart<'_>,
    ) -> Result<Option<ServiceTag>, String> {
        let field = match (parent, start.local_name().as_ref()) {
            (None, b"returnval") => return Ok(Some(ServiceTag::Returnval)),
            (Some(ServiceTag::Returnval), b"about") => return Ok(Some(ServiceTag::About)),
            (Some(ServiceTag::Returnval), b"rootFolder") => ServiceField::RootFolder,
            (Some(ServiceTag::Returnval), b"propertyCollector") => ServiceField::PropertyCollector,
            (Some(ServiceTag::Returnval), b"viewManager") => ServiceField::ViewManager,
            (Some(ServiceTag::Returnval), b"sessionManager") => ServiceField::SessionManager,
            (Some(ServiceTag::About), b"name") => ServiceField::Name,
            (Some(ServiceTag::About), b"fullName") => ServiceField::FullName,
            (Some(ServiceTag::About), b"version") => ServiceField::Version,
            (Some(ServiceTag::About), b"build") => ServiceField::Build,
            (Some(ServiceTag::About), b"apiType") => ServiceField::ApiType,
            (Some(ServiceTag::About), b"apiVersion") => ServiceField::ApiVersion,
            (Some(ServiceTag::About), b"instanceUuid") => ServiceField::InstanceUuid,
            _ => return Ok(None),
        };
        Ok(Some(ServiceTag::Field(field)))
    }

    fn close(&mut self, tag: ServiceTag, text: &str) -> Result<(), String> {
        if let ServiceTag::Field(field) = tag {
            *self.field(field) = text.trim().to_owned();
        }
        Ok(())
    }

    fn finish(self) -> Result<ServiceContent, String> {
        let moref = |kind: &'static str, value: String| {
            if value.is_empty() {
                Err(format!("the service content has no {kind}"))
            } else {
                Ok(Moref { kind, value })
            }
        };
        Ok(ServiceContent {
            root_folder: moref("Folder", self.root_folder)?,
            property_collector: moref("PropertyCollector", self.property_collector)?,
            view_manager: moref("ViewManager", self.view_manager)?,
            session_manager: moref("SessionManager", self.session_manager)?,
            about: self.about,
        })
    }
}

/// Reads a response whose `returnval` is one ManagedObjectReference (CreateContainerView).
#[derive(Debug)]
pub(crate) struct MorefReader {
    kind: &'static str,
    value: String,
}

impl MorefReader {
    /// Expects a reference to an object of type `kind`.
    pub(crate) fn new(kind: &'static str) -> Self {
        MorefReader {
            kind,
            value: String::new(),
        }
    }
}

impl Content for MorefReader {
    type Tag = ();
    type Output = Moref;

    fn open(&mut self, parent: Option<()>, start: &BytesStart<'_>) -> Result<Option<()>, String> {
        Ok((parent.is_none() && start.local_name().as_ref() == b"returnval").then_some(()))
    }

    fn close(&mut self, _: (), text: &str) -> Result<(), String> {
        self.value = text.trim().to_owned();
        Ok(())
    }

    fn finish(self) -> Result<Moref, String> {
        if self.value.is_empty() {
            return Err(format!("no {} was returned", self.kind));
        }
        Ok(Moref {
            kind: self.kind,
            value: self.value,
        })
    }
}

/// Where the objects of a property retrieval go.
pub(crate) enum Collect<'c> {
    Vms(&'c mut Vec<VmProperties>),
    Places(&'c mut Places),
    /// Objects are skipped unread; only the paging token matters.
    Nothing,
}

impl Collect<'_> {
    /// Forgets what an interrupted retrieval collected.
    pub(crate) fn clear(&mut self) {
        match self {
            Collect::Vms(vms) => vms.clear(),
            Collect::Places(places) => **places = Places::default(),
            Collect::Nothing => {}
        }
    }
}

/// Reads one page of RetrievePropertiesEx or ContinueRetrievePropertiesEx:
/// `<returnval><token>…</token><objects><obj type="…">…</obj><propSet><name>…</name><val>…`.
/// Its output is the token of the next page, if there is one.
pub(crate) struct RetrieveResult<'p, 'c> {
    collect: &'p mut Collect<'c>,
    /// The properties requested; anything else is skipped.
    paths: &'static [Property],
    token: Option<String>,
    /// The `type` of the current object's `obj`.
    kind: String,
    /// The object being read. `name` and `parent` are ManagedEntity properties, so the same
    /// record serves VMs and inventory objects.
    object: VmProperties,
    /// The property of the current `propSet`, when it is one of `paths`.
    property: Option<Property>,
    /// The fields of a ManagedByInfo value being read.
    managed_by: ManagedBy,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum RetrieveTag {
    Returnval,
    Token,
    Objects,
    Obj,
    PropSet,
    PropName,
    Val,
    ExtensionKey,
    ManagedByType,
}

impl<'p, 'c> RetrieveResult<'p, 'c> {
    pub(crate) fn new(collect: &'p mut Collect<'c>, paths: &'static [Property]) -> Self {
        RetrieveResult {
            collect,
            paths,
            token: None,
            kind: String::new(),
            object: VmProperties::default(),
            property: None,
            managed_by: empty_managed_by(),
        }
    }

    fn set(&mut self, property: Property, text: &str) -> Result<(), String> {
        let object = &mut self.object;
        match property {
            Property::Name => object.name = Some(text.to_owned()),
            Property::Uuid => object.uuid = Some(text.trim().to_owned()),
            Property::InstanceUuid => object.instance_uuid = Some(text.trim().to_owned()),
            Property::NumCpu => object.num_cpu = Some(integer(text)?),
            Property::MemoryMb => object.memory_mb = Some(integer(text)?),
            Property::StorageCommitted => object.storage_committed = Some(integer(text)?),
            Property::StorageUncommitted => object.storage_uncommitted = Some(integer(text)?),
            Property::Template => object.template = Some(boolean(text)?),
            Property::PowerState => {
                let state = PowerState::parse(text.trim())
                    .ok_or_else(|| format!("{:?} is not a power state", excerpt(text, 40)))?;
                object.power_state = Some(state);
            }
            Property::CreateDate => object.create_date = Some(unix_seconds(text)?),
            Property::ManagedBy => {
                object.managed_by =
                    Some(std::mem::replace(&mut self.managed_by, empty_managed_by()))
            }
            Property::ResourcePool => object.resource_pool = Some(text.trim().to_owned()),
            Property::Parent => object.parent = Some(text.trim().to_owned()),
            Property::Host => object.host = Some(text.trim().to_owned()),
        }
        Ok(())
    }

    fn finish_object(&mut self) -> Result<(), String> {
        if self.object.moref.is_empty() {
            return Err("an ObjectContent has no obj".into());
        }
        let object = std::mem::take(&mut self.object);
        match self.collect {
            Collect::Vms(vms) if self.kind == "VirtualMachine" => vms.push(object),
            Collect::Places(places) => {
                if let Some(kind) = PlaceKind::parse(&self.kind) {
                    let place = Place {
                        kind,
                        name: object.name.unwrap_or_default(),
                        parent: object.parent,
                    };
                    places.insert(object.moref, place);
                }
            }
            Collect::Vms(_) | Collect::Nothing => {}
        }
        Ok(())
    }
}

impl Content for RetrieveResult<'_, '_> {
    type Tag = RetrieveTag;
    type Output = Option<String>;

    fn open(
        &mut self,
        parent: Option<RetrieveTag>,
        start: &BytesStart<'_>,
    ) -> Result<Option<RetrieveTag>, String> {
        let managed_by = self.property == Some(Property::ManagedBy);
        let tag = match (parent, start.local_name().as_ref()) {
            (None, b"returnval") => RetrieveTag::Returnval,
            (Some(RetrieveTag::Returnval), b"token") => RetrieveTag::Token,
            (Some(RetrieveTag::Returnval), b"objects") => {
                if matches!(self.collect, Collect::Nothing) {
                    return Ok(None);
                }
                self.object = VmProperties::default();
                self.kind.clear();
                RetrieveTag::Objects
            }
            (Some(RetrieveTag::Objects), b"obj") => {
                self.kind = attribute(start, AttributeName::MorefType)?.unwrap_or_default();
                RetrieveTag::Obj
            }
            (Some(RetrieveTag::Objects), b"propSet") => {
                self.property = None;
                self.managed_by = empty_managed_by();
                RetrieveTag::PropSet
            }
            (Some(RetrieveTag::PropSet), b"name") => RetrieveTag::PropName,
            // A property not asked for, or a val before its name, is skipped.
            (Some(RetrieveTag::PropSet), b"val") if self.property.is_some() => RetrieveTag::Val,
            (Some(RetrieveTag::Val), b"extensionKey") if managed_by => RetrieveTag::ExtensionKey,
            (Some(RetrieveTag::Val), b"type") if managed_by => RetrieveTag::ManagedByType,
            _ => return Ok(None),
        };
        Ok(Some(tag))
    }

    fn close(&mut self, tag: RetrieveTag, text: &str) -> Result<(), String> {
        match tag {
            RetrieveTag::Token => self.token = Some(text.trim().to_owned()),
            RetrieveTag::Obj => self.object.moref = text.trim().to_owned(),
            RetrieveTag::PropName => {
                let path = text.trim();
                self.property = self.paths.iter().copied().find(|p| p.path() == path);
            }
            RetrieveTag::Val => {
                if let Some(property) = self.property {
                    self.set(property, text).map_err(|problem| {
                        format!(
                            "{} {}: {}: {problem}",
                            self.kind,
                            self.object.moref,
                            property.path()
                        )
                    })?;
                }
            }
            RetrieveTag::ExtensionKey => self.managed_by.extension_key = text.trim().to_owned(),
            RetrieveTag::ManagedByType => self.managed_by.kind = text.trim().to_owned(),
            RetrieveTag::Objects => self.finish_object()?,
            RetrieveTag::Returnval | RetrieveTag::PropSet => {}
        }
        Ok(())
    }

    fn finish(self) -> Result<Option<String>, String> {
        Ok(self.token.filter(|token| !token.is_empty()))
    }
}

fn empty_managed_by() -> ManagedBy {
    ManagedBy {
        extension_key: String::new(),
        kind: String::new(),
    }
}

fn integer(text: &str) -> Result<i64, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("{:?} is not an integer", excerpt(text, 40)))
}

fn boolean(text: &str) -> Result<bool, String> {
    match text.trim() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(format!("{:?} is not a boolean", excerpt(text, 40))),
    }
}

/// An `xsd:dateTime` as Unix seconds: fractional seconds are dropped, an offset is applied,
/// and a time without an offset is taken as UTC (vCenter always sends one).
fn unix_seconds(text: &str) -> Result<i64, String> {
    let text = text.trim();
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Ok(time.timestamp());
    }
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .map(|time| time.and_utc().timestamp())
        .map_err(|_| format!("{:?} is not an xsd:dateTime", excerpt(text, 40)))
}
