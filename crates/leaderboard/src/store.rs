//! Every SQL statement of the service, typed in and out; handlers never hold SQL.
//!
//! Statements go out with their parameter types (`query_typed`), as one unnamed
//! statement per round trip: behind a transaction pooler (PgBouncer, Neon's or Supabase's
//! pooled endpoints) consecutive messages of one client reach different server
//! connections, where a named prepared statement would be missing or already taken.

use crate::db::{Db, DbError};
use crate::history::{bucket_of, Buckets};
use crate::model::Region;
use crate::query::{JobType, Params};
use crate::rollup::{Plan, SPANS};
use crate::stats::Stat;
use futures_util::TryStreamExt;
use once_cell::sync::Lazy;
use serde_json::value::RawValue;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::SimpleQueryMessage;

/// A parameter and the type it is sent as.
type Param<'a> = (&'a (dyn ToSql + Sync), Type);

fn text<'a>(value: &'a (dyn ToSql + Sync)) -> Param<'a> {
    (value, Type::TEXT)
}

fn float8<'a>(value: &'a (dyn ToSql + Sync)) -> Param<'a> {
    (value, Type::FLOAT8)
}

fn int8<'a>(value: &'a (dyn ToSql + Sync)) -> Param<'a> {
    (value, Type::INT8)
}

/// All regions with their job type, in the order they were created.
pub async fn regions(db: &Db) -> Result<Vec<Region>, DbError> {
    let client = db.client().await?;
    db.timed(regions_of(&client)).await
}

/// [`regions`] on a connection of its own (the `leaderboard region` command).
pub async fn regions_of(client: &tokio_postgres::Client) -> Result<Vec<Region>, DbError> {
    let rows = client
        .query_typed(
            "SELECT r.id, r.name, r.display_name, j.name \
               FROM regions r JOIN job_types j ON j.id = r.job_type_id \
              ORDER BY r.id",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| Region {
            key: row.get(0),
            id: row.get(1),
            name: row.get(2),
            job_type: row.get(3),
        })
        .collect())
}

/// Whether the database has the schema (`regions`) yet, so a command can say to migrate
/// first instead of failing on a missing table.
pub async fn has_schema(client: &tokio_postgres::Client) -> Result<bool, DbError> {
    let row = client
        .query_typed_one(
            "SELECT to_regclass('public.regions') IS NOT NULL \
                AND to_regclass('public.job_types') IS NOT NULL",
            &[],
        )
        .await?;
    Ok(row.get(0))
}

/// What [`add_region`] found or did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegionAdded {
    /// Added; `others` are the (job type, display name) this id already had.
    Added { others: Vec<(String, String)> },
    /// The id (any case) was already registered for that job type, under `name`.
    Existing { id: String, name: String },
}

/// Registers region `id` for `job_type` with display name `name`, unless the id (any
/// case) already has that job type; an existing row is never changed. Safe to run
/// concurrently: the unique constraint decides, and the loser reads the winner's row.
pub async fn add_region(
    client: &tokio_postgres::Client,
    id: &str,
    name: &str,
    job_type: JobType,
) -> Result<RegionAdded, DbError> {
    let job_type = job_type.as_str();
    let inserted = client
        .query_typed(
            "INSERT INTO regions (name, display_name, job_type_id) \
             SELECT $1, $2, j.id FROM job_types j \
              WHERE j.name = $3 \
                AND NOT EXISTS (SELECT 1 FROM regions r \
                                 WHERE upper(r.name) = upper($1) AND r.job_type_id = j.id) \
             ON CONFLICT (name, job_type_id) DO NOTHING \
             RETURNING id",
            &[text(&id), text(&name), text(&job_type)],
        )
        .await?;
    let rows = client
        .query_typed(
            "SELECT j.name, r.name, r.display_name FROM regions r \
               JOIN job_types j ON j.id = r.job_type_id \
              WHERE upper(r.name) = upper($1) ORDER BY r.id",
            &[text(&id)],
        )
        .await?;
    let same: Vec<(String, String)> = rows
        .iter()
        .filter(|r| r.get::<_, String>(0) == job_type)
        .map(|r| (r.get(1), r.get(2)))
        .collect();
    if inserted.is_empty() {
        return match same.into_iter().next() {
            Some((id, name)) => Ok(RegionAdded::Existing { id, name }),
            None => Err(DbError::Internal(format!(
                "job type {job_type} is missing from job_types"
            ))),
        };
    }
    Ok(RegionAdded::Added {
        others: rows
            .iter()
            .filter(|r| r.get::<_, String>(0) != job_type)
            .map(|r| (r.get(0), r.get(2)))
            .collect(),
    })
}

/// Adds each `(id, display name)` as a `transcoding` region unless a region with that id
/// (any case) already has that job type; existing rows are never changed. One statement, so
/// instances syncing at once neither fail nor duplicate (the unique constraint decides).
/// Returns the number of regions added; new ones get ids in the order given.
pub async fn add_transcoding_regions(
    db: &Db,
    regions: &[(String, String)],
) -> Result<u64, DbError> {
    if regions.is_empty() {
        return Ok(0);
    }
    let (ids, names): (Vec<&str>, Vec<&str>) = regions
        .iter()
        .map(|(id, name)| (id.as_str(), name.as_str()))
        .unzip();
    let client = db.client().await?;
    db.timed(client.execute_typed(
        "INSERT INTO regions (name, display_name, job_type_id) \
         SELECT n.name, n.display_name, j.id \
           FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS n(name, display_name, ord) \
           JOIN job_types j ON j.name = 'transcoding' \
          WHERE NOT EXISTS (SELECT 1 FROM regions r \
                             WHERE upper(r.name) = upper(n.name) AND r.job_type_id = j.id) \
          ORDER BY n.ord \
         ON CONFLICT (name, job_type_id) DO NOTHING",
        &[(&ids, Type::TEXT_ARRAY), (&names, Type::TEXT_ARRAY)],
    ))
    .await
}

/// How far V4's backfill has got (`None` without V4), which also proves the database
/// answers: the health check's query.
pub async fn backfill(db: &Db) -> Result<Option<crate::backfill::Progress>, DbError> {
    let client = db.client().await?;
    db.timed(crate::backfill::progress(&**client)).await
}

/// One post to store: its region, its validated stat and its receipt
/// (`migrations/V6__post_receipts.sql`).
pub struct NewEvent<'a> {
    pub region_key: i32,
    pub stat: &'a Stat,
    /// The digest of the body's exact bytes (`auth::body_digest`).
    pub digest: &'a [u8; crate::auth::DIGEST_BYTES],
    /// The identifier of the key that verified it (`auth::key_id`).
    pub key_id: &'a str,
}

