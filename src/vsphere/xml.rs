//! Reading a SOAP response as it streams in. One loop pulls XML events from the body and
//! walks the envelope; what is inside `<{call}Response>` goes to a [`Content`], a small
//! synchronous state machine per call. Nothing builds a tree: memory stays at one event
//! buffer, the open-element stack and what the content keeps.
//!
//! Servers differ in namespace prefixes (govmomi, vCenter, our simulator), so elements and
//! attributes are matched on local names. A body that ends before the envelope is closed
//! is [`Error::Truncated`], never a partial result.

use super::error::{Bounded, Error};
use quick_xml::Reader;
use quick_xml::errors::IllFormedError;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesRef, BytesStart, Event};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, ReadBuf};

/// Deeper than any vSphere response nests; beyond it the input is broken or hostile.
const MAX_DEPTH: usize = 128;

/// How much one vCenter may make vctp read. A broken or hostile server (or someone in the
/// middle) can stream without end; past a limit the call fails with
/// [`Error::TooLarge`] or [`Error::TooManyPages`], naming the vCenter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes between two `<` of a response: one text node, tag or attribute list, which
    /// the XML reader buffers whole. Also bounds the text gathered inside one element.
    /// vSphere's longest texts (annotations, custom values) are a few kilobytes.
    pub text_bytes: usize,
    /// Bytes of one response. A page of 100,000 VMs at ~2 KiB each (servers that ignore
    /// maxObjects answer in one page) is ~200 MB.
    pub response_bytes: u64,
    /// Pages of one retrieval: 10,000 pages of the default 1,000 objects is ten million.
    pub pages: u32,
    /// Custom field definitions of a vCenter, and custom values of one VM. A few dozen is
    /// a large estate's; the bound keeps a hostile server from growing one VM's entry.
    pub attributes: usize,
    /// Bytes of one custom field name or value. vSphere's client shows them on one line.
    pub attribute_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            text_bytes: 4 * 1024 * 1024,
            response_bytes: 512 * 1024 * 1024,
            pages: 10_000,
            attributes: 1_000,
            attribute_bytes: 16 * 1024,
        }
    }
}

/// What the capped reader fails with; [`read_failure`] turns it into [`Error::TooLarge`].
#[derive(Debug, thiserror::Error)]
#[error("{0} is over its limit")]
struct OverLimit(Bounded);

/// Hands the XML reader at most [`Limits::response_bytes`] in all and at most
/// [`Limits::text_bytes`] between two `<`, then fails: the reader never buffers more than
/// that, whatever the server sends. It is read through a `BufReader`: the XML reader asks
/// for its buffer at every event, and checking once per chunk rather than per event is
/// what keeps the limits free (they cost the collector 0.2 s in 50k VMs otherwise).
struct Capped<R> {
    inner: R,
    budget: Budget,
}

/// What the limits still allow of one response.
struct Budget {
    limits: Limits,
    /// Bytes handed out so far.
    total: u64,
    /// Bytes handed out since the last `<`.
    run: usize,
    /// The limit reached; reported once the bytes before it are consumed.
    over: Option<Bounded>,
}

impl<R> Capped<R> {
    fn new(inner: R, limits: Limits) -> Self {
        Capped {
            inner,
            budget: Budget {
                limits,
                total: 0,
                run: 0,
                over: None,
            },
        }
    }
}

impl<R: AsyncBufRead + Unpin> AsyncRead for Capped<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(bounded) = this.budget.over {
            return Poll::Ready(Err(io::Error::other(OverLimit(bounded))));
        }
        let available = ready!(Pin::new(&mut this.inner).poll_fill_buf(cx))?;
        let offered = &available[..available.len().min(out.remaining())];
        let n = this.budget.admit(offered);
        if n == 0 && !offered.is_empty() {
            // Nothing passes: say why now, as an empty read would be taken for the end.
            return Poll::Ready(Err(io::Error::other(OverLimit(
                this.budget.over.unwrap_or(Bounded::Response),
            ))));
        }
        out.put_slice(&offered[..n]);
        Pin::new(&mut this.inner).consume(n);
        Poll::Ready(Ok(()))
    }
}

