//! A vCenter session: login, the two property retrievals the collector needs (VMs, and the
//! inventory objects their references point at), logout. Each retrieval is one container
//! view read page by page and parsed while it streams in.

use super::error::Error;
use super::model::{About, Moref, Places, Property, VmPage, VmProperties};
use super::parse::{
    Collect, CustomFields, FieldDefsReader, MorefReader, RetrieveResult, ServiceContent,
    ServiceContentReader,
};
use super::soap::{self, PropertySpec, Request};
use super::xml::{self, Content, Exchange, Ignore, Limits};
use futures_util::StreamExt;
use reqwest::header::{CONTENT_TYPE, COOKIE, HeaderMap, HeaderValue, SET_COOKIE};
use std::error::Error as _;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::AsyncBufRead;
use tokio_util::io::StreamReader;

/// The cookie vCenter keeps a SOAP session in.
const SESSION_COOKIE: &str = "vmware_soap_session";

/// Of an error response only this much is read: enough for any SOAP fault.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Where a vCenter is and how to log in to it.
#[derive(Clone)]
pub struct Endpoint {
    /// The SDK URL, e.g. `https://vc.example.com/sdk`.
    pub url: String,
    pub username: String,
    pub password: String,
    pub tls: Tls,
    /// Whether an `http://` URL may be used: it sends the password in clear, so it must be
    /// asked for (a simulator on loopback, a lab behind a TLS-terminating proxy).
    pub allow_plain_http: bool,
    pub connect_timeout: Duration,
    /// How long one read of a response may wait for data (idle time, not the whole exchange).
    pub read_timeout: Duration,
    /// How much of this vCenter's answers is read before giving up.
    pub limits: Limits,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("url", &self.url)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("tls", &self.tls)
            .field("allow_plain_http", &self.allow_plain_http)
            .field("connect_timeout", &self.connect_timeout)
            .field("read_timeout", &self.read_timeout)
            .field("limits", &self.limits)
            .finish()
    }
}

/// How the server's certificate is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tls {
    /// Verify the certificate chain and host name: against the PEM bundle `ca_file` only,
    /// or against the built-in web PKI roots when `None`.
    Verify { ca_file: Option<PathBuf> },
    /// Accept any certificate (lab vCenters with self-signed certificates).
    Insecure,
}

/// A logged-in vCenter session.
pub struct Client {
    transport: Transport,
    service: ServiceContent,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("url", &self.transport.endpoint.url)
            .field("user", &self.transport.endpoint.username)
            .field("server", &self.service.about.full_name)
            .finish_non_exhaustive()
    }
}

/// One kind of property retrieval: the container view and what to read of its objects.
struct Retrieval {
    view_types: &'static [&'static str],
    spec: PropertySpec<'static>,
}

const VMS: Retrieval = Retrieval {
    view_types: &["VirtualMachine"],
    spec: PropertySpec {
        object_type: "VirtualMachine",
        paths: &Property::VM,
    },
};

/// VirtualApps are ResourcePools to the view; they come back with their own `obj` type.
const PLACES: Retrieval = Retrieval {
    view_types: &[
        "Folder",
        "Datacenter",
        "ClusterComputeResource",
        "ComputeResource",
        "HostSystem",
        "ResourcePool",
    ],
    spec: PropertySpec {
        object_type: "ManagedEntity",
        paths: &Property::PLACE,
    },
};

impl Client {
    /// RetrieveServiceContent + Login (SessionManager); keeps the vmware_soap_session cookie.
    pub async fn login(endpoint: &Endpoint) -> Result<Client, Error> {
        let mut transport = Transport::new(endpoint.clone())?;
        let service = transport
            .call(
                soap::retrieve_service_content(),
                ServiceContentReader::default(),
            )
            .await?;
        transport.use_api_version(&service.about.api_version)?;
        let mut client = Client { transport, service };
        client.authenticate().await?;
        // Debug, not info: a scheduler logs one line per snapshot round, not per login.
        tracing::debug!(
            url = %endpoint.url,
            server = %client.service.about.full_name,
            "logged in to vCenter"
        );
        Ok(client)
    }

    pub fn about(&self) -> &About {
        &self.service.about
    }