/// Stores a batch of posts whose digests are distinct, each unless its body was received
/// before (`leaderboard_store_post[s]`, migration V6); returns how many rows were stored
/// once it is committed (0 when a lost `COMMIT` answer was read back as committed), `Err`
/// when it is not (a data error of any row fails the whole batch).
///
/// A lone post is one autocommit call, as the original service writes it: one statement,
/// one round trip, the least database time. A larger batch is one multi-row
/// statement in a transaction whose `BEGIN`, `txid_current()`, statement and `COMMIT` go
/// out together (still one round trip); a statement the database refuses turns that
/// `COMMIT` into a rollback and leaves the connection usable. When a batch's answers stop
/// (connection lost, `DB_TIMEOUT`) after its transaction id arrived, the outcome is read
/// back with `txid_status` on another connection until `DB_TIMEOUT`, so the many posts of
/// a batch are not answered 503 for rows that are stored. Otherwise (a lone post, or a
/// database that stalled before it named the transaction) an `Err` other than a refusal
/// may still have committed, as with any single statement whose answer is lost; the
/// tester's retry of the same body is then stored once all the same.
pub async fn insert_events(db: &Db, rows: &[NewEvent<'_>]) -> Result<u64, DbError> {
    let client = db.client().await?;
    if let [row] = rows {
        let digest: &[u8] = row.digest;
        let stored = db
            .timed(client.query_typed_one(
                "SELECT leaderboard_store_post($1, $2, $3, $4, $5)",
                &[
                    (&digest, Type::BYTEA),
                    text(&row.key_id),
                    text(&row.stat.orchestrator),
                    (&row.region_key, Type::INT4),
                    (&row.stat.payload, Type::JSONB),
                ],
            ))
            .await?;
        return Ok(u64::from(stored.get::<_, i32>(0) > 0));
    }
    let digests: Vec<&[u8]> = rows.iter().map(|r| r.digest.as_slice()).collect();
    let key_ids: Vec<&str> = rows.iter().map(|r| r.key_id).collect();
    let orchestrators: Vec<&str> = rows.iter().map(|r| r.stat.orchestrator.as_str()).collect();
    let region_keys: Vec<i32> = rows.iter().map(|r| r.region_key).collect();
    let payloads: Vec<&serde_json::Value> = rows.iter().map(|r| &r.stat.payload).collect();
    let params: [Param; 5] = [
        (&digests, Type::BYTEA_ARRAY),
        (&key_ids, Type::TEXT_ARRAY),
        (&orchestrators, Type::TEXT_ARRAY),
        (&region_keys, Type::INT4_ARRAY),
        (&payloads, Type::JSONB_ARRAY),
    ];
    let xid = std::sync::OnceLock::new();
    let pipeline = async {
        let (began, inserted, committed) = tokio::join!(
            async {
                for message in client.simple_query("BEGIN; SELECT txid_current()").await? {
                    if let SimpleQueryMessage::Row(row) = message {
                        if let Some(id) = row.get(0).and_then(|id| id.parse().ok()) {
                            let _ = xid.set(id);
                        }
                    }
                }
                Ok::<_, tokio_postgres::Error>(())
            },
            client.query_typed_one(
                "SELECT leaderboard_store_posts($1, $2, $3, $4, $5)",
                &params
            ),
            client.simple_query("COMMIT"),
        );
        began?;
        let stored: i64 = inserted?.get(0);
        committed?;
        Ok::<_, tokio_postgres::Error>(stored as u64)
    };
    match db.timed(pipeline).await {
        Ok(stored) => Ok(stored),
        // Refused by the database (a row, a deferred constraint at commit, a deadlock):
        // rolled back.
        Err(e @ (DbError::Internal(_) | DbError::Conflict(_))) => Err(e),
        Err(lost) => {
            drop(deadpool_postgres::Object::take(client));
            match xid.get() {
                // How many of the rows were new is not known then: the receipts will say
                // when the posts come again.
                Some(&xid) => commit_outcome(db, xid, lost).await.map(|()| 0),
                None => {
                    tracing::warn!(rows = rows.len(), error = %lost, "a batch got no answer at all; whether it committed is unknown");
                    Err(lost)
                }
            }
        }
    }
}

/// Whether transaction `xid`, whose `COMMIT` got no answer (`lost`), committed: asked
/// again and again on fresh connections until `DB_TIMEOUT` while the database is away or
/// the transaction still in progress.
async fn commit_outcome(db: &Db, xid: i64, lost: DbError) -> Result<(), DbError> {
    let deadline = tokio::time::Instant::now() + db.timeout();
    loop {
        let asked = tokio::time::timeout_at(deadline, async {
            let client = db.client().await?;
            let row = db
                .timed(client.query_typed("SELECT txid_status($1)", &[int8(&xid)]))
                .await?;
            Ok::<_, DbError>(row.first().and_then(|r| r.get::<_, Option<String>>(0)))
        })
        .await;
        match asked {
            Ok(Ok(Some(status))) if status == "committed" => {
                tracing::info!(xid, "COMMIT lost its answer but committed");
                return Ok(());
            }
            Ok(Ok(Some(status))) if status == "aborted" => return Err(lost),
            Ok(_) if tokio::time::Instant::now() < deadline => {}
            _ => {
                tracing::warn!(xid, error = %lost, "COMMIT lost its answer; whether it committed is unknown");
                return Err(lost);
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The filters of one query, as SQL parameters.
struct Filter<'a> {
    job_type: &'static str,
    region: Option<&'a str>,
    since: Option<f64>,
    until: Option<f64>,
    model: Option<&'a str>,
    pipeline: Option<&'a str>,
    orchestrator: Option<&'a str>,
}

impl<'a> Filter<'a> {
    /// Without an explicit `until` there is no upper bound: "until now" is every stored
    /// row, and not comparing with this instance's clock keeps a just-committed row
    /// visible despite clock skew between the function and the database.
    fn of(params: &'a Params) -> Filter<'a> {
        Filter {
            job_type: params.job_type.as_str(),
            region: params.region.as_deref(),
            since: params.window.since,
            until: params.until,
            model: params.model.as_deref(),
            pipeline: params.pipeline.as_deref(),
            orchestrator: params.orchestrator.as_deref(),
        }
    }
}

/// The regions a query covers: its job type and, when given, its region.
/// Parameters $1 job type, $2 region.
macro_rules! scope {
    () => {
        "scope AS (SELECT r.id, r.name::text AS name \
                     FROM regions r JOIN job_types j ON j.id = r.job_type_id \
                    WHERE j.name = $1 AND ($2::text IS NULL OR upper(r.name) = $2))"
    };
}

/// The highest id of the events migration V4's backfill has not counted yet (NULL: none).
macro_rules! pending {
    () => {
        "(SELECT b.pending_through FROM leaderboard_backfill b)"
    };
}

/// One orchestrator's stored stats per region, newest first, as stored (the JSON text is
/// passed through, not parsed and written again). The answer is every row of the window,
/// so it grows with them; the rows are moved into it as they stream in, so the rows are
/// not held a second time meanwhile.
pub async fn raw_stats(
    db: &Db,
    params: &Params,
) -> Result<BTreeMap<String, Vec<Box<RawValue>>>, DbError> {
    let filter = Filter::of(params);
    let since = filter.since.unwrap_or(f64::NEG_INFINITY);
    let until = filter.until.unwrap_or(f64::INFINITY);
    let client = db.client().await?;
    let by_region = async {
        let rows = client
            .query_typed_raw(
                concat!(
                    "WITH ",
                    scope!(),
                    "SELECT s.name, e.payload::text \
                   FROM events e JOIN scope s ON s.id = e.region_id \
                  WHERE e.orchestrator = $3 \
                    AND e.region_id = ANY (ARRAY(SELECT id FROM scope)) \
                    AND e.event_time >= to_timestamp($4) AND e.event_time <= to_timestamp($5) \
                    AND ($6::text IS NULL OR e.payload ->> 'model' = $6) \
                    AND ($7::text IS NULL OR e.payload ->> 'pipeline' = $7) \
                  ORDER BY e.event_time DESC, e.id DESC"
                ),
                [
                    text(&filter.job_type),
                    text(&filter.region),
                    text(&filter.orchestrator),
                    float8(&since),
                    float8(&until),
                    text(&filter.model),
                    text(&filter.pipeline),
                ],
            )
            .await?;
        let mut rows = std::pin::pin!(rows);
        let mut by_region: BTreeMap<String, Vec<Box<RawValue>>> = BTreeMap::new();
        while let Some(row) = rows.try_next().await? {
            let payload = RawValue::from_string(row.get(1))
                .map_err(|e| DbError::Internal(format!("stored payload is not JSON: {e}")))?;
            by_region.entry(row.get(0)).or_default().push(payload);
        }
        Ok::<_, DbError>(by_region)
    };
    db.timed(by_region).await
}

/// `SELECT {select}` over the whole buckets of a [`Plan`]: for each span of [`SPANS`] the
/// rows of `tables.0` in its two ranges, and the rows of `tables.1` (600 s rows appended
/// since the last compaction, not yet in `tables.0`) in any of them. The ranges are bound
/// from parameter `$first` on, four per span.
fn bucket_arms(select: &str, tables: (&str, &str), filter: &str, first: usize) -> String {
    let (table, appends) = tables;
    let range = |p: usize| format!("(b.bucket >= ${p} AND b.bucket < ${})", p + 1);
    let mut arms: Vec<String> = SPANS
        .iter()
        .enumerate()
        .map(|(i, span)| {
            let p = first + 4 * i;
            format!(
                "SELECT {select} FROM {table} b WHERE b.span = {span} AND ({} OR {}) {filter}",
                range(p),
                range(p + 2)
            )
        })
        .collect();
    let all_ranges: Vec<String> = (0..2 * SPANS.len()).map(|i| range(first + 2 * i)).collect();
    arms.push(format!(
        "SELECT {select} FROM {appends} b WHERE ({}) {filter}",
        all_ranges.join(" OR ")
    ));
    arms.join(" UNION ALL ")
}

/// The events of a window that are not in its buckets, bound from `$first`, as a CTE named
/// `edge`: the raw events of a [`Plan`]'s edges and, while the backfill of migration V4 is
/// under way, the events between them that it has not counted yet (`id <=
/// pending_through`, read in the same snapshot as the buckets, so each event is counted
/// exactly once). Materialized so the time index alone finds them, however the rest of
/// the query filters; the second arm is skipped outright once the backfill is done.
/// Unscored tests (migration V5's `leaderboard_scored`) are left out, as the rollups
/// leave them out.
///
/// Columns `region_id, orchestrator, payload, model, pipeline, success_rate,
/// round_trip_time, seg_duration`: an edge's events keep their payload (the query takes
/// out only what it keeps), the uncounted ones come with those fields taken out of it
/// instead, by the parallel workers (`numbers`: the three scored ones too, else NULL), so
/// [`edge_text!`] and [`edge_field!`] read either. During a recount the second arm is
/// every event of the window, and materializing their whole payloads (a 7-day window: 2 M
/// of them, written to a temporary file and read back to be parsed in the leader alone)
/// cost more than the straightforward AVG over `event_details`.
///
/// The second arm is only in the statements for a recount (`pending`: with the query's
/// group conditions, so only the events it keeps are parsed, the region as an array the
/// parallel workers get as a value); the others start with [`recount_marker`] instead and
/// are run again as the former when it answers (see [`recount_checked`]). Planned in,
/// that arm cost every request: estimated at a third of `events`, its parsing raised the
/// plan's cost past `jit_above_cost` (35-50 ms of compiling per aggregated_stats at 1 M
/// events), and without the parsing it still cost 0.3 ms. The edges' arm does not filter
/// on the query's groups: there, those conditions made PostgreSQL combine the time index
/// with the region's or the model's index (800,000 entries read for 5,000 rows:
/// aggregated_stats twice as slow).
fn raw_edges(first: usize, numbers: bool, pending: Option<&str>) -> String {
    let number = |name: &str| {
        if numbers {
            format!("leaderboard_number(e.payload -> '{name}')")
        } else {
            "NULL::float8".to_string()
        }
    };
    let uncounted = if let Some(filter) = pending {
        format!(
            concat!(
                " UNION ALL \
                 SELECT e.region_id, e.orchestrator, NULL::jsonb, e.payload ->> 'model', \
                        e.payload ->> 'pipeline', {sr}, {rtt}, {seg} \
                   FROM events e \
                  WHERE ",
                pending!(),
                " IS NOT NULL AND e.id <= ",
                pending!(),
                " AND e.event_time >= to_timestamp(${b}) AND e.event_time < to_timestamp(${c}) \
                    AND leaderboard_scored(e.payload) {filter}"
            ),
            filter = filter,
            b = first + 1,
            c = first + 2,
            sr = number("success_rate"),
            rtt = number("round_trip_time"),
            seg = number("seg_duration"),
        )
    } else {
        String::new()
    };
    format!(
        "edge AS MATERIALIZED (\
           SELECT e.region_id, e.orchestrator, e.payload, NULL::text AS model, \
                  NULL::text AS pipeline, NULL::float8 AS success_rate, \
                  NULL::float8 AS round_trip_time, NULL::float8 AS seg_duration \
             FROM events e \
            WHERE ((e.event_time >= to_timestamp(${a}) AND e.event_time < to_timestamp(${b})) \
                OR (e.event_time >= to_timestamp(${c}) AND e.event_time <= to_timestamp(${d}))) \
              AND leaderboard_scored(e.payload) {uncounted})",
        a = first,
        b = first + 1,
        c = first + 2,
        d = first + 3,
    )
}

/// A field of an [`raw_edges`] row as text (`model`, `pipeline`): taken out already, or
/// from its payload.
macro_rules! edge_text {
    ($field:literal) => {
        concat!("COALESCE(e.", $field, ", e.payload ->> '", $field, "')")
    };
}

/// A scored field of an [`raw_edges`] row as the rollups sum it, `COALESCE(…, 0)`.
macro_rules! edge_field {
    ($field:literal) => {
        concat!(
            "COALESCE(e.",
            $field,
            ", leaderboard_number(e.payload -> '",
            $field,
            "'), 0)"
        )
    };
}

/// Runs `statements[0]`, which starts with [`recount_marker`] (its column `marker` NULL),
/// and when that row comes (a recount under way in the statement's snapshot) runs
/// `statements[1]`, which reads the uncounted events too, and returns its rows instead.
/// The other rows come as they are.
async fn recount_checked(
    db: &Db,
    client: &tokio_postgres::Client,
    statements: &[String; 2],
    values: &[Param<'_>],
    marker: usize,
) -> Result<Vec<tokio_postgres::Row>, DbError> {
    let rows = db.timed(client.query_typed(&statements[0], values)).await?;
    if rows
        .iter()
        .any(|row| row.get::<_, Option<&str>>(marker).is_none())
    {
        return db.timed(client.query_typed(&statements[1], values)).await;
    }
    Ok(rows)
}

/// The events of a window as partial sums per group, from the buckets of migration V4
/// and the raw events at the edges. Parameters after [`scope!`]: $3 model and $4 pipeline
/// ('' for transcoding, NULL for any), $5 orchestrator, then the plan ([`Rollup::values`]).
static PARTS: Lazy<[String; 2]> = Lazy::new(|| {
    let filter = "AND ($3::text IS NULL OR b.model = $3) AND ($4::text IS NULL OR b.pipeline = $4) \
                  AND ($5::text IS NULL OR b.orchestrator = $5) AND b.region_id IN (SELECT id FROM scope)";
    let buckets = bucket_arms(
        "b.region_id, b.orchestrator, b.model, b.pipeline, b.events, \
         b.success_rate, b.round_trip_time, b.seg_duration",
        ("event_buckets", "event_bucket_appends"),
        filter,
        6,
    );
    let raw = concat!(
        "SELECT e.region_id, e.orchestrator, \
                COALESCE(",
        edge_text!("model"),
        ", ''), COALESCE(",
        edge_text!("pipeline"),
        ", ''), 1, ",
        edge_field!("success_rate"),
        ", ",
        edge_field!("round_trip_time"),
        ", ",
        edge_field!("seg_duration"),
        " FROM edge e \
          WHERE ($3::text IS NULL OR COALESCE(",
        edge_text!("model"),
        ", '') = $3) AND ($4::text IS NULL OR COALESCE(",
        edge_text!("pipeline"),
        ", '') = $4) \
            AND ($5::text IS NULL OR e.orchestrator = $5) AND e.region_id IN (SELECT id FROM scope)"
    );
    [false, true].map(|pending| {
        format!(
            "WITH {}, {}, parts (region_id, orchestrator, model, pipeline, events, success_rate, \
             round_trip_time, seg_duration) AS ({buckets} UNION ALL {raw}) ",
            scope!(),
            raw_edges(
                6 + 4 * SPANS.len(),
                true,
                pending.then_some(
                    "AND ($3::text IS NULL OR COALESCE(e.payload ->> 'model', '') = $3) \
                     AND ($4::text IS NULL OR COALESCE(e.payload ->> 'pipeline', '') = $4) \
                     AND ($5::text IS NULL OR e.orchestrator = $5) \
                     AND e.region_id = ANY (ARRAY(SELECT id FROM scope))"
                )
            )
        )
    })
});

/// The values of [`scope!`] and [`PARTS`] for one query.
struct Rollup<'a> {
    job_type: &'static str,
    region: Option<&'a str>,
    model: Option<&'a str>,
    pipeline: Option<&'a str>,
    orchestrator: Option<&'a str>,
    plan: Plan,
}

impl<'a> Rollup<'a> {
    /// The leaderboard groups of `params`: transcoding rows carry no model or pipeline.
    fn of(params: &'a Params) -> Rollup<'a> {
        let filter = Filter::of(params);
        let ai = params.job_type == JobType::Ai;
        Rollup {
            job_type: filter.job_type,
            region: filter.region,
            model: if ai { filter.model } else { Some("") },
            pipeline: if ai { filter.pipeline } else { Some("") },
            orchestrator: filter.orchestrator,
            plan: Plan::of(filter.since, filter.until),
        }
    }

    /// The plan's bounds, in parameter order.
    fn plan_values(&self) -> Vec<Param<'_>> {
        let mut values = Vec::new();
        for (lo, hi) in self.plan.buckets.iter().flatten() {
            values.push(int8(lo));
            values.push(int8(hi));
        }
        let p = &self.plan;
        values.extend([
            float8(&p.raw_start.0),
            float8(&p.raw_start.1),
            float8(&p.raw_end.0),
            float8(&p.raw_end.1),
        ]);
        values
    }

    fn values(&self) -> Vec<Param<'_>> {
        let mut values = vec![
            text(&self.job_type),
            text(&self.region),
            text(&self.model),
            text(&self.pipeline),
            text(&self.orchestrator),
        ];
        values.extend(self.plan_values());
        values
    }

    /// [`scope!`] and the plan, for the pipelines query.
    fn pipeline_values(&self) -> Vec<Param<'_>> {
        let mut values = vec![text(&self.job_type), text(&self.region)];
        values.extend(self.plan_values());
        values
    }
}

/// The averages of one (orchestrator, region) group, the input of the scores.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupAverages {
    pub orchestrator: String,
    pub region: String,
    pub success_rate: f64,
    pub round_trip_time: f64,
    pub seg_duration: f64,
}

static GROUPS: Lazy<[String; 2]> = Lazy::new(|| {
    [false, true].map(|pending| {
        format!(
            "{} {} SELECT g.orchestrator::text, s.name, g.success_rate / g.events, \
                   g.round_trip_time / g.events, g.seg_duration / g.events \
              FROM (SELECT p.region_id, p.orchestrator, sum(p.events)::float8 AS events, \
                           sum(p.success_rate) AS success_rate, \
                           sum(p.round_trip_time) AS round_trip_time, \
                           sum(p.seg_duration) AS seg_duration \
                      FROM parts p GROUP BY p.region_id, p.orchestrator) g \
              JOIN scope s ON s.id = g.region_id \
             WHERE g.events > 0",
            PARTS[usize::from(pending)],
            if pending {
                String::new()
            } else {
                recount_marker(5)
            }
        )
    })
});

/// The rollups' sums gain and lose rows (updates, deletes, the backfill), so an average
/// taken from them carries float rounding the straightforward AVG does not: rates that
/// are all 0 may come out at 1e-17, all 1 at a few ulps above 1, round trips that are all
/// 0 at 1e-15 s. The scores jump at exactly 0 (score 0 without success, round-trip score
/// 0 without a round trip), so such residues are snapped: a success rate within 1e-9 of 0
/// or just above 1 (at most a billion events' worth of ulps; no real average is that
/// close), a round trip under a microsecond (no network round trip is). Real values,
/// rates above 1 written by hand included, stay as they are.
fn settle_rate(average: f64) -> f64 {
    const RESIDUE: f64 = 1e-9;
    if average.abs() < RESIDUE {
        0.0
    } else if average > 1.0 && average - 1.0 < RESIDUE {
        1.0
    } else {
        average
    }
}

/// See [`settle_rate`]: a round trip average under a microsecond is rounding residue.
fn settle_seconds(average: f64) -> f64 {
    const RESIDUE: f64 = 1e-6;
    if average.abs() < RESIDUE {
        0.0
    } else {
        average
    }
}

/// AVG(COALESCE(x, 0)) of the three scored fields per (orchestrator, region).
pub async fn group_averages(db: &Db, params: &Params) -> Result<Vec<GroupAverages>, DbError> {
    let rollup = Rollup::of(params);
    let client = db.client().await?;
    let rows = recount_checked(db, &client, &GROUPS, &rollup.values(), 1).await?;
    Ok(rows
        .iter()
        .map(|row| GroupAverages {
            orchestrator: row.get(0),
            region: row.get(1),
            success_rate: settle_rate(row.get(2)),
            round_trip_time: settle_seconds(row.get(3)),
            seg_duration: row.get(4),
        })
        .collect())
}

/// The continuous median of round_trip_time over the successful AI events (success_rate
/// 1, round_trip_time not 0) of every orchestrator in the query's window, region, model
/// and pipeline; `None` when there are none. Taken over `ai_round_trips` plus the events
/// the backfill has not counted yet (see [`raw_edges`]).
pub async fn median_round_trip(db: &Db, params: &Params) -> Result<Option<f64>, DbError> {
    let filter = Filter::of(params);
    let since = filter.since.unwrap_or(f64::NEG_INFINITY);
    let until = filter.until.unwrap_or(f64::INFINITY);
    let client = db.client().await?;
    let row = db
        .timed(client.query_typed_one(
            concat!(
                "WITH ",
                scope!(),
                "SELECT PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY t.round_trip_time) \
                   FROM (SELECT a.round_trip_time FROM ai_round_trips a \
                          WHERE a.pipeline = $4 AND a.model = $3 \
                            AND a.event_time >= to_timestamp($5) AND a.event_time <= to_timestamp($6) \
                            AND a.region_id IN (SELECT id FROM scope) \
                          UNION ALL \
                         SELECT leaderboard_number(e.payload -> 'round_trip_time') FROM events e \
                          WHERE ",
                pending!(),
                " IS NOT NULL AND e.id <= ",
                pending!(),
                " AND e.event_time >= to_timestamp($5) AND e.event_time <= to_timestamp($6) \
                            AND e.region_id IN (SELECT id FROM scope) \
                            AND e.payload ->> 'pipeline' = $4 AND e.payload ->> 'model' = $3 \
                            AND leaderboard_number(e.payload -> 'success_rate') = 1 \
                            AND leaderboard_number(e.payload -> 'round_trip_time') <> 0) t"
            ),
            &[
                text(&JobType::Ai.as_str()),
                text(&filter.region),
                text(&filter.model),
                text(&filter.pipeline),
                float8(&since),
                float8(&until),
            ],
        ))
        .await?;
    Ok(row.get(0))
}

static BEST_AI_GROUP: Lazy<[String; 2]> = Lazy::new(|| {
    [false, true].map(|pending| {
        format!(
            "{} {} (SELECT s.name, p.model, p.pipeline, \
                   sum(p.success_rate) / sum(p.events)::float8 AS success_rate, \
                   sum(p.round_trip_time) / sum(p.events)::float8 AS round_trip_time \
              FROM parts p JOIN scope s ON s.id = p.region_id \
             WHERE p.model <> '' AND p.pipeline <> '' \
             GROUP BY s.name, p.model, p.pipeline \
            HAVING sum(p.events) > 0 \
             ORDER BY round((sum(p.success_rate) / sum(p.events)::float8)::numeric, 9) DESC, \
                      round((sum(p.round_trip_time) / sum(p.events)::float8)::numeric, 6) ASC, \
                      1, 2, 3 \
             LIMIT 1)",
            PARTS[usize::from(pending)],
            if pending {
                String::new()
            } else {
                recount_marker(5)
            }
        )
    })
});

/// One orchestrator's best AI group in the window: highest average success rate, then
/// lowest average round trip (compared past their rounding residue, see [`settle_rate`]),
/// then by name for a stable answer. Its averages come along.
pub async fn best_ai_group(
    db: &Db,
    params: &Params,
) -> Result<Option<(String, String, String, f64, f64)>, DbError> {
    let mut rollup = Rollup::of(params);
    rollup.job_type = JobType::Ai.as_str();
    rollup.model = None;
    rollup.pipeline = None;
    let client = db.client().await?;
    let rows = recount_checked(db, &client, &BEST_AI_GROUP, &rollup.values(), 0).await?;
    Ok(rows.first().map(|r| {
        (
            r.get(0),
            r.get(1),
            r.get(2),
            settle_rate(r.get(3)),
            settle_seconds(r.get(4)),
        )
    }))
}

static PIPELINES: Lazy<[String; 2]> = Lazy::new(|| {
    let buckets = bucket_arms(
        "b.region_id, b.model, b.pipeline, b.events",
        ("pipeline_buckets", "pipeline_bucket_appends"),
        "AND b.region_id IN (SELECT id FROM scope)",
        3,
    );
    let raw = concat!(
        "SELECT e.region_id, ",
        edge_text!("model"),
        ", ",
        edge_text!("pipeline"),
        ", 1 FROM edge e WHERE ",
        edge_text!("model"),
        " IS NOT NULL AND ",
        edge_text!("pipeline"),
        " IS NOT NULL AND e.region_id IN (SELECT id FROM scope)"
    );
    [false, true].map(|pending| {
        format!(
            "WITH {}, {}, parts (region_id, model, pipeline, events) AS ({buckets} UNION ALL {raw}) \
             {} SELECT p.pipeline, p.model, s.name FROM parts p JOIN scope s ON s.id = p.region_id \
              GROUP BY 1, 2, 3 HAVING sum(p.events) > 0",
            scope!(),
            raw_edges(
                3 + 4 * SPANS.len(),
                false,
                pending.then_some(
                    "AND e.payload ->> 'model' IS NOT NULL AND e.payload ->> 'pipeline' IS NOT NULL \
                     AND e.region_id = ANY (ARRAY(SELECT id FROM scope))"
                )
            ),
            if pending { String::new() } else { recount_marker(3) }
        )
    })
});

/// The AI pipelines in the window with their models and regions, each sorted and distinct.
pub async fn pipelines(db: &Db, params: &Params) -> Result<Vec<crate::model::Pipeline>, DbError> {
    let rollup = Rollup::of(params);
    let client = db.client().await?;
    let rows = recount_checked(db, &client, &PIPELINES, &rollup.pipeline_values(), 2).await?;
    let mut by_pipeline: BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)> = BTreeMap::new();
    for row in rows {
        let entry = by_pipeline.entry(row.get(0)).or_default();
        entry.0.insert(row.get(1));
        entry.1.insert(row.get(2));
    }
    Ok(by_pipeline
        .into_iter()
        .map(|(id, (models, regions))| crate::model::Pipeline {
            id,
            models: models.into_iter().collect(),
            regions: regions.into_iter().collect(),
        })
        .collect())
}

/// What a score_history request reads: the keys of its regions, and whether the events
/// V4's backfill has not counted are read too (see [`history_regions`]; a statement that
/// finds a recount under way reads them whatever this says).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryScope {
    pub regions: Vec<i32>,
    pub pending: bool,
}

