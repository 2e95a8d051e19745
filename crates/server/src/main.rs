//! `leaderboard`: the whole API on one port for local development (`serve`, the default),
//! plus the operator commands: migrations (status, up, down), synthetic demo data, and
//! signing a post by hand. Without `POSTGRES` every command uses its own PostgreSQL from
//! the machine's server binaries, data kept in `.data/`.

use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use leaderboard::db::{self, DbError};
use leaderboard::migrate::{self, DownPlan, Status};
use leaderboard::{backfill, seed, server, App, Config};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

mod static_files;

const EMBEDDED_DATABASE: &str = "leaderboard";

/// Prints a line for the person running the server; a closed stdout is not worth a crash.
macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// The same on stderr: notes that must not mix with a command's output.
macro_rules! note {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

const ENVIRONMENT: &str = "\
Environment:
  POSTGRES              database URL; unset: an embedded PostgreSQL started from the
                        machine's server binaries, data in LEADERBOARD_DATA_DIR (.data/postgres)
  SECRET                HMAC key of post_stats (serve, sign)
  PORT                  port of serve (8080)
  LOG_LEVEL, DB_TIMEOUT, START_TIME_WINDOW, ...: see the README

Exit status: 0 done, 1 failed (database away, dirty, refused), 2 wrong usage
(bad arguments, SECRET unset for sign, `migrate down` without --yes).";

/// Livepeer Leaderboard API: the local server and the operator commands.
#[derive(Debug, Parser)]
#[command(name = "leaderboard", version, after_help = ENVIRONMENT)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve every route on one port (the default when no command is given)
    Serve,
    /// Show, apply or revert the database migrations
    #[command(subcommand)]
    Migrate(MigrateCommand),
    /// Insert synthetic test-job events (demo data, benchmarks), migrating first
    Seed(SeedArgs),
    /// Print the Authorization value that signs a post_stats body under SECRET
    #[command(after_help = "\
Example:
  curl -X POST localhost:8080/api/post_stats \\
    -H \"Authorization: $(leaderboard sign body.json)\" --data-binary @body.json")]
    Sign {
        /// The body, signed byte for byte as read; `-` or nothing for standard input
        #[arg(value_name = "FILE|-")]
        file: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum MigrateCommand {
    /// List applied and pending migrations and golang-migrate's state
    ///
    /// Exits with 1 (after the report) when the service would refuse the database: a
    /// dirty or unknown golang-migrate version, a migration this build lacks or one whose
    /// file changed since it was applied.
    Status,
    /// Apply pending migrations (adopting a golang-migrate database) as a cold start does
    Up,
    /// Revert to an older version with the down scripts of migrations/down (back up first!)
    #[command(after_help = "\
Reverting to 0 drops the schema with every event and region. The seed and legacy-copy
migrations revert as no-ops, so the only versions to revert to are 0 and 3 or later.
Without --yes nothing changes: the command shows what it would revert.")]
    Down {
        /// The version to revert to (0: no schema at all)
        #[arg(long, value_name = "VERSION")]
        to: u32,
        /// Revert for real (after a backup)
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, Args)]
struct SeedArgs {
    /// Number of events to insert
    #[arg(long, value_name = "N")]
    events: u64,
    /// Number of distinct orchestrators (addresses 0x + 40 hex digits)
    #[arg(long, value_name = "M", default_value_t = 200)]
    orchestrators: u32,
    /// Spread the events uniformly over the last H hours
    #[arg(long, value_name = "H", default_value_t = 24.0)]
    hours: f64,
    /// Share of AI events, over the AI regions (6 pipelines x 2 models)
    #[arg(long, value_name = "F", default_value_t = 0.2)]
    ai_share: f64,
    /// Random seed: the same seed gives the same orchestrators and payloads
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Into a new, empty database set up as the original Go service leaves its own
    /// (golang-migrate version 3, none of this service's migrations): a cut-over rehearsal
    #[arg(long)]
    original: bool,
}

/// Why a command stopped: one line on stderr and the exit code.
#[derive(Debug)]
struct Failure {
    code: i32,
    message: String,
}

impl Failure {
    fn failed(message: impl Into<String>) -> Failure {
        Failure {
            code: 1,
            message: message.into(),
        }
    }

    fn usage(message: impl Into<String>) -> Failure {
        Failure {
            code: 2,
            message: message.into(),
        }
    }
}

impl From<DbError> for Failure {
    fn from(e: DbError) -> Failure {
        let message = e.to_string();
        let message = match message.strip_prefix("refusing to start: ") {
            Some(rest) => format!("refusing: {rest}"),
            None => message,
        };
        Failure::failed(message)
    }
}

impl From<String> for Failure {
    fn from(message: String) -> Failure {
        Failure::failed(message)
    }
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => run().await.map_err(Failure::from),
        Command::Sign { file } => sign(file),
        Command::Migrate(command) => with_database(|db| migrate_command(db, command)).await,
        Command::Seed(args) => seed_command(args).await,
    };
    if let Err(failure) = result {
        // One line, whatever the cause said.
        let message = failure.message.replace('\n', " ");
        eprintln!("leaderboard: {}", message.trim());
        std::process::exit(failure.code);
    }
}

