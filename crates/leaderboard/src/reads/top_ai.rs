//! The SQL of `/api/top_ai_score`: one orchestrator's best AI group in a window.

use crate::db::{Db, DbError};
use crate::params::{JobType, Params};
use crate::reads::filter::{Rollup, PARTS};
use crate::rollups::sql::{recount_checked, recount_marker, settle_rate, settle_seconds};
use once_cell::sync::Lazy;

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
