//! Cut-over benchmark (issues 13 and 21): a database as the Go service leaves it, with N
//! events, the Go service's inserts and reads going on at a steady rate, then `leaderboard
//! migrate up` — the moment an operator adopts this service — with this service already
//! deployed (a local server with the default background backfill, started a second later,
//! so both race to count and finish). Prints `migrate up`'s exit status, what the writers
//! and readers saw meanwhile and how fast the leaderboard is right after, and exits 1 if
//! `migrate up` failed, a post failed or was lost or a row is not counted exactly once.
//! See `bench/cutover.sh`.
//!
//! ```sh
//! cargo build --release --bin leaderboard --example cutover
//! target/release/examples/cutover [EVENTS] [CLIENTS] [POSTS_PER_S]     # 1000000 4 20
//! ```
//!
//! Environment: `LEADERBOARD_BIN` (default: `leaderboard` next to this example's
//! directory), `CUTOVER_FSYNC` (`on` for a crash-safe PostgreSQL; default off).

mod common;

use common::{connect, free_port, start_postgres};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::process::Command;

/// The posters' orchestrator, so their rows are found again.
const MARKER: &str = "0xcutover";
/// The Go service's insert and a read it serves (raw_stats of one orchestrator, 24 h).
const GO_INSERT: &str = "INSERT INTO events(event_time, orchestrator, region_id, payload) \
     SELECT CURRENT_TIMESTAMP, $1, regions.id, $2 FROM job_types \
       JOIN regions ON regions.name = $3 AND regions.job_type_id = job_types.id \
      WHERE job_types.name = $4";
const GO_READ: &str = "SELECT region_name, payload FROM event_details \
     WHERE orchestrator = (SELECT orchestrator FROM events ORDER BY id LIMIT 1) \
       AND event_time >= now() - interval '24 hours' ORDER BY event_time DESC";

/// One timed operation: when it started (seconds since the run began), how long it took,
/// whether it succeeded.
#[derive(Clone, Copy)]
struct Sample {
    start: f64,
    seconds: f64,
    ok: bool,
}

#[tokio::main]
async fn main() {
    match run().await {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("cutover: {e}");
            std::process::exit(2);
        }
    }
}

fn arg(i: usize, default: u64) -> Result<u64, String> {
    std::env::args().nth(i).map_or(Ok(default), |a| {
        a.parse().map_err(|_| format!("bad argument {a:?}"))
    })
}

fn server_bin() -> PathBuf {
    std::env::var_os("LEADERBOARD_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let exe = std::env::current_exe().unwrap_or_default();
            exe.parent()
                .and_then(|examples| examples.parent())
                .map(|dir| dir.join("leaderboard"))
                .unwrap_or_default()
        })
}