/// The regions a score_history request covers, `(key, name)`: its job type's, or the
/// one it names. Read first, so the queries below get the keys as a value the planner
/// sees (an index on the region, not a join that misleads its row estimates).
///
/// Also whether V4's backfill was under way (`pending_through` set) when they were read.
/// When it was not, the queries below leave out the events it has not counted (there are
/// none): planned in, that part costs milliseconds even when it reads nothing (the
/// planner sends it to parallel workers, which start before its filter finds the
/// backfill done). The backfill restarts only when a migration (such as V5) recounts
/// everything, in the transaction that empties the rollups; one that commits after this
/// read is noticed by each statement in its own snapshot ([`recount_marker`], the extent's
/// last column), which then reads the events too.
pub async fn history_regions(
    db: &Db,
    params: &Params,
) -> Result<(Vec<(i32, String)>, bool), DbError> {
    let client = db.client().await?;
    let rows = db
        .timed(client.query_typed(
            concat!(
                "WITH ",
                scope!(),
                " SELECT s.id, s.name, ",
                pending!(),
                " IS NOT NULL FROM scope s \
                 UNION ALL SELECT NULL, NULL, ",
                pending!(),
                " IS NOT NULL"
            ),
            &[
                text(&params.job_type.as_str()),
                text(&params.region.as_deref()),
            ],
        ))
        .await?;
    let pending = rows
        .iter()
        .any(|r| r.get::<_, Option<bool>>(2) == Some(true));
    let regions = rows
        .iter()
        .filter_map(|r| Some((r.get::<_, Option<i32>>(0)?, r.get::<_, Option<String>>(1)?)))
        .collect();
    Ok((regions, pending))
}

