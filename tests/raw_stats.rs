//! GET /api/raw_stats: required orchestrator, filters, window, ordering.

mod common;

use common::{TestDb, TestServer};
use serde_json::{json, Value};

async fn seed(server: &TestServer) {
    let bodies = [
        json!({"region": "FRA", "orchestrator": "0xa", "success_rate": 1, "round_trip_time": 1, "timestamp": 1}),
        json!({"region": "LAX", "orchestrator": "0xa", "success_rate": 1, "round_trip_time": 1, "timestamp": 2}),
        json!({"region": "FRA", "orchestrator": "0xa", "success_rate": 0.5, "round_trip_time": 2, "timestamp": 3}),
        json!({"region": "FRA", "orchestrator": "0xa", "success_rate": 1, "round_trip_time": 3, "timestamp": 4,
               "model": "m1", "pipeline": "Image to video"}),
        json!({"region": "FRA", "orchestrator": "0xa", "success_rate": 1, "round_trip_time": 3, "timestamp": 5,
               "model": "m2", "pipeline": "Image to video"}),
        json!({"region": "FRA", "orchestrator": "0xb", "success_rate": 1, "round_trip_time": 1, "timestamp": 6}),
    ];
    for body in bodies {
        let response = server.post(body.to_string()).await;
        assert_eq!(response.status().as_u16(), 200);
    }
}

fn timestamps(body: &Value, region: &str) -> Vec<i64> {
    body[region]
        .as_array()
        .map(|rows| {
            rows.iter()
                .filter_map(|r| r["timestamp"].as_i64())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn raw_stats_filters_orders_and_validates() {
    let db = TestDb::new().await;
    let server = TestServer::with_secret(&db).await;
    seed(&server).await;

    let all = server
        .get_json("/api/raw_stats?orchestrator=0xA", 200)
        .await;
    let keys: Vec<&String> = all.as_object().expect("map").keys().collect();
    assert_eq!(keys, ["FRA", "LAX"], "sorted region keys");
    assert_eq!(
        timestamps(&all, "FRA"),
        [3, 1],
        "newest first, transcoding only"
    );
    assert_eq!(timestamps(&all, "LAX"), [2]);

    let fra = server
        .get_json("/api/raw_stats?orchestrator=%200xa%20&region=fra", 200)
        .await;
    assert_eq!(fra.as_object().map(|m| m.len()), Some(1));
    assert_eq!(timestamps(&fra, "FRA"), [3, 1]);
    assert_eq!(
        server
            .get_json("/api/raw_stats?orchestrator=0xa&region=NOPE", 200)
            .await,
        json!({})
    );

    let pipeline = server
        .get_json(
            "/api/raw_stats?orchestrator=0xa&pipeline=Image+to+video",
            200,
        )
        .await;
    assert_eq!(timestamps(&pipeline, "FRA"), [5, 4]);
    let model = server
        .get_json(
            "/api/raw_stats?orchestrator=0xa&pipeline=Image%20to%20video&model=m1",
            200,
        )
        .await;
    assert_eq!(timestamps(&model, "FRA"), [4]);
    let ai = server
        .get_json("/api/raw_stats?orchestrator=0xa&job_type=ai", 200)
        .await;
    assert_eq!(timestamps(&ai, "FRA"), [5, 4]);

    let now = leaderboard::now();
    let future = server
        .get_json(
            &format!("/api/raw_stats?orchestrator=0xa&since={}", now + 3600.0),
            200,
        )
        .await;
    assert_eq!(future, json!({}));
    let past = server
        .get_json(
            &format!("/api/raw_stats?orchestrator=0xa&until={}", now - 3600.0),
            200,
        )
        .await;
    assert_eq!(past, json!({}));
    let around = server
        .get_json(
            &format!(
                "/api/raw_stats?orchestrator=0xa&since={}&until={}",
                now - 3600.5,
                now + 3600.25
            ),
            200,
        )
        .await;
    assert_eq!(timestamps(&around, "FRA"), [3, 1]);
    let inverted = server
        .get_json(
            &format!(
                "/api/raw_stats?orchestrator=0xa&since={}&until={}",
                now + 10.0,
                now - 10.0
            ),
            200,
        )
        .await;
    assert_eq!(inverted, json!({}));

    for (path, message) in [
        ("/api/raw_stats", "orchestrator is a required parameter"),
        (
            "/api/raw_stats?orchestrator=",
            "orchestrator is a required parameter",
        ),
        (
            "/api/raw_stats?orchestrator=0xa&model=m1",
            "pipeline required",
        ),
        (
            "/api/raw_stats?orchestrator=0xa&since=yesterday",
            "invalid since: yesterday",
        ),
        (
            "/api/raw_stats?orchestrator=0xa&until=1e999",
            "invalid until: 1e999",
        ),
        (
            "/api/raw_stats?orchestrator=0xa&job_type=video",
            "invalid job_type: video",
        ),
        (
            "/api/raw_stats?orchestrator=0xa&job_type=transcoding&pipeline=p",
            "job_type transcoding",
        ),
    ] {
        let body = server.get_json(path, 400).await;
        let text = body["error"].as_str().unwrap_or_default();
        assert!(text.starts_with(message), "{path}: {body}");
    }
    let body = server.get_json("/api/raw_stats", 400).await;
    assert_eq!(
        body,
        json!({"error": "orchestrator is a required parameter"})
    );
}
