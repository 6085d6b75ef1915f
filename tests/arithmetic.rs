//! The pure chargeback arithmetic (daily, monthly and interval-based hourly figures) on
//! small cases whose expected numbers are computed by hand in the comments.
//!
//! Exact float equality is used wherever the expected value is exactly representable
//! (halves, quarters, eighths…); [`assert_close`] is used only where a division such as
//! `/ 23` cannot be represented exactly.
// A whole test crate: its helpers fail the test by panicking, like its #[test]s.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;

use vctp::aggregate::daily::{DailyAccumulator, Sample, SampleClass, summarize_day};
use vctp::aggregate::hourly::{HOUR, HourTotals, IntervalVm, presence_fraction, snapshot_for_hour};
use vctp::aggregate::monthly::MonthlyAccumulator;
use vctp::aggregate::{Figures, VmSummary};
use vctp::inventory::{HourlyRow, Tier, TierMapping};

/// 2026-01-01T00:00:00Z.
const DAY0: i64 = 1_767_225_600;
const DAY: i64 = 24 * HOUR;
const VC: &str = "vc-a";

/// Time of the `i`-th hourly snapshot of day `day` (0-based) after `DAY0`.
fn at(day: i64, i: i64) -> i64 {
    DAY0 + day * DAY + i * HOUR
}

/// One hourly row of vCenter [`VC`] with every one of its 20 fields set; creation and
/// deletion are unknown (0) unless a test sets them.
fn row(vm_id: &str, snapshot_time: i64, pool: &str, vcpu: i64, ram: f64, disk: f64) -> HourlyRow {
    HourlyRow {
        resource_pool: pool.to_string(),
        vcpu_count: vcpu,
        ram_gb: ram,
        provisioned_disk_gb: disk,
        ..common::hourly_row(VC, vm_id, snapshot_time)
    }
}

/// `{VC: total_samples}`.
fn totals(total_samples: i64) -> HashMap<String, i64> {
    HashMap::from([(VC.to_string(), total_samples)])
}

/// Summarizes rows that all belong to one VM and returns its single summary.
fn summarize_one(rows: &[HourlyRow], total_samples: i64) -> VmSummary {
    let mut summaries = summarize_day(rows, &totals(total_samples), &TierMapping::default());
    assert_eq!(summaries.len(), 1, "expected exactly one VM: {summaries:?}");
    summaries.remove(0)
}

/// The day's figures of one VM built straight from samples through [`DailyAccumulator`].
fn daily_figures(samples: &[Sample], total_samples: i64) -> Figures {
    let mut acc = DailyAccumulator::default();
    for sample in samples {
        acc.add(sample);
    }
    acc.figures(total_samples)
}

/// A numeric sample at the `i`-th snapshot of day `day`.
fn sample(day: i64, i: i64, tier: Option<Tier>, vcpu: i64, ram: f64, disk: f64) -> Sample {
    Sample {
        snapshot_time: at(day, i),
        vcpu_count: vcpu,
        ram_gb: ram,
        provisioned_disk_gb: disk,
        tier,
        creation_time: 0,
        deletion_time: 0,
        class: SampleClass::PoweredOn,
    }
}

#[track_caller]
fn assert_close(actual: f64, expected: f64) {
    let tolerance = 1e-12 * expected.abs().max(1.0);
    assert!(
        (actual - expected).abs() <= tolerance,
        "{actual} is not within {tolerance} of {expected}"
    );
}

/// Every float of `figures`, for NaN and closeness checks.
fn floats(figures: &Figures) -> [f64; 12] {
    [
        figures.avg_is_present,
        figures.avg_vcpu_count,
        figures.avg_ram_gb,
        figures.avg_provisioned_disk,
        figures.pool_tin_pct,
        figures.pool_bronze_pct,
        figures.pool_silver_pct,
        figures.pool_gold_pct,
        figures.tin,
        figures.bronze,
        figures.silver,
        figures.gold,
    ]
}

#[track_caller]
fn assert_figures_close(actual: &Figures, expected: &Figures) {
    assert_eq!(actual.samples_present, expected.samples_present);
    assert_eq!(actual.total_samples, expected.total_samples);
    assert_eq!(actual.creation_time, expected.creation_time);
    assert_eq!(actual.deletion_time, expected.deletion_time);
    assert_eq!(actual.snapshot_time, expected.snapshot_time);
    assert_eq!(actual.sample_classes(), expected.sample_classes());
    for (a, e) in floats(actual).into_iter().zip(floats(expected)) {
        assert_close(a, e);
    }
}

// ---------------------------------------------------------------------------------------
// Daily summaries
// ---------------------------------------------------------------------------------------

