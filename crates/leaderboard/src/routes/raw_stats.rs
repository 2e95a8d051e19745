//! GET /api/raw_stats: one orchestrator's stats as stored, per region, newest first.

use crate::app::App;
use crate::error::ApiError;
use crate::http::{self, Request, Response};
use crate::query::Params;
use crate::store;
use std::collections::BTreeMap;

pub async fn get(app: &App, request: &Request) -> Result<Response, ApiError> {
    let params = Params::raw_stats(
        request.uri().query(),
        crate::now(),
        app.config.start_time_window,
    )?;
    if params.is_empty() {
        return http::json(&BTreeMap::<String, ()>::new());
    }
    http::json(&store::raw_stats(&app.db, &params).await?)
}
