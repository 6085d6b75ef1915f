//! MetricsExport: time series from VictoriaMetrics or a Prometheus-compatible API into a
//! privacy-safe ZIP bundle, and such bundles read back.
//!
//! From the edge inwards: [`client`] speaks HTTP to the server; [`fetch`] turns one window
//! of its answers into a compressed segment, streaming, through [`line`] (the export line
//! format, rewritten label by label with [`obfuscate`]) and [`segment`]; [`checkpoint`] keeps
//! a run resumable; [`assemble`] makes the bundle ([`zip`], [`metadata`]) from the segments.
//! [`windows`], [`selector`], [`redact`] and [`plan`] are the pure pieces they share;
//! [`reader`] opens a bundle for verification and import, [`import`] moves and sums its
//! samples. A whole run is composed in [`crate::jobs::export`], an import in
//! [`crate::jobs::import`].

pub mod assemble;
pub mod checkpoint;
pub mod client;
pub mod discover;
pub mod fetch;
pub mod import;
pub mod line;
pub mod metadata;
pub mod obfuscate;
pub mod plan;
pub mod reader;
pub mod redact;
pub mod segment;
pub mod selector;
pub mod windows;
pub mod zip;
