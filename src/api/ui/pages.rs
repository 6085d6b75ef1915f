//! The dashboard, vCenter, totals, snapshots and reports pages: query → store reads of one
//! vCenter's cache rows (or the latest totals) → rows and charts → template.

use super::chart::{self, number};
use super::{Cell, Chart, Error, Layout, Session, html, link, now, optional, required, time_text};
use crate::aggregate::Day;
use crate::api::NoParameters;
use crate::store::Store;
use crate::store::grain::{Grain, TotalsGrain};
use crate::store::totals::VcenterTotals;
use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::Html;
use serde::Deserialize;

/// The window of the *Hourly Detail* page and the dashboard's trend.
const HOURLY_DAYS: i64 = 45;
/// How far back the unfiltered snapshot list reaches from the newest snapshot.
const SNAPSHOT_LIST_DAYS: i64 = 2;
/// Most rows one snapshot table shows.
const SNAPSHOT_LIST_ROWS: usize = 1_000;
const RUN_LIST_ROWS: i64 = 200;

type PageResult = Result<Html<String>, Error>;

struct DashboardRow {
    vcenter: String,
    time: String,
    vms: String,
    vcpu: String,
    ram: String,
    disk: String,
    trend: String,
}

#[derive(Template)]
#[template(path = "dashboard.html", config = "src/api/ui/askama.toml")]
struct Dashboard {
    layout: Layout,
    rows: Vec<DashboardRow>,
}

pub async fn dashboard(
    session: Session,
    State(store): State<Store>,
    query: Result<Query<NoParameters>, QueryRejection>,
) -> PageResult {
    let Query(NoParameters {}) = query?;
    let until = now() + 1;
    let since = until - HOURLY_DAYS * 86_400;
    let mut rows = Vec::new();
    for latest in store.latest_totals().await? {
        let history = store
            .vcenter_totals_range(TotalsGrain::Snapshot, &latest.vcenter, since, until)
            .await?;
        let points = series(&history, |t| t.vm_count);
        rows.push(DashboardRow {
            trend: chart::sparkline(&format!("VMs of {}", latest.vcenter), &points),
            time: time_text(latest.period_start),
            vms: number(latest.vm_count),
            vcpu: number(latest.vcpu_count),
            ram: number(latest.ram_gb),
            disk: number(latest.disk_gb),
            vcenter: latest.vcenter,
        });
    }
    html(
        "dashboard",
        &Dashboard {
            layout: Layout::new("Dashboard", &session),
            rows,
        },
    )
}

struct VcenterRow {
    vcenter: String,
    /// Where it was last captured from; empty when not known.
    host: String,
    time: String,
    vms: String,
}

#[derive(Template)]
#[template(path = "vcenters.html", config = "src/api/ui/askama.toml")]
struct Vcenters {
    layout: Layout,
    rows: Vec<VcenterRow>,
}

