//! The Explorer's leaderboard routes over real HTTP: aggregated_stats, top_ai_score and
//! pipelines, on data posted through post_stats or inserted as the original did.

mod common;

use common::{insert_event_at, TestDb, TestServer};
use leaderboard::Config;
use serde_json::{json, Value};
use std::time::Duration;

const HOUR: f64 = 3600.0;

async fn post_all(server: &TestServer, bodies: &[Value]) {
    for body in bodies {
        let response = server.post(body.to_string()).await;
        assert_eq!(response.status().as_u16(), 200, "{body}");
    }
}

fn ai(orchestrator: &str, region: &str, rtt: f64, success: f64) -> Value {
    json!({"region": region, "orchestrator": orchestrator, "success_rate": success,
           "round_trip_time": rtt, "model": "m", "pipeline": "p"})
}

fn close(a: &Value, b: f64) -> bool {
    a.as_f64().is_some_and(|a| (a - b).abs() < 1e-12)
}

/// The spec's AI formula, written out independently of the service.
fn ai_expected(rtt: f64, success: f64, median: f64) -> (f64, f64) {
    let k = -(0.8f64.ln()) / median;
    let rts = (-k * rtt).exp();
    (rts, 0.65 * success + 0.35 * rts)
}

/// The spec's worked example: five orchestrators in FRA on one model/pipeline.
fn worked_example() -> Vec<Value> {
    vec![
        ai("0xa", "FRA", 8.0, 1.0),
        ai("0xb", "FRA", 2.0, 1.0),
        ai("0xc", "FRA", 1.0, 0.75),
        ai("0xd", "FRA", 2.0, 0.75),
        ai("0xe", "FRA", 0.5, 0.95),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn the_worked_ai_example_scores_as_the_spec_says() {
    let db = TestDb::new().await;
    let server = TestServer::with_secret(&db).await;
    post_all(&server, &worked_example()).await;
    let board = server
        .get_json("/api/aggregated_stats?model=m&pipeline=p", 200)
        .await;

    let a = &board["0xa"]["FRA"];
    assert_eq!(a["success_rate"], json!(1.0));
    assert!(close(&a["round_trip_score"], 0.699751727323698), "{a}");
    assert!(close(&a["score"], 0.8949131045632943), "{a}");
    for (orch, rtt, success) in [
        ("0xb", 2.0, 1.0),
        ("0xc", 1.0, 0.75),
        ("0xd", 2.0, 0.75),
        ("0xe", 0.5, 0.95),
    ] {
        let (rts, score) = ai_expected(rtt, success, 5.0);
        let got = &board[orch]["FRA"];
        assert!(close(&got["success_rate"], success), "{orch}: {got}");
        assert!(close(&got["round_trip_score"], rts), "{orch}: {got}");
        assert!(close(&got["score"], score), "{orch}: {got}");
    }
    let keys: Vec<&String> = board.as_object().expect("map").keys().collect();
    assert_eq!(keys, ["0xa", "0xb", "0xc", "0xd", "0xe"]);

    // The orchestrator filter is applied after scoring: the median still covers everyone.
    let one = server
        .get_json(
            "/api/aggregated_stats?model=m&pipeline=p&orchestrator=%200XA%20",
            200,
        )
        .await;
    assert_eq!(one, json!({"0xa": board["0xa"].clone()}));
    // Without model/pipeline the query is about transcoding, of which there is none.
    assert_eq!(
        server.get_json("/api/aggregated_stats", 200).await,
        json!({})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_region_filter_changes_the_median_and_unknown_regions_are_empty() {
    let db = TestDb::new().await;
    let server = TestServer::with_secret(&db).await;
    let mut bodies = worked_example();
    bodies.push(ai("0xf", "LAX", 20.0, 1.0));
    bodies.push(ai("0xg", "LAX", 30.0, 1.0));
    post_all(&server, &bodies).await;

    let fra = server
        .get_json("/api/aggregated_stats?model=m&pipeline=p&region=fra", 200)
        .await;
    assert!(
        close(&fra["0xa"]["FRA"]["score"], 0.8949131045632943),
        "{fra}"
    );
    assert!(fra.get("0xf").is_none());

    // All regions: successful round trips 8, 2, 20, 30 → median 14.
    let all = server
        .get_json("/api/aggregated_stats?model=m&pipeline=p", 200)
        .await;
    let (rts, score) = ai_expected(8.0, 1.0, 14.0);
    assert!(close(&all["0xa"]["FRA"]["round_trip_score"], rts), "{all}");
    assert!(close(&all["0xa"]["FRA"]["score"], score), "{all}");
    let (_, lax_score) = ai_expected(20.0, 1.0, 14.0);
    assert!(close(&all["0xf"]["LAX"]["score"], lax_score), "{all}");

    assert_eq!(
        server
            .get_json("/api/aggregated_stats?model=m&pipeline=p&region=XYZ", 200)
            .await,
        json!({})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn transcoding_scores_follow_the_spec() {
    let db = TestDb::new().await;
    let server = TestServer::with_secret(&db).await;
    let stat = json!({"region": "MDW", "orchestrator": "0xt", "success_rate": 1,
                      "round_trip_time": 0.6348660516428571, "seg_duration": 2.0804666666666662});
    let zero_rtt = json!({"region": "MDW", "orchestrator": "0xz", "success_rate": 1, "round_trip_time": 0, "seg_duration": 2});
    let failing = json!({"region": "FRA", "orchestrator": "0xt", "success_rate": 0, "round_trip_time": 1, "seg_duration": 2});
    post_all(&server, &[stat, zero_rtt, failing]).await;
    let board = server.get_json("/api/aggregated_stats", 200).await;
    let t = &board["0xt"]["MDW"];
    let expected = 1.0 - (-(2.0804666666666662f64 / 0.6348660516428571)).exp();
    assert!(close(&t["round_trip_score"], expected), "{t}");
    assert!(close(&t["score"], 0.962259319983335), "{t}");
    assert_eq!(
        board["0xz"]["MDW"],
        json!({"success_rate": 1.0, "round_trip_score": 0.0, "score": 0.0})
    );
    assert_eq!(board["0xt"]["FRA"]["score"], json!(0.0));
    let filtered = server
        .get_json("/api/aggregated_stats?orchestrator=0xt&region=mdw", 200)
        .await;
    assert_eq!(filtered, json!({"0xt": {"MDW": t.clone()}}));
}

#[tokio::test(flavor = "multi_thread")]
async fn ai_data_without_a_successful_event_gives_finite_scores() {
    let db = TestDb::new().await;
    let server = TestServer::with_secret(&db).await;
    post_all(
        &server,
        &[ai("0xa", "FRA", 3.0, 0.5), ai("0xb", "LAX", 0.0, 1.0)],
    )
    .await;
    let response = server.get("/api/aggregated_stats?model=m&pipeline=p").await;
    assert_eq!(response.status().as_u16(), 200);
    let text = response.text().await.expect("body");
    assert!(!text.contains("NaN") && !text.contains("inf"), "{text}");
    let board: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(
        board["0xa"]["FRA"],
        json!({"success_rate": 0.5, "round_trip_score": 0.0, "score": 0.325})
    );
    assert_eq!(
        board["0xb"]["LAX"],
        json!({"success_rate": 1.0, "round_trip_score": 0.0, "score": 0.65})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn explorer_style_pipeline_and_model_values_work() {
    let db = TestDb::new().await;
    let server = TestServer::with_secret(&db).await;
    let body = json!({"region": "LAX", "orchestrator": "0xv", "success_rate": 1, "round_trip_time": 4.1,
                      "model": "stabilityai/stable-video-diffusion-img2vid-xt-1-1", "pipeline": "Image to video"});
    post_all(&server, &[body]).await;
    for query in [
        "pipeline=Image%20to%20video&model=stabilityai/stable-video-diffusion-img2vid-xt-1-1",
        "pipeline=Image+to+video&model=stabilityai%2Fstable-video-diffusion-img2vid-xt-1-1",
    ] {
        let board = server
            .get_json(&format!("/api/aggregated_stats?{query}"), 200)
            .await;
        // The only successful event is its own median: round_trip_score 0.8.
        assert!(
            close(&board["0xv"]["LAX"]["round_trip_score"], 0.8),
            "{query}: {board}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn parameters_are_validated_with_the_exact_messages() {
    let db = TestDb::new().await;
    let server = TestServer::on(&db).await;
    for (query, message) in [
        ("model=m", "pipeline required"),
        ("pipeline=p", "model required"),
        ("model=m&pipeline=", "pipeline required"),
    ] {
        let body = server
            .get_json(&format!("/api/aggregated_stats?{query}"), 400)
            .await;
        assert_eq!(body, json!({"error": message}), "{query}");
    }
    for (query, prefix) in [
        ("since=yesterday", "invalid since: yesterday"),
        ("until=NaN", "invalid until: NaN"),
        ("since=0x10", "invalid since: 0x10"),
        ("job_type=video", "invalid job_type: video"),
        (
            "job_type=transcoding&model=m&pipeline=p",
            "job_type transcoding",
        ),
    ] {
        let body = server
            .get_json(&format!("/api/aggregated_stats?{query}"), 400)
            .await;
        assert!(
            body["error"]
                .as_str()
                .unwrap_or_default()
                .starts_with(prefix),
            "{query}: {body}"
        );
    }
    let body = server.get_json("/api/pipelines?since=soon", 400).await;
    assert_eq!(body, json!({"error": "invalid since: soon"}));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_time_window_has_four_cases() {
    let db = TestDb::new().await;
    let server = TestServer::with_secret(&db).await;
    let now = leaderboard::now();
    let stat = |o: &str| json!({"region": "FRA", "orchestrator": o, "success_rate": 1, "round_trip_time": 1, "seg_duration": 2});
    insert_event_at(&db, now - 2.0 * HOUR, &stat("0xrecent")).await;
    insert_event_at(&db, now - 30.0 * HOUR, &stat("0xold")).await;
    insert_event_at(&db, now - 50.0 * HOUR + 0.5, &stat("0xancient")).await;

    let orchestrators = |board: &Value| -> Vec<String> {
        board
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    };
    let default = server.get_json("/api/aggregated_stats", 200).await;
    assert_eq!(orchestrators(&default), ["0xrecent"]);
    let since = server
        .get_json(
            &format!("/api/aggregated_stats?since={}", now - 40.0 * HOUR),
            200,
        )
        .await;
    assert_eq!(orchestrators(&since), ["0xold", "0xrecent"]);
    let until = server
        .get_json(
            &format!("/api/aggregated_stats?until={}", now - 10.0 * HOUR),
            200,
        )
        .await;
    assert_eq!(orchestrators(&until), ["0xancient", "0xold"]);
    let both = server
        .get_json(
            &format!(
                "/api/aggregated_stats?since={}&until={}",
                now - 40.0 * HOUR,
                now - 10.0 * HOUR
            ),
            200,
        )
        .await;
    assert_eq!(orchestrators(&both), ["0xold"]);
    let inverted = server
        .get_json(
            &format!(
                "/api/aggregated_stats?since={}&until={}",
                now - 10.0 * HOUR,
                now - 40.0 * HOUR
            ),
            200,
        )
        .await;
    assert_eq!(inverted, json!({}));
    // Fractional bounds: the ancient event sits half a second after the 50 h mark.
    let just_after = format!(
        "/api/aggregated_stats?since={:.3}&until={}",
        now - 50.0 * HOUR + 0.25,
        now - 40.0 * HOUR
    );
    assert_eq!(
        orchestrators(&server.get_json(&just_after, 200).await),
        ["0xancient"]
    );
    let just_before = format!(
        "/api/aggregated_stats?since={:.3}&until={}",
        now - 50.0 * HOUR + 0.75,
        now - 40.0 * HOUR
    );
    assert_eq!(server.get_json(&just_before, 200).await, json!({}));
    let raw = server
        .get_json(
            &format!(
                "/api/raw_stats?orchestrator=0xold&until={}",
                now - 10.0 * HOUR
            ),
            200,
        )
        .await;
    assert_eq!(raw["FRA"].as_array().map(Vec::len), Some(1));
}

#[tokio::test(flavor = "multi_thread")]
async fn top_ai_score_picks_the_best_group_and_scores_it_like_the_leaderboard() {
    let db = TestDb::new().await;
    let server = TestServer::with_secret(&db).await;
    assert_eq!(server.get_json("/api/top_ai_score", 200).await, json!({}));
    assert_eq!(
        server
            .get_json("/api/top_ai_score?orchestrator=0xnobody", 200)
            .await,
        json!({})
    );

    let solo = json!({"region": "LAX", "orchestrator": "0xsolo", "success_rate": 1, "round_trip_time": 0.1,
                      "model": "only-model", "pipeline": "only-pipeline"});
    post_all(&server, &[solo]).await;
    let top = server
        .get_json("/api/top_ai_score?orchestrator=0xSOLO", 200)
        .await;
    assert_eq!(
        top,
        json!({"region": "LAX", "orchestrator": "0xsolo", "value": 0.9299999999999999,
               "model": "only-model", "pipeline": "only-pipeline"})
    );
    let response = server.get("/api/top_ai_score?orchestrator=0xsolo").await;
    let text = response.text().await.expect("body");
    assert!(
        text.starts_with("{\"region\":\"LAX\",\"orchestrator\":\"0xsolo\",\"value\":"),
        "{text}"
    );

    // Two groups: the one with the higher success rate wins, scored across all regions.
    post_all(
        &server,
        &[
            json!({"region": "FRA", "orchestrator": "0xtwo", "success_rate": 0.5, "round_trip_time": 1, "model": "m1", "pipeline": "p"}),
            json!({"region": "LAX", "orchestrator": "0xtwo", "success_rate": 1, "round_trip_time": 3, "model": "m2", "pipeline": "p"}),
            json!({"region": "FRA", "orchestrator": "0xother", "success_rate": 1, "round_trip_time": 1, "model": "m2", "pipeline": "p"}),
        ],
    )
    .await;
    let top = server
        .get_json("/api/top_ai_score?orchestrator=0xtwo", 200)
        .await;
    let board = server
        .get_json("/api/aggregated_stats?model=m2&pipeline=p", 200)
        .await;
    assert_eq!(top["region"], "LAX");
    assert_eq!(top["model"], "m2");
    assert_eq!(top["pipeline"], "p");
    assert_eq!(top["value"], board["0xtwo"]["LAX"]["score"]);
    let (_, expected) = ai_expected(3.0, 1.0, 2.0);
    assert!(close(&top["value"], expected), "{top}");
}

#[tokio::test(flavor = "multi_thread")]
async fn pipelines_lists_sorted_distinct_models_and_regions() {
    let db = TestDb::new().await;
    let server = TestServer::with_secret(&db).await;
    assert_eq!(
        server.get_json("/api/pipelines?region=FRA", 200).await,
        json!({"pipelines": []})
    );
    let e = |region: &str, model: &str, pipeline: &str| json!({"region": region, "orchestrator": "0xp", "success_rate": 1, "round_trip_time": 1, "model": model, "pipeline": pipeline});
    post_all(
        &server,
        &[
            e("LAX", "B", "text-to-image"),
            e("FRA", "A", "text-to-image"),
            e("FRA", "B", "text-to-image"),
            e("MDW", "w", "audio-to-text"),
            json!({"region": "FRA", "orchestrator": "0xp", "success_rate": 1, "round_trip_time": 1}),
        ],
    )
    .await;
    let all = server.get_json("/api/pipelines", 200).await;
    assert_eq!(
        all,
        json!({"pipelines": [
            {"id": "audio-to-text", "models": ["w"], "regions": ["MDW"]},
            {"id": "text-to-image", "models": ["A", "B"], "regions": ["FRA", "LAX"]},
        ]})
    );
    // The FRA answer was cached empty above; other parameters are never served from it.
    assert_eq!(
        server.get_json("/api/pipelines?region=FRA", 200).await,
        json!({"pipelines": []})
    );
    let lax = server.get_json("/api/pipelines?region=lax", 200).await;
    assert_eq!(
        lax,
        json!({"pipelines": [{"id": "text-to-image", "models": ["B"], "regions": ["LAX"]}]})
    );
    let future = server
        .get_json(
            &format!("/api/pipelines?since={}", leaderboard::now() + HOUR),
            200,
        )
        .await;
    assert_eq!(future, json!({"pipelines": []}));

    let mut config = Config::for_database(&db.url);
    config.pipelines_cache_timeout = Duration::ZERO;
    let uncached = TestServer::start(config).await;
    let fra = uncached.get_json("/api/pipelines?region=FRA", 200).await;
    assert_eq!(
        fra,
        json!({"pipelines": [{"id": "text-to-image", "models": ["A", "B"], "regions": ["FRA"]}]})
    );
}

/// Fuzzing finding: a NUL in a query value reached PostgreSQL, which refuses it in text,
/// and every read route answered 500. It is a 400 now, on each route that reads the value.
#[tokio::test(flavor = "multi_thread")]
async fn a_nul_in_a_parameter_is_a_400_on_every_read_route() {
    let db = TestDb::new().await;
    let server = TestServer::on(&db).await;
    for (path, name) in [
        ("/api/aggregated_stats?orchestrator=0x%00", "orchestrator"),
        ("/api/aggregated_stats?region=FR%00A", "region"),
        ("/api/aggregated_stats?model=m%00&pipeline=p", "model"),
        ("/api/aggregated_stats?model=m&pipeline=%00", "pipeline"),
        ("/api/raw_stats?orchestrator=%00", "orchestrator"),
        ("/api/raw_stats?orchestrator=0xa&region=%00", "region"),
        ("/api/raw_stats?orchestrator=0xa&pipeline=p%00", "pipeline"),
        ("/api/pipelines?region=%00", "region"),
        ("/api/top_ai_score?orchestrator=0xa%00", "orchestrator"),
    ] {
        let body = server.get_json(path, 400).await;
        assert_eq!(
            body,
            json!({"error": format!("{name} must not contain NUL characters")}),
            "{path}"
        );
    }
    // A parameter the route does not read is not looked at.
    server.get_json("/api/pipelines?model=%00", 200).await;
}

/// Fuzzing finding: `since`/`until` beyond PostgreSQL's timestamps (`until=-1e300`) made
/// `to_timestamp` fail with 500. Such a bound is the same as none on its side.
#[tokio::test(flavor = "multi_thread")]
async fn times_beyond_postgresql_are_no_bound_on_their_side() {
    let db = TestDb::new().await;
    let server = TestServer::with_secret(&db).await;
    let stat = json!({"region": "FRA", "orchestrator": "0xfar", "success_rate": 1,
                      "round_trip_time": 1, "seg_duration": 2});
    post_all(&server, &[stat]).await;
    let everything = server
        .get_json("/api/aggregated_stats?since=-1e300&until=1e300", 200)
        .await;
    assert!(everything["0xfar"]["FRA"].is_object(), "{everything}");
    for query in [
        "since=-1e300&until=-1e300",
        "until=-1e300",
        "since=1e300",
        "since=1e300&until=1e301",
    ] {
        let nothing = server
            .get_json(&format!("/api/aggregated_stats?{query}"), 200)
            .await;
        assert_eq!(nothing, json!({}), "{query}");
        let raw = server
            .get_json(&format!("/api/raw_stats?orchestrator=0xfar&{query}"), 200)
            .await;
        assert_eq!(raw, json!({}), "{query}");
        let pipelines = server
            .get_json(&format!("/api/pipelines?{query}"), 200)
            .await;
        assert_eq!(pipelines, json!({"pipelines": []}), "{query}");
    }
    let raw = server
        .get_json("/api/raw_stats?orchestrator=0xfar&since=-1e300", 200)
        .await;
    assert_eq!(raw["FRA"].as_array().map(Vec::len), Some(1));
}
