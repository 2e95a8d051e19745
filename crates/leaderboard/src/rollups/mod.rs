//! The pre-summed buckets of migration V4 that the leaderboard and score history read:
//! which buckets answer a window (`plan`, pure) and the SQL that reads them with the
//! events they do not hold yet (`sql`).

pub mod plan;
pub mod sql;

pub use plan::{Plan, SPANS};
