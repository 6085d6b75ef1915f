//! A `MetricsExport` run, the same for its Kubernetes Job and for `vctp standalone`'s
//! scheduled exports: the run standing for a tick → the bundle's store (the destination's,
//! else the reports store) → the plan from the spec and the credentials → [`super::run`].

use super::{Error, Observer, Outcome};
use crate::crd::MetricsExportSpec;
use crate::export::plan::{self, Output};
use crate::export::windows::{self, Window};
use crate::objstore::Objects;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use tokio_util::sync::CancellationToken;

/// Why a spec has no run for a tick.
#[derive(Debug, thiserror::Error)]
pub enum RangeError {
    #[error("set timeRange or lookbackSeconds")]
    NoRange,
    #[error(transparent)]
    Range(#[from] windows::Error),
}

impl RangeError {
    pub fn reason(&self) -> &'static str {
        match self {
            RangeError::NoRange => "InvalidTimeRange",
            RangeError::Range(e) => e.reason(),
        }
    }
}

/// One run of an export: its id and range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAt {
    pub run_id: String,
    pub range: Window,
}

impl RunAt {
    /// The run standing for `tick`: `timeRange` as it is, or the `lookbackSeconds` before
    /// the tick, in whole seconds (so the run id and the range read well).
    pub fn for_tick(spec: &MetricsExportSpec, tick: DateTime<Utc>) -> Result<RunAt, RangeError> {
        let seconds = tick.timestamp();
        let range = match (&spec.time_range, spec.lookback_seconds) {
            (Some(range), _) => {
                Window::new(range.start.0.as_millisecond(), range.end.0.as_millisecond())?
            }
            (None, Some(lookback)) => Window::new((seconds - lookback) * 1000, seconds * 1000)?,
            (None, None) => return Err(RangeError::NoRange),
        };
        Ok(RunAt {
            run_id: plan::run_id_at(tick),
            range,
        })
    }
}

/// A `MetricsExport` as a run needs it: the spec, and the names its default prefix is made
/// of (`exports/<namespace>/<name>`).
pub struct Resource<'a> {
    pub spec: &'a MetricsExportSpec,
    pub namespace: &'a str,
    pub name: &'a str,
}

/// The reports store, where bundles go when the spec names no `destination.storeUrl`.
pub enum Reports {
    /// Already open (`vctp standalone` writes its reports there too).
    Open(Objects),
    /// Opened only when the bundle goes there, with [`BundleStores::options`] (a Job).
    Url(String),
}

/// Where a run may put its bundle.
pub struct BundleStores {
    pub reports: Reports,
    /// What a store named by URL is opened with.
    pub options: BTreeMap<String, String>,
    /// How long one request to a store named by URL may take, retries included.
    pub retry_timeout: std::time::Duration,
}

impl BundleStores {
    /// `settings` (the settings' `object_store_options`) with the `VCTP_STORE_<option>`s
    /// found in `vars` over them: the operator passes the destination's credentials Secret
    /// that way, and standalone the process environment stands in for the Secrets, as
    /// [`crate::config::exports::StandaloneExport::env`] does for the source's.
    pub fn new(
        reports: Reports,
        settings: &BTreeMap<String, String>,
        vars: impl Iterator<Item = (String, String)>,
    ) -> BundleStores {
        let mut options = settings.clone();
        options.extend(plan::store_options_from_env(vars));
        BundleStores {
            reports,
            options,
            retry_timeout: crate::objstore::DEFAULT_RETRY_TIMEOUT,
        }
    }

    /// Stores named by URL give each request at most `limit` (settings.object_store_retry_timeout_seconds).
    pub fn with_retry_timeout(mut self, limit: std::time::Duration) -> BundleStores {
        self.retry_timeout = limit;
        self
    }

    /// The store of `spec`'s bundles.
    fn open(&self, spec: &MetricsExportSpec) -> Result<Objects, Error> {
        let url = match (&spec.destination.store_url, &self.reports) {
            (Some(url), _) | (None, Reports::Url(url)) => url,
            (None, Reports::Open(objects)) => return Ok(objects.clone()),
        };
        Objects::from_url_with(url, &self.options, self.retry_timeout)
            .map_err(|source| Error::Destination { source })
    }
}

