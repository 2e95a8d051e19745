//! The read path's answers against the spec's straightforward SQL over `event_details`,
//! written out here independently of the service: the leaderboard (every filter), the
//! AI median, pipelines and top_ai_score. Used wherever the rollups could drift: random
//! data and windows, updates and deletes behind the service's back, V4's backfill half
//! done, killed or racing with writers.

use super::{TestDb, TestServer};
use serde_json::{json, Value};
use std::collections::BTreeMap;

pub const HOUR: f64 = 3600.0;
pub const TOLERANCE: f64 = 1e-9;

pub const ORCHESTRATORS: [&str; 6] = ["0xa1", "0xb2", "0xc3", "0xd4", "0xe5", "0xf6"];
pub const TRANSCODING_REGIONS: [&str; 4] = ["FRA", "LAX", "ATL", "SIN"];
pub const AI_REGIONS: [&str; 3] = ["FRA", "LAX", "MDW"];
pub const MODELS: [&str; 2] = ["m-one", "m/two"];
pub const PIPELINES: [&str; 2] = ["text-to-image", "Image to video"];

/// A random stat as a tester posts it: transcoding or AI, scored, or (one in eight) an
/// unscored test, with neither a success rate nor a round trip (absent, or JSON null).
pub fn random_payload(rng: &mut fastrand::Rng) -> Value {
    let mut payload = random_scored_payload(rng);
    if rng.u8(..8) == 0 {
        let fields = payload.as_object_mut().expect("an object");
        if rng.bool() {
            fields.remove("success_rate");
            fields.remove("round_trip_time");
        } else {
            fields.insert("success_rate".into(), Value::Null);
            fields.insert("round_trip_time".into(), Value::Null);
        }
    }
    payload
}

