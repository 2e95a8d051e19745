//! A leaked key, cleaned up as an operator would: testers A and B post; after the leak, B
//! and an attacker holding B's key post (the attacker: perfect scores for one
//! orchestrator, and replays of B's old bodies). B's key is revoked, and
//! `leaderboard events remove --key B --since LEAK --yes` removes B's rows since the leak,
//! resuming a removal cut short. Every route then answers what a reference database that
//! only ever took the other posts answers, and both equal the straightforward SQL.

#[path = "../../../tests/common/mod.rs"]
mod common;

use common::exact::{self, random_scored_payload, HOUR, TOLERANCE};
use common::{event_count, TestDb, TestServer};
use leaderboard::removal::{self, Selection};
use leaderboard::Config;
use serde_json::{json, Value};
use std::process::Stdio;
use tokio::process::Command;

const KEY_A: &str = "tester-a-key";
const KEY_B: &str = "tester-b-key";
/// The orchestrator the attacker promotes.
const TARGET: &str = "0xc3";

struct Post {
    body: Vec<u8>,
    key: &'static str,
    /// Sent after the leak with B's key: what the reference database never takes.
    after_leak_by_b: bool,
}

fn body(mut payload: Value, timestamp: i64) -> Vec<u8> {
    payload["timestamp"] = json!(timestamp);
    serde_json::to_vec(&payload).expect("JSON")
}

/// The posts in the order they are sent, and the leak's time (Unix seconds). Every post
/// has its own `timestamp`, which becomes its `event_time` below.
fn scenario(start: i64) -> (Vec<Post>, i64) {
    let mut rng = fastrand::Rng::with_seed(28);
    let mut posts = Vec::new();
    let mut t = start;
    for i in 0..150 {
        t += 60;
        let key = if i % 2 == 0 { KEY_A } else { KEY_B };
        posts.push(Post {
            body: body(random_scored_payload(&mut rng), t),
            key,
            after_leak_by_b: false,
        });
    }
    let leak = t + 30;
    let old_b_bodies: Vec<Vec<u8>> = posts
        .iter()
        .filter(|p| p.key == KEY_B)
        .take(10)
        .map(|p| p.body.clone())
        .collect();
    for i in 0..150 {
        t += 60;
        let post = match i % 3 {
            0 => {
                let payload = if i % 2 == 0 {
                    json!({"region": "FRA", "orchestrator": TARGET, "success_rate": 1,
                           "round_trip_time": 0.05, "seg_duration": 2.0})
                } else {
                    json!({"region": "LAX", "orchestrator": TARGET, "success_rate": 1,
                           "round_trip_time": 0.01, "model": exact::MODELS[0],
                           "pipeline": exact::PIPELINES[0]})
                };
                Post {
                    body: body(payload, t),
                    key: KEY_B,
                    after_leak_by_b: true,
                }
            }
            1 => Post {
                body: body(random_scored_payload(&mut rng), t),
                key: KEY_B,
                after_leak_by_b: true,
            },
            _ => Post {
                body: body(random_scored_payload(&mut rng), t),
                key: KEY_A,
                after_leak_by_b: false,
            },
        };
        posts.push(post);
    }
    // The attacker also replays B's bodies from before the leak: repeats, stored nothing.
    for old in old_b_bodies {
        posts.push(Post {
            body: old,
            key: KEY_B,
            after_leak_by_b: true,
        });
    }
    (posts, leak)
}

async fn server_with_keys(db: &TestDb, keys: &[&str]) -> TestServer {
    let mut config = Config::for_database(&db.url);
    config.extra_secrets = keys.iter().map(|k| k.to_string()).collect();
    // Reads must see the database as it is now, not a cached answer.
    config.pipelines_cache_timeout = std::time::Duration::ZERO;
    config.regions_cache_timeout = std::time::Duration::ZERO;
    let server = TestServer::start(config).await;
    server.app.db.migrations().await.expect("migrations");
    server
}

async fn send(server: &TestServer, posts: &[&Post]) {
    for post in posts {
        let signature = leaderboard::auth::sign(post.key, &post.body);
        let answer = server.post_with(post.body.clone(), Some(&signature)).await;
        assert_eq!(answer.status().as_u16(), 200);
    }
}

/// Each row at its body's `timestamp`, so both databases hold the same instants (the
/// triggers move the rollups along).
async fn at_their_timestamps(db: &TestDb) {
    db.client()
        .await
        .batch_execute(
            "UPDATE events SET event_time = to_timestamp((payload ->> 'timestamp')::float8)",
        )
        .await
        .expect("event times");
}

