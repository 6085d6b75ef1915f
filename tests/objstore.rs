//! The object storage adapter on a temp directory and on the real S3-compatible server
//! (s3s-fs, which checks SigV4 signatures) that `scripts/test.sh` starts through
//! `scripts/s3.sh`; its address and credentials come in `VCTP_TEST_S3_*`.
// A whole test crate: its helpers fail the test by panicking, like its #[test]s.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use vctp::export::assemble::bundle_key;
use vctp::objstore::{Error, Objects};
use vctp::report::report_key;

mod common;
use common::s3::{s3_server, unique_prefix};

const MIB: usize = 1024 * 1024;

struct TestStore {
    objects: Objects,
    _dir: Option<tempfile::TempDir>,
}

fn local_store() -> TestStore {
    let dir = tempfile::tempdir().expect("create a temp dir");
    let url = format!("file://{}", dir.path().display());
    TestStore {
        objects: Objects::from_url(&url, &BTreeMap::new()).expect("open the temp dir"),
        _dir: Some(dir),
    }
}

fn s3_store() -> TestStore {
    TestStore {
        objects: s3_server().objects(&unique_prefix("case")),
        _dir: None,
    }
}

/// Runs each named `async fn(TestStore)` as two tests, `local::NAME` and `s3::NAME`.
macro_rules! on_both_stores {
    ($($case:ident),* $(,)?) => {
        mod local {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $case() { super::$case(super::local_store()).await } )*
        }
        mod s3 {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $case() { super::$case(super::s3_store()).await } )*
        }
    };
}

on_both_stores!(
    a_small_object_can_be_put_read_listed_and_deleted,
    a_multipart_object_reads_back_identical_with_a_sha256sum_sidecar,
    getting_a_missing_key_is_not_found,
    deleting_a_missing_key_is_not_an_error,
    get_to_file_streams_the_object_into_place_and_leaves_no_temp_file,
    listing_gives_sorted_keys_relative_to_the_prefix_by_whole_segments,
    putting_a_key_again_replaces_the_object_and_its_sidecar,
    invalid_keys_are_refused_before_reaching_the_store,
);

/// Deterministic bytes that do not repeat within a part (a multipart mix-up would show).
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut bytes = Vec::with_capacity(len + 8);
    while bytes.len() < len {
        // xorshift64
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}

fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

fn keys(listed: &[vctp::objstore::Listed]) -> Vec<&str> {
    listed.iter().map(|l| l.key.as_str()).collect()
}

async fn a_small_object_can_be_put_read_listed_and_deleted(store: TestStore) {
    let objects = &store.objects;
    let key = report_key("daily", "2026-03-10", "vc1.example.com", "xlsx").unwrap();
    let bytes = b"PK\x03\x04 a tiny workbook".to_vec();
    let before = chrono::Utc::now().timestamp();

    let stored = objects.put(&key, bytes.clone()).await.expect("put");
    assert_eq!(stored.key, key);
    assert_eq!(stored.size, bytes.len() as u64);
    assert_eq!(stored.sha256, sha256_hex(&bytes));

    assert_eq!(objects.get(&key).await.expect("get"), bytes);
    let listed = objects.list("").await.expect("list");
    assert_eq!(keys(&listed), [key.clone(), format!("{key}.sha256")]);
    assert_eq!(listed[0].size, bytes.len() as u64);
    assert!(
        (before - 5..=chrono::Utc::now().timestamp() + 5).contains(&listed[0].last_modified),
        "last_modified {} is not about now",
        listed[0].last_modified
    );

    objects.delete(&key).await.expect("delete");
    assert!(objects.list("").await.expect("list").is_empty());
    assert!(matches!(
        objects.get(&key).await,
        Err(Error::NotFound { .. })
    ));
}

async fn a_multipart_object_reads_back_identical_with_a_sha256sum_sidecar(store: TestStore) {
    let objects = &store.objects;
    let key = bundle_key("exports/tenant-a/march", "20260310T140000Z");
    // 2.5 parts: the last part is short, as it usually is.
    let bytes = pattern(20 * MIB + 12_345, 7);

    let stored = objects
        .put(&key, bytes.clone())
        .await
        .expect("multipart put");
    assert_eq!(stored.size, bytes.len() as u64);
    assert_eq!(stored.sha256, sha256_hex(&bytes));

    let back = objects.get(&key).await.expect("get");
    assert_eq!(back.len(), bytes.len());
    assert!(back == bytes, "the object read back differs");

    let sidecar = objects
        .get(&format!("{key}.sha256"))
        .await
        .expect("sidecar");
    let sidecar = String::from_utf8(sidecar).expect("the sidecar is text");
    assert_eq!(
        sidecar,
        format!("{}  20260310T140000Z.zip\n", sha256_hex(&bytes))
    );

    let listed = objects.list("exports/tenant-a").await.expect("list");
    assert_eq!(keys(&listed), [key.clone(), format!("{key}.sha256")]);
    assert_eq!(listed[0].size, bytes.len() as u64);
}

