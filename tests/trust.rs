//! Trust files holding the server's own self-signed certificate (`openssl req -x509`, CA:TRUE),
//! as Go and OpenSSL clients accept them: the vCenter CA file, `ldap_trust_cert_file`, a
//! metrics source's CA bundle and the object store's `ca_file` option. Each peer presents a
//! fresh certificate for 127.0.0.1 that is alone in the trust file; a certificate for another
//! host, or one missing from the file, is still refused.
// Helpers fail the test by panicking; clippy only counts #[test] functions as tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::tls::{SelfSigned, address_of, proxy, self_signed};
use std::path::Path;
use std::time::Duration;
use vctp::config::Settings;
use vctp::sim::{Clock, SimConfig};
use vctp::vsphere::{Client, Endpoint, Error, Tls};

/// The simulator behind a TLS proxy presenting `identity`: the https SDK URL.
async fn vcenter_behind(identity: &SelfSigned) -> String {
    let (_sim, url) = common::sim::start(SimConfig::default(), Clock::real()).await;
    let front = proxy(identity, address_of(&url)).await;
    let path = url::Url::parse(&url).unwrap().path().to_string();
    format!("https://{front}{path}")
}

fn vcenter_endpoint(url: &str, ca_file: &Path) -> Endpoint {
    Endpoint {
        url: url.to_string(),
        username: SimConfig::default().username,
        password: SimConfig::default().password,
        tls: Tls::Verify {
            ca_file: Some(ca_file.to_path_buf()),
        },
        allow_plain_http: false,
        connect_timeout: Duration::from_secs(5),
        read_timeout: Duration::from_secs(5),
        limits: vctp::vsphere::Limits::default(),
    }
}

#[tokio::test]
async fn a_vcenter_whose_self_signed_certificate_is_the_ca_file_is_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let server = self_signed(dir.path(), "vcenter", "IP:127.0.0.1");
    let url = vcenter_behind(&server).await;
    let client = Client::login(&vcenter_endpoint(&url, &server.cert))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    client.logout().await.unwrap();
}

#[tokio::test]
async fn a_self_signed_vcenter_certificate_for_another_host_or_not_in_the_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = self_signed(dir.path(), "elsewhere", "IP:127.0.0.2,DNS:vc.example.com");
    let url = vcenter_behind(&elsewhere).await;
    let error = Client::login(&vcenter_endpoint(&url, &elsewhere.cert))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Tls { .. }), "{error:?}");
    assert!(error.to_string().contains("NotValidForName"), "{error}");

    let server = self_signed(dir.path(), "vcenter", "IP:127.0.0.1");
    let other = self_signed(dir.path(), "other", "IP:127.0.0.1");
    let url = vcenter_behind(&server).await;
    let error = Client::login(&vcenter_endpoint(&url, &other.cert))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Tls { .. }), "{error:?}");
}

fn ldap_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run the tests through scripts/test.sh, which starts OpenLDAP (scripts/ldap.sh)"
        )
    })
}

#[tokio::test]
#[ignore = "needs OpenLDAP: run scripts/test.sh"]
async fn ldaps_with_the_servers_self_signed_certificate_as_trust_file_logs_in() {
    // slapd's own certificates chain to a CA; the proxy presents a self-signed one instead.
    let dir = tempfile::tempdir().unwrap();
    let server = self_signed(dir.path(), "ldap", "IP:127.0.0.1");
    let front = proxy(&server, address_of(&ldap_env("VCTP_TEST_LDAP_URL"))).await;
    let settings = Settings::parse(
        &format!(
            "settings:\n  auth_enabled: true\n  ldap_bind_address: \"ldaps://{front}\"\n  ldap_base_dn: \"{}\"\n  ldap_user_base_dn: \"{}\"\n  ldap_trust_cert_file: \"{}\"\n  auth_jwt_signing_key: \"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\"\n  auth_group_role_mappings:\n    \"cn=vctp-admins,ou=Groups,dc=example,dc=com\": admin\n",
            ldap_env("VCTP_TEST_LDAP_BASE_DN"),
            ldap_env("VCTP_TEST_LDAP_USER_BASE_DN"),
            server.cert.display(),
        ),
        Path::new("trust-test.yml"),
    )
    .unwrap();
    let auth = vctp::auth::Auth::from_settings(&settings).unwrap();
    let directory = &auth.enabled().unwrap().directory;
    let user = directory
        .authenticate("alice", &ldap_env("VCTP_TEST_LDAP_PASSWORD"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(user.dn.starts_with("uid=alice,"), "{}", user.dn);
}

#[tokio::test]
#[ignore = "needs VictoriaMetrics: run scripts/test.sh"]
async fn a_metrics_source_whose_self_signed_certificate_is_the_ca_bundle_answers() {
    use vctp::export::client::{Auth, Client, Endpoint, Kind, Tls};
    let dir = tempfile::tempdir().unwrap();
    let server = self_signed(dir.path(), "victoria", "IP:127.0.0.1");
    let node = common::vm::Node::start(common::vm::NodeOptions {
        tls_identity: Some((server.cert.clone(), server.key.clone())),
        ..Default::default()
    })
    .await
    .unwrap();
    assert!(node.url.starts_with("https://"), "{}", node.url);
    let client = Client::new(Endpoint {
        url: node.url.clone(),
        kind: Kind::Single,
        tenant: None,
        auth: Auth::None,
        headers: Vec::new(),
        tls: Tls::VerifyWith(std::fs::read(&server.cert).unwrap()),
        timeout: Duration::from_secs(10),
    })
    .unwrap();
    client.query("1").await.unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test]
#[ignore = "needs the S3-compatible server: run scripts/test.sh"]
async fn an_object_store_whose_self_signed_certificate_is_the_ca_file_stores_and_reads() {
    let s3 = common::s3::s3_server();
    let dir = tempfile::tempdir().unwrap();
    let server = self_signed(dir.path(), "s3", "IP:127.0.0.1");
    let front = proxy(&server, address_of(&s3.endpoint)).await;
    let mut options = s3.options(&format!("https://{front}"), &s3.access_key, &s3.secret_key);
    options.remove("aws_allow_http");
    options.insert("ca_file".into(), server.cert.display().to_string());
    let objects = vctp::objstore::Objects::from_url(&s3.url("trust-test"), &options)
        .unwrap_or_else(|e| panic!("{e}"));
    objects
        .put("trusted.txt", b"over TLS".to_vec())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(objects.get("trusted.txt").await.unwrap(), b"over TLS");
}