/// The values of one `/api/score_history` request, in the parameter order of
/// [`HISTORY_EXTENT`], [`HISTORY`] and [`HISTORY_MEDIANS`]: $1 the region keys
/// ([`history_regions`]), $2 model and $3 pipeline ('' for transcoding; AI always has
/// both), $4 orchestrator, $5 the span of `event_buckets` read, $6 the interval, $7/$8 the
/// bucket bounds, $9/$10 the same as Unix seconds for `event_time`.
struct History<'a> {
    /// Whether to read the events the backfill has not counted ([`history_regions`]).
    pending: bool,
    /// Whether to find the rollup rows bucket by bucket ([`LISTED_BUCKETS`]).
    listed: bool,
    regions: &'a [i32],
    model: &'a str,
    pipeline: &'a str,
    orchestrator: Option<&'a str>,
    span: i32,
    interval: i64,
    lo: i64,
    hi: i64,
    lo_seconds: f64,
    hi_seconds: f64,
}

impl<'a> History<'a> {
    fn of(params: &'a Params, scope: &'a HistoryScope, buckets: &Buckets) -> History<'a> {
        let (lo, hi) = buckets.bounds();
        let (lo_seconds, hi_seconds) = buckets.seconds();
        // The largest list is of the finest span read, an hour.
        let listed = params.region.is_some()
            && buckets
                .lo
                .zip(buckets.hi)
                .is_some_and(|(lo, hi)| (hi - lo) / 3600 <= LISTED_BUCKETS);
        History {
            pending: scope.pending,
            listed,
            regions: &scope.regions,
            model: params.model.as_deref().unwrap_or(""),
            pipeline: params.pipeline.as_deref().unwrap_or(""),
            orchestrator: params.orchestrator.as_deref(),
            span: buckets.interval.source_span(),
            interval: buckets.interval.seconds(),
            lo,
            hi,
            lo_seconds,
            hi_seconds,
        }
    }

    /// `statements[1]` while the backfill is under way, else `statements[0]`.
    fn statement<'s>(&self, statements: &'s [String; 2]) -> &'s str {
        &statements[usize::from(self.pending)]
    }

    /// Of a statement over the rollups, the variant that lists the buckets when
    /// [`History::listed`] (`statements[1]`), else the one that reads their range.
    fn rollup_statement<'s>(&self, statements: &'s [[String; 2]; 2]) -> &'s str {
        self.statement(&statements[usize::from(self.listed)])
    }

    fn values(&self) -> [Param<'_>; 10] {
        [
            (&self.regions, Type::INT4_ARRAY),
            text(&self.model),
            text(&self.pipeline),
            text(&self.orchestrator),
            (&self.span, Type::INT4),
            int8(&self.interval),
            int8(&self.lo),
            int8(&self.hi),
            float8(&self.lo_seconds),
            float8(&self.hi_seconds),
        ]
    }
}

