//! Removing stored events online, in bounded steps: the rows a leaked key let in
//! (`leaderboard events remove --key`), and whatever a later retention prunes.
//!
//! The rows to remove are found first, by one query (their ids, 4 bytes each, are held by the
//! command: there is no index on a receipt's key, which every post would pay for). Then each
//! step deletes at most `step_rows` of them in one short transaction and commits. The
//! rollups follow through the `events` triggers (V4/V5): the sums go down by exactly what
//! the rows added, the AI round trips leave with their rows, and rows the backfill has not
//! counted yet are simply never counted. So every answer afterwards is the one a database
//! that never took those posts gives. A killed removal has removed whole steps; running it
//! again removes the rest. A receipt outlives its row (`V6__post_receipts.sql`), so a
//! removed body replayed later is still a repeat and stores nothing.

use crate::db::error::retry_conflicts;
use crate::db::DbError;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::Client;

/// Rows per step: a few milliseconds of work (the trigger appends the step's sums), so a
/// reader or writer that meets a step's locks waits for it no longer than that.
pub const STEP_ROWS: usize = 1_000;

/// Which stored events to remove.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selection {
    /// Only the rows this key let in (`post_receipts.key_id`); `None`: any row, with or
    /// without a receipt (retention).
    pub key_id: Option<String>,
    /// Only rows stored at or after this time (Unix seconds, on `event_time`, the server's
    /// time of storing, not the body's `timestamp`, which the poster chose).
    pub since: Option<f64>,
    /// Only rows stored at or before this time.
    pub until: Option<f64>,
}

/// What a selection holds right now.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub events: i64,
    pub orchestrators: i64,
    /// The first and last `event_time`, Unix seconds.
    pub first: Option<f64>,
    pub last: Option<f64>,
    /// Events per (region, job type), by region name.
    pub regions: Vec<(String, String, i64)>,
}

/// The selected events (`$1` key, `$2` since, `$3` until): through the receipts when there
/// is a key, from `events` itself otherwise.
fn selected(selection: &Selection) -> String {
    let source = if selection.key_id.is_some() {
        "post_receipts r JOIN events e ON e.id = r.event_id WHERE r.key_id = $1"
    } else {
        "events e WHERE $1::text IS NULL"
    };
    format!(
        "SELECT e.id, e.event_time, e.orchestrator, e.region_id FROM {source} \
            AND ($2::float8 IS NULL OR e.event_time >= to_timestamp($2)) \
            AND ($3::float8 IS NULL OR e.event_time <= to_timestamp($3))"
    )
}

impl Selection {
    /// `$1`, `$2` and `$3` of [`selected`].
    fn params(&self) -> [(&(dyn ToSql + Sync), Type); 3] {
        [
            (&self.key_id, Type::TEXT),
            (&self.since, Type::FLOAT8),
            (&self.until, Type::FLOAT8),
        ]
    }
}

/// How many events `selection` holds, over how long, where.
pub async fn summarize(client: &Client, selection: &Selection) -> Result<Summary, DbError> {
    let sql = format!(
        "WITH s AS MATERIALIZED ({}) \
         SELECT count(*), count(DISTINCT s.orchestrator), \
                extract(epoch FROM min(s.event_time))::float8, \
                extract(epoch FROM max(s.event_time))::float8, \
                (SELECT COALESCE(jsonb_agg(jsonb_build_array(g.name, g.job_type, g.n) \
                                           ORDER BY g.name, g.job_type), '[]') \
                   FROM (SELECT COALESCE(r.name::text, '(none)') AS name, \
                                COALESCE(j.name::text, '') AS job_type, count(*) AS n \
                           FROM s LEFT JOIN regions r ON r.id = s.region_id \
                                  LEFT JOIN job_types j ON j.id = r.job_type_id \
                          GROUP BY 1, 2) AS g) \
         FROM s",
        selected(selection)
    );
    let row = client.query_typed_one(&sql, &selection.params()).await?;
    let regions: serde_json::Value = row.get(4);
    let regions = regions
        .as_array()
        .map(|groups| {
            groups
                .iter()
                .map(|g| {
                    (
                        g[0].as_str().unwrap_or_default().to_string(),
                        g[1].as_str().unwrap_or_default().to_string(),
                        g[2].as_i64().unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Summary {
        events: row.get(0),
        orchestrators: row.get(1),
        first: row.get(2),
        last: row.get(3),
        regions,
    })
}

/// The ids of the events `selection` holds right now, ascending.
pub async fn selected_ids(client: &Client, selection: &Selection) -> Result<Vec<i32>, DbError> {
    let sql = format!(
        "SELECT s.id FROM ({}) AS s ORDER BY s.id",
        selected(selection)
    );
    let rows = client.query_typed(&sql, &selection.params()).await?;
    Ok(rows.iter().map(|row| row.get(0)).collect())
}

/// One step: deletes the events with these ids (those still there) in one transaction of
/// its own; returns how many it deleted.
pub async fn remove_ids(client: &Client, ids: &[i32]) -> Result<u64, DbError> {
    Ok(client
        .execute_typed(
            "DELETE FROM events WHERE id = ANY($1)",
            &[(&ids, Type::INT4_ARRAY)],
        )
        .await?)
}

/// Removes every event `selection` holds, `step_rows` at a time, calling `progress` with
/// the running total after each step; returns the total. Lost races (a deadlock, a lock
/// not granted within the session's `lock_timeout`) are retried step by step.
pub async fn remove(
    client: &Client,
    selection: &Selection,
    step_rows: usize,
    mut progress: impl FnMut(u64),
) -> Result<u64, DbError> {
    let ids = selected_ids(client, selection).await?;
    let mut total = 0;
    for step in ids.chunks(step_rows.max(1)) {
        total += retry_conflicts("removing events", || remove_ids(client, step)).await?;
        progress(total);
    }
    Ok(total)
}

/// A key identifier found on stored rows.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredKey {
    pub key_id: String,
    /// Its rows still stored (removed ones keep their receipt, not their row).
    pub events: i64,
    /// The first and last `event_time` of those rows, Unix seconds.
    pub first: Option<f64>,
    pub last: Option<f64>,
}

/// Every key identifier the receipts carry, with its rows; one scan of the receipts, for
/// an operator's command.
pub async fn stored_keys(client: &Client) -> Result<Vec<StoredKey>, DbError> {
    let rows = client
        .query_typed(
            "SELECT r.key_id, count(e.id), extract(epoch FROM min(e.event_time))::float8, \
                    extract(epoch FROM max(e.event_time))::float8 \
               FROM post_receipts r LEFT JOIN events e ON e.id = r.event_id \
              GROUP BY r.key_id ORDER BY r.key_id",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| StoredKey {
            key_id: row.get(0),
            events: row.get(1),
            first: row.get(2),
            last: row.get(3),
        })
        .collect())
}
