//! `/finance`: what each tenant owes. Without parameters: this month so far against last
//! month to the same day, last month by tenant, and the trend of the last twelve months, all
//! read from the costs the server keeps (`api::finance`, computed off the request path, so the
//! page costs no pricing however many VMs there are). `?month=M` prices one month by tenant,
//! and `&tenant=T` lists that tenant's VMs: one month of pricing on request (about a second
//! at 100k VMs), kept by the answer cache. Every month links its workbook and FOCUS file when
//! they are registered, through `/api/reports/download` (a short-lived link, never a
//! credential in a URL).

use super::{Cell, Chart, Error, Layout, Session, chart, html, link, optional, time_text};
use crate::aggregate::Month;
use crate::api::Finance;
use crate::api::finance::{MonthCosts, Snapshot, TREND_MONTHS};
use crate::cost::price::{CostLine, CurrencyTotal};
use crate::cost::{GroupBy, Period};
use crate::store::Store;
use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::Html;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// A trend table has a column per tenant up to this many tenants; beyond, totals only.
const TENANT_COLUMNS: usize = 8;

/// What the page shows when no rate card is configured.
const EXAMPLE: &str = r#"settings:
  rate_cards:
    - name: "2026 list"
      currency: EUR
      effective_from: 2026-01-01
      tiers: {tin: "0.50", bronze: "1.00", silver: "2.00", gold: "4.00", none: "0.25"}
      vcpu_day: "0.40"
      ram_gb_day: "0.05"
      disk_gb_month: "0.06"
  tenant_rules:
    - {tenant: acme, folder_prefix: /DC0/vm/acme}
    - {tenant_from_attribute: Tenant}"#;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinanceQuery {
    month: Option<String>,
    tenant: Option<String>,
}

struct Section {
    title: String,
    note: Option<String>,
    header: Vec<String>,
    /// Columns from this one on are figures, aligned right.
    numeric_from: usize,
    rows: Vec<Vec<Cell>>,
    /// One line per currency: the sum of the rounded lines, the exact total, the difference.
    totals: Vec<String>,
    /// The month whose files `downloads` links, when the section is one month's.
    month: Option<String>,
    downloads: Vec<Cell>,
}

#[derive(Template)]
#[template(path = "finance.html", config = "src/api/ui/askama.toml")]
struct FinancePage {
    layout: Layout,
    configured: bool,
    example: &'static str,
    description: String,
    /// A month or a tenant's VMs: the page links back to the overview.
    drill_down: bool,
    charts: Vec<Chart>,
    sections: Vec<Section>,
}

pub async fn page(
    session: Session,
    State(store): State<Store>,
    State(finance): State<Arc<Finance>>,
    query: Result<Query<FinanceQuery>, QueryRejection>,
) -> Result<Html<String>, Error> {
    let Query(query) = query?;
    let month = optional(query.month)
        .map(|text| {
            Month::parse(&text)
                .map_err(|_| Error::bad("month", format!("{text:?} is not a month YYYY-MM")))
        })
        .transpose()?;
    let tenant = optional(query.tenant);
    if tenant.is_some() && month.is_none() {
        return Err(Error::bad("month", "is required with tenant (YYYY-MM)"));
    }
    let mut page = FinancePage {
        layout: Layout::new("Finance", &session),
        configured: !finance.pricing.cards.is_empty(),
        example: EXAMPLE,
        description: String::new(),
        drill_down: false,
        charts: Vec::new(),
        sections: Vec::new(),
    };
    if !page.configured {
        return html("finance", &page);
    }
    let downloads = Downloads::read(&store).await?;
    match month {
        Some(month) => {
            let ledger =
                crate::jobs::costs::ledger(&store, &finance.pricing, Period::Month(month)).await?;
            page.layout.title = match &tenant {
                Some(tenant) => format!("Finance: {tenant}, {month}"),
                None => format!("Finance: {month}"),
            };
            page.drill_down = true;
            page.description = "Priced now from the stored daily summaries, each day at its own rate card. Every line is the sum of its charges, each rounded half-even once.".to_string();
            let section = match &tenant {
                None => by_tenant(
                    format!("{month} by tenant"),
                    month,
                    &ledger.lines(GroupBy::Tenant),
                    &ledger.totals(),
                ),
                Some(tenant) => vms_of(month, tenant, ledger.lines(GroupBy::Vm)),
            };
            page.sections.push(Section {
                month: Some(month.to_string()),
                downloads: downloads.of(month),
                ..section
            });
        }
        None => overview(&mut page, finance.snapshot().as_deref(), &downloads),
    }
    html("finance", &page)
}

