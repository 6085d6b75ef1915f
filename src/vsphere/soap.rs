//! SOAP 1.1 request envelopes for the vim25 calls the collector makes. Every value written
//! into a request is XML-escaped, so user names, passwords, morefs and tokens can hold any
//! character.

use super::model::{Moref, Property};

/// One call: the vim25 method and its envelope. Not `Debug`: a Login body holds a password.
pub(crate) struct Request {
    pub call: &'static str,
    pub body: String,
}

/// Builds one request envelope: `<Method xmlns="urn:vim25"><_this …>…</_this>…</Method>`.
struct Envelope {
    method: &'static str,
    xml: String,
}

impl Envelope {
    fn new(method: &'static str, this: &Moref) -> Envelope {
        let mut envelope = Envelope {
            method,
            xml: String::with_capacity(1024),
        };
        envelope.xml.push_str(concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?>"#,
            r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/""#,
            r#" xmlns:xsd="http://www.w3.org/2001/XMLSchema""#,
            r#" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">"#,
            "<soapenv:Body><",
        ));
        envelope.xml.push_str(method);
        envelope.xml.push_str(r#" xmlns="urn:vim25">"#);
        envelope.moref("_this", this)
    }

    fn open(mut self, name: &str) -> Envelope {
        self.xml.push('<');
        self.xml.push_str(name);
        self.xml.push('>');
        self
    }

