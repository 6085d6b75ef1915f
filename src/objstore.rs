//! Object storage for reports and export bundles, on the `object_store` crate: a local
//! directory, S3 (and S3-compatible servers), Google Cloud Storage or Azure Blob Storage,
//! chosen by URL.
//!
//! Layout (DESIGN.md §5): `reports/{hourly|daily|monthly}/<period>/<vcenter|all>.<xlsx|csv>`
//! ([`report_key`]) and `exports/<namespace>/<name>/<run>.zip`
//! ([`crate::export::assemble::bundle_key`]). Every
//! object written by [`Objects::put`] gets a sidecar `<key>.sha256` in `sha256sum` format.
//!
//! Keys are checked, not escaped: a key is `/`-separated segments, each 1–200 characters from
//! `A–Z a–z 0–9 . _ -` and not starting with `.` (which rules out `.`, `..` and hidden files);
//! no leading, trailing or doubled `/`; at most 900 bytes, leaving room for the store's prefix
//! and the sidecar suffix within S3's 1,024-byte limit. Escaping would have to be undone in
//! listings and could map two names to one key; these characters need no encoding in S3, GCS
//! and Azure keys, in URLs or in file names. So `vc1.example.com` is a fine scope, and a
//! timestamp takes the basic ISO 8601 form `20260310T140000Z` (no `:`).

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path as StorePath;
use object_store::signer::Signer;
use object_store::{MultipartUpload, ObjectStore, ObjectStoreScheme, WriteMultipart};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use url::Url;

/// Objects larger than this are uploaded in parts of this size.
const PART_SIZE: usize = 8 * 1024 * 1024;
/// Parts in flight at once: enough to fill a link to a cloud store, few enough that a big
/// export does not open dozens of connections.
const PARALLEL_PARTS: usize = 4;
/// Parts in flight at once for an [`ObjectWriter`]: two keep the link busy while the next part
/// fills, and bound its memory to three parts.
const STREAMING_PARTS: usize = 2;
const SIDECAR_SUFFIX: &str = ".sha256";
const MAX_SEGMENT_CHARS: usize = 200;
const MAX_KEY_BYTES: usize = 900;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unsupported object store URL {url:?}: {problem}")]
    Url { url: String, problem: String },
    #[error(
        "unknown option `{key}` for object store {url}: {backend} takes object_store's {backend} configuration keys"
    )]
    UnknownOption {
        url: String,
        key: String,
        backend: &'static str,
    },
    #[error("failed to create directory {} for object store {url}: {source}", path.display())]
    CreateDir {
        url: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("failed to open object store {url}: {source}")]
    Open {
        url: String,
        source: Box<object_store::Error>,
    },
    #[error("invalid object key {key:?}: {problem}")]
    Key { key: String, problem: String },
    #[error("object {key} not found in object store {url}")]
    NotFound { url: String, key: String },
    #[error("failed to put {key} to object store {url}: {}", cause(source))]
    Put {
        url: String,
        key: String,
        source: Box<object_store::Error>,
    },
    #[error("failed to get {key} from object store {url}: {}", cause(source))]
    Get {
        url: String,
        key: String,
        source: Box<object_store::Error>,
    },
    #[error("failed to write {key} from object store {url} to {}: {source}", path.display())]
    GetToFile {
        url: String,
        key: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("failed to list {prefix:?} in object store {url}: {}", cause(source))]
    List {
        url: String,
        prefix: String,
        source: Box<object_store::Error>,
    },
    #[error("failed to delete {key} from object store {url}: {}", cause(source))]
    Delete {
        url: String,
        key: String,
        source: Box<object_store::Error>,
    },
    #[error("failed to presign {key} in object store {url}: {}", cause(source))]
    Presign {
        url: String,
        key: String,
        source: Box<object_store::Error>,
    },
}

