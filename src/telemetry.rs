//! Logging to stderr (stdout carries command output such as CSV), as text or JSON lines.

use crate::config::LogOutput;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `RUST_LOG`, when set, overrides `level`.
pub fn init(level: &str, output: LogOutput) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (tests) keeps the first subscriber.
    let _ = match output {
        LogOutput::Text => builder.try_init(),
        LogOutput::Json => builder.json().try_init(),
    };
    tracing::debug!(version = env!("CARGO_PKG_VERSION"), "vctp starting");
}
