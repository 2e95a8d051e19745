//! The fast read path (rollup buckets + raw edges, migration V4) gives exactly what the
//! spec's straightforward computation over `event_details` gives, on random data and
//! random windows — including windows that start and end off any bucket boundary, and
//! after rows were updated and deleted behind the service's back.

mod common;

use common::exact::{self, assert_close, compare_board, random_payload, HOUR, MODELS, PIPELINES};
use common::{insert_events_at, TestDb, TestServer};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread")]
async fn the_fast_path_equals_the_straightforward_computation() {
    let db = TestDb::new().await;
    let server = TestServer::with_secret(&db).await;
    let mut rng = fastrand::Rng::with_seed(20261125);
    let now = leaderboard::now();
    let times: Vec<f64> = (0..1500).map(|_| now - rng.f64() * 30.0 * HOUR).collect();
    let payloads: Vec<Value> = (0..1500).map(|_| random_payload(&mut rng)).collect();
    insert_events_at(&db, &times, &payloads).await;
    // A few through the API as well, at the database's current time.
    for _ in 0..20 {
        let response = server
            .post(exact::random_payload(&mut rng).to_string())
            .await;
        assert_eq!(response.status().as_u16(), 200);
    }
    // Changes behind the service's back must reach the rollups too.
    let client = db.client().await;
    client
        .batch_execute(
            "DELETE FROM events WHERE id % 17 = 0; \
             UPDATE events SET payload = jsonb_set(payload, '{round_trip_time}', '1.25') WHERE id % 13 = 0; \
             UPDATE events SET event_time = event_time - interval '5 hours 7 minutes 3.5 seconds' WHERE id % 11 = 0;",
        )
        .await
        .expect("changes");

    let windows = exact::windows(&mut rng, now, 12);
    for window in &windows {
        exact::compare_window(&server, &db, *window, &mut rng).await;
    }

    // Folding the appended rows into compacted ones changes no answer.
    let appended: i64 = client
        .query_one("SELECT count(*) FROM event_bucket_appends", &[])
        .await
        .expect("count")
        .get(0);
    assert!(appended > 0, "posts and changes append rows");
    client
        .batch_execute("SELECT leaderboard_compact()")
        .await
        .expect("compact");
    let left: i64 = client
        .query_one("SELECT count(*) FROM event_bucket_appends", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(left, 0);
    let window = (Some(now - 24.0 * HOUR), None);
    compare_board(&server, &db, window, None, None, None).await;
    compare_board(
        &server,
        &db,
        window,
        None,
        None,
        Some((MODELS[0], PIPELINES[0])),
    )
    .await;
    exact::compare_top_ai_scores(&server, &db).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_row_inserted_by_the_original_service_shows_up_in_every_read() {
    let db = TestDb::new().await;
    let server = TestServer::with_secret(&db).await;
    let payload = json!({"region": "FRA", "orchestrator": "0xgo", "success_rate": 1, "round_trip_time": 2.5,
                         "model": "go-model", "pipeline": "go-pipeline", "errors": [], "timestamp": 1});
    let inserted = db
        .client()
        .await
        .execute(
            "INSERT INTO events(event_time, orchestrator, region_id, payload) \
             SELECT CURRENT_TIMESTAMP, $1, regions.id, $2 FROM job_types \
               JOIN regions ON regions.name = $3 AND regions.job_type_id = job_types.id \
              WHERE job_types.name = $4",
            &[&"0xgo", &payload, &"FRA", &"ai"],
        )
        .await
        .expect("the original service's insert");
    assert_eq!(inserted, 1);
    let board = server
        .get_json(
            "/api/aggregated_stats?model=go-model&pipeline=go-pipeline",
            200,
        )
        .await;
    assert_close(
        &board["0xgo"]["FRA"]["round_trip_score"],
        0.8,
        "its own median",
    );
    let pipelines = server.get_json("/api/pipelines", 200).await;
    assert_eq!(
        pipelines,
        json!({"pipelines": [{"id": "go-pipeline", "models": ["go-model"], "regions": ["FRA"]}]})
    );
    let top = server
        .get_json("/api/top_ai_score?orchestrator=0xgo", 200)
        .await;
    assert_eq!(top["model"], "go-model");
    let raw = server
        .get_json("/api/raw_stats?orchestrator=0xgo&pipeline=go-pipeline", 200)
        .await;
    assert_eq!(raw["FRA"][0], payload);
}

/// Posts one at a time, each alone in its batch: they count their own row
/// (`leaderboard_store_post`, V6) instead of the statement trigger.
async fn post_one_by_one(server: &TestServer, rng: &mut fastrand::Rng, n: usize) {
    for i in 0..n {
        let mut payload = random_payload(rng);
        // Distinct bodies; now and then numbers as strings and an AI success, as testers
        // have sent them.
        payload["timestamp"] = json!(1_800_000_000 + i);
        if i % 7 == 0 {
            payload = json!({"region": "LAX", "orchestrator": "0xb2", "success_rate": 1,
                             "round_trip_time": rng.f64() * 4.0 + 0.1, "model": MODELS[i % 2],
                             "pipeline": PIPELINES[i % 2], "timestamp": 1_800_000_000 + i});
        }
        let response = server.post(payload.to_string()).await;
        assert_eq!(response.status().as_u16(), 200, "{payload}");
    }
    let stats = server.app.ingest.stats();
    assert_eq!(stats.largest, 1, "every post went alone: {stats:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn lone_posts_count_their_rows_exactly_as_the_trigger_would_also_during_a_recount() {
    let db = TestDb::new().await;
    let mut config = leaderboard::Config::for_database(&db.url);
    config.secret = Some(common::SECRET.to_string());
    config.backfill_in_background = false;
    let server = TestServer::start(config).await;
    server.app.db.migrations().await.expect("migrations");
    let mut rng = fastrand::Rng::with_seed(202612071);
    let now = leaderboard::now();
    let times: Vec<f64> = (0..400).map(|_| now - rng.f64() * 20.0 * HOUR).collect();
    let payloads: Vec<Value> = (0..400).map(|_| random_payload(&mut rng)).collect();
    insert_events_at(&db, &times, &payloads).await;
    post_one_by_one(&server, &mut rng, 150).await;
    exact::assert_counted_once(&db).await;
    let windows = exact::windows(&mut rng, leaderboard::now(), 3);
    exact::compare_every_route(&server, &db, &windows, &mut rng).await;

    // A recount as V5 starts one, with its mark 40 ids beyond the rows stored: the next 40
    // posts are the backfill's to count, the ones after them the posts' own.
    let client = db.client().await;
    client
        .batch_execute(
            "TRUNCATE event_buckets, event_bucket_appends, pipeline_buckets, \
                      pipeline_bucket_appends, ai_round_trips; \
             UPDATE leaderboard_backfill b \
                SET pending_through = e.high + 40, floor_id = 0, high_id = e.high + 40, \
                    rows_done = 0, completed_at = NULL, finished_at = NULL \
               FROM (SELECT max(id) AS high FROM events) AS e",
        )
        .await
        .expect("start a recount");
    post_one_by_one(&server, &mut rng, 80).await;
    let windows = exact::windows(&mut rng, leaderboard::now(), 3);
    exact::compare_every_route(&server, &db, &windows, &mut rng).await;
    let mut lock = db.client().await;
    leaderboard::schema::backfill::run(&client, &mut lock, 100, |_| {})
        .await
        .expect("the recount");
    exact::assert_counted_once(&db).await;
    exact::compare_every_route(&server, &db, &windows, &mut rng).await;
}
