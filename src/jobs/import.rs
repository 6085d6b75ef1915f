//! One import of a bundle into VictoriaMetrics (`vctp import-metrics`): get the bundle (a
//! file, or from object storage where its manifest must exist) → check its SHA-256 against
//! the sidecar, the manifest or `--sha256` before anything is written → read `metrics.jsonl`
//! (CRC-checked by the ZIP reader, counts checked against the metadata), move and trim the
//! samples, and send line-aligned gzip chunks, retrying transient failures and saving the
//! position after each acknowledged chunk → verify: re-export what was imported and compare
//! every series with what was sent.

use crate::export::client::{self, Client, Endpoint};
use crate::export::fetch;
use crate::export::import::{self as samples, Comparison, Ledger, Transform};
use crate::export::metadata::{self, Manifest, Metadata};
use crate::export::reader::{self, Bundle};
use crate::export::selector;
use crate::export::windows::Window;
use crate::objstore::{self, Objects};
use bytes::Bytes;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Import requests in flight at once.
const IN_FLIGHT: usize = 2;
/// Metric names per verification request (each a `match[]`).
const NAMES_PER_REQUEST: usize = 50;
/// How far before now `--shift-to-now` puts the newest sample: VictoriaMetrics may not show
/// the last seconds yet.
const SHIFT_MARGIN_MS: i64 = 60_000;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "{key} has no manifest ({manifest}) in {url}: the bundle is incomplete (its export did not finish), refusing it"
    )]
    NoManifest {
        url: String,
        key: String,
        manifest: String,
    },
    #[error(
        "no SHA-256 to check {bundle} against (no {bundle}.sha256 sidecar, no manifest, no --sha256); pass --allow-unverified to import it anyway"
    )]
    NoChecksum { bundle: String },
    #[error(
        "{bundle} is corrupt or not the bundle expected: its SHA-256 is {found}, the {from} says {expected}; nothing was imported"
    )]
    ChecksumMismatch {
        bundle: String,
        from: &'static str,
        expected: String,
        found: String,
    },
    #[error(transparent)]
    Bundle(#[from] reader::Error),
    #[error("{bundle}: metadata.json is not readable: {problem}")]
    Metadata { bundle: String, problem: String },
    #[error("{bundle}: metrics.jsonl line {line}: {problem}")]
    Line {
        bundle: String,
        line: u64,
        problem: String,
    },
    #[error(
        "{bundle}: metrics.jsonl holds {found} {what}, its metadata says {expected}: the bundle is inconsistent"
    )]
    Counts {
        bundle: String,
        what: &'static str,
        expected: u64,
        found: u64,
    },
    #[error(transparent)]
    Store(#[from] objstore::Error),
    #[error(transparent)]
    Target(#[from] client::Error),
    #[error(transparent)]
    Fetch(#[from] fetch::Error),
    #[error("the import state {} is not usable: {problem}", path.display())]
    State { path: PathBuf, problem: String },
    #[error(
        "verification failed: {missing} series missing and {different} with other samples than sent, e.g. {examples}"
    )]
    Verification {
        missing: usize,
        different: usize,
        examples: String,
    },
    #[error("the import was cancelled; run it again with --resume to continue")]
    Cancelled,
}

impl Error {
    pub fn reason(&self) -> &'static str {
        match self {
            Error::NoManifest { .. } => "BundleIncomplete",
            Error::NoChecksum { .. } => "NoChecksum",
            Error::ChecksumMismatch { .. } => "ChecksumMismatch",
            Error::Bundle(e) => e.reason(),
            Error::Metadata { .. } | Error::Line { .. } | Error::Counts { .. } => {
                "BundleInconsistent"
            }
            Error::Store(e) => e.reason(),
            Error::Target(e) => e.reason(),
            Error::Fetch(e) => e.reason(),
            Error::State { .. } => "ImportStateUnusable",
            Error::Verification { .. } => "VerificationFailed",
            Error::Cancelled => "Cancelled",
        }
    }

    /// The bundle, its checksum or the request is wrong (exit status 2); else the import
    /// failed and may work when run again.
    pub fn is_bad_input(&self) -> bool {
        match self {
            Error::NoManifest { .. }
            | Error::NoChecksum { .. }
            | Error::ChecksumMismatch { .. }
            | Error::Bundle(_)
            | Error::Metadata { .. }
            | Error::Line { .. }
            | Error::Counts { .. }
            | Error::State { .. } => true,
            Error::Target(e) => e.is_bad_input(),
            _ => false,
        }
    }
}