    /// Opens an element whose schema type is a subtype of the declared one.
    fn open_typed(mut self, name: &str, xsi_type: &str) -> Envelope {
        self.xml.push('<');
        self.xml.push_str(name);
        self.xml.push_str(r#" xsi:type=""#);
        push_escaped(&mut self.xml, xsi_type);
        self.xml.push_str(r#"">"#);
        self
    }

    fn close(mut self, name: &str) -> Envelope {
        self.xml.push_str("</");
        self.xml.push_str(name);
        self.xml.push('>');
        self
    }

    fn text(self, name: &str, value: &str) -> Envelope {
        let mut envelope = self.open(name);
        push_escaped(&mut envelope.xml, value);
        envelope.close(name)
    }

    fn moref(mut self, name: &str, moref: &Moref) -> Envelope {
        self.xml.push('<');
        self.xml.push_str(name);
        self.xml.push_str(r#" type=""#);
        push_escaped(&mut self.xml, moref.kind);
        self.xml.push_str(r#"">"#);
        push_escaped(&mut self.xml, &moref.value);
        self.close(name)
    }

    fn finish(mut self) -> Request {
        self.xml.push_str("</");
        self.xml.push_str(self.method);
        self.xml.push_str("></soapenv:Body></soapenv:Envelope>");
        Request {
            call: self.method,
            body: self.xml,
        }
    }
}

/// Appends `text` escaped for element content and attribute values. `\r` is written as a
/// character reference because XML parsers turn a literal one into `\n`.
pub(crate) fn push_escaped(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
}

pub(crate) fn retrieve_service_content() -> Request {
    let service_instance = Moref {
        kind: "ServiceInstance",
        value: "ServiceInstance".into(),
    };
    Envelope::new("RetrieveServiceContent", &service_instance).finish()
}

pub(crate) fn login(session_manager: &Moref, user: &str, password: &str) -> Request {
    Envelope::new("Login", session_manager)
        .text("userName", user)
        .text("password", password)
        .finish()
}

pub(crate) fn logout(session_manager: &Moref) -> Request {
    Envelope::new("Logout", session_manager).finish()
}

pub(crate) fn create_container_view(
    view_manager: &Moref,
    container: &Moref,
    types: &[&str],
) -> Request {
    let mut envelope =
        Envelope::new("CreateContainerView", view_manager).moref("container", container);
    for kind in types {
        envelope = envelope.text("type", kind);
    }
    envelope.text("recursive", "true").finish()
}

pub(crate) fn destroy_view(view: &Moref) -> Request {
    Envelope::new("DestroyView", view).finish()
}

/// What to read through a container view: the properties `paths` of objects of type
/// `object_type` (a supertype such as `ManagedEntity` covers all its subtypes).
pub(crate) struct PropertySpec<'a> {
    pub object_type: &'a str,
    pub paths: &'a [Property],
}

pub(crate) fn retrieve_properties_ex(
    property_collector: &Moref,
    view: &Moref,
    spec: &PropertySpec<'_>,
    max_objects: Option<u32>,
) -> Request {
    let mut envelope = Envelope::new("RetrievePropertiesEx", property_collector)
        .open("specSet")
        .open("propSet")
        .text("type", spec.object_type);
    for property in spec.paths {
        envelope = envelope.text("pathSet", property.path());
    }
    envelope = envelope
        .close("propSet")
        .open("objectSet")
        .moref("obj", view)
        .text("skip", "true")
        .open_typed("selectSet", "TraversalSpec")
        .text("type", "ContainerView")
        .text("path", "view")
        .text("skip", "false")
        .close("selectSet")
        .close("objectSet")
        .close("specSet")
        .open("options");
    if let Some(max_objects) = max_objects {
        envelope = envelope.text("maxObjects", &max_objects.to_string());
    }
    envelope.close("options").finish()
}

/// RetrievePropertiesEx of one property of one object (no view, no traversal).
pub(crate) fn retrieve_property(property_collector: &Moref, object: &Moref, path: &str) -> Request {
    Envelope::new("RetrievePropertiesEx", property_collector)
        .open("specSet")
        .open("propSet")
        .text("type", object.kind)
        .text("pathSet", path)
        .close("propSet")
        .open("objectSet")
        .moref("obj", object)
        .close("objectSet")
        .close("specSet")
        .open("options")
        .close("options")
        .finish()
}

pub(crate) fn continue_retrieve_properties_ex(property_collector: &Moref, token: &str) -> Request {
    Envelope::new("ContinueRetrievePropertiesEx", property_collector)
        .text("token", token)
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moref(kind: &'static str, value: &str) -> Moref {
        Moref {
            kind,
            value: value.into(),
        }
    }

    #[test]
    fn values_are_xml_escaped_in_requests() {
        let xml = login(
            &moref("SessionManager", "SessionManager"),
            r#"dom\ad<m>"#,
            "p&ss\"w'rd\r<",
        )
        .body;
        assert!(xml.contains(r#"<_this type="SessionManager">SessionManager</_this>"#));
        assert!(xml.contains(r"<userName>dom\ad&lt;m&gt;</userName>"));
        assert!(xml.contains("<password>p&amp;ss&quot;w&apos;rd&#13;&lt;</password>"));
        assert!(xml.starts_with(r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope"#));
        assert!(xml.ends_with("</Login></soapenv:Body></soapenv:Envelope>"));
    }

    #[test]
    fn the_retrieval_request_lists_every_path_over_the_view_and_the_page_size() {
        let xml = retrieve_properties_ex(
            &moref("PropertyCollector", "propertyCollector"),
            &moref("ContainerView", "session[52&1]view-7"),
            &PropertySpec {
                object_type: "VirtualMachine",
                paths: &[Property::Name, Property::NumCpu],
            },
            Some(500),
        )
        .body;
        let expected = concat!(
            r#"<RetrievePropertiesEx xmlns="urn:vim25"><_this type="PropertyCollector">propertyCollector</_this>"#,
            "<specSet><propSet><type>VirtualMachine</type><pathSet>name</pathSet>",
            "<pathSet>config.hardware.numCPU</pathSet></propSet>",
            r#"<objectSet><obj type="ContainerView">session[52&amp;1]view-7</obj><skip>true</skip>"#,
            r#"<selectSet xsi:type="TraversalSpec"><type>ContainerView</type><path>view</path>"#,
            "<skip>false</skip></selectSet></objectSet></specSet>",
            "<options><maxObjects>500</maxObjects></options></RetrievePropertiesEx>",
        );
        assert!(xml.contains(expected), "{xml}");
    }

    #[test]
    fn a_single_property_is_read_from_the_object_itself() {
        let xml = retrieve_property(
            &moref("PropertyCollector", "propertyCollector"),
            &moref("CustomFieldsManager", "CustomFieldsManager"),
            "field",
        )
        .body;
        let expected = concat!(
            "<specSet><propSet><type>CustomFieldsManager</type><pathSet>field</pathSet></propSet>",
            r#"<objectSet><obj type="CustomFieldsManager">CustomFieldsManager</obj></objectSet>"#,
            "</specSet><options></options></RetrievePropertiesEx>",
        );
        assert!(xml.contains(expected), "{xml}");
    }

    #[test]
    fn max_objects_is_left_out_when_not_given() {
        let xml = retrieve_properties_ex(
            &moref("PropertyCollector", "propertyCollector"),
            &moref("ContainerView", "view-1"),
            &PropertySpec {
                object_type: "ManagedEntity",
                paths: &[Property::Name, Property::Parent],
            },
            None,
        )
        .body;
        assert!(xml.contains("<options></options>"), "{xml}");
    }

    #[test]
    fn a_container_view_request_names_the_types_and_is_recursive() {
        let xml = create_container_view(
            &moref("ViewManager", "ViewManager"),
            &moref("Folder", "group-d1"),
            &["Folder", "ResourcePool"],
        )
        .body;
        assert!(xml.contains(concat!(
            r#"<container type="Folder">group-d1</container>"#,
            "<type>Folder</type><type>ResourcePool</type><recursive>true</recursive>"
        )));
    }
}