    /// Every VM with the properties of [`VmProperties`], read through one container view in
    /// pages of at most `max_objects` (the server's choice when `None`).
    pub async fn virtual_machines(
        &mut self,
        max_objects: Option<u32>,
    ) -> Result<Vec<VmProperties>, Error> {
        let mut vms = Vec::new();
        self.virtual_machine_pages(max_objects, &mut |page| match page {
            VmPage::Vms(mut page) => vms.append(&mut page),
            VmPage::Restart => vms.clear(),
        })
        .await?;
        Ok(vms)
    }

    /// [`Client::virtual_machines`] handed to `on_page` a page at a time, as soon as each
    /// page is read, so the caller need not hold them all.
    pub async fn virtual_machine_pages(
        &mut self,
        max_objects: Option<u32>,
        on_page: &mut (dyn FnMut(VmPage) + Send),
    ) -> Result<(), Error> {
        let mut page = Vec::new();
        let mut collect = Collect::Vms(&mut page);
        self.retrieve_in_session(&VMS, max_objects, &mut collect, Some(on_page))
            .await
    }

    /// The custom field definitions that name the custom values of the VMs `collect`
    /// gathers: read once per retrieval rather than with each VM (`availableField` repeats
    /// them all); nothing else needs them.
    async fn custom_fields(&mut self, collect: &Collect<'_>) -> Result<CustomFields, Error> {
        let limits = self.transport.endpoint.limits;
        let (Collect::Vms(_), Some(manager)) = (collect, &self.service.custom_fields_manager)
        else {
            return Ok(CustomFields::none(limits));
        };
        let request = soap::retrieve_property(&self.service.property_collector, manager, "field");
        self.transport
            .call(request, FieldDefsReader::new(limits))
            .await
    }

    /// Every folder, datacenter, cluster, host, resource pool and vApp with its name and
    /// parent, in one retrieval.
    pub async fn places(&mut self, max_objects: Option<u32>) -> Result<Places, Error> {
        let mut places = Places::default();
        self.retrieve_in_session(
            &PLACES,
            max_objects,
            &mut Collect::Places(&mut places),
            None,
        )
        .await?;
        Ok(places)
    }

    /// The requests of [`Client::virtual_machines`] with the objects read and dropped: the
    /// bare SOAP exchange, for benchmarks. Returns the number of response bytes received.
    pub async fn virtual_machines_discarding(
        &mut self,
        max_objects: Option<u32>,
    ) -> Result<u64, Error> {
        let before = self.transport.received;
        self.retrieve_in_session(&VMS, max_objects, &mut Collect::Nothing, None)
            .await?;
        Ok(self.transport.received - before)
    }

    /// SessionManager.Logout.
    pub async fn logout(mut self) -> Result<(), Error> {
        let request = soap::logout(&self.service.session_manager);
        match self.transport.call(request, Ignore).await {
            // The session has ended already.
            Err(Error::NotAuthenticated { .. }) => Ok(()),
            result => result,
        }
    }

    async fn authenticate(&mut self) -> Result<(), Error> {
        let endpoint = &self.transport.endpoint;
        let request = soap::login(
            &self.service.session_manager,
            &endpoint.username,
            &endpoint.password,
        );
        let url = endpoint.url.clone();
        let user = endpoint.username.clone();
        match self.transport.call(request, Ignore).await {
            Ok(()) if self.transport.session.is_some() => Ok(()),
            Ok(()) => Err(Error::NoSessionCookie { url }),
            Err(Error::Fault { fault, .. }) if fault == "InvalidLogin" => {
                Err(Error::InvalidLogin { url, user })
            }
            Err(error) => Err(error),
        }
    }

