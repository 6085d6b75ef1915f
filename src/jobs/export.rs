//! One metrics export run, what `vctp job export` (a MetricsExport's Kubernetes Job) and
//! `vctp export-metrics` both do: check the plan → pick up its checkpoint (same run and
//! settings: continue; other settings: start over) → choose the method (probe once) and the
//! selectors (discover once) → export window after window into segments, retrying transient
//! failures and halving windows that time out, with a checkpoint after each → assemble the
//! bundle, its sidecar and its manifest → delete the parts → apply retention.
//!
//! Progress and notices go to an [`Observer`] (the Job patches them into the resource's
//! status, the CLI draws a progress bar); cancellation (SIGTERM) stops the window in flight,
//! aborts its upload and keeps the checkpoint, so the same run resumes where it stopped.
//!
//! A `MetricsExport`'s run (its Job, and `vctp standalone`) is planned from the resource in
//! [`resource`]; `vctp export-metrics` plans from its flags.

mod resource;

pub use resource::{BundleStores, RangeError, Reports, Resource, RunAt, run_resource};

use crate::crd::metrics_export::ExportMethod;
use crate::export::checkpoint::{self, Checkpoint, Method, Segment, SeriesRecord};
use crate::export::client::{self, Client, Kind, Probe};
use crate::export::fetch::{self, Request, Sink};
use crate::export::metadata::{self, Metadata, MetricCounts, ObfuscationInfo, SourceInfo};
use crate::export::obfuscate::{self, Obfuscator};
use crate::export::plan::{self, ExportPlan, Output};
use crate::export::windows::{self, Window};
use crate::export::{assemble, discover, selector};
use crate::objstore::{self, Objects};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Longest wait between two attempts of a request.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Plan(#[from] plan::Error),
    #[error(transparent)]
    Obfuscation(#[from] obfuscate::Error),
    #[error(transparent)]
    Source(#[from] client::Error),
    #[error(transparent)]
    Discover(#[from] discover::Error),
    #[error(transparent)]
    Selector(#[from] selector::Error),
    #[error(transparent)]
    Fetch(#[from] fetch::Error),
    #[error(transparent)]
    Checkpoint(#[from] checkpoint::Error),
    #[error(transparent)]
    Store(#[from] objstore::Error),
    #[error(
        "invalid bundle location (spec.destination.storeUrl, else the reports store): {source}"
    )]
    Destination { source: objstore::Error },
    #[error(transparent)]
    Assemble(#[from] assemble::Error),
    #[error(
        "the export was cancelled; its checkpoint is kept, the same run resumes where it stopped"
    )]
    Cancelled,
}

impl Error {
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Plan(e) => e.reason(),
            Error::Obfuscation(e) => e.reason(),
            Error::Source(e) => e.reason(),
            Error::Discover(e) => e.reason(),
            Error::Selector(e) => e.reason(),
            Error::Fetch(e) => e.reason(),
            Error::Checkpoint(e) => e.reason(),
            Error::Store(e) | Error::Destination { source: e } => e.reason(),
            Error::Assemble(e) => e.reason(),
            Error::Cancelled => "Cancelled",
        }
    }

    /// The input is wrong (settings, credentials, a refused query): retrying the run as it
    /// is cannot help.
    pub fn is_bad_input(&self) -> bool {
        match self {
            Error::Plan(_)
            | Error::Obfuscation(_)
            | Error::Selector(_)
            | Error::Destination { .. } => true,
            Error::Source(e) => e.is_bad_input(),
            Error::Discover(discover::Error::Source(e)) => e.is_bad_input(),
            Error::Discover(discover::Error::NothingFound { .. }) => true,
            Error::Fetch(fetch::Error::Source(e)) => e.is_bad_input(),
            Error::Fetch(fetch::Error::Answer { source, .. }) => {
                matches!(source, crate::export::line::Error::QueryRefused { .. })
            }
            _ => false,
        }
    }
}

/// How far a run is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub windows_done: u64,
    pub windows_total: u64,
    pub method: Option<Method>,
    pub current: Option<Window>,
    pub series: u64,
    pub samples: u64,
    pub bytes: u64,
    pub eta: Option<Duration>,
    /// Where the checkpoint is, with the settings' hash (bundle runs only).
    pub checkpoint: Option<(String, String)>,
}

/// Something worth telling while a run goes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// `/api/v1/export` is not served: the run reads with query_range.
    ExportUnavailable(String),
    /// A checkpoint of the same run had other settings: its parts were discarded.
    SpecChanged,
    /// The run continues a checkpoint: this many windows were done.
    Resumed { windows: usize },
    /// A window timed out and was halved.
    WindowSplit(Window),
    /// A request failed transiently and is tried again.
    Retrying { attempt: u32, error: String },
}

