//! The S3-compatible test server (s3s-fs, which checks SigV4 signatures) that
//! `scripts/test.sh` starts through `scripts/s3.sh`; its address and credentials come in
//! `VCTP_TEST_S3_*`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use vctp::objstore::Objects;

pub struct S3Server {
    pub endpoint: String,
    pub bucket: String,
    pub access_key: String,
    pub secret_key: String,
    pub region: String,
}

/// The test server's settings; fails with the script to run when they are not set.
pub fn s3_server() -> S3Server {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!(
                "{name} is not set: run the tests through scripts/test.sh, which starts the S3-compatible server (scripts/s3.sh)"
            )
        })
    };
    S3Server {
        endpoint: var("VCTP_TEST_S3_ENDPOINT"),
        bucket: var("VCTP_TEST_S3_BUCKET"),
        access_key: var("VCTP_TEST_S3_ACCESS_KEY"),
        secret_key: var("VCTP_TEST_S3_SECRET_KEY"),
        region: var("VCTP_TEST_S3_REGION"),
    }
}

impl S3Server {
    pub fn options(
        &self,
        endpoint: &str,
        access_key: &str,
        secret_key: &str,
    ) -> BTreeMap<String, String> {
        [
            ("aws_endpoint", endpoint),
            ("aws_region", &self.region),
            ("aws_access_key_id", access_key),
            ("aws_secret_access_key", secret_key),
            ("aws_allow_http", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    pub fn good_options(&self) -> BTreeMap<String, String> {
        self.options(&self.endpoint, &self.access_key, &self.secret_key)
    }

    /// `s3://<bucket>/<prefix>`.
    pub fn url(&self, prefix: &str) -> String {
        format!("s3://{}/{prefix}", self.bucket)
    }

    /// The store at `prefix` in the test bucket.
    pub fn objects(&self, prefix: &str) -> Objects {
        Objects::from_url(&self.url(prefix), &self.good_options()).expect("open the test bucket")
    }
}

/// The keys under `prefix` (in the test bucket) with a multipart upload still open: s3s-fs
/// keeps a `.bucket-<b64>.object-<b64 key>.upload-<id>.metadata.json` file in its root
/// (`VCTP_TEST_S3_DATA_DIR`) from the upload's creation to its completion or abort.
pub fn open_uploads(prefix: &str) -> Vec<String> {
    use base64::Engine;
    let dir = std::env::var("VCTP_TEST_S3_DATA_DIR").unwrap_or_else(|_| {
        panic!(
            "VCTP_TEST_S3_DATA_DIR is not set: run the tests through scripts/test.sh, which starts the S3-compatible server (scripts/s3.sh)"
        )
    });
    let decode = |text: &str| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
    };
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let rest = name.split_once(".object-")?.1;
            let (key, _) = rest.split_once(".upload-")?;
            decode(key)
        })
        .filter(|key| key.starts_with(prefix))
        .collect()
}

/// A prefix no other test (or earlier run against the same server) uses.
pub fn unique_prefix(name: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "test-{}-{}-{name}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    )
}
