//! One window of an export, from the source's answer to a stored segment (or standard
//! output), streaming: the answer's chunks go through a bounded channel to a blocking
//! thread that decompresses, rewrites ([`super::line`]) and compresses them
//! ([`super::segment`]); the compressed bytes come back through another bounded channel to
//! the object store's multipart writer. Memory holds a few chunks, never the window.
//!
//! A failure anywhere drops the channels, which stops the other side; the caller aborts the
//! segment's upload, so a failed window leaves nothing behind, and retries it whole.

use super::client::{self, Body, Client};
use super::line::{self, Rewriter, Tally};
use super::obfuscate::Obfuscator;
use super::segment::{self, Encoder, Sums};
use super::windows::Window;
use crate::objstore::{self, ObjectWriter};
use bytes::Bytes;
use futures_util::StreamExt;
use std::io::{Read, Write};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Chunks in flight between the network, the worker and the store.
const CHANNEL_DEPTH: usize = 8;
/// Bytes of rewritten or compressed output gathered before they are passed on.
const FLUSH_BYTES: usize = 1 << 20;
/// Bytes read from the (decompressed) answer at a time.
const READ_BYTES: usize = 256 * 1024;
/// Bytes of the answer handed to the worker at a time.
const HANDOFF_BYTES: usize = 128 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Source(#[from] client::Error),
    #[error("the answer for {window} is not valid: {source}")]
    Answer { window: String, source: line::Error },
    #[error("failed to compress {window}: {message}")]
    Compress { window: String, message: String },
    #[error(transparent)]
    Store(#[from] objstore::Error),
    #[error("failed to write to standard output: {0}")]
    Stdout(std::io::Error),
    #[error("cancelled")]
    Cancelled,
}

impl Error {
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Source(e) => e.reason(),
            Error::Answer { source, .. } => source.reason(),
            Error::Compress { .. } => "CompressFailed",
            Error::Store(e) => e.reason(),
            Error::Stdout(_) => "StdoutFailed",
            Error::Cancelled => "Cancelled",
        }
    }
}

/// How a window's series are asked for.
#[derive(Debug, Clone)]
pub enum Request {
    /// `/api/v1/export` of these selectors, AND-ed with a filter.
    Export {
        selectors: Vec<String>,
        filter: Option<String>,
    },
    /// `/api/v1/query_range` of each query at `step_ms`, AND-ed with a filter (VictoriaMetrics
    /// `extra_filters[]`; for Prometheus the filter is already in the queries).
    QueryRange {
        queries: Vec<String>,
        filter: Option<String>,
        step_ms: i64,
    },
}

/// Where a window's lines go.
pub enum Sink {
    Segment(Box<ObjectWriter>),
    Stdout,
}

/// What a window gave.
#[derive(Debug)]
pub struct Fetched {
    pub tally: Tally,
    pub sums: Sums,
    /// The segment, when written to the store.
    pub stored: Option<objstore::Stored>,
}

/// One answer's worth of messages to the worker.
enum Message {
    Start { gzip: bool },
    Chunk(Bytes),
    End,
}

/// The answers for one window, on their way: the requests run in a task of their own that
/// hands their bodies on in pieces.
pub struct Answers {
    window: Window,
    messages: mpsc::Receiver<Message>,
    task: tokio::task::JoinHandle<Result<(), Error>>,
}

impl Answers {
    /// Starts asking for `window`.
    pub fn start(client: &Client, request: &Request, window: Window) -> Answers {
        let (to_worker, messages) = mpsc::channel(CHANNEL_DEPTH);
        let (client, request) = (client.clone(), request.clone());
        let task = tokio::spawn(async move { produce(&client, &request, window, to_worker).await });
        Answers {
            window,
            messages,
            task,
        }
    }

    pub fn window(&self) -> Window {
        self.window
    }
}

