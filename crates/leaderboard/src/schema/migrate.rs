//! Schema migrations: refinery, embedded from `migrations/`, applied once per cold start
//! under an advisory lock, adopting databases that golang-migrate set up.

use crate::db::error::DbError;
use refinery::{AsyncMigrate, Migration, Target};
use refinery_core::traits::r#async::{AsyncQuery, AsyncTransaction};
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio_postgres::{Client, GenericClient, Transaction};

mod admin;
pub(crate) use admin::table_exists;
pub use admin::{
    create_original, down, plan_down, status, Applied, DownPlan, DownScript, GolangMigrate, Known,
    Revert, Status, DOWN,
};

refinery::embed_migrations!("../../migrations");

/// Advisory lock key ("LBMIGR"): every instance starting at once queues on it, so each
/// migration is applied exactly once.
const LOCK_KEY: i64 = 0x4c42_4d49_4752;

/// The longest a migration waits for a lock on a table in use (after the migration lock
/// itself). Writers that arrive meanwhile queue behind the waiting statement, so on a live
/// database (the Go service posting during a cut-over) a wait must stay short: the
/// migration gives up with 55P03 (a 503, retried by the next cold start; `migrate up`
/// retries itself) rather than hold the posts up.
pub const LOCK_WAIT: &str = "1s";

/// The version golang-migrate reached on the original service's production databases.
const GOLANG_MIGRATE_VERSION: i64 = 3;

/// What the migration step found and did in this process; `/api/health` reports it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct MigrationState {
    /// Highest migration recorded in `refinery_schema_history`.
    pub version: i32,
    /// Migrations this process applied.
    pub applied_now: Vec<i32>,
    /// The golang-migrate version adopted by this process, if it adopted one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adopted_golang_migrate_version: Option<i64>,
}

/// The newest migration this binary knows.
pub fn latest_version() -> i32 {
    migrations::runner()
        .get_migrations()
        .iter()
        .map(|m| m.version())
        .max()
        .unwrap_or(0)
}

/// Applies pending migrations, all in one transaction that holds the migration lock,
/// and tries that transaction again when it loses a race with another session (a
/// deadlock, or a table busy for longer than [`LOCK_WAIT`]). Give a connection that is
/// closed afterwards: a dropped future then rolls back.
pub async fn run(client: &mut Client) -> Result<MigrationState, DbError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = async {
            let mut locked = Locked::begin(client).await?;
            let state = run_locked(&mut locked).await?;
            locked.0.commit().await?;
            Ok(state)
        }
        .await;
        match result {
            Err(DbError::Conflict(message)) if attempt < crate::db::error::ATTEMPTS => {
                let pause = std::time::Duration::from_millis(100 << attempt.min(4));
                tracing::warn!(
                    step = "migrations",
                    error = %message,
                    attempt,
                    of = crate::db::error::ATTEMPTS,
                    pause_ms = pause.as_millis() as u64,
                    "lost a race with another session; trying again"
                );
                tokio::time::sleep(pause).await;
            }
            other => return other,
        }
    }
}

/// A transaction holding the migration lock, in which refinery runs.
///
/// The lock is `pg_advisory_xact_lock`, not a session lock: behind a transaction pooler
/// (PgBouncer, Neon's and Supabase's pooled endpoints) only a transaction stays on one
/// server connection, and a session lock would outlive us on whichever pooled connection
/// took it. COMMIT, ROLLBACK or a dropped connection release it. Every statement,
/// refinery's included, runs inside: one cold start's migrations apply together or not at all.
pub(crate) struct Locked<'a>(pub(crate) Transaction<'a>);

impl<'a> Locked<'a> {
    pub(crate) async fn begin(client: &'a mut Client) -> Result<Locked<'a>, DbError> {
        let transaction = client.transaction().await?;
        transaction
            .batch_execute(&format!(
                "SELECT pg_advisory_xact_lock({LOCK_KEY}); SET LOCAL lock_timeout = '{LOCK_WAIT}'"
            ))
            .await?;
        Ok(Locked(transaction))
    }
}

impl AsyncTransaction for Locked<'_> {
    type Error = LockedError;

