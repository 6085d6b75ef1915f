//! The SOAP methods the collector (and pyvmomi/govmomi) use: service content, sessions,
//! container views, paged property retrieval and Fetch (pyvmomi's property accessors),
//! over the simulated estates.

use super::collector::{self, FilterSpec, Selection, View};
use super::model::{Estate, Snapshot};
use super::soap::{self, DateTime, Element, Fault, MoRef, Xml};
use super::{Clock, SimConfig};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// vCenter drops sessions idle for 30 minutes; so does the simulator, so that clients that
/// never log out cannot make it grow without bound.
const SESSION_IDLE_LIMIT: Duration = Duration::from_secs(30 * 60);

/// Unfinished paged retrievals kept per session; beyond this the oldest is dropped, so that
/// a client abandoning retrievals does not pin a snapshot for each.
const MAX_PENDING_RETRIEVALS: usize = 16;

/// The managers in `ServiceContent` besides rootFolder, propertyCollector and viewManager:
/// (element, type, moref), in WSDL order, as vCenter 8 returns them. pyvmomi and govmomi
/// deserialize the whole structure, so it must look complete even though only a few are
/// served.
const MANAGERS: [(&str, &str, &str); 43] = [
    ("setting", "OptionManager", "VpxSettings"),
    ("userDirectory", "UserDirectory", "UserDirectory"),
    ("sessionManager", "SessionManager", "SessionManager"),
    (
        "authorizationManager",
        "AuthorizationManager",
        "AuthorizationManager",
    ),
    ("serviceManager", "ServiceManager", "ServiceMgr"),
    ("perfManager", "PerformanceManager", "PerfMgr"),
    (
        "scheduledTaskManager",
        "ScheduledTaskManager",
        "ScheduledTaskManager",
    ),
    ("alarmManager", "AlarmManager", "AlarmManager"),
    ("eventManager", "EventManager", "EventManager"),
    ("taskManager", "TaskManager", "TaskManager"),
    ("extensionManager", "ExtensionManager", "ExtensionManager"),
    (
        "customizationSpecManager",
        "CustomizationSpecManager",
        "CustomizationSpecManager",
    ),
    (
        "customFieldsManager",
        "CustomFieldsManager",
        "CustomFieldsManager",
    ),
    ("diagnosticManager", "DiagnosticManager", "DiagMgr"),
    ("licenseManager", "LicenseManager", "LicenseManager"),
    ("searchIndex", "SearchIndex", "SearchIndex"),
    ("fileManager", "FileManager", "FileManager"),
    (
        "datastoreNamespaceManager",
        "DatastoreNamespaceManager",
        "DatastoreNamespaceManager",
    ),
    (
        "virtualDiskManager",
        "VirtualDiskManager",
        "virtualDiskManager",
    ),
    ("snmpSystem", "HostSnmpSystem", "SnmpSystem"),
    (
        "vmProvisioningChecker",
        "VirtualMachineProvisioningChecker",
        "ProvChecker",
    ),
    (
        "vmCompatibilityChecker",
        "VirtualMachineCompatibilityChecker",
        "CompatChecker",
    ),
    ("ovfManager", "OvfManager", "OvfManager"),
    ("ipPoolManager", "IpPoolManager", "IpPoolManager"),
    (
        "dvSwitchManager",
        "DistributedVirtualSwitchManager",
        "DVSManager",
    ),
    (
        "hostProfileManager",
        "HostProfileManager",
        "HostProfileManager",
    ),
    (
        "clusterProfileManager",
        "ClusterProfileManager",
        "ClusterProfileManager",
    ),
    (
        "complianceManager",
        "ProfileComplianceManager",
        "MoComplianceManager",
    ),
    (
        "localizationManager",
        "LocalizationManager",
        "LocalizationManager",
    ),
    (
        "storageResourceManager",
        "StorageResourceManager",
        "StorageResourceManager",
    ),
    (
        "guestOperationsManager",
        "GuestOperationsManager",
        "guestOperationsManager",
    ),
    (
        "overheadMemoryManager",
        "OverheadMemoryManager",
        "OverheadMemoryManager",
    ),
    (
        "certificateManager",
        "CertificateManager",
        "certificateManager",
    ),
    ("ioFilterManager", "IoFilterManager", "IoFilterManager"),
    (
        "vStorageObjectManager",
        "VcenterVStorageObjectManager",
        "VStorageObjectManager",
    ),
    (
        "hostSpecManager",
        "HostSpecificationManager",
        "HostSpecificationManager",
    ),
    ("cryptoManager", "CryptoManagerKmip", "CryptoManager"),
    (
        "healthUpdateManager",
        "HealthUpdateManager",
        "HealthUpdateManager",
    ),
    (
        "failoverClusterConfigurator",
        "FailoverClusterConfigurator",
        "FailoverClusterConfigurator",
    ),
    (
        "failoverClusterManager",
        "FailoverClusterManager",
        "FailoverClusterManager",
    ),
    ("tenantManager", "TenantTenantManager", "TenantManager"),
    ("siteInfoManager", "SiteInfoManager", "SiteInfoManager"),
    (
        "storageQueryManager",
        "StorageQueryManager",
        "StorageQueryManager",
    ),
];