/// The scored events of a score_history request that V4's backfill has not counted yet
/// (see [`raw_edges`]), of every orchestrator, as a CTE named `pending_events`; empty at
/// once when the backfill is done. It holds only what the statements use, the three
/// scored fields already taken out of the payload (as the rollups sum them, `COALESCE(…,
/// 0)`): materializing whole payloads of every event of a 7-day window during a recount
/// wrote them all to a temporary file first, and each arm parsed them again.
///
/// `materialized` where PostgreSQL would otherwise misjudge it: it estimates a handful of
/// rows from the payload conditions, and for the averages inlined it sorted 1.6 M rows in
/// parallel workers to group them (4.4 s) where the materialized rows are hashed (2.9 s);
/// the extent's min and max per group are cheap in the workers (1.6 s inlined, 2.4 s
/// materialized, on the same 7 days).
fn history_pending(materialized: bool) -> String {
    format!(
        concat!(
            "pending_events AS {}(SELECT e.region_id, e.orchestrator, e.event_time, \
                    COALESCE(leaderboard_number(e.payload -> 'success_rate'), 0) AS success_rate, \
                    COALESCE(leaderboard_number(e.payload -> 'round_trip_time'), 0) AS round_trip_time, \
                    COALESCE(leaderboard_number(e.payload -> 'seg_duration'), 0) AS seg_duration \
               FROM events e WHERE ",
            pending!(),
            " IS NOT NULL AND e.id <= ",
            pending!(),
            " AND e.event_time >= to_timestamp($9) AND e.event_time < to_timestamp($10) \
                AND leaderboard_scored(e.payload) \
                AND COALESCE(e.payload ->> 'model', '') = $2 \
                AND COALESCE(e.payload ->> 'pipeline', '') = $3 \
                AND e.region_id = ANY ($1::int4[]))"
        ),
        if materialized { "MATERIALIZED " } else { "" }
    )
}

