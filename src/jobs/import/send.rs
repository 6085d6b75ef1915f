//! Sending: `metrics.jsonl` read line by line on a blocking thread, moved and trimmed,
//! gathered into gzip chunks and sent with retries; the position is saved after each
//! acknowledged chunk so that `--resume` continues from it.

use super::{Error, ImportPlan, Notice, Observer, State};
use crate::export::client::{self, Client};
use crate::export::import::{self as samples, Transform};
use crate::export::metadata::{self, Metadata};
use crate::export::reader::{self, Bundle};
use bytes::Bytes;
use futures_util::StreamExt;
use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Import requests in flight at once.
const IN_FLIGHT: usize = 2;

pub(super) fn read_state(path: &Path) -> Result<Option<State>, Error> {
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
pub(super) async fn send(
    plan: &ImportPlan,
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
    plan: &ImportPlan,
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
