//! Fault test (issue 8, item 4): many signed posts from concurrent clients to the local
//! server while its PostgreSQL is stopped and started again mid-run, then a check of the
//! promise a job tester relies on: a 200 means the row is committed, exactly once; any
//! other answer is a retryable 503 or a broken connection; and the service recovers by
//! itself. A script, not a CI test (it takes about half a minute); see `bench/fault.sh`.
//!
//! ```sh
//! cargo build --release --bin leaderboard --example fault
//! target/release/examples/fault [POSTS] [CLIENTS] [RESTARTS]     # 50000 64 2
//! ```
//!
//! Environment: `LEADERBOARD_BIN` (the server binary; default: `leaderboard` next to this
//! example's directory), `FAULT_DOWNTIME_MS` (how long the database stays down, 2000),
//! `FAULT_BACKOFF_MS` (a client's pause after a failed post, as a job tester would
//! wait before its next one, 100), `FAULT_TIMEOUT_S` (per request, 30),
//! `FAULT_FINAL_POSTS` (the recovery batch, 1000).
//!
//! Exit status: 0 every invariant held, 1 one was violated, 2 the test could not run.

mod common;

use common::{connect, free_port, start_postgres};
use leaderboard::auth;
use localpg::PgServer;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

const SECRET: &str = "fault-test-secret";
/// Payload `timestamp` of request 0; request `i` posts `TIMESTAMP_BASE + i`, which is how
/// its row is found again.
const TIMESTAMP_BASE: i64 = 1_800_000_000;
/// The only non-200 answer the contract allows for a database outage.
const RETRYABLE: u16 = 503;

/// What the run is asked to do (arguments and environment).
struct Settings {
    posts: u64,
    clients: u64,
    restarts: u64,
    downtime: Duration,
    backoff: Duration,
    timeout: Duration,
    final_posts: u64,
    server_bin: PathBuf,
}

/// What one request got.
#[derive(Clone, Debug, PartialEq)]
enum Outcome {
    /// 200 with body `ok`.
    Ok,
    /// Any other status (a 200 with another body counts as status 200 here).
    Status(u16),
    Timeout,
    Connect,
    /// The connection broke after the request was sent (reset, incomplete answer).
    Broken,
}

/// One finished request: its id and when it ended, seconds since the start of the run.
struct Record {
    id: u64,
    outcome: Outcome,
    end: f64,
}

/// One database outage as the controller caused it, in seconds since the start.
struct Restart {
    stop_at: f64,
    down_at: f64,
    up_at: f64,
    posts_done: u64,
}

/// Shared between the clients and the controller.
struct Progress {
    next: AtomicU64,
    done: AtomicU64,
    oks: AtomicU64,
    abort: AtomicBool,
}

/// How often each (status, error message) was answered, for the report; a body that is
/// not the contract's `{"error":"…"}` is kept as `NOT JSON: <body>`.
type Samples = Mutex<BTreeMap<(u16, String), u64>>;

fn main() {
    let settings = match settings() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("fault: {e}");
            std::process::exit(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("fault: tokio runtime: {e}");
            std::process::exit(2);
        }
    };
    let code = match runtime.block_on(run(&settings)) {
        Ok(true) => {
            println!("result: PASS");
            0
        }
        Ok(false) => {
            println!("result: FAIL");
            1
        }
        Err(e) => {
            eprintln!("fault: {e}");
            2
        }
    };
    // Dropping the runtime first lets the server child and PostgreSQL be stopped cleanly.
    drop(runtime);
    std::process::exit(code);
}

fn settings() -> Result<Settings, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() > 3 || args.iter().any(|a| a.starts_with('-')) {
        return Err("usage: fault [POSTS] [CLIENTS] [RESTARTS]".into());
    }
    let arg = |i: usize, default: u64| -> Result<u64, String> {
        match args.get(i) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| format!("not a number: {v:?}")),
        }
    };
    let env = |name: &str, default: u64| -> Result<u64, String> {
        match std::env::var(name) {
            Err(_) => Ok(default),
            Ok(v) => v
                .trim()
                .parse()
                .map_err(|_| format!("{name}={v:?} is not a number")),
        }
    };
    let server_bin = match std::env::var_os("LEADERBOARD_BIN") {
        Some(path) => PathBuf::from(path),
        // target/<profile>/examples/fault -> target/<profile>/leaderboard
        None => std::env::current_exe()
            .map_err(|e| format!("locating this program: {e}"))?
            .parent()
            .and_then(|examples| examples.parent())
            .map(|profile| profile.join("leaderboard"))
            .ok_or("cannot find the leaderboard binary: set LEADERBOARD_BIN")?,
    };
    let settings = Settings {
        posts: arg(0, 50_000)?,
        clients: arg(1, 64)?.max(1),
        restarts: arg(2, 2)?,
        downtime: Duration::from_millis(env("FAULT_DOWNTIME_MS", 2000)?),
        backoff: Duration::from_millis(env("FAULT_BACKOFF_MS", 100)?),
        timeout: Duration::from_secs(env("FAULT_TIMEOUT_S", 30)?.max(1)),
        final_posts: env("FAULT_FINAL_POSTS", 1000)?,
        server_bin,
    };
    if !settings.server_bin.exists() {
        return Err(format!(
            "{} does not exist: cargo build --release --bin leaderboard",
            settings.server_bin.display()
        ));
    }
    Ok(settings)
}

