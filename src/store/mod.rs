//! The database: SQLite (default, one file) or PostgreSQL, through `sqlx`, with the
//! migrations under `migrations/`. One table per grain (see `migrations/*/0001_core.sql`).
//!
//! Queries are written once, with `$N` placeholders that both backends accept, and run on
//! whichever pool is configured through [`with_pool!`] and [`with_tx!`].

pub mod attributes;
pub mod copy;
pub mod diagnostics;
pub mod grain;
pub mod hourly;
mod pg_copy;
mod postgres;
pub mod rename;
pub mod reports;
pub mod runs;
mod sqlite_native;
pub mod summaries;
pub mod totals;
pub mod trace;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, Postgres};
use sqlx::sqlite::{
    Sqlite, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "unsupported database URL {0:?}: use a SQLite file path, sqlite://FILE or postgres://USER@HOST/DB"
    )]
    Url(String),
    #[error(
        "database URL {url}: unknown parameter `{key}`; PostgreSQL URLs take {known} (names are case-sensitive)",
        known = POSTGRES_PARAMETERS.join(", ")
    )]
    UrlParameter { url: String, key: String },
    #[error("failed to open database {url}: {source}")]
    Connect { url: String, source: sqlx::Error },
    #[error("failed to apply migrations to {url}: {source}")]
    Migrate {
        url: String,
        source: sqlx::migrate::MigrateError,
    },
    #[error(
        "database {url} is at schema version {found}, this vctp expects {expected}; run `vctp db migrate --database-url {url}`"
    )]
    SchemaVersion {
        url: String,
        found: i64,
        expected: i64,
    },
    #[error("failed to {op}: {source}")]
    Query {
        op: &'static str,
        source: sqlx::Error,
    },
    /// A statement of the in-thread SQLite path failed (see `sqlite_native`).
    #[error("failed to {op}: {source}")]
    Sqlite {
        op: &'static str,
        source: rusqlite::Error,
    },
    #[error(
        "failed to {op}: the SQLite database is locked by another writer (a `vctp snapshot import` holds the write lock until its whole file is stored); retry when it has finished"
    )]
    Locked { op: &'static str },
    /// The database could not be reached or gave up the connection (stopped, restarting,
    /// unreachable, no free connection within the timeout): worth retrying later.
    #[error("database unavailable: failed to {op}: {source}")]
    Unavailable {
        op: &'static str,
        source: sqlx::Error,
    },
    #[error("VM {vm_id} appears twice in snapshot {snapshot_time} of vCenter {vcenter}")]
    DuplicateVm {
        vcenter: String,
        snapshot_time: i64,
        vm_id: String,
    },
    #[error(
        "snapshot {snapshot_time} of vCenter {vcenter} appears again after rows of other snapshots; keep each snapshot's rows together"
    )]
    SnapshotSplit { vcenter: String, snapshot_time: i64 },
    #[error(
        "{0} is a SQLite database; importing needs a PostgreSQL target (--database-url postgres://…)"
    )]
    ImportTargetNotPostgres(String),
    #[error(
        "the custom attributes of VM {vm_id} of vCenter {vcenter} valid from {valid_from} are not a JSON object of strings: {message}"
    )]
    Attributes {
        vcenter: String,
        vm_id: String,
        valid_from: i64,
        message: String,
    },
}

impl Error {
    /// A stable short name, for exit codes, metric labels and Kubernetes Event reasons.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Url(_) | Error::UrlParameter { .. } => "InvalidDatabaseUrl",
            Error::Connect { .. } => "DatabaseUnavailable",
            Error::Migrate { .. } => "MigrationFailed",
            Error::SchemaVersion { .. } => "SchemaVersionMismatch",
            Error::Query { .. } | Error::Sqlite { .. } => "QueryFailed",
            Error::Locked { .. } => "DatabaseLocked",
            Error::Unavailable { .. } => "DatabaseUnavailable",
            Error::DuplicateVm { .. } => "DuplicateVm",
            Error::SnapshotSplit { .. } => "SnapshotSplit",
            Error::ImportTargetNotPostgres(_) => "InvalidImportTarget",
            Error::Attributes { .. } => "InvalidAttributes",
        }
    }

    /// Whether the database could not be reached, rather than refusing what was asked: the
    /// API answers 503 with `Retry-After` for these.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Error::Unavailable { .. } => true,
            Error::Connect { source, .. } => unreachable(source),
            _ => false,
        }
    }
}

