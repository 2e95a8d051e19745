//! `/api/score_history` over real HTTP and PostgreSQL: every point equals
//! `/api/aggregated_stats` over that bucket alone (transcoding and AI, each filter, each
//! interval, unscored tests among the data), the tests it counts equal a straightforward
//! count over `event_details`, events on an edge belong to the bucket that starts there
//! (also before 1970), answers stay exact while V4/V5's backfill is under way, and the
//! 400s and the empty answer.

mod common;

use common::exact::{
    assert_close, random_payload, AI_REGIONS, HOUR, MODELS, ORCHESTRATORS, PIPELINES,
    TRANSCODING_REGIONS,
};
use common::{golang_migrate_database, insert_events_at, TestDb, TestServer};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const INTERVALS: [(&str, f64); 3] = [("1h", 3600.0), ("6h", 21_600.0), ("1d", 86_400.0)];

/// `n` random events within the last 30 hours, none within a millisecond of an hour's
/// edge (so `until = t + interval − 1 µs` of aggregated_stats leaves none out).
fn random_events(rng: &mut fastrand::Rng, now: f64, n: usize) -> (Vec<f64>, Vec<Value>) {
    let times = (0..n)
        .map(|_| {
            let t = now - rng.f64() * 30.0 * HOUR;
            let offset = t.rem_euclid(HOUR);
            if !(0.001..=HOUR - 0.001).contains(&offset) {
                t + 0.01
            } else {
                t
            }
        })
        .collect();
    let payloads = (0..n).map(|_| random_payload(rng)).collect();
    (times, payloads)
}

/// One set of filters, as query parameters.
#[derive(Clone, Copy, Debug)]
struct Filters {
    orchestrator: Option<&'static str>,
    region: Option<&'static str>,
    ai: Option<(&'static str, &'static str)>,
}

impl Filters {
    fn query(&self) -> String {
        let mut q = String::new();
        if let Some(o) = self.orchestrator {
            q.push_str(&format!("&orchestrator={o}"));
        }
        if let Some(r) = self.region {
            q.push_str(&format!("&region={r}"));
        }
        if let Some((m, p)) = self.ai {
            q.push_str(&format!(
                "&model={}&pipeline={}",
                m.replace('/', "%2F"),
                p.replace(' ', "%20")
            ));
        }
        q
    }
}

/// Every combination the randomized test asks: none, each filter alone, and AI with
/// each of region and orchestrator.
fn filter_sets() -> Vec<Filters> {
    let none = Filters {
        orchestrator: None,
        region: None,
        ai: None,
    };
    let mut sets = vec![
        none,
        Filters {
            orchestrator: Some(ORCHESTRATORS[2]),
            ..none
        },
        Filters {
            region: Some(TRANSCODING_REGIONS[0]),
            ..none
        },
    ];
    for (m, p) in [(MODELS[0], PIPELINES[0]), (MODELS[1], PIPELINES[1])] {
        let ai = Filters {
            ai: Some((m, p)),
            ..none
        };
        sets.push(ai);
        sets.push(Filters {
            region: Some(AI_REGIONS[1]),
            ..ai
        });
        sets.push(Filters {
            orchestrator: Some(ORCHESTRATORS[0]),
            ..ai
        });
    }
    sets
}