impl Error {
    /// A stable short name, for exit codes, metric labels and Kubernetes Event reasons.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Url { .. } => "InvalidObjectStoreUrl",
            Error::UnknownOption { .. } => "UnknownObjectStoreOption",
            Error::CreateDir { .. } => "ObjectStoreDirectoryUnavailable",
            Error::Open { .. } => "ObjectStoreUnavailable",
            Error::Key { .. } => "InvalidObjectKey",
            Error::NotFound { .. } => "ObjectNotFound",
            Error::Put { .. } => "ObjectPutFailed",
            Error::Get { .. } => "ObjectGetFailed",
            Error::GetToFile { .. } => "ObjectDownloadFailed",
            Error::List { .. } => "ObjectListFailed",
            Error::Delete { .. } => "ObjectDeleteFailed",
            Error::Presign { .. } => "ObjectPresignFailed",
        }
    }
}

/// The store's error, with the likely cause first where object_store's wording hides it
/// (a wrong secret comes back as 403 SignatureDoesNotMatch, which object_store calls
/// "lacked the necessary privileges" or, for list and multipart requests, a "Generic S3
/// error").
fn cause(source: &object_store::Error) -> String {
    match http_status(source) {
        Some(401 | 403) => format!(
            "access denied (wrong credentials, signature mismatch or missing permission): {source}"
        ),
        Some(404) => format!("not found (does the bucket or container exist?): {source}"),
        _ => source.to_string(),
    }
}

/// The HTTP status behind a store error, where there was one. object_store maps 401, 403
/// and 404 to their own variants for single-object requests but wraps list and multipart
/// failures as `Generic`, whose text then carries "status code: NNN" (tested against the
/// real S3 server in tests/objstore.rs, so a change of wording shows).
fn http_status(source: &object_store::Error) -> Option<u16> {
    match source {
        object_store::Error::PermissionDenied { .. } => Some(403),
        object_store::Error::Unauthenticated { .. } => Some(401),
        object_store::Error::NotFound { .. } => Some(404),
        object_store::Error::Generic { .. } => {
            let text = source.to_string();
            let (_, after) = text.split_once("status code: ")?;
            after.get(..3)?.parse().ok()
        }
        _ => None,
    }
}

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
}

// By hand: the stores' own Debug output includes their configuration, and the URL is all a
// log line needs.
impl fmt::Debug for Objects {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Objects").field("url", &self.url).finish()
    }
}

impl Objects {
    /// `file:///abs/dir` (or a plain absolute/relative path, made absolute; the directory is
    /// created if missing), `s3://bucket/prefix`, `gs://bucket/prefix`, `az://container/prefix`
    /// (also the https forms object_store understands: `*.amazonaws.com`,
    /// `*.r2.cloudflarestorage.com`, `*.blob.core.windows.net`, …).
    ///
    /// `options`: object_store configuration keys of the URL's backend (e.g. aws_endpoint,
    /// aws_region, aws_access_key_id, aws_secret_access_key, aws_allow_http,
    /// aws_virtual_hosted_style_request, google_service_account,
    /// azure_storage_account_name, …); the backend's environment variables (AWS_*, GOOGLE_*,
    /// AZURE_*) are read too, options win. A key the backend does not know is an error naming
    /// it; the local filesystem takes no options at all. Credentials belong in `options`: a URL
    /// with a password, a query or a fragment is refused.
    pub fn from_url(url: &str, options: &BTreeMap<String, String>) -> Result<Objects, Error> {
        let input = url.trim();
        if input.is_empty() {
            return Err(Error::Url {
                url: String::new(),
                problem: "the URL is empty".to_string(),
            });
        }
        if !input.contains("://") {
            return local(Path::new(input), options);
        }
        let parsed = Url::parse(input).map_err(|e| Error::Url {
            url: without_password(input),
            problem: e.to_string(),
        })?;
        let refuse = |problem: &str| Error::Url {
            url: without_password(input),
            problem: problem.to_string(),
        };
        if parsed.password().is_some() {
            return Err(refuse(
                "it contains a password; pass credentials as options instead",
            ));
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(refuse(
                "object store URLs take no query or fragment; pass settings as options instead",
            ));
        }
        if parsed.scheme() == "file" {
            let dir = parsed
                .to_file_path()
                .map_err(|()| refuse("a file URL must be file:///absolute/path, with no host"))?;
            return local(&dir, options);
        }
        cloud(&parsed, options)
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
        if key.ends_with(SIDECAR_SUFFIX) {
            return Err(Error::Key {
                key: key.to_string(),
                problem: format!("keys ending in {SIDECAR_SUFFIX} are reserved for checksums"),
            });
        }
        let location = self.checked(key)?;
        let sidecar_key = sidecar(key);
        let sidecar_location = self.location(&sidecar_key)?;
        let put_error = |key: &str, source| Error::Put {
            url: self.url.clone(),
            key: key.to_string(),
            source: Box::new(source),
        };

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

        let file_name = key.rsplit_once('/').map_or(key, |(_, name)| name);
        let line = format!("{sha256}  {file_name}\n");
        if let Err(source) = self.store.put(&sidecar_location, line.into()).await {
            self.remove_quietly(&location).await;
            self.remove_quietly(&sidecar_location).await;
            return Err(put_error(&sidecar_key, source));
        }
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
        self.store
            .put(&location, Bytes::from(bytes).into())
            .await
            .map(drop)
            .map_err(|source| Error::Put {
                url: self.url.clone(),
                key: key.to_string(),
                source: Box::new(source),
            })
    }