async fn getting_a_missing_key_is_not_found(store: TestStore) {
    let objects = &store.objects;
    let e = objects
        .get("reports/daily/2026-03-10/all.xlsx")
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::NotFound { key, .. } if key == "reports/daily/2026-03-10/all.xlsx")
    );
    assert_eq!(e.reason(), "ObjectNotFound");
    assert!(e.to_string().contains(objects.url()), "{e}");

    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("all.xlsx");
    let e = objects
        .get_to_file("reports/daily/2026-03-10/all.xlsx", &target)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e}");
    assert!(!target.exists());
}

async fn deleting_a_missing_key_is_not_an_error(store: TestStore) {
    store
        .objects
        .delete("reports/daily/2026-03-10/all.xlsx")
        .await
        .expect("deleting nothing succeeds");
}

async fn get_to_file_streams_the_object_into_place_and_leaves_no_temp_file(store: TestStore) {
    let objects = &store.objects;
    let key = report_key("monthly", "2026-03", "all", "csv").unwrap();
    let bytes = pattern(3 * MIB + 1, 3);
    objects.put(&key, bytes.clone()).await.expect("put");

    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("march.csv");
    std::fs::write(&target, b"an older download").unwrap();
    let written = objects.get_to_file(&key, &target).await.expect("download");
    assert_eq!(written, bytes.len() as u64);
    assert!(std::fs::read(&target).unwrap() == bytes, "the file differs");
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["march.csv"]);
}

async fn listing_gives_sorted_keys_relative_to_the_prefix_by_whole_segments(store: TestStore) {
    let objects = &store.objects;
    let written = [
        report_key("daily", "2026-03-11", "all", "xlsx").unwrap(),
        report_key("daily", "2026-03-10", "vc2", "xlsx").unwrap(),
        report_key("daily", "2026-03-10", "all", "xlsx").unwrap(),
        report_key("hourly", "2026-03-10T14", "all", "csv").unwrap(),
        bundle_key("exports/ns/bundle", "20260310T140000Z"),
    ];
    for key in &written {
        objects
            .put(key, key.as_bytes().to_vec())
            .await
            .expect("put");
    }

    let daily = objects.list("reports/daily").await.expect("list");
    assert_eq!(
        keys(&daily),
        [
            "reports/daily/2026-03-10/all.xlsx",
            "reports/daily/2026-03-10/all.xlsx.sha256",
            "reports/daily/2026-03-10/vc2.xlsx",
            "reports/daily/2026-03-10/vc2.xlsx.sha256",
            "reports/daily/2026-03-11/all.xlsx",
            "reports/daily/2026-03-11/all.xlsx.sha256",
        ]
    );
    assert_eq!(
        keys(&objects.list("reports/daily/").await.expect("list")),
        keys(&daily)
    );
    assert!(objects.list("reports/dai").await.expect("list").is_empty());
    assert!(objects.list("nothing/here").await.expect("list").is_empty());
    assert_eq!(objects.list("").await.expect("list").len(), 10);
}

async fn putting_a_key_again_replaces_the_object_and_its_sidecar(store: TestStore) {
    let objects = &store.objects;
    let key = report_key("daily", "2026-03-10", "all", "xlsx").unwrap();
    objects.put(&key, b"first".to_vec()).await.expect("put");
    objects
        .put(&key, b"second".to_vec())
        .await
        .expect("put again");
    assert_eq!(objects.get(&key).await.unwrap(), b"second");
    let sidecar = objects.get(&format!("{key}.sha256")).await.unwrap();
    assert_eq!(
        String::from_utf8(sidecar).unwrap(),
        format!("{}  all.xlsx\n", sha256_hex(b"second"))
    );
}

