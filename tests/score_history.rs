//! `/api/score_history` over real HTTP and PostgreSQL: every point equals
//! `/api/aggregated_stats` over that bucket alone (transcoding and AI, each filter, each
//! interval, unscored tests among the data), the tests it counts equal a straightforward
//! count over `event_details`, events on an edge belong to the bucket that starts there
//! (also before 1970; events exactly on edges among the random data, AI ones too, with
//! even-count and empty AI medians among the points compared), answers stay exact while
//! V4/V5's backfill is under way and when a recount commits between the route's reads, and
//! the 400s and the empty answer.

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

/// `n` random events within the last 30 hours (and up to a day before, where one lands on
/// a day's edge). One in six lies exactly on an edge: of an hour, of 6 hours or of a day,
/// AI ones included; a point is `[t, t + interval)`, so such an event is in the bucket
/// that starts there and not in the one that ends there. None other lies within a
/// millisecond of an hour's edge, so `until = t + interval − 1 µs` of aggregated_stats,
/// the last instant before the next bucket at microsecond resolution, leaves none out.
fn random_events(rng: &mut fastrand::Rng, now: f64, n: usize) -> (Vec<f64>, Vec<Value>) {
    let times = (0..n)
        .map(|_| {
            let t = now - rng.f64() * 30.0 * HOUR;
            let offset = t.rem_euclid(HOUR);
            match rng.u8(..18) {
                0..=1 => t - offset,
                2 => t - t.rem_euclid(6.0 * HOUR),
                3 => t - t.rem_euclid(24.0 * HOUR),
                _ if !(0.001..=HOUR - 0.001).contains(&offset) => t + 0.01,
                _ => t,
            }
        })
        .collect();
    let payloads = (0..n).map(|_| random_payload(rng)).collect();
    (times, payloads)
}

/// How many AI events of `times` lie exactly on an hour's edge, and how many of those on
/// a day's.
fn ai_events_on_edges(times: &[f64], payloads: &[Value]) -> (usize, usize) {
    let on = |period: f64| {
        times
            .iter()
            .zip(payloads)
            .filter(|(t, p)| t.rem_euclid(period) == 0.0 && p.get("model").is_some())
            .count()
    };
    (on(HOUR), on(24.0 * HOUR))
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

/// For an AI filter set, the successful round trips (success rate 1, round trip not 0) per
/// bucket start that the bucket's AI median is taken over: every orchestrator, the
/// request's region or every AI region.
async fn naive_successes(
    db: &TestDb,
    filters: Filters,
    interval: f64,
    (since, until): (f64, f64),
) -> BTreeMap<i64, i64> {
    let Some((model, pipeline)) = filters.ai else {
        return BTreeMap::new();
    };
    let rows = db
        .client()
        .await
        .query(
            "SELECT (floor(extract(epoch FROM event_time) / $1::float8::numeric) * $1::float8::numeric)::int8, count(*) \
               FROM event_details \
              WHERE job_type_name = 'ai' AND success_rate = 1 AND round_trip_time <> 0 \
                AND event_time >= to_timestamp(floor($2::float8 / $1::float8) * $1::float8) \
                AND event_time < to_timestamp(floor($3::float8 / $1::float8) * $1::float8 + $1::float8) \
                AND ($4::text IS NULL OR region_name = $4) \
                AND payload ->> 'model' = $5 AND payload ->> 'pipeline' = $6 \
              GROUP BY 1",
            &[&interval, &since, &until, &filters.region, &model, &pipeline],
        )
        .await
        .expect("naive successes");
    rows.iter().map(|r| (r.get(0), r.get(1))).collect()
}

/// What [`compare_history`] compared: points, and AI points whose bucket's median is of an
/// even number of round trips (the mean of the middle two) or has none (round-trip score 0).
#[derive(Debug, Default, Clone, Copy)]
struct Compared {
    points: usize,
    even_medians: usize,
    empty_medians: usize,
}

impl std::ops::AddAssign for Compared {
    fn add_assign(&mut self, other: Compared) {
        self.points += other.points;
        self.even_medians += other.even_medians;
        self.empty_medians += other.empty_medians;
    }
}

/// The history of `filters` at `interval` over `[since, until]`, checked point by point
/// against aggregated_stats over each bucket of the widened window (so a bucket missing
/// from the history, or one there that aggregated_stats does not have, fails too), and
/// its test counts against [`naive_counts`]. Returns what it checked.
async fn compare_history(
    server: &TestServer,
    db: &TestDb,
    filters: Filters,
    (name, interval): (&str, f64),
    (since, until): (f64, f64),
) -> Compared {
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
    let successes = naive_successes(db, filters, interval, (since, until)).await;
    let mut compared = Compared::default();
    for t in points.keys() {
        match successes.get(t).copied().unwrap_or(0) {
            0 => compared.empty_medians += points[t].len(),
            n if n % 2 == 0 => compared.even_medians += points[t].len(),
            _ => {}
        }
    }
    if filters.ai.is_none() {
        compared = Compared::default();
    }
    let first = (since / interval).floor() * interval;
    let mut t = first;
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
                compared.points += 1;
            }
        }
        assert_eq!(
            seen.len(),
            want.len(),
            "{path}: t={t} has points aggregated_stats does not have"
        );
        t += interval;
    }
    compared
}

