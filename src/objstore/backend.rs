//! Which store a URL names, and its configuration from options and the environment.

use super::{DEFAULT_RETRY_TIMEOUT, Error, Objects};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::client::{ClientConfigKey, ClientOptions, HttpClient, HttpConnector};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path as StorePath;
use object_store::signer::Signer;
use object_store::{BackoffConfig, ObjectStore, ObjectStoreScheme, RetryConfig};
use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use url::Url;

/// The option naming a PEM file of certificates to trust for a cloud store, instead of the
/// built-in roots: CAs, or the server's own certificate (see [`crate::tls`]). vctp's, not
/// object_store's.
pub const CA_FILE: &str = "ca_file";

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
    /// it; the local filesystem takes no options at all. vctp's own option [`CA_FILE`] names a
    /// PEM file to trust instead of the built-in roots. Credentials belong in `options`: a URL
    /// with a password, a query or a fragment is refused.
    ///
    /// Each request may take [`DEFAULT_RETRY_TIMEOUT`], retries included; see
    /// [`Objects::from_url_with`].
    pub fn from_url(url: &str, options: &BTreeMap<String, String>) -> Result<Objects, Error> {
        Objects::from_url_with(url, options, DEFAULT_RETRY_TIMEOUT)
    }

    /// As [`Objects::from_url`], each request to the store (retries included) taking at most
    /// `limit` before it fails (settings.object_store_retry_timeout_seconds).
    pub fn from_url_with(
        url: &str,
        options: &BTreeMap<String, String>,
        limit: Duration,
    ) -> Result<Objects, Error> {
        let input = url.trim();
        if input.is_empty() {
            return Err(Error::Url {
                url: String::new(),
                problem: "the URL is empty".to_string(),
            });
        }
        if !input.contains("://") {
            return local(Path::new(input), options, limit);
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
            return local(&dir, options, limit);
        }
        cloud(&parsed, options, limit)
    }
}

fn local(
    dir: &Path,
    options: &BTreeMap<String, String>,
    limit: Duration,
) -> Result<Objects, Error> {
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
        limit,
    })
}

