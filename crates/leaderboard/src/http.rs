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

/// How much of an oversized body is read and thrown away before answering 413: a client
/// still sending when the connection closes sees a broken pipe instead of the answer.
const DRAIN_LIMIT: usize = 16 * BODY_LIMIT;

/// How long draining an oversized body may take.
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(5);

/// Reads a request body, refusing with 413 once it passes `BODY_LIMIT`.
pub async fn read_body<B>(headers: &http::HeaderMap, body: B) -> Result<Bytes, ApiError>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: std::fmt::Display,
{
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > DRAIN_LIMIT as u64) {
        return Err(ApiError::PayloadTooLarge);
    }
    let mut body = std::pin::pin!(body);
    let mut collected = bytes::BytesMut::new();
    let mut seen = 0usize;
    let read_all = async {
        while let Some(frame) = body.frame().await {
            let frame = frame
                .map_err(|e| ApiError::BadRequest(format!("could not read request body: {e}")))?;
            if let Ok(data) = frame.into_data() {
                seen = seen.saturating_add(data.len());
                if seen > DRAIN_LIMIT {
                    break;
                }
                if seen <= BODY_LIMIT {
                    collected.extend_from_slice(&data);
                }
            }
        }
        Ok(())
    };
    match tokio::time::timeout(DRAIN_TIME, read_all).await {
        Ok(Ok(())) if seen <= BODY_LIMIT => Ok(collected.freeze()),
        Ok(Err(e)) => Err(e),
        _ if seen > BODY_LIMIT => Err(ApiError::PayloadTooLarge),
        _ => Err(ApiError::BadRequest(
            "request body arrived too slowly".into(),
        )),
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

/// A plain-text success that no cache may keep (post_stats' `ok`).
pub fn text_ok(text: &'static str) -> Response {
    response(
        StatusCode::OK,
        "text/plain",
        "no-store",
        Bytes::from_static(text.as_bytes()),
    )
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