/// The whole test; `Ok(false)` when an invariant was violated, `Err` when it could not run.
async fn run(s: &Settings) -> Result<bool, String> {
    println!(
        "fault test: {} posts, {} clients, {} database restarts (down {:.1} s each), \
         pause {} ms after a failed post, timeout {} s per request",
        s.posts,
        s.clients,
        s.restarts,
        s.downtime.as_secs_f64(),
        s.backoff.as_millis(),
        s.timeout.as_secs()
    );
    let (pg, db_url) = start_postgres(|_| {}).await?;
    let pg = Arc::new(Mutex::new(pg));

    let work = std::env::temp_dir().join(format!("leaderboard-fault-{}", std::process::id()));
    std::fs::create_dir_all(&work).map_err(|e| format!("creating {}: {e}", work.display()))?;
    let log_path = work.join("server.log");
    let port = free_port()?;
    let mut server = spawn_server(s, &db_url, port, &log_path)?;
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .timeout(s.timeout)
        .pool_max_idle_per_host(s.clients as usize)
        .build()
        .map_err(|e| format!("HTTP client: {e}"))?;
    let outcome = async {
        wait_healthy(&http, &base, &mut server).await?;
        let regions = transcoding_regions(&http, &base).await?;
        println!(
            "server: {} on port {port} (pid {}), database {}",
            s.server_bin.display(),
            server.id().unwrap_or(0),
            db_url
        );
        test(
            s,
            &http,
            &base,
            &regions,
            &pg,
            &db_url,
            &mut server,
            &log_path,
        )
        .await
    }
    .await;

    let _ = server.start_kill();
    let _ = server.wait().await;
    if matches!(outcome, Ok(true)) {
        let _ = std::fs::remove_dir_all(&work);
    } else {
        eprintln!("fault: server log kept in {}", log_path.display());
    }
    // Stops PostgreSQL and removes its data.
    if let Ok(pg) = Arc::try_unwrap(pg) {
        let pg = pg.into_inner().unwrap_or_else(|e| e.into_inner());
        let _ = tokio::task::spawn_blocking(move || drop(pg)).await;
    }
    outcome
}

