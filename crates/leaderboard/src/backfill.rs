//! The online half of migration V4: counting the events stored before it into the rollups,
//! in bounded steps outside any long transaction, then building the raw_stats index
//! concurrently and refreshing the planner's statistics. Until it is done the reads take
//! the uncounted events from `events` directly, so it only makes them faster, never
//! different. Driven by `leaderboard migrate up` (with a progress bar) and, when nobody
//! runs that, by a background task of every process that migrated ([`drive`]); steps are
//! one statement each and one at a time across all of them.

use crate::db::DbError;
use deadpool_postgres::Pool;
use serde::Serialize;
use std::time::Duration;
use tokio_postgres::types::Type;
use tokio_postgres::GenericClient;

/// Ids per step of the background task: about a tenth of a second of database time at
/// realistic payloads, so the task never competes with requests for long.
pub const BACKGROUND_STEP: i32 = 10_000;

/// Ids per step of `migrate up`, which an operator runs to get it over with.
pub const OPERATOR_STEP: i32 = 50_000;

/// The raw_stats index on `events` (orchestrator, region, time), built without a lock that
/// holds writers up.
const INDEX: &str = "idx_events_orchestrator_region_time";

/// Where the backfill stands; `/api/health` and `migrate status` report it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Progress {
    /// Every stored event is counted in the rollups.
    pub complete: bool,
    /// Events counted by the backfill so far.
    pub rows_done: i64,
    /// The id range it had to count, and what is left of it (ids, not rows: ids have gaps).
    pub ids_total: i64,
    pub ids_left: i64,
    /// The raw_stats index exists and is valid.
    pub index_ready: bool,
}

impl Progress {
    pub fn fraction_done(&self) -> f64 {
        if self.ids_total <= 0 {
            return 1.0;
        }
        (self.ids_total - self.ids_left) as f64 / self.ids_total as f64
    }

    /// Nothing left for [`finish`] either.
    pub fn settled(&self) -> bool {
        self.complete && self.index_ready
    }
}

/// The backfill's state, or `None` on a database without migration V4.
pub async fn progress(client: &impl GenericClient) -> Result<Option<Progress>, DbError> {
    if !crate::migrate::table_exists(client, "leaderboard_backfill").await? {
        return Ok(None);
    }
    let row = client
        .query_typed_opt(
            "SELECT b.pending_through IS NULL, b.rows_done, b.high_id - b.floor_id, \
                    COALESCE(b.pending_through - b.floor_id, 0), \
                    COALESCE((SELECT i.indisvalid FROM pg_index i \
                               WHERE i.indexrelid = to_regclass($1)), false) \
               FROM leaderboard_backfill b",
            &[(&INDEX, Type::TEXT)],
        )
        .await?;
    Ok(row.map(|r| Progress {
        complete: r.get(0),
        rows_done: r.get(1),
        ids_total: r.get(2),
        ids_left: r.get(3),
        index_ready: r.get(4),
    }))
}

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Another step, or a writer deciding about uncounted rows, holds the state: try later.
    Busy,
    /// Counted a batch; this many ids are left (0: the backfill is complete).
    Left(i64),
}

/// Counts the next `batch` ids (highest first). One statement in its own transaction.
pub async fn step(client: &impl GenericClient, batch: i32) -> Result<Step, DbError> {
    let left: Option<i64> = client
        .query_typed_one(
            "SELECT leaderboard_backfill_step($1)",
            &[(&batch, Type::INT4)],
        )
        .await?
        .get(0);
    Ok(left.map_or(Step::Busy, Step::Left))
}

/// After the last step: builds the raw_stats index (CREATE INDEX CONCURRENTLY: writers go
/// on meanwhile), vacuums and analyzes the rollups and analyzes the original tables every
/// read joins (`events` for the window's edges, `regions` and `job_types` for its scope:
/// a database the Go service created may never have been analyzed), so the first reads
/// already get the plans their size calls for. Safe to repeat; returns whether the index is ready
/// (false: another process is building it right now).
pub async fn finish(client: &impl GenericClient) -> Result<bool, DbError> {
    let ready = build_index(client).await?;
    // Two messages: VACUUM refuses to run in the implicit transaction of a multi-statement one.
    client
        .batch_execute(
            "VACUUM (ANALYZE) event_buckets, event_bucket_appends, pipeline_buckets, \
             pipeline_bucket_appends, ai_round_trips, leaderboard_backfill",
        )
        .await?;
    client
        .batch_execute("ANALYZE events, regions, job_types")
        .await?;
    Ok(ready)
}

