//! GET /api/regions

use crate::app::App;
use crate::error::ApiError;
use crate::http::{self, Response};
use crate::model::Regions;

pub async fn get(app: &App) -> Result<Response, ApiError> {
    let regions = app.regions().await?;
    http::json(&Regions { regions: &regions })
}
