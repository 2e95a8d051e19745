//! `leaderboard`: the whole API on one port for local development (`serve`, the default),
//! plus the operator commands: migrations (status, up, down), synthetic demo data,
//! registering regions, signing a post by hand, listing the keys' identifiers and removing
//! the rows a leaked key let in. Without `POSTGRES` every command uses
//! its own PostgreSQL from the machine's server binaries, data kept in `.data/`.

use clap::{Args, Parser, Subcommand};
use leaderboard::db::DbError;
use std::path::PathBuf;

/// Prints a line for the person running the server; a closed stdout is not worth a crash.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// The same on stderr: notes that must not mix with a command's output.
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

// One module per command (after the macros, which they use).
mod commands;
mod database;
mod seed;
mod static_files;
mod table;
mod timestamps;

const ENVIRONMENT: &str = "\
Environment:
  POSTGRES              database URL; unset: an embedded PostgreSQL started from the
                        machine's server binaries, data in LEADERBOARD_DATA_DIR (.data/postgres)
  SECRET                HMAC key of post_stats (serve, sign)
  EXTRA_SECRETS         more post_stats keys, comma-separated (serve, keys)
  POST_MAX_AGE          refuse posted bodies whose timestamp is older, seconds (serve)
  PORT                  port of serve (8080)
  LOG_LEVEL, DB_TIMEOUT, START_TIME_WINDOW, ...: see docs/api.md

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
    /// Register a region for a job type, or list the registered regions
    #[command(subcommand)]
    Region(RegionCommand),
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
    /// List the identifiers of the post_stats keys (SECRET, EXTRA_SECRETS)
    #[command(after_help = "\
Every row post_stats stores records the identifier of the key that verified it: the first
12 hex digits of an HMAC of a fixed label under the key, which reveals nothing of the key
and stays the same when other keys are added or removed.")]
    Keys {
        /// List the identifiers the stored rows carry instead, with their rows (database)
        #[arg(long)]
        stored: bool,
    },
    /// Remove stored events: the rows a leaked key let in
    #[command(subcommand)]
    Events(EventsCommand),
}

#[derive(Debug, Subcommand)]
pub(crate) enum EventsCommand {
    /// Remove the rows a key let in (e.g. since it leaked), online, in bounded steps
    #[command(after_help = "\
Example, after revoking the key (removed from SECRET / EXTRA_SECRETS everywhere):
  leaderboard keys --stored
  leaderboard events remove --key 3f2a9c1b7d4e --since 2026-12-07T10:00:00Z
  leaderboard events remove --key 3f2a9c1b7d4e --since 2026-12-07T10:00:00Z --yes

Times are when the rows were stored (event_time), as Unix seconds or RFC 3339; both ends
are included. Without --yes nothing changes: the command shows what it would remove.
Steps of 1000 rows each commit on their own: writers are never held up for long, and an
interrupted removal is finished by running it again. A removed body posted again is
still refused as a repeat. Rows without a key (stored before this version, or by the
original service) are never removed by this command.")]
    Remove {
        /// The key's identifier (`leaderboard keys`, `leaderboard keys --stored`)
        #[arg(long, value_name = "ID")]
        key: String,
        /// Only rows stored at or after this time
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// Only rows stored at or before this time
        #[arg(long, value_name = "TIME")]
        until: Option<String>,
        /// Remove for real
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum MigrateCommand {
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

#[derive(Debug, Subcommand)]
pub(crate) enum RegionCommand {
    /// Register region ID for a job type (again with the same name: nothing to do)
    #[command(after_help = "\
Example:
  leaderboard region add FRA --name Frankfurt --type ai

The id is stored upper-cased (posts match it in any case). A region may be registered for
both job types; an existing registration is never changed (a different name is refused).
Running servers see a new region at once.")]
    Add {
        /// The region id testers post (`region` of a stat)
        id: String,
        /// The display name
        #[arg(long)]
        name: String,
        /// The job type whose posts it accepts
        #[arg(long = "type", value_enum, value_name = "TYPE")]
        job_type: RegionJobType,
    },
    /// List the registered regions: id, name and job type, in creation order
    List,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum RegionJobType {
    Ai,
    Transcoding,
}

#[derive(Debug, Args)]
pub(crate) struct SeedArgs {
    /// Number of events to insert
    #[arg(long, value_name = "N")]
    pub(crate) events: u64,
    /// Number of distinct orchestrators (addresses 0x + 40 hex digits)
    #[arg(long, value_name = "M", default_value_t = 200)]
    pub(crate) orchestrators: u32,
    /// Spread the events uniformly over the last H hours
    #[arg(long, value_name = "H", default_value_t = 24.0)]
    pub(crate) hours: f64,
    /// Share of AI events, over the AI regions (6 pipelines x 2 models)
    #[arg(long, value_name = "F", default_value_t = 0.2)]
    pub(crate) ai_share: f64,
    /// Random seed: the same seed gives the same orchestrators and payloads
    #[arg(long, default_value_t = 1)]
    pub(crate) seed: u64,
    /// Into a new, empty database set up as the original Go service leaves its own
    /// (golang-migrate version 3, none of this service's migrations): a cut-over rehearsal
    #[arg(long)]
    pub(crate) original: bool,
}

/// Why a command stopped: one line on stderr and the exit code.
#[derive(Debug)]
pub(crate) struct Failure {
    code: i32,
    message: String,
}

impl Failure {
    pub(crate) fn failed(message: impl Into<String>) -> Failure {
        Failure {
            code: 1,
            message: message.into(),
        }
    }

    pub(crate) fn usage(message: impl Into<String>) -> Failure {
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
        Command::Serve => commands::serve::run().await.map_err(Failure::from),
        Command::Sign { file } => commands::sign::run(file),
        Command::Migrate(command) => {
            database::with_database(|db| commands::migrate::run(db, command)).await
        }
        Command::Seed(args) => commands::seed::run(args).await,
        Command::Region(command) => {
            database::with_database(|db| commands::region::run(db, command)).await
        }
        Command::Keys { stored: false } => commands::keys::list(&leaderboard::Config::from_env().0),
        Command::Keys { stored: true } => {
            let config = leaderboard::Config::from_env().0;
            database::with_database(|db| commands::keys::stored(db, config)).await
        }
        Command::Events(command) => {
            database::with_database(|db| commands::events::run(db, command)).await
        }
    };
    if let Err(failure) = result {
        // One line, whatever the cause said.
        let message = failure.message.replace('\n', " ");
        eprintln!("leaderboard: {}", message.trim());
        std::process::exit(failure.code);
    }
}
