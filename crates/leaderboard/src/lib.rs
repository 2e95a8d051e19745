//! Livepeer Leaderboard API: everything the routes need, independent of the transport.
//! The same handlers run in each Vercel function (`vercel`), in the local server
//! (`server`) and in the tests.
//!
//! One module per part, each with its SQL beside it (docs/architecture.md):
//! - `routes`: one module per route, parse → read or write → score → answer;
//! - `params`: the query parameters; `web`: headers, errors, bodies, JSON;
//! - `regions`: the registered regions and the Catalyst sync;
//! - `ingest`: the post path (the body, its key, its freshness, group commit, receipts);
//! - `reads`: the leaderboard's reads; `history`: score history; `rollups`: the pre-summed
//!   buckets both read; `score`: the scores, pure;
//! - `schema`: migrations, the online backfill and its finish; `removal`: stepped deletes;
//! - `db`: the pool, its errors, TLS and the SQL pieces every part shares.

pub mod app;
pub mod auth;
pub mod cache;
pub mod config;
pub mod db;
pub mod history;
pub mod ingest;
pub mod logging;
pub mod model;
pub mod params;
pub mod reads;
pub mod regions;
pub mod removal;
pub mod rollups;
pub mod routes;
pub mod schema;
pub mod score;
pub mod server;
pub mod vercel;
pub mod web;

pub use app::App;
pub use config::Config;
pub use routes::Route;

/// The current time as Unix seconds, the unit of the `since`/`until` parameters.
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