impl Drop for Answers {
    /// Answers nobody reads (a retry, a split, a cancellation) stop their requests.
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What [`window`] gives back: the obfuscator (its cache serves the next window) unless the
/// worker thread died, the outcome, and the answers for the next window when they were asked
/// for.
pub struct Done {
    pub obfuscator: Option<Obfuscator>,
    pub fetched: Result<Fetched, Error>,
    pub next: Option<Answers>,
}

/// Fetches the window of `answers` into `sink`. Once its answers have all arrived (while the
/// worker still rewrites and compresses them) the answers for `next` are asked for, so the
/// server works on the next window meanwhile. On error a segment's upload is aborted.
pub async fn window(
    client: &Client,
    request: &Request,
    mut answers: Answers,
    next: Option<Window>,
    obfuscator: Obfuscator,
    sink: Sink,
    cancel: &CancellationToken,
) -> Done {
    let label = describe(answers.window);
    let (to_store, mut from_worker) = mpsc::channel::<Vec<u8>>(CHANNEL_DEPTH);
    let (mut writer, stdout) = match sink {
        Sink::Segment(writer) => (Some(writer), false),
        Sink::Stdout => (None, true),
    };
    let mode = match request {
        Request::Export { .. } => Mode::Lines,
        Request::QueryRange { .. } => Mode::QueryRange,
    };
    let worker_label = label.clone();
    let (_, dead) = mpsc::channel(1);
    let from_network = std::mem::replace(&mut answers.messages, dead);
    let worker = tokio::task::spawn_blocking(move || {
        let mut obfuscator = obfuscator;
        let result = work(
            mode,
            from_network,
            &mut obfuscator,
            if stdout {
                Out::Stdout
            } else {
                Out::Channel(to_store)
            },
            &worker_label,
        );
        (obfuscator, result)
    });

    let mut next_answers = None;
    let produce = async {
        let produced = match (&mut answers.task).await {
            Ok(produced) => produced,
            Err(e) => Err(Error::Compress {
                window: label.clone(),
                message: e.to_string(),
            }),
        };
        if produced.is_ok() {
            next_answers = next.map(|next| Answers::start(client, request, next));
        }
        produced
    };
    let consume = async {
        while let Some(bytes) = from_worker.recv().await {
            if let Some(writer) = writer.as_mut() {
                writer.write(Bytes::from(bytes)).await?;
            }
        }
        Ok::<(), Error>(())
    };
    let flowed = tokio::select! {
        flowed = async { tokio::join!(produce, consume) } => Some(flowed),
        () = cancel.cancelled() => None,
    };
    drop(answers);
    let (obfuscator, worked) = match worker.await {
        Ok(done) => done,
        Err(e) => {
            // The worker panicked: its obfuscator is lost with it.
            if let Some(writer) = writer {
                writer.abort().await;
            }
            return Done {
                obfuscator: None,
                fetched: Err(Error::Compress {
                    window: label,
                    message: e.to_string(),
                }),
                next: None,
            };
        }
    };
    let outcome = match flowed {
        None => Err(Error::Cancelled),
        // The network side's error explains a worker that saw its input end early.
        Some((Err(e), _)) | Some((Ok(()), Err(e))) => Err(e),
        Some((Ok(()), Ok(()))) => worked,
    };
    let fetched = match (outcome, writer) {
        (Ok((tally, sums)), Some(writer)) => {
            writer
                .finish()
                .await
                .map_err(Error::from)
                .map(|stored| Fetched {
                    tally,
                    sums,
                    stored: Some(stored),
                })
        }
        (Ok((tally, sums)), None) => Ok(Fetched {
            tally,
            sums,
            stored: None,
        }),
        (Err(e), writer) => {
            if let Some(writer) = writer {
                writer.abort().await;
            }
            Err(e)
        }
    };
    Done {
        obfuscator: Some(obfuscator),
        next: if fetched.is_ok() { next_answers } else { None },
        fetched,
    }
}

/// Sends the answers of `request` for `window` to the worker.
async fn produce(
    client: &Client,
    request: &Request,
    window: Window,
    to_worker: mpsc::Sender<Message>,
) -> Result<(), Error> {
    match request {
        Request::Export { selectors, filter } => {
            let body = client.export(selectors, filter.as_deref(), window).await?;
            forward(body, &to_worker).await
        }
        Request::QueryRange {
            queries,
            filter,
            step_ms,
        } => {
            for query in queries {
                for points in window.point_requests(*step_ms) {
                    let body = client
                        .query_range(query, filter.as_deref(), points, *step_ms)
                        .await?;
                    forward(body, &to_worker).await?;
                }
            }
            Ok(())
        }
    }
}

/// Passes one answer on, in pieces of at least [`HANDOFF_BYTES`] (the network delivers a few
/// KiB at a time; waking the worker for each would cost more than the work); a closed channel
/// means the worker stopped, and says why itself.
async fn forward(body: Body, to_worker: &mpsc::Sender<Message>) -> Result<(), Error> {
    if to_worker
        .send(Message::Start { gzip: body.gzip })
        .await
        .is_err()
    {
        return Ok(());
    }
    let mut chunks = body.chunks;
    let mut pending = bytes::BytesMut::new();
    while let Some(chunk) = chunks.next().await {
        pending.extend_from_slice(&chunk?);
        if pending.len() >= HANDOFF_BYTES
            && to_worker
                .send(Message::Chunk(pending.split().freeze()))
                .await
                .is_err()
        {
            return Ok(());
        }
    }
    if !pending.is_empty()
        && to_worker
            .send(Message::Chunk(pending.freeze()))
            .await
            .is_err()
    {
        return Ok(());
    }
    let _ = to_worker.send(Message::End).await;
    Ok(())
}

#[derive(Clone, Copy)]
enum Mode {
    Lines,
    QueryRange,
}

enum Out {
    Channel(mpsc::Sender<Vec<u8>>),
    Stdout,
}

/// The blocking side: every answer of the window, decompressed, rewritten and compressed.
fn work(
    mode: Mode,
    mut input: mpsc::Receiver<Message>,
    obfuscator: &mut Obfuscator,
    out: Out,
    label: &str,
) -> Result<(Tally, Sums), Error> {
    let mut output = Output::new(out, label);
    let mut lines = Vec::with_capacity(FLUSH_BYTES + READ_BYTES);
    let mut tally = Tally::default();
    let answer_error = |source| Error::Answer {
        window: label.to_string(),
        source,
    };
    while let Some(message) = input.blocking_recv() {
        let Message::Start { gzip } = message else {
            continue;
        };
        let answer = Answer {
            input: &mut input,
            current: Bytes::new(),
            ended: false,
        };
        let mut reader: Box<dyn Read + '_> = if gzip {
            Box::new(flate2::read::MultiGzDecoder::new(answer))
        } else {
            Box::new(answer)
        };
        let part = match mode {
            Mode::Lines => {
                let mut rewriter = Rewriter::new(obfuscator);
                let mut buffer = vec![0u8; READ_BYTES];
                loop {
                    let n = reader
                        .read(&mut buffer)
                        .map_err(|e| answer_error(line::Error::Read(e)))?;
                    if n == 0 {
                        break;
                    }
                    rewriter
                        .feed(&buffer[..n], &mut lines)
                        .map_err(answer_error)?;
                    if lines.len() >= FLUSH_BYTES {
                        output.write(&mut lines)?;
                    }
                }
                rewriter.finish(&mut lines).map_err(answer_error)?
            }
            Mode::QueryRange => line::query_range(reader, obfuscator, &mut lines, |lines| {
                if lines.len() >= FLUSH_BYTES {
                    output
                        .write(lines)
                        .map_err(|e| line::Error::Read(std::io::Error::other(e.to_string())))?;
                }
                Ok(())
            })
            .map_err(answer_error)?,
        };
        tally.merge(part);
    }
    output.write(&mut lines)?;
    let sums = output.finish()?;
    Ok((tally, sums))
}

