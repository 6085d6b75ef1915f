//! Invariants of the arithmetic over random samples.
// A whole test crate: its helpers fail the test by panicking, like its #[test]s.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use vctp::aggregate::daily::{DailyAccumulator, Sample, SampleClass};
use vctp::aggregate::monthly::MonthlyAccumulator;
use vctp::inventory::Tier;

fn sample() -> impl Strategy<Value = Sample> {
    (
        0i64..64,
        0u32..1_048_576,
        0u64..(1 << 40),
        prop::option::of(prop::sample::select(Tier::ALL.to_vec())),
        prop_oneof![Just(0i64), 1i64..2_000_000_000],
        prop_oneof![Just(0i64), 1i64..2_000_000_000],
        prop::sample::select(vec![
            SampleClass::Template,
            SampleClass::Placeholder,
            SampleClass::PoweredOn,
            SampleClass::PoweredOff,
        ]),
    )
        .prop_map(
            |(vcpu_count, ram_mib, disk_bytes, tier, creation_time, deletion_time, class)| Sample {
                snapshot_time: 1,
                vcpu_count,
                ram_gb: f64::from(ram_mib) / 1024.0,
                provisioned_disk_gb: disk_bytes as f64 / (1u64 << 30) as f64,
                tier,
                creation_time,
                deletion_time,
                class,
            },
        )
}

/// Up to 24 samples of one VM at distinct times, and the day's snapshot count (≥ samples).
fn day_of_samples() -> impl Strategy<Value = (Vec<Sample>, i64)> {
    (prop::collection::vec(sample(), 0..=24), 0i64..=24).prop_map(|(mut samples, extra)| {
        for (i, s) in samples.iter_mut().enumerate() {
            s.snapshot_time = 1_000 + i as i64 * 3_600;
        }
        let total = (samples.len() as i64).max(extra.min(24));
        (samples, total)
    })
}

fn daily(samples: &[Sample], total: i64) -> vctp::aggregate::Figures {
    let mut acc = DailyAccumulator::default();
    for s in samples {
        acc.add(s);
    }
    acc.figures(total)
}

proptest! {
    #[test]
    fn daily_figures_stay_within_their_bounds((samples, total) in day_of_samples()) {
        let f = daily(&samples, total);
        prop_assert!(f.samples_present <= f.total_samples);
        prop_assert!((0.0..=1.0).contains(&f.avg_is_present));
        let tier_sum: f64 = f.tier_days().iter().sum();
        prop_assert!(tier_sum <= f.avg_is_present + 1e-12);
        let pct_sum: f64 = f.pool_pct().iter().sum();
        prop_assert!(pct_sum <= 100.0 + 1e-9);
        prop_assert!(f.pool_pct().iter().chain(f.tier_days().iter()).all(|x| x.is_finite() && *x >= 0.0));
        let max_vcpu = samples.iter().map(|s| s.vcpu_count).max().unwrap_or(0) as f64;
        prop_assert!(f.avg_vcpu_count <= max_vcpu * f.avg_is_present + 1e-9);
        let count = |class| samples.iter().filter(|s| s.class == class).count() as i64;
        prop_assert_eq!(
            f.sample_classes(),
            [count(SampleClass::PoweredOn), count(SampleClass::Template), count(SampleClass::Placeholder)]
        );
        prop_assert!(f.sample_classes().iter().sum::<i64>() <= f.samples_present);
        if samples.iter().all(|s| s.tier.is_some()) && !samples.is_empty() {
            prop_assert!((pct_sum - 100.0).abs() < 1e-9);
            prop_assert!((tier_sum - f.avg_is_present).abs() < 1e-12);
        }
    }

    #[test]
    fn the_monthly_summary_of_a_one_day_month_is_that_day((samples, total) in day_of_samples()) {
        let day = daily(&samples, total);
        let mut month = MonthlyAccumulator::default();
        month.add(&day);
        let m = month.figures(day.total_samples);
        prop_assert_eq!(m.samples_present, day.samples_present);
        prop_assert_eq!(m.total_samples, day.total_samples);
        prop_assert_eq!((m.creation_time, m.deletion_time, m.snapshot_time),
            (day.creation_time, day.deletion_time, day.snapshot_time));
        prop_assert_eq!(m.tier_days(), day.tier_days());
        prop_assert_eq!(m.sample_classes(), day.sample_classes());
        prop_assert_eq!(m.avg_is_present, day.avg_is_present);
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * a.abs().max(1.0);
        prop_assert!(close(m.avg_vcpu_count, day.avg_vcpu_count));
        prop_assert!(close(m.avg_ram_gb, day.avg_ram_gb));
        prop_assert!(close(m.avg_provisioned_disk, day.avg_provisioned_disk));
        for (a, b) in m.pool_pct().into_iter().zip(day.pool_pct()) {
            prop_assert!(close(a, b), "{} vs {}", a, b);
        }
    }

    #[test]
    fn monthly_presence_is_the_share_of_all_snapshots_of_the_month(
        days in prop::collection::vec(day_of_samples(), 1..=31)
    ) {
        let mut month = MonthlyAccumulator::default();
        let mut present = 0;
        let mut classes = [0; 3];
        let mut total = 0;
        for (samples, day_total) in &days {
            let f = daily(samples, *day_total);
            present += f.samples_present;
            for (sum, count) in classes.iter_mut().zip(f.sample_classes()) {
                *sum += count;
            }
            total += f.total_samples;
            month.add(&f);
        }
        let m = month.figures(total);
        prop_assert_eq!(m.samples_present, present);
        prop_assert_eq!(m.sample_classes(), classes);
        prop_assert!(m.avg_is_present <= 1.0);
        let pct_sum: f64 = m.pool_pct().iter().sum();
        prop_assert!(pct_sum <= 100.0 + 1e-9);
        let tier_days: f64 = m.tier_days().iter().sum();
        prop_assert!(tier_days <= days.len() as f64 + 1e-9);
    }
}
