//! One aggregation request as a unit of work (what an `AggregationJob`'s Job runs): aggregate
//! the day or month, then write its reports; an hourly request only writes the hour's report.
//! The outcome is small JSON a Job leaves as its termination message for the operator.

use super::report::{Period, Reporter};
use crate::aggregate::{Engine, engine};
use crate::objstore::Objects;
use crate::report::PivotSpec;
use crate::store::Store;
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
    /// A presigned download URL where the store supports it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// What was done.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    pub rows_written: u64,
    pub reports: Vec<ReportObject>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to aggregate {period}: {source}")]
    Aggregate {
        period: String,
        source: crate::aggregate::EngineError,
    },
    #[error("the summaries of {period} are stored, but its report failed: {source}")]
    Report {
        period: String,
        source: super::report::Error,
    },
}

impl Error {
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Aggregate { source, .. } => source.reason(),
            Error::Report { source, .. } => source.reason(),
        }
    }
}

/// How long the presigned URLs in an outcome stay valid.
const URL_LIFETIME: std::time::Duration = std::time::Duration::from_secs(7 * 86_400);

pub async fn run(
    store: &Store,
    objects: &Objects,
    pivots: &[PivotSpec],
    request: &Request,
) -> Result<Outcome, Error> {
    let label = request.period.label();
    let aggregated = match request.period {
        Period::Hour(_) => Ok(0),
        Period::Day(day) => engine::aggregate_daily(store, day, request.engine)
            .await
            .map(|o| o.rows),
        Period::Month(month) => engine::aggregate_monthly(store, month, request.engine)
            .await
            .map(|o| o.rows),
    };
    let rows_written = aggregated.map_err(|source| Error::Aggregate {
        period: label.clone(),
        source,
    })?;
    let mut reports = Vec::new();
    if request.report {
        let reporter = Reporter {
            store,
            objects,
            pivots,
        };
        let engine = (!matches!(request.period, Period::Hour(_))).then_some(request.engine);
        let scopes: Vec<Option<&str>> = if request.vcenters.is_empty() {
            vec![None]
        } else {
            request.vcenters.iter().map(|v| Some(v.as_str())).collect()
        };
        for scope in scopes {
            let written = reporter
                .generate(request.period, scope, engine)
                .await
                .map_err(|source| Error::Report {
                    period: label.clone(),
                    source,
                })?;
            for entry in written {
                let url = objects
                    .presign_get(&entry.object_key, URL_LIFETIME)
                    .await
                    .ok()
                    .flatten();
                reports.push(ReportObject {
                    key: entry.object_key,
                    size: entry.size,
                    sha256: entry.sha256,
                    url,
                });
            }
        }
    }
    Ok(Outcome {
        rows_written,
        reports,
    })
}
