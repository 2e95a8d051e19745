//! Log hygiene: at every `LOG_LEVEL`, the function binaries never write the `SECRET`, the
//! keys of `EXTRA_SECRETS`, the database password or the full `POSTGRES` URL, whatever the requests do (successes,
//! refusals, oversized and malformed bodies, an unreachable database).

mod common;

use common::openapi::SendChecked;
use common::{fixture, TestDb};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The HMAC key the functions run with here; must never be logged.
const SECRET: &str = "s3cr3t-value-XYZ";
/// The further keys the functions run with (`EXTRA_SECRETS`, with empty entries and
/// spaces around them); none may be logged.
const EXTRA_KEYS: [&str; 2] = ["x-key-ONE-8811", "x-key-TWO-9922"];
const EXTRA_SECRETS: &str = ", x-key-ONE-8811,,x-key-TWO-9922 ,";
/// The database password in every `POSTGRES` here; must never be logged.
const PASSWORD: &str = "pw-SECRET-4711";

fn free_port() -> u16 {
    common::free_ports(1)[0]
}

/// A running function binary whose stdout and stderr are collected line by line.
struct Function {
    name: &'static str,
    port: u16,
    child: Child,
    output: Arc<Mutex<Vec<String>>>,
    readers: Vec<JoinHandle<()>>,
}

/// Reads `stream` to its end into `output`; tells `listening` once `expected` is seen.
fn collect(
    stream: impl AsyncRead + Unpin + Send + 'static,
    output: Arc<Mutex<Vec<String>>>,
    mut listening: Option<(String, oneshot::Sender<()>)>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if listening
                .as_ref()
                .is_some_and(|(expected, _)| line.trim() == expected)
            {
                if let Some((_, tell)) = listening.take() {
                    let _ = tell.send(());
                }
            }
            output.lock().expect("output lock").push(line);
        }
    })
}

impl Function {
    /// Starts `binary` as Vercel would and waits until it listens. A port chosen here may
    /// be taken by someone else before the function binds it; then it is started again on
    /// another port (the output of every attempt is kept and checked).
    async fn start(binary: &'static str, postgres: &str, level: &str) -> Function {
        let name = binary.rsplit('/').next().unwrap_or(binary);
        let output = Arc::new(Mutex::new(Vec::new()));
        let mut readers = Vec::new();
        for attempt in 1..=3 {
            let port = free_port();
            let mut child = Command::new(binary)
                .env("VERCEL_DEV_PORT", port.to_string())
                .env("POSTGRES", postgres)
                .env("SECRET", SECRET)
                .env("EXTRA_SECRETS", EXTRA_SECRETS)
                .env("LOG_LEVEL", level)
                .env("DB_TIMEOUT", "5")
                .env_remove("VERCEL_IPC_PATH")
                .env_remove("RUST_LOG")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .unwrap_or_else(|e| panic!("starting {binary}: {e}"));
            let (tell, listening) = oneshot::channel();
            let expected = format!("Dev server listening: {port}");
            readers.push(collect(
                child.stdout.take().expect("stdout"),
                output.clone(),
                Some((expected.clone(), tell)),
            ));
            readers.push(collect(
                child.stderr.take().expect("stderr"),
                output.clone(),
                None,
            ));
            let started = tokio::time::timeout(Duration::from_secs(60), listening).await;
            if matches!(started, Ok(Ok(()))) {
                return Function {
                    name,
                    port,
                    child,
                    output,
                    readers,
                };
            }
            let _ = child.kill().await;
            eprintln!("{name} never printed {expected:?} (attempt {attempt})");
        }
        panic!("{name} did not start");
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Stops the process and returns everything it wrote, stdout and stderr.
    async fn stop(mut self) -> Vec<String> {
        let _ = self.child.kill().await;
        for reader in self.readers.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(10), reader).await;
        }
        let lines = self.output.lock().expect("output lock").clone();
        lines
    }
}

/// Sends `request`, asserting the status.
async fn expect(status: u16, what: &str, request: reqwest::RequestBuilder) {
    let response = request
        .send_checked()
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let got = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    assert_eq!(got, status, "{what}: {body}");
}

fn signed(
    client: &reqwest::Client,
    url: String,
    body: impl Into<Vec<u8>>,
) -> reqwest::RequestBuilder {
    signed_with(SECRET, client, url, body)
}

fn signed_with(
    key: &str,
    client: &reqwest::Client,
    url: String,
    body: impl Into<Vec<u8>>,
) -> reqwest::RequestBuilder {
    let body = body.into();
    client
        .post(url)
        .header("content-type", "application/json")
        .header("authorization", leaderboard::auth::sign(key, &body))
        .body(body)
}

