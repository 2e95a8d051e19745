//! POST /api/post_stats: the job testers' write path.

use crate::app::App;
use crate::auth;
use crate::error::ApiError;
use crate::http::{self, Request, Response};
use crate::stats::Stat;
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
    // Written with whatever other posts are waiting (crate::ingest); `ok` once committed.
    let bytes = request.body().len();
    app.ingest.store(region.key, stat, bytes).await?;
    Ok(http::text_ok("ok"))
}