    /// [`Client::retrieve`]; when the session turns out to have expired, logs in again once
    /// and retrieves again from the start (paging tokens do not survive a new session). With
    /// `on_page`, each page's VMs are handed over as it is read, and a new start is told.
    async fn retrieve_in_session(
        &mut self,
        retrieval: &Retrieval,
        max_objects: Option<u32>,
        collect: &mut Collect<'_>,
        mut on_page: Option<&mut (dyn FnMut(VmPage) + Send + '_)>,
    ) -> Result<(), Error> {
        match self
            .retrieve(retrieval, max_objects, collect, on_page.as_deref_mut())
            .await
        {
            Err(Error::NotAuthenticated { call, .. }) => {
                tracing::info!(
                    url = %self.transport.endpoint.url,
                    call,
                    "the vCenter session is no longer authenticated; logging in again"
                );
                collect.clear();
                if let Some(on_page) = on_page.as_deref_mut() {
                    on_page(VmPage::Restart);
                }
                self.transport.session = None;
                self.authenticate().await?;
                self.retrieve(retrieval, max_objects, collect, on_page)
                    .await
            }
            result => result,
        }
    }

    /// The custom field definitions (for VMs), then CreateContainerView,
    /// RetrievePropertiesEx and ContinueRetrievePropertiesEx until no token comes back,
    /// then DestroyView.
    async fn retrieve(
        &mut self,
        retrieval: &Retrieval,
        max_objects: Option<u32>,
        collect: &mut Collect<'_>,
        on_page: Option<&mut (dyn FnMut(VmPage) + Send + '_)>,
    ) -> Result<(), Error> {
        let fields = self.custom_fields(collect).await?;
        let request = soap::create_container_view(
            &self.service.view_manager,
            &self.service.root_folder,
            retrieval.view_types,
        );
        let view = self
            .transport
            .call(request, MorefReader::new("ContainerView"))
            .await?;
        let pages = self
            .read_pages(
                &view,
                &retrieval.spec,
                max_objects,
                collect,
                &fields,
                on_page,
            )
            .await;
        match &pages {
            // After a network failure the next call would likely fail as well, and a session
            // that is no longer authenticated has lost its views already.
            Err(error)
                if error.is_transient() || matches!(error, Error::NotAuthenticated { .. }) => {}
            _ => self.destroy_view(&view).await,
        }
        pages
    }

    async fn read_pages(
        &mut self,
        view: &Moref,
        spec: &PropertySpec<'static>,
        max_objects: Option<u32>,
        collect: &mut Collect<'_>,
        fields: &CustomFields,
        mut on_page: Option<&mut (dyn FnMut(VmPage) + Send + '_)>,
    ) -> Result<(), Error> {
        let collector = &self.service.property_collector;
        let mut request = soap::retrieve_properties_ex(collector, view, spec, max_objects);
        let mut pages = 1_u32;
        loop {
            let page = RetrieveResult::new(collect, spec.paths, fields);
            let token = self.transport.call(request, page).await?;
            if let (Some(on_page), Collect::Vms(vms)) = (on_page.as_deref_mut(), &mut *collect) {
                on_page(VmPage::Vms(std::mem::take(*vms)));
            }
            match token {
                Some(_) if pages >= self.transport.endpoint.limits.pages => {
                    return Err(Error::TooManyPages {
                        url: self.transport.endpoint.url.clone(),
                        limit: self.transport.endpoint.limits.pages,
                    });
                }
                Some(token) => {
                    request = soap::continue_retrieve_properties_ex(collector, &token);
                    pages += 1;
                }
                None => {
                    tracing::debug!(pages, object_type = spec.object_type, "retrieved all pages");
                    return Ok(());
                }
            }
        }
    }

    /// A view lives until its session ends, so one left behind costs the server only memory
    /// until logout: a failure here is logged, not returned.
    async fn destroy_view(&mut self, view: &Moref) {
        match self.transport.call(soap::destroy_view(view), Ignore).await {
            Ok(()) | Err(Error::NotAuthenticated { .. }) => {}
            Err(error) => tracing::warn!(%error, "failed to destroy a container view"),
        }
    }
}

/// The HTTP side of a session: where to post, the SOAPAction header and the session cookie.
struct Transport {
    http: reqwest::Client,
    endpoint: Endpoint,
    url: reqwest::Url,
    soap_action: HeaderValue,
    /// `vmware_soap_session=…` as the server set it; sensitive, so never printed.
    session: Option<HeaderValue>,
    /// Response body bytes received so far, over all calls.
    received: u64,
}

impl Transport {
    fn new(endpoint: Endpoint) -> Result<Transport, Error> {
        let url = reqwest::Url::parse(&endpoint.url)
            .map_err(|e| e.to_string())
            .and_then(|url| match url.scheme() {
                "http" | "https" => Ok(url),
                scheme => Err(format!("the scheme must be http or https, not {scheme}")),
            })
            .map_err(|message| Error::Url {
                url: endpoint.url.clone(),
                message,
            })?;
        if url.scheme() == "http" {
            if !endpoint.allow_plain_http {
                return Err(Error::PlainHttp {
                    url: endpoint.url.clone(),
                });
            }
            tracing::warn!(
                url = %endpoint.url,
                "plain HTTP to vCenter is allowed: its password and session cross the network in clear"
            );
        }
        Ok(Transport {
            http: http_client(&endpoint)?,
            endpoint,
            url,
            // Before the server has told its API version.
            soap_action: HeaderValue::from_static("\"urn:vim25\""),
            session: None,
            received: 0,
        })
    }

    fn use_api_version(&mut self, api_version: &str) -> Result<(), Error> {
        if api_version.is_empty() {
            return Ok(());
        }
        self.soap_action =
            HeaderValue::from_str(&format!("\"urn:vim25/{api_version}\"")).map_err(|_| {
                Error::Parse {
                    call: "RetrieveServiceContent",
                    message: format!(
                        "apiVersion {:?} is not a valid header value",
                        xml::excerpt(api_version, 40)
                    ),
                }
            })?;
        Ok(())
    }

    /// Posts `request` and reads the response into `content` as it arrives.
    async fn call<C: Content>(&mut self, request: Request, content: C) -> Result<C::Output, Error> {
        let call = request.call;
        let response = self.post(request).await?;
        let exchange = Exchange {
            url: &self.endpoint.url,
            call,
        };
        let limits = self.endpoint.limits;
        let body = body_reader(response, &mut self.received);
        xml::read_response_within(body, exchange, limits, content).await
    }

    /// Sends one request and returns the response when its status promises a SOAP answer.
    async fn post(&mut self, request: Request) -> Result<reqwest::Response, Error> {
        let call = request.call;
        tracing::debug!(call, url = %self.endpoint.url, "vSphere call");
        let mut builder = self
            .http
            .post(self.url.clone())
            .header(CONTENT_TYPE, "text/xml; charset=utf-8")
            .header("SOAPAction", self.soap_action.clone())
            .body(request.body);
        if let Some(cookie) = &self.session {
            builder = builder.header(COOKIE, cookie.clone());
        }
        let response = builder
            .send()
            .await
            .map_err(|error| send_failure(&self.endpoint.url, call, &error))?;
        if let Some(cookie) = session_cookie(response.headers()) {
            self.session = Some(cookie);
        }
        if response.status().is_success() {
            return Ok(response);
        }
        Err(failure_response(&self.endpoint.url, call, response).await)
    }
}

fn http_client(endpoint: &Endpoint) -> Result<reqwest::Client, Error> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(endpoint.connect_timeout)
        .read_timeout(endpoint.read_timeout)
        // A redirected POST would lose its body; vCenter does not redirect SOAP.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("vctp/", env!("CARGO_PKG_VERSION")));
    match &endpoint.tls {
        Tls::Insecure => builder = builder.danger_accept_invalid_certs(true),
        Tls::Verify { ca_file: None } => {}
        Tls::Verify {
            ca_file: Some(path),
        } => {
            let ca_error = |message: String| Error::CaFile {
                path: path.clone(),
                message,
            };
            // A few kilobytes read once per login: not worth a blocking-pool hop.
            let pem = std::fs::read(path).map_err(|e| ca_error(e.to_string()))?;
            let config = crate::tls::client_config(&pem, crate::tls::Roots::FileOnly)
                .map_err(|e| ca_error(format!("the file {e}")))?;
            builder = builder.use_preconfigured_tls(config);
        }
    }
    builder.build().map_err(|error| Error::ClientSetup {
        url: endpoint.url.clone(),
        message: error_chain(&error),
    })
}

/// The body as an `AsyncBufRead`, counting bytes into `received`. A read that times out
/// keeps `TimedOut` as its kind so the parser can tell it from a dropped connection.
fn body_reader(
    response: reqwest::Response,
    received: &mut u64,
) -> impl AsyncBufRead + Unpin + Send + '_ {
    let chunks = response.bytes_stream().map(move |chunk| {
        let chunk = chunk.map_err(|error| {
            let kind = if error.is_timeout() {
                std::io::ErrorKind::TimedOut
            } else {
                std::io::ErrorKind::UnexpectedEof
            };
            std::io::Error::new(kind, error)
        })?;
        *received += chunk.len() as u64;
        Ok::<_, std::io::Error>(chunk)
    });
    StreamReader::new(chunks)
}

/// A response with a non-2xx status: a SOAP fault (vCenter answers faults with 500) or a
/// plain HTTP error.
async fn failure_response(url: &str, call: &'static str, mut response: reqwest::Response) -> Error {
    let status = response.status().as_u16();
    let mut body = Vec::new();
    while body.len() < MAX_ERROR_BODY {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = MAX_ERROR_BODY - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Ok(None) | Err(_) => break,
        }
    }
    let exchange = Exchange { url, call };
    match xml::read_response(&body[..], exchange, Ignore).await {
        Err(fault @ (Error::Fault { .. } | Error::NotAuthenticated { .. })) => fault,
        _ => Error::Http {
            url: url.to_owned(),
            call,
            status,
            excerpt: xml::excerpt(String::from_utf8_lossy(&body).trim(), 200),
        },
    }
}

