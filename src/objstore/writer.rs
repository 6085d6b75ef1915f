//! Objects written piece by piece, with memory bounded whatever their size.

use super::{Error, Objects, PART_SIZE, Stored, refuse_sidecar_key, sidecar};
use bytes::Bytes;
use object_store::WriteMultipart;
use sha2::{Digest, Sha256};
use std::time::Instant;

/// Parts in flight at once for an [`ObjectWriter`]: two keep the link busy while the next part
/// fills, and bound its memory to three parts.
const STREAMING_PARTS: usize = 2;

impl Objects {
    /// Starts an object under `key` that is written piece by piece with
    /// [`ObjectWriter::write`], so memory stays bounded whatever its size: parts of
    /// [`PART_SIZE`] go out as they fill, at most [`STREAMING_PARTS`] at a time. Nothing is
    /// visible under `key` until [`ObjectWriter::finish`]; [`ObjectWriter::abort`] (or a
    /// failed write) discards the parts. With `sidecar`, finishing also writes
    /// `<key>.sha256` as [`Objects::put`] does.
    pub async fn writer(&self, key: &str, sidecar: bool) -> Result<ObjectWriter, Error> {
        if sidecar {
            refuse_sidecar_key(key)?;
        }
        let location = self.checked(key)?;
        let started = Instant::now();
        let upload = self
            .bounded(self.store.put_multipart(&location))
            .await
            .map_err(|source| self.put_error(key, started, source))?;
        Ok(ObjectWriter {
            objects: self.clone(),
            key: key.to_string(),
            upload: WriteMultipart::new_with_chunk_size(upload, PART_SIZE),
            sha256: Sha256::new(),
            size: 0,
            sidecar,
            started,
        })
    }
}

/// An object being written in parts (see [`Objects::writer`]).
pub struct ObjectWriter {
    objects: Objects,
    key: String,
    upload: WriteMultipart,
    sha256: Sha256,
    size: u64,
    sidecar: bool,
    /// For the time a failed write names.
    started: Instant,
}

impl ObjectWriter {
    /// Appends `bytes`, waiting while [`STREAMING_PARTS`] parts are in flight. After an error
    /// the caller aborts the upload.
    pub async fn write(&mut self, bytes: Bytes) -> Result<(), Error> {
        let waited = self
            .objects
            .bounded(self.upload.wait_for_capacity(STREAMING_PARTS))
            .await;
        if let Err(source) = waited {
            return Err(self.objects.put_error(&self.key, self.started, source));
        }
        self.sha256.update(&bytes);
        self.size += bytes.len() as u64;
        self.upload.put(bytes);
        Ok(())
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Completes the upload (the object appears under its key at once, whole), then writes
    /// the sidecar if asked; a failed sidecar removes the object again, as [`Objects::put`]
    /// does.
    pub async fn finish(self) -> Result<Stored, Error> {
        let ObjectWriter {
            objects,
            key,
            upload,
            sha256,
            size,
            sidecar: with_sidecar,
            started,
        } = self;
        // The parts still in flight go out at once, so one limit bounds them and the
        // completion together.
        objects
            .bounded(upload.finish())
            .await
            .map_err(|source| objects.put_error(&key, started, source))?;
        let sha256 = format!("{:x}", sha256.finalize());
        if with_sidecar {
            let location = objects.location(&key)?;
            let sidecar_location = objects.location(&sidecar(&key))?;
            objects
                .put_sidecar(&key, &location, &sidecar_location, &sha256, started)
                .await?;
        }
        tracing::debug!(url = %objects.url, key, size, sha256, "stored object in parts");
        Ok(Stored { key, size, sha256 })
    }

    /// Discards what was written: the parts are freed, nothing appears under the key.
    pub async fn abort(self) {
        if let Err(e) = self.objects.bounded(self.upload.abort()).await {
            tracing::warn!(url = %self.objects.url, key = %self.key, error = %e, "failed to abort a multipart upload");
        }
    }
}
