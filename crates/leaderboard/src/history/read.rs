//! Running the statements of `/api/score_history` and adding up their rows as they stream.

use crate::db::{Db, DbError};
use crate::history::buckets::{bucket_of, Buckets};
use crate::history::scope::{History, HistoryScope};
use crate::history::sql::{HISTORY, HISTORY_EXTENT, HISTORY_MEDIANS};
use crate::history::sums::{float8_add, float8_div, HistorySums};
use crate::params::Params;
use crate::rollups::sql::{settle_rate, settle_seconds};
use futures_util::TryStreamExt;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};

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
/// [`history_regions`](crate::history::history_regions)), it is counted again with the uncounted events, and `scope` says
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
    /// The region's key (`regions.id`), see [`history_regions`](crate::history::history_regions).
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
/// [`recount_marker`](crate::rollups::sql::recount_marker)) is dropped at its first row and run again with the uncounted events.
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
/// they stream in; `None` at the [`recount_marker`](crate::rollups::sql::recount_marker)'s row.
pub(crate) async fn add_up_history(
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

/// The AI median per bucket start of a score_history request over a [`HistoryScope`] (see
/// [`HISTORY_MEDIANS`]); a bucket without successful round trips is absent. One row per
/// bucket; a statement that finds a recount under way which `scope` did not expect (see
/// [`recount_marker`](crate::rollups::sql::recount_marker)) is run again with the uncounted events.
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