/// The first arm of a statement that leaves the uncounted events out: one row of
/// `columns` NULLs when, in the statement's own snapshot, the backfill is under way after
/// all (a recount, such as V5's, committed after [`history_regions`] read its state and
/// emptied the rollups; for the leaderboard's statements, any backfill). The reader sees
/// that row and runs the statement again with the events (see [`History::pending`],
/// [`recount_checked`]), so the data read and the decision to read the events come from
/// one snapshot.
fn recount_marker(columns: usize) -> String {
    format!(
        "SELECT {} FROM leaderboard_backfill m WHERE m.pending_through IS NOT NULL UNION ALL ",
        vec!["NULL"; columns].join(", ")
    )
}

/// The most buckets of a span a one-region request lists ([`history_buckets`]); a longer
/// window, or an open one, reads the range.
const LISTED_BUCKETS: i64 = 10_000;

/// The condition on `b.bucket` of a span's compacted rows, `span`-wide buckets starting in
/// `[lo, hi)` (SQL expressions of multiples of `span`): a range, or with `listed` the list
/// of those starts. Every compacted bucket is a multiple of its span (the writers file a
/// 600 s bucket under `bucket / span * span`), so both select the same rows. The primary
/// key leads with `(span, model, pipeline, bucket, region_id, …)`: over a range it reads
/// every region's rows to keep one region's, where a list of buckets is one short probe
/// per bucket (the 6 h count of all orchestrators of one region read 127,000 index
/// entries for 5,800).
fn history_buckets(span: &str, lo: &str, hi: &str, listed: bool) -> String {
    if listed {
        format!("b.bucket = ANY (ARRAY(SELECT generate_series({lo}, {hi} - 1, {span})))")
    } else {
        format!("b.bucket >= {lo} AND b.bucket < {hi}")
    }
}

/// The group filter on a rollup table `b`.
macro_rules! history_filter {
    () => {
        "AND b.model = $2 AND b.pipeline = $3 AND ($4::text IS NULL OR b.orchestrator = $4) \
         AND b.region_id = ANY ($1::int4[])"
    };
}

/// How many (orchestrator, region) groups have data in a score_history request's window,
/// and the first and last bucket start of that data (of any span): the input of
/// [`Buckets::most_points`]. Read from the 6 h buckets (a sixth of the hourly rows), the
/// appended rows and the events not counted yet.
static HISTORY_EXTENT: Lazy<[[String; 2]; 2]> = Lazy::new(|| {
    [false, true].map(|listed| {
        [false, true].map(|pending| {
            let (with, arm) = if pending {
                (
                    format!("{}, ", history_pending(false)),
                    " UNION ALL \
                     SELECT p.region_id, p.orchestrator, floor(extract(epoch FROM v.t))::int8 \
                       FROM (SELECT e.region_id, e.orchestrator, min(e.event_time) AS first, \
                                    max(e.event_time) AS last \
                               FROM pending_events e WHERE ($4::text IS NULL OR e.orchestrator = $4) \
                              GROUP BY e.region_id, e.orchestrator) p \
                      CROSS JOIN LATERAL (VALUES (p.first), (p.last)) v (t)",
                )
            } else {
                (String::new(), "")
            };
            format!(
                "WITH {with} g AS (\
                   SELECT b.region_id, b.orchestrator, b.bucket FROM event_buckets b \
                    WHERE b.span = 21600 AND {buckets} {f} \
                   UNION ALL \
                   SELECT b.region_id, b.orchestrator, b.bucket FROM event_bucket_appends b \
                    WHERE b.bucket >= $7 AND b.bucket < $8 {f} {arm}) \
                 SELECT count(*), min(x.first), max(x.last), {recount} \
                   FROM (SELECT min(g.bucket) AS first, max(g.bucket) AS last FROM g \
                          GROUP BY g.region_id, g.orchestrator) x",
                recount = concat!(pending!(), " IS NOT NULL"),
                buckets = history_buckets("21600", "$7 - (($7 % 21600) + 21600) % 21600", "$8", listed),
                f = history_filter!(),
            )
        })
    })
});

