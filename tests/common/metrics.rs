//! Helpers of the metrics export tests: running the vctp binary (whole, or watched line by
//! line), the seeded source node, a fresh prefix in the test bucket, reading bundles.

use super::s3::{S3Server, s3_server, unique_prefix};
use super::vm::{self, Node, NodeOptions, Sample};
use anyhow::{Context, Result, ensure};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

pub const ALL: &str = r#"{__name__=~".+"}"#;
pub const KEY: &str = "4f1c0d9e7a3b2c5d6e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d";

/// What a vctp process did.
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    pub fn expect(self, code: i32) -> Result<Ran> {
        ensure!(
            self.code == code,
            "exit status {} (expected {code})\nstdout:\n{}\nstderr:\n{}",
            self.code,
            self.stdout,
            self.stderr
        );
        Ok(self)
    }
}

/// Runs `vctp ARGS` with a clean environment plus `env`.
pub async fn vctp(args: &[String], env: &[(&str, &str)]) -> Result<Ran> {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_vctp"));
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null());
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().await.context("running vctp")?;
    Ok(Ran {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}

/// `vctp export-metrics` of every series of the seed's whole range from `source`, then `extra`.
pub fn export_seed(source: &str, seed: &vm::Seed, extra: &[&str]) -> Vec<String> {
    let mut args = strings(&[
        "export-metrics",
        "--source-url",
        source,
        "--match",
        ALL,
        "--start",
        &seconds(seed.start_ms),
        "--end",
        &seconds(seed.end_ms),
    ]);
    args.extend(strings(extra));
    args
}

pub fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// A source node holding the seed.
pub async fn seeded() -> Result<(Node, vm::Seed)> {
    let node = Node::start(NodeOptions::default()).await?;
    let seed = vm::seed();
    node.import(seed.jsonl.as_bytes()).await?;
    Ok((node, seed))
}

/// Every sample of `node` in the seed's range.
pub async fn all_samples(node: &Node, seed: &vm::Seed) -> Result<BTreeSet<Sample>> {
    let text = node
        .export_text(
            ALL,
            seed.start_ms as f64 / 1000.0,
            (seed.end_ms - 1) as f64 / 1000.0,
        )
        .await?;
    vm::samples(&text)
}

pub fn seconds(ms: i64) -> String {
    (ms / 1000).to_string()
}

/// `--out` and `--store-option`s of a fresh prefix in the test bucket.
pub struct Bucket {
    pub server: S3Server,
    pub prefix: String,
}

impl Bucket {
    pub fn new(name: &str) -> Bucket {
        Bucket {
            server: s3_server(),
            prefix: unique_prefix(name),
        }
    }

    pub fn url(&self) -> String {
        self.server.url(&self.prefix)
    }

    pub fn options(&self) -> Vec<String> {
        self.server
            .good_options()
            .into_iter()
            .flat_map(|(k, v)| ["--store-option".to_string(), format!("{k}={v}")])
            .collect()
    }

    pub fn objects(&self) -> vctp::objstore::Objects {
        self.server.objects(&self.prefix)
    }

    pub async fn json<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<T> {
        let bytes = self.objects().get(key).await?;
        Ok(serde_json::from_slice(&bytes)?)
    }

    /// The bundle under `key`, downloaded into `dir`.
    pub async fn download(&self, key: &str, dir: &Path) -> Result<PathBuf> {
        let path = dir.join(key.rsplit('/').next().unwrap_or("bundle.zip"));
        self.objects().get_to_file(key, &path).await?;
        Ok(path)
    }
}

pub fn key_file(dir: &Path, key: &str) -> Result<PathBuf> {
    let path = dir.join("obfuscation.key");
    std::fs::write(&path, format!("{key}\n"))?;
    Ok(path)
}

/// The entries of a ZIP file, read with the `zip` crate.
pub fn entries(path: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    let mut archive = zip::ZipArchive::new(std::fs::File::open(path)?)?;
    let mut entries = Vec::new();
    for index in 0..archive.len() {
        let mut file = archive.by_index(index)?;
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut file, &mut bytes)?;
        entries.push((file.name()?.to_string(), bytes));
    }
    Ok(entries)
}

pub fn entry(path: &Path, name: &str) -> Result<Vec<u8>> {
    entries(path)?
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, bytes)| bytes)
        .with_context(|| format!("no {name} in {}", path.display()))
}

/// A vctp process watched line by line on stderr.
pub struct Watched {
    child: tokio::process::Child,
    stderr: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStderr>>,
    seen: String,
}

impl Watched {
    pub fn start(args: &[String]) -> Result<Watched> {
        Watched::start_with(args, &[])
    }

