//! Costs in the reports, end to end through the `vctp` binary on SQLite and PostgreSQL: a
//! monthly report with rate cards writes the FOCUS file, which Python's csv module reads back
//! (`tests/focus_check.py`: every FOCUS 1.2 Mandatory column present and typed), and a Costs
//! sheet, which LibreOffice reads back (`VCTP_TEST_SOFFICE`); both per-tenant totals equal
//! `vctp costs monthly --group-by tenant --format json`.
// A whole test crate: its helpers fail the test by panicking, like its #[test]s.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::TestDb;
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use vctp::aggregate::engine::aggregate_daily;
use vctp::aggregate::{Day, Engine};
use vctp::store::DatabaseUrl;

/// Two EUR cards, the prices changing on 2026-01-30, with prices of three and four decimals
/// so that rounding each charge matters; tenants by resource pool.
const SETTINGS: &str = r#"settings:
  reports_dir: REPORTS
  rate_cards:
    - name: "2026 list"
      currency: EUR
      effective_from: 2026-01-01
      tiers: {tin: "0.25", bronze: "0.50", silver: "1.10", gold: "2.335", none: "0.125"}
      vcpu_day: "0.0333"
      ram_gb_day: "0.0125"
      disk_gb_month: "2.5"
    - name: "late january"
      currency: EUR
      effective_from: 2026-01-30
      tiers: {tin: "0.30", bronze: "0.55", silver: "1.15", gold: "2.50", none: "0.15"}
      vcpu_day: "0.04"
      ram_gb_day: "0.0125"
      disk_gb_month: "2.5"
  tenant_rules:
    - {tenant: gold-team, resource_pool: Gold}
    - {tenant: tin-team, resource_pool: Tin}
"#;

fn database_url(db: &TestDb) -> String {
    match &db.url {
        DatabaseUrl::Sqlite(path) => path.display().to_string(),
        DatabaseUrl::Postgres(url) => url.clone(),
    }
}

fn vctp(config: &Path, db: &str, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_vctp"))
        .arg("--config")
        .arg(config)
        .arg("--database-url")
        .arg(db)
        .args(args)
        .output()
        .expect("run vctp");
    ok("vctp", output)
}

