//! The fast read path (rollup buckets + raw edges, migration V4) gives exactly what the
//! spec's straightforward computation over `event_details` gives, on random data and
//! random windows — including windows that start and end off any bucket boundary, and
//! after rows were updated and deleted behind the service's back.

mod common;

use common::{insert_events_at, TestDb, TestServer};
use serde_json::{json, Value};
use std::collections::BTreeMap;

const HOUR: f64 = 3600.0;
const TOLERANCE: f64 = 1e-9;

const ORCHESTRATORS: [&str; 6] = ["0xa1", "0xb2", "0xc3", "0xd4", "0xe5", "0xf6"];
const TRANSCODING_REGIONS: [&str; 4] = ["FRA", "LAX", "ATL", "SIN"];
const AI_REGIONS: [&str; 3] = ["FRA", "LAX", "MDW"];
const MODELS: [&str; 2] = ["m-one", "m/two"];
const PIPELINES: [&str; 2] = ["text-to-image", "Image to video"];

fn random_payload(rng: &mut fastrand::Rng) -> Value {
    let orchestrator = ORCHESTRATORS[rng.usize(..ORCHESTRATORS.len())];
    let success = match rng.u8(..4) {
        0 => 0.0,
        1 => 1.0,
        2 => 0.5,
        _ => rng.f64(),
    };
    let rtt = if rng.u8(..10) == 0 {
        0.0
    } else {
        rng.f64() * 8.0
    };
    if rng.u8(..3) == 0 {
        json!({"region": AI_REGIONS[rng.usize(..AI_REGIONS.len())], "orchestrator": orchestrator,
               "success_rate": success, "round_trip_time": rtt,
               "model": MODELS[rng.usize(..2)], "pipeline": PIPELINES[rng.usize(..2)]})
    } else {
        let mut p = json!({"region": TRANSCODING_REGIONS[rng.usize(..TRANSCODING_REGIONS.len())],
                           "orchestrator": orchestrator, "success_rate": success, "round_trip_time": rtt});
        if rng.bool() {
            p["seg_duration"] = json!(1.0 + rng.f64() * 2.0);
        }
        p
    }
}

/// Averages per (orchestrator, region) computed the straightforward way.
async fn naive_groups(
    db: &TestDb,
    job: &str,
    window: (Option<f64>, Option<f64>),
    region: Option<&str>,
    model: Option<&str>,
    pipeline: Option<&str>,
) -> BTreeMap<(String, String), (f64, f64, f64)> {
    let rows = db
        .client()
        .await
        .query(
            "SELECT orchestrator::text, region_name::text, AVG(COALESCE(success_rate, 0)), \
                    AVG(COALESCE(round_trip_time, 0)), AVG(COALESCE(seg_duration, 0)) \
               FROM event_details \
              WHERE job_type_name = $1 \
                AND ($2::float8 IS NULL OR event_time >= to_timestamp($2)) \
                AND ($3::float8 IS NULL OR event_time <= to_timestamp($3)) \
                AND ($4::text IS NULL OR region_name = $4) \
                AND ($5::text IS NULL OR payload ->> 'model' = $5) \
                AND ($6::text IS NULL OR payload ->> 'pipeline' = $6) \
              GROUP BY 1, 2",
            &[&job, &window.0, &window.1, &region, &model, &pipeline],
        )
        .await
        .expect("naive averages");
    rows.iter()
        .map(|r| ((r.get(0), r.get(1)), (r.get(2), r.get(3), r.get(4))))
        .collect()
}

