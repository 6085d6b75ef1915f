//! Costs through the whole pipeline: hourly rows → daily summaries (both engines) → charges,
//! against figures worked out by hand, and `vctp costs` printing the same, on both databases.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod common;

use common::TestDb;
use rust_decimal::Decimal;
use std::process::Command;
use vctp::aggregate::engine::aggregate_daily;
use vctp::aggregate::{Day, Engine, Month};
use vctp::config::Settings;
use vctp::cost::{GroupBy, Period};
use vctp::inventory::HourlyRow;
use vctp::jobs::costs;

on_both_databases!(
    a_price_change_a_move_a_template_and_a_power_off_cost_what_the_hand_says,
    a_corrected_card_reprices_history_at_once,
    the_cli_prints_the_ledger_and_refuses_a_bad_card_by_name,
);

/// Two cards: the second starts on 2026-11-15 and makes templates free.
const SETTINGS: &str = r#"settings:
  rate_cards:
    - name: autumn
      currency: EUR
      effective_from: 2026-11-01
      tiers: {gold: 1, none: 0.5}
      vcpu_day: 0.1
      ram_gb_day: 0.01
      disk_gb_day: 0.001
      templates: priced
    - name: winter
      currency: EUR
      effective_from: 2026-11-15
      tiers: {gold: 2, none: 0.5}
      vcpu_day: 0.2
      ram_gb_day: 0.02
      disk_gb_day: 0.002
  tenant_rules:
    - {tenant: acme, folder_prefix: /DC1/vm/acme}
    - {tenant: beta, folder_prefix: /DC1/vm/beta}
"#;

fn settings(text: &str) -> Settings {
    Settings::parse(text, std::path::Path::new("costs.yaml")).unwrap()
}

fn day(text: &str) -> Day {
    Day::parse(text).unwrap()
}

/// vm-1: Gold, 2 vCPU, 4 GB, 100 GB; in acme's folder on the 14th (on all day), in beta's on
/// the 15th, powered off from 12:00. vm-2: a template in acme's folder both days, no tier,
/// 1 vCPU, 2 GB, 50 GB. One snapshot an hour.
async fn store_two_days(db: &TestDb) {
    let mut rows = Vec::new();
    for (d, folder) in [
        ("2026-11-14", "/DC1/vm/acme"),
        ("2026-11-15", "/DC1/vm/beta/web"),
    ] {
        for hour in 0..24 {
            let t = day(d).start() + hour * 3_600 + 60;
            rows.push(HourlyRow {
                folder: folder.into(),
                powered_on: d == "2026-11-14" || hour < 12,
                ..common::hourly_row("vc", "vm-1", t)
            });
            rows.push(HourlyRow {
                folder: "/DC1/vm/acme".into(),
                resource_pool: "Resources".into(),
                vcpu_count: 1,
                ram_gb: 2.0,
                provisioned_disk_gb: 50.0,
                is_template: true,
                powered_on: false,
                ..common::hourly_row("vc", "vm-2", t)
            });
        }
    }
    common::import(&db.store, rows).await;
}

fn cents(text: &str) -> Decimal {
    text.parse().unwrap()
}

async fn a_price_change_a_move_a_template_and_a_power_off_cost_what_the_hand_says(db: TestDb) {
    store_two_days(&db).await;
    let pricing = settings(SETTINGS).pricing;
    let november = Period::Month(Month::parse("2026-11").unwrap());
    for engine in [Engine::Sql, Engine::Rust] {
        for d in ["2026-11-14", "2026-11-15"] {
            aggregate_daily(&db.store, day(d), engine).await.unwrap();
        }
        let ledger = costs::ledger(&db.store, &pricing, november).await.unwrap();
        let charges: Vec<(&str, &str, &str, &str, String)> = ledger
            .charges
            .iter()
            .map(|c| {
                (
                    &*c.line.vm_id,
                    &*c.line.tenant,
                    &*c.line.card,
                    c.component.as_str(),
                    c.cost.to_string(),
                )
            })
            .collect();
        // The 14th at `autumn`: vm-1 in acme: 1 gold VM-day × 1, 2 vCPU-days × 0.1,
        // 4 GB-days × 0.01, 100 GB-days × 0.001; the template vm-2, priced, is billed as
        // powered off: disk only, 50 × 0.001.
        // The 15th at `winter`: vm-1 in beta, on 12 of 24 samples: half of gold (0.5 × 2),
        // of vCPU (1 × 0.2) and RAM (2 × 0.02); all its disk (100 × 0.002). Templates are free.
        let expected = [
            ("vm-1", "acme", "autumn", "gold", "1.00"),
            ("vm-1", "acme", "autumn", "vcpu", "0.20"),
            ("vm-1", "acme", "autumn", "ram", "0.04"),
            ("vm-1", "acme", "autumn", "disk", "0.10"),
            ("vm-1", "beta", "winter", "gold", "1.00"),
            ("vm-1", "beta", "winter", "vcpu", "0.20"),
            ("vm-1", "beta", "winter", "ram", "0.04"),
            ("vm-1", "beta", "winter", "disk", "0.20"),
            ("vm-2", "acme", "autumn", "disk", "0.05"),
        ];
        assert_eq!(
            charges,
            expected.map(|(a, b, c, d, e)| (a, b, c, d, e.to_string())),
            "{engine:?}"
        );
        let tenants: Vec<(Option<String>, Decimal)> = ledger
            .lines(GroupBy::Tenant)
            .into_iter()
            .map(|l| (l.tenant, l.cost))
            .collect();
        assert_eq!(
            tenants,
            [
                (Some("beta".into()), cents("1.44")),
                (Some("acme".into()), cents("1.39"))
            ]
        );
        assert_eq!(ledger.totals()[0].cost, cents("2.83"));
    }
}