#[test]
fn a_vm_created_at_noon_is_prorated_to_half_a_day() {
    // Created at 12:00, seen in the snapshots at 12:00..=23:00: 12 of the day's 24.
    let created = at(0, 12);
    let rows: Vec<HourlyRow> = (12..24)
        .map(|i| HourlyRow {
            creation_time: created,
            ..row("vm-1", at(0, i), "Gold", 2, 8.0, 100.0)
        })
        .collect();
    let f = summarize_one(&rows, 24).figures;

    assert_eq!(f.samples_present, 12);
    assert_eq!(f.total_samples, 24);
    // 12 / 24
    assert_eq!(f.avg_is_present, 0.5);
    // 12 × 2 vCPU / 24 = 24 / 24
    assert_eq!(f.avg_vcpu_count, 1.0);
    // 12 × 8 GB / 24 = 96 / 24
    assert_eq!(f.avg_ram_gb, 4.0);
    // 12 × 100 GB / 24 = 1200 / 24
    assert_eq!(f.avg_provisioned_disk, 50.0);
    // Gold in all 12 of its samples: 12 / 12 × 100; as VM-days 12 / 24.
    assert_eq!(f.pool_pct(), [0.0, 0.0, 0.0, 100.0]);
    assert_eq!(f.tier_days(), [0.0, 0.0, 0.0, 0.5]);
    assert_eq!(f.creation_time, created);
    assert_eq!(f.deletion_time, 0);
    assert_eq!(f.snapshot_time, at(0, 23));
}

#[test]
fn a_missed_snapshot_averages_over_the_snapshots_the_vcenter_actually_took() {
    // The vCenter took 23 snapshots (one missed); the VM is in all 23.
    // vCPU 2 in the first 10, 4 in the last 13; RAM 4 GB throughout; disk 33.3 GB.
    let rows: Vec<HourlyRow> = (0..23)
        .map(|i| {
            let vcpu = if i < 10 { 2 } else { 4 };
            row("vm-1", at(0, i), "Silver", vcpu, 4.0, 33.3)
        })
        .collect();
    let f = summarize_one(&rows, 23).figures;

    assert_eq!(f.samples_present, 23);
    assert_eq!(f.total_samples, 23);
    // 23 / 23: present in every snapshot taken, so fully present despite the miss.
    assert_eq!(f.avg_is_present, 1.0);
    // (10 × 2 + 13 × 4) / 23 = 72 / 23 ≈ 3.13
    assert_close(f.avg_vcpu_count, 72.0 / 23.0);
    // 23 × 4 / 23
    assert_eq!(f.avg_ram_gb, 4.0);
    // 23 × 33.3 / 23 (the sum of 23 × 33.3 is not exact in binary)
    assert_close(f.avg_provisioned_disk, 33.3);
    assert_eq!(f.pool_pct(), [0.0, 0.0, 100.0, 0.0]);
    // 23 Silver samples / 23 snapshots: one whole Silver VM-day.
    assert_eq!(f.tier_days(), [0.0, 0.0, 1.0, 0.0]);
}

#[test]
fn a_reconfigured_vm_averages_its_sizes_over_the_day() {
    // 6 samples at 2 vCPU / 4 GB / 100 GB, then 18 at 4 vCPU / 8 GB / 200 GB.
    let rows: Vec<HourlyRow> = (0..24)
        .map(|i| {
            if i < 6 {
                row("vm-1", at(0, i), "Bronze", 2, 4.0, 100.0)
            } else {
                row("vm-1", at(0, i), "Bronze", 4, 8.0, 200.0)
            }
        })
        .collect();
    let f = summarize_one(&rows, 24).figures;

    assert_eq!(f.avg_is_present, 1.0);
    // (6 × 2 + 18 × 4) / 24 = 84 / 24
    assert_eq!(f.avg_vcpu_count, 3.5);
    // (6 × 4 + 18 × 8) / 24 = 168 / 24
    assert_eq!(f.avg_ram_gb, 7.0);
    // (6 × 100 + 18 × 200) / 24 = 4200 / 24
    assert_eq!(f.avg_provisioned_disk, 175.0);
    assert_eq!(f.pool_pct(), [0.0, 100.0, 0.0, 0.0]);
    assert_eq!(f.tier_days(), [0.0, 1.0, 0.0, 0.0]);
}

#[test]
fn a_pool_move_splits_the_percentages_and_tier_days_by_samples() {
    // Gold for the first 18 snapshots, Silver for the last 6, of 24.
    let rows: Vec<HourlyRow> = (0..24)
        .map(|i| {
            let pool = if i < 18 { "Gold" } else { "Silver" };
            row("vm-1", at(0, i), pool, 2, 4.0, 50.0)
        })
        .collect();
    let s = summarize_one(&rows, 24);
    let f = &s.figures;

    // Gold 18 / 24 × 100 = 75, Silver 6 / 24 × 100 = 25.
    assert_eq!(f.pool_pct(), [0.0, 0.0, 25.0, 75.0]);
    // Gold 18 / 24 = 0.75, Silver 6 / 24 = 0.25 VM-days.
    assert_eq!(f.tier_days(), [0.0, 0.0, 0.25, 0.75]);
    // The pool reported is the one of the latest sample.
    assert_eq!(s.placement.resource_pool, "Silver");
}