impl Budget {
    /// Checks `fresh`, bytes not handed out before, against the limits: returns how many of
    /// them may be handed out and records the limit that stops the rest. `memchr` finds the
    /// `<`s, so a chunk costs a vector scan, not a branch per byte.
    fn admit(&mut self, fresh: &[u8]) -> usize {
        let room = self.limits.response_bytes.saturating_sub(self.total);
        let end = usize::try_from(room).map_or(fresh.len(), |room| room.min(fresh.len()));
        let window = &fresh[..end];
        let text_bytes = self.limits.text_bytes;
        let admitted = if self.run + window.len() <= text_bytes {
            // No run between two `<` can pass the limit in this window: only the last counts.
            self.run = match memchr::memrchr(b'<', window) {
                Some(at) => window.len() - at - 1,
                None => self.run + window.len(),
            };
            window.len()
        } else {
            let mut at = 0;
            loop {
                let rest = &window[at..];
                match memchr::memchr(b'<', rest) {
                    Some(lt) if self.run + lt <= text_bytes => {
                        self.run = 0;
                        at += lt + 1;
                    }
                    None if self.run + rest.len() <= text_bytes => {
                        self.run += rest.len();
                        break window.len();
                    }
                    _ => {
                        at += text_bytes - self.run;
                        self.run = text_bytes;
                        self.over = Some(Bounded::Text);
                        break at;
                    }
                }
            }
        };
        if self.over.is_none() && admitted < fresh.len() {
            self.over = Some(Bounded::Response);
        }
        self.total += admitted as u64;
        admitted
    }
}

/// Which call a response answers and where it came from, for errors.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Exchange<'a> {
    pub url: &'a str,
    pub call: &'static str,
}

impl Exchange<'_> {
    fn too_large(self, bounded: Bounded, limits: Limits) -> Error {
        Error::TooLarge {
            url: self.url.to_owned(),
            call: self.call,
            bounded,
            limit: match bounded {
                Bounded::Text => limits.text_bytes as u64,
                Bounded::Response => limits.response_bytes,
            },
        }
    }
}

/// Reads what is inside the `<{call}Response>` element of one call's response.
pub(crate) trait Content {
    /// The elements this content reads, kept on a stack while they are open.
    type Tag: Copy;
    type Output;
    /// An element starts inside `parent` (`None`: directly inside the response element).
    /// Returns its tag to read it, or `None` to skip it with everything inside it.
    fn open(
        &mut self,
        parent: Option<Self::Tag>,
        start: &BytesStart<'_>,
    ) -> Result<Option<Self::Tag>, String>;
    /// An element read through `open` ends; `text` is the character data directly inside it.
    fn close(&mut self, tag: Self::Tag, text: &str) -> Result<(), String>;
    /// The whole document has been read.
    fn finish(self) -> Result<Self::Output, String>;
}

/// A response whose content does not matter (Login, Logout, DestroyView).
pub(crate) struct Ignore;

impl Content for Ignore {
    type Tag = std::convert::Infallible;
    type Output = ();

    fn open(
        &mut self,
        _: Option<Self::Tag>,
        _: &BytesStart<'_>,
    ) -> Result<Option<Self::Tag>, String> {
        Ok(None)
    }

    fn close(&mut self, tag: Self::Tag, _: &str) -> Result<(), String> {
        match tag {}
    }

    fn finish(self) -> Result<(), String> {
        Ok(())
    }
}

/// [`read_response_within`] the default [`Limits`].
pub(crate) async fn read_response<R, C>(
    body: R,
    exchange: Exchange<'_>,
    content: C,
) -> Result<C::Output, Error>
where
    R: AsyncBufRead + Unpin,
    C: Content,
{
    read_response_within(body, exchange, Limits::default(), content).await
}

