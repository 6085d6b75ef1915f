//! `vctp`: parse the command line, load settings, start logging, run the command.

use clap::Parser;
use std::process::ExitCode;
use vctp::cli::{Cli, Command};
use vctp::commands::Kind;
use vctp::config::Settings;

/// Exit status for bad input (settings, CSV rows, dates): the command can be fixed and re-run.
const EXIT_BAD_INPUT: u8 = 2;
/// Exit status of work stopped by SIGTERM or Ctrl-C (128 + 15, as a shell reports it).
const EXIT_INTERRUPTED: u8 = 143;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match &cli.config {
        Some(path) => match Settings::load(path) {
            Ok(settings) => settings,
            Err(e) => {
                eprintln!("error: {e}");
                if let Command::Job(_) = cli.command {
                    // The operator reads a Job's outcome, bad settings included, from its
                    // termination message.
                    vctp::commands::job::Error::from(e).result().write();
                }
                return ExitCode::from(EXIT_BAD_INPUT);
            }
        },
        None => Settings::default(),
    };
    vctp::telemetry::init(&settings.log_level, settings.log_output);
    if cli.command.is_long_running() {
        tracing::info!(version = env!("CARGO_PKG_VERSION"), "vctp starting");
    }
    for (key, why) in settings.ignored_keys() {
        tracing::warn!(key, why, "this vCTP setting is ignored");
    }
    match vctp::commands::run(
        cli.command,
        &settings,
        cli.config.as_deref(),
        cli.database_url.as_deref(),
    )
    .await
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(match e.kind() {
                Kind::BadInput => EXIT_BAD_INPUT,
                Kind::Failed => 1,
                Kind::Interrupted => EXIT_INTERRUPTED,
            })
        }
    }
}
