//! `vctp bench connections`: many slow clients against a running `vctp serve`, and how its
//! `/healthz` answers meanwhile. The connections are held by child processes of this one
//! (`--per-process` each, as every process has its own open-file limit); with `--reconnect`
//! each reopens a connection the server closed, so the pressure lasts while the probes run.

use crate::cli::BenchConnectionsArgs;
use anyhow::{Context, Result};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Failed probes in a row after which the server is taken as unresponsive.
const GIVE_UP_AFTER: usize = 5;

pub async fn run(args: &BenchConnectionsArgs) -> Result<()> {
    let addr = args
        .url
        .strip_prefix("http://")
        .map(|rest| rest.trim_end_matches('/').to_string())
        .context("--url must be http://HOST:PORT (the bench speaks plain HTTP)")?;
    raise_open_file_limit();
    if let Some(count) = args.hold {
        return hold(&addr, count, args.reconnect).await;
    }
    let per_process = usize::try_from(args.per_process)?;
    let mut holders = Vec::new();
    let mut left = args.connections;
    while left > 0 {
        let count = left.min(per_process);
        holders.push(spawn_holder(&args.url, count, args.reconnect)?);
        left -= count;
    }
    let mut opened = 0usize;
    for holder in &mut holders {
        opened += holder_ready(holder)?;
    }
    println!("{opened} of {} connections open", args.connections);
    tokio::time::sleep(Duration::from_secs(args.settle_seconds)).await;
    let timeout = Duration::from_secs(args.probe_timeout_seconds);
    let mut latencies = Vec::with_capacity(args.probes);
    let (mut failed, mut failed_in_a_row) = (0usize, 0usize);
    for _ in 0..args.probes {
        let started = Instant::now();
        match tokio::time::timeout(timeout, probe(&addr)).await {
            Ok(Ok(true)) => {
                latencies.push(started.elapsed().as_secs_f64() * 1_000.0);
                failed_in_a_row = 0;
            }
            _ => {
                failed += 1;
                failed_in_a_row += 1;
            }
        }
        // A server that stopped answering would otherwise take probes × timeout to say so.
        if failed_in_a_row == GIVE_UP_AFTER {
            println!("{failed_in_a_row} probes in a row failed: stopped");
            break;
        }
    }
    let rss = args.pid.and_then(rss_mb);
    for mut holder in holders {
        // Closing its stdin ends a holder.
        drop(holder.stdin.take());
        let _ = holder.wait();
    }
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    println!(
        "/healthz under {opened} connections: {} ok, {failed} failed (> {} s); median {:.1} ms  p99 {:.1} ms  max {:.1} ms",
        latencies.len(),
        args.probe_timeout_seconds,
        at(0.5),
        at(0.99),
        latencies.last().copied().unwrap_or(f64::NAN)
    );
    if let Some(rss) = rss {
        println!("server RSS {rss:.1} MB");
    }
    Ok(())
}

fn spawn_holder(url: &str, count: usize, reconnect: bool) -> Result<Child> {
    let exe = std::env::current_exe().context("failed to find this program to run holders")?;
    let mut command = Command::new(exe);
    command
        .args(["bench", "connections", "--url", url, "--hold"])
        .arg(count.to_string());
    if reconnect {
        command.arg("--reconnect");
    }
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("failed to start a holding process")
}

/// Waits for a holder's one line, `open N`.
fn holder_ready(holder: &mut Child) -> Result<usize> {
    let stdout = holder.stdout.take().context("a holder's stdout is piped")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    line.trim()
        .strip_prefix("open ")
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("a holder said {line:?}"))
}

/// One holding process: `count` connections (reopened when the server closes one if
/// `reconnect`), until stdin closes.
async fn hold(addr: &str, count: usize, reconnect: bool) -> Result<()> {
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::unbounded_channel::<bool>();
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(256));
    for i in 0..count {
        let (addr, ready, gate) = (addr.to_string(), ready_tx.clone(), gate.clone());
        tokio::spawn(async move {
            let mut first = Some(ready);
            loop {
                // At most 256 connects in flight, so the listen backlog is not flooded.
                let stream = match gate.acquire().await {
                    Ok(_permit) => {
                        tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(&addr))
                            .await
                            .ok()
                            .and_then(Result::ok)
                    }
                    Err(_) => return,
                };
                if let Some(ready) = first.take() {
                    let _ = ready.send(stream.is_some());
                }
                match stream {
                    Some(stream) => hold_one(stream, i % 2 == 0).await,
                    None => tokio::time::sleep(Duration::from_millis(200)).await,
                }
                if !reconnect {
                    return;
                }
            }
        });
    }
    drop(ready_tx);
    let mut opened = 0usize;
    while let Some(ok) = ready_rx.recv().await {
        opened += usize::from(ok);
    }
    println!("open {opened}");
    // Held until the parent closes stdin.
    tokio::task::spawn_blocking(|| std::io::copy(&mut std::io::stdin(), &mut std::io::sink()))
        .await??;
    Ok(())
}

/// Keeps `stream` open, silent or with half a request head sent, until the server closes it.
async fn hold_one(mut stream: TcpStream, half_head: bool) {
    if half_head && stream.write_all(b"GET / HTTP/1.1\r\nHost: ").await.is_err() {
        return;
    }
    let mut buf = [0u8; 512];
    while let Ok(n) = stream.read(&mut buf).await {
        if n == 0 {
            return;
        }
    }
}

/// `GET /healthz` on a new connection; whether it answered 200.
async fn probe(addr: &str) -> Result<bool> {
    let mut stream = TcpStream::connect(addr).await?;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: vctp\r\nConnection: close\r\n\r\n")
        .await?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await?;
    Ok(answer.starts_with(b"HTTP/1.1 200"))
}

fn raise_open_file_limit() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let _ = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        },
    );
}

/// Resident memory of process `pid` in MB (Linux).
fn rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}