/// Where the bundle is.
pub enum Source {
    File(PathBuf),
    Store { objects: Objects, key: String },
}

/// How the samples' times move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shift {
    None,
    /// The newest sample to one minute before now, in whole seconds.
    ToNow,
    Ms(i64),
}

/// Samples older than the target keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trim {
    /// Read the retention from the target; without one, send everything.
    Auto,
    Off,
    Retention(Duration),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    Exact,
    Counts,
    None,
}

/// One import.
pub struct Plan {
    pub source: Source,
    pub sha256: Option<String>,
    pub allow_unverified: bool,
    pub target: Endpoint,
    /// Where a cluster target is read (retention, verification); else the target itself.
    pub select: Option<Endpoint>,
    pub chunk_bytes: usize,
    pub shift: Shift,
    pub trim: Trim,
    pub extra_labels: Vec<(String, String)>,
    pub resume: bool,
    /// Where the position is kept [default: beside the bundle file].
    pub state_file: Option<PathBuf>,
    pub verify: Verify,
    pub retries: u32,
}

/// Something worth telling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    Verified {
        from: &'static str,
    },
    Resumed {
        chunks: u64,
        lines: u64,
    },
    NoRetention,
    Retrying {
        chunk: u64,
        attempt: u32,
        error: String,
    },
    /// A chunk's answer was lost after it was sent; on a target without deduplication its
    /// samples may now be stored twice.
    MaybeDuplicated {
        chunk: u64,
    },
    Verifying,
}

pub trait Observer: Send {
    fn chunk(&mut self, done: &State);
    fn notice(&mut self, notice: &Notice);
}

/// The position of an import, saved after each acknowledged chunk.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    pub bundle_sha256: String,
    pub target: String,
    pub shift_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cutoff_ms: Option<i64>,
    pub chunks: u64,
    pub lines: u64,
    pub samples: u64,
    pub trimmed: u64,
    pub bytes: u64,
    /// Chunks whose answer was lost after sending (possibly stored twice).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uncertain_chunks: Vec<u64>,
}

/// What an import did.
#[derive(Debug)]
pub struct Outcome {
    pub state: State,
    pub metadata: Metadata,
    pub sha256: Option<String>,
    pub resumed_chunks: u64,
    pub verification: Option<Comparison>,
}

/// Runs an import (see the module documentation).
pub async fn run(
    plan: Plan,
    observer: &mut dyn Observer,
    cancel: &CancellationToken,
) -> Result<Outcome, Error> {
    let temp = tempfile::tempdir().map_err(|e| Error::State {
        path: std::env::temp_dir(),
        problem: e.to_string(),
    })?;
    let (path, expected, state_path) = locate(&plan, temp.path()).await?;
    let name = path.display().to_string();
    let found = match &expected {
        Some((sha256, from)) => {
            let found = sha256_of(&path).await?;
            if !found.eq_ignore_ascii_case(sha256) {
                return Err(Error::ChecksumMismatch {
                    bundle: name,
                    from,
                    expected: sha256.clone(),
                    found,
                });
            }
            observer.notice(&Notice::Verified { from });
            Some(found)
        }
        None if plan.allow_unverified => None,
        None => return Err(Error::NoChecksum { bundle: name }),
    };
    let mut bundle = Bundle::open(&path)?;
    let metadata = read_metadata(&mut bundle, &name)?;
    drop(bundle);

    let target = Client::new(plan.target.clone())?;
    let reader = match &plan.select {
        Some(select) => Client::new(select.clone())?,
        None => Client::new(plan.target.clone())?,
    };
    let target_name = format!(
        "{}|{}",
        plan.target.url,
        plan.target.tenant.clone().unwrap_or_default()
    );
    let bundle_sha256 = match &found {
        Some(sha256) => sha256.clone(),
        None => sha256_of(&path).await?,
    };
    let mut state = match (plan.resume, read_state(&state_path)?) {
        (true, Some(saved)) => {
            if saved.bundle_sha256 != bundle_sha256 || saved.target != target_name {
                return Err(Error::State {
                    path: state_path,
                    problem: "it belongs to another bundle or target; remove it or drop --resume"
                        .into(),
                });
            }
            observer.notice(&Notice::Resumed {
                chunks: saved.chunks,
                lines: saved.lines,
            });
            saved
        }
        _ => State {
            bundle_sha256,
            target: target_name,
            shift_ms: shift_ms(plan.shift, &metadata)?,
            cutoff_ms: cutoff_ms(plan.trim, &reader, observer).await?,
            ..State::default()
        },
    };
    let resumed_chunks = state.chunks;
    // A cutoff before the oldest sample trims nothing: the lines then go out as they are.
    let cutoff_ms = state.cutoff_ms.filter(|cutoff| {
        metadata
            .first_timestamp_ms
            .is_none_or(|first| first.saturating_add(state.shift_ms) < *cutoff)
    });
    let transform = Transform {
        shift_ms: state.shift_ms,
        cutoff_ms,
    };

    send(
        &plan,
        &path,
        &name,
        &metadata,
        &target,
        transform,
        &mut state,
        &state_path,
        observer,
        cancel,
    )
    .await?;
    // Done: a later run starts afresh.
    let _ = std::fs::remove_file(&state_path);

    let verification =
        match plan.verify {
            Verify::None => None,
            mode => {
                observer.notice(&Notice::Verifying);
                reader.force_flush().await;
                let comparison = verify(
                    &path,
                    &name,
                    &metadata,
                    &reader,
                    &plan.extra_labels,
                    transform,
                    mode == Verify::Exact,
                )
                .await?;
                if !comparison.is_exact() {
                    let examples: Vec<String> =
                        comparison
                            .missing_series
                            .iter()
                            .take(3)
                            .map(|s| format!("{s} missing"))
                            .chain(comparison.different.iter().take(3).map(|(s, sent, got)| {
                                format!("{s}: {sent} samples sent, {got} found")
                            }))
                            .collect();
                    return Err(Error::Verification {
                        missing: comparison.missing_series.len(),
                        different: comparison.different.len(),
                        examples: examples.join("; "),
                    });
                }
                Some(comparison)
            }
        };
    Ok(Outcome {
        state,
        metadata,
        sha256: found,
        resumed_chunks,
        verification,
    })
}

