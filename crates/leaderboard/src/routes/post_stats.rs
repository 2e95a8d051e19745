//! POST /api/post_stats: the job testers' write path. A body counts once (its digest is
//! its receipt), every stored row records the key that let it in, and with `POST_MAX_AGE`
//! set a stale body is refused.

use crate::app::App;
use crate::auth;
use crate::ingest::freshness;
use crate::ingest::stat::Stat;
use crate::ingest::Post;
use crate::web::ApiError;
use crate::web::{self, Request, Response};
use ::http::header::AUTHORIZATION;

pub async fn post(app: &App, request: &Request) -> Result<Response, ApiError> {
    let keys = app.config.post_keys();
    if keys.iter().all(Option::is_none) {
        tracing::warn!("neither SECRET nor EXTRA_SECRETS is set: post_stats refuses every post");
        return Err(ApiError::Unauthenticated);
    }
    let signature = request.headers().get(AUTHORIZATION).map(|v| v.as_bytes());
    // The key's position only (0: SECRET, 1…: EXTRA_SECRETS), never the key.
    let Some(key) = auth::verify_any(&keys, request.body(), signature) else {
        return Err(ApiError::Unauthenticated);
    };
    tracing::debug!(key, "post_stats signature verified");
    let stat = Stat::parse(request.body())?;
    if let Some(max_age) = app.config.post_max_age {
        freshness::check(stat.timestamp, crate::now(), max_age)?;
    }
    if stat.unscored {
        tracing::debug!(orchestrator = %stat.orchestrator, "unscored test: stored, not counted");
    }
    let region = app
        .region_for(&stat.region, stat.job_type)
        .await?
        .ok_or_else(|| {
            let (region, job_type) = (&stat.region, stat.job_type.as_str());
            ApiError::BadRequest(format!(
                "region {region} is not registered for {job_type} jobs; register it with: \
                 leaderboard region add {} --name \"…\" --type {job_type}",
                shell_word(region)
            ))
        })?;
    // Written with whatever other posts are waiting (crate::ingest); `ok` once committed,
    // or once the same body's first copy is.
    let post = Post {
        region_key: region.key,
        stat,
        digest: auth::body_digest(request.body()),
        key_id: app.post_key_ids[key].clone().unwrap_or_default(),
        bytes: request.body().len(),
    };
    app.ingest.store(post).await?;
    Ok(web::text_ok("ok"))
}

/// `word` as one shell word, quoted only when it needs to be, so the command in the
/// message can be pasted as it is.
fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.:/+@".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::shell_word;

    #[test]
    fn region_ids_in_the_hint_are_one_shell_word() {
        assert_eq!(shell_word("FRA"), "FRA");
        assert_eq!(shell_word("NEW YORK"), "'NEW YORK'");
        assert_eq!(shell_word("O'HARE"), "'O'\\''HARE'");
        assert_eq!(shell_word("$(X)"), "'$(X)'");
    }
}
