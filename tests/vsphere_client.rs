//! The vSphere client against a scripted vCenter: a small HTTP/1.1 server on 127.0.0.1 that
//! answers the SOAP calls with canned responses and can misbehave on purpose (expired
//! sessions, cut or stalled bodies, HTTP errors).
// A whole test crate: its helpers fail the test by panicking, like its #[test]s.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use vctp::vsphere::{Client, Endpoint, Error, Limits, PlaceKind, PowerState, Tls, VmProperties};

const USER: &str = "vctp@vsphere.local";
/// Markup characters that must arrive escaped and come out intact.
const PASSWORD: &str = r#"p<&>"'w"#;
const API_VERSION: &str = "8.0.2.0";

/// What the fake vCenter serves and how it misbehaves.
#[derive(Debug, Clone, Default)]
struct Script {
    vms: usize,
    /// Honour maxObjects with paging tokens (the govmomi simulator does not).
    paging: bool,
    /// Forget every session once this many pages have been served.
    expire_sessions_after_pages: Option<usize>,
    /// Refuse every call after Login as not authenticated.
    refuse_every_session: bool,
    /// How the response to RetrievePropertiesEx goes wrong.
    broken_retrieval: Option<Breakage>,
    /// Every page, however many there were, carries a token for one more.
    endless_paging: bool,
}

#[derive(Debug, Clone, Copy)]
enum Breakage {
    /// Content-Length promises the whole body; half of it is sent, then the socket closes.
    CutMidBody,
    /// Half of the body is sent, then nothing more.
    StallMidBody,
    /// Nothing at all is sent back.
    StallBeforeResponse,
    /// 503 with an HTML page, as a proxy in front of vCenter might answer.
    ServiceUnavailable,
    /// A VM name that never ends: one text node streamed until the client gives up.
    EndlessText,
    /// VMs that never end: small elements streamed until the client gives up.
    EndlessObjects,
}

/// What an endless answer streams at most, should a client never give up.
const ENDLESS_BYTES: u64 = 128 * 1024 * 1024;

/// One request as the server saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    cookie: Option<String>,
    soap_action: Option<String>,
    content_type: Option<String>,
    body: String,
    /// Length of the response body sent back.
    response_bytes: usize,
}

#[derive(Debug, Default)]
struct State {
    script: Script,
    sessions: HashSet<String>,
    logins: usize,
    pages_served: usize,
    sessions_expired: bool,
    seen: Vec<Seen>,
    /// Body bytes an endless answer managed to send.
    streamed: Arc<std::sync::atomic::AtomicU64>,
}

struct FakeVcenter {
    url: String,
    state: Arc<Mutex<State>>,
    server: JoinHandle<()>,
}

