//! The SQL of `/api/pipelines`: the AI pipelines in a window with their models and regions.

use crate::db::sql::scope;
use crate::db::{Db, DbError};
use crate::params::Params;
use crate::reads::filter::Rollup;
use crate::rollups::plan::SPANS;
use crate::rollups::sql::{bucket_arms, edge_text, raw_edges, recount_checked, recount_marker};
use once_cell::sync::Lazy;
use std::collections::{BTreeMap, BTreeSet};

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