/// The main run, the checks against the table, and the recovery checks.
#[allow(clippy::too_many_arguments)]
async fn test(
    s: &Settings,
    http: &reqwest::Client,
    base: &str,
    regions: &[String],
    pg: &Arc<Mutex<PgServer>>,
    db_url: &str,
    server: &mut Child,
    log_path: &std::path::Path,
) -> Result<bool, String> {
    let mut ok = true;
    let samples: Arc<Samples> = Arc::default();

    // Main run: clients and, beside them, the controller restarting the database.
    let progress = Arc::new(Progress {
        next: AtomicU64::new(0),
        done: AtomicU64::new(0),
        oks: AtomicU64::new(0),
        abort: AtomicBool::new(false),
    });
    let t0 = Instant::now();
    let controller = tokio::spawn(controller(
        Arc::clone(pg),
        Arc::clone(&progress),
        s.posts,
        s.restarts,
        s.downtime,
        t0,
    ));
    let records = post_all(s, http, base, regions, 0, s.posts, &progress, &samples, t0).await?;
    let duration = t0.elapsed().as_secs_f64();
    progress.abort.store(true, Ordering::SeqCst);
    let restarts = controller.await.map_err(|e| e.to_string())??;

    // Restarts, with how quickly 200s came back after each.
    for (i, r) in restarts.iter().enumerate() {
        let first_ok = records
            .iter()
            .filter(|x| x.outcome == Outcome::Ok && x.end > r.up_at)
            .map(|x| x.end)
            .fold(f64::INFINITY, f64::min);
        let failed = records
            .iter()
            .filter(|x| x.outcome != Outcome::Ok && x.end >= r.stop_at && x.end <= first_ok)
            .count();
        println!(
            "restart {}: at {:.2} s after {} posts: stopping {:.2} s + down {:.2} s + starting {:.2} s \
             = database away {:.2} s; first 200 again {} after it was back; {} failed posts meanwhile",
            i + 1,
            r.stop_at,
            r.posts_done,
            r.down_at - r.stop_at,
            s.downtime.as_secs_f64(),
            r.up_at - r.down_at - s.downtime.as_secs_f64(),
            r.up_at - r.stop_at,
            if first_ok.is_finite() {
                format!("{:.2} s", first_ok - r.up_at)
            } else {
                "never".to_string()
            },
            failed
        );
    }
    if (restarts.len() as u64) < s.restarts {
        println!(
            "VIOLATION: only {} of {} restarts happened before the run ended",
            restarts.len(),
            s.restarts
        );
        ok = false;
    }

    // Answers.
    let mut oks = 0u64;
    let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
    let (mut timeouts, mut connects, mut broken) = (0u64, 0u64, 0u64);
    for r in &records {
        match r.outcome {
            Outcome::Ok => oks += 1,
            Outcome::Status(code) => *statuses.entry(code).or_default() += 1,
            Outcome::Timeout => timeouts += 1,
            Outcome::Connect => connects += 1,
            Outcome::Broken => broken += 1,
        }
    }
    let server_errors: u64 = statuses.range(500..600).map(|(_, n)| n).sum();
    let other_statuses: u64 = statuses
        .iter()
        .filter(|(c, _)| !(500..600).contains(*c))
        .map(|(_, n)| n)
        .sum();
    println!(
        "run: {duration:.1} s, {:.0} posts/s",
        records.len() as f64 / duration
    );
    println!("  total                       {:>7}", records.len());
    println!("  200 ok                      {oks:>7}");
    println!(
        "  5xx                         {server_errors:>7}  ({})",
        by_status(statuses.range(500..600))
    );
    println!(
        "  other status                {other_statuses:>7}  ({})",
        by_status(statuses.iter().filter(|(c, _)| !(500..600).contains(*c)))
    );
    println!(
        "  connection errors           {:>7}  (timeout {timeouts}, connect {connects}, broken {broken})",
        timeouts + connects + broken
    );
    let mut not_json = 0;
    for ((code, message), n) in lock(&samples).iter() {
        println!("    {code} {n:>7}  {message}");
        if message.starts_with("NOT JSON") {
            not_json += n;
        }
    }
    if not_json > 0 {
        println!("VIOLATION: {not_json} error answers without a JSON error body");
        ok = false;
    }
    let bad_statuses: u64 = statuses
        .iter()
        .filter(|(c, _)| **c != RETRYABLE)
        .map(|(_, n)| n)
        .sum();
    if bad_statuses > 0 {
        println!("VIOLATION: {bad_statuses} answers other than 200 or {RETRYABLE}");
        ok = false;
    }
    if timeouts > 0 {
        // Allowed (a connection error), but a 30 s stall is worth a look.
        println!(
            "note: {timeouts} posts timed out after {} s",
            s.timeout.as_secs()
        );
    }

    // The table: every 200 exactly once.
    let counts = row_counts(db_url).await?;
    let rows: u64 = counts.values().sum();
    let unknown: u64 = counts
        .iter()
        .filter(|(id, _)| **id < 0 || **id as u64 >= s.posts)
        .map(|(_, n)| n)
        .sum();
    let (mut once, mut missing, mut duplicated, mut committed_anyway, mut any_duplicated) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    for r in &records {
        let n = counts.get(&(r.id as i64)).copied().unwrap_or(0);
        if n > 1 {
            any_duplicated += 1;
        }
        match (r.outcome == Outcome::Ok, n) {
            (true, 1) => once += 1,
            (true, 0) => missing += 1,
            (true, _) => duplicated += 1,
            (false, 0) => {}
            (false, _) => committed_anyway += 1,
        }
    }
    println!("rows in events                {rows:>7}  (rows of no request of the run: {unknown})");
    println!("  200s found exactly once     {once:>7}");
    println!("  200s missing                {missing:>7}");
    println!("  200s duplicated             {duplicated:>7}");
    println!("  non-200 committed anyway    {committed_anyway:>7}  (allowed: the answer was lost, not the row)");
    println!("  requests stored twice+      {any_duplicated:>7}");
    if missing > 0 || duplicated > 0 || any_duplicated > 0 || unknown > 0 || once != oks {
        println!("VIOLATION: the table does not hold every 200 exactly once");
        ok = false;
    }

    // Recovery: the same server process, no restart, answers normally.
    ok &= recovery(s, http, base, regions, db_url, server, &samples).await?;

    // The server log: never a panic.
    let log = std::fs::read_to_string(log_path).unwrap_or_default();
    let panics = log.matches("panicked").count();
    let errors = log.lines().filter(|l| l.contains("ERROR")).count();
    let warnings = log.lines().filter(|l| l.contains("WARN")).count();
    println!("server log: {panics} panics, {errors} ERROR lines, {warnings} WARN lines");
    for line in log
        .lines()
        .filter(|l| l.contains("ERROR") || l.contains("panicked"))
        .take(5)
    {
        println!("  {line}");
    }
    if panics > 0 || errors > 0 {
        println!("VIOLATION: the server logged errors or panicked");
        ok = false;
    }
    Ok(ok)
}

