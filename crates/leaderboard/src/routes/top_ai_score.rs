//! GET /api/top_ai_score: an orchestrator's best AI group and its leaderboard score.

use super::aggregated_stats::leaderboard;
use crate::app::App;
use crate::error::ApiError;
use crate::http::{self, Request, Response};
use crate::model::TopAiScore;
use crate::query::Params;
use crate::store;
use serde_json::json;

pub async fn get(app: &App, request: &Request) -> Result<Response, ApiError> {
    let now = crate::now();
    let window = app.config.start_time_window;
    let params = Params::top_ai_score(request.uri().query(), now, window);
    let Some(orchestrator) = params.orchestrator.clone() else {
        return http::json(&json!({}));
    };
    let Some((region, model, pipeline)) = store::best_ai_group(&app.db, &params).await? else {
        return http::json(&json!({}));
    };
    // The score as /api/aggregated_stats gives it for that model and pipeline: default
    // window, every region and orchestrator in the median.
    let mut board_params = Params::top_ai_score(None, now, window);
    board_params.model = Some(model.clone());
    board_params.pipeline = Some(pipeline.clone());
    let board = leaderboard(app, &board_params).await?;
    match board
        .get(&orchestrator)
        .and_then(|regions| regions.get(&region))
    {
        Some(scores) => http::json(&TopAiScore {
            region,
            orchestrator,
            value: scores.score,
            model,
            pipeline,
        }),
        None => http::json(&json!({})),
    }
}