/// Every interval and filter set over `window`; asserts that points were compared, AI
/// ones among them whose median was of an even number of round trips and whose bucket had
/// none.
async fn compare_everything(server: &TestServer, db: &TestDb, window: (f64, f64)) {
    let mut compared = Compared::default();
    for interval in INTERVALS {
        for filters in filter_sets() {
            compared += compare_history(server, db, filters, interval, window).await;
        }
    }
    assert!(
        compared.points > 300,
        "too few points compared: {compared:?}"
    );
    assert!(
        compared.even_medians > 0 && compared.empty_medians > 0,
        "AI medians of an even count and empty ones among the points: {compared:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_point_is_aggregated_stats_over_its_bucket() {
    let db = TestDb::new().await;
    let server = TestServer::with_secret(&db).await;
    let mut rng = fastrand::Rng::with_seed(20261206);
    let now = leaderboard::now();
    let (times, payloads) = random_events(&mut rng, now, 2000);
    insert_events_at(&db, &times, &payloads).await;
    let (on_hours, on_days) = ai_events_on_edges(&times, &payloads);
    assert!(
        on_hours > 20 && on_days > 0,
        "AI events exactly on edges: {on_hours} on an hour's, {on_days} on a day's"
    );
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
    leaderboard::schema::migrate::run(&mut client)
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
        leaderboard::schema::backfill::step(&client, 700).await.expect("step"),
        leaderboard::schema::backfill::Step::Left(n) if n > 0
    ));
    for interval in INTERVALS {
        for filters in filter_sets() {
            compare_history(&server, &db, filters, interval, window).await;
        }
    }
}

