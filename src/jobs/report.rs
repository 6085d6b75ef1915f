//! Report generation as a unit of work: read a period's rows from the store, build the XLSX
//! workbook and its CSV twin (pure, `report`), write both to object storage with their
//! `.sha256` sidecars, then register them. A registry row exists only for objects that were
//! written completely; if a later object fails, the earlier ones are removed again.
//!
//! With a rate card configured, daily and monthly workbooks carry the period's costs
//! (`jobs::costs::ledger`), and a monthly report adds its FOCUS file
//! (`reports/focus/<YYYY-MM>/<scope>.csv`). The summaries report never fails because of
//! money: when pricing fails, the workbook is written without costs, its cover says why,
//! and a warning is logged.

use super::Stores;
use crate::aggregate::{Day, Engine, Month, engine};
use crate::cost::{Ledger, Period as CostPeriod};
use crate::report::{self, Costs, Cover, report_key};
use crate::store::grain::{Grain, TotalsGrain};
use crate::store::hourly::RowFilter;
use crate::store::reports::ReportEntry;
use futures_util::TryStreamExt;

const HOUR: i64 = 3_600;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no {kind} data is stored for {period}{scope}; {hint}")]
    NoData {
        kind: &'static str,
        period: String,
        scope: String,
        hint: &'static str,
    },
    #[error(
        "invalid hour {0:?}: expected Unix seconds or YYYY-MM-DDTHH[:MM[:SS]] (UTC), from 1970 to 9999"
    )]
    Hour(String),
    #[error(transparent)]
    Store(#[from] crate::store::Error),
    #[error(transparent)]
    Engine(#[from] crate::aggregate::EngineError),
    #[error(transparent)]
    Period(#[from] crate::aggregate::period::Error),
    #[error(transparent)]
    Build(#[from] report::Error),
    #[error(transparent)]
    Costs(#[from] super::costs::Error),
    /// Boxed: the object store's errors are large and this one travels through every
    /// report call.
    #[error(transparent)]
    Objects(Box<crate::objstore::Error>),
}

impl From<crate::objstore::Error> for Error {
    fn from(e: crate::objstore::Error) -> Error {
        Error::Objects(Box::new(e))
    }
}

impl Error {
    /// Whether the request or the settings are what is wrong (for the FOCUS report: no rate
    /// card, or none for a day). A period with nothing stored is a failure of the work, as
    /// for every report.
    pub fn is_bad_input(&self) -> bool {
        match self {
            Error::Costs(e) => e.is_bad_input(),
            Error::Hour(_) | Error::Period(_) => true,
            _ => false,
        }
    }

    /// A stable short name for metrics labels and Events.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::NoData { .. } => "NoReportData",
            Error::Hour(_) => "InvalidHour",
            Error::Store(e) => e.reason(),
            Error::Engine(e) => e.reason(),
            Error::Period(_) => "InvalidPeriod",
            Error::Build(e) => e.reason(),
            Error::Costs(super::costs::Error::Store(e)) => e.reason(),
            Error::Costs(_) => "NotPriced",
            Error::Objects(e) => e.reason(),
        }
    }
}

/// The period a report covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// The snapshots taken in `[start, start + 1 h)`, with the day's interval totals so far.
    Hour(i64),
    Day(Day),
    Month(Month),
}

impl Period {
    /// An hour from Unix seconds or `YYYY-MM-DDTHH[:MM[:SS]]` (UTC), truncated to the hour.
    pub fn hour(text: &str) -> Result<Period, Error> {
        let text = text.trim();
        let t = match text.parse::<i64>() {
            Ok(t) => t,
            Err(_) => ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H"]
                .iter()
                .find_map(|format| {
                    // chrono wants minutes; give a bare hour its ":00".
                    let (text, format) = if *format == "%Y-%m-%dT%H" {
                        (
                            format!("{}:00", text.trim_end_matches('Z')),
                            "%Y-%m-%dT%H:%M",
                        )
                    } else {
                        (text.trim_end_matches('Z').to_string(), *format)
                    };
                    chrono::NaiveDateTime::parse_from_str(&text, format).ok()
                })
                .map(|dt| dt.and_utc().timestamp())
                .ok_or_else(|| Error::Hour(text.to_string()))?,
        };
        // Out of range, the hour's arithmetic below (and every later `start + HOUR`) could wrap.
        crate::aggregate::period::check_time(t).map_err(|_| Error::Hour(text.to_string()))?;
        Ok(Period::hour_containing(t))
    }

    /// The hour that contains Unix time `t`.
    pub fn hour_containing(t: i64) -> Period {
        Period::Hour(t.div_euclid(HOUR) * HOUR)
    }

    pub fn kind(self) -> &'static str {
        match self {
            Period::Hour(_) => "hourly",
            Period::Day(_) => "daily",
            Period::Month(_) => "monthly",
        }
    }

    pub fn start(self) -> i64 {
        match self {
            Period::Hour(start) => start,
            Period::Day(day) => day.start(),
            Period::Month(month) => month.start(),
        }
    }

    /// The period in object keys: `2026-03-10T14`, `2026-03-10`, `2026-03`.
    pub fn label(self) -> String {
        match self {
            Period::Hour(start) => chrono::DateTime::from_timestamp(start, 0).map_or_else(
                || start.to_string(),
                |t| t.format("%Y-%m-%dT%H").to_string(),
            ),
            Period::Day(day) => day.to_string(),
            Period::Month(month) => month.to_string(),
        }
    }

    /// The period as the cover sheet states it.
    fn described(self) -> String {
        let at = |t: i64| {
            chrono::DateTime::from_timestamp(t, 0)
                .map_or_else(|| t.to_string(), |t| t.format("%Y-%m-%d %H:%M").to_string())
        };
        match self {
            Period::Hour(start) => format!("{} to {} UTC", at(start), at(start + HOUR)),
            Period::Day(day) => format!("{day} (00:00 to 24:00 UTC)"),
            Period::Month(month) => format!("{} to {} (UTC)", month.first_day(), month.end_day()),
        }
    }
}