impl Drop for FakeVcenter {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeVcenter {
    async fn start(script: Script) -> FakeVcenter {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/sdk", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State {
            script,
            ..State::default()
        }));
        let shared = Arc::clone(&state);
        let server = tokio::spawn(async move {
            // Dropping the set when the server is aborted ends every connection too.
            let mut connections = JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                connections.spawn(serve(stream, Arc::clone(&shared)));
            }
        });
        FakeVcenter { url, state, server }
    }

    fn endpoint(&self) -> Endpoint {
        Endpoint {
            url: self.url.clone(),
            username: USER.into(),
            password: PASSWORD.into(),
            tls: Tls::Insecure,
            // The fake vCenter serves plain HTTP on loopback.
            allow_plain_http: true,
            connect_timeout: Duration::from_secs(2),
            read_timeout: Duration::from_secs(5),
            limits: Limits::default(),
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    fn methods(&self) -> Vec<String> {
        self.seen().into_iter().map(|seen| seen.method).collect()
    }

    fn logins(&self) -> usize {
        self.state.lock().unwrap().logins
    }

    fn streamed(&self) -> u64 {
        let state = self.state.lock().unwrap();
        state.streamed.load(std::sync::atomic::Ordering::SeqCst)
    }
}

struct Reply {
    status: u16,
    set_cookie: Option<String>,
    body: String,
    delivery: Delivery,
}

enum Delivery {
    Whole,
    /// The body, then `repeated` again and again (up to [`ENDLESS_BYTES`]), counting into
    /// `streamed` what the socket took.
    Endless {
        repeated: &'static str,
        streamed: Arc<std::sync::atomic::AtomicU64>,
    },
    CutMidBody,
    StallMidBody,
    StallBeforeResponse,
}

impl Reply {
    fn ok(body: String) -> Reply {
        Reply {
            status: 200,
            set_cookie: None,
            body,
            delivery: Delivery::Whole,
        }
    }

    fn endless(
        mut self,
        repeated: &'static str,
        streamed: &Arc<std::sync::atomic::AtomicU64>,
    ) -> Reply {
        self.delivery = Delivery::Endless {
            repeated,
            streamed: Arc::clone(streamed),
        };
        self
    }

    fn fault(kind: &str, message: &str) -> Reply {
        Reply {
            status: 500,
            set_cookie: None,
            body: envelope(&format!(
                r#"<soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>{message}</faultstring><detail><{kind}Fault xmlns="urn:vim25" xsi:type="{kind}"></{kind}Fault></detail></soapenv:Fault>"#
            )),
            delivery: Delivery::Whole,
        }
    }
}

async fn serve(stream: TcpStream, state: Arc<Mutex<State>>) {
    let mut stream = BufReader::new(stream);
    loop {
        let mut content_length = 0;
        let (mut cookie, mut soap_action, mut content_type) = (None, None, None);
        let mut line = String::new();
        loop {
            line.clear();
            match stream.read_line(&mut line).await {
                Ok(0) | Err(_) => return,
                Ok(_) if line == "\r\n" => break,
                Ok(_) => {}
            }
            if let Some((name, value)) = line.trim_end().split_once(':') {
                let value = value.trim().to_owned();
                match name.to_ascii_lowercase().as_str() {
                    "content-length" => content_length = value.parse().unwrap(),
                    "cookie" => cookie = Some(value),
                    "soapaction" => soap_action = Some(value),
                    "content-type" => content_type = Some(value),
                    _ => {}
                }
            }
        }
        let mut body = vec![0; content_length];
        if stream.read_exact(&mut body).await.is_err() {
            return;
        }
        let body = String::from_utf8(body).unwrap();
        let method = METHODS
            .into_iter()
            .find(|method| body.contains(&format!("<{method} ")))
            .unwrap_or("unknown")
            .to_owned();
        let reply = {
            let mut state = state.lock().unwrap();
            let reply = respond(&mut state, &method, cookie.as_deref(), &body);
            state.seen.push(Seen {
                method,
                cookie,
                soap_action,
                content_type,
                body,
                response_bytes: reply.body.len(),
            });
            reply
        };
        if !send(stream.get_mut(), reply).await {
            return;
        }
    }
}

/// Writes `reply`; false when the connection is to be closed.
async fn send(stream: &mut TcpStream, reply: Reply) -> bool {
    if let Delivery::StallBeforeResponse = reply.delivery {
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
    let reason = match reply.status {
        200 => "OK",
        500 => "Internal Server Error",
        _ => "Service Unavailable",
    };
    let mut head = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: text/xml; charset=utf-8\r\nContent-Length: {}\r\n",
        reply.status,
        reply.body.len()
    );
    if let Some(cookie) = &reply.set_cookie {
        head.push_str(&format!("Set-Cookie: {cookie}\r\n"));
    }
    head.push_str("\r\n");
    let body = reply.body.as_bytes();
    let half = &body[..body.len() / 2];
    let written = match reply.delivery {
        Delivery::Endless { repeated, streamed } => {
            let head = head.replace(
                &format!("Content-Length: {}", body.len()),
                &format!("Content-Length: {}", body.len() as u64 + ENDLESS_BYTES),
            );
            let chunk = repeated.repeat(64 * 1024 / repeated.len());
            let mut sent = body.len() as u64;
            let mut open = stream.write_all(head.as_bytes()).await.is_ok()
                && stream.write_all(body).await.is_ok();
            streamed.store(sent, std::sync::atomic::Ordering::SeqCst);
            while open && sent < ENDLESS_BYTES {
                open = stream.write_all(chunk.as_bytes()).await.is_ok();
                sent += chunk.len() as u64;
                streamed.store(sent, std::sync::atomic::Ordering::SeqCst);
            }
            false
        }
        Delivery::Whole | Delivery::StallBeforeResponse => {
            stream.write_all(head.as_bytes()).await.is_ok() && stream.write_all(body).await.is_ok()
        }
        Delivery::CutMidBody => {
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(half).await;
            false
        }
        Delivery::StallMidBody => {
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(half).await;
            tokio::time::sleep(Duration::from_secs(60)).await;
            false
        }
    };
    written && stream.flush().await.is_ok()
}

const METHODS: [&str; 7] = [
    "RetrieveServiceContent",
    "Login",
    "Logout",
    "CreateContainerView",
    "DestroyView",
    "RetrievePropertiesEx",
    "ContinueRetrievePropertiesEx",
];

fn respond(state: &mut State, method: &str, cookie: Option<&str>, body: &str) -> Reply {
    match method {
        "RetrieveServiceContent" => return Reply::ok(service_content()),
        "Login" => return login(state, body),
        _ => {}
    }
    let session = cookie.and_then(|c| c.strip_prefix("vmware_soap_session="));
    if state.script.refuse_every_session || !session.is_some_and(|s| state.sessions.contains(s)) {
        return Reply::fault("NotAuthenticated", "The session is not authenticated.");
    }
    match method {
        "Logout" => {
            state.sessions.remove(session.unwrap_or_default());
            Reply::ok(envelope(
                r#"<LogoutResponse xmlns="urn:vim25"></LogoutResponse>"#,
            ))
        }
        "CreateContainerView" => {
            let view = if body.contains("<type>VirtualMachine</type>") {
                "vms"
            } else {
                "places"
            };
            Reply::ok(envelope(&format!(
                r#"<CreateContainerViewResponse xmlns="urn:vim25"><returnval type="ContainerView">session[5271]{view}</returnval></CreateContainerViewResponse>"#
            )))
        }
        "DestroyView" => Reply::ok(envelope(
            r#"<DestroyViewResponse xmlns="urn:vim25"></DestroyViewResponse>"#,
        )),
        "RetrievePropertiesEx" => match state.script.broken_retrieval {
            Some(Breakage::ServiceUnavailable) => Reply {
                status: 503,
                set_cookie: None,
                body: "<html><body><h1>503 Service Unavailable</h1></body></html>".into(),
                delivery: Delivery::Whole,
            },
            breakage => {
                let mut reply = if body.contains("session[5271]places") {
                    Reply::ok(places_page())
                } else {
                    vm_page(state, method, 0, max_objects(body))
                };
                let endless = |body: &str, repeated| {
                    Reply::ok(body.to_owned()).endless(repeated, &state.streamed)
                };
                reply = match breakage {
                    Some(Breakage::EndlessText) => {
                        return endless(
                            concat!(
                                r#"<?xml version="1.0"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>"#,
                                r#"<RetrievePropertiesExResponse xmlns="urn:vim25"><returnval><objects><obj type="VirtualMachine">vm-1</obj>"#,
                                r#"<propSet><name>name</name><val xsi:type="xsd:string">"#
                            ),
                            "a",
                        );
                    }
                    Some(Breakage::EndlessObjects) => {
                        return endless(
                            concat!(
                                r#"<?xml version="1.0"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>"#,
                                r#"<RetrievePropertiesExResponse xmlns="urn:vim25"><returnval>"#
                            ),
                            r#"<objects><obj type="VirtualMachine">vm-1</obj></objects>"#,
                        );
                    }
                    _ => reply,
                };
                reply.delivery = match breakage {
                    Some(Breakage::CutMidBody) => Delivery::CutMidBody,
                    Some(Breakage::StallMidBody) => Delivery::StallMidBody,
                    Some(Breakage::StallBeforeResponse) => Delivery::StallBeforeResponse,
                    _ => Delivery::Whole,
                };
                reply
            }
        },
        "ContinueRetrievePropertiesEx" => {
            let (offset, page_size) = between(body, "<token>", "</token>")
                .and_then(|token| token.strip_prefix("page-"))
                .and_then(|token| token.split_once('-'))
                .map(|(offset, size)| (offset.parse().unwrap(), size.parse().unwrap()))
                .unwrap();
            vm_page(state, method, offset, Some(page_size))
        }
        _ => Reply::fault("InvalidRequest", "unknown method"),
    }
}

fn login(state: &mut State, body: &str) -> Reply {
    let user = between(body, "<userName>", "</userName>").map(unescape);
    let password = between(body, "<password>", "</password>").map(unescape);
    if user.as_deref() != Some(USER) || password.as_deref() != Some(PASSWORD) {
        return Reply::fault(
            "InvalidLogin",
            "Cannot complete login due to an incorrect user name or password.",
        );
    }
    state.logins += 1;
    let session = format!("\"52-{}\"", state.logins);
    state.sessions.insert(session.clone());
    let mut reply = Reply::ok(envelope(&format!(
        r#"<LoginResponse xmlns="urn:vim25"><returnval><key>{}</key><userName>{USER}</userName><fullName>vctp</fullName></returnval></LoginResponse>"#,
        state.logins
    )));
    reply.set_cookie = Some(format!(
        "vmware_soap_session={session}; Path=/; HttpOnly; Secure;"
    ));
    reply
}

/// The VMs from `offset`, at most `page_size` of them when the script pages.
fn vm_page(state: &mut State, method: &str, offset: usize, page_size: Option<usize>) -> Reply {
    let total = state.script.vms;
    let end = match page_size {
        Some(size) if state.script.paging => (offset + size).min(total),
        _ => total,
    };
    let mut objects = String::new();
    for i in offset..end {
        objects.push_str(&format!(
            concat!(
                r#"<objects><obj type="VirtualMachine">vm-{i}</obj>"#,
                r#"<propSet><name>config.createDate</name><val xsi:type="xsd:dateTime">2024-03-01T12:34:56.789Z</val></propSet>"#,
                r#"<propSet><name>config.hardware.memoryMB</name><val xsi:type="xsd:int">4096</val></propSet>"#,
                r#"<propSet><name>config.hardware.numCPU</name><val xsi:type="xsd:int">{cpus}</val></propSet>"#,
                r#"<propSet><name>config.instanceUuid</name><val xsi:type="xsd:string">5032c8a5-9d4e-4c2b-8f5e-{i:012}</val></propSet>"#,
                r#"<propSet><name>config.template</name><val xsi:type="xsd:boolean">false</val></propSet>"#,
                r#"<propSet><name>config.uuid</name><val xsi:type="xsd:string">4232c8a5-9d4e-4c2b-8f5e-{i:012}</val></propSet>"#,
                r#"<propSet><name>name</name><val xsi:type="xsd:string">vm {i} &amp; co</val></propSet>"#,
                r#"<propSet><name>parent</name><val type="Folder" xsi:type="ManagedObjectReference">group-v9</val></propSet>"#,
                r#"<propSet><name>resourcePool</name><val type="ResourcePool" xsi:type="ManagedObjectReference">resgroup-1</val></propSet>"#,
                r#"<propSet><name>runtime.host</name><val type="HostSystem" xsi:type="ManagedObjectReference">host-8</val></propSet>"#,
                r#"<propSet><name>runtime.powerState</name><val xsi:type="VirtualMachinePowerState">poweredOn</val></propSet>"#,
                r#"<propSet><name>summary.storage.committed</name><val xsi:type="xsd:long">21474836480</val></propSet>"#,
                r#"<propSet><name>summary.storage.uncommitted</name><val xsi:type="xsd:long">1073741824</val></propSet>"#,
                "</objects>"
            ),
            i = i,
            cpus = i % 8 + 1
        ));
    }
    let token = match page_size {
        Some(size) if state.script.endless_paging => format!("<token>page-0-{size}</token>"),
        Some(size) if end < total => format!("<token>page-{end}-{size}</token>"),
        _ => String::new(),
    };
    state.pages_served += 1;
    if state.script.expire_sessions_after_pages == Some(state.pages_served)
        && !state.sessions_expired
    {
        state.sessions_expired = true;
        state.sessions.clear();
    }
    Reply::ok(envelope(&format!(
        r#"<{method}Response xmlns="urn:vim25"><returnval>{token}{objects}</returnval></{method}Response>"#
    )))
}

fn places_page() -> String {
    let places = [
        ("Folder", "group-d1", "Datacenters", None),
        ("Datacenter", "datacenter-2", "DC1", Some("group-d1")),
        ("Folder", "group-h4", "host", Some("datacenter-2")),
        (
            "ClusterComputeResource",
            "domain-c7",
            "Cluster-A",
            Some("group-h4"),
        ),
        ("HostSystem", "host-8", "esx1", Some("domain-c7")),
        ("ResourcePool", "resgroup-9", "Resources", Some("domain-c7")),
        ("ResourcePool", "resgroup-10", "Gold", Some("resgroup-9")),
        ("VirtualApp", "resgroup-v11", "Shop", Some("resgroup-10")),
    ];
    let mut objects = String::new();
    for (kind, moref, name, parent) in places {
        objects.push_str(&format!(
            r#"<objects><obj type="{kind}">{moref}</obj><propSet><name>name</name><val xsi:type="xsd:string">{name}</val></propSet>"#
        ));
        if let Some(parent) = parent {
            objects.push_str(&format!(
                r#"<propSet><name>parent</name><val type="Folder" xsi:type="ManagedObjectReference">{parent}</val></propSet>"#
            ));
        }
        objects.push_str("</objects>");
    }
    envelope(&format!(
        r#"<RetrievePropertiesExResponse xmlns="urn:vim25"><returnval>{objects}</returnval></RetrievePropertiesExResponse>"#
    ))
}

fn service_content() -> String {
    envelope(&format!(
        concat!(
            r#"<RetrieveServiceContentResponse xmlns="urn:vim25"><returnval>"#,
            r#"<rootFolder type="Folder">group-d1</rootFolder>"#,
            r#"<propertyCollector type="PropertyCollector">propertyCollector</propertyCollector>"#,
            r#"<viewManager type="ViewManager">ViewManager</viewManager>"#,
            "<about><name>VMware vCenter Server</name><fullName>VMware vCenter Server 8.0.2 build-22617221</fullName>",
            "<vendor>VMware, Inc.</vendor><version>8.0.2</version><build>22617221</build>",
            "<apiType>VirtualCenter</apiType><apiVersion>{}</apiVersion>",
            "<instanceUuid>0b4b2f63-7f0e-4c39-9d1a-33c1e2a77f10</instanceUuid></about>",
            r#"<sessionManager type="SessionManager">SessionManager</sessionManager>"#,
            "</returnval></RetrieveServiceContentResponse>"
        ),
        API_VERSION
    ))
}

fn envelope(body: &str) -> String {
    format!(
        concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?>"#,
            "\n",
            r#"<soapenv:Envelope xmlns:soapenc="http://schemas.xmlsoap.org/soap/encoding/" xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">"#,
            "\n<soapenv:Body>\n{}\n</soapenv:Body>\n</soapenv:Envelope>"
        ),
        body
    )
}