/// Runs `run` of `resource`, its credentials read through `env` (see [`plan::env`]), its
/// bundle in `stores`. A run with the id of an earlier, stopped one continues its checkpoint.
pub async fn run_resource(
    resource: &Resource<'_>,
    run: &RunAt,
    env: impl Fn(&str) -> Option<String>,
    stores: &BundleStores,
    observer: &mut dyn Observer,
    cancel: &CancellationToken,
) -> Result<Outcome, Error> {
    let objects = stores.open(resource.spec)?;
    let (prefix, retention) = plan::bundle_place(
        &resource.spec.destination,
        resource.namespace,
        resource.name,
    );
    let plan = plan::from_spec(
        resource.spec,
        &run.run_id,
        run.range,
        env,
        Output::Bundle {
            objects,
            prefix,
            retention,
        },
    )?;
    super::run(plan, true, observer, cancel).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> MetricsExportSpec {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn a_lookback_run_ends_at_its_tick_in_whole_seconds_and_is_named_by_it() {
        let spec = spec("{source: {url: 'http://vm:8428'}, lookbackSeconds: 3600}");
        let run = RunAt::for_tick(&spec, at("2026-03-10T14:00:00.700Z")).unwrap();
        assert_eq!(run.run_id, "20260310T140000Z");
        assert_eq!(
            run.range,
            Window::new(1_773_147_600_000, 1_773_151_200_000).unwrap()
        );
    }

    #[test]
    fn a_time_range_run_keeps_its_range_whatever_the_tick() {
        let spec = spec(
            "{source: {url: 'http://vm:8428'}, timeRange: {start: '2026-03-01T00:00:00Z', end: '2026-03-02T00:00:00Z'}}",
        );
        let run = RunAt::for_tick(&spec, at("2026-03-10T14:00:00Z")).unwrap();
        assert_eq!(
            run.range,
            Window::new(1_772_323_200_000, 1_772_409_600_000).unwrap()
        );
    }

    #[test]
    fn a_spec_without_a_range_has_no_run() {
        let spec = spec("{source: {url: 'http://vm:8428'}}");
        let err = RunAt::for_tick(&spec, at("2026-03-10T14:00:00Z")).unwrap_err();
        assert!(matches!(err, RangeError::NoRange));
        assert_eq!(err.reason(), "InvalidTimeRange");
        assert_eq!(err.to_string(), "set timeRange or lookbackSeconds");
    }

    #[test]
    fn store_options_from_the_environment_override_the_settings() {
        let settings = BTreeMap::from([
            ("region".to_string(), "eu-west-1".to_string()),
            ("aws_access_key_id".to_string(), "settings".to_string()),
        ]);
        let vars = [
            (
                "VCTP_STORE_aws_access_key_id".to_string(),
                "secret".to_string(),
            ),
            ("HOME".to_string(), "/root".to_string()),
        ];
        let stores = BundleStores::new(
            Reports::Url("/data/reports".into()),
            &settings,
            vars.into_iter(),
        );
        assert_eq!(
            stores.options,
            BTreeMap::from([
                ("region".to_string(), "eu-west-1".to_string()),
                ("aws_access_key_id".to_string(), "secret".to_string()),
            ])
        );
    }

    #[test]
    fn the_destination_store_is_preferred_to_the_reports_store() {
        let dir = tempfile::tempdir().unwrap();
        let reports = dir.path().join("reports");
        let bundles = dir.path().join("bundles");
        std::fs::create_dir_all(&reports).unwrap();
        std::fs::create_dir_all(&bundles).unwrap();
        let stores = BundleStores::new(
            Reports::Url(reports.to_str().unwrap().into()),
            &BTreeMap::new(),
            std::iter::empty(),
        );
        let mut spec = spec("{source: {url: 'http://vm:8428'}, lookbackSeconds: 60}");
        assert_eq!(
            stores.open(&spec).unwrap().url(),
            Objects::from_url(reports.to_str().unwrap(), &BTreeMap::new())
                .unwrap()
                .url()
        );
        spec.destination.store_url = Some(bundles.to_str().unwrap().into());
        assert_eq!(
            stores.open(&spec).unwrap().url(),
            Objects::from_url(bundles.to_str().unwrap(), &BTreeMap::new())
                .unwrap()
                .url()
        );
        spec.destination.store_url = Some("ftp://nowhere/x".into());
        let err = stores.open(&spec).unwrap_err();
        assert!(err.is_bad_input());
        assert!(err.to_string().contains("ftp://nowhere/x"), "{err}");
    }

    #[test]
    fn an_open_reports_store_is_used_as_it_is_and_a_bad_one_by_url_is_only_opened_when_used() {
        let dir = tempfile::tempdir().unwrap();
        let reports = Objects::from_url(dir.path().to_str().unwrap(), &BTreeMap::new()).unwrap();
        let mut spec = spec("{source: {url: 'http://vm:8428'}, lookbackSeconds: 60}");
        let open = BundleStores::new(
            Reports::Open(reports.clone()),
            &BTreeMap::new(),
            std::iter::empty(),
        );
        assert_eq!(open.open(&spec).unwrap().url(), reports.url());
        let by_url = BundleStores::new(
            Reports::Url("ftp://nowhere/reports".into()),
            &BTreeMap::new(),
            std::iter::empty(),
        );
        assert!(by_url.open(&spec).is_err());
        spec.destination.store_url = Some(dir.path().to_str().unwrap().into());
        assert_eq!(by_url.open(&spec).unwrap().url(), reports.url());
    }
}
