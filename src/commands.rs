//! What each subcommand does: open the store, call the engine or the store, print.

pub mod failure;
pub mod job;
pub mod job_progress;
pub mod metrics;

use crate::aggregate::engine::Source;
use crate::aggregate::{self, Day, Engine, Month};
use crate::cli::{
    AggregateCommand, BenchCommand, CacheCommand, Command, CostsCommand, DbCommand, ReportCommand,
    ReportKind, ReportPeriod, SnapshotCommand, SummaryCommand, SynthArgs, TotalsCommand,
};
use crate::config::{Settings, VcenterTarget};
use crate::cost::Period as CostPeriod;
use crate::inventory::HourlyRow;
use crate::inventory::collector::Collector;
use crate::inventory::csv::{HourlyCsvReader, HourlyCsvWriter};
use crate::jobs::report::{self as report_job, Period};
use crate::jobs::{self, Stores, aggregate as aggregate_job, retention, snapshot};
use crate::objstore::Objects;
use crate::output;
use crate::store::grain::{Grain, TotalsGrain};
use crate::store::hourly::RowFilter;
use crate::store::{DatabaseUrl, Store};
use anyhow::Context;
pub use failure::{Error, Kind};

/// What every command returns: its failure knows its [`Kind`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
use futures_util::TryStreamExt;
use std::io::{BufReader, BufWriter, Write};
use std::path::Path;
use std::time::Instant;

/// Errors that mean the input was wrong rather than that something failed; they exit with
/// status 2.
#[derive(Debug, thiserror::Error)]
#[error("{source_name}, line {line}: {source}")]
pub struct BadRow {
    pub source_name: String,
    pub line: u64,
    pub source: crate::store::Error,
}

