//! GET /api/score_history: each orchestrator's scores per region over time, one point per
//! Unix-aligned bucket, each scored as `/api/aggregated_stats` scores that bucket alone.

use crate::app::App;
use crate::history::{self, too_many_points, Buckets, MAX_POINTS};
use crate::model::{Point, ScoreHistory};
use crate::params::{JobType, Params};
use crate::score;
use crate::web::ApiError;
use crate::web::{self, Request, Response};
use std::collections::BTreeMap;

pub async fn get(app: &App, request: &Request) -> Result<Response, ApiError> {
    let (params, interval) = Params::score_history(request.uri().query(), crate::now())?;
    let Some(buckets) = Buckets::of(&params.window, interval) else {
        return web::json(&ScoreHistory::new());
    };
    web::json(&history(app, &params, &buckets).await?)
}

/// Refuses a request whose answer could exceed [`MAX_POINTS`] before reading it, then
/// scores every (orchestrator, region, bucket) group of `params`. As in aggregated_stats,
/// the AI median of a bucket covers every orchestrator, so the orchestrator filter only
/// narrows which groups are returned.
async fn history(app: &App, params: &Params, buckets: &Buckets) -> Result<ScoreHistory, ApiError> {
    let mut answer = ScoreHistory::new();
    let (regions, pending) = history::history_regions(&app.db, params).await?;
    if regions.is_empty() {
        return Ok(answer);
    }
    let names: BTreeMap<i32, String> = regions.into_iter().collect();
    // `pending` is a first guess: each statement below checks it in its own snapshot, and
    // the extent, finding a recount that committed since, sets it for the others.
    let mut keys = history::HistoryScope {
        regions: names.keys().copied().collect(),
        pending,
    };
    // One orchestrator in a bounded window: at most one group per region, so the bound
    // is known without counting the data.
    let known = params.orchestrator.is_some()
        && buckets.fits(u64::try_from(keys.regions.len()).unwrap_or(u64::MAX));
    if !known {
        let Some(extent) = history::history_extent(&app.db, params, &mut keys, buckets).await?
        else {
            return Ok(answer);
        };
        let most = buckets.most_points(extent.groups, extent.first, extent.last);
        if most > MAX_POINTS {
            return Err(too_many_points(most));
        }
    }
    let (groups, medians) = match params.job_type {
        JobType::Transcoding => (
            history::history_averages(&app.db, params, &keys, buckets).await?,
            Default::default(),
        ),
        JobType::Ai => tokio::try_join!(
            history::history_averages(&app.db, params, &keys, buckets),
            history::history_medians(&app.db, params, &keys, buckets)
        )?,
    };
    // Sorted by orchestrator, region and time: each run is one series, in time order.
    for series in groups.chunk_by(|a, b| a.orchestrator == b.orchestrator && a.region == b.region) {
        let Some(region) = names.get(&series[0].region) else {
            continue;
        };
        let points = series
            .iter()
            .map(|g| {
                let scores = match params.job_type {
                    JobType::Transcoding => {
                        score::transcoding(g.success_rate, g.round_trip_time, g.seg_duration)
                    }
                    JobType::Ai => score::ai(
                        g.success_rate,
                        g.round_trip_time,
                        medians.get(&g.t).copied(),
                    ),
                };
                Point {
                    t: g.t,
                    tests: g.tests,
                    success_rate: scores.success_rate,
                    round_trip_score: scores.round_trip_score,
                    score: scores.score,
                }
            })
            .collect();
        // A series of its own: the scope is of one job type, where region names are
        // unique, so no two keys share a name.
        answer
            .entry(series[0].orchestrator.clone())
            .or_default()
            .insert(region.clone(), points);
    }
    Ok(answer)
}