/// The bundle file, the SHA-256 it must have (and where that came from), and the state file.
async fn locate(
    plan: &Plan,
    temp: &Path,
) -> Result<(PathBuf, Option<(String, &'static str)>, PathBuf), Error> {
    let given = plan
        .sha256
        .clone()
        .map(|s| (s.trim().to_lowercase(), "--sha256"));
    match &plan.source {
        Source::File(path) => {
            let expected = match given {
                Some(given) => Some(given),
                None => local_checksum(path),
            };
            let state = plan
                .state_file
                .clone()
                .unwrap_or_else(|| PathBuf::from(format!("{}.import-state.json", path.display())));
            Ok((path.clone(), expected, state))
        }
        Source::Store { objects, key } => {
            let manifest_key = metadata::manifest_key(key);
            let manifest: Manifest = match objects.get(&manifest_key).await {
                Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| Error::Metadata {
                    bundle: key.clone(),
                    problem: format!("the manifest {manifest_key} is not readable: {e}"),
                })?,
                Err(objstore::Error::NotFound { .. }) => {
                    return Err(Error::NoManifest {
                        url: objects.url().to_string(),
                        key: key.clone(),
                        manifest: manifest_key,
                    });
                }
                Err(e) => return Err(e.into()),
            };
            let file_name = key.rsplit('/').next().unwrap_or("bundle.zip");
            let path = temp.join(file_name);
            objects.get_to_file(key, &path).await?;
            let expected = match given {
                Some(given) => Some(given),
                None => match objects.get(&format!("{key}.sha256")).await {
                    Ok(sidecar) => first_word(&sidecar).map(|s| (s, "sidecar")),
                    Err(objstore::Error::NotFound { .. }) => None,
                    Err(e) => return Err(e.into()),
                }
                .or(Some((manifest.sha256.to_lowercase(), "manifest"))),
            };
            let state = plan
                .state_file
                .clone()
                .unwrap_or_else(|| PathBuf::from(format!("{file_name}.import-state.json")));
            Ok((path, expected, state))
        }
    }
}

/// The SHA-256 a local bundle should have: its `.sha256` sidecar, else the manifest beside
/// it.
pub(super) fn local_checksum(path: &Path) -> Option<(String, &'static str)> {
    let text = path.display().to_string();
    if let Ok(sidecar) = std::fs::read(format!("{text}.sha256"))
        && let Some(sha256) = first_word(&sidecar)
    {
        return Some((sha256, "sidecar"));
    }
    let manifest = std::fs::read(metadata::manifest_key(&text)).ok()?;
    let manifest: Manifest = serde_json::from_slice(&manifest).ok()?;
    Some((manifest.sha256.to_lowercase(), "manifest"))
}