pub async fn run(
    command: Command,
    settings: &Settings,
    settings_path: Option<&Path>,
    database_url: Option<&str>,
) -> Result<()> {
    let decrypted;
    let settings = match &command {
        // A Job's settings come from a read-only ConfigMap and its secrets from the
        // environment, and it reports its failures itself (`vctp job`).
        Command::Job(_) => settings,
        _ => {
            decrypted = crate::credentials::decrypt_settings(settings, settings_path)?;
            &decrypted
        }
    };
    let url = || settings.database_url(database_url);
    match command {
        Command::Demo(args) => Ok(crate::demo::run(&args, settings).await?),
        Command::ExportMetrics(args) => metrics::export(*args, settings).await,
        Command::ImportMetrics(args) => metrics::import(*args, settings).await,
        Command::Bundle(command) => metrics::bundle(command),
        Command::Obfuscation(command) => metrics::obfuscation_lookup(command),
        Command::Standalone(args) => standalone(settings, settings_path, &url()?, &args).await,
        Command::Serve(args) => serve(settings, settings_path, &url()?, &args).await,
        Command::Sim(args) => Ok(crate::sim::run(args.listen, args.into()).await?),
        Command::Encrypt(args) => encrypt(settings, &args.setting),
        Command::Openapi => {
            let document = crate::api::openapi()
                .to_pretty_json()
                .context("failed to render the OpenAPI document")?;
            writeln!(std::io::stdout(), "{document}")
                .context("failed to write the OpenAPI document")?;
            Ok(())
        }
        Command::Db(DbCommand::Migrate) => {
            let url = url()?;
            let store = connect(settings, &url).await?;
            store.close().await;
            println!("{url}: schema is up to date");
            Ok(())
        }
        Command::Db(DbCommand::Cleanup { now }) => {
            let store = connect(settings, &url()?).await?;
            cleanup(
                &store,
                settings,
                now.unwrap_or_else(|| chrono::Utc::now().timestamp()),
            )
            .await
        }
        Command::Db(DbCommand::RenameVcenter { from, to }) => {
            let store = connect(settings, &url()?).await?;
            let renamed = store.rename_vcenter(&from, &to).await;
            store.close().await;
            println!("moved {} rows of vCenter {from} to {to}", renamed?.rows);
            Ok(())
        }
        Command::Db(DbCommand::ImportSqlite { from }) => {
            let store = connect(settings, &url()?).await?;
            store
                .import_sqlite(&from, |table, rows| println!("copied {table}: {rows} rows"))
                .await?;
            Ok(())
        }
        Command::Snapshot(SnapshotCommand::Import { csv }) => {
            let store = connect(settings, &url()?).await?;
            import_csv(&store, settings, &csv).await
        }
        Command::Snapshot(SnapshotCommand::Export {
            vcenter, from, to, ..
        }) => {
            let store = connect(settings, &url()?).await?;
            let mut rows = store.hourly_rows(RowFilter { vcenter, from, to });
            let stdout = std::io::stdout();
            let mut writer = HourlyCsvWriter::new(BufWriter::new(stdout.lock()))?;
            while let Some(row) = rows.try_next().await? {
                writer.write(&row)?;
            }
            writer.finish()?;
            Ok(())
        }
        Command::Snapshot(SnapshotCommand::Generate(args)) => {
            let stdout = std::io::stdout();
            generate_csv(&args, BufWriter::new(stdout.lock()))
        }
        Command::Aggregate(command) => {
            let store = connect(settings, &url()?).await?;
            let default_engine = settings.scheduled_aggregation_engine;
            let (period, engine, no_report) = match command {
                AggregateCommand::Daily {
                    date,
                    engine,
                    no_report,
                } => (Period::Day(Day::parse(&date)?), engine, no_report),
                AggregateCommand::Monthly {
                    month,
                    engine,
                    no_report,
                } => (Period::Month(Month::parse(&month)?), engine, no_report),
            };
            let engine = engine.unwrap_or(default_engine);
            aggregate(&store, settings, period, engine, !no_report).await
        }
        Command::Report(command) => {
            let store = connect(settings, &url()?).await?;
            report(&store, settings, command).await
        }
        Command::Summary(command) => {
            let store = connect(settings, &url()?).await?;
            let (grain, period_start, label, format) = match command {
                SummaryCommand::Daily { date, format } => {
                    let day = Day::parse(&date)?;
                    (
                        Grain::Daily,
                        day.start(),
                        format!("daily --date {day}"),
                        format,
                    )
                }
                SummaryCommand::Monthly { month, format } => {
                    let month = Month::parse(&month)?;
                    (
                        Grain::Monthly,
                        month.start(),
                        format!("monthly --month {month}"),
                        format,
                    )
                }
            };
            let rows = store.summaries(grain, period_start).await?;
            if rows.is_empty() {
                return Err(anyhow::anyhow!(
                    "no summaries are stored for that period; run `vctp aggregate {label}` first"
                )
                .into());
            }
            output::write_summaries(std::io::stdout().lock(), format, &rows)?;
            Ok(())
        }
        Command::Costs(command) => {
            let store = connect(settings, &url()?).await?;
            let (period, view) = match command {
                CostsCommand::Daily { date, view } => (CostPeriod::Day(Day::parse(&date)?), view),
                CostsCommand::Monthly { month, view } => {
                    (CostPeriod::Month(Month::parse(&month)?), view)
                }
            };
            let report =
                jobs::costs::report(&store, &settings.pricing, period, view.group_by).await?;
            output::write_costs(std::io::stdout().lock(), view.format, &report)?;
            Ok(())
        }
        Command::Totals(command) => {
            let store = connect(settings, &url()?).await?;
            totals(&store, command).await
        }
        Command::Cache(CacheCommand::Backfill) => {
            let store = connect(settings, &url()?).await?;
            let done = store.backfill_totals().await?;
            println!(
                "rebuilt vCenter totals: snapshots of {} vCenters, {} days, {} months",
                done.vcenters, done.days, done.months
            );
            Ok(())
        }
        Command::Bench(command) => {
            // Benchmarks use a scratch SQLite file unless a database is named explicitly.
            let url = database_url.map(DatabaseUrl::parse).transpose()?;
            let measured = match command {
                BenchCommand::Aggregations(args) => {
                    crate::bench::aggregations::run(&args, url).await
                }
                BenchCommand::Collect(args) => crate::bench::collect::run(&args, url).await,
                BenchCommand::Report(args) => crate::bench::report::run(&args, url).await,
                BenchCommand::Api(args) => crate::bench::api::run(&args, url).await,
                BenchCommand::Connections(args) => crate::bench::connections::run(&args).await,
                BenchCommand::ExportData(args) => {
                    crate::bench::export::run(&args, std::io::stdout().lock())
                }
            };
            Ok(measured?)
        }
        Command::Snapshot(SnapshotCommand::Run { vcenter }) => {
            let store = connect(settings, &url()?).await?;
            snapshot_run(&store, settings, vcenter.as_deref()).await
        }
        Command::Crd(args) => crd(&args),
        Command::Operator(args) => operator(args, settings).await,
        Command::Job(command) => Ok(job::run(command, settings, database_url).await?),
    }
}