/// `got` equals `want`, numbers within `TOLERANCE`.
fn assert_json_close(got: &Value, want: &Value, path: &str) {
    match (got, want) {
        (Value::Number(g), Value::Number(w)) => {
            let (g, w) = (
                g.as_f64().unwrap_or(f64::NAN),
                w.as_f64().unwrap_or(f64::NAN),
            );
            assert!((g - w).abs() <= TOLERANCE, "{path}: {g} != {w}");
        }
        (Value::Object(g), Value::Object(w)) => {
            let (gk, wk): (Vec<_>, Vec<_>) = (g.keys().collect(), w.keys().collect());
            assert_eq!(gk, wk, "{path}: keys");
            for (k, v) in g {
                assert_json_close(v, &w[k], &format!("{path}.{k}"));
            }
        }
        (Value::Array(g), Value::Array(w)) => {
            assert_eq!(g.len(), w.len(), "{path}: length");
            for (i, (g, w)) in g.iter().zip(w).enumerate() {
                assert_json_close(g, w, &format!("{path}[{i}]"));
            }
        }
        _ => assert_eq!(got, want, "{path}"),
    }
}

/// Every read route, in the default windows and over the whole scenario.
fn reads(start: i64, end: i64) -> Vec<String> {
    let window = format!("since={}&until={}", start - 1, end + 1);
    let mut paths = vec![
        "/api/pipelines".to_string(),
        format!("/api/pipelines?{window}"),
    ];
    for query in [
        "",
        "region=FRA",
        "orchestrator=0xc3",
        "region=LAX&orchestrator=0xa1",
    ] {
        paths.push(format!("/api/aggregated_stats?{query}"));
        paths.push(format!("/api/aggregated_stats?{query}&{window}"));
        paths.push(format!("/api/score_history?{query}&interval=1h"));
        for (model, pipeline) in exact::MODELS.iter().zip(exact::PIPELINES) {
            let ai = format!("model={model}&pipeline={}", pipeline.replace(' ', "%20"));
            paths.push(format!("/api/aggregated_stats?{query}&{ai}"));
            paths.push(format!("/api/aggregated_stats?{query}&{ai}&{window}"));
            paths.push(format!("/api/score_history?{query}&{ai}&interval=6h"));
        }
    }
    for orchestrator in exact::ORCHESTRATORS {
        paths.push(format!("/api/top_ai_score?orchestrator={orchestrator}"));
        paths.push(format!("/api/raw_stats?orchestrator={orchestrator}"));
        paths.push(format!(
            "/api/raw_stats?orchestrator={orchestrator}&{window}"
        ));
        paths.push(format!(
            "/api/raw_stats?orchestrator={orchestrator}&job_type=ai&{window}"
        ));
    }
    paths
}

async fn leaderboard_cli(db: &TestDb, args: &[&str], keys: &str) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_leaderboard"))
        .args(args)
        .env("POSTGRES", &db.url)
        .env_remove("SECRET")
        .env("EXTRA_SECRETS", keys)
        .env_remove("LOG_LEVEL")
        .stdin(Stdio::null())
        .output()
        .await
        .expect("run leaderboard");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread")]