/// After the run: a batch of posts that must all be 200 and stored, then the read routes.
async fn recovery(
    s: &Settings,
    http: &reqwest::Client,
    base: &str,
    regions: &[String],
    db_url: &str,
    server: &mut Child,
    samples: &Arc<Samples>,
) -> Result<bool, String> {
    let mut ok = true;
    let progress = Progress {
        next: AtomicU64::new(s.posts),
        done: AtomicU64::new(0),
        oks: AtomicU64::new(0),
        abort: AtomicBool::new(false),
    };
    let end = s.posts + s.final_posts;
    let records = post_all(
        s,
        http,
        base,
        regions,
        s.posts,
        end,
        &Arc::new(progress),
        samples,
        Instant::now(),
    )
    .await?;
    let final_oks = records.iter().filter(|r| r.outcome == Outcome::Ok).count() as u64;
    let counts = row_counts(db_url).await?;
    let stored = (s.posts..end)
        .filter(|id| counts.get(&(*id as i64)) == Some(&1))
        .count() as u64;

    let health = get(http, &format!("{base}/api/health")).await;
    let orchestrator = orchestrator_of(0);
    let expected: u64 = orchestrator_rows(db_url, &orchestrator).await?;
    let raw = get(
        http,
        &format!("{base}/api/raw_stats?orchestrator={orchestrator}"),
    )
    .await;
    let raw_stats = raw.as_ref().ok().and_then(|(status, body)| {
        let value: serde_json::Value = serde_json::from_str(body).ok()?;
        let n: usize = value
            .as_object()?
            .values()
            .filter_map(|v| v.as_array())
            .map(Vec::len)
            .sum();
        (*status == 200).then_some(n as u64)
    });
    let aggregated = get(http, &format!("{base}/api/aggregated_stats")).await;
    let orchestrators = aggregated.as_ref().ok().and_then(|(status, body)| {
        let value: serde_json::Value = serde_json::from_str(body).ok()?;
        (*status == 200 && value.get(&orchestrator).is_some())
            .then(|| value.as_object().map_or(0, |o| o.len()))
    });
    let alive = matches!(server.try_wait(), Ok(None));
    println!(
        "recovery (same server process, never restarted: {}): final {} posts: {final_oks} × 200, {stored} stored once; \
         health {}; raw_stats {}; aggregated_stats {}",
        if alive { "yes" } else { "NO, it exited" },
        s.final_posts,
        status_of(&health),
        match raw_stats {
            Some(n) => format!("200 with {n} stats of {orchestrator} ({expected} rows in the table)"),
            None => format!("FAILED ({})", status_of(&raw)),
        },
        match orchestrators {
            Some(n) => format!("200 with {n} orchestrators"),
            None => format!("FAILED ({})", status_of(&aggregated)),
        },
    );
    let health_ok = matches!(&health, Ok((200, _)));
    if !alive
        || final_oks != s.final_posts
        || stored != s.final_posts
        || !health_ok
        || raw_stats != Some(expected)
        || orchestrators.is_none()
    {
        println!("VIOLATION: the service did not recover by itself");
        ok = false;
    }
    Ok(ok)
}

