//! The registered regions, per job type: read by the regions route and by every post's
//! check, added by the `leaderboard region` command and by the Catalyst sync.

pub mod catalyst;

use crate::db::sql::text;
use crate::db::{Db, DbError};
use crate::model::Region;
use crate::params::JobType;
use tokio_postgres::types::Type;

/// All regions with their job type, in the order they were created.
pub async fn regions(db: &Db) -> Result<Vec<Region>, DbError> {
    let client = db.client().await?;
    db.timed(regions_of(&client)).await
}

/// [`regions`] on a connection of its own (the `leaderboard region` command).
pub async fn regions_of(client: &tokio_postgres::Client) -> Result<Vec<Region>, DbError> {
    let rows = client
        .query_typed(
            "SELECT r.id, r.name, r.display_name, j.name \
               FROM regions r JOIN job_types j ON j.id = r.job_type_id \
              ORDER BY r.id",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| Region {
            key: row.get(0),
            id: row.get(1),
            name: row.get(2),
            job_type: row.get(3),
        })
        .collect())
}

/// Whether the database has the schema (`regions`) yet, so a command can say to migrate
/// first instead of failing on a missing table.
pub async fn has_schema(client: &tokio_postgres::Client) -> Result<bool, DbError> {
    let row = client
        .query_typed_one(
            "SELECT to_regclass('public.regions') IS NOT NULL \
                AND to_regclass('public.job_types') IS NOT NULL",
            &[],
        )
        .await?;
    Ok(row.get(0))
}

/// What [`add_region`] found or did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegionAdded {
    /// Added; `others` are the (job type, display name) this id already had.
    Added { others: Vec<(String, String)> },
    /// The id (any case) was already registered for that job type, under `name`.
    Existing { id: String, name: String },
}

/// Registers region `id` for `job_type` with display name `name`, unless the id (any
/// case) already has that job type; an existing row is never changed. Safe to run
/// concurrently: the unique constraint decides, and the loser reads the winner's row.
pub async fn add_region(
    client: &tokio_postgres::Client,
    id: &str,
    name: &str,
    job_type: JobType,
) -> Result<RegionAdded, DbError> {
    let job_type = job_type.as_str();
    let inserted = client
        .query_typed(
            "INSERT INTO regions (name, display_name, job_type_id) \
             SELECT $1, $2, j.id FROM job_types j \
              WHERE j.name = $3 \
                AND NOT EXISTS (SELECT 1 FROM regions r \
                                 WHERE upper(r.name) = upper($1) AND r.job_type_id = j.id) \
             ON CONFLICT (name, job_type_id) DO NOTHING \
             RETURNING id",
            &[text(&id), text(&name), text(&job_type)],
        )
        .await?;
    let rows = client
        .query_typed(
            "SELECT j.name, r.name, r.display_name FROM regions r \
               JOIN job_types j ON j.id = r.job_type_id \
              WHERE upper(r.name) = upper($1) ORDER BY r.id",
            &[text(&id)],
        )
        .await?;
    let same: Vec<(String, String)> = rows
        .iter()
        .filter(|r| r.get::<_, String>(0) == job_type)
        .map(|r| (r.get(1), r.get(2)))
        .collect();
    if inserted.is_empty() {
        return match same.into_iter().next() {
            Some((id, name)) => Ok(RegionAdded::Existing { id, name }),
            None => Err(DbError::Internal(format!(
                "job type {job_type} is missing from job_types"
            ))),
        };
    }
    Ok(RegionAdded::Added {
        others: rows
            .iter()
            .filter(|r| r.get::<_, String>(0) != job_type)
            .map(|r| (r.get(0), r.get(2)))
            .collect(),
    })
}

/// Adds each `(id, display name)` as a `transcoding` region unless a region with that id
/// (any case) already has that job type; existing rows are never changed. One statement, so
/// instances syncing at once neither fail nor duplicate (the unique constraint decides).
/// Returns the number of regions added; new ones get ids in the order given.
pub async fn add_transcoding_regions(
    db: &Db,
    regions: &[(String, String)],
) -> Result<u64, DbError> {
    if regions.is_empty() {
        return Ok(0);
    }
    let (ids, names): (Vec<&str>, Vec<&str>) = regions
        .iter()
        .map(|(id, name)| (id.as_str(), name.as_str()))
        .unzip();
    let client = db.client().await?;
    db.timed(client.execute_typed(
        "INSERT INTO regions (name, display_name, job_type_id) \
         SELECT n.name, n.display_name, j.id \
           FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS n(name, display_name, ord) \
           JOIN job_types j ON j.name = 'transcoding' \
          WHERE NOT EXISTS (SELECT 1 FROM regions r \
                             WHERE upper(r.name) = upper(n.name) AND r.job_type_id = j.id) \
          ORDER BY n.ord \
         ON CONFLICT (name, job_type_id) DO NOTHING",
        &[(&ids, Type::TEXT_ARRAY), (&names, Type::TEXT_ARRAY)],
    ))
    .await
}
