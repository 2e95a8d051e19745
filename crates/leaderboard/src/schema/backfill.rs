//! The online half of migrations V4, V5 and V7: counting the stored events into the
//! rollups, in bounded steps outside any long transaction, then the finish: building the
//! indexes too large for a migration's transaction concurrently ([`INDEXES`]) and
//! refreshing the planner's statistics. Until it is done the reads take the uncounted
//! events from `events` directly and plan without the missing indexes, so it only makes
//! them faster, never different. Driven by `leaderboard migrate up` (with a progress
//! bar) and, when nobody runs that, by a background task of every process that migrated
//! ([`drive`]). Steps are one statement each and one at a time across all of them; the
//! finish runs in one process at a time (a concurrent index build in two sessions
//! deadlocks), and the others wait for it. Every statement that loses a race with another
//! session is tried again.

use crate::db::error::{retry_conflicts, DbError};
use deadpool_postgres::Pool;
use serde::Serialize;
use std::time::Duration;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, GenericClient, SimpleQueryMessage};

/// Ids per step of the background task: about a tenth of a second of database time at
/// realistic payloads, so the task never competes with requests for long.
pub const BACKGROUND_STEP: i32 = 10_000;

/// Ids per step of `migrate up`, which an operator runs to get it over with.
pub const OPERATOR_STEP: i32 = 50_000;

/// An index the finish builds with CREATE INDEX CONCURRENTLY: on a large table, building
/// it inside a migration's transaction would hold every writer of the table up for the
/// whole build. The migration that wants it builds it itself only on a small table.
#[derive(Debug, Clone, Copy)]
pub struct OwnedIndex {
    pub name: &'static str,
    pub table: &'static str,
    /// What follows `ON <table>`.
    pub columns: &'static str,
    /// What it serves, for the log.
    pub purpose: &'static str,
}

/// Every index the finish owns, built in this order.
pub const INDEXES: &[OwnedIndex] = &[
    // V4: raw_stats reads one orchestrator's newest events of some regions.
    OwnedIndex {
        name: "idx_events_orchestrator_region_time",
        table: "events",
        columns: "(orchestrator, region_id, event_time)",
        purpose: "raw_stats",
    },
    // V7: one region's AI median reads that region's round trips only (the older
    // `idx_ai_round_trips_pipeline` leads with the time and read every region's).
    OwnedIndex {
        name: "idx_ai_round_trips_region",
        table: "ai_round_trips",
        columns: "(pipeline, model, region_id, event_time) INCLUDE (round_trip_time)",
        purpose: "AI median by region",
    },
];

/// The names of [`INDEXES`], as a query parameter.
fn index_names() -> Vec<&'static str> {
    INDEXES.iter().map(|i| i.name).collect()
}

/// Advisory lock key ("LBFINI") held by the one process running the finish, as a
/// transaction-level lock in a transaction of its own on a second connection (a
/// concurrent index build cannot run inside a transaction, and a session-level lock would
/// outlive us behind a transaction pooler). An idle transaction holds no snapshot (when
/// its statements ran on the simple protocol), so the index build does not wait for it;
/// the others only ever try the lock, never wait on it.
const FINISH_LOCK: i64 = 0x4c42_4649_4e49;

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
    /// Every index of [`INDEXES`] exists and is valid.
    pub index_ready: bool,
    /// The finish after the last count (the indexes, fresh statistics) is done, by
    /// whichever process did it; a migration that leaves an index to it (V7) clears it.
    pub finished: bool,
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
        self.complete && self.index_ready && self.finished
    }
}