/// Errors that say the server is gone or going rather than that the statement failed: no
/// connection within the timeout, a closed pool, a broken socket, or PostgreSQL's own
/// "shutting down" / "starting up" / connection-exception codes (class 57P, class 08).
fn unreachable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => true,
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|code| code.starts_with("57P") || code.starts_with("08")),
        _ => false,
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attaches the name of the failed operation to a `sqlx` error.
pub(crate) trait QueryContext<T> {
    fn op(self, op: &'static str) -> Result<T>;
}

impl<T> QueryContext<T> for std::result::Result<T, sqlx::Error> {
    fn op(self, op: &'static str) -> Result<T> {
        self.map_err(|source| {
            if is_sqlite_busy(&source) {
                Error::Locked { op }
            } else if unreachable(&source) {
                Error::Unavailable { op, source }
            } else {
                Error::Query { op, source }
            }
        })
    }
}

/// How long a SQLite writer waits for another one's write lock (a whole-file import holds
/// it until the file is stored) before giving up with [`Error::Locked`].
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// SQLITE_BUSY and its extended codes (the primary code is the low byte): another
/// connection holds the write lock.
fn is_sqlite_busy(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .filter(|e| e.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some())
        .and_then(|e| e.code())
        .and_then(|code| code.parse::<i32>().ok())
        .is_some_and(|code| code & 0xff == 5)
}

/// Where the database is: parsed from `--database-url`, `VCTP_DATABASE_URL` or
/// `settings.database_url`.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Sqlite(PathBuf),
    Postgres(String),
}

impl DatabaseUrl {
    pub fn parse(text: &str) -> Result<DatabaseUrl> {
        let text = text.trim();
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return Ok(DatabaseUrl::Postgres(text.to_string()));
        }
        let path = text
            .strip_prefix("sqlite://")
            .or_else(|| text.strip_prefix("sqlite:"))
            .unwrap_or(text);
        // Anything else with a scheme is a mistake, not a file name.
        if path.is_empty() || path.contains("://") {
            // The text may be a URL with a password in it.
            let shown = if path.is_empty() {
                text.to_string()
            } else {
                redacted(text)
            };
            return Err(Error::Url(shown));
        }
        let path = path.split('?').next().unwrap_or(path);
        Ok(DatabaseUrl::Sqlite(PathBuf::from(path)))
    }
}

impl fmt::Display for DatabaseUrl {
    /// Shows only the scheme, user, host[:port] and database: a password may sit in the
    /// user info (with a raw `@` in it) or in the query string (`?password=`, any casing),
    /// and neither is ever shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatabaseUrl::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
            DatabaseUrl::Postgres(url) => f.write_str(&redacted(url)),
        }
    }
}

/// The derived form would print the password.
impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

/// `scheme://user@host:port/database` of a URL, nothing else. A URL that does not parse
/// shows only its scheme, as there is no telling which part of it is the password.
fn redacted(text: &str) -> String {
    let scheme = text.split_once("://").map_or("", |(scheme, _)| scheme);
    let Ok(url) = url::Url::parse(text) else {
        return format!("{scheme}://<unparsable URL>");
    };
    let user = match url.username() {
        "" => String::new(),
        user => format!("{user}@"),
    };
    let host = url.host_str().unwrap_or_default();
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    let database = url.path().trim_end_matches('/');
    format!("{}://{user}{host}{port}{database}", url.scheme())
}

