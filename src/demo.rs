//! `vctp demo`: the whole pipeline with no vCenter. The built-in simulator runs in-process
//! on a loopback port; a history of hourly snapshots is taken through the real SOAP client
//! on a simulated clock, every day and month is aggregated, and then the standalone
//! scheduler keeps snapshotting on the real clock until Ctrl-C.

use crate::aggregate::engine::Source;
use crate::aggregate::{Day, Engine, Month};
use crate::cli::DemoArgs;
use crate::config::Settings;
use crate::cost::{GroupBy, Period as CostPeriod};
use crate::inventory::collector::Collector;
use crate::jobs::aggregate::{self, WhenEmpty};
use crate::jobs::report::Period;
use crate::jobs::{self, Stores, snapshot};
use crate::objstore::Objects;
use crate::output;
use crate::sim::{Clock, SimConfig, Simulator};
use crate::standalone::{Job, Scheduler, Timetable};
use crate::store::grain::TotalsGrain;
use crate::store::runs::JobRun;
use crate::store::{DatabaseUrl, Store};
use anyhow::{Context, Result};
use std::time::Instant;

const HOUR: i64 = 3_600;
const USERNAME: &str = "demo";
const PASSWORD: &str = "vctp-demo";

pub async fn run(args: &DemoArgs, settings: &Settings) -> Result<()> {
    anyhow::ensure!(args.days >= 1, "--days must be at least 1");
    anyhow::ensure!(
        args.vms >= 1 && args.vcenters >= 1,
        "--vms and --vcenters must be at least 1"
    );
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("failed to create {}", args.dir.display()))?;
    // The demo directory is the report store's root: reports land in its `reports/`.
    let reports = args.dir.join("reports");
    let db_path = args.dir.join("vctp.sqlite3");
    start_over(&db_path)?;
    let url = DatabaseUrl::Sqlite(db_path.clone());
    let store = Store::connect(&url).await?;

    let now = chrono::Utc::now().timestamp();
    let today = Day::containing(now)?;
    let first_day = Day::containing(today.start() - i64::from(args.days) * 86_400)?;
    let clock = Clock::manual(first_day.start());
    let sim = Simulator::new(
        SimConfig {
            vms: args.vms,
            vcenters: args.vcenters,
            seed: args.seed,
            page_size: 1_000,
            username: USERNAME.into(),
            password: PASSWORD.into(),
        },
        clock.clone(),
    );
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("failed to listen on {}", args.listen))?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop_sim, sim_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(sim.clone().serve(listener, async {
        let _ = sim_stopped.await;
    }));
    let targets = sim.targets(&base);
    println!(
        "vctp demo: simulated vCenters with {} VMs in all:",
        args.vms
    );
    for target in &targets {
        println!("  {} at {}", target.name, target.url);
    }
    let mut demo_settings = settings.clone();
    demo_settings.vcenter_username = USERNAME.into();
    if demo_settings.pricing.cards.is_empty() {
        demo_settings.pricing = crate::config::sample_pricing()?;
        println!(
            "pricing with the sample rate cards and tenant rules of config/costs.yml (settings.rate_cards and settings.tenant_rules replace them)"
        );
    }
    let collector = Collector::from_settings(&demo_settings, PASSWORD.into());

    // History: one snapshot per vCenter per hour, on the simulator's clock.
    let started = Instant::now();
    let last_tick = now.div_euclid(HOUR) * HOUR;
    let mut tick = first_day.start();
    let mut day_rows = 0usize;
    let history = snapshot::RoundPolicy {
        concurrency: 0,
        hourly_report: None,
    };
    while tick <= last_tick {
        clock.set(tick);
        day_rows += snapshot::round(&store, &collector, &targets, tick, history)
            .await?
            .check()
            .with_context(|| format!("snapshot at {tick}"))?
            .rows();
        tick += HOUR;
        if tick % 86_400 == 0 || tick > last_tick {
            let day = Day::containing(tick - HOUR)?;
            println!("  {day}: {day_rows} VM rows in snapshots");
            day_rows = 0;
        }
    }
    let snapshots = store
        .snapshot_times(first_day.start(), last_tick + 1)
        .await?
        .len();
    println!(
        "took {snapshots} snapshots through the SOAP client in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // Every complete day, then every month those days touch, each with its reports; then the
    // latest hour's report.
    let started = Instant::now();
    let objects = Objects::from_url(&args.dir.display().to_string(), &Default::default())?;
    let stores = Stores {
        store: &store,
        objects: &objects,
        pivots: &settings.report_summary_pivots,
        pricing: &demo_settings.pricing,
    };
    let mut months: Vec<Month> = Vec::new();
    for day in days_before(first_day, today) {
        if months.last() != Some(&day.month()) {
            months.push(day.month());
        }
    }
    let periods = days_before(first_day, today)
        .map(Period::Day)
        .chain(months.iter().copied().map(Period::Month))
        .chain([Period::hour_containing(last_tick)]);
    let mut written = 0;
    for period in periods {
        let request = aggregate::Request {
            period,
            vcenters: Vec::new(),
            engine: Engine::Rust,
            report: true,
        };
        written += aggregate::run(&stores, &request, Source::Demo, WhenEmpty::Skip)
            .await?
            .reports
            .len();
    }
    println!(
        "aggregated {} days and {} months ({}) and wrote {written} report objects (XLSX and CSV, each with a .sha256) to {} in {:.1} s",
        args.days,
        months.len(),
        months
            .iter()
            .map(Month::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        reports.display(),
        started.elapsed().as_secs_f64()
    );

    let yesterday = Day::containing(today.start() - 1)?;
    println!("\ndaily vCenter totals for {yesterday}:");
    let totals = store
        .totals(TotalsGrain::Daily, yesterday.start(), yesterday.end())
        .await?;
    output::write_rows(std::io::stdout().lock(), output::OutputFormat::Csv, &totals)?;
    let month = yesterday.month();
    match jobs::costs::report(
        &store,
        &demo_settings.pricing,
        CostPeriod::Month(month),
        GroupBy::Tenant,
    )
    .await
    {
        Ok(costs) => {
            println!();
            output::write_costs(std::io::stdout().lock(), output::CostFormat::Table, &costs)?;
        }
        Err(e) => println!("\nno costs for {month}: {e}"),
    }
    println!(
        "\nThe database is {url}; the reports are in {}.\nTry:\n  vctp --database-url {url} costs monthly --month {month} --group-by vm\n  vctp --database-url {url} summary daily --date {yesterday}\n  vctp --database-url {url} totals daily --from {first_day} --to {yesterday}\n  vctp --database-url {url} summary monthly --month {}\n  vctp --database-url {url} report list",
        reports.display(),
        yesterday.month()
    );

    if args.no_follow {
        let _ = stop_sim.send(());
        server.await??;
        store.close().await;
        return Ok(());
    }

    // From here on the simulator follows the real clock and the scheduler takes over; the
    // snapshot, daily and monthly ticks the history covered are recorded so they are not
    // redone (retention has not run, so it runs at once).
    let plan = Timetable::from_settings(&demo_settings)?;
    for job in [Job::Snapshot, Job::Daily, Job::Monthly] {
        if let Some(tick) = plan.latest_tick(job, now) {
            store
                .record_job_run(&JobRun {
                    job: job.name().into(),
                    last_tick: tick,
                    started_at: now,
                    finished_at: chrono::Utc::now().timestamp(),
                    success: true,
                    error: String::new(),
                })
                .await?;
        }
    }
    let follow = tokio::spawn({
        let clock = clock.clone();
        async move {
            loop {
                clock.set(chrono::Utc::now().timestamp());
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    });
    let ui = crate::api::start(
        &demo_settings,
        store.clone(),
        objects.clone(),
        crate::api::ServerOptions {
            listen: args.ui_listen,
            kube_namespace: None,
            cache_seconds: 10,
            // The demo is a local try-out on loopback: plain HTTP, no certificate to accept.
            tls: None,
            secure_cookies_behind_proxy: false,
            limits: crate::api::Limits::from_settings(&demo_settings),
        },
    )
    .await
    .context("failed to start the UI (choose another address with --ui-listen)")?;
    println!("\nUI and API: {}/  (OpenAPI: {}/swagger)", ui.url, ui.url);
    println!(
        "Taking a snapshot every {} s on the real clock; stop with Ctrl-C.",
        demo_settings.vcenter_inventory_snapshot_seconds
    );
    let scheduler = Scheduler {
        reports: objects,
        plan,
        engine: demo_settings.scheduled_aggregation_engine,
        store: store.clone(),
        settings: demo_settings,
        collector,
        targets,
    };
    let result = scheduler.run(crate::signal::shutdown_signal()).await;
    let ui_stopped = ui.stop().await;
    follow.abort();
    let _ = stop_sim.send(());
    server.await??;
    store.close().await;
    result?;
    ui_stopped.context("the UI server failed")
}

/// The days from `first` up to, not including, `end`.
fn days_before(first: Day, end: Day) -> impl Iterator<Item = Day> {
    std::iter::successors(Some(first), |day| Some(day.next())).take_while(move |day| *day < end)
}

/// The demo keeps one database of its own; a new run starts it afresh rather than mixing
/// two simulated histories.
fn start_over(db_path: &std::path::Path) -> Result<()> {
    for suffix in ["", "-wal", "-shm"] {
        let path = std::path::PathBuf::from(format!("{}{suffix}", db_path.display()));
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e).with_context(|| format!("failed to remove {}", path.display()));
            }
        }
    }
    Ok(())
}
