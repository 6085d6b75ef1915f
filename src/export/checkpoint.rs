//! The resumable state of an export run, kept in object storage beside its parts:
//! `<prefix>/<run>.parts/checkpoint.json`, rewritten after every segment. A run started again
//! with the same run id and settings (the same spec hash) continues at the first window
//! without a segment; with other settings, the parts are discarded and it starts over.
//!
//! Each window's segment is `<start_ms>-<end_ms>.seg` (raw deflate, see
//! [`super::segment`]) with a companion `<start_ms>-<end_ms>.series.json` listing the series
//! first seen in that window and the samples per metric, so counts stay exact across resumes
//! without the checkpoint growing with the number of series.

use super::windows::Window;
use crate::objstore::{self, Objects};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Version of the checkpoint layout; another version starts the run over.
pub const FORMAT: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] objstore::Error),
    #[error("the checkpoint {key} is not readable: {message}")]
    Corrupt { key: String, message: String },
}

impl Error {
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Store(e) => e.reason(),
            Error::Corrupt { .. } => "CheckpointCorrupt",
        }
    }
}

/// How the series of a run are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Method {
    Export,
    QueryRange,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Export => "Export",
            Method::QueryRange => "QueryRange",
        }
    }
}

/// A window that timed out and was cut in two.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Split {
    pub window: Window,
    pub into: [Window; 2],
}

/// One stored segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Segment {
    pub window: Window,
    pub key: String,
    /// Compressed bytes.
    pub size: u64,
    /// CRC-32 and length of the uncompressed lines.
    pub crc32: u32,
    pub uncompressed: u64,
    pub lines: u64,
    pub samples: u64,
    pub skipped: u64,
    /// Series first seen in this window.
    pub new_series: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_ms: Option<i64>,
    /// The companion object with this window's new series and per-metric samples.
    pub series_key: String,
}

/// The companion of a segment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeriesRecord {
    /// `[hash as 16 hex digits, metric name]` of each series first seen in the window.
    pub new: Vec<(String, String)>,
    /// Samples per metric name in the window.
    pub per_metric: BTreeMap<String, u64>,
}

/// The state of one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Checkpoint {
    pub format: u32,
    pub run_id: String,
    pub spec_hash: String,
    pub method: Method,
    /// Why the run reads with query_range, when it fell back to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method_reason: Option<String>,
    pub range: Window,
    /// The selectors the run exports, after discovery.
    pub selectors: Vec<String>,
    /// Every window to export, in order, splits applied.
    pub windows: Vec<Window>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub splits: Vec<Split>,
    /// The windows done so far, in order: `segments[i]` is `windows[i]`.
    pub segments: Vec<Segment>,
    /// Unix seconds when the run first started.
    pub started: i64,
}

impl Checkpoint {
    /// The first window without a segment.
    pub fn next_window(&self) -> Option<Window> {
        self.windows.get(self.segments.len()).copied()
    }

    /// Replaces the next window with its two halves.
    pub fn split_next(&mut self, into: (Window, Window)) {
        let index = self.segments.len();
        if let Some(window) = self.windows.get(index).copied() {
            self.windows.splice(index..=index, [into.0, into.1]);
            self.splits.push(Split {
                window,
                into: [into.0, into.1],
            });
        }
    }

    pub fn samples(&self) -> u64 {
        self.segments.iter().map(|s| s.samples).sum()
    }

    pub fn series(&self) -> u64 {
        self.segments.iter().map(|s| s.new_series).sum()
    }

    pub fn bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.size).sum()
    }
}

/// Where a run's parts live: `<prefix>/<run>.parts/`.
pub fn parts_prefix(prefix: &str, run_id: &str) -> String {
    format!("{prefix}/{run_id}.parts")
}

pub fn checkpoint_key(prefix: &str, run_id: &str) -> String {
    format!("{}/checkpoint.json", parts_prefix(prefix, run_id))
}

/// The segment and companion keys of `window`.
pub fn segment_keys(prefix: &str, run_id: &str, window: Window) -> (String, String) {
    let base = format!(
        "{}/{}-{}",
        parts_prefix(prefix, run_id),
        window.start_ms,
        window.end_ms
    );
    (format!("{base}.seg"), format!("{base}.series.json"))
}