/// The API version the simulator claims, and the ones before it that clients may ask for.
pub(crate) const API_VERSION: &str = "8.0.2.0";
pub(crate) const PRIOR_API_VERSIONS: [&str; 27] = [
    "8.0.1.0", "8.0.0.2", "8.0.0.1", "8.0.0.0", "7.0.3.2", "7.0.3.1", "7.0.3.0", "7.0.2.1",
    "7.0.2.0", "7.0.1.1", "7.0.1.0", "7.0.0.2", "7.0.0.1", "7.0.0.0", "6.9.1", "6.8.7", "6.7.3",
    "6.7.2", "6.7.1", "6.7", "6.6", "6.5", "6.0", "5.5", "5.1", "5.0", "4.1",
];

/// A call that needs no session.
#[derive(Debug, Clone, Copy)]
enum Open {
    RetrieveServiceContent,
    Login,
}

/// A call made within a session.
#[derive(Debug, Clone, Copy)]
enum InSession {
    Logout,
    SessionIsActive,
    CurrentTime,
    CreateContainerView,
    DestroyView,
    RetrieveProperties,
    RetrievePropertiesEx,
    ContinueRetrievePropertiesEx,
    CancelRetrievePropertiesEx,
    Fetch,
}

#[derive(Debug, Clone, Copy)]
enum Method {
    Open(Open),
    InSession(InSession),
}

impl Method {
    fn parse(name: &str) -> Option<Method> {
        Some(match name {
            "RetrieveServiceContent" => Method::Open(Open::RetrieveServiceContent),
            "Login" => Method::Open(Open::Login),
            "Logout" => Method::InSession(InSession::Logout),
            "SessionIsActive" => Method::InSession(InSession::SessionIsActive),
            "CurrentTime" => Method::InSession(InSession::CurrentTime),
            "CreateContainerView" => Method::InSession(InSession::CreateContainerView),
            "DestroyView" => Method::InSession(InSession::DestroyView),
            "RetrieveProperties" => Method::InSession(InSession::RetrieveProperties),
            "RetrievePropertiesEx" => Method::InSession(InSession::RetrievePropertiesEx),
            "ContinueRetrievePropertiesEx" => {
                Method::InSession(InSession::ContinueRetrievePropertiesEx)
            }
            "CancelRetrievePropertiesEx" => {
                Method::InSession(InSession::CancelRetrievePropertiesEx)
            }
            "Fetch" => Method::InSession(InSession::Fetch),
            _ => return None,
        })
    }
}

/// What one SOAP call answers.
#[derive(Debug)]
pub(crate) struct Reply {
    /// `false` for a fault, which SOAP 1.1 sends with HTTP 500.
    pub(crate) ok: bool,
    pub(crate) body: String,
    /// A `Set-Cookie` value, after a login.
    pub(crate) cookie: Option<String>,
}

impl Reply {
    fn ok(body: String) -> Reply {
        Reply {
            ok: true,
            body,
            cookie: None,
        }
    }

    /// The answer of a method that returns nothing.
    fn empty(method: &str) -> Reply {
        Reply::ok(Xml::response(method, 0).finish(method))
    }

    pub(crate) fn fault(fault: &Fault) -> Reply {
        Reply {
            ok: false,
            body: fault.to_xml(),
            cookie: None,
        }
    }
}

/// A paged retrieval waiting for ContinueRetrievePropertiesEx.
#[derive(Debug)]
struct Retrieval {
    selection: Arc<Selection>,
    next: usize,
    page: usize,
}

