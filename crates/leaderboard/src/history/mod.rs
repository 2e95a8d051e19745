//! `/api/score_history`: the leaderboard over time. The buckets of a window (`buckets`,
//! pure), what a request reads (`scope`), its statements (`sql`), running them and adding
//! their rows up as they stream (`read`, `sums`).

pub mod buckets;
pub mod read;
pub mod scope;
pub mod sql;
pub mod sums;

pub use buckets::{bucket_of, too_many_points, Buckets, MAX_POINTS};
pub use read::{history_averages, history_extent, history_medians, BucketAverages, HistoryExtent};
pub use scope::{history_regions, HistoryScope};
