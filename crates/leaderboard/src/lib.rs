//! Livepeer Leaderboard API: everything the routes need, independent of the transport.
//! The same handlers run in each Vercel function (`vercel`), in the local server
//! (`server`) and in the tests.

pub mod app;
pub mod auth;
pub mod backfill;
pub mod cache;
pub mod catalyst;
pub mod config;
pub mod db;
pub mod db_error;
pub mod error;
pub mod freshness;
pub mod history;
pub mod http;
pub mod ingest;
pub mod logging;
pub mod migrate;
pub mod model;
pub mod query;
pub mod removal;
pub mod rollup;
pub mod routes;
pub mod score;
pub mod server;
pub mod stats;
pub mod store;
pub mod tls;
pub mod vercel;

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