/// The rows a score_history request adds up, `(region, orchestrator, bucket, events, sums of
/// the three scored fields)`, in the order they are to be added: the rollup rows of the
/// interval's span, the appended 600 s rows, and the events not counted yet, summed per
/// group and interval bucket here (one row per point, whatever their number: sent one
/// row per event, a 7-day window during a recount was 2 M rows). `bucket` is the start of
/// a rollup bucket (or of the interval's bucket), which [`history_averages`] files under
/// the interval's bucket holding it. The span's compacted rows start at its first positive
/// bucket: migration V4 files a bucket before 1970 under the span's bucket 0 (it divides
/// towards zero), so that range is read from the 600 s rows, which are exact. Without the
/// uncounted events, the statement starts with [`recount_marker`].
///
/// The rollup rows are not grouped here: with the interval's own span nearly every row is
/// a group of one, and PostgreSQL's grouping (a hash or a sort on the orchestrator's text,
/// numeric sums of `events`) took more than half of the statement's time, which adding
/// them up as they arrive does not.
static HISTORY: Lazy<[[String; 2]; 2]> = Lazy::new(|| {
    let columns = "b.region_id, b.orchestrator::text, b.bucket, b.events, b.success_rate, \
                   b.round_trip_time, b.seg_duration";
    [false, true].map(|listed| {
        [false, true].map(|pending| {
            let (with, marker, arm) = if pending {
                (
                    format!("WITH {}", history_pending(true)),
                    String::new(),
                    format!(
                        " UNION ALL \
                         SELECT e.region_id, e.orchestrator::text, extract(epoch FROM {bucket})::int8, \
                                count(*), sum(e.success_rate), sum(e.round_trip_time), \
                                sum(e.seg_duration) \
                           FROM pending_events e WHERE ($4::text IS NULL OR e.orchestrator = $4) \
                          GROUP BY e.region_id, e.orchestrator, {bucket}",
                        bucket = date_bin("e.event_time")
                    ),
                )
            } else {
                (String::new(), recount_marker(7), String::new())
            };
            format!(
                "{with} {marker} SELECT {columns} FROM event_buckets b \
                         WHERE b.span = $5 AND {buckets} {f} \
                        UNION ALL \
                        SELECT {columns} FROM event_buckets b \
                         WHERE b.span = 600 AND b.bucket >= $7 AND b.bucket < least($8, $5::int8) {f} \
                        UNION ALL \
                        SELECT {columns} FROM event_bucket_appends b \
                         WHERE b.bucket >= $7 AND b.bucket < $8 {f} {arm}",
                buckets = history_buckets("$5::int8", "greatest($7, $5::int8)", "$8", listed),
                f = history_filter!(),
            )
        })
    })
});

/// The earliest instant `date_bin` measures the AI median's buckets from: a Unix day
/// boundary (so a bucket of any interval starts where Unix time puts it) that every
/// timestamp PostgreSQL can store lies within 2^63 microseconds of. From `'epoch'`,
/// `date_bin` fails ("interval out of range") for an event after the year 292,000.
macro_rules! bin_origin {
    () => {
        "timestamptz '2100-01-01 00:00:00+00'"
    };
}

/// The start of the interval's bucket (`$6` seconds) holding `time`, by `date_bin`: integer
/// arithmetic on microseconds, where the numeric `floor(extract(epoch …) / $6)` per row
/// cost about as much as the median's sort.
fn date_bin(time: &str) -> String {
    format!(
        "date_bin(make_interval(secs => $6), {time}, {})",
        bin_origin!()
    )
}

/// The AI median per interval bucket of a score_history request: as
/// [`median_round_trip`] takes it for the bucket's window (every orchestrator; the
/// request's region, or every AI region), from `ai_round_trips` and the events not
/// counted yet, in [`date_bin`]'s buckets; without those events, it starts with
/// [`recount_marker`]. (Taking the medians in Rust instead was slower: sending every
/// round trip cost more than PostgreSQL's sorts.)
static HISTORY_MEDIANS: Lazy<[String; 2]> = Lazy::new(|| {
    [false, true].map(|pending| {
        let (with, marker, arm) = if pending {
            (
                format!("WITH {}", history_pending(true)),
                String::new(),
                format!(
                    " UNION ALL \
                     SELECT {}, e.round_trip_time FROM pending_events e \
                      WHERE e.success_rate = 1 AND e.round_trip_time <> 0",
                    date_bin("e.event_time")
                ),
            )
        } else {
            (String::new(), recount_marker(2), String::new())
        };
        format!(
            "{with} {marker} SELECT extract(epoch FROM r.t)::int8, \
                    PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY r.round_trip_time) \
               FROM (SELECT {} AS t, a.round_trip_time \
                       FROM ai_round_trips a \
                      WHERE a.pipeline = $3 AND a.model = $2 \
                        AND a.event_time >= to_timestamp($9) AND a.event_time < to_timestamp($10) \
                        AND a.region_id = ANY ($1::int4[]) {arm}) r \
              GROUP BY r.t",
            date_bin("a.event_time")
        )
    })
});

/// What [`history_extent`] found: `groups` (orchestrator, region) groups with data whose
/// buckets start in `[first, last]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryExtent {
    pub groups: i64,
    pub first: i64,
    pub last: i64,
}

/// The data a score_history request over a [`HistoryScope`] would read, counted before it is
/// read (see [`HISTORY_EXTENT`]); `None` when there is none. When the statement's snapshot
/// shows a backfill under way that `scope` did not expect (a recount committed since
/// [`history_regions`]), it is counted again with the uncounted events, and `scope` says
/// so from then on, for the statements after it.
pub async fn history_extent(
    db: &Db,
    params: &Params,
    scope: &mut HistoryScope,
    buckets: &Buckets,
) -> Result<Option<HistoryExtent>, DbError> {
    let client = db.client().await?;
    loop {
        let history = History::of(params, scope, buckets);
        let row = db
            .timed(
                client
                    .query_typed_one(history.rollup_statement(&HISTORY_EXTENT), &history.values()),
            )
            .await?;
        let pending: bool = row.get(3);
        if pending && !scope.pending {
            scope.pending = true;
            continue;
        }
        let groups: i64 = row.get(0);
        return Ok(match (row.get(1), row.get(2)) {
            (Some(first), Some(last)) if groups > 0 => Some(HistoryExtent {
                groups,
                first,
                last,
            }),
            _ => None,
        });
    }
}

/// The averages of one (orchestrator, region) group in one bucket of a score_history
/// request, the input of its scores.
#[derive(Debug, Clone, PartialEq)]
pub struct BucketAverages {
    /// The region's key (`regions.id`), see [`history_regions`].
    pub region: i32,
    pub orchestrator: String,
    /// The bucket's start, Unix seconds.
    pub t: i64,
    /// The scored tests in it.
    pub tests: i64,
    pub success_rate: f64,
    pub round_trip_time: f64,
    pub seg_duration: f64,
}