/// The kept costs: this month so far, last month, the trend.
fn overview(page: &mut FinancePage, snapshot: Option<&Snapshot>, downloads: &Downloads) {
    let Some(snapshot) = snapshot else {
        page.description = format!(
            "The costs of the last {TREND_MONTHS} months are being computed; reload in a minute."
        );
        return;
    };
    page.description = format!(
        "As of {} UTC (computed every 10 minutes from the stored daily summaries, each day at its own rate card). Every line is the sum of its charges, each rounded half-even once.",
        time_text(snapshot.computed_at)
    );
    if snapshot.months.is_empty() {
        page.sections.push(empty_section(format!(
            "No daily summaries in the last {TREND_MONTHS} months yet."
        )));
        return;
    }
    if let Some(to_date) = &snapshot.to_date {
        let month = to_date.through.month();
        let previous: BTreeMap<(&str, &str), Decimal> = to_date
            .previous
            .iter()
            .map(|l| ((tenant_of(l), l.currency.as_str()), l.cost))
            .collect();
        let rows = to_date
            .tenants
            .iter()
            .map(|l| {
                let before = previous.get(&(tenant_of(l), l.currency.as_str())).copied();
                let change = match before {
                    Some(b) if !b.is_zero() => {
                        let percent = (l.cost - b) / b * Decimal::from(100);
                        format!("{:+}%", crate::cost::money::shown(percent, 1))
                    }
                    _ => "new".to_string(),
                };
                vec![
                    tenant_cell(month, tenant_of(l)),
                    Cell::text(&l.currency),
                    Cell::text(l.cost.to_string()),
                    Cell::text(before.map_or_else(|| "–".to_string(), |b| b.to_string())),
                    Cell::text(change),
                ]
            })
            .collect();
        page.sections.push(Section {
            title: format!("This month so far: {month}, through {}", to_date.through),
            note: Some(format!(
                "Against last month through {}, the same day of month (what the vctp_tenant_cost_*month_to_date gauges and the chart's alert compare).",
                to_date.previous_through
            )),
            header: ["Tenant", "Currency", "So far", "Last month, same day", "Change"]
                .map(String::from)
                .to_vec(),
            numeric_from: 2,
            rows,
            totals: Vec::new(),
            month: Some(month.to_string()),
            downloads: downloads.of(month),
        });
    }
    let current = snapshot.to_date.as_ref().map(|t| t.through.month());
    if let Some(last) = snapshot.months.iter().find(|m| Some(m.month) != current) {
        page.sections
            .push(month_section("Last month", last, downloads));
    }
    trend(page, &snapshot.months, downloads);
}

fn month_section(title: &str, costs: &MonthCosts, downloads: &Downloads) -> Section {
    let month = costs.month;
    let section = match &costs.costs {
        Ok(figures) => by_tenant(
            format!("{title}: {month}"),
            month,
            &figures.tenants,
            &figures.totals,
        ),
        Err(problem) => Section {
            note: Some(problem.clone()),
            ..empty_section(format!("{title}: {month}"))
        },
    };
    Section {
        month: Some(month.to_string()),
        downloads: downloads.of(month),
        ..section
    }
}