async fn run() -> Result<(), String> {
    let (mut config, warnings) = Config::from_env();
    leaderboard::logging::init(&config.log_level);
    for w in &warnings {
        tracing::warn!(variable = w.variable, "{}", w.message);
    }
    let port = match std::env::var("PORT") {
        Ok(p) => p
            .trim()
            .parse::<u16>()
            .map_err(|_| format!("PORT={p:?} is not a port number"))?,
        Err(_) => 8080,
    };
    let listener = TcpListener::bind(("0.0.0.0", port))
        .await
        .map_err(|e| format!("cannot listen on port {port}: {e}"))?;

    let embedded = match config.postgres {
        Some(_) => None,
        None => {
            let (pg, url) = start_embedded().await?;
            say!("{}", embedded_notice(&pg, &url));
            config.postgres = Some(url);
            if config.secret.is_none() {
                config.secret = Some(dev_secret(port)?);
            }
            Some(pg)
        }
    };
    let app = Arc::new(App::new(config));
    tokio::spawn({
        let app = app.clone();
        async move { app.warm_up().await }
    });
    tracing::info!(port, "Server starting on port {port}");
    // The dashboard (public/, embedded) at `/`; every /api route as before.
    server::serve_with(app, listener, Some(static_files::answer), shutdown_signal()).await;
    tracing::info!("stopped");
    if let Some(mut pg) = embedded {
        pg.stop()
            .map_err(|e| format!("stopping the embedded PostgreSQL: {e}"))?;
    }
    Ok(())
}

/// Starts (or reuses) the embedded server and makes sure its database exists.
async fn start_embedded() -> Result<(localpg::PgServer, String), String> {
    // The container image sets LEADERBOARD_EMBEDDED_DB=off: no embedded database there.
    let switch = std::env::var("LEADERBOARD_EMBEDDED_DB").unwrap_or_default();
    if switch.trim().eq_ignore_ascii_case("off") {
        return Err(
            "POSTGRES is required (LEADERBOARD_EMBEDDED_DB=off: no embedded database)".into(),
        );
    }
    let dir = data_dir();
    let pg = tokio::task::spawn_blocking(move || {
        localpg::PgServer::start(localpg::Options::persistent(dir))
    })
    .await
    .map_err(|e| format!("starting the embedded PostgreSQL: {e}"))?
    .map_err(|e| e.to_string())?;
    let admin_url = pg.url("postgres");
    let (client, connection) = tokio_postgres::connect(&admin_url, tokio_postgres::NoTls)
        .await
        .map_err(|e| format!("connecting to the embedded PostgreSQL: {e}"))?;
    tokio::spawn(connection);
    let exists = client
        .query_typed_opt(
            "SELECT 1 FROM pg_database WHERE datname = $1",
            &[(&EMBEDDED_DATABASE, tokio_postgres::types::Type::TEXT)],
        )
        .await
        .map_err(|e| format!("embedded PostgreSQL: {e}"))?
        .is_some();
    if !exists {
        client
            .batch_execute(&format!("CREATE DATABASE {EMBEDDED_DATABASE}"))
            .await
            .map_err(|e| format!("embedded PostgreSQL: {e}"))?;
    }
    let url = pg.url(EMBEDDED_DATABASE);
    Ok((pg, url))
}

fn embedded_notice(pg: &localpg::PgServer, url: &str) -> String {
    format!(
        "POSTGRES is not set: using the embedded PostgreSQL at {url} (data in {})",
        pg.data_dir().display()
    )
}

