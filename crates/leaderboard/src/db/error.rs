//! Why the database could not answer, and what to do about a statement that lost a race
//! with another session. Its own module so that `db` (the pool), `migrate` and `backfill`
//! all use it without depending on one another.

use std::future::Future;
use std::time::Duration;

/// Why the database could not answer. Everything but `Internal` is the database being
/// away, slow, busy or misconfigured, which the API reports as a retryable 503.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DbError {
    #[error("database is not configured: set POSTGRES")]
    NotConfigured,
    #[error("invalid POSTGRES: {0}")]
    InvalidUrl(String),
    #[error("database unreachable: {0}")]
    Unreachable(String),
    #[error("database operation timed out")]
    Timeout,
    /// The statement lost a race with another session (see [`CONFLICT_CODES`]): the same
    /// statement can succeed when tried again.
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Migration(String),
    #[error("database error: {0}")]
    Internal(String),
}

/// SQLSTATEs of a statement that lost a race: a deadlock (40P01), a serialization failure
/// (40001), a lock wait given up at `lock_timeout` (55P03). PostgreSQL rolled the
/// statement back; trying it again is the remedy.
pub const CONFLICT_CODES: [&str; 3] = ["40P01", "40001", "55P03"];

impl From<tokio_postgres::Error> for DbError {
    fn from(e: tokio_postgres::Error) -> Self {
        match e.as_db_error() {
            Some(db) if CONFLICT_CODES.contains(&db.code().code()) => {
                DbError::Conflict(format!("{}: {}", db.code().code(), db.message()))
            }
            // Connection trouble, shutdowns and overload are the database being away.
            Some(db) if is_unavailable_code(db.code().code()) => {
                DbError::Unreachable(db.message().to_string())
            }
            Some(db) => DbError::Internal(format!("{}: {}", db.code().code(), db.message())),
            None => DbError::Unreachable(error_chain(&e)),
        }
    }
}

fn is_unavailable_code(code: &str) -> bool {
    code.starts_with("08") || code.starts_with("57P") || code.starts_with("53")
}

/// The SQLSTATE of the first database error in `e`'s chain of causes (refinery and other
/// wrappers keep the tokio-postgres error as a source).
pub fn sqlstate(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut current = Some(e);
    while let Some(error) = current {
        if let Some(pg) = error.downcast_ref::<tokio_postgres::Error>() {
            if let Some(db) = pg.as_db_error() {
                return Some(db.code().code().to_string());
            }
        }
        // A transparent wrapper forwards to the tokio-postgres error's own source.
        if let Some(db) = error.downcast_ref::<tokio_postgres::error::DbError>() {
            return Some(db.code().code().to_string());
        }
        current = error.source();
    }
    None
}

/// The error and its causes on one line: tokio-postgres puts the useful part
/// ("connection refused", "server does not support TLS") in the source.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

/// How often a step that lost a race is tried in all, and the first pause (doubled after
/// each try, at most [`MAX_PAUSE`]): about 10 s of pauses in all, enough for the short
/// transactions it races (another process's migration, a writer deciding on uncounted
/// rows, an index build's wait) to end.
pub const ATTEMPTS: u32 = 10;
const FIRST_PAUSE: Duration = Duration::from_millis(100);
const MAX_PAUSE: Duration = Duration::from_secs(2);

/// Runs `attempt` until it does not fail with [`DbError::Conflict`], at most [`ATTEMPTS`]
/// times with a growing pause between, logging each retry with `what` was tried. Every
/// other outcome is returned as it is; so is the last conflict.
pub async fn retry_conflicts<T, F, Fut>(what: &str, mut attempt: F) -> Result<T, DbError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, DbError>>,
{
    let mut pause = FIRST_PAUSE;
    for tried in 1.. {
        match attempt().await {
            Err(DbError::Conflict(message)) if tried < ATTEMPTS => {
                tracing::warn!(
                    step = what,
                    error = %message,
                    attempt = tried,
                    of = ATTEMPTS,
                    pause_ms = pause.as_millis() as u64,
                    "lost a race with another session; trying again"
                );
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_PAUSE);
            }
            other => return other,
        }
    }
    unreachable!("the loop returns by the last attempt")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[tokio::test(start_paused = true)]
    async fn conflicts_are_retried_and_other_errors_are_not() {
        let calls = Cell::new(0);
        let result = retry_conflicts("step", || {
            calls.set(calls.get() + 1);
            let n = calls.get();
            async move {
                if n < 3 {
                    Err(DbError::Conflict("40P01: deadlock detected".into()))
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!(result.unwrap(), 3);

        calls.set(0);
        let result: Result<(), _> = retry_conflicts("step", || {
            calls.set(calls.get() + 1);
            async { Err(DbError::Internal("23505: duplicate key".into())) }
        })
        .await;
        assert!(matches!(result, Err(DbError::Internal(_))));
        assert_eq!(calls.get(), 1);

        calls.set(0);
        let result: Result<(), _> = retry_conflicts("step", || {
            calls.set(calls.get() + 1);
            async { Err(DbError::Conflict("55P03: lock timeout".into())) }
        })
        .await;
        assert!(matches!(result, Err(DbError::Conflict(_))));
        assert_eq!(calls.get(), ATTEMPTS);
    }
}
