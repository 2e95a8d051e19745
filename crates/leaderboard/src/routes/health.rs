//! GET /api/health: the database answers and the schema is migrated; how far the online
//! part of an upgrade (the backfill of V4 and V5, the index builds of V4 and V7) has got.

use crate::app::App;
use crate::schema::migrate;
use crate::web::ApiError;
use crate::web::{self, Response};
use ::http::StatusCode;
use serde_json::json;

pub async fn get(app: &App) -> Result<Response, ApiError> {
    let latest = migrate::latest_version();
    let checked = match app.db.migrations().await {
        Ok(state) => match app.db.backfill_progress().await {
            Ok(backfill) => Ok((state.clone(), backfill)),
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    match checked {
        Ok((state, backfill)) => web::json_status(
            StatusCode::OK,
            &json!({
                "postgres": { "ok": true },
                "migrations": { "ok": true, "version": state.version, "latest": latest,
                                "applied_at_start": state.applied_now,
                                "adopted_golang_migrate_version": state.adopted_golang_migrate_version },
                "backfill": backfill.map(|b| json!({
                    "complete": b.complete, "rows_done": b.rows_done, "ids_total": b.ids_total,
                    "ids_left": b.ids_left, "fraction_done": b.fraction_done(),
                    "index_ready": b.index_ready, "finished": b.finished,
                })),
            }),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "health check failed");
            web::json_status(
                StatusCode::SERVICE_UNAVAILABLE,
                &json!({
                    "postgres": { "ok": false, "error": e.to_string() },
                    "migrations": { "ok": false, "latest": latest },
                }),
            )
        }
    }
}
