//! POST /api/post_stats: the job testers' write path.

use crate::app::App;
use crate::error::ApiError;
use crate::http::{self, Request, Response};
use crate::stats::Stat;
use crate::{auth, store};
use ::http::header::AUTHORIZATION;

pub async fn post(app: &App, request: &Request) -> Result<Response, ApiError> {
    let Some(secret) = app.config.secret.as_deref() else {
        tracing::warn!("SECRET is not set: post_stats refuses every post");
        return Err(ApiError::Unauthenticated);
    };
    let signature = request.headers().get(AUTHORIZATION).map(|v| v.as_bytes());
    if !auth::verify(secret, request.body(), signature) {
        return Err(ApiError::Unauthenticated);
    }
    let stat = Stat::parse(request.body())?;
    let region = app
        .region_for(&stat.region, stat.job_type)
        .await?
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "region {} is not registered for {} stats",
                stat.region,
                stat.job_type.as_str()
            ))
        })?;
    store::insert_event(&app.db, region.key, &stat).await?;
    Ok(http::text_ok("ok"))
}