/// Reads one response from `body` into `content`, failing past `limits`. A SOAP fault in
/// the body comes back as [`Error::NotAuthenticated`] or [`Error::Fault`].
pub(crate) async fn read_response_within<R, C>(
    body: R,
    exchange: Exchange<'_>,
    limits: Limits,
    content: C,
) -> Result<C::Output, Error>
where
    R: AsyncBufRead + Unpin,
    C: Content,
{
    let capped = Capped::new(body, limits);
    let mut xml = Reader::from_reader(tokio::io::BufReader::with_capacity(64 * 1024, capped));
    let mut buf = Vec::with_capacity(16 * 1024);
    let mut walker = Walker::new(exchange, content, limits.text_bytes);
    loop {
        buf.clear();
        let event = match xml.read_event_into_async(&mut buf).await {
            Ok(event) => event,
            Err(error) => return Err(read_failure(&mut xml, exchange, limits, error).await),
        };
        match event {
            Event::Start(start) => walker.start(&start)?,
            Event::Empty(start) => {
                walker.start(&start)?;
                walker.end()?;
            }
            Event::End(_) => walker.end()?,
            Event::Text(text) => match text.xml10_content() {
                Ok(text) => walker.text(&text)?,
                Err(_) => return Err(cut_or_invalid(&mut xml, exchange, "text is not UTF-8").await),
            },
            Event::CData(data) => match data.xml10_content() {
                Ok(text) => walker.text(&text)?,
                Err(_) => {
                    return Err(cut_or_invalid(&mut xml, exchange, "CDATA is not UTF-8").await);
                }
            },
            Event::GeneralRef(reference) => {
                let text = resolve_reference(&reference).map_err(|m| walker.invalid(m))?;
                walker.text(&text)?;
            }
            Event::Eof => return walker.finish(),
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
        }
    }
}

/// Classifies an error of the XML reader: the body stream failing (timeout or a dropped
/// connection), the document ending early, or a malformed document.
async fn read_failure<R: AsyncBufRead + Unpin>(
    xml: &mut Reader<R>,
    exchange: Exchange<'_>,
    limits: Limits,
    error: quick_xml::Error,
) -> Error {
    if let quick_xml::Error::Io(io) = &error
        && let Some(OverLimit(bounded)) = io.get_ref().and_then(|e| e.downcast_ref())
    {
        return exchange.too_large(*bounded, limits);
    }
    match error {
        quick_xml::Error::Io(io) if io.kind() == io::ErrorKind::TimedOut => Error::Timeout {
            url: exchange.url.to_owned(),
            call: exchange.call,
        },
        quick_xml::Error::Io(_) => Error::Truncated {
            call: exchange.call,
        },
        quick_xml::Error::Syntax(_)
        | quick_xml::Error::IllFormed(IllFormedError::UnclosedReference) => {
            cut_or_invalid(xml, exchange, &error.to_string()).await
        }
        other => Error::Parse {
            call: exchange.call,
            message: format!("{other} at byte {}", xml.error_position()),
        },
    }
}

/// An incomplete construct (tag, reference, multi-byte character) is a truncated body when
/// nothing follows it, and malformed XML otherwise.
async fn cut_or_invalid<R: AsyncBufRead + Unpin>(
    xml: &mut Reader<R>,
    exchange: Exchange<'_>,
    message: &str,
) -> Error {
    let position = xml.error_position().max(xml.buffer_position());
    let at_end = xml
        .get_mut()
        .fill_buf()
        .await
        .map_or(true, |rest| rest.is_empty());
    if at_end {
        Error::Truncated {
            call: exchange.call,
        }
    } else {
        Error::Parse {
            call: exchange.call,
            message: format!("{message} at byte {position}"),
        }
    }
}

/// The text an entity or character reference stands for.
fn resolve_reference(reference: &BytesRef<'_>) -> Result<String, String> {
    match reference.resolve_char_ref() {
        Ok(Some(c)) => Ok(c.to_string()),
        Ok(None) => {
            let name = reference.decode().map_err(|e| e.to_string())?;
            resolve_predefined_entity(&name)
                .map(str::to_owned)
                .ok_or_else(|| format!("unknown entity &{};", excerpt(&name, 40)))
        }
        Err(error) => Err(error.to_string()),
    }
}