#[test]
fn a_vm_in_no_tier_has_zero_pool_shares_but_its_averages_still_count() {
    let rows: Vec<HourlyRow> = (0..24)
        .map(|i| row("vm-1", at(0, i), "Resources", 2, 4.0, 50.0))
        .collect();
    let f = summarize_one(&rows, 24).figures;

    assert_eq!(f.pool_pct(), [0.0; 4]);
    assert_eq!(f.tier_days(), [0.0; 4]);
    assert_eq!(f.samples_present, 24);
    assert_eq!(f.avg_is_present, 1.0);
    assert_eq!(f.avg_vcpu_count, 2.0);
    assert_eq!(f.avg_ram_gb, 4.0);
    assert_eq!(f.avg_provisioned_disk, 50.0);
}

#[test]
fn an_empty_day_gives_no_rows_and_all_zero_figures_without_nan() {
    let no_rows: Vec<HourlyRow> = Vec::new();
    assert!(summarize_day(&no_rows, &totals(24), &TierMapping::default()).is_empty());
    assert!(summarize_day(&no_rows, &HashMap::new(), &TierMapping::default()).is_empty());

    let f = DailyAccumulator::default().figures(0);
    assert_eq!(f, Figures::default());
    assert!(floats(&f).iter().all(|x| *x == 0.0), "{f:?}");

    // A VM never seen on a day with 24 snapshots: zero presence, no 0 / 0 in the pcts.
    let f = DailyAccumulator::default().figures(24);
    assert_eq!(f.total_samples, 24);
    assert_eq!(f.samples_present, 0);
    assert!(floats(&f).iter().all(|x| *x == 0.0), "{f:?}");
}

#[test]
fn a_vcenter_missing_from_the_totals_gives_zero_averages_not_nan() {
    // total_samples falls back to 0: every division by it yields 0 rather than NaN/inf.
    let rows = [row("vm-1", at(0, 0), "Gold", 2, 4.0, 50.0)];
    let summaries = summarize_day(&rows, &HashMap::new(), &TierMapping::default());
    let f = &summaries[0].figures;
    assert_eq!(f.total_samples, 0);
    assert_eq!(f.samples_present, 1);
    assert_eq!(f.avg_is_present, 0.0);
    assert_eq!(f.avg_vcpu_count, 0.0);
    assert_eq!(f.tier_days(), [0.0; 4]);
    // The pct divides by samples_present (1), so it is still defined.
    assert_eq!(f.pool_pct(), [0.0, 0.0, 0.0, 100.0]);
    assert!(floats(f).iter().all(|x| x.is_finite()));
}

#[test]
fn a_partial_day_pool_move_divides_pcts_by_presence_but_tier_days_by_the_day() {
    // Present in 12 of 24 snapshots: Gold in 9 of them, then Silver in 3.
    let rows: Vec<HourlyRow> = (12..24)
        .map(|i| {
            let pool = if i < 21 { "Gold" } else { "Silver" };
            row("vm-1", at(0, i), pool, 2, 4.0, 50.0)
        })
        .collect();
    let f = summarize_one(&rows, 24).figures;

    assert_eq!(f.samples_present, 12);
    // 12 / 24
    assert_eq!(f.avg_is_present, 0.5);
    // By samples_present: Gold 9 / 12 × 100 = 75, Silver 3 / 12 × 100 = 25 (sums to 100).
    assert_eq!(f.pool_pct(), [0.0, 0.0, 25.0, 75.0]);
    // By total_samples: Gold 9 / 24 = 0.375, Silver 3 / 24 = 0.125 (sums to avg_is_present).
    assert_eq!(f.tier_days(), [0.0, 0.0, 0.125, 0.375]);
    assert_eq!(f.tier_days().iter().sum::<f64>(), f.avg_is_present);
}

#[test]
fn placement_comes_from_the_latest_sample_even_when_rows_arrive_out_of_time_order() {
    let old = |i| HourlyRow {
        name: "web-old".to_string(),
        cluster: "cluster-old".to_string(),
        ..row("vm-1", at(0, i), "Silver", 2, 4.0, 50.0)
    };
    let latest = HourlyRow {
        vm_uuid: "uuid-new".to_string(),
        name: "web-new".to_string(),
        datacenter: "dc-new".to_string(),
        cluster: "cluster-new".to_string(),
        folder: "folder-new".to_string(),
        ..row("vm-1", at(0, 5), "Gold", 2, 4.0, 50.0)
    };
    // The latest sample (05:00) comes second; earlier ones come before and after it.
    let rows = [old(2), latest, old(0), old(4), old(1), old(3)];
    let s = summarize_one(&rows, 24);

    assert_eq!(s.placement.vm_uuid, "uuid-new");
    assert_eq!(s.placement.name, "web-new");
    assert_eq!(s.placement.resource_pool, "Gold");
    assert_eq!(s.placement.datacenter, "dc-new");
    assert_eq!(s.placement.cluster, "cluster-new");
    assert_eq!(s.placement.folder, "folder-new");
    assert_eq!(s.figures.snapshot_time, at(0, 5));
    // The order does not change the counts: Silver 5 of 6, Gold 1 of 6 (by 24: 5/24, 1/24).
    assert_eq!(s.figures.samples_present, 6);
    assert_close(s.figures.pool_silver_pct, 5.0 / 6.0 * 100.0);
    assert_close(s.figures.pool_gold_pct, 1.0 / 6.0 * 100.0);
    assert_close(s.figures.silver, 5.0 / 24.0);
    assert_close(s.figures.gold, 1.0 / 24.0);
}