async fn operator(args: crate::cli::OperatorArgs, settings: &Settings) -> Result<()> {
    use crate::operator::run::{Options, default_defaults};
    let (secret, key) = match args.database_secret.split_once(':') {
        Some((secret, key)) => (secret.to_string(), key.to_string()),
        None => (
            args.database_secret.clone(),
            crate::operator::job::ENV_DATABASE_URL.to_string(),
        ),
    };
    if args.job_template.is_none() && args.job_image.is_none() {
        return Err(NoJobTemplate.into());
    }
    let mut defaults = default_defaults(args.job_image.unwrap_or_default());
    defaults.service_account = args.job_service_account;
    defaults.database_url_secret = crate::crd::SecretKeyRef { name: secret, key };
    defaults.reports_url = args.reports_url;
    defaults.backoff_limit = args.job_backoff_limit.max(0);
    // Where a deleted MetricsExport's parts are cleaned up when it names no store of its own.
    let export_store_url = if defaults.reports_url.is_empty() {
        settings.reports_url()
    } else {
        defaults.reports_url.clone()
    };
    let options = Options {
        namespaces: args
            .namespaces
            .into_iter()
            .filter(|n| !n.is_empty())
            .collect(),
        job_template: args.job_template,
        defaults,
        instance: args.instance.filter(|i| !i.is_empty()),
        leader_election: args.leader_election,
        lease_name: args.lease_name,
        pod_namespace: args.pod_namespace,
        pod_name: args.pod_name,
        metrics_addr: args.metrics_addr,
        recheck_every: std::time::Duration::from_secs(args.recheck_seconds.max(10)),
        image_pull_timeout: std::time::Duration::from_secs(args.image_pull_timeout_seconds),
        export_store: crate::operator::ExportStore {
            url: export_store_url,
            options: settings.object_store_options.clone(),
        },
    };
    if args.check {
        let template = crate::operator::run::job_template(&options).map_err(BadOperatorSettings)?;
        let yaml = crate::operator::run::example_job(&template).map_err(BadOperatorSettings)?;
        print!("{yaml}");
        return Ok(());
    }
    // The error's own kind says whether the settings were wrong or the operator failed.
    Ok(crate::operator::run::run(options, crate::signal::shutdown_signal()).await?)
}

/// `vctp operator` without a way to build Jobs.
#[derive(Debug, thiserror::Error)]
#[error(
    "vctp operator needs a Job template: set --job-template (VCTP_JOB_TEMPLATE) or --job-image (VCTP_JOB_IMAGE)"
)]
pub struct NoJobTemplate;

/// `vctp operator --check`: whatever stops it printing the example Job lies in the settings (exit status 2).
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct BadOperatorSettings(pub crate::operator::run::Error);

/// Rows per message from the CSV parser to the writer: the channel costs nothing per row,
/// and the few batches in flight stay a few MB.
const IMPORT_BATCH: usize = 1_024;

/// Batches in flight between the parser and the writer.
const IMPORT_BATCHES_IN_FLIGHT: usize = 4;