/// The checkpoint under `key`, or `None` when there is none (or it is of another format,
/// which a new run replaces).
pub async fn load(objects: &Objects, key: &str) -> Result<Option<Checkpoint>, Error> {
    let bytes = match objects.get(key).await {
        Ok(bytes) => bytes,
        Err(objstore::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt {
        key: key.to_string(),
        message: e.to_string(),
    })?;
    if value.get("format").and_then(serde_json::Value::as_u64) != Some(u64::from(FORMAT)) {
        return Ok(None);
    }
    serde_json::from_value(value)
        .map(Some)
        .map_err(|e| Error::Corrupt {
            key: key.to_string(),
            message: e.to_string(),
        })
}

pub async fn save(objects: &Objects, key: &str, checkpoint: &Checkpoint) -> Result<(), Error> {
    let bytes = serde_json::to_vec_pretty(checkpoint).map_err(|e| Error::Corrupt {
        key: key.to_string(),
        message: e.to_string(),
    })?;
    objects.put_plain(key, bytes).await?;
    Ok(())
}

/// The companion of a segment.
pub async fn load_series(objects: &Objects, key: &str) -> Result<SeriesRecord, Error> {
    let bytes = objects.get(key).await?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt {
        key: key.to_string(),
        message: e.to_string(),
    })
}

pub async fn save_series(objects: &Objects, key: &str, record: &SeriesRecord) -> Result<(), Error> {
    let bytes = serde_json::to_vec(record).map_err(|e| Error::Corrupt {
        key: key.to_string(),
        message: e.to_string(),
    })?;
    objects.put_plain(key, bytes).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(a: i64, b: i64) -> Window {
        Window::new(a, b).unwrap()
    }

    fn checkpoint() -> Checkpoint {
        Checkpoint {
            format: FORMAT,
            run_id: "20261130T000000Z".into(),
            spec_hash: "abc".into(),
            method: Method::Export,
            method_reason: None,
            range: window(0, 300_000),
            selectors: vec!["{job=\"a\"}".into()],
            windows: vec![
                window(0, 120_000),
                window(120_000, 240_000),
                window(240_000, 300_000),
            ],
            splits: Vec::new(),
            segments: Vec::new(),
            started: 1,
        }
    }

    #[test]
    fn a_split_replaces_the_next_window_and_is_recorded() {
        let mut checkpoint = checkpoint();
        checkpoint.segments.push(Segment {
            window: window(0, 120_000),
            key: "k".into(),
            size: 1,
            crc32: 0,
            uncompressed: 0,
            lines: 0,
            samples: 5,
            skipped: 0,
            new_series: 2,
            first_ms: None,
            last_ms: None,
            series_key: "s".into(),
        });
        let next = checkpoint.next_window().unwrap();
        checkpoint.split_next(next.halves().unwrap());
        assert_eq!(
            checkpoint.windows,
            [
                window(0, 120_000),
                window(120_000, 180_000),
                window(180_000, 240_000),
                window(240_000, 300_000)
            ]
        );
        assert_eq!(checkpoint.next_window(), Some(window(120_000, 180_000)));
        assert_eq!(checkpoint.splits[0].window, next);
        assert_eq!((checkpoint.samples(), checkpoint.series()), (5, 2));
    }

    #[tokio::test]
    async fn a_checkpoint_round_trips_and_another_format_counts_as_none() {
        let dir = tempfile::tempdir().unwrap();
        let objects = Objects::from_url(dir.path().to_str().unwrap(), &Default::default()).unwrap();
        let key = checkpoint_key("exports/ns/x", "20261130T000000Z");
        assert_eq!(key, "exports/ns/x/20261130T000000Z.parts/checkpoint.json");
        assert_eq!(load(&objects, &key).await.unwrap(), None);
        save(&objects, &key, &checkpoint()).await.unwrap();
        assert_eq!(load(&objects, &key).await.unwrap(), Some(checkpoint()));
        objects
            .put_plain(&key, br#"{"format":99}"#.to_vec())
            .await
            .unwrap();
        assert_eq!(load(&objects, &key).await.unwrap(), None);
        objects.put_plain(&key, b"{".to_vec()).await.unwrap();
        assert_eq!(
            load(&objects, &key).await.unwrap_err().reason(),
            "CheckpointCorrupt"
        );
    }

    #[test]
    fn segment_keys_name_the_window() {
        let (seg, series) = segment_keys("p", "r", window(10, 20));
        assert_eq!(seg, "p/r.parts/10-20.seg");
        assert_eq!(series, "p/r.parts/10-20.series.json");
    }
}