/// The query parameters sqlx reads from a PostgreSQL URL (and `options[NAME]`). sqlx logs any
/// other one with its value, so a `PassWord=` in another casing would reach the log: they are
/// refused here, by name only.
const POSTGRES_PARAMETERS: &[&str] = &[
    "sslmode",
    "ssl-mode",
    "sslrootcert",
    "ssl-root-cert",
    "ssl-ca",
    "sslcert",
    "ssl-cert",
    "sslkey",
    "ssl-key",
    "statement-cache-capacity",
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "application_name",
    "options",
];

/// Fails on a query parameter sqlx does not know; a URL that does not parse is left to sqlx,
/// whose error names no part of it.
fn check_parameters(text: &str) -> Result<()> {
    let Ok(url) = url::Url::parse(text) else {
        return Ok(());
    };
    for (key, _) in url.query_pairs() {
        let option = key.starts_with("options[") && key.ends_with(']');
        if !option && !POSTGRES_PARAMETERS.contains(&key.as_ref()) {
            return Err(Error::UrlParameter {
                url: redacted(text),
                key: key.into_owned(),
            });
        }
    }
    Ok(())
}

/// A connection pool to the configured database.
#[derive(Debug, Clone)]
pub enum Store {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the concrete pool of either backend.
macro_rules! with_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match $store {
            $crate::store::Store::Sqlite($pool) => $body,
            $crate::store::Store::Postgres($pool) => $body,
        }
    };
}
pub(crate) use with_pool;

/// An open transaction on either backend.
pub enum Tx {
    Sqlite(sqlx::Transaction<'static, Sqlite>),
    Postgres(sqlx::Transaction<'static, Postgres>),
}

/// Runs `$body` with `$conn` bound to the connection of either backend's transaction.
macro_rules! with_tx {
    ($tx:expr, |$conn:ident| $body:expr) => {
        match $tx {
            $crate::store::Tx::Sqlite(tx) => {
                let $conn = &mut **tx;
                $body
            }
            $crate::store::Tx::Postgres(tx) => {
                let $conn = &mut **tx;
                $body
            }
        }
    };
}
pub(crate) use with_tx;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// How long a connection may take to open, or to come free in the pool, when no setting says
/// otherwise (settings.database_timeout_seconds).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(4);

impl Store {
    /// Opens the database (creating a SQLite file if needed) without migrating it, waiting at
    /// most [`DEFAULT_TIMEOUT`] for a connection.
    pub async fn open(url: &DatabaseUrl) -> Result<Store> {
        Store::open_with(url, DEFAULT_TIMEOUT).await
    }

    /// As [`Store::open`], and every later query waits at most `timeout` to connect or for a
    /// free connection before it fails as [`Error::Unavailable`] (sqlx's default is 30 s,
    /// which left API requests hanging while the database was down).
    pub async fn open_with(url: &DatabaseUrl, timeout: Duration) -> Result<Store> {
        let connect_error = |source| Error::Connect {
            url: url.to_string(),
            source,
        };
        match url {
            DatabaseUrl::Sqlite(path) => {
                let options = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .foreign_keys(true)
                    .busy_timeout(SQLITE_BUSY_TIMEOUT);
                let pool = SqlitePoolOptions::new()
                    .max_connections(4)
                    .acquire_timeout(timeout)
                    .connect_with(options)
                    .await
                    .map_err(connect_error)?;
                Ok(Store::Sqlite(pool))
            }
            DatabaseUrl::Postgres(text) => {
                check_parameters(text)?;
                let options = PgConnectOptions::from_str(text).map_err(connect_error)?;
                let pool = PgPoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(timeout)
                    .connect_with(options)
                    .await
                    .map_err(connect_error)?;
                Ok(Store::Postgres(pool))
            }
        }
    }

    /// Opens the database and brings its schema up to date.
    pub async fn connect(url: &DatabaseUrl) -> Result<Store> {
        Store::connect_with(url, DEFAULT_TIMEOUT).await
    }

    /// As [`Store::connect`], with [`Store::open_with`]'s `timeout`.
    pub async fn connect_with(url: &DatabaseUrl, timeout: Duration) -> Result<Store> {
        let store = Store::open_with(url, timeout).await?;
        store.migrate(url).await?;
        Ok(store)
    }

    pub async fn migrate(&self, url: &DatabaseUrl) -> Result<()> {
        let result = match self {
            Store::Sqlite(pool) => SQLITE_MIGRATIONS.run(pool).await,
            Store::Postgres(pool) => migrate_postgres(pool).await,
        };
        result.map_err(|source| Error::Migrate {
            url: url.to_string(),
            source,
        })
    }

    /// Fails unless the database has exactly the migrations this build ships.
    pub async fn check_schema(&self, url: &DatabaseUrl) -> Result<()> {
        let expected = match self {
            Store::Sqlite(_) => &SQLITE_MIGRATIONS,
            Store::Postgres(_) => &POSTGRES_MIGRATIONS,
        }
        .iter()
        .map(|m| m.version)
        .max()
        .unwrap_or(0);
        let found: Option<i64> = with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
                .fetch_one(pool)
                .await
                .unwrap_or(None)
        });
        let found = found.unwrap_or(0);
        if found == expected {
            Ok(())
        } else {
            Err(Error::SchemaVersion {
                url: url.to_string(),
                found,
                expected,
            })
        }
    }

