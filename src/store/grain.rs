//! The grains the store keeps: summaries by day and month, totals also by snapshot.

/// Daily and monthly summaries share one row shape and differ by table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grain {
    Daily,
    Monthly,
}

impl Grain {
    /// The grain of this period's rows in `vcenter_totals` (and in `aggregation_runs`).
    pub fn totals(self) -> TotalsGrain {
        match self {
            Grain::Daily => TotalsGrain::Daily,
            Grain::Monthly => TotalsGrain::Monthly,
        }
    }
}

/// The grains of the `vcenter_totals` cache: the summaries' two, and one row per snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TotalsGrain {
    Snapshot,
    Daily,
    Monthly,
}

impl TotalsGrain {
    /// The value of the `grain` column.
    pub fn as_str(self) -> &'static str {
        match self {
            TotalsGrain::Snapshot => "snapshot",
            TotalsGrain::Daily => "daily",
            TotalsGrain::Monthly => "monthly",
        }
    }
}

/// One SQL literal per grain, built at compile time around the grain's summary table.
macro_rules! per_grain {
    ($grain:expr, [$($before:tt)*], [$($after:tt)*]) => {
        match $grain {
            $crate::store::grain::Grain::Daily => concat!($($before)*, "vm_daily_summary", $($after)*),
            $crate::store::grain::Grain::Monthly => concat!($($before)*, "vm_monthly_summary", $($after)*),
        }
    };
}
pub(crate) use per_grain;

/// The figure columns of both summary tables, in table order and [`Figures`] field order.
///
/// [`Figures`]: crate::aggregate::Figures
macro_rules! figure_columns {
    () => {
        "samples_present, total_samples, avg_is_present, avg_vcpu_count, avg_ram_gb, avg_provisioned_disk, pool_tin_pct, pool_bronze_pct, pool_silver_pct, pool_gold_pct, tin, bronze, silver, gold, creation_time, deletion_time, snapshot_time, samples_powered_on, samples_template, samples_placeholder"
    };
}
pub(crate) use figure_columns;

/// The columns of both summary tables, in table order.
macro_rules! summary_columns {
    () => {
        concat!(
            "period_start, vcenter, vm_id, vm_uuid, name, resource_pool, datacenter, cluster, folder, ",
            $crate::store::grain::figure_columns!()
        )
    };
}
pub(crate) use summary_columns;