type ParsedBatch = std::result::Result<Vec<(u64, HourlyRow)>, crate::inventory::csv::Error>;

async fn import_csv(store: &Store, settings: &Settings, path: &Path) -> Result<()> {
    let started = Instant::now();
    let file =
        std::fs::File::open(path).with_context(|| format!("failed to open {}", path.display()))?;
    let source_name = path.display().to_string();
    let reader = HourlyCsvReader::new(BufReader::new(file), source_name.clone())?;
    let mut writer = store
        .snapshot_writer(settings.tier_mapping(), "import")
        .await?;
    // The CSV is parsed on a thread of its own while this one writes, the two overlapping;
    // the bounded channel keeps memory flat. When the writer stops early, the channel closes
    // and the parser ends with it.
    let (batches_tx, mut batches) = tokio::sync::mpsc::channel(IMPORT_BATCHES_IN_FLIGHT);
    std::thread::Builder::new()
        .name("csv-parser".into())
        .spawn(move || parse_batches(reader, &batches_tx))
        .context("failed to start the CSV parser thread")?;
    // Any error drops the writer, which rolls the whole file back.
    while let Some(batch) = batches.recv().await {
        for (line, row) in batch? {
            writer.push(row).await.map_err(|source| BadRow {
                source_name: source_name.clone(),
                line,
                source,
            })?;
        }
    }
    let stored = writer.commit().await?;
    let rows: u64 = stored.iter().map(|s| s.rows).sum();
    println!(
        "imported {rows} rows in {} snapshots from {source_name} in {:.2} s",
        stored.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Sends the rows of `reader` in batches, then ends; a parse error is sent and ends it.
fn parse_batches(
    mut reader: HourlyCsvReader<BufReader<std::fs::File>>,
    batches: &tokio::sync::mpsc::Sender<ParsedBatch>,
) {
    loop {
        let mut batch = Vec::with_capacity(IMPORT_BATCH);
        let end = loop {
            match reader.next_row() {
                Ok(Some(row)) => {
                    batch.push(row);
                    if batch.len() == IMPORT_BATCH {
                        break false;
                    }
                }
                Ok(None) => break true,
                Err(e) => {
                    let _ = batches.blocking_send(Err(e));
                    return;
                }
            }
        };
        // A closed channel means the writer stopped: nothing more is wanted.
        if batches.blocking_send(Ok(batch)).is_err() || end {
            return;
        }
    }
}

/// Writes the synthetic inventory described by `args` as hourly CSV.
pub fn generate_csv(args: &SynthArgs, out: impl Write) -> Result<()> {
    let start = Day::parse(&args.start)?;
    let inventory =
        crate::synth::Inventory::new(args.vms, args.vcenters, start, args.days, args.seed);
    let mut writer = HourlyCsvWriter::new(out)?;
    let mut day = start;
    for _ in 0..args.days {
        for v in 0..inventory.vcenters().len() {
            for t in inventory.snapshot_times(v, day) {
                for row in inventory.rows_at(v, t) {
                    writer.write(&row)?;
                }
            }
        }
        day = day.next();
    }
    writer.finish()?;
    Ok(())
}

/// `vctp aggregate daily|monthly`: the aggregation unit of work, asked for one period.
async fn aggregate(
    store: &Store,
    settings: &Settings,
    period: Period,
    engine: Engine,
    report: bool,
) -> Result<()> {
    let started = Instant::now();
    let objects = report_store(settings)?;
    let stores = Stores {
        store,
        objects: &objects,
        pivots: &settings.report_summary_pivots,
        pricing: &settings.pricing,
    };
    let request = aggregate_job::Request {
        period,
        vcenters: Vec::new(),
        engine,
        report,
    };
    let outcome = aggregate_job::run(
        &stores,
        &request,
        Source::Cli,
        aggregate_job::WhenEmpty::Fail,
    )
    .await?;
    println!(
        "{} {}: {} VM rows over {} vCenters ({engine:?} engine, {:.2} s)",
        period.kind(),
        period.label(),
        outcome.rows_written,
        outcome.vcenters,
        started.elapsed().as_secs_f64()
    );
    for report in &outcome.reports {
        print_report(&objects, &report.key, report.size, &report.sha256);
    }
    Ok(())
}

async fn totals(store: &Store, command: TotalsCommand) -> Result<()> {
    let stdout = std::io::stdout();
    match command {
        TotalsCommand::Hourly { date, format } => {
            let rows = aggregate::engine::hourly_totals(store, Day::parse(&date)?).await?;
            output::write_rows(stdout.lock(), format, &rows)?;
        }
        TotalsCommand::Daily { from, to, format } => {
            let (from, to) = (Day::parse(&from)?, Day::parse(&to)?);
            if from > to {
                return Err(anyhow::anyhow!("--from {from} is after --to {to}").into());
            }
            let rows = store
                .totals(TotalsGrain::Daily, from.start(), to.end())
                .await?;
            output::write_rows(stdout.lock(), format, &rows)?;
        }
        TotalsCommand::Latest { format } => {
            output::write_rows(stdout.lock(), format, &store.latest_totals().await?)?;
        }
    }
    Ok(())
}

/// The object store reports go to (settings.reports_url, else settings.reports_dir).
pub fn report_store(settings: &Settings) -> Result<Objects> {
    Ok(Objects::from_url_with(
        &settings.reports_url(),
        &settings.object_store_options,
        settings.object_store_retry_timeout(),
    )?)
}

/// The database, migrated, waiting at most settings.database_timeout_seconds for a
/// connection.
async fn connect(settings: &Settings, url: &DatabaseUrl) -> Result<Store> {
    Ok(Store::connect_with(url, settings.database_timeout()).await?)
}

fn print_report(objects: &Objects, key: &str, size: i64, sha256: &str) {
    println!(
        "wrote {}/{key} ({size} bytes, sha256 {sha256})",
        objects.url().trim_end_matches('/'),
    );
}

async fn report(store: &Store, settings: &Settings, command: ReportCommand) -> Result<()> {
    match command {
        ReportCommand::Generate { period, vcenter } => {
            let objects = report_store(settings)?;
            let stores = Stores {
                store,
                objects: &objects,
                pivots: &settings.report_summary_pivots,
                pricing: &settings.pricing,
            };
            let scope = vcenter.as_deref();
            let written = match period {
                ReportPeriod::Hourly { at } => {
                    report_job::generate(&stores, Period::hour(&at)?, scope, None).await?
                }
                ReportPeriod::Daily { date } => {
                    let period = Period::Day(Day::parse(&date)?);
                    report_job::generate(&stores, period, scope, None).await?
                }
                ReportPeriod::Monthly { month } => {
                    let period = Period::Month(Month::parse(&month)?);
                    report_job::generate(&stores, period, scope, None).await?
                }
                ReportPeriod::Focus { month } => {
                    report_job::generate_focus(&stores, Month::parse(&month)?, scope).await?
                }
            };
            for entry in written {
                print_report(&objects, &entry.object_key, entry.size, &entry.sha256);
            }
        }
        ReportCommand::List { kind, format } => {
            let entries = store.reports(kind.map(ReportKind::as_str)).await?;
            output::write_rows(std::io::stdout().lock(), format, &entries)?;
        }
        ReportCommand::Url { key, expires } => {
            let objects = report_store(settings)?;
            let url = objects
                .presign_get(&key, expires)
                .await?
                .with_context(|| {
                    format!(
                        "{} cannot presign URLs (a local directory); download with `vctp report get {key} -o FILE`",
                        objects.url()
                    )
                })?;
            // A link to nothing would only fail when followed: say so now.
            if objects.size_of(&key).await?.is_none() {
                return Err(crate::objstore::Error::NotFound {
                    url: objects.url().to_string(),
                    key,
                }
                .into());
            }
            println!("{url}");
        }
        ReportCommand::Get { key, output } => {
            let objects = report_store(settings)?;
            let size = objects.get_to_file(&key, &output).await?;
            let bytes = std::fs::read(&output)
                .with_context(|| format!("failed to read back {}", output.display()))?;
            let sha256 = format!("{:x}", <sha2::Sha256 as sha2::Digest>::digest(&bytes));
            if let Some(entry) = store.report(&key).await?
                && entry.sha256 != sha256
            {
                return Err(anyhow::anyhow!(
                    "{} was downloaded but its SHA-256 {sha256} differs from the registered {}",
                    output.display(),
                    entry.sha256
                )
                .into());
            }
            println!(
                "{key}: {size} bytes, sha256 {sha256} → {}",
                output.display()
            );
        }
    }
    Ok(())
}

async fn cleanup(store: &Store, settings: &Settings, now: i64) -> Result<()> {
    let done = retention::run(store, retention::Policy::from_settings(settings), now).await?;
    println!("{done}");
    Ok(())
}

/// The vCenters to snapshot and a collector holding the password of the (decrypted) settings.
fn collector(settings: &Settings) -> Result<(Collector, Vec<VcenterTarget>)> {
    let targets = settings
        .vcenter_targets()
        .map_err(|(key, message)| anyhow::anyhow!("{key}: {message}"))?;
    if targets.is_empty() {
        return Err(NoVcenters.into());
    }
    let password = crate::credentials::vcenter_password(settings)?.to_owned();
    Ok((Collector::from_settings(settings, password), targets))
}

/// No vCenter is configured: bad input, exit status 2.
#[derive(Debug, thiserror::Error)]
#[error(
    "no vCenters configured: set settings.vcenter_addresses (or settings.vcenters) in the settings file given with --config"
)]
pub struct NoVcenters;

