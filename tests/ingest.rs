//! Group commit of post_stats (crate::ingest) over real HTTP into a real PostgreSQL:
//! batching, a row the database refuses, the database going away mid-batch, a COMMIT
//! that loses its answer, `Retry-After` on every 503, and a function binary under
//! concurrent posts.
//!
//! Batches are made deterministic by holding a lock the writers need: the test waits
//! (on the service's own counters, or on pg_stat_activity) until the posts are where it
//! wants them, then lets go.

mod common;

use common::openapi::SendChecked;
use common::{event_count, free_ports, spawn_function, wait_listening, TestDb, TestServer, SECRET};
use leaderboard::ingest::{IngestStats, MAX_WRITERS};
use leaderboard::Config;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

/// A stream tester's stat, told apart from the others by `timestamp`.
fn stat(orchestrator: &str, timestamp: i64) -> Value {
    json!({"region": "FRA", "orchestrator": orchestrator, "success_rate": 1,
           "round_trip_time": 1.5, "timestamp": timestamp})
}

/// Status and `Retry-After` of one signed post (the answer is checked against
/// docs/openapi.json).
async fn post(base: String, body: Value) -> (u16, Option<String>) {
    let body = body.to_string();
    let response = reqwest::Client::new()
        .post(format!("{base}/api/post_stats"))
        .header(
            "authorization",
            leaderboard::auth::sign(SECRET, body.as_bytes()),
        )
        .body(body)
        .send_checked()
        .await
        .expect("POST post_stats");
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (response.status().as_u16(), retry_after)
}

fn spawn_post(server: &TestServer, body: Value) -> tokio::task::JoinHandle<(u16, Option<String>)> {
    tokio::spawn(post(server.base.clone(), body))
}