fn by_tenant(title: String, month: Month, lines: &[CostLine], totals: &[CurrencyTotal]) -> Section {
    Section {
        title,
        note: None,
        header: [
            "Tenant",
            "Currency",
            "VM-days",
            "vCPU-days",
            "RAM GB-days",
            "Disk GB-days",
            "Cost",
        ]
        .map(String::from)
        .to_vec(),
        numeric_from: 2,
        rows: lines
            .iter()
            .map(|l| {
                let mut row = vec![tenant_cell(month, tenant_of(l)), Cell::text(&l.currency)];
                row.extend(figures(l));
                row
            })
            .collect(),
        totals: totals.iter().map(total_text).collect(),
        month: None,
        downloads: Vec::new(),
    }
}

/// The VMs of one tenant in `month`, and its total (the sum of their lines).
fn vms_of(month: Month, tenant: &str, lines: Vec<CostLine>) -> Section {
    let lines: Vec<CostLine> = lines
        .into_iter()
        .filter(|l| l.tenant.as_deref() == Some(tenant))
        .collect();
    let mut sums: BTreeMap<&str, Decimal> = BTreeMap::new();
    for l in &lines {
        *sums.entry(&l.currency).or_default() += l.cost;
    }
    Section {
        title: format!("{} VMs of {tenant} in {month}", lines.len()),
        note: lines
            .is_empty()
            .then(|| format!("No VM was charged to {tenant} in {month}.")),
        header: [
            "VM",
            "vCenter",
            "VM id",
            "Currency",
            "VM-days",
            "vCPU-days",
            "RAM GB-days",
            "Disk GB-days",
            "Cost",
        ]
        .map(String::from)
        .to_vec(),
        numeric_from: 4,
        rows: lines
            .iter()
            .map(|l| {
                let vcenter = l.vcenter.clone().unwrap_or_default();
                let vm_id = l.vm_id.clone().unwrap_or_default();
                let mut row = vec![
                    Cell::link(
                        l.name.clone().unwrap_or_else(|| vm_id.clone()),
                        link(
                            "/vm/trace",
                            &[("vm", &vm_id), ("vcenter", &vcenter), ("view", "daily")],
                        ),
                    ),
                    Cell::text(vcenter),
                    Cell::text(vm_id),
                    Cell::text(&l.currency),
                ];
                row.extend(figures(l));
                row
            })
            .collect(),
        totals: sums
            .into_iter()
            .map(|(currency, sum)| format!("{tenant}: {currency} {sum}"))
            .collect(),
        month: None,
        downloads: Vec::new(),
    }
}

/// A chart of the monthly totals per currency, and a table of the months (a column per
/// tenant when they fit).
fn trend(page: &mut FinancePage, months: &[MonthCosts], downloads: &Downloads) {
    let mut per_currency: BTreeMap<&str, Vec<(i64, f64)>> = BTreeMap::new();
    let mut tenants: BTreeSet<&str> = BTreeSet::new();
    for m in months.iter().rev() {
        if let Ok(figures) = &m.costs {
            for total in &figures.totals {
                per_currency
                    .entry(&total.currency)
                    .or_default()
                    .push((m.month.start(), total.cost.to_f64().unwrap_or(0.0)));
            }
            tenants.extend(figures.tenants.iter().map(tenant_of));
        }
    }
    for (currency, points) in &per_currency {
        page.charts.push(Chart {
            title: "Cost per month",
            svg: chart::line_chart(&format!("Cost per month, {currency}"), points),
        });
    }
    let columns: Vec<&str> = if tenants.len() <= TENANT_COLUMNS {
        tenants.into_iter().collect()
    } else {
        Vec::new()
    };
    let mut header: Vec<String> = ["Month", "Currency", "Total"].map(String::from).to_vec();
    header.extend(columns.iter().map(|t| t.to_string()));
    header.extend(["Workbook", "FOCUS"].map(String::from));
    let mut rows = Vec::new();
    for m in months {
        let month_cell = || {
            Cell::link(
                m.month.to_string(),
                link("/finance", &[("month", &m.month.to_string())]),
            )
        };
        match &m.costs {
            Ok(figures) => {
                for total in &figures.totals {
                    let mut row = vec![
                        month_cell(),
                        Cell::text(&total.currency),
                        Cell::text(total.cost.to_string()),
                    ];
                    for tenant in &columns {
                        let cost = figures
                            .tenants
                            .iter()
                            .find(|l| tenant_of(l) == *tenant && l.currency == total.currency)
                            .map_or_else(|| "–".to_string(), |l| l.cost.to_string());
                        row.push(Cell::text(cost));
                    }
                    row.extend(downloads.cells(m.month));
                    rows.push(row);
                }
            }
            Err(problem) => {
                let mut row = vec![month_cell(), Cell::text(""), Cell::text(problem.clone())];
                row.extend(columns.iter().map(|_| Cell::text("")));
                row.extend(downloads.cells(m.month));
                rows.push(row);
            }
        }
    }
    page.sections.push(Section {
        title: format!("The last {TREND_MONTHS} months"),
        note: (columns.is_empty() && !rows.is_empty()).then(|| {
            "Too many tenants for a column each: open a month for its tenants.".to_string()
        }),
        header,
        numeric_from: 2,
        rows,
        totals: Vec::new(),
        month: None,
        downloads: Vec::new(),
    });
}