async fn snapshot_run(store: &Store, settings: &Settings, only: Option<&str>) -> Result<()> {
    let (collector, mut targets) = collector(settings)?;
    if let Some(name) = only {
        targets.retain(|t| t.name == name);
        if targets.is_empty() {
            return Err(anyhow::anyhow!("no configured vCenter is named {name:?}").into());
        }
    }
    let objects = settings
        .hourly_reports
        .then(|| report_store(settings))
        .transpose()?;
    let policy = snapshot::RoundPolicy {
        concurrency: settings.hourly_snapshot_concurrency,
        hourly_report: objects.as_ref().map(|objects| Stores {
            store,
            objects,
            pivots: &settings.report_summary_pivots,
            pricing: &settings.pricing,
        }),
    };
    let snapshot_time = chrono::Utc::now().timestamp();
    let round = snapshot::round(store, &collector, &targets, snapshot_time, policy).await?;
    for (target, done) in round.stored() {
        println!(
            "{}: {} VMs stored in {:.2} s ({} left out by tenants_to_filter, {} by node_charge_clusters)",
            target.name, done.rows, done.seconds, done.filtered_tenant, done.filtered_node_charge
        );
    }
    if let Some(objects) = &objects {
        for entry in &round.reports {
            print_report(objects, &entry.object_key, entry.size, &entry.sha256);
        }
    }
    round.check().map(drop)?;
    Ok(())
}

