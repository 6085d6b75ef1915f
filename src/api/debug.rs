//! `GET /debug/pprof/` when settings.enable_pprof is on (admin only, like every
//! `/debug/pprof/…` path): this process's memory, threads, open files and async runtime
//! load, read at request time. It is a snapshot for diagnosing a busy or growing server, not
//! a CPU or heap profiler.

use super::AppState;
use axum::Json;
use axum::Router;
use axum::routing::get;
use serde::Serialize;

pub fn routes() -> Router<AppState> {
    Router::new().route("/debug/pprof/", get(runtime))
}

#[derive(Debug, Serialize)]
pub struct Runtime {
    /// Resident and peak resident memory (Linux `/proc/self/status`; 0 elsewhere).
    pub rss_bytes: u64,
    pub peak_rss_bytes: u64,
    pub threads: u64,
    pub open_files: u64,
    pub tokio_workers: usize,
    pub tokio_alive_tasks: usize,
    pub tokio_global_queue_depth: usize,
}

async fn runtime() -> Json<Runtime> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    let open_files = std::fs::read_dir("/proc/self/fd").map_or(0, |dir| dir.count() as u64);
    let metrics = tokio::runtime::Handle::current().metrics();
    Json(Runtime {
        rss_bytes: field("VmRSS:") * 1024,
        peak_rss_bytes: field("VmHWM:") * 1024,
        threads: field("Threads:"),
        open_files,
        tokio_workers: metrics.num_workers(),
        tokio_alive_tasks: metrics.num_alive_tasks(),
        tokio_global_queue_depth: metrics.global_queue_depth(),
    })
}