/// A recount (V5 reverted and applied again: the rollups emptied, every stored event left
/// to the backfill) that commits after the route read "no backfill under way" and before
/// it reads the data: each statement sees the recount in its own snapshot and reads the
/// uncounted events too, so the answer is the one after the recount, not the emptied
/// rollups' (which the 30 s cache would then keep). aggregated_stats and pipelines during
/// the recount answer as after it too.
#[tokio::test(flavor = "multi_thread")]
async fn a_recount_committed_between_the_two_reads_is_seen_with_the_data() {
    use leaderboard::history::Buckets;
    use leaderboard::history::{self, HistoryScope};
    use leaderboard::params::Params;

    let db = TestDb::new().await;
    let mut config = leaderboard::Config::for_database(&db.url);
    config.backfill_in_background = false;
    // Asked again after the recount: not from the cache.
    config.pipelines_cache_timeout = Duration::ZERO;
    let server = TestServer::start(config).await;
    server.app.db.migrations().await.expect("migrations");
    let mut rng = fastrand::Rng::with_seed(2727);
    let now = leaderboard::now();
    let (times, payloads) = random_events(&mut rng, now, 1500);
    insert_events_at(&db, &times, &payloads).await;
    let ai = format!(
        "&model={}&pipeline={}",
        MODELS[0].replace('/', "%2F"),
        PIPELINES[0].replace(' ', "%20")
    );
    let queries: Vec<String> = ["1h", "1d"]
        .iter()
        .flat_map(|interval| {
            let window = format!(
                "interval={interval}&since={}&until={}",
                now - 31.0 * HOUR,
                now
            );
            [window.clone(), format!("{window}{ai}")]
        })
        .collect();
    let parse = |query: &str| {
        let (params, interval) = Params::score_history(Some(query), now).expect("parameters");
        let buckets = Buckets::of(&params.window, interval).expect("buckets");
        (params, buckets)
    };
    let db_of = &server.app.db;

    // What the route reads first: no backfill under way.
    let mut scopes = Vec::new();
    for query in &queries {
        let (params, _) = parse(query);
        let (regions, pending) = history::history_regions(db_of, &params)
            .await
            .expect("regions");
        assert!(!pending, "no backfill yet");
        let regions = regions.into_iter().map(|(key, _)| key).collect();
        scopes.push(HistoryScope {
            regions,
            pending: false,
        });
    }

    // Then a recount commits.
    let mut client = leaderboard::db::connect(&db.url, Duration::from_secs(20))
        .await
        .expect("operator connection");
    leaderboard::schema::migrate::down(&mut client, 4)
        .await
        .expect("down to 4");
    leaderboard::schema::migrate::run(&mut client)
        .await
        .expect("up");
    let counted: i64 = client
        .query_one(
            "SELECT (SELECT count(*) FROM event_buckets) + (SELECT count(*) FROM event_bucket_appends)",
            &[],
        )
        .await
        .expect("rollup rows")
        .get(0);
    assert_eq!(counted, 0, "the recount emptied the rollups");

    // The reads with what the route read before it.
    let mut during = Vec::new();
    for (query, scope) in queries.iter().zip(&scopes) {
        let (params, buckets) = parse(query);
        let mut seen = scope.clone();
        let extent = history::history_extent(db_of, &params, &mut seen, &buckets)
            .await
            .expect("extent")
            .unwrap_or_else(|| panic!("{query}: the extent of the emptied rollups"));
        assert!(seen.pending, "{query}: the extent saw the recount");
        let averages = history::history_averages(db_of, &params, scope, &buckets)
            .await
            .expect("averages");
        // The route takes medians for AI only.
        let medians = match params.model {
            Some(_) => history::history_medians(db_of, &params, scope, &buckets)
                .await
                .expect("medians"),
            None => BTreeMap::new(),
        };
        during.push((extent.groups, averages, medians));
    }
    // The other read routes over the same window during the recount, to compare after it.
    let window = format!("since={}&until={}", now - 31.0 * HOUR, now);
    let others = [
        format!("/api/aggregated_stats?{window}"),
        format!("/api/aggregated_stats?{window}{ai}"),
        format!(
            "/api/aggregated_stats?{window}&orchestrator={}",
            ORCHESTRATORS[1]
        ),
        format!("/api/pipelines?{window}"),
    ];
    let mut others_during = Vec::new();
    for path in &others {
        let answer = server.get_json(path, 200).await;
        assert!(
            answer.as_object().is_some_and(|m| !m.is_empty()),
            "{path}: {answer}"
        );
        others_during.push(answer);
    }
    let answers_during: Vec<Value> = {
        let mut answers = Vec::new();
        for query in &queries {
            answers.push(
                server
                    .get_json(&format!("/api/score_history?{query}"), 200)
                    .await,
            );
        }
        answers
    };

    // The recount done, the same reads from the rollups.
    while !matches!(
        leaderboard::schema::backfill::step(&client, 500)
            .await
            .expect("step"),
        leaderboard::schema::backfill::Step::Left(0)
    ) {}
    for (i, query) in queries.iter().enumerate() {
        let (params, buckets) = parse(query);
        let mut scope = scopes[i].clone();
        let extent = history::history_extent(db_of, &params, &mut scope, &buckets)
            .await
            .expect("extent")
            .expect("data");
        assert!(!scope.pending, "{query}: counted");
        let averages = history::history_averages(db_of, &params, &scope, &buckets)
            .await
            .expect("averages");
        let medians = match params.model {
            Some(_) => history::history_medians(db_of, &params, &scope, &buckets)
                .await
                .expect("medians"),
            None => BTreeMap::new(),
        };
        assert_eq!(
            params.model.is_some(),
            !medians.is_empty(),
            "{query}: medians"
        );
        let (groups, during_averages, during_medians) = &during[i];
        assert_eq!(*groups, extent.groups, "{query}: groups");
        assert!(!averages.is_empty(), "{query}: points");
        assert_eq!(during_averages.len(), averages.len(), "{query}: points");
        for (a, b) in during_averages.iter().zip(&averages) {
            assert_eq!(
                (a.region, &a.orchestrator, a.t, a.tests),
                (b.region, &b.orchestrator, b.t, b.tests),
                "{query}"
            );
            for (x, y) in [
                (a.success_rate, b.success_rate),
                (a.round_trip_time, b.round_trip_time),
                (a.seg_duration, b.seg_duration),
            ] {
                assert_close(&json!(x), y, &format!("{query} {b:?}"));
            }
        }
        assert_eq!(
            during_medians.keys().collect::<Vec<_>>(),
            medians.keys().collect::<Vec<_>>(),
            "{query}: median buckets"
        );
        for (t, m) in &medians {
            assert_close(
                &json!(during_medians[t]),
                *m,
                &format!("{query} median {t}"),
            );
        }
        let after = server
            .get_json(&format!("/api/score_history?{query}"), 200)
            .await;
        assert_same_history(&answers_during[i], &after, query);
    }
    for (path, during) in others.iter().zip(&others_during) {
        let after = server.get_json(path, 200).await;
        assert_same_history(during, &after, path);
    }
}

/// Two answers with the same keys and entries, their numbers equal within rounding.
fn assert_same_history(a: &Value, b: &Value, what: &str) {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            assert_eq!(
                a.keys().collect::<Vec<_>>(),
                b.keys().collect::<Vec<_>>(),
                "{what}"
            );
            for (k, v) in a {
                assert_same_history(v, &b[k], &format!("{what} {k}"));
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            assert_eq!(a.len(), b.len(), "{what}");
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                assert_same_history(x, y, &format!("{what} [{i}]"));
            }
        }
        (Value::Number(_), Value::Number(n)) => {
            assert_close(a, n.as_f64().unwrap_or(f64::NAN), what);
        }
        _ => assert_eq!(a, b, "{what}"),
    }
}