/// A role of its own with `PASSWORD` owning `db`, and the URL that logs in as it.
async fn password_url(db: &TestDb) -> (String, String) {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let role = format!(
        "lbuser_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let mut url = reqwest::Url::parse(&db.url).expect("test database URL");
    let name = url.path().trim_start_matches('/').to_string();
    db.client()
        .await
        .batch_execute(&format!(
            "DROP ROLE IF EXISTS {role}; \
             CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}'; \
             GRANT ALL ON DATABASE {name} TO {role}; \
             ALTER DATABASE {name} OWNER TO {role}; \
             ALTER SCHEMA public OWNER TO {role};"
        ))
        .await
        .unwrap_or_else(|e| panic!("creating role {role}: {e}"));
    url.set_username(&role).expect("username");
    url.set_password(Some(PASSWORD)).expect("password");
    (role, url.to_string())
}

async fn drop_role(db: TestDb, role: &str) {
    let admin_url = common::with_database(&db.url, "postgres");
    drop(db);
    let _ = common::connect(&admin_url)
        .await
        .batch_execute(&format!("DROP ROLE IF EXISTS {role}"))
        .await;
}

async fn no_secrets_logged_at(level: &str) {
    let db = TestDb::new().await;
    let (role, postgres) = password_url(&db).await;
    // A database that is not there, with the same password in its URL.
    let closed = {
        let mut url = reqwest::Url::parse(&postgres).expect("URL");
        url.set_port(Some(free_port())).expect("port");
        url.to_string()
    };
    // Hostile configuration: an sslmode nobody knows, and an option that is dropped.
    let invalid = format!("{postgres}?sslmode=bogus&application_name={PASSWORD}");
    // A key=value connection string to the closed port, and a URL that does not parse.
    let keyword = {
        let url = reqwest::Url::parse(&closed).expect("URL");
        format!(
            "host=127.0.0.1 port={} user={role} password={PASSWORD} dbname=x",
            url.port().unwrap_or_default()
        )
    };
    let unparsable = format!("postgres://{role}:{PASSWORD}@127.0.0.1:99999/x");
    assert!(postgres.contains(PASSWORD) && closed.contains(PASSWORD));

    let bin = |name: &str| -> &'static str {
        match name {
            "health" => env!("CARGO_BIN_EXE_health"),
            "regions" => env!("CARGO_BIN_EXE_regions"),
            "raw_stats" => env!("CARGO_BIN_EXE_raw_stats"),
            "aggregated_stats" => env!("CARGO_BIN_EXE_aggregated_stats"),
            "pipelines" => env!("CARGO_BIN_EXE_pipelines"),
            "top_ai_score" => env!("CARGO_BIN_EXE_top_ai_score"),
            "post_stats" => env!("CARGO_BIN_EXE_post_stats"),
            other => panic!("no function {other}"),
        }
    };
    let health = Function::start(bin("health"), &postgres, level).await;
    let regions = Function::start(bin("regions"), &postgres, level).await;
    let raw = Function::start(bin("raw_stats"), &postgres, level).await;
    let aggregated = Function::start(bin("aggregated_stats"), &postgres, level).await;
    let pipelines = Function::start(bin("pipelines"), &postgres, level).await;
    let top = Function::start(bin("top_ai_score"), &postgres, level).await;
    let post = Function::start(bin("post_stats"), &postgres, level).await;
    let away_health = Function::start(bin("health"), &closed, level).await;
    let away_post = Function::start(bin("post_stats"), &closed, level).await;
    let away_regions = Function::start(bin("regions"), &closed, level).await;
    let bad_url = Function::start(bin("raw_stats"), &invalid, level).await;
    let away_keyword = Function::start(bin("health"), &keyword, level).await;
    let bad_port = Function::start(bin("regions"), &unparsable, level).await;

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("HTTP client");
    let stat = fixture("stream-tester.json").to_string();
    let orchestrator = fixture("stream-tester.json")["orchestrator"]
        .as_str()
        .expect("orchestrator")
        .to_string();

    // Successes (the first one migrates, as that role).
    expect(200, "health", client.get(health.url("/api/health"))).await;
    expect(
        200,
        "post",
        signed(&client, post.url("/api/post_stats"), stat.clone()),
    )
    .await;
    for key in EXTRA_KEYS {
        expect(
            200,
            "post signed with an extra key",
            signed_with(key, &client, post.url("/api/post_stats"), stat.clone()),
        )
        .await;
    }
    expect(200, "regions", client.get(regions.url("/api/regions"))).await;
    expect(
        200,
        "raw_stats",
        client.get(raw.url(&format!("/api/raw_stats?orchestrator={orchestrator}"))),
    )
    .await;
    expect(
        200,
        "aggregated_stats",
        client.get(aggregated.url("/api/aggregated_stats")),
    )
    .await;
    expect(
        200,
        "pipelines",
        client.get(pipelines.url("/api/pipelines")),
    )
    .await;
    expect(
        200,
        "top_ai_score",
        client.get(top.url("/api/top_ai_score?orchestrator=0xabc")),
    )
    .await;
    expect(
        200,
        "HEAD regions",
        client.head(regions.url("/api/regions")),
    )
    .await;
    expect(
        204,
        "OPTIONS",
        client.request(reqwest::Method::OPTIONS, regions.url("/api/regions")),
    )
    .await;

    // 400s.
    expect(
        400,
        "raw_stats without orchestrator",
        client.get(raw.url("/api/raw_stats")),
    )
    .await;
    expect(
        400,
        "raw_stats bad since",
        client.get(raw.url("/api/raw_stats?orchestrator=0xabc&since=yesterday")),
    )
    .await;
    expect(
        400,
        "aggregated_stats bad since",
        client.get(aggregated.url("/api/aggregated_stats?since=1e400")),
    )
    .await;
    // top_ai_score is lenient by contract: a bad parameter is ignored, not refused.
    expect(
        200,
        "top_ai_score bad since",
        client.get(top.url("/api/top_ai_score?orchestrator=0xabc&since=NaN")),
    )
    .await;
    expect(
        400,
        "pipelines bad until",
        client.get(pipelines.url("/api/pipelines?until=-x")),
    )
    .await;
    for (what, body) in [
        ("post not JSON", b"{not json".to_vec()),
        ("post empty", Vec::new()),
        ("post array", b"[1,2,3]".to_vec()),
        (
            "post without region",
            br#"{"orchestrator":"0xabc","success_rate":1}"#.to_vec(),
        ),
        (
            "post unknown region",
            stat.replace("\"MDW\"", "\"NOWHERE\"").into_bytes(),
        ),
    ] {
        expect(
            400,
            what,
            signed(&client, post.url("/api/post_stats"), body),
        )
        .await;
    }

    // 403s: bad, missing and secret-as-signature.
    for (what, authorization) in [
        ("bad signature", Some("00".repeat(32))),
        ("secret as signature", Some(SECRET.to_string())),
        ("extra key as signature", Some(EXTRA_KEYS[0].to_string())),
        ("extra list as signature", Some(EXTRA_SECRETS.to_string())),
        ("no signature", None),
    ] {
        let mut request = client.post(post.url("/api/post_stats")).body(stat.clone());
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        expect(403, what, request).await;
    }

    // 405 and 413.
    expect(405, "DELETE", client.delete(regions.url("/api/regions"))).await;
    expect(
        405,
        "GET post_stats",
        client.get(post.url("/api/post_stats")),
    )
    .await;
    expect(
        413,
        "2 MiB body",
        client
            .post(post.url("/api/post_stats"))
            .body(vec![b'{'; 2 * 1024 * 1024]),
    )
    .await;

    // 503s: the database is away or its URL unusable.
    expect(
        503,
        "health away",
        client.get(away_health.url("/api/health")),
    )
    .await;
    expect(
        503,
        "regions away",
        client.get(away_regions.url("/api/regions")),
    )
    .await;
    expect(
        503,
        "post away",
        signed(&client, away_post.url("/api/post_stats"), stat.clone()),
    )
    .await;
    expect(
        503,
        "invalid POSTGRES",
        client.get(bad_url.url("/api/raw_stats?orchestrator=0xabc")),
    )
    .await;

    expect(
        503,
        "key=value POSTGRES away",
        client.get(away_keyword.url("/api/health")),
    )
    .await;
    expect(
        503,
        "unparsable POSTGRES",
        client.get(bad_port.url("/api/regions")),
    )
    .await;

    let mut lines = Vec::new();
    for function in [
        health,
        regions,
        raw,
        aggregated,
        pipelines,
        top,
        post,
        away_health,
        away_post,
        away_regions,
        bad_url,
        away_keyword,
        bad_port,
    ] {
        let name = function.name;
        lines.extend(
            function
                .stop()
                .await
                .into_iter()
                .map(|line| format!("{name}: {line}")),
        );
    }
    drop_role(db, &role).await;

    let leaks: Vec<&String> = lines
        .iter()
        .filter(|line| {
            [
                SECRET,
                EXTRA_KEYS[0],
                EXTRA_KEYS[1],
                EXTRA_SECRETS.trim(),
                PASSWORD,
                &postgres,
                &closed,
                &invalid,
                &keyword,
                &unparsable,
            ]
            .iter()
            .any(|secret| line.contains(secret))
        })
        .collect();
    assert!(
        leaks.is_empty(),
        "LOG_LEVEL={level}: secrets in the output: {leaks:#?}"
    );
    let logged = lines
        .iter()
        .filter(|line| !line.contains("Dev server listening"))
        .count();
    if level == "trace" || level == "debug" {
        assert!(logged > 0, "LOG_LEVEL={level}: nothing was logged");
        // Which key verified each post, by position only.
        for key in ["key=0", "key=1", "key=2"] {
            assert!(
                lines
                    .iter()
                    .any(|l| l.contains("signature verified") && l.contains(key)),
                "LOG_LEVEL={level}: no {key:?} logged"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_secret_is_logged_at_trace() {
    no_secrets_logged_at("trace").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_secret_is_logged_at_debug() {
    no_secrets_logged_at("debug").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_secret_is_logged_at_info() {
    no_secrets_logged_at("info").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_secret_is_logged_at_warn() {
    no_secrets_logged_at("warn").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_secret_is_logged_at_error() {
    no_secrets_logged_at("error").await;
}