fn first_word(bytes: &[u8]) -> Option<String> {
    String::from_utf8_lossy(bytes)
        .split_whitespace()
        .next()
        .map(str::to_lowercase)
}

async fn sha256_of(path: &Path) -> Result<String, Error> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || reader::sha256_file(&path))
        .await
        .map_err(|e| Error::State {
            path: PathBuf::new(),
            problem: e.to_string(),
        })?
        .map(|(sha256, _)| sha256)
        .map_err(Error::Bundle)
}

pub(super) fn read_metadata(bundle: &mut Bundle, name: &str) -> Result<Metadata, Error> {
    let bytes = bundle.read_small(metadata::METADATA_ENTRY)?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Metadata {
        bundle: name.to_string(),
        problem: e.to_string(),
    })
}

fn read_state(path: &Path) -> Result<Option<State>, Error> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::State {
                path: path.to_path_buf(),
                problem: e.to_string(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::State {
            path: path.to_path_buf(),
            problem: e.to_string(),
        }),
    }
}

/// Writes the state beside its final name and renames it: a crash leaves the old or the new.
fn write_state(path: &Path, state: &State) -> Result<(), Error> {
    let failed = |problem: String| Error::State {
        path: path.to_path_buf(),
        problem,
    };
    let json = serde_json::to_vec_pretty(state).map_err(|e| failed(e.to_string()))?;
    let temp = PathBuf::from(format!("{}.tmp", path.display()));
    std::fs::write(&temp, json).map_err(|e| failed(e.to_string()))?;
    std::fs::rename(&temp, path).map_err(|e| failed(e.to_string()))
}

fn shift_ms(shift: Shift, metadata: &Metadata) -> Result<i64, Error> {
    Ok(match shift {
        Shift::None => 0,
        Shift::Ms(ms) => ms,
        Shift::ToNow => {
            let Some(last) = metadata.last_timestamp_ms else {
                return Ok(0);
            };
            let target = chrono::Utc::now().timestamp_millis() - SHIFT_MARGIN_MS;
            // Whole seconds, so samples on a grid stay on it.
            (target - last).div_euclid(1000) * 1000
        }
    })
}

async fn cutoff_ms(
    trim: Trim,
    reader: &Client,
    observer: &mut dyn Observer,
) -> Result<Option<i64>, Error> {
    let retention = match trim {
        Trim::Off => return Ok(None),
        Trim::Retention(retention) => retention,
        Trim::Auto => match reader.retention().await? {
            Some(retention) => retention,
            None => {
                observer.notice(&Notice::NoRetention);
                return Ok(None);
            }
        },
    };
    let retention_ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
    Ok(Some(
        chrono::Utc::now()
            .timestamp_millis()
            .saturating_sub(retention_ms),
    ))
}

/// One gzip chunk ready to send.
struct Chunk {
    gzipped: Vec<u8>,
    lines: u64,
    samples: u64,
    trimmed: u64,
    bytes: u64,
}

/// Reads, transforms and sends the lines not sent yet.
#[allow(clippy::too_many_arguments)]
async fn send(
    plan: &Plan,
    path: &Path,
    name: &str,
    metadata: &Metadata,
    target: &Client,
    transform: Transform,
    state: &mut State,
    state_path: &Path,
    observer: &mut dyn Observer,
    cancel: &CancellationToken,
) -> Result<(), Error> {
    let (to_sender, mut chunks) = mpsc::channel::<Result<Chunk, Error>>(2);
    let skip_lines = state.lines;
    let chunk_bytes = plan.chunk_bytes;
    let (path, name_owned, expected_samples) =
        (path.to_path_buf(), name.to_string(), metadata.samples);
    let reader = tokio::task::spawn_blocking(move || {
        let result = read_chunks(
            &path,
            &name_owned,
            skip_lines,
            transform,
            chunk_bytes,
            expected_samples,
            &to_sender,
        );
        if let Err(e) = result {
            let _ = to_sender.blocking_send(Err(e));
        }
    });
    // Up to IN_FLIGHT requests at once, so the target parses one chunk while the next
    // arrives; state advances over acknowledged chunks in order only.
    let mut in_flight = futures_util::stream::FuturesOrdered::new();
    let mut next = state.chunks;
    let mut reading = true;
    let mut outcome = Ok(());
    loop {
        while reading && in_flight.len() < IN_FLIGHT {
            match chunks.recv().await {
                Some(Ok(mut chunk)) => {
                    next += 1;
                    let number = next;
                    let body = Bytes::from(std::mem::take(&mut chunk.gzipped));
                    in_flight.push_back(async move {
                        let sent = send_chunk(plan, target, body, number, cancel).await;
                        (number, chunk, sent)
                    });
                }
                Some(Err(e)) => {
                    outcome = Err(e);
                    reading = false;
                }
                None => reading = false,
            }
        }
        let Some((number, chunk, (sent, notices))) = in_flight.next().await else {
            break;
        };
        for notice in &notices {
            if let Notice::MaybeDuplicated { chunk } = notice {
                state.uncertain_chunks.push(*chunk);
            }
            observer.notice(notice);
        }
        if let Err(e) = sent {
            outcome = Err(e);
            break;
        }
        state.chunks = number;
        state.lines += chunk.lines;
        state.samples += chunk.samples;
        state.trimmed += chunk.trimmed;
        state.bytes += chunk.bytes;
        write_state(state_path, state)?;
        observer.chunk(state);
        if outcome.is_err() && in_flight.is_empty() {
            break;
        }
    }
    drop(chunks);
    let _ = reader.await;
    outcome
}

