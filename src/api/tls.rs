//! HTTPS for the server: the certificate and key from the settings, re-read when their files
//! change (cert-manager rotates them in place), or a self-signed pair made once and kept.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use sha2::Digest;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

/// File names of the self-signed pair, in [`Source::SelfSigned`]'s directory.
pub const SELF_SIGNED_CERT: &str = "vctp-tls.crt";
pub const SELF_SIGNED_KEY: &str = "vctp-tls.key";

/// How often, at most, the files are looked at for a change (on a TLS handshake).
const RECHECK: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to read the TLS {what} {path}")]
    Read {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the TLS certificate file {0} holds no PEM certificate")]
    NoCertificate(PathBuf),
    #[error("the TLS key file {0} holds no PEM private key")]
    NoKey(PathBuf),
    #[error("the TLS key file {path} is not a usable key for its certificate")]
    Key {
        path: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error("failed to make a self-signed certificate")]
    Generate(#[from] rcgen::Error),
    #[error("failed to write the self-signed TLS {what} {path}")]
    Write {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to configure TLS")]
    Config(#[source] rustls::Error),
}

/// Where the server's certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `tls_cert_filename` and `tls_key_filename`.
    Files { cert: PathBuf, key: PathBuf },
    /// [`SELF_SIGNED_CERT`] and [`SELF_SIGNED_KEY`] in `dir`, made for `hosts` when missing.
    SelfSigned { dir: PathBuf, hosts: Vec<String> },
}

impl Source {
    /// The configured pair, else a self-signed one kept in `dir` for `listen`'s address,
    /// this host's name and localhost.
    pub fn new(
        cert: Option<&Path>,
        key: Option<&Path>,
        dir: PathBuf,
        listen: SocketAddr,
    ) -> Source {
        if let (Some(cert), Some(key)) = (cert, key) {
            return Source::Files {
                cert: cert.to_path_buf(),
                key: key.to_path_buf(),
            };
        }
        let mut hosts = vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
            "::1".to_string(),
        ];
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let ip = listen.ip();
        for host in [hostname.trim().to_string(), ip.to_string()] {
            if !host.is_empty() && !ip_is_any(&host) && !hosts.contains(&host) {
                hosts.push(host);
            }
        }
        Source::SelfSigned { dir, hosts }
    }
}

fn ip_is_any(host: &str) -> bool {
    host.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_unspecified())
}

/// A TLS acceptor for `source` (HTTP/1.1 only, as the server speaks no HTTP/2).
pub fn acceptor(source: &Source) -> Result<tokio_rustls::TlsAcceptor, Error> {
    let (cert, key) = match source {
        Source::Files { cert, key } => (cert.clone(), key.clone()),
        Source::SelfSigned { dir, hosts } => self_signed(dir, hosts)?,
    };
    let resolver = Reloading::new(cert, key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(Error::Config)?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// The self-signed pair in `dir`: reused when both files are there (so clients that pinned
/// it keep trusting it across restarts), else made for `hosts` and written.
fn self_signed(dir: &Path, hosts: &[String]) -> Result<(PathBuf, PathBuf), Error> {
    let cert = dir.join(SELF_SIGNED_CERT);
    let key = dir.join(SELF_SIGNED_KEY);
    let generated = !(cert.exists() && key.exists());
    if generated {
        let made = rcgen::generate_simple_self_signed(hosts.to_vec())?;
        write_new(
            &key,
            "key",
            made.signing_key.serialize_pem().as_bytes(),
            0o600,
        )?;
        write_new(&cert, "certificate", made.cert.pem().as_bytes(), 0o644)?;
    }
    let chain = read_chain(&cert)?;
    let fingerprint = chain
        .first()
        .map(|der| fingerprint(der))
        .unwrap_or_default();
    tracing::warn!(
        certificate = %cert.display(),
        sha256 = fingerprint,
        generated,
        "serving HTTPS with a self-signed certificate (set tls_cert_filename and tls_key_filename to use your own)"
    );
    Ok((cert, key))
}

fn write_new(path: &Path, what: &'static str, bytes: &[u8], mode: u32) -> Result<(), Error> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let failed = |source| Error::Write {
        what,
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(failed)?;
    file.write_all(bytes).map_err(failed)
}

/// SHA-256 of a certificate's DER, as `AB:CD:…` (how browsers and openssl show it).
pub fn fingerprint(der: &[u8]) -> String {
    sha2::Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let bytes = std::fs::read(path).map_err(|source| Error::Read {
        what: "certificate",
        path: path.to_path_buf(),
        source,
    })?;
    let chain: Vec<_> = CertificateDer::pem_slice_iter(&bytes)
        .filter_map(Result::ok)
        .collect();
    if chain.is_empty() {
        return Err(Error::NoCertificate(path.to_path_buf()));
    }
    Ok(chain)
}

fn load(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, Error> {
    let chain = read_chain(cert)?;
    let bytes = std::fs::read(key).map_err(|source| Error::Read {
        what: "key",
        path: key.to_path_buf(),
        source,
    })?;
    let der = PrivateKeyDer::from_pem_slice(&bytes).map_err(|_| Error::NoKey(key.to_path_buf()))?;
    let bad_key = |source| Error::Key {
        path: key.to_path_buf(),
        source,
    };
    let signing = rustls::crypto::ring::sign::any_supported_type(&der).map_err(bad_key)?;
    let certified = CertifiedKey::new(chain, signing);
    // A key from another pair (a rotation caught half-way) is refused, not served.
    certified.keys_match().map_err(bad_key)?;
    Ok(Arc::new(certified))
}

/// The pair in `cert`/`key`, reloaded on a handshake when either file's modification time
/// changed (looked at every [`RECHECK`] at most). A new pair that does not load keeps the
/// one in use, and the log says why.
#[derive(Debug)]
struct Reloading {
    cert: PathBuf,
    key: PathBuf,
    current: Mutex<Current>,
}

#[derive(Debug)]
struct Current {
    pair: Arc<CertifiedKey>,
    stamp: Stamp,
    checked: Instant,
}

type Stamp = (Option<SystemTime>, Option<SystemTime>);

impl Reloading {
    fn new(cert: PathBuf, key: PathBuf) -> Result<Reloading, Error> {
        let stamp = stamp(&cert, &key);
        let pair = load(&cert, &key)?;
        Ok(Reloading {
            cert,
            key,
            current: Mutex::new(Current {
                pair,
                stamp,
                checked: Instant::now(),
            }),
        })
    }
}

fn stamp(cert: &Path, key: &Path) -> Stamp {
    let modified = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    (modified(cert), modified(key))
}

impl ResolvesServerCert for Reloading {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        if current.checked.elapsed() >= RECHECK {
            current.checked = Instant::now();
            let stamp = stamp(&self.cert, &self.key);
            if stamp != current.stamp {
                current.stamp = stamp;
                match load(&self.cert, &self.key) {
                    Ok(pair) => {
                        let sha256 = pair.end_entity_cert().map(|c| fingerprint(c)).ok();
                        tracing::info!(certificate = %self.cert.display(), sha256, "reloaded the TLS certificate");
                        current.pair = pair;
                    }
                    Err(e) => tracing::warn!(
                        error = format!("{:#}", anyhow::Error::new(e)),
                        "the changed TLS certificate or key does not load; still serving the previous one"
                    ),
                }
            }
        }
        Some(current.pair.clone())
    }
}
