//! `vctp serve` as a network server: HTTPS by default (self-signed and kept, or the configured
//! pair reloaded when it changes), `--listen` over bind_ip/bind_port, the plain-HTTP login
//! warning, and the connection deadlines and limit that keep the probes answering.
// A whole test crate: its helpers fail the test by panicking, like its #[test]s.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use vctp::config::Settings;

struct Server {
    child: Child,
    url: String,
    dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(settings: &str, env: &[(&str, &str)]) -> Server {
        Server::start_with(&[], settings, env)
    }

    fn start_with(wrapper: &[&str], settings: &str, env: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("vctp.yml");
        std::fs::write(&config, settings).unwrap();
        let log = std::fs::File::create(dir.path().join("serve.log")).unwrap();
        let (child, url) = common::start_serve_with(
            wrapper,
            &config,
            &dir.path().join("db.sqlite3"),
            env,
            Stdio::from(log),
        );
        Server { child, url, dir }
    }

    fn addr(&self) -> String {
        self.url
            .trim_start_matches("http://")
            .trim_start_matches("https://")
            .to_string()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap()
    }
}

/// The certificate the server at `url` presents (DER), and the status of `GET /healthz`.
async fn served_certificate(url: &str) -> (Vec<u8>, reqwest::StatusCode) {
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .tls_info(true)
        .build()
        .unwrap();
    let response = client.get(format!("{url}/healthz")).send().await.unwrap();
    let der = response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
        .expect("a peer certificate")
        .to_vec();
    (der, response.status())
}

fn first_certificate(pem_file: &Path) -> Vec<u8> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    CertificateDer::pem_file_iter(pem_file)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .to_vec()
}

#[tokio::test]
async fn serve_speaks_https_by_default_with_a_self_signed_certificate_kept_beside_the_database() {
    let server = Server::start("settings: {}\n", &[("VCTP_DISABLE_TLS", "false")]);
    assert!(
        server.url.starts_with("https://127.0.0.1:"),
        "{}",
        server.url
    );
    let cert_file = server.dir.path().join(vctp::api::tls::SELF_SIGNED_CERT);
    let pem = std::fs::read(&cert_file).expect("the certificate is kept beside the database");
    // A client that trusts the kept file accepts the server for 127.0.0.1 (a SAN of it).
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    let status = client
        .get(format!("{}/healthz", server.url))
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_success(), "{status}");
    let fingerprint = vctp::api::tls::fingerprint(&first_certificate(&cert_file));
    assert!(server.log().contains(&fingerprint), "{}", server.log());
    // A restart over the same directory serves the same certificate.
    let mut server = server;
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let (child, url) = common::start_serve(
        &server.dir.path().join("vctp.yml"),
        &server.dir.path().join("db.sqlite3"),
        &[("VCTP_DISABLE_TLS", "false")],
    );
    server.child = child;
    let (served, _) = served_certificate(&url).await;
    assert_eq!(std::fs::read(&cert_file).unwrap(), pem, "the file was kept");
    assert_eq!(
        served,
        first_certificate(&cert_file),
        "and it is what is served"
    );
}

fn write_pair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let (cert, key) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    (cert, key)
}

#[tokio::test]
async fn the_configured_certificate_is_reloaded_when_its_files_change_and_a_bad_one_is_refused() {
    let pairs = tempfile::tempdir().unwrap();
    let (cert, key) = write_pair(pairs.path(), "tls");
    let settings = format!(
        "settings:\n  tls_cert_filename: {}\n  tls_key_filename: {}\n",
        cert.display(),
        key.display()
    );
    let server = Server::start(&settings, &[("VCTP_DISABLE_TLS", "false")]);
    let (served, status) = served_certificate(&server.url).await;
    assert!(status.is_success());
    assert_eq!(served, first_certificate(&cert));
    // cert-manager replaces both files in place.
    let (new_cert, new_key) = write_pair(pairs.path(), "new");
    std::fs::rename(&new_key, &key).unwrap();
    std::fs::rename(&new_cert, &cert).unwrap();
    let rotated = first_certificate(&cert);
    let started = Instant::now();
    while served_certificate(&server.url).await.0 != rotated {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the new certificate is served within 15 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // A key that does not belong to the certificate keeps the pair in use, and says why.
    let (_, other_key) = write_pair(pairs.path(), "other");
    std::fs::rename(&other_key, &key).unwrap();
    tokio::time::sleep(Duration::from_secs(7)).await;
    let (served, status) = served_certificate(&server.url).await;
    assert!(status.is_success());
    assert_eq!(served, rotated);
    let log = server.log();
    assert!(log.contains("still serving the previous one"), "{log}");
    assert!(log.contains(&key.display().to_string()), "{log}");
}

#[tokio::test]
async fn listen_wins_over_bind_ip_and_port_which_are_used_without_it() {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let settings = format!("settings:\n  bind_ip: 127.0.0.1\n  bind_port: {port}\n");
    let server = Server::start_with(&["env", "-u", "VCTP_LISTEN"], &settings, &[]);
    assert_eq!(server.url, format!("http://127.0.0.1:{port}"));
    drop(server);
    let server = Server::start(&settings, &[]);
    assert_ne!(
        server.url,
        format!("http://127.0.0.1:{port}"),
        "--listen 127.0.0.1:0 won"
    );
}

#[tokio::test]
async fn login_over_plain_http_on_a_non_loopback_address_is_warned_about() {
    let settings = "settings:\n  auth_enabled: true\n  ldap_bind_address: ldaps://127.0.0.1:1\n  ldap_base_dn: dc=example,dc=com\n  auth_jwt_signing_key: MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n  auth_group_role_mappings:\n    cn=admins,dc=example,dc=com: admin\n";
    let warning = "plain HTTP on a non-loopback address";
    let exposed = Server::start(settings, &[("VCTP_LISTEN", "0.0.0.0:0")]);
    assert!(exposed.log().contains(warning), "{}", exposed.log());
    let local = Server::start(settings, &[]);
    assert!(!local.log().contains(warning), "{}", local.log());
}

/// A deadline figure from the defaults, so the test follows them.
fn header_timeout() -> Duration {
    Duration::from_secs(Settings::default().http_read_header_timeout_seconds)
}

/// Reads until the server closes the connection; how long that took.
async fn time_to_close(mut stream: TcpStream, within: Duration) -> Duration {
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(within, stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return started.elapsed(),
            Ok(Ok(_)) => continue,
            Err(_) => panic!("the connection is still open after {within:?}"),
        }
    }
}