async fn standalone(
    settings: &Settings,
    settings_path: Option<&Path>,
    url: &DatabaseUrl,
    args: &crate::cli::ServeArgs,
) -> Result<()> {
    let (collector, targets) = collector(settings)?;
    let store = connect(settings, url).await?;
    tracing::info!(
        vcenters = targets.len(),
        database = %url,
        every_seconds = settings.vcenter_inventory_snapshot_seconds,
        "standalone scheduler starting"
    );
    let scheduler = crate::standalone::Scheduler {
        reports: report_store(settings)?,
        plan: crate::standalone::Timetable::from_settings(settings)?,
        engine: settings.scheduled_aggregation_engine,
        store: store.clone(),
        settings: settings.clone(),
        collector,
        targets,
    };
    let server = start_server(settings, settings_path, url, &store, args).await?;
    println!("vctp standalone: UI and API on {}", server.url);
    let result = scheduler.run(crate::signal::shutdown_signal()).await;
    let url = server.url.clone();
    let stopped = server.stop().await;
    store.close().await;
    result?;
    Ok(stopped.with_context(|| format!("API server on {url} failed"))?)
}

/// The UI and API server of `serve` and `standalone`, as their flags and the settings say:
/// `--listen` over bind_ip/bind_port, HTTPS unless `--disable-tls` or bind_disable_tls.
async fn start_server(
    settings: &Settings,
    settings_path: Option<&Path>,
    url: &DatabaseUrl,
    store: &Store,
    args: &crate::cli::ServeArgs,
) -> Result<crate::api::Background> {
    let listen = args
        .listen
        .unwrap_or_else(|| std::net::SocketAddr::new(settings.bind_ip, settings.bind_port));
    let tls = (!(args.disable_tls || settings.bind_disable_tls)).then(|| {
        crate::api::tls::Source::new(
            settings.tls_cert_filename.as_deref(),
            settings.tls_key_filename.as_deref(),
            self_signed_dir(url, settings_path),
            listen,
        )
    });
    let options = crate::api::ServerOptions {
        listen,
        kube_namespace: args.kube_namespace.clone(),
        cache_seconds: args.cache_seconds,
        tls,
        secure_cookies_behind_proxy: args.secure_cookies,
        limits: crate::api::Limits::from_settings(settings),
    };
    Ok(crate::api::start(settings, store.clone(), report_store(settings)?, options).await?)
}