fn empty_section(title: String) -> Section {
    Section {
        title,
        note: None,
        header: Vec::new(),
        numeric_from: 0,
        rows: Vec::new(),
        totals: Vec::new(),
        month: None,
        downloads: Vec::new(),
    }
}

fn tenant_of(line: &CostLine) -> &str {
    line.tenant.as_deref().unwrap_or_default()
}

fn tenant_cell(month: Month, tenant: &str) -> Cell {
    Cell::link(
        tenant,
        link(
            "/finance",
            &[("month", &month.to_string()), ("tenant", tenant)],
        ),
    )
}

fn figures(line: &CostLine) -> [Cell; 5] {
    [
        line.vm_days,
        line.vcpu_days,
        line.ram_gb_days,
        line.disk_gb_days,
        line.cost,
    ]
    .map(|v| Cell::text(v.to_string()))
}

fn total_text(total: &CurrencyTotal) -> String {
    format!(
        "Total {} {}: the sum of {} rounded charges (exact total {}, rounding {})",
        total.currency, total.cost, total.charges, total.unrounded, total.rounding
    )
}

/// The registered files of a month: its workbook, and its FOCUS file.
const FILES: [(&str, &str, &str); 2] = [
    ("monthly", "xlsx", "Workbook (XLSX)"),
    ("focus", "csv", "FOCUS (CSV)"),
];

/// The registered monthly workbooks and FOCUS files (`FILES`), by month: their object keys.
struct Downloads {
    keys: BTreeMap<String, [Option<String>; 2]>,
}

impl Downloads {
    async fn read(store: &Store) -> Result<Downloads, Error> {
        let mut keys: BTreeMap<String, [Option<String>; 2]> = BTreeMap::new();
        for (i, (kind, format, _)) in FILES.iter().enumerate() {
            for entry in store.reports(Some(kind)).await? {
                if entry.scope == "all" && entry.format == *format {
                    keys.entry(entry.period).or_default()[i] = Some(entry.object_key);
                }
            }
        }
        Ok(Downloads { keys })
    }

    /// A link per file of `month`, or a dash where it is not generated.
    fn cells(&self, month: Month) -> [Cell; 2] {
        let keys = self.keys.get(&month.to_string());
        [0, 1].map(|i| match keys.and_then(|k| k[i].as_deref()) {
            Some(key) => Cell::link(FILES[i].2, download(key)),
            None => Cell::text("–"),
        })
    }

    /// The links of the files of `month` that are generated.
    fn of(&self, month: Month) -> Vec<Cell> {
        self.cells(month)
            .into_iter()
            .filter(|c| c.href.is_some())
            .collect()
    }
}

/// The report download route: it answers a short-lived presigned redirect or the bytes,
/// behind the same login as this page.
fn download(key: &str) -> String {
    link("/api/reports/download", &[("key", key)])
}