#[test]
fn daily_accumulator_reports_which_sample_is_the_latest_so_far() {
    let mut acc = DailyAccumulator::default();
    assert_eq!(acc.latest_time(), 0);
    assert!(acc.add(&sample(0, 3, None, 1, 1.0, 1.0)));
    assert!(!acc.add(&sample(0, 1, None, 1, 1.0, 1.0)));
    assert!(acc.add(&sample(0, 7, None, 1, 1.0, 1.0)));
    assert!(!acc.add(&sample(0, 5, None, 1, 1.0, 1.0)));
    assert_eq!(acc.latest_time(), at(0, 7));
}

#[test]
fn summaries_are_sorted_by_vcenter_and_vm_and_use_each_vcenters_own_total() {
    // vc-b took 12 snapshots, vc-a 24; each VM is seen 6 times.
    let mut rows = Vec::new();
    for i in 0..6 {
        for (vcenter, vm) in [("vc-b", "vm-1"), ("vc-a", "vm-2"), ("vc-a", "vm-1")] {
            rows.push(HourlyRow {
                vcenter: vcenter.to_string(),
                ..row(vm, at(0, i), "Tin", 4, 8.0, 100.0)
            });
        }
    }
    let total = HashMap::from([("vc-a".to_string(), 24), ("vc-b".to_string(), 12)]);
    let summaries = summarize_day(&rows, &total, &TierMapping::default());

    let keys: Vec<(&str, &str)> = summaries
        .iter()
        .map(|s| (s.vcenter.as_str(), s.vm_id.as_str()))
        .collect();
    assert_eq!(keys, [("vc-a", "vm-1"), ("vc-a", "vm-2"), ("vc-b", "vm-1")]);
    // vc-a: 6 / 24 = 0.25 present, 6 × 4 / 24 = 1 vCPU, Tin 6 / 24 = 0.25.
    for s in &summaries[..2] {
        assert_eq!(s.figures.total_samples, 24);
        assert_eq!(s.figures.avg_is_present, 0.25);
        assert_eq!(s.figures.avg_vcpu_count, 1.0);
        assert_eq!(s.figures.tin, 0.25);
    }
    // vc-b: 6 / 12 = 0.5 present, 6 × 4 / 12 = 2 vCPU, Tin 6 / 12 = 0.5.
    let b = &summaries[2].figures;
    assert_eq!(b.total_samples, 12);
    assert_eq!(b.avg_is_present, 0.5);
    assert_eq!(b.avg_vcpu_count, 2.0);
    assert_eq!(b.tin, 0.5);
    // All three are Tin for their whole lifetime.
    for s in &summaries {
        assert_eq!(s.figures.pool_pct(), [100.0, 0.0, 0.0, 0.0]);
    }
}

#[test]
fn creation_time_is_the_earliest_known_one_and_deletion_time_the_latest() {
    let c = DAY0 - 10 * DAY;
    let d = at(0, 20);
    // creation: 0 (unknown), c + 100, c, 0, c + 50; deletion: 0, 0, 0, d, 0.
    let times = [(0, 0), (c + 100, 0), (c, 0), (0, d), (c + 50, 0)];
    let rows: Vec<HourlyRow> = times
        .iter()
        .enumerate()
        .map(|(i, &(creation_time, deletion_time))| HourlyRow {
            creation_time,
            deletion_time,
            ..row("vm-1", at(0, i as i64), "Gold", 1, 1.0, 1.0)
        })
        .collect();
    let f = summarize_one(&rows, 24).figures;
    // Smallest non-zero creation; the zeros are "not given", not "the epoch".
    assert_eq!(f.creation_time, c);
    assert_eq!(f.deletion_time, d);

    // A known creation in the first sample is not overwritten by a later unknown one.
    let rows = [
        HourlyRow {
            creation_time: c,
            ..row("vm-1", at(0, 0), "Gold", 1, 1.0, 1.0)
        },
        row("vm-1", at(0, 1), "Gold", 1, 1.0, 1.0),
    ];
    assert_eq!(summarize_one(&rows, 24).figures.creation_time, c);

    // Unknown in every sample stays unknown.
    let rows = [
        row("vm-1", at(0, 0), "Gold", 1, 1.0, 1.0),
        row("vm-1", at(0, 1), "Gold", 1, 1.0, 1.0),
    ];
    let f = summarize_one(&rows, 24).figures;
    assert_eq!(f.creation_time, 0);
    assert_eq!(f.deletion_time, 0);
}

/// An hourly row of `vm-1` at snapshot `i` of day 0 with the three flags given.
fn flagged(i: i64, is_template: bool, srm_placeholder: bool, powered_on: bool) -> HourlyRow {
    HourlyRow {
        is_template,
        srm_placeholder,
        powered_on,
        ..row("vm-1", at(0, i), "Gold", 2, 4.0, 100.0)
    }
}