/// The open elements of the document, as far as they are being read.
#[derive(Debug, Clone, Copy)]
enum Frame<T> {
    Envelope,
    Body,
    Response,
    Fault,
    FaultPart(FaultTag),
    Content(T),
}

/// Tracks where in the envelope the reader is and routes elements to the content or to the
/// fault being read.
struct Walker<'a, C: Content> {
    exchange: Exchange<'a>,
    content: C,
    fault: FaultContent,
    /// The open elements that are being read; deeper ones are being skipped.
    stack: Vec<Frame<C::Tag>>,
    /// How many elements are open, read or skipped.
    depth: usize,
    /// Character data of the innermost open element being read.
    text: String,
    /// The most `text` may hold ([`Limits::text_bytes`]).
    max_text: usize,
    response_seen: bool,
    envelope_closed: bool,
}

impl<'a, C: Content> Walker<'a, C> {
    fn new(exchange: Exchange<'a>, content: C, max_text: usize) -> Self {
        Walker {
            exchange,
            content,
            fault: FaultContent::default(),
            stack: Vec::with_capacity(16),
            depth: 0,
            text: String::new(),
            max_text,
            response_seen: false,
            envelope_closed: false,
        }
    }

    fn invalid(&self, message: String) -> Error {
        Error::Parse {
            call: self.exchange.call,
            message,
        }
    }

    fn start(&mut self, start: &BytesStart<'_>) -> Result<(), Error> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.invalid(format!("elements are nested more than {MAX_DEPTH} deep")));
        }
        if self.depth > self.stack.len() + 1 {
            return Ok(()); // inside an element being skipped
        }
        if let Some(frame) = self.frame(start)? {
            self.stack.push(frame);
            self.text.clear();
        }
        Ok(())
    }

    /// How to read the element `start`, whose parent is being read; `None` skips it.
    fn frame(&mut self, start: &BytesStart<'_>) -> Result<Option<Frame<C::Tag>>, Error> {
        let local = start.local_name();
        let name = local.as_ref();
        let frame = match self.stack.last().copied() {
            None if self.envelope_closed => None,
            None if name == b"Envelope" => Some(Frame::Envelope),
            None => {
                return Err(self.invalid(format!(
                    "expected a SOAP Envelope, found <{}>",
                    lossy_excerpt(name)
                )));
            }
            Some(Frame::Envelope) => (name == b"Body").then_some(Frame::Body),
            Some(Frame::Body) if self.response_seen => None,
            Some(Frame::Body) if name == b"Fault" => Some(Frame::Fault),
            Some(Frame::Body)
                if name.strip_suffix(b"Response") == Some(self.exchange.call.as_bytes()) =>
            {
                self.response_seen = true;
                Some(Frame::Response)
            }
            Some(Frame::Body) => {
                return Err(self.invalid(format!(
                    "expected <{}Response>, found <{}>",
                    self.exchange.call,
                    lossy_excerpt(name)
                )));
            }
            Some(Frame::Fault) => self.fault.open(None, start).map(Frame::FaultPart),
            Some(Frame::FaultPart(tag)) => self.fault.open(Some(tag), start).map(Frame::FaultPart),
            Some(Frame::Response) => self.content_open(None, start)?,
            Some(Frame::Content(tag)) => self.content_open(Some(tag), start)?,
        };
        Ok(frame)
    }

    fn content_open(
        &mut self,
        parent: Option<C::Tag>,
        start: &BytesStart<'_>,
    ) -> Result<Option<Frame<C::Tag>>, Error> {
        match self.content.open(parent, start) {
            Ok(tag) => Ok(tag.map(Frame::Content)),
            Err(message) => Err(self.invalid(message)),
        }
    }

    fn end(&mut self) -> Result<(), Error> {
        let skipped = self.depth > self.stack.len();
        self.depth = self.depth.saturating_sub(1);
        if skipped {
            return Ok(());
        }
        match self.stack.pop() {
            Some(Frame::Content(tag)) => {
                if let Err(message) = self.content.close(tag, &self.text) {
                    return Err(self.invalid(message));
                }
            }
            Some(Frame::FaultPart(tag)) => self.fault.close(tag, &self.text),
            // The fault is the whole answer: no need to read on.
            Some(Frame::Fault) => {
                return Err(std::mem::take(&mut self.fault).into_error(self.exchange));
            }
            Some(Frame::Envelope) => self.envelope_closed = true,
            Some(Frame::Body | Frame::Response) | None => {}
        }
        self.text.clear();
        Ok(())
    }

    /// Gathers the text of the element being read; many text nodes, references and CDATA
    /// sections in one element add up, so their sum is bounded too.
    fn text(&mut self, text: &str) -> Result<(), Error> {
        if self.depth == self.stack.len() && self.depth > 0 {
            if self.text.len() + text.len() > self.max_text {
                return Err(Error::TooLarge {
                    url: self.exchange.url.to_owned(),
                    call: self.exchange.call,
                    bounded: Bounded::Text,
                    limit: self.max_text as u64,
                });
            }
            self.text.push_str(text);
        }
        Ok(())
    }

    fn finish(self) -> Result<C::Output, Error> {
        if !self.envelope_closed || self.depth > 0 {
            return Err(Error::Truncated {
                call: self.exchange.call,
            });
        }
        if !self.response_seen {
            return Err(self.invalid(format!("the body has no <{}Response>", self.exchange.call)));
        }
        let call = self.exchange.call;
        self.content
            .finish()
            .map_err(|message| Error::Parse { call, message })
    }
}

