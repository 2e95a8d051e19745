//! Operator side of the migrations: what a database has applied and what is pending
//! (`leaderboard migrate status`), and reverting to an older version with the reviewed
//! down scripts in `migrations/down/` (`leaderboard migrate down`). Nothing here runs on
//! its own: a cold start only ever applies (see [`super::run`]).

use super::{golang_migrate_state, migrations, GOLANG_MIGRATE_VERSION};
use crate::db::error::DbError;
use serde::Serialize;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, GenericClient};

/// A reviewed down script, kept beside the migrations as
/// `migrations/down/V<version>__<name>.down.sql` and embedded in the binary.
#[derive(Debug, Clone, Copy)]
pub struct DownScript {
    pub version: i32,
    pub name: &'static str,
    pub sql: &'static str,
}

impl DownScript {
    /// A script of comments only: reverting leaves the migration's data in place, as the
    /// original service's down scripts for its seed and legacy-copy migrations did.
    pub fn is_noop(&self) -> bool {
        self.sql
            .lines()
            .map(|line| line.split("--").next().unwrap_or_default().trim())
            .all(str::is_empty)
    }
}

macro_rules! down_script {
    ($version:literal, $name:literal) => {
        DownScript {
            version: $version,
            name: $name,
            sql: include_str!(concat!(
                "../../../../../migrations/down/V",
                $version,
                "__",
                $name,
                ".down.sql"
            )),
        }
    };
}

/// Every migration's down script. A test checks that each migration in `migrations/`
/// has exactly one here (and its file), so none can be added without a reviewed revert.
pub const DOWN: &[DownScript] = &[
    down_script!(1, "event_design_refactor"),
    down_script!(2, "seed_ref_data"),
    down_script!(3, "migrate_data_to_events"),
    down_script!(4, "read_path_rollups"),
    down_script!(5, "unscored_tests"),
    down_script!(6, "post_receipts"),
    down_script!(7, "ai_median_by_region"),
];

pub(super) fn down_script(version: i32) -> Option<&'static DownScript> {
    DOWN.iter().find(|d| d.version == version)
}

/// A migration this binary knows.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Known {
    pub version: i32,
    pub name: String,
}

/// A migration recorded in `refinery_schema_history`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Applied {
    pub version: i32,
    pub name: String,
    pub applied_on: String,
    /// The file in `migrations/` changed since it was applied (refinery refuses to go on).
    pub changed: bool,
    /// Applied by another (newer) build: this binary has no such migration.
    pub unknown: bool,
}

/// golang-migrate's bookkeeping (`schema_migrations`), if the database has a row there.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct GolangMigrate {
    pub version: i64,
    pub dirty: bool,
}

/// What `leaderboard migrate status` reports.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Status {
    /// Highest version recorded in `refinery_schema_history` (0: none).
    pub version: i32,
    /// The newest migration this binary knows.
    pub latest: i32,
    pub applied: Vec<Applied>,
    /// Known migrations not recorded as applied, oldest first.
    pub pending: Vec<Known>,
    pub golang_migrate: Option<GolangMigrate>,
    /// A golang-migrate database not adopted yet: the next start (or `migrate up`) records
    /// migrations 1 to this version as applied without running them.
    pub to_adopt: Option<i64>,
    /// Why the service would refuse this database (dirty, unknown versions, changed files).
    pub problem: Option<String>,
}

fn known() -> Vec<Known> {
    let mut known: Vec<Known> = migrations::runner()
        .get_migrations()
        .iter()
        .map(|m| Known {
            version: m.version(),
            name: m.name().to_string(),
        })
        .collect();
    known.sort_by_key(|k| k.version);
    known
}

/// Whether `table` exists (on the search path).
pub(crate) async fn table_exists(
    client: &impl GenericClient,
    table: &str,
) -> Result<bool, DbError> {
    Ok(client
        .query_typed_one(
            "SELECT to_regclass($1) IS NOT NULL",
            &[(&table, Type::TEXT)],
        )
        .await?
        .get(0))
}

async fn applied(client: &impl GenericClient) -> Result<Vec<Applied>, DbError> {
    if !table_exists(client, "refinery_schema_history").await? {
        return Ok(Vec::new());
    }
    let checksums: Vec<(i32, String)> = migrations::runner()
        .get_migrations()
        .iter()
        .map(|m| (m.version(), m.checksum().to_string()))
        .collect();
    let rows = client
        .query_typed(
            "SELECT version, COALESCE(name, '')::text, COALESCE(applied_on, '')::text, \
                    COALESCE(checksum, '')::text \
               FROM refinery_schema_history ORDER BY version",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| {
            let version: i32 = row.get(0);
            let checksum: String = row.get(3);
            let ours = checksums.iter().find(|(v, _)| *v == version);
            Applied {
                version,
                name: row.get(1),
                applied_on: row.get(2),
                changed: ours.is_some_and(|(_, c)| *c != checksum),
                unknown: ours.is_none(),
            }
        })
        .collect())
}

