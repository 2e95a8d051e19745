//! Region sync from the Catalyst JSON document (`CATALYST_REGION_URL`), over real HTTP
//! from a small document server in the test, into a real PostgreSQL.

mod common;

use common::openapi::SendChecked;
use common::{assert_seed_regions, fixture, TestDb, TestServer, SECRET, SEED_REGIONS};
use leaderboard::{App, Config};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the document server answers on a path.
#[derive(Clone)]
enum Reply {
    Document {
        status: u16,
        body: Vec<u8>,
    },
    Redirect(String),
    /// Accepts the request and never answers.
    Hang,
    /// Sends headers promising a body, then nothing.
    HangInBody,
}

fn ok(body: impl Into<Vec<u8>>) -> Reply {
    Reply::Document {
        status: 200,
        body: body.into(),
    }
}

/// A minimal HTTP/1.1 server on 127.0.0.1 serving one `Reply` per path.
struct Source {
    base: String,
    replies: Arc<Mutex<HashMap<String, Reply>>>,
    hits: Arc<AtomicUsize>,
}

impl Source {
    async fn start() -> Source {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let replies: Arc<Mutex<HashMap<String, Reply>>> = Arc::default();
        let hits = Arc::new(AtomicUsize::new(0));
        let (r, h) = (replies.clone(), hits.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, r.clone(), h.clone()));
            }
        });
        Source {
            base,
            replies,
            hits,
        }
    }

    fn set(&self, path: &str, reply: Reply) {
        self.replies.lock().unwrap().insert(path.to_string(), reply);
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

async fn serve(
    mut stream: TcpStream,
    replies: Arc<Mutex<HashMap<String, Reply>>>,
    hits: Arc<AtomicUsize>,
) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    hits.fetch_add(1, Ordering::SeqCst);
    let head = String::from_utf8_lossy(&head);
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    let reply = replies.lock().unwrap().get(&path).cloned();
    let (status, headers, body) = match reply {
        None => (404, String::new(), b"not found".to_vec()),
        Some(Reply::Document { status, body }) => {
            (status, "Content-Type: application/json\r\n".into(), body)
        }
        Some(Reply::Redirect(to)) => (302, format!("Location: {to}\r\n"), Vec::new()),
        Some(Reply::Hang) => {
            tokio::time::sleep(Duration::from_secs(120)).await;
            return;
        }
        Some(Reply::HangInBody) => {
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"prod\":")
                .await;
            tokio::time::sleep(Duration::from_secs(120)).await;
            return;
        }
    };
    let response = format!(
        "HTTP/1.1 {status} X\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.write_all(&body).await;
    let _ = stream.shutdown().await;
}

fn catalysts() -> Vec<u8> {
    fixture("catalysts.json").to_string().into_bytes()
}

/// A configuration for `db` syncing from `url`.
fn config(db: &TestDb, url: &str, cache: Duration) -> Config {
    let mut config = Config::for_database(&db.url);
    config.catalyst_region_url = Some(url.to_string());
    config.regions_cache_timeout = cache;
    config
}

/// GET /api/regions with a client that gives up after 30 s, so a hang fails the test.
async fn regions(server: &TestServer) -> Value {
    let response = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
        .get(server.url("/api/regions"))
        .send_checked()
        .await
        .expect("GET /api/regions answers");
    assert_eq!(response.status().as_u16(), 200);
    response.json().await.expect("JSON")
}

