//! The local all-in-one server: every route on one listener, through the same handlers.

use crate::app::App;
use crate::routes::{self, Route};
use crate::web::read_body;
use crate::web::ApiError;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Answers a request for a path outside `/api/` (the local server's static files): `None`
/// gives the usual 404. A plain function, so the Vercel functions link nothing of it.
pub type Fallback = fn(&http::Method, &str) -> Option<http::Response<bytes::Bytes>>;

/// Serves until `shutdown` completes, then lets requests in flight finish.
pub async fn serve(app: Arc<App>, listener: TcpListener, shutdown: impl Future<Output = ()>) {
    serve_with(app, listener, None, shutdown).await;
}

/// [`serve`], with `fallback` answering the paths outside `/api/`.
pub async fn serve_with(
    app: Arc<App>,
    listener: TcpListener,
    fallback: Option<Fallback>,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let app = app.clone();
        let service = hyper::service::service_fn(move |request| {
            let app = app.clone();
            async move { Ok::<_, Infallible>(answer(&app, fallback, request).await) }
        });
        let connection = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    graceful.shutdown().await;
}

async fn answer(
    app: &App,
    fallback: Option<Fallback>,
    request: hyper::Request<Incoming>,
) -> hyper::Response<Full<bytes::Bytes>> {
    let path = request.uri().path();
    let response = match Route::from_path(path) {
        None => fallback
            .filter(|_| !path.starts_with("/api/"))
            .and_then(|f| f(request.method(), path))
            .unwrap_or_else(|| ApiError::NotFound.into_response()),
        Some(route) => {
            let (parts, body) = request.into_parts();
            match read_body(&parts.headers, body).await {
                Ok(bytes) => {
                    routes::handle(app, route, http::Request::from_parts(parts, bytes)).await
                }
                Err(e) => e.into_response(),
            }
        }
    };
    response.map(Full::new)
}