/// Rewritten lines on their way out: compressed into a segment, or straight to stdout.
struct Output<'a> {
    encoder: Option<Encoder>,
    out: Out,
    label: &'a str,
    stdout_crc: crc32fast::Hasher,
    stdout_bytes: u64,
}

impl<'a> Output<'a> {
    fn new(out: Out, label: &'a str) -> Output<'a> {
        let encoder = matches!(out, Out::Channel(_)).then(|| Encoder::new(segment::LEVEL));
        Output {
            encoder,
            out,
            label,
            stdout_crc: crc32fast::Hasher::new(),
            stdout_bytes: 0,
        }
    }

    fn write(&mut self, lines: &mut Vec<u8>) -> Result<(), Error> {
        match (&mut self.encoder, &self.out) {
            (Some(encoder), Out::Channel(to_store)) => {
                encoder.write(lines).map_err(|e| Error::Compress {
                    window: self.label.to_string(),
                    message: e.to_string(),
                })?;
                if encoder.pending() >= FLUSH_BYTES {
                    // A closed channel: the store side failed and reports it.
                    let _ = to_store.blocking_send(encoder.take());
                }
            }
            _ => {
                self.stdout_crc.update(lines);
                self.stdout_bytes += lines.len() as u64;
                std::io::stdout()
                    .lock()
                    .write_all(lines)
                    .map_err(Error::Stdout)?;
            }
        }
        lines.clear();
        Ok(())
    }

    fn finish(self) -> Result<Sums, Error> {
        match (self.encoder, self.out) {
            (Some(encoder), Out::Channel(to_store)) => {
                let (tail, sums) = encoder.finish().map_err(|e| Error::Compress {
                    window: self.label.to_string(),
                    message: e.to_string(),
                })?;
                let _ = to_store.blocking_send(tail);
                Ok(sums)
            }
            _ => {
                std::io::stdout().lock().flush().map_err(Error::Stdout)?;
                Ok(Sums {
                    crc32: self.stdout_crc.finalize(),
                    uncompressed: self.stdout_bytes,
                })
            }
        }
    }
}

/// One answer read from the channel, up to its `End`. An answer cut short (the network side
/// failed and dropped the channel) is an error, never a silently short window.
struct Answer<'a> {
    input: &'a mut mpsc::Receiver<Message>,
    current: Bytes,
    ended: bool,
}

