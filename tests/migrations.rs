//! Migrations on a real PostgreSQL: fresh databases, re-runs, concurrent cold starts,
//! adoption of golang-migrate databases and refusal of dirty ones.

mod common;

use common::{assert_seed_regions, TestDb, TestServer};
use leaderboard::{App, Config};
use serde_json::json;
use std::sync::Arc;

/// Every migration this build knows, in order.
fn all_versions() -> Vec<i32> {
    (1..=leaderboard::schema::migrate::latest_version()).collect()
}

async fn history(db: &TestDb) -> Vec<i32> {
    db.client()
        .await
        .query(
            "SELECT version FROM refinery_schema_history ORDER BY version",
            &[],
        )
        .await
        .expect("refinery history")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

async fn count(db: &TestDb, table: &str) -> i64 {
    db.client()
        .await
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .expect("count")
        .get(0)
}

/// The schema as the catalog describes it, to compare two databases or two moments.
async fn schema_snapshot(db: &TestDb) -> Vec<String> {
    let client = db.client().await;
    let mut lines: Vec<String> = client
        .query(
            "SELECT table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable \
               || ' ' || COALESCE(character_maximum_length::text, '') || ' ' || COALESCE(column_default, '') \
               FROM information_schema.columns WHERE table_schema = 'public' \
              ORDER BY table_name, ordinal_position",
            &[],
        )
        .await
        .expect("columns")
        .iter()
        .map(|r| r.get(0))
        .collect();
    lines.extend(
        client
            .query(
                "SELECT indexname || ' ' || indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY indexname",
                &[],
            )
            .await
            .expect("indexes")
            .iter()
            .map(|r| r.get::<_, String>(0)),
    );
    lines.extend(
        client
            .query(
                "SELECT conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint \
                  WHERE connamespace = 'public'::regnamespace ORDER BY conname",
                &[],
            )
            .await
            .expect("constraints")
            .iter()
            .map(|r| r.get::<_, String>(0)),
    );
    lines.push(
        client
            .query_one("SELECT pg_get_viewdef('event_details'::regclass)", &[])
            .await
            .expect("view")
            .get(0),
    );
    lines
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fresh_database_is_migrated_and_serves_the_26_seed_regions() {
    let db = TestDb::new().await;
    let server = TestServer::on(&db).await;
    let body = server.get_json("/api/regions", 200).await;
    assert_seed_regions(&body);
    assert_eq!(history(&db).await, all_versions());
    assert_eq!(count(&db, "job_types").await, 2);
    assert_eq!(count(&db, "events").await, 0);
    let golang_migrate: Vec<(i64, bool)> = db
        .client()
        .await
        .query("SELECT version, dirty FROM schema_migrations", &[])
        .await
        .expect("golang-migrate's version")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(golang_migrate, [(3, false)]);
    let schema = schema_snapshot(&db).await.join("\n");
    for expected in [
        "idx_events_region_id",
        "idx_events_orchestrator",
        "idx_events_timestamp",
        "idx_events_payload_pipeline",
        "idx_events_payload_model",
        "unique_name_jobtype UNIQUE (name, job_type_id)",
        "events.payload jsonb NO",
        "regions.display_name character varying NO 128",
        // golang-migrate's table as it creates it, so the original service can serve
        // this database again.
        "schema_migrations.version bigint NO  ",
        "schema_migrations.dirty boolean NO  ",
        "schema_migrations_pkey PRIMARY KEY (version)",
    ] {
        assert!(
            schema.contains(expected),
            "schema lacks {expected}:\n{schema}"
        );
    }
    let view_columns: Vec<String> = db
        .client()
        .await
        .query(
            "SELECT column_name::text FROM information_schema.columns WHERE table_name = 'event_details' ORDER BY ordinal_position",
            &[],
        )
        .await
        .expect("view columns")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        view_columns,
        [
            "region_name",
            "job_type_name",
            "id",
            "event_time",
            "success_rate",
            "seg_duration",
            "round_trip_time",
            "orchestrator",
            "payload"
        ]
    );
}

/// Whether `table` exists in `db`.
async fn exists(db: &TestDb, table: &str) -> bool {
    db.client()
        .await
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
        .await
        .expect("to_regclass")
        .get(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_migration_leaves_nothing_behind_and_the_next_request_retries() {
    let db = TestDb::new().await;
    // V4 creates ai_round_trips; an object of that name makes V4 fail after V1-V3 ran.
    db.client()
        .await
        .batch_execute("CREATE TABLE ai_round_trips (x int)")
        .await
        .expect("conflicting table");
    let server = TestServer::on(&db).await;
    let body = server.get_json("/api/regions", 503).await;
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("ai_round_trips"),
        "{body}"
    );
    // One transaction: V1-V3 and refinery's own table were rolled back with V4.
    for table in [
        "refinery_schema_history",
        "events",
        "regions",
        "event_buckets",
    ] {
        assert!(!exists(&db, table).await, "{table} was left behind");
    }

    db.client()
        .await
        .batch_execute("DROP TABLE ai_round_trips")
        .await
        .expect("drop");
    assert_seed_regions(&server.get_json("/api/regions", 200).await);
    assert_eq!(history(&db).await, all_versions());
}

#[tokio::test(flavor = "multi_thread")]
async fn running_the_migrations_twice_changes_nothing() {
    let db = TestDb::new().await;
    let first = App::new(Config::for_database(&db.url));
    let state = first.db.migrations().await.expect("first run").clone();
    assert_eq!(state.applied_now, all_versions());
    let before = schema_snapshot(&db).await;

    let second = App::new(Config::for_database(&db.url));
    let state = second.db.migrations().await.expect("second run").clone();
    assert!(state.applied_now.is_empty(), "{state:?}");
    assert_eq!(
        state.version,
        leaderboard::schema::migrate::latest_version()
    );
    assert_eq!(schema_snapshot(&db).await, before);
    assert_eq!(history(&db).await, all_versions());
    assert_eq!(count(&db, "regions").await, 26);
}

#[tokio::test(flavor = "multi_thread")]
async fn eight_pools_cold_starting_at_once_apply_each_migration_once() {
    let db = TestDb::new().await;
    let apps: Vec<Arc<App>> = (0..8)
        .map(|_| Arc::new(App::new(Config::for_database(&db.url))))
        .collect();
    let tasks: Vec<_> = apps
        .iter()
        .map(|app| {
            let app = app.clone();
            tokio::spawn(async move { app.db.migrations().await.cloned() })
        })
        .collect();
    let mut applied = Vec::new();
    for task in tasks {
        let state = task.await.expect("task").expect("every instance migrates");
        assert_eq!(
            state.version,
            leaderboard::schema::migrate::latest_version()
        );
        applied.extend(state.applied_now);
    }
    applied.sort();
    assert_eq!(
        applied,
        all_versions(),
        "each migration applied by exactly one instance"
    );
    assert_eq!(history(&db).await, all_versions());
    assert_eq!(count(&db, "regions").await, 26);
    for app in &apps {
        let server = TestServer::start(app.config.clone()).await;
        server.get_json("/api/health", 200).await;
    }
}

/// A database as the Go service leaves it, with some events.
async fn golang_migrate_database(version: i64, dirty: bool) -> TestDb {
    let db = common::golang_migrate_database(version, dirty).await;
    let client = db.client().await;
    client
        .batch_execute(
            r#"INSERT INTO events (event_time, orchestrator, region_id, payload) VALUES
               ('2024-09-20 10:00:00+00', '0xaaa', 7, '{"region":"FRA","orchestrator":"0xaaa","success_rate":1,"round_trip_time":1.5,"seg_duration":2,"errors":[],"timestamp":1726826400}'),
               ('2024-09-20 11:00:00+00', '0xbbb', 8, '{"region":"FRA","orchestrator":"0xbbb","success_rate":0.5,"round_trip_time":7.2,"model":"m","pipeline":"p","errors":null,"timestamp":1726830000}')"#,
        )
        .await
        .expect("events");
    db
}

async fn events_snapshot(db: &TestDb) -> Vec<String> {
    db.client()
        .await
        .query(
            "SELECT id || '|' || event_time::text || '|' || orchestrator || '|' || region_id || '|' || payload::text FROM events ORDER BY id",
            &[],
        )
        .await
        .expect("events")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_golang_migrate_database_is_adopted_without_rerunning_anything() {
    let db = golang_migrate_database(3, false).await;
    let events_before = events_snapshot(&db).await;
    let schema_before = schema_snapshot(&db).await;
    assert_eq!(events_before.len(), 2);

    let server = TestServer::on(&db).await;
    let health = server.get_json("/api/health", 200).await;
    assert_eq!(health["postgres"]["ok"], true);
    assert_eq!(health["migrations"]["adopted_golang_migrate_version"], 3);
    // Only the migrations the Go service never had run; the three it had are recorded.
    let newer: Vec<i32> = all_versions().into_iter().filter(|v| *v > 3).collect();
    assert_eq!(
        health["migrations"]["applied_at_start"],
        serde_json::json!(newer)
    );
    assert_seed_regions(&server.get_json("/api/regions", 200).await);

    assert_eq!(events_snapshot(&db).await, events_before);
    assert_eq!(history(&db).await, all_versions());
    assert_eq!(count(&db, "regions").await, 26);
    let schema_after = schema_snapshot(&db).await;
    for line in &schema_before {
        assert!(
            schema_after.contains(line),
            "the original schema is kept: {line}"
        );
    }
    // The events that were there are counted by the read-path rollups (V4).
    let counted: i64 = db
        .client()
        .await
        .query_one(
            "SELECT COALESCE(sum(events), 0)::bigint FROM event_buckets WHERE span = 600",
            &[],
        )
        .await
        .expect("rollups")
        .get(0);
    assert_eq!(counted, 2);
    let kept: (i64, bool) = {
        let row = db
            .client()
            .await
            .query_one("SELECT version, dirty FROM schema_migrations", &[])
            .await
            .expect("schema_migrations is kept");
        (row.get(0), row.get(1))
    };
    assert_eq!(kept, (3, false));

    // A second cold start on the adopted database is an ordinary no-op.
    let again = App::new(Config::for_database(&db.url));
    let state = again.db.migrations().await.expect("second start").clone();
    assert!(state.applied_now.is_empty());
    assert_eq!(state.adopted_golang_migrate_version, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dirty_golang_migrate_database_is_refused_with_a_clear_error() {
    let db = golang_migrate_database(3, true).await;
    let events_before = events_snapshot(&db).await;
    let server = TestServer::on(&db).await;

    let health = server.get_json("/api/health", 503).await;
    assert_eq!(health["postgres"]["ok"], false);
    let message = health["postgres"]["error"]
        .as_str()
        .expect("an error message");
    assert!(
        message.contains("dirty") && message.contains("version 3"),
        "{message}"
    );

    let response = server.get("/api/regions").await;
    assert_eq!(response.status().as_u16(), 503);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: serde_json::Value = response.json().await.expect("JSON error");
    assert!(
        body["error"].as_str().unwrap_or_default().contains("dirty"),
        "{body}"
    );

    assert_eq!(events_snapshot(&db).await, events_before);
    let history_exists: bool = db
        .client()
        .await
        .query_one(
            "SELECT to_regclass('refinery_schema_history') IS NOT NULL",
            &[],
        )
        .await
        .expect("catalog")
        .get(0);
    assert!(
        !history_exists,
        "nothing may be written to a dirty database"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_golang_migrate_version_is_refused() {
    let db = golang_migrate_database(7, false).await;
    let server = TestServer::on(&db).await;
    let health = server.get_json("/api/health", 503).await;
    let message = health["postgres"]["error"].as_str().unwrap_or_default();
    assert!(message.contains("version 7"), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn legacy_region_tables_are_copied_into_events() {
    let db = TestDb::new().await;
    db.client()
        .await
        .batch_execute(
            r#"CREATE TABLE fra (stats jsonb);
               INSERT INTO fra VALUES ('{"orchestrator":"0xold","success_rate":1,"round_trip_time":3,"timestamp":1700000000}');
               CREATE TABLE lax (stats jsonb);
               INSERT INTO lax VALUES ('{"orchestrator":"0xai","success_rate":1,"round_trip_time":3,"timestamp":1700000100,"model":"m","pipeline":"p"}');"#,
        )
        .await
        .expect("legacy tables");
    let app = App::new(Config::for_database(&db.url));
    app.db.migrations().await.expect("migrations");
    let rows: Vec<(String, String, String, i64)> = db
        .client()
        .await
        .query(
            "SELECT e.orchestrator::text, r.name::text, j.name::text, extract(epoch FROM e.event_time)::bigint \
               FROM events e JOIN regions r ON r.id = e.region_id JOIN job_types j ON j.id = r.job_type_id ORDER BY e.orchestrator",
            &[],
        )
        .await
        .expect("events")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    assert_eq!(
        rows,
        [
            (
                "0xai".to_string(),
                "LAX".to_string(),
                "ai".to_string(),
                1700000100
            ),
            (
                "0xold".to_string(),
                "FRA".to_string(),
                "transcoding".to_string(),
                1700000000
            ),
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_on_the_first_release_of_v4_is_upgraded_and_counted_again() {
    // As the first release left it: today's V1–V3, its V4 (backfill inside the migration,
    // array-building triggers) recorded with its checksum, events counted by its triggers.
    let db = TestDb::new().await;
    // No background backfill: once V5 is reverted under it, it would find the finish
    // undone and build the index again while the schema is being replaced.
    let mut config = leaderboard::Config::for_database(&db.url);
    config.backfill_in_background = false;
    let server = TestServer::start(config).await;
    server.app.db.migrations().await.expect("migrations");
    let client = db.client().await;
    client
        .batch_execute(concat!(
            include_str!("../migrations/down/V7__ai_median_by_region.down.sql"),
            include_str!("../migrations/down/V6__post_receipts.down.sql"),
            include_str!("../migrations/down/V5__unscored_tests.down.sql"),
            "; DELETE FROM refinery_schema_history WHERE version > 4;"
        ))
        .await
        .expect("revert what came after it");
    client
        .batch_execute(include_str!(
            "../migrations/down/V4__read_path_rollups.down.sql"
        ))
        .await
        .expect("revert V4");
    client
        .batch_execute(include_str!("fixtures/V4_first_release.sql"))
        .await
        .expect("the first release's V4");
    client
        .batch_execute(&format!(
            "UPDATE refinery_schema_history SET checksum = '{}' WHERE version = 4",
            leaderboard::schema::migrate::FIRST_V4_CHECKSUM
        ))
        .await
        .expect("its checksum");
    common::exact::insert_random_events(&db, 3_000).await;
    drop(server);

    let server = TestServer::on(&db).await;
    let health = server.get_json("/api/health", 200).await;
    assert_eq!(
        health["migrations"]["version"],
        json!(leaderboard::schema::migrate::latest_version()),
        "{health}"
    );
    let mut client = leaderboard::db::connect(&db.url, std::time::Duration::from_secs(20))
        .await
        .expect("connect");
    let mut lock = db.client().await;
    leaderboard::schema::backfill::run(&client, &mut lock, 1_000, |_| {})
        .await
        .expect("backfill");
    let status = leaderboard::schema::migrate::status(&client)
        .await
        .expect("status");
    assert_eq!(status.problem, None);
    assert!(leaderboard::schema::migrate::run(&mut client)
        .await
        .expect("again")
        .applied_now
        .is_empty());
    common::exact::assert_counted_once(&db).await;
    let mut rng = fastrand::Rng::with_seed(4);
    let windows = common::exact::windows(&mut rng, leaderboard::now(), 2);
    common::exact::compare_every_route(&server, &db, &windows, &mut rng).await;
}