    pub async fn begin(&self) -> Result<Tx> {
        Ok(match self {
            Store::Sqlite(pool) => Tx::Sqlite(pool.begin().await.op("begin a transaction")?),
            Store::Postgres(pool) => Tx::Postgres(pool.begin().await.op("begin a transaction")?),
        })
    }

    /// Answers when the database does: the readiness probe.
    pub async fn ping(&self) -> Result<()> {
        with_pool!(self, |pool| {
            sqlx::query("SELECT 1")
                .execute(pool)
                .await
                .op("ping the database")?;
        });
        Ok(())
    }

    pub async fn close(&self) {
        with_pool!(self, |pool| pool.close().await)
    }
}

/// Runs the PostgreSQL migrations without the server's notices. sqlx's migrator issues
/// `CREATE TABLE IF NOT EXISTS _sqlx_migrations` every time, and the server's "already exists,
/// skipping" notice reached the terminal as an INFO line on every command. Notices below
/// WARNING are off on the migrating connection only; a connection that cannot be set back is
/// closed rather than returned to the pool.
async fn migrate_postgres(pool: &PgPool) -> std::result::Result<(), sqlx::migrate::MigrateError> {
    use sqlx::migrate::MigrateError;
    let mut conn = pool.acquire().await.map_err(MigrateError::Execute)?;
    sqlx::query("SET client_min_messages TO warning")
        .execute(&mut *conn)
        .await
        .map_err(MigrateError::Execute)?;
    let result = POSTGRES_MIGRATIONS.run(&mut *conn).await;
    if sqlx::query("RESET client_min_messages")
        .execute(&mut *conn)
        .await
        .is_err()
    {
        conn.close_on_drop();
    }
    result
}