/// Posts ids `from..to` over `s.clients` concurrent clients; returns every request's record.
#[allow(clippy::too_many_arguments)]
async fn post_all(
    s: &Settings,
    http: &reqwest::Client,
    base: &str,
    regions: &[String],
    from: u64,
    to: u64,
    progress: &Arc<Progress>,
    samples: &Arc<Samples>,
    t0: Instant,
) -> Result<Vec<Record>, String> {
    progress.next.store(from, Ordering::SeqCst);
    let url = format!("{base}/api/post_stats");
    let regions: Arc<[String]> = regions.into();
    let mut clients = Vec::new();
    for client in 0..s.clients {
        let (http, url, regions) = (http.clone(), url.clone(), Arc::clone(&regions));
        let (progress, samples, backoff) = (Arc::clone(progress), Arc::clone(samples), s.backoff);
        clients.push(tokio::spawn(async move {
            let mut records = Vec::new();
            loop {
                let id = progress.next.fetch_add(1, Ordering::SeqCst);
                if id >= to {
                    break;
                }
                let region = &regions[(id % regions.len() as u64) as usize];
                let outcome = post(&http, &url, &body(id, client, region), &samples).await;
                let end = t0.elapsed().as_secs_f64();
                progress.done.fetch_add(1, Ordering::SeqCst);
                let failed = outcome != Outcome::Ok;
                if !failed {
                    progress.oks.fetch_add(1, Ordering::SeqCst);
                }
                records.push(Record { id, outcome, end });
                if failed && !backoff.is_zero() {
                    tokio::time::sleep(backoff).await;
                }
            }
            records
        }));
    }
    let mut all = Vec::new();
    for client in clients {
        all.extend(client.await.map_err(|e| format!("client task: {e}"))?);
    }
    Ok(all)
}

/// One signed post and what came of it.
async fn post(http: &reqwest::Client, url: &str, body: &str, samples: &Samples) -> Outcome {
    let sent = http
        .post(url)
        .header("Content-Type", "application/json")
        .header("Authorization", auth::sign(SECRET, body.as_bytes()))
        .body(body.to_string())
        .send()
        .await;
    let response = match sent {
        Ok(r) => r,
        Err(e) => return failure_kind(&e),
    };
    let status = response.status().as_u16();
    let text = match response.text().await {
        Ok(t) => t,
        Err(e) => return failure_kind(&e),
    };
    if status == 200 && text == "ok" {
        return Outcome::Ok;
    }
    let message = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v.get("error")?.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("NOT JSON: {text}"));
    // Digits blurred so that messages differing only by an errno or a port count once.
    let shape: String = message
        .chars()
        .map(|c| if c.is_ascii_digit() { '#' } else { c })
        .take(200)
        .collect();
    *lock(samples).entry((status, shape)).or_default() += 1;
    Outcome::Status(status)
}

fn failure_kind(e: &reqwest::Error) -> Outcome {
    if e.is_timeout() {
        Outcome::Timeout
    } else if e.is_connect() {
        Outcome::Connect
    } else {
        Outcome::Broken
    }
}

/// A stream-tester body (tests/fixtures/stream-tester.json) made unique by its timestamp;
/// one orchestrator per client, regions in turn.
fn body(id: u64, client: u64, region: &str) -> String {
    serde_json::json!({
        "errors": [],
        "region": region,
        "timestamp": TIMESTAMP_BASE + id as i64,
        "upload_time": 0.7765968238571429,
        "orchestrator": orchestrator_of(client),
        "seg_duration": 2.0088571428571425,
        "success_rate": if id.is_multiple_of(10) { 0.5 } else { 1.0 },
        "download_time": 0.9568952794285714,
        "segments_sent": 15,
        "transcode_time": 0.21355154864285741,
        "round_trip_time": 1.0 + (id % 100) as f64 / 100.0,
        "segments_received": 30
    })
    .to_string()
}

fn orchestrator_of(client: u64) -> String {
    format!("0x{:040x}", 0xfa_0170_0000u64 + client)
}