impl Read for Answer<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            if self.ended {
                return Ok(0);
            }
            match self.input.blocking_recv() {
                Some(Message::Chunk(bytes)) => self.current = bytes,
                Some(Message::End) => self.ended = true,
                Some(Message::Start { .. }) | None => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the answer was cut short",
                    ));
                }
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

/// Reads the lines of one answer (an export, e.g. the importer's re-export for
/// verification) on a blocking thread, passing each with `state` to `each`; the state comes
/// back at the end. Lines longer than [`line::MAX_LINE_BYTES`] are an error.
pub async fn each_line<S, F>(body: Body, state: S, mut each: F) -> Result<S, Error>
where
    S: Send + 'static,
    F: FnMut(&mut S, &[u8]) -> Result<(), String> + Send + 'static,
{
    let (to_worker, mut from_network) = mpsc::channel::<Message>(CHANNEL_DEPTH);
    let worker = tokio::task::spawn_blocking(move || {
        let mut state = state;
        let gzip = match from_network.blocking_recv() {
            Some(Message::Start { gzip }) => gzip,
            _ => return Ok(state),
        };
        let answer = Answer {
            input: &mut from_network,
            current: Bytes::new(),
            ended: false,
        };
        let reader: Box<dyn Read + '_> = if gzip {
            Box::new(flate2::read::MultiGzDecoder::new(answer))
        } else {
            Box::new(answer)
        };
        let mut reader = std::io::BufReader::with_capacity(READ_BYTES, reader);
        let mut text = Vec::new();
        let mut number = 0u64;
        loop {
            text.clear();
            let n = std::io::BufRead::read_until(
                &mut (&mut reader).take(line::MAX_LINE_BYTES as u64 + 1),
                b'\n',
                &mut text,
            )
            .map_err(line::Error::Read)?;
            if n == 0 {
                return Ok(state);
            }
            number += 1;
            if text.len() > line::MAX_LINE_BYTES {
                return Err(line::Error::TooLong { line: number });
            }
            let trimmed = text.strip_suffix(b"\n").unwrap_or(&text);
            if !trimmed.is_empty() {
                each(&mut state, trimmed).map_err(|problem| line::Error::Malformed {
                    line: number,
                    problem,
                })?;
            }
        }
    });
    let forwarded = forward(body, &to_worker).await;
    drop(to_worker);
    let worked = worker.await.map_err(|e| Error::Compress {
        window: "the answer".into(),
        message: e.to_string(),
    })?;
    forwarded?;
    worked.map_err(|source| Error::Answer {
        window: "the answer".into(),
        source,
    })
}

/// A window as messages name it.
pub fn describe(window: Window) -> String {
    format!(
        "window {} to {}",
        super::metadata::rfc3339_ms(window.start_ms),
        super::metadata::rfc3339_ms(window.end_ms)
    )
}