async fn naive_median(
    db: &TestDb,
    window: (Option<f64>, Option<f64>),
    region: Option<&str>,
    model: &str,
    pipeline: &str,
) -> Option<f64> {
    db.client()
        .await
        .query_one(
            "SELECT PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY round_trip_time) FROM event_details \
              WHERE job_type_name = 'ai' AND success_rate = 1 AND round_trip_time <> 0 \
                AND ($1::float8 IS NULL OR event_time >= to_timestamp($1)) \
                AND ($2::float8 IS NULL OR event_time <= to_timestamp($2)) \
                AND ($3::text IS NULL OR region_name = $3) \
                AND payload ->> 'model' = $4 AND payload ->> 'pipeline' = $5",
            &[&window.0, &window.1, &region, &model, &pipeline],
        )
        .await
        .expect("naive median")
        .get(0)
}

/// The spec's formulas, written out here independently of the service.
fn expected_scores(ai: bool, (sr, rtt, seg): (f64, f64, f64), median: Option<f64>) -> (f64, f64) {
    let rts = if ai {
        match median {
            Some(m) if m > 0.0 => (-(-(0.8f64.ln()) / m) * rtt).exp(),
            _ => 0.0,
        }
    } else if rtt == 0.0 {
        0.0
    } else {
        1.0 - (-seg / rtt).exp()
    };
    let score = if sr == 0.0 {
        0.0
    } else if ai {
        0.65 * sr + 0.35 * rts
    } else {
        sr * rts
    };
    (rts, score)
}

fn assert_close(got: &Value, want: f64, what: &str) {
    let got = got.as_f64().unwrap_or(f64::NAN);
    assert!(
        (got - want).abs() <= TOLERANCE * want.abs().max(1.0),
        "{what}: got {got}, want {want}"
    );
}

fn query_of(window: (Option<f64>, Option<f64>)) -> String {
    let mut q = String::new();
    if let Some(s) = window.0 {
        q.push_str(&format!("&since={s}"));
    }
    if let Some(u) = window.1 {
        q.push_str(&format!("&until={u}"));
    }
    q
}

