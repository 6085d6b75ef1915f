//! Verification: re-export what was imported and compare every series with what was sent.

use super::Error;
use crate::export::client::Client;
use crate::export::fetch;
use crate::export::import::{self as samples, Comparison, Ledger, Transform};
use crate::export::metadata::{self, Metadata};
use crate::export::reader::{self, Bundle};
use crate::export::selector;
use crate::export::windows::Window;
use std::io::BufRead;
use std::path::{Path, PathBuf};

/// Metric names per verification request (each a `match[]`).
const NAMES_PER_REQUEST: usize = 50;

/// Re-exports the imported series from the target and compares them with the bundle's (as
/// sent: moved, trimmed, with the extra labels).
pub(super) async fn verify(
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