async fn invalid_keys_are_refused_before_reaching_the_store(store: TestStore) {
    let objects = &store.objects;
    for key in ["../escape.xlsx", "/etc/passwd", "a//b", "a/./b", "a b", ""] {
        let e = objects.put(key, b"x".to_vec()).await.unwrap_err();
        assert!(matches!(e, Error::Key { .. }), "{key:?}: {e}");
        assert!(
            matches!(objects.get(key).await, Err(Error::Key { .. })),
            "{key:?}"
        );
        assert!(
            matches!(objects.delete(key).await, Err(Error::Key { .. })),
            "{key:?}"
        );
    }
    let e = objects
        .put("x.xlsx.sha256", b"x".to_vec())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("reserved"), "{e}");
    assert!(objects.list("").await.expect("list").is_empty());
}

// ---- the local filesystem only ----

#[tokio::test]
async fn presigning_on_the_local_filesystem_gives_none() {
    let store = local_store();
    let key = report_key("daily", "2026-03-10", "all", "xlsx").unwrap();
    store.objects.put(&key, b"x".to_vec()).await.unwrap();
    assert_eq!(
        store
            .objects
            .presign_get(&key, Duration::from_secs(60))
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn a_file_url_creates_its_directory_and_objects_are_plain_files_there() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("not/yet/there");
    let url = format!("file://{}", root.display());
    let objects = Objects::from_url(&url, &BTreeMap::new()).expect("open");
    assert!(root.is_dir());
    assert_eq!(objects.url(), url);

    let key = report_key("daily", "2026-03-10", "all", "xlsx").unwrap();
    let bytes = pattern(9 * MIB, 11);
    objects
        .put(&key, bytes.clone())
        .await
        .expect("multipart put");
    let day = root.join("reports/daily/2026-03-10");
    assert!(std::fs::read(day.join("all.xlsx")).unwrap() == bytes);
    // The sidecar is what sha256sum itself checks.
    let check = std::process::Command::new("sha256sum")
        .args(["--check", "--strict", "all.xlsx.sha256"])
        .current_dir(&day)
        .output()
        .expect("run sha256sum");
    assert!(
        check.status.success(),
        "sha256sum --check: {}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );

    // Deleting removes the directories it leaves empty.
    objects.delete(&key).await.unwrap();
    assert!(!root.join("reports").exists());
    assert!(root.is_dir());
}

#[tokio::test]
async fn a_plain_path_works_like_a_file_url_and_a_relative_one_is_made_absolute() {
    let dir = tempfile::tempdir().unwrap();
    let absolute = dir.path().join("abs");
    let objects = Objects::from_url(absolute.to_str().unwrap(), &BTreeMap::new()).unwrap();
    assert_eq!(objects.url(), format!("file://{}", absolute.display()));
    assert!(absolute.is_dir());

    // The same kind of directory, named relative to the working directory.
    let cwd = std::env::current_dir().unwrap();
    let up = "../".repeat(cwd.components().count() - 1);
    let target = dir.path().join("rel");
    let relative = format!("{up}{}", target.to_str().unwrap().trim_start_matches('/'));
    let objects = Objects::from_url(&relative, &BTreeMap::new()).unwrap();
    assert!(target.is_dir());
    assert!(objects.url().starts_with("file:///"), "{}", objects.url());
    objects.put("a/b.csv", b"1".to_vec()).await.unwrap();
    assert_eq!(std::fs::read(target.join("a/b.csv")).unwrap(), b"1");
}

#[tokio::test]
async fn a_failed_sidecar_write_takes_the_object_away_again() {
    let dir = tempfile::tempdir().unwrap();
    let objects = Objects::from_url(dir.path().to_str().unwrap(), &BTreeMap::new()).unwrap();
    let key = report_key("daily", "2026-03-10", "all", "xlsx").unwrap();
    // A directory where the sidecar should go: renaming the written sidecar onto it fails.
    std::fs::create_dir_all(dir.path().join(format!("{key}.sha256/x"))).unwrap();

    for bytes in [b"small".to_vec(), pattern(9 * MIB, 5)] {
        let e = objects.put(&key, bytes).await.unwrap_err();
        assert!(
            matches!(&e, Error::Put { key: k, .. } if *k == format!("{key}.sha256")),
            "{e}"
        );
        assert_eq!(e.reason(), "ObjectPutFailed");
        assert!(matches!(
            objects.get(&key).await,
            Err(Error::NotFound { .. })
        ));
        assert!(!dir.path().join(&key).exists());
    }
}

// ---- the S3 server only ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_presigned_url_downloads_with_plain_http_and_fails_once_tampered() {
    let objects = s3_store().objects;
    let key = report_key("daily", "2026-03-10", "all", "xlsx").unwrap();
    let bytes = pattern(100_000, 9);
    objects.put(&key, bytes.clone()).await.unwrap();

    let url = objects
        .presign_get(&key, Duration::from_secs(300))
        .await
        .unwrap()
        .expect("S3 presigns");
    let http = reqwest::Client::new();
    let response = http.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 200, "{url}");
    assert!(response.bytes().await.unwrap() == bytes);

    // Another byte of the signature, and another object under the same signature.
    let at = url.find("X-Amz-Signature=").expect("a SigV4 URL") + "X-Amz-Signature=".len();
    let mut forged = url.clone().into_bytes();
    forged[at] = if forged[at] == b'0' { b'1' } else { b'0' };
    let forged = String::from_utf8(forged).unwrap();
    let other_object = url.replacen("all.xlsx?", "all.xlsx.sha256?", 1);
    assert_ne!(other_object, url);
    for tampered in [forged, other_object] {
        let response = http.get(&tampered).send().await.unwrap();
        assert_eq!(response.status(), 403, "{tampered}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_presigned_url_is_refused() {
    let objects = s3_store().objects;
    objects.put("a.csv", b"1".to_vec()).await.unwrap();
    let url = objects
        .presign_get("a.csv", Duration::from_secs(1))
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let response = reqwest::get(&url).await.unwrap();
    assert_eq!(response.status(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_are_refused_as_access_denied_and_store_nothing() {
    let server = s3_server();
    let prefix = unique_prefix("creds");
    let url = format!("s3://{}/{prefix}", server.bucket);
    let key = report_key("daily", "2026-03-10", "all", "xlsx").unwrap();
    let wrong_secret = server.options(&server.endpoint, &server.access_key, "not-the-secret");
    let unknown_key = server.options(&server.endpoint, "nobody", &server.secret_key);

    for options in [wrong_secret, unknown_key] {
        let objects = Objects::from_url(&url, &options).unwrap();
        let e = objects.put(&key, b"x".to_vec()).await.unwrap_err();
        let message = e.to_string();
        assert!(matches!(e, Error::Put { .. }), "{message}");
        assert!(
            message.contains(&url) && message.contains(&key),
            "{message}"
        );
        assert!(message.contains("access denied"), "{message}");
        assert!(!message.contains(&server.secret_key), "{message}");

        let e = objects.list("").await.unwrap_err();
        assert!(matches!(e, Error::List { .. }), "{e}");
        assert!(e.to_string().contains("access denied"), "{e}");
    }
    assert!(server.objects(&prefix).list("").await.unwrap().is_empty());
}

// S3 answers a put to a missing bucket with 404 NoSuchBucket, but s3s-fs 0.14.1 creates the
// bucket's directory on PutObject and multipart uploads; it does refuse reads and listings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_bucket_is_reported_when_listing_and_reading() {
    let server = s3_server();
    let url = format!(
        "s3://no-such-bucket-{}/{}",
        std::process::id(),
        unique_prefix("nobucket")
    );
    let objects = Objects::from_url(&url, &server.good_options()).unwrap();

    let e = objects.list("reports").await.unwrap_err();
    assert!(matches!(e, Error::List { .. }), "{e}");
    let message = e.to_string();
    assert!(message.contains(&url), "{message}");
    assert!(
        message.contains("does the bucket or container exist?"),
        "{message}"
    );
    assert!(message.contains("NoSuchBucket"), "{message}");

    let key = report_key("daily", "2026-03-10", "all", "xlsx").unwrap();
    let e = objects.get(&key).await.unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_cut_off_mid_way_is_aborted_and_leaves_no_object_under_its_key() {
    let server = s3_server();
    let prefix = unique_prefix("cut");
    let upstream = server
        .endpoint
        .strip_prefix("http://")
        .expect("an http endpoint")
        .to_string();
    // Part 1 (8 MiB) gets through, the next parts are cut off half-way.
    let proxy = CuttingProxy::start(upstream, 12 * MIB).await;
    let through_proxy = Objects::from_url(
        &format!("s3://{}/{prefix}", server.bucket),
        &server.options(
            &format!("http://{}", proxy.addr),
            &server.access_key,
            &server.secret_key,
        ),
    )
    .unwrap();
    let key = bundle_key("exports/ns/bundle", "20260310T140000Z");

    let started = std::time::Instant::now();
    let e = through_proxy
        .put(&key, pattern(20 * MIB, 2))
        .await
        .unwrap_err();
    assert!(matches!(&e, Error::Put { key: k, .. } if *k == key), "{e}");
    assert!(e.to_string().contains("cut off by the test proxy"), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "gave up only after {:?}",
        started.elapsed()
    );

    let after_cut = proxy.after_cut();
    let aborts: Vec<_> = after_cut
        .iter()
        .filter(|line| line.starts_with("DELETE ") && line.contains("uploadId="))
        .collect();
    assert_eq!(aborts.len(), 1, "requests after the cut: {after_cut:#?}");
    assert!(aborts[0].ends_with("-> 204"), "{}", aborts[0]);

    let direct = server.objects(&prefix);
    assert!(direct.list("").await.unwrap().is_empty());
    assert!(matches!(
        direct.get(&key).await,
        Err(Error::NotFound { .. })
    ));
}

/// A TCP proxy to the S3 server that forwards until `budget` request bytes have passed, then
/// closes every connection. After that it answers each request with 400 (which object_store
/// does not retry), except DELETE, the abort of a multipart upload, which it forwards. It
/// records the requests it saw after the cut.
struct CuttingProxy {
    addr: SocketAddr,
    after_cut: Arc<Mutex<Vec<String>>>,
}

struct Budget {
    remaining: AtomicI64,
    cut: AtomicBool,
}

impl CuttingProxy {
    async fn start(upstream: String, budget: usize) -> CuttingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let budget = Arc::new(Budget {
            remaining: AtomicI64::new(budget as i64),
            cut: AtomicBool::new(false),
        });
        let after_cut = Arc::new(Mutex::new(Vec::new()));
        let log = after_cut.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (budget, upstream, log) = (budget.clone(), upstream.clone(), log.clone());
                tokio::spawn(async move {
                    if budget.cut.load(Ordering::SeqCst) {
                        after_the_cut(client, &upstream, &log).await;
                    } else {
                        forward_within_budget(client, &upstream, &budget).await;
                    }
                });
            }
        });
        CuttingProxy { addr, after_cut }
    }

    fn after_cut(&self) -> Vec<String> {
        self.after_cut.lock().unwrap().clone()
    }
}

async fn forward_within_budget(client: TcpStream, upstream: &str, budget: &Budget) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let (mut from_client, mut to_client) = client.into_split();
    let (mut from_server, mut to_server) = server.into_split();
    let responses = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut from_server, &mut to_client).await;
    });
    let mut buf = vec![0; 64 * 1024];
    loop {
        let n = match from_client.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if budget.cut.load(Ordering::SeqCst) {
            break;
        }
        let left = budget.remaining.fetch_sub(n as i64, Ordering::SeqCst);
        if left < n as i64 {
            let _ = to_server.write_all(&buf[..left.max(0) as usize]).await;
            budget.cut.store(true, Ordering::SeqCst);
            break;
        }
        if to_server.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    // Dropping both connections closes them.
    responses.abort();
}