/// A secret for this run only, printed with a ready-to-paste signed post, so a newcomer
/// can post a stat in the first minute. Only the local server on its own embedded
/// database does this; deployed functions refuse posts without SECRET.
fn dev_secret(port: u16) -> Result<String, String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| format!("generating a secret: {e}"))?;
    let secret = hex::encode(bytes);
    let body = r#"{"region":"FRA","orchestrator":"0x0000000000000000000000000000000000000001","success_rate":1,"round_trip_time":1.2,"seg_duration":2,"errors":[],"timestamp":1700000000}"#;
    say!("SECRET is not set: posts to this local server are signed with a secret generated for this run:");
    say!("SECRET={secret}");
    say!("Post a stat (then read it back with /api/raw_stats?orchestrator=0x0000000000000000000000000000000000000001):");
    say!("body='{body}'");
    say!(
        "curl -X POST localhost:{port}/api/post_stats -H 'Content-Type: application/json' \\\n  \
         -H \"Authorization: $(printf %s \"$body\" | openssl dgst -sha256 -hmac '{secret}' | awk '{{print $NF}}')\" \\\n  \
         --data-binary \"$body\""
    );
    Ok(secret)
}

/// `.data/postgres` in the working directory (the project), unless the server user
/// cannot reach it (a checkout under /root while running as root).
fn data_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("LEADERBOARD_DATA_DIR") {
        return PathBuf::from(dir);
    }
    let local = std::env::current_dir()
        .unwrap_or_else(|_| PathBuf::from("."))
        .join(".data")
        .join("postgres");
    if localpg::dir_usable_by_server_user(&local) {
        local
    } else {
        let fallback = std::env::temp_dir().join("leaderboard-postgres");
        tracing::warn!(
            wanted = %local.display(),
            using = %fallback.display(),
            "the PostgreSQL server user cannot reach the project directory; keeping data elsewhere"
        );
        fallback
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// The database of an operator command: `POSTGRES`, or the embedded one started the way
/// `serve` starts it (and stopped again afterwards).
struct Database {
    url: String,
    timeout: Duration,
    embedded: Option<localpg::PgServer>,
}

impl Database {
    async fn connect(&self) -> Result<tokio_postgres::Client, Failure> {
        db::connect(&self.url, self.timeout).await.map_err(|e| {
            Failure::failed(format!(
                "cannot use the database {}: {e}",
                db::redact_url(&self.url)
            ))
        })
    }
}

/// Opens the database, runs `command` on it and stops the embedded server, if any, on
/// every path (`exit` would skip its destructor).
async fn with_database<F, Fut>(command: F) -> Result<(), Failure>
where
    F: FnOnce(Database) -> Fut,
    Fut: std::future::Future<Output = (Database, Result<(), Failure>)>,
{
    let (config, warnings) = Config::from_env();
    // Commands print their own report; the log only speaks up for trouble unless asked.
    let level = std::env::var("LOG_LEVEL").unwrap_or_else(|_| "warn".into());
    leaderboard::logging::init(&level);
    for w in &warnings {
        tracing::warn!(variable = w.variable, "{}", w.message);
    }
    let database = match config.postgres {
        Some(url) => Database {
            url,
            timeout: config.db_timeout,
            embedded: None,
        },
        None => {
            let (pg, url) = start_embedded().await.map_err(|e| {
                if e.contains("\"postmaster.pid\" already exists") {
                    format!(
                        "the embedded PostgreSQL in {} is in use (by `leaderboard serve`?): \
                         set POSTGRES to the URL it printed",
                        data_dir().display()
                    )
                } else {
                    e
                }
            })?;
            note!("{}", embedded_notice(&pg, &url));
            Database {
                url,
                timeout: config.db_timeout,
                embedded: Some(pg),
            }
        }
    };
    let (database, result) = command(database).await;
    if let Some(mut pg) = database.embedded {
        if let Err(e) = pg.stop() {
            note!("leaderboard: stopping the embedded PostgreSQL: {e}");
        }
    }
    result
}

async fn migrate_command(
    database: Database,
    command: MigrateCommand,
) -> (Database, Result<(), Failure>) {
    let result = match command {
        MigrateCommand::Status => migrate_status(&database).await,
        MigrateCommand::Up => migrate_up(&database).await,
        MigrateCommand::Down { to, yes } => migrate_down(&database, to, yes).await,
    };
    (database, result)
}

async fn migrate_status(database: &Database) -> Result<(), Failure> {
    let client = database.connect().await?;
    let status = migrate::status(&client).await?;
    print_status(&db::redact_url(&database.url), &status);
    if let Some(p) = backfill::progress(&client).await? {
        let state = match (p.complete, p.index_ready) {
            (true, true) => "complete".to_string(),
            (true, false) => {
                "counted; raw_stats index not built yet (`migrate up` builds it)".into()
            }
            (false, _) => format!(
                "{:.1} % ({} rows counted, {} ids left; `migrate up` finishes it)",
                100.0 * p.fraction_done(),
                p.rows_done,
                p.ids_left
            ),
        };
        say!("backfill        {state}");
    }
    match status.problem {
        Some(problem) => Err(Failure::failed(format!(
            "the service refuses this database: {problem}"
        ))),
        None => Ok(()),
    }
}

fn print_status(url: &str, status: &Status) {
    say!("database        {url}");
    say!(
        "version         {} (this build knows migrations up to {})",
        status.version,
        status.latest
    );
    if status.applied.is_empty() {
        say!("applied         none");
    }
    for (i, a) in status.applied.iter().enumerate() {
        let label = if i == 0 { "applied" } else { "" };
        let mut flags = String::new();
        if a.unknown {
            flags.push_str("  UNKNOWN to this build");
        }
        if a.changed {
            flags.push_str("  CHANGED since applied");
        }
        say!(
            "{label:<15} V{} {}  ({}){flags}",
            a.version,
            a.name,
            a.applied_on
        );
    }
    if status.pending.is_empty() {
        say!("pending         none");
    }
    for (i, p) in status.pending.iter().enumerate() {
        let label = if i == 0 { "pending" } else { "" };
        let adopt = match status.to_adopt {
            Some(v) if i64::from(p.version) <= v => "  (adopted: recorded as applied, not run)",
            _ => "",
        };
        say!("{label:<15} V{} {}{adopt}", p.version, p.name);
    }
    let golang = match (status.golang_migrate, status.to_adopt) {
        (None, _) => "none (no schema_migrations row)".to_string(),
        (Some(g), _) if g.dirty => format!(
            "DIRTY at version {v}: the service refuses to start until it is repaired (migrate force {v})",
            v = g.version
        ),
        (Some(g), Some(_)) => format!(
            "version {}, clean, NOT ADOPTED yet: the next start or `leaderboard migrate up` \
             records it without running anything",
            g.version
        ),
        (Some(g), None) => format!("version {}, clean, adopted", g.version),
    };
    say!("golang-migrate  {golang}");
    if let Some(problem) = &status.problem {
        say!("problem         {problem}");
    }
}

async fn migrate_up(database: &Database) -> Result<(), Failure> {
    // A connection of its own, closed afterwards, so the advisory lock cannot outlive us.
    let mut client = database.connect().await?;
    let state = migrate_retrying(&mut client).await?;
    if let Some(version) = state.adopted_golang_migrate_version {
        say!("adopted the golang-migrate database at version {version}: recorded as applied, nothing run");
    }
    if state.applied_now.is_empty() {
        say!(
            "nothing to apply: the database is at version {}",
            state.version
        );
    } else {
        let applied: Vec<String> = state.applied_now.iter().map(|v| format!("V{v}")).collect();
        say!(
            "applied {}: the database is at version {}",
            applied.join(", "),
            state.version
        );
    }
    backfill_up(&client).await
}

/// The schema steps, retried while a table they need is held by others: a migration gives
/// up waiting after `migrate::LOCK_WAIT` rather than hold up the writers queued behind it.
async fn migrate_retrying(
    client: &mut tokio_postgres::Client,
) -> Result<migrate::MigrationState, Failure> {
    const ATTEMPTS: u32 = 30;
    let mut attempt = 1;
    loop {
        match migrate::run(client).await {
            Err(DbError::Migration(message))
                if message.contains("lock timeout") && attempt < ATTEMPTS =>
            {
                note!("a table is busy ({message}); trying again ({attempt}/{ATTEMPTS})");
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            other => return Ok(other?),
        }
    }
}

/// The online part of the migrations (V4's backfill, the concurrent index build, fresh
/// statistics), with a progress bar: rows counted, rate, time left.
async fn backfill_up(client: &tokio_postgres::Client) -> Result<(), Failure> {
    let Some(before) = backfill::progress(client).await? else {
        return Ok(());
    };
    if before.settled() {
        return Ok(());
    }
    let started = Instant::now();
    let bar = ProgressBar::new(before.ids_total.max(0) as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {elapsed_precise} [{wide_bar}] {percent}% backfill: {msg} ({eta} left)",
        )
        .map_err(|e| e.to_string())?
        .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    let rows_before = before.rows_done;
    let report = |p: &backfill::Progress| {
        bar.set_position((p.ids_total - p.ids_left).max(0) as u64);
        let rate = (p.rows_done - rows_before) as f64 / started.elapsed().as_secs_f64().max(1e-3);
        bar.set_message(format!("{} rows counted, {rate:.0} rows/s", p.rows_done));
    };
    report(&before);
    let done = backfill::run(client, backfill::OPERATOR_STEP, report).await;
    bar.finish_and_clear();
    let done = done?;
    say!(
        "backfill complete: {} events counted into the rollups ({} by this run in {:.1} s), \
         raw_stats index ready, statistics refreshed",
        done.rows_done,
        done.rows_done - rows_before,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn describe_reverts(plan: &DownPlan) -> String {
    plan.reverts
        .iter()
        .map(|r| {
            if r.noop {
                format!("V{} {} (no-op: its data stays)", r.version, r.name)
            } else {
                format!("V{} {}", r.version, r.name)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

async fn migrate_down(database: &Database, to: u32, yes: bool) -> Result<(), Failure> {
    let to = i32::try_from(to).map_err(|_| Failure::usage(format!("--to {to} is too large")))?;
    let mut client = database.connect().await?;
    if !yes {
        let plan = migrate::plan_down(&client, to).await?;
        if plan.reverts.is_empty() {
            say!(
                "nothing to revert: the database is at version {}",
                plan.from
            );
            return Ok(());
        }
        note!(
            "would revert {} (version {} -> {}){}",
            describe_reverts(&plan),
            plan.from,
            plan.to,
            if plan.to == 0 {
                ", dropping every event and region"
            } else {
                ""
            }
        );
        note!("Back up first, e.g. pg_dump --format=custom --file=leaderboard.dump \"$POSTGRES\"");
        return Err(Failure::usage(format!(
            "not reverting without --yes: back up first, then run `leaderboard migrate down --to {to} --yes`"
        )));
    }
    let plan = migrate::down(&mut client, to).await?;
    if plan.reverts.is_empty() {
        say!(
            "nothing to revert: the database is at version {}",
            plan.from
        );
        return Ok(());
    }
    say!(
        "reverted {}: the database is at version {}",
        describe_reverts(&plan),
        plan.to
    );
    match plan.golang_migrate_to {
        Some(0) => say!("golang-migrate's schema_migrations emptied to match"),
        Some(v) => say!("golang-migrate's schema_migrations set to version {v} to match"),
        None => {}
    }
    Ok(())
}

async fn seed_command(args: SeedArgs) -> Result<(), Failure> {
    let options = seed::Options {
        events: args.events,
        orchestrators: args.orchestrators,
        hours: args.hours,
        ai_share: args.ai_share,
        seed: args.seed,
    };
    options.validate().map_err(Failure::usage)?;
    with_database(|database| async move {
        let result = seed_into(&database, &options, args.original).await;
        (database, result)
    })
    .await
}

async fn seed_into(
    database: &Database,
    options: &seed::Options,
    original: bool,
) -> Result<(), Failure> {
    let mut client = database.connect().await?;
    if original {
        migrate::create_original(&client).await?;
    } else {
        migrate::run(&mut client).await?;
    }
    let bar = ProgressBar::new(options.events);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {elapsed_precise} [{wide_bar}] {human_pos}/{human_len} events ({rate}, {eta} left)",
        )
        .map_err(|e| e.to_string())?
        .with_key(
            "rate",
            |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.0}/s", state.per_sec());
            },
        )
        .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    let started = Instant::now();
    let summary = seed::copy_events(&mut client, options, |done| bar.set_position(done)).await;
    bar.finish_and_clear();
    let summary = summary?;
    // Fresh statistics, so the first reads after a bulk load get the plans its size calls for.
    if !original {
        backfill::finish(&client).await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let total: i64 = client
        .query_typed_one("SELECT count(*) FROM events", &[])
        .await
        .map_err(DbError::from)?
        .get(0);
    say!(
        "inserted {} events ({} AI) from {} orchestrators ({} with AI events) over the last {} h \
         in {elapsed:.1} s ({:.0} events/s); events now holds {total} rows",
        summary.inserted,
        summary.ai,
        summary.orchestrators,
        summary.ai_orchestrators,
        options.hours,
        summary.inserted as f64 / elapsed.max(1e-9)
    );
    Ok(())
}

/// `leaderboard sign`: the HMAC of exactly the bytes read, as the server checks it.
fn sign(file: Option<PathBuf>) -> Result<(), Failure> {
    let (config, _) = Config::from_env();
    let secret = config.secret.ok_or_else(|| {
        Failure::usage(
            "SECRET is not set: export the secret the server checks posts with, e.g. SECRET=... leaderboard sign body.json",
        )
    })?;
    let body = match file {
        Some(path) if path.as_os_str() != "-" => std::fs::read(&path)
            .map_err(|e| Failure::failed(format!("cannot read {}: {e}", path.display())))?,
        _ => {
            let mut body = Vec::new();
            std::io::stdin()
                .lock()
                .read_to_end(&mut body)
                .map_err(|e| Failure::failed(format!("cannot read standard input: {e}")))?;
            body
        }
    };
    say!("{}", leaderboard::auth::sign(&secret, &body));
    Ok(())
}
