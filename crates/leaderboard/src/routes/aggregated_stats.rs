//! GET /api/aggregated_stats: the Explorer's leaderboard, scored per orchestrator and region.

use crate::app::App;
use crate::db::DbError;
use crate::model::Leaderboard;
use crate::params::{JobType, Params};
use crate::reads;
use crate::score;
use crate::web::ApiError;
use crate::web::{self, Request, Response};

pub async fn get(app: &App, request: &Request) -> Result<Response, ApiError> {
    let params = Params::aggregated_stats(
        request.uri().query(),
        crate::now(),
        app.config.start_time_window,
    )?;
    web::json(&leaderboard(app, &params).await?)
}

/// Scores every (orchestrator, region) group of `params`. The AI median covers every
/// orchestrator, so the orchestrator filter only narrows which groups are returned.
async fn leaderboard(app: &App, params: &Params) -> Result<Leaderboard, DbError> {
    let mut board = Leaderboard::new();
    if params.is_empty() {
        return Ok(board);
    }
    let (groups, median) = match params.job_type {
        JobType::Transcoding => (reads::group_averages(&app.db, params).await?, None),
        JobType::Ai => tokio::try_join!(
            reads::group_averages(&app.db, params),
            reads::median_round_trip(&app.db, params)
        )?,
    };
    for g in groups {
        let scores = match params.job_type {
            JobType::Transcoding => {
                score::transcoding(g.success_rate, g.round_trip_time, g.seg_duration)
            }
            JobType::Ai => score::ai(g.success_rate, g.round_trip_time, median),
        };
        board
            .entry(g.orchestrator)
            .or_default()
            .insert(g.region, scores);
    }
    Ok(board)
}