    /// Starts an object under `key` that is written piece by piece with
    /// [`ObjectWriter::write`], so memory stays bounded whatever its size: parts of
    /// [`PART_SIZE`] go out as they fill, at most [`STREAMING_PARTS`] at a time. Nothing is
    /// visible under `key` until [`ObjectWriter::finish`]; [`ObjectWriter::abort`] (or a
    /// failed write) discards the parts. With `sidecar`, finishing also writes
    /// `<key>.sha256` as [`Objects::put`] does.
    pub async fn writer(&self, key: &str, sidecar: bool) -> Result<ObjectWriter, Error> {
        if sidecar && key.ends_with(SIDECAR_SUFFIX) {
            return Err(Error::Key {
                key: key.to_string(),
                problem: format!("keys ending in {SIDECAR_SUFFIX} are reserved for checksums"),
            });
        }
        let location = self.checked(key)?;
        let upload = self
            .store
            .put_multipart(&location)
            .await
            .map_err(|source| Error::Put {
                url: self.url.clone(),
                key: key.to_string(),
                source: Box::new(source),
            })?;
        Ok(ObjectWriter {
            objects: self.clone(),
            key: key.to_string(),
            upload: WriteMultipart::new_with_chunk_size(upload, PART_SIZE),
            sha256: Sha256::new(),
            size: 0,
            sidecar,
        })
    }

