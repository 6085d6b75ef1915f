//! The `vctp bench` subcommands: timed phases with min/median/max over `--runs` and the
//! peak RSS of each phase. Peak RSS is read from `/proc/self/status` (VmHWM) and reset
//! between phases through `/proc/self/clear_refs`, so each phase reports its own peak.

pub mod aggregations;
pub mod api;
pub mod collect;
pub mod connections;
pub mod export;
pub mod report;

use anyhow::Result;
use std::future::Future;
use std::time::Instant;

/// Timings of one phase over all runs, in seconds, sorted.
pub(crate) struct Phase {
    pub(crate) name: &'static str,
    pub(crate) rows: u64,
    pub(crate) seconds: Vec<f64>,
    pub(crate) peak_rss_mb: f64,
}

impl Phase {
    pub(crate) fn median(&self) -> f64 {
        self.seconds[self.seconds.len() / 2]
    }
}

/// Peak resident set size of this process so far, in MB.
pub(crate) fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Starts a new peak-RSS window (Linux: writing 5 to clear_refs resets VmHWM).
pub(crate) fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Runs `run` `runs` times; it returns how many `unit`s it handled.
pub(crate) async fn timed<F, Fut>(
    name: &'static str,
    unit: &'static str,
    runs: usize,
    mut run: F,
) -> Result<Phase>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<u64>>,
{
    reset_peak_rss();
    let mut seconds = Vec::with_capacity(runs);
    let mut rows = 0;
    for _ in 0..runs.max(1) {
        let started = Instant::now();
        rows = run().await?;
        seconds.push(started.elapsed().as_secs_f64());
    }
    seconds.sort_by(f64::total_cmp);
    let phase = Phase {
        name,
        rows,
        seconds,
        peak_rss_mb: peak_rss_mb(),
    };
    println!(
        "{:<14} {:>10} {unit:<5} min {:>7.3} s  median {:>7.3} s  max {:>7.3} s  peak RSS {:>7.1} MB",
        phase.name,
        phase.rows,
        phase.seconds[0],
        phase.median(),
        phase.seconds[phase.seconds.len() - 1],
        phase.peak_rss_mb
    );
    Ok(phase)
}
