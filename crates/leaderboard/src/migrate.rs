//! Schema migrations: refinery, embedded from `migrations/`, applied once per cold start
//! under an advisory lock, adopting databases that golang-migrate set up.

use crate::db::DbError;
use refinery::Target;
use serde::Serialize;
use tokio_postgres::{Client, GenericClient};

mod admin;
pub use admin::{
    down, plan_down, status, Applied, DownPlan, DownScript, GolangMigrate, Known, Revert, Status,
    DOWN,
};

refinery::embed_migrations!("../../migrations");

/// Advisory lock key ("LBMIGR"): every instance starting at once queues on it, so each
/// migration is applied exactly once.
const LOCK_KEY: i64 = 0x4c42_4d49_4752;

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

/// Applies pending migrations while holding the advisory lock. The lock is held by the
/// connection's session, so callers should give a connection that is closed afterwards:
/// a dropped future then can never leave the lock held.
pub async fn run(client: &mut Client) -> Result<MigrationState, DbError> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&LOCK_KEY])
        .await?;
    let result = run_locked(client).await;
    let unlocked = client
        .execute("SELECT pg_advisory_unlock($1)", &[&LOCK_KEY])
        .await;
    let state = result?;
    unlocked?;
    Ok(state)
}

async fn run_locked(client: &mut Client) -> Result<MigrationState, DbError> {
    let adopted = match golang_migrate_state(client).await? {
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
            if history_is_empty(client).await? {
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
    let version = current_version(client).await?;
    Ok(MigrationState {
        version,
        applied_now,
        adopted_golang_migrate_version: adopted,
    })
}

/// `(version, dirty)` from golang-migrate's table, when the database has one.
async fn golang_migrate_state(client: &impl GenericClient) -> Result<Option<(i64, bool)>, DbError> {
    let exists: bool = client
        .query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])
        .await?
        .get(0);
    if !exists {
        return Ok(None);
    }
    let row = client
        .query_opt(
            "SELECT version::bigint, dirty FROM schema_migrations LIMIT 1",
            &[],
        )
        .await?;
    Ok(row.map(|r| (r.get(0), r.get(1))))
}

async fn history_is_empty(client: &Client) -> Result<bool, DbError> {
    let exists: bool = client
        .query_one(
            "SELECT to_regclass('refinery_schema_history') IS NOT NULL",
            &[],
        )
        .await?
        .get(0);
    if !exists {
        return Ok(true);
    }
    let any: bool = client
        .query_one("SELECT EXISTS (SELECT 1 FROM refinery_schema_history)", &[])
        .await?
        .get(0);
    Ok(!any)
}

async fn current_version(client: &Client) -> Result<i32, DbError> {
    let row = client
        .query_one(
            "SELECT COALESCE(MAX(version), 0)::int4 FROM refinery_schema_history",
            &[],
        )
        .await?;
    Ok(row.get(0))
}

fn migration_error(e: refinery::Error) -> DbError {
    DbError::Migration(format!("migration failed: {}", crate::db::error_chain(&e)))
}