#[test]
fn each_sample_is_classed_template_then_placeholder_then_powered_on() {
    let rows = [
        flagged(0, true, false, false), // template
        flagged(1, true, true, true),   // template: it wins over placeholder and power
        flagged(2, false, true, false), // placeholder
        flagged(3, false, true, true),  // placeholder: it wins over power
        flagged(4, false, false, true), // powered on ×4
        flagged(5, false, false, true),
        flagged(6, false, false, true),
        flagged(7, false, false, true),
        flagged(8, false, false, false), // powered off ×2
        flagged(9, false, false, false),
    ];
    let f = summarize_one(&rows, 24).figures;
    assert_eq!(f.samples_present, 10);
    assert_eq!(f.samples_template, 2);
    assert_eq!(f.samples_placeholder, 2);
    assert_eq!(f.samples_powered_on, 4);
    // Powered off: 10 − 2 − 2 − 4 = 2.
    assert_eq!(
        f.samples_present - f.sample_classes().iter().sum::<i64>(),
        2
    );
}

#[test]
fn the_default_tier_mapping_matches_tier_named_pools_in_any_case_only() {
    let mapping = TierMapping::default();
    assert_eq!(mapping.tier_of("tin"), Some(Tier::Tin));
    assert_eq!(mapping.tier_of("BRONZE"), Some(Tier::Bronze));
    assert_eq!(mapping.tier_of("Silver"), Some(Tier::Silver));
    assert_eq!(mapping.tier_of("gOLd"), Some(Tier::Gold));
    assert_eq!(mapping.tier_of("Resources"), None);
    assert_eq!(mapping.tier_of("Gold-Prod"), None);
    assert_eq!(mapping.tier_of(""), None);

    // Through summarize_day: "gold" and "GOLD" count as Gold, "Resources" as no tier.
    let rows = [
        row("vm-1", at(0, 0), "gold", 1, 1.0, 1.0),
        row("vm-1", at(0, 1), "GOLD", 1, 1.0, 1.0),
        row("vm-1", at(0, 2), "Resources", 1, 1.0, 1.0),
        row("vm-1", at(0, 3), "Resources", 1, 1.0, 1.0),
    ];
    let f = summarize_one(&rows, 8).figures;
    // Gold 2 / 4 present × 100 = 50; 2 / 8 snapshots = 0.25 VM-days.
    assert_eq!(f.pool_pct(), [0.0, 0.0, 0.0, 50.0]);
    assert_eq!(f.tier_days(), [0.0, 0.0, 0.0, 0.25]);
}

// ---------------------------------------------------------------------------------------
// Monthly summaries
// ---------------------------------------------------------------------------------------

/// The monthly figures of the given daily figures.
fn monthly(days: &[Figures], monthly_total_samples: i64) -> Figures {
    let mut acc = MonthlyAccumulator::default();
    for day in days {
        acc.add(day);
    }
    acc.figures(monthly_total_samples)
}

#[test]
fn a_one_day_month_equals_that_day() {
    let gold = Some(Tier::Gold);
    let silver = Some(Tier::Silver);

    // Whole day, reconfigured: 6 × (2 vCPU, 4 GB) then 18 × (4 vCPU, 8 GB), Gold.
    let reconfigured: Vec<Sample> = (0..24)
        .map(|i| {
            if i < 6 {
                sample(0, i, gold, 2, 4.0, 100.0)
            } else {
                sample(0, i, gold, 4, 8.0, 200.0)
            }
        })
        .collect();
    // Half a day with a pool move: Gold 9, Silver 3, of 24; created at noon.
    let partial_move: Vec<Sample> = (12..24)
        .map(|i| Sample {
            creation_time: at(0, 12),
            ..sample(0, i, if i < 21 { gold } else { silver }, 2, 4.0, 50.0)
        })
        .collect();
    // No tier, deleted at 06:00 after 6 samples.
    let no_tier: Vec<Sample> = (0..6)
        .map(|i| Sample {
            deletion_time: at(0, 6),
            ..sample(0, i, None, 8, 32.0, 400.0)
        })
        .collect();

    for (samples, total) in [(&reconfigured, 24), (&partial_move, 24), (&no_tier, 24)] {
        let day = daily_figures(samples, total);
        // Every value here is exact, and so is each × total / total: exactly equal.
        assert_eq!(monthly(std::slice::from_ref(&day), total), day);
    }

    // A 23-snapshot day: 72 / 23 vCPU and 5 / 23 Silver VM-days are not exact, so
    // × 23 / 23 may round differently in the last bit.
    let missed: Vec<Sample> = (0..23)
        .map(|i| {
            let vcpu = if i < 10 { 2 } else { 4 };
            let tier = if i < 18 { gold } else { silver };
            sample(0, i, tier, vcpu, 4.0, 33.3)
        })
        .collect();
    let day = daily_figures(&missed, 23);
    assert_close(day.avg_vcpu_count, 72.0 / 23.0);
    assert_close(day.pool_gold_pct, 18.0 / 23.0 * 100.0);
    assert_figures_close(&monthly(std::slice::from_ref(&day), 23), &day);
}