/// Receives progress and notices.
pub trait Observer: Send {
    fn progress(&mut self, progress: &Progress);
    fn notice(&mut self, notice: &Notice);
}

/// Progress and notices as log lines (`vctp standalone`'s scheduled exports).
pub struct LogObserver {
    /// The export's name, on every line.
    pub name: String,
}

impl Observer for LogObserver {
    fn progress(&mut self, progress: &Progress) {
        tracing::debug!(
            export = %self.name,
            windows = progress.windows_done,
            of = progress.windows_total,
            samples = progress.samples,
            "export progress"
        );
    }

    fn notice(&mut self, notice: &Notice) {
        tracing::info!(export = %self.name, ?notice, "export notice");
    }
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub run_id: String,
    pub method: Method,
    pub series: u64,
    pub samples: u64,
    pub skipped: u64,
    pub windows: u64,
    pub splits: u64,
    /// Windows a resumed run found done.
    pub resumed: u64,
    /// The bundle, for bundle runs.
    pub bundle: Option<assemble::Assembled>,
    /// Older bundles deleted by retention.
    pub deleted: Vec<String>,
}

/// Runs `plan` to its end (see the module documentation).
pub async fn run(
    plan: ExportPlan,
    resume: bool,
    observer: &mut dyn Observer,
    cancel: &CancellationToken,
) -> Result<Outcome, Error> {
    plan.check()?;
    let client = Client::new(plan.source.clone())?;
    let obfuscator = Obfuscator::new(plan.key.clone(), plan.obfuscation.clone())?;
    let spec_hash = plan.spec_hash();
    let store = match &plan.output {
        Output::Bundle {
            objects, prefix, ..
        } => Some((objects.clone(), prefix.clone())),
        Output::Stdout => None,
    };

    let mut state = match &store {
        Some((objects, prefix)) => {
            let key = checkpoint::checkpoint_key(prefix, &plan.run_id);
            match checkpoint::load(objects, &key).await? {
                Some(found) if found.spec_hash == spec_hash && resume => {
                    observer.notice(&Notice::Resumed {
                        windows: found.segments.len(),
                    });
                    Some(found)
                }
                Some(found) => {
                    if found.spec_hash != spec_hash {
                        observer.notice(&Notice::SpecChanged);
                    }
                    objects
                        .delete_prefix(&checkpoint::parts_prefix(prefix, &plan.run_id))
                        .await?;
                    None
                }
                None => None,
            }
        }
        None => None,
    };
    let mut checkpoint = match state.take() {
        Some(found) => found,
        None => start(&plan, &client, &spec_hash, observer).await?,
    };
    if let (Some((objects, prefix)), 0) = (&store, checkpoint.segments.len()) {
        checkpoint::save(
            objects,
            &checkpoint::checkpoint_key(prefix, &plan.run_id),
            &checkpoint,
        )
        .await?;
    }

    let mut series = SeriesIndex::default();
    if let Some((objects, _)) = &store {
        for segment in &checkpoint.segments {
            series.load(&checkpoint::load_series(objects, &segment.series_key).await?);
        }
    }
    let resumed = checkpoint.segments.len() as u64;
    let request = request(&plan, &checkpoint)?;
    let mut run = Run {
        plan: &plan,
        client: &client,
        request,
        store: store.as_ref(),
        spec_hash,
        series,
        obfuscator: Some(obfuscator),
        started: Instant::now(),
        done_here: 0,
    };
    run.windows(&mut checkpoint, observer, cancel).await?;

    let skipped = checkpoint.segments.iter().map(|s| s.skipped).sum();
    let mut outcome = Outcome {
        run_id: plan.run_id.clone(),
        method: checkpoint.method,
        series: run.series.len(),
        samples: checkpoint.samples(),
        skipped,
        windows: checkpoint.windows.len() as u64,
        splits: checkpoint.splits.len() as u64,
        resumed,
        bundle: None,
        deleted: Vec::new(),
    };
    if let Output::Bundle {
        objects,
        prefix,
        retention,
    } = &plan.output
    {
        let now = chrono::Utc::now().timestamp();
        let metadata = run.metadata(&checkpoint, now);
        let assembled =
            assemble::bundle(objects, prefix, &checkpoint, &metadata, now, cancel).await?;
        objects
            .delete_prefix(&checkpoint::parts_prefix(prefix, &plan.run_id))
            .await?;
        outcome.deleted =
            assemble::apply_retention(objects, prefix, *retention, &assembled.bundle.key, now)
                .await?;
        outcome.bundle = Some(assembled);
    }
    Ok(outcome)
}

