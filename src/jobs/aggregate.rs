//! One aggregation request as a unit of work (what an `AggregationJob`'s Job runs): spec →
//! [`Request`] (pure), then aggregate the day or month and write its reports; an hourly request
//! only writes the hour's report. The outcome is small JSON a Job leaves as its termination
//! message for the operator.

use super::Stores;
use super::report::{self, Period};
use crate::aggregate::engine::{self, Source};
use crate::aggregate::{Day, Engine, EngineError, Month};
use crate::crd::AggregationJobSpec;
use crate::crd::aggregation_job::AggregationPeriod;
use serde::Serialize;

/// What to do.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub period: Period,
    /// Reports of these vCenters, one each; empty means one report of all vCenters. The
    /// aggregation itself always covers every vCenter: summaries are per period.
    pub vcenters: Vec<String>,
    pub engine: Engine,
    pub report: bool,
}

/// One report object written, as status shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportObject {
    pub key: String,
    pub size: i64,
    pub sha256: String,
}

/// What a period with nothing to aggregate (a day without snapshots, a month without daily
/// summaries) means to the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenEmpty {
    /// An error: somebody asked for this period (the CLI, the API, an `AggregationJob`).
    Fail,
    /// Nothing to do: a schedule reached a period nobody collected (standalone, the demo).
    Skip,
}

/// What was done.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    pub rows_written: u64,
    /// vCenters with summaries in the period.
    pub vcenters: usize,
    /// The period had nothing to aggregate and the caller skips such periods.
    pub skipped: bool,
    pub reports: Vec<ReportObject>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid AggregationJob spec: `{field}`: {message}")]
    Spec { field: String, message: String },
    #[error("failed to aggregate {period}: {source}")]
    Aggregate {
        period: String,
        source: crate::aggregate::EngineError,
    },
    #[error(
        "the summaries of {period} are stored, but its report failed (`vctp report generate` retries it): {source}"
    )]
    Report {
        period: String,
        source: super::report::Error,
    },
}

impl Error {
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Spec { .. } => "InvalidSpec",
            Error::Aggregate { source, .. } => source.reason(),
            Error::Report { source, .. } => source.reason(),
        }
    }

    /// Whether the request is wrong (nothing succeeds until it changes), rather than the work.
    pub fn is_bad_input(&self) -> bool {
        matches!(self, Error::Spec { .. })
    }
}

impl Request {
    /// The request as an `AggregationJob` in `namespace` means it: a bare vCenter name is
    /// the `VCenterTarget` of that namespace (its data is keyed `NAMESPACE/NAME`); a name
    /// with a `/` is a key already.
    pub fn in_namespace(mut self, namespace: &str) -> Request {
        for vcenter in &mut self.vcenters {
            if !vcenter.contains('/') {
                *vcenter = crate::crd::vcenter_target::data_key(namespace, vcenter);
            }
        }
        self
    }

    /// The request an `AggregationJob` spec stands for: `Hourly` the hour containing `at`,
    /// `Daily` the day `date`, `Monthly` the month `month`. Pure; errors name the field. The
    /// schema's CEL rules say the same, but API servers before 1.25 do not enforce them.
    pub fn from_spec(spec: &AggregationJobSpec) -> Result<Request, Error> {
        let period_name = format!("{:?}", spec.period);
        let (wanted, example) = match spec.period {
            AggregationPeriod::Hourly => ("at", "an RFC 3339 time within the hour"),
            AggregationPeriod::Daily => ("date", "YYYY-MM-DD"),
            AggregationPeriod::Monthly => ("month", "YYYY-MM"),
        };
        let spec_error = |field: &str, message: String| Error::Spec {
            field: format!("spec.{field}"),
            message,
        };
        let given = [
            ("at", spec.at.is_some()),
            ("date", spec.date.is_some()),
            ("month", spec.month.is_some()),
        ];
        if let Some((field, _)) = given.iter().find(|(f, present)| *present && *f != wanted) {
            return Err(spec_error(
                field,
                format!("period {period_name} takes no {field}; remove it"),
            ));
        }
        let missing = || spec_error(wanted, format!("period {period_name} needs it ({example})"));
        let period = match spec.period {
            AggregationPeriod::Hourly => {
                let at = spec.at.as_ref().ok_or_else(missing)?;
                Period::hour_containing(at.0.as_second())
            }
            AggregationPeriod::Daily => {
                let date = spec.date.as_deref().ok_or_else(missing)?;
                Period::Day(Day::parse(date).map_err(|e| spec_error("date", e.to_string()))?)
            }
            AggregationPeriod::Monthly => {
                let month = spec.month.as_deref().ok_or_else(missing)?;
                Period::Month(Month::parse(month).map_err(|e| spec_error("month", e.to_string()))?)
            }
        };
        Ok(Request {
            period,
            vcenters: spec.vcenters.clone(),
            engine: spec.engine,
            report: spec.report.enabled,
        })
    }
}