/// Restarts the database whenever the run passes the next 1/(RESTARTS+1) of the posts,
/// but only once the service has answered a 200 since the previous restart, so that each
/// outage starts from a recovered service.
async fn controller(
    pg: Arc<Mutex<PgServer>>,
    progress: Arc<Progress>,
    posts: u64,
    restarts: u64,
    downtime: Duration,
    t0: Instant,
) -> Result<Vec<Restart>, String> {
    let mut done = Vec::new();
    let mut oks_at_last_up = 0;
    for k in 1..=restarts {
        let due = posts * k / (restarts + 1);
        loop {
            if progress.abort.load(Ordering::SeqCst) {
                return Ok(done);
            }
            let recovered = progress.oks.load(Ordering::SeqCst) > oks_at_last_up;
            if progress.done.load(Ordering::SeqCst) >= due && recovered {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let stop_at = t0.elapsed().as_secs_f64();
        let posts_done = progress.done.load(Ordering::SeqCst);
        let stopper = Arc::clone(&pg);
        tokio::task::spawn_blocking(move || lock(&stopper).stop_keep_data())
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("stopping PostgreSQL: {e}"))?;
        let down_at = t0.elapsed().as_secs_f64();
        tokio::time::sleep(downtime).await;
        let starter = Arc::clone(&pg);
        // Same port, same data directory.
        tokio::task::spawn_blocking(move || lock(&starter).restart())
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("starting PostgreSQL again: {e}"))?;
        let up_at = t0.elapsed().as_secs_f64();
        oks_at_last_up = progress.oks.load(Ordering::SeqCst);
        done.push(Restart {
            stop_at,
            down_at,
            up_at,
            posts_done,
        });
    }
    Ok(done)
}

/// Rows per request id (payload timestamp minus the base), straight from the table.
async fn row_counts(db_url: &str) -> Result<HashMap<i64, u64>, String> {
    let client = connect(db_url).await?;
    let rows = client
        .query(
            "SELECT (payload->>'timestamp')::bigint - $1, count(*) FROM events GROUP BY 1",
            &[&TIMESTAMP_BASE],
        )
        .await
        .map_err(|e| format!("counting rows: {e}"))?;
    Ok(rows
        .iter()
        .map(|row| (row.get::<_, i64>(0), row.get::<_, i64>(1) as u64))
        .collect())
}

async fn orchestrator_rows(db_url: &str, orchestrator: &str) -> Result<u64, String> {
    let client = connect(db_url).await?;
    let row = client
        .query_one(
            "SELECT count(*) FROM events WHERE orchestrator = $1",
            &[&orchestrator],
        )
        .await
        .map_err(|e| format!("counting rows: {e}"))?;
    Ok(row.get::<_, i64>(0) as u64)
}

fn spawn_server(
    s: &Settings,
    db_url: &str,
    port: u16,
    log: &std::path::Path,
) -> Result<Child, String> {
    let log = std::fs::File::create(log).map_err(|e| format!("creating {}: {e}", log.display()))?;
    let stdout = log.try_clone().map_err(|e| e.to_string())?;
    Command::new(&s.server_bin)
        .env("POSTGRES", db_url)
        .env("SECRET", SECRET)
        .env("PORT", port.to_string())
        .env("LOG_LEVEL", "warn")
        .env_remove("CATALYST_REGION_URL")
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("starting {}: {e}", s.server_bin.display()))
}

/// Waits (up to 60 s) for /api/health to answer 200; fails at once if the server exits.
async fn wait_healthy(
    http: &reqwest::Client,
    base: &str,
    server: &mut Child,
) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(Some(status)) = server.try_wait() {
            return Err(format!("the server exited at start: {status}"));
        }
        if let Ok((200, _)) = get(http, &format!("{base}/api/health")).await {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err("the server did not become healthy within 60 s".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The registered transcoding regions, to spread the posts over.
async fn transcoding_regions(http: &reqwest::Client, base: &str) -> Result<Vec<String>, String> {
    let (status, body) = get(http, &format!("{base}/api/regions")).await?;
    let value: serde_json::Value =
        serde_json::from_str(&body).map_err(|e| format!("/api/regions ({status}): {e}"))?;
    let regions: Vec<String> = value["regions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["type"] == "transcoding")
        .filter_map(|r| r["id"].as_str().map(str::to_string))
        .collect();
    if regions.is_empty() {
        return Err(format!("/api/regions lists no transcoding region: {body}"));
    }
    Ok(regions)
}

async fn get(http: &reqwest::Client, url: &str) -> Result<(u16, String), String> {
    let response = http.get(url).send().await.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response.text().await.map_err(|e| e.to_string())?;
    Ok((status, body))
}

fn status_of(answer: &Result<(u16, String), String>) -> String {
    match answer {
        Ok((status, _)) => status.to_string(),
        Err(e) => e.clone(),
    }
}

fn by_status<'a>(counts: impl Iterator<Item = (&'a u16, &'a u64)>) -> String {
    let parts: Vec<String> = counts.map(|(c, n)| format!("{c}: {n}")).collect();
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}

/// A poisoned lock only means another task panicked; the data is still usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
