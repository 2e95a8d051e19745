//! The AI leaderboard's median round trip, the reference of its round-trip score.

use crate::db::sql::{float8, pending, scope, text};
use crate::db::{Db, DbError};
use crate::params::{JobType, Params};
use crate::reads::filter::Filter;

/// The continuous median of round_trip_time over the successful AI events (success_rate
/// 1, round_trip_time not 0) of every orchestrator in the query's window, region, model
/// and pipeline; `None` when there are none. Taken over `ai_round_trips` plus the events
/// the backfill has not counted yet (see [`raw_edges`](crate::rollups::sql::raw_edges)).
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