    /// The object under `key` as a stream of chunks, and its size.
    pub async fn get_stream(
        &self,
        key: &str,
    ) -> Result<(u64, BoxStream<'static, Result<Bytes, Error>>), Error> {
        let location = self.checked(key)?;
        let result = self
            .store
            .get(&location)
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
        match self.store.head(&location).await {
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
            match self.store.delete(&location).await {
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
        let read = async { self.store.get(&location).await?.bytes().await };
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
            .store
            .get(&location)
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
            match self.store.delete(&location).await {
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
            return self.store.put(location, bytes.into()).await.map(drop);
        }
        let mut upload = self.store.put_multipart(location).await?;
        let uploaded = upload_parts(upload.as_mut(), bytes).await;
        if uploaded.is_err() {
            // Aborting frees the parts stored so far. Should that fail too, they stay
            // invisible (S3 shows an object only once the upload is completed) until the
            // bucket's lifecycle rule for incomplete uploads removes them.
            if let Err(e) = upload.abort().await {
                tracing::warn!(url = %self.url, path = %location, error = %e, "failed to abort a multipart upload");
            }
        }
        uploaded
    }

    /// Best-effort cleanup after a failed put: the put's own error is what the caller needs.
    async fn remove_quietly(&self, location: &StorePath) {
        match self.store.delete(location).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => {
                tracing::warn!(url = %self.url, path = %location, error = %e, "failed to remove an object after a failed put");
            }
        }
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
}

impl ObjectWriter {
    /// Appends `bytes`, waiting while [`STREAMING_PARTS`] parts are in flight. After an error
    /// the caller aborts the upload.
    pub async fn write(&mut self, bytes: Bytes) -> Result<(), Error> {
        if let Err(source) = self.upload.wait_for_capacity(STREAMING_PARTS).await {
            return Err(self.put_error(source));
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
        } = self;
        let put_error = |key: &str, source| Error::Put {
            url: objects.url.clone(),
            key: key.to_string(),
            source: Box::new(source),
        };
        upload.finish().await.map_err(|e| put_error(&key, e))?;
        let sha256 = format!("{:x}", sha256.finalize());
        if with_sidecar {
            let location = objects.location(&key)?;
            let sidecar_key = sidecar(&key);
            let sidecar_location = objects.location(&sidecar_key)?;
            let file_name = key.rsplit_once('/').map_or(key.as_str(), |(_, name)| name);
            let line = format!("{sha256}  {file_name}\n");
            if let Err(source) = objects.store.put(&sidecar_location, line.into()).await {
                objects.remove_quietly(&location).await;
                objects.remove_quietly(&sidecar_location).await;
                return Err(put_error(&sidecar_key, source));
            }
        }
        tracing::debug!(url = %objects.url, key, size, sha256, "stored object in parts");
        Ok(Stored { key, size, sha256 })
    }

    /// Discards what was written: the parts are freed, nothing appears under the key.
    pub async fn abort(self) {
        if let Err(e) = self.upload.abort().await {
            tracing::warn!(url = %self.objects.url, key = %self.key, error = %e, "failed to abort a multipart upload");
        }
    }

    fn put_error(&self, source: object_store::Error) -> Error {
        Error::Put {
            url: self.objects.url.clone(),
            key: self.key.clone(),
            source: Box::new(source),
        }
    }
}

async fn upload_parts(upload: &mut dyn MultipartUpload, bytes: Bytes) -> object_store::Result<()> {
    // Slices of one buffer: no copies. put_part fixes each part's number when called, so the
    // parts may finish in any order.
    let parts: Vec<_> = (0..bytes.len())
        .step_by(PART_SIZE)
        .map(|start| {
            let end = (start + PART_SIZE).min(bytes.len());
            upload.put_part(bytes.slice(start..end).into())
        })
        .collect();
    futures_util::stream::iter(parts)
        .buffer_unordered(PARALLEL_PARTS)
        .try_collect::<()>()
        .await?;
    upload.complete().await.map(drop)
}

fn sidecar(key: &str) -> String {
    format!("{key}{SIDECAR_SUFFIX}")
}

fn local(dir: &Path, options: &BTreeMap<String, String>) -> Result<Objects, Error> {
    let shown = dir.display().to_string();
    let dir = std::path::absolute(dir).map_err(|source| Error::CreateDir {
        url: shown.clone(),
        path: dir.to_path_buf(),
        source,
    })?;
    let url = Url::from_file_path(&dir)
        .map(String::from)
        .map_err(|()| Error::Url {
            url: shown,
            problem: "not an absolute path".to_string(),
        })?;
    if let Some(key) = options.keys().next() {
        return Err(Error::UnknownOption {
            url,
            key: key.clone(),
            backend: "the local filesystem",
        });
    }
    std::fs::create_dir_all(&dir).map_err(|source| Error::CreateDir {
        url: url.clone(),
        path: dir.clone(),
        source,
    })?;
    // Cleanup removes directories left empty by a delete, so that retention does not leave
    // a tree of empty period directories behind.
    let store = LocalFileSystem::new_with_prefix(&dir)
        .map_err(|source| Error::Open {
            url: url.clone(),
            source: Box::new(source),
        })?
        .with_automatic_cleanup(true);
    Ok(Objects {
        store: Arc::new(store),
        prefix: StorePath::default(),
        url,
        signer: None,
    })
}

fn cloud(parsed: &Url, options: &BTreeMap<String, String>) -> Result<Objects, Error> {
    let url = parsed.to_string();
    let unsupported = |problem: String| Error::Url {
        url: url.clone(),
        problem,
    };
    let use_instead = "use file:///dir (or a directory path), s3://bucket/prefix (with the aws_endpoint option for an S3-compatible server), gs://bucket/prefix or az://container/prefix";
    let (scheme, prefix) = ObjectStoreScheme::parse(parsed).map_err(|_| {
        unsupported(format!(
            "unknown scheme `{}`; {use_instead}",
            parsed.scheme()
        ))
    })?;
    // object_store 0.12 takes az://X/Y/… as account X, container Y, but its Azure builder
    // reads az://container/prefix; 0.14 fixed the prefix to the whole path, as done here.
    let prefix = if parsed.scheme() == "az" {
        StorePath::from_url_path(parsed.path())
            .map_err(|e| unsupported(format!("invalid prefix: {e}")))?
    } else {
        prefix
    };
    let open = |source| Error::Open {
        url: url.clone(),
        source: Box::new(source),
    };
    let (store, signer): (Arc<dyn ObjectStore>, Arc<dyn Signer>) = match scheme {
        ObjectStoreScheme::AmazonS3 => {
            let builder = AmazonS3Builder::from_env().with_url(parsed.as_str());
            let builder = configure(
                builder,
                options,
                &url,
                "S3",
                |b, k: AmazonS3ConfigKey, v| b.with_config(k, v),
            )?;
            let s3 = Arc::new(builder.build().map_err(open)?);
            (s3.clone(), s3)
        }
        ObjectStoreScheme::GoogleCloudStorage => {
            let builder = GoogleCloudStorageBuilder::from_env().with_url(parsed.as_str());
            let builder = configure(builder, options, &url, "GCS", |b, k: GoogleConfigKey, v| {
                b.with_config(k, v)
            })?;
            let gcs = Arc::new(builder.build().map_err(open)?);
            (gcs.clone(), gcs)
        }
        ObjectStoreScheme::MicrosoftAzure => {
            let builder = MicrosoftAzureBuilder::from_env().with_url(parsed.as_str());
            let builder = configure(
                builder,
                options,
                &url,
                "Azure",
                |b, k: AzureConfigKey, v| b.with_config(k, v),
            )?;
            let azure = Arc::new(builder.build().map_err(open)?);
            (azure.clone(), azure)
        }
        // memory://, and http(s) URLs of other hosts, which object_store would serve as
        // WebDAV.
        _ => {
            return Err(unsupported(format!(
                "`{}` URLs of this kind are not supported (https only for *.amazonaws.com, *.r2.cloudflarestorage.com and Azure hosts); {use_instead}",
                parsed.scheme()
            )));
        }
    };
    Ok(Objects {
        store,
        prefix,
        url,
        signer: Some(signer),
    })
}

/// Applies `options` to a builder, refusing keys its backend does not know (object_store's
/// own URL helpers skip them silently, which would hide a misspelt endpoint or region).
fn configure<B, K: FromStr>(
    mut builder: B,
    options: &BTreeMap<String, String>,
    url: &str,
    backend: &'static str,
    set: impl Fn(B, K, &str) -> B,
) -> Result<B, Error> {
    for (key, value) in options {
        let parsed = key.parse::<K>().map_err(|_| Error::UnknownOption {
            url: url.to_string(),
            key: key.clone(),
            backend,
        })?;
        builder = set(builder, parsed, value);
    }
    Ok(builder)
}

/// An unparsable or refused URL as it may be shown: anything between `://` and an `@`
/// could be credentials, so it is replaced.
fn without_password(input: &str) -> String {
    let Some((scheme, rest)) = input.split_once("://") else {
        return input.to_string();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***{}", &rest[at..]),
        None => input.to_string(),
    }
}

/// `reports/{kind}/{period}/{scope}.{extension}`, e.g. `reports/daily/2026-03-10/all.xlsx`.
/// `kind` is hourly, daily or monthly; `scope` a vCenter name or `all`; `extension` xlsx or
/// csv; `period` and `scope` are single key segments (see the module documentation).
pub fn report_key(kind: &str, period: &str, scope: &str, extension: &str) -> Result<String, Error> {
    let key = format!("reports/{kind}/{period}/{scope}.{extension}");
    let invalid = |problem: String| Error::Key {
        key: key.clone(),
        problem,
    };
    if !matches!(kind, "hourly" | "daily" | "monthly") {
        return Err(invalid(format!(
            "the report kind {kind:?} is not hourly, daily or monthly"
        )));
    }
    if !matches!(extension, "xlsx" | "csv") {
        return Err(invalid(format!(
            "the extension {extension:?} is not xlsx or csv"
        )));
    }
    check_segment("period", period).map_err(invalid)?;
    check_segment("scope", scope).map_err(invalid)?;
    check_key(&key)?;
    Ok(key)
}

fn check_key(key: &str) -> Result<(), Error> {
    let invalid = |problem: String| Error::Key {
        key: key.to_string(),
        problem,
    };
    if key.is_empty() {
        return Err(invalid("the key is empty".to_string()));
    }
    if key.starts_with('/') {
        return Err(invalid(
            "the key must be relative to the store (no leading /)".to_string(),
        ));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(invalid(format!(
            "the key is longer than {MAX_KEY_BYTES} bytes"
        )));
    }
    for segment in key.split('/') {
        check_segment("each part between slashes", segment).map_err(invalid)?;
    }
    Ok(())
}

/// Checks one segment of a key; the problem names the segment as `what`.
fn check_segment(what: &str, segment: &str) -> Result<(), String> {
    if segment.is_empty() {
        return Err(format!(
            "{what} must not be empty (no leading, trailing or doubled /)"
        ));
    }
    if segment.starts_with('.') {
        return Err(format!(
            "{what} must not start with '.' (this rules out . and ..), got {segment:?}"
        ));
    }
    if segment.chars().count() > MAX_SEGMENT_CHARS {
        return Err(format!(
            "{what} is longer than {MAX_SEGMENT_CHARS} characters"
        ));
    }
    if let Some(bad) = segment
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "{what} {segment:?} contains {bad:?}; only letters, digits, '.', '_' and '-' are allowed"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_options() -> BTreeMap<String, String> {
        BTreeMap::new()
    }

    fn options(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn s3_options() -> BTreeMap<String, String> {
        options(&[
            ("aws_endpoint", "http://127.0.0.1:9"),
            ("aws_region", "us-east-1"),
            ("aws_access_key_id", "AKIDEXAMPLE"),
            ("aws_secret_access_key", "the-secret"),
            ("aws_allow_http", "true"),
        ])
    }

    #[test]
    fn report_keys_follow_the_layout() {
        assert_eq!(
            report_key("daily", "2026-03-10", "all", "xlsx").unwrap(),
            "reports/daily/2026-03-10/all.xlsx"
        );
        assert_eq!(
            report_key("hourly", "2026-03-10T14", "vc1.example.com", "csv").unwrap(),
            "reports/hourly/2026-03-10T14/vc1.example.com.csv"
        );
        assert_eq!(
            report_key("monthly", "2026-03", "vc_2-east", "xlsx").unwrap(),
            "reports/monthly/2026-03/vc_2-east.xlsx"
        );
    }

    #[test]
    fn report_keys_refuse_unknown_kinds_and_extensions() {
        let e = report_key("weekly", "2026-03-10", "all", "xlsx").unwrap_err();
        assert!(e.to_string().contains("\"weekly\""), "{e}");
        assert_eq!(e.reason(), "InvalidObjectKey");
        let e = report_key("daily", "2026-03-10", "all", "pdf").unwrap_err();
        assert!(e.to_string().contains("\"pdf\""), "{e}");
    }

    #[test]
    fn key_parts_with_slashes_dots_or_unsafe_characters_are_refused() {
        for scope in [
            "", "..", ".", ".hidden", "a/b", "../etc", "vc1\n", "vc\u{7f}", "a b", "vc1:443",
            "a\\b", "vc#1", "é",
        ] {
            let e = report_key("daily", "2026-03-10", scope, "xlsx")
                .expect_err(&format!("scope {scope:?} must be refused"));
            assert!(matches!(e, Error::Key { .. }), "{e}");
        }
        for key in [
            "exports/ns/name/2026-03-10T14:00:00Z.zip",
            "exports/ns/../x.zip",
        ] {
            assert!(check_key(key).is_err(), "{key:?}");
        }
        assert!(check_key(&format!("exports/ns/{}/1.zip", "x".repeat(201))).is_err());
    }

    #[test]
    fn keys_must_be_relative_and_made_of_safe_segments() {
        for key in [
            "", "/abs/key", "a//b", "a/", "a/../b", "./a", "a/./b", "a/.git/b", "a/b\0", "a/b\tc",
            "a/%2e%2e",
        ] {
            assert!(check_key(key).is_err(), "{key:?} must be refused");
        }
        assert!(
            check_key(&format!("{}x", "abcd/".repeat(180))).is_err(),
            "too long"
        );
        for key in ["a", "reports/daily/2026-03-10/all.xlsx", "x.y.z/1_2-3"] {
            assert!(check_key(key).is_ok(), "{key:?}");
        }
    }

    #[test]
    fn the_error_names_the_offending_part() {
        let e = check_key("reports/../x").unwrap_err().to_string();
        assert!(e.contains("reports/../x") && e.contains("\"..\""), "{e}");
        let e = check_key("/abs").unwrap_err().to_string();
        assert!(e.contains("leading /"), "{e}");
    }

    #[tokio::test]
    async fn s3_urls_keep_the_path_after_the_bucket_as_the_prefix() {
        let objects = Objects::from_url("s3://bucket/some/prefix", &s3_options()).unwrap();
        assert_eq!(objects.url(), "s3://bucket/some/prefix");
        assert_eq!(objects.prefix.as_ref(), "some/prefix");
        let signed = objects
            .presign_get("reports/daily/2026-03-10/all.xlsx", Duration::from_secs(60))
            .await
            .unwrap()
            .expect("S3 presigns");
        assert!(
            signed.starts_with(
                "http://127.0.0.1:9/bucket/some/prefix/reports/daily/2026-03-10/all.xlsx?"
            ),
            "{signed}"
        );
        assert!(signed.contains("X-Amz-Signature="), "{signed}");
        assert!(!signed.contains("the-secret"), "{signed}");
    }

    #[test]
    fn a_bucket_url_without_a_path_has_no_prefix() {
        let objects = Objects::from_url("s3://bucket", &s3_options()).unwrap();
        assert_eq!(objects.prefix.as_ref(), "");
        let objects = Objects::from_url("s3://bucket/", &s3_options()).unwrap();
        assert_eq!(objects.prefix.as_ref(), "");
    }

    #[test]
    fn the_https_form_of_s3_takes_the_bucket_from_the_path() {
        let objects = Objects::from_url(
            "https://s3.eu-west-1.amazonaws.com/bucket/vctp",
            &options(&[
                ("aws_access_key_id", "AKIDEXAMPLE"),
                ("aws_secret_access_key", "the-secret"),
            ]),
        )
        .unwrap();
        assert_eq!(objects.prefix.as_ref(), "vctp");
    }

    #[tokio::test]
    async fn az_urls_name_the_container_and_keep_the_whole_path_as_the_prefix() {
        let objects = Objects::from_url(
            "az://reports-container/vctp/prod",
            &options(&[
                ("azure_storage_account_name", "account1"),
                // Base64 of 32 zero bytes: Azure signs with the decoded account key.
                (
                    "azure_storage_account_key",
                    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                ),
            ]),
        )
        .unwrap();
        assert_eq!(objects.url(), "az://reports-container/vctp/prod");
        assert_eq!(objects.prefix.as_ref(), "vctp/prod");
        let signed = objects
            .presign_get("exports/ns/n/1.zip", Duration::from_secs(60))
            .await
            .unwrap()
            .expect("Azure presigns with an account key");
        assert!(
            signed.starts_with(
                "https://account1.blob.core.windows.net/reports-container/vctp/prod/exports/ns/n/1.zip?"
            ),
            "{signed}"
        );
    }

    #[test]
    fn gs_urls_keep_the_path_after_the_bucket_as_the_prefix() {
        let objects = Objects::from_url("gs://bucket/a/b", &no_options()).unwrap();
        assert_eq!(objects.url(), "gs://bucket/a/b");
        assert_eq!(objects.prefix.as_ref(), "a/b");
    }

    #[test]
    fn unknown_schemes_are_refused_by_name() {
        for url in ["ftp://host/dir", "memory:///", "sftp://host/x"] {
            let e = Objects::from_url(url, &no_options()).unwrap_err();
            let scheme = url.split_once("://").unwrap().0;
            assert!(e.to_string().contains(&format!("`{scheme}`")), "{url}: {e}");
            assert_eq!(e.reason(), "InvalidObjectStoreUrl");
        }
        let e = Objects::from_url("https://example.com/bucket", &no_options()).unwrap_err();
        assert!(e.to_string().contains("s3://bucket/prefix"), "{e}");
    }

    #[test]
    fn unknown_option_keys_are_refused_by_name() {
        let mut typo = s3_options();
        typo.insert("aws_endpiont".to_string(), "http://x".to_string());
        let e = Objects::from_url("s3://bucket/p", &typo).unwrap_err();
        assert!(matches!(&e, Error::UnknownOption { key, .. } if key == "aws_endpiont"));
        assert!(
            e.to_string().contains("`aws_endpiont`") && e.to_string().contains("s3://bucket/p"),
            "{e}"
        );
        assert_eq!(e.reason(), "UnknownObjectStoreOption");

        let other_backend = options(&[("google_service_account", "/sa.json")]);
        let e = Objects::from_url("s3://bucket/p", &other_backend).unwrap_err();
        assert!(e.to_string().contains("`google_service_account`"), "{e}");

        let dir = tempfile::tempdir().unwrap();
        let e = Objects::from_url(dir.path().to_str().unwrap(), &s3_options()).unwrap_err();
        assert!(e.to_string().contains("the local filesystem takes"), "{e}");
    }

    #[test]
    fn credentials_in_the_url_are_refused_and_never_shown() {
        let e = Objects::from_url("s3://AKID:s3cret@bucket/p", &no_options()).unwrap_err();
        assert!(!e.to_string().contains("s3cret"), "{e}");
        assert!(e.to_string().contains("password"), "{e}");
        let e = Objects::from_url("s3://AKID:s3cret@buc ket/p", &no_options()).unwrap_err();
        assert!(!e.to_string().contains("s3cret"), "{e}");
        let e = Objects::from_url("s3://bucket/p?secret=x", &no_options()).unwrap_err();
        assert!(e.to_string().contains("query"), "{e}");
    }

    #[test]
    fn file_urls_with_a_host_are_refused() {
        let e = Objects::from_url("file://server/share", &no_options()).unwrap_err();
        assert!(e.to_string().contains("file:///absolute/path"), "{e}");
    }

    #[test]
    fn store_errors_name_access_denied_and_missing_buckets() {
        let generic = |text: &str| object_store::Error::Generic {
            store: "S3",
            source: text.into(),
        };
        let listed = generic(
            "Error performing list request: Error performing GET http://h/b?list-type=2 in 2ms - Server returned non-2xx status code: 403 Forbidden: <Error><Code>SignatureDoesNotMatch</Code></Error>",
        );
        assert!(
            cause(&listed).starts_with("access denied"),
            "{}",
            cause(&listed)
        );
        let created = generic(
            "Error performing create multipart request: Server returned non-2xx status code: 404 Not Found: <Error><Code>NoSuchBucket</Code></Error>",
        );
        assert!(
            cause(&created).contains("does the bucket"),
            "{}",
            cause(&created)
        );
        let denied = object_store::Error::PermissionDenied {
            path: "p".to_string(),
            source: "403".into(),
        };
        assert!(cause(&denied).starts_with("access denied"));
        let other = generic("Server returned non-2xx status code: 500 Internal Server Error");
        assert_eq!(cause(&other), other.to_string());
        assert_eq!(http_status(&generic("no status here")), None);
    }

    #[test]
    fn debug_output_shows_only_the_url() {
        let objects = Objects::from_url("s3://bucket/p", &s3_options()).unwrap();
        let shown = format!("{objects:?}");
        assert_eq!(shown, r#"Objects { url: "s3://bucket/p" }"#);
    }
}
