//! The connection pool: created lazily once per process, TLS when the URL asks for it,
//! every wait bounded by `DB_TIMEOUT`, migrations run before the first query.

use crate::schema::backfill;
pub mod error;
pub mod sql;
pub mod tls;

use crate::schema::migrate::{self, MigrationState};
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
pub use error::{error_chain, DbError};
use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;
use tls::SslMode;
use tokio::sync::Mutex;
use tokio_postgres_rustls::MakeRustlsConnect;

/// Bound on one cold start's migrations. They are quick schema steps (the long part of an
/// upgrade, V4's backfill, runs afterwards in [`backfill::drive`]), but the first start
/// on a fresh database waits for others' locks and creates everything; `DB_TIMEOUT` is
/// for queries, so a slow database gets this longer bound, inside Vercel's 300 s.
const MIGRATION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(240);

/// Connections per instance: a function instance serves a handful of concurrent
/// requests, and managed Postgres plans limit connections per database.
const POOL_SIZE: usize = 10;

/// The database of one process: a pool plus the record of this cold start's migrations.
pub struct Db {
    pool: Result<Pool, DbError>,
    timeout: Duration,
    migrated: OnceLock<MigrationState>,
    /// Held by the one request of this process that runs the migrations.
    migrating: Mutex<()>,
    /// Start [`backfill::drive`] once migrated.
    backfill_in_background: bool,
}

impl Db {
    /// Builds the pool without connecting; the first query connects and migrates.
    pub fn new(url: Option<&str>, timeout: Duration) -> Db {
        let pool = match url {
            None => Err(DbError::NotConfigured),
            Some(url) => build_pool(url, timeout),
        };
        Db {
            pool,
            timeout,
            migrated: OnceLock::new(),
            migrating: Mutex::new(()),
            backfill_in_background: true,
        }
    }

    /// Whether this process advances V4's backfill in the background once migrated
    /// (`BACKFILL`); otherwise `leaderboard migrate up` does it.
    pub fn backfill_in_background(mut self, on: bool) -> Db {
        self.backfill_in_background = on;
        self
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// A pooled connection to a migrated database. Migrations run once per process; if
    /// they fail (database away, dirty golang-migrate state) the next call tries again.
    pub async fn client(&self) -> Result<Object, DbError> {
        self.migrations().await?;
        self.raw_client().await
    }

    /// How far V4's backfill has got (`None` without V4), which also proves the database
    /// answers: the health check's query.
    pub async fn backfill_progress(&self) -> Result<Option<backfill::Progress>, DbError> {
        let client = self.client().await?;
        self.timed(backfill::progress(&**client)).await
    }

    /// Runs the migrations if this process has not yet, and returns what they found.
    pub async fn migrations(&self) -> Result<&MigrationState, DbError> {
        if let Some(state) = self.migrated.get() {
            return Ok(state);
        }
        // One request migrates, bounded by MIGRATION_TIMEOUT; the others wait for it at
        // most DB_TIMEOUT and answer 503 meanwhile.
        let _running = match self.migrating.try_lock() {
            Ok(guard) => guard,
            Err(_) => tokio::time::timeout(self.timeout, self.migrating.lock())
                .await
                .map_err(|_| DbError::Migration("database migrations are still running".into()))?,
        };
        if let Some(state) = self.migrated.get() {
            return Ok(state);
        }
        // Detached from the pool: if this future is dropped, the connection closes and
        // its advisory lock and open transaction go with it.
        let mut client = Object::take(self.raw_client().await?);
        let state = tokio::time::timeout(MIGRATION_TIMEOUT, migrate::run(&mut client))
            .await
            .map_err(|_| DbError::Timeout)??;
        // The long part of an upgrade happens after it, off the request path.
        if let (Ok(pool), true) = (&self.pool, self.backfill_in_background) {
            tokio::spawn(backfill::drive(pool.clone()));
        }
        Ok(self.migrated.get_or_init(|| state))
    }

    /// A pooled connection without the migration check, for the migration itself.
    async fn raw_client(&self) -> Result<Object, DbError> {
        let pool = self.pool.as_ref().map_err(Clone::clone)?;
        match tokio::time::timeout(self.timeout, pool.get()).await {
            Err(_) => Err(DbError::Timeout),
            Ok(Ok(client)) => Ok(client),
            Ok(Err(deadpool_postgres::PoolError::Timeout(_))) => Err(DbError::Timeout),
            Ok(Err(deadpool_postgres::PoolError::Backend(e))) => Err(e.into()),
            Ok(Err(e)) => Err(DbError::Unreachable(error_chain(&e))),
        }
    }

    /// Bounds one database operation by `DB_TIMEOUT`.
    pub async fn timed<T, E>(
        &self,
        operation: impl Future<Output = Result<T, E>>,
    ) -> Result<T, DbError>
    where
        E: Into<DbError>,
    {
        match tokio::time::timeout(self.timeout, operation).await {
            Err(_) => Err(DbError::Timeout),
            Ok(result) => result.map_err(Into::into),
        }
    }
}

/// One connection outside any pool, for operator commands (migrations, seeding): the
/// same URL handling and TLS as the pool, connecting bounded by `timeout`. Migrations are
/// not run; the connection closes when the client is dropped.
pub async fn connect(url: &str, timeout: Duration) -> Result<tokio_postgres::Client, DbError> {
    let (pg, connector) = connection_settings(url, timeout)?;
    let (client, connection) = tokio::time::timeout(timeout, pg.connect(connector))
        .await
        .map_err(|_| DbError::Timeout)??;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %error_chain(&e), "database connection closed");
        }
    });
    Ok(client)
}