/// A `soapenv:Fault`: `faultcode`, `faultstring` and the vim25 fault type in `detail`.
#[derive(Debug, Default)]
struct FaultContent {
    code: String,
    message: String,
    /// The type of the first element in `detail`: `InvalidLogin`, `NotAuthenticated`, …
    kind: Option<String>,
}

#[derive(Debug, Clone, Copy)]
enum FaultTag {
    Code,
    Message,
    Detail,
}

impl FaultContent {
    fn open(&mut self, parent: Option<FaultTag>, start: &BytesStart<'_>) -> Option<FaultTag> {
        match (parent, start.local_name().as_ref()) {
            (None, b"faultcode") => Some(FaultTag::Code),
            (None, b"faultstring") => Some(FaultTag::Message),
            (None, b"detail") => Some(FaultTag::Detail),
            (Some(FaultTag::Detail), name) => {
                if self.kind.is_none() {
                    self.kind = Some(fault_kind(start, name));
                }
                None
            }
            _ => None,
        }
    }

    fn close(&mut self, tag: FaultTag, text: &str) {
        match tag {
            FaultTag::Code => self.code = text.trim().to_owned(),
            FaultTag::Message => self.message = text.trim().to_owned(),
            FaultTag::Detail => {}
        }
    }

    fn into_error(self, exchange: Exchange<'_>) -> Error {
        let kind = self
            .kind
            .unwrap_or_else(|| without_prefix(&self.code).to_owned());
        let url = exchange.url.to_owned();
        let call = exchange.call;
        if kind == "NotAuthenticated" {
            Error::NotAuthenticated { url, call }
        } else {
            Error::Fault {
                url,
                call,
                fault: excerpt(&kind, 100),
                message: excerpt(&self.message, 500),
            }
        }
    }
}

/// The vim25 type of a fault detail element: its `xsi:type` when given (`InvalidLogin`),
/// else its name without the `Fault` suffix (`InvalidLoginFault`).
fn fault_kind(start: &BytesStart<'_>, name: &[u8]) -> String {
    match attribute(start, AttributeName::XsiType) {
        Ok(Some(kind)) => without_prefix(&kind).to_owned(),
        _ => {
            let name = String::from_utf8_lossy(name);
            match name.strip_suffix("Fault") {
                Some(kind) if !kind.is_empty() => kind.to_owned(),
                _ => name.into_owned(),
            }
        }
    }
}

/// The attributes the parsers read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AttributeName {
    /// `type` without a prefix: the type of a ManagedObjectReference.
    MorefType,
    /// `xsi:type` under whatever prefix the server bound: the schema type of a value.
    XsiType,
}

