//! Building answers: the headers every answer carries, the CORS preflight, the types
//! every handler takes and gives back.

use bytes::Bytes;
use http::header::{HeaderValue, ACCESS_CONTROL_ALLOW_ORIGIN, CACHE_CONTROL, CONTENT_TYPE};
use http::StatusCode;

/// What every handler takes: the request with its body already read and bounded.
pub type Request = http::Request<Bytes>;
/// What every handler gives back, whichever door the request came through.
pub type Response = http::Response<Bytes>;

/// Cache policy of successful GET answers (the Explorer's CDN caches them briefly).
pub const CACHE_PUBLIC: &str = "public, max-age=30, stale-while-revalidate=15";

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
