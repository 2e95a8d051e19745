//! The averages per (orchestrator, region) behind `/api/aggregated_stats`.

use crate::db::{Db, DbError};
use crate::params::Params;
use crate::reads::filter::{Rollup, PARTS};
use crate::rollups::sql::{recount_checked, recount_marker, settle_rate, settle_seconds};
use once_cell::sync::Lazy;

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
