//! The object store's errors, each with a stable short name.

use std::path::PathBuf;
use std::time::Duration;

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
    #[error("option `ca_file` of object store {url}: {problem}")]
    CaFile { url: String, problem: String },
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
    #[error(
        "failed to put {key} to object store {url} after {:.1} s: {}",
        elapsed.as_secs_f64(),
        cause(source)
    )]
    Put {
        url: String,
        key: String,
        /// From the start of the write to its failure, retries included.
        elapsed: Duration,
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
            Error::CaFile { .. } => "InvalidObjectStoreCaFile",
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

    /// Whether the store could not be reached or did not answer in time (rather than
    /// refusing the request): the API answers 503 with `Retry-After` for these.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Error::Open { source, .. }
            | Error::Put { source, .. }
            | Error::Get { source, .. }
            | Error::List { source, .. }
            | Error::Delete { source, .. } => unreachable(source),
            _ => false,
        }
    }
}

/// A request that got no answer within the store's limit, retries included.
#[derive(Debug, thiserror::Error)]
#[error("no answer within {} s", .0.as_secs_f64())]
struct Stalled(Duration);

/// The error of a request cut off after `limit`, in object_store's type so that it travels
/// with the store's own errors.
pub(super) fn stalled(limit: Duration) -> object_store::Error {
    object_store::Error::Generic {
        store: "object store",
        source: Box::new(Stalled(limit)),
    }
}

/// The store is down or unreachable: it did not answer within the limit, a connection could
/// not be made or broke, or it answered with a server error (5xx) even after the retries.
fn unreachable(source: &object_store::Error) -> bool {
    use std::io::ErrorKind;
    if matches!(http_status(source), Some(500..=599)) {
        return true;
    }
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(source);
    while let Some(e) = next {
        if e.is::<Stalled>() {
            return true;
        }
        if let Some(http) = e.downcast_ref::<reqwest::Error>()
            && (http.is_connect() || http.is_timeout())
        {
            return true;
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                ErrorKind::ConnectionRefused
                    | ErrorKind::ConnectionReset
                    | ErrorKind::ConnectionAborted
                    | ErrorKind::BrokenPipe
                    | ErrorKind::TimedOut
            )
        {
            return true;
        }
        next = e.source();
    }
    false
}

/// The store's error, with the likely cause first where object_store's wording hides it
/// (a wrong secret comes back as 403 SignatureDoesNotMatch, which object_store calls
/// "lacked the necessary privileges" or, for list and multipart requests, a "Generic S3
/// error").
fn cause(source: &object_store::Error) -> String {
    if let object_store::Error::Generic { source: inner, .. } = source
        && let Some(stalled) = inner.downcast_ref::<Stalled>()
    {
        return stalled.to_string();
    }
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
