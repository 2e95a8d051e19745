//! The `leaderboard` commands, one module each.

pub(crate) mod events;
pub(crate) mod keys;
pub(crate) mod migrate;
pub(crate) mod region;
pub(crate) mod seed;
pub(crate) mod serve;
pub(crate) mod sign;
