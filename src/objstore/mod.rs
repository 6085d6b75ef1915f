//! Object storage for reports and export bundles, on the `object_store` crate: a local
//! directory, S3 (and S3-compatible servers), Google Cloud Storage or Azure Blob Storage,
//! chosen by URL.
//!
//! Layout (DESIGN.md §5): `reports/{hourly|daily|monthly}/<period>/<vcenter|all>.<xlsx|csv>`
//! (named by the report module) and `exports/<namespace>/<name>/<run>.zip` (by the export
//! module). Every object written by [`Objects::put`] gets a sidecar `<key>.sha256` in
//! `sha256sum` format. Keys are checked, not escaped (see `key.rs`).

mod backend;
mod error;
mod key;
mod writer;

pub use error::Error;
pub(crate) use key::{check_key, check_segment};
pub use writer::ObjectWriter;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use object_store::path::Path as StorePath;
use object_store::signer::Signer;
use object_store::{MultipartUpload, ObjectStore};
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

/// Objects larger than this are uploaded in parts of this size.
const PART_SIZE: usize = 8 * 1024 * 1024;
/// Parts in flight at once: enough to fill a link to a cloud store, few enough that a big
/// export does not open dozens of connections.
const PARALLEL_PARTS: usize = 4;
const SIDECAR_SUFFIX: &str = ".sha256";
/// How long one request to the store may take, retries included, unless
/// settings.object_store_retry_timeout_seconds says otherwise (object_store's own default
/// kept a write to a dead store retrying for 3 minutes).
pub const DEFAULT_RETRY_TIMEOUT: Duration = Duration::from_secs(30);

/// What [`Objects::put`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub key: String,
    pub size: u64,
    /// Lowercase hex, as in the sidecar.
    pub sha256: String,
}

/// One object found by [`Objects::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Relative to the store's prefix.
    pub key: String,
    pub size: u64,
    /// Unix seconds.
    pub last_modified: i64,
}

/// An object store and the prefix inside it under which all keys live.
#[derive(Clone)]
pub struct Objects {
    store: Arc<dyn ObjectStore>,
    /// Empty for the store's root.
    prefix: StorePath,
    /// For messages: never holds credentials (from_url refuses URLs with a password).
    url: String,
    /// The same store as a URL signer, where the backend can presign.
    signer: Option<Arc<dyn Signer>>,
    /// The longest one request may take, retries included (see [`Objects::from_url_with`]).
    limit: Duration,
}

// By hand: the stores' own Debug output includes their configuration, and the URL is all a
// log line needs.
impl fmt::Debug for Objects {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Objects").field("url", &self.url).finish()
    }
}

impl Objects {
    /// The same store, each request taking at most `limit` (or less, if it already did): for
    /// reads bounded by a request deadline rather than by the writers' retry budget.
    pub fn capped(mut self, limit: Duration) -> Objects {
        self.limit = self.limit.min(limit);
        self
    }

    /// The store's URL, for messages: without credentials.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Writes `bytes` under `key` (relative to the prefix), in parts of 8 MiB above 8 MiB,
    /// then the sidecar `<key>.sha256` holding `<hex>  <file name>\n` (`sha256sum` format).
    ///
    /// Readers never see a partial object under `key`: the local filesystem writes a temp file
    /// and renames it, and a multipart upload becomes visible only once completed (a failed
    /// one is aborted). If the sidecar cannot be written, the object (and any older sidecar)
    /// is deleted again, best effort, so no object is left without its checksum. Keys ending
    /// in `.sha256` are reserved for sidecars.
    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<Stored, Error> {
        refuse_sidecar_key(key)?;
        let location = self.checked(key)?;
        let sidecar_location = self.location(&sidecar(key))?;
        let started = Instant::now();
        let put_error = |key: &str, source| self.put_error(key, started, source);

        let bytes = Bytes::from(bytes);
        let size = bytes.len() as u64;
        // Hashing an export bundle of hundreds of MiB takes a second or more: keep it off the
        // async worker threads.
        let hashed = bytes.clone();
        let sha256 = tokio::task::spawn_blocking(move || format!("{:x}", Sha256::digest(&hashed)))
            .await
            .map_err(|e| put_error(key, e.into()))?;

        self.write(&location, bytes)
            .await
            .map_err(|e| put_error(key, e))?;

        self.put_sidecar(key, &location, &sidecar_location, &sha256, started)
            .await?;
        tracing::debug!(url = %self.url, key, size, sha256, "stored object");
        Ok(Stored {
            key: key.to_string(),
            size,
            sha256,
        })
    }

