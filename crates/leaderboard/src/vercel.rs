//! Runs one route as a Vercel function with the official runtime.

use crate::app::App;
use crate::routes::{self, Route};
use crate::web::{read_body, Response};
use std::future::Future;
use std::pin::Pin;
use vercel_runtime::{Error, Request};

type Answer = Pin<Box<dyn Future<Output = Result<Response, Error>> + Send>>;

/// The whole of an `api/<name>.rs` file: serve `route` for as long as Vercel keeps the
/// instance.
pub async fn run(route: Route) -> Result<(), Error> {
    tokio::spawn(App::global().warm_up());
    vercel_runtime::run(vercel_runtime::service_fn(
        move |request: Request| -> Answer { Box::pin(answer(route, request)) },
    ))
    .await
}

async fn answer(route: Route, request: Request) -> Result<Response, Error> {
    let app = App::global();
    let (parts, body) = request.into_parts();
    Ok(match read_body(&parts.headers, body).await {
        Ok(bytes) => routes::handle(app, route, http::Request::from_parts(parts, bytes)).await,
        Err(e) => e.into_response(),
    })
}