/// Sets up an empty database as the original Go service leaves its own: the three
/// migrations this service shares with it, recorded by golang-migrate (`schema_migrations`
/// at version 3, clean), nothing of this service's. For rehearsing a cut-over on real-sized
/// data (`leaderboard seed --original`), the cut-over benchmark and the tests.
pub async fn create_original(client: &impl GenericClient) -> Result<(), DbError> {
    if table_exists(client, "events").await? || table_exists(client, "schema_migrations").await? {
        return Err(DbError::Migration(
            "the database is not empty: the original schema goes into a new database".into(),
        ));
    }
    let runner = migrations::runner();
    let mut shared: Vec<_> = runner
        .get_migrations()
        .iter()
        .filter(|m| i64::from(m.version()) <= GOLANG_MIGRATE_VERSION)
        .collect();
    shared.sort_by_key(|m| m.version());
    for migration in shared {
        client.batch_execute(migration.sql().unwrap_or("")).await?;
    }
    client
        .batch_execute(&format!(
            "{}; INSERT INTO schema_migrations VALUES ({GOLANG_MIGRATE_VERSION}, false)",
            super::GOLANG_MIGRATE_TABLE
        ))
        .await?;
    Ok(())
}

/// Applied, pending and golang-migrate state of the database; reads only.
pub async fn status(client: &Client) -> Result<Status, DbError> {
    let applied = applied(client).await?;
    let golang_migrate = golang_migrate_state(client)
        .await?
        .map(|(version, dirty)| GolangMigrate { version, dirty });
    let pending: Vec<Known> = known()
        .into_iter()
        .filter(|k| !applied.iter().any(|a| a.version == k.version))
        .collect();
    let version = applied.iter().map(|a| a.version).max().unwrap_or(0);
    let to_adopt = match golang_migrate {
        Some(g) if applied.is_empty() && !g.dirty && is_adoptable(g.version) => Some(g.version),
        _ => None,
    };
    let problem = problem(&applied, golang_migrate);
    Ok(Status {
        version,
        latest: super::latest_version(),
        applied,
        pending,
        golang_migrate,
        to_adopt,
        problem,
    })
}

fn is_adoptable(version: i64) -> bool {
    (1..=GOLANG_MIGRATE_VERSION).contains(&version)
}

fn problem(applied: &[Applied], golang_migrate: Option<GolangMigrate>) -> Option<String> {
    if let Some(g) = golang_migrate {
        if g.dirty {
            return Some(format!(
                "golang-migrate left this database dirty at version {v} (table schema_migrations); \
                 repair it and mark it clean (migrate force {v}) first",
                v = g.version
            ));
        }
        if !is_adoptable(g.version) {
            return Some(format!(
                "schema_migrations is at version {}, which this service does not know \
                 (it adopts golang-migrate versions 1 to {GOLANG_MIGRATE_VERSION})",
                g.version
            ));
        }
    }
    if let Some(a) = applied.iter().find(|a| a.unknown) {
        return Some(format!(
            "migration V{} ({}) is applied but this build does not have it: run a build that does",
            a.version, a.name
        ));
    }
    if let Some(a) = applied.iter().find(|a| a.changed) {
        return Some(format!(
            "migrations/V{}__{}.sql changed since it was applied (checksum differs): restore it",
            a.version, a.name
        ));
    }
    None
}

/// One migration a revert undoes.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Revert {
    pub version: i32,
    pub name: String,
    /// Its down script leaves its data in place.
    pub noop: bool,
}

/// What `migrate down --to <version>` does (or did): the migrations it reverts, newest first.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DownPlan {
    pub from: i32,
    pub to: i32,
    pub reverts: Vec<Revert>,
    /// golang-migrate's `schema_migrations` is set to this version (`Some(0)`: emptied), so
    /// the original service and a later adoption see the reverted state too.
    pub golang_migrate_to: Option<i64>,
}

