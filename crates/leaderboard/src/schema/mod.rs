//! The database's schema: the embedded migrations and their reviewed downs (`migrate`),
//! and the online half of V4, V5 and V7 that counts stored events into the rollups and
//! finishes with the concurrent index builds (`backfill`).

pub mod backfill;
pub mod migrate;