async fn build_index(client: &impl GenericClient) -> Result<bool, DbError> {
    // Valid, invalid (a build that failed or is under way), or missing.
    let row = client
        .query_typed_opt(
            "SELECT i.indisvalid, EXISTS (SELECT 1 FROM pg_stat_progress_create_index p \
                                          WHERE p.index_relid = i.indexrelid) \
               FROM pg_index i WHERE i.indexrelid = to_regclass($1)",
            &[(&INDEX, Type::TEXT)],
        )
        .await?;
    match row.map(|r| (r.get::<_, bool>(0), r.get::<_, bool>(1))) {
        Some((true, _)) => return Ok(true),
        Some((false, true)) => return Ok(false),
        Some((false, false)) => {
            client
                .batch_execute(&format!("DROP INDEX CONCURRENTLY IF EXISTS {INDEX}"))
                .await?;
        }
        None => {}
    }
    tracing::info!(index = INDEX, "building the raw_stats index concurrently");
    client
        .batch_execute(&format!(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS {INDEX} \
             ON events (orchestrator, region_id, event_time)"
        ))
        .await?;
    Ok(true)
}

/// Runs steps of `batch` ids until the backfill is complete, then [`finish`]. Calls
/// `report` after every step with the progress then. Waits while another process holds a
/// step, so several operators (or the service's background task) may run it at once.
pub async fn run(
    client: &impl GenericClient,
    batch: i32,
    mut report: impl FnMut(&Progress),
) -> Result<Progress, DbError> {
    loop {
        match step(client, batch).await? {
            Step::Left(0) => break,
            Step::Left(_) => {}
            Step::Busy => tokio::time::sleep(Duration::from_millis(100)).await,
        }
        if let Some(progress) = progress(client).await? {
            report(&progress);
        }
    }
    while !finish(client).await? {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    progress(client)
        .await?
        .ok_or_else(|| DbError::Internal("leaderboard_backfill disappeared".into()))
}

/// The background task a process starts once it has migrated: steps of
/// [`BACKGROUND_STEP`] ids with a pause between them, so requests never wait on it (they
/// read uncounted events from `events` meanwhile), until everything is counted and the
/// index is built. Failures (database away) are logged and retried later; it ends when
/// nothing is left, which on a settled database is after one query.
pub async fn drive(pool: Pool) {
    const PAUSE: Duration = Duration::from_millis(50);
    const BUSY: Duration = Duration::from_secs(1);
    const RETRY: Duration = Duration::from_secs(10);
    let mut announced = false;
    loop {
        let wait = match drive_once(&pool, &mut announced).await {
            Ok(Some(Step::Busy)) => BUSY,
            Ok(Some(Step::Left(_))) => PAUSE,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "backfill step failed; retrying later");
                RETRY
            }
        };
        tokio::time::sleep(wait).await;
    }
}

/// One round of [`drive`]: `None` when there is nothing left to do.
async fn drive_once(pool: &Pool, announced: &mut bool) -> Result<Option<Step>, DbError> {
    let client = pool
        .get()
        .await
        .map_err(|e| DbError::Unreachable(crate::db::error_chain(&e)))?;
    let Some(progress) = progress(&**client).await? else {
        return Ok(None);
    };
    if progress.settled() {
        return Ok(None);
    }
    if !progress.complete {
        if !*announced {
            tracing::info!(
                ids_left = progress.ids_left,
                "counting the events stored before migration V4 in the background"
            );
            *announced = true;
        }
        return Ok(Some(step(&**client, BACKGROUND_STEP).await?));
    }
    if finish(&**client).await? {
        tracing::info!(
            rows = progress.rows_done,
            "backfill of migration V4 complete"
        );
        Ok(None)
    } else {
        Ok(Some(Step::Busy))
    }
}
