//! A capture with its I/O: log in to a vCenter, read its inventory (retrying transient
//! failures), turn it into rows and store them with the run record in one transaction.

use super::TierMapping;
use super::capture::{Filters, rows_from};
use crate::config::{Settings, VcenterTarget};
use crate::store::{self, Store, runs::SnapshotRun};
use crate::vsphere::{self, About, Endpoint, Places, Tls, VmProperties};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "failed to read the inventory of vCenter {vcenter} after {attempts} attempt(s): {source}"
    )]
    Collect {
        vcenter: String,
        attempts: u32,
        source: vsphere::Error,
    },
    #[error("failed to store the snapshot of vCenter {vcenter}: {source}")]
    Store {
        vcenter: String,
        source: store::Error,
    },
}

impl Error {
    /// A stable short name for metrics labels and Events.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Collect { source, .. } => source.reason(),
            Error::Store { source, .. } => source.reason(),
        }
    }

    /// What failed, as `snapshot_runs.failure_kind` records it: 'connect' (the vCenter was
    /// not reached: address, network, TLS, or no answer to the first call), 'login',
    /// 'collect' (reading the inventory after login) or 'store'.
    pub fn failure_kind(&self) -> &'static str {
        use vsphere::Error as V;
        // The first SOAP call of a session; failing there means the server was not reached.
        const FIRST_CALL: &str = "RetrieveServiceContent";
        match self {
            Error::Store { .. } => "store",
            Error::Collect { source, .. } => match source {
                V::Url { .. }
                | V::CaFile { .. }
                | V::ClientSetup { .. }
                | V::Connect { .. }
                | V::Tls { .. } => "connect",
                V::Timeout { call, .. } | V::Request { call, .. } if *call == FIRST_CALL => {
                    "connect"
                }
                V::InvalidLogin { .. } | V::NoSessionCookie { .. } => "login",
                V::Fault { call, .. } | V::NotAuthenticated { call, .. } if *call == "Login" => {
                    "login"
                }
                _ => "collect",
            },
        }
    }
}

/// Everything a capture needs besides the store: the account, timeouts, retries and the
/// row rules, resolved once from the settings.
#[derive(Debug, Clone)]
pub struct Collector {
    pub username: String,
    /// Decrypted.
    pub password: String,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub max_objects: u32,
    pub max_retries: u32,
    pub retry_interval: Duration,
    pub mapping: TierMapping,
    pub filters: Filters,
}

impl Collector {
    pub fn from_settings(settings: &Settings, password: String) -> Collector {
        Collector {
            username: settings.vcenter_username.clone(),
            password,
            connect_timeout: Duration::from_secs(settings.vcenter_connect_timeout_seconds),
            read_timeout: Duration::from_secs(settings.vcenter_read_timeout_seconds),
            max_objects: settings.vcenter_max_objects,
            max_retries: settings.hourly_snapshot_max_retries,
            retry_interval: Duration::from_secs(settings.hourly_snapshot_retry_seconds),
            mapping: settings.tier_mapping(),
            filters: Filters::from_settings(settings),
        }
    }

    pub fn endpoint(&self, target: &VcenterTarget) -> Endpoint {
        Endpoint {
            url: target.url.clone(),
            username: self.username.clone(),
            password: self.password.clone(),
            tls: if target.insecure {
                Tls::Insecure
            } else {
                Tls::Verify {
                    ca_file: target.ca_file.clone(),
                }
            },
            allow_plain_http: target.allow_plain_http,
            connect_timeout: self.connect_timeout,
            read_timeout: self.read_timeout,
            limits: crate::vsphere::Limits::default(),
        }
    }

    /// Logs in, reads places and VMs, logs out. A failed logout is only logged: the
    /// inventory was read completely.
    pub async fn read_inventory(
        &self,
        target: &VcenterTarget,
    ) -> Result<Inventory, vsphere::Error> {
        let mut client = vsphere::Client::login(&self.endpoint(target)).await?;
        let places = client.places(Some(self.max_objects)).await?;
        let vms = client.virtual_machines(Some(self.max_objects)).await?;
        let about = client.about().clone();
        if let Err(e) = client.logout().await {
            tracing::warn!(vcenter = %target.name, error = %e, "logout failed after a complete read");
        }
        Ok(Inventory { vms, places, about })
    }

    /// Reads the inventory, retrying transient failures up to `max_retries` times.
    async fn read_with_retries(&self, target: &VcenterTarget) -> Result<Inventory, Error> {
        let mut attempt = 1;
        loop {
            match self.read_inventory(target).await {
                Ok(read) => return Ok(read),
                Err(e) if e.is_transient() && attempt <= self.max_retries => {
                    tracing::warn!(
                        vcenter = %target.name, attempt, error = %e,
                        retry_in_seconds = self.retry_interval.as_secs(),
                        "snapshot attempt failed; retrying"
                    );
                    tokio::time::sleep(self.retry_interval).await;
                    attempt += 1;
                }
                Err(source) => {
                    return Err(Error::Collect {
                        vcenter: target.name.clone(),
                        attempts: attempt,
                        source,
                    });
                }
            }
        }
    }

