//! Cutting a live production database over from the Go service: migration V4 is quick
//! schema work that never holds writers up, its backfill runs in bounded steps outside
//! any long transaction (resumable, idempotent), and every answer stays exact while it is
//! under way, after it was killed half-way, and with writers changing rows meanwhile.

mod common;

use common::exact;
use common::{golang_migrate_database, TestDb, TestServer};
use leaderboard::schema::{backfill, migrate};
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The Go service's insert, as it runs it.
const GO_INSERT: &str = "INSERT INTO events(event_time, orchestrator, region_id, payload) \
     SELECT CURRENT_TIMESTAMP, $1, regions.id, $2 FROM job_types \
       JOIN regions ON regions.name = $3 AND regions.job_type_id = job_types.id \
      WHERE job_types.name = $4";

async fn operator_connection(db: &TestDb) -> tokio_postgres::Client {
    leaderboard::db::connect(&db.url, Duration::from_secs(20))
        .await
        .expect("operator connection")
}

/// The service on `db`, its pipelines cache off: the tests ask the same windows again
/// after the data changed. `background`: whether it advances the backfill itself.
async fn service(db: &TestDb, background: bool) -> TestServer {
    let mut config = leaderboard::Config::for_database(&db.url);
    config.pipelines_cache_timeout = Duration::ZERO;
    config.secret = Some(common::SECRET.to_string());
    config.backfill_in_background = background;
    TestServer::start(config).await
}

async fn backfill_state(db: &TestDb) -> backfill::Progress {
    backfill::progress(&db.client().await)
        .await
        .expect("progress")
        .expect("V4 applied")
}

/// A transaction holding the backfill's state row in share mode: no step can start (a
/// step takes it exclusively, skipping when it cannot), while readers and writers go on.
async fn hold_off_steps(db: &TestDb) -> tokio_postgres::Client {
    let holder = db.client().await;
    holder
        .batch_execute("BEGIN; SELECT 1 FROM leaderboard_backfill FOR SHARE")
        .await
        .expect("hold the backfill state");
    holder
}