#[tokio::test]
async fn a_half_sent_request_head_and_a_silent_connection_are_closed_after_the_header_read_timeout()
{
    let server = Server::start("settings: {}\n", &[]);
    let timeout = header_timeout();
    let mut half = TcpStream::connect(server.addr()).await.unwrap();
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: vctp\r\n")
        .await
        .unwrap();
    let silent = TcpStream::connect(server.addr()).await.unwrap();
    let within = timeout + Duration::from_secs(5);
    let (half, silent) = tokio::join!(time_to_close(half, within), time_to_close(silent, within));
    for waited in [half, silent] {
        assert!(
            waited >= timeout - Duration::from_secs(1),
            "closed early: {waited:?}"
        );
    }
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_after_the_idle_timeout() {
    let server = Server::start(
        "settings:\n  http_read_header_timeout_seconds: 1\n  http_idle_timeout_seconds: 3\n",
        &[],
    );
    let mut stream = TcpStream::connect(server.addr()).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: vctp\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = stream.read(&mut buf).await.unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    // Kept alive past the header-read timeout, closed after the idle one.
    let waited = time_to_close(stream, Duration::from_secs(8)).await;
    assert!(
        (Duration::from_millis(2_500)..Duration::from_secs(6)).contains(&waited),
        "closed after {waited:?}"
    );
}

/// One probe on a fresh connection, as a kubelet sends it: the status line, or an error.
async fn probe(addr: &str, path: &str) -> Result<String, String> {
    let mut stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: vctp\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .await
        .map_err(|e| e.to_string())?;
    let answer = String::from_utf8_lossy(&answer);
    Ok(answer.lines().next().unwrap_or_default().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_and_readyz_answer_while_thousands_of_slow_connections_are_open() {
    // The server gets 1,024 files, the client opens three times as many slow connections:
    // without a connection limit the server runs out of descriptors and stops accepting.
    const FILES: usize = 1_024;
    let nofile = format!("--nofile={FILES}");
    let server = Server::start_with(&["prlimit", &nofile, "--"], "settings: {}\n", &[]);
    let addr = server.addr();
    let mut opening = tokio::task::JoinSet::new();
    for i in 0..3 * FILES {
        let addr = addr.clone();
        opening.spawn(async move {
            let connect = TcpStream::connect(addr);
            let mut stream = tokio::time::timeout(Duration::from_secs(3), connect)
                .await
                .ok()?
                .ok()?;
            // Half of them start a head and stop; the others never send a byte.
            if i % 2 == 0 {
                stream.write_all(b"GET / HTTP/1.1\r\nHost: ").await.ok()?;
            }
            Some(stream)
        });
    }
    let open: Vec<TcpStream> = opening.join_all().await.into_iter().flatten().collect();
    assert!(
        open.len() > FILES,
        "only {} connections were opened",
        open.len()
    );
    let bound = Duration::from_secs(2);
    for path in ["/healthz", "/readyz"].repeat(5) {
        let started = Instant::now();
        let answer = tokio::time::timeout(bound, probe(&addr, path))
            .await
            .unwrap_or_else(|_| panic!("{path} did not answer within {bound:?}"));
        assert_eq!(answer.as_deref(), Ok("HTTP/1.1 200 OK"), "{path}");
        assert!(started.elapsed() < bound);
    }
    drop(open);
}

#[tokio::test]
async fn at_the_connection_limit_the_oldest_idle_connection_makes_room_for_a_probe() {
    let server = Server::start("settings:\n  http_max_connections: 8\n", &[]);
    let addr = server.addr();
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(TcpStream::connect(&addr).await.unwrap());
    }
    // Accepted by now; the next connection finds the server at its limit.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let bound = Duration::from_secs(2);
    let answer = tokio::time::timeout(bound, probe(&addr, "/healthz"))
        .await
        .expect("the probe is answered at the limit");
    assert_eq!(answer.as_deref(), Ok("HTTP/1.1 200 OK"));
    // The oldest silent connection was closed for it, long before its deadline.
    let waited = time_to_close(held.remove(0), bound).await;
    assert!(waited < header_timeout(), "{waited:?}");
}
