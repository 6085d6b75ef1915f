//! SOAP 1.1 on the wire: reading the small request envelopes into a tree, and what every
//! response shares (envelope, escaping, faults).

use super::model::TIME_LIMIT;
use quick_xml::Reader;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesStart, Event};
use std::fmt::{self, Display, Write};

/// Requests are a handful of levels deep; refusing deeper ones keeps hostile input from
/// building a tree whose recursive drop could overflow the stack.
const MAX_DEPTH: usize = 32;

const ENVELOPE_HEAD: &str = concat!(
    r#"<?xml version="1.0" encoding="UTF-8"?>"#,
    "\n",
    r#"<soapenv:Envelope xmlns:soapenc="http://schemas.xmlsoap.org/soap/encoding/" "#,
    r#"xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" "#,
    r#"xmlns:xsd="http://www.w3.org/2001/XMLSchema" "#,
    r#"xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">"#,
    "\n<soapenv:Body>\n"
);
const ENVELOPE_TAIL: &str = "\n</soapenv:Body>\n</soapenv:Envelope>";

/// A ManagedObjectReference: `<x type="Folder">group-d1</x>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MoRef {
    pub(crate) kind: String,
    pub(crate) value: String,
}

/// Why a call failed, as the SOAP fault the client gets.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Fault {
    #[error("malformed request: {0}")]
    Malformed(String),
    #[error("{0} is not implemented by the simulator")]
    NotImplemented(String),
    // These two are vCenter's own texts: clients show them to users and some match on them.
    #[error("Cannot complete login due to an incorrect user name or password.")]
    InvalidLogin,
    #[error("The session is not authenticated.")]
    NotAuthenticated { object: Option<MoRef> },
    #[error("the object {}:{} has already been deleted or has not been completely created", .0.kind, .0.value)]
    NotFound(MoRef),
    #[error("a specified parameter was not correct: {0}")]
    InvalidArgument(&'static str),
    #[error("internal simulator error: {0}")]
    Internal(String),
}

