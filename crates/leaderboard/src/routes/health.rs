//! GET /api/health: the database answers and the schema is migrated.

use crate::app::App;
use crate::error::ApiError;
use crate::http::{self, Response};
use crate::{migrate, store};
use ::http::StatusCode;
use serde_json::json;

pub async fn get(app: &App) -> Result<Response, ApiError> {
    let latest = migrate::latest_version();
    let checked = match app.db.migrations().await {
        Ok(state) => store::ping(&app.db).await.map(|()| state.clone()),
        Err(e) => Err(e),
    };
    match checked {
        Ok(state) => http::json_status(
            StatusCode::OK,
            &json!({
                "postgres": { "ok": true },
                "migrations": { "ok": true, "version": state.version, "latest": latest,
                                "applied_at_start": state.applied_now,
                                "adopted_golang_migrate_version": state.adopted_golang_migrate_version },
            }),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "health check failed");
            http::json_status(
                StatusCode::SERVICE_UNAVAILABLE,
                &json!({
                    "postgres": { "ok": false, "error": e.to_string() },
                    "migrations": { "ok": false, "latest": latest },
                }),
            )
        }
    }
}
