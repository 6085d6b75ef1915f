//! TLS client configurations that trust the certificates of a PEM file: LDAP, vCenter,
//! object storage and metrics sources.
//!
//! A certificate chain is first verified as usual (webpki, the file's certificates as roots).
//! Only when that fails is the server's own certificate accepted, and only if its bytes are
//! exactly one of the file's certificates, it is within its validity dates and it is valid for
//! the host name: the self-signed server certificate that Go and OpenSSL clients accept when
//! it is in their trust file (`openssl req -x509` marks it CA:TRUE, which webpki refuses as
//! an end-entity certificate). The handshake's signatures are verified either way.

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::sync::Arc;

/// What is wrong with a trust file; the caller names the file (each message follows it).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("is not a PEM certificate file: {0}")]
    Pem(String),
    #[error("holds no PEM certificate")]
    NoCertificate,
    #[error("holds an unusable certificate: {0}")]
    Unusable(String),
    #[error("gives no usable TLS configuration: {0}")]
    Setup(String),
}

/// What is trusted besides the file's certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Roots {
    /// The file's certificates only.
    FileOnly,
    /// The roots reqwest trusts by default too: the web PKI roots and the system's store.
    AlsoBuiltIn,
}

/// A client configuration trusting the certificates of `pem` (see the module doc).
pub fn client_config(pem: &[u8], roots: Roots) -> Result<rustls::ClientConfig, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(TrustFile::new(pem, roots, provider.clone())?);
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Setup(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

/// A chain verifier that also accepts a server certificate found in the trust file.
#[derive(Debug)]
struct TrustFile {
    chain: Arc<WebPkiServerVerifier>,
    pinned: Vec<CertificateDer<'static>>,
}

impl TrustFile {
    fn new(
        pem: &[u8],
        roots: Roots,
        provider: Arc<rustls::crypto::CryptoProvider>,
    ) -> Result<TrustFile, Error> {
        let pinned = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Error::Pem(e.to_string()))?;
        if pinned.is_empty() {
            return Err(Error::NoCertificate);
        }
        let mut store = RootCertStore::empty();
        if roots == Roots::AlsoBuiltIn {
            store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            // As reqwest does: a system store that cannot be read, or a certificate in it that
            // cannot be used, only leaves those roots out.
            store.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        }
        for cert in &pinned {
            store
                .add(cert.clone())
                .map_err(|e| Error::Unusable(e.to_string()))?;
        }
        let chain = WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider)
            .build()
            .map_err(|e| Error::Setup(e.to_string()))?;
        Ok(TrustFile { chain, pinned })
    }
}

impl ServerCertVerifier for TrustFile {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let error = match self.chain.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Ok(verified) => return Ok(verified),
            Err(error) => error,
        };
        if !self
            .pinned
            .iter()
            .any(|cert| cert.as_ref() == end_entity.as_ref())
        {
            return Err(error);
        }
        // It is the certificate the file trusts: only its dates and name are left to check,
        // and their own errors say more than the chain's (e.g. CaUsedAsEndEntity).
        check_pinned(end_entity, server_name, now)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.chain.supported_verify_schemes()
    }
}

/// The validity dates and the host name of a certificate trusted as it is.
fn check_pinned(
    cert: &CertificateDer<'_>,
    server_name: &ServerName<'_>,
    now: UnixTime,
) -> Result<(), rustls::Error> {
    let invalid = |error| rustls::Error::InvalidCertificate(error);
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref())
        .map_err(|_| invalid(CertificateError::BadEncoding))?;
    let validity = parsed.validity();
    // UnixTime is u64 seconds; no certificate date is anywhere near i64::MAX.
    let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    if now < validity.not_before.timestamp() {
        return Err(invalid(CertificateError::NotValidYet));
    }
    if now > validity.not_after.timestamp() {
        return Err(invalid(CertificateError::Expired));
    }
    webpki::EndEntityCert::try_from(cert)
        .map_err(|_| invalid(CertificateError::BadEncoding))?
        .verify_is_valid_for_subject_name(server_name)
        .map_err(|_| invalid(CertificateError::NotValidForName))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::process::Command;

    /// An `openssl req -x509` certificate (CA:TRUE, as openssl makes it) for `san`.
    fn self_signed(dir: &Path, name: &str, san: &str) -> Vec<u8> {
        let cert = dir.join(format!("{name}.pem"));
        let status = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args(["-subj", &format!("/CN={name}")])
            .args(["-addext", &format!("subjectAltName={san}")])
            .arg("-keyout")
            .arg(dir.join(format!("{name}.key")))
            .arg("-out")
            .arg(&cert)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("the TLS tests need the openssl program (apt-get install openssl)");
        assert!(status.success(), "openssl req -x509 failed");
        std::fs::read(cert).unwrap()
    }

    fn der(pem: &[u8]) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(pem).unwrap()
    }

    fn verifier(pem: &[u8]) -> TrustFile {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        TrustFile::new(pem, Roots::FileOnly, provider).unwrap()
    }

    fn at(seconds_from_now: i64) -> UnixTime {
        let now = UnixTime::now().as_secs();
        UnixTime::since_unix_epoch(std::time::Duration::from_secs(
            now.checked_add_signed(seconds_from_now).unwrap(),
        ))
    }

    #[test]
    fn a_self_signed_certificate_in_the_file_is_accepted_for_its_host_and_dates_only() {
        let dir = tempfile::tempdir().unwrap();
        let cert = self_signed(dir.path(), "server", "IP:127.0.0.1");
        let other = self_signed(dir.path(), "other", "IP:127.0.0.1");
        let trust = verifier(&cert);
        let verify = |pem: &[u8], name: &str, now: UnixTime| {
            trust.verify_server_cert(
                &der(pem),
                &[],
                &ServerName::try_from(name.to_string()).unwrap(),
                &[],
                now,
            )
        };
        assert!(verify(&cert, "127.0.0.1", at(0)).is_ok());
        // Not in the file: the chain's own refusal stands, unchanged.
        let refused = verify(&other, "127.0.0.1", at(0)).unwrap_err();
        let chain = trust
            .chain
            .verify_server_cert(
                &der(&other),
                &[],
                &ServerName::try_from("127.0.0.1").unwrap(),
                &[],
                at(0),
            )
            .unwrap_err();
        // rustls's `Other` errors never compare equal: compare what they say.
        assert_eq!(format!("{refused:?}"), format!("{chain:?}"));
        assert!(matches!(
            verify(&cert, "127.0.0.2", at(0)),
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName
            ))
        ));
        // `-days 2`: three days on it has expired; a day ago it was not valid yet.
        assert!(matches!(
            verify(&cert, "127.0.0.1", at(3 * 86_400)),
            Err(rustls::Error::InvalidCertificate(CertificateError::Expired))
        ));
        assert!(matches!(
            verify(&cert, "127.0.0.1", at(-86_400)),
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidYet
            ))
        ));
    }

    #[test]
    fn the_file_must_hold_pem_certificates() {
        assert!(matches!(
            client_config(b"", Roots::FileOnly),
            Err(Error::NoCertificate)
        ));
        assert!(matches!(
            client_config(
                b"-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n",
                Roots::FileOnly
            ),
            Err(Error::Pem(_))
        ));
    }
}