fn max_objects(body: &str) -> Option<usize> {
    between(body, "<maxObjects>", "</maxObjects>").map(|n| n.parse().unwrap())
}

fn between<'a>(text: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = text.find(open)? + open.len();
    let end = text[start..].find(close)? + start;
    Some(&text[start..end])
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&#13;", "\r")
        .replace("&amp;", "&")
}

fn vm_names(count: usize) -> Vec<String> {
    (0..count).map(|i| format!("vm {i} & co")).collect()
}

#[tokio::test]
async fn login_reads_about_and_sends_the_session_cookie_back() {
    let vcenter = FakeVcenter::start(Script {
        vms: 5,
        ..Script::default()
    })
    .await;
    let mut client = Client::login(&vcenter.endpoint()).await.unwrap();
    assert_eq!(client.about().api_version, API_VERSION);
    assert_eq!(
        client.about().full_name,
        "VMware vCenter Server 8.0.2 build-22617221"
    );
    assert_eq!(
        client.about().instance_uuid,
        "0b4b2f63-7f0e-4c39-9d1a-33c1e2a77f10"
    );

    let vms = client.virtual_machines(None).await.unwrap();
    let names: Vec<String> = vms.iter().filter_map(|vm| vm.name.clone()).collect();
    assert_eq!(names, vm_names(5));
    assert_eq!(
        vms[3],
        VmProperties {
            moref: "vm-3".into(),
            name: Some("vm 3 & co".into()),
            uuid: Some("4232c8a5-9d4e-4c2b-8f5e-000000000003".into()),
            instance_uuid: Some("5032c8a5-9d4e-4c2b-8f5e-000000000003".into()),
            num_cpu: Some(4),
            memory_mb: Some(4096),
            storage_committed: Some(21_474_836_480),
            storage_uncommitted: Some(1_073_741_824),
            template: Some(false),
            power_state: Some(PowerState::PoweredOn),
            create_date: Some(1_709_296_496),
            managed_by: None,
            resource_pool: Some("resgroup-1".into()),
            parent: Some("group-v9".into()),
            host: Some("host-8".into()),
            attributes: Default::default(),
        }
    );

    let seen = vcenter.seen();
    assert_eq!(seen[0].method, "RetrieveServiceContent");
    assert_eq!(seen[0].cookie, None);
    assert_eq!(seen[0].soap_action.as_deref(), Some("\"urn:vim25\""));
    assert_eq!(seen[1].method, "Login");
    for later in &seen[2..] {
        assert_eq!(
            later.cookie.as_deref(),
            Some(r#"vmware_soap_session="52-1""#)
        );
        assert_eq!(later.soap_action.as_deref(), Some("\"urn:vim25/8.0.2.0\""));
    }
    for request in &seen {
        assert_eq!(
            request.content_type.as_deref(),
            Some("text/xml; charset=utf-8")
        );
    }
}

#[tokio::test]
async fn a_paged_retrieval_follows_tokens_and_returns_every_vm_once() {
    let vcenter = FakeVcenter::start(Script {
        vms: 10,
        paging: true,
        ..Script::default()
    })
    .await;
    let mut client = Client::login(&vcenter.endpoint()).await.unwrap();
    let vms = client.virtual_machines(Some(3)).await.unwrap();
    let names: Vec<String> = vms.iter().filter_map(|vm| vm.name.clone()).collect();
    assert_eq!(names, vm_names(10));
    assert_eq!(
        vcenter.methods()[2..],
        [
            "CreateContainerView",
            "RetrievePropertiesEx",
            "ContinueRetrievePropertiesEx",
            "ContinueRetrievePropertiesEx",
            "ContinueRetrievePropertiesEx",
            "DestroyView",
        ]
    );
    let retrieve = &vcenter.seen()[3].body;
    assert!(
        retrieve.contains("<maxObjects>3</maxObjects>"),
        "{retrieve}"
    );
    assert!(
        retrieve.contains("<pathSet>config.managedBy</pathSet>"),
        "{retrieve}"
    );
}

#[tokio::test]
async fn a_server_that_ignores_max_objects_answers_in_one_page() {
    let vcenter = FakeVcenter::start(Script {
        vms: 10,
        paging: false,
        ..Script::default()
    })
    .await;
    let mut client = Client::login(&vcenter.endpoint()).await.unwrap();
    assert_eq!(client.virtual_machines(Some(3)).await.unwrap().len(), 10);
    assert!(
        !vcenter
            .methods()
            .contains(&"ContinueRetrievePropertiesEx".to_owned())
    );
}

#[tokio::test]
async fn places_come_back_in_one_retrieval_including_virtual_apps() {
    let vcenter = FakeVcenter::start(Script::default()).await;
    let mut client = Client::login(&vcenter.endpoint()).await.unwrap();
    let places = client.places(Some(1000)).await.unwrap();
    assert_eq!(places.len(), 8);
    assert_eq!(
        places.get("resgroup-v11").unwrap().kind,
        PlaceKind::VirtualApp
    );
    assert_eq!(places.cluster_of("host-8"), Some("Cluster-A"));
    assert_eq!(places.datacenter_of("resgroup-v11"), Some("DC1"));
    assert_eq!(
        vcenter.methods()[2..],
        ["CreateContainerView", "RetrievePropertiesEx", "DestroyView"]
    );
    let view_request = &vcenter.seen()[2].body;
    for kind in [
        "Folder",
        "Datacenter",
        "ClusterComputeResource",
        "ComputeResource",
        "HostSystem",
        "ResourcePool",
    ] {
        assert!(
            view_request.contains(&format!("<type>{kind}</type>")),
            "{view_request}"
        );
    }
}

#[tokio::test]
async fn an_expired_session_is_renewed_once_and_the_retrieval_restarts() {
    let vcenter = FakeVcenter::start(Script {
        vms: 10,
        paging: true,
        expire_sessions_after_pages: Some(2),
        ..Script::default()
    })
    .await;
    let mut client = Client::login(&vcenter.endpoint()).await.unwrap();
    let vms = client.virtual_machines(Some(3)).await.unwrap();
    let names: Vec<String> = vms.iter().filter_map(|vm| vm.name.clone()).collect();
    assert_eq!(names, vm_names(10), "no VM twice, none missing");
    assert_eq!(vcenter.logins(), 2);
    let methods = vcenter.methods();
    let relogin = methods.iter().rposition(|m| m == "Login").unwrap();
    assert_eq!(
        methods[relogin - 1..relogin + 3],
        [
            "ContinueRetrievePropertiesEx",
            "Login",
            "CreateContainerView",
            "RetrievePropertiesEx"
        ],
        "the retrieval starts over instead of reusing the old token"
    );
    let seen = vcenter.seen();
    assert_eq!(
        seen.last().unwrap().cookie.as_deref(),
        Some(r#"vmware_soap_session="52-2""#)
    );
}

#[tokio::test]
async fn a_session_refused_again_after_a_new_login_is_an_error() {
    let vcenter = FakeVcenter::start(Script {
        vms: 3,
        refuse_every_session: true,
        ..Script::default()
    })
    .await;
    let mut client = Client::login(&vcenter.endpoint()).await.unwrap();
    let error = client.virtual_machines(None).await.unwrap_err();
    assert!(
        matches!(
            error,
            Error::NotAuthenticated {
                call: "CreateContainerView",
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(vcenter.logins(), 2, "one new login, not a loop");
}

#[tokio::test]
async fn wrong_credentials_are_an_invalid_login_that_is_not_transient() {
    let vcenter = FakeVcenter::start(Script::default()).await;
    let mut endpoint = vcenter.endpoint();
    endpoint.password = "wrong-Secret-123".into();
    let error = Client::login(&endpoint).await.unwrap_err();
    match &error {
        Error::InvalidLogin { user, url } => {
            assert_eq!((user.as_str(), url.as_str()), (USER, vcenter.url.as_str()))
        }
        other => panic!("expected InvalidLogin, got {other:?}"),
    }
    assert!(!error.is_transient());
    assert_eq!(error.reason(), "InvalidLogin");
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains("wrong-Secret-123"), "{shown}");
}

#[tokio::test]
async fn a_response_cut_mid_body_is_a_truncated_error() {
    let vcenter = FakeVcenter::start(Script {
        vms: 200,
        broken_retrieval: Some(Breakage::CutMidBody),
        ..Script::default()
    })
    .await;
    let mut client = Client::login(&vcenter.endpoint()).await.unwrap();
    let error = client.virtual_machines(None).await.unwrap_err();
    assert!(
        matches!(
            error,
            Error::Truncated {
                call: "RetrievePropertiesEx"
            }
        ),
        "{error:?}"
    );
    assert!(error.is_transient());
}

/// What the limits let through before the client stops reading, with room for the socket
/// buffers between the two ends (a few MiB each on Linux).
fn bounded_by(limit: u64) -> u64 {
    limit + 32 * 1024 * 1024
}

#[tokio::test]
async fn a_text_node_that_never_ends_is_refused_after_the_text_limit() {
    let vcenter = FakeVcenter::start(Script {
        broken_retrieval: Some(Breakage::EndlessText),
        ..Script::default()
    })
    .await;
    let endpoint = vcenter.endpoint();
    let mut client = Client::login(&endpoint).await.unwrap();
    let error = client.virtual_machines(None).await.unwrap_err();
    assert_eq!(error.reason(), "ResponseTooLarge", "{error}");
    let message = error.to_string();
    assert!(message.contains(&vcenter.url), "{message}");
    assert!(message.contains("text"), "{message}");
    assert!(!error.is_transient());
    let limit = text_limit(&endpoint);
    assert!(
        vcenter.streamed() <= bounded_by(limit),
        "the server sent {} bytes past a {limit}-byte limit",
        vcenter.streamed()
    );
}

#[tokio::test]
async fn a_response_that_never_ends_is_refused_after_the_response_limit() {
    let vcenter = FakeVcenter::start(Script {
        broken_retrieval: Some(Breakage::EndlessObjects),
        ..Script::default()
    })
    .await;
    let endpoint = small_responses(vcenter.endpoint());
    let mut client = Client::login(&endpoint).await.unwrap();
    let error = client.virtual_machines(None).await.unwrap_err();
    assert_eq!(error.reason(), "ResponseTooLarge", "{error}");
    let message = error.to_string();
    assert!(message.contains(&vcenter.url), "{message}");
    assert!(message.contains("whole response"), "{message}");
    let limit = response_limit(&endpoint);
    assert!(
        vcenter.streamed() <= bounded_by(limit),
        "the server sent {} bytes past a {limit}-byte limit",
        vcenter.streamed()
    );
}

#[tokio::test]
async fn paging_tokens_without_end_are_refused_after_the_page_limit() {
    let vcenter = FakeVcenter::start(Script {
        vms: 3,
        paging: true,
        endless_paging: true,
        ..Script::default()
    })
    .await;
    let endpoint = few_pages(vcenter.endpoint());
    let mut client = Client::login(&endpoint).await.unwrap();
    let error = tokio::time::timeout(Duration::from_secs(20), client.virtual_machines(Some(3)))
        .await
        .expect("the retrieval ends")
        .unwrap_err();
    assert_eq!(error.reason(), "TooManyPages", "{error}");
    assert!(error.to_string().contains(&vcenter.url), "{error}");
    let pages = vcenter
        .methods()
        .iter()
        .filter(|m| m.ends_with("RetrievePropertiesEx"))
        .count();
    assert_eq!(pages as u64, page_limit(&endpoint));
    assert_eq!(
        vcenter.methods().last().map(String::as_str),
        Some("DestroyView")
    );
}

#[tokio::test]
async fn a_response_that_stalls_mid_body_is_a_timeout() {
    let vcenter = FakeVcenter::start(Script {
        vms: 200,
        broken_retrieval: Some(Breakage::StallMidBody),
        ..Script::default()
    })
    .await;
    let mut endpoint = vcenter.endpoint();
    endpoint.read_timeout = Duration::from_millis(300);
    let mut client = Client::login(&endpoint).await.unwrap();
    let error = client.virtual_machines(None).await.unwrap_err();
    assert!(
        matches!(
            error,
            Error::Timeout {
                call: "RetrievePropertiesEx",
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.is_transient());
}

#[tokio::test]
async fn a_server_that_never_answers_is_a_timeout() {
    let vcenter = FakeVcenter::start(Script {
        vms: 2,
        broken_retrieval: Some(Breakage::StallBeforeResponse),
        ..Script::default()
    })
    .await;
    let mut endpoint = vcenter.endpoint();
    endpoint.read_timeout = Duration::from_millis(300);
    let mut client = Client::login(&endpoint).await.unwrap();
    let error = client.virtual_machines(None).await.unwrap_err();
    assert!(
        matches!(
            error,
            Error::Timeout {
                call: "RetrievePropertiesEx",
                ..
            }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_refused_connection_is_a_connect_error() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap().port()
    };
    let endpoint = Endpoint {
        url: format!("http://127.0.0.1:{port}/sdk"),
        username: USER.into(),
        password: PASSWORD.into(),
        tls: Tls::Verify { ca_file: None },
        allow_plain_http: true,
        connect_timeout: Duration::from_secs(2),
        read_timeout: Duration::from_secs(2),
        limits: Limits::default(),
    };
    let error = Client::login(&endpoint).await.unwrap_err();
    assert!(
        matches!(&error, Error::Connect { url, .. } if *url == endpoint.url),
        "{error:?}"
    );
    assert!(error.is_transient());
    assert_eq!(error.reason(), "ConnectFailed");
}

#[tokio::test]
async fn an_http_error_without_a_soap_fault_is_an_http_error() {
    let vcenter = FakeVcenter::start(Script {
        vms: 2,
        broken_retrieval: Some(Breakage::ServiceUnavailable),
        ..Script::default()
    })
    .await;
    let mut client = Client::login(&vcenter.endpoint()).await.unwrap();
    let error = client.virtual_machines(None).await.unwrap_err();
    match &error {
        Error::Http {
            status, excerpt, ..
        } => {
            assert_eq!(*status, 503);
            assert!(excerpt.contains("503 Service Unavailable"), "{excerpt}");
        }
        other => panic!("expected an HTTP error, got {other:?}"),
    }
    assert!(error.is_transient());
}

#[tokio::test]
async fn the_discarding_retrieval_makes_the_same_requests_and_counts_the_bytes() {
    let script = Script {
        vms: 25,
        paging: true,
        ..Script::default()
    };
    let collecting = FakeVcenter::start(script.clone()).await;
    let mut client = Client::login(&collecting.endpoint()).await.unwrap();
    assert_eq!(client.virtual_machines(Some(10)).await.unwrap().len(), 25);

    let discarding = FakeVcenter::start(script).await;
    let mut client = Client::login(&discarding.endpoint()).await.unwrap();
    let bytes = client.virtual_machines_discarding(Some(10)).await.unwrap();

    let requests = |vcenter: &FakeVcenter| -> Vec<(String, String)> {
        vcenter
            .seen()
            .into_iter()
            .map(|s| (s.method, s.body))
            .collect()
    };
    assert_eq!(requests(&collecting), requests(&discarding));
    let sent: usize = discarding.seen()[2..]
        .iter()
        .map(|s| s.response_bytes)
        .sum();
    assert_eq!(bytes, sent as u64);
}

#[tokio::test]
async fn logout_ends_the_session() {
    let vcenter = FakeVcenter::start(Script::default()).await;
    let client = Client::login(&vcenter.endpoint()).await.unwrap();
    client.logout().await.unwrap();
    let seen = vcenter.seen();
    let logout = seen.last().unwrap();
    assert_eq!(logout.method, "Logout");
    assert_eq!(
        logout.cookie.as_deref(),
        Some(r#"vmware_soap_session="52-1""#)
    );
    assert!(vcenter.state.lock().unwrap().sessions.is_empty());
}

/// `openssl s_server` with a certificate for 127.0.0.1 issued by its own test CA.
struct TlsServer {
    dir: tempfile::TempDir,
    url: String,
    server: std::process::Child,
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

fn openssl(dir: &std::path::Path, args: &[&str]) {
    let status = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("the TLS test needs the openssl program (apt-get install openssl)");
    assert!(status.success(), "openssl {args:?} failed");
}

impl TlsServer {
    async fn start() -> TlsServer {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path();
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        for name in ["ca", "other-ca"] {
            let (key, pem, subject) = (
                format!("{name}.key"),
                format!("{name}.pem"),
                format!("/CN={name}"),
            );
            let mut args = vec![
                "req", "-x509", "-days", "2", "-subj", &subject, "-keyout", &key, "-out", &pem,
            ];
            args.extend(ec);
            openssl(path, &args);
        }
        let mut args = vec![
            "req",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "leaf.key",
            "-out",
            "leaf.csr",
        ];
        args.extend(ec);
        openssl(path, &args);
        std::fs::write(
            path.join("leaf.ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
        )
        .unwrap();
        openssl(
            path,
            &[
                "x509",
                "-req",
                "-days",
                "2",
                "-in",
                "leaf.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-extfile",
                "leaf.ext",
                "-out",
                "leaf.pem",
            ],
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let server = std::process::Command::new("openssl")
            .args([
                "s_server", "-quiet", "-www", "-cert", "leaf.pem", "-key", "leaf.key",
            ])
            .args(["-accept", &format!("127.0.0.1:{port}")])
            .current_dir(path)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        for _ in 0..100 {
            if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        TlsServer {
            url: format!("https://127.0.0.1:{port}/sdk"),
            dir,
            server,
        }
    }

    fn endpoint(&self, tls: Tls) -> Endpoint {
        Endpoint {
            url: self.url.clone(),
            username: USER.into(),
            password: PASSWORD.into(),
            tls,
            allow_plain_http: false,
            connect_timeout: Duration::from_secs(2),
            read_timeout: Duration::from_millis(500),
            limits: Limits::default(),
        }
    }
}

#[tokio::test]
async fn an_untrusted_certificate_is_a_tls_error_and_a_given_ca_is_trusted() {
    let server = TlsServer::start().await;
    let ca = |name: &str| Tls::Verify {
        ca_file: Some(server.dir.path().join(name)),
    };
    for tls in [Tls::Verify { ca_file: None }, ca("other-ca.pem")] {
        let error = Client::login(&server.endpoint(tls.clone()))
            .await
            .unwrap_err();
        match &error {
            Error::Tls { url, .. } => assert_eq!(*url, server.url),
            other => panic!("{tls:?} gave {other:?}"),
        }
        assert!(
            error
                .to_string()
                .starts_with("TLS certificate verification failed for https://127.0.0.1:"),
            "{error}"
        );
        assert!(!error.is_transient());
    }
    // The handshake succeeds; `s_server -www` then never answers a POST.
    for tls in [ca("ca.pem"), Tls::Insecure] {
        let error = Client::login(&server.endpoint(tls.clone()))
            .await
            .unwrap_err();
        assert!(
            matches!(
                error,
                Error::Timeout {
                    call: "RetrieveServiceContent",
                    ..
                }
            ),
            "{tls:?} gave {error:?}"
        );
    }
}

fn text_limit(endpoint: &Endpoint) -> u64 {
    endpoint.limits.text_bytes as u64
}

fn response_limit(endpoint: &Endpoint) -> u64 {
    endpoint.limits.response_bytes
}

fn page_limit(endpoint: &Endpoint) -> u64 {
    endpoint.limits.pages.into()
}

/// The response limit a test can reach in a moment (the default is hundreds of MiB).
fn small_responses(mut endpoint: Endpoint) -> Endpoint {
    endpoint.limits.response_bytes = 4 * 1024 * 1024;
    endpoint
}

/// The page limit a test can reach in a moment (the default is thousands of pages).
fn few_pages(mut endpoint: Endpoint) -> Endpoint {
    endpoint.limits.pages = 20;
    endpoint
}
