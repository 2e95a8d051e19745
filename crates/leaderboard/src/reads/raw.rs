//! The SQL of `/api/raw_stats`: one orchestrator's stored rows, passed through as stored.

use crate::db::sql::{float8, scope, text};
use crate::db::{Db, DbError};
use crate::params::Params;
use crate::reads::filter::Filter;
use futures_util::TryStreamExt;
use serde_json::value::RawValue;
use std::collections::BTreeMap;

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
