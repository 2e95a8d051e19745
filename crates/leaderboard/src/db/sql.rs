//! The SQL pieces every part's statements share: parameters sent with their types, and
//! the two subqueries most statements start from.
//!
//! Statements go out with their parameter types (`query_typed`), as one unnamed
//! statement per round trip: behind a transaction pooler (PgBouncer, Neon's or Supabase's
//! pooled endpoints) consecutive messages of one client reach different server
//! connections, where a named prepared statement would be missing or already taken.

use tokio_postgres::types::{ToSql, Type};

/// A parameter and the type it is sent as.
pub(crate) type Param<'a> = (&'a (dyn ToSql + Sync), Type);

pub(crate) fn text<'a>(value: &'a (dyn ToSql + Sync)) -> Param<'a> {
    (value, Type::TEXT)
}

pub(crate) fn float8<'a>(value: &'a (dyn ToSql + Sync)) -> Param<'a> {
    (value, Type::FLOAT8)
}

pub(crate) fn int8<'a>(value: &'a (dyn ToSql + Sync)) -> Param<'a> {
    (value, Type::INT8)
}

/// The regions a query covers: its job type and, when given, its region.
/// Parameters $1 job type, $2 region.
macro_rules! scope {
    () => {
        "scope AS (SELECT r.id, r.name::text AS name \
                     FROM regions r JOIN job_types j ON j.id = r.job_type_id \
                    WHERE j.name = $1 AND ($2::text IS NULL OR upper(r.name) = $2))"
    };
}

/// The highest id of the events migration V4's backfill has not counted yet (NULL: none).
macro_rules! pending {
    () => {
        "(SELECT b.pending_through FROM leaderboard_backfill b)"
    };
}

pub(crate) use {pending, scope};