fn triples(body: &Value) -> Vec<(String, String, String)> {
    body["regions"]
        .as_array()
        .expect("regions array")
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                r["name"].as_str().unwrap().to_string(),
                r["type"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn owned(list: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    list.iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect()
}

async fn region_rows(db: &TestDb) -> i64 {
    db.client()
        .await
        .query_one("SELECT count(*) FROM regions", &[])
        .await
        .expect("count regions")
        .get(0)
}

async fn rows_named(db: &TestDb, name: &str) -> i64 {
    db.client()
        .await
        .query_one("SELECT count(*) FROM regions WHERE name = $1", &[&name])
        .await
        .expect("count regions")
        .get(0)
}

async fn sequence(db: &TestDb) -> i64 {
    db.client()
        .await
        .query_one("SELECT last_value FROM regions_id_seq", &[])
        .await
        .expect("sequence")
        .get(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn production_regions_are_added_after_the_seed_ones() {
    let source = Source::start().await;
    source.set("/catalysts.json", ok(catalysts()));
    let db = TestDb::new().await;
    let server = TestServer::start(config(
        &db,
        &source.url("/catalysts.json"),
        Duration::from_secs(60),
    ))
    .await;

    let got = triples(&regions(&server).await);
    assert_eq!(source.hits(), 1);
    let mut want = owned(SEED_REGIONS);
    want.extend(owned(&[
        ("BOM", "Mumbai", "transcoding"),
        ("JNB", "Johannesburg", "transcoding"),
    ]));
    // Seed order first, then the new regions; FRA still once per type, name unchanged;
    // nothing from `staging` (AMS).
    assert_eq!(got, want);
    let fra: Vec<_> = got.iter().filter(|r| r.0 == "FRA").collect();
    assert_eq!(fra.len(), 2);
    assert!(fra.iter().all(|r| r.1 == "Frankfurt"));
    assert!(!got.iter().any(|r| r.0 == "AMS"));
    assert_eq!(region_rows(&db).await, 28);

    // Cached: the next request neither fetches nor changes anything.
    assert_eq!(triples(&regions(&server).await), want);
    assert_eq!(source.hits(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn syncing_again_adds_nothing_and_a_shorter_document_deletes_nothing() {
    let source = Source::start().await;
    source.set("/c.json", ok(catalysts()));
    let db = TestDb::new().await;
    let server = TestServer::start(config(&db, &source.url("/c.json"), Duration::ZERO)).await;

    let first = regions(&server).await;
    assert_eq!(region_rows(&db).await, 28);
    let last_id = sequence(&db).await;

    // Same document: nothing inserted, not even a sequence value spent.
    assert_eq!(regions(&server).await, first);
    assert_eq!(source.hits(), 2);
    assert_eq!(region_rows(&db).await, 28);
    assert_eq!(sequence(&db).await, last_id);

    // A document that drops regions and renames others: nothing deleted or changed.
    source.set(
        "/c.json",
        ok(
            json!({"prod": {"full_name": {"fra": "Frankfurt am Main", "jnb": "Joburg"}}})
                .to_string(),
        ),
    );
    assert_eq!(regions(&server).await, first);
    assert_eq!(source.hits(), 3);
    assert_eq!(region_rows(&db).await, 28);

    // Lower-case ids in the database count as existing too.
    db.client()
        .await
        .batch_execute("UPDATE regions SET name = 'bom' WHERE name = 'BOM'")
        .await
        .expect("rename");
    source.set("/c.json", ok(catalysts()));
    regions(&server).await;
    assert_eq!(region_rows(&db).await, 28);
}

#[tokio::test(flavor = "multi_thread")]
async fn failing_sources_never_fail_the_request() {
    let source = Source::start().await;
    let db = TestDb::new().await;
    let server = TestServer::start(config(&db, &source.url("/c.json"), Duration::ZERO)).await;

    let mut too_large = br#"{"prod":{"full_name":{"jnb":"Johannesburg"}},"pad":""#.to_vec();
    too_large.extend(vec![b'x'; 2 << 20]);
    too_large.extend(br#""}"#);
    let failures = [
        (
            "HTTP 500",
            Reply::Document {
                status: 500,
                body: catalysts(),
            },
        ),
        (
            "HTTP 404",
            Reply::Document {
                status: 404,
                body: catalysts(),
            },
        ),
        ("invalid JSON", ok(&b"{\"prod\": {\"full_name\": "[..])),
        ("HTML", ok(&b"<html>maintenance</html>"[..])),
        ("an array of numbers", ok(r#"{"prod":{"full_name":[1,2]}}"#)),
        ("a top-level array", ok("[]")),
        (
            "a number as a name",
            ok(r#"{"prod":{"full_name":{"jnb":7}}}"#),
        ),
        (
            "no prod",
            ok(r#"{"staging":{"full_name":{"jnb":"Johannesburg"}}}"#),
        ),
        ("more than 1 MiB", ok(too_large)),
    ];
    for (i, (what, reply)) in failures.into_iter().enumerate() {
        source.set("/c.json", reply);
        let body = regions(&server).await;
        assert_eq!(source.hits(), i + 1, "{what}: the source was asked");
        assert_seed_regions(&body);
        assert_eq!(region_rows(&db).await, 26, "{what}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_source_that_never_answers_is_given_up() {
    let source = Source::start().await;
    source.set("/hang.json", Reply::Hang);
    source.set("/hang-body.json", Reply::HangInBody);
    for path in ["/hang.json", "/hang-body.json"] {
        let db = TestDb::new().await;
        let server = TestServer::start(config(&db, &source.url(path), Duration::ZERO)).await;
        assert_seed_regions(&regions(&server).await);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_sources_are_survived() {
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        listener.local_addr().expect("addr").port()
    };
    for url in [
        format!("http://127.0.0.1:{closed}/catalysts.json"),
        format!("https://127.0.0.1:{closed}/catalysts.json"),
        "http://catalyst.invalid/catalysts.json".to_string(),
        "not a url".to_string(),
        "ftp://127.0.0.1/catalysts.json".to_string(),
    ] {
        let db = TestDb::new().await;
        let server = TestServer::start(config(&db, &url, Duration::ZERO)).await;
        assert_seed_regions(&regions(&server).await);
        assert_eq!(region_rows(&db).await, 26, "{url}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_name_no_part_of_the_url_but_the_host() {
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let client = leaderboard::regions::catalyst::client().expect("client");
    let url = format!("http://user:hunter2@127.0.0.1:{closed}/private/c.json?token=s3cr3t");
    let error = leaderboard::regions::catalyst::fetch(&client, &url)
        .await
        .expect_err("refused")
        .to_string();
    for secret in ["hunter2", "s3cr3t", "private", "user"] {
        assert!(!error.contains(secret), "{error}");
    }
    assert_eq!(leaderboard::regions::catalyst::host_of(&url), "127.0.0.1");
}

#[tokio::test(flavor = "multi_thread")]
async fn redirects_are_followed() {
    let source = Source::start().await;
    source.set("/old.json", Reply::Redirect("/new.json".into()));
    source.set("/new.json", ok(catalysts()));
    let db = TestDb::new().await;
    let server = TestServer::start(config(
        &db,
        &source.url("/old.json"),
        Duration::from_secs(60),
    ))
    .await;
    let got = triples(&regions(&server).await);
    assert_eq!(source.hits(), 2);
    assert!(got.contains(&("JNB".into(), "Johannesburg".into(), "transcoding".into())));
}

#[tokio::test(flavor = "multi_thread")]
async fn https_urls_are_fetched_over_tls() {
    // A listener that records the first bytes it is sent: a TLS client hello starts with
    // the handshake record type 0x16.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let first = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.expect("accept");
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).await.expect("read");
        byte[0]
    });
    let db = TestDb::new().await;
    let url = format!("https://127.0.0.1:{port}/catalysts.json");
    let server = TestServer::start(config(&db, &url, Duration::ZERO)).await;
    assert_seed_regions(&regions(&server).await);
    assert_eq!(first.await.expect("listener"), 0x16);
}

#[tokio::test(flavor = "multi_thread")]
async fn instances_syncing_at_once_add_each_region_once() {
    let source = Source::start().await;
    source.set("/c.json", ok(catalysts()));
    let db = TestDb::new().await;
    let apps: Vec<Arc<App>> = (0..8)
        .map(|_| {
            Arc::new(App::new(config(
                &db,
                &source.url("/c.json"),
                Duration::from_secs(60),
            )))
        })
        .collect();
    let barrier = Arc::new(tokio::sync::Barrier::new(apps.len()));
    let mut tasks = tokio::task::JoinSet::new();
    for app in &apps {
        let (app, barrier) = (app.clone(), barrier.clone());
        tasks.spawn(async move {
            app.db.migrations().await.expect("migrations");
            barrier.wait().await;
            app.regions().await
        });
    }
    while let Some(result) = tasks.join_next().await {
        let regions = result.expect("task").expect("regions");
        assert!(regions.iter().any(|r| r.id == "BOM"), "{regions:?}");
        assert!(regions.iter().any(|r| r.id == "JNB"), "{regions:?}");
    }
    assert_eq!(source.hits(), 8);
    assert_eq!(rows_named(&db, "JNB").await, 1);
    assert_eq!(rows_named(&db, "BOM").await, 1);
    assert_eq!(region_rows(&db).await, 28);
}

async fn post_server(db: &TestDb, url: &str, cache: Duration) -> TestServer {
    let mut config = config(db, url, cache);
    config.secret = Some(SECRET.to_string());
    TestServer::start(config).await
}

fn stat(region: &str) -> Value {
    let mut body = fixture("stream-tester.json");
    body["region"] = json!(region);
    body
}

#[tokio::test(flavor = "multi_thread")]
async fn a_post_to_a_synced_region_is_accepted() {
    let source = Source::start().await;
    source.set("/c.json", ok(catalysts()));
    let db = TestDb::new().await;
    let server = post_server(&db, &source.url("/c.json"), Duration::from_secs(60)).await;

    let response = server.post(stat("jnb").to_string()).await;
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.text().await.expect("body"), "ok");
    let row = db
        .client()
        .await
        .query_one(
            "SELECT r.name, j.name FROM events e JOIN regions r ON r.id = e.region_id \
               JOIN job_types j ON j.id = r.job_type_id",
            &[],
        )
        .await
        .expect("the stored event");
    assert_eq!(
        (row.get::<_, String>(0), row.get::<_, String>(1)),
        ("JNB".to_string(), "transcoding".to_string())
    );

    // Synced regions are transcoding only.
    let mut ai = fixture("ai-tester.json");
    ai["region"] = json!("JNB");
    assert_eq!(server.post(ai.to_string()).await.status().as_u16(), 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn region_misses_do_not_refetch_while_the_cache_is_fresh() {
    let source = Source::start().await;
    source.set("/c.json", ok(catalysts()));
    let db = TestDb::new().await;
    let server = post_server(&db, &source.url("/c.json"), Duration::from_secs(60)).await;

    for _ in 0..3 {
        let response = server.post(stat("XYZ").to_string()).await;
        assert_eq!(response.status().as_u16(), 400);
    }
    assert_eq!(source.hits(), 1);
    assert_eq!(server.post(stat("BOM").to_string()).await.status(), 200);
    assert_eq!(source.hits(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_source_does_not_break_posting() {
    let source = Source::start().await;
    source.set(
        "/c.json",
        Reply::Document {
            status: 503,
            body: Vec::new(),
        },
    );
    let db = TestDb::new().await;
    let server = post_server(&db, &source.url("/c.json"), Duration::ZERO).await;
    assert_eq!(server.post(stat("FRA").to_string()).await.status(), 200);
    assert_eq!(server.post(stat("JNB").to_string()).await.status(), 400);
    assert!(source.hits() >= 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_inserts_neither_fail_nor_duplicate() {
    // The store function itself, so that a unique violation is seen instead of being
    // logged and swallowed by the sync. An open transaction holding the new rows makes
    // all eight statements pass their existence check and wait on the unique index; its
    // rollback then lets them race for the same rows.
    let entries = leaderboard::regions::catalyst::parse(&catalysts()).expect("fixture");
    let db = TestDb::new().await;
    let apps: Vec<Arc<App>> = (0..8)
        .map(|_| Arc::new(App::new(Config::for_database(&db.url))))
        .collect();
    for app in &apps {
        app.db.migrations().await.expect("migrations");
    }
    let blocker = db.client().await;
    blocker
        .batch_execute(
            "BEGIN; INSERT INTO regions (name, display_name, job_type_id) \
             SELECT n, 'held', id FROM job_types, unnest(ARRAY['BOM', 'JNB']) n \
             WHERE job_types.name = 'transcoding'",
        )
        .await
        .expect("hold the rows");
    let mut tasks = tokio::task::JoinSet::new();
    for app in &apps {
        let (app, entries) = (app.clone(), entries.clone());
        tasks.spawn(async move {
            leaderboard::regions::add_transcoding_regions(&app.db, &entries).await
        });
    }
    let observer = db.client().await;
    for _ in 0..200 {
        let waiting: i64 = observer
            .query_one(
                "SELECT count(*) FROM pg_stat_activity \
                  WHERE datname = current_database() AND wait_event_type = 'Lock'",
                &[],
            )
            .await
            .expect("pg_stat_activity")
            .get(0);
        if waiting >= 8 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    blocker.batch_execute("ROLLBACK").await.expect("rollback");
    let mut added = 0;
    while let Some(result) = tasks.join_next().await {
        added += result.expect("task").expect("no error when racing");
    }
    assert_eq!(added, 2);
    assert_eq!(rows_named(&db, "JNB").await, 1);
    assert_eq!(rows_named(&db, "BOM").await, 1);
    assert_eq!(region_rows(&db).await, 28);
}