/// Classifies a request that got no response: certificate rejected, timed out, could not
/// connect, or the connection failed later.
fn send_failure(url: &str, call: &'static str, error: &reqwest::Error) -> Error {
    let url = url.to_owned();
    if let Some(message) = certificate_failure(error) {
        return Error::Tls { url, message };
    }
    if error.is_timeout() {
        return Error::Timeout { url, call };
    }
    let message = error_chain(error);
    if error.is_connect() {
        Error::Connect { url, message }
    } else {
        Error::Request { url, call, message }
    }
}

/// rustls reports a rejected certificate as "invalid peer certificate: …" deep in the
/// source chain; the io::Error wrapping it shows it in its message but not as a source.
fn certificate_failure(error: &reqwest::Error) -> Option<String> {
    let mut source = error.source();
    while let Some(cause) = source {
        let message = cause.to_string();
        if message.to_ascii_lowercase().contains("certificate") {
            return Some(message);
        }
        source = cause.source();
    }
    None
}

/// The causes of a reqwest error, outermost first; its own message is only "error sending
/// request for url (…)".
fn error_chain(error: &reqwest::Error) -> String {
    let mut message = String::new();
    let mut source = error.source();
    while let Some(cause) = source {
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    if message.is_empty() {
        message = error.to_string();
    }
    message
}

/// The `vmware_soap_session` cookie among the `Set-Cookie` headers, ready to send back,
/// its value kept exactly (quotes included).
fn session_cookie(headers: &HeaderMap) -> Option<HeaderValue> {
    let value = headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|header| header.to_str().ok())
        .find_map(|cookie| {
            let (name, value) = cookie.split(';').next()?.split_once('=')?;
            let value = value.trim();
            (name.trim() == SESSION_COOKIE && !value.is_empty()).then_some(value)
        })?;
    let mut cookie = HeaderValue::from_str(&format!("{SESSION_COOKIE}={value}")).ok()?;
    cookie.set_sensitive(true);
    Some(cookie)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_is_quoted_with_its_build_when_the_server_gives_one() {
        let about = |version: &str, build: &str| About {
            version: version.into(),
            build: build.into(),
            ..About::default()
        };
        assert_eq!(
            about("8.0.2", "22617221").version_and_build().as_deref(),
            Some("8.0.2 build-22617221")
        );
        assert_eq!(
            about("7.0.3", "").version_and_build().as_deref(),
            Some("7.0.3")
        );
        assert_eq!(about("", "123").version_and_build(), None);
    }

    fn headers(set_cookies: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for cookie in set_cookies {
            headers.append(SET_COOKIE, HeaderValue::from_str(cookie).unwrap());
        }
        headers
    }

    #[test]
    fn the_session_cookie_is_kept_exactly_with_its_quotes() {
        let cookie = session_cookie(&headers(&[
            "other=1; Path=/",
            r#"vmware_soap_session="52a3b1c0-9d7e"; Path=/; HttpOnly; Secure;"#,
        ]))
        .unwrap();
        assert_eq!(cookie, r#"vmware_soap_session="52a3b1c0-9d7e""#);
        assert!(cookie.is_sensitive());
    }

    #[test]
    fn responses_without_the_session_cookie_give_none() {
        assert!(session_cookie(&headers(&["other=1"])).is_none());
        assert!(session_cookie(&headers(&["vmware_soap_session=; Max-Age=0"])).is_none());
        assert!(session_cookie(&headers(&[])).is_none());
    }

    #[test]
    fn debug_output_never_shows_the_password() {
        let endpoint = Endpoint {
            url: "https://vc/sdk".into(),
            username: "admin".into(),
            password: "s3cret!".into(),
            tls: Tls::Insecure,
            allow_plain_http: false,
            connect_timeout: Duration::from_secs(1),
            read_timeout: Duration::from_secs(1),
            limits: Limits::default(),
        };
        let shown = format!("{endpoint:?}");
        assert!(
            shown.contains("admin") && !shown.contains("s3cret!"),
            "{shown}"
        );
    }

    #[test]
    fn client_futures_can_be_spawned() {
        fn spawnable<T: Send>(_: T) {}
        let endpoint = Endpoint {
            url: "http://127.0.0.1:1/sdk".into(),
            username: String::new(),
            password: String::new(),
            tls: Tls::Insecure,
            allow_plain_http: false,
            connect_timeout: Duration::from_secs(1),
            read_timeout: Duration::from_secs(1),
            limits: Limits::default(),
        };
        spawnable(Client::login(&endpoint));
        let _ = |client: &'static mut Client| {
            spawnable(client.virtual_machines(None));
            spawnable(client.places(None));
            spawnable(client.virtual_machines_discarding(None));
        };
        let _ = |client: Client| spawnable(client.logout());
    }

    #[test]
    fn plain_http_is_refused_unless_allowed_and_then_warned_about() {
        use tracing_subscriber::fmt::MakeWriter;
        let endpoint = |allow_plain_http| Endpoint {
            url: "http://vc.example.com/sdk".into(),
            username: "u".into(),
            password: "p".into(),
            tls: Tls::Verify { ca_file: None },
            allow_plain_http,
            connect_timeout: Duration::from_secs(1),
            read_timeout: Duration::from_secs(1),
            limits: Limits::default(),
        };
        let error = Transport::new(endpoint(false)).err().unwrap();
        let message = error.to_string();
        assert!(
            message.contains("http://vc.example.com/sdk")
                && message.contains("in clear")
                && message.contains("allow_plain_http"),
            "{message}"
        );
        assert_eq!(error.reason(), "PlainHttpRefused");
        assert!(!error.is_transient());

        // The writer must outlive the subscriber, which `with_default` keeps.
        static LINES: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(|| LINES.make_writer())
            .finish();
        let allowed =
            tracing::subscriber::with_default(subscriber, || Transport::new(endpoint(true)));
        assert!(allowed.is_ok());
        let text = String::from_utf8(LINES.lock().unwrap().clone()).unwrap();
        assert!(
            text.contains("WARN")
                && text.contains("plain HTTP")
                && text.contains("http://vc.example.com/sdk"),
            "{text}"
        );
    }

    #[test]
    fn a_missing_ca_file_is_named_in_the_error() {
        let endpoint = Endpoint {
            url: "https://vc.example.com/sdk".into(),
            username: "u".into(),
            password: "p".into(),
            tls: Tls::Verify {
                ca_file: Some("/nonexistent/vc-ca.pem".into()),
            },
            allow_plain_http: false,
            connect_timeout: Duration::from_secs(1),
            read_timeout: Duration::from_secs(1),
            limits: Limits::default(),
        };
        let error = Transport::new(endpoint).err().unwrap();
        assert!(
            error.to_string().contains("/nonexistent/vc-ca.pem"),
            "{error}"
        );
        assert_eq!(error.reason(), "InvalidCaFile");
        assert!(!error.is_transient());
    }
}