/// `leaderboard ARGS` on the database, its output on failure.
async fn leaderboard(url: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(server_bin())
        .args(args)
        .env("POSTGRES", url)
        .env("LOG_LEVEL", "warn")
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| format!("running {}: {e}", server_bin().display()))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!(
            "leaderboard {args:?}: {}\n{text}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(text)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// p50 / p99 / max in ms of the successful samples started within `[from, to]`.
fn latencies(samples: &[Sample], from: f64, to: f64) -> String {
    let mut ms: Vec<f64> = samples
        .iter()
        .filter(|s| s.ok && s.start >= from && s.start <= to)
        .map(|s| s.seconds * 1000.0)
        .collect();
    ms.sort_by(f64::total_cmp);
    format!(
        "p50 {:.1} / p99 {:.1} / max {:.1} ms over {}",
        percentile(&ms, 50.0),
        percentile(&ms, 99.0),
        ms.last().copied().unwrap_or(f64::NAN),
        ms.len()
    )
}

async fn run() -> Result<bool, String> {
    let events = arg(1, 1_000_000)?;
    let clients = arg(2, 4)?;
    let rate = arg(3, 20)?.max(1);
    let fsync = std::env::var("CUTOVER_FSYNC").is_ok_and(|v| v == "on");
    let (_pg, url) = start_postgres(move |options| {
        options.fsync = fsync;
        options.settings.push(("max_wal_size".into(), "8GB".into()));
    })
    .await?;
    println!(
        "cut-over of {events} events, {clients} clients x {rate} posts/s plus reads, fsync {}",
        if fsync { "on" } else { "off" }
    );

    let started = Instant::now();
    leaderboard(
        &url,
        &["seed", "--original", "--events", &events.to_string()],
    )
    .await?;
    println!(
        "original schema seeded in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let clock = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let posts = Arc::new(Mutex::new(Vec::<Sample>::new()));
    let reads = Arc::new(Mutex::new(Vec::<Sample>::new()));
    let mut tasks = Vec::new();
    for client in 0..clients {
        let (stop, posts, url) = (stop.clone(), posts.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let db = connect(&url).await?;
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) {
                tick.tick().await;
                let payload = serde_json::json!({"region": "FRA", "orchestrator": MARKER,
                    "success_rate": 1, "round_trip_time": 1.5, "seg_duration": 2.0,
                    "timestamp": client * 1_000_000 + n, "errors": []});
                let start = clock.elapsed().as_secs_f64();
                let ok = matches!(
                    db.execute(GO_INSERT, &[&MARKER, &payload, &"FRA", &"transcoding"])
                        .await,
                    Ok(1)
                );
                let seconds = clock.elapsed().as_secs_f64() - start;
                posts
                    .lock()
                    .map_err(|e| e.to_string())?
                    .push(Sample { start, seconds, ok });
                n += 1;
            }
            Ok::<(), String>(())
        }));
    }
    {
        let (stop, reads, url) = (stop.clone(), reads.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let db = connect(&url).await?;
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            while !stop.load(Ordering::SeqCst) {
                tick.tick().await;
                let start = clock.elapsed().as_secs_f64();
                let ok = db.query(GO_READ, &[]).await.is_ok();
                let seconds = clock.elapsed().as_secs_f64() - start;
                reads
                    .lock()
                    .map_err(|e| e.to_string())?
                    .push(Sample { start, seconds, ok });
            }
            Ok::<(), String>(())
        }));
    }

    tokio::time::sleep(Duration::from_secs(3)).await;
    let migrate_from = clock.elapsed().as_secs_f64();
    let migrate = Command::new(server_bin())
        .args(["migrate", "up"])
        .env("POSTGRES", &url)
        .env("LOG_LEVEL", "warn")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    // A deployment of this service already running: it migrates on its cold start and
    // advances (and finishes) the backfill in the background, racing `migrate up`.
    let service = async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        Service::start(&url).await
    };
    let (migrate, service) = tokio::join!(migrate, service);
    let migrate = migrate.map_err(|e| format!("running {}: {e}", server_bin().display()))?;
    let service = service?;
    let migrate_to = clock.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::SeqCst);
    for task in tasks {
        task.await.map_err(|e| e.to_string())??;
    }
    let report = String::from_utf8_lossy(&migrate.stdout);
    print!("{report}");

    let db = connect(&url).await?;
    let row = db
        .query_one(
            "SELECT extract(epoch FROM b.completed_at - b.started_at)::float8, b.rows_done, \
                    (SELECT count(*) FROM events WHERE orchestrator = $1), \
                    (SELECT count(*) FROM events WHERE region_id IS NOT NULL \
                        AND leaderboard_scored(payload)), \
                    (SELECT COALESCE(sum(events), 0) FROM event_buckets WHERE span = 600)::int8 \
                    + (SELECT COALESCE(sum(events), 0) FROM event_bucket_appends)::int8 \
               FROM leaderboard_backfill b",
            &[&MARKER],
        )
        .await
        .map_err(|e| format!("reading the outcome: {e}"))?;
    let (backfill_s, backfilled, stored, total, counted): (f64, i64, i64, i64, i64) =
        (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
    let posts = posts.lock().map_err(|e| e.to_string())?.clone();
    let reads = reads.lock().map_err(|e| e.to_string())?.clone();
    let answered = posts.iter().filter(|s| s.ok).count() as i64;
    let failed = posts.len() as i64 - answered;
    println!(
        "migrate up: exit status {}, {:.1} s (backfill of {backfilled} rows {backfill_s:.1} s, \
         {:.0} rows/s), with a service started 1 s later counting in the background",
        migrate
            .status
            .code()
            .map_or("none (killed)".to_string(), |c| c.to_string()),
        migrate_to - migrate_from,
        backfilled as f64 / backfill_s.max(1e-9)
    );
    if !migrate.status.success() {
        println!(
            "migrate up failed:\n{}",
            String::from_utf8_lossy(&migrate.stderr)
        );
    }
    println!(
        "posts: {} attempted, {answered} answered ok, {stored} stored, {failed} failed",
        posts.len()
    );
    println!(
        "post latency during migrate up: {}",
        latencies(&posts, migrate_from, migrate_to)
    );
    println!(
        "post latency before it:         {}",
        latencies(&posts, 0.0, migrate_from)
    );
    println!(
        "read latency during migrate up: {}",
        latencies(&reads, migrate_from, migrate_to)
    );
    println!("rollups: {counted} events counted, events holds {total}");

    let (right_after, after_vacuum) = service.timings(&db).await?;
    println!(
        "aggregated_stats p50 right after: {right_after:.1} ms; after VACUUM ANALYZE: \
         {after_vacuum:.1} ms ({:.2}x)",
        right_after / after_vacuum
    );
    let held = migrate.status.success() && failed == 0 && stored == answered && counted == total;
    if !held {
        println!(
            "VIOLATION: migrate up failed, a post failed or was lost, or the rollups do not \
             count every row once"
        );
    }
    Ok(held)
}

/// The service deployed on the database: the local server with its default background
/// backfill.
struct Service {
    _process: tokio::process::Child,
    base: String,
    http: reqwest::Client,
}

impl Service {
    async fn start(url: &str) -> Result<Service, String> {
        let port = free_port()?;
        let process = Command::new(server_bin())
            .env("POSTGRES", url)
            .env("PORT", port.to_string())
            .env("LOG_LEVEL", "warn")
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("starting the server: {e}"))?;
        let service = Service {
            _process: process,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        };
        let ready = Instant::now();
        while service.get("/api/health").await.is_err() {
            if ready.elapsed() > Duration::from_secs(60) {
                return Err("the server did not start".into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(service)
    }

    async fn get(&self, path: &str) -> Result<(), String> {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("{path}: {}", response.status()));
        }
        response.bytes().await.map_err(|e| e.to_string())?;
        Ok(())
    }

    /// Median of 15 `aggregated_stats` requests right after the migration, and again
    /// after a manual `VACUUM ANALYZE`.
    async fn timings(&self, db: &tokio_postgres::Client) -> Result<(f64, f64), String> {
        let p50 = || async {
            let mut ms = Vec::new();
            for _ in 0..15 {
                let start = Instant::now();
                self.get("/api/aggregated_stats").await?;
                ms.push(start.elapsed().as_secs_f64() * 1000.0);
            }
            ms.sort_by(f64::total_cmp);
            Ok::<f64, String>(percentile(&ms, 50.0))
        };
        let right_after = p50().await?;
        db.batch_execute("VACUUM ANALYZE")
            .await
            .map_err(|e| format!("VACUUM ANALYZE: {e}"))?;
        let after_vacuum = p50().await?;
        Ok((right_after, after_vacuum))
    }
}