/// Waits (bounded) until the service's queue satisfies `condition`.
async fn until(server: &TestServer, what: &str, condition: impl Fn(&IngestStats) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let stats = server.app.ingest.stats();
        if condition(&stats) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The `timestamp`s stored in `events`.
async fn stored_timestamps(client: &tokio_postgres::Client) -> Vec<i64> {
    client
        .query(
            "SELECT (payload ->> 'timestamp')::bigint FROM events ORDER BY 1",
            &[],
        )
        .await
        .expect("stored timestamps")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Holds `LOCK TABLE events IN SHARE MODE` (inserts wait) until `release`.
struct InsertLock(tokio_postgres::Client);

impl InsertLock {
    async fn take(url: &str) -> InsertLock {
        let client = common::connect(url).await;
        client
            .batch_execute("BEGIN; LOCK TABLE events IN SHARE MODE")
            .await
            .expect("lock events");
        InsertLock(client)
    }

    async fn release(self) {
        self.0.batch_execute("COMMIT").await.expect("unlock events");
    }
}

/// Both writers blocked on `lock` with one post each, then `rest` queued behind them:
/// the posts in order, as spawned tasks.
async fn two_blocked_writers_and_a_queue(
    server: &TestServer,
    first: [Value; 2],
    rest: Vec<Value>,
) -> Vec<tokio::task::JoinHandle<(u16, Option<String>)>> {
    assert_eq!(MAX_WRITERS, 2, "these tests stage exactly two writers");
    let mut answers = Vec::new();
    for (i, body) in first.into_iter().enumerate() {
        answers.push(spawn_post(server, body));
        let rows = i as u64 + 1;
        until(server, "a writer to take the post", |s| s.rows == rows).await;
    }
    let queued = rest.len();
    for body in rest {
        answers.push(spawn_post(server, body));
    }
    until(server, "the posts to queue", |s| {
        s.queued == queued && s.writers == 2
    })
    .await;
    answers
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lone_post_is_written_at_once_in_a_batch_of_its_own() {
    let db = TestDb::new().await;
    let server = TestServer::with_secret(&db).await;
    assert_eq!(post(server.base.clone(), stat("0xa", 1)).await, (200, None));
    let stats = server.app.ingest.stats();
    assert_eq!((stats.batches, stats.rows, stats.largest), (1, 1, 1));
    assert_eq!((stats.queued, stats.writers), (0, 0));
    assert_eq!(event_count(&db).await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn posts_arriving_during_a_write_are_stored_as_one_batch_in_one_transaction() {
    let db = TestDb::new().await;
    let server = TestServer::with_secret(&db).await;
    let lock = InsertLock::take(&db.url).await;
    let rest = (2..20).map(|t| stat("0xb", t)).collect();
    let answers =
        two_blocked_writers_and_a_queue(&server, [stat("0xb", 0), stat("0xb", 1)], rest).await;
    lock.release().await;
    for answer in answers {
        assert_eq!(answer.await.expect("post"), (200, None));
    }
    let stats = server.app.ingest.stats();
    // The two blocked posts, then the 18 that queued behind them as one statement.
    assert_eq!((stats.batches, stats.rows, stats.largest), (3, 20, 18));
    assert_eq!(stats.rows_retried_alone, 0);
    let client = db.client().await;
    assert_eq!(
        stored_timestamps(&client).await,
        (0..20).collect::<Vec<_>>()
    );
    let transactions: i64 = client
        .query_one("SELECT count(DISTINCT xmin::text) FROM events", &[])
        .await
        .expect("transactions")
        .get(0);
    assert_eq!(transactions, 3);
    // The rollups count the batch like any other insert.
    let read = server
        .get_json("/api/aggregated_stats?orchestrator=0xb", 200)
        .await;
    assert!(read["0xb"]["FRA"]["success_rate"].is_number(), "{read}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_row_the_database_refuses_fails_only_its_own_post() {
    let db = TestDb::new().await;
    let server = TestServer::with_secret(&db).await;
    let client = db.client().await;
    // In this test database only: a rule the service's validation does not know.
    client
        .batch_execute(
            "ALTER TABLE events ADD CONSTRAINT test_refuses_0xbad CHECK (orchestrator <> '0xbad')",
        )
        .await
        .expect("check constraint");
    let lock = InsertLock::take(&db.url).await;
    let mut rest: Vec<Value> = (2..10).map(|t| stat("0xc", t)).collect();
    rest.insert(4, stat("0xbad", 100));
    let answers =
        two_blocked_writers_and_a_queue(&server, [stat("0xc", 0), stat("0xc", 1)], rest).await;
    lock.release().await;
    let mut statuses = Vec::new();
    for answer in answers {
        statuses.push(answer.await.expect("post").0);
    }
    let mut expected = vec![200; 11];
    expected[6] = 500;
    assert_eq!(statuses, expected);
    let stats = server.app.ingest.stats();
    assert_eq!((stats.batches, stats.largest), (3, 9));
    assert_eq!(stats.rows_retried_alone, 9);
    assert_eq!(
        stored_timestamps(&client).await,
        (0..10).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_database_going_away_mid_batch_gives_503s_and_no_200_without_its_row() {
    let mut pg = localpg::PgServer::start(localpg::Options::ephemeral()).expect("PostgreSQL");
    let url = pg.url("postgres");
    let mut config = Config::for_database(&url);
    config.secret = Some(SECRET.to_string());
    config.db_timeout = Duration::from_secs(5);
    let server = TestServer::start(config).await;
    server.app.db.migrations().await.expect("migrations");
    let lock = InsertLock::take(&url).await;
    let rest = (2..12).map(|t| stat("0xd", t)).collect();
    let answers =
        two_blocked_writers_and_a_queue(&server, [stat("0xd", 0), stat("0xd", 1)], rest).await;
    // Fast shutdown: the two writers' transactions die with their backends, the queued
    // batch finds no database or the restarted one.
    pg.stop_keep_data().expect("stop");
    drop(lock);
    pg.restart().expect("restart");
    let mut ok = BTreeSet::new();
    let mut unavailable = 0;
    for (timestamp, answer) in answers.into_iter().enumerate() {
        match answer.await.expect("post") {
            (200, None) => {
                ok.insert(timestamp as i64);
            }
            (503, Some(retry_after)) => {
                assert_eq!(retry_after, "2");
                unavailable += 1;
            }
            other => panic!("post {timestamp}: {other:?}"),
        }
    }
    assert!(unavailable >= 1, "the posts in flight were answered 200");
    let client = common::connect(&url).await;
    let stored: BTreeSet<i64> = stored_timestamps(&client).await.into_iter().collect();
    assert_eq!(stored, ok, "stored rows and 200s differ");
    // And the same process writes again.
    assert_eq!(post(server.base.clone(), stat("0xd", 99)).await.0, 200);
}

/// The service's connection whose COMMIT waits (a deferred trigger of this test database
/// takes advisory lock 4242, held by the test) and, once it timed out, the service asking
/// `txid_status` on another connection: returns the waiting backend's pid.
async fn commit_waiting_and_outcome_asked(client: &tokio_postgres::Client) -> i32 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let rows = client
            .query(
                "SELECT pid, query FROM pg_stat_activity \
                  WHERE datname = current_database() AND pid <> pg_backend_pid() \
                    AND (wait_event = 'advisory' OR query LIKE 'SELECT txid_status%')",
                &[],
            )
            .await
            .expect("pg_stat_activity");
        let waiting = rows
            .iter()
            .find(|r| !r.get::<_, String>(1).starts_with("SELECT txid_status"));
        let asked = rows
            .iter()
            .any(|r| r.get::<_, String>(1).starts_with("SELECT txid_status"));
        if let (Some(waiting), true) = (waiting, asked) {
            return waiting.get(0);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the service never asked for the outcome of its COMMIT"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A server on a fresh database, `DB_TIMEOUT` 2 s, whose COMMIT of rows from `0xwait`
/// waits for advisory lock 4242 (held by the returned client), and a batch of two such
/// posts being written (behind two lone posts of `0xe`, which commit at once): their
/// answers, in order, the lone ones first.
async fn a_batch_whose_commit_waits() -> (
    TestDb,
    TestServer,
    tokio_postgres::Client,
    Vec<tokio::task::JoinHandle<(u16, Option<String>)>>,
) {
    let db = TestDb::new().await;
    let mut config = Config::for_database(&db.url);
    config.secret = Some(SECRET.to_string());
    config.db_timeout = Duration::from_secs(2);
    let server = TestServer::start(config).await;
    server.app.db.migrations().await.expect("migrations");
    let client = db.client().await;
    client
        .batch_execute(
            "CREATE FUNCTION test_wait_at_commit() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN IF NEW.orchestrator = '0xwait' THEN \
                          PERFORM pg_advisory_lock_shared(4242); \
                          PERFORM pg_advisory_unlock_shared(4242); \
                      END IF; RETURN NULL; END $$; \
             CREATE CONSTRAINT TRIGGER test_wait_at_commit AFTER INSERT ON events \
                 DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION test_wait_at_commit(); \
             SELECT pg_advisory_lock(4242)",
        )
        .await
        .expect("a COMMIT that waits");
    let lock = InsertLock::take(&db.url).await;
    let answers = two_blocked_writers_and_a_queue(
        &server,
        [stat("0xe", 0), stat("0xe", 1)],
        vec![stat("0xwait", 2), stat("0xwait", 3)],
    )
    .await;
    lock.release().await;
    (db, server, client, answers)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_whose_commit_lost_its_answer_but_committed_answers_200() {
    let (db, server, client, answers) = a_batch_whose_commit_waits().await;
    // The COMMIT outlived DB_TIMEOUT; the service dropped that connection and asks.
    commit_waiting_and_outcome_asked(&client).await;
    client
        .batch_execute("SELECT pg_advisory_unlock(4242)")
        .await
        .expect("let the COMMIT finish");
    for answer in answers {
        assert_eq!(answer.await.expect("post"), (200, None));
    }
    assert_eq!(server.app.ingest.stats().largest, 2);
    assert_eq!(event_count(&db).await, 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_whose_commit_lost_its_answer_and_rolled_back_answers_503() {
    let (db, server, client, answers) = a_batch_whose_commit_waits().await;
    let pid = commit_waiting_and_outcome_asked(&client).await;
    client
        .query("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .expect("end the waiting COMMIT");
    let mut statuses = Vec::new();
    for answer in answers {
        statuses.push(answer.await.expect("post"));
    }
    let unavailable = (503, Some("2".to_string()));
    assert_eq!(
        statuses,
        [(200, None), (200, None), unavailable.clone(), unavailable]
    );
    assert_eq!(server.app.ingest.stats().largest, 2);
    let client = db.client().await;
    assert_eq!(stored_timestamps(&client).await, [0, 1]);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_503_carries_retry_after() {
    let port = free_ports(1)[0];
    let mut config = Config::for_database(&format!(
        "postgres://postgres@127.0.0.1:{port}/postgres?sslmode=disable"
    ));
    config.secret = Some(SECRET.to_string());
    config.db_timeout = Duration::from_secs(2);
    let server = TestServer::start(config).await;
    for path in [
        "/api/health",
        "/api/regions",
        "/api/raw_stats?orchestrator=0xa",
        "/api/aggregated_stats",
        "/api/pipelines",
        "/api/top_ai_score?orchestrator=0xa",
    ] {
        for head in [false, true] {
            let url = server.url(path);
            let request = if head {
                reqwest::Client::new().head(url)
            } else {
                reqwest::Client::new().get(url)
            };
            let response = request.send_checked().await.expect("request");
            assert_eq!(response.status().as_u16(), 503, "{path}");
            assert_eq!(response.headers()["retry-after"], "2", "{path}");
        }
    }
    assert_eq!(
        post(server.base.clone(), stat("0xa", 1)).await,
        (503, Some("2".into()))
    );
    // Other errors carry none.
    let response = server.get("/api/raw_stats").await;
    assert_eq!(response.status().as_u16(), 400);
    assert!(response.headers().get("retry-after").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_post_stats_function_stores_every_concurrent_post_it_answers_200() {
    let db = TestDb::new().await;
    let port = free_ports(1)[0];
    let mut function = spawn_function(env!("CARGO_BIN_EXE_post_stats"), "", &db.url, port);
    assert!(
        wait_listening(&mut function).await,
        "post_stats did not start"
    );
    let base = Arc::new(format!("http://127.0.0.1:{port}"));
    let clients: Vec<_> = (0..32)
        .map(|client| {
            let base = base.clone();
            tokio::spawn(async move {
                let mut ok = Vec::new();
                for i in 0..20 {
                    let timestamp = client * 100 + i;
                    let (status, _) = post(base.to_string(), stat("0x10", timestamp)).await;
                    assert_eq!(status, 200, "post {timestamp}");
                    ok.push(timestamp);
                }
                ok
            })
        })
        .collect();
    let mut ok = Vec::new();
    for client in clients {
        ok.extend(client.await.expect("client"));
    }
    ok.sort();
    let client = db.client().await;
    assert_eq!(stored_timestamps(&client).await, ok);
    let transactions: i64 = client
        .query_one("SELECT count(DISTINCT xmin::text) FROM events", &[])
        .await
        .expect("transactions")
        .get(0);
    eprintln!("640 posts from 32 clients in {transactions} transactions");
}
