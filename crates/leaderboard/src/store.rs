//! Every SQL statement of the service, typed in and out; handlers never hold SQL.

use crate::db::{Db, DbError};
use crate::model::Region;
use crate::query::Params;
use crate::stats::Stat;
use serde_json::Value;
use std::collections::BTreeMap;

/// All regions with their job type, in the order they were created.
pub async fn regions(db: &Db) -> Result<Vec<Region>, DbError> {
    let client = db.client().await?;
    let rows = db
        .timed(client.query(
            "SELECT r.id, r.name, r.display_name, j.name \
               FROM regions r JOIN job_types j ON j.id = r.job_type_id \
              ORDER BY r.id",
            &[],
        ))
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

/// A round trip to the database, for health checks.
pub async fn ping(db: &Db) -> Result<(), DbError> {
    let client = db.client().await?;
    db.timed(client.simple_query("SELECT 1")).await?;
    Ok(())
}

/// Stores one stat; returns once the row is committed (the statement runs in autocommit).
pub async fn insert_event(db: &Db, region_key: i32, stat: &Stat) -> Result<(), DbError> {
    let client = db.client().await?;
    db.timed(client.execute(
        "INSERT INTO events (orchestrator, region_id, payload) VALUES ($1, $2, $3)",
        &[&stat.orchestrator, &region_key, &stat.payload],
    ))
    .await?;
    Ok(())
}

/// The lower and upper `event_time` bounds of a query, as Unix seconds. Without an explicit
/// `until` there is no upper bound: "until now" is every stored row, and not comparing with
/// this instance's clock keeps a just-committed row visible despite clock skew.
fn bounds(params: &Params) -> (Option<f64>, Option<f64>) {
    (params.window.since, params.until)
}

/// One orchestrator's stored stats per region, newest first.
pub async fn raw_stats(db: &Db, params: &Params) -> Result<BTreeMap<String, Vec<Value>>, DbError> {
    let (since, until) = bounds(params);
    let client = db.client().await?;
    let rows = db
        .timed(client.query(
            "SELECT r.name, e.payload \
               FROM events e \
               JOIN regions r ON r.id = e.region_id \
               JOIN job_types j ON j.id = r.job_type_id \
              WHERE e.orchestrator = $1 \
                AND j.name = $2 \
                AND ($3::text IS NULL OR upper(r.name) = $3) \
                AND ($4::float8 IS NULL OR e.event_time >= to_timestamp($4)) \
                AND ($5::float8 IS NULL OR e.event_time <= to_timestamp($5)) \
                AND ($6::text IS NULL OR e.payload ->> 'model' = $6) \
                AND ($7::text IS NULL OR e.payload ->> 'pipeline' = $7) \
              ORDER BY e.event_time DESC, e.id DESC",
            &[
                &params.orchestrator,
                &params.job_type.as_str(),
                &params.region,
                &since,
                &until,
                &params.model,
                &params.pipeline,
            ],
        ))
        .await?;
    let mut by_region: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for row in rows {
        by_region.entry(row.get(0)).or_default().push(row.get(1));
    }
    Ok(by_region)
}