#[test]
fn a_month_of_days_with_different_snapshot_counts_weights_each_day_by_its_count() {
    let gold = Some(Tier::Gold);
    // Day 0, 24 snapshots: present in all 24 at 2 vCPU / 4 GB / 100 GB.
    let day0: Vec<Sample> = (0..24).map(|i| sample(0, i, gold, 2, 4.0, 100.0)).collect();
    // Day 1, 23 snapshots (one missed): present in all 23 at 4 vCPU / 8 GB / 100 GB.
    let day1: Vec<Sample> = (0..23).map(|i| sample(1, i, gold, 4, 8.0, 100.0)).collect();
    // Day 2, 24 snapshots: present in the first 12 at 4 vCPU / 8 GB / 100 GB, deleted at noon.
    let deleted = at(2, 12);
    let day2: Vec<Sample> = (0..12)
        .map(|i| Sample {
            deletion_time: deleted,
            ..sample(2, i, gold, 4, 8.0, 100.0)
        })
        .collect();

    let d0 = daily_figures(&day0, 24);
    let d1 = daily_figures(&day1, 23);
    let d2 = daily_figures(&day2, 24);
    // Daily: d0 vCPU 48/24 = 2, d1 92/23 = 4, d2 48/24 = 2; d2 present 0.5, gold 0.5.
    assert_eq!(
        (d0.avg_vcpu_count, d1.avg_vcpu_count, d2.avg_vcpu_count),
        (2.0, 4.0, 2.0)
    );
    assert_eq!((d2.avg_is_present, d2.gold), (0.5, 0.5));

    // Days arrive out of order; the latest (day 2) is the one to take placement from.
    let mut acc = MonthlyAccumulator::default();
    assert!(acc.add(&d1));
    assert!(!acc.add(&d0));
    assert!(acc.add(&d2));
    let m = acc.figures(24 + 23 + 24);

    // Monthly total 24 + 23 + 24 = 71; present 24 + 23 + 12 = 59.
    assert_eq!(m.total_samples, 71);
    assert_eq!(m.samples_present, 59);
    assert_close(m.avg_is_present, 59.0 / 71.0);
    // vCPU (2 × 24 + 4 × 23 + 2 × 24) / 71 = (48 + 92 + 48) / 71 = 188 / 71
    // (the same as the raw sample sum 24 × 2 + 23 × 4 + 12 × 4 = 188).
    assert_close(m.avg_vcpu_count, 188.0 / 71.0);
    // RAM (4 × 24 + 8 × 23 + 4 × 24) / 71 = (96 + 184 + 96) / 71 = 376 / 71
    assert_close(m.avg_ram_gb, 376.0 / 71.0);
    // Disk (100 × 24 + 100 × 23 + 50 × 24) / 71 = 5900 / 71
    assert_close(m.avg_provisioned_disk, 5900.0 / 71.0);
    // Gold VM-days: 1 + 1 + 0.5.
    assert_eq!(m.tier_days(), [0.0, 0.0, 0.0, 2.5]);
    // Gold pct: (100/100 × 24 + 100/100 × 23 + 100/100 × 24) / 71 × 100 = 100.
    assert_eq!(m.pool_pct(), [0.0, 0.0, 0.0, 100.0]);
    assert_eq!(m.deletion_time, deleted);
    assert_eq!(m.creation_time, 0);
    assert_eq!(m.snapshot_time, at(2, 11));
}

#[test]
fn monthly_pool_percentages_weight_each_days_pct_by_its_snapshot_count() {
    // Day 0 (24 snapshots): Gold all day -> Gold 100 %.
    let day0: Vec<Sample> = (0..24)
        .map(|i| sample(0, i, Some(Tier::Gold), 2, 4.0, 50.0))
        .collect();
    // Day 1 (24 snapshots): Gold 18, then Silver 6 -> Gold 75 %, Silver 25 %.
    let day1: Vec<Sample> = (0..24)
        .map(|i| {
            let tier = if i < 18 { Tier::Gold } else { Tier::Silver };
            sample(1, i, Some(tier), 2, 4.0, 50.0)
        })
        .collect();
    // Day 2 (16 snapshots): Bronze all day -> Bronze 100 %.
    let day2: Vec<Sample> = (0..16)
        .map(|i| sample(2, i, Some(Tier::Bronze), 2, 4.0, 50.0))
        .collect();
    let days = [
        daily_figures(&day0, 24),
        daily_figures(&day1, 24),
        daily_figures(&day2, 16),
    ];
    assert_eq!(days[1].pool_pct(), [0.0, 0.0, 25.0, 75.0]);

    let m = monthly(&days, 24 + 24 + 16);
    // Monthly total 64.
    // Gold:   (1 × 24 + 0.75 × 24) / 64 × 100 = 42 / 64 × 100 = 65.625
    // Silver: (0.25 × 24) / 64 × 100         =  6 / 64 × 100 =  9.375
    // Bronze: (1 × 16) / 64 × 100            = 16 / 64 × 100 = 25
    assert_eq!(m.pool_pct(), [0.0, 25.0, 9.375, 65.625]);
    assert_eq!(m.pool_pct().iter().sum::<f64>(), 100.0);
    // Tier columns add the daily VM-days: Gold 1 + 0.75, Silver 0.25, Bronze 1.
    assert_eq!(m.tier_days(), [0.0, 1.0, 0.25, 1.75]);
    // Averages: 2 vCPU / 4 GB / 50 GB in every sample of every day.
    assert_eq!(m.avg_is_present, 1.0);
    assert_eq!(m.avg_vcpu_count, 2.0);
    assert_eq!(m.avg_ram_gb, 4.0);
    assert_eq!(m.avg_provisioned_disk, 50.0);
}

