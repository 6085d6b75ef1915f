//! What the collector reads out of each response: the service content, the container view
//! it created, and pages of object properties mapped straight into [`VmProperties`] and
//! [`Places`] as they stream in. Unknown elements and properties are skipped; a value that
//! does not parse is an error naming the object and the property.

use super::model::{
    About, ManagedBy, Moref, Place, PlaceKind, Places, PowerState, Property, VmProperties,
};
use super::xml::{AttributeName, Content, Limits, attribute, excerpt};
use chrono::{DateTime, NaiveDateTime};
use quick_xml::events::BytesStart;
use std::collections::HashMap;

/// The managed objects of a vCenter that every session starts from.
#[derive(Debug, Clone)]
pub(crate) struct ServiceContent {
    pub root_folder: Moref,
    pub property_collector: Moref,
    pub view_manager: Moref,
    pub session_manager: Moref,
    /// Absent on a server without custom fields (an ESXi host answers without one).
    pub custom_fields_manager: Option<Moref>,
    pub about: About,
}

/// Reads the RetrieveServiceContent response.
#[derive(Debug, Default)]
pub(crate) struct ServiceContentReader {
    root_folder: String,
    property_collector: String,
    view_manager: String,
    session_manager: String,
    custom_fields_manager: String,
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
    CustomFieldsManager,
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
            ServiceField::CustomFieldsManager => &mut self.custom_fields_manager,
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
            (Some(ServiceTag::Returnval), b"customFieldsManager") => {
                ServiceField::CustomFieldsManager
            }
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
            custom_fields_manager: Some(self.custom_fields_manager)
                .filter(|value| !value.is_empty())
                .map(|value| Moref {
                    kind: "CustomFieldsManager",
                    value,
                }),
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
    /// Names the custom values of the VMs read.
    fields: &'p CustomFields,
    /// The key and value of the CustomFieldValue being read, and how many the object had.
    custom_key: Option<i64>,
    custom_value: Option<String>,
    custom_values: usize,
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
    CustomValue,
    CustomKey,
    CustomText,
}

impl<'p, 'c> RetrieveResult<'p, 'c> {
    pub(crate) fn new(
        collect: &'p mut Collect<'c>,
        paths: &'static [Property],
        fields: &'p CustomFields,
    ) -> Self {
        RetrieveResult {
            collect,
            paths,
            token: None,
            kind: String::new(),
            object: VmProperties::default(),
            property: None,
            managed_by: empty_managed_by(),
            fields,
            custom_key: None,
            custom_value: None,
            custom_values: 0,
        }
    }

    /// One CustomFieldValue has been read: a string value under a defined key joins the
    /// object's attributes (the last one wins when a key repeats, as govmomi's simulator
    /// appends on every SetField).
    fn finish_custom_value(&mut self) -> Result<(), String> {
        self.custom_values += 1;
        let limits = &self.fields.limits;
        if self.custom_values > limits.attributes {
            return Err(format!(
                "more than {} custom values (the limit on custom attributes)",
                limits.attributes
            ));
        }
        let key = self.custom_key.take();
        let value = self.custom_value.take();
        if let (Some(key), Some(value)) = (key, value)
            && let Some(name) = self.fields.names.get(&key)
        {
            self.object.attributes.insert(name.clone(), value);
        }
        Ok(())
    }