    async fn execute<'a, T: Iterator<Item = &'a str> + Send + 'a>(
        &mut self,
        queries: T,
    ) -> Result<usize, Self::Error> {
        let mut count = 0;
        for query in queries {
            self.0.batch_execute(query).await?;
            count += 1;
        }
        Ok(count)
    }
}

impl AsyncQuery<Vec<Migration>> for Locked<'_> {
    async fn query(&mut self, query: &str) -> Result<Vec<Migration>, Self::Error> {
        let rows = self.0.query_typed(query, &[]).await?;
        rows.iter()
            .map(|row| {
                let applied_on: String = row.try_get(2)?;
                let checksum: String = row.try_get(3)?;
                let applied_on = OffsetDateTime::parse(&applied_on, &Rfc3339)
                    .map_err(|e| LockedError::History(format!("applied_on {applied_on:?}: {e}")))?;
                let checksum = checksum
                    .parse::<u64>()
                    .map_err(|e| LockedError::History(format!("checksum {checksum:?}: {e}")))?;
                Ok(Migration::applied(
                    row.try_get(0)?,
                    row.try_get(1)?,
                    applied_on,
                    checksum,
                ))
            })
            .collect()
    }
}

impl AsyncMigrate for Locked<'_> {}

/// Why a statement of a migration run failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LockedError {
    #[error(transparent)]
    Db(#[from] tokio_postgres::Error),
    /// refinery wrote the row itself; one it cannot read back is a corrupt history.
    #[error("unreadable refinery_schema_history row: {0}")]
    History(String),
}

async fn run_locked(client: &mut Locked<'_>) -> Result<MigrationState, DbError> {
    let adopted = match golang_migrate_state(&client.0).await? {
        None => None,
        Some((version, true)) => {
            return Err(DbError::Migration(format!(
                "refusing to start: golang-migrate left this database dirty at version {version} \
                 (table schema_migrations); repair it and mark it clean (migrate force {version}) first"
            )))
        }
        Some((version, false)) if !(1..=GOLANG_MIGRATE_VERSION).contains(&version) => {
            return Err(DbError::Migration(format!(
                "refusing to start: schema_migrations is at version {version}, which this service \
                 does not know (it adopts golang-migrate versions 1 to {GOLANG_MIGRATE_VERSION})"
            )))
        }
        Some((version, false)) => {
            if history_is_empty(&client.0).await? {
                let fake = i32::try_from(version).unwrap_or(0);
                migrations::runner()
                    .set_target(Target::FakeVersion(fake))
                    .run_async(client)
                    .await
                    .map_err(migration_error)?;
                tracing::info!(version, "adopted a golang-migrate database");
                Some(version)
            } else {
                None
            }
        }
    };
    upgrade_first_v4(&client.0).await?;
    let report = migrations::runner()
        .run_async(client)
        .await
        .map_err(migration_error)?;
    let applied_now: Vec<i32> = report
        .applied_migrations()
        .iter()
        .map(|m| m.version())
        .collect();
    if !applied_now.is_empty() {
        tracing::info!(?applied_now, "applied migrations");
    }
    record_golang_migrate(&client.0).await?;
    let version = current_version(&client.0).await?;
    Ok(MigrationState {
        version,
        applied_now,
        adopted_golang_migrate_version: adopted,
    })
}

/// The checksum refinery recorded for V4 as first released, whose backfill ran inside the
/// migration (one long transaction) and whose triggers built arrays of the changed rows.
pub const FIRST_V4_CHECKSUM: &str = "9108865186833325994";

