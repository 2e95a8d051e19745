//! The common rules of the spec over real HTTP: headers, methods, CORS, errors,
//! the regions cache, DB_TIMEOUT, and the route table matching `api/`.

mod common;

use common::openapi::SendChecked;
use common::{assert_seed_regions, TestDb, TestServer};
use leaderboard::{Config, Route};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn regions_answer_with_the_common_success_headers() {
    let db = TestDb::new().await;
    let server = TestServer::on(&db).await;
    let response = server.get("/api/regions").await;
    assert_eq!(response.status().as_u16(), 200);
    let h = response.headers();
    assert_eq!(h["content-type"], "application/json");
    assert_eq!(h["access-control-allow-origin"], "*");
    assert_eq!(
        h["cache-control"],
        "public, max-age=30, stale-while-revalidate=15"
    );
    let first = response.bytes().await.expect("body");
    let second = server
        .get("/api/regions")
        .await
        .bytes()
        .await
        .expect("body");
    assert_eq!(first, second, "equal data gives byte-equal output");
    assert_seed_regions(&serde_json::from_slice(&first).expect("JSON"));
}

#[tokio::test(flavor = "multi_thread")]
async fn every_route_answers_the_cors_preflight() {
    let db = TestDb::new().await;
    let server = TestServer::on(&db).await;
    let client = reqwest::Client::new();
    for route in Route::ALL {
        let path = format!("/api/{}", route.name());
        let response = client
            .request(reqwest::Method::OPTIONS, server.url(&path))
            .send_checked()
            .await
            .expect("OPTIONS");
        assert_eq!(response.status().as_u16(), 204, "{path}");
        let h = response.headers();
        assert_eq!(h["access-control-allow-origin"], "*");
        assert_eq!(
            h["access-control-allow-methods"],
            "POST, GET, OPTIONS, PUT, DELETE"
        );
        assert_eq!(
            h["access-control-allow-headers"],
            "Accept, Content-Type, Content-Length, Accept-Encoding, X-CSRF-Token, Authorization"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_methods_get_405_with_allow_and_head_gets_no_body() {
    let db = TestDb::new().await;
    let server = TestServer::on(&db).await;
    let client = reqwest::Client::new();
    for method in [
        reqwest::Method::POST,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
    ] {
        let response = client
            .request(method.clone(), server.url("/api/regions"))
            .body("{}")
            .send_checked()
            .await
            .expect("request");
        assert_eq!(response.status().as_u16(), 405, "{method}");
        let h = response.headers().clone();
        assert_eq!(h["allow"], "GET, HEAD, OPTIONS");
        assert_eq!(h["content-type"], "application/json");
        assert_eq!(h["cache-control"], "no-store");
        assert_eq!(h["access-control-allow-origin"], "*");
        let body: serde_json::Value = response.json().await.expect("JSON");
        assert_eq!(body, serde_json::json!({"error": "method not allowed"}));
    }
    let head = client
        .head(server.url("/api/regions"))
        .send_checked()
        .await
        .expect("HEAD");
    assert_eq!(head.status().as_u16(), 200);
    assert_eq!(head.headers()["content-type"], "application/json");
    assert!(head.bytes().await.expect("body").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_routes_get_a_json_404() {
    let db = TestDb::new().await;
    let server = TestServer::on(&db).await;
    for path in [
        "/",
        "/api",
        "/api/",
        "/api/nope",
        "/regions",
        "/api/regions/extra",
        "/api/../api/x",
    ] {
        let response = server.get(path).await;
        assert_eq!(response.status().as_u16(), 404, "{path}");
        assert_eq!(response.headers()["cache-control"], "no-store");
        let body: serde_json::Value = response.json().await.expect("JSON");
        assert_eq!(body, serde_json::json!({"error": "not found"}), "{path}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_bodies_get_413() {
    let db = TestDb::new().await;
    let server = TestServer::on(&db).await;
    let response = reqwest::Client::new()
        .get(server.url("/api/regions"))
        .body(vec![b'x'; 2 * 1024 * 1024])
        .send_checked()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 413);
    let body: serde_json::Value = response.json().await.expect("JSON");
    assert_eq!(body["error"], "request body too large");
}

#[tokio::test(flavor = "multi_thread")]
async fn regions_are_cached_for_the_configured_time() {
    let db = TestDb::new().await;
    let cached = TestServer::on(&db).await;
    let mut config = Config::for_database(&db.url);
    config.regions_cache_timeout = Duration::ZERO;
    let uncached = TestServer::start(config).await;

    assert_eq!(
        cached.get_json("/api/regions", 200).await["regions"]
            .as_array()
            .map(Vec::len),
        Some(26)
    );
    assert_eq!(
        uncached.get_json("/api/regions", 200).await["regions"]
            .as_array()
            .map(Vec::len),
        Some(26)
    );
    db.client()
        .await
        .batch_execute("INSERT INTO regions (name, display_name, job_type_id) VALUES ('JNB', 'Johannesburg', 1)")
        .await
        .expect("insert");
    let from_cache = cached.get_json("/api/regions", 200).await;
    assert_eq!(from_cache["regions"].as_array().map(Vec::len), Some(26));
    let fresh = uncached.get_json("/api/regions", 200).await;
    let regions = fresh["regions"].as_array().expect("array");
    assert_eq!(regions.len(), 27);
    assert_eq!(
        regions[26],
        serde_json::json!({"id": "JNB", "name": "Johannesburg", "type": "transcoding"})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_query_slower_than_db_timeout_gives_503_not_a_hang() {
    let db = TestDb::new().await;
    let mut config = Config::for_database(&db.url);
    config.db_timeout = Duration::from_secs(1);
    config.regions_cache_timeout = Duration::ZERO;
    let server = TestServer::start(config).await;
    server.get_json("/api/regions", 200).await;

    let mut locker = db.client().await;
    let tx = locker.transaction().await.expect("begin");
    tx.batch_execute("LOCK TABLE regions IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("lock");
    let response = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
        .get(server.url("/api/regions"))
        .send_checked()
        .await
        .expect("an answer, not a client timeout");
    assert_eq!(response.status().as_u16(), 503);
    let body: serde_json::Value = response.json().await.expect("JSON");
    assert_eq!(body["error"], "database operation timed out");
    tx.rollback().await.expect("rollback");
    server.get_json("/api/regions", 200).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_postgres_routes_answer_503_and_health_says_why() {
    let (config, _) = Config::from_lookup(|_| None);
    let server = TestServer::start(config).await;
    let body = server.get_json("/api/regions", 503).await;
    assert_eq!(body["error"], "database is not configured: set POSTGRES");
    let health = server.get_json("/api/health", 503).await;
    assert_eq!(health["postgres"]["ok"], false);
    assert_eq!(
        health["postgres"]["error"],
        "database is not configured: set POSTGRES"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_quoted_postgres_value_with_a_semicolon_works() {
    let db = TestDb::new().await;
    let raw = format!(" \"{};\" \n", db.url);
    let (config, warnings) = Config::from_lookup(|k| (k == "POSTGRES").then(|| raw.clone()));
    assert!(warnings.is_empty());
    let server = TestServer::start(config).await;
    assert_eq!(
        server.get_json("/api/health", 200).await["postgres"]["ok"],
        true
    );
}

#[test]
fn the_route_table_matches_the_api_directory_and_the_bins() {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut files: Vec<String> = std::fs::read_dir(format!("{root}/api"))
        .expect("api/")
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter_map(|n| n.strip_suffix(".rs").map(str::to_string))
        .collect();
    files.sort();
    let mut routes: Vec<String> = Route::ALL.iter().map(|r| r.name().to_string()).collect();
    routes.sort();
    assert_eq!(
        files, routes,
        "every api/*.rs has a route and the other way round"
    );
    let manifest = std::fs::read_to_string(format!("{root}/Cargo.toml")).expect("Cargo.toml");
    for name in &files {
        let bin = format!("[[bin]]\nname = \"{name}\"\npath = \"api/{name}.rs\"");
        assert!(manifest.contains(&bin), "Cargo.toml lacks {bin}");
        let source = std::fs::read_to_string(format!("{root}/api/{name}.rs")).expect("source");
        assert!(
            source.lines().count() <= 10,
            "api/{name}.rs should stay a few lines"
        );
    }
}