    /// `problem` as an error naming the object and the property being read.
    fn in_property(&self, problem: String) -> String {
        let path = self.property.map_or("", Property::path);
        format!("{} {}: {path}: {problem}", self.kind, self.object.moref)
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
            // Read value by value as they close.
            Property::CustomValue => {}
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
        let custom_value = self.property == Some(Property::CustomValue);
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
                self.custom_values = 0;
                RetrieveTag::PropSet
            }
            (Some(RetrieveTag::PropSet), b"name") => RetrieveTag::PropName,
            // A property not asked for, or a val before its name, is skipped.
            (Some(RetrieveTag::PropSet), b"val") if self.property.is_some() => RetrieveTag::Val,
            (Some(RetrieveTag::Val), b"extensionKey") if managed_by => RetrieveTag::ExtensionKey,
            (Some(RetrieveTag::Val), b"type") if managed_by => RetrieveTag::ManagedByType,
            // Each element of ArrayOfCustomFieldValue, whatever its element name.
            (Some(RetrieveTag::Val), _) if custom_value => {
                self.custom_key = None;
                self.custom_value = None;
                RetrieveTag::CustomValue
            }
            (Some(RetrieveTag::CustomValue), b"key") => RetrieveTag::CustomKey,
            (Some(RetrieveTag::CustomValue), b"value") => RetrieveTag::CustomText,
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
            RetrieveTag::CustomKey => {
                let key = integer(text).map_err(|problem| self.in_property(problem))?;
                self.custom_key = Some(key);
            }
            RetrieveTag::CustomText => {
                let value = attribute_text(text, &self.fields.limits, "value")
                    .map_err(|problem| self.in_property(problem))?;
                self.custom_value = Some(value);
            }
            RetrieveTag::CustomValue => self
                .finish_custom_value()
                .map_err(|problem| self.in_property(problem))?,
            RetrieveTag::Objects => self.finish_object()?,
            RetrieveTag::Returnval | RetrieveTag::PropSet => {}
        }
        Ok(())
    }

    fn finish(self) -> Result<Option<String>, String> {
        Ok(self.token.filter(|token| !token.is_empty()))
    }
}

/// The custom field definitions of a vCenter (`CustomFieldsManager.field`) by key, and the
/// limits on the custom values read with them.
#[derive(Debug, Clone, Default)]
pub(crate) struct CustomFields {
    names: HashMap<i64, String>,
    limits: Limits,
}

impl CustomFields {
    /// No definitions: every custom value is left out (a server without a
    /// CustomFieldsManager, or a retrieval that reads none).
    pub(crate) fn none(limits: Limits) -> CustomFields {
        CustomFields {
            names: HashMap::new(),
            limits,
        }
    }
}

/// Reads the RetrievePropertiesEx response for `CustomFieldsManager.field`:
/// `<returnval><objects><obj/><propSet><name>field</name><val><CustomFieldDef><key>…</key>
/// <name>…</name>…`.
pub(crate) struct FieldDefsReader {
    fields: CustomFields,
    key: Option<i64>,
    name: Option<String>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum FieldDefsTag {
    Returnval,
    Objects,
    PropSet,
    Val,
    Def,
    Key,
    Name,
}

impl FieldDefsReader {
    pub(crate) fn new(limits: Limits) -> Self {
        FieldDefsReader {
            fields: CustomFields::none(limits),
            key: None,
            name: None,
        }
    }
}

impl Content for FieldDefsReader {
    type Tag = FieldDefsTag;
    type Output = CustomFields;

    fn open(
        &mut self,
        parent: Option<FieldDefsTag>,
        start: &BytesStart<'_>,
    ) -> Result<Option<FieldDefsTag>, String> {
        use FieldDefsTag as T;
        let tag = match (parent, start.local_name().as_ref()) {
            (None, b"returnval") => T::Returnval,
            (Some(T::Returnval), b"objects") => T::Objects,
            (Some(T::Objects), b"propSet") => T::PropSet,
            (Some(T::PropSet), b"val") => T::Val,
            (Some(T::Val), _) => {
                self.key = None;
                self.name = None;
                T::Def
            }
            (Some(T::Def), b"key") => T::Key,
            (Some(T::Def), b"name") => T::Name,
            _ => return Ok(None),
        };
        Ok(Some(tag))
    }

    fn close(&mut self, tag: FieldDefsTag, text: &str) -> Result<(), String> {
        let limits = self.fields.limits;
        let in_def = |problem: String| format!("CustomFieldsManager: field: {problem}");
        match tag {
            FieldDefsTag::Key => self.key = Some(integer(text).map_err(in_def)?),
            FieldDefsTag::Name => {
                self.name = Some(attribute_text(text, &limits, "name").map_err(in_def)?)
            }
            FieldDefsTag::Def => {
                if let (Some(key), Some(name)) = (self.key.take(), self.name.take()) {
                    if self.fields.names.len() >= limits.attributes {
                        return Err(in_def(format!(
                            "more than {} custom field definitions (the limit on custom attributes)",
                            limits.attributes
                        )));
                    }
                    self.fields.names.insert(key, name);
                }
            }
            FieldDefsTag::Returnval
            | FieldDefsTag::Objects
            | FieldDefsTag::PropSet
            | FieldDefsTag::Val => {}
        }
        Ok(())
    }