/// A new run: discovery, the method, the windows.
async fn start(
    plan: &ExportPlan,
    client: &Client,
    spec_hash: &str,
    observer: &mut dyn Observer,
) -> Result<Checkpoint, Error> {
    let mut selectors = plan.selectors.clone();
    if let Some(wanted) = &plan.discover {
        selectors.extend(discover::selectors(client, wanted, plan.range).await?);
    }
    let filter = selector::preset_filter(&plan.jobs, &plan.namespaces);
    let (method, method_reason) = match plan.method {
        ExportMethod::Export => (Method::Export, None),
        ExportMethod::QueryRange => (Method::QueryRange, None),
        ExportMethod::Auto if !plan.queries.is_empty() => (
            Method::QueryRange,
            Some("queries are read with query_range".to_string()),
        ),
        ExportMethod::Auto => {
            let probe_selector = selectors
                .first()
                .cloned()
                .or_else(|| filter.clone())
                .unwrap_or_else(|| "{__name__!=\"\"}".to_string());
            match with_retries(plan.retries, observer, || {
                client.probe_export(&probe_selector, plan.range)
            })
            .await?
            {
                Probe::Export => (Method::Export, None),
                Probe::QueryRangeOnly(why) => {
                    observer.notice(&Notice::ExportUnavailable(why.clone()));
                    (Method::QueryRange, Some(why))
                }
            }
        }
    };
    Ok(Checkpoint {
        format: checkpoint::FORMAT,
        run_id: plan.run_id.clone(),
        spec_hash: spec_hash.to_string(),
        method,
        method_reason,
        range: plan.range,
        selectors,
        windows: windows::plan(plan.range, plan.window_ms).map_err(plan::Error::from)?,
        splits: Vec::new(),
        segments: Vec::new(),
        started: chrono::Utc::now().timestamp(),
    })
}

/// What each window asks the source for.
fn request(plan: &ExportPlan, checkpoint: &Checkpoint) -> Result<Request, Error> {
    let filter = selector::preset_filter(&plan.jobs, &plan.namespaces);
    // Presets alone select the series themselves.
    let (selectors, filter) = if checkpoint.selectors.is_empty() {
        (filter.clone().into_iter().collect::<Vec<_>>(), None)
    } else {
        (checkpoint.selectors.clone(), filter)
    };
    Ok(match checkpoint.method {
        Method::Export => Request::Export { selectors, filter },
        Method::QueryRange => {
            // Prometheus has no extra_filters[]: the filter goes into each selector.
            let (mut queries, filter) = if plan.source.kind == Kind::Prometheus {
                let merged = match &filter {
                    Some(f) => selectors
                        .iter()
                        .map(|s| selector::and(s, f))
                        .collect::<Result<Vec<_>, _>>()?,
                    None => selectors,
                };
                (merged, None)
            } else {
                (selectors, filter)
            };
            queries.extend(plan.queries.iter().cloned());
            Request::QueryRange {
                queries,
                filter,
                step_ms: plan.step_ms,
            }
        }
    })
}

/// The series seen so far in the run: hash → metric name (interned).
#[derive(Default)]
struct SeriesIndex {
    series: HashMap<u64, u32>,
    metrics: Vec<String>,
    metric_ids: HashMap<String, u32>,
    samples: BTreeMap<String, u64>,
}

impl SeriesIndex {
    fn len(&self) -> u64 {
        self.series.len() as u64
    }