/// Sends one chunk, retrying transient failures (a 4xx other than 429 is final); returns
/// the outcome and what is worth telling about it.
async fn send_chunk(
    plan: &Plan,
    target: &Client,
    body: Bytes,
    number: u64,
    cancel: &CancellationToken,
) -> (Result<(), Error>, Vec<Notice>) {
    let mut notices = Vec::new();
    let mut attempt = 0;
    loop {
        let sent = tokio::select! {
            sent = target.import(body.clone(), &plan.extra_labels) => sent,
            () = cancel.cancelled() => return (Err(Error::Cancelled), notices),
        };
        match sent {
            Ok(()) => return (Ok(()), notices),
            Err(e) if e.is_transient() && attempt < plan.retries => {
                let maybe_sent = matches!(
                    e,
                    client::Error::ConnectionLost { .. } | client::Error::Timeout { .. }
                );
                if maybe_sent && !notices.contains(&Notice::MaybeDuplicated { chunk: number }) {
                    notices.push(Notice::MaybeDuplicated { chunk: number });
                }
                attempt += 1;
                notices.push(Notice::Retrying {
                    chunk: number,
                    attempt,
                    error: e.to_string(),
                });
                let wait =
                    Duration::from_secs(1u64 << (attempt - 1).min(5)).min(Duration::from_secs(30));
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = cancel.cancelled() => return (Err(Error::Cancelled), notices),
                }
            }
            Err(e) => return (Err(e.into()), notices),
        }
    }
}

/// The blocking side: `metrics.jsonl` line by line, the first `skip` lines skipped, the rest
/// transformed and gathered into gzip chunks of about `chunk_bytes`. At the end the samples
/// read are checked against the metadata.
fn read_chunks(
    path: &Path,
    name: &str,
    skip: u64,
    transform: Transform,
    chunk_bytes: usize,
    expected_samples: u64,
    to_sender: &mpsc::Sender<Result<Chunk, Error>>,
) -> Result<(), Error> {
    let mut bundle = Bundle::open(path)?;
    let mut lines = std::io::BufReader::with_capacity(1 << 20, bundle.metrics()?);
    let mut text = Vec::new();
    let mut out = Vec::with_capacity(chunk_bytes + (1 << 20));
    let mut transformer = samples::Transformer::new(transform);
    let (mut number, mut read_samples) = (0u64, 0u64);
    let mut chunk = Chunk {
        gzipped: Vec::new(),
        lines: 0,
        samples: 0,
        trimmed: 0,
        bytes: 0,
    };
    let line_error = |line, problem| Error::Line {
        bundle: name.to_string(),
        line,
        problem,
    };
    loop {
        text.clear();
        let n = (&mut lines)
            .take(crate::export::line::MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut text)
            .map_err(|e| Error::Bundle(reader::Error::from_entry_io(metadata::METRICS_ENTRY, e)))?;
        if n == 0 {
            break;
        }
        number += 1;
        let line = text.strip_suffix(b"\n").unwrap_or(&text);
        if line.is_empty() {
            continue;
        }
        let before = out.len();
        let (kept, dropped) = transformer
            .line(line, &mut out)
            .map_err(|problem| line_error(number, problem))?;
        read_samples += kept + dropped;
        if number <= skip {
            out.truncate(before);
            continue;
        }
        chunk.lines += 1;
        chunk.samples += kept;
        chunk.trimmed += dropped;
        if out.len() >= chunk_bytes {
            chunk.bytes = out.len() as u64;
            chunk.gzipped = gzip(&out);
            out.clear();
            let full = std::mem::replace(
                &mut chunk,
                Chunk {
                    gzipped: Vec::new(),
                    lines: 0,
                    samples: 0,
                    trimmed: 0,
                    bytes: 0,
                },
            );
            if to_sender.blocking_send(Ok(full)).is_err() {
                return Ok(());
            }
        }
    }
    if read_samples != expected_samples {
        return Err(Error::Counts {
            bundle: name.to_string(),
            what: "samples",
            expected: expected_samples,
            found: read_samples,
        });
    }
    if chunk.lines > 0 {
        chunk.bytes = out.len() as u64;
        chunk.gzipped = gzip(&out);
        let _ = to_sender.blocking_send(Ok(chunk));
    }
    Ok(())
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(bytes.len() / 4),
        flate2::Compression::fast(),
    );
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
}

