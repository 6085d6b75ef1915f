//! A capture with its I/O: log in to a vCenter, read its inventory (retrying transient
//! failures), turn it into rows and store them with the run record in one transaction.

use super::TierMapping;
use super::capture::{Filters, rows_from};
use crate::config::{Settings, VcenterTarget};
use crate::store::{self, Store, hourly::SnapshotWriter, runs::SnapshotRun};
use crate::vsphere::{self, About, Endpoint, Places, Tls, VmPage};
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, mpsc};

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

    /// Logs in and reads the places: what turning VMs into rows needs first.
    pub async fn open(&self, target: &VcenterTarget) -> Result<Opened, vsphere::Error> {
        let mut client = vsphere::Client::login(&self.endpoint(target)).await?;
        let places = client.places(Some(self.max_objects)).await?;
        Ok(Opened { client, places })
    }

    /// Reads the VMs into `pages` page by page, as each arrives, then logs out; the channel
    /// closes when the read is over. A failed logout is only logged: the inventory was read
    /// completely.
    pub async fn read_vms(
        &self,
        mut client: vsphere::Client,
        target: &VcenterTarget,
        pages: mpsc::UnboundedSender<VmPage>,
    ) -> Result<About, vsphere::Error> {
        client
            .virtual_machine_pages(Some(self.max_objects), &mut |page| {
                // The receiver goes only when storing failed, which ends the capture anyway.
                let _ = pages.send(page);
            })
            .await?;
        let about = client.about().clone();
        if let Err(e) = client.logout().await {
            tracing::warn!(vcenter = %target.name, error = %e, "logout failed after a complete read");
        }
        Ok(about)
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
        self.capture_among(store, target, snapshot_time, &writers(store))
            .await
    }

    /// [`Collector::capture`], writing only while it holds one of `writers`.
    async fn capture_among(
        &self,
        store: &Store,
        target: &VcenterTarget,
        snapshot_time: i64,
        writers: &Semaphore,
    ) -> Result<Captured, Error> {
        let started_at = now();
        let started = Instant::now();
        let result = self
            .capture_with_retries(store, target, snapshot_time, started_at, writers)
            .await
            .map(|captured| Captured {
                seconds: started.elapsed().as_secs_f64(),
                ..captured
            });
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

    /// Captures, retrying transient read failures up to `max_retries` times; each attempt
    /// is its own transaction, so a failed one leaves nothing behind.
    async fn capture_with_retries(
        &self,
        store: &Store,
        target: &VcenterTarget,
        snapshot_time: i64,
        started_at: i64,
        writers: &Semaphore,
    ) -> Result<Captured, Error> {
        let mut attempt = 1;
        loop {
            match self
                .capture_once(store, target, snapshot_time, started_at, writers)
                .await
            {
                Err(Failure::Read(e)) if e.is_transient() && attempt <= self.max_retries => {
                    tracing::warn!(
                        vcenter = %target.name, attempt, error = %e,
                        retry_in_seconds = self.retry_interval.as_secs(),
                        "snapshot attempt failed; retrying"
                    );
                    tokio::time::sleep(self.retry_interval).await;
                    attempt += 1;
                }
                Err(Failure::Read(source)) => {
                    return Err(Error::Collect {
                        vcenter: target.name.clone(),
                        attempts: attempt,
                        source,
                    });
                }
                Err(Failure::Store(source)) => {
                    return Err(Error::Store {
                        vcenter: target.name.clone(),
                        source,
                    });
                }
                Ok(captured) => return Ok(captured),
            }
        }
    }

    /// One attempt: the VM pages are turned into rows and written into the open transaction
    /// while the next page is read, and committed with the run record once all are in.
    async fn capture_once(
        &self,
        store: &Store,
        target: &VcenterTarget,
        snapshot_time: i64,
        started_at: i64,
        writers: &Semaphore,
    ) -> Result<Captured, Failure> {
        let Opened { client, places } = self.open(target).await.map_err(Failure::Read)?;
        // Unbounded: while another capture holds the write permit the pages wait here, as
        // the whole inventory did before it was written page by page.
        let (to, pages) = mpsc::unbounded_channel();
        // On a task of its own, so parsing the next page runs on another core while this
        // one's rows are written; aborted if the capture ends first (a store failure).
        let reader = self.clone();
        let read_target = target.clone();
        let reading = tokio_util::task::AbortOnDropHandle::new(tokio::spawn(async move {
            reader.read_vms(client, &read_target, to).await
        }));
        let read = async {
            match reading.await {
                Ok(read) => read.map_err(Failure::Read),
                // Nothing aborts the task while it is awaited: it can only have panicked.
                Err(e) => std::panic::resume_unwind(e.into_panic()),
            }
        };
        let write = async {
            // Held until the commit. Never closed; without a permit the capture would only
            // wait for SQLite's lock.
            let permit = writers.acquire().await.ok();
            self.write_pages(store, target, snapshot_time, &places, pages)
                .await
                .map(|written| (written, permit))
                .map_err(Failure::Store)
        };
        let (about, ((mut writer, tally), _permit)) = tokio::try_join!(read, write)?;
        let run = SnapshotRun {
            vcenter: target.name.clone(),
            snapshot_time,
            started_at,
            finished_at: now(),
            success: true,
            row_count: tally.rows as i64,
            error: String::new(),
            failure_kind: String::new(),
        };
        let stored = async {
            writer.record_run(&run).await?;
            writer.commit().await
        };
        stored.await.map_err(Failure::Store)?;
        Ok(Captured {
            rows: tally.rows,
            inventory_size: tally.inventory_size,
            about,
            filtered_tenant: tally.filtered_tenant,
            filtered_node_charge: tally.filtered_node_charge,
            seconds: 0.0,
        })
    }

    /// Writes the rows of each page into a new transaction as the page arrives; a restarted
    /// read starts a new transaction. Returns the writer, uncommitted, once the pages end.
    async fn write_pages(
        &self,
        store: &Store,
        target: &VcenterTarget,
        snapshot_time: i64,
        places: &Places,
        mut pages: mpsc::UnboundedReceiver<VmPage>,
    ) -> Result<(SnapshotWriter, Tally), store::Error> {
        let mut writer = self.start_writing(store, target).await?;
        let mut tally = Tally::default();
        while let Some(page) = pages.recv().await {
            match page {
                VmPage::Restart => {
                    // Dropping the writer rolls back the rows of the read that was cut.
                    writer = self.start_writing(store, target).await?;
                    tally = Tally::default();
                }
                VmPage::Vms(vms) => {
                    tally.inventory_size += vms.len();
                    let converted =
                        rows_from(&target.name, snapshot_time, vms, places, &self.filters);
                    tally.filtered_tenant += converted.filtered_tenant;
                    tally.filtered_node_charge += converted.filtered_node_charge;
                    tally.rows += converted.rows.len();
                    for (row, attributes) in converted.rows.into_iter().zip(&converted.attributes) {
                        writer
                            .push_attributes(&row.vcenter, &row.vm_id, snapshot_time, attributes)
                            .await?;
                        writer.push(row).await?;
                    }
                }
            }
        }
        if tally.rows == 0 {
            writer.push_empty(&target.name, snapshot_time).await?;
        }
        Ok((writer, tally))
    }

    /// A new transaction for `target`'s snapshot, with the host it comes from.
    async fn start_writing(
        &self,
        store: &Store,
        target: &VcenterTarget,
    ) -> Result<SnapshotWriter, store::Error> {
        let mut writer = store
            .snapshot_writer(self.mapping.clone(), "collector")
            .await?;
        // The key may be a resource's NAMESPACE/NAME: the host says which vCenter it is.
        if let Some(host) = url::Url::parse(&target.url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
        {
            writer.record_host(&target.name, &host).await?;
        }
        Ok(writer)
    }
}

/// A session after login with the places read: [`Collector::open`].
pub struct Opened {
    pub client: vsphere::Client,
    pub places: Places,
}

/// Why one capture attempt failed: reading (maybe retried) or storing.
enum Failure {
    Read(vsphere::Error),
    Store(store::Error),
}

/// What the pages of one read came to.
#[derive(Default)]
struct Tally {
    rows: usize,
    inventory_size: usize,
    filtered_tenant: usize,
    filtered_node_charge: usize,
}

/// How many captures may write at once: SQLite has one writer, and each open write holds a
/// pooled connection for as long as its vCenter is read (4 on SQLite, 8 on PostgreSQL).
fn writers(store: &Store) -> Semaphore {
    Semaphore::new(match store {
        Store::Sqlite(_) => 1,
        Store::Postgres(_) => 4,
    })
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
        let writers = &writers(store);
        futures_util::stream::iter(targets)
            .map(|target| async move {
                RoundOutcome {
                    target: target.clone(),
                    result: self
                        .capture_among(store, target, snapshot_time, writers)
                        .await,
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