/// The scored tests per (orchestrator, region, bucket start) counted straightforwardly.
async fn naive_counts(
    db: &TestDb,
    filters: Filters,
    interval: f64,
    (since, until): (f64, f64),
) -> BTreeMap<(String, String, i64), i64> {
    let job = if filters.ai.is_some() {
        "ai"
    } else {
        "transcoding"
    };
    let rows = db
        .client()
        .await
        .query(
            "SELECT orchestrator::text, region_name::text, \
                    (floor(extract(epoch FROM event_time) / $2::float8::numeric) * $2::float8::numeric)::int8, count(*) \
               FROM event_details \
              WHERE job_type_name = $1 \
                AND (payload ->> 'success_rate' IS NOT NULL OR payload ->> 'round_trip_time' IS NOT NULL) \
                AND event_time >= to_timestamp(floor($3::float8 / $2::float8) * $2::float8) \
                AND event_time < to_timestamp(floor($4::float8 / $2::float8) * $2::float8 + $2::float8) \
                AND ($5::text IS NULL OR orchestrator = $5) \
                AND ($6::text IS NULL OR region_name = $6) \
                AND ($7::text IS NULL OR payload ->> 'model' = $7) \
                AND ($8::text IS NULL OR payload ->> 'pipeline' = $8) \
              GROUP BY 1, 2, 3",
            &[
                &job,
                &interval,
                &since,
                &until,
                &filters.orchestrator,
                &filters.region,
                &filters.ai.map(|a| a.0),
                &filters.ai.map(|a| a.1),
            ],
        )
        .await
        .expect("naive counts");
    rows.iter()
        .map(|r| ((r.get(0), r.get(1), r.get(2)), r.get(3)))
        .collect()
}

/// The history of `filters` at `interval` over `[since, until]`, checked point by point
/// against aggregated_stats over each bucket of the widened window (so a bucket missing
/// from the history, or one there that aggregated_stats does not have, fails too), and
/// its test counts against [`naive_counts`]. Returns how many points it checked.
async fn compare_history(
    server: &TestServer,
    db: &TestDb,
    filters: Filters,
    (name, interval): (&str, f64),
    (since, until): (f64, f64),
) -> usize {
    let path = format!(
        "/api/score_history?interval={name}&since={since}&until={until}{}",
        filters.query()
    );
    let history = server.get_json(&path, 200).await;
    let mut points: BTreeMap<i64, BTreeMap<(String, String), Value>> = BTreeMap::new();
    let mut counts = BTreeMap::new();
    for (orch, regions) in history.as_object().expect("an object") {
        for (region, list) in regions.as_object().expect("regions") {
            let list = list.as_array().expect("points");
            assert!(!list.is_empty(), "{path}: {orch} {region} without points");
            let mut previous = i64::MIN;
            for point in list {
                let t = point["t"].as_i64().expect("t");
                assert!(t > previous, "{path}: points in time order");
                previous = t;
                assert_eq!(t.rem_euclid(interval as i64), 0, "{path}: aligned {t}");
                let tests = point["tests"].as_i64().expect("tests");
                assert!(tests > 0, "{path}: an empty bucket is left out");
                counts.insert((orch.clone(), region.clone(), t), tests);
                points
                    .entry(t)
                    .or_default()
                    .insert((orch.clone(), region.clone()), point.clone());
            }
        }
    }
    assert_eq!(
        counts,
        naive_counts(db, filters, interval, (since, until)).await,
        "{path}: tests per bucket"
    );
    let first = (since / interval).floor() * interval;
    let mut t = first;
    let mut checked = 0;
    while t <= until {
        let board = server
            .get_json(
                &format!(
                    "/api/aggregated_stats?since={t}&until={}{}",
                    t + interval - 1e-6,
                    filters.query()
                ),
                200,
            )
            .await;
        let empty = BTreeMap::new();
        let want = points.get(&(t as i64)).unwrap_or(&empty);
        let mut seen = BTreeSet::new();
        for (orch, regions) in board.as_object().expect("board") {
            for (region, scores) in regions.as_object().expect("regions") {
                let key = (orch.clone(), region.clone());
                let point = want
                    .get(&key)
                    .unwrap_or_else(|| panic!("{path}: no point {t} for {key:?}: {board}"));
                for field in ["success_rate", "round_trip_score", "score"] {
                    let expected = scores[field].as_f64().expect("a number");
                    assert_close(
                        &point[field],
                        expected,
                        &format!("{path} t={t} {key:?} {field}"),
                    );
                }
                seen.insert(key);
                checked += 1;
            }
        }
        assert_eq!(
            seen.len(),
            want.len(),
            "{path}: t={t} has points aggregated_stats does not have"
        );
        t += interval;
    }
    checked
}

