//! The built-in simulated vCenter: a SOAP server speaking the part of the vSphere API the
//! collector uses (service content, sessions, container views, paged property retrieval),
//! over a deterministic inventory that churns with a clock.
//!
//! Each simulated vCenter is served at `/vc{i}/sdk` (1-based; `/sdk` is the first) over
//! plain HTTP. Its VMs are a pure function of (seed, VM count, vCenter count, time), so a
//! test can run a collector against it and compare with [`Simulator::inventory_at`].

mod collector;
mod model;
mod server;
mod service;
mod soap;

use crate::vsphere::PowerState;
use anyhow::Context;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

pub const DEFAULT_VMS: usize = 1000;
pub const DEFAULT_PAGE_SIZE: u32 = 1000;
pub const DEFAULT_USERNAME: &str = "vctp";
pub const DEFAULT_PASSWORD: &str = "vctp-sim";

/// `vctp sim`: binds `listen`, prints one line per vCenter with its SDK URL, and serves until
/// Ctrl-C or SIGTERM, with the inventory following the system clock.
pub async fn run(listen: SocketAddr, config: SimConfig) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("failed to listen on {listen}"))?;
    let base = format!("http://{}", listener.local_addr()?);
    let simulator = Simulator::new(config, Clock::real());
    for (name, url) in simulator
        .vcenter_names()
        .into_iter()
        .zip(simulator.sdk_urls(&base))
    {
        println!("{name} {url}");
    }
    simulator
        .serve(listener, crate::signal::shutdown_signal())
        .await
        .context("simulator server failed")
}

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// VMs over all vCenters.
    pub vms: usize,
    /// At least one is simulated.
    pub vcenters: usize,
    pub seed: u64,
    /// Most objects per RetrievePropertiesEx page.
    pub page_size: u32,
    pub username: String,
    pub password: String,
}

impl Default for SimConfig {
    fn default() -> SimConfig {
        SimConfig {
            vms: DEFAULT_VMS,
            vcenters: 1,
            seed: 1,
            page_size: DEFAULT_PAGE_SIZE,
            username: DEFAULT_USERNAME.into(),
            password: DEFAULT_PASSWORD.into(),
        }
    }
}

/// The simulator's notion of now (Unix seconds): the system clock, or a manual one that
/// tests move. Clones share the same time.
#[derive(Debug, Clone)]
pub struct Clock(Arc<Source>);

#[derive(Debug)]
enum Source {
    Real,
    Manual(AtomicI64),
}

impl Clock {
    pub fn real() -> Clock {
        Clock(Arc::new(Source::Real))
    }

    pub fn manual(start_unix: i64) -> Clock {
        Clock(Arc::new(Source::Manual(AtomicI64::new(start_unix))))
    }

    pub fn now(&self) -> i64 {
        match &*self.0 {
            Source::Real => chrono::Utc::now().timestamp(),
            Source::Manual(now) => now.load(Ordering::SeqCst),
        }
    }

    /// Moves a manual clock. The real clock cannot be moved: the call is logged and ignored.
    pub fn set(&self, unix: i64) {
        match &*self.0 {
            Source::Real => tracing::warn!(unix, "ignoring an attempt to set the real clock"),
            Source::Manual(now) => now.store(unix, Ordering::SeqCst),
        }
    }
}

/// One VM as a simulated vCenter shows it, with its references resolved to names: what a
/// collector should end up with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimVm {
    /// `vm-<n>`, never reused.
    pub moref: String,
    pub name: String,
    /// `config.uuid`.
    pub uuid: String,
    /// `config.instanceUuid`.
    pub instance_uuid: String,
    pub num_cpu: i64,
    /// MiB.
    pub memory_mb: i64,
    /// `summary.storage.committed`, bytes.
    pub committed_bytes: i64,
    /// `summary.storage.uncommitted`, bytes.
    pub uncommitted_bytes: i64,
    pub template: bool,
    pub power_state: PowerState,
    /// `config.createDate`, Unix seconds; `None` for VMs created before vCenter kept it.
    pub create_date: Option<i64>,
    /// An SRM placeholder (`config.managedBy` = `com.vmware.vcDr` / `placeholderVm`).
    pub srm_placeholder: bool,
    /// Name of the resource pool or vApp; `None` for templates.
    pub pool_name: Option<String>,
    /// `/DC1/vm/Tenants/Acme`; empty for vApp members, which have no `parent`.
    pub folder_path: String,
    /// `None` on a standalone host.
    pub cluster: Option<String>,
    pub datacenter: String,
    /// The host's name.
    pub host: String,
    /// The `Tenant` custom attribute, on most tenant VMs.
    pub tenant: Option<String>,
}

/// One or more simulated vCenters behind one HTTP server. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Simulator {
    service: Arc<service::Service>,
}

impl Simulator {
    pub fn new(config: SimConfig, clock: Clock) -> Simulator {
        Simulator {
            service: Arc::new(service::Service::new(config, clock)),
        }
    }

    /// The routes of every vCenter, for serving or for calling in-process.
    pub fn router(&self) -> axum::Router {
        server::router(Arc::clone(&self.service))
    }

    /// Serves on `listener` until `shutdown` resolves, then finishes the requests in flight.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await
    }

    /// The SDK URL of each vCenter under `base` (e.g. `http://127.0.0.1:8989`).
    pub fn sdk_urls(&self, base: &str) -> Vec<String> {
        let base = base.trim_end_matches('/');
        (1..=self.service.estates.len())
            .map(|i| format!("{base}/vc{i}/sdk"))
            .collect()
    }

    /// The vCenters' host names, `vc1.sim.vctp.local`, … in URL order.
    pub fn vcenter_names(&self) -> Vec<String> {
        self.service
            .estates
            .iter()
            .map(|e| e.name.clone())
            .collect()
    }

    /// The vCenters as collector targets, named and ordered as [`Simulator::vcenter_names`];
    /// the simulator serves plain HTTP, which they allow.
    pub fn targets(&self, base: &str) -> Vec<crate::config::VcenterTarget> {
        self.vcenter_names()
            .into_iter()
            .zip(self.sdk_urls(base))
            .map(|(name, url)| crate::config::VcenterTarget {
                name,
                url,
                insecure: false,
                ca_file: None,
                allow_plain_http: true,
            })
            .collect()
    }

    /// Ends every session, so that the next call of any client is NotAuthenticated.
    pub fn expire_sessions(&self) {
        self.service.expire_sessions();
    }

    /// The VMs vCenter `vcenter` (0-based) shows at time `t`, sorted by moref number;
    /// empty for a vCenter that does not exist.
    pub fn inventory_at(&self, vcenter: usize, t: i64) -> Vec<SimVm> {
        self.service
            .estates
            .get(vcenter)
            .map(|estate| {
                let snapshot = estate.snapshot(t);
                snapshot.vms.iter().map(|vm| estate.describe(vm)).collect()
            })
            .unwrap_or_default()
    }
}
