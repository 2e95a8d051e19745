//! GET /api/regions

use crate::app::App;
use crate::model::Regions;
use crate::web::ApiError;
use crate::web::{self, Response};

pub async fn get(app: &App) -> Result<Response, ApiError> {
    let regions = app.regions().await?;
    web::json(&Regions { regions: &regions })
}