fn cloud(
    parsed: &Url,
    options: &BTreeMap<String, String>,
    limit: Duration,
) -> Result<Objects, Error> {
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
    let mut options = options.clone();
    let trusting = options
        .remove(CA_FILE)
        .map(|path| trusting_connector(&path, &url))
        .transpose()?;
    let (store, signer): (Arc<dyn ObjectStore>, Arc<dyn Signer>) = match scheme {
        ObjectStoreScheme::AmazonS3 => {
            let mut builder = AmazonS3Builder::from_env()
                .with_url(parsed.as_str())
                .with_retry(retry(limit));
            if let Some(connector) = trusting {
                builder = builder.with_http_connector(connector);
            }
            let builder = configure(
                builder,
                &options,
                &url,
                "S3",
                |b, k: AmazonS3ConfigKey, v| b.with_config(k, v),
            )?;
            let s3 = Arc::new(builder.build().map_err(open)?);
            (s3.clone(), s3)
        }
        ObjectStoreScheme::GoogleCloudStorage => {
            let mut builder = GoogleCloudStorageBuilder::from_env()
                .with_url(parsed.as_str())
                .with_retry(retry(limit));
            if let Some(connector) = trusting {
                builder = builder.with_http_connector(connector);
            }
            let builder = configure(
                builder,
                &options,
                &url,
                "GCS",
                |b, k: GoogleConfigKey, v| b.with_config(k, v),
            )?;
            let gcs = Arc::new(builder.build().map_err(open)?);
            (gcs.clone(), gcs)
        }
        ObjectStoreScheme::MicrosoftAzure => {
            let mut builder = MicrosoftAzureBuilder::from_env()
                .with_url(parsed.as_str())
                .with_retry(retry(limit));
            if let Some(connector) = trusting {
                builder = builder.with_http_connector(connector);
            }
            let builder = configure(
                builder,
                &options,
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
        limit,
    })
}

/// object_store's retries within a request `limit`: it stops retrying at half of it, with
/// waits of at most a quarter, so a store that refuses connections fails with its own cause
/// before [`Objects`] cuts the request off at the limit (which still ends one that hangs).
fn retry(limit: Duration) -> RetryConfig {
    let defaults = RetryConfig::default();
    RetryConfig {
        backoff: BackoffConfig {
            max_backoff: defaults.backoff.max_backoff.min(limit / 4),
            ..defaults.backoff
        },
        retry_timeout: limit / 2,
        ..defaults
    }
}

/// The HTTP client of a store whose certificates are checked against the PEM file `path`.
fn trusting_connector(path: &str, url: &str) -> Result<TrustingConnector, Error> {
    let problem = |problem: String| Error::CaFile {
        url: url.to_string(),
        problem,
    };
    let pem = std::fs::read(path).map_err(|e| problem(format!("failed to read {path}: {e}")))?;
    let tls = crate::tls::client_config(&pem, crate::tls::Roots::FileOnly)
        .map_err(|e| problem(format!("{path} {e}")))?;
    Ok(TrustingConnector { tls })
}

/// object_store's reqwest client with the TLS configuration of `ca_file`. object_store builds
/// its own client privately, so the client options are carried over here; the two that
/// would change whom the client trusts or talks to through (`allow_invalid_certificates`,
/// `proxy_url`) are refused with `ca_file`.
#[derive(Debug)]
struct TrustingConnector {
    tls: rustls::ClientConfig,
}

impl HttpConnector for TrustingConnector {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        let value = |key: ClientConfigKey| options.get_config_value(&key);
        let refuse = |message: String| object_store::Error::Generic {
            store: "ca_file",
            source: message.into(),
        };
        if value(ClientConfigKey::AllowInvalidCertificates).as_deref() == Some("true") {
            return Err(refuse(
                "allow_invalid_certificates and ca_file contradict each other; drop one".into(),
            ));
        }
        if value(ClientConfigKey::ProxyUrl).is_some() {
            return Err(refuse("proxy_url cannot be combined with ca_file".into()));
        }
        let duration = |key: ClientConfigKey| {
            value(key)
                .map(|text| humantime::parse_duration(&text))
                .transpose()
                .map_err(|e| refuse(format!("{}: {e}", key.as_ref())))
        };
        let mut builder = reqwest::Client::builder()
            .use_preconfigured_tls(self.tls.clone())
            .https_only(value(ClientConfigKey::AllowHttp).as_deref() != Some("true"))
            .user_agent(
                value(ClientConfigKey::UserAgent)
                    .unwrap_or_else(|| concat!("vctp/", env!("CARGO_PKG_VERSION")).to_string()),
            );
        if let Some(timeout) = duration(ClientConfigKey::Timeout)? {
            builder = builder.timeout(timeout);
        }
        if let Some(timeout) = duration(ClientConfigKey::ConnectTimeout)? {
            builder = builder.connect_timeout(timeout);
        }
        if let Some(timeout) = duration(ClientConfigKey::PoolIdleTimeout)? {
            builder = builder.pool_idle_timeout(timeout);
        }
        if let Some(max) = value(ClientConfigKey::PoolMaxIdlePerHost) {
            let max = max
                .parse()
                .map_err(|e| refuse(format!("pool_max_idle_per_host: {e}")))?;
            builder = builder.pool_max_idle_per_host(max);
        }
        let client = builder.build().map_err(|e| refuse(e.to_string()))?;
        Ok(HttpClient::new(client))
    }
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
    fn debug_output_shows_only_the_url() {
        let objects = Objects::from_url("s3://bucket/p", &s3_options()).unwrap();
        let shown = format!("{objects:?}");
        assert_eq!(shown, r#"Objects { url: "s3://bucket/p" }"#);
    }
}