    /// Writes `bytes` under `key` without a sidecar: for small bookkeeping objects (a
    /// checkpoint, a manifest) whose readers check them by their own content.
    pub async fn put_plain(&self, key: &str, bytes: Vec<u8>) -> Result<(), Error> {
        let location = self.checked(key)?;
        let started = Instant::now();
        self.bounded(self.store.put(&location, Bytes::from(bytes).into()))
            .await
            .map(drop)
            .map_err(|source| self.put_error(key, started, source))
    }

    /// The object under `key` as a stream of chunks, and its size.
    pub async fn get_stream(
        &self,
        key: &str,
    ) -> Result<(u64, BoxStream<'static, Result<Bytes, Error>>), Error> {
        let location = self.checked(key)?;
        let result = self
            .bounded(self.store.get(&location))
            .await
            .map_err(|source| self.get_error(key, source))?;
        let size = result.meta.size;
        let (url, key) = (self.url.clone(), key.to_string());
        let stream = result
            .into_stream()
            .map_err(move |source| Error::Get {
                url: url.clone(),
                key: key.clone(),
                source: Box::new(source),
            })
            .boxed();
        Ok((size, stream))
    }

    /// The size of the object under `key`, or `None` when there is none.
    pub async fn size_of(&self, key: &str) -> Result<Option<u64>, Error> {
        let location = self.checked(key)?;
        match self.bounded(self.store.head(&location)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(source) => Err(self.get_error(key, source)),
        }
    }

    /// Deletes every object under `prefix` (whole segments, as [`Objects::list`] takes it);
    /// returns how many there were.
    pub async fn delete_prefix(&self, prefix: &str) -> Result<usize, Error> {
        let listed = self.list(prefix).await?;
        for object in &listed {
            let location = self.location(&object.key)?;
            match self.bounded(self.store.delete(&location)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(source) => {
                    return Err(Error::Delete {
                        url: self.url.clone(),
                        key: object.key.clone(),
                        source: Box::new(source),
                    });
                }
            }
        }
        Ok(listed.len())
    }

    /// The whole object under `key`.
    pub async fn get(&self, key: &str) -> Result<Vec<u8>, Error> {
        let location = self.checked(key)?;
        // The body is bounded by the HTTP client's own request timeout.
        let read = async { self.bounded(self.store.get(&location)).await?.bytes().await };
        read.await
            .map(Vec::from)
            .map_err(|source| self.get_error(key, source))
    }

