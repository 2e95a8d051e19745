//! POST /api/post_stats over real HTTP into a real PostgreSQL: the job testers' bodies,
//! authentication, every validation rule, hostile input, and concurrency.

mod common;

use common::openapi::SendChecked;
use common::{event_count, fixture, TestDb, TestServer, SECRET};
use leaderboard::Config;
use serde_json::{json, Value};
use std::time::Duration;

async fn assert_refused(response: reqwest::Response, status: u16, message: &str) {
    assert_eq!(response.status().as_u16(), status);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.expect("JSON error");
    let text = body["error"].as_str().unwrap_or_default();
    assert!(text.contains(message), "wanted {message:?}, got {body}");
}

async fn assert_ok(response: reqwest::Response) {
    let status = response.status().as_u16();
    let content_type = response.headers()["content-type"].clone();
    let text = response.text().await.expect("body");
    assert_eq!((status, text.as_str()), (200, "ok"));
    assert_eq!(content_type, "text/plain");
}

fn stat(extra: Value) -> Value {
    let mut body = json!({"region": "FRA", "orchestrator": "0xabc", "success_rate": 1, "round_trip_time": 1.5});
    for (k, v) in extra.as_object().expect("object") {
        body[k] = v.clone();
    }
    body
}

#[tokio::test(flavor = "multi_thread")]
async fn both_job_testers_bodies_are_stored_and_read_back_unchanged() {
    let db = TestDb::new().await;
    let server = TestServer::with_secret(&db).await;
    let ai = fixture("ai-tester.json");
    let transcoding = fixture("stream-tester.json");
    assert_ok(server.post(ai.to_string()).await).await;
    assert_ok(server.post(transcoding.to_string()).await).await;
    assert_eq!(event_count(&db).await, 2);

    let ai_orch = ai["orchestrator"].as_str().expect("orchestrator");
    let path = format!("/api/raw_stats?orchestrator={ai_orch}&model=ByteDance/SDXL-Lightning&pipeline=text-to-image");
    assert_eq!(
        server.get_json(&path, 200).await,
        json!({"MDW": [ai.clone()]})
    );
    let path = format!("/api/raw_stats?orchestrator={ai_orch}&pipeline=text-to-image");
    assert_eq!(
        server.get_json(&path, 200).await,
        json!({"MDW": [ai.clone()]})
    );
    for other in [
        format!("/api/raw_stats?orchestrator={ai_orch}"),
        format!("/api/raw_stats?orchestrator={ai_orch}&model=other&pipeline=text-to-image"),
        format!("/api/raw_stats?orchestrator={ai_orch}&pipeline=image-to-image"),
    ] {
        assert_eq!(server.get_json(&other, 200).await, json!({}), "{other}");
    }

    let tr_orch = transcoding["orchestrator"].as_str().expect("orchestrator");
    let path = format!("/api/raw_stats?orchestrator={tr_orch}");
    assert_eq!(
        server.get_json(&path, 200).await,
        json!({"MDW": [transcoding.clone()]})
    );
    let path = format!("/api/raw_stats?orchestrator={tr_orch}&model=ByteDance/SDXL-Lightning&pipeline=text-to-image");
    assert_eq!(server.get_json(&path, 200).await, json!({}));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_ai_testers_null_errors_and_integer_success_rate_are_accepted() {
    let db = TestDb::new().await;
    let server = TestServer::with_secret(&db).await;
    let mut body = fixture("ai-tester.json");
    body["errors"] = Value::Null;
    body["success_rate"] = json!(1);
    body["region"] = json!("mdw");
    body["orchestrator"] = json!("0x22A48674A6FDF9335D89B6DBC05C38E2DC181475");
    assert_ok(server.post(body.to_string()).await).await;
    let stored: Value = db
        .client()
        .await
        .query_one("SELECT payload FROM events", &[])
        .await
        .expect("row")
        .get(0);
    assert_eq!(stored["errors"], Value::Null);
    assert_eq!(stored["success_rate"], json!(1));
    assert!(
        stored["success_rate"].is_u64(),
        "an integer stays an integer"
    );
    assert_eq!(stored["region"], "MDW");
    assert_eq!(
        stored["orchestrator"],
        "0x22a48674a6fdf9335d89b6dbc05c38e2dc181475"
    );
    let orchestrator: String = db
        .client()
        .await
        .query_one("SELECT orchestrator FROM events", &[])
        .await
        .expect("row")
        .get(0);
    assert_eq!(orchestrator, "0x22a48674a6fdf9335d89b6dbc05c38e2dc181475");
}

#[tokio::test(flavor = "multi_thread")]
async fn only_a_correct_signature_under_the_secret_is_accepted() {
    let db = TestDb::new().await;
    let server = TestServer::with_secret(&db).await;
    let body = stat(json!({})).to_string().into_bytes();
    let good = leaderboard::auth::sign(SECRET, &body);
    let other_body = leaderboard::auth::sign(SECRET, b"{}");
    let other_key = leaderboard::auth::sign("not-the-secret", &body);
    for header in [
        None,
        Some(""),
        Some("garbage"),
        Some(other_body.as_str()),
        Some(other_key.as_str()),
        Some(&good[..40]),
    ] {
        let response = server.post_with(body.clone(), header).await;
        assert_refused(response, 403, "request can not be authenticated").await;
    }
    assert_eq!(event_count(&db).await, 0);
    assert_ok(
        server
            .post_with(body.clone(), Some(&good.to_uppercase()))
            .await,
    )
    .await;
    assert_ok(server.post_with(body.clone(), Some(&good)).await).await;
    // The same body twice: both signatures accepted, the test stored once.
    assert_eq!(event_count(&db).await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_secret_every_post_is_refused() {
    let db = TestDb::new().await;
    for secret in [None, Some("")] {
        let (mut config, _) = Config::from_lookup(|k| match k {
            "SECRET" => secret.map(str::to_string),
            _ => None,
        });
        config.postgres = Some(db.url.clone());
        assert_eq!(config.secret, None);
        let server = TestServer::start(config).await;
        server.app.db.migrations().await.expect("migrations");
        let body = stat(json!({})).to_string().into_bytes();
        // An HMAC made with an empty key was accepted by the original; not here.
        let empty_key = leaderboard::auth::sign("", &body);
        let response = server.post_with(body, Some(&empty_key)).await;
        assert_refused(response, 403, "request can not be authenticated").await;
    }
    assert_eq!(event_count(&db).await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_validation_rule_refuses_with_400_and_stores_nothing() {
    let db = TestDb::new().await;
    let server = TestServer::with_secret(&db).await;
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            json!({"region": "FRA", "success_rate": 1, "round_trip_time": 1})
                .to_string()
                .into(),
            "orchestrator is required",
        ),
        (
            stat(json!({"orchestrator": ""})).to_string().into(),
            "orchestrator must not be empty",
        ),
        (
            stat(json!({"orchestrator": "0x".repeat(29)}))
                .to_string()
                .into(),
            "orchestrator is longer than 56 characters",
        ),
        (
            stat(json!({"region": "XYZ"})).to_string().into(),
            "region XYZ is not registered for transcoding jobs; register it with: leaderboard region add XYZ --name",
        ),
        (
            stat(json!({"region": "ATL", "model": "m", "pipeline": "p"}))
                .to_string()
                .into(),
            "region ATL is not registered for ai jobs; register it with: leaderboard region add ATL --name \"…\" --type ai",
        ),
        (
            stat(json!({"success_rate": 1.5})).to_string().into(),
            "success_rate must be between 0 and 1",
        ),
        (
            stat(json!({"success_rate": -0.1})).to_string().into(),
            "success_rate must be between 0 and 1",
        ),
        (
            stat(json!({"round_trip_time": -1})).to_string().into(),
            "round_trip_time must be between 0 and 1000000000",
        ),
        (
            stat(json!({"seg_duration": -0.5})).to_string().into(),
            "seg_duration must be between 0 and 1000000000",
        ),
        (
            stat(json!({"upload_time": -1})).to_string().into(),
            "upload_time must be between 0 and 1000000000",
        ),
        (
            stat(json!({"segments_sent": -1})).to_string().into(),
            "segments_sent must be 0 or more",
        ),
        (
            stat(json!({"timestamp": 1726864722.5})).to_string().into(),
            "timestamp must be an integer",
        ),
        (
            stat(json!({"success_rate": "1"})).to_string().into(),
            "success_rate: invalid type: string",
        ),
        (
            stat(json!({"orchestrator": 12})).to_string().into(),
            "orchestrator: invalid type: integer",
        ),
        (
            stat(json!({"errors": "none"})).to_string().into(),
            "errors: invalid type: string",
        ),
        (
            stat(json!({"model_is_warm": 1})).to_string().into(),
            "model_is_warm: invalid type",
        ),
        (
            stat(json!({"model": "m"})).to_string().into(),
            "model and pipeline go together",
        ),
        (
            json!([stat(json!({}))]).to_string().into(),
            "expected a JSON object",
        ),
        (Vec::new(), "expected a JSON object"),
        (b"{\"region\": \"FRA\",".to_vec(), "invalid JSON body"),
    ];
    for (body, message) in cases {
        let shown = String::from_utf8_lossy(&body).to_string();
        let response = server.post(body).await;
        assert_eq!(response.status().as_u16(), 400, "{shown}");
        assert_refused(response, 400, message).await;
    }
    assert_eq!(event_count(&db).await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_posted_field_is_kept_and_regions_match_in_any_case() {
    let db = TestDb::new().await;
    let server = TestServer::with_secret(&db).await;
    let extra = json!({"something_new": {"nested": [1, 2, {"deeper": null}]}, "model": "",
                       "pipeline": "", "test_outcome": "passed", "stream_valid": false,
                       "defer_attempts": 0, "debug_artifacts": null, "prompt_confirmed": true});
    let body = stat(json!({"region": "fRa", "orchestrator": "0xABC"}));
    let mut body = body.as_object().expect("object").clone();
    body.extend(extra.as_object().expect("object").clone());
    assert_ok(server.post(Value::Object(body.clone()).to_string()).await).await;
    let stored = server
        .get_json("/api/raw_stats?orchestrator=0xabc", 200)
        .await;
    let mut want = body;
    want.insert("region".into(), json!("FRA"));
    want.insert("orchestrator".into(), json!("0xabc"));
    want.insert("errors".into(), Value::Null);
    want.insert("timestamp".into(), json!(0));
    assert_eq!(stored, json!({ "FRA": [want] }));
}

#[tokio::test(flavor = "multi_thread")]
async fn nul_at_any_depth_and_repeated_keys_are_refused() {
    let db = TestDb::new().await;
    let server = TestServer::with_secret(&db).await;
    let base = r#"{"region":"FRA","orchestrator":"0xabc","success_rate":1,"round_trip_time":1,"#;
    for (tail, message) in [
        (
            r#""x":{"y":[1,"\u0000"]}}"#,
            "x.y[1] must not contain NUL characters",
        ),
        (r#""x":{"\u0000k":1}}"#, "must not contain NUL characters"),
        (r#""\u0000":1}"#, "must not contain NUL characters"),
        (
            r#""success_rate":0}"#,
            "the key \"success_rate\" appears more than once in one object",
        ),
        (
            r#""x":{"a":1,"b":{"c":1,"c":1}}}"#,
            "x.b: the key \"c\" appears more than once in one object",
        ),
    ] {
        let body = format!("{base}{tail}");
        assert_refused(server.post(body).await, 400, message).await;
    }
    assert_eq!(event_count(&db).await, 0);
}

/// The answers of every counting route, for comparing two databases.
async fn counted(server: &TestServer) -> Vec<(String, Value)> {
    let mut answers = Vec::new();
    for path in [
        "/api/aggregated_stats",
        "/api/aggregated_stats?model=m&pipeline=p",
        "/api/aggregated_stats?model=m2&pipeline=p2",
        "/api/top_ai_score?orchestrator=0xa",
        "/api/top_ai_score?orchestrator=0xb",
        "/api/pipelines",
    ] {
        answers.push((path.to_string(), server.get_json(path, 200).await));
    }
    answers
}

#[tokio::test(flavor = "multi_thread")]
async fn unscored_tests_are_stored_returned_raw_and_counted_nowhere_else() {
    let scored = [
        json!({"region": "FRA", "orchestrator": "0xa", "success_rate": 1, "round_trip_time": 2,
               "model": "m", "pipeline": "p"}),
        json!({"region": "FRA", "orchestrator": "0xa", "success_rate": 0.5, "round_trip_time": 4.5,
               "model": "m", "pipeline": "p"}),
        json!({"region": "FRA", "orchestrator": "0xa", "success_rate": 1, "round_trip_time": 1.5,
               "seg_duration": 2}),
    ];
    let unscored = [
        json!({"region": "FRA", "orchestrator": "0xa", "model": "m", "pipeline": "p",
               "test_outcome": "unscored_busy"}),
        json!({"region": "FRA", "orchestrator": "0xa", "model": "m", "pipeline": "p",
               "success_rate": null, "round_trip_time": null}),
        json!({"region": "FRA", "orchestrator": "0xa", "seg_duration": 2}),
        // An orchestrator with unscored tests only.
        json!({"region": "LAX", "orchestrator": "0xb", "model": "m2", "pipeline": "p2"}),
        json!({"region": "LAX", "orchestrator": "0xb", "success_rate": null}),
    ];
    // What the scored posts alone give.
    let reference_db = TestDb::new().await;
    let reference = TestServer::with_secret(&reference_db).await;
    for body in &scored {
        assert_ok(reference.post(body.to_string()).await).await;
    }
    let want = counted(&reference).await;

    let db = TestDb::new().await;
    let server = TestServer::with_secret(&db).await;
    for body in scored.iter().chain(&unscored) {
        assert_ok(server.post(body.to_string()).await).await;
    }
    // The same rows written straight into `events` (an operator, the original service).
    for body in &unscored {
        common::insert_event_at(&db, leaderboard::now(), body).await;
    }
    assert_eq!(event_count(&db).await, 3 + 2 * 5);
    assert_eq!(counted(&server).await, want);
    assert!(want[0].1.get("0xb").is_none() && want[1].1.get("0xb").is_none());
    assert!(!want[5].1.to_string().contains("p2"), "{}", want[5].1);
    assert_eq!(
        server
            .get_json("/api/top_ai_score?orchestrator=0xb", 200)
            .await,
        json!({})
    );

    // raw_stats returns every test, scored or not, as stored.
    let ai = server
        .get_json("/api/raw_stats?orchestrator=0xa&pipeline=p", 200)
        .await;
    assert_eq!(ai["FRA"].as_array().map(Vec::len), Some(2 + 2 * 2));
    let rows = ai["FRA"].as_array().expect("rows");
    let busy: Vec<&Value> = rows
        .iter()
        .filter(|r| r["test_outcome"] == "unscored_busy")
        .collect();
    assert_eq!(busy.len(), 2);
    assert!(busy.iter().all(|r| r.get("success_rate").is_none()));
    assert!(rows
        .iter()
        .any(|r| r.get("success_rate") == Some(&Value::Null)));
    let transcoding = server
        .get_json("/api/raw_stats?orchestrator=0xa", 200)
        .await;
    assert_eq!(transcoding["FRA"].as_array().map(Vec::len), Some(1 + 2));
    let only_unscored = server
        .get_json("/api/raw_stats?orchestrator=0xb&pipeline=p2", 200)
        .await;
    assert_eq!(only_unscored["LAX"].as_array().map(Vec::len), Some(2));
    let only_unscored = server
        .get_json("/api/raw_stats?orchestrator=0xb", 200)
        .await;
    assert_eq!(only_unscored["LAX"].as_array().map(Vec::len), Some(2));
}

#[tokio::test(flavor = "multi_thread")]
async fn half_a_score_is_refused() {
    let db = TestDb::new().await;
    let server = TestServer::with_secret(&db).await;
    for body in [
        json!({"region": "FRA", "orchestrator": "0xa", "success_rate": 1}),
        json!({"region": "FRA", "orchestrator": "0xa", "round_trip_time": 1}),
        json!({"region": "FRA", "orchestrator": "0xa", "success_rate": null, "round_trip_time": 1}),
        json!({"region": "FRA", "orchestrator": "0xa", "success_rate": 0, "round_trip_time": null,
               "model": "m", "pipeline": "p"}),
    ] {
        assert_refused(
            server.post(body.to_string()).await,
            400,
            "success_rate and round_trip_time go together",
        )
        .await;
    }
    assert_eq!(event_count(&db).await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_bodies_never_give_a_5xx_and_sql_is_stored_verbatim() {
    let db = TestDb::new().await;
    let server = TestServer::with_secret(&db).await;
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let hostile: Vec<(Vec<u8>, u16)> = vec![
        (b"\xff\xfe\xfd{}".to_vec(), 400),
        (vec![b' '; 2 * 1024 * 1024], 413),
        (deep.into_bytes(), 400),
        (
            format!("{{\"a\":{}1{}}}", "{\"a\":".repeat(200), "}".repeat(200)).into_bytes(),
            400,
        ),
        (
            stat(json!({}))
                .to_string()
                .replace("1.5", "1e999")
                .into_bytes(),
            400,
        ),
        (
            stat(json!({"model": "m\u{0}", "pipeline": "p"}))
                .to_string()
                .into_bytes(),
            400,
        ),
        (
            stat(json!({"region": "FRA\u{0}"})).to_string().into_bytes(),
            400,
        ),
    ];
    for (body, status) in hostile {
        let response = server.post(body).await;
        assert_eq!(response.status().as_u16(), status);
        let error: Value = response.json().await.expect("a JSON error");
        assert!(error["error"].is_string());
    }
    assert_eq!(event_count(&db).await, 0);

    let sql = "x'); DROP TABLE events; --";
    let body = stat(
        json!({"region": "LAX", "orchestrator": "0xdead'--", "model": sql, "pipeline": "p\" OR 1=1 --",
                           "input_parameters": "'; SELECT pg_sleep(10); --", "response_payload": "\\u0000 \\\\ ☃"}),
    );
    assert_ok(server.post(body.to_string()).await).await;
    let read = server
        .get_json(
            "/api/raw_stats?orchestrator=0xdead%27--&pipeline=p%22%20OR%201%3D1%20--",
            200,
        )
        .await;
    let row = &read["LAX"][0];
    assert_eq!(row["model"], sql);
    assert_eq!(row["pipeline"], "p\" OR 1=1 --");
    assert_eq!(row["input_parameters"], "'; SELECT pg_sleep(10); --");
    assert_eq!(row["response_payload"], "\\u0000 \\\\ ☃");
    assert_eq!(event_count(&db).await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_thousand_posts_over_32_connections_are_all_stored() {
    let db = TestDb::new().await;
    let server = std::sync::Arc::new(TestServer::with_secret(&db).await);
    let tasks: Vec<_> = (0..32)
        .map(|worker| {
            let server = server.clone();
            tokio::spawn(async move {
                let client = reqwest::Client::builder()
                    .pool_max_idle_per_host(1)
                    .build()
                    .expect("client");
                let mut ok = 0;
                for i in (worker..2000).step_by(32) {
                    let body =
                        stat(json!({"orchestrator": format!("0x{:02}", i % 8), "timestamp": i}))
                            .to_string();
                    let signature = leaderboard::auth::sign(SECRET, body.as_bytes());
                    let response = client
                        .post(server.url("/api/post_stats"))
                        .header("authorization", signature)
                        .body(body)
                        .send_checked()
                        .await
                        .expect("post");
                    if response.status().as_u16() == 200 {
                        ok += 1;
                    }
                }
                ok
            })
        })
        .collect();
    let mut ok = 0;
    for task in tasks {
        ok += task.await.expect("worker");
    }
    assert_eq!(ok, 2000);
    assert_eq!(event_count(&db).await, 2000);
    let mut timestamps = Vec::new();
    for o in 0..8 {
        let read = server
            .get_json(&format!("/api/raw_stats?orchestrator=0x{o:02}"), 200)
            .await;
        for row in read["FRA"].as_array().expect("rows") {
            timestamps.push(row["timestamp"].as_i64().expect("timestamp"));
        }
    }
    timestamps.sort();
    assert_eq!(timestamps, (0..2000).collect::<Vec<i64>>());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_database_gives_503_never_200() {
    let mut pg = localpg::PgServer::start(localpg::Options::ephemeral()).expect("PostgreSQL");
    let mut config = Config::for_database(&pg.url("postgres"));
    config.secret = Some(SECRET.to_string());
    config.db_timeout = Duration::from_secs(3);
    let server = TestServer::start(config).await;
    assert_ok(server.post(stat(json!({})).to_string()).await).await;
    pg.stop_keep_data().expect("stop");
    let response = server.post(stat(json!({})).to_string()).await;
    assert_eq!(response.status().as_u16(), 503);
    let response = server.get("/api/raw_stats?orchestrator=0xabc").await;
    assert_eq!(response.status().as_u16(), 503);
    pg.restart().expect("restart");
    assert_ok(server.post(stat(json!({"timestamp": 2})).to_string()).await).await;
    let read = server
        .get_json("/api/raw_stats?orchestrator=0xabc", 200)
        .await;
    assert_eq!(read["FRA"].as_array().map(Vec::len), Some(2));
}

#[tokio::test(flavor = "multi_thread")]
async fn post_stats_answers_only_post() {
    let db = TestDb::new().await;
    let server = TestServer::with_secret(&db).await;
    let response = server.get("/api/post_stats").await;
    assert_eq!(response.status().as_u16(), 405);
    assert_eq!(response.headers()["allow"], "POST, OPTIONS");
}

#[tokio::test(flavor = "multi_thread")]
async fn numbers_round_trip_exactly() {
    let db = TestDb::new().await;
    let server = TestServer::with_secret(&db).await;
    let values = [
        0.9299999999999999,
        2.0088571428571425,
        0.1,
        1e-300,
        123456789.12345679,
    ];
    for (i, v) in values.iter().enumerate() {
        let body = format!(
            r#"{{"region":"FRA","orchestrator":"0xn{i}","success_rate":0.30000000000000004,"round_trip_time":{v:?},"seg_duration":{v:?}}}"#
        );
        assert_ok(server.post(body).await).await;
        let read = server
            .get_json(&format!("/api/raw_stats?orchestrator=0xn{i}"), 200)
            .await;
        let row = &read["FRA"][0];
        assert_eq!(row["round_trip_time"].as_f64(), Some(*v));
        assert_eq!(row["seg_duration"].as_f64(), Some(*v));
        assert_eq!(row["success_rate"].as_f64(), Some(0.30000000000000004));
    }
}

/// Fuzzing finding: two stats with a round_trip_time near the largest double were stored,
/// and the leaderboard's sum over them overflowed in PostgreSQL, failing every
/// aggregated_stats query of the window with 500. Times above 10⁹ s are refused now.
#[tokio::test(flavor = "multi_thread")]
async fn times_too_large_to_sum_are_refused_and_the_leaderboard_stays_up() {
    let db = TestDb::new().await;
    let server = TestServer::with_secret(&db).await;
    for extra in [
        json!({"round_trip_time": 1.5e308}),
        json!({"seg_duration": 1e308}),
        json!({"transcode_time": 1e300, "download_time": 1e300}),
    ] {
        let response = server.post(stat(extra.clone()).to_string()).await;
        assert_refused(response, 400, "must be between 0 and 1000000000").await;
    }
    assert_eq!(event_count(&db).await, 0);
    for _ in 0..2 {
        let body = stat(json!({"round_trip_time": 1e9, "seg_duration": 1e9}));
        assert_ok(server.post(body.to_string()).await).await;
    }
    let board = server.get_json("/api/aggregated_stats", 200).await;
    assert_eq!(board["0xabc"]["FRA"]["success_rate"], json!(1.0));
}

/// A server on `db` configured from these variables (the rest at their defaults).
async fn server_with_env(db: &TestDb, vars: &[(&str, &str)]) -> TestServer {
    let (mut config, _) = Config::from_lookup(|k| {
        vars.iter()
            .find(|(name, _)| *name == k)
            .map(|(_, v)| v.to_string())
    });
    config.postgres = Some(db.url.clone());
    let server = TestServer::start(config).await;
    server.app.db.migrations().await.expect("migrations");
    server
}

async fn post_signed_with(server: &TestServer, key: &str, body: &[u8]) -> reqwest::Response {
    let signature = leaderboard::auth::sign(key, body);
    server.post_with(body.to_vec(), Some(&signature)).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_post_signed_with_secret_or_any_extra_key_is_accepted() {
    let db = TestDb::new().await;
    let server = server_with_env(
        &db,
        &[
            ("SECRET", "main,key"),
            ("EXTRA_SECRETS", "tester-a, tester-b,,"),
        ],
    )
    .await;
    let body = |n: i64| stat(json!({"timestamp": n})).to_string().into_bytes();
    for (n, key) in ["main,key", "tester-a", "tester-b"].into_iter().enumerate() {
        assert_ok(post_signed_with(&server, key, &body(n as i64)).await).await;
    }
    assert_eq!(event_count(&db).await, 3);
    let body = body(3);
    // SECRET is one key: its parts are not keys. Nor is a key no longer listed, nor the
    // empty key of the empty entries.
    for key in [
        "main",
        "key",
        "tester-c",
        "",
        " tester-b",
        "tester-a, tester-b",
    ] {
        let response = post_signed_with(&server, key, &body).await;
        assert_refused(response, 403, "request can not be authenticated").await;
    }
    assert_eq!(event_count(&db).await, 3);

    // Revoking tester-a: the same post signed with its key is refused from then on.
    let revoked = server_with_env(
        &db,
        &[("SECRET", "main,key"), ("EXTRA_SECRETS", "tester-b")],
    )
    .await;
    let response = post_signed_with(&revoked, "tester-a", &body).await;
    assert_refused(response, 403, "request can not be authenticated").await;
    assert_ok(post_signed_with(&revoked, "tester-b", &body).await).await;
    assert_eq!(event_count(&db).await, 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn extra_secrets_of_empty_entries_add_no_key() {
    let db = TestDb::new().await;
    for (n, list) in [",,", ",", " , "].into_iter().enumerate() {
        let body = stat(json!({"timestamp": n})).to_string().into_bytes();
        // With SECRET: only SECRET works.
        let server = server_with_env(&db, &[("SECRET", "k"), ("EXTRA_SECRETS", list)]).await;
        assert!(server.app.config.extra_secrets.is_empty());
        assert_refused(
            post_signed_with(&server, "", &body).await,
            403,
            "authenticated",
        )
        .await;
        assert_ok(post_signed_with(&server, "k", &body).await).await;
        // Without SECRET: every post is refused, the empty-key one included.
        let server = server_with_env(&db, &[("EXTRA_SECRETS", list)]).await;
        assert_refused(
            post_signed_with(&server, "", &body).await,
            403,
            "authenticated",
        )
        .await;
    }
    assert_eq!(event_count(&db).await, 3);
    // EXTRA_SECRETS alone is enough to post.
    let body = stat(json!({"timestamp": 3})).to_string().into_bytes();
    let server = server_with_env(&db, &[("EXTRA_SECRETS", "only-extra")]).await;
    assert_ok(post_signed_with(&server, "only-extra", &body).await).await;
}
