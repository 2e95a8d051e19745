//! GET /api/pipelines: the AI pipelines tested in the window, with models and regions.

use crate::app::App;
use crate::model::Pipelines;
use crate::params::Params;
use crate::reads;
use crate::web::ApiError;
use crate::web::{self, Request, Response};

pub async fn get(app: &App, request: &Request) -> Result<Response, ApiError> {
    let params = Params::pipelines(
        request.uri().query(),
        crate::now(),
        app.config.start_time_window,
    )?;
    let key = params.cache_key();
    if let Some(cached) = app.pipelines.get(&key) {
        return web::json(&cached);
    }
    let pipelines = if params.is_empty() {
        Vec::new()
    } else {
        reads::pipelines(&app.db, &params).await?
    };
    let answer = Pipelines { pipelines };
    app.pipelines.put(key, answer.clone());
    web::json(&answer)
}
