//! The service behind PgBouncer in transaction pooling mode, as behind Neon's or
//! Supabase's pooled endpoints: consecutive statements of one client land on different
//! server connections, and server connections are shared between clients.

mod common;

use common::{fixture, pooler, TestDb, TestServer, SECRET};
use leaderboard::db::Db;
use leaderboard::Config;
use serde_json::Value;
use std::time::Duration;
use tokio::task::JoinSet;

/// Server connections per database: fewer than the clients, so they must share.
const POOL_SIZE: u32 = 2;

fn body(template: &Value, i: u64) -> Vec<u8> {
    let mut stat = template.clone();
    stat["timestamp"] = i.into();
    stat["success_rate"] = 1.into();
    serde_json::to_vec(&stat).expect("JSON")
}

#[tokio::test(flavor = "multi_thread")]
async fn every_route_works_through_a_transaction_pooler() {
    let db = TestDb::new().await;
    let bouncer = pooler(POOL_SIZE);
    let mut config = Config::for_database(&db.url_through(&bouncer));
    config.secret = Some(SECRET.to_string());
    // Not migrated up front: the first request migrates through the pooler.
    let server = std::sync::Arc::new(TestServer::start(config).await);
    common::assert_seed_regions(&server.get_json("/api/regions", 200).await);

    let ai = fixture("ai-tester.json");
    let transcoding = fixture("stream-tester.json");
    let ai_orchestrator = ai["orchestrator"]
        .as_str()
        .expect("orchestrator")
        .to_string();
    let orchestrator = transcoding["orchestrator"]
        .as_str()
        .expect("orchestrator")
        .to_string();
    let reads = [
        "/api/aggregated_stats".to_string(),
        format!("/api/raw_stats?orchestrator={orchestrator}"),
        format!("/api/top_ai_score?orchestrator={ai_orchestrator}"),
        "/api/pipelines".to_string(),
        "/api/aggregated_stats?model=ByteDance/SDXL-Lightning&pipeline=text-to-image".to_string(),
    ];
    // Posts and reads interleaved from many clients at once.
    const CLIENTS: u64 = 16;
    const POSTS_PER_CLIENT: u64 = 20;
    let mut tasks = JoinSet::new();
    for client in 0..CLIENTS {
        let server = server.clone();
        let (ai, transcoding, reads) = (ai.clone(), transcoding.clone(), reads.clone());
        tasks.spawn(async move {
            let mut failures = Vec::new();
            for n in 0..POSTS_PER_CLIENT {
                let i = client * POSTS_PER_CLIENT + n;
                let template = if i.is_multiple_of(2) {
                    &ai
                } else {
                    &transcoding
                };
                let response = server.post(body(template, i)).await;
                let status = response.status().as_u16();
                let text = response.text().await.unwrap_or_default();
                if (status, text.as_str()) != (200, "ok") {
                    failures.push(format!("post {i}: {status} {text}"));
                }
                let path = &reads[(i % reads.len() as u64) as usize];
                let response = server.get(path).await;
                if response.status() != 200 {
                    let status = response.status();
                    failures.push(format!(
                        "{path}: {status} {}",
                        response.text().await.unwrap_or_default()
                    ));
                }
            }
            failures
        });
    }
    let mut failures = Vec::new();
    while let Some(result) = tasks.join_next().await {
        failures.extend(result.expect("client task"));
    }
    assert!(failures.is_empty(), "{failures:#?}");

    let posted = CLIENTS * POSTS_PER_CLIENT;
    assert_eq!(common::event_count(&db).await, posted as i64);
    let raw = server.get_json(&reads[1], 200).await;
    assert_eq!(
        raw["MDW"].as_array().map(Vec::len),
        Some(posted as usize / 2),
        "{raw}"
    );
    let board = server.get_json(&reads[0], 200).await;
    assert_eq!(board[&orchestrator]["MDW"]["success_rate"], 1.0, "{board}");
    let ai_board = server.get_json(&reads[4], 200).await;
    assert_eq!(ai_board[&ai_orchestrator]["MDW"]["success_rate"], 1.0);
    let top = server.get_json(&reads[2], 200).await;
    assert_eq!(top["pipeline"], "text-to-image", "{top}");
    let pipelines = server.get_json(&reads[3], 200).await;
    assert_eq!(pipelines["pipelines"][0]["id"], "text-to-image");
    let health = server.get_json("/api/health", 200).await;
    assert_eq!(health["postgres"]["ok"], true, "{health}");
}

