//! The settings file: YAML with a top-level `settings:` mapping, keys named as in vCTP's
//! settings reference. Unknown and ill-typed keys are errors naming the key and the file.

use crate::aggregate::Engine;
use crate::inventory::{Tier, TierMapping};
use crate::store::DatabaseUrl;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to read settings file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("settings file {path}: `{key}`: {message}")]
    Invalid {
        path: PathBuf,
        key: String,
        message: String,
    },
    #[error("settings file {path}: {message}")]
    Inconsistent { path: PathBuf, message: String },
    #[error(transparent)]
    DatabaseUrl(#[from] crate::store::Error),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogOutput {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DatabaseDriver {
    Sqlite,
    Postgres,
}

/// The engine names of the settings file; `go` is vCTP's name for the streaming core.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineSetting {
    #[default]
    #[serde(alias = "go")]
    Rust,
    Sql,
}

impl From<EngineSetting> for Engine {
    fn from(value: EngineSetting) -> Engine {
        match value {
            EngineSetting::Rust => Engine::Rust,
            EngineSetting::Sql => Engine::Sql,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsFile {
    settings: Settings,
}

/// Everything under `settings:`. Each key has a default, so an empty mapping is valid.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// `trace`, `debug`, `info`, `warn` or `error`.
    pub log_level: String,
    pub log_output: LogOutput,
    /// Optional; when given it must agree with `database_url`.
    pub database_driver: Option<DatabaseDriver>,
    /// Accepted for vCTP settings files; PostgreSQL needs no opt-in here.
    pub enable_experimental_postgres: bool,
    /// A SQLite file path, `sqlite://FILE` or `postgres://…`; default `./db.sqlite3`.
    pub database_url: Option<String>,
    /// Hourly rows older than this many days are deleted by `vctp db cleanup`.
    pub hourly_snapshot_max_age_days: u32,
    /// Daily summaries older than this many months are deleted by `vctp db cleanup`.
    pub daily_snapshot_max_age_months: u32,
    /// The engine scheduled aggregations use (`rust`, alias `go`, or `sql`).
    pub scheduled_aggregation_engine: EngineSetting,
    /// Extra resource pool names and the tier each stands for, on top of the pools named
    /// `Tin`, `Bronze`, `Silver` and `Gold`.
    pub pool_tiers: BTreeMap<String, Tier>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            log_level: "info".to_string(),
            log_output: LogOutput::Text,
            database_driver: None,
            enable_experimental_postgres: false,
            database_url: None,
            hourly_snapshot_max_age_days: 60,
            daily_snapshot_max_age_months: 12,
            scheduled_aggregation_engine: EngineSetting::Rust,
            pool_tiers: BTreeMap::new(),
        }
    }
}

/// The database used when neither the command line nor the settings name one.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://db.sqlite3";

