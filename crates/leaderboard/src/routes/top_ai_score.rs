//! GET /api/top_ai_score: an orchestrator's best AI group and its leaderboard score.

use crate::app::App;
use crate::model::TopAiScore;
use crate::params::Params;
use crate::reads;
use crate::score;
use crate::web::ApiError;
use crate::web::{self, Request, Response};
use serde_json::json;

pub async fn get(app: &App, request: &Request) -> Result<Response, ApiError> {
    let now = crate::now();
    let window = app.config.start_time_window;
    let params = Params::top_ai_score(request.uri().query(), now, window)?;
    let Some(orchestrator) = params.orchestrator.clone() else {
        return web::json(&json!({}));
    };
    let Some((region, model, pipeline, success_rate, round_trip_time)) =
        reads::best_ai_group(&app.db, &params).await?
    else {
        return web::json(&json!({}));
    };
    // Scored as /api/aggregated_stats scores that model and pipeline: default window,
    // the median over every region and orchestrator.
    let mut scope = Params::top_ai_score(None, now, window)?;
    scope.model = Some(model.clone());
    scope.pipeline = Some(pipeline.clone());
    let median = reads::median_round_trip(&app.db, &scope).await?;
    web::json(&TopAiScore {
        region,
        orchestrator,
        value: score::ai(success_rate, round_trip_time, median).score,
        model,
        pipeline,
    })
}