    fn insert(&mut self, hash: u64, metric: &str) -> bool {
        if self.series.contains_key(&hash) {
            return false;
        }
        let id = match self.metric_ids.get(metric) {
            Some(id) => *id,
            None => {
                let id = u32::try_from(self.metrics.len()).unwrap_or(u32::MAX);
                self.metrics.push(metric.to_string());
                self.metric_ids.insert(metric.to_string(), id);
                id
            }
        };
        self.series.insert(hash, id);
        true
    }

    /// Takes in a stored window's companion.
    fn load(&mut self, record: &SeriesRecord) {
        for (hash, metric) in &record.new {
            if let Ok(hash) = u64::from_str_radix(hash, 16) {
                self.insert(hash, metric);
            }
        }
        for (metric, samples) in &record.per_metric {
            *self.samples.entry(metric.clone()).or_default() += samples;
        }
    }

    /// Takes in a window just fetched; returns its companion.
    fn add(&mut self, tally: &crate::export::line::Tally) -> SeriesRecord {
        let mut new: Vec<(String, String)> = tally
            .series
            .iter()
            .filter(|(hash, metric)| self.insert(**hash, metric))
            .map(|(hash, metric)| (format!("{hash:016x}"), metric.clone()))
            .collect();
        new.sort();
        for (metric, samples) in &tally.per_metric {
            *self.samples.entry(metric.clone()).or_default() += samples;
        }
        SeriesRecord {
            new,
            per_metric: tally.per_metric.clone(),
        }
    }

    fn per_metric(&self) -> BTreeMap<String, MetricCounts> {
        let mut counts: BTreeMap<String, MetricCounts> = self
            .samples
            .iter()
            .map(|(metric, samples)| {
                (
                    metric.clone(),
                    MetricCounts {
                        series: 0,
                        samples: *samples,
                    },
                )
            })
            .collect();
        for id in self.series.values() {
            if let Some(metric) = self.metrics.get(*id as usize) {
                counts.entry(metric.clone()).or_default().series += 1;
            }
        }
        counts
    }
}

/// A run in progress.
struct Run<'a> {
    plan: &'a ExportPlan,
    client: &'a Client,
    request: Request,
    store: Option<&'a (Objects, String)>,
    spec_hash: String,
    series: SeriesIndex,
    obfuscator: Option<Obfuscator>,
    started: Instant,
    /// Windows this process fetched (for the ETA).
    done_here: u64,
}