/// One request on a connection made after the cut: DELETE is forwarded, anything else is
/// read and answered with 400. The connection is closed afterwards.
async fn after_the_cut(mut client: TcpStream, upstream: &str, log: &Mutex<Vec<String>>) {
    let Some((head, body)) = read_message(&mut client).await else {
        return;
    };
    let request_line = first_line(&head);
    let response = if request_line.starts_with("DELETE ") {
        let Ok(mut server) = TcpStream::connect(upstream).await else {
            return;
        };
        if server.write_all(&head).await.is_err() || server.write_all(&body).await.is_err() {
            return;
        }
        let Some((head, body)) = read_message(&mut server).await else {
            return;
        };
        [head, body].concat()
    } else {
        let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>InvalidRequest</Code><Message>cut off by the test proxy</Message></Error>";
        format!(
            "HTTP/1.1 400 Bad Request\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    };
    let status = first_line(&response)
        .split(' ')
        .nth(1)
        .unwrap_or("?")
        .to_string();
    log.lock()
        .unwrap()
        .push(format!("{request_line} -> {status}"));
    let _ = client.write_all(&response).await;
    let _ = client.shutdown().await;
}

fn first_line(message: &[u8]) -> String {
    let text = String::from_utf8_lossy(message);
    text.lines().next().unwrap_or("").to_string()
}

/// One HTTP/1.1 message: the head (through the blank line) and a Content-Length body.
async fn read_message(stream: &mut TcpStream) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => return None,
        }
    }
    let length: usize = String::from_utf8_lossy(&head)
        .to_ascii_lowercase()
        .lines()
        .find_map(|l| {
            l.strip_prefix("content-length:")
                .map(|v| v.trim().to_string())
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    stream.read_exact(&mut body).await.ok()?;
    Some((head, body))
}