async fn a_corrected_card_reprices_history_at_once(db: TestDb) {
    store_two_days(&db).await;
    aggregate_daily(&db.store, day("2026-11-14"), Engine::Rust)
        .await
        .unwrap();
    let the_14th = Period::Day(day("2026-11-14"));
    let before = costs::ledger(&db.store, &settings(SETTINGS).pricing, the_14th)
        .await
        .unwrap();
    assert_eq!(before.totals()[0].cost, cents("1.39"));
    // The autumn card's gold price is corrected from 1 to 3: the same stored day now costs
    // 2 more, with nothing re-aggregated.
    let corrected = SETTINGS.replacen("tiers: {gold: 1,", "tiers: {gold: 3,", 1);
    let after = costs::ledger(&db.store, &settings(&corrected).pricing, the_14th)
        .await
        .unwrap();
    assert_eq!(after.totals()[0].cost, cents("3.39"));
    // A day before the first card is refused, naming the day.
    let late =
        "settings:\n  rate_cards:\n    - {name: late, currency: EUR, effective_from: 2026-11-15}\n";
    let err = costs::ledger(&db.store, &settings(late).pricing, the_14th)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no rate card is in effect on 2026-11-14 (the earliest, `late`"),
        "{err}"
    );
}

fn vctp(db: &TestDb, config: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_vctp"))
        .arg("--config")
        .arg(config)
        .args(["--database-url", &db.url.to_string()])
        .args(args)
        .env_remove("VCTP_CONFIG")
        .env_remove("VCTP_DATABASE_URL")
        .output()
        .unwrap()
}

async fn the_cli_prints_the_ledger_and_refuses_a_bad_card_by_name(db: TestDb) {
    store_two_days(&db).await;
    for d in ["2026-11-14", "2026-11-15"] {
        aggregate_daily(&db.store, day(d), Engine::Rust)
            .await
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("vctp.yml");
    std::fs::write(&config, SETTINGS).unwrap();
    let out = vctp(
        &db,
        &config,
        &["costs", "monthly", "--month", "2026-11", "--format", "json"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let expected = costs::report(
        &db.store,
        &settings(SETTINGS).pricing,
        Period::Month(Month::parse("2026-11").unwrap()),
        GroupBy::Tenant,
    )
    .await
    .unwrap();
    assert_eq!(printed, serde_json::to_value(&expected).unwrap());
    assert_eq!(printed["totals"][0]["cost"], "2.83");
    assert_eq!(printed["lines"][0]["tenant"], "beta");

    let out = vctp(
        &db,
        &config,
        &[
            "costs",
            "daily",
            "--date",
            "2026-11-15",
            "--group-by",
            "vm",
            "--format",
            "csv",
        ],
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "tenant,vcenter,vm_id,name,currency,vm_days,vcpu_days,ram_gb_days,disk_gb_days,cost\n\
         beta,vc,vm-1,name-vm-1,EUR,0.5000,1.0000,2.0000,100.0000,1.44\n"
    );

    std::fs::write(&config, SETTINGS.replace("gold: 2,", "platinum: 2,")).unwrap();
    let out = vctp(&db, &config, &["costs", "monthly", "--month", "2026-11"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "`settings.rate_cards[1].tiers.platinum`: rate card `winter`: unknown tier `platinum`"
        ),
        "{stderr}"
    );
    std::fs::write(&config, "settings: {}\n").unwrap();
    let out = vctp(&db, &config, &["costs", "monthly", "--month", "2026-11"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no rate card is configured"));
}