/// Aggregates the request's day or month (recorded in `aggregation_runs` as coming from
/// `source`), then writes its reports; an hour only gets its report.
pub async fn run(
    stores: &Stores<'_>,
    request: &Request,
    source: Source,
    when_empty: WhenEmpty,
) -> Result<Outcome, Error> {
    let label = request.period.label();
    let store = stores.store;
    let aggregated = match request.period {
        Period::Hour(_) => Ok(engine::Outcome::default()),
        Period::Day(day) => {
            engine::aggregate_daily_recorded(store, day, request.engine, source).await
        }
        Period::Month(month) => {
            engine::aggregate_monthly_recorded(store, month, request.engine, source).await
        }
    };
    let aggregated = match aggregated {
        Ok(outcome) => outcome,
        Err(EngineError::NoSnapshots(_) | EngineError::NoDailySummaries(_))
            if when_empty == WhenEmpty::Skip =>
        {
            return Ok(Outcome {
                rows_written: 0,
                vcenters: 0,
                skipped: true,
                reports: Vec::new(),
            });
        }
        Err(source) => {
            return Err(Error::Aggregate {
                period: label,
                source,
            });
        }
    };
    let mut reports = Vec::new();
    if request.report {
        let engine = (!matches!(request.period, Period::Hour(_))).then_some(request.engine);
        let scopes: Vec<Option<&str>> = if request.vcenters.is_empty() {
            vec![None]
        } else {
            request.vcenters.iter().map(|v| Some(v.as_str())).collect()
        };
        for scope in scopes {
            let written = report::generate(stores, request.period, scope, engine)
                .await
                .map_err(|source| Error::Report {
                    period: label.clone(),
                    source,
                })?;
            reports.extend(written.into_iter().map(|entry| ReportObject {
                key: entry.object_key,
                size: entry.size,
                sha256: entry.sha256,
            }));
        }
    }
    Ok(Outcome {
        rows_written: aggregated.rows,
        vcenters: aggregated.vcenters,
        skipped: false,
        reports,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(yaml: &str) -> Result<Request, Error> {
        Request::from_spec(&serde_yaml::from_str(yaml).unwrap())
    }

    #[test]
    fn a_daily_spec_becomes_the_day_with_its_vcenters_engine_and_report() {
        let r = request(
            "period: Daily\ndate: '2026-03-10'\nvcenters: [vc01, vc02]\nengine: sql\nreport: {enabled: false}\n",
        )
        .unwrap();
        assert_eq!(
            r,
            Request {
                period: Period::Day(Day::parse("2026-03-10").unwrap()),
                vcenters: vec!["vc01".into(), "vc02".into()],
                engine: Engine::Sql,
                report: false,
            }
        );
    }

    #[test]
    fn a_bare_vcenter_name_is_the_target_of_the_jobs_namespace() {
        let r = request("period: Daily\ndate: '2026-03-10'\nvcenters: [vc01, other/vc02]\n")
            .unwrap()
            .in_namespace("finance");
        assert_eq!(r.vcenters, ["finance/vc01", "other/vc02"]);
    }

    #[test]
    fn an_hourly_spec_is_the_hour_containing_at_and_defaults_apply() {
        let r = request("period: Hourly\nat: '2026-03-10T14:37:12+01:00'\n").unwrap();
        assert_eq!(r.period, Period::hour("2026-03-10T13").unwrap());
        assert_eq!(r.vcenters, Vec::<String>::new());
        assert_eq!(r.engine, Engine::Rust);
        assert!(r.report);
    }

    #[test]
    fn a_monthly_spec_is_the_month() {
        let r = request("period: Monthly\nmonth: '2026-02'\n").unwrap();
        assert_eq!(r.period, Period::Month(Month::parse("2026-02").unwrap()));
    }

    #[test]
    fn an_invalid_date_or_month_is_named_with_its_field() {
        let err = request("period: Daily\ndate: '2026-02-30'\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid AggregationJob spec: `spec.date`: invalid date \"2026-02-30\": expected YYYY-MM-DD"
        );
        assert!(err.is_bad_input());
        assert_eq!(err.reason(), "InvalidSpec");
        let err = request("period: Monthly\nmonth: '2026-13'\n").unwrap_err();
        assert!(
            err.to_string().contains("`spec.month`: invalid month"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_or_extra_period_field_is_named() {
        let err = request("period: Daily\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid AggregationJob spec: `spec.date`: period Daily needs it (YYYY-MM-DD)"
        );
        let err = request("period: Hourly\nat: '2026-03-10T14:00:00Z'\ndate: '2026-03-10'\n")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid AggregationJob spec: `spec.date`: period Hourly takes no date; remove it"
        );
    }
}