/// A random scored stat (see [`random_payload`]).
pub fn random_scored_payload(rng: &mut fastrand::Rng) -> Value {
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
pub async fn naive_groups(
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
              WHERE job_type_name = $1 AND (payload ->> 'success_rate' IS NOT NULL OR payload ->> 'round_trip_time' IS NOT NULL) \
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

pub async fn naive_median(
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
pub fn expected_scores(
    ai: bool,
    (sr, rtt, seg): (f64, f64, f64),
    median: Option<f64>,
) -> (f64, f64) {
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

pub fn assert_close(got: &Value, want: f64, what: &str) {
    let got = got.as_f64().unwrap_or(f64::NAN);
    assert!(
        (got - want).abs() <= TOLERANCE * want.abs().max(1.0),
        "{what}: got {got}, want {want}"
    );
}

pub fn query_of(window: (Option<f64>, Option<f64>)) -> String {
    let mut q = String::new();
    if let Some(s) = window.0 {
        q.push_str(&format!("&since={s}"));
    }
    if let Some(u) = window.1 {
        q.push_str(&format!("&until={u}"));
    }
    q
}

pub async fn compare_board(
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

/// The windows most reads use (the default 24 h) and `n` random ones within the last 32 h:
/// open-ended, fractional, off every bucket boundary, short.
pub fn windows(rng: &mut fastrand::Rng, now: f64, n: usize) -> Vec<(Option<f64>, Option<f64>)> {
    let mut windows: Vec<(Option<f64>, Option<f64>)> = vec![(Some(now - 24.0 * HOUR), None)];
    for _ in 0..n {
        let since = now - rng.f64() * 32.0 * HOUR;
        let until = since + rng.f64() * 20.0 * HOUR;
        windows.push(match rng.u8(..4) {
            0 => (Some(since), None),
            1 => (None, Some(until)),
            2 => (Some(since), Some(since + rng.f64() * 200.0)),
            _ => (Some(since), Some(until)),
        });
    }
    windows
}

/// aggregated_stats with the filters the Explorer uses, and pipelines, in `window`.
pub async fn compare_window(
    server: &TestServer,
    db: &TestDb,
    window: (Option<f64>, Option<f64>),
    rng: &mut fastrand::Rng,
) {
    compare_board(server, db, window, None, None, None).await;
    compare_board(server, db, window, Some("FRA"), None, None).await;
    compare_board(server, db, window, None, Some("0xc3"), None).await;
    for (m, p) in [(MODELS[0], PIPELINES[0]), (MODELS[1], PIPELINES[1])] {
        compare_board(server, db, window, None, None, Some((m, p))).await;
        compare_board(server, db, window, Some("LAX"), None, Some((m, p))).await;
        compare_board(server, db, window, None, Some("0xa1"), Some((m, p))).await;
    }
    // pipelines: the distinct (pipeline, model, region) of AI events in the window.
    let rows = db
            .client()
            .await
            .query(
                "SELECT DISTINCT payload ->> 'pipeline', payload ->> 'model', region_name::text FROM event_details \
                  WHERE job_type_name = 'ai' AND (payload ->> 'success_rate' IS NOT NULL OR payload ->> 'round_trip_time' IS NOT NULL) \
                    AND ($1::float8 IS NULL OR event_time >= to_timestamp($1)) \
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

/// The best AI group of `orchestrator` since `since`, scored the straightforward way:
/// (region, model, pipeline, score).
async fn naive_top_ai_score(
    db: &TestDb,
    orchestrator: &str,
    since: f64,
) -> Option<(String, String, String, f64)> {
    let row = db
        .client()
        .await
        .query_opt(
            "SELECT region_name::text, payload ->> 'model', payload ->> 'pipeline', \
                    AVG(COALESCE(success_rate, 0)), AVG(COALESCE(round_trip_time, 0)) \
               FROM event_details \
              WHERE job_type_name = 'ai' AND orchestrator = $1 AND event_time >= to_timestamp($2) \
                AND (payload ->> 'success_rate' IS NOT NULL OR payload ->> 'round_trip_time' IS NOT NULL) \
              GROUP BY 1, 2, 3 ORDER BY 4 DESC, 5 ASC, 1, 2, 3 LIMIT 1",
            &[&orchestrator, &since],
        )
        .await
        .expect("naive best group")?;
    let (region, model, pipeline): (String, String, String) = (row.get(0), row.get(1), row.get(2));
    let median = naive_median(db, (Some(since), None), None, &model, &pipeline).await;
    let (_, score) = expected_scores(true, (row.get(3), row.get(4), 0.0), median);
    Some((region, model, pipeline, score))
}

/// top_ai_score (its fixed 24 h window) for every orchestrator. The service takes "now"
/// itself, so the answer is compared only when the straightforward result is the same
/// for the instants just before and just after the request (no event crossed the
/// window's start meanwhile); otherwise the request is repeated.
pub async fn compare_top_ai_scores(server: &TestServer, db: &TestDb) {
    for orch in ORCHESTRATORS {
        let mut attempts = 0;
        loop {
            let before = leaderboard::now();
            let top = server
                .get_json(&format!("/api/top_ai_score?orchestrator={orch}"), 200)
                .await;
            let after = leaderboard::now();
            let want = naive_top_ai_score(db, orch, before - 24.0 * HOUR).await;
            if want != naive_top_ai_score(db, orch, after - 24.0 * HOUR).await {
                attempts += 1;
                assert!(
                    attempts < 5,
                    "{orch}: events keep crossing the window's start"
                );
                continue;
            }
            let Some((region, model, pipeline, score)) = want else {
                assert_eq!(top, json!({}), "{orch}");
                break;
            };
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
            break;
        }
    }
}

/// Every route in every window of `windows` and top_ai_score: what a test calls after
/// anything that could make the rollups drift.
pub async fn compare_every_route(
    server: &TestServer,
    db: &TestDb,
    windows: &[(Option<f64>, Option<f64>)],
    rng: &mut fastrand::Rng,
) {
    for window in windows {
        compare_window(server, db, *window, rng).await;
    }
    compare_top_ai_scores(server, db).await;
}

/// Inserts `n` events like [`random_payload`]'s (a tenth of them unscored), spread over the last 30 hours, in one
/// statement, as rows written straight into `events` (the Go service, a backup being
/// restored): quick even for hundreds of thousands on the original schema.
pub async fn insert_random_events(db: &TestDb, n: i64) {
    let inserted = db
        .client()
        .await
        .execute(
            "INSERT INTO events (event_time, orchestrator, region_id, payload) \
             SELECT t.event_time, t.orchestrator, r.id, jsonb_strip_nulls(jsonb_build_object( \
                        'region', t.region, 'orchestrator', t.orchestrator, \
                        'success_rate', CASE WHEN NOT t.unscored THEN t.success_rate END, \
                        'round_trip_time', CASE WHEN NOT t.unscored THEN t.round_trip_time END, \
                        'seg_duration', t.seg_duration, 'model', t.model, 'pipeline', t.pipeline)) \
               FROM (SELECT now() - make_interval(secs => random() * 30 * 3600) AS event_time, \
                            (ARRAY['0xa1','0xb2','0xc3','0xd4','0xe5','0xf6'])[1 + floor(random() * 6)::int] AS orchestrator, \
                            CASE WHEN g.ai THEN (ARRAY['FRA','LAX','MDW'])[1 + floor(random() * 3)::int] \
                                 ELSE (ARRAY['FRA','LAX','ATL','SIN'])[1 + floor(random() * 4)::int] END AS region, \
                            CASE WHEN g.ai THEN 'ai' ELSE 'transcoding' END AS job_type, \
                            random() < 0.1 AS unscored, \
                            (ARRAY[0, 1, 0.5, random()])[1 + floor(random() * 4)::int] AS success_rate, \
                            CASE WHEN random() < 0.1 THEN 0 ELSE random() * 8 END AS round_trip_time, \
                            CASE WHEN NOT g.ai AND random() < 0.5 THEN 1 + random() * 2 END AS seg_duration, \
                            CASE WHEN g.ai THEN (ARRAY['m-one','m/two'])[1 + floor(random() * 2)::int] END AS model, \
                            CASE WHEN g.ai THEN (ARRAY['text-to-image','Image to video'])[1 + floor(random() * 2)::int] END AS pipeline \
                       FROM (SELECT random() < 0.33 AS ai FROM generate_series(1, $1::int8)) g) t \
               JOIN job_types j ON j.name = t.job_type \
               JOIN regions r ON r.name = t.region AND r.job_type_id = j.id",
            &[&n],
        )
        .await
        .expect("insert random events");
    assert_eq!(inserted as i64, n);
}

/// Every scored event with a region counted exactly once in the rollups: their totals (600 s
/// buckets plus rows not compacted yet) equal `events`' count, once the backfill is done.
pub async fn assert_counted_once(db: &TestDb) {
    let row = db
        .client()
        .await
        .query_one(
            "SELECT (SELECT count(*) FROM events WHERE region_id IS NOT NULL AND (payload ->> 'success_rate' IS NOT NULL OR payload ->> 'round_trip_time' IS NOT NULL))::int8, \
                    ((SELECT COALESCE(sum(events), 0) FROM event_buckets WHERE span = 600) \
                     + (SELECT COALESCE(sum(events), 0) FROM event_bucket_appends))::int8, \
                    (SELECT pending_through FROM leaderboard_backfill)",
            &[],
        )
        .await
        .expect("totals");
    let (stored, counted, pending): (i64, i64, Option<i32>) = (row.get(0), row.get(1), row.get(2));
    assert_eq!(pending, None, "the backfill is done");
    assert!(stored > 0, "a test with events");
    assert_eq!(counted, stored, "every event counted exactly once");
}

/// Inserts `n` successful AI tests of one model and pipeline (`m-one`, `text-to-image`) in
/// FRA, LAX and MDW over the last 20 hours, in one statement, straight into `events`: enough
/// round trips that migration V7 leaves its index to the backfill's finish (10,000 or
/// more). Their times fall on whole minutes, so rows share a key of that index.
pub async fn insert_ai_successes(db: &TestDb, n: i64) {
    let inserted = db
        .client()
        .await
        .execute(
            "INSERT INTO events (event_time, orchestrator, region_id, payload) \
             SELECT date_trunc('minute', now()) - make_interval(mins => i.g % 1200), t.orchestrator, \
                    r.id, jsonb_build_object('region', r.name, 'orchestrator', t.orchestrator, \
                        'success_rate', 1, 'round_trip_time', 0.5 + random() * 6, \
                        'model', 'm-one', 'pipeline', 'text-to-image') \
               FROM generate_series(1, $1::int8) AS s(n) \
               CROSS JOIN LATERAL (SELECT s.n::int4 AS g) AS i \
               CROSS JOIN LATERAL (SELECT (ARRAY['0xa1','0xb2','0xc3'])[1 + i.g % 3] AS orchestrator, \
                                          (ARRAY['FRA','LAX','MDW'])[1 + (i.g / 3) % 3] AS region) t \
               JOIN regions r ON r.name = t.region \
               JOIN job_types j ON j.id = r.job_type_id AND j.name = 'ai'",
            &[&n],
        )
        .await
        .expect("insert AI successes");
    assert_eq!(inserted as i64, n);
}