/// The tokio-postgres settings and TLS connector of a URL, connecting bounded by `timeout`
/// unless the URL sets `connect_timeout` itself.
fn connection_settings(
    url: &str,
    timeout: Duration,
) -> Result<(tokio_postgres::Config, MakeRustlsConnect), DbError> {
    let target = parse_url(url)?;
    let connector = tls::connector(target.ssl_mode, target.root_cert.as_deref())
        .map_err(DbError::InvalidUrl)?;
    let mut pg = target.config;
    if pg.get_connect_timeout().is_none() {
        pg.connect_timeout(timeout);
    }
    Ok((pg, connector))
}

fn build_pool(url: &str, timeout: Duration) -> Result<Pool, DbError> {
    let (pg, connector) = connection_settings(url, timeout)?;
    let manager = Manager::from_config(
        pg,
        connector,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(POOL_SIZE)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(timeout))
        .create_timeout(Some(timeout))
        .recycle_timeout(Some(timeout))
        .build()
        .map_err(|e| DbError::InvalidUrl(e.to_string()))
}

/// A database URL split into what tokio-postgres takes and what we handle ourselves.
pub struct Target {
    pub config: tokio_postgres::Config,
    pub ssl_mode: SslMode,
    pub root_cert: Option<String>,
}

/// Options tokio-postgres understands; anything else (libpq's `sslcert`, Prisma's
/// `pgbouncer=true`, …) is dropped with a warning instead of failing the connection.
const PASSED_OPTIONS: &[&str] = &[
    "user",
    "password",
    "dbname",
    "options",
    "application_name",
    "host",
    "hostaddr",
    "port",
    "connect_timeout",
    "tcp_user_timeout",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_retries",
    "target_session_attrs",
    "channel_binding",
    "load_balance_hosts",
];

/// Parses a `postgres://` URL or a `key=value` connection string, with libpq's sslmode
/// values (including `verify-ca`/`verify-full`) and `sslrootcert`.
pub fn parse_url(url: &str) -> Result<Target, DbError> {
    let mut ssl_mode = SslMode::Prefer;
    let mut root_cert = None;
    let mut take = |key: &str, value: &str| -> Result<bool, DbError> {
        match key {
            "sslmode" => {
                ssl_mode = SslMode::parse(value)
                    .ok_or_else(|| DbError::InvalidUrl(format!("unknown sslmode {value:?}")))?;
                Ok(false)
            }
            "sslrootcert" => {
                root_cert = Some(value.to_string());
                Ok(false)
            }
            k if PASSED_OPTIONS.contains(&k) => Ok(true),
            k => {
                tracing::warn!(option = k, "ignoring unsupported database URL option");
                Ok(false)
            }
        }
    };
    let cleaned = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let mut parsed = url::Url::parse(url)
            .map_err(|e| DbError::InvalidUrl(format!("not a valid URL: {e}")))?;
        let pairs: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
        let mut kept = Vec::new();
        for (k, v) in pairs {
            if take(&k, &v)? {
                kept.push((k, v));
            }
        }
        if kept.is_empty() {
            parsed.set_query(None);
        } else {
            parsed.query_pairs_mut().clear().extend_pairs(kept);
        }
        parsed.to_string()
    } else {
        let mut kept = Vec::new();
        for part in url.split_whitespace() {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            if take(k, v.trim_matches('\''))? {
                kept.push(part);
            }
        }
        kept.join(" ")
    };
    let mut config: tokio_postgres::Config = cleaned
        .parse()
        .map_err(|e: tokio_postgres::Error| DbError::InvalidUrl(error_chain(&e)))?;
    config.ssl_mode(ssl_mode.transport());
    Ok(Target {
        config,
        ssl_mode,
        root_cert,
    })
}

/// The URL with its password hidden, for logs and messages.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            parsed.set_query(None);
            parsed.to_string()
        }
        Err(_) => "<connection string>".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_verify_full_is_understood() {
        let t = parse_url("postgres://u:p@db.example.com:5432/x?sslmode=verify-full").unwrap();
        assert_eq!(t.ssl_mode, SslMode::VerifyFull);
        assert_eq!(
            t.config.get_ssl_mode(),
            tokio_postgres::config::SslMode::Require
        );
        assert_eq!(t.config.get_dbname(), Some("x"));
    }

    #[test]
    fn default_sslmode_is_prefer_like_libpq() {
        let t = parse_url("postgres://u@localhost/x").unwrap();
        assert_eq!(t.ssl_mode, SslMode::Prefer);
    }

    #[test]
    fn unknown_options_are_dropped_known_ones_kept() {
        let t = parse_url(
            "postgresql://u:p@h/x?sslmode=require&pgbouncer=true&application_name=lb&sslrootcert=/tmp/ca.pem",
        )
        .unwrap();
        assert_eq!(t.ssl_mode, SslMode::Require);
        assert_eq!(t.root_cert.as_deref(), Some("/tmp/ca.pem"));
        assert_eq!(t.config.get_application_name(), Some("lb"));
    }

    #[test]
    fn key_value_strings_work_too() {
        let t = parse_url("host=127.0.0.1 port=5 user=u dbname=d sslmode=disable").unwrap();
        assert_eq!(t.ssl_mode, SslMode::Disable);
        assert_eq!(t.config.get_ports(), &[5]);
    }

    #[test]
    fn bad_sslmode_is_an_error() {
        assert!(matches!(
            parse_url("postgres://h/x?sslmode=sometimes"),
            Err(DbError::InvalidUrl(_))
        ));
    }

    #[test]
    fn redaction_hides_the_password() {
        let r = redact_url("postgres://leader:hunter2@db.example.com/x?sslmode=require");
        assert!(!r.contains("hunter2"), "{r}");
        assert!(r.contains("db.example.com"));
    }
}
