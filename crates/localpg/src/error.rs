use std::fmt;
use std::io;
use std::path::PathBuf;

/// Everything that can go wrong while managing a local server.
///
/// Every variant displays as a single line so it can be shown as-is in a dev
/// server's startup message or a test failure.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// `initdb`/`postgres` could not be located; the message tells the user how to fix it.
    BinariesNotFound {
        /// The `PG_BINDIR` override that was set but did not contain the binaries.
        pg_bindir: Option<PathBuf>,
    },
    /// Running as root, but there is no `postgres` system user to drop privileges to
    /// (initdb and postgres refuse to run as root).
    NoServerUser {
        /// The user name that was looked up.
        user: String,
    },
    /// The data directory cannot be traversed/written by the user the server runs as.
    DirNotUsable {
        /// The offending directory.
        path: PathBuf,
        /// The user the server runs as.
        user: String,
    },
    /// The data directory exists, is not empty and is not a PostgreSQL data directory.
    DirNotEmpty {
        /// The offending directory.
        path: PathBuf,
    },
    /// A filesystem or process operation failed.
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: io::Error,
    },
    /// A helper program (initdb, openssl, ...) or a statement (CREATE DATABASE) failed.
    Command {
        /// The program or statement that failed.
        program: String,
        /// Exit status and the tail of its output, or the server's error.
        detail: String,
    },
    /// The server process exited before it became ready.
    StartFailed {
        /// How it exited.
        status: String,
        /// Path of the server log; `None` when it was removed with an ephemeral data dir.
        log: Option<PathBuf>,
        /// Last lines of the server log, joined with ` | `.
        log_tail: String,
    },
    /// The server did not become ready before the deadline.
    StartTimeout {
        /// The deadline in seconds.
        secs: u64,
        /// Path of the server log; `None` when it was removed with an ephemeral data dir.
        log: Option<PathBuf>,
        /// Last lines of the server log, joined with ` | `.
        log_tail: String,
    },
    /// The server did not exit after SIGINT, SIGQUIT and SIGKILL.
    StopTimeout {
        /// The postmaster pid.
        pid: u32,
    },
    /// The operation needs a running server, but it is stopped.
    NotRunning,
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

const INSTALL_HINT: &str = "install them (Debian/Ubuntu: apt-get install postgresql)";

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::BinariesNotFound { pg_bindir: None } => write!(
                f,
                "PostgreSQL server binaries (initdb, postgres) not found; {INSTALL_HINT} or set PG_BINDIR"
            ),
            Error::BinariesNotFound {
                pg_bindir: Some(dir),
            } => write!(
                f,
                "PostgreSQL server binaries (initdb, postgres) not found in PG_BINDIR={}; {INSTALL_HINT} or fix PG_BINDIR",
                dir.display()
            ),
            Error::NoServerUser { user } => write!(
                f,
                "running as root but there is no '{user}' system user to run PostgreSQL as (initdb/postgres refuse to run as root); {INSTALL_HINT} or run as a normal user"
            ),
            Error::DirNotUsable { path, user } => write!(
                f,
                "PostgreSQL data directory {} is not reachable/writable by user '{user}'; use a directory it can access (e.g. under /tmp)",
                path.display()
            ),
            Error::DirNotEmpty { path } => write!(
                f,
                "{} is not empty and is not a PostgreSQL data directory (no PG_VERSION); use an empty or new directory",
                path.display()
            ),
            Error::Io { context, source } => write!(f, "{context}: {source}"),
            Error::Command { program, detail } => write!(f, "{program} failed: {detail}"),
            Error::StartFailed {
                status,
                log,
                log_tail,
            } => write!(
                f,
                "postgres exited during startup ({status}){}: {log_tail}",
                log_suffix(log)
            ),
            Error::StartTimeout {
                secs,
                log,
                log_tail,
            } => write!(
                f,
                "postgres did not become ready within {secs}s{}: {log_tail}",
                log_suffix(log)
            ),
            Error::StopTimeout { pid } => {
                write!(f, "postgres (pid {pid}) did not exit after SIGINT/SIGQUIT/SIGKILL")
            }
            Error::NotRunning => write!(f, "the PostgreSQL server is not running"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

fn log_suffix(log: &Option<PathBuf>) -> String {
    match log {
        Some(path) => format!("; log {}", path.display()),
        None => String::new(),
    }
}

/// Joins the last `n` non-empty lines of `text` into one line, so errors stay one line.
pub(crate) fn tail_one_line(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let start = lines.len().saturating_sub(n);
    let joined = lines[start..].join(" | ");
    if joined.is_empty() {
        "(no output)".to_string()
    } else {
        joined
    }
}