/// Builds and stores the XLSX and CSV report of `period`, for one vCenter or all
/// (`scope` = None); `engine` is named on the cover when the report follows an
/// aggregation. Returns the registry rows written.
pub async fn generate(
    stores: &Stores<'_>,
    period: Period,
    scope: Option<&str>,
    engine: Option<Engine>,
) -> Result<Vec<ReportEntry>, Error> {
    let scope_name = scope.unwrap_or("all");
    let known_hosts = stores.store.vcenter_hosts().await?;
    // The hosts of the vCenters whose rows the report holds.
    let hosts = |keys: &mut dyn Iterator<Item = &str>| -> Vec<(String, String)> {
        let keys: std::collections::BTreeSet<&str> = keys.collect();
        keys.into_iter()
            .filter_map(|k| known_hosts.get(k).map(|h| (k.to_string(), h.clone())))
            .collect()
    };
    let mut cover = Cover {
        title: format!("vctp {} chargeback report", period.kind()),
        period: period.described(),
        generated_at: chrono::Utc::now().timestamp(),
        engine,
        scope: scope_name.to_string(),
        hosts: Vec::new(),
    };
    let in_scope = |vcenter: &str| scope.is_none_or(|s| s == vcenter);
    let no_data = |hint| Error::NoData {
        kind: period.kind(),
        period: period.label(),
        scope: scope.map_or_else(String::new, |s| format!(" of vCenter {s}")),
        hint,
    };
    let kind = period.kind();
    let objects = match period {
        Period::Day(day) => {
            let mut vms = stores.store.summaries(Grain::Daily, day.start()).await?;
            vms.retain(|vm| in_scope(&vm.vcenter));
            if vms.is_empty() {
                return Err(no_data("run `vctp aggregate daily` for it first"));
            }
            let mut totals = stores
                .store
                .totals(TotalsGrain::Daily, day.start(), day.end())
                .await?;
            totals.retain(|t| in_scope(&t.vcenter));
            cover.hosts = hosts(&mut vms.iter().map(|vm| vm.vcenter.as_str()));
            let priced = price(stores, CostPeriod::Day(day), scope).await;
            vec![
                (
                    kind,
                    "xlsx",
                    report::daily_workbook(&cover, &vms, &totals, stores.pivots, priced.costs())?,
                ),
                (kind, "csv", report::summaries_csv(&vms)?),
            ]
        }
        Period::Month(month) => {
            let mut vms = stores
                .store
                .summaries(Grain::Monthly, month.start())
                .await?;
            vms.retain(|vm| in_scope(&vm.vcenter));
            if vms.is_empty() {
                return Err(no_data("run `vctp aggregate monthly` for it first"));
            }
            let mut totals = stores
                .store
                .totals(TotalsGrain::Daily, month.start(), month.end())
                .await?;
            totals.retain(|t| in_scope(&t.vcenter));
            cover.hosts = hosts(&mut vms.iter().map(|vm| vm.vcenter.as_str()));
            let priced = price(stores, CostPeriod::Month(month), scope).await;
            let mut objects = vec![
                (
                    kind,
                    "xlsx",
                    report::monthly_workbook(&cover, &vms, &totals, stores.pivots, priced.costs())?,
                ),
                (kind, "csv", report::summaries_csv(&vms)?),
            ];
            if let Priced::Ledger(ledger) = &priced {
                let focus = report::focus_csv(ledger, CostPeriod::Month(month))?;
                objects.push((FOCUS, "csv", focus));
            }
            objects
        }
        Period::Hour(start) => {
            let rows: Vec<_> = stores
                .store
                .hourly_rows(RowFilter {
                    vcenter: scope.map(String::from),
                    from: Some(start),
                    to: Some(start + HOUR),
                })
                .try_collect()
                .await?;
            if rows.is_empty() {
                return Err(no_data("no snapshot was taken in that hour"));
            }
            let mut hours = engine::hourly_totals(stores.store, Day::containing(start)?).await?;
            hours.retain(|h| in_scope(&h.vcenter) && h.hour_start <= start);
            cover.hosts = hosts(&mut rows.iter().map(|r| r.vcenter.as_str()));
            vec![
                (
                    kind,
                    "xlsx",
                    report::hourly_workbook(&cover, &rows, &hours)?,
                ),
                (kind, "csv", report::hourly_csv(&rows)?),
            ]
        }
    };
    publish(stores, period, scope_name, objects).await
}