    fn finish(self) -> Result<CustomFields, String> {
        Ok(self.fields)
    }
}

/// A custom field name or value, within [`Limits::attribute_bytes`].
fn attribute_text(text: &str, limits: &Limits, what: &str) -> Result<String, String> {
    if text.len() > limits.attribute_bytes {
        return Err(format!(
            "a custom attribute {what} of {} bytes is over the limit of {} bytes ({:?})",
            text.len(),
            limits.attribute_bytes,
            excerpt(text, 40)
        ));
    }
    Ok(text.to_owned())
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::vsphere::Error;
    use crate::vsphere::xml::{Exchange, read_response};
    use std::collections::BTreeMap;

    const URL: &str = "https://vc.example.com/sdk";

    /// Two VMs in vCenter's style (default namespace, `xsi:` types) and a token.
    pub(crate) const PAGE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenc="http://schemas.xmlsoap.org/soap/encoding/" xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<soapenv:Body>
<RetrievePropertiesExResponse xmlns="urn:vim25"><returnval><token>52b6&amp;1</token>
<objects><obj type="VirtualMachine">vm-42</obj>
<propSet><name>config.createDate</name><val xsi:type="xsd:dateTime">2024-03-01T12:34:56.789123Z</val></propSet>
<propSet><name>config.hardware.memoryMB</name><val xsi:type="xsd:int">4096</val></propSet>
<propSet><name>config.hardware.numCPU</name><val xsi:type="xsd:int">2</val></propSet>
<propSet><name>config.instanceUuid</name><val xsi:type="xsd:string">5032c8a5-9d4e-4c2b-8f5e-1b2c3d4e5f60</val></propSet>
<propSet><name>config.managedBy</name><val xsi:type="ManagedByInfo"><extensionKey>com.vmware.vcDr</extensionKey><type>placeholderVm</type></val></propSet>
<propSet><name>config.template</name><val xsi:type="xsd:boolean">false</val></propSet>
<propSet><name>config.uuid</name><val xsi:type="xsd:string">4232c8a5-9d4e-4c2b-8f5e-1b2c3d4e5f60</val></propSet>
<propSet><name>name</name><val xsi:type="xsd:string">app-01</val></propSet>
<propSet><name>parent</name><val type="Folder" xsi:type="ManagedObjectReference">group-v9</val></propSet>
<propSet><name>resourcePool</name><val type="ResourcePool" xsi:type="ManagedObjectReference">resgroup-12</val></propSet>
<propSet><name>runtime.host</name><val type="HostSystem" xsi:type="ManagedObjectReference">host-8</val></propSet>
<propSet><name>runtime.powerState</name><val xsi:type="VirtualMachinePowerState">poweredOn</val></propSet>
<propSet><name>summary.storage.committed</name><val xsi:type="xsd:long">21474836480</val></propSet>
<propSet><name>summary.storage.uncommitted</name><val xsi:type="xsd:long">1073741824</val></propSet>
</objects>
<objects><obj type="VirtualMachine">vm-43</obj>
<propSet><name>config.template</name><val xsi:type="xsd:boolean">true</val></propSet>
<propSet><name>name</name><val xsi:type="xsd:string">Ünïcode &amp; &lt;tmpl&gt; &#x263A;<![CDATA[ <raw> ]]></val></propSet>
<propSet><name>runtime.powerState</name><val xsi:type="VirtualMachinePowerState">poweredOff</val></propSet>
</objects>
</returnval></RetrievePropertiesExResponse>
</soapenv:Body>
</soapenv:Envelope>"#;

    pub(crate) fn vm_42() -> VmProperties {
        VmProperties {
            moref: "vm-42".into(),
            name: Some("app-01".into()),
            uuid: Some("4232c8a5-9d4e-4c2b-8f5e-1b2c3d4e5f60".into()),
            instance_uuid: Some("5032c8a5-9d4e-4c2b-8f5e-1b2c3d4e5f60".into()),
            num_cpu: Some(2),
            memory_mb: Some(4096),
            storage_committed: Some(21_474_836_480),
            storage_uncommitted: Some(1_073_741_824),
            template: Some(false),
            power_state: Some(PowerState::PoweredOn),
            create_date: Some(1_709_296_496),
            managed_by: Some(ManagedBy {
                extension_key: "com.vmware.vcDr".into(),
                kind: "placeholderVm".into(),
            }),
            resource_pool: Some("resgroup-12".into()),
            parent: Some("group-v9".into()),
            host: Some("host-8".into()),
            attributes: BTreeMap::new(),
        }
    }

    /// One page of VMs read from `body` as the response to RetrievePropertiesEx.
    pub(crate) async fn read_vms(
        body: &[u8],
    ) -> Result<(Vec<VmProperties>, Option<String>), Error> {
        read_vms_with(body, &CustomFields::none(Limits::default())).await
    }

    /// [`read_vms`] with custom field definitions.
    async fn read_vms_with(
        body: &[u8],
        fields: &CustomFields,
    ) -> Result<(Vec<VmProperties>, Option<String>), Error> {
        let mut vms = Vec::new();
        let exchange = Exchange {
            url: URL,
            call: "RetrievePropertiesEx",
        };
        let mut collect = Collect::Vms(&mut vms);
        let page = RetrieveResult::new(&mut collect, &Property::VM, fields);
        let token = read_response(body, exchange, page).await?;
        Ok((vms, token))
    }

    /// `CostCenter` (101) and `Tenant` (102), within `limits`.
    fn two_fields(limits: Limits) -> CustomFields {
        CustomFields {
            names: HashMap::from([(101, "CostCenter".into()), (102, "Tenant".into())]),
            limits,
        }
    }

    /// vm-42 of [`PAGE`] with `values` as its customValue (CustomFieldValue elements).
    fn page_with_custom_values(values: &str) -> String {
        PAGE.replace(
            "<objects><obj type=\"VirtualMachine\">vm-42</obj>",
            &format!(
                "<objects><obj type=\"VirtualMachine\">vm-42</obj><propSet><name>customValue</name><val xsi:type=\"ArrayOfCustomFieldValue\">{values}</val></propSet>"
            ),
        )
    }

    fn custom_value(key: &str, value: &str) -> String {
        format!(
            "<CustomFieldValue xsi:type=\"CustomFieldStringValue\"><key>{key}</key><value>{value}</value></CustomFieldValue>"
        )
    }

    #[tokio::test]
    async fn custom_values_are_named_by_their_field_definitions() {
        let values = [
            custom_value("101", "4711"),
            custom_value("102", "acme"),
            // No definition: left out.
            custom_value("999", "orphan"),
            // govmomi's simulator appends on every SetField: the last value wins.
            custom_value(" 102 ", "acme &amp; co"),
        ]
        .concat();
        let body = page_with_custom_values(&values);
        let (vms, _) = read_vms_with(body.as_bytes(), &two_fields(Limits::default()))
            .await
            .unwrap();
        let expected = BTreeMap::from([
            ("CostCenter".to_string(), "4711".to_string()),
            ("Tenant".to_string(), "acme & co".to_string()),
        ]);
        assert_eq!(vms[0].attributes, expected);
        assert_eq!(
            VmProperties {
                attributes: BTreeMap::new(),
                ..vms[0].clone()
            },
            vm_42(),
            "the other properties are read as before"
        );
        assert!(vms[1].attributes.is_empty());
        let (vms, _) = read_vms(body.as_bytes()).await.unwrap();
        assert!(
            vms[0].attributes.is_empty(),
            "without definitions no value has a name"
        );
    }

    #[tokio::test]
    async fn custom_values_over_their_limits_are_errors_naming_the_vm() {
        let limits = Limits {
            attributes: 2,
            attribute_bytes: 8,
            ..Limits::default()
        };
        let fields = two_fields(limits);
        let within = [custom_value("101", "12345678"), custom_value("102", "x")].concat();
        let (vms, _) = read_vms_with(page_with_custom_values(&within).as_bytes(), &fields)
            .await
            .unwrap();
        assert_eq!(vms[0].attributes.len(), 2, "exactly at both limits");
        let too_many = [
            custom_value("101", "a"),
            custom_value("102", "b"),
            custom_value("999", "c"),
        ]
        .concat();
        let too_long = custom_value("101", "123456789");
        let bad_key = custom_value("ten", "a");
        for (values, expected) in [
            (too_many, "more than 2 custom values"),
            (too_long, "9 bytes is over the limit of 8 bytes"),
            (bad_key, "\"ten\" is not an integer"),
        ] {
            let body = page_with_custom_values(&values);
            let error = read_vms_with(body.as_bytes(), &fields).await.unwrap_err();
            let message = error.to_string();
            assert!(matches!(error, Error::Parse { .. }), "{message}");
            for part in ["VirtualMachine vm-42", "customValue", expected] {
                assert!(message.contains(part), "{part}: {message}");
            }
        }
    }

    /// A `CustomFieldsManager.field` response with `defs` in its val.
    fn field_defs_response(defs: &str) -> String {
        format!(
            r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><RetrievePropertiesExResponse xmlns="urn:vim25"><returnval><objects><obj type="CustomFieldsManager">CustomFieldsManager</obj><propSet><name>field</name><val xsi:type="ArrayOfCustomFieldDef">{defs}</val></propSet></objects></returnval></RetrievePropertiesExResponse></soapenv:Body></soapenv:Envelope>"#
        )
    }

    fn field_def(key: &str, name: &str) -> String {
        format!(
            "<CustomFieldDef><key>{key}</key><name>{name}</name><type>string</type><managedObjectType>VirtualMachine</managedObjectType><fieldDefPrivileges><createPrivilege>System.Read</createPrivilege></fieldDefPrivileges></CustomFieldDef>"
        )
    }

    async fn read_field_defs(body: &str, limits: Limits) -> Result<CustomFields, Error> {
        let exchange = Exchange {
            url: URL,
            call: "RetrievePropertiesEx",
        };
        read_response(body.as_bytes(), exchange, FieldDefsReader::new(limits)).await
    }

    #[tokio::test]
    async fn field_definitions_are_read_by_key_within_their_limits() {
        let defs = [field_def("101", "CostCenter"), field_def("102", "Tenant")].concat();
        let fields = read_field_defs(&field_defs_response(&defs), Limits::default())
            .await
            .unwrap();
        assert_eq!(
            fields.names,
            HashMap::from([(101, "CostCenter".into()), (102, "Tenant".into())])
        );
        let empty = read_field_defs(&field_defs_response(""), Limits::default())
            .await
            .unwrap();
        assert!(empty.names.is_empty());

        let one = Limits {
            attributes: 1,
            ..Limits::default()
        };
        let error = read_field_defs(&field_defs_response(&defs), one)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("CustomFieldsManager: field: more than 1 custom field definitions"),
            "{error}"
        );
        let short = Limits {
            attribute_bytes: 6,
            ..Limits::default()
        };
        let error = read_field_defs(&field_defs_response(&defs), short)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("a custom attribute name of 10 bytes is over the limit of 6 bytes"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_page_with_a_token_returns_it_with_its_vms() {
        let (vms, token) = read_vms(PAGE.as_bytes()).await.unwrap();
        assert_eq!(token.as_deref(), Some("52b6&1"));
        assert_eq!(vms.len(), 2);
        assert_eq!(vms[0], vm_42());
        let template = VmProperties {
            moref: "vm-43".into(),
            name: Some("Ünïcode & <tmpl> ☺ <raw> ".into()),
            template: Some(true),
            power_state: Some(PowerState::PoweredOff),
            ..VmProperties::default()
        };
        assert_eq!(vms[1], template, "unset properties are None");
    }

    #[tokio::test]
    async fn the_last_page_has_no_token_whatever_the_prefixes() {
        let body = r#"<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/" xmlns:i="http://www.w3.org/2001/XMLSchema-instance"><S:Body><vim25:ContinueRetrievePropertiesExResponse xmlns:vim25="urn:vim25"><vim25:returnval><vim25:objects><vim25:obj type="VirtualMachine">vm-7</vim25:obj><vim25:propSet><vim25:name>config.hardware.numCPU</vim25:name><vim25:val i:type="xsd:int">8</vim25:val></vim25:propSet></vim25:objects></vim25:returnval></vim25:ContinueRetrievePropertiesExResponse></S:Body></S:Envelope>"#;
        let mut vms = Vec::new();
        let exchange = Exchange {
            url: URL,
            call: "ContinueRetrievePropertiesEx",
        };
        let mut collect = Collect::Vms(&mut vms);
        let fields = CustomFields::none(Limits::default());
        let page = RetrieveResult::new(&mut collect, &Property::VM, &fields);
        let token = read_response(body.as_bytes(), exchange, page)
            .await
            .unwrap();
        assert_eq!(token, None);
        assert_eq!(vms.len(), 1);
        assert_eq!((vms[0].moref.as_str(), vms[0].num_cpu), ("vm-7", Some(8)));
    }

    #[tokio::test]
    async fn an_empty_result_has_no_objects_and_no_token() {
        for response in [
            "<RetrievePropertiesExResponse xmlns=\"urn:vim25\"></RetrievePropertiesExResponse>",
            "<RetrievePropertiesExResponse xmlns=\"urn:vim25\"/>",
        ] {
            let body = format!(
                "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\"><soapenv:Body>{response}</soapenv:Body></soapenv:Envelope>"
            );
            assert_eq!(read_vms(body.as_bytes()).await.unwrap(), (vec![], None));
        }
    }

    #[tokio::test]
    async fn unknown_properties_and_elements_are_skipped() {
        let body = PAGE.replace(
            "<objects><obj type=\"VirtualMachine\">vm-42</obj>",
            concat!(
                "<objects><obj type=\"VirtualMachine\">vm-42</obj><futureField>1</futureField>",
                "<propSet><name>guest.net</name><val xsi:type=\"ArrayOfGuestNicInfo\"><GuestNicInfo>",
                "<ipAddress>10.0.0.1</ipAddress></GuestNicInfo></val></propSet>",
                "<missingSet><path>config.hardware.device</path><fault><fault xsi:type=\"NoPermission\"/></fault></missingSet>",
            ),
        );
        let body = body.replace(
            "<token>",
            "<other xsi:type=\"Thing\"><objects><obj type=\"VirtualMachine\">vm-99</obj></objects></other><token>",
        );
        let (vms, token) = read_vms(body.as_bytes()).await.unwrap();
        assert_eq!(vms.len(), 2);
        assert_eq!(vms[0], vm_42());
        assert_eq!(token.as_deref(), Some("52b6&1"));
    }

    #[tokio::test]
    async fn objects_of_other_types_are_not_vms() {
        let body = PAGE.replace(
            r#"<obj type="VirtualMachine">vm-43</obj>"#,
            r#"<obj type="Folder">group-v3</obj>"#,
        );
        let (vms, _) = read_vms(body.as_bytes()).await.unwrap();
        assert_eq!(vms, vec![vm_42()]);
    }

    #[tokio::test]
    async fn an_unparsable_number_names_the_call_the_object_and_the_property() {
        for bad in ["99999999999999999999999", "abc", "", "2.5"] {
            let body = PAGE.replace(
                r#"<val xsi:type="xsd:int">2</val>"#,
                &format!(r#"<val xsi:type="xsd:int">{bad}</val>"#),
            );
            match read_vms(body.as_bytes()).await {
                Err(error @ Error::Parse { .. }) => {
                    let message = error.to_string();
                    for part in ["RetrievePropertiesEx", "vm-42", "config.hardware.numCPU"] {
                        assert!(message.contains(part), "{message}");
                    }
                    assert!(!error.is_transient());
                }
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn an_unknown_power_state_or_boolean_is_an_error() {
        let body = PAGE.replace(">poweredOn<", ">poweredSideways<");
        assert!(matches!(
            read_vms(body.as_bytes()).await,
            Err(Error::Parse { .. })
        ));
        let body = PAGE.replace(">false<", ">maybe<");
        assert!(matches!(
            read_vms(body.as_bytes()).await,
            Err(Error::Parse { .. })
        ));
    }

    #[tokio::test]
    async fn an_object_without_obj_is_an_error() {
        let body = PAGE.replace(r#"<obj type="VirtualMachine">vm-43</obj>"#, "");
        assert!(matches!(
            read_vms(body.as_bytes()).await,
            Err(Error::Parse { .. })
        ));
    }

    #[tokio::test]
    async fn virtual_apps_and_resource_pools_are_places() {
        let body = r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><RetrievePropertiesExResponse xmlns="urn:vim25"><returnval>
<objects><obj type="Folder">group-d1</obj><propSet><name>name</name><val xsi:type="xsd:string">Datacenters</val></propSet></objects>
<objects><obj type="Datacenter">datacenter-3</obj><propSet><name>name</name><val xsi:type="xsd:string">DC1</val></propSet><propSet><name>parent</name><val type="Folder" xsi:type="ManagedObjectReference">group-d1</val></propSet></objects>
<objects><obj type="ClusterComputeResource">domain-c7</obj><propSet><name>name</name><val xsi:type="xsd:string">Cluster-A</val></propSet><propSet><name>parent</name><val type="Folder" xsi:type="ManagedObjectReference">group-h5</val></propSet></objects>
<objects><obj type="ResourcePool">resgroup-12</obj><propSet><name>name</name><val xsi:type="xsd:string">Gold</val></propSet><propSet><name>parent</name><val type="ResourcePool" xsi:type="ManagedObjectReference">resgroup-8</val></propSet></objects>
<objects><obj type="VirtualApp">resgroup-v20</obj><propSet><name>name</name><val xsi:type="xsd:string">Shop vApp</val></propSet><propSet><name>parent</name><val type="ResourcePool" xsi:type="ManagedObjectReference">resgroup-12</val></propSet></objects>
<objects><obj type="StoragePod">group-p1</obj><propSet><name>name</name><val xsi:type="xsd:string">Pod</val></propSet></objects>
</returnval></RetrievePropertiesExResponse></soapenv:Body></soapenv:Envelope>"#;
        let mut places = Places::default();
        let exchange = Exchange {
            url: URL,
            call: "RetrievePropertiesEx",
        };
        let mut collect = Collect::Places(&mut places);
        let fields = CustomFields::none(Limits::default());
        let page = RetrieveResult::new(&mut collect, &Property::PLACE, &fields);
        let token = read_response(body.as_bytes(), exchange, page)
            .await
            .unwrap();
        assert_eq!(token, None);
        assert_eq!(places.len(), 5, "kinds that are not places are left out");
        let vapp = places.get("resgroup-v20").unwrap();
        assert_eq!(
            (vapp.kind, vapp.name.as_str(), vapp.parent.as_deref()),
            (PlaceKind::VirtualApp, "Shop vApp", Some("resgroup-12"))
        );
        assert_eq!(
            places.get("resgroup-12").unwrap().kind,
            PlaceKind::ResourcePool
        );
        assert_eq!(places.get("group-d1").unwrap().parent, None);
        assert_eq!(
            places.datacenter_of("domain-c7"),
            None,
            "group-h5 was not returned"
        );
    }

    #[tokio::test]
    async fn service_content_gives_the_managers_and_about() {
        let body = r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenc="http://schemas.xmlsoap.org/soap/encoding/" xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<soapenv:Body>
<RetrieveServiceContentResponse xmlns="urn:vim25"><returnval><rootFolder type="Folder">group-d1</rootFolder><propertyCollector type="PropertyCollector">propertyCollector</propertyCollector><viewManager type="ViewManager">ViewManager</viewManager><about><name>VMware vCenter Server</name><fullName>VMware vCenter Server 8.0.2 build-22617221</fullName><vendor>VMware, Inc.</vendor><version>8.0.2</version><patchLevel></patchLevel><build>22617221</build><localeVersion>INTL</localeVersion><localeBuild>000</localeBuild><osType>linux-x64</osType><productLineId>vpx</productLineId><apiType>VirtualCenter</apiType><apiVersion>8.0.2.0</apiVersion><instanceUuid>0b4b2f63-7f0e-4c39-9d1a-33c1e2a77f10</instanceUuid><licenseProductName>VMware VirtualCenter Server</licenseProductName><licenseProductVersion>8.0</licenseProductVersion></about><setting type="OptionManager">VpxSettings</setting><userDirectory type="UserDirectory">UserDirectory</userDirectory><sessionManager type="SessionManager">SessionManager</sessionManager><authorizationManager type="AuthorizationManager">AuthorizationManager</authorizationManager></returnval></RetrieveServiceContentResponse>
</soapenv:Body>
</soapenv:Envelope>"#;
        let exchange = Exchange {
            url: URL,
            call: "RetrieveServiceContent",
        };
        let content = read_response(body.as_bytes(), exchange, ServiceContentReader::default())
            .await
            .unwrap();
        assert_eq!(content.root_folder.value, "group-d1");
        assert_eq!(content.property_collector.value, "propertyCollector");
        assert_eq!(content.view_manager.value, "ViewManager");
        assert_eq!(content.custom_fields_manager, None, "not in this response");
        assert_eq!(
            (
                content.session_manager.kind,
                content.session_manager.value.as_str()
            ),
            ("SessionManager", "SessionManager")
        );
        assert_eq!(
            content.about,
            About {
                name: "VMware vCenter Server".into(),
                full_name: "VMware vCenter Server 8.0.2 build-22617221".into(),
                version: "8.0.2".into(),
                build: "22617221".into(),
                api_type: "VirtualCenter".into(),
                api_version: "8.0.2.0".into(),
                instance_uuid: "0b4b2f63-7f0e-4c39-9d1a-33c1e2a77f10".into(),
            }
        );

        let with_custom_fields = body.replace(
            "<setting ",
            r#"<customFieldsManager type="CustomFieldsManager">CustomFieldsManager</customFieldsManager><setting "#,
        );
        let content = read_response(
            with_custom_fields.as_bytes(),
            exchange,
            ServiceContentReader::default(),
        )
        .await
        .unwrap();
        assert_eq!(
            content.custom_fields_manager,
            Some(Moref {
                kind: "CustomFieldsManager",
                value: "CustomFieldsManager".into()
            })
        );

        let without_view_manager = body.replace(
            r#"<viewManager type="ViewManager">ViewManager</viewManager>"#,
            "",
        );
        let error = read_response(
            without_view_manager.as_bytes(),
            exchange,
            ServiceContentReader::default(),
        )
        .await
        .unwrap_err();
        assert!(error.to_string().contains("ViewManager"), "{error}");
    }

    #[tokio::test]
    async fn a_created_view_is_read_as_a_reference() {
        let body = r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><CreateContainerViewResponse xmlns="urn:vim25"><returnval type="ContainerView">session[52f1e0c7-1b2a-7d3e-4f5a-6b7c8d9e0f1a]52c4</returnval></CreateContainerViewResponse></soapenv:Body></soapenv:Envelope>"#;
        let exchange = Exchange {
            url: URL,
            call: "CreateContainerView",
        };
        let view = read_response(body.as_bytes(), exchange, MorefReader::new("ContainerView"))
            .await
            .unwrap();
        assert_eq!(
            (view.kind, view.value.as_str()),
            (
                "ContainerView",
                "session[52f1e0c7-1b2a-7d3e-4f5a-6b7c8d9e0f1a]52c4"
            )
        );
    }

    #[test]
    fn create_dates_accept_fractions_and_offsets() {
        let cases = [
            ("2024-03-01T12:34:56Z", 1_709_296_496),
            ("2024-03-01T12:34:56.789123Z", 1_709_296_496),
            ("2024-03-01T14:34:56+02:00", 1_709_296_496),
            ("2024-03-01T07:34:56.5-05:00", 1_709_296_496),
            ("2024-03-01T12:34:56", 1_709_296_496),
            ("2024-03-01T12:34:56.123456", 1_709_296_496),
            (" 1970-01-01T00:00:00Z ", 0),
        ];
        for (text, expected) in cases {
            assert_eq!(unix_seconds(text), Ok(expected), "{text}");
        }
        for bad in ["", "yesterday", "2024-13-01T00:00:00Z", "2024-03-01"] {
            assert!(unix_seconds(bad).is_err(), "{bad}");
        }
    }
}
