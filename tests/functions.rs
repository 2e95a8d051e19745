//! The compiled function binaries, started the way Vercel starts them.

mod common;

use common::openapi::SendChecked;
use common::{
    assert_seed_regions, fixture, free_ports, spawn_function, wait_listening, Instance, TestDb,
};

/// Starts `binary` as Vercel starts it and waits until it listens.
async fn start_function(binary: &'static str, postgres: &str) -> Instance {
    let mut instance = spawn_function(binary, "", postgres, free_ports(1)[0]);
    assert!(
        wait_listening(&mut instance).await,
        "{binary} did not start"
    );
    instance
}

#[tokio::test(flavor = "multi_thread")]
async fn the_regions_and_health_functions_answer_over_http() {
    let db = TestDb::new().await;
    let regions = start_function(env!("CARGO_BIN_EXE_regions"), &db.url).await;
    let regions_port = regions.port;
    let health = start_function(env!("CARGO_BIN_EXE_health"), &db.url).await;
    let health_port = health.port;

    let response = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{regions_port}/api/regions"))
        .send_checked()
        .await
        .expect("regions function");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    assert_seed_regions(&response.json().await.expect("JSON"));

    let response = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{health_port}/api/health"))
        .send_checked()
        .await
        .expect("health function");
    assert_eq!(response.status().as_u16(), 200);
    let body: serde_json::Value = response.json().await.expect("JSON");
    assert_eq!(body["postgres"]["ok"], true);

    let preflight = reqwest::Client::new()
        .request(
            reqwest::Method::OPTIONS,
            format!("http://127.0.0.1:{regions_port}/api/regions"),
        )
        .send_checked()
        .await
        .expect("preflight");
    assert_eq!(preflight.status().as_u16(), 204);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_post_to_the_post_stats_function_is_read_back_from_raw_stats() {
    let db = TestDb::new().await;
    let post = start_function(env!("CARGO_BIN_EXE_post_stats"), &db.url).await;
    let post_port = post.port;
    let raw = start_function(env!("CARGO_BIN_EXE_raw_stats"), &db.url).await;
    let raw_port = raw.port;
    let body = fixture("stream-tester.json").to_string();
    let response = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{post_port}/api/post_stats"))
        .header(
            "authorization",
            leaderboard::auth::sign(common::SECRET, body.as_bytes()),
        )
        .body(body.clone())
        .send_checked()
        .await
        .expect("post_stats function");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.text().await.expect("body"), "ok");
    let oversized = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{post_port}/api/post_stats"))
        .body(vec![b'{'; 2 * 1024 * 1024])
        .send_checked()
        .await
        .expect("post_stats function");
    assert_eq!(oversized.status().as_u16(), 413);

    let orchestrator = fixture("stream-tester.json")["orchestrator"].clone();
    let read: serde_json::Value = reqwest::Client::new()
        .get(format!(
            "http://127.0.0.1:{raw_port}/api/raw_stats?orchestrator={}",
            orchestrator.as_str().unwrap_or_default()
        ))
        .send_checked()
        .await
        .expect("raw_stats function")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        read,
        serde_json::json!({"MDW": [fixture("stream-tester.json")]})
    );
}
