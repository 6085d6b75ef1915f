//! The simulated vCenter over real HTTP on 127.0.0.1: hand-written SOAP envelopes, as a
//! client library would send them, and the answers checked against `inventory_at`.
// A whole test crate: its helpers fail the test by panicking, like its #[test]s.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use quick_xml::Reader;
use quick_xml::events::Event;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, COOKIE, SET_COOKIE};
use std::collections::HashMap;
use vctp::sim::{Clock, SimConfig, SimVm, Simulator};
use vctp::vsphere::PowerState;

/// 2025-03-10 09:00 UTC.
const T0: i64 = 1_741_597_200;

const VM_PATHS: [&str; 15] = [
    "name",
    "config.uuid",
    "config.instanceUuid",
    "config.hardware.numCPU",
    "config.hardware.memoryMB",
    "summary.storage.committed",
    "summary.storage.uncommitted",
    "config.template",
    "runtime.powerState",
    "config.createDate",
    "config.managedBy",
    "resourcePool",
    "parent",
    "runtime.host",
    "customValue",
];
const PLACE_TYPES: [&str; 7] = [
    "Folder",
    "Datacenter",
    "ClusterComputeResource",
    "ComputeResource",
    "HostSystem",
    "ResourcePool",
    "VirtualApp",
];

struct Sim {
    simulator: Simulator,
    clock: Clock,
    base: String,
    http: reqwest::Client,
}

struct Reply {
    status: StatusCode,
    set_cookie: Option<String>,
    body: String,
}