impl Fault {
    /// The vim fault type, as named in `xsi:type` and the detail element.
    fn vim_type(&self) -> &'static str {
        match self {
            Fault::Malformed(_) => "InvalidRequest",
            Fault::NotImplemented(_) => "NotImplemented",
            Fault::InvalidLogin => "InvalidLogin",
            Fault::NotAuthenticated { .. } => "NotAuthenticated",
            Fault::NotFound(_) => "ManagedObjectNotFound",
            Fault::InvalidArgument(_) => "InvalidArgument",
            Fault::Internal(_) => "SystemError",
        }
    }

    /// The whole response envelope of this fault.
    pub(crate) fn to_xml(&self) -> String {
        let code = match self {
            Fault::Malformed(_) => "ClientFaultCode",
            _ => "ServerFaultCode",
        };
        let kind = self.vim_type();
        let mut xml = Xml::with_capacity(1024);
        xml.raw(ENVELOPE_HEAD)
            .raw("<soapenv:Fault><faultcode>")
            .raw(code)
            .raw("</faultcode><faultstring>")
            .text(&self.to_string())
            .raw("</faultstring><detail><")
            .raw(kind)
            .raw(r#"Fault xmlns="urn:vim25" xsi:type=""#)
            .raw(kind)
            .raw(r#"">"#);
        match self {
            Fault::NotAuthenticated {
                object: Some(object),
            } => {
                xml.moref("object", object)
                    .raw("<privilegeId>System.View</privilegeId>");
            }
            Fault::NotFound(object) => {
                xml.moref("obj", object);
            }
            Fault::InvalidArgument(property) => {
                xml.raw("<invalidProperty>")
                    .text(property)
                    .raw("</invalidProperty>");
            }
            Fault::Internal(reason) => {
                xml.raw("<reason>").text(reason).raw("</reason>");
            }
            _ => {}
        }
        xml.raw("</")
            .raw(kind)
            .raw("Fault></detail></soapenv:Fault>")
            .raw(ENVELOPE_TAIL);
        xml.into_string()
    }
}

/// An XML document being written. Writing to a `String` cannot fail, which is why the
/// `fmt::Result`s are dropped here and nowhere else.
pub(crate) struct Xml(String);

impl Xml {
    pub(crate) fn with_capacity(capacity: usize) -> Xml {
        Xml(String::with_capacity(capacity))
    }

    /// Starts a response envelope: `<{method}Response xmlns="urn:vim25">`.
    pub(crate) fn response(method: &str, capacity: usize) -> Xml {
        let mut xml = Xml::with_capacity(capacity + 512);
        xml.raw(ENVELOPE_HEAD)
            .raw("<")
            .raw(method)
            .raw(r#"Response xmlns="urn:vim25">"#);
        xml
    }

    /// Closes what [`Xml::response`] opened.
    pub(crate) fn finish(mut self, method: &str) -> String {
        self.raw("</")
            .raw(method)
            .raw("Response>")
            .raw(ENVELOPE_TAIL);
        self.0
    }

    pub(crate) fn into_string(self) -> String {
        self.0
    }

    /// Markup, written as is.
    pub(crate) fn raw(&mut self, markup: &str) -> &mut Xml {
        self.0.push_str(markup);
        self
    }

    /// A value whose text never needs escaping (numbers, UUIDs, dates, generated names).
    pub(crate) fn display(&mut self, value: impl Display) -> &mut Xml {
        let _ = write!(self.0, "{value}");
        self
    }

    /// Text content or an attribute value, escaped. Characters XML 1.0 cannot carry at all
    /// (most control characters, which a request could smuggle in as `&#1;`) become U+FFFD.
    pub(crate) fn text(&mut self, text: &str) -> &mut Xml {
        let needs_escape = |c: char| matches!(c, '&' | '<' | '>' | '"' | '\'') || c < ' ';
        if !text.contains(needs_escape) {
            self.0.push_str(text);
            return self;
        }
        for c in text.chars() {
            match c {
                '&' => self.0.push_str("&amp;"),
                '<' => self.0.push_str("&lt;"),
                '>' => self.0.push_str("&gt;"),
                '"' => self.0.push_str("&quot;"),
                '\'' => self.0.push_str("&apos;"),
                '\t' | '\n' | '\r' => self.0.push(c),
                c if c < ' ' => self.0.push('\u{FFFD}'),
                c => self.0.push(c),
            }
        }
        self
    }

    /// `<{tag} type="{kind}">{value}</{tag}>`
    pub(crate) fn moref(&mut self, tag: &str, moref: &MoRef) -> &mut Xml {
        self.raw("<")
            .raw(tag)
            .raw(r#" type=""#)
            .text(&moref.kind)
            .raw(r#"">"#)
            .text(&moref.value)
            .raw("</")
            .raw(tag)
            .raw(">")
    }
}

/// An `xsd:dateTime` in UTC, as vCenter writes them: `2024-05-01T12:00:00Z`.
pub(crate) struct DateTime(pub(crate) i64);

impl Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Inside the clamp chrono can represent every second, so the default never shows.
        let time = chrono::DateTime::from_timestamp(self.0.clamp(-TIME_LIMIT, TIME_LIMIT), 0)
            .unwrap_or_default();
        write!(f, "{}", time.format("%Y-%m-%dT%H:%M:%SZ"))
    }
}

/// One element of a request, with prefixes stripped from its name.
#[derive(Debug, Default)]
pub(crate) struct Element {
    pub(crate) name: String,
    /// Attributes by their full name (`type`, `xsi:type`): a moref's `type` and a value's
    /// `xsi:type` share a local name.
    attributes: Vec<(String, String)>,
    text: String,
    children: Vec<Element>,
}

impl Element {
    pub(crate) fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    pub(crate) fn children<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> {
        self.children.iter().filter(move |c| c.name == name)
    }

    pub(crate) fn text(&self) -> &str {
        self.text.trim()
    }

    /// The trimmed text of the child `name`, if there is one.
    pub(crate) fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(Element::text)
    }

    fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The element read as a ManagedObjectReference.
    pub(crate) fn moref(&self) -> Result<MoRef, Fault> {
        let kind = self.attribute("type").ok_or_else(|| {
            Fault::Malformed(format!("<{}> is not a managed object reference", self.name))
        })?;
        Ok(MoRef {
            kind: kind.to_string(),
            value: self.text().to_string(),
        })
    }

    /// The managed object reference in child `name`, which must be there.
    pub(crate) fn child_moref(&self, name: &str) -> Result<MoRef, Fault> {
        self.child(name)
            .ok_or_else(|| Fault::Malformed(format!("<{}> lacks <{name}>", self.name)))?
            .moref()
    }

    /// The `xsd:boolean` in child `name`, if there is one.
    pub(crate) fn child_bool(&self, name: &str) -> Result<Option<bool>, Fault> {
        self.child_text(name)
            .map(|text| match text {
                "true" | "1" => Ok(true),
                "false" | "0" => Ok(false),
                other => Err(Fault::Malformed(format!(
                    "<{name}> is {other:?}, not a boolean"
                ))),
            })
            .transpose()
    }
}

/// The call in a SOAP request: the first element of the envelope's Body.
pub(crate) fn parse_call(body: &[u8]) -> Result<Element, Fault> {
    let envelope = parse_document(body)?;
    if envelope.name != "Envelope" {
        return Err(Fault::Malformed(format!(
            "the document is a <{}>, not a SOAP Envelope",
            envelope.name
        )));
    }
    let body = envelope
        .children
        .into_iter()
        .find(|c| c.name == "Body")
        .ok_or_else(|| Fault::Malformed("the envelope has no Body".into()))?;
    body.children
        .into_iter()
        .next()
        .ok_or_else(|| Fault::Malformed("the SOAP Body is empty".into()))
}

fn parse_document(xml: &[u8]) -> Result<Element, Fault> {
    let mut reader = Reader::from_reader(xml);
    let mut open: Vec<Element> = Vec::new();
    let mut root = None;
    let malformed =
        |position: u64, what: &dyn Display| Fault::Malformed(format!("at byte {position}: {what}"));
    loop {
        let event = reader
            .read_event()
            .map_err(|e| malformed(reader.error_position(), &e))?;
        let position = reader.buffer_position();
        let finished = match event {
            Event::Start(start) => {
                if open.len() >= MAX_DEPTH {
                    return Err(malformed(position, &"elements nested too deeply"));
                }
                open.push(element(&start, &reader).map_err(|e| malformed(position, &e))?);
                None
            }
            Event::Empty(start) => {
                Some(element(&start, &reader).map_err(|e| malformed(position, &e))?)
            }
            Event::End(_) => open.pop(),
            Event::Text(text) => {
                let text = text.decode().map_err(|e| malformed(position, &e))?;
                append_text(&mut open, &text, position)?;
                None
            }
            Event::CData(data) => {
                let text = data.decode().map_err(|e| malformed(position, &e))?;
                append_text(&mut open, &text, position)?;
                None
            }
            Event::GeneralRef(reference) => {
                let resolved = match reference
                    .resolve_char_ref()
                    .map_err(|e| malformed(position, &e))?
                {
                    Some(c) => c.to_string(),
                    None => {
                        let name = reference.decode().map_err(|e| malformed(position, &e))?;
                        resolve_predefined_entity(&name)
                            .ok_or_else(|| {
                                malformed(position, &format_args!("unknown entity &{name};"))
                            })?
                            .to_string()
                    }
                };
                append_text(&mut open, &resolved, position)?;
                None
            }
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => None,
        };
        if let Some(element) = finished {
            match open.last_mut() {
                Some(parent) => parent.children.push(element),
                None if root.is_none() => root = Some(element),
                None => return Err(malformed(position, &"a second root element")),
            }
        }
    }
    if let Some(unclosed) = open.last() {
        return Err(Fault::Malformed(format!(
            "the document ends inside <{}>",
            unclosed.name
        )));
    }
    root.ok_or_else(|| Fault::Malformed("the document is empty".into()))
}

/// Adds text to the open element; text outside the root may only be whitespace.
fn append_text(open: &mut [Element], text: &str, position: u64) -> Result<(), Fault> {
    match open.last_mut() {
        Some(element) => element.text.push_str(text),
        None if text.trim().is_empty() => {}
        None => {
            return Err(Fault::Malformed(format!(
                "at byte {position}: text outside the root element"
            )));
        }
    }
    Ok(())
}

fn element(start: &BytesStart<'_>, reader: &Reader<&[u8]>) -> Result<Element, String> {
    let name = std::str::from_utf8(start.local_name().into_inner())
        .map_err(|e| e.to_string())?
        .to_string();
    let attributes = start
        .attributes()
        .map(|attribute| {
            let attribute = attribute.map_err(|e| e.to_string())?;
            let key = std::str::from_utf8(attribute.key.into_inner())
                .map_err(|e| e.to_string())?
                .to_string();
            let value = attribute
                .decode_and_unescape_value(reader.decoder())
                .map_err(|e| e.to_string())?
                .into_owned();
            Ok((key, value))
        })
        .collect::<Result<_, String>>()?;
    Ok(Element {
        name,
        attributes,
        ..Element::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(body: &str) -> Vec<u8> {
        format!(
            r#"<?xml version="1.0"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Header/><soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"#
        )
        .into_bytes()
    }

    #[test]
    fn the_call_is_the_first_body_element_with_prefixes_ignored() {
        let call = parse_call(&envelope(
            r#"<v:Login xmlns:v="urn:vim25"><v:_this type="SessionManager">SessionManager</v:_this><v:userName> a&amp;b&#x41; </v:userName></v:Login>"#,
        ))
        .unwrap();
        assert_eq!(call.name, "Login");
        assert_eq!(call.child_text("userName"), Some("a&bA"));
        let this = call.child_moref("_this").unwrap();
        assert_eq!(
            this,
            MoRef {
                kind: "SessionManager".into(),
                value: "SessionManager".into()
            }
        );
    }

    #[test]
    fn a_moref_type_is_not_confused_with_its_xsi_type() {
        let call = parse_call(&envelope(
            r#"<X xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><obj xsi:type="ManagedObjectReference" type="Folder">group-d1</obj></X>"#,
        ))
        .unwrap();
        assert_eq!(call.child_moref("obj").unwrap().kind, "Folder");
    }

    #[test]
    fn broken_documents_are_malformed_requests() {
        for body in [
            &b""[..],
            b"<a>",
            b"<a></b>",
            b"<Envelope><Body></Body></Envelope>",
            b"<Envelope><Body><X>&bogus;</X></Body></Envelope>",
            b"<Envelope/><Envelope/>",
            b"not xml at all",
            b"<NotAnEnvelope/>",
            b"\xff\xfe<a/>",
        ] {
            let fault = parse_call(body).unwrap_err();
            assert!(
                matches!(fault, Fault::Malformed(_)),
                "{body:?} gave {fault:?}"
            );
        }
    }

    #[test]
    fn deep_nesting_is_refused_instead_of_recursing() {
        let deep = "<a>".repeat(100_000);
        let fault = parse_call(deep.as_bytes()).unwrap_err();
        assert!(fault.to_string().contains("nested too deeply"), "{fault}");
    }

    #[test]
    fn escaped_text_never_carries_markup_or_forbidden_characters() {
        let mut xml = Xml::with_capacity(0);
        xml.text("a<b>&\"c'\u{1}\td");
        assert_eq!(xml.into_string(), "a&lt;b&gt;&amp;&quot;c&apos;\u{FFFD}\td");
    }

    #[test]
    fn faults_name_their_vim_type_in_the_detail() {
        let xml = Fault::InvalidLogin.to_xml();
        assert!(xml.contains("<faultstring>Cannot complete login due to an incorrect user name or password.</faultstring>"));
        assert!(xml.contains(
            r#"<detail><InvalidLoginFault xmlns="urn:vim25" xsi:type="InvalidLogin"></InvalidLoginFault></detail>"#
        ));
        let xml = Fault::NotAuthenticated {
            object: Some(MoRef {
                kind: "Folder".into(),
                value: "group-d1".into(),
            }),
        }
        .to_xml();
        assert!(xml.contains(r#"<object type="Folder">group-d1</object>"#));
    }

    #[test]
    fn date_times_are_utc_seconds() {
        assert_eq!(DateTime(0).to_string(), "1970-01-01T00:00:00Z");
        assert_eq!(DateTime(1_700_000_000).to_string(), "2023-11-14T22:13:20Z");
    }
}
