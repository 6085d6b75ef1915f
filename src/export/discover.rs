//! `discover`: the jobs of VictoriaMetrics components, found through the `vm_app_version`
//! series every component exposes (its `version` label starts with the component's name,
//! e.g. `vmagent-20230313-084312-tags-v1.89.1-0-g388d6ee16`), plus jobs named outright. The
//! run exports `{job=~"<those jobs>"}` and records the selector in its checkpoint, so a
//! resumed run exports the same jobs.

use super::client::{self, Client};
use super::plan::Discover;
use super::selector;
use super::windows::Window;
use std::collections::BTreeSet;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Source(#[from] client::Error),
    #[error(
        "discover found no job for components {wanted:?} between {start} and {end}; the components seen in vm_app_version are {seen:?}"
    )]
    NothingFound {
        wanted: Vec<String>,
        seen: Vec<String>,
        start: String,
        end: String,
    },
}

impl Error {
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Source(e) => e.reason(),
            Error::NothingFound { .. } => "NothingDiscovered",
        }
    }
}

/// The selector of the discovered jobs.
pub async fn selectors(
    client: &Client,
    discover: &Discover,
    range: Window,
) -> Result<Vec<String>, Error> {
    let mut jobs: BTreeSet<String> = discover.jobs.iter().cloned().collect();
    let mut seen = BTreeSet::new();
    if !discover.components.is_empty() {
        let answer = client.series("vm_app_version", range).await?;
        for series in answer["data"].as_array().into_iter().flatten() {
            let Some(component) = series["version"].as_str().map(component_of) else {
                continue;
            };
            seen.insert(component.clone());
            if let Some(job) = series["job"]
                .as_str()
                .filter(|_| discover.components.contains(&component))
            {
                jobs.insert(job.to_string());
            }
        }
    }
    if jobs.is_empty() {
        return Err(Error::NothingFound {
            wanted: discover.components.clone(),
            seen: seen.into_iter().collect(),
            start: super::metadata::rfc3339_ms(range.start_ms),
            end: super::metadata::rfc3339_ms(range.end_ms),
        });
    }
    let alternatives: Vec<String> = jobs.iter().map(|j| selector::regex_escape(j)).collect();
    Ok(vec![format!(
        "{{job=~{}}}",
        selector::quote(&alternatives.join("|"))
    )])
}

/// The component a `vm_app_version` version names: the part before the build date
/// (`victoria-metrics-20230313-…` → `victoria-metrics`), else before the first `-`.
pub fn component_of(version: &str) -> String {
    let parts: Vec<&str> = version.split('-').collect();
    let date = parts
        .iter()
        .position(|p| p.len() == 8 && p.bytes().all(|b| b.is_ascii_digit()));
    match date {
        Some(i) if i > 0 => parts[..i].join("-"),
        _ => parts.first().copied().unwrap_or_default().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_are_read_from_the_version() {
        assert_eq!(
            component_of("vmagent-20230313-084312-tags-v1.89.1-0-g388d6ee16"),
            "vmagent"
        );
        assert_eq!(
            component_of("victoria-metrics-20230313-084312-tags-v1.89.1-0-g388d6ee16"),
            "victoria-metrics"
        );
        assert_eq!(component_of("vmstorage"), "vmstorage");
        assert_eq!(component_of(""), "");
    }
}