impl Settings {
    /// Reads and validates a settings file.
    pub fn load(path: &Path) -> Result<Settings, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Settings::parse(&text, path)
    }

    /// Parses settings text; `path` only names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Settings, Error> {
        let invalid = |key: String, message: String| Error::Invalid {
            path: path.to_path_buf(),
            key,
            message,
        };
        let file: SettingsFile = serde_path_to_error::deserialize(
            serde_yaml::Deserializer::from_str(text),
        )
        .map_err(|e| {
            let key = e.path().to_string();
            let key = if key == "." {
                "settings".to_string()
            } else {
                key
            };
            invalid(key, e.into_inner().to_string())
        })?;
        let settings = file.settings;
        if settings.hourly_snapshot_max_age_days == 0 {
            return Err(invalid(
                "settings.hourly_snapshot_max_age_days".into(),
                "must be at least 1".into(),
            ));
        }
        if settings.daily_snapshot_max_age_months == 0 {
            return Err(invalid(
                "settings.daily_snapshot_max_age_months".into(),
                "must be at least 1".into(),
            ));
        }
        if let (Some(driver), Some(url)) = (settings.database_driver, &settings.database_url) {
            let parsed = DatabaseUrl::parse(url)?;
            let matches = matches!(
                (driver, &parsed),
                (DatabaseDriver::Sqlite, DatabaseUrl::Sqlite(_))
                    | (DatabaseDriver::Postgres, DatabaseUrl::Postgres(_))
            );
            if !matches {
                return Err(Error::Inconsistent {
                    path: path.to_path_buf(),
                    message: format!(
                        "settings.database_driver is {driver:?} but settings.database_url is {parsed}"
                    ),
                });
            }
        }
        Ok(settings)
    }

    /// The database to use: the command line (or `VCTP_DATABASE_URL`) first, then the
    /// settings, then [`DEFAULT_DATABASE_URL`].
    pub fn database_url(&self, cli: Option<&str>) -> Result<DatabaseUrl, Error> {
        let text = cli
            .or(self.database_url.as_deref())
            .unwrap_or(DEFAULT_DATABASE_URL);
        Ok(DatabaseUrl::parse(text)?)
    }

    pub fn tier_mapping(&self) -> TierMapping {
        TierMapping::new(&self.pool_tiers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Settings, Error> {
        Settings::parse(text, Path::new("vctp.yml"))
    }

    #[test]
    fn a_vctp_settings_file_with_seed_key_names_loads() {
        let settings = parse(
            "settings:\n  log_level: debug\n  log_output: json\n  database_driver: postgres\n  enable_experimental_postgres: true\n  database_url: postgres://vctp@db/vctp\n  hourly_snapshot_max_age_days: 30\n  daily_snapshot_max_age_months: 6\n  scheduled_aggregation_engine: go\n  pool_tiers:\n    Critical: gold\n",
        )
        .unwrap();
        assert_eq!(settings.log_output, LogOutput::Json);
        assert_eq!(settings.hourly_snapshot_max_age_days, 30);
        assert_eq!(settings.scheduled_aggregation_engine, EngineSetting::Rust);
        assert_eq!(
            settings.tier_mapping().tier_of("critical"),
            Some(Tier::Gold)
        );
        assert!(matches!(
            settings.database_url(None).unwrap(),
            DatabaseUrl::Postgres(_)
        ));
    }

    #[test]
    fn an_empty_settings_mapping_takes_the_defaults() {
        let settings = parse("settings: {}\n").unwrap();
        assert_eq!(settings.hourly_snapshot_max_age_days, 60);
        assert_eq!(settings.daily_snapshot_max_age_months, 12);
        assert_eq!(
            settings.database_url(None).unwrap(),
            DatabaseUrl::Sqlite("db.sqlite3".into())
        );
        assert_eq!(
            settings.database_url(Some("/tmp/x.sqlite3")).unwrap(),
            DatabaseUrl::Sqlite("/tmp/x.sqlite3".into())
        );
    }

    #[test]
    fn an_unknown_key_is_named_with_the_file() {
        let err = parse("settings:\n  hourly_snapshot_max_age_dayz: 3\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("settings file vctp.yml: `settings"),
            "{err}"
        );
        assert!(
            err.contains("unknown field `hourly_snapshot_max_age_dayz`"),
            "{err}"
        );
    }

    #[test]
    fn an_ill_typed_value_names_its_key() {
        let err = parse("settings:\n  hourly_snapshot_max_age_days: soon\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("settings file vctp.yml: `settings.hourly_snapshot_max_age_days`:"),
            "{err}"
        );
        let err = parse("settings:\n  pool_tiers:\n    Dev: platinum\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("`settings.pool_tiers.Dev`"), "{err}");
    }

    #[test]
    fn a_missing_settings_mapping_and_zero_retention_are_rejected() {
        assert!(parse("log_level: info\n").is_err());
        let err = parse("settings:\n  daily_snapshot_max_age_months: 0\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("daily_snapshot_max_age_months`: must be at least 1"),
            "{err}"
        );
    }

    #[test]
    fn a_driver_that_contradicts_the_url_is_rejected() {
        let err = parse("settings:\n  database_driver: postgres\n  database_url: ./db.sqlite3\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("database_driver is Postgres"), "{err}");
    }
}
