//! The end of an export run: the stored segments become one ZIP bundle, streamed from the
//! parts into a multipart upload without recompressing (each segment is a raw deflate run
//! that ends byte-aligned without a final block, so their concatenation plus one empty final
//! block is the `metrics.jsonl` entry); then its `.sha256` sidecar; then the manifest, last.
//! Retention removes older bundles of the same export, manifest first, so a reader never
//! finds a manifest whose bundle is gone.

use super::checkpoint::Checkpoint;
use super::metadata::{self, Manifest, Metadata};
use super::plan::Retention;
use super::segment::{self, Sums};
use super::zip::{EntryInfo, Layout, Method};
use crate::objstore::{self, Objects, Stored};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] objstore::Error),
    #[error(
        "the segment {key} is {found} bytes, the checkpoint says {expected}: the parts changed"
    )]
    SegmentChanged {
        key: String,
        expected: u64,
        found: u64,
    },
    #[error("failed to build the ZIP: {0}")]
    Zip(String),
    #[error("cancelled")]
    Cancelled,
}

impl Error {
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Store(e) => e.reason(),
            Error::SegmentChanged { .. } => "PartsChanged",
            Error::Zip(_) => "ZipFailed",
            Error::Cancelled => "Cancelled",
        }
    }
}

/// The bundle written, and its manifest.
#[derive(Debug, Clone)]
pub struct Assembled {
    pub bundle: Stored,
    pub manifest_key: String,
    pub manifest: Manifest,
}

/// `<prefix>/<run>.zip`.
pub fn bundle_key(prefix: &str, run_id: &str) -> String {
    format!("{prefix}/{run_id}.zip")
}

/// Writes the bundle of `checkpoint` (all its windows done) with `metadata`, its sidecar and
/// then its manifest. `now` (Unix seconds) dates the ZIP entries and the manifest.
pub async fn bundle(
    objects: &Objects,
    prefix: &str,
    checkpoint: &Checkpoint,
    metadata: &Metadata,
    now: i64,
    cancel: &CancellationToken,
) -> Result<Assembled, Error> {
    let key = bundle_key(prefix, &checkpoint.run_id);
    let mut writer = objects.writer(&key, true).await?;
    let written = write_zip(objects, &mut writer, checkpoint, metadata, now, cancel).await;
    let bundle = match written {
        Ok(()) => writer.finish().await?,
        Err(e) => {
            writer.abort().await;
            return Err(e);
        }
    };
    let manifest = Manifest {
        format_version: metadata::FORMAT_VERSION,
        export_id: checkpoint.run_id.clone(),
        bundle_key: key.clone(),
        size: bundle.size,
        sha256: bundle.sha256.clone(),
        series: metadata.series,
        samples: metadata.samples,
        skipped_samples: metadata.skipped_samples,
        time_range: metadata.time_range.clone(),
        method: metadata.method,
        key_fingerprint: metadata.obfuscation.key_fingerprint.clone(),
        created: metadata::rfc3339_ms(now * 1000),
    };
    let manifest_key = metadata::manifest_key(&key);
    let json = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::Zip(e.to_string()))?;
    objects.put_plain(&manifest_key, json).await?;
    Ok(Assembled {
        bundle,
        manifest_key,
        manifest,
    })
}

