//! GET /api/raw_stats: one orchestrator's stats as stored, per region, newest first.

use crate::app::App;
use crate::params::Params;
use crate::reads;
use crate::web::ApiError;
use crate::web::{self, Request, Response};
use std::collections::BTreeMap;

pub async fn get(app: &App, request: &Request) -> Result<Response, ApiError> {
    let params = Params::raw_stats(
        request.uri().query(),
        crate::now(),
        app.config.start_time_window,
    )?;
    if params.is_empty() {
        return web::json(&BTreeMap::<String, ()>::new());
    }
    web::json(&reads::raw_stats(&app.db, &params).await?)
}