/// Re-exports the imported series from the target and compares them with the bundle's (as
/// sent: moved, trimmed, with the extra labels).
async fn verify(
    path: &Path,
    name: &str,
    metadata: &Metadata,
    reader: &Client,
    extra_labels: &[(String, String)],
    transform: Transform,
    exact: bool,
) -> Result<Comparison, Error> {
    let (path_owned, name_owned, extra) =
        (path.to_path_buf(), name.to_string(), extra_labels.to_vec());
    let sent = tokio::task::spawn_blocking(move || {
        sent_ledger(&path_owned, &name_owned, transform, &extra)
    })
    .await
    .map_err(|e| Error::State {
        path: PathBuf::new(),
        problem: e.to_string(),
    })??;
    let (Some(first), Some(last)) = (metadata.first_timestamp_ms, metadata.last_timestamp_ms)
    else {
        return Ok(samples::compare(&sent, &Ledger::default(), exact));
    };
    let start = (first + transform.shift_ms)
        .max(transform.cutoff_ms.unwrap_or(i64::MIN))
        .max(0);
    let window = Window {
        start_ms: start,
        end_ms: (last + transform.shift_ms + 1).max(start + 1),
    };
    let filter = (!extra_labels.is_empty()).then(|| {
        let matchers: Vec<String> = extra_labels
            .iter()
            .map(|(k, v)| format!("{k}={}", selector::quote(v)))
            .collect();
        format!("{{{}}}", matchers.join(","))
    });
    let names: Vec<&String> = metadata.per_metric.keys().collect();
    let mut found = Ledger::default();
    for batch in names.chunks(NAMES_PER_REQUEST) {
        let selectors: Vec<String> = batch
            .iter()
            .map(|n| format!("{{__name__={}}}", selector::quote(n)))
            .collect();
        let body = reader.export(&selectors, filter.as_deref(), window).await?;
        found = fetch::each_line(body, found, |found, line| {
            found.add_line(line, &[]).map(drop)
        })
        .await?;
    }
    Ok(samples::compare(&sent, &found, exact))
}

fn sent_ledger(
    path: &Path,
    name: &str,
    transform: Transform,
    extra_labels: &[(String, String)],
) -> Result<Ledger, Error> {
    let mut bundle = Bundle::open(path)?;
    let mut lines = std::io::BufReader::with_capacity(1 << 20, bundle.metrics()?);
    let mut ledger = Ledger::default();
    let mut text = Vec::new();
    let mut out = Vec::new();
    let mut number = 0u64;
    let mut transformer = samples::Transformer::new(transform);
    loop {
        text.clear();
        if lines
            .read_until(b'\n', &mut text)
            .map_err(|e| Error::Bundle(reader::Error::from_entry_io(metadata::METRICS_ENTRY, e)))?
            == 0
        {
            return Ok(ledger);
        }
        number += 1;
        let line = text.strip_suffix(b"\n").unwrap_or(&text);
        if line.is_empty() {
            continue;
        }
        out.clear();
        let line_error = |problem| Error::Line {
            bundle: name.to_string(),
            line: number,
            problem,
        };
        transformer.line(line, &mut out).map_err(line_error)?;
        if let Some(kept) = out.strip_suffix(b"\n") {
            ledger.add_line(kept, extra_labels).map_err(line_error)?;
        }
    }
}
