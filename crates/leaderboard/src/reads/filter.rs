//! A query's filters as SQL values, and the statement parts that read its window from the
//! rollups, shared by the leaderboard's reads.

use crate::db::sql::{float8, int8, scope, text, Param};
use crate::params::{JobType, Params};
use crate::rollups::plan::{Plan, SPANS};
use crate::rollups::sql::{bucket_arms, edge_field, edge_text, raw_edges};
use once_cell::sync::Lazy;

/// The filters of one query, as SQL parameters.
pub(crate) struct Filter<'a> {
    pub(crate) job_type: &'static str,
    pub(crate) region: Option<&'a str>,
    pub(crate) since: Option<f64>,
    pub(crate) until: Option<f64>,
    pub(crate) model: Option<&'a str>,
    pub(crate) pipeline: Option<&'a str>,
    pub(crate) orchestrator: Option<&'a str>,
}

impl<'a> Filter<'a> {
    /// Without an explicit `until` there is no upper bound: "until now" is every stored
    /// row, and not comparing with this instance's clock keeps a just-committed row
    /// visible despite clock skew between the function and the database.
    pub(crate) fn of(params: &'a Params) -> Filter<'a> {
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

/// The events of a window as partial sums per group, from the buckets of migration V4
/// and the raw events at the edges. Parameters after [`scope!`]: $3 model and $4 pipeline
/// ('' for transcoding, NULL for any), $5 orchestrator, then the plan ([`Rollup::values`]).
pub(crate) static PARTS: Lazy<[String; 2]> = Lazy::new(|| {
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
pub(crate) struct Rollup<'a> {
    pub(crate) job_type: &'static str,
    pub(crate) region: Option<&'a str>,
    pub(crate) model: Option<&'a str>,
    pub(crate) pipeline: Option<&'a str>,
    pub(crate) orchestrator: Option<&'a str>,
    pub(crate) plan: Plan,
}

impl<'a> Rollup<'a> {
    /// The leaderboard groups of `params`: transcoding rows carry no model or pipeline.
    pub(crate) fn of(params: &'a Params) -> Rollup<'a> {
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
    pub(crate) fn plan_values(&self) -> Vec<Param<'_>> {
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

    pub(crate) fn values(&self) -> Vec<Param<'_>> {
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
    pub(crate) fn pipeline_values(&self) -> Vec<Param<'_>> {
        let mut values = vec![text(&self.job_type), text(&self.region)];
        values.extend(self.plan_values());
        values
    }
}