/// Checks that the database can be reverted to `to` and says how; reads only.
pub async fn plan_down(client: &impl GenericClient, to: i32) -> Result<DownPlan, DbError> {
    let refuse = |message: String| Err(DbError::Migration(message));
    if to < 0 {
        return refuse(format!("--to {to}: versions start at 0"));
    }
    let golang_migrate = golang_migrate_state(client)
        .await?
        .map(|(version, dirty)| GolangMigrate { version, dirty });
    let recorded = applied(client).await?;
    if let Some(problem) = problem(&recorded, golang_migrate) {
        // A migration this build lacks has no down script here either.
        return refuse(format!("refusing to revert: {problem}"));
    }
    // A golang-migrate database not adopted yet has applied 1..=version, unrecorded.
    let applied: Vec<(i32, String)> = match golang_migrate {
        Some(g) if recorded.is_empty() => known()
            .into_iter()
            .filter(|k| i64::from(k.version) <= g.version)
            .map(|k| (k.version, k.name))
            .collect(),
        _ => recorded.into_iter().map(|a| (a.version, a.name)).collect(),
    };
    let from = applied.iter().map(|(v, _)| *v).max().unwrap_or(0);
    if to > from {
        return refuse(format!(
            "the database is at version {from}; --to {to} is not an older version"
        ));
    }
    let mut reverts = Vec::new();
    for (version, name) in applied.into_iter().rev().filter(|(v, _)| *v > to) {
        let Some(script) = down_script(version) else {
            return refuse(format!(
                "migration V{version} ({name}) has no down script in this build"
            ));
        };
        reverts.push(Revert {
            version,
            name,
            noop: script.is_noop(),
        });
    }
    if to > 0 {
        if let Some(noop) = reverts.iter().filter(|r| r.noop).map(|r| r.version).max() {
            return refuse(format!(
                "cannot stop at version {to}: V{noop} reverts as a no-op (its data stays), so a \
                 later `migrate up` would apply it again on top of that data; revert to version 0 \
                 (drops the schema) or to version {noop} or later"
            ));
        }
    }
    let golang_migrate_to = golang_migrate
        .map(|g| g.version.min(i64::from(to)))
        .filter(|v| Some(*v) != golang_migrate.map(|g| g.version));
    Ok(DownPlan {
        from,
        to,
        reverts,
        golang_migrate_to,
    })
}

/// Reverts the database to version `to`: runs the down scripts newest first, removes their
/// rows from `refinery_schema_history` (so a later `up` applies them again) and lowers
/// golang-migrate's version to match, all in one transaction under the migrations'
/// lock ([`super::Locked`]). Either everything is reverted or nothing is.
pub async fn down(client: &mut Client, to: i32) -> Result<DownPlan, DbError> {
    let tx = super::Locked::begin(client).await?.0;
    let plan = plan_down(&tx, to).await?;
    if plan.reverts.is_empty() {
        return Ok(plan);
    }
    for revert in &plan.reverts {
        let script = down_script(revert.version).expect("planned reverts have scripts");
        tx.batch_execute(script.sql).await.map_err(|e| {
            DbError::Migration(format!(
                "reverting V{} ({}) failed, nothing was changed: {}",
                revert.version,
                revert.name,
                db_message(&e)
            ))
        })?;
        tracing::info!(version = revert.version, "reverted migration");
    }
    if table_exists(&tx, "refinery_schema_history").await? {
        tx.execute_typed(
            "DELETE FROM refinery_schema_history WHERE version > $1",
            &[(&to, Type::INT4)],
        )
        .await?;
    }
    match plan.golang_migrate_to {
        Some(0) => {
            tx.execute_typed("DELETE FROM schema_migrations", &[])
                .await?;
        }
        Some(version) => {
            tx.execute_typed(
                "UPDATE schema_migrations SET version = $1, dirty = false",
                &[(&version, Type::INT8)],
            )
            .await?;
        }
        None => {}
    }
    tx.commit().await?;
    Ok(plan)
}

fn db_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => match db.detail() {
            Some(detail) => format!("{} ({detail})", db.message()),
            None => db.message().to_string(),
        },
        None => crate::db::error::error_chain(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn every_migration_has_a_reviewed_down_script() {
        let migrations: Vec<(i32, String)> =
            known().into_iter().map(|k| (k.version, k.name)).collect();
        let mut down: Vec<(i32, String)> = DOWN
            .iter()
            .map(|d| (d.version, d.name.to_string()))
            .collect();
        down.sort();
        assert_eq!(
            down, migrations,
            "each migrations/V<n>__<name>.sql needs a reviewed migrations/down/V<n>__<name>.down.sql \
             listed in DOWN (crates/leaderboard/src/migrate/admin.rs)"
        );
    }

    #[test]
    fn the_down_folder_holds_only_the_listed_scripts() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations/down");
        let files: BTreeSet<String> = std::fs::read_dir(&dir)
            .expect("migrations/down")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        let listed: BTreeSet<String> = DOWN
            .iter()
            .map(|d| format!("V{}__{}.down.sql", d.version, d.name))
            .collect();
        assert_eq!(files, listed);
    }

    #[test]
    fn the_schema_revert_drops_everything_the_seed_and_copy_reverts_are_noops() {
        let v1 = down_script(1).unwrap();
        assert!(!v1.is_noop());
        for object in [
            "DROP VIEW IF EXISTS pipelines",
            "DROP VIEW IF EXISTS event_details",
            "DROP INDEX IF EXISTS idx_events_region_id",
            "DROP INDEX IF EXISTS idx_events_orchestrator",
            "DROP INDEX IF EXISTS idx_events_timestamp",
            "DROP INDEX IF EXISTS idx_events_payload_pipeline",
            "DROP INDEX IF EXISTS idx_events_payload_model",
            "DROP TABLE IF EXISTS events",
            "DROP TABLE IF EXISTS regions",
            "DROP TABLE IF EXISTS job_types",
        ] {
            assert!(v1.sql.contains(object), "V1 down lacks {object}");
        }
        assert!(down_script(2).unwrap().is_noop());
        assert!(down_script(3).unwrap().is_noop());
    }
}