    /// [`Watched::start`] with `env` added to the clean environment.
    pub fn start_with(args: &[String], env: &[(String, String)]) -> Result<Watched> {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_vctp"))
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "warn")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting vctp")?;
        let stderr = child.stderr.take().context("stderr")?;
        Ok(Watched {
            child,
            stderr: tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stderr)),
            seen: String::new(),
        })
    }

    /// Waits for a stderr line containing `text`.
    pub async fn wait_for(&mut self, text: &str) -> Result<String> {
        let deadline = Duration::from_secs(60);
        tokio::time::timeout(deadline, async {
            while let Some(line) = self.stderr.next_line().await? {
                self.seen.push_str(&line);
                self.seen.push('\n');
                if line.contains(text) {
                    return Ok(line);
                }
            }
            anyhow::bail!("vctp ended without printing {text:?}:\n{}", self.seen)
        })
        .await
        .with_context(|| format!("waiting for {text:?}; seen:\n{}", self.seen))?
    }

    pub fn signal(&self, signal: &str) -> Result<()> {
        let pid = self.child.id().context("already exited")?;
        std::process::Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()?;
        Ok(())
    }

    pub async fn exit_code(mut self) -> Result<i32> {
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await??;
        Ok(status.code().unwrap_or(-1))
    }

    /// Waits for the end, keeping the rest of stderr; returns the exit status and all of it.
    pub async fn finish(mut self) -> Result<(i32, String)> {
        while let Some(line) = self.stderr.next_line().await? {
            self.seen.push_str(&line);
            self.seen.push('\n');
        }
        let seen = std::mem::take(&mut self.seen);
        Ok((self.exit_code().await?, seen))
    }
}

/// Every file under `dir`, relative to it, sorted.
pub fn files(dir: &Path) -> Result<Vec<String>> {
    fn walk(dir: &Path, into: &mut Vec<PathBuf>) -> Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.is_dir() {
                walk(&path, into)?;
            } else {
                into.push(path);
            }
        }
        Ok(())
    }
    let mut found = Vec::new();
    walk(dir, &mut found)?;
    let mut files: Vec<String> = found
        .iter()
        .filter_map(|p| p.strip_prefix(dir).ok())
        .map(|p| p.display().to_string())
        .collect();
    files.sort();
    Ok(files)
}

/// What a [`Proxy`] does to the requests it relays.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// Closes the connection when the n-th request (counted from 1) arrives, before
    /// forwarding any of it.
    DropRequest(usize),
    /// Holds every request this long before forwarding it: paces a run so a test can act in
    /// the middle of it.
    Delay(Duration),
    /// Holds only the n-th request (counted from 1) this long: one window times out.
    DelayOne(usize, Duration),
}

/// An HTTP/1.1 proxy on 127.0.0.1 in front of `backend` (requests framed by `Content-Length`,
/// as reqwest sends them), with a [`Fault`].
pub struct Proxy {
    pub url: String,
    _task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start(backend: &str, fault: Fault) -> Result<Proxy> {
        use std::sync::Arc;
        use std::sync::atomic::AtomicUsize;
        let backend = backend.trim_start_matches("http://").to_string();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let requests = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (backend, requests) = (backend.clone(), requests.clone());
                tokio::spawn(async move {
                    if let Ok(server) = tokio::net::TcpStream::connect(&backend).await {
                        let _ = relay(client, server, requests, fault).await;
                    }
                });
            }
        });
        Ok(Proxy { url, _task: task })
    }
}

async fn relay(
    client: tokio::net::TcpStream,
    server: tokio::net::TcpStream,
    requests: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    fault: Fault,
) -> Result<()> {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
    let (client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let answers =
        tokio::spawn(async move { tokio::io::copy(&mut server_read, &mut client_write).await });
    let mut client_read = tokio::io::BufReader::new(client_read);
    loop {
        let mut head = Vec::new();
        loop {
            let mut line = Vec::new();
            if client_read.read_until(b'\n', &mut line).await? == 0 {
                answers.abort();
                return Ok(());
            }
            let end = line == b"\r\n";
            head.extend_from_slice(&line);
            if end {
                break;
            }
        }
        let text = String::from_utf8_lossy(&head).to_lowercase();
        let length: usize = text
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let number = requests.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        match fault {
            Fault::DropRequest(n) if n == number => {
                answers.abort();
                return Ok(());
            }
            Fault::Delay(wait) => tokio::time::sleep(wait).await,
            Fault::DelayOne(n, wait) if n == number => tokio::time::sleep(wait).await,
            Fault::DropRequest(_) | Fault::DelayOne(..) => {}
        }
        let mut body = vec![0u8; length];
        client_read.read_exact(&mut body).await?;
        server_write.write_all(&head).await?;
        server_write.write_all(&body).await?;
    }
}