fn ok(what: &str, output: Output) -> String {
    assert!(
        output.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// tenant → currency → amount.
type Amounts = BTreeMap<String, BTreeMap<String, Decimal>>;

fn add(amounts: &mut Amounts, tenant: &str, currency: &str, amount: Decimal) {
    *amounts
        .entry(tenant.to_string())
        .or_default()
        .entry(currency.to_string())
        .or_default() += amount;
}

fn decimal(text: &str) -> Decimal {
    text.parse()
        .unwrap_or_else(|e| panic!("{text:?} is not a decimal: {e}"))
}

/// The per-tenant lines of `vctp costs monthly --group-by tenant --format json`.
fn cli_costs(config: &Path, db: &str) -> Amounts {
    let json = vctp(
        config,
        db,
        &[
            "costs",
            "monthly",
            "--month",
            "2026-01",
            "--group-by",
            "tenant",
            "--format",
            "json",
        ],
    );
    let report: serde_json::Value = serde_json::from_str(&json).expect("JSON costs");
    let mut amounts = Amounts::new();
    for line in report["lines"].as_array().expect("lines") {
        let cost = match &line["cost"] {
            serde_json::Value::String(s) => decimal(s),
            other => decimal(&other.to_string()),
        };
        add(
            &mut amounts,
            line["tenant"].as_str().unwrap(),
            line["currency"].as_str().unwrap(),
            cost,
        );
    }
    amounts
}

/// The Costs sheet of `xlsx` as LibreOffice reads it: the rows of its first table (by tenant).
fn costs_sheet_by_tenant(xlsx: &Path, work: &Path) -> (Amounts, Vec<Vec<String>>) {
    let soffice = std::env::var_os("VCTP_TEST_SOFFICE").unwrap_or_else(|| {
        panic!(
            "VCTP_TEST_SOFFICE is not set: run the tests through scripts/test.sh, which installs LibreOffice and exports it"
        )
    });
    let profile = work.join("profile");
    let out = work.join("sheets");
    ok(
        "soffice",
        Command::new(soffice)
            .arg(format!(
                "-env:UserInstallation=file://{}",
                profile.display()
            ))
            .args(["--headless", "--norestore", "--convert-to"])
            // One CSV per sheet (-1), raw values, UTF-8.
            .arg("csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false,false,-1")
            .arg("--outdir")
            .arg(&out)
            .arg(xlsx)
            .output()
            .expect("run soffice"),
    );
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_path(out.join("all-Costs.csv"))
        .expect("LibreOffice wrote the Costs sheet");
    let grid: Vec<Vec<String>> = reader
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect();
    assert_eq!(grid[0][0], "Costs by tenant");
    assert_eq!(grid[1][0], "tenant");
    assert_eq!(grid[1][7], "cost");
    let mut amounts = Amounts::new();
    for row in grid[2..].iter().take_while(|row| row[0] != "Total") {
        add(&mut amounts, &row[0], &row[2], decimal(&row[7]));
    }
    (amounts, grid)
}

async fn focus_file_and_costs_sheet_agree_with_vctp_costs(db: TestDb) {
    let first = Day::parse("2026-01-29").unwrap();
    let inventory = vctp::synth::Inventory::new(40, 2, first, 4, 17);
    common::import(&db.store, common::synthetic_rows(&inventory, first, 4)).await;
    for day in [first, first.next(), first.next().next()] {
        aggregate_daily(&db.store, day, Engine::Rust).await.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports");
    let config = dir.path().join("settings.yaml");
    std::fs::write(
        &config,
        SETTINGS.replace("REPORTS", &reports.display().to_string()),
    )
    .unwrap();
    let url = database_url(&db);

    // The monthly report writes the workbook, its CSV twin and the FOCUS file.
    vctp(
        &config,
        &url,
        &["aggregate", "monthly", "--month", "2026-01"],
    );
    let focus = reports.join("reports/focus/2026-01/all.csv");
    let written = std::fs::read(&focus).expect("the monthly report wrote the FOCUS file");
    assert!(
        reports
            .join("reports/focus/2026-01/all.csv.sha256")
            .is_file()
    );
    let listed = vctp(&config, &url, &["report", "list", "--kind", "focus"]);
    assert!(listed.contains("reports/focus/2026-01/all.csv"), "{listed}");
    // And `report generate focus` writes the same rows on its own.
    vctp(
        &config,
        &url,
        &["report", "generate", "focus", "--month", "2026-01"],
    );
    assert_eq!(std::fs::read(&focus).unwrap(), written);

    let expected = cli_costs(&config, &url);
    assert!(
        expected.contains_key("gold-team") && expected.contains_key("unassigned"),
        "{expected:?}"
    );

    let checked = ok(
        "tests/focus_check.py",
        Command::new("python3")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/focus_check.py"))
            .arg(&focus)
            .output()
            .expect("run python3"),
    );
    let by_python: BTreeMap<String, BTreeMap<String, String>> =
        serde_json::from_str(&checked).expect("JSON sums");
    let mut from_focus = Amounts::new();
    for (tenant, currencies) in &by_python {
        for (currency, sum) in currencies {
            add(&mut from_focus, tenant, currency, decimal(sum));
        }
    }
    assert_eq!(from_focus, expected, "FOCUS BilledCost per tenant");

    let (from_sheet, grid) = costs_sheet_by_tenant(
        &reports.join("reports/monthly/2026-01/all.xlsx"),
        dir.path(),
    );
    assert_eq!(from_sheet, expected, "Costs sheet per tenant");
    // The total row is the sum of the tenant lines.
    let total = grid
        .iter()
        .find(|row| row[0] == "Total")
        .expect("a Total row");
    let sum: Decimal = from_sheet.values().flat_map(|c| c.values()).sum();
    assert_eq!(decimal(&total[7]), sum);
}

on_both_databases!(focus_file_and_costs_sheet_agree_with_vctp_costs);
