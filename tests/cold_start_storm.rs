//! Cold-start storm: many function instances start at the same moment against one empty,
//! never migrated database. Every one answers its first request, and the migrations are
//! applied exactly once.

mod common;

use common::openapi::SendChecked;
use common::{fixture, free_ports, spawn_function, wait_listening, Instance, TestDb};
use std::time::Duration;

/// Instances started at once.
const INSTANCES: usize = 16;

/// Bound on every first request (the service itself waits at most `DB_TIMEOUT` per
/// operation and 240 s for the request that migrates; nothing here times more closely).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Every function in `api/` with the request that its first caller sends.
const ROUTES: &[(&str, &str)] = &[
    (env!("CARGO_BIN_EXE_health"), "/api/health"),
    (env!("CARGO_BIN_EXE_regions"), "/api/regions"),
    (
        env!("CARGO_BIN_EXE_raw_stats"),
        "/api/raw_stats?orchestrator=0xabc",
    ),
    (
        env!("CARGO_BIN_EXE_aggregated_stats"),
        "/api/aggregated_stats",
    ),
    (env!("CARGO_BIN_EXE_pipelines"), "/api/pipelines"),
    (
        env!("CARGO_BIN_EXE_top_ai_score"),
        "/api/top_ai_score?orchestrator=0xabc",
    ),
    (env!("CARGO_BIN_EXE_post_stats"), "/api/post_stats"),
];

/// The first request of one instance: its status and body.
async fn first_request(port: u16, path: &'static str) -> (u16, String) {
    let client = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .expect("HTTP client");
    let url = format!("http://127.0.0.1:{port}{path}");
    let request = if path == "/api/post_stats" {
        let body = fixture("stream-tester.json").to_string();
        client
            .post(&url)
            .header("content-type", "application/json")
            .header(
                "authorization",
                leaderboard::auth::sign(common::SECRET, body.as_bytes()),
            )
            .body(body)
    } else {
        client.get(&url)
    };
    let response = request
        .send_checked()
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    (status, body)
}

#[tokio::test(flavor = "multi_thread")]
async fn sixteen_functions_cold_starting_on_one_empty_database_all_answer_and_migrate_once() {
    let db = TestDb::new().await;

    // Start every process first, so they all come up together.
    let mut instances: Vec<Instance> = free_ports(INSTANCES)
        .into_iter()
        .enumerate()
        .map(|(i, port)| {
            let (binary, path) = ROUTES[i % ROUTES.len()];
            spawn_function(binary, path, &db.url, port)
        })
        .collect();
    // A port chosen here may be taken by someone else (an outgoing connection) before
    // the function binds it; such an instance is started again on another port.
    for instance in &mut instances {
        let mut attempts = 1;
        while !wait_listening(instance).await {
            assert!(attempts < 3, "{} did not start", instance.binary);
            attempts += 1;
            *instance = spawn_function(instance.binary, instance.path, &db.url, free_ports(1)[0]);
        }
    }

    // Then every first request at once.
    let requests: Vec<_> = instances
        .iter()
        .map(|instance| tokio::spawn(first_request(instance.port, instance.path)))
        .collect();
    let mut failures = Vec::new();
    for (instance, request) in instances.iter().zip(requests) {
        let (status, body) = request.await.expect("request task");
        if status != 200 {
            failures.push(format!("{} -> {status} {body}", instance.path));
            continue;
        }
        match instance.path {
            "/api/post_stats" => assert_eq!(body, "ok"),
            "/api/top_ai_score?orchestrator=0xabc" => assert_eq!(body, "{}"),
            "/api/regions" => {
                common::assert_seed_regions(&serde_json::from_str(&body).expect("JSON"))
            }
            "/api/health" => {
                let health: serde_json::Value = serde_json::from_str(&body).expect("JSON");
                assert_eq!(health["postgres"]["ok"], true, "{body}");
            }
            _ => {
                serde_json::from_str::<serde_json::Value>(&body)
                    .unwrap_or_else(|e| panic!("{}: {e}: {body}", instance.path));
            }
        }
    }
    assert!(failures.is_empty(), "first requests failed: {failures:#?}");

    for instance in &mut instances {
        let _ = instance.child.kill().await;
    }

    let client = db.client().await;
    let versions: Vec<i32> = client
        .query(
            "SELECT version FROM refinery_schema_history ORDER BY version",
            &[],
        )
        .await
        .expect("refinery_schema_history")
        .iter()
        .map(|row| row.get(0))
        .collect();
    let latest = leaderboard::schema::migrate::latest_version();
    let expected: Vec<i32> = (1..=latest).collect();
    assert_eq!(versions, expected, "each migration recorded exactly once");

    let regions: i64 = client
        .query_one("SELECT count(*) FROM regions", &[])
        .await
        .expect("count regions")
        .get(0);
    assert_eq!(regions, 26);
}