/// The backfill's state, or `None` on a database without migration V4. Before V5 the
/// state has no `finished_at`; it reads as not finished then (the row as JSON has no such
/// key), so `migrate status` works on a database still waiting for V5.
pub async fn progress(client: &impl GenericClient) -> Result<Option<Progress>, DbError> {
    if !crate::schema::migrate::table_exists(client, "leaderboard_backfill").await? {
        return Ok(None);
    }
    let row = client
        .query_typed_opt(
            "SELECT b.pending_through IS NULL, b.rows_done, b.high_id - b.floor_id, \
                    COALESCE(b.pending_through - b.floor_id, 0), \
                    (SELECT bool_and(COALESCE(i.indisvalid, false)) \
                       FROM unnest($1::text[]) n \
                            LEFT JOIN pg_index i ON i.indexrelid = to_regclass(n)), \
                    to_jsonb(b) ->> 'finished_at' IS NOT NULL \
               FROM leaderboard_backfill b",
            &[(&index_names(), Type::TEXT_ARRAY)],
        )
        .await?;
    Ok(row.map(|r| Progress {
        complete: r.get(0),
        rows_done: r.get(1),
        ids_total: r.get(2),
        ids_left: r.get(3),
        index_ready: r.get(4),
        finished: r.get(5),
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

/// Counts the next `batch` ids (highest first). One statement in its own transaction,
/// tried again when it loses a race with another session.
pub async fn step(client: &impl GenericClient, batch: i32) -> Result<Step, DbError> {
    retry_conflicts("backfill step", || async {
        let left: Option<i64> = client
            .query_typed_one(
                "SELECT leaderboard_backfill_step($1)",
                &[(&batch, Type::INT4)],
            )
            .await?
            .get(0);
        Ok(left.map_or(Step::Busy, Step::Left))
    })
    .await
}

/// What [`finish`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// The finish is done (`built_index`: this call built at least one of [`INDEXES`]).
    Done { built_index: bool },
    /// Another process is finishing, or an index build outside the finish's lock is under
    /// way (one whose client went away): try again later.
    Busy,
}

/// After the last step, in one process at a time: builds every index of [`INDEXES`] that
/// is not valid (CREATE INDEX CONCURRENTLY: writers go on meanwhile; an invalid leftover
/// of a failed, cancelled or killed build is dropped and built again), vacuums and
/// analyzes the rollups and analyzes the original tables every read joins (`events` for
/// the window's edges, `regions` and `job_types` for its scope: a database the Go service
/// created may never have been analyzed), so the first reads already get the plans their
/// size calls for, and records that it is done. `work` runs the statements; `lock`
/// (another connection) holds [`FINISH_LOCK`] meanwhile. Safe to repeat.
pub async fn finish(work: &impl GenericClient, lock: &mut Client) -> Result<Finish, DbError> {
    let holder = lock.transaction().await?;
    // The simple protocol: a statement of the extended one leaves its portal (and the
    // portal's snapshot) open until the transaction ends, and the index build would wait
    // for that snapshot, that is for this transaction, forever.
    let held = holder
        .simple_query(&format!("SELECT pg_try_advisory_xact_lock({FINISH_LOCK})"))
        .await?
        .iter()
        .any(|m| matches!(m, SimpleQueryMessage::Row(r) if r.get(0) == Some("t")));
    if !held {
        return Ok(Finish::Busy);
    }
    if progress(work).await?.is_some_and(|p| p.settled()) {
        return Ok(Finish::Done { built_index: false });
    }
    let mut built_index = false;
    for index in INDEXES {
        let Some(built) = retry_conflicts(index.purpose, || build_index(work, index)).await? else {
            return Ok(Finish::Busy);
        };
        built_index |= built;
    }
    refresh_statistics(work).await?;
    retry_conflicts("finish record", || async {
        work.batch_execute(
            "UPDATE leaderboard_backfill SET finished_at = now() WHERE pending_through IS NULL",
        )
        .await?;
        Ok(())
    })
    .await?;
    holder.rollback().await?;
    Ok(Finish::Done { built_index })
}

/// Vacuums and analyzes the rollups and analyzes the original tables the reads join, so
/// the next reads get the plans the tables' sizes call for (after the backfill, or a bulk
/// load such as `leaderboard seed`).
pub async fn refresh_statistics(client: &impl GenericClient) -> Result<(), DbError> {
    retry_conflicts("statistics", || async {
        // Two messages: VACUUM refuses to run in the implicit transaction of a
        // multi-statement one.
        client
            .batch_execute(
                "VACUUM (ANALYZE) event_buckets, event_bucket_appends, pipeline_buckets, \
                 pipeline_bucket_appends, ai_round_trips, leaderboard_backfill",
            )
            .await?;
        client
            .batch_execute("ANALYZE events, regions, job_types")
            .await?;
        Ok(())
    })
    .await
}

/// Makes `index` valid: `Some(true)` when it built it, `Some(false)` when it was valid
/// already, `None` while another session builds an index on its table (not under the
/// finish's lock: its client went away, or it runs an older build).
async fn build_index(
    client: &impl GenericClient,
    index: &OwnedIndex,
) -> Result<Option<bool>, DbError> {
    let row = client
        .query_typed_one(
            "SELECT (SELECT i.indisvalid FROM pg_index i WHERE i.indexrelid = to_regclass($1)), \
                    EXISTS (SELECT 1 FROM pg_stat_progress_create_index p \
                             WHERE p.relid = to_regclass($2))",
            &[(&index.name, Type::TEXT), (&index.table, Type::TEXT)],
        )
        .await?;
    let (valid, building): (Option<bool>, bool) = (row.get(0), row.get(1));
    match valid {
        Some(true) => return Ok(Some(false)),
        _ if building => return Ok(None),
        Some(false) => {
            tracing::info!(
                index = index.name,
                purpose = index.purpose,
                "dropping an invalid leftover of an index"
            );
            client
                .batch_execute(&format!("DROP INDEX CONCURRENTLY IF EXISTS {}", index.name))
                .await?;
        }
        None => {}
    }
    tracing::info!(
        index = index.name,
        purpose = index.purpose,
        "building an index concurrently"
    );
    client
        .batch_execute(&format!(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS {} ON {} {}",
            index.name, index.table, index.columns
        ))
        .await?;
    Ok(Some(true))
}

/// What [`run`] reports as it goes.
#[derive(Debug, Clone, Copy)]
pub enum Report<'a> {
    /// After every step: the progress then.
    Counting(&'a Progress),
    /// Every event is counted; building the indexes and refreshing the statistics.
    Finishing,
    /// Another process is doing the finish; waiting for it.
    WaitingForAnother,
}

/// Runs steps of `batch` ids until the backfill is complete, then [`finish`] (on `client`,
/// holding its lock on `lock`), waiting while another process holds a step or does the
/// finish: several operators, and the service's background task, may run it at once, and
/// every one returns once the work is done, whoever did it.
pub async fn run(
    client: &impl GenericClient,
    lock: &mut Client,
    batch: i32,
    mut report: impl FnMut(Report<'_>),
) -> Result<Progress, DbError> {
    loop {
        match step(client, batch).await? {
            Step::Left(0) => break,
            Step::Left(_) => {}
            Step::Busy => tokio::time::sleep(Duration::from_millis(100)).await,
        }
        if let Some(progress) = progress(client).await? {
            report(Report::Counting(&progress));
        }
    }
    report(Report::Finishing);
    while finish(client, lock).await? == Finish::Busy {
        report(Report::WaitingForAnother);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    progress(client)
        .await?
        .ok_or_else(|| DbError::Internal("leaderboard_backfill disappeared".into()))
}

/// The background task a process starts once it has migrated: steps of
/// [`BACKGROUND_STEP`] ids with a pause between them, so requests never wait on it (they
/// read uncounted events from `events` meanwhile), until everything is counted and the
/// finish is done (here or elsewhere). Failures (database away) are logged and retried
/// later; it ends when nothing is left, which on a settled database is after one query.
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
    let connect = || async {
        pool.get()
            .await
            .map_err(|e| DbError::Unreachable(crate::db::error::error_chain(&e)))
    };
    let client = connect().await?;
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
                "counting the stored events into the rollups in the background"
            );
            *announced = true;
        }
        return Ok(Some(step(&**client, BACKGROUND_STEP).await?));
    }
    let mut lock = connect().await?;
    match finish(&**client, &mut lock).await? {
        Finish::Done { .. } => {
            tracing::info!(rows = progress.rows_done, "backfill complete");
            Ok(None)
        }
        Finish::Busy => Ok(Some(Step::Busy)),
    }
}