/// Every interval and filter set over `window`; asserts that points were compared.
async fn compare_everything(server: &TestServer, db: &TestDb, window: (f64, f64)) {
    let mut checked = 0;
    for interval in INTERVALS {
        for filters in filter_sets() {
            checked += compare_history(server, db, filters, interval, window).await;
        }
    }
    assert!(checked > 300, "only {checked} points compared");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_point_is_aggregated_stats_over_its_bucket() {
    let db = TestDb::new().await;
    let server = TestServer::with_secret(&db).await;
    let mut rng = fastrand::Rng::with_seed(20261206);
    let now = leaderboard::now();
    let (times, payloads) = random_events(&mut rng, now, 2000);
    insert_events_at(&db, &times, &payloads).await;
    let unscored = payloads
        .iter()
        .filter(|p| p.get("success_rate").is_none_or(Value::is_null))
        .count();
    assert!(unscored > 100, "unscored tests among the data: {unscored}");
    // Part of the data compacted into the hourly and 6 h buckets, the rest still in the
    // appended 600 s rows.
    let client = db.client().await;
    client
        .batch_execute("SELECT leaderboard_compact()")
        .await
        .expect("compact");
    let (times, payloads) = random_events(&mut rng, now, 300);
    insert_events_at(&db, &times, &payloads).await;
    let appended: i64 = client
        .query_one("SELECT count(*) FROM event_bucket_appends", &[])
        .await
        .expect("count")
        .get(0);
    assert!(appended > 0, "rows not compacted yet");

    let window = (now - 31.0 * HOUR - 123.25, now + 0.5);
    compare_everything(&server, &db, window).await;
    // A window off every edge, shorter than a day.
    let window = (now - 20.0 * HOUR + 0.75, now - 7.0 * HOUR - 0.5);
    for filters in filter_sets() {
        compare_history(&server, &db, filters, ("1h", 3600.0), window).await;
    }

    // The default window (the last 7 days) and interval (1 h) hold every event here.
    let default = server.get_json("/api/score_history", 200).await;
    let explicit = server
        .get_json(
            &format!(
                "/api/score_history?interval=3600&since={}",
                now - 7.0 * 24.0 * HOUR
            ),
            200,
        )
        .await;
    assert_eq!(default, explicit);
    assert!(default
        .as_object()
        .is_some_and(|m| m.len() == ORCHESTRATORS.len()));

    // One region's rollup rows are found bucket by bucket over a window of up to 10,000
    // hours and over their range beyond: the same points either way.
    let ai = format!(
        "&model={}&pipeline={}",
        MODELS[0].replace('/', "%2F"),
        PIPELINES[0]
    );
    for (region, extra, interval) in [
        (TRANSCODING_REGIONS[0], "", "1h"),
        (TRANSCODING_REGIONS[0], "", "6h"),
        (AI_REGIONS[1], ai.as_str(), "1h"),
    ] {
        let path = |since: f64| {
            format!("/api/score_history?region={region}{extra}&interval={interval}&since={since}")
        };
        let listed = server.get_json(&path(now - 7.0 * 24.0 * HOUR), 200).await;
        let range = server.get_json(&path(now - 20_000.0 * HOUR), 200).await;
        assert!(
            listed.as_object().is_some_and(|m| !m.is_empty()),
            "{region}{extra} {interval}: no points"
        );
        assert_eq!(listed, range, "{region}{extra} {interval}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_on_an_edge_is_in_the_bucket_that_starts_there_also_before_1970() {
    let db = TestDb::new().await;
    let server = TestServer::with_secret(&db).await;
    let day = 1_764_979_200.0; // 2025-12-06T00:00:00Z, a day's edge.
    let tx = |o: &str, rtt: f64| {
        json!({"region": "FRA", "orchestrator": o, "success_rate": 1, "round_trip_time": rtt,
               "seg_duration": 2.0})
    };
    // On the day's edge, a microsecond before it, and before and after 1970 within one
    // hour of it (the span where V4 files a bucket before 1970 under bucket 0).
    insert_events_at(
        &db,
        &[day, day - 1e-6, -1800.0, -3600.0, 1800.0, 0.0],
        &[
            tx("0xedge", 1.0),
            tx("0xedge", 3.0),
            tx("0xold", 1.0),
            tx("0xold", 2.0),
            tx("0xold", 4.0),
            tx("0xold", 8.0),
        ],
    )
    .await;
    db.client()
        .await
        .batch_execute("SELECT leaderboard_compact()")
        .await
        .expect("compact");
    for (name, interval) in INTERVALS {
        let h = server
            .get_json(
                &format!(
                    "/api/score_history?orchestrator=0xedge&interval={name}&since={}&until={}",
                    day - 1.0,
                    day
                ),
                200,
            )
            .await;
        let points = h["0xedge"]["FRA"].as_array().expect("points");
        let ts: Vec<(i64, i64)> = points
            .iter()
            .map(|p| {
                (
                    p["t"].as_i64().unwrap_or(0),
                    p["tests"].as_i64().unwrap_or(0),
                )
            })
            .collect();
        let d = day as i64;
        assert_eq!(ts, vec![(d - interval as i64, 1), (d, 1)], "{name}: {h}");
        let expected = 1.0 - (-2.0f64).exp();
        assert_close(
            &points[1]["round_trip_score"],
            expected,
            "the edge's own event",
        );
    }
    // Before 1970: floor division (the bucket of −1800 starts at −3600, not 0), read exact
    // for every interval; rtt averages 1.5 before the epoch and 6 after it.
    for (name, interval) in INTERVALS {
        let h = server
            .get_json(
                &format!(
                    "/api/score_history?orchestrator=0xold&interval={name}&since=-7200&until=7199"
                ),
                200,
            )
            .await;
        let points = h["0xold"]["FRA"].as_array().expect("points");
        let ts: Vec<(i64, i64)> = points
            .iter()
            .map(|p| {
                (
                    p["t"].as_i64().unwrap_or(0),
                    p["tests"].as_i64().unwrap_or(0),
                )
            })
            .collect();
        assert_eq!(ts, vec![(-(interval as i64), 2), (0, 2)], "{name}: {h}");
        for (point, rtt) in points.iter().zip([1.5f64, 6.0]) {
            let expected = 1.0 - (-2.0 / rtt).exp();
            assert_close(
                &point["round_trip_score"],
                expected,
                &format!("{name} {point}"),
            );
            assert_close(&point["score"], expected, &format!("{name} {point}"));
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn refusals_and_the_empty_answer() {
    let db = TestDb::new().await;
    let server = TestServer::with_secret(&db).await;
    let now = leaderboard::now();
    // 24 groups with data 200 days apart: hourly over that, up to 24 × 4801 points.
    let mut times = Vec::new();
    let mut payloads = Vec::new();
    for orchestrator in ORCHESTRATORS {
        for region in TRANSCODING_REGIONS {
            for t in [now - 200.0 * 24.0 * HOUR, now - 1.0] {
                times.push(t);
                payloads.push(json!({"region": region, "orchestrator": orchestrator,
                                     "success_rate": 1, "round_trip_time": 1.0}));
            }
        }
    }
    insert_events_at(&db, &times, &payloads).await;
    let since = now - 201.0 * 24.0 * HOUR;

    for bad in ["2h", "1w", "60", "hour", "3600.5"] {
        let body = server
            .get_json(&format!("/api/score_history?interval={bad}"), 400)
            .await;
        assert_eq!(
            body["error"],
            format!(
                "invalid interval: {bad} (allowed: 1h, 6h, 1d, or in seconds 3600, 21600, 86400)"
            )
        );
    }
    // The parameters of aggregated_stats, with its errors.
    let body = server
        .get_json("/api/score_history?model=m&interval=1d", 400)
        .await;
    assert_eq!(body["error"], "pipeline required");
    let body = server.get_json("/api/score_history?until=x", 400).await;
    assert_eq!(body["error"], "invalid until: x");

    let body = server
        .get_json(&format!("/api/score_history?since={since}"), 400)
        .await;
    let message = body["error"].as_str().expect("a message");
    assert!(
        message.contains("more than 100000")
            && message.contains("orchestrator")
            && message.contains("region")
            && message.contains("interval")
            && message.contains("window"),
        "{message}"
    );
    // Narrowed by each of the ways it names.
    for narrower in [
        format!("since={since}&orchestrator={}", ORCHESTRATORS[0]),
        format!("since={since}&region={}", TRANSCODING_REGIONS[0]),
        format!("since={since}&interval=1d"),
        format!("since={}", now - 30.0 * 24.0 * HOUR),
    ] {
        let body = server
            .get_json(&format!("/api/score_history?{narrower}"), 200)
            .await;
        assert!(
            body.as_object().is_some_and(|m| !m.is_empty()),
            "{narrower}: {body}"
        );
    }

    // Windows at the ends of PostgreSQL's timestamps, widened past them.
    for edges in [
        "since=9224317929599&until=9224317929600",
        "since=-1e300&until=-210866716800",
        "since=1e300",
    ] {
        for job in ["", "&model=m&pipeline=p"] {
            for interval in ["1h", "1d"] {
                let path = format!("/api/score_history?{edges}{job}&interval={interval}");
                let body = server.get_json(&path, 200).await;
                assert!(body.is_object(), "{path}: {body}");
            }
        }
    }

    // since > until, and a window without data.
    assert_eq!(
        server
            .get_json("/api/score_history?since=200&until=100", 200)
            .await,
        json!({})
    );
    assert_eq!(
        server
            .get_json("/api/score_history?since=100&until=200&interval=1d", 200)
            .await,
        json!({})
    );
    let response = server.get("/api/score_history").await;
    assert_eq!(
        response.headers()["cache-control"],
        "public, max-age=30, stale-while-revalidate=15"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn points_include_the_events_the_backfill_has_not_counted_yet() {
    let db = golang_migrate_database(3, false).await;
    let mut rng = fastrand::Rng::with_seed(77);
    let now = leaderboard::now();
    let (times, payloads) = random_events(&mut rng, now, 1500);
    insert_events_at(&db, &times, &payloads).await;
    let mut client = leaderboard::db::connect(&db.url, Duration::from_secs(20))
        .await
        .expect("operator connection");
    leaderboard::migrate::run(&mut client)
        .await
        .expect("migrate");
    // The service without its background backfill: the test decides when steps happen.
    let mut config = leaderboard::Config::for_database(&db.url);
    config.backfill_in_background = false;
    let server = TestServer::start(config).await;
    let pending: Option<i32> = client
        .query_one("SELECT pending_through FROM leaderboard_backfill", &[])
        .await
        .expect("state")
        .get(0);
    assert!(pending.is_some(), "nothing counted yet");
    // And some events after the migration, which the triggers count.
    let (times, payloads) = random_events(&mut rng, now, 300);
    insert_events_at(&db, &times, &payloads).await;

    let window = (now - 31.0 * HOUR, now + 1.0);
    compare_everything(&server, &db, window).await;
    // Half counted.
    assert!(matches!(
        leaderboard::backfill::step(&client, 700).await.expect("step"),
        leaderboard::backfill::Step::Left(n) if n > 0
    ));
    for interval in INTERVALS {
        for filters in filter_sets() {
            compare_history(&server, &db, filters, interval, window).await;
        }
    }
}
