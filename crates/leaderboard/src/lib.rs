//! Livepeer Leaderboard API: everything the routes need, independent of the transport.
//! The same handlers run in each Vercel function (`vercel`), in the local server
//! (`server`) and in the tests.

pub mod app;
pub mod cache;
pub mod config;
pub mod db;
pub mod error;
pub mod http;
pub mod logging;
pub mod migrate;
pub mod model;
pub mod routes;
pub mod server;
pub mod store;
pub mod tls;
pub mod vercel;

pub use app::App;
pub use config::Config;
pub use routes::Route;
