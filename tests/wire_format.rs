//! The job testers' bodies exactly as they go over the wire, byte for byte from
//! `tests/fixtures` (Go's `json.Marshal` escaping included), through real HTTP (signed over
//! those bytes) into PostgreSQL: the status, the row stored in `events`, and what
//! `raw_stats`, `aggregated_stats` and `top_ai_score` answer afterwards.

mod common;

use common::exact::assert_close;
use common::{TestDb, TestServer};
use serde_json::{json, Value};

fn fixture_bytes(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The fixtures of today's live AI tester, by file name, sorted.
fn live_fixtures() -> Vec<(String, Vec<u8>)> {
    let dir = format!(
        "{}/tests/fixtures/ai-tester-live",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json"))
        .collect();
    names.sort();
    assert!(names.len() >= 3, "{names:?}");
    names
        .into_iter()
        .map(|name| {
            let bytes = fixture_bytes(&format!("ai-tester-live/{name}"));
            (name, bytes)
        })
        .collect()
}

/// What a body should be stored as: the posted object with orchestrator lower-cased,
/// region upper-cased, `errors` and `timestamp` added when absent.
fn as_stored(posted: &[u8]) -> Value {
    let mut value: Value = serde_json::from_slice(posted).expect("a JSON fixture");
    let object = value.as_object_mut().expect("an object");
    for (field, f) in [
        ("orchestrator", str::to_lowercase as fn(&str) -> String),
        ("region", str::to_uppercase),
    ] {
        let normalised = f(object[field].as_str().expect("a string").trim());
        object.insert(field.into(), Value::String(normalised));
    }
    object.entry("errors").or_insert(Value::Null);
    object.entry("timestamp").or_insert(json!(0));
    value
}

/// Posts `bytes` signed over exactly those bytes and returns the status.
async fn post(server: &TestServer, bytes: &[u8]) -> u16 {
    let response = server.post(bytes.to_vec()).await;
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    if status == 200 {
        assert_eq!(text, "ok");
    }
    status
}

/// The row stored last: (orchestrator, region, job type, payload).
async fn last_row(db: &TestDb) -> (String, String, String, Value) {
    let row = db
        .client()
        .await
        .query_one(
            "SELECT e.orchestrator, r.name, j.name, e.payload FROM events e \
               JOIN regions r ON r.id = e.region_id JOIN job_types j ON j.id = r.job_type_id \
              ORDER BY e.id DESC LIMIT 1",
            &[],
        )
        .await
        .expect("a stored row");
    (row.get(0), row.get(1), row.get(2), row.get(3))
}

/// Rows of a raw_stats region list, in a stable order for comparing.
fn sorted(rows: &Value) -> Vec<Value> {
    let mut rows = rows.as_array().cloned().unwrap_or_default();
    rows.sort_by_key(|r| r.to_string());
    rows
}

/// The AI scores of the contract for one group whose orchestrator is alone in its
/// model/pipeline: (success rate, average rtt, median of the successful round trips).
fn ai_scores(success_rate: f64, rtt: f64, median: f64) -> (f64, f64) {
    let k = -(0.8f64.ln()) / median;
    let round_trip_score = (-k * rtt).exp();
    let score = if success_rate == 0.0 {
        0.0
    } else {
        0.65 * success_rate + 0.35 * round_trip_score
    };
    (round_trip_score, score)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_live_ai_testers_bodies_are_stored_as_sent_and_scored_only_when_scored() {
    let db = TestDb::new().await;
    let server = TestServer::with_secret(&db).await;
    let fixtures = live_fixtures();
    let first = as_stored(&fixtures[0].1);
    let orchestrator = first["orchestrator"]
        .as_str()
        .expect("orchestrator")
        .to_string();
    let region = first["region"].as_str().expect("region").to_string();
    // The fixtures' region must be registered for ai (FRA is a seed region).
    let regions = server.get_json("/api/regions", 200).await;
    assert!(
        regions["regions"]
            .as_array()
            .expect("regions")
            .iter()
            .any(|r| r["id"] == region.as_str() && r["type"] == "ai"),
        "{region} is not an ai region: {regions}"
    );

    let mut stored = Vec::new();
    for (name, bytes) in &fixtures {
        assert_eq!(post(&server, bytes).await, 200, "{name}");
        let want = as_stored(bytes);
        let (orch, reg, job_type, payload) = last_row(&db).await;
        assert_eq!(
            (orch.as_str(), reg.as_str(), job_type.as_str()),
            (orchestrator.as_str(), region.as_str(), "ai"),
            "{name}"
        );
        assert_eq!(payload, want, "{name}: the stored payload");
        // Every field of the fixture is there, with the value sent (Go's \u003c escapes
        // included: they are the same string).
        let posted: Value = serde_json::from_slice(bytes).expect("JSON");
        for (field, value) in posted.as_object().expect("object") {
            if field != "orchestrator" {
                assert_eq!(&payload[field], value, "{name}: {field}");
            }
        }
        stored.push(want);
    }
    let failed = as_stored(&fixture_bytes("ai-tester-live/failed.json"));
    assert_eq!(
        failed["errors"][0]["message"],
        "no output frames after 30s <timeout>"
    );

    let pipeline = first["pipeline"].as_str().expect("pipeline").to_string();
    let model = first["model"].as_str().expect("model").to_string();
    let upper = orchestrator.to_uppercase().replacen("0X", "0x", 1);
    for who in [&orchestrator, &upper] {
        let raw = server
            .get_json(
                &format!("/api/raw_stats?orchestrator={who}&pipeline={pipeline}"),
                200,
            )
            .await;
        assert_eq!(raw.as_object().map(|o| o.len()), Some(1), "{raw}");
        assert_eq!(sorted(&raw[&region]), sorted(&Value::Array(stored.clone())));
    }
    // Without model or pipeline, raw_stats is about transcoding: nothing.
    assert_eq!(
        server
            .get_json(&format!("/api/raw_stats?orchestrator={orchestrator}"), 200)
            .await,
        json!({})
    );

    // Only the scored tests count: passed and failed (the unscored ones are left out).
    let scored: Vec<&Value> = stored
        .iter()
        .filter(|s| s.get("success_rate").is_some_and(|v| !v.is_null()))
        .collect();
    assert_eq!(scored.len(), 2, "passed and failed");
    let n = scored.len() as f64;
    let success_rate = scored
        .iter()
        .map(|s| s["success_rate"].as_f64().unwrap_or(0.0))
        .sum::<f64>()
        / n;
    let rtt = scored
        .iter()
        .map(|s| s["round_trip_time"].as_f64().unwrap_or(0.0))
        .sum::<f64>()
        / n;
    let median = scored
        .iter()
        .filter(|s| s["success_rate"] == json!(1))
        .map(|s| s["round_trip_time"].as_f64().unwrap_or(0.0))
        .next()
        .expect("the passed test");
    let (round_trip_score, score) = ai_scores(success_rate, rtt, median);
    let board = server
        .get_json(
            &format!("/api/aggregated_stats?pipeline={pipeline}&model={model}"),
            200,
        )
        .await;
    let group = &board[&orchestrator][&region];
    assert_close(&group["success_rate"], success_rate, "success_rate");
    assert_close(
        &group["round_trip_score"],
        round_trip_score,
        "round_trip_score",
    );
    assert_close(&group["score"], score, "score");
    assert_eq!(board.as_object().map(|o| o.len()), Some(1), "{board}");

    let top = server
        .get_json(
            &format!("/api/top_ai_score?orchestrator={orchestrator}"),
            200,
        )
        .await;
    assert_eq!(top["region"], region.as_str());
    assert_eq!(top["orchestrator"], orchestrator.as_str());
    assert_eq!(top["model"], model.as_str());
    assert_eq!(top["pipeline"], pipeline.as_str());
    assert_close(&top["value"], score, "top_ai_score value");

    let pipelines = server.get_json("/api/pipelines", 200).await;
    assert_eq!(
        pipelines,
        json!({"pipelines": [{"id": pipeline, "models": [model], "regions": [region]}]})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unscored_live_test_alone_is_stored_and_counted_nowhere() {
    let db = TestDb::new().await;
    let server = TestServer::with_secret(&db).await;
    for (name, bytes) in live_fixtures() {
        if !name.starts_with("unscored") {
            continue;
        }
        assert_eq!(post(&server, &bytes).await, 200, "{name}");
        assert_eq!(last_row(&db).await.3, as_stored(&bytes), "{name}");
    }
    let orchestrator = as_stored(&fixture_bytes("ai-tester-live/unscored-busy.json"))
        ["orchestrator"]
        .as_str()
        .expect("orchestrator")
        .to_string();
    let raw = server
        .get_json(
            &format!("/api/raw_stats?orchestrator={orchestrator}&pipeline=live-video-to-video"),
            200,
        )
        .await;
    assert_eq!(raw["FRA"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        server
            .get_json(
                "/api/aggregated_stats?pipeline=live-video-to-video&model=streamdiffusion",
                200
            )
            .await,
        json!({})
    );
    assert_eq!(
        server
            .get_json(
                &format!("/api/top_ai_score?orchestrator={orchestrator}"),
                200
            )
            .await,
        json!({})
    );
    assert_eq!(
        server.get_json("/api/pipelines", 200).await,
        json!({"pipelines": []})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_stream_testers_body_keeps_every_field_zeros_included() {
    let db = TestDb::new().await;
    let server = TestServer::with_secret(&db).await;
    let fixture = fixture_bytes("stream-tester.json");
    // A failed test as the stream tester sends it: every transcoding field, zeros included.
    let zeros = br#"{"region":"MDW","orchestrator":"0x0fc80afb7876f579f1fb1c4d1c37cf1339038658","success_rate":0,"round_trip_time":0,"seg_duration":2.0088571428571425,"upload_time":0,"download_time":0,"transcode_time":0,"segments_sent":15,"segments_received":0,"errors":[],"timestamp":1723741736}"#;
    for bytes in [&fixture[..], &zeros[..]] {
        assert_eq!(post(&server, bytes).await, 200);
        let (orch, region, job_type, payload) = last_row(&db).await;
        assert_eq!(
            (orch.as_str(), region.as_str(), job_type.as_str()),
            (
                "0x0fc80afb7876f579f1fb1c4d1c37cf1339038658",
                "MDW",
                "transcoding"
            )
        );
        assert_eq!(payload, as_stored(bytes));
    }
    let stored_zeros = as_stored(zeros);
    assert_eq!(stored_zeros["segments_received"], json!(0));
    assert_eq!(stored_zeros["errors"], json!([]));

    let raw = server
        .get_json(
            "/api/raw_stats?orchestrator=0x0fc80afb7876f579f1fb1c4d1c37cf1339038658",
            200,
        )
        .await;
    assert_eq!(
        sorted(&raw["MDW"]),
        sorted(&json!([as_stored(&fixture), stored_zeros]))
    );

    // Both count: success 0.5, averages over both rows.
    let first = as_stored(&fixture);
    let rtt = (first["round_trip_time"].as_f64().unwrap_or(0.0) + 0.0) / 2.0;
    let seg = (first["seg_duration"].as_f64().unwrap_or(0.0) + 2.0088571428571425) / 2.0;
    let round_trip_score = 1.0 - (-seg / rtt).exp();
    let board = server
        .get_json(
            "/api/aggregated_stats?orchestrator=0x0fc80afb7876f579f1fb1c4d1c37cf1339038658",
            200,
        )
        .await;
    let group = &board["0x0fc80afb7876f579f1fb1c4d1c37cf1339038658"]["MDW"];
    assert_close(&group["success_rate"], 0.5, "success_rate");
    assert_close(
        &group["round_trip_score"],
        round_trip_score,
        "round_trip_score",
    );
    assert_close(&group["score"], 0.5 * round_trip_score, "score");
    assert_eq!(
        server
            .get_json(
                "/api/top_ai_score?orchestrator=0x0fc80afb7876f579f1fb1c4d1c37cf1339038658",
                200
            )
            .await,
        json!({})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_2024_ai_testers_bodies_pretty_printed_with_display_name_pipelines_and_null_errors() {
    let db = TestDb::new().await;
    let server = TestServer::with_secret(&db).await;
    // The fixture is pretty-printed over many lines: signed over exactly those bytes.
    let fixture = fixture_bytes("ai-tester.json");
    assert!(fixture.iter().filter(|b| **b == b'\n').count() > 5);
    let compact = serde_json::to_vec(&serde_json::from_slice::<Value>(&fixture).expect("JSON"))
        .expect("compact");
    let signature = leaderboard::auth::sign(common::SECRET, &compact);
    let refused = server.post_with(fixture.clone(), Some(&signature)).await;
    assert_eq!(
        refused.status().as_u16(),
        403,
        "a signature over other bytes"
    );
    assert_eq!(post(&server, &fixture).await, 200);
    assert_eq!(last_row(&db).await.3, as_stored(&fixture));

    // A success of the display-name pipeline, with `errors: null`, CRLF and tabs.
    let text = String::from_utf8(fixture.clone())
        .expect("UTF-8")
        .replace("\"text-to-image\"", "\"Text to image\"")
        .replace("\"success_rate\": 0", "\"success_rate\": 1")
        .replace('\n', "\r\n\t");
    let errors_start = text.find("\"errors\"").expect("errors");
    let errors_end = errors_start + text[errors_start..].find(']').expect("]") + 1;
    let text = format!(
        "{}\"errors\": null{}",
        &text[..errors_start],
        &text[errors_end..]
    );
    let bytes = text.into_bytes();
    assert_eq!(post(&server, &bytes).await, 200);
    let (orch, region, job_type, payload) = last_row(&db).await;
    assert_eq!(
        (orch.as_str(), region.as_str(), job_type.as_str()),
        ("0x22a48674a6fdf9335d89b6dbc05c38e2dc181475", "MDW", "ai")
    );
    assert_eq!(payload, as_stored(&bytes));
    assert_eq!(payload["errors"], Value::Null);
    assert_eq!(payload["pipeline"], "Text to image");
    assert!(
        payload["success_rate"].is_u64(),
        "an integer stays an integer"
    );

    let orchestrator = "0x22a48674a6fdf9335d89b6dbc05c38e2dc181475";
    let model = "ByteDance/SDXL-Lightning";
    let raw = server
        .get_json(
            &format!("/api/raw_stats?orchestrator={orchestrator}&pipeline=Text%20to%20image"),
            200,
        )
        .await;
    assert_eq!(raw, json!({"MDW": [as_stored(&bytes)]}));
    let raw = server
        .get_json(
            &format!(
                "/api/raw_stats?orchestrator={orchestrator}&model={model}&pipeline=text-to-image"
            ),
            200,
        )
        .await;
    assert_eq!(raw, json!({"MDW": [as_stored(&fixture)]}));

    let rtt = 2.21572637;
    let (round_trip_score, score) = ai_scores(1.0, rtt, rtt);
    // Sent unencoded, as the Explorer does.
    let board = server
        .get_json(
            &format!("/api/aggregated_stats?pipeline=Text to image&model={model}"),
            200,
        )
        .await;
    let group = &board[orchestrator]["MDW"];
    assert_close(&group["success_rate"], 1.0, "success_rate");
    assert_close(
        &group["round_trip_score"],
        round_trip_score,
        "round_trip_score",
    );
    assert_close(&group["score"], score, "score");
    let failed = server
        .get_json(
            &format!("/api/aggregated_stats?pipeline=text-to-image&model={model}"),
            200,
        )
        .await;
    // Its only test failed: no median, so no round-trip score, and score 0.
    assert_eq!(failed[orchestrator]["MDW"]["score"].as_f64(), Some(0.0));
    let top = server
        .get_json(
            &format!("/api/top_ai_score?orchestrator={orchestrator}"),
            200,
        )
        .await;
    assert_eq!(top["pipeline"], "Text to image");
    assert_eq!(top["model"], model);
    assert_eq!(top["region"], "MDW");
    assert_close(&top["value"], score, "top_ai_score value");
}

#[tokio::test(flavor = "multi_thread")]
async fn exponent_floats_and_64_bit_timestamps_read_back_with_their_values() {
    let db = TestDb::new().await;
    let server = TestServer::with_secret(&db).await;
    let bodies: [&[u8]; 4] = [
        br#"{"region":"FRA","orchestrator":"0xe1","success_rate":1,"round_trip_time":1.5e-05,"seg_duration":2E+0,"upload_time":1e-7,"timestamp":18446744073709551615}"#,
        br#"{"region":"FRA","orchestrator":"0xe2","success_rate":5e-1,"round_trip_time":3.25E-3,"timestamp":9223372036854775807}"#,
        br#"{"region":"FRA","orchestrator":"0xe3","success_rate":1.0,"round_trip_time":0.1,"timestamp":-9223372036854775808}"#,
        b"{\n  \"region\": \"FRA\",\n  \"orchestrator\": \"0xe4\",\n  \"success_rate\": 1,\n  \"round_trip_time\": 1e+0,\n  \"timestamp\": 1796230000123\n}\n",
    ];
    for (i, bytes) in bodies.iter().enumerate() {
        assert_eq!(post(&server, bytes).await, 200, "body {i}");
        let want = as_stored(bytes);
        let (_, _, _, payload) = last_row(&db).await;
        let orchestrator = want["orchestrator"].as_str().expect("orchestrator");
        let raw = server
            .get_json(&format!("/api/raw_stats?orchestrator={orchestrator}"), 200)
            .await;
        let read = &raw["FRA"][0];
        for (field, value) in want.as_object().expect("object") {
            for (what, got) in [("stored", &payload[field]), ("raw_stats", &read[field])] {
                match value {
                    Value::Number(n) if n.is_f64() => {
                        assert_eq!(got.as_f64(), n.as_f64(), "{what} {field} of body {i}")
                    }
                    _ => assert_eq!(got, value, "{what} {field} of body {i}"),
                }
            }
        }
    }
    let raw = server
        .get_json("/api/raw_stats?orchestrator=0xe1", 200)
        .await;
    assert_eq!(raw["FRA"][0]["timestamp"].as_u64(), Some(u64::MAX));
    assert_eq!(raw["FRA"][0]["round_trip_time"].as_f64(), Some(1.5e-5));
    let raw = server
        .get_json("/api/raw_stats?orchestrator=0xe3", 200)
        .await;
    assert_eq!(raw["FRA"][0]["timestamp"].as_i64(), Some(i64::MIN));
    let board = server
        .get_json("/api/aggregated_stats?orchestrator=0xe1", 200)
        .await;
    let round_trip_score = 1.0 - (-2.0f64 / 1.5e-5).exp();
    assert_close(
        &board["0xe1"]["FRA"]["round_trip_score"],
        round_trip_score,
        "round_trip_score",
    );
    assert_close(&board["0xe1"]["FRA"]["score"], round_trip_score, "score");
}
