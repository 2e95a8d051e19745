//! Transport-independent HTTP plumbing: body limit, response building, the common headers.

use crate::error::ApiError;
use bytes::Bytes;
use http::header::{HeaderValue, ACCESS_CONTROL_ALLOW_ORIGIN, CACHE_CONTROL, CONTENT_TYPE};
use http::StatusCode;
use http_body_util::BodyExt;
use serde::Serialize;

/// What every handler takes: the request with its body already read and bounded.
pub type Request = http::Request<Bytes>;
/// What every handler gives back, whichever door the request came through.
pub type Response = http::Response<Bytes>;

/// post_stats bodies are a few hundred bytes; 1 MiB leaves room and bounds memory.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// Cache policy of successful GET answers (the Explorer's CDN caches them briefly).
pub const CACHE_PUBLIC: &str = "public, max-age=30, stale-while-revalidate=15";

/// Reads a request body, refusing with 413 as soon as it passes `BODY_LIMIT`.
pub async fn read_body<B>(headers: &http::HeaderMap, body: B) -> Result<Bytes, ApiError>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > BODY_LIMIT as u64) {
        return Err(ApiError::PayloadTooLarge);
    }
    match http_body_util::Limited::new(body, BODY_LIMIT)
        .collect()
        .await
    {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ApiError::PayloadTooLarge),
        Err(e) => Err(ApiError::BadRequest(format!(
            "could not read request body: {e}"
        ))),
    }
}

/// A response with the headers every answer carries.
pub fn response(
    status: StatusCode,
    content_type: &'static str,
    cache: &'static str,
    body: Bytes,
) -> Response {
    let mut response = http::Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}

/// A successful GET answer. Maps inside `value` must be ordered (BTreeMap) so equal data
/// gives byte-equal output.
pub fn json<T: Serialize>(value: &T) -> Result<Response, ApiError> {
    let body = serde_json::to_vec(value)
        .map_err(|e| ApiError::Internal(format!("serialising a response: {e}")))?;
    Ok(response(
        StatusCode::OK,
        "application/json",
        CACHE_PUBLIC,
        body.into(),
    ))
}

/// A JSON answer with another status and no caching (health when the database is down).
pub fn json_status<T: Serialize>(status: StatusCode, value: &T) -> Result<Response, ApiError> {
    let body = serde_json::to_vec(value)
        .map_err(|e| ApiError::Internal(format!("serialising a response: {e}")))?;
    Ok(response(
        status,
        "application/json",
        "no-store",
        body.into(),
    ))
}

/// The answer to a CORS preflight, the same for every route.
pub fn preflight() -> Response {
    let mut response = http::Response::new(Bytes::new());
    *response.status_mut() = StatusCode::NO_CONTENT;
    let headers = response.headers_mut();
    headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    headers.insert(
        "access-control-allow-methods",
        HeaderValue::from_static("POST, GET, OPTIONS, PUT, DELETE"),
    );
    headers.insert(
        "access-control-allow-headers",
        HeaderValue::from_static(
            "Accept, Content-Type, Content-Length, Accept-Encoding, X-CSRF-Token, Authorization",
        ),
    );
    response
}