#[test]
fn monthly_pool_percentages_weight_a_partial_day_by_the_days_total_not_its_presence() {
    // As the specification states it: Σ(daily pct / 100 × daily total_samples) / monthly
    // total × 100. Day 0 (24 snapshots): present 12, all Gold (daily Gold pct 100).
    // Day 1 (24 snapshots): present 24, all Silver (daily Silver pct 100).
    let day0: Vec<Sample> = (12..24)
        .map(|i| sample(0, i, Some(Tier::Gold), 2, 4.0, 50.0))
        .collect();
    let day1: Vec<Sample> = (0..24)
        .map(|i| sample(1, i, Some(Tier::Silver), 2, 4.0, 50.0))
        .collect();
    let days = [daily_figures(&day0, 24), daily_figures(&day1, 24)];
    assert_eq!(days[0].pool_pct(), [0.0, 0.0, 0.0, 100.0]);

    let m = monthly(&days, 48);
    // Gold (1 × 24) / 48 × 100 = 50; Silver (1 × 24) / 48 × 100 = 50 — although by
    // samples the VM was Gold in 12 of its 36 samples. The tier columns are by samples:
    // Gold 12 / 24 = 0.5, Silver 24 / 24 = 1.
    assert_eq!(m.pool_pct(), [0.0, 0.0, 50.0, 50.0]);
    assert_eq!(m.tier_days(), [0.0, 0.0, 1.0, 0.5]);
    // Present 36 of 48.
    assert_eq!(m.samples_present, 36);
    assert_eq!(m.avg_is_present, 0.75);
    // vCPU (1 × 24 + 2 × 24) / 48 = 72 / 48
    assert_eq!(m.avg_vcpu_count, 1.5);
}

#[test]
fn a_months_sample_classes_are_the_sums_of_its_days() {
    let day = |present, on, template, placeholder| Figures {
        samples_present: present,
        total_samples: 24,
        samples_powered_on: on,
        samples_template: template,
        samples_placeholder: placeholder,
        ..Figures::default()
    };
    // (10: 4 on, 2 templates, 2 placeholders) + (24: 20 on, 0, 3) + (5: 0, 5, 0).
    let m = monthly(&[day(10, 4, 2, 2), day(24, 20, 0, 3), day(5, 0, 5, 0)], 72);
    assert_eq!(m.samples_present, 39);
    assert_eq!(
        (
            m.samples_powered_on,
            m.samples_template,
            m.samples_placeholder
        ),
        (24, 7, 5)
    );
}

#[test]
fn an_empty_month_has_zero_figures_without_nan() {
    let m = MonthlyAccumulator::default().figures(0);
    assert_eq!(m, Figures::default());
    let m = MonthlyAccumulator::default().figures(720);
    assert_eq!(m.total_samples, 720);
    assert!(floats(&m).iter().all(|x| *x == 0.0), "{m:?}");
}

#[test]
fn monthly_creation_is_the_earliest_known_and_deletion_the_latest() {
    let c = DAY0 - 3 * DAY;
    let days = [
        Figures {
            creation_time: 0,
            snapshot_time: at(0, 23),
            total_samples: 24,
            ..Figures::default()
        },
        Figures {
            creation_time: c + 10,
            snapshot_time: at(1, 23),
            total_samples: 24,
            ..Figures::default()
        },
        Figures {
            creation_time: c,
            deletion_time: at(2, 5),
            snapshot_time: at(2, 5),
            total_samples: 24,
            ..Figures::default()
        },
        Figures {
            creation_time: 0,
            snapshot_time: at(3, 0),
            total_samples: 24,
            ..Figures::default()
        },
    ];
    let m = monthly(&days, 96);
    assert_eq!(m.creation_time, c);
    assert_eq!(m.deletion_time, at(2, 5));
    assert_eq!(m.snapshot_time, at(3, 0));
}

// ---------------------------------------------------------------------------------------
// Interval-based hourly totals
// ---------------------------------------------------------------------------------------

/// 10:00 on day 0.
const H: i64 = DAY0 + 10 * HOUR;

#[test]
fn a_vm_created_mid_hour_counts_for_half_of_it() {
    assert_eq!(presence_fraction(H, H + 1_800, 0), 0.5);
    assert_eq!(presence_fraction(H, H + 900, 0), 0.75);
}

#[test]
fn a_vm_created_after_the_hour_does_not_count() {
    assert_eq!(presence_fraction(H, H + HOUR + 1, 0), 0.0);
    // Created exactly at the hour's end: [H + 1h, …) does not overlap [H, H + 1h).
    assert_eq!(presence_fraction(H, H + HOUR, 0), 0.0);
    assert_eq!(presence_fraction(H, H + 5 * HOUR, 0), 0.0);
}

