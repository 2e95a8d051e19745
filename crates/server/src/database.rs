//! The database an operator command works on.

use crate::commands::serve::{data_dir, embedded_notice, start_embedded};
use crate::Failure;
use leaderboard::db;
use leaderboard::Config;
use std::time::Duration;

/// The database of an operator command: `POSTGRES`, or the embedded one started the way
/// `serve` starts it (and stopped again afterwards).
pub(crate) struct Database {
    pub(crate) url: String,
    timeout: Duration,
    embedded: Option<localpg::PgServer>,
}

impl Database {
    pub(crate) async fn connect(&self) -> Result<tokio_postgres::Client, Failure> {
        db::connect(&self.url, self.timeout).await.map_err(|e| {
            Failure::failed(format!(
                "cannot use the database {}: {e}",
                db::redact_url(&self.url)
            ))
        })
    }

    /// A connection to a database that has the schema, or a failure that says to migrate.
    pub(crate) async fn connect_migrated(&self) -> Result<tokio_postgres::Client, Failure> {
        let client = self.connect().await?;
        if !leaderboard::regions::has_schema(&client).await? {
            return Err(Failure::failed(
                "the database has no schema yet: run `leaderboard migrate up` first",
            ));
        }
        Ok(client)
    }
}

/// Opens the database, runs `command` on it and stops the embedded server, if any, on
/// every path (`exit` would skip its destructor).
pub(crate) async fn with_database<F, Fut>(command: F) -> Result<(), Failure>
where
    F: FnOnce(Database) -> Fut,
    Fut: std::future::Future<Output = (Database, Result<(), Failure>)>,
{
    let (config, warnings) = Config::from_env();
    // Commands print their own report; the log only speaks up for trouble unless asked.
    let level = std::env::var("LOG_LEVEL").unwrap_or_else(|_| "warn".into());
    leaderboard::logging::init(&level);
    for w in &warnings {
        tracing::warn!(variable = w.variable, "{}", w.message);
    }
    let database = match config.postgres {
        Some(url) => Database {
            url,
            timeout: config.db_timeout,
            embedded: None,
        },
        None => {
            let (pg, url) = start_embedded().await.map_err(|e| {
                if e.contains("\"postmaster.pid\" already exists") {
                    format!(
                        "the embedded PostgreSQL in {} is in use (by `leaderboard serve`?): \
                         set POSTGRES to the URL it printed",
                        data_dir().display()
                    )
                } else {
                    e
                }
            })?;
            note!("{}", embedded_notice(&pg, &url));
            Database {
                url,
                timeout: config.db_timeout,
                embedded: Some(pg),
            }
        }
    };
    let (database, result) = command(database).await;
    if let Some(mut pg) = database.embedded {
        if let Err(e) = pg.stop() {
            note!("leaderboard: stopping the embedded PostgreSQL: {e}");
        }
    }
    result
}
