//! The route table and the rules every route shares (methods, preflight, errors).

mod aggregated_stats;
mod health;
mod pipelines;
mod post_stats;
mod raw_stats;
mod regions;
mod score_history;
mod top_ai_score;

use crate::app::App;
use crate::web::ApiError;
use crate::web::{self, Request, Response};
use ::http::Method;
use bytes::Bytes;

/// Every route of the API; `api/<name>.rs` exists for each and the local server serves
/// each at `/api/<name>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    AggregatedStats,
    Health,
    Pipelines,
    PostStats,
    RawStats,
    Regions,
    ScoreHistory,
    TopAiScore,
}

impl Route {
    pub const ALL: &'static [Route] = &[
        Route::AggregatedStats,
        Route::Health,
        Route::Pipelines,
        Route::PostStats,
        Route::RawStats,
        Route::Regions,
        Route::ScoreHistory,
        Route::TopAiScore,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Route::AggregatedStats => "aggregated_stats",
            Route::Health => "health",
            Route::Pipelines => "pipelines",
            Route::PostStats => "post_stats",
            Route::RawStats => "raw_stats",
            Route::Regions => "regions",
            Route::ScoreHistory => "score_history",
            Route::TopAiScore => "top_ai_score",
        }
    }

    /// The route served at `path` (`/api/<name>`, a trailing slash tolerated).
    pub fn from_path(path: &str) -> Option<Route> {
        let name = path.strip_prefix("/api/")?.trim_end_matches('/');
        Route::ALL.iter().copied().find(|r| r.name() == name)
    }

    fn is_write(self) -> bool {
        self == Route::PostStats
    }

    fn allow(self) -> &'static str {
        if self.is_write() {
            "POST, OPTIONS"
        } else {
            "GET, HEAD, OPTIONS"
        }
    }

    fn accepts(self, method: &Method) -> bool {
        if self.is_write() {
            method == Method::POST
        } else {
            method == Method::GET || method == Method::HEAD
        }
    }
}

/// Runs one request through `route`: method rules, the handler, and the error mapping.
pub async fn handle(app: &App, route: Route, request: Request) -> Response {
    let method = request.method().clone();
    if method == Method::OPTIONS {
        return web::preflight();
    }
    let result = if route.accepts(&method) {
        dispatch(app, route, &request).await
    } else {
        Err(ApiError::MethodNotAllowed {
            allow: route.allow(),
        })
    };
    let mut response =
        crate::web::error::with_retry_after(result.unwrap_or_else(ApiError::into_response));
    if method == Method::HEAD {
        *response.body_mut() = Bytes::new();
    }
    response
}

async fn dispatch(app: &App, route: Route, request: &Request) -> Result<Response, ApiError> {
    match route {
        Route::AggregatedStats => aggregated_stats::get(app, request).await,
        Route::Health => health::get(app).await,
        Route::Pipelines => pipelines::get(app, request).await,
        Route::PostStats => post_stats::post(app, request).await,
        Route::RawStats => raw_stats::get(app, request).await,
        Route::Regions => regions::get(app).await,
        Route::ScoreHistory => score_history::get(app, request).await,
        Route::TopAiScore => top_ai_score::get(app, request).await,
    }
}