    /// Streams the object under `key` into a temp file next to `path`, then renames it to
    /// `path`: `path` is either left as it was or holds the whole object. Returns the bytes
    /// written. The file is created with mode 0600, like any temp file.
    pub async fn get_to_file(&self, key: &str, path: &Path) -> Result<u64, Error> {
        let location = self.checked(key)?;
        let mut stream = self
            .bounded(self.store.get(&location))
            .await
            .map_err(|source| self.get_error(key, source))?
            .into_stream();
        let write_error = |source| Error::GetToFile {
            url: self.url.clone(),
            key: key.to_string(),
            path: path.to_path_buf(),
            source,
        };
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        // Dropped (and so removed) on every early return below.
        let temp = tempfile::NamedTempFile::new_in(dir).map_err(write_error)?;
        let mut file = tokio::fs::File::from_std(temp.as_file().try_clone().map_err(write_error)?);
        let mut written = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|source| self.get_error(key, source))?;
            file.write_all(&chunk).await.map_err(write_error)?;
            written += chunk.len() as u64;
        }
        file.flush().await.map_err(write_error)?;
        file.sync_all().await.map_err(write_error)?;
        drop(file);
        temp.persist(path).map_err(|e| write_error(e.error))?;
        Ok(written)
    }

    /// The objects under `prefix` (a key prefix made of whole segments: `reports/daily` lists
    /// `reports/daily/…`; empty lists everything), keys relative to the store's prefix,
    /// sorted. Sidecars are listed as the objects they are.
    pub async fn list(&self, prefix: &str) -> Result<Vec<Listed>, Error> {
        let trimmed = prefix.strip_suffix('/').unwrap_or(prefix);
        let location = if trimmed.is_empty() {
            self.prefix.clone()
        } else {
            self.checked(trimmed)?
        };
        let scope = (!location.as_ref().is_empty()).then_some(&location);
        let found: Vec<_> = self
            .store
            .list(scope)
            .try_collect()
            .await
            .map_err(|source| Error::List {
                url: self.url.clone(),
                prefix: prefix.to_string(),
                source: Box::new(source),
            })?;
        let mut listed: Vec<Listed> = found
            .into_iter()
            .filter_map(|meta| {
                let key = meta
                    .location
                    .prefix_match(&self.prefix)?
                    .map(|part| part.as_ref().to_string())
                    .collect::<Vec<_>>()
                    .join("/");
                Some(Listed {
                    key,
                    size: meta.size,
                    last_modified: meta.last_modified.timestamp(),
                })
            })
            .collect();
        listed.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(listed)
    }

    /// Deletes the object under `key` and its sidecar; a missing one is not an error. The
    /// object goes first, so a reader never finds an object whose sidecar is gone.
    pub async fn delete(&self, key: &str) -> Result<(), Error> {
        let sidecar_key = sidecar(key);
        let targets = [
            (key, self.checked(key)?),
            (sidecar_key.as_str(), self.location(&sidecar_key)?),
        ];
        for (name, location) in targets {
            match self.bounded(self.store.delete(&location)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(source) => {
                    return Err(Error::Delete {
                        url: self.url.clone(),
                        key: name.to_string(),
                        source: Box::new(source),
                    });
                }
            }
        }
        tracing::debug!(url = %self.url, key, "deleted object");
        Ok(())
    }

    /// A presigned GET URL for `key` valid for `expires`, where the backend supports it (S3,
    /// GCS with a service account key, Azure with an account key); `None` for the local
    /// filesystem. Signing is local: it neither checks that the object exists nor contacts
    /// the store.
    pub async fn presign_get(&self, key: &str, expires: Duration) -> Result<Option<String>, Error> {
        let location = self.checked(key)?;
        let Some(signer) = &self.signer else {
            return Ok(None);
        };
        signer
            .signed_url(reqwest::Method::GET, &location, expires)
            .await
            .map(|url| Some(url.to_string()))
            .map_err(|source| Error::Presign {
                url: self.url.clone(),
                key: key.to_string(),
                source: Box::new(source),
            })
    }

    /// The store path of a key that was checked by the caller.
    fn location(&self, key: &str) -> Result<StorePath, Error> {
        let full = if self.prefix.as_ref().is_empty() {
            key.to_string()
        } else {
            format!("{}/{key}", self.prefix)
        };
        StorePath::parse(full).map_err(|e| Error::Key {
            key: key.to_string(),
            problem: e.to_string(),
        })
    }

    fn checked(&self, key: &str) -> Result<StorePath, Error> {
        check_key(key)?;
        self.location(key)
    }

    /// Runs one request to the store, giving it at most the store's limit: object_store stops
    /// retrying by then on its own (see `backend.rs`), this also ends a request that hangs.
    async fn bounded<T>(
        &self,
        request: impl Future<Output = object_store::Result<T>>,
    ) -> object_store::Result<T> {
        tokio::time::timeout(self.limit, request)
            .await
            .unwrap_or_else(|_| Err(error::stalled(self.limit)))
    }

    fn put_error(&self, key: &str, started: Instant, source: object_store::Error) -> Error {
        Error::Put {
            url: self.url.clone(),
            key: key.to_string(),
            elapsed: started.elapsed(),
            source: Box::new(source),
        }
    }

    fn get_error(&self, key: &str, source: object_store::Error) -> Error {
        match source {
            object_store::Error::NotFound { .. } => Error::NotFound {
                url: self.url.clone(),
                key: key.to_string(),
            },
            source => Error::Get {
                url: self.url.clone(),
                key: key.to_string(),
                source: Box::new(source),
            },
        }
    }

    async fn write(&self, location: &StorePath, bytes: Bytes) -> object_store::Result<()> {
        if bytes.len() <= PART_SIZE {
            return self
                .bounded(self.store.put(location, bytes.into()))
                .await
                .map(drop);
        }
        let mut upload = self.bounded(self.store.put_multipart(location)).await?;
        let uploaded = self.upload_parts(upload.as_mut(), bytes).await;
        if uploaded.is_err() {
            // Aborting frees the parts stored so far. Should that fail too, they stay
            // invisible (S3 shows an object only once the upload is completed) until the
            // bucket's lifecycle rule for incomplete uploads removes them.
            if let Err(e) = self.bounded(upload.abort()).await {
                tracing::warn!(url = %self.url, path = %location, error = %e, "failed to abort a multipart upload");
            }
        }
        uploaded
    }

    /// Writes the sidecar of the object just stored at `location`. If that fails, the object
    /// (and any older sidecar) is removed again, so no object is left without its checksum.
    async fn put_sidecar(
        &self,
        key: &str,
        location: &StorePath,
        sidecar_location: &StorePath,
        sha256: &str,
        started: Instant,
    ) -> Result<(), Error> {
        let file_name = key.rsplit_once('/').map_or(key, |(_, name)| name);
        let line = format!("{sha256}  {file_name}\n");
        let stored = self
            .bounded(self.store.put(sidecar_location, line.into()))
            .await;
        if let Err(source) = stored {
            self.remove_quietly(location).await;
            self.remove_quietly(sidecar_location).await;
            return Err(self.put_error(&sidecar(key), started, source));
        }
        Ok(())
    }

    /// Best-effort cleanup after a failed put: the put's own error is what the caller needs.
    async fn remove_quietly(&self, location: &StorePath) {
        match self.bounded(self.store.delete(location)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => {
                tracing::warn!(url = %self.url, path = %location, error = %e, "failed to remove an object after a failed put");
            }
        }
    }

    async fn upload_parts(
        &self,
        upload: &mut dyn MultipartUpload,
        bytes: Bytes,
    ) -> object_store::Result<()> {
        // Slices of one buffer: no copies. put_part fixes each part's number when called, so
        // the parts may finish in any order.
        let parts: Vec<_> = (0..bytes.len())
            .step_by(PART_SIZE)
            .map(|start| {
                let end = (start + PART_SIZE).min(bytes.len());
                self.bounded(upload.put_part(bytes.slice(start..end).into()))
            })
            .collect();
        futures_util::stream::iter(parts)
            .buffer_unordered(PARALLEL_PARTS)
            .try_collect::<()>()
            .await?;
        self.bounded(upload.complete()).await.map(drop)
    }
}

/// Keys ending in `.sha256` are reserved for sidecars, for whatever gets one.
fn refuse_sidecar_key(key: &str) -> Result<(), Error> {
    if key.ends_with(SIDECAR_SUFFIX) {
        return Err(Error::Key {
            key: key.to_string(),
            problem: format!("keys ending in {SIDECAR_SUFFIX} are reserved for checksums"),
        });
    }
    Ok(())
}

fn sidecar(key: &str) -> String {
    format!("{key}{SIDECAR_SUFFIX}")
}
