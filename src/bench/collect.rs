//! `vctp bench collect`: the collector against a vCenter (the govmomi simulator, a real
//! vCenter, or a `vctp sim` child process started for the run), phase by phase:
//! - `bare exchange`: the same SOAP requests as a collection, response bytes discarded;
//! - `collect`: login, places, VMs (streamed and parsed), logout, rows built;
//! - `capture write`: those rows stored as one snapshot with its run record;
//! - `snapshot`: the whole capture as a snapshot round does it, each page's rows written
//!   into the open transaction as the page arrives (run first, so its peak RSS is its own).
//!
//! The simulator runs in its own process so the peak RSS reported is the collector's alone.

use super::{Phase, timed};
use crate::cli::BenchCollectArgs;
use crate::config::VcenterTarget;
use crate::inventory::TierMapping;
use crate::inventory::capture::{Filters, rows_from};
use crate::inventory::collector::{Collector, Opened};
use crate::store::runs::SnapshotRun;
use crate::store::{DatabaseUrl, Store};
use crate::vsphere::{self, VmPage};
use anyhow::{Context, Result};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A `vctp sim` child process, killed when dropped.
struct SimProcess(Child);

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `vctp sim` with `vms` VMs on a free loopback port and returns it with its SDK URL.
fn spawn_sim(vms: usize, username: &str, password: &str) -> Result<(SimProcess, String)> {
    let exe = std::env::current_exe().context("failed to locate the vctp binary")?;
    let mut child = Command::new(exe)
        .args([
            "sim",
            "--listen",
            "127.0.0.1:0",
            "--vcenters",
            "1",
            "--seed",
            "1",
        ])
        .args([
            "--vms",
            &vms.to_string(),
            "--username",
            username,
            "--password",
            password,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("failed to start `vctp sim`")?;
    let stdout = child.stdout.take().context("`vctp sim` has no stdout")?;
    let sim = SimProcess(child);
    // The simulator prints one line per vCenter naming its SDK URL once it listens.
    for line in BufReader::new(stdout).lines() {
        let line = line.context("failed to read `vctp sim` output")?;
        if let Some(url) = line.split_whitespace().find(|w| w.starts_with("http://")) {
            return Ok((sim, url.to_string()));
        }
    }
    anyhow::bail!("`vctp sim` exited before printing its SDK URL")
}

pub async fn run(args: &BenchCollectArgs, url: Option<DatabaseUrl>) -> Result<()> {
    let (_sim, sdk_url) = match &args.url {
        Some(url) => (None, url.clone()),
        None => {
            let (sim, url) = spawn_sim(args.vms, &args.username, &args.password)?;
            (Some(sim), url)
        }
    };
    let target = VcenterTarget {
        name: "bench".into(),
        url: sdk_url.clone(),
        insecure: args.insecure,
        ca_file: args.ca_file.clone(),
        // The simulator started here serves plain HTTP on loopback.
        allow_plain_http: args.allow_plain_http || args.url.is_none(),
    };
    let collector = Collector {
        username: args.username.clone(),
        password: args.password.clone(),
        connect_timeout: Duration::from_secs(10),
        read_timeout: Duration::from_secs(300),
        max_objects: args.max_objects,
        max_retries: 0,
        retry_interval: Duration::ZERO,
        mapping: TierMapping::default(),
        filters: Filters::default(),
    };
    let endpoint = collector.endpoint(&target);
    println!(
        "vctp bench collect: {sdk_url}, maxObjects {}, {} runs",
        args.max_objects, args.runs
    );

    let bare = timed("bare exchange", "bytes", args.runs, || async {
        let mut client = vsphere::Client::login(&endpoint).await?;
        let bytes = client
            .virtual_machines_discarding(Some(args.max_objects))
            .await?;
        client.logout().await?;
        Ok(bytes)
    })
    .await?;

    let scratch = tempfile::tempdir().context("failed to create a scratch directory")?;
    let url = url.unwrap_or_else(|| DatabaseUrl::Sqlite(scratch.path().join("bench.sqlite3")));
    let store = Store::connect(&url).await?;
    // Before the phases that hold every row, so its peak RSS is the snapshot's own.
    let snapshot = timed("snapshot", "rows", args.runs, || async {
        let round = collector
            .capture_round(&store, std::slice::from_ref(&target), 0, 1)
            .await;
        let mut rows = 0;
        for outcome in round {
            rows += outcome.result?.rows as u64;
        }
        Ok(rows)
    })
    .await?;

    // The rows of the last collection, for the write phase.
    let rows = std::cell::RefCell::new(Vec::new());
    let collect = timed("collect", "VMs", args.runs, || async {
        let Opened { client, places } = collector.open(&target).await?;
        let (to, mut pages) = tokio::sync::mpsc::unbounded_channel();
        let read = collector.read_vms(client, &target, to);
        let build = async {
            let mut collected = Vec::new();
            while let Some(page) = pages.recv().await {
                match page {
                    VmPage::Vms(vms) => {
                        let converted =
                            rows_from(&target.name, 0, vms, &places, &collector.filters);
                        collected.extend(converted.rows);
                    }
                    VmPage::Restart => collected.clear(),
                }
            }
            collected
        };
        let (read, collected) = tokio::join!(read, build);
        read?;
        let count = collected.len() as u64;
        *rows.borrow_mut() = collected;
        Ok(count)
    })
    .await?;
    let rows = rows.into_inner();

    let write = timed("capture write", "rows", args.runs, || async {
        write_snapshot(&store, &rows).await
    })
    .await?;
    store.close().await;

    print_summary(&bare, &collect, &write, &snapshot, &url);
    Ok(())
}

/// Stores `rows` as one snapshot with its run record, as a capture does; each run replaces
/// the previous one (same vCenter and time).
async fn write_snapshot(store: &Store, rows: &[crate::inventory::HourlyRow]) -> Result<u64> {
    let mut writer = store
        .snapshot_writer(TierMapping::default(), "collector")
        .await?;
    for row in rows {
        writer.push(row.clone()).await?;
    }
    writer
        .record_run(&SnapshotRun {
            vcenter: "bench".into(),
            snapshot_time: 0,
            started_at: 0,
            finished_at: 0,
            success: true,
            row_count: rows.len() as i64,
            error: String::new(),
            failure_kind: String::new(),
        })
        .await?;
    writer.commit().await?;
    Ok(rows.len() as u64)
}

fn print_summary(
    bare: &Phase,
    collect: &Phase,
    write: &Phase,
    snapshot: &Phase,
    url: &DatabaseUrl,
) {
    println!(
        "collect / bare exchange = {:.2}x; {:.0} VMs/s collected; capture write {:.0} rows/s on {url}; \
         the whole snapshot (collect + write) {:.3} s, peak RSS {:.1} MB",
        collect.median() / bare.median(),
        collect.rows as f64 / collect.median(),
        write.rows as f64 / write.median(),
        snapshot.median(),
        snapshot.peak_rss_mb,
    );
    println!(
        "{}",
        serde_json::json!({
            "tool": "vctp",
            "vms": collect.rows,
            "bare_seconds": bare.median(),
            "collect_seconds": collect.median(),
            "collect_peak_rss_mb": collect.peak_rss_mb,
            "write_seconds": write.median(),
            "write_peak_rss_mb": write.peak_rss_mb,
            "snapshot_seconds": snapshot.median(),
            "snapshot_peak_rss_mb": snapshot.peak_rss_mb,
            "database": url.to_string(),
        })
    );
}
