//! Monthly summary of one VM from its daily summaries (DESIGN §4, "Monthly summary").

use super::{Figures, earliest_known};

/// Running weighted sums of one VM's daily figures within one month.
#[derive(Debug, Clone, Default)]
pub struct MonthlyAccumulator {
    samples_present: i64,
    /// Σ daily average × daily total_samples, for vCPU, RAM and disk.
    weighted_avgs: [f64; 3],
    /// Σ daily pct / 100 × daily total_samples, per tier.
    weighted_pool_share: [f64; 4],
    tier_days: [f64; 4],
    /// Σ daily samples_powered_on, samples_template, samples_placeholder.
    classes: [i64; 3],
    creation_time: i64,
    deletion_time: i64,
    latest_time: i64,
}

impl MonthlyAccumulator {
    /// Adds one daily summary; returns whether it is the latest seen so far (by snapshot
    /// time), i.e. whether the caller should take that day's identity and placement.
    pub fn add(&mut self, day: &Figures) -> bool {
        let weight = day.total_samples as f64;
        self.samples_present += day.samples_present;
        let avgs = [day.avg_vcpu_count, day.avg_ram_gb, day.avg_provisioned_disk];
        for (sum, avg) in self.weighted_avgs.iter_mut().zip(avgs) {
            *sum += avg * weight;
        }
        for (sum, pct) in self.weighted_pool_share.iter_mut().zip(day.pool_pct()) {
            *sum += pct / 100.0 * weight;
        }
        for (sum, days) in self.tier_days.iter_mut().zip(day.tier_days()) {
            *sum += days;
        }
        for (sum, count) in self.classes.iter_mut().zip(day.sample_classes()) {
            *sum += count;
        }
        self.creation_time = earliest_known(self.creation_time, day.creation_time);
        self.deletion_time = self.deletion_time.max(day.deletion_time);
        let latest = day.snapshot_time > self.latest_time;
        if latest {
            self.latest_time = day.snapshot_time;
        }
        latest
    }

    /// The month's figures, given the vCenter's monthly total samples (Σ of its daily
    /// total_samples over the month).
    ///
    /// `avg_is_present` is samples_present / monthly total: the same value as
    /// Σ(daily avg_is_present × daily total) / monthly total, without the rounding of the
    /// daily division.
    pub fn figures(&self, monthly_total_samples: i64) -> Figures {
        let per_sample = |sum: f64| {
            if monthly_total_samples == 0 {
                0.0
            } else {
                sum / monthly_total_samples as f64
            }
        };
        let [vcpu, ram, disk] = self.weighted_avgs.map(per_sample);
        let pool_pct = self
            .weighted_pool_share
            .map(|share| per_sample(share) * 100.0);
        let mut figures = Figures {
            samples_present: self.samples_present,
            total_samples: monthly_total_samples,
            avg_is_present: per_sample(self.samples_present as f64),
            avg_vcpu_count: vcpu,
            avg_ram_gb: ram,
            avg_provisioned_disk: disk,
            creation_time: self.creation_time,
            deletion_time: self.deletion_time,
            snapshot_time: self.latest_time,
            ..Figures::default()
        };
        [
            figures.samples_powered_on,
            figures.samples_template,
            figures.samples_placeholder,
        ] = self.classes;
        figures.set_tiers(pool_pct, self.tier_days);
        figures
    }
}