pub async fn vcenters(session: Session, State(store): State<Store>) -> PageResult {
    let mut hosts = store.vcenter_hosts().await?;
    let rows = store
        .latest_totals()
        .await?
        .into_iter()
        .map(|t| VcenterRow {
            host: hosts.remove(&t.vcenter).unwrap_or_default(),
            time: time_text(t.period_start),
            vms: number(t.vm_count),
            vcenter: t.vcenter,
        })
        .collect();
    html(
        "vcenters",
        &Vcenters {
            layout: Layout::new("vCenters", &session),
            rows,
        },
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TotalsQuery {
    vcenter: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

struct TotalsRow {
    period: String,
    values: [String; 8],
}

#[derive(Template)]
#[template(path = "totals.html", config = "src/api/ui/askama.toml")]
struct Totals {
    layout: Layout,
    description: String,
    other_url: String,
    other_label: &'static str,
    period_header: &'static str,
    charts: Vec<Chart>,
    rows: Vec<TotalsRow>,
}

/// *Daily Aggregated*: the daily totals cache of one vCenter, all days or `from..=to`.
pub async fn daily_totals(
    session: Session,
    State(store): State<Store>,
    query: Result<Query<TotalsQuery>, QueryRejection>,
) -> PageResult {
    let Query(query) = query?;
    let vcenter = required("vcenter", query.vcenter, "a vCenter name")?;
    let day = |name: &'static str, text: Option<String>| {
        optional(text)
            .map(|text| {
                Day::parse(&text)
                    .map_err(|_| Error::bad(name, format!("{text:?} is not a date YYYY-MM-DD")))
            })
            .transpose()
    };
    let from = day("from", query.from)?;
    let to = day("to", query.to)?;
    if let (Some(from), Some(to)) = (from, to)
        && from > to
    {
        return Err(Error::bad("from", "is after to"));
    }
    let rows = store
        .vcenter_totals_range(
            TotalsGrain::Daily,
            &vcenter,
            from.map_or(i64::MIN, Day::start),
            to.map_or(i64::MAX, Day::end),
        )
        .await?;
    let range = match (from, to) {
        (None, None) => "all days".to_string(),
        (from, to) => format!(
            "{} to {}",
            from.map_or("the first day".to_string(), |d| d.to_string()),
            to.map_or("the last day".to_string(), |d| d.to_string())
        ),
    };
    totals_page(
        &store,
        &vcenter,
        rows,
        Totals {
            layout: Layout::new(format!("{vcenter}: Daily Aggregated"), &session),
            description: format!(
                "Daily totals, {range}; VMs are VM-days (a VM present half the day counts 0.5)"
            ),
            other_url: link("/vcenters/totals/hourly", &[("vcenter", &vcenter)]),
            other_label: "Hourly Detail",
            period_header: "Day",
            charts: Vec::new(),
            rows: Vec::new(),
        },
        |t| Day::containing(t).map_or_else(|_| t.to_string(), |d| d.to_string()),
    )
    .await
}

/// *Hourly Detail*: the snapshot totals cache of one vCenter over the last 45 days.
pub async fn hourly_totals(
    session: Session,
    State(store): State<Store>,
    query: Result<Query<TotalsQuery>, QueryRejection>,
) -> PageResult {
    let Query(query) = query?;
    let vcenter = required("vcenter", query.vcenter, "a vCenter name")?;
    let until = now() + 1;
    let rows = store
        .vcenter_totals_range(
            TotalsGrain::Snapshot,
            &vcenter,
            until - HOURLY_DAYS * 86_400,
            until,
        )
        .await?;
    totals_page(
        &store,
        &vcenter,
        rows,
        Totals {
            layout: Layout::new(format!("{vcenter}: Hourly Detail"), &session),
            description: format!("Totals of every snapshot in the last {HOURLY_DAYS} days"),
            other_url: link("/vcenters/totals/daily", &[("vcenter", &vcenter)]),
            other_label: "Daily Aggregated",
            period_header: "Snapshot",
            charts: Vec::new(),
            rows: Vec::new(),
        },
        time_text,
    )
    .await
}

/// Fills `page` with the charts and table of `rows`; a vCenter without rows that the latest
/// totals do not know either is a 404, not an empty page.
async fn totals_page(
    store: &Store,
    vcenter: &str,
    rows: Vec<VcenterTotals>,
    mut page: Totals,
    period: impl Fn(i64) -> String,
) -> PageResult {
    if rows.is_empty() && !known_vcenter(store, vcenter).await? {
        return Err(Error::UnknownVcenter(vcenter.to_string()));
    }
    page.charts = vec![
        Chart {
            title: "VMs",
            svg: chart::line_chart("VMs", &series(&rows, |t| t.vm_count)),
        },
        Chart {
            title: "vCPU",
            svg: chart::line_chart("vCPU", &series(&rows, |t| t.vcpu_count)),
        },
        Chart {
            title: "RAM GB",
            svg: chart::line_chart("RAM GB", &series(&rows, |t| t.ram_gb)),
        },
        Chart {
            title: "Disk GB",
            svg: chart::line_chart("Disk GB", &series(&rows, |t| t.disk_gb)),
        },
    ];
    page.rows = rows
        .iter()
        .rev()
        .map(|t| TotalsRow {
            period: period(t.period_start),
            values: [
                t.vm_count,
                t.vcpu_count,
                t.ram_gb,
                t.disk_gb,
                t.tin,
                t.bronze,
                t.silver,
                t.gold,
            ]
            .map(number),
        })
        .collect();
    html("totals", &page)
}

async fn known_vcenter(store: &Store, vcenter: &str) -> Result<bool, Error> {
    Ok(store
        .latest_totals()
        .await?
        .iter()
        .any(|t| t.vcenter == vcenter))
}

fn series(rows: &[VcenterTotals], value: impl Fn(&VcenterTotals) -> f64) -> Vec<(i64, f64)> {
    rows.iter().map(|t| (t.period_start, value(t))).collect()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotsQuery {
    vcenter: Option<String>,
}

struct Table {
    caption: String,
    header: Vec<&'static str>,
    rows: Vec<Vec<Cell>>,
}

#[derive(Template)]
#[template(path = "snapshots.html", config = "src/api/ui/askama.toml")]
struct Snapshots {
    layout: Layout,
    grains: Vec<(&'static str, String)>,
    action: String,
    vcenter: String,
    tables: Vec<Table>,
}

/// `/snapshots/hourly|daily|monthly`: stored snapshots and collector runs, or the summarised
/// days and months, of every vCenter or one.
pub async fn snapshots(
    session: Session,
    State(store): State<Store>,
    Path(grain): Path<String>,
    query: Result<Query<SnapshotsQuery>, QueryRejection>,
) -> PageResult {
    let Query(query) = query?;
    let vcenter = optional(query.vcenter);
    if let Some(vcenter) = &vcenter
        && !known_vcenter(&store, vcenter).await?
    {
        return Err(Error::UnknownVcenter(vcenter.clone()));
    }
    let tables = match grain.as_str() {
        "hourly" => hourly_snapshots(&store, vcenter.as_deref()).await?,
        "daily" => vec![periods(&store, Grain::Daily, vcenter.as_deref()).await?],
        "monthly" => vec![periods(&store, Grain::Monthly, vcenter.as_deref()).await?],
        other => {
            return Err(Error::bad(
                "grain",
                format!("{other:?} is not one of hourly, daily, monthly"),
            ));
        }
    };
    let filter: Vec<(&str, &str)> = vcenter.iter().map(|v| ("vcenter", v.as_str())).collect();
    let grains = ["hourly", "daily", "monthly"]
        .map(|g| (g, link(&format!("/snapshots/{g}"), &filter)))
        .to_vec();
    let title = match &vcenter {
        Some(v) => format!("Snapshots: {grain}, {v}"),
        None => format!("Snapshots: {grain}"),
    };
    html(
        "snapshots",
        &Snapshots {
            layout: Layout::new(title, &session),
            grains,
            action: format!("/snapshots/{grain}"),
            vcenter: vcenter.unwrap_or_default(),
            tables,
        },
    )
}

async fn hourly_snapshots(store: &Store, vcenter: Option<&str>) -> Result<Vec<Table>, Error> {
    let latest = store.latest_totals().await?;
    let mut stored = match vcenter {
        Some(vcenter) => {
            let until = now() + 1;
            store
                .vcenter_totals_range(
                    TotalsGrain::Snapshot,
                    vcenter,
                    until - HOURLY_DAYS * 86_400,
                    until,
                )
                .await?
        }
        // Every vCenter: the last two days before the newest snapshot, not the whole cache.
        None => match latest.iter().map(|t| t.period_start).max() {
            Some(newest) => {
                store
                    .totals(
                        TotalsGrain::Snapshot,
                        newest - SNAPSHOT_LIST_DAYS * 86_400,
                        newest + 1,
                    )
                    .await?
            }
            None => Vec::new(),
        },
    };
    stored.sort_by(|a, b| (b.period_start, &a.vcenter).cmp(&(a.period_start, &b.vcenter)));
    stored.truncate(SNAPSHOT_LIST_ROWS);
    let mut tables = Vec::new();
    if !stored.is_empty() {
        tables.push(Table {
            caption: format!("{} stored snapshots, newest first", stored.len()),
            header: vec!["Snapshot", "vCenter", "VMs", "vCPU", "RAM GB", "Disk GB"],
            rows: stored
                .into_iter()
                .map(|t| {
                    vec![
                        Cell::text(time_text(t.period_start)),
                        Cell {
                            href: Some(link("/vcenters/totals/hourly", &[("vcenter", &t.vcenter)])),
                            text: t.vcenter,
                        },
                        Cell::text(number(t.vm_count)),
                        Cell::text(number(t.vcpu_count)),
                        Cell::text(number(t.ram_gb)),
                        Cell::text(number(t.disk_gb)),
                    ]
                })
                .collect(),
        });
    }
    let runs = store.snapshot_runs(vcenter, RUN_LIST_ROWS).await?;
    if !runs.is_empty() {
        tables.push(Table {
            caption: format!("{} newest collector runs", runs.len()),
            header: vec!["Started", "vCenter", "Snapshot", "Result", "Rows", "Error"],
            rows: runs
                .into_iter()
                .map(|r| {
                    vec![
                        Cell::text(time_text(r.started_at)),
                        Cell::text(r.vcenter),
                        Cell::text(time_text(r.snapshot_time)),
                        Cell::text(if r.success { "ok" } else { "failed" }),
                        Cell::text(r.row_count.to_string()),
                        Cell::text(r.error),
                    ]
                })
                .collect(),
        });
    }
    Ok(tables)
}

/// The summarised periods, newest first: all of them, or one vCenter's with its totals.
async fn periods(store: &Store, grain: Grain, vcenter: Option<&str>) -> Result<Table, Error> {
    let label = |start: i64| match (grain, Day::containing(start)) {
        (Grain::Daily, Ok(day)) => day.to_string(),
        (Grain::Monthly, Ok(day)) => day.month().to_string(),
        (_, Err(_)) => start.to_string(),
    };
    let summaries = |start: i64| {
        let (path, key) = match grain {
            Grain::Daily => ("/api/summaries/daily", "date"),
            Grain::Monthly => ("/api/summaries/monthly", "month"),
        };
        let period = label(start);
        let mut params = vec![(key, period.as_str())];
        params.extend(vcenter.map(|v| ("vcenter", v)));
        Cell {
            href: Some(link(path, &params)),
            text: period.clone(),
        }
    };
    let Some(vcenter) = vcenter else {
        let starts = store.summary_periods(grain).await?;
        return Ok(Table {
            caption: format!("{} periods with summaries, newest first", starts.len()),
            header: vec!["Period (summaries as JSON)", "Starts"],
            rows: starts
                .into_iter()
                .rev()
                .map(|s| vec![summaries(s), Cell::text(time_text(s))])
                .collect(),
        });
    };
    let totals = store
        .vcenter_totals_range(grain.totals(), vcenter, i64::MIN, i64::MAX)
        .await?;
    Ok(Table {
        caption: format!("{} periods of {vcenter}, newest first", totals.len()),
        header: vec![
            "Period (summaries as JSON)",
            "VMs",
            "vCPU",
            "RAM GB",
            "Disk GB",
        ],
        rows: totals
            .into_iter()
            .rev()
            .map(|t| {
                vec![
                    summaries(t.period_start),
                    Cell::text(number(t.vm_count)),
                    Cell::text(number(t.vcpu_count)),
                    Cell::text(number(t.ram_gb)),
                    Cell::text(number(t.disk_gb)),
                ]
            })
            .collect(),
    })
}

struct ReportRow {
    kind: String,
    period: String,
    scope: String,
    format: String,
    size: String,
    created: String,
    key: String,
}

#[derive(Template)]
#[template(path = "reports.html", config = "src/api/ui/askama.toml")]
struct Reports {
    layout: Layout,
    rows: Vec<ReportRow>,
}

pub async fn reports(session: Session, State(store): State<Store>) -> PageResult {
    let rows = store
        .reports(None)
        .await?
        .into_iter()
        .map(|r| ReportRow {
            kind: r.kind,
            period: r.period,
            scope: r.scope,
            format: r.format,
            size: r.size.to_string(),
            created: time_text(r.created_at),
            key: r.object_key,
        })
        .collect();
    html(
        "reports",
        &Reports {
            layout: Layout::new("Reports", &session),
            rows,
        },
    )
}