/// The value of an attribute of `start`.
pub(crate) fn attribute(
    start: &BytesStart<'_>,
    name: AttributeName,
) -> Result<Option<String>, String> {
    for attribute in start.attributes() {
        let attribute = attribute.map_err(|e| {
            format!(
                "invalid attribute in <{}>: {e}",
                lossy_excerpt(start.local_name().as_ref())
            )
        })?;
        let key = attribute.key;
        let prefixed = key.prefix().is_some();
        let wanted = match name {
            AttributeName::MorefType => !prefixed,
            AttributeName::XsiType => prefixed && key.as_namespace_binding().is_none(),
        };
        if wanted && key.local_name().as_ref() == b"type" {
            let value = attribute
                .decode_and_unescape_value(start.decoder())
                .map_err(|e| e.to_string())?;
            return Ok(Some(value.into_owned()));
        }
    }
    Ok(None)
}

/// `vim25:InvalidLogin` → `InvalidLogin`.
fn without_prefix(name: &str) -> &str {
    name.rsplit(':').next().unwrap_or(name)
}

/// At most `max_chars` of `text`, marked when cut: server text quoted in errors stays short.
pub(crate) fn excerpt(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

fn lossy_excerpt(bytes: &[u8]) -> String {
    excerpt(&String::from_utf8_lossy(bytes), 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://vc.example.com/sdk";

    /// What the limits allow of `input`, byte by byte: how many bytes pass, and the limit
    /// that stops the rest.
    fn allowed_byte_by_byte(input: &[u8], limits: Limits) -> (usize, Option<Bounded>) {
        let mut run = 0;
        for (at, byte) in input.iter().enumerate() {
            if at as u64 >= limits.response_bytes {
                return (at, Some(Bounded::Response));
            } else if *byte == b'<' {
                run = 0;
            } else if run >= limits.text_bytes {
                return (at, Some(Bounded::Text));
            } else {
                run += 1;
            }
        }
        (input.len(), None)
    }

    proptest::proptest! {
        /// The capped reader hands out exactly what a byte-by-byte check allows, however the
        /// body arrives in chunks.
        #[test]
        fn the_capped_reader_stops_where_the_limits_say(
            input in proptest::collection::vec(proptest::prop_oneof![3 => proptest::strategy::Just(b'a'), 1 => proptest::strategy::Just(b'<')], 0..200),
            text_bytes in 0_usize..12,
            response_bytes in 0_u64..220,
            chunk in 1_usize..40,
        ) {
            use tokio::io::AsyncReadExt;
            let limits = Limits { text_bytes, response_bytes, pages: 1, ..Limits::default() };
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let (read, over) = runtime.block_on(async {
                let body = tokio::io::BufReader::with_capacity(chunk, input.as_slice());
                let mut capped = Capped::new(body, limits);
                let mut read = Vec::new();
                let mut byte = [0_u8; 7];
                loop {
                    match capped.read(&mut byte).await {
                        Ok(0) => return (read, None),
                        Ok(n) => read.extend_from_slice(&byte[..n]),
                        Err(e) => {
                            let over = e.get_ref().and_then(|e| e.downcast_ref::<OverLimit>()).map(|o| o.0);
                            return (read, over);
                        }
                    }
                }
            });
            let (allowed, expected) = allowed_byte_by_byte(&input, limits);
            proptest::prop_assert_eq!(&read[..], &input[..allowed]);
            proptest::prop_assert_eq!(over, expected);
        }
    }

    async fn read_login(body: &str) -> Result<(), Error> {
        let exchange = Exchange {
            url: URL,
            call: "Login",
        };
        read_response(body.as_bytes(), exchange, Ignore).await
    }

    #[tokio::test]
    async fn an_invalid_login_fault_is_recognised_by_its_xsi_type() {
        let body = r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenc="http://schemas.xmlsoap.org/soap/encoding/" xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<soapenv:Body>
<soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>Cannot complete login due to an incorrect user name or password.</faultstring><detail><InvalidLoginFault xmlns="urn:vim25" xsi:type="InvalidLogin"></InvalidLoginFault></detail></soapenv:Fault>
</soapenv:Body>
</soapenv:Envelope>"#;
        match read_login(body).await {
            Err(Error::Fault {
                fault,
                message,
                url,
                call,
            }) => {
                assert_eq!(fault, "InvalidLogin");
                assert_eq!(
                    message,
                    "Cannot complete login due to an incorrect user name or password."
                );
                assert_eq!((url.as_str(), call), (URL, "Login"));
            }
            other => panic!("expected a fault, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_not_authenticated_fault_is_recognised_by_its_element_name() {
        let body = r#"<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body><S:Fault>
<faultcode>S:Server</faultcode><faultstring>The session is not authenticated.</faultstring>
<detail><vim:NotAuthenticatedFault xmlns:vim="urn:vim25"><object type="Folder">group-d1</object><privilegeId>System.View</privilegeId></vim:NotAuthenticatedFault></detail>
</S:Fault></S:Body></S:Envelope>"#;
        match read_login(body).await {
            Err(Error::NotAuthenticated { call, .. }) => assert_eq!(call, "Login"),
            other => panic!("expected NotAuthenticated, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn other_faults_keep_their_type_and_message() {
        let body = r#"<env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/" xmlns:XMLSchema-instance="http://www.w3.org/2001/XMLSchema-instance"><env:Body><env:Fault>
<faultcode>ServerFaultCode</faultcode><faultstring>A specified parameter was not correct: type</faultstring>
<detail><InvalidArgumentFault xmlns="urn:vim25" XMLSchema-instance:type="vim25:InvalidArgument"><invalidProperty>type</invalidProperty></InvalidArgumentFault></detail>
</env:Fault></env:Body></env:Envelope>"#;
        let error = read_login(body).await.unwrap_err();
        assert!(
            matches!(&error, Error::Fault { fault, .. } if fault == "InvalidArgument"),
            "{error:?}"
        );
        assert!(!error.is_transient());
        assert_eq!(error.reason(), "SoapFault");
    }

    #[tokio::test]
    async fn a_fault_without_detail_is_named_by_its_code() {
        let body = r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><soapenv:Fault><faultcode>soapenv:Client</faultcode><faultstring>Unable to parse</faultstring></soapenv:Fault></soapenv:Body></soapenv:Envelope>"#;
        let error = read_login(body).await.unwrap_err();
        assert!(
            matches!(&error, Error::Fault { fault, .. } if fault == "Client"),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn a_document_cut_short_is_truncated() {
        let body = r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><LoginResponse xmlns="urn:vim25"><returnval><key>52"#;
        assert!(matches!(
            read_login(body).await,
            Err(Error::Truncated { call: "Login" })
        ));
        assert!(matches!(read_login("").await, Err(Error::Truncated { .. })));
    }

    #[tokio::test]
    async fn a_response_to_another_call_is_rejected() {
        let body = r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><LogoutResponse xmlns="urn:vim25"/></soapenv:Body></soapenv:Envelope>"#;
        let error = read_login(body).await.unwrap_err();
        assert!(
            matches!(&error, Error::Parse { message, .. } if message.contains("<LoginResponse>")),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn a_document_that_is_not_soap_is_a_parse_error() {
        let error = read_login("<html><body>Service Unavailable</body></html>")
            .await
            .unwrap_err();
        assert!(
            matches!(&error, Error::Parse { message, .. } if message.contains("<html>")),
            "{error:?}"
        );
        let error = read_login("<a><b></a>").await.unwrap_err();
        assert!(matches!(error, Error::Parse { .. }), "{error:?}");
    }

    #[tokio::test]
    async fn headers_comments_and_trailing_whitespace_are_ignored() {
        let body = "<?xml version=\"1.0\"?><!-- hi --><e:Envelope xmlns:e=\"http://schemas.xmlsoap.org/soap/envelope/\"><e:Header><x>1</x></e:Header><e:Body><LoginResponse/></e:Body></e:Envelope>\n\n";
        read_login(body).await.unwrap();
    }

    #[test]
    fn excerpts_cut_on_character_boundaries() {
        assert_eq!(excerpt("ééé", 2), "éé…");
        assert_eq!(excerpt("abc", 3), "abc");
    }
}