#[tokio::test(flavor = "multi_thread")]
async fn migrating_a_live_database_never_holds_its_writers_up() {
    // Large enough that V4 done in one transaction (as before) held inserts up for
    // seconds: each insert here gives up after waiting 500 ms for a lock.
    let db = golang_migrate_database(3, false).await;
    exact::insert_random_events(&db, 150_000).await;

    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, url) = (stop.clone(), db.url.clone());
        tokio::spawn(async move {
            let client = common::connect(&url).await;
            client
                .batch_execute("SET lock_timeout = '500ms'")
                .await
                .expect("lock_timeout");
            let payload = json!({"region": "FRA", "orchestrator": "0xgo", "success_rate": 1,
                                 "round_trip_time": 2.5, "seg_duration": 2.0, "errors": []});
            let (mut stored, mut failed) = (0u64, Vec::new());
            while !stop.load(Ordering::SeqCst) {
                match client
                    .execute(GO_INSERT, &[&"0xgo", &payload, &"FRA", &"transcoding"])
                    .await
                {
                    Ok(1) => stored += 1,
                    Ok(n) => failed.push(format!("inserted {n} rows")),
                    Err(e) => failed.push(e.to_string()),
                }
            }
            (stored, failed)
        })
    };

    // What `leaderboard migrate up` does: the schema steps, then the backfill.
    let mut client = operator_connection(&db).await;
    let state = migrate::run(&mut client).await.expect("migrate");
    assert_eq!(state.adopted_golang_migrate_version, Some(3));
    assert!(state.applied_now.contains(&4));
    let left = backfill_state(&db).await;
    assert!(!left.complete && left.ids_left > 100_000, "{left:?}");
    let mut lock = operator_connection(&db).await;
    let done = backfill::run(&client, &mut lock, 20_000, |_| {})
        .await
        .expect("backfill");
    stop.store(true, Ordering::SeqCst);
    let (stored, failed) = writer.await.expect("writer");
    assert!(failed.is_empty(), "inserts held up: {failed:?}");
    assert!(done.complete && done.index_ready, "{done:?}");
    // Counted by the backfill: what was stored before V4 (the writer's first rows too).
    let before_v4: i64 = db
        .client()
        .await
        .query_one(
            "SELECT count(*) FROM events e, leaderboard_backfill b WHERE e.id <= b.high_id",
            &[],
        )
        .await
        .expect("count")
        .get(0);
    let scored_before_v4: i64 = db
        .client()
        .await
        .query_one(
            "SELECT count(*) FROM events e, leaderboard_backfill b \
              WHERE e.id <= b.high_id AND leaderboard_scored(e.payload)",
            &[],
        )
        .await
        .expect("count")
        .get(0);
    assert!(before_v4 >= 150_000);
    // Unscored tests are stored, not counted.
    assert!(scored_before_v4 < before_v4);
    assert_eq!(done.rows_done, scored_before_v4);

    // The writer went on while the backfill ran: some of its rows are stamped between
    // the backfill's start and end.
    let during: i64 = db
        .client()
        .await
        .query_one(
            "SELECT count(*) FROM events e, leaderboard_backfill b \
              WHERE e.orchestrator = '0xgo' AND e.event_time > b.started_at \
                AND e.event_time < b.completed_at",
            &[],
        )
        .await
        .expect("writes during the backfill")
        .get(0);
    assert!(stored > 0 && during > 0, "{stored} stored, {during} during");

    exact::assert_counted_once(&db).await;
    let server = service(&db, true).await;
    let mut rng = fastrand::Rng::with_seed(13);
    let windows = exact::windows(&mut rng, leaderboard::now(), 2);
    exact::compare_every_route(&server, &db, &windows, &mut rng).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backfill_killed_half_way_resumes_and_every_answer_stays_exact() {
    let db = golang_migrate_database(3, false).await;
    exact::insert_random_events(&db, 6_000).await;
    let mut client = operator_connection(&db).await;
    migrate::run(&mut client).await.expect("migrate");
    let total = backfill_state(&db).await;
    assert!(!total.complete && total.rows_done == 0, "{total:?}");

    // The service reads through it all, its own background task held off so the test
    // decides when steps happen.
    let server = service(&db, false).await;
    let mut rng = fastrand::Rng::with_seed(2026);
    let now = leaderboard::now();
    let windows = exact::windows(&mut rng, now, 3);
    let health = server.get_json("/api/health", 200).await;
    assert_eq!(health["backfill"]["complete"], json!(false), "{health}");
    assert_eq!(health["backfill"]["rows_done"], json!(0), "{health}");
    exact::compare_every_route(&server, &db, &windows, &mut rng).await;

    // A few steps, then one killed in the middle of its statement: it waits on the
    // round trip row of an event it is counting, which an open transaction holds, and
    // its connection is terminated there.
    for _ in 0..3 {
        assert!(matches!(
            backfill::step(&client, 1_000).await.expect("step"),
            backfill::Step::Left(_)
        ));
    }
    let before_kill = backfill_state(&db).await;
    let blocker = db.client().await;
    let blocked_id: i32 = blocker
        .query_one(
            "SELECT max(e.id) FROM events e, leaderboard_backfill b \
              WHERE e.id <= b.pending_through AND e.payload ? 'model' \
                AND leaderboard_number(e.payload -> 'success_rate') = 1 \
                AND leaderboard_number(e.payload -> 'round_trip_time') <> 0",
            &[],
        )
        .await
        .expect("an event of the next step")
        .get(0);
    blocker
        .batch_execute(&format!(
            "BEGIN; INSERT INTO ai_round_trips VALUES ({blocked_id}, now(), 1, 'x', 'y', 1)"
        ))
        .await
        .expect("hold its round trip row");
    let victim = operator_connection(&db).await;
    let victim_pid: i32 = victim
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .expect("pid")
        .get(0);
    let killed = tokio::spawn(async move { backfill::step(&victim, 1_000).await });
    let killer = db.client().await;
    // Until the step waits on that row (bounded; the server polls, the test does not sleep).
    let waiting = format!(
        "EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = {victim_pid} AND wait_event_type = 'Lock')"
    );
    killer
        .batch_execute(&format!(
            "DO $$ BEGIN FOR i IN 1..3000 LOOP EXIT WHEN {waiting}; PERFORM pg_sleep(0.01); \
             END LOOP; END $$"
        ))
        .await
        .expect("wait for the step to block");
    let blocked: bool = killer
        .query_one(&format!("SELECT {waiting}"), &[])
        .await
        .expect("activity")
        .get(0);
    assert!(blocked, "the step waits on the held row");
    let terminated: bool = killer
        .query_one("SELECT pg_terminate_backend($1)", &[&victim_pid])
        .await
        .expect("terminate")
        .get(0);
    assert!(terminated);
    assert!(
        killed.await.expect("join").is_err(),
        "the killed step failed"
    );
    blocker.batch_execute("ROLLBACK").await.expect("release");
    let after_kill = backfill_state(&db).await;
    assert_eq!(
        after_kill, before_kill,
        "a killed step leaves nothing behind"
    );
    assert!(after_kill.ids_left > 0 && after_kill.rows_done > 0);
    exact::compare_every_route(&server, &db, &windows, &mut rng).await;

    // Writers change rows on both sides of the backfill's boundary while steps run:
    // counted and uncounted rows updated and deleted, new rows posted and inserted by
    // the Go service, a row restored with an explicit low id.
    let holder = hold_off_steps(&db).await;
    let writes = db.client().await;
    writes
        .batch_execute(
            "UPDATE events SET payload = jsonb_set(payload, '{round_trip_time}', '1.25') WHERE id % 7 = 0; \
             DELETE FROM events WHERE id % 11 = 0; \
             UPDATE events SET event_time = event_time - interval '3 hours 1.5 seconds' WHERE id % 13 = 0; \
             UPDATE events SET payload = jsonb_set(payload, '{success_rate}', '1') WHERE id % 5 = 0; \
             DELETE FROM events WHERE id = 2; \
             INSERT INTO events (id, event_time, orchestrator, region_id, payload) \
               SELECT 2, now() - interval '1 hour', e.orchestrator, e.region_id, e.payload \
                 FROM events e WHERE e.id = (SELECT max(id) FROM events)",
        )
        .await
        .expect("writes across the boundary");
    for _ in 0..10 {
        let response = server
            .post(exact::random_payload(&mut rng).to_string())
            .await;
        assert_eq!(response.status().as_u16(), 200);
    }
    exact::compare_every_route(&server, &db, &windows, &mut rng).await;
    holder.batch_execute("COMMIT").await.expect("release");

    // Resumed, with writers racing the steps.
    let racing = {
        let url = db.url.clone();
        tokio::spawn(async move {
            let client = common::connect(&url).await;
            for i in 0..60 {
                client
                    .batch_execute(&format!(
                        "UPDATE events SET payload = jsonb_set(payload, '{{round_trip_time}}', '{}') \
                          WHERE id % 60 = {i}; DELETE FROM events WHERE id % 97 = {i}",
                        0.5 + f64::from(i) / 10.0
                    ))
                    .await
                    .expect("racing writes");
            }
        })
    };
    let mut lock = db.client().await;
    let done = backfill::run(&client, &mut lock, 500, |r| {
        if let backfill::Report::Counting(p) = r {
            assert!(p.rows_done > 0)
        }
    })
    .await
    .expect("resume");
    racing.await.expect("racing writer");
    assert!(done.complete, "{done:?}");
    let health = server.get_json("/api/health", 200).await;
    assert_eq!(health["backfill"]["complete"], json!(true), "{health}");
    exact::assert_counted_once(&db).await;
    exact::compare_every_route(&server, &db, &windows, &mut rng).await;

    // Idempotent: more steps change nothing.
    assert_eq!(
        backfill::step(&client, 1_000).await.expect("step"),
        backfill::Step::Left(0)
    );
    exact::assert_counted_once(&db).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cold_start_on_an_adopted_database_answers_exactly_without_waiting_for_the_backfill() {
    let db = golang_migrate_database(3, false).await;
    exact::insert_random_events(&db, 4_000).await;
    // The function's cold start: adoption and V4's schema steps, then answers at once;
    // the backfill runs behind them (held off here, so they are read half done).
    let mut client = operator_connection(&db).await;
    let holder = {
        migrate::run(&mut client)
            .await
            .expect("cold start's migrations");
        hold_off_steps(&db).await
    };
    let server = service(&db, true).await;
    let health = server.get_json("/api/health", 200).await;
    assert_eq!(
        health["migrations"]["version"],
        json!(leaderboard::schema::migrate::latest_version()),
        "{health}"
    );
    assert_eq!(health["backfill"]["complete"], json!(false), "{health}");
    assert_eq!(
        health["backfill"]["ids_left"], health["backfill"]["ids_total"],
        "{health}"
    );
    let mut rng = fastrand::Rng::with_seed(7);
    let windows = exact::windows(&mut rng, leaderboard::now(), 3);
    exact::compare_every_route(&server, &db, &windows, &mut rng).await;
    let raw = server
        .get_json("/api/raw_stats?orchestrator=0xa1", 200)
        .await;
    let stored: i64 = db
        .client()
        .await
        .query_one(
            "SELECT count(*) FROM event_details WHERE orchestrator = '0xa1' \
                AND job_type_name = 'transcoding' AND event_time >= now() - interval '24 hours'",
            &[],
        )
        .await
        .expect("count")
        .get(0);
    let served: usize = raw
        .as_object()
        .map(|m| m.values().filter_map(|v| v.as_array()).map(Vec::len).sum())
        .unwrap_or(0);
    assert_eq!(served as i64, stored);

    // Once let go, the service's own background task finishes it.
    holder.batch_execute("COMMIT").await.expect("release");
    let settled = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let health = server.get_json("/api/health", 200).await;
            if health["backfill"]["complete"] == json!(true)
                && health["backfill"]["index_ready"] == json!(true)
                && health["backfill"]["finished"] == json!(true)
            {
                return health;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the background task finishes the backfill");
    let scored: i64 = db
        .client()
        .await
        .query_one(
            "SELECT count(*) FROM events WHERE leaderboard_scored(payload)",
            &[],
        )
        .await
        .expect("scored")
        .get(0);
    assert!(scored < 4_000, "some unscored tests among them");
    assert_eq!(settled["backfill"]["rows_done"], json!(scored), "{settled}");
    exact::assert_counted_once(&db).await;
    exact::compare_every_route(&server, &db, &windows, &mut rng).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn one_statement_inserting_updating_and_deleting_many_rows_keeps_the_rollups_exact() {
    let db = TestDb::new().await;
    let server = service(&db, true).await;
    server.app.db.migrations().await.expect("migrations");
    exact::insert_random_events(&db, 100_000).await;
    let client = db.client().await;
    // A statement this large writes straight into the buckets (no appended rows to compact,
    // none left dead) and analyzes what the reads right after it plan with.
    let appended: i64 = client
        .query_one(
            "SELECT (SELECT count(*) FROM event_bucket_appends) \
                  + (SELECT count(*) FROM pipeline_bucket_appends)",
            &[],
        )
        .await
        .expect("appended rows")
        .get(0);
    assert_eq!(appended, 0);
    assert!(
        common::statistics_show(
            &client,
            "SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables WHERE relname = 'events'"
        )
        .await
    );
    client
        .batch_execute(
            "UPDATE events SET payload = COALESCE(jsonb_set(payload, '{round_trip_time}', \
                     to_jsonb(leaderboard_number(payload -> 'round_trip_time') / 2)), payload), \
                    event_time = event_time - interval '17 minutes'",
        )
        .await
        .expect("one large UPDATE");
    client
        .batch_execute("DELETE FROM events WHERE id % 3 = 0")
        .await
        .expect("one large DELETE");
    exact::assert_counted_once(&db).await;
    let mut rng = fastrand::Rng::with_seed(99);
    let windows = exact::windows(&mut rng, leaderboard::now(), 2);
    exact::compare_every_route(&server, &db, &windows, &mut rng).await;
    // A large compaction refreshed the planner's statistics of the rollups.
    let analyzed = common::statistics_show(
        &client,
        "SELECT bool_and(last_analyze IS NOT NULL) FROM pg_stat_user_tables \
          WHERE relname IN ('event_buckets_10m', 'event_buckets_1h', 'event_buckets_6h', \
                            'pipeline_buckets', 'ai_round_trips')",
    )
    .await;
    assert!(analyzed);
}

/// An index's state: `(valid, unique)`, or `None` when it does not exist.
async fn index_state(db: &TestDb, name: &str) -> Option<(bool, bool)> {
    db.client()
        .await
        .query_opt(
            "SELECT i.indisvalid, i.indisunique FROM pg_index i \
              WHERE i.indexrelid = to_regclass($1)",
            &[&name],
        )
        .await
        .expect("index state")
        .map(|r| (r.get(0), r.get(1)))
}

/// The raw_stats index's state (V4).
async fn raw_stats_index(db: &TestDb) -> Option<(bool, bool)> {
    index_state(db, "idx_events_orchestrator_region_time").await
}

/// The index of one region's AI median (V7).
const MEDIAN_INDEX: &str = "idx_ai_round_trips_region";

/// An adopted database of `events` events (above V4's inline-index threshold), migrated
/// and counted, with only the finish left.
async fn counted_but_unfinished(events: i64) -> TestDb {
    let db = golang_migrate_database(3, false).await;
    exact::insert_random_events(&db, events).await;
    let mut client = operator_connection(&db).await;
    migrate::run(&mut client).await.expect("migrate");
    while backfill::step(&client, 50_000).await.expect("step") != backfill::Step::Left(0) {}
    let state = backfill_state(&db).await;
    assert!(
        state.complete && !state.index_ready && !state.finished,
        "{state:?}"
    );
    db
}

/// Two processes finishing at the same moment (e.g. `migrate up` and a deployed service's
/// background task), each on its own pair of connections, until each says done.
async fn finish_twice_at_once(db: &TestDb) -> Vec<bool> {
    let start = Arc::new(tokio::sync::Barrier::new(2));
    let finishers: Vec<_> = (0..2)
        .map(|_| {
            let (start, url) = (start.clone(), db.url.clone());
            tokio::spawn(async move {
                let work = common::connect(&url).await;
                let mut lock = common::connect(&url).await;
                start.wait().await;
                loop {
                    match backfill::finish(&work, &mut lock).await.expect("finish") {
                        backfill::Finish::Done { built_index } => return built_index,
                        backfill::Finish::Busy => {
                            tokio::time::sleep(Duration::from_millis(20)).await
                        }
                    }
                }
            })
        })
        .collect();
    let mut built = Vec::new();
    for finisher in finishers {
        built.push(finisher.await.expect("finisher"));
    }
    built
}

#[tokio::test(flavor = "multi_thread")]
async fn two_processes_finishing_at_once_both_succeed_and_build_the_index_once() {
    let db = counted_but_unfinished(12_000).await;
    assert_eq!(raw_stats_index(&db).await, None);
    let built = finish_twice_at_once(&db).await;
    assert_eq!(built.iter().filter(|b| **b).count(), 1, "{built:?}");
    assert_eq!(raw_stats_index(&db).await, Some((true, false)));
    assert!(backfill_state(&db).await.settled());
    // Settled: a later finish has nothing left to do.
    let (work, mut lock) = (db.client().await, db.client().await);
    assert_eq!(
        backfill::finish(&work, &mut lock).await.expect("finish"),
        backfill::Finish::Done { built_index: false }
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invalid_leftover_index_found_by_two_processes_is_rebuilt_once() {
    let db = counted_but_unfinished(12_000).await;
    // A failed concurrent build leaves an invalid index behind: here a unique one that
    // meets two equal keys.
    let client = db.client().await;
    client
        .batch_execute(
            "INSERT INTO events (event_time, orchestrator, region_id, payload) \
             SELECT e.event_time, e.orchestrator, e.region_id, e.payload FROM events e \
              ORDER BY e.id LIMIT 1",
        )
        .await
        .expect("a duplicate key");
    let failed = client
        .batch_execute(
            "CREATE UNIQUE INDEX CONCURRENTLY idx_events_orchestrator_region_time \
               ON events (orchestrator, region_id, event_time)",
        )
        .await
        .expect_err("a unique build over duplicates fails");
    assert_eq!(
        failed.code(),
        Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
    );
    assert_eq!(raw_stats_index(&db).await, Some((false, true)));

    let built = finish_twice_at_once(&db).await;
    assert_eq!(built.iter().filter(|b| **b).count(), 1, "{built:?}");
    assert_eq!(raw_stats_index(&db).await, Some((true, false)));
    assert!(backfill_state(&db).await.settled());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_finished_before_v7_gets_the_median_index_from_the_next_finish() {
    // A database on V6 whose finish ran, with more round trips than V7 indexes inline.
    let db = TestDb::new().await;
    let mut client = operator_connection(&db).await;
    migrate::run(&mut client).await.expect("migrate");
    client
        .batch_execute(concat!(
            include_str!("../migrations/down/V7__ai_median_by_region.down.sql"),
            "; DELETE FROM refinery_schema_history WHERE version = 7;"
        ))
        .await
        .expect("back to V6");
    exact::insert_random_events(&db, 3_000).await;
    exact::insert_ai_successes(&db, 10_000).await;
    assert!(backfill_state(&db).await.finished);

    // V7 itself leaves the index to the finish and says the finish is to be done again.
    let state = migrate::run(&mut client).await.expect("V7");
    assert_eq!(state.applied_now, [7]);
    let before = backfill_state(&db).await;
    assert!(
        before.complete && !before.index_ready && !before.finished,
        "{before:?}"
    );
    assert_eq!(index_state(&db, MEDIAN_INDEX).await, None);
    let server = service(&db, false).await;
    let health = server.get_json("/api/health", 200).await;
    assert_eq!(health["backfill"]["index_ready"], json!(false), "{health}");
    // Exact without the index: the same SQL, planned on the older one.
    let mut rng = fastrand::Rng::with_seed(7);
    let windows = exact::windows(&mut rng, leaderboard::now(), 3);
    exact::compare_every_route(&server, &db, &windows, &mut rng).await;

    // A killed build left an invalid index behind (here a unique one over equal keys):
    // two processes finishing at once drop it and build the index once.
    let failed = db
        .client()
        .await
        .batch_execute(
            "CREATE UNIQUE INDEX CONCURRENTLY idx_ai_round_trips_region \
               ON ai_round_trips (pipeline, model, region_id, event_time)",
        )
        .await
        .expect_err("a unique build over equal keys fails");
    assert_eq!(
        failed.code(),
        Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
    );
    assert_eq!(index_state(&db, MEDIAN_INDEX).await, Some((false, true)));
    let built = finish_twice_at_once(&db).await;
    assert_eq!(built.iter().filter(|b| **b).count(), 1, "{built:?}");
    assert_eq!(index_state(&db, MEDIAN_INDEX).await, Some((true, false)));
    assert!(backfill_state(&db).await.settled());
    let health = server.get_json("/api/health", 200).await;
    assert_eq!(health["backfill"]["index_ready"], json!(true), "{health}");
    assert_eq!(health["backfill"]["finished"], json!(true), "{health}");
    // The index V7 builds inline on a small table, column for column.
    let definition: String = db
        .client()
        .await
        .query_one("SELECT pg_get_indexdef(to_regclass($1))", &[&MEDIAN_INDEX])
        .await
        .expect("definition")
        .get(0);
    assert_eq!(
        definition,
        "CREATE INDEX idx_ai_round_trips_region ON public.ai_round_trips USING btree \
         (pipeline, model, region_id, event_time) INCLUDE (round_trip_time)"
    );
    // One region's median reads it, and only that region's round trips.
    let plan: String = db
        .client()
        .await
        .query(
            "EXPLAIN (COSTS OFF) SELECT PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY a.round_trip_time) \
               FROM ai_round_trips a \
              WHERE a.pipeline = 'text-to-image' AND a.model = 'm-one' \
                AND a.event_time >= now() - interval '24 hours' AND a.event_time <= now() \
                AND a.region_id = (SELECT r.id FROM regions r JOIN job_types j ON j.id = r.job_type_id \
                                    WHERE j.name = 'ai' AND r.name = 'FRA')",
            &[],
        )
        .await
        .expect("plan")
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        plan.contains("using idx_ai_round_trips_region")
            && plan
                .lines()
                .any(|l| l.contains("Index Cond") && l.contains("region_id =")),
        "{plan}"
    );
    exact::compare_every_route(&server, &db, &windows, &mut rng).await;
}

/// Makes the next `failures` statements that fire `trigger_sql`'s trigger fail with a
/// deadlock (SQLSTATE 40P01), as PostgreSQL's deadlock detector would; counts the calls.
async fn inject_deadlocks(db: &TestDb, failures: i64) {
    db.client()
        .await
        .batch_execute(&format!(
            "CREATE SEQUENCE injected_calls; \
             CREATE FUNCTION injected_deadlock() RETURNS void LANGUAGE plpgsql AS $$ \
             BEGIN \
               IF nextval('injected_calls') <= {failures} THEN \
                 RAISE EXCEPTION 'injected deadlock' USING ERRCODE = 'deadlock_detected'; \
               END IF; \
             END $$;"
        ))
        .await
        .expect("inject deadlocks");
}

async fn injected_calls(db: &TestDb) -> i64 {
    db.client()
        .await
        .query_one("SELECT last_value FROM injected_calls", &[])
        .await
        .expect("calls")
        .get(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deadlock_on_a_backfill_step_is_retried() {
    let db = golang_migrate_database(3, false).await;
    exact::insert_random_events(&db, 2_000).await;
    let mut client = operator_connection(&db).await;
    migrate::run(&mut client).await.expect("migrate");
    inject_deadlocks(&db, 2).await;
    db.client()
        .await
        .batch_execute(
            "CREATE FUNCTION injected_deadlock_trigger() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN PERFORM injected_deadlock(); RETURN NEW; END $$; \
             CREATE TRIGGER injected BEFORE UPDATE ON leaderboard_backfill \
               FOR EACH ROW EXECUTE FUNCTION injected_deadlock_trigger()",
        )
        .await
        .expect("trigger");
    assert_eq!(
        backfill::step(&client, 50_000).await.expect("step"),
        backfill::Step::Left(0)
    );
    assert_eq!(injected_calls(&db).await, 3, "two failures, then the step");
    exact::assert_counted_once(&db).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deadlock_during_the_migrations_is_retried() {
    let db = golang_migrate_database(3, false).await;
    exact::insert_random_events(&db, 500).await;
    inject_deadlocks(&db, 1).await;
    db.client()
        .await
        .batch_execute(
            "CREATE FUNCTION injected_deadlock_on_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$ \
             BEGIN PERFORM injected_deadlock(); END $$; \
             CREATE EVENT TRIGGER injected ON ddl_command_start \
               EXECUTE FUNCTION injected_deadlock_on_ddl()",
        )
        .await
        .expect("event trigger");
    let mut client = operator_connection(&db).await;
    let state = migrate::run(&mut client).await.expect("migrate");
    assert!(state.applied_now.contains(&4) && state.applied_now.contains(&5));
    assert!(
        injected_calls(&db).await > 1,
        "the failed try and the retry"
    );
    db.client()
        .await
        .batch_execute("DROP EVENT TRIGGER injected")
        .await
        .expect("drop the event trigger");
    let done = backfill::run(&client, &mut operator_connection(&db).await, 50_000, |_| {})
        .await
        .expect("backfill");
    assert!(done.settled(), "{done:?}");
    exact::assert_counted_once(&db).await;
}
