//! One import of a bundle into VictoriaMetrics (`vctp import-metrics`): get the bundle (a
//! file, or from object storage where its manifest must exist) → check its SHA-256 against
//! the sidecar, the manifest or `--sha256` before anything is written → read `metrics.jsonl`
//! (CRC-checked by the ZIP reader, counts checked against the metadata), move and trim the
//! samples, and send line-aligned gzip chunks, retrying transient failures and saving the
//! position after each acknowledged chunk → verify: re-export what was imported and compare
//! every series with what was sent.

mod locate;
mod send;
mod verify;

use crate::export::client::{self, Client, Endpoint};
use crate::export::fetch;
use crate::export::import::{Comparison, Transform};
use crate::export::metadata::Metadata;
use crate::export::reader::{self, Bundle};
use crate::objstore::{self, Objects};
pub(super) use locate::{local_checksum, read_metadata};
use locate::{locate, sha256_of};
use send::{read_state, send};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use verify::verify;

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
pub struct ImportPlan {
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
    plan: ImportPlan,
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
