//! The compiled function binaries, started the way Vercel starts them.

mod common;

use common::{assert_seed_regions, fixture, TestDb};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Starts `binary` with `VERCEL_DEV_PORT` and waits for its "Dev server listening" line.
async fn start_function(binary: &str, postgres: &str) -> (Child, u16) {
    let port = free_port();
    let mut child = Command::new(binary)
        .env("VERCEL_DEV_PORT", port.to_string())
        .env("POSTGRES", postgres)
        .env("SECRET", common::SECRET)
        .env_remove("VERCEL_IPC_PATH")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {binary}: {e}"));
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let expected = format!("Dev server listening: {port}");
    let found = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.trim() == expected {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(found, Ok(true), "{binary} never printed {expected:?}");
    // Keep reading, so the function never writes into a closed pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, port)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_regions_and_health_functions_answer_over_http() {
    let db = TestDb::new().await;
    let (_regions, regions_port) = start_function(env!("CARGO_BIN_EXE_regions"), &db.url).await;
    let (_health, health_port) = start_function(env!("CARGO_BIN_EXE_health"), &db.url).await;

    let response = reqwest::get(format!("http://127.0.0.1:{regions_port}/api/regions"))
        .await
        .expect("regions function");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    assert_seed_regions(&response.json().await.expect("JSON"));

    let response = reqwest::get(format!("http://127.0.0.1:{health_port}/api/health"))
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
        .send()
        .await
        .expect("preflight");
    assert_eq!(preflight.status().as_u16(), 204);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_post_to_the_post_stats_function_is_read_back_from_raw_stats() {
    let db = TestDb::new().await;
    let (_post, post_port) = start_function(env!("CARGO_BIN_EXE_post_stats"), &db.url).await;
    let (_raw, raw_port) = start_function(env!("CARGO_BIN_EXE_raw_stats"), &db.url).await;
    let body = fixture("stream-tester.json").to_string();
    let response = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{post_port}/api/post_stats"))
        .header(
            "authorization",
            leaderboard::auth::sign(common::SECRET, body.as_bytes()),
        )
        .body(body.clone())
        .send()
        .await
        .expect("post_stats function");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.text().await.expect("body"), "ok");
    let oversized = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{post_port}/api/post_stats"))
        .body(vec![b'{'; 2 * 1024 * 1024])
        .send()
        .await
        .expect("post_stats function");
    assert_eq!(oversized.status().as_u16(), 413);

    let orchestrator = fixture("stream-tester.json")["orchestrator"].clone();
    let read: serde_json::Value = reqwest::get(format!(
        "http://127.0.0.1:{raw_port}/api/raw_stats?orchestrator={}",
        orchestrator.as_str().unwrap_or_default()
    ))
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