impl Tx {
    pub async fn commit(self) -> Result<()> {
        match self {
            Tx::Sqlite(tx) => tx.commit().await,
            Tx::Postgres(tx) => tx.commit().await,
        }
        .op("commit a transaction")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls_are_recognised_by_scheme_or_as_a_file_path() {
        assert_eq!(
            DatabaseUrl::parse("./db.sqlite3").unwrap(),
            DatabaseUrl::Sqlite("./db.sqlite3".into())
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:///var/lib/vctp/db.sqlite3").unwrap(),
            DatabaseUrl::Sqlite("/var/lib/vctp/db.sqlite3".into())
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:db.sqlite3?mode=rwc").unwrap(),
            DatabaseUrl::Sqlite("db.sqlite3".into())
        );
        assert!(matches!(
            DatabaseUrl::parse("postgresql://u@h/db").unwrap(),
            DatabaseUrl::Postgres(_)
        ));
        assert!(DatabaseUrl::parse("mysql://u@h/db").is_err());
        assert!(DatabaseUrl::parse("").is_err());
    }

    /// Each URL, shown, is only its scheme, user, host[:port] and database.
    #[test]
    fn passwords_never_show_in_a_displayed_url() {
        let cases = [
            (
                "postgres://vctp:s3cret@db:5432/vctp",
                "postgres://vctp@db:5432/vctp",
            ),
            ("postgres://vctp@db/vctp", "postgres://vctp@db/vctp"),
            (
                "postgres://vctp@db/vctp?password=s3cret",
                "postgres://vctp@db/vctp",
            ),
            (
                "postgresql://vctp@db/vctp?sslmode=require&PassWord=s3cret",
                "postgresql://vctp@db/vctp",
            ),
            ("postgres://vctp:s3c@ret@db/vctp", "postgres://vctp@db/vctp"),
            (
                "postgres://vctp:s3c%40r%3Aet@db/vctp",
                "postgres://vctp@db/vctp",
            ),
            (
                "postgres://db/vctp?user=vctp&password=s3cret",
                "postgres://db/vctp",
            ),
            ("postgres://:s3cret@db/vctp", "postgres://db/vctp"),
            ("postgres://vctp:s3cret@db", "postgres://vctp@db"),
            (
                "postgres://vctp:s3cret@[::1]:5433/vctp",
                "postgres://vctp@[::1]:5433/vctp",
            ),
            (
                "postgres://vctp:s3cret@db:notaport/vctp",
                "postgres://<unparsable URL>",
            ),
        ];
        let leaks: Vec<_> = cases
            .iter()
            .map(|(text, _)| DatabaseUrl::parse(text).unwrap())
            .map(|url| (url.to_string(), format!("{url:?}")))
            .filter(|(shown, debug)| shown.contains("s3c") || debug.contains("s3c"))
            .collect();
        assert!(leaks.is_empty(), "{leaks:#?}");
        for (text, shown) in cases {
            assert_eq!(
                DatabaseUrl::parse(text).unwrap().to_string(),
                shown,
                "{text}"
            );
        }
    }

    #[tokio::test]
    async fn a_url_that_does_not_parse_is_refused_without_its_password() {
        let url = DatabaseUrl::parse("postgres://vctp:s3cret@db:notaport/vctp").unwrap();
        let text = Store::open(&url).await.unwrap_err().to_string();
        assert!(text.contains("postgres://<unparsable URL>"), "{text}");
        assert!(!text.contains("s3cret"), "{text}");
    }

    /// sqlx logs an unknown parameter with its value, and `PassWord=` is one.
    #[tokio::test]
    async fn an_unknown_url_parameter_is_refused_by_name_before_sqlx_sees_it() {
        for (text, key) in [
            (
                "postgres://vctp@127.0.0.1:1/vctp?PassWord=s3cret",
                "PassWord",
            ),
            (
                "postgres://vctp@127.0.0.1:1/vctp?sslmode=disable&pwd=s3cret",
                "pwd",
            ),
        ] {
            let url = DatabaseUrl::parse(text).unwrap();
            let shown = Store::open(&url).await.unwrap_err().to_string();
            assert!(
                shown.contains(&format!("unknown parameter `{key}`")),
                "{shown}"
            );
            assert!(!shown.contains("s3cret"), "{shown}");
        }
    }

    #[test]
    fn an_unsupported_url_is_refused_without_its_password() {
        let error = DatabaseUrl::parse("mysql://vctp:s3cret@db/vctp").unwrap_err();
        let text = error.to_string();
        assert!(text.contains("mysql://vctp@db/vctp"), "{text}");
        assert!(!text.contains("s3cret"), "{text}");
    }
}