    /// Takes the snapshot of `target` at `snapshot_time` and stores it with its run record,
    /// registry entry and totals in one transaction. On failure only the failed run is
    /// recorded; the stored data is as it was.
    pub async fn capture(
        &self,
        store: &Store,
        target: &VcenterTarget,
        snapshot_time: i64,
    ) -> Result<Captured, Error> {
        let started_at = now();
        let started = Instant::now();
        let result = self
            .capture_inner(store, target, snapshot_time, started_at, started)
            .await;
        if let Err(e) = &result {
            let run = SnapshotRun {
                vcenter: target.name.clone(),
                snapshot_time,
                started_at,
                finished_at: now(),
                success: false,
                row_count: 0,
                error: e.to_string(),
                failure_kind: e.failure_kind().to_string(),
            };
            if let Err(record_error) = store.record_run(&run).await {
                tracing::error!(vcenter = %target.name, error = %record_error, "failed to record a failed snapshot run");
            }
        }
        result
    }

    async fn capture_inner(
        &self,
        store: &Store,
        target: &VcenterTarget,
        snapshot_time: i64,
        started_at: i64,
        started: Instant,
    ) -> Result<Captured, Error> {
        let Inventory { vms, places, about } = self.read_with_retries(target).await?;
        let inventory_size = vms.len();
        let converted = rows_from(&target.name, snapshot_time, vms, &places, &self.filters);
        let store_error = |source| Error::Store {
            vcenter: target.name.clone(),
            source,
        };
        let rows = converted.rows.len();
        let mut writer = store
            .snapshot_writer(self.mapping.clone(), "collector")
            .await
            .map_err(store_error)?;
        // The key may be a resource's NAMESPACE/NAME: the host says which vCenter it is.
        if let Some(host) = url::Url::parse(&target.url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
        {
            writer
                .record_host(&target.name, &host)
                .await
                .map_err(store_error)?;
        }
        if converted.rows.is_empty() {
            writer
                .push_empty(&target.name, snapshot_time)
                .await
                .map_err(store_error)?;
        }
        for row in converted.rows {
            writer.push(row).await.map_err(store_error)?;
        }
        let run = SnapshotRun {
            vcenter: target.name.clone(),
            snapshot_time,
            started_at,
            finished_at: now(),
            success: true,
            row_count: rows as i64,
            error: String::new(),
            failure_kind: String::new(),
        };
        writer.record_run(&run).await.map_err(store_error)?;
        writer.commit().await.map_err(store_error)?;
        Ok(Captured {
            rows,
            inventory_size,
            about,
            filtered_tenant: converted.filtered_tenant,
            filtered_node_charge: converted.filtered_node_charge,
            seconds: started.elapsed().as_secs_f64(),
        })
    }
}

/// One complete read of a vCenter: its VMs, the places they sit in, and what the server is.
#[derive(Debug, Clone)]
pub struct Inventory {
    pub vms: Vec<VmProperties>,
    pub places: Places,
    pub about: About,
}

/// What one successful capture stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Captured {
    pub rows: usize,
    /// VMs (templates included) the vCenter reported, before the filters.
    pub inventory_size: usize,
    /// What the vCenter said it is (version, build).
    pub about: About,
    pub filtered_tenant: usize,
    pub filtered_node_charge: usize,
    pub seconds: f64,
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The outcome of one vCenter's capture in a round over all of them.
#[derive(Debug)]
pub struct RoundOutcome {
    pub target: VcenterTarget,
    pub result: Result<Captured, Error>,
}

impl Collector {
    /// Captures every target at `snapshot_time`, at most `concurrency` at once (0 = all at
    /// once). One vCenter failing does not stop the others. Outcomes are in target order.
    pub async fn capture_round(
        &self,
        store: &Store,
        targets: &[VcenterTarget],
        snapshot_time: i64,
        concurrency: usize,
    ) -> Vec<RoundOutcome> {
        use futures_util::StreamExt;
        let limit = if concurrency == 0 {
            targets.len().max(1)
        } else {
            concurrency
        };
        futures_util::stream::iter(targets)
            .map(|target| async move {
                RoundOutcome {
                    target: target.clone(),
                    result: self.capture(store, target, snapshot_time).await,
                }
            })
            .buffered(limit)
            .collect()
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(source: vsphere::Error) -> Error {
        Error::Collect {
            vcenter: "vc".into(),
            attempts: 1,
            source,
        }
    }

    #[test]
    fn failures_are_told_apart_as_connect_login_collect_or_store() {
        let url = || "https://vc/sdk".to_string();
        let cases = [
            (
                vsphere::Error::Connect {
                    url: url(),
                    message: "refused".into(),
                },
                "connect",
            ),
            (
                vsphere::Error::Tls {
                    url: url(),
                    message: "unknown issuer".into(),
                },
                "connect",
            ),
            (
                vsphere::Error::Timeout {
                    url: url(),
                    call: "RetrieveServiceContent",
                },
                "connect",
            ),
            (
                vsphere::Error::InvalidLogin {
                    url: url(),
                    user: "u".into(),
                },
                "login",
            ),
            (
                vsphere::Error::Fault {
                    url: url(),
                    call: "Login",
                    fault: "InvalidLogin".into(),
                    message: String::new(),
                },
                "login",
            ),
            (
                vsphere::Error::Timeout {
                    url: url(),
                    call: "RetrievePropertiesEx",
                },
                "collect",
            ),
            (
                vsphere::Error::Truncated {
                    call: "RetrievePropertiesEx",
                },
                "collect",
            ),
        ];
        for (source, kind) in cases {
            let text = source.to_string();
            assert_eq!(collect(source).failure_kind(), kind, "{text}");
        }
        let store = Error::Store {
            vcenter: "vc".into(),
            source: store::Error::Url("x".into()),
        };
        assert_eq!(store.failure_kind(), "store");
    }
}
