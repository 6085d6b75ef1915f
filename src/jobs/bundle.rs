//! `vctp bundle verify` and `vctp bundle inspect`: a bundle read offline, with the checks the
//! importer makes before and while it sends anything.

use super::import::{Error, local_checksum, read_metadata};
use crate::export::import::Ledger;
use crate::export::metadata::{self, Metadata};
use crate::export::reader::{self, Bundle};
use std::io::BufRead;
use std::path::Path;

/// `vctp bundle verify`: the SHA-256 (from `sha256`, the sidecar or the manifest beside the
/// file; one is required), every entry's CRC, and the counts in the metadata.
pub fn verify_file(path: &Path, sha256: Option<&str>) -> Result<String, Error> {
    let name = path.display().to_string();
    let (expected, from) = match sha256 {
        Some(given) => (given.trim().to_lowercase(), "--sha256"),
        None => local_checksum(path).ok_or_else(|| Error::NoChecksum {
            bundle: name.clone(),
        })?,
    };
    let (found, size) = reader::sha256_file(path)?;
    if found != expected {
        return Err(Error::ChecksumMismatch {
            bundle: name,
            from,
            expected,
            found,
        });
    }
    let mut bundle = Bundle::open(path)?;
    bundle.check_crcs()?;
    let metadata = read_metadata(&mut bundle, &name)?;
    let mut ledger = Ledger::default();
    let mut lines = std::io::BufReader::new(bundle.metrics()?);
    let mut text = Vec::new();
    let mut number = 0;
    while lines
        .read_until(b'\n', &mut text)
        .map_err(|e| Error::Bundle(reader::Error::from_entry_io(metadata::METRICS_ENTRY, e)))?
        > 0
    {
        number += 1;
        let line = text.strip_suffix(b"\n").unwrap_or(&text);
        if !line.is_empty() {
            ledger.add_line(line, &[]).map_err(|problem| Error::Line {
                bundle: name.clone(),
                line: number,
                problem,
            })?;
        }
        text.clear();
    }
    for (what, expected, found) in [
        ("series", metadata.series, ledger.series.len() as u64),
        ("samples", metadata.samples, ledger.samples()),
    ] {
        if expected != found {
            return Err(Error::Counts {
                bundle: name,
                what,
                expected,
                found,
            });
        }
    }
    Ok(format!(
        "{name}: OK — SHA-256 {found} matches the {from}; {size} bytes; every CRC checked; {} series and {} samples as its metadata says",
        metadata.series, metadata.samples
    ))
}

/// `vctp bundle inspect`: what the bundle holds, from its metadata (no checksum needed).
pub fn inspect_file(path: &Path, json: bool) -> Result<String, Error> {
    let name = path.display().to_string();
    let mut bundle = Bundle::open(path)?;
    let raw = bundle.read_small(metadata::METADATA_ENTRY)?;
    if json {
        return Ok(format!("{}\n", String::from_utf8_lossy(&raw).trim_end()));
    }
    let metadata: Metadata = serde_json::from_slice(&raw).map_err(|e| Error::Metadata {
        bundle: name.clone(),
        problem: e.to_string(),
    })?;
    let mut text = format!(
        "bundle:      {name}\nentries:     {}\nexport id:   {}\nexported:    {} by vctp {}\nsource:      {}{}\nmethod:      {}\nrange:       {} to {}\nseries:      {}\nsamples:     {} ({} skipped)\nobfuscated:  {}{}\nselectors:   {}\n",
        bundle.entry_names().join(", "),
        metadata.export_id,
        metadata.export_date,
        metadata.vctp_version,
        metadata.source.kind,
        metadata
            .source
            .tenant
            .as_deref()
            .map(|t| format!(" (tenant {t})"))
            .unwrap_or_default(),
        metadata.method.name(),
        metadata.time_range.start,
        metadata.time_range.end,
        metadata.series,
        metadata.samples,
        metadata.skipped_samples,
        metadata.obfuscated,
        metadata
            .obfuscation
            .key_fingerprint
            .as_deref()
            .map(|f| format!(" (key fingerprint {f})"))
            .unwrap_or_default(),
        metadata.selectors.join(" "),
    );
    text.push_str("metrics:\n");
    for (metric, counts) in &metadata.per_metric {
        text.push_str(&format!(
            "  {metric}: {} series, {} samples\n",
            counts.series, counts.samples
        ));
    }
    Ok(text)
}
