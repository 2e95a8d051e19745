//! Reading a request body, bounded: no request can make a process hold more than
//! `BODY_LIMIT` of it.

use crate::web::error::ApiError;
use bytes::Bytes;
use http_body_util::BodyExt;

/// post_stats bodies are a few hundred bytes; 1 MiB leaves room and bounds memory.
pub const BODY_LIMIT: usize = 1024 * 1024;

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