impl Sim {
    async fn start(config: SimConfig) -> Sim {
        let clock = Clock::manual(T0);
        let simulator = Simulator::new(config, clock.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let base = format!("http://{}", listener.local_addr().expect("local address"));
        tokio::spawn(simulator.clone().serve(listener, std::future::pending()));
        Sim {
            simulator,
            clock,
            base,
            http: reqwest::Client::new(),
        }
    }

    async fn call(&self, path: &str, cookie: Option<&str>, body: &str) -> Reply {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .header(CONTENT_TYPE, "text/xml; charset=utf-8")
            .header("SOAPAction", "urn:vim25/8.0.2.0")
            .body(envelope(body));
        if let Some(cookie) = cookie {
            request = request.header(COOKIE, cookie);
        }
        let response = request.send().await.expect("send a SOAP request");
        let status = response.status();
        let set_cookie = response
            .headers()
            .get(SET_COOKIE)
            .map(|v| v.to_str().expect("ASCII cookie").to_string());
        let body = response.text().await.expect("read the response");
        Reply {
            status,
            set_cookie,
            body,
        }
    }

    /// Logs in and returns the `Cookie` header value to send back.
    async fn login(&self, path: &str) -> String {
        let reply = self.call(path, None, &login_body("vctp", "vctp-sim")).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        let set_cookie = reply.set_cookie.expect("a session cookie");
        set_cookie
            .split(';')
            .next()
            .expect("a name=value pair")
            .to_string()
    }

    async fn view(&self, path: &str, cookie: &str, types: &[&str]) -> String {
        let types: String = types.iter().map(|t| format!("<type>{t}</type>")).collect();
        let reply = self
            .call(
                path,
                Some(cookie),
                &format!(
                    r#"<CreateContainerView xmlns="urn:vim25"><_this type="ViewManager">ViewManager</_this><container type="Folder">group-d1</container>{types}<recursive>true</recursive></CreateContainerView>"#
                ),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        let view = between(
            &reply.body,
            r#"<returnval type="ContainerView">"#,
            "</returnval>",
        );
        view.expect("a ContainerView moref").to_string()
    }

    /// Every object of a view with the given properties, following tokens; also how many
    /// pages it took.
    async fn retrieve_all(
        &self,
        path: &str,
        cookie: &str,
        view: &str,
        props: &[(&str, &[&str])],
        max_objects: Option<u32>,
    ) -> (Vec<Object>, usize) {
        let first = self
            .call(path, Some(cookie), &retrieve_body(view, props, max_objects))
            .await;
        assert_eq!(first.status, StatusCode::OK, "{}", first.body);
        let (mut objects, mut token) = parse_result(&first.body);
        let mut pages = 1;
        while let Some(t) = token {
            let next = self
                .call(
                    path,
                    Some(cookie),
                    &format!(
                        r#"<ContinueRetrievePropertiesEx xmlns="urn:vim25"><_this type="PropertyCollector">propertyCollector</_this><token>{t}</token></ContinueRetrievePropertiesEx>"#
                    ),
                )
                .await;
            assert_eq!(next.status, StatusCode::OK, "{}", next.body);
            let (more, next_token) = parse_result(&next.body);
            objects.extend(more);
            token = next_token;
            pages += 1;
        }
        (objects, pages)
    }

    /// What a collector would make of one vCenter: every VM with its references resolved
    /// through the inventory objects.
    async fn collect(
        &self,
        path: &str,
        cookie: &str,
        max_objects: Option<u32>,
    ) -> (Vec<SimVm>, usize) {
        let view = self.view(path, cookie, &PLACE_TYPES).await;
        let place_props: Vec<(&str, &[&str])> = PLACE_TYPES
            .iter()
            .map(|t| (*t, &["name", "parent"][..]))
            .collect();
        let (places, _) = self
            .retrieve_all(path, cookie, &view, &place_props, None)
            .await;
        let places: HashMap<String, Object> =
            places.into_iter().map(|p| (p.moref.clone(), p)).collect();
        let view = self.view(path, cookie, &["VirtualMachine"]).await;
        let (vms, pages) = self
            .retrieve_all(
                path,
                cookie,
                &view,
                &[("VirtualMachine", &VM_PATHS)],
                max_objects,
            )
            .await;
        (vms.iter().map(|vm| resolve(vm, &places)).collect(), pages)
    }
}

fn envelope(body: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"#
    )
}

fn login_body(user: &str, password: &str) -> String {
    format!(
        r#"<Login xmlns="urn:vim25"><_this type="SessionManager">SessionManager</_this><userName>{user}</userName><password>{password}</password></Login>"#
    )
}

const CURRENT_TIME: &str = r#"<CurrentTime xmlns="urn:vim25"><_this type="ServiceInstance">ServiceInstance</_this></CurrentTime>"#;
const SERVICE_CONTENT: &str = r#"<RetrieveServiceContent xmlns="urn:vim25"><_this type="ServiceInstance">ServiceInstance</_this></RetrieveServiceContent>"#;

fn retrieve_body(view: &str, props: &[(&str, &[&str])], max_objects: Option<u32>) -> String {
    let prop_sets: String = props
        .iter()
        .map(|(kind, paths)| {
            let paths: String = paths
                .iter()
                .map(|p| format!("<pathSet>{p}</pathSet>"))
                .collect();
            format!("<propSet><type>{kind}</type><all>false</all>{paths}</propSet>")
        })
        .collect();
    let options = max_objects
        .map(|m| format!("<options><maxObjects>{m}</maxObjects></options>"))
        .unwrap_or_else(|| "<options></options>".into());
    format!(
        r#"<RetrievePropertiesEx xmlns="urn:vim25"><_this type="PropertyCollector">propertyCollector</_this><specSet>{prop_sets}<objectSet><obj type="ContainerView">{view}</obj><skip>true</skip><selectSet xsi:type="TraversalSpec"><name>traverseEntities</name><type>ContainerView</type><path>view</path><skip>false</skip></selectSet></objectSet></specSet>{options}</RetrievePropertiesEx>"#
    )
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let to = text[from..].find(end)? + from;
    Some(&text[from..to])
}

/// One `ObjectContent`: its moref and type, and each property as (xsi:type, moref type,
/// text; nested elements' texts joined by `|`).
#[derive(Debug, Default)]
struct Object {
    kind: String,
    moref: String,
    props: HashMap<String, (String, String, String)>,
}

impl Object {
    fn text(&self, path: &str) -> Option<&str> {
        self.props.get(path).map(|(_, _, text)| text.as_str())
    }
}

/// The objects and token of a RetrievePropertiesEx/Continue response.
fn parse_result(xml: &str) -> (Vec<Object>, Option<String>) {
    let mut reader = Reader::from_str(xml);
    let mut path: Vec<String> = Vec::new();
    let (mut objects, mut token) = (Vec::new(), None);
    let mut object = Object::default();
    let (mut name, mut val) = (String::new(), (String::new(), String::new(), String::new()));
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Start(e) => {
                let local = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                let attr = |key: &[u8]| {
                    e.attributes()
                        .flatten()
                        .find(|a| a.key.as_ref() == key)
                        .map(|a| String::from_utf8_lossy(&a.value).into_owned())
                        .unwrap_or_default()
                };
                match local.as_str() {
                    "obj" => object.kind = attr(b"type"),
                    "val" => val = (attr(b"xsi:type"), attr(b"type"), String::new()),
                    _ if path.iter().any(|p| p == "val") && !val.2.is_empty() => val.2.push('|'),
                    _ => {}
                }
                path.push(local);
            }
            Event::Text(t) => {
                let text = t.decode().expect("UTF-8").into_owned();
                match path.last().map(String::as_str) {
                    Some("token") => token = Some(text),
                    Some("obj") => object.moref = text,
                    Some("name") if path.len() >= 2 && path[path.len() - 2] == "propSet" => {
                        name = text
                    }
                    _ if path.iter().any(|p| p == "val") => val.2.push_str(&text),
                    _ => {}
                }
            }
            Event::GeneralRef(r) => {
                let entity = r.decode().expect("UTF-8").into_owned();
                let resolved = quick_xml::escape::resolve_predefined_entity(&entity)
                    .expect("a predefined entity");
                val.2.push_str(resolved);
            }
            Event::End(_) => match path.pop().as_deref() {
                Some("propSet") => {
                    object
                        .props
                        .insert(std::mem::take(&mut name), std::mem::take(&mut val));
                }
                Some("objects") => objects.push(std::mem::take(&mut object)),
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    (objects, token)
}

/// A VM's ObjectContent as a `SimVm`, its references resolved through `places`.
fn resolve(vm: &Object, places: &HashMap<String, Object>) -> SimVm {
    let place_name = |moref: &str| places[moref].text("name").expect("a name").to_string();
    let ancestors = |moref: &str| {
        std::iter::successors(places.get(moref), |p| {
            p.text("parent").and_then(|parent| places.get(parent))
        })
        .collect::<Vec<_>>()
    };
    let host = vm.text("runtime.host").expect("a host");
    let compute = &ancestors(host)[1];
    let folder_path = vm.text("parent").map_or(String::new(), |folder| {
        let chain = ancestors(folder);
        let to_dc = chain
            .iter()
            .position(|p| p.kind == "Datacenter")
            .expect("a datacenter");
        chain[..=to_dc]
            .iter()
            .rev()
            .map(|p| format!("/{}", p.text("name").unwrap_or_default()))
            .collect()
    });
    let number = |path: &str| vm.text(path).expect(path).parse::<i64>().expect("a number");
    SimVm {
        moref: vm.moref.clone(),
        name: vm.text("name").expect("a name").into(),
        uuid: vm.text("config.uuid").expect("a uuid").into(),
        instance_uuid: vm
            .text("config.instanceUuid")
            .expect("an instance uuid")
            .into(),
        num_cpu: number("config.hardware.numCPU"),
        memory_mb: number("config.hardware.memoryMB"),
        committed_bytes: number("summary.storage.committed"),
        uncommitted_bytes: number("summary.storage.uncommitted"),
        template: vm.text("config.template") == Some("true"),
        power_state: PowerState::parse(vm.text("runtime.powerState").unwrap_or_default())
            .expect("a power state"),
        create_date: vm.text("config.createDate").map(|d| {
            chrono::DateTime::parse_from_rfc3339(d)
                .expect("an xsd:dateTime")
                .timestamp()
        }),
        srm_placeholder: vm.text("config.managedBy") == Some("com.vmware.vcDr|placeholderVm"),
        pool_name: vm.text("resourcePool").map(place_name),
        folder_path,
        cluster: (compute.kind == "ClusterComputeResource")
            .then(|| compute.text("name").unwrap_or_default().to_string()),
        datacenter: ancestors(host)
            .iter()
            .find(|p| p.kind == "Datacenter")
            .and_then(|p| p.text("name"))
            .unwrap_or_default()
            .to_string(),
        host: place_name(host),
        // The key of the simulator's one field, `Tenant`, then the value.
        tenant: vm.text("customValue").map(|value| {
            value
                .strip_prefix("1|")
                .expect("a value of field 1")
                .to_string()
        }),
    }
}

fn config(vms: usize) -> SimConfig {
    SimConfig {
        vms,
        ..SimConfig::default()
    }
}

#[tokio::test]
async fn login_with_the_configured_credentials_sets_a_session_cookie() {
    let sim = Sim::start(config(10)).await;
    let reply = sim
        .call("/vc1/sdk", None, &login_body("vctp", "vctp-sim"))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        reply
            .body
            .contains("<LoginResponse xmlns=\"urn:vim25\"><returnval><key>")
    );
    let cookie = reply.set_cookie.expect("Set-Cookie");
    assert!(cookie.starts_with("vmware_soap_session=\""), "{cookie}");
    assert!(cookie.ends_with("; Path=/vc1/sdk; HttpOnly"), "{cookie}");
}

#[tokio::test]
async fn a_wrong_password_gets_an_invalid_login_fault() {
    let sim = Sim::start(config(10)).await;
    let reply = sim
        .call("/vc1/sdk", None, &login_body("vctp", "nope"))
        .await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(reply.set_cookie.is_none());
    assert!(reply.body.contains(
        "<faultstring>Cannot complete login due to an incorrect user name or password.</faultstring>"
    ));
    assert!(reply.body.contains(
        r#"<detail><InvalidLoginFault xmlns="urn:vim25" xsi:type="InvalidLogin"></InvalidLoginFault></detail>"#
    ));
}

#[tokio::test]
async fn calls_without_a_session_are_not_authenticated() {
    let sim = Sim::start(config(10)).await;
    for cookie in [None, Some("vmware_soap_session=\"forged\"")] {
        let reply = sim.call("/vc1/sdk", cookie, CURRENT_TIME).await;
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(
            reply.body.contains(r#"<NotAuthenticatedFault xmlns="urn:vim25" xsi:type="NotAuthenticated"><object type="ServiceInstance">ServiceInstance</object>"#),
            "{}",
            reply.body
        );
    }
    // The service content is what a client reads before it logs in.
    let reply = sim.call("/vc1/sdk", None, SERVICE_CONTENT).await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn expired_and_logged_out_sessions_are_not_authenticated() {
    let sim = Sim::start(config(10)).await;
    let cookie = sim.login("/vc1/sdk").await;
    let reply = sim.call("/vc1/sdk", Some(&cookie), CURRENT_TIME).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        reply
            .body
            .contains("<returnval>2025-03-10T09:00:00Z</returnval>")
    );
    sim.simulator.expire_sessions();
    let reply = sim.call("/vc1/sdk", Some(&cookie), CURRENT_TIME).await;
    assert!(
        reply.body.contains("NotAuthenticatedFault"),
        "{}",
        reply.body
    );

    let cookie = sim.login("/vc1/sdk").await;
    let logout =
        r#"<Logout xmlns="urn:vim25"><_this type="SessionManager">SessionManager</_this></Logout>"#;
    assert_eq!(
        sim.call("/vc1/sdk", Some(&cookie), logout).await.status,
        StatusCode::OK
    );
    let reply = sim.call("/vc1/sdk", Some(&cookie), CURRENT_TIME).await;
    assert!(
        reply.body.contains("NotAuthenticatedFault"),
        "{}",
        reply.body
    );
}

#[tokio::test]
async fn paged_retrieval_returns_every_vm_once_as_inventory_at_shows_it() {
    let sim = Sim::start(config(2500)).await;
    let cookie = sim.login("/vc1/sdk").await;
    let (vms, pages) = sim.collect("/vc1/sdk", &cookie, Some(700)).await;
    let expected = sim.simulator.inventory_at(0, T0);
    assert!(expected.len() > 2300, "{} VMs", expected.len());
    assert_eq!(pages, expected.len().div_ceil(700));
    assert_eq!(vms.len(), expected.len());
    for (got, want) in vms.iter().zip(&expected) {
        assert_eq!(got, want);
    }
    assert!(expected.iter().any(|vm| vm.srm_placeholder));
    assert!(
        expected
            .iter()
            .any(|vm| vm.template && vm.pool_name.is_none())
    );
    assert!(expected.iter().any(|vm| vm.create_date.is_none()));
    assert!(expected.iter().any(|vm| vm.cluster.is_none()));
}

#[tokio::test]
async fn a_paged_retrieval_stays_at_the_moment_it_started() {
    let sim = Sim::start(config(1000)).await;
    let cookie = sim.login("/vc1/sdk").await;
    let view = sim.view("/vc1/sdk", &cookie, &["VirtualMachine"]).await;
    let first = sim
        .call(
            "/vc1/sdk",
            Some(&cookie),
            &retrieve_body(&view, &[("VirtualMachine", &["name"])], Some(100)),
        )
        .await;
    let (mut objects, mut token) = parse_result(&first.body);
    // A week later the inventory differs, but the retrieval under way does not.
    sim.clock.set(T0 + 7 * 86_400);
    while let Some(t) = token {
        let next = sim
            .call(
                "/vc1/sdk",
                Some(&cookie),
                &format!(r#"<ContinueRetrievePropertiesEx xmlns="urn:vim25"><_this type="PropertyCollector">propertyCollector</_this><token>{t}</token></ContinueRetrievePropertiesEx>"#),
            )
            .await;
        let (more, next_token) = parse_result(&next.body);
        objects.extend(more);
        token = next_token;
    }
    let got: Vec<&str> = objects.iter().map(|o| o.moref.as_str()).collect();
    let then: Vec<String> = sim
        .simulator
        .inventory_at(0, T0)
        .into_iter()
        .map(|vm| vm.moref)
        .collect();
    let now: Vec<String> = sim
        .simulator
        .inventory_at(0, T0 + 7 * 86_400)
        .into_iter()
        .map(|vm| vm.moref)
        .collect();
    assert_eq!(got, then);
    assert_ne!(then, now);
    let (vms, _) = sim.collect("/vc1/sdk", &cookie, None).await;
    assert_eq!(
        vms,
        sim.simulator.inventory_at(0, T0 + 7 * 86_400),
        "a new retrieval sees the new time"
    );
}

#[tokio::test]
async fn the_server_page_size_caps_a_larger_max_objects() {
    let sim = Sim::start(SimConfig {
        vms: 300,
        page_size: 100,
        ..SimConfig::default()
    })
    .await;
    let cookie = sim.login("/vc1/sdk").await;
    let view = sim.view("/vc1/sdk", &cookie, &["VirtualMachine"]).await;
    for max_objects in [Some(5000), None] {
        let reply = sim
            .call(
                "/vc1/sdk",
                Some(&cookie),
                &retrieve_body(&view, &[("VirtualMachine", &["name"])], max_objects),
            )
            .await;
        let (objects, token) = parse_result(&reply.body);
        assert_eq!(objects.len(), 100);
        assert!(token.is_some());
    }
}

#[tokio::test]
async fn a_cancelled_retrieval_cannot_be_continued() {
    let sim = Sim::start(config(300)).await;
    let cookie = sim.login("/vc1/sdk").await;
    let view = sim.view("/vc1/sdk", &cookie, &["VirtualMachine"]).await;
    let reply = sim
        .call(
            "/vc1/sdk",
            Some(&cookie),
            &retrieve_body(&view, &[("VirtualMachine", &["name"])], Some(10)),
        )
        .await;
    let token = parse_result(&reply.body).1.expect("a token");
    let cancel = format!(
        r#"<CancelRetrievePropertiesEx xmlns="urn:vim25"><_this type="PropertyCollector">propertyCollector</_this><token>{token}</token></CancelRetrievePropertiesEx>"#
    );
    assert_eq!(
        sim.call("/vc1/sdk", Some(&cookie), &cancel).await.status,
        StatusCode::OK
    );
    let next = format!(
        r#"<ContinueRetrievePropertiesEx xmlns="urn:vim25"><_this type="PropertyCollector">propertyCollector</_this><token>{token}</token></ContinueRetrievePropertiesEx>"#
    );
    let reply = sim.call("/vc1/sdk", Some(&cookie), &next).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        reply
            .body
            .contains("<invalidProperty>token</invalidProperty>"),
        "{}",
        reply.body
    );
}

#[tokio::test]
async fn a_destroyed_view_is_no_longer_found() {
    let sim = Sim::start(config(10)).await;
    let cookie = sim.login("/vc1/sdk").await;
    let view = sim.view("/vc1/sdk", &cookie, &["VirtualMachine"]).await;
    let destroy = format!(
        r#"<DestroyView xmlns="urn:vim25"><_this type="ContainerView">{view}</_this></DestroyView>"#
    );
    assert_eq!(
        sim.call("/vc1/sdk", Some(&cookie), &destroy).await.status,
        StatusCode::OK
    );
    let reply = sim
        .call(
            "/vc1/sdk",
            Some(&cookie),
            &retrieve_body(&view, &[("VirtualMachine", &["name"])], None),
        )
        .await;
    assert!(
        reply.body.contains("ManagedObjectNotFoundFault"),
        "{}",
        reply.body
    );
}

#[tokio::test]
async fn properties_are_typed_like_vcenter_writes_them_and_unset_ones_are_left_out() {
    let sim = Sim::start(config(2000)).await;
    let cookie = sim.login("/vc1/sdk").await;
    let view = sim.view("/vc1/sdk", &cookie, &["VirtualMachine"]).await;
    let reply = sim
        .call(
            "/vc1/sdk",
            Some(&cookie),
            &retrieve_body(&view, &[("VirtualMachine", &VM_PATHS)], None),
        )
        .await;
    let body = &reply.body;
    for typed in [
        r#"<propSet><name>config.hardware.numCPU</name><val xsi:type="xsd:int">"#,
        r#"<propSet><name>summary.storage.committed</name><val xsi:type="xsd:long">"#,
        r#"<propSet><name>config.template</name><val xsi:type="xsd:boolean">false</val>"#,
        r#"<propSet><name>runtime.powerState</name><val xsi:type="VirtualMachinePowerState">poweredOn</val>"#,
        r#"<propSet><name>config.createDate</name><val xsi:type="xsd:dateTime">20"#,
        r#"<propSet><name>resourcePool</name><val xsi:type="ManagedObjectReference" type="ResourcePool">resgroup-"#,
        r#"<propSet><name>resourcePool</name><val xsi:type="ManagedObjectReference" type="VirtualApp">resgroup-v"#,
        r#"<propSet><name>parent</name><val xsi:type="ManagedObjectReference" type="Folder">group-v"#,
        r#"<propSet><name>runtime.host</name><val xsi:type="ManagedObjectReference" type="HostSystem">host-"#,
        r#"<val xsi:type="ManagedByInfo"><extensionKey>com.vmware.vcDr</extensionKey><type>placeholderVm</type></val>"#,
    ] {
        assert!(body.contains(typed), "no {typed}");
    }
    let (objects, _) = parse_result(body);
    let templates: Vec<&Object> = objects
        .iter()
        .filter(|o| o.text("config.template") == Some("true"))
        .collect();
    assert!(!templates.is_empty());
    assert!(
        templates
            .iter()
            .all(|t| !t.props.contains_key("resourcePool"))
    );
}

#[tokio::test]
async fn the_same_seed_and_time_give_byte_identical_pages() {
    let mut pages = Vec::new();
    for _ in 0..2 {
        let sim = Sim::start(config(500)).await;
        let cookie = sim.login("/vc1/sdk").await;
        let view = sim.view("/vc1/sdk", &cookie, &["VirtualMachine"]).await;
        let reply = sim
            .call(
                "/vc1/sdk",
                Some(&cookie),
                &retrieve_body(&view, &[("VirtualMachine", &VM_PATHS)], None),
            )
            .await;
        pages.push(reply.body);
    }
    assert_eq!(pages[0], pages[1]);
}

#[tokio::test]
async fn retrieve_properties_without_ex_returns_everything_at_once() {
    let sim = Sim::start(SimConfig {
        vms: 300,
        page_size: 50,
        ..SimConfig::default()
    })
    .await;
    let cookie = sim.login("/vc1/sdk").await;
    let view = sim.view("/vc1/sdk", &cookie, &["VirtualMachine"]).await;
    let body = retrieve_body(&view, &[("VirtualMachine", &["name"])], None)
        .replace("RetrievePropertiesEx", "RetrieveProperties");
    let reply = sim.call("/vc1/sdk", Some(&cookie), &body).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let count = reply
        .body
        .matches(r#"<returnval><obj type="VirtualMachine">"#)
        .count();
    assert_eq!(count, sim.simulator.inventory_at(0, T0).len());
}

#[tokio::test]
async fn malformed_xml_gets_an_invalid_request_fault_and_the_server_carries_on() {
    let sim = Sim::start(config(10)).await;
    for body in [
        "",
        "<<<",
        "<a><b></a>",
        "not xml",
        "<soapenv:Envelope>",
        "\u{0}\u{1}",
    ] {
        let response = sim
            .http
            .post(format!("{}/vc1/sdk", sim.base))
            .body(body)
            .send()
            .await
            .expect("a response");
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let text = response.text().await.expect("a body");
        assert!(
            text.contains(r#"<InvalidRequestFault xmlns="urn:vim25" xsi:type="InvalidRequest">"#),
            "{body:?}: {text}"
        );
    }
    let nested = envelope(&"<a>".repeat(10_000));
    let reply = sim.call("/vc1/sdk", None, &nested).await;
    assert!(reply.body.contains("InvalidRequestFault"));
    let spec_without_obj = r#"<RetrievePropertiesEx xmlns="urn:vim25"><_this type="PropertyCollector">propertyCollector</_this><specSet><objectSet><skip>true</skip></objectSet></specSet></RetrievePropertiesEx>"#;
    let cookie = sim.login("/vc1/sdk").await;
    let reply = sim.call("/vc1/sdk", Some(&cookie), spec_without_obj).await;
    assert!(reply.body.contains("InvalidRequestFault"), "{}", reply.body);
    assert_eq!(
        sim.call("/vc1/sdk", None, SERVICE_CONTENT).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn an_unknown_method_gets_a_not_implemented_fault_naming_it() {
    let sim = Sim::start(config(10)).await;
    let reply = sim
        .call("/vc1/sdk", None, r#"<PowerOnVM_Task xmlns="urn:vim25"><_this type="VirtualMachine">vm-1</_this></PowerOnVM_Task>"#)
        .await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(reply.body.contains("PowerOnVM_Task"), "{}", reply.body);
    assert!(
        reply.body.contains(r#"xsi:type="NotImplemented""#),
        "{}",
        reply.body
    );
}

#[tokio::test]
async fn each_vcenter_path_serves_its_own_inventory() {
    let sim = Sim::start(SimConfig {
        vms: 600,
        vcenters: 2,
        ..SimConfig::default()
    })
    .await;
    assert_eq!(
        sim.simulator.vcenter_names(),
        ["vc1.sim.vctp.local", "vc2.sim.vctp.local"]
    );
    assert_eq!(
        sim.simulator.sdk_urls(&sim.base),
        [
            format!("{}/vc1/sdk", sim.base),
            format!("{}/vc2/sdk", sim.base)
        ]
    );
    let one = sim.login("/vc1/sdk").await;
    let two = sim.login("/vc2/sdk").await;
    let (vc1, _) = sim.collect("/vc1/sdk", &one, None).await;
    let (vc2, _) = sim.collect("/vc2/sdk", &two, None).await;
    assert_eq!(vc1, sim.simulator.inventory_at(0, T0));
    assert_eq!(vc2, sim.simulator.inventory_at(1, T0));
    assert_ne!(vc1, vc2);
    // `/sdk` is the first vCenter; a session belongs to the vCenter it logged in to.
    let (alias, _) = sim.collect("/sdk", &one, None).await;
    assert_eq!(alias, vc1);
    let reply = sim.call("/vc2/sdk", Some(&one), CURRENT_TIME).await;
    assert!(reply.body.contains("NotAuthenticatedFault"));
    let uuid = |body: String| between(&body, "<instanceUuid>", "</instanceUuid>").map(String::from);
    let first = uuid(sim.call("/vc1/sdk", None, SERVICE_CONTENT).await.body);
    let second = uuid(sim.call("/vc2/sdk", None, SERVICE_CONTENT).await.body);
    assert!(first.is_some() && first != second);
    for missing in ["/vc3/sdk", "/vc0/sdk", "/vc01/sdk", "/x/sdk"] {
        assert_eq!(
            sim.call(missing, None, SERVICE_CONTENT).await.status,
            StatusCode::NOT_FOUND,
            "{missing}"
        );
    }
}

#[tokio::test]
async fn the_service_content_and_version_document_look_like_vcenter_8() {
    let sim = Sim::start(config(10)).await;
    let body = sim.call("/vc1/sdk", None, SERVICE_CONTENT).await.body;
    for part in [
        r#"<RetrieveServiceContentResponse xmlns="urn:vim25"><returnval><rootFolder type="Folder">group-d1</rootFolder><propertyCollector type="PropertyCollector">propertyCollector</propertyCollector><viewManager type="ViewManager">ViewManager</viewManager><about><name>VMware vCenter Server</name>"#,
        "<apiType>VirtualCenter</apiType><apiVersion>8.0.2.0</apiVersion>",
        "<productLineId>vpx</productLineId>",
        r#"<sessionManager type="SessionManager">SessionManager</sessionManager>"#,
    ] {
        assert!(body.contains(part), "no {part} in {body}");
    }
    for path in [
        "/vc1/sdk/vimServiceVersions.xml",
        "/sdk/vimServiceVersions.xml",
    ] {
        let document = sim
            .http
            .get(format!("{}{path}", sim.base))
            .send()
            .await
            .expect("a response")
            .text()
            .await
            .expect("a body");
        assert!(
            document.contains("<name>urn:vim25</name>\n  <version>8.0.2.0</version>"),
            "{document}"
        );
        assert!(document.contains("<version>7.0.3.0</version>"));
    }
}

#[tokio::test]
async fn serve_returns_once_shutdown_resolves() {
    let simulator = Simulator::new(config(10), Clock::manual(T0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(simulator.serve(listener, async {
        let _ = stopped.await;
    }));
    let _ = stop.send(());
    let result = tokio::time::timeout(std::time::Duration::from_secs(5), server).await;
    assert!(matches!(result, Ok(Ok(Ok(())))), "{result:?}");
}

#[tokio::test]
async fn fetch_serves_what_pyvmomi_property_accessors_ask_for_including_a_views_contents() {
    let sim = Sim::start(config(200)).await;
    let cookie = sim.login("/vc1/sdk").await;
    let fetch = |kind: &str, moref: &str, prop: &str| {
        format!(
            r#"<Fetch xmlns="urn:vim25"><_this type="{kind}">{moref}</_this><prop>{prop}</prop></Fetch>"#
        )
    };
    let vm = &sim.simulator.inventory_at(0, T0)[0];
    let reply = sim
        .call(
            "/vc1/sdk",
            Some(&cookie),
            &fetch("VirtualMachine", &vm.moref, "name"),
        )
        .await;
    assert!(
        reply.body.contains(&format!(r#"<FetchResponse xmlns="urn:vim25"><returnval xsi:type="xsd:string">{}</returnval></FetchResponse>"#, vm.name)),
        "{}",
        reply.body
    );
    let reply = sim
        .call(
            "/vc1/sdk",
            Some(&cookie),
            &fetch("Folder", "group-d1", "name"),
        )
        .await;
    assert!(
        reply
            .body
            .contains(r#"<returnval xsi:type="xsd:string">Datacenters</returnval>"#)
    );
    let reply = sim
        .call(
            "/vc1/sdk",
            Some(&cookie),
            &fetch("ServiceInstance", "ServiceInstance", "content"),
        )
        .await;
    assert!(reply.body.contains(
        r#"<returnval xsi:type="ServiceContent"><rootFolder type="Folder">group-d1</rootFolder>"#
    ));
    let view = sim.view("/vc1/sdk", &cookie, &["VirtualMachine"]).await;
    let reply = sim
        .call(
            "/vc1/sdk",
            Some(&cookie),
            &fetch("ContainerView", &view, "view"),
        )
        .await;
    assert!(
        reply.body.contains(&format!(
            r#"<returnval xsi:type="ArrayOfManagedObjectReference"><ManagedObjectReference type="VirtualMachine">{}</ManagedObjectReference>"#,
            vm.moref
        )),
        "{}",
        reply.body
    );
    let listed = reply.body.matches("<ManagedObjectReference ").count();
    assert_eq!(listed, sim.simulator.inventory_at(0, T0).len());
    let reply = sim
        .call(
            "/vc1/sdk",
            Some(&cookie),
            &fetch("VirtualMachine", &vm.moref, "config"),
        )
        .await;
    assert!(reply.body.contains("NotImplementedFault"), "{}", reply.body);
    let reply = sim
        .call(
            "/vc1/sdk",
            Some(&cookie),
            &fetch("VirtualMachine", "vm-1", "name"),
        )
        .await;
    assert!(
        reply.body.contains("ManagedObjectNotFoundFault"),
        "{}",
        reply.body
    );
}

#[tokio::test]
async fn a_session_keeps_only_its_sixteen_newest_unfinished_retrievals() {
    let sim = Sim::start(config(100)).await;
    let cookie = sim.login("/vc1/sdk").await;
    let view = sim.view("/vc1/sdk", &cookie, &["VirtualMachine"]).await;
    let mut tokens = Vec::new();
    for _ in 0..17 {
        let reply = sim
            .call(
                "/vc1/sdk",
                Some(&cookie),
                &retrieve_body(&view, &[("VirtualMachine", &["name"])], Some(1)),
            )
            .await;
        tokens.push(parse_result(&reply.body).1.expect("a token"));
    }
    let next = |token: &str| {
        format!(
            r#"<ContinueRetrievePropertiesEx xmlns="urn:vim25"><_this type="PropertyCollector">propertyCollector</_this><token>{token}</token></ContinueRetrievePropertiesEx>"#
        )
    };
    let oldest = sim.call("/vc1/sdk", Some(&cookie), &next(&tokens[0])).await;
    assert!(
        oldest
            .body
            .contains("<invalidProperty>token</invalidProperty>"),
        "{}",
        oldest.body
    );
    for token in &tokens[1..] {
        let reply = sim.call("/vc1/sdk", Some(&cookie), &next(token)).await;
        assert_eq!(parse_result(&reply.body).0.len(), 1, "{}", reply.body);
    }
}