/// Advisory locks held on `db`'s database, seen by a direct connection.
async fn advisory_locks(db: &TestDb) -> i64 {
    db.client()
        .await
        .query_one(
            "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database \
              WHERE l.locktype = 'advisory' AND d.datname = current_database()",
            &[],
        )
        .await
        .expect("pg_locks")
        .get(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn cold_starts_through_a_transaction_pooler_migrate_once_and_leave_no_lock() {
    let db = TestDb::new().await;
    let bouncer = pooler(4);
    let url = db.url_through(&bouncer);
    let mut starts = JoinSet::new();
    for _ in 0..8 {
        let url = url.clone();
        starts.spawn(async move {
            let db = Db::new(Some(&url), Duration::from_secs(30));
            db.migrations().await.map(|state| state.applied_now.clone())
        });
    }
    let mut applied = Vec::new();
    while let Some(result) = starts.join_next().await {
        applied.extend(
            result
                .expect("task")
                .expect("migrations through the pooler"),
        );
    }
    applied.sort();
    let latest = leaderboard::schema::migrate::latest_version();
    assert_eq!(applied, (1..=latest).collect::<Vec<_>>());
    assert_eq!(
        advisory_locks(&db).await,
        0,
        "a lock outlived its migration"
    );

    // Later cold starts share the same server connections and must not wait on a lock.
    let again = Db::new(Some(&url), Duration::from_secs(5));
    let state = again.migrations().await.expect("a later cold start");
    assert_eq!((state.version, state.applied_now.len()), (latest, 0));
    let history: i64 = db
        .client()
        .await
        .query_one("SELECT count(*) FROM refinery_schema_history", &[])
        .await
        .expect("history")
        .get(0);
    assert_eq!(history, i64::from(latest));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replayed_body_is_stored_once_through_a_transaction_pooler() {
    let db = TestDb::new().await;
    let bouncer = pooler(POOL_SIZE);
    let mut config = Config::for_database(&db.url_through(&bouncer));
    config.secret = Some(SECRET.to_string());
    let server = std::sync::Arc::new(TestServer::start(config).await);
    let transcoding = fixture("stream-tester.json");
    // Two bodies, each sent 40 times from 16 clients at once and then again one by one:
    // batches of repeats and of first copies share the pooler's two server connections.
    let bodies = [body(&transcoding, 1), body(&transcoding, 2)];
    let mut tasks = JoinSet::new();
    for client in 0..16usize {
        let (server, bodies) = (server.clone(), bodies.clone());
        tasks.spawn(async move {
            let mut statuses = Vec::new();
            for n in 0..5 {
                let response = server.post(bodies[(client + n) % 2].clone()).await;
                statuses.push(response.status().as_u16());
            }
            statuses
        });
    }
    while let Some(statuses) = tasks.join_next().await {
        assert_eq!(statuses.expect("client task"), vec![200; 5]);
    }
    for body in &bodies {
        assert_eq!(server.post(body.clone()).await.status().as_u16(), 200);
    }
    assert_eq!(common::event_count(&db).await, 2);
    let receipts: i64 = db
        .client()
        .await
        .query_one("SELECT count(*) FROM post_receipts", &[])
        .await
        .expect("receipts")
        .get(0);
    assert_eq!(receipts, 2);
}