/// The report kind of FOCUS files.
const FOCUS: &str = "focus";

/// The costs of a report's period, or why it has none.
enum Priced {
    /// No rate card is configured.
    Unpriced,
    Ledger(Ledger),
    Failed(String),
}

impl Priced {
    fn costs(&self) -> Costs<'_> {
        match self {
            Priced::Unpriced => Costs::Unpriced,
            Priced::Ledger(ledger) => Costs::Priced(ledger),
            Priced::Failed(reason) => Costs::Failed(reason),
        }
    }
}

/// The charges of `period` in `scope` (one vCenter, or all), when a card is configured. A
/// failure is logged and returned as its reason: the report goes on without costs.
async fn price(stores: &Stores<'_>, period: CostPeriod, scope: Option<&str>) -> Priced {
    if stores.pricing.cards.is_empty() {
        return Priced::Unpriced;
    }
    match scoped_ledger(stores, period, scope).await {
        Ok(ledger) => Priced::Ledger(ledger),
        Err(e) => {
            tracing::warn!(period = %period, error = %e, "the report is written without costs");
            Priced::Failed(e.to_string())
        }
    }
}

/// The ledger of `period`, limited to the charges of `scope`'s vCenter.
async fn scoped_ledger(
    stores: &Stores<'_>,
    period: CostPeriod,
    scope: Option<&str>,
) -> Result<Ledger, super::costs::Error> {
    let mut ledger = super::costs::ledger(stores.store, stores.pricing, period).await?;
    if let Some(vcenter) = scope {
        ledger.charges.retain(|c| &*c.line.vcenter == vcenter);
    }
    Ok(ledger)
}

/// Builds and stores the FOCUS CSV of `month` alone, for one vCenter or all; unlike the
/// monthly report, a month that cannot be priced is an error here.
pub async fn generate_focus(
    stores: &Stores<'_>,
    month: Month,
    scope: Option<&str>,
) -> Result<Vec<ReportEntry>, Error> {
    let period = CostPeriod::Month(month);
    let ledger = scoped_ledger(stores, period, scope).await?;
    if ledger.charges.is_empty() {
        return Err(Error::NoData {
            kind: FOCUS,
            period: month.to_string(),
            scope: scope.map_or_else(String::new, |s| format!(" of vCenter {s}")),
            hint: "no VM of the month was charged (run `vctp aggregate daily` for its days first)",
        });
    }
    let csv = report::focus_csv(&ledger, period)?;
    publish(
        stores,
        Period::Month(month),
        scope.unwrap_or("all"),
        vec![(FOCUS, "csv", csv)],
    )
    .await
}

/// Writes the objects (`kind`, `format`, bytes) of one period, then registers them; if a
/// later object fails, the earlier ones of this report are deleted again so no registry row
/// or stray object remains.
async fn publish(
    stores: &Stores<'_>,
    period: Period,
    scope: &str,
    objects: Vec<(&'static str, &'static str, Vec<u8>)>,
) -> Result<Vec<ReportEntry>, Error> {
    let created_at = chrono::Utc::now().timestamp();
    let mut written: Vec<ReportEntry> = Vec::new();
    for (kind, format, bytes) in objects {
        let key = report_key(kind, &period.label(), scope, format)?;
        match stores.objects.put(&key, bytes).await {
            Ok(stored) => written.push(ReportEntry {
                object_key: stored.key,
                kind: kind.to_string(),
                period: period.label(),
                period_start: period.start(),
                scope: scope.to_string(),
                format: format.to_string(),
                size: i64::try_from(stored.size).unwrap_or(i64::MAX),
                sha256: stored.sha256,
                created_at,
            }),
            Err(e) => {
                for entry in &written {
                    if let Err(cleanup) = stores.objects.delete(&entry.object_key).await {
                        tracing::warn!(key = %entry.object_key, error = %cleanup, "failed to remove a report object after a failed upload");
                    }
                }
                return Err(e.into());
            }
        }
    }
    for entry in &written {
        stores.store.record_report(entry).await?;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_parse_from_unix_seconds_or_utc_text_and_truncate() {
        assert_eq!(
            Period::hour("1773151200").unwrap(),
            Period::Hour(1_773_151_200)
        );
        assert_eq!(
            Period::hour("1773152999").unwrap(),
            Period::Hour(1_773_151_200)
        );
        for text in ["2026-03-10T14", "2026-03-10T14:59", "2026-03-10T14:30:05Z"] {
            assert_eq!(
                Period::hour(text).unwrap(),
                Period::Hour(1_773_151_200),
                "{text}"
            );
        }
        assert!(
            Period::hour("2026-03-10 14")
                .unwrap_err()
                .to_string()
                .contains("invalid hour")
        );
        assert_eq!(Period::Hour(1_773_151_200).label(), "2026-03-10T14");
    }
}