/// Where a self-signed certificate is kept: beside the SQLite database, else (PostgreSQL)
/// beside the settings file, else in the working directory.
fn self_signed_dir(url: &DatabaseUrl, settings_path: Option<&Path>) -> std::path::PathBuf {
    let beside = |file: &Path| {
        file.parent()
            .filter(|dir| !dir.as_os_str().is_empty())
            .map_or_else(|| std::path::PathBuf::from("."), Path::to_path_buf)
    };
    match (url, settings_path) {
        (DatabaseUrl::Sqlite(file), _) => beside(file),
        (DatabaseUrl::Postgres(_), Some(settings)) => beside(settings),
        (DatabaseUrl::Postgres(_), None) => std::path::PathBuf::from("."),
    }
}

async fn serve(
    settings: &Settings,
    settings_path: Option<&Path>,
    url: &DatabaseUrl,
    args: &crate::cli::ServeArgs,
) -> Result<()> {
    let store = connect(settings, url).await?;
    let server = start_server(settings, settings_path, url, &store, args).await?;
    // On stdout, so a caller that asked for port 0 learns the port.
    println!("vctp serve listening on {}", server.url);
    crate::signal::shutdown_signal().await;
    let url = server.url.clone();
    let result = server.stop().await;
    store.close().await;
    Ok(result.with_context(|| format!("API server on {url} failed"))?)
}

fn encrypt(settings: &Settings, setting: &str) -> Result<()> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("failed to read the value to encrypt from stdin")?;
    let key = crate::credentials::key_from_settings(settings)?;
    let plaintext = line.trim_end_matches(['\r', '\n']);
    println!("{}", crate::credentials::encrypt(&key, setting, plaintext)?);
    Ok(())
}

/// `vctp crd`: the CRDs of `crate::crd::all()` to stdout, or as files for `crds/` and the chart.
fn crd(args: &crate::cli::CrdArgs) -> Result<()> {
    if args.out.is_none() && args.chart.is_none() {
        print!("{}", crate::crd::yaml_stream()?);
        return Ok(());
    }
    if let Some(dir) = &args.out {
        for path in crate::crd::write_files(dir, &crate::crd::files()?)? {
            println!("wrote {}", path.display());
        }
    }
    if let Some(dir) = &args.chart {
        for path in crate::crd::write_files(dir, &crate::crd::chart_files()?)? {
            println!("wrote {}", path.display());
        }
    }
    Ok(())
}