async fn write_zip(
    objects: &Objects,
    writer: &mut objstore::ObjectWriter,
    checkpoint: &Checkpoint,
    metadata: &Metadata,
    now: i64,
    cancel: &CancellationToken,
) -> Result<(), Error> {
    let modified = super::zip::dos_datetime(now);
    let mut layout = Layout::new();
    let sums: Vec<Sums> = checkpoint
        .segments
        .iter()
        .map(|s| Sums {
            crc32: s.crc32,
            uncompressed: s.uncompressed,
        })
        .collect();
    let whole = segment::combine(&sums);
    let compressed: u64 =
        checkpoint.segments.iter().map(|s| s.size).sum::<u64>() + segment::FINAL_BLOCK.len() as u64;
    let header = layout
        .entry(EntryInfo {
            name: metadata::METRICS_ENTRY.into(),
            method: Method::Deflate,
            crc32: whole.crc32,
            compressed_size: compressed,
            uncompressed_size: whole.uncompressed,
            modified,
        })
        .map_err(|e| Error::Zip(e.to_string()))?;
    writer.write(Bytes::from(header)).await?;
    for segment in &checkpoint.segments {
        let (size, mut chunks) = objects.get_stream(&segment.key).await?;
        if size != segment.size {
            return Err(Error::SegmentChanged {
                key: segment.key.clone(),
                expected: segment.size,
                found: size,
            });
        }
        while let Some(chunk) = chunks.next().await {
            if cancel.is_cancelled() {
                return Err(Error::Cancelled);
            }
            writer.write(chunk?).await?;
        }
    }
    writer
        .write(Bytes::from_static(&segment::FINAL_BLOCK))
        .await?;

    let bundle_name = format!("{}.zip", checkpoint.run_id);
    let metadata_json =
        serde_json::to_vec_pretty(metadata).map_err(|e| Error::Zip(e.to_string()))?;
    let readme = metadata::readme(metadata, &bundle_name);
    for (name, data) in [
        (metadata::METADATA_ENTRY, metadata_json),
        (metadata::README_ENTRY, readme.into_bytes()),
    ] {
        let (compressed, sums) = super::zip::deflate_whole(&data);
        let header = layout
            .entry(EntryInfo {
                name: name.into(),
                method: Method::Deflate,
                crc32: sums.crc32,
                compressed_size: compressed.len() as u64,
                uncompressed_size: sums.uncompressed,
                modified,
            })
            .map_err(|e| Error::Zip(e.to_string()))?;
        writer.write(Bytes::from(header)).await?;
        writer.write(Bytes::from(compressed)).await?;
    }
    writer.write(Bytes::from(layout.finish())).await?;
    Ok(())
}

/// The complete bundles under `prefix` (those with a manifest), newest first.
pub async fn bundles(objects: &Objects, prefix: &str) -> Result<Vec<Manifest>, Error> {
    let mut manifests = Vec::new();
    for listed in objects.list(prefix).await? {
        let Some(name) = listed.key.strip_prefix(&format!("{prefix}/")) else {
            continue;
        };
        if name.contains('/') || !name.ends_with(".manifest.json") {
            continue;
        }
        let bytes = objects.get(&listed.key).await?;
        match serde_json::from_slice::<Manifest>(&bytes) {
            Ok(manifest) => manifests.push(manifest),
            Err(e) => {
                tracing::warn!(key = %listed.key, error = %e, "ignoring an unreadable manifest")
            }
        }
    }
    manifests.sort_by(|a, b| {
        b.created
            .cmp(&a.created)
            .then(b.export_id.cmp(&a.export_id))
    });
    Ok(manifests)
}

/// Deletes the bundles of `prefix` beyond `retention`, except `keep` (the one just
/// written); returns the bundle keys deleted.
pub async fn apply_retention(
    objects: &Objects,
    prefix: &str,
    retention: Retention,
    keep: &str,
    now: i64,
) -> Result<Vec<String>, Error> {
    if retention.keep_last.is_none() && retention.max_age_days.is_none() {
        return Ok(Vec::new());
    }
    let cutoff = retention
        .max_age_days
        .map(|days| metadata::rfc3339_ms((now - i64::from(days) * 86_400) * 1000));
    let mut deleted = Vec::new();
    for (index, manifest) in bundles(objects, prefix).await?.into_iter().enumerate() {
        if manifest.bundle_key == keep {
            continue;
        }
        let beyond_count = retention
            .keep_last
            .is_some_and(|n| index >= usize::try_from(n).unwrap_or(usize::MAX));
        let too_old = cutoff.as_ref().is_some_and(|c| manifest.created < *c);
        if !(beyond_count || too_old) {
            continue;
        }
        objects
            .delete(&metadata::manifest_key(&manifest.bundle_key))
            .await?;
        objects.delete(&manifest.bundle_key).await?;
        deleted.push(manifest.bundle_key);
    }
    Ok(deleted)
}
