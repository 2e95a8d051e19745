//! The database connection: the PostgreSQL version the tests run on, health while the
//! server goes away and comes back, and TLS against a server that accepts only TLS
//! connections.

mod common;

use common::{assert_seed_regions, with_database, TestDb, TestServer};
use leaderboard::Config;
use std::time::Duration;

fn start_server(tls: bool) -> localpg::PgServer {
    let mut options = localpg::Options::ephemeral();
    options.tls = tls;
    localpg::PgServer::start(options).unwrap_or_else(|e| panic!("cannot start PostgreSQL: {e}"))
}

/// The oldest PostgreSQL major version the service supports (and CI tests, with the newest:
/// ci/postgres-versions.sh).
const OLDEST_SUPPORTED_MAJOR: u32 = 14;

/// The major version of the server `client` is connected to, from `server_version_num`.
async fn server_major(client: &tokio_postgres::Client) -> u32 {
    let row = client
        .query_one("SHOW server_version_num", &[])
        .await
        .unwrap_or_else(|e| panic!("SHOW server_version_num: {e}"));
    let number: String = row.get(0);
    number
        .trim()
        .parse::<u32>()
        .unwrap_or_else(|e| panic!("server_version_num {number:?}: {e}"))
        / 10_000
}

/// The tests run on the PostgreSQL they are meant to: with `EXPECT_PG_MAJOR` set (as
/// ci/postgres-versions.sh does beside `PG_BINDIR`) exactly that major version, both the
/// server every test shares and one started alone here; without it, a supported version.
#[tokio::test(flavor = "multi_thread")]
async fn the_tests_run_on_the_expected_postgresql_version() {
    let db = TestDb::new().await;
    let shared = server_major(&db.client().await).await;
    let pg = start_server(false);
    let own = server_major(&common::connect(&pg.url("postgres")).await).await;
    eprintln!(
        "PostgreSQL {shared} (the shared test server), {own} (from {})",
        pg.bindir().display()
    );
    match std::env::var("EXPECT_PG_MAJOR") {
        Ok(expected) => {
            let expected: u32 = expected
                .trim()
                .parse()
                .unwrap_or_else(|e| panic!("EXPECT_PG_MAJOR={expected:?}: {e}"));
            assert_eq!(shared, expected, "the shared test server's major version");
            assert_eq!(
                own, expected,
                "the major version of a server localpg starts"
            );
        }
        Err(_) => {
            assert!(
                shared >= OLDEST_SUPPORTED_MAJOR,
                "PostgreSQL {shared} is older than the oldest supported, {OLDEST_SUPPORTED_MAJOR}"
            );
            let external = std::env::var("TEST_DATABASE_URL").is_ok_and(|u| !u.trim().is_empty());
            if !external {
                assert_eq!(own, shared, "both servers come from the same binaries");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn health_follows_the_database_down_and_back_up_without_a_restart() {
    let mut pg = start_server(false);
    let mut config = Config::for_database(&pg.url("postgres"));
    config.db_timeout = Duration::from_secs(3);
    config.regions_cache_timeout = Duration::ZERO;
    let server = TestServer::start(config).await;

    let up = server.get_json("/api/health", 200).await;
    assert_eq!(up["postgres"], serde_json::json!({"ok": true}));
    assert_eq!(
        up["migrations"]["version"],
        leaderboard::schema::migrate::latest_version()
    );

    pg.stop_keep_data().expect("stop");
    let down = server.get_json("/api/health", 503).await;
    assert_eq!(down["postgres"]["ok"], false);
    assert!(
        down["postgres"]["error"]
            .as_str()
            .is_some_and(|e| !e.is_empty()),
        "{down}"
    );
    let response = server.get("/api/regions").await;
    assert_eq!(response.status().as_u16(), 503);

    pg.restart().expect("restart");
    assert_eq!(
        server.get_json("/api/health", 200).await["postgres"]["ok"],
        true
    );
    assert_seed_regions(&server.get_json("/api/regions", 200).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_first_request_while_the_database_is_down_migrates_once_it_is_back() {
    let mut pg = start_server(false);
    let url = pg.url("postgres");
    pg.stop_keep_data().expect("stop");
    let mut config = Config::for_database(&url);
    config.db_timeout = Duration::from_secs(3);
    let server = TestServer::start(config).await;
    server.get_json("/api/regions", 503).await;
    pg.restart().expect("restart");
    assert_seed_regions(&server.get_json("/api/regions", 200).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_only_servers_work_with_sslmode_require_and_verify_full() {
    let pg = start_server(true);
    let cert = pg.cert_path().expect("a certificate").display().to_string();
    let plain = with_database(&pg.url("postgres"), "postgres");

    for query in [
        "sslmode=require".to_string(),
        format!("sslmode=verify-ca&sslrootcert={cert}"),
    ] {
        let server = TestServer::start(Config::for_database(&format!("{plain}?{query}"))).await;
        let health = server.get_json("/api/health", 200).await;
        assert_eq!(health["postgres"]["ok"], true, "{query}");
        assert_seed_regions(&server.get_json("/api/regions", 200).await);
    }
    let by_name = format!(
        "postgres://postgres@localhost:{}/postgres?sslmode=verify-full&sslrootcert={cert}",
        pg.port()
    );
    let server = TestServer::start(Config::for_database(&by_name)).await;
    assert_eq!(
        server.get_json("/api/health", 200).await["postgres"]["ok"],
        true
    );

    // Without TLS the server's pg_hba refuses the connection; the error says so.
    let server = TestServer::start(Config::for_database(&format!("{plain}?sslmode=disable"))).await;
    let health = server.get_json("/api/health", 503).await;
    let error = health["postgres"]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("pg_hba.conf") || error.contains("encryption"),
        "{error}"
    );

    // verify-full against a self-signed certificate that is not trusted fails.
    let untrusted = format!(
        "postgres://postgres@localhost:{}/postgres?sslmode=verify-full",
        pg.port()
    );
    let server = TestServer::start(Config::for_database(&untrusted)).await;
    let health = server.get_json("/api/health", 503).await;
    let error = health["postgres"]["error"].as_str().unwrap_or_default();
    assert!(error.to_lowercase().contains("certificate"), "{error}");
}
