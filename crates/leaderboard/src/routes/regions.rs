//! GET /api/regions

use crate::app::App;
use crate::error::ApiError;
use crate::http::{self, Response};
use crate::model::Regions;
use crate::store;

pub async fn get(app: &App) -> Result<Response, ApiError> {
    let regions = match app.regions.get(&()) {
        Some(cached) => cached,
        None => {
            let fresh = store::regions(&app.db).await?;
            app.regions.put((), fresh.clone());
            fresh
        }
    };
    http::json(&Regions { regions })
}
