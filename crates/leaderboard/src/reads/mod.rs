//! The leaderboard's reads: the averages behind `/api/aggregated_stats`, the AI median,
//! an orchestrator's best AI group, the AI pipelines, and the raw rows of `/api/raw_stats`.
//! Each module holds its statements; `filter` the filters and rollup parts they share.

pub mod averages;
pub mod filter;
pub mod median;
pub mod pipelines;
pub mod raw;
pub mod top_ai;

pub use averages::{group_averages, GroupAverages};
pub use median::median_round_trip;
pub use pipelines::pipelines;
pub use raw::raw_stats;
pub use top_ai::best_ai_group;