#[derive(Debug)]
struct Session {
    vcenter: usize,
    /// `UserSession.key`; also names the session's views, as vCenter's do.
    key: String,
    user: String,
    last_used: Instant,
    views: HashMap<String, View>,
    /// By token; tokens count up, so the first is the oldest.
    retrievals: BTreeMap<u64, Retrieval>,
    /// Numbers this session's views and tokens.
    counter: u64,
}

impl Session {
    fn next_id(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }
}

/// Everything the simulated vCenters share: estates, clock, credentials and sessions.
#[derive(Debug)]
pub(crate) struct Service {
    pub(crate) estates: Vec<Estate>,
    clock: Clock,
    username: String,
    password: String,
    page_size: usize,
    /// Sessions by cookie.
    sessions: Mutex<HashMap<String, Session>>,
    /// The last snapshot built per vCenter and the time it is of: the pages of a retrieval
    /// and back-to-back retrievals at one clock time share it.
    latest: Vec<Mutex<Option<Timed>>>,
}

/// A snapshot and the clock time it was built for.
type Timed = (i64, Arc<Snapshot>);

/// Locks, carrying on past a poisoned lock: every critical section here leaves its map
/// consistent, so a panic elsewhere must not wedge the simulator.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Service {
    pub(crate) fn new(config: SimConfig, clock: Clock) -> Service {
        let vcenters = config.vcenters.max(1);
        let estates: Vec<Estate> = (0..vcenters)
            .map(|i| {
                let slots = config.vms / vcenters + usize::from(i < config.vms % vcenters);
                Estate::new(config.seed, i, slots)
            })
            .collect();
        Service {
            latest: estates.iter().map(|_| Mutex::new(None)).collect(),
            estates,
            clock,
            username: config.username,
            password: config.password,
            page_size: (config.page_size as usize).max(1),
            sessions: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn expire_sessions(&self) {
        lock(&self.sessions).clear();
    }

    /// Answers one SOAP request to vCenter `vcenter` (0-based) at `sdk_path`, from a client
    /// presenting `cookies` (the values of its `vmware_soap_session` cookies).
    pub(crate) fn call(
        &self,
        vcenter: usize,
        sdk_path: &str,
        cookies: &[String],
        body: &[u8],
    ) -> Reply {
        let reply = soap::parse_call(body).and_then(|call| {
            let method = Method::parse(&call.name)
                .ok_or_else(|| Fault::NotImplemented(format!("method {}", call.name)))?;
            tracing::debug!(vcenter, method = call.name, "soap call");
            match method {
                Method::Open(Open::RetrieveServiceContent) => {
                    let mut xml = Xml::response(&call.name, 4096);
                    self.write_service_content(vcenter, "", &mut xml);
                    Ok(Reply::ok(xml.finish(&call.name)))
                }
                Method::Open(Open::Login) => self.login(vcenter, sdk_path, cookies, &call),
                Method::InSession(method) => {
                    let cookie = self.authenticate(vcenter, cookies).ok_or_else(|| {
                        Fault::NotAuthenticated {
                            object: call.child("_this").and_then(|this| this.moref().ok()),
                        }
                    })?;
                    self.in_session(vcenter, &cookie, method, &call)
                }
            }
        });
        reply.unwrap_or_else(|fault| {
            tracing::debug!(vcenter, %fault, "soap fault");
            Reply::fault(&fault)
        })
    }

    fn in_session(
        &self,
        vcenter: usize,
        cookie: &str,
        method: InSession,
        call: &Element,
    ) -> Result<Reply, Fault> {
        match method {
            InSession::Logout => {
                lock(&self.sessions).remove(cookie);
                Ok(Reply::empty(&call.name))
            }
            InSession::SessionIsActive => self.session_is_active(vcenter, call),
            InSession::CurrentTime => {
                let mut xml = Xml::response(&call.name, 64);
                xml.raw("<returnval>")
                    .display(DateTime(self.clock.now()))
                    .raw("</returnval>");
                Ok(Reply::ok(xml.finish(&call.name)))
            }
            InSession::CreateContainerView => self.create_view(vcenter, cookie, call),
            InSession::DestroyView => {
                let view = call.child_moref("_this")?;
                self.with_session(cookie, |s| s.views.remove(&view.value))?
                    .ok_or(Fault::NotFound(view))?;
                Ok(Reply::empty(&call.name))
            }
            InSession::RetrieveProperties => self.retrieve(vcenter, cookie, call, false),
            InSession::RetrievePropertiesEx => self.retrieve(vcenter, cookie, call, true),
            InSession::ContinueRetrievePropertiesEx => {
                self.continue_retrieve(vcenter, cookie, call)
            }
            InSession::CancelRetrievePropertiesEx => {
                let token = token(call)?;
                self.with_session(cookie, |s| s.retrievals.remove(&token))?
                    .ok_or(Fault::InvalidArgument("token"))?;
                Ok(Reply::empty(&call.name))
            }
            InSession::Fetch => self.fetch(vcenter, cookie, call),
        }
    }

    /// The cookie, among those presented, of a live session on this vCenter.
    fn authenticate(&self, vcenter: usize, cookies: &[String]) -> Option<String> {
        let mut sessions = lock(&self.sessions);
        let cookie = cookies.iter().find(|c| {
            sessions
                .get(c.as_str())
                .is_some_and(|s| s.vcenter == vcenter && s.last_used.elapsed() < SESSION_IDLE_LIMIT)
        })?;
        if let Some(session) = sessions.get_mut(cookie.as_str()) {
            session.last_used = Instant::now();
        }
        Some(cookie.clone())
    }

    /// Runs `f` on the session of `cookie`, which a concurrent Logout may have ended.
    fn with_session<R>(&self, cookie: &str, f: impl FnOnce(&mut Session) -> R) -> Result<R, Fault> {
        lock(&self.sessions)
            .get_mut(cookie)
            .map(f)
            .ok_or(Fault::NotAuthenticated { object: None })
    }

    /// The `ServiceContent` of `vcenter` as the element `<returnval{attributes}>`.
    fn write_service_content(&self, vcenter: usize, attributes: &str, xml: &mut Xml) {
        let estate = &self.estates[vcenter];
        xml.raw("<returnval")
            .raw(attributes)
            .raw(r#"><rootFolder type="Folder">"#)
            .text(estate.root_folder())
            .raw("</rootFolder>")
            .raw(r#"<propertyCollector type="PropertyCollector">propertyCollector</propertyCollector>"#)
            .raw(r#"<viewManager type="ViewManager">ViewManager</viewManager>"#)
            .raw("<about><name>VMware vCenter Server</name>")
            .raw("<fullName>VMware vCenter Server 8.0.2 build-22385739</fullName>")
            .raw("<vendor>VMware, Inc.</vendor><version>8.0.2</version><patchLevel></patchLevel>")
            .raw("<build>22385739</build><localeVersion>INTL</localeVersion>")
            .raw("<localeBuild>000</localeBuild><osType>linux-x64</osType>")
            .raw("<productLineId>vpx</productLineId><apiType>VirtualCenter</apiType>")
            .raw("<apiVersion>")
            .raw(API_VERSION)
            .raw("</apiVersion><instanceUuid>")
            .display(estate.instance_uuid)
            .raw("</instanceUuid>")
            .raw("<licenseProductName>VMware VirtualCenter Server</licenseProductName>")
            .raw("<licenseProductVersion>8.0</licenseProductVersion></about>");
        for (element, kind, value) in MANAGERS {
            xml.moref(
                element,
                &MoRef {
                    kind: kind.into(),
                    value: value.into(),
                },
            );
        }
        xml.raw("</returnval>");
    }

    /// Fetch, pyvmomi's property accessor: the service content, what a container view
    /// shows (`view.view`, the usual way pyvmomi scripts list VMs), or a property of an
    /// inventory object.
    fn fetch(&self, vcenter: usize, cookie: &str, call: &Element) -> Result<Reply, Fault> {
        let obj = call.child_moref("_this")?;
        let path = call.child_text("prop").unwrap_or_default();
        let estate = &self.estates[vcenter];
        let mut xml = Xml::response(&call.name, 4096);
        match (obj.kind.as_str(), path) {
            ("ServiceInstance", "content") => {
                self.write_service_content(vcenter, r#" xsi:type="ServiceContent""#, &mut xml);
            }
            ("ContainerView", "view") => {
                let view = self
                    .with_session(cookie, |s| s.views.get(&obj.value).cloned())?
                    .ok_or(Fault::NotFound(obj))?;
                collector::fetch_view(estate, &self.snapshot(vcenter), &view, &mut xml);
            }
            _ => collector::fetch(estate, &self.snapshot(vcenter), &obj, path, &mut xml)?,
        }
        Ok(Reply::ok(xml.finish(&call.name)))
    }

    fn login(
        &self,
        vcenter: usize,
        sdk_path: &str,
        cookies: &[String],
        call: &Element,
    ) -> Result<Reply, Fault> {
        let user = call.child_text("userName").unwrap_or_default();
        let password = call.child_text("password").unwrap_or_default();
        if user != self.username || password != self.password {
            return Err(Fault::InvalidLogin);
        }
        let cookie = format!(
            "{:032x}{:08x}",
            rand::random::<u128>(),
            rand::random::<u32>()
        );
        let key = format!("52{:030x}", rand::random::<u128>() >> 8);
        let key = format!(
            "{}-{}-{}-{}-{}",
            &key[..8],
            &key[8..12],
            &key[12..16],
            &key[16..20],
            &key[20..]
        );
        let now = self.clock.now();
        {
            let mut sessions = lock(&self.sessions);
            sessions
                .retain(|c, s| s.last_used.elapsed() < SESSION_IDLE_LIMIT && !cookies.contains(c));
            sessions.insert(
                cookie.clone(),
                Session {
                    vcenter,
                    key: key.clone(),
                    user: user.to_string(),
                    last_used: Instant::now(),
                    views: HashMap::new(),
                    retrievals: BTreeMap::new(),
                    counter: 0,
                },
            );
        }
        let mut xml = Xml::response(&call.name, 512);
        xml.raw("<returnval><key>")
            .text(&key)
            .raw("</key><userName>")
            .text(user)
            .raw("</userName><fullName>")
            .text(user)
            .raw("</fullName><loginTime>")
            .display(DateTime(now))
            .raw("</loginTime><lastActiveTime>")
            .display(DateTime(now))
            .raw("</lastActiveTime><locale>en</locale><messageLocale>en</messageLocale>")
            .raw("<extensionSession>false</extensionSession><callCount>0</callCount></returnval>");
        Ok(Reply {
            ok: true,
            body: xml.finish(&call.name),
            // Scoped to this vCenter's path: several simulated vCenters share one host and
            // port, and a cookie jar must keep one session per vCenter.
            cookie: Some(format!(
                "vmware_soap_session=\"{cookie}\"; Path={sdk_path}; HttpOnly"
            )),
        })
    }

    fn session_is_active(&self, vcenter: usize, call: &Element) -> Result<Reply, Fault> {
        let key = call.child_text("sessionID").unwrap_or_default();
        let user = call.child_text("userName").unwrap_or_default();
        let active = lock(&self.sessions).values().any(|s| {
            s.vcenter == vcenter
                && s.key == key
                && s.user == user
                && s.last_used.elapsed() < SESSION_IDLE_LIMIT
        });
        let mut xml = Xml::response(&call.name, 64);
        xml.raw("<returnval>").display(active).raw("</returnval>");
        Ok(Reply::ok(xml.finish(&call.name)))
    }

    fn create_view(&self, vcenter: usize, cookie: &str, call: &Element) -> Result<Reply, Fault> {
        let estate = &self.estates[vcenter];
        let container = call.child_moref("container")?;
        let index = estate
            .place(&container.value)
            .filter(|&i| estate.places[i].kind.as_str() == container.kind)
            .ok_or_else(|| Fault::NotFound(container.clone()))?;
        let view = View {
            container: index,
            types: call
                .children("type")
                .map(|t| t.text().to_string())
                .collect(),
            recursive: call.child_bool("recursive")?.unwrap_or(false),
        };
        let moref = self.with_session(cookie, |s| {
            let id = s.next_id();
            let moref = format!("session[{}]{id:x}", s.key);
            s.views.insert(moref.clone(), view);
            moref
        })?;
        let mut xml = Xml::response(&call.name, 128);
        xml.raw(r#"<returnval type="ContainerView">"#)
            .text(&moref)
            .raw("</returnval>");
        Ok(Reply::ok(xml.finish(&call.name)))
    }

    /// The snapshot of `vcenter` at the clock's current time.
    fn snapshot(&self, vcenter: usize) -> Arc<Snapshot> {
        let t = self.clock.now();
        let mut latest = lock(&self.latest[vcenter]);
        match &*latest {
            Some((at, snapshot)) if *at == t => Arc::clone(snapshot),
            _ => {
                let snapshot = Arc::new(self.estates[vcenter].snapshot(t));
                *latest = Some((t, Arc::clone(&snapshot)));
                snapshot
            }
        }
    }

    /// RetrievePropertiesEx (`paged`: the first page, a token for the rest) or
    /// RetrieveProperties (everything at once).
    fn retrieve(
        &self,
        vcenter: usize,
        cookie: &str,
        call: &Element,
        paged: bool,
    ) -> Result<Reply, Fault> {
        let estate = &self.estates[vcenter];
        let spec = FilterSpec::parse(call)?;
        if spec.reads_custom_fields() {
            self.with_session(cookie, |_| ())?;
            let mut xml = Xml::response(&call.name, 512);
            if paged {
                xml.raw("<returnval>");
                collector::write_custom_fields("objects", &mut xml);
                xml.raw("</returnval>");
            } else {
                collector::write_custom_fields("returnval", &mut xml);
            }
            return Ok(Reply::ok(xml.finish(&call.name)));
        }
        let views = self.with_session(cookie, |s| s.views.clone())?;
        let selection = Selection::new(estate, self.snapshot(vcenter), &spec, &views)?;
        let total = selection.len();
        if !paged {
            let mut xml = Xml::response(&call.name, Selection::estimate(total));
            selection.write(estate, 0..total, "returnval", &mut xml);
            return Ok(Reply::ok(xml.finish(&call.name)));
        }
        let max_objects = call
            .child("options")
            .and_then(|options| options.child_text("maxObjects"))
            .map(|text| {
                text.parse::<i64>()
                    .map_err(|_| Fault::Malformed(format!("maxObjects {text:?} is not an integer")))
            })
            .transpose()?;
        // An unset or non-positive maxObjects leaves the page size to the server.
        let page = match max_objects {
            Some(max) if max > 0 => self
                .page_size
                .min(usize::try_from(max).unwrap_or(usize::MAX)),
            _ => self.page_size,
        };
        let end = page.min(total);
        let selection = Arc::new(selection);
        let token = if end < total {
            let retrieval = Retrieval {
                selection: Arc::clone(&selection),
                next: end,
                page,
            };
            Some(self.with_session(cookie, |s| {
                let token = s.next_id();
                s.retrievals.insert(token, retrieval);
                while s.retrievals.len() > MAX_PENDING_RETRIEVALS {
                    s.retrievals.pop_first();
                }
                token
            })?)
        } else {
            None
        };
        Ok(Reply::ok(page_xml(
            &call.name,
            estate,
            &selection,
            0..end,
            token,
        )))
    }

    fn continue_retrieve(
        &self,
        vcenter: usize,
        cookie: &str,
        call: &Element,
    ) -> Result<Reply, Fault> {
        let token = token(call)?;
        let (selection, range, more) = self
            .with_session(cookie, |s| {
                let retrieval = s.retrievals.remove(&token)?;
                let selection = Arc::clone(&retrieval.selection);
                let range = retrieval.next..(retrieval.next + retrieval.page).min(selection.len());
                let more = range.end < selection.len();
                if more {
                    s.retrievals.insert(
                        token,
                        Retrieval {
                            next: range.end,
                            ..retrieval
                        },
                    );
                }
                Some((selection, range, more))
            })?
            .ok_or(Fault::InvalidArgument("token"))?;
        let token = more.then_some(token);
        Ok(Reply::ok(page_xml(
            &call.name,
            &self.estates[vcenter],
            &selection,
            range,
            token,
        )))
    }
}

/// The token a Continue/CancelRetrievePropertiesEx call names.
fn token(call: &Element) -> Result<u64, Fault> {
    call.child_text("token")
        .and_then(|token| token.parse().ok())
        .ok_or(Fault::InvalidArgument("token"))
}

/// A `RetrieveResult` page. vCenter sends no `returnval` at all when nothing matched.
fn page_xml(
    method: &str,
    estate: &Estate,
    selection: &Selection,
    range: std::ops::Range<usize>,
    token: Option<u64>,
) -> String {
    let mut xml = Xml::response(method, Selection::estimate(range.len()));
    if !range.is_empty() {
        xml.raw("<returnval>");
        if let Some(token) = token {
            xml.raw("<token>").display(token).raw("</token>");
        }
        selection.write(estate, range, "objects", &mut xml);
        xml.raw("</returnval>");
    }
    xml.finish(method)
}
