//! `vctp export-metrics`, `vctp bundle …` and `vctp obfuscation lookup`: flags → a plan →
//! [`crate::jobs::export::run`]; then the outcome, on stdout (stderr when the lines go to
//! stdout). Progress is a bar on a terminal, plain lines otherwise.

use super::Result;
use crate::cli::metrics::{
    BundleCommand, ConnectionArgs, ExportMetricsArgs, MethodArg, ObfuscationArgs,
    ObfuscationCommand, ServerKind,
};
use crate::config::Settings;
use crate::crd::metrics_export::ExportMethod;
use crate::export::client::{Auth, Endpoint, Kind, Tls};
use crate::export::obfuscate::{self, Key};
use crate::export::plan::{self, ExportPlan, Output, Retention};
use crate::export::windows::{self, Window};
use crate::jobs::export::{Notice, Observer, Progress};
use crate::objstore::Objects;
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Flags that cannot work as given (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum BadFlag {
    #[error("invalid {flag}: {problem}")]
    Value { flag: &'static str, problem: String },
    #[error("failed to read {flag} file {}: {source}", path.display())]
    File {
        flag: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

fn bad(flag: &'static str, problem: impl Into<String>) -> BadFlag {
    BadFlag::Value {
        flag,
        problem: problem.into(),
    }
}

fn read_file(flag: &'static str, path: &Path) -> Result<String, BadFlag> {
    std::fs::read_to_string(path).map_err(|source| BadFlag::File {
        flag,
        path: path.to_path_buf(),
        source,
    })
}

/// A server from its URL, kind, tenant and connection flags.
pub fn endpoint(
    url: &str,
    kind: ServerKind,
    tenant: Option<&str>,
    connection: &ConnectionArgs,
) -> Result<Endpoint, BadFlag> {
    let kind = match kind {
        ServerKind::Single => Kind::Single,
        ServerKind::Cluster => Kind::Cluster,
        ServerKind::Vmauth => Kind::VMAuth,
        ServerKind::Prometheus => Kind::Prometheus,
    };
    match (kind, tenant) {
        (Kind::Cluster, None) => {
            return Err(bad("--tenant", "a cluster needs ACCOUNT[:PROJECT], e.g. 0"));
        }
        (Kind::Cluster, Some(t)) if !is_tenant(t) => {
            return Err(bad("--tenant", format!("{t:?} is not ACCOUNT[:PROJECT]")));
        }
        (Kind::Cluster, _) | (_, None) => {}
        (_, Some(_)) => return Err(bad("--tenant", "only a cluster has tenants")),
    }
    let auth = match (&connection.basic_auth_file, &connection.bearer_token_file) {
        (Some(path), _) => {
            let text = read_file("--basic-auth-file", path)?;
            let (username, password) = text
                .trim_end_matches(['\r', '\n'])
                .split_once(':')
                .ok_or_else(|| bad("--basic-auth-file", "the file must hold USER:PASSWORD"))?;
            Auth::Basic {
                username: username.to_string(),
                password: password.to_string(),
            }
        }
        (None, Some(path)) => {
            let token = read_file("--bearer-token-file", path)?.trim().to_string();
            if token.is_empty() {
                return Err(bad("--bearer-token-file", "the file is empty"));
            }
            Auth::Bearer(token)
        }
        (None, None) => Auth::None,
    };
    let mut headers = Vec::new();
    for header in &connection.headers {
        let (name, value) = header
            .split_once(':')
            .ok_or_else(|| bad("--header", "expected NAME: VALUE"))?;
        let value = value.trim();
        let value = match value.strip_prefix('@') {
            Some(path) => read_file("--header", Path::new(path))?.trim().to_string(),
            None => value.to_string(),
        };
        headers.push((name.trim().to_string(), value));
    }
    let tls = match (&connection.ca_file, connection.insecure) {
        (_, true) => Tls::Insecure,
        (Some(path), false) => {
            Tls::VerifyWith(std::fs::read(path).map_err(|source| BadFlag::File {
                flag: "--ca-file",
                path: path.clone(),
                source,
            })?)
        }
        (None, false) => Tls::Verify,
    };
    Ok(Endpoint {
        url: url.to_string(),
        kind,
        tenant: tenant.map(str::to_string),
        auth,
        headers,
        tls,
        timeout: Duration::from_secs(connection.timeout_seconds),
    })
}

fn is_tenant(text: &str) -> bool {
    let number = |s: &str| !s.is_empty() && s.len() <= 10 && s.bytes().all(|b| b.is_ascii_digit());
    match text.split_once(':') {
        Some((account, project)) => number(account) && number(project),
        None => number(text),
    }
}

/// `KEY=VALUE` pairs.
pub fn pairs(flag: &'static str, items: &[String]) -> Result<BTreeMap<String, String>, BadFlag> {
    items
        .iter()
        .map(|item| {
            item.split_once('=')
                .filter(|(k, _)| !k.is_empty())
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| bad(flag, format!("{item:?} is not KEY=VALUE")))
        })
        .collect()
}

/// The obfuscation key: `--obfuscation-key-file`, else `VCTP_OBFUSCATION_KEY`.
fn key(file: Option<&Path>, flag: &'static str) -> Result<Option<Key>> {
    let text = match file {
        Some(path) => read_file(flag, path)?,
        None => match std::env::var("VCTP_OBFUSCATION_KEY") {
            Ok(text) => text,
            Err(_) => return Ok(None),
        },
    };
    Ok(Some(Key::from_text(&text)?))
}

fn obfuscation(args: &ObfuscationArgs) -> obfuscate::Settings {
    if args.no_obfuscation {
        return obfuscate::Settings {
            drop_labels: args.drop_label.clone(),
            ..obfuscate::Settings::default()
        };
    }
    obfuscate::Settings {
        ips: args.obfuscate_ips,
        jobs: args.obfuscate_jobs,
        labels: args.obfuscate_label.clone(),
        drop_labels: args.drop_label.clone(),
        ips_in_any_label: args.obfuscate_ips_in_any_label,
    }
}

/// The range of `--start/--end` or `--last`.
fn range(args: &ExportMetricsArgs) -> Result<Window, BadFlag> {
    let time = |flag, text: &str| {
        plan::parse_time(text).ok_or_else(|| {
            bad(
                flag,
                format!("{text:?} is not RFC 3339 (2026-03-10T14:00:00Z) or Unix seconds"),
            )
        })
    };
    let (start, end) = match (&args.start, &args.end, &args.last) {
        (Some(start), Some(end), None) => (time("--start", start)?, time("--end", end)?),
        (None, None, Some(last)) => {
            let length = plan::parse_duration(last)
                .ok_or_else(|| bad("--last", format!("{last:?} is not a duration such as 24h")))?;
            // Whole seconds: a run id and a range that read well.
            let now = chrono::Utc::now().timestamp() * 1000;
            (now - length, now)
        }
        _ => return Err(bad("--start/--end", "give --start and --end, or --last")),
    };
    Window::new(start, end).map_err(|e| bad("--start/--end", e.to_string()))
}

pub async fn export(args: ExportMetricsArgs, settings: &Settings) -> Result<()> {
    let range = range(&args)?;
    let window_ms = match &args.window {
        Some(text) => plan::parse_duration(text)
            .ok_or_else(|| bad("--window", format!("{text:?} is not a duration such as 1h")))?,
        None => windows::default_window_ms(range),
    };
    let step_ms = plan::parse_duration(&args.step).ok_or_else(|| {
        bad(
            "--step",
            format!("{:?} is not a duration such as 30s", args.step),
        )
    })?;
    let output = match &args.out {
        Some(out) if !args.stdout => {
            let mut options = settings.object_store_options.clone();
            options.extend(pairs("--store-option", &args.store_options)?);
            Output::Bundle {
                objects: Objects::from_url_with(
                    out,
                    &options,
                    settings.object_store_retry_timeout(),
                )
                .map_err(|e| bad("--out", e.to_string()))?,
                prefix: args.prefix.trim_matches('/').to_string(),
                retention: Retention {
                    keep_last: args.keep_last,
                    max_age_days: args.max_age_days,
                },
            }
        }
        _ => Output::Stdout,
    };
    let run_id = args
        .run_id
        .clone()
        .unwrap_or_else(|| format!("{}-{}", compact(range.start_ms), compact(range.end_ms)));
    let discover = (!args.discover_components.is_empty()).then(|| plan::Discover {
        components: args.discover_components.clone(),
        jobs: Vec::new(),
    });
    let plan = ExportPlan {
        run_id,
        source: endpoint(
            &args.source_url,
            args.source_kind,
            args.tenant.as_deref(),
            &args.connection,
        )?,
        method: match args.method {
            MethodArg::Auto => ExportMethod::Auto,
            MethodArg::Export => ExportMethod::Export,
            MethodArg::QueryRange => ExportMethod::QueryRange,
        },
        selectors: args.selectors.clone(),
        jobs: args.jobs.clone(),
        namespaces: args.namespaces.clone(),
        discover,
        queries: args.queries.clone(),
        range,
        window_ms,
        step_ms,
        retries: args.connection.retries,
        obfuscation: obfuscation(&args.obfuscation),
        key: key(
            args.obfuscation.obfuscation_key_file.as_deref(),
            "--obfuscation-key-file",
        )?,
        output,
    };
    let store_url = match &plan.output {
        Output::Bundle { objects, .. } => Some(objects.url().to_string()),
        Output::Stdout => None,
    };
    let cancel = crate::signal::cancel_on_shutdown();
    let mut observer = Console::new();
    let outcome = crate::jobs::export::run(plan, args.resume, &mut observer, &cancel).await;
    observer.done();
    let outcome = outcome?;
    let mut summary = format!(
        "run {}: {} series, {} samples ({} skipped), {} windows ({} split, {} resumed), method {}",
        outcome.run_id,
        outcome.series,
        outcome.samples,
        outcome.skipped,
        outcome.windows,
        outcome.splits,
        outcome.resumed,
        outcome.method.name()
    );
    if let (Some(bundle), Some(url)) = (&outcome.bundle, store_url) {
        summary.push_str(&format!(
            "\nbundle: {url} {} ({} bytes)\nsha256: {}\nmanifest: {}",
            bundle.bundle.key, bundle.bundle.size, bundle.bundle.sha256, bundle.manifest_key
        ));
        for deleted in &outcome.deleted {
            summary.push_str(&format!("\nretention deleted: {deleted}"));
        }
        println!("{summary}");
    } else {
        eprintln!("{summary}");
    }
    Ok(())
}

/// `20261130T000000Z`.
fn compact(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(plan::run_id_at)
        .unwrap_or_default()
}

/// Progress on stderr: a bar on a terminal, a line per window otherwise.
struct Console {
    bar: Option<indicatif::ProgressBar>,
    started: Instant,
}

impl Console {
    fn new() -> Console {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} windows {msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        });
        Console {
            bar,
            started: Instant::now(),
        }
    }

    fn say(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }

    fn done(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Observer for Console {
    fn progress(&mut self, progress: &Progress) {
        let eta = progress
            .eta
            .map(|eta| format!(", ETA {}s", eta.as_secs()))
            .unwrap_or_default();
        let message = format!(
            "{} series, {} samples, {} bytes{eta}",
            progress.series, progress.samples, progress.bytes
        );
        match &self.bar {
            Some(bar) => {
                bar.set_length(progress.windows_total);
                bar.set_position(progress.windows_done);
                bar.set_message(message);
            }
            None if progress.windows_done > 0 || progress.current.is_none() => eprintln!(
                "export: {}/{} windows after {:.1}s: {message}",
                progress.windows_done,
                progress.windows_total,
                self.started.elapsed().as_secs_f64()
            ),
            None => {}
        }
    }

    fn notice(&mut self, notice: &Notice) {
        let text = match notice {
            Notice::ExportUnavailable(why) => format!("note: reading with query_range: {why}"),
            Notice::SpecChanged => {
                "note: the run's checkpoint had other settings; starting over".to_string()
            }
            Notice::Resumed { windows } => format!("note: resuming after {windows} windows"),
            Notice::WindowSplit(window) => format!(
                "note: {} timed out; halved",
                crate::export::fetch::describe(*window)
            ),
            Notice::Retrying { attempt, error } => format!("note: retry {attempt}: {error}"),
        };
        self.say(&text);
    }
}

pub fn bundle(command: BundleCommand) -> Result<()> {
    match command {
        BundleCommand::Verify { bundle, sha256 } => {
            let report = crate::jobs::bundle::verify_file(&bundle, sha256.as_deref())?;
            println!("{report}");
            Ok(())
        }
        BundleCommand::Inspect { bundle, json } => {
            print!("{}", crate::jobs::bundle::inspect_file(&bundle, json)?);
            Ok(())
        }
    }
}

pub fn obfuscation_lookup(command: ObfuscationCommand) -> Result<()> {
    let ObfuscationCommand::Lookup {
        key_file,
        label,
        values,
    } = command;
    let key = key(key_file.as_deref(), "--key-file")?.ok_or_else(|| {
        bad(
            "--key-file",
            "give the key file, or the key in VCTP_OBFUSCATION_KEY",
        )
    })?;
    for value in values {
        println!("{value}\t{}", obfuscate::lookup(&key, &label, &value));
    }
    Ok(())
}

pub async fn import(
    args: crate::cli::metrics::ImportMetricsArgs,
    settings: &Settings,
) -> Result<()> {
    use crate::cli::metrics::VerifyMode;
    use crate::jobs::import::{self, Shift, Source, Trim, Verify};
    let source = match &args.from_store {
        Some(url) => {
            let mut options = settings.object_store_options.clone();
            options.extend(pairs("--store-option", &args.store_options)?);
            Source::Store {
                objects: Objects::from_url_with(
                    url,
                    &options,
                    settings.object_store_retry_timeout(),
                )
                .map_err(|e| bad("--from-store", e.to_string()))?,
                key: args.bundle.clone(),
            }
        }
        None => Source::File(PathBuf::from(&args.bundle)),
    };
    let target = endpoint(
        &args.target_url,
        args.target_kind,
        args.tenant.as_deref(),
        &args.connection,
    )?;
    let select = match &args.select_url {
        Some(url) => Some(endpoint(
            url,
            args.target_kind,
            args.tenant.as_deref(),
            &args.connection,
        )?),
        None => None,
    };
    let trim = match (&args.retention, args.no_trim) {
        (_, true) => Trim::Off,
        (Some(text), false) => {
            let ms = plan::parse_duration(text).ok_or_else(|| {
                bad(
                    "--retention",
                    format!("{text:?} is not a duration such as 30d"),
                )
            })?;
            Trim::Retention(Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
        }
        (None, false) => Trim::Auto,
    };
    let plan = import::ImportPlan {
        source,
        sha256: args.sha256.clone(),
        allow_unverified: args.allow_unverified,
        target,
        select,
        chunk_bytes: usize::try_from(args.chunk_bytes).unwrap_or(4 << 20),
        shift: match (args.shift_to_now, args.shift_ms) {
            (true, _) => Shift::ToNow,
            (false, Some(ms)) => Shift::Ms(ms),
            (false, None) => Shift::None,
        },
        trim,
        extra_labels: pairs("--extra-label", &args.extra_labels)?
            .into_iter()
            .collect(),
        resume: args.resume,
        state_file: args.state_file.clone(),
        verify: match args.verify {
            VerifyMode::Exact => Verify::Exact,
            VerifyMode::Counts => Verify::Counts,
            VerifyMode::None => Verify::None,
        },
        retries: args.connection.retries,
    };
    let cancel = crate::signal::cancel_on_shutdown();
    let started = Instant::now();
    let mut observer = ImportConsole {
        started,
        uncertain: false,
    };
    let outcome = import::run(plan, &mut observer, &cancel).await?;
    let state = &outcome.state;
    println!(
        "imported {} lines, {} samples ({} older than the target's retention left out) in {} chunks ({} resumed) in {:.1}s; shift {} ms",
        state.lines,
        state.samples,
        state.trimmed,
        state.chunks,
        outcome.resumed_chunks,
        started.elapsed().as_secs_f64(),
        state.shift_ms
    );
    if let Some(comparison) = &outcome.verification {
        println!(
            "verified: {} series as sent{}",
            comparison.matching_series,
            if comparison.unrelated_series > 0 {
                format!(
                    " ({} other series with the same metric names were already there)",
                    comparison.unrelated_series
                )
            } else {
                String::new()
            }
        );
    }
    if !state.uncertain_chunks.is_empty() {
        println!(
            "warning: the answers to chunks {:?} were lost after sending; on a target without deduplication (-dedup.minScrapeInterval) their samples may be stored twice",
            state.uncertain_chunks
        );
    }
    Ok(())
}

/// Import progress on stderr, one line per chunk.
struct ImportConsole {
    started: Instant,
    uncertain: bool,
}

impl crate::jobs::import::Observer for ImportConsole {
    fn chunk(&mut self, done: &crate::jobs::import::State) {
        eprintln!(
            "import: chunk {} sent after {:.1}s: {} lines, {} samples, {} bytes",
            done.chunks,
            self.started.elapsed().as_secs_f64(),
            done.lines,
            done.samples,
            done.bytes
        );
    }

    fn notice(&mut self, notice: &crate::jobs::import::Notice) {
        use crate::jobs::import::Notice;
        let text = match notice {
            Notice::Verified { from } => format!("note: SHA-256 matches the {from}"),
            Notice::Resumed { chunks, lines } => {
                format!("note: resuming after {chunks} chunks ({lines} lines)")
            }
            Notice::NoRetention => "note: the target does not tell its retention: nothing is trimmed (pass --retention to trim)".to_string(),
            Notice::Retrying {
                chunk,
                attempt,
                error,
            } => format!("note: chunk {chunk}, retry {attempt}: {error}"),
            Notice::MaybeDuplicated { chunk } => {
                self.uncertain = true;
                format!("warning: the answer to chunk {chunk} was lost after sending; without deduplication on the target its samples may be stored twice")
            }
            Notice::Verifying => "note: verifying: re-exporting what was imported".to_string(),
        };
        eprintln!("{text}");
    }
}
