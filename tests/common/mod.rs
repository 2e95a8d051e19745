//! Test harness: a real PostgreSQL (started here unless `TEST_DATABASE_URL` is given),
//! one fresh database per test, and the service on a real HTTP port.
#![allow(dead_code)] // each test binary uses its own part of the harness

pub mod exact;
pub mod openapi;

use leaderboard::{server, App, Config};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};
use tokio::sync::oneshot;

/// The server every test of a binary shares; databases keep tests apart.
struct SharedPg {
    admin_url: String,
    _server: Option<localpg::PgServer>,
}

fn shared() -> &'static SharedPg {
    static PG: OnceLock<SharedPg> = OnceLock::new();
    PG.get_or_init(|| match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => SharedPg {
            admin_url: url,
            _server: None,
        },
        _ => {
            let server = localpg::PgServer::start(localpg::Options::ephemeral())
                .unwrap_or_else(|e| panic!("cannot start a test PostgreSQL: {e}"));
            localpg::cleanup_at_exit(&server);
            SharedPg {
                admin_url: server.url("postgres"),
                _server: Some(server),
            }
        }
    })
}

/// Connects with tokio-postgres, for arranging and inspecting data.
pub async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connecting to the test database: {e}"));
    tokio::spawn(connection);
    client
}

/// Whether `sql`, one boolean read from the cumulative statistics views (`pg_stat_*`,
/// e.g. `last_analyze`), is true about what already happened.
///
/// From PostgreSQL 15 on those views are kept in shared memory and show a finished
/// `ANALYZE` at once: one read answers. Up to 14 a statistics collector process hears of it
/// asynchronously and is read from a file up to half a second old, so there the query is
/// read again, each time in a fresh statistics snapshot, until it is true (bounded: 10 s).
pub async fn statistics_show(client: &tokio_postgres::Client, sql: &str) -> bool {
    let version: i32 = client
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .await
        .unwrap_or_else(|e| panic!("server_version_num: {e}"))
        .get(0);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        client
            .batch_execute("SELECT pg_stat_clear_snapshot()")
            .await
            .unwrap_or_else(|e| panic!("pg_stat_clear_snapshot: {e}"));
        let shown: Option<bool> = client
            .query_one(sql, &[])
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .get(0);
        if shown == Some(true) || version >= 150_000 || tokio::time::Instant::now() >= deadline {
            return shown == Some(true);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A database of its own for one test, dropped when the value is.
pub struct TestDb {
    pub url: String,
    name: String,
}

impl TestDb {
    pub async fn new() -> TestDb {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "lbtest_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let admin = connect(&shared().admin_url).await;
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        TestDb {
            url: with_database(&shared().admin_url, &name),
            name,
        }
    }

    pub async fn client(&self) -> tokio_postgres::Client {
        connect(&self.url).await
    }

    /// This database's URL through `pooler`.
    pub fn url_through(&self, pooler: &localpg::PgBouncer) -> String {
        pooler.url(&self.name)
    }
}

/// Installs Debian's `pgbouncer` package once when no PgBouncer is found, so `cargo test`
/// works on a machine that has PostgreSQL but not PgBouncer (apt-get needs root).
fn ensure_pgbouncer() {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    let result = INSTALLED.get_or_init(|| {
        if localpg::PgBouncer::installed() {
            return Ok(());
        }
        eprintln!("PgBouncer not found: installing Debian's pgbouncer package (apt-get)");
        let apt = |args: &[&str]| {
            std::process::Command::new("apt-get")
                .args(args)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        let install = ["install", "-y", "-qq", "pgbouncer"];
        if apt(&install) || (apt(&["update", "-qq"]) && apt(&install)) {
            Ok(())
        } else {
            Err(
                "PgBouncer is needed and could not be installed: run `apt-get install \
                 pgbouncer` as root, or set PGBOUNCER to its binary"
                    .to_string(),
            )
        }
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// PgBouncer in transaction mode in front of the test server, with `pool_size` server
/// connections per database.
pub fn pooler(pool_size: u32) -> localpg::PgBouncer {
    ensure_pgbouncer();
    let config: tokio_postgres::Config = shared().admin_url.parse().expect("admin URL");
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        _ => "127.0.0.1".to_string(),
    };
    let upstream = localpg::Upstream {
        host,
        port: config.get_ports().first().copied().unwrap_or(5432),
        user: config.get_user().unwrap_or("postgres").to_string(),
        password: config
            .get_password()
            .map(|p| String::from_utf8_lossy(p).into_owned()),
    };
    localpg::PgBouncer::start(&upstream, pool_size)
        .unwrap_or_else(|e| panic!("cannot start PgBouncer: {e}"))
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let admin_url = shared().admin_url.clone();
        let name = self.name.clone();
        // Drop runs inside the test's runtime; a thread of its own may block.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(rt) = rt {
                rt.block_on(async {
                    if let Ok((client, conn)) =
                        tokio_postgres::connect(&admin_url, tokio_postgres::NoTls).await
                    {
                        tokio::spawn(conn);
                        let _ = client
                            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                            .await;
                    }
                });
            }
        })
        .join();
    }
}

/// `url` with its database name replaced.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let base = match base.rfind('/') {
        Some(i) if i > "postgres://".len() => &base[..i],
        _ => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// The service on a real port, through the same router as the local server.
pub struct TestServer {
    pub base: String,
    pub app: Arc<App>,
    stop: Option<oneshot::Sender<()>>,
}

impl TestServer {
    pub async fn start(config: Config) -> TestServer {
        let app = Arc::new(App::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a test port");
        let base = format!("http://{}", listener.local_addr().expect("local addr"));
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(server::serve(app.clone(), listener, async {
            let _ = stopped.await;
        }));
        TestServer {
            base,
            app,
            stop: Some(stop),
        }
    }

    /// The service on `db`, every other setting at its default.
    pub async fn on(db: &TestDb) -> TestServer {
        TestServer::start(Config::for_database(&db.url)).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// GET `path`; the answer is checked against docs/openapi.json.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        openapi::send(reqwest::Client::new().get(self.url(path)))
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// The service on `db` accepting posts signed with `SECRET`.
    pub async fn with_secret(db: &TestDb) -> TestServer {
        let mut config = Config::for_database(&db.url);
        config.secret = Some(SECRET.to_string());
        let server = TestServer::start(config).await;
        // Migrated up front, so "nothing stored" can be checked after refusals that
        // never reach the database.
        server.app.db.migrations().await.expect("migrations");
        server
    }

    /// POSTs `body` to post_stats signed with `SECRET`.
    pub async fn post(&self, body: impl Into<Vec<u8>>) -> reqwest::Response {
        let body = body.into();
        let signature = leaderboard::auth::sign(SECRET, &body);
        self.post_with(body, Some(&signature)).await
    }

    /// POSTs `body` with the given `Authorization` header, or none; the answer is checked
    /// against docs/openapi.json.
    pub async fn post_with(&self, body: Vec<u8>, authorization: Option<&str>) -> reqwest::Response {
        let mut request = reqwest::Client::new()
            .post(self.url("/api/post_stats"))
            .header("content-type", "application/json")
            .body(body);
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        openapi::send(request).await.expect("POST post_stats")
    }

    /// GET `path`, asserting the status, and the JSON body.
    pub async fn get_json(&self, path: &str, status: u16) -> serde_json::Value {
        let response = self.get(path).await;
        assert_eq!(response.status().as_u16(), status, "GET {path}");
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        assert_eq!(content_type, "application/json", "GET {path}");
        response.json().await.expect("a JSON body")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The HMAC key of test servers that accept posts.
pub const SECRET: &str = "test-secret";

/// A job tester's request body from `tests/fixtures`.
pub fn fixture(name: &str) -> serde_json::Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Inserts an event the way the original service did, at `event_time` (Unix seconds),
/// so tests can place events anywhere in time.
pub async fn insert_event_at(db: &TestDb, event_time: f64, payload: &serde_json::Value) {
    let orchestrator = payload["orchestrator"].as_str().expect("orchestrator");
    let region = payload["region"].as_str().expect("region");
    let job_type = if payload.get("model").is_some() {
        "ai"
    } else {
        "transcoding"
    };
    let inserted = db
        .client()
        .await
        .execute(
            "INSERT INTO events (event_time, orchestrator, region_id, payload) \
             SELECT to_timestamp($5), $1, regions.id, $2 FROM job_types \
               JOIN regions ON regions.name = $3 AND regions.job_type_id = job_types.id \
              WHERE job_types.name = $4",
            &[&orchestrator, payload, &region, &job_type, &event_time],
        )
        .await
        .expect("insert event");
    assert_eq!(inserted, 1, "region {region} for {job_type}");
}

/// Inserts many events at once (one statement), each at its own time.
pub async fn insert_events_at(db: &TestDb, times: &[f64], payloads: &[serde_json::Value]) {
    let inserted = db
        .client()
        .await
        .execute(
            "INSERT INTO events (event_time, orchestrator, region_id, payload) \
             SELECT to_timestamp(t), p ->> 'orchestrator', r.id, p \
               FROM unnest($1::float8[], $2::jsonb[]) AS x(t, p) \
               JOIN job_types j ON j.name = CASE WHEN p ? 'model' THEN 'ai' ELSE 'transcoding' END \
               JOIN regions r ON r.name = p ->> 'region' AND r.job_type_id = j.id",
            &[&times, &payloads],
        )
        .await
        .expect("insert events");
    assert_eq!(inserted as usize, payloads.len());
}

/// A database as the Go service leaves it: its three migrations applied by golang-migrate,
/// whose bookkeeping table says `version`, `dirty`.
pub async fn golang_migrate_database(version: i64, dirty: bool) -> TestDb {
    let db = TestDb::new().await;
    let client = db.client().await;
    leaderboard::schema::migrate::create_original(&client)
        .await
        .expect("the original schema");
    client
        .execute(
            "UPDATE schema_migrations SET version = $1, dirty = $2",
            &[&version, &dirty],
        )
        .await
        .expect("version row");
    db
}

/// Rows in `events`.
pub async fn event_count(db: &TestDb) -> i64 {
    db.client()
        .await
        .query_one("SELECT count(*) FROM events", &[])
        .await
        .expect("count events")
        .get(0)
}

/// The 26 seed regions of the spec, in insertion order: (id, name, type).
pub const SEED_REGIONS: &[(&str, &str, &str)] = &[
    ("GLOBAL", "Global", "transcoding"),
    ("GLOBAL", "Global", "ai"),
    ("ATL", "Atlanta", "transcoding"),
    ("ATL2", "Atlanta 2", "transcoding"),
    ("MDW", "Chicago", "transcoding"),
    ("MDW", "Chicago", "ai"),
    ("FRA", "Frankfurt", "transcoding"),
    ("FRA", "Frankfurt", "ai"),
    ("HOU", "Houston", "transcoding"),
    ("LON", "London", "transcoding"),
    ("LAX", "Los Angeles", "transcoding"),
    ("LAX", "Los Angeles", "ai"),
    ("MAD", "Madrid", "transcoding"),
    ("MIA", "Miami", "transcoding"),
    ("MOS2", "Moscow", "transcoding"),
    ("ASH", "Nashua", "transcoding"),
    ("NYC", "New York City", "transcoding"),
    ("PRG", "Prague", "transcoding"),
    ("SJO", "San Jose", "transcoding"),
    ("SAO", "São Paulo", "transcoding"),
    ("SEA", "Seattle", "transcoding"),
    ("SIN", "Singapore", "transcoding"),
    ("STO", "Stockholm", "transcoding"),
    ("SYD", "Sydney", "transcoding"),
    ("HND", "Tokyo", "transcoding"),
    ("TOR", "Toronto", "transcoding"),
];

/// Asserts that a `/api/regions` body is exactly the seed list.
pub fn assert_seed_regions(body: &serde_json::Value) {
    let regions = body["regions"].as_array().expect("a regions array");
    let got: Vec<(String, String, String)> = regions
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap_or_default().to_string(),
                r["name"].as_str().unwrap_or_default().to_string(),
                r["type"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let want: Vec<(String, String, String)> = SEED_REGIONS
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect();
    assert_eq!(got, want);
}

/// `n` distinct free ports (all held at once while choosing, so no two are the same).
pub fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("a free port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("local addr").port())
        .collect()
}

/// A function binary started as Vercel starts it; killed when dropped.
pub struct Instance {
    pub binary: &'static str,
    /// The request its caller sends first.
    pub path: &'static str,
    pub port: u16,
    pub child: Child,
    lines: Option<Lines<BufReader<ChildStdout>>>,
    stderr: Arc<Mutex<Vec<String>>>,
}

/// Starts `binary` with `VERCEL_DEV_PORT`, without waiting for it.
pub fn spawn_function(
    binary: &'static str,
    path: &'static str,
    postgres: &str,
    port: u16,
) -> Instance {
    let mut child = Command::new(binary)
        .env("VERCEL_DEV_PORT", port.to_string())
        .env("POSTGRES", postgres)
        .env("SECRET", SECRET)
        .env_remove("VERCEL_IPC_PATH")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {binary}: {e}"));
    let stdout = child.stdout.take().expect("stdout");
    let mut errors = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let stderr = Arc::new(Mutex::new(Vec::new()));
    let collected = stderr.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = errors.next_line().await {
            collected.lock().expect("stderr lock").push(line);
        }
    });
    Instance {
        binary,
        path,
        port,
        child,
        lines: Some(BufReader::new(stdout).lines()),
        stderr,
    }
}

/// Waits for the "Dev server listening" line, then keeps draining stdout so the
/// function never writes into a full or closed pipe. False when the process ended or
/// stayed silent instead.
pub async fn wait_listening(instance: &mut Instance) -> bool {
    let expected = format!("Dev server listening: {}", instance.port);
    let mut lines = instance.lines.take().expect("stdout not yet drained");
    let found = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.trim() == expected {
                return true;
            }
        }
        false
    })
    .await;
    if found != Ok(true) {
        eprintln!(
            "{} never printed {expected:?}; stderr: {:#?}",
            instance.binary,
            instance.stderr.lock().expect("stderr lock")
        );
        return false;
    }
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    true
}