/// Brings a database migrated by the first release of V4 to today's V4, inside the
/// migration transaction: its objects are reverted by V4's down script and created again
/// (holding writers off for milliseconds, like V4 itself), and the online backfill counts
/// the stored events into the new rollups. `events` is untouched.
async fn upgrade_first_v4(client: &Transaction<'_>) -> Result<(), DbError> {
    if !admin::table_exists(client, "refinery_schema_history").await? {
        return Ok(());
    }
    let recorded = client
        .query_typed_opt(
            "SELECT checksum::text FROM refinery_schema_history WHERE version = 4",
            &[],
        )
        .await?
        .map(|row| row.get::<_, String>(0));
    if recorded.as_deref() != Some(FIRST_V4_CHECKSUM) {
        return Ok(());
    }
    let runner = migrations::runner();
    let (Some(v4), Some(down)) = (
        runner.get_migrations().iter().find(|m| m.version() == 4),
        admin::down_script(4),
    ) else {
        return Err(DbError::Internal(
            "migration V4 is missing from this build".into(),
        ));
    };
    client.batch_execute(down.sql).await?;
    client.batch_execute(v4.sql().unwrap_or_default()).await?;
    client
        .execute_typed(
            "UPDATE refinery_schema_history SET checksum = $1 WHERE version = 4",
            &[(
                &v4.checksum().to_string(),
                tokio_postgres::types::Type::VARCHAR,
            )],
        )
        .await?;
    tracing::info!("upgraded the first release's V4: the backfill counts the events again");
    Ok(())
}

/// golang-migrate's table exactly as golang-migrate creates it.
pub(crate) const GOLANG_MIGRATE_TABLE: &str =
    "CREATE TABLE IF NOT EXISTS schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL)";

/// Keeps the way back to the original service open: once the migrations it shares with
/// us are applied, golang-migrate's `schema_migrations` says so (version 3, clean), as
/// on a database the original created, so the original service can be pointed at a
/// database this service created (without it, it tries to create the schema again and
/// exits). A table with a row is left alone, but for a clean lower version this
/// service raised by applying the rest (an adopted version 1 or 2).
async fn record_golang_migrate(client: &Transaction<'_>) -> Result<(), DbError> {
    match golang_migrate_state(client).await? {
        Some((version, false)) if version < GOLANG_MIGRATE_VERSION => {
            client
                .execute_typed(
                    "UPDATE schema_migrations SET version = $1",
                    &[(&GOLANG_MIGRATE_VERSION, tokio_postgres::types::Type::INT8)],
                )
                .await?;
        }
        Some(_) => {}
        None => {
            client
                .batch_execute(&format!(
                    "{GOLANG_MIGRATE_TABLE}; \
                     INSERT INTO schema_migrations (version, dirty) VALUES ({GOLANG_MIGRATE_VERSION}, false)"
                ))
                .await?;
            tracing::info!(
                version = GOLANG_MIGRATE_VERSION,
                "recorded the golang-migrate version, so the original service can serve this database too"
            );
        }
    }
    Ok(())
}

/// `(version, dirty)` from golang-migrate's table, when the database has one.
async fn golang_migrate_state(client: &impl GenericClient) -> Result<Option<(i64, bool)>, DbError> {
    if !admin::table_exists(client, "schema_migrations").await? {
        return Ok(None);
    }
    let row = client
        .query_typed_opt(
            "SELECT version::bigint, dirty FROM schema_migrations LIMIT 1",
            &[],
        )
        .await?;
    Ok(row.map(|r| (r.get(0), r.get(1))))
}

async fn history_is_empty(client: &impl GenericClient) -> Result<bool, DbError> {
    if !admin::table_exists(client, "refinery_schema_history").await? {
        return Ok(true);
    }
    let any: bool = client
        .query_typed_one("SELECT EXISTS (SELECT 1 FROM refinery_schema_history)", &[])
        .await?
        .get(0);
    Ok(!any)
}

async fn current_version(client: &impl GenericClient) -> Result<i32, DbError> {
    let row = client
        .query_typed_one(
            "SELECT COALESCE(MAX(version), 0)::int4 FROM refinery_schema_history",
            &[],
        )
        .await?;
    Ok(row.get(0))
}

fn migration_error(e: refinery::Error) -> DbError {
    let message = format!("migration failed: {}", crate::db::error::error_chain(&e));
    match crate::db::error::sqlstate(&e) {
        Some(code) if crate::db::error::CONFLICT_CODES.contains(&code.as_str()) => {
            DbError::Conflict(message)
        }
        _ => DbError::Migration(message),
    }
}
