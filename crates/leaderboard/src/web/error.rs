//! The one error type of the service and its mapping to HTTP.

use crate::web::response::{response, Response};
use http::{HeaderValue, StatusCode};

/// `Retry-After` of every 503, in seconds. A restart or failover of the database takes
/// a few seconds (2 s here, see bench/fault.sh), and a client that waits that long
/// neither hammers a database that is coming back nor loses much time once it is.
pub const RETRY_AFTER_SECONDS: u32 = 2;

/// Every way a request can fail. The status code, the JSON body and the headers of an
/// error are decided here and nowhere else.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("request can not be authenticated")]
    Unauthenticated,
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed { allow: &'static str },
    #[error("request body too large")]
    PayloadTooLarge,
    /// The database is unreachable, misconfigured or slower than `DB_TIMEOUT`: retryable.
    #[error("{0}")]
    Unavailable(String),
    /// A bug or an unexpected database answer; the details go to the log only.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthenticated => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn into_response(self) -> Response {
        match &self {
            ApiError::Internal(detail) => tracing::error!(%detail, "internal error"),
            ApiError::Unavailable(detail) => tracing::warn!(%detail, "database unavailable"),
            _ => tracing::debug!(error = %self, "request refused"),
        }
        let body = serde_json::json!({ "error": self.to_string() });
        let mut response = response(
            self.status(),
            "application/json",
            "no-store",
            body.to_string().into(),
        );
        if let ApiError::MethodNotAllowed { allow } = self {
            response
                .headers_mut()
                .insert(http::header::ALLOW, HeaderValue::from_static(allow));
        }
        with_retry_after(response)
    }
}

/// Adds `Retry-After` to a 503, whichever handler built it (`/api/health` builds its own);
/// every answer passes here (`routes::handle`).
pub fn with_retry_after(mut response: Response) -> Response {
    if response.status() == StatusCode::SERVICE_UNAVAILABLE {
        response.headers_mut().insert(
            http::header::RETRY_AFTER,
            HeaderValue::from(RETRY_AFTER_SECONDS),
        );
    }
    response
}

impl From<crate::db::DbError> for ApiError {
    fn from(e: crate::db::DbError) -> Self {
        use crate::db::DbError;
        match e {
            DbError::Internal(detail) => ApiError::Internal(detail),
            other => ApiError::Unavailable(other.to_string()),
        }
    }
}