async fn after_removing_a_leaked_keys_rows_every_route_equals_a_database_that_never_took_them() {
    let now = leaderboard::now() as i64;
    let start = now - 20 * HOUR as i64;
    let (posts, leak) = scenario(start);
    let end = start + 301 * 60;

    let attacked = TestDb::new().await;
    let reference = TestDb::new().await;
    {
        let server = server_with_keys(&attacked, &[KEY_A, KEY_B]).await;
        send(&server, &posts.iter().collect::<Vec<_>>()).await;
        let server = server_with_keys(&reference, &[KEY_A, KEY_B]).await;
        let kept: Vec<&Post> = posts.iter().filter(|p| !p.after_leak_by_b).collect();
        send(&server, &kept).await;
    }
    at_their_timestamps(&attacked).await;
    at_their_timestamps(&reference).await;
    // 300 distinct bodies; the 10 replays stored nothing.
    assert_eq!(event_count(&attacked).await, 300);
    assert_eq!(event_count(&reference).await, 200);

    // The attack moved the target's score.
    let board = format!("/api/aggregated_stats?orchestrator={TARGET}&region=FRA");
    let before = server_with_keys(&attacked, &[KEY_A]).await;
    let honest = server_with_keys(&reference, &[KEY_A]).await;
    let attacked_score = before.get_json(&board, 200).await[TARGET]["FRA"]["score"].clone();
    let honest_score = honest.get_json(&board, 200).await[TARGET]["FRA"]["score"].clone();
    assert_ne!(
        attacked_score, honest_score,
        "the attack changed nothing to undo"
    );
    drop(before);

    // B's key is revoked: the operator finds its identifier and looks before removing.
    let b = leaderboard::auth::key_id(KEY_B);
    let (ok, listed) = leaderboard_cli(&attacked, &["keys", "--stored"], KEY_A).await;
    assert!(ok, "{listed}");
    assert!(
        listed.contains(&b) && listed.contains("(not configured)"),
        "{listed}"
    );
    let since = leak.to_string();
    let remove = ["events", "remove", "--key", &b, "--since", &since];
    let (ok, shown) = leaderboard_cli(&attacked, &remove, KEY_A).await;
    assert!(ok, "{shown}");
    assert!(shown.contains(&format!("key {b}")), "{shown}");
    assert!(shown.contains(": 100 events of "), "{shown}");
    assert!(shown.contains("run again with --yes"), "{shown}");
    assert_eq!(event_count(&attacked).await, 300, "a look removes nothing");

    // A removal cut short after one step of 7 rows, then run to the end.
    let client = attacked.client().await;
    let selection = Selection {
        key_id: Some(b.clone()),
        since: Some(leak as f64),
        until: None,
    };
    let ids = removal::selected_ids(&client, &selection)
        .await
        .expect("the rows to remove");
    assert_eq!(ids.len(), 100);
    let step = removal::remove_ids(&client, &ids[..7])
        .await
        .expect("one step");
    assert_eq!(step, 7);
    let mut with_yes = remove.to_vec();
    with_yes.push("--yes");
    let (ok, done) = leaderboard_cli(&attacked, &with_yes, KEY_A).await;
    assert!(ok, "{done}");
    assert!(done.contains("removed 93 events"), "{done}");
    assert_eq!(event_count(&attacked).await, 200);
    let (ok, again) = leaderboard_cli(&attacked, &with_yes, KEY_A).await;
    assert!(ok && again.contains("nothing to remove"), "{again}");

    // A replay of a removed body stays out.
    let removed_body = posts.iter().find(|p| p.after_leak_by_b).expect("one");
    let cleaned = server_with_keys(&attacked, &[KEY_A, KEY_B]).await;
    send(&cleaned, &[removed_body]).await;
    assert_eq!(event_count(&attacked).await, 200);
    drop(cleaned);

    let cleaned = server_with_keys(&attacked, &[KEY_A]).await;
    for path in reads(start, end) {
        let got = cleaned.get_json(&path, 200).await;
        let want = honest.get_json(&path, 200).await;
        assert_json_close(&got, &want, &path);
    }
    let cleaned_score = cleaned.get_json(&board, 200).await[TARGET]["FRA"]["score"].clone();
    assert_json_close(&cleaned_score, &honest_score, "the target's score");
    eprintln!(
        "{TARGET} in FRA: score {attacked_score} under attack, {cleaned_score} after the \
         removal, {honest_score} in the reference; {} reads equal",
        reads(start, end).len()
    );
    common::exact::assert_counted_once(&attacked).await;
    let mut rng = fastrand::Rng::with_seed(7);
    let windows = common::exact::windows(&mut rng, leaderboard::now(), 2);
    common::exact::compare_every_route(&cleaned, &attacked, &windows, &mut rng).await;
}

/// `count` posts signed with `key`, `parallel` at a time, each a body of its own.
async fn post_many(
    server: &std::sync::Arc<TestServer>,
    key: &'static str,
    first: i64,
    count: i64,
    parallel: i64,
) {
    let mut tasks = tokio::task::JoinSet::new();
    for lane in 0..parallel {
        let server = server.clone();
        tasks.spawn(async move {
            let mut rng = fastrand::Rng::with_seed((first + lane) as u64);
            let mut n = first + lane;
            while n < first + count {
                let post = Post {
                    body: body(random_scored_payload(&mut rng), n),
                    key,
                    after_leak_by_b: false,
                };
                send(&server, &[&post]).await;
                n += parallel;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("a posting task");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_removal_beside_a_service_taking_posts_loses_none_and_counts_every_row_once() {
    let db = TestDb::new().await;
    let server = std::sync::Arc::new(server_with_keys(&db, &[KEY_A, KEY_B]).await);
    post_many(&server, KEY_B, 1_000_000, 2_500, 16).await;
    post_many(&server, KEY_A, 2_000_000, 100, 4).await;
    assert_eq!(event_count(&db).await, 2_600);

    // Three steps of removal while A's tester goes on posting, one by one and in batches.
    let b = leaderboard::auth::key_id(KEY_B);
    let posting = {
        let server = server.clone();
        tokio::spawn(async move { post_many(&server, KEY_A, 3_000_000, 400, 8).await })
    };
    let (ok, done) = leaderboard_cli(&db, &["events", "remove", "--key", &b, "--yes"], KEY_A).await;
    posting.await.expect("A's posts");
    assert!(ok, "{done}");
    assert!(done.contains("removed 2500 events"), "{done}");
    assert_eq!(event_count(&db).await, 500, "every post of A is stored");
    let client = db.client().await;
    let left = removal::selected_ids(
        &client,
        &Selection {
            key_id: Some(b),
            ..Selection::default()
        },
    )
    .await
    .expect("B's rows");
    assert!(left.is_empty(), "{} rows of B left", left.len());
    exact::assert_counted_once(&db).await;
    let mut rng = fastrand::Rng::with_seed(11);
    let windows = exact::windows(&mut rng, leaderboard::now(), 2);
    exact::compare_every_route(&server, &db, &windows, &mut rng).await;
}
