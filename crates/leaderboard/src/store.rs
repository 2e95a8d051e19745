//! Every SQL statement of the service, typed in and out; handlers never hold SQL.

use crate::db::{Db, DbError};
use crate::model::Region;

/// All regions with their job type, in the order they were created.
pub async fn regions(db: &Db) -> Result<Vec<Region>, DbError> {
    let client = db.client().await?;
    let rows = db
        .timed(client.query(
            "SELECT r.name, r.display_name, j.name \
               FROM regions r JOIN job_types j ON j.id = r.job_type_id \
              ORDER BY r.id",
            &[],
        ))
        .await?;
    Ok(rows
        .iter()
        .map(|row| Region {
            id: row.get(0),
            name: row.get(1),
            job_type: row.get(2),
        })
        .collect())
}

/// A round trip to the database, for health checks.
pub async fn ping(db: &Db) -> Result<(), DbError> {
    let client = db.client().await?;
    db.timed(client.simple_query("SELECT 1")).await?;
    Ok(())
}
