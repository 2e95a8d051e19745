//! JSON answers: a value serialized with the common headers.

use crate::web::error::ApiError;
use crate::web::response::{response, Response, CACHE_PUBLIC};
use http::StatusCode;
use serde::Serialize;

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