#[test]
fn a_vm_with_unknown_creation_or_created_earlier_counts_for_the_whole_hour() {
    assert_eq!(presence_fraction(H, 0, 0), 1.0);
    assert_eq!(presence_fraction(H, H - 5_000, 0), 1.0);
    // Created exactly at the hour's start.
    assert_eq!(presence_fraction(H, H, 0), 1.0);
    // Deleted after the hour.
    assert_eq!(presence_fraction(H, 0, H + 2 * HOUR), 1.0);
    assert_eq!(presence_fraction(H, 0, H + HOUR), 1.0);
}

#[test]
fn a_vm_deleted_mid_hour_counts_until_its_deletion() {
    assert_eq!(presence_fraction(H, H - 100, H + 900), 0.25);
    assert_eq!(presence_fraction(H, 0, H + 2_700), 0.75);
    // Deleted before, or exactly at, the hour's start.
    assert_eq!(presence_fraction(H, 0, H - 1), 0.0);
    assert_eq!(presence_fraction(H, 0, H), 0.0);
}

#[test]
fn a_vm_created_and_deleted_inside_the_hour_counts_for_its_lifetime() {
    // [10:15, 10:45)
    assert_eq!(presence_fraction(H, H + 900, H + 2_700), 0.5);
    // [10:30, 10:45)
    assert_eq!(presence_fraction(H, H + 1_800, H + 2_700), 0.25);
    // Deleted before it was created: no negative presence.
    assert_eq!(presence_fraction(H, H + 2_700, H + 900), 0.0);
}

#[test]
fn the_snapshot_for_an_hour_is_the_first_at_or_after_its_end() {
    let times = [
        DAY0 + 300,             // 00:05
        DAY0 + HOUR + 300,      // 01:05
        DAY0 + 2 * HOUR,        // 02:00
        DAY0 + 3 * HOUR + 600,  // 03:10
        DAY0 + 23 * HOUR + 120, // 23:02
        DAY0 + DAY + 420,       // next day 00:07
    ];
    // [00:00, 01:00): ends at 01:00 -> 01:05 (not 00:05, which is inside the hour).
    assert_eq!(
        snapshot_for_hour(&times, DAY0 + HOUR),
        Some(DAY0 + HOUR + 300)
    );
    // [01:00, 02:00): ends at 02:00 -> the snapshot taken exactly at 02:00.
    assert_eq!(
        snapshot_for_hour(&times, DAY0 + 2 * HOUR),
        Some(DAY0 + 2 * HOUR)
    );
    // [02:00, 03:00): ends at 03:00 -> 03:10.
    assert_eq!(
        snapshot_for_hour(&times, DAY0 + 3 * HOUR),
        Some(DAY0 + 3 * HOUR + 600)
    );
    // [23:00, 24:00): ends at midnight -> the next day's 00:07.
    assert_eq!(
        snapshot_for_hour(&times, DAY0 + DAY),
        Some(DAY0 + DAY + 420)
    );
    // [00:00, 01:00) of the next day: every snapshot is earlier -> none.
    assert_eq!(snapshot_for_hour(&times, DAY0 + DAY + HOUR), None);
    assert_eq!(snapshot_for_hour(&[], DAY0 + HOUR), None);
}

#[test]
fn hour_totals_sum_each_vms_sizes_prorated_by_its_presence() {
    let mut totals = HourTotals::new(VC, H, H + HOUR + 120);
    assert_eq!(totals.hour_end, H + HOUR);
    assert_eq!(totals.snapshot_time, H + HOUR + 120);
    let vms = [
        // Whole hour (creation unknown): share 1.
        IntervalVm {
            creation_time: 0,
            deletion_time: 0,
            vcpu_count: 2,
            ram_gb: 4.0,
            provisioned_disk_gb: 100.0,
        },
        // Created 10:30: share 0.5.
        IntervalVm {
            creation_time: H + 1_800,
            deletion_time: 0,
            vcpu_count: 4,
            ram_gb: 8.0,
            provisioned_disk_gb: 60.0,
        },
        // Deleted 10:15: share 0.25.
        IntervalVm {
            creation_time: H - DAY,
            deletion_time: H + 900,
            vcpu_count: 8,
            ram_gb: 16.0,
            provisioned_disk_gb: 40.0,
        },
        // Created after the hour: share 0.
        IntervalVm {
            creation_time: H + HOUR + 60,
            deletion_time: 0,
            vcpu_count: 16,
            ram_gb: 64.0,
            provisioned_disk_gb: 1_000.0,
        },
    ];
    for vm in &vms {
        totals.add_vm(vm);
    }
    // VMs:  1 + 0.5 + 0.25 + 0            = 1.75
    // vCPU: 1 × 2 + 0.5 × 4 + 0.25 × 8    = 2 + 2 + 2 = 6
    // RAM:  1 × 4 + 0.5 × 8 + 0.25 × 16   = 4 + 4 + 4 = 12
    // Disk: 1 × 100 + 0.5 × 60 + 0.25 × 40 = 100 + 30 + 10 = 140
    assert_eq!(totals.vm_count, 1.75);
    assert_eq!(totals.vcpu_count, 6.0);
    assert_eq!(totals.ram_gb, 12.0);
    assert_eq!(totals.disk_gb, 140.0);
}