/// AVG(COALESCE(x, 0)) of the three scored fields per (orchestrator, region, bucket) of a
/// score_history request over a [`HistoryScope`], sorted by orchestrator, region key and
/// bucket (so the route makes each series in one go, without looking every point's series
/// up): the rows of [`HISTORY`] added up per group as `GROUP BY … HAVING sum(events) > 0`
/// with `sum(x) / sum(events)::float8` adds them up (see [`HistorySums`]).
///
/// The rows are added up as they stream in, so what is held is one sum per point (at most
/// [`crate::history::MAX_POINTS`] once the route has counted them), never the rows read.
/// A statement that finds a recount under way which `scope` did not expect (see
/// [`recount_marker`]) is dropped at its first row and run again with the uncounted events.
pub async fn history_averages(
    db: &Db,
    params: &Params,
    scope: &HistoryScope,
    buckets: &Buckets,
) -> Result<Vec<BucketAverages>, DbError> {
    let client = db.client().await?;
    let mut scope = scope.clone();
    let groups = loop {
        let history = History::of(params, &scope, buckets);
        match db.timed(add_up_history(&client, &history)).await? {
            Some(groups) => break groups,
            None => scope.pending = true,
        }
    };
    let mut averages = Vec::with_capacity(groups.len());
    for ((region, orchestrator, t), sums) in groups {
        if sums.events <= 0 {
            continue;
        }
        let tests = i64::try_from(sums.events)
            .map_err(|_| DbError::Internal("22003: bigint out of range".into()))?;
        // Exact: a count of events is far below 2^53.
        let events = tests as f64;
        averages.push(BucketAverages {
            region,
            orchestrator,
            t,
            tests,
            success_rate: settle_rate(float8_div(sums.success_rate, events)?),
            round_trip_time: settle_seconds(float8_div(sums.round_trip_time, events)?),
            seg_duration: float8_div(sums.seg_duration, events)?,
        });
    }
    averages.sort_unstable_by(|a, b| {
        (&a.orchestrator, a.region, a.t).cmp(&(&b.orchestrator, b.region, b.t))
    });
    Ok(averages)
}

/// The sums per (region, orchestrator, interval bucket) of [`HISTORY`]'s rows, added as
/// they stream in; `None` at the [`recount_marker`]'s row.
async fn add_up_history(
    client: &tokio_postgres::Client,
    history: &History<'_>,
) -> Result<Option<HashMap<(i32, String, i64), HistorySums>>, DbError> {
    let rows = client
        .query_typed_raw(history.rollup_statement(&HISTORY), history.values())
        .await?;
    let mut rows = std::pin::pin!(rows);
    let mut groups: HashMap<(i32, String, i64), HistorySums> = HashMap::new();
    while let Some(row) = rows.try_next().await? {
        let Some(region) = row.get::<_, Option<i32>>(0) else {
            return Ok(None);
        };
        let key = (region, row.get(1), bucket_of(row.get(2), history.interval));
        let (events, success_rate, round_trip_time, seg_duration): (i64, f64, f64, f64) =
            (row.get(3), row.get(4), row.get(5), row.get(6));
        match groups.entry(key) {
            Entry::Vacant(group) => {
                group.insert(HistorySums {
                    events: i128::from(events),
                    success_rate,
                    round_trip_time,
                    seg_duration,
                });
            }
            Entry::Occupied(mut group) => {
                let sums = group.get_mut();
                sums.events += i128::from(events);
                sums.success_rate = float8_add(sums.success_rate, success_rate)?;
                sums.round_trip_time = float8_add(sums.round_trip_time, round_trip_time)?;
                sums.seg_duration = float8_add(sums.seg_duration, seg_duration)?;
            }
        }
    }
    Ok(Some(groups))
}

/// One group's sums while [`history_averages`] adds its rows up, as PostgreSQL's `sum`
/// does: the float8 sums start from the first row's value and add the others in the
/// order the statement returns them (a span's rows in bucket order), so each is the
/// double `sum(float8)` gives over the rows in that order; the count is exact, as
/// `sum(bigint)` is. Where a point has several rows (`1d`: four 6 h rows) PostgreSQL's
/// grouping added them in whatever order its sort left them, so such a point can differ
/// from what it answered before in the last bit.
struct HistorySums {
    events: i128,
    success_rate: f64,
    round_trip_time: f64,
    seg_duration: f64,
}

/// PostgreSQL's float8 `+`: an overflow of finite values is its error, not infinity.
fn float8_add(a: f64, b: f64) -> Result<f64, DbError> {
    let sum = a + b;
    if sum.is_infinite() && a.is_finite() && b.is_finite() {
        return Err(DbError::Internal(
            "22003: value out of range: overflow".into(),
        ));
    }
    Ok(sum)
}

/// PostgreSQL's float8 `/` by a positive count: an overflow or an underflow to zero is
/// its error.
fn float8_div(a: f64, b: f64) -> Result<f64, DbError> {
    let quotient = a / b;
    if quotient.is_infinite() && a.is_finite() {
        return Err(DbError::Internal(
            "22003: value out of range: overflow".into(),
        ));
    }
    if quotient == 0.0 && a != 0.0 && b.is_finite() {
        return Err(DbError::Internal(
            "22003: value out of range: underflow".into(),
        ));
    }
    Ok(quotient)
}

/// The AI median per bucket start of a score_history request over a [`HistoryScope`] (see
/// [`HISTORY_MEDIANS`]); a bucket without successful round trips is absent. One row per
/// bucket; a statement that finds a recount under way which `scope` did not expect (see
/// [`recount_marker`]) is run again with the uncounted events.
pub async fn history_medians(
    db: &Db,
    params: &Params,
    scope: &HistoryScope,
    buckets: &Buckets,
) -> Result<BTreeMap<i64, f64>, DbError> {
    let client = db.client().await?;
    let mut scope = scope.clone();
    loop {
        let history = History::of(params, &scope, buckets);
        let rows = db
            .timed(client.query_typed(history.statement(&HISTORY_MEDIANS), &history.values()))
            .await?;
        if !scope.pending
            && rows
                .iter()
                .any(|row| row.get::<_, Option<i64>>(0).is_none())
        {
            scope.pending = true;
            continue;
        }
        return Ok(rows
            .iter()
            .filter_map(|row| Some((row.get(0), row.get::<_, Option<f64>>(1)?)))
            .collect());
    }
}

#[cfg(test)]
mod tests {
    use super::{float8_add, float8_div, settle_rate, settle_seconds};

    #[test]
    fn rollup_rounding_is_snapped_back_into_the_unit_range_and_real_values_stay() {
        assert_eq!(settle_rate(1.0000000000000002), 1.0);
        assert_eq!(settle_rate(-2e-17), 0.0);
        assert_eq!(settle_rate(1.1e-16), 0.0);
        assert_eq!(settle_seconds(3e-15), 0.0);
        assert_eq!(settle_seconds(0.25), 0.25);
        assert_eq!(settle_rate(0.75), 0.75);
        assert_eq!(settle_rate(1.5), 1.5);
        assert_eq!(settle_rate(-0.5), -0.5);
    }

    #[test]
    fn the_history_sums_fail_where_postgresql_float8_arithmetic_does() {
        assert_eq!(float8_add(0.5, 0.25).unwrap(), 0.75);
        assert!(float8_add(f64::MAX, f64::MAX).is_err());
        assert_eq!(float8_div(1.5, 3.0).unwrap(), 0.5);
        assert_eq!(float8_div(0.0, 3.0).unwrap(), 0.0);
        assert!(float8_div(f64::MIN_POSITIVE * f64::EPSILON, 4.0).is_err());
        assert!(float8_div(f64::MAX, 0.5).is_err());
    }
}
