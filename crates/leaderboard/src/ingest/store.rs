//! The post path's SQL: a batch of posts stored with their receipts in one round trip,
//! and the outcome of a batch whose answer was lost read back.

use crate::db::sql::{int8, text, Param};
use crate::db::{Db, DbError};
use crate::ingest::stat::Stat;
use tokio_postgres::types::Type;
use tokio_postgres::SimpleQueryMessage;

/// One post to store: its region, its validated stat and its receipt
/// (`migrations/V6__post_receipts.sql`).
pub struct NewEvent<'a> {
    pub region_key: i32,
    pub stat: &'a Stat,
    /// The digest of the body's exact bytes (`auth::body_digest`).
    pub digest: &'a [u8; crate::auth::DIGEST_BYTES],
    /// The identifier of the key that verified it (`auth::key_id`).
    pub key_id: &'a str,
}

/// Stores a batch of posts whose digests are distinct, each unless its body was received
/// before (`leaderboard_store_post[s]`, migration V6); returns how many rows were stored
/// once it is committed (0 when a lost `COMMIT` answer was read back as committed), `Err`
/// when it is not (a data error of any row fails the whole batch).
///
/// A lone post is one autocommit call, as the original service writes it: one statement,
/// one round trip, the least database time. A larger batch is one multi-row
/// statement in a transaction whose `BEGIN`, `txid_current()`, statement and `COMMIT` go
/// out together (still one round trip); a statement the database refuses turns that
/// `COMMIT` into a rollback and leaves the connection usable. When a batch's answers stop
/// (connection lost, `DB_TIMEOUT`) after its transaction id arrived, the outcome is read
/// back with `txid_status` on another connection until `DB_TIMEOUT`, so the many posts of
/// a batch are not answered 503 for rows that are stored. Otherwise (a lone post, or a
/// database that stalled before it named the transaction) an `Err` other than a refusal
/// may still have committed, as with any single statement whose answer is lost; the
/// tester's retry of the same body is then stored once all the same.
pub async fn insert_events(db: &Db, rows: &[NewEvent<'_>]) -> Result<u64, DbError> {
    let client = db.client().await?;
    if let [row] = rows {
        let digest: &[u8] = row.digest;
        let stored = db
            .timed(client.query_typed_one(
                "SELECT leaderboard_store_post($1, $2, $3, $4, $5)",
                &[
                    (&digest, Type::BYTEA),
                    text(&row.key_id),
                    text(&row.stat.orchestrator),
                    (&row.region_key, Type::INT4),
                    (&row.stat.payload, Type::JSONB),
                ],
            ))
            .await?;
        return Ok(u64::from(stored.get::<_, i32>(0) > 0));
    }
    let digests: Vec<&[u8]> = rows.iter().map(|r| r.digest.as_slice()).collect();
    let key_ids: Vec<&str> = rows.iter().map(|r| r.key_id).collect();
    let orchestrators: Vec<&str> = rows.iter().map(|r| r.stat.orchestrator.as_str()).collect();
    let region_keys: Vec<i32> = rows.iter().map(|r| r.region_key).collect();
    let payloads: Vec<&serde_json::Value> = rows.iter().map(|r| &r.stat.payload).collect();
    let params: [Param; 5] = [
        (&digests, Type::BYTEA_ARRAY),
        (&key_ids, Type::TEXT_ARRAY),
        (&orchestrators, Type::TEXT_ARRAY),
        (&region_keys, Type::INT4_ARRAY),
        (&payloads, Type::JSONB_ARRAY),
    ];
    let xid = std::sync::OnceLock::new();
    let pipeline = async {
        let (began, inserted, committed) = tokio::join!(
            async {
                for message in client.simple_query("BEGIN; SELECT txid_current()").await? {
                    if let SimpleQueryMessage::Row(row) = message {
                        if let Some(id) = row.get(0).and_then(|id| id.parse().ok()) {
                            let _ = xid.set(id);
                        }
                    }
                }
                Ok::<_, tokio_postgres::Error>(())
            },
            client.query_typed_one(
                "SELECT leaderboard_store_posts($1, $2, $3, $4, $5)",
                &params
            ),
            client.simple_query("COMMIT"),
        );
        began?;
        let stored: i64 = inserted?.get(0);
        committed?;
        Ok::<_, tokio_postgres::Error>(stored as u64)
    };
    match db.timed(pipeline).await {
        Ok(stored) => Ok(stored),
        // Refused by the database (a row, a deferred constraint at commit, a deadlock):
        // rolled back.
        Err(e @ (DbError::Internal(_) | DbError::Conflict(_))) => Err(e),
        Err(lost) => {
            drop(deadpool_postgres::Object::take(client));
            match xid.get() {
                // How many of the rows were new is not known then: the receipts will say
                // when the posts come again.
                Some(&xid) => commit_outcome(db, xid, lost).await.map(|()| 0),
                None => {
                    tracing::warn!(rows = rows.len(), error = %lost, "a batch got no answer at all; whether it committed is unknown");
                    Err(lost)
                }
            }
        }
    }
}

/// Whether transaction `xid`, whose `COMMIT` got no answer (`lost`), committed: asked
/// again and again on fresh connections until `DB_TIMEOUT` while the database is away or
/// the transaction still in progress.
async fn commit_outcome(db: &Db, xid: i64, lost: DbError) -> Result<(), DbError> {
    let deadline = tokio::time::Instant::now() + db.timeout();
    loop {
        let asked = tokio::time::timeout_at(deadline, async {
            let client = db.client().await?;
            let row = db
                .timed(client.query_typed("SELECT txid_status($1)", &[int8(&xid)]))
                .await?;
            Ok::<_, DbError>(row.first().and_then(|r| r.get::<_, Option<String>>(0)))
        })
        .await;
        match asked {
            Ok(Ok(Some(status))) if status == "committed" => {
                tracing::info!(xid, "COMMIT lost its answer but committed");
                return Ok(());
            }
            Ok(Ok(Some(status))) if status == "aborted" => return Err(lost),
            Ok(_) if tokio::time::Instant::now() < deadline => {}
            _ => {
                tracing::warn!(xid, error = %lost, "COMMIT lost its answer; whether it committed is unknown");
                return Err(lost);
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
