//! A post counts once, and every stored row says which key let it in: replays of a signed
//! body (one after another, 50 at once, after a restart) store nothing more, a body that
//! differs by one byte is a new test, each row's receipt names its key's identifier (never
//! shown by raw_stats), and with `POST_MAX_AGE` set stale or future bodies are refused
//! with a 400 that says which.

mod common;

use common::{event_count, fixture, TestDb, TestServer, SECRET};
use leaderboard::Config;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;

/// The stream tester's body, exactly as it sends it (pretty-printed over several lines).
fn stream_tester_bytes() -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/stream-tester.json",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

async fn posted_status(server: &TestServer, body: &[u8]) -> u16 {
    server.post(body.to_vec()).await.status().as_u16()
}

async fn receipts(db: &TestDb) -> Vec<(i32, String)> {
    db.client()
        .await
        .query(
            "SELECT event_id, key_id FROM post_receipts ORDER BY event_id",
            &[],
        )
        .await
        .expect("receipts")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// `body` posted `copies` times at once, each on its own connection; every answer.
async fn post_at_once(server: &Arc<TestServer>, body: &[u8], copies: usize) -> Vec<u16> {
    let mut posts = JoinSet::new();
    for _ in 0..copies {
        let (server, body) = (server.clone(), body.to_vec());
        posts.spawn(async move { posted_status(&server, &body).await });
    }
    let mut statuses = Vec::new();
    while let Some(status) = posts.join_next().await {
        statuses.push(status.expect("a post task"));
    }
    statuses
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replayed_body_is_stored_once_however_it_comes_back() {
    let db = TestDb::new().await;
    let server = Arc::new(TestServer::with_secret(&db).await);
    let body = stream_tester_bytes();
    let orchestrator = fixture("stream-tester.json")["orchestrator"]
        .as_str()
        .expect("orchestrator")
        .to_string();

    assert_eq!(posted_status(&server, &body).await, 200);
    for _ in 0..20 {
        assert_eq!(posted_status(&server, &body).await, 200, "a replay is ok");
    }
    let statuses = post_at_once(&server, &body, 50).await;
    assert_eq!(statuses, vec![200; 50]);
    assert_eq!(event_count(&db).await, 1);

    // A body nobody has sent yet, 50 copies at once, while the receipts are locked: the
    // first copies' batches wait on the lock, the others queue up behind them and go as
    // one batch, so copies race inside one batch and across batches.
    let mut fresh: Value = serde_json::from_slice(&body).expect("JSON");
    fresh["timestamp"] = json!(1723741736);
    let fresh = serde_json::to_vec(&fresh).expect("JSON");
    let before = server.app.ingest.stats();
    let mut locker = db.client().await;
    let lock = locker.transaction().await.expect("BEGIN");
    lock.batch_execute("LOCK TABLE post_receipts IN SHARE MODE")
        .await
        .expect("lock the receipts");
    let copies = {
        let server = server.clone();
        let fresh = fresh.clone();
        tokio::spawn(async move { post_at_once(&server, &fresh, 50).await })
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let now = server.app.ingest.stats();
        if now.rows + now.queued as u64 == before.rows + 50 && now.queued > 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never queued: {now:?}"
        );
        // Polling the queue's state, not guessing a time.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    lock.rollback().await.expect("release the lock");
    assert_eq!(copies.await.expect("the copies"), vec![200; 50]);
    let stats = server.app.ingest.stats();
    assert!(stats.largest > 1, "copies shared a batch: {stats:?}");
    assert!(
        stats.batches - before.batches >= 2,
        "and raced across batches: {stats:?}"
    );
    assert_eq!(stats.stored, before.stored + 1);
    assert_eq!(event_count(&db).await, 2);

    // One byte more (a new test as far as anyone can tell) is stored.
    let mut one_byte_more = body.clone();
    one_byte_more.push(b'\n');
    assert_eq!(posted_status(&server, &one_byte_more).await, 200);
    assert_eq!(event_count(&db).await, 3);
    assert_eq!(stats.stored + 1, server.app.ingest.stats().stored);

    // raw_stats and the leaderboard count each test once.
    let raw = server
        .get_json(&format!("/api/raw_stats?orchestrator={orchestrator}"), 200)
        .await;
    assert_eq!(raw["MDW"].as_array().map(Vec::len), Some(3), "{raw}");
    let board = server
        .get_json(
            &format!("/api/aggregated_stats?orchestrator={orchestrator}"),
            200,
        )
        .await;
    assert_eq!(
        board[&orchestrator]["MDW"]["success_rate"],
        json!(1.0),
        "{board}"
    );
    let history = server
        .get_json(
            &format!("/api/score_history?orchestrator={orchestrator}&interval=1d"),
            200,
        )
        .await;
    let tests: i64 = history[&orchestrator]["MDW"]
        .as_array()
        .expect("points")
        .iter()
        .map(|p| p["tests"].as_i64().expect("tests"))
        .sum();
    assert_eq!(tests, 3, "{history}");
    assert_eq!(receipts(&db).await.len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_replayed_after_a_restart_is_still_stored_once() {
    let db = TestDb::new().await;
    let body = stream_tester_bytes();
    {
        let server = TestServer::with_secret(&db).await;
        assert_eq!(posted_status(&server, &body).await, 200);
    }
    let server = TestServer::with_secret(&db).await;
    assert_eq!(posted_status(&server, &body).await, 200);
    assert_eq!(server.app.ingest.stats().stored, 0);
    assert_eq!(event_count(&db).await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_row_records_the_key_that_let_it_in_and_raw_stats_does_not_show_it() {
    let db = TestDb::new().await;
    let mut config = Config::for_database(&db.url);
    config.secret = Some(SECRET.to_string());
    config.extra_secrets = vec!["tester-a".into(), "tester-b".into()];
    let server = TestServer::start(config).await;
    let mut ids = Vec::new();
    for (n, key) in [SECRET, "tester-a", "tester-b"].iter().enumerate() {
        let mut stat = fixture("stream-tester.json");
        stat["timestamp"] = json!(1723741735 + n as i64);
        let body = serde_json::to_vec(&stat).expect("JSON");
        let signature = leaderboard::auth::sign(key, &body);
        let answer = server.post_with(body, Some(&signature)).await;
        assert_eq!(answer.status().as_u16(), 200);
        ids.push(leaderboard::auth::key_id(key));
    }
    // Written by the original service (or stored before receipts existed): no key.
    common::insert_event_at(&db, leaderboard::now(), &fixture("stream-tester.json")).await;
    let stored = receipts(&db).await;
    let keys: Vec<&str> = stored.iter().map(|(_, key)| key.as_str()).collect();
    assert_eq!(keys, ids);
    assert_eq!(event_count(&db).await, 4);
    let raw = server
        .get(&format!(
            "/api/raw_stats?orchestrator={}",
            fixture("stream-tester.json")["orchestrator"]
                .as_str()
                .expect("orchestrator")
        ))
        .await
        .text()
        .await
        .expect("raw_stats");
    assert_eq!(raw.matches("0x0fc80afb").count(), 4, "{raw}");
    for id in &ids {
        assert!(!raw.contains(id.as_str()), "raw_stats shows key id {id}");
    }
}

/// A stat stamped `timestamp` (or with none), as a tester posts it.
fn stamped(timestamp: Option<i64>, n: u32) -> Vec<u8> {
    let mut stat = fixture("stream-tester.json");
    match timestamp {
        Some(t) => stat["timestamp"] = json!(t),
        None => {
            stat.as_object_mut().expect("object").remove("timestamp");
        }
    }
    // Distinct bodies even when stamped alike.
    stat["segments_sent"] = json!(n);
    serde_json::to_vec(&stat).expect("JSON")
}

#[tokio::test(flavor = "multi_thread")]
async fn with_post_max_age_stale_and_future_bodies_are_refused_saying_which() {
    let db = TestDb::new().await;
    let mut config = Config::for_database(&db.url);
    config.secret = Some(SECRET.to_string());
    config.post_max_age = Some(Duration::from_secs(3600));
    let server = TestServer::start(config).await;
    server.app.db.migrations().await.expect("migrations");
    let now = leaderboard::now() as i64;

    // Inside the window, near both edges (a few seconds of margin for the time the post
    // takes; the exact edges are unit-tested in `freshness`).
    for (n, t) in [now, now - 3590, now + 290].into_iter().enumerate() {
        let answer = server.post(stamped(Some(t), n as u32)).await;
        assert_eq!(answer.status().as_u16(), 200, "timestamp {t}");
    }
    assert_eq!(event_count(&db).await, 3);
    let refusals = [
        (Some(now - 3610), "is too old"),
        (Some(1723741735), "is too old"),
        (Some(0), "is too old"),
        (Some(now + 310), "is in the future"),
        (None, "timestamp is required"),
    ];
    for (n, (t, want)) in refusals.into_iter().enumerate() {
        let answer = server.post(stamped(t, 100 + n as u32)).await;
        assert_eq!(answer.status().as_u16(), 400, "timestamp {t:?}");
        let error: Value = answer.json().await.expect("JSON error");
        let message = error["error"].as_str().expect("an error message");
        assert!(message.contains(want), "{t:?}: {message}");
        assert!(
            message.contains("POST_MAX_AGE") || want.contains("future"),
            "{message}"
        );
    }
    assert_eq!(event_count(&db).await, 3, "refusals store nothing");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_post_max_age_any_timestamp_is_accepted_as_before() {
    let db = TestDb::new().await;
    let server = TestServer::with_secret(&db).await;
    let now = leaderboard::now() as i64;
    for (n, t) in [Some(0), Some(1723741735), Some(now + 86_400), None]
        .into_iter()
        .enumerate()
    {
        let answer = server.post(stamped(t, n as u32)).await;
        assert_eq!(answer.status().as_u16(), 200, "timestamp {t:?}");
    }
    assert_eq!(event_count(&db).await, 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_testers_exact_bytes_are_each_a_test_and_their_retries_repeats() {
    let db = TestDb::new().await;
    let server = TestServer::with_secret(&db).await;
    let dir = format!("{}/tests/fixtures", env!("CARGO_MANIFEST_DIR"));
    let files = [
        "stream-tester.json",
        "ai-tester.json",
        "ai-tester-live/failed.json",
        "ai-tester-live/passed.json",
        "ai-tester-live/unscored-busy.json",
        "ai-tester-live/unscored-indeterminate.json",
    ];
    let bodies: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(format!("{dir}/{f}")).unwrap_or_else(|e| panic!("{f}: {e}")))
        .collect();
    // Each as a tester sends it, then each again, as a tester retrying after a lost answer.
    for round in 0..2 {
        for (file, body) in files.iter().zip(&bodies) {
            assert_eq!(
                posted_status(&server, body).await,
                200,
                "{file}, round {round}"
            );
        }
        assert_eq!(
            event_count(&db).await,
            files.len() as i64,
            "after round {round}"
        );
    }
    let live = server
        .get_json(
            "/api/raw_stats?orchestrator=0x10742714f33f3d804e3fa489618b5c3ca12a6df7\
             &model=streamdiffusion&pipeline=live-video-to-video",
            200,
        )
        .await;
    assert_eq!(live["FRA"].as_array().map(Vec::len), Some(4), "{live}");
}
