//! `vctp bench export-data`: a deterministic set of series in the export line format, for
//! loading into VictoriaMetrics before `scripts/bench-export.sh` times exports and imports.
//! Like a real scrape: instances (half IPs, half host names) with a job, namespace and pod,
//! several metric names; counters (integers), gauges (multiples of 0.25) and flags; one sample
//! per step. Generated line by line: memory stays small whatever the size.

use crate::cli::BenchExportDataArgs;
use anyhow::{Context, Result};
use std::io::Write;

const JOBS: [&str; 5] = [
    "node-exporter",
    "kube-state-metrics",
    "payments-api",
    "vmagent",
    "blackbox-exporter",
];
const NAMESPACES: [&str; 3] = ["prod", "staging", "kube-system"];
const METRICS: [(&str, Kind); 6] = [
    ("node_cpu_seconds_total", Kind::Counter),
    ("node_memory_available_bytes", Kind::Gauge),
    ("http_requests_total", Kind::Counter),
    ("http_request_duration_seconds", Kind::Gauge),
    ("up", Kind::Flag),
    ("process_open_fds", Kind::Gauge),
];

#[derive(Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
    Flag,
}

pub fn run(args: &BenchExportDataArgs, out: impl Write) -> Result<()> {
    let start_ms = crate::export::plan::parse_time(&args.start)
        .with_context(|| format!("invalid --start {:?}: RFC 3339 or Unix seconds", args.start))?;
    let step_ms = i64::from(args.step_seconds) * 1000;
    let points = usize::try_from(i64::from(args.hours) * 3_600_000 / step_ms)?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, out);
    let mut values = String::with_capacity(points * 8);
    let mut timestamps = String::with_capacity(points * 14);
    for series in 0..args.series {
        let instance = series / METRICS.len();
        let (metric, kind) = METRICS[series % METRICS.len()];
        let job = JOBS[instance % JOBS.len()];
        let host = if instance.is_multiple_of(2) {
            format!(
                "10.{}.{}.{}:9100",
                20 + instance / 65_536,
                (instance / 256) % 256,
                instance % 256
            )
        } else {
            format!("node-{instance}.prod.example.com:9100")
        };
        let labels = serde_json::json!({
            "__name__": metric,
            "job": job,
            "instance": host,
            "namespace": NAMESPACES[instance % NAMESPACES.len()],
            "pod": format!("{job}-{:05x}-{instance}", (instance * 7919) % 0xfffff),
        });
        values.clear();
        timestamps.clear();
        for point in 0..points {
            if point > 0 {
                values.push(',');
                timestamps.push(',');
            }
            let x = (series * 31 + point * 7) as u64;
            let value = match kind {
                Kind::Counter => (point as u64 * (1 + series as u64 % 13)).to_string(),
                Kind::Gauge => format!("{}", (x % 4_000) as f64 * 0.25),
                Kind::Flag => u8::from(!x.is_multiple_of(97)).to_string(),
            };
            values.push_str(&value);
            timestamps.push_str(&(start_ms + point as i64 * step_ms).to_string());
        }
        writeln!(
            out,
            "{{\"metric\":{labels},\"values\":[{values}],\"timestamps\":[{timestamps}]}}"
        )?;
    }
    out.flush()?;
    Ok(())
}