impl Run<'_> {
    async fn windows(
        &mut self,
        checkpoint: &mut Checkpoint,
        observer: &mut dyn Observer,
        cancel: &CancellationToken,
    ) -> Result<(), Error> {
        let mut attempt = 0u32;
        // The answers of the next window, asked for while this one is finished.
        let mut ahead: Option<fetch::Answers> = None;
        while let Some(window) = checkpoint.next_window() {
            if cancel.is_cancelled() {
                return Err(Error::Cancelled);
            }
            observer.progress(&self.progress(checkpoint, Some(window)));
            let answers = match ahead.take() {
                Some(answers) if answers.window() == window => answers,
                _ => fetch::Answers::start(self.client, &self.request, window),
            };
            let next = checkpoint
                .windows
                .get(checkpoint.segments.len() + 1)
                .copied();
            match self
                .window(checkpoint, answers, next, cancel)
                .await
                .map(|n| ahead = n)
            {
                Ok(()) => {
                    attempt = 0;
                    self.done_here += 1;
                }
                Err(Error::Fetch(fetch::Error::Cancelled)) => return Err(Error::Cancelled),
                Err(Error::Fetch(fetch::Error::Source(client::Error::Timeout { .. })))
                    if window.halves().is_some() =>
                {
                    if let Some(halves) = window.halves() {
                        checkpoint.split_next(halves);
                        observer.notice(&Notice::WindowSplit(window));
                        self.save(checkpoint).await?;
                    }
                }
                Err(e) if transient(&e) && attempt < self.plan.retries => {
                    attempt += 1;
                    observer.notice(&Notice::Retrying {
                        attempt,
                        error: e.to_string(),
                    });
                    sleep_or_cancel(backoff(attempt), cancel).await?;
                }
                Err(e) => return Err(e),
            }
        }
        observer.progress(&self.progress(checkpoint, None));
        Ok(())
    }

    /// Fetches one window and records it; returns the answers of `next`, asked for once this
    /// window's had arrived.
    async fn window(
        &mut self,
        checkpoint: &mut Checkpoint,
        answers: fetch::Answers,
        next: Option<Window>,
        cancel: &CancellationToken,
    ) -> Result<Option<fetch::Answers>, Error> {
        let window = answers.window();
        let Some(obfuscator) = self.obfuscator.take() else {
            return Err(Error::Fetch(fetch::Error::Compress {
                window: fetch::describe(window),
                message: "the obfuscator was lost with a failed worker".into(),
            }));
        };
        let (segment_key, series_key) = match self.store {
            Some((_, prefix)) => checkpoint::segment_keys(prefix, &self.plan.run_id, window),
            None => (String::new(), String::new()),
        };
        let sink = match self.store {
            Some((objects, _)) => {
                Sink::Segment(Box::new(objects.writer(&segment_key, false).await?))
            }
            None => Sink::Stdout,
        };
        let done = fetch::window(
            self.client,
            &self.request,
            answers,
            next,
            obfuscator,
            sink,
            cancel,
        )
        .await;
        self.obfuscator = done.obfuscator;
        let fetched = done.fetched?;
        let record = self.series.add(&fetched.tally);
        if let Some((objects, _)) = self.store {
            checkpoint::save_series(objects, &series_key, &record).await?;
        }
        checkpoint.segments.push(Segment {
            window,
            key: segment_key,
            size: fetched.stored.as_ref().map_or(0, |s| s.size),
            crc32: fetched.sums.crc32,
            uncompressed: fetched.sums.uncompressed,
            lines: fetched.tally.lines,
            samples: fetched.tally.samples,
            skipped: fetched.tally.skipped,
            new_series: record.new.len() as u64,
            first_ms: fetched.tally.first_ms,
            last_ms: fetched.tally.last_ms,
            series_key,
        });
        self.save(checkpoint).await?;
        Ok(done.next)
    }

    async fn save(&self, checkpoint: &Checkpoint) -> Result<(), Error> {
        if let Some((objects, prefix)) = self.store {
            let key = checkpoint::checkpoint_key(prefix, &self.plan.run_id);
            checkpoint::save(objects, &key, checkpoint).await?;
        }
        Ok(())
    }

    fn progress(&self, checkpoint: &Checkpoint, current: Option<Window>) -> Progress {
        let done = checkpoint.segments.len() as u64;
        let total = checkpoint.windows.len() as u64;
        let eta = (self.done_here > 0).then(|| {
            let per_window = self.started.elapsed() / u32::try_from(self.done_here).unwrap_or(1);
            per_window * u32::try_from(total - done).unwrap_or(u32::MAX)
        });
        Progress {
            windows_done: done,
            windows_total: total,
            method: Some(checkpoint.method),
            current,
            series: self.series.len(),
            samples: checkpoint.samples(),
            bytes: checkpoint.bytes(),
            eta,
            checkpoint: self.store.map(|(_, prefix)| {
                (
                    checkpoint::checkpoint_key(prefix, &self.plan.run_id),
                    self.spec_hash.clone(),
                )
            }),
        }
    }

    /// The bundle's `metadata.json`.
    fn metadata(&mut self, checkpoint: &Checkpoint, now: i64) -> Metadata {
        let plan = self.plan;
        let obfuscated = plan.obfuscation.is_active();
        let mut redact_with = self
            .obfuscator
            .take()
            .or_else(|| Obfuscator::new(plan.key.clone(), plan.obfuscation.clone()).ok());
        let selectors = checkpoint
            .selectors
            .iter()
            .map(|s| match &mut redact_with {
                Some(o) => selector::for_metadata(s, o),
                None => "<redacted>".to_string(),
            })
            .collect();
        let queries = plan
            .queries
            .iter()
            .map(|q| {
                if obfuscated {
                    "<redacted>".into()
                } else {
                    q.clone()
                }
            })
            .collect();
        let first = checkpoint.segments.iter().filter_map(|s| s.first_ms).min();
        let last = checkpoint.segments.iter().filter_map(|s| s.last_ms).max();
        let fingerprint = plan.key.as_ref().map(obfuscate::Key::fingerprint);
        Metadata {
            format_version: metadata::FORMAT_VERSION,
            vctp_version: env!("CARGO_PKG_VERSION").to_string(),
            export_id: plan.run_id.clone(),
            export_date: metadata::rfc3339_ms(now * 1000),
            time_range: metadata::TimeRange::new(plan.range),
            metrics_count: self.series.len(),
            obfuscated,
            source: SourceInfo {
                kind: plan.source.kind.name().to_string(),
                tenant: plan.source.tenant.clone(),
                url: (!obfuscated).then(|| plan.source.url.clone()),
            },
            method: checkpoint.method,
            method_reason: checkpoint.method_reason.clone(),
            window_seconds: plan.window_ms as f64 / 1000.0,
            step_seconds: (checkpoint.method == Method::QueryRange)
                .then_some(plan.step_ms as f64 / 1000.0),
            selectors,
            queries,
            series: self.series.len(),
            samples: checkpoint.samples(),
            skipped_samples: checkpoint.segments.iter().map(|s| s.skipped).sum(),
            first_timestamp_ms: first,
            last_timestamp_ms: last,
            windows: checkpoint.windows.len() as u64,
            split_windows: checkpoint.splits.len() as u64,
            per_metric: self.series.per_metric(),
            obfuscation: ObfuscationInfo {
                ips: plan.obfuscation.ips,
                jobs: plan.obfuscation.jobs,
                labels: plan.obfuscation.labels.clone(),
                drop_labels: plan.obfuscation.drop_labels.clone(),
                ips_in_any_label: plan.obfuscation.ips_in_any_label,
                scheme: plan
                    .obfuscation
                    .needs_key()
                    .then(|| metadata::SCHEME.to_string()),
                key_fingerprint: fingerprint,
            },
        }
    }
}

