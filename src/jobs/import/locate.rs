//! Getting the bundle (a file, or from object storage where its manifest must exist) and the
//! SHA-256 it must have, before anything is written.

use super::{Error, ImportPlan, Source};
use crate::export::metadata::{self, Manifest, Metadata};
use crate::export::reader::{self, Bundle};
use crate::objstore;
use std::path::{Path, PathBuf};

/// The bundle file, the SHA-256 it must have (and where that came from), and the state file.
pub(super) async fn locate(
    plan: &ImportPlan,
    temp: &Path,
) -> Result<(PathBuf, Option<(String, &'static str)>, PathBuf), Error> {
    let given = plan
        .sha256
        .clone()
        .map(|s| (s.trim().to_lowercase(), "--sha256"));
    match &plan.source {
        Source::File(path) => {
            let expected = match given {
                Some(given) => Some(given),
                None => local_checksum(path),
            };
            let state = plan
                .state_file
                .clone()
                .unwrap_or_else(|| PathBuf::from(format!("{}.import-state.json", path.display())));
            Ok((path.clone(), expected, state))
        }
        Source::Store { objects, key } => {
            let manifest_key = metadata::manifest_key(key);
            let manifest: Manifest = match objects.get(&manifest_key).await {
                Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| Error::Metadata {
                    bundle: key.clone(),
                    problem: format!("the manifest {manifest_key} is not readable: {e}"),
                })?,
                Err(objstore::Error::NotFound { .. }) => {
                    return Err(Error::NoManifest {
                        url: objects.url().to_string(),
                        key: key.clone(),
                        manifest: manifest_key,
                    });
                }
                Err(e) => return Err(e.into()),
            };
            let file_name = key.rsplit('/').next().unwrap_or("bundle.zip");
            let path = temp.join(file_name);
            objects.get_to_file(key, &path).await?;
            let expected = match given {
                Some(given) => Some(given),
                None => match objects.get(&format!("{key}.sha256")).await {
                    Ok(sidecar) => first_word(&sidecar).map(|s| (s, "sidecar")),
                    Err(objstore::Error::NotFound { .. }) => None,
                    Err(e) => return Err(e.into()),
                }
                .or(Some((manifest.sha256.to_lowercase(), "manifest"))),
            };
            let state = plan
                .state_file
                .clone()
                .unwrap_or_else(|| PathBuf::from(format!("{file_name}.import-state.json")));
            Ok((path, expected, state))
        }
    }
}

/// The SHA-256 a local bundle should have: its `.sha256` sidecar, else the manifest beside
/// it.
pub(in crate::jobs) fn local_checksum(path: &Path) -> Option<(String, &'static str)> {
    let text = path.display().to_string();
    if let Ok(sidecar) = std::fs::read(format!("{text}.sha256"))
        && let Some(sha256) = first_word(&sidecar)
    {
        return Some((sha256, "sidecar"));
    }
    let manifest = std::fs::read(metadata::manifest_key(&text)).ok()?;
    let manifest: Manifest = serde_json::from_slice(&manifest).ok()?;
    Some((manifest.sha256.to_lowercase(), "manifest"))
}

fn first_word(bytes: &[u8]) -> Option<String> {
    String::from_utf8_lossy(bytes)
        .split_whitespace()
        .next()
        .map(str::to_lowercase)
}

pub(super) async fn sha256_of(path: &Path) -> Result<String, Error> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || reader::sha256_file(&path))
        .await
        .map_err(|e| Error::State {
            path: PathBuf::new(),
            problem: e.to_string(),
        })?
        .map(|(sha256, _)| sha256)
        .map_err(Error::Bundle)
}

pub(in crate::jobs) fn read_metadata(bundle: &mut Bundle, name: &str) -> Result<Metadata, Error> {
    let bytes = bundle.read_small(metadata::METADATA_ENTRY)?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Metadata {
        bundle: name.to_string(),
        problem: e.to_string(),
    })
}
