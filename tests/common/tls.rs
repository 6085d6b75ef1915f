//! Self-signed server certificates as users make them (`openssl req -x509`, which marks them
//! CA:TRUE), and a TLS-terminating proxy on 127.0.0.1 that presents one in front of a
//! plain-text peer (slapd's LDAP port, s3s-fs, the simulator).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};

/// A certificate and its key, in `dir`.
pub struct SelfSigned {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// `openssl req -x509 -newkey rsa:2048 … -addext subjectAltName=<san>`, valid for two days.
pub fn self_signed(dir: &Path, name: &str, san: &str) -> SelfSigned {
    let cert = dir.join(format!("{name}.pem"));
    let key = dir.join(format!("{name}.key"));
    let output = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256"])
        .args(["-days", "2", "-subj", &format!("/CN={name}")])
        .args(["-addext", &format!("subjectAltName={san}")])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("the TLS tests need the openssl program (apt-get install openssl)");
    assert!(
        output.status.success(),
        "openssl req -x509 failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    SelfSigned { cert, key }
}

/// Accepts TLS on a free port of 127.0.0.1 with `identity` and relays every connection's
/// plain text to `upstream`, for as long as the test's runtime lives.
pub async fn proxy(identity: &SelfSigned, upstream: std::net::SocketAddr) -> std::net::SocketAddr {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(&identity.cert)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(&identity.key).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A client that refuses the certificate ends the handshake: nothing to relay.
                let Ok(mut client) = acceptor.accept(client).await else {
                    return;
                };
                let Ok(mut server) = TcpStream::connect(upstream).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            });
        }
    });
    address
}

/// The `host:port` of an `scheme://host:port…` URL, resolved.
pub fn address_of(url: &str) -> std::net::SocketAddr {
    use std::net::ToSocketAddrs;
    let parsed = url::Url::parse(url).unwrap();
    (
        parsed.host_str().unwrap(),
        parsed.port_or_known_default().unwrap(),
    )
        .to_socket_addrs()
        .unwrap()
        .next()
        .unwrap()
}