fn transient(e: &Error) -> bool {
    match e {
        Error::Fetch(fetch::Error::Source(e)) | Error::Source(e) => e.is_transient(),
        // An answer cut short (the connection dropped mid-body) reads as an I/O error.
        Error::Fetch(fetch::Error::Answer {
            source: crate::export::line::Error::Read(_),
            ..
        }) => true,
        Error::Fetch(fetch::Error::Store(_)) | Error::Store(_) => true,
        _ => false,
    }
}

/// 1 s, 2 s, 4 s … 30 s.
fn backoff(attempt: u32) -> Duration {
    Duration::from_secs(1u64 << attempt.saturating_sub(1).min(5)).min(MAX_BACKOFF)
}

async fn sleep_or_cancel(wait: Duration, cancel: &CancellationToken) -> Result<(), Error> {
    tokio::select! {
        () = tokio::time::sleep(wait) => Ok(()),
        () = cancel.cancelled() => Err(Error::Cancelled),
    }
}

/// `attempt` with up to `retries` more tries on transient errors.
async fn with_retries<T, F, Fut>(
    retries: u32,
    observer: &mut dyn Observer,
    mut attempt: F,
) -> Result<T, client::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, client::Error>>,
{
    let mut tries = 0;
    loop {
        match attempt().await {
            Err(e) if e.is_transient() && tries < retries => {
                tries += 1;
                observer.notice(&Notice::Retrying {
                    attempt: tries,
                    error: e.to_string(),
                });
                tokio::time::sleep(backoff(tries)).await;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_thirty_seconds() {
        let waits: Vec<u64> = (1..=7).map(|a| backoff(a).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30]);
    }

    #[test]
    fn the_series_index_counts_each_series_once_across_windows() {
        let mut index = SeriesIndex::default();
        let mut tally = crate::export::line::Tally::default();
        tally.series.insert(1, "up".into());
        tally.series.insert(2, "up".into());
        tally.per_metric.insert("up".into(), 10);
        let first = index.add(&tally);
        assert_eq!(first.new.len(), 2);
        tally.series.insert(3, "temp".into());
        let second = index.add(&tally);
        assert_eq!(
            second.new,
            vec![(format!("{:016x}", 3), "temp".to_string())]
        );
        let mut resumed = SeriesIndex::default();
        resumed.load(&first);
        resumed.load(&second);
        assert_eq!(resumed.len(), 3);
        assert_eq!(resumed.per_metric(), index.per_metric());
        assert_eq!(
            index.per_metric()["up"],
            MetricCounts {
                series: 2,
                samples: 20
            }
        );
    }
}