async fn compare_board(
    server: &TestServer,
    db: &TestDb,
    window: (Option<f64>, Option<f64>),
    region: Option<&str>,
    orchestrator: Option<&str>,
    ai: Option<(&str, &str)>,
) {
    let mut path = format!("/api/aggregated_stats?x=1{}", query_of(window));
    if let Some(r) = region {
        path.push_str(&format!("&region={r}"));
    }
    if let Some(o) = orchestrator {
        path.push_str(&format!("&orchestrator={o}"));
    }
    if let Some((m, p)) = ai {
        path.push_str(&format!(
            "&model={}&pipeline={}",
            m.replace('/', "%2F"),
            p.replace(' ', "%20")
        ));
    }
    let board = server.get_json(&path, 200).await;
    let job = if ai.is_some() { "ai" } else { "transcoding" };
    let groups = naive_groups(db, job, window, region, ai.map(|a| a.0), ai.map(|a| a.1)).await;
    let median = match ai {
        Some((m, p)) => naive_median(db, window, region, m, p).await,
        None => None,
    };
    let mut expected_count = 0;
    for ((orch, reg), averages) in &groups {
        if orchestrator.is_some_and(|o| o != orch) {
            continue;
        }
        expected_count += 1;
        let got = &board[orch][reg];
        let (rts, score) = expected_scores(ai.is_some(), *averages, median);
        assert_close(
            &got["success_rate"],
            averages.0,
            &format!("{path} {orch} {reg} success_rate"),
        );
        assert_close(
            &got["round_trip_score"],
            rts,
            &format!("{path} {orch} {reg} round_trip_score"),
        );
        assert_close(&got["score"], score, &format!("{path} {orch} {reg} score"));
    }
    let got_count: usize = board
        .as_object()
        .map(|m| {
            m.values()
                .filter_map(Value::as_object)
                .map(|r| r.len())
                .sum()
        })
        .unwrap_or(0);
    assert_eq!(got_count, expected_count, "{path}: {board}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_fast_path_equals_the_straightforward_computation() {
    let db = TestDb::new().await;
    let server = TestServer::with_secret(&db).await;
    let mut rng = fastrand::Rng::with_seed(20261125);
    let now = leaderboard::now();
    let times: Vec<f64> = (0..1500).map(|_| now - rng.f64() * 30.0 * HOUR).collect();
    let payloads: Vec<Value> = (0..1500).map(|_| random_payload(&mut rng)).collect();
    insert_events_at(&db, &times, &payloads).await;
    // A few through the API as well, at the database's current time.
    for _ in 0..20 {
        let response = server.post(random_payload(&mut rng).to_string()).await;
        assert_eq!(response.status().as_u16(), 200);
    }
    // Changes behind the service's back must reach the rollups too.
    let client = db.client().await;
    client
        .batch_execute(
            "DELETE FROM events WHERE id % 17 = 0; \
             UPDATE events SET payload = jsonb_set(payload, '{round_trip_time}', '1.25') WHERE id % 13 = 0; \
             UPDATE events SET event_time = event_time - interval '5 hours 7 minutes 3.5 seconds' WHERE id % 11 = 0;",
        )
        .await
        .expect("changes");

    let mut windows: Vec<(Option<f64>, Option<f64>)> = vec![(Some(now - 24.0 * HOUR), None)];
    for _ in 0..12 {
        let since = now - rng.f64() * 32.0 * HOUR;
        let until = since + rng.f64() * 20.0 * HOUR;
        windows.push(match rng.u8(..4) {
            0 => (Some(since), None),
            1 => (None, Some(until)),
            2 => (Some(since), Some(since + rng.f64() * 200.0)),
            _ => (Some(since), Some(until)),
        });
    }
    for window in windows {
        compare_board(&server, &db, window, None, None, None).await;
        compare_board(&server, &db, window, Some("FRA"), None, None).await;
        compare_board(&server, &db, window, None, Some("0xc3"), None).await;
        for (m, p) in [(MODELS[0], PIPELINES[0]), (MODELS[1], PIPELINES[1])] {
            compare_board(&server, &db, window, None, None, Some((m, p))).await;
            compare_board(&server, &db, window, Some("LAX"), None, Some((m, p))).await;
            compare_board(&server, &db, window, None, Some("0xa1"), Some((m, p))).await;
        }

        // pipelines: the distinct (pipeline, model, region) of AI events in the window.
        let rows = db
            .client()
            .await
            .query(
                "SELECT DISTINCT payload ->> 'pipeline', payload ->> 'model', region_name::text FROM event_details \
                  WHERE job_type_name = 'ai' AND ($1::float8 IS NULL OR event_time >= to_timestamp($1)) \
                    AND ($2::float8 IS NULL OR event_time <= to_timestamp($2))",
                &[&window.0, &window.1],
            )
            .await
            .expect("naive pipelines");
        let mut naive: BTreeMap<String, (Vec<String>, Vec<String>)> = BTreeMap::new();
        for r in &rows {
            let e = naive.entry(r.get(0)).or_default();
            e.0.push(r.get(1));
            e.1.push(r.get(2));
        }
        let naive: Vec<Value> = naive
            .into_iter()
            .map(|(id, (mut models, mut regions))| {
                models.sort();
                models.dedup();
                regions.sort();
                regions.dedup();
                json!({"id": id, "models": models, "regions": regions})
            })
            .collect();
        let mut path = format!("/api/pipelines?x=1{}", query_of(window));
        path.push_str(&format!("&nocache={}", rng.u64(..)));
        let got = server
            .get_json(&path.replace("&nocache", "&cache_buster"), 200)
            .await;
        assert_eq!(got["pipelines"], json!(naive), "{path}");
    }

    // Folding the appended rows into compacted ones changes no answer.
    let client = db.client().await;
    let appended: i64 = client
        .query_one("SELECT count(*) FROM event_bucket_appends", &[])
        .await
        .expect("count")
        .get(0);
    assert!(appended > 0, "posts and changes append rows");
    client
        .batch_execute("SELECT leaderboard_compact()")
        .await
        .expect("compact");
    let left: i64 = client
        .query_one("SELECT count(*) FROM event_bucket_appends", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(left, 0);
    let window = (Some(now - 24.0 * HOUR), None);
    compare_board(&server, &db, window, None, None, None).await;
    compare_board(
        &server,
        &db,
        window,
        None,
        None,
        Some((MODELS[0], PIPELINES[0])),
    )
    .await;

    // top_ai_score (default window) for every orchestrator.
    for orch in ORCHESTRATORS {
        let row = db
            .client()
            .await
            .query_opt(
                "SELECT region_name::text, payload ->> 'model', payload ->> 'pipeline', \
                        AVG(COALESCE(success_rate, 0)), AVG(COALESCE(round_trip_time, 0)) \
                   FROM event_details \
                  WHERE job_type_name = 'ai' AND orchestrator = $1 AND event_time >= to_timestamp($2) \
                  GROUP BY 1, 2, 3 ORDER BY 4 DESC, 5 ASC, 1, 2, 3 LIMIT 1",
                &[&orch, &(now - 24.0 * HOUR)],
            )
            .await
            .expect("naive best group");
        let top = server
            .get_json(&format!("/api/top_ai_score?orchestrator={orch}"), 200)
            .await;
        let Some(row) = row else {
            assert_eq!(top, json!({}));
            continue;
        };
        let (region, model, pipeline): (String, String, String) =
            (row.get(0), row.get(1), row.get(2));
        let median = naive_median(
            &db,
            (Some(now - 24.0 * HOUR), None),
            None,
            &model,
            &pipeline,
        )
        .await;
        let (_, score) = expected_scores(true, (row.get(3), row.get(4), 0.0), median);
        assert_eq!(
            (
                top["region"].as_str(),
                top["model"].as_str(),
                top["pipeline"].as_str()
            ),
            (
                Some(region.as_str()),
                Some(model.as_str()),
                Some(pipeline.as_str())
            ),
            "{orch}"
        );
        assert_close(&top["value"], score, &format!("top_ai_score {orch}"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_row_inserted_by_the_original_service_shows_up_in_every_read() {
    let db = TestDb::new().await;
    let server = TestServer::with_secret(&db).await;
    let payload = json!({"region": "FRA", "orchestrator": "0xgo", "success_rate": 1, "round_trip_time": 2.5,
                         "model": "go-model", "pipeline": "go-pipeline", "errors": [], "timestamp": 1});
    let inserted = db
        .client()
        .await
        .execute(
            "INSERT INTO events(event_time, orchestrator, region_id, payload) \
             SELECT CURRENT_TIMESTAMP, $1, regions.id, $2 FROM job_types \
               JOIN regions ON regions.name = $3 AND regions.job_type_id = job_types.id \
              WHERE job_types.name = $4",
            &[&"0xgo", &payload, &"FRA", &"ai"],
        )
        .await
        .expect("the original service's insert");
    assert_eq!(inserted, 1);
    let board = server
        .get_json(
            "/api/aggregated_stats?model=go-model&pipeline=go-pipeline",
            200,
        )
        .await;
    assert_close(
        &board["0xgo"]["FRA"]["round_trip_score"],
        0.8,
        "its own median",
    );
    let pipelines = server.get_json("/api/pipelines", 200).await;
    assert_eq!(
        pipelines,
        json!({"pipelines": [{"id": "go-pipeline", "models": ["go-model"], "regions": ["FRA"]}]})
    );
    let top = server
        .get_json("/api/top_ai_score?orchestrator=0xgo", 200)
        .await;
    assert_eq!(top["model"], "go-model");
    let raw = server
        .get_json("/api/raw_stats?orchestrator=0xgo&pipeline=go-pipeline", 200)
        .await;
    assert_eq!(raw["FRA"][0], payload);
}
