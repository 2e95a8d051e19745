//! Freshness of a posted body, for operators who want a signature to expire: a signed body
//! carries its own `timestamp`, so with `POST_MAX_AGE` set a body older than that (or from
//! further ahead than a clock can drift) is refused, as Stripe, Slack and AWS bound the life
//! of a signed request. A replay of a fresh body is stopped by the receipts
//! (`migrations/V6__post_receipts.sql`); this bounds how long a body found in a log is
//! worth anything at all, even to a database restored without them.

use crate::web::ApiError;
use std::time::Duration;

/// How far ahead of the server's clock a `timestamp` may be: the testers' clocks drift too.
pub const FUTURE_TOLERANCE: Duration = Duration::from_secs(300);

/// Whether a body stamped `timestamp` (Unix seconds; `None`: absent) may be stored at `now`
/// (Unix seconds) when bodies may be `max_age` old. Both edges are accepted: exactly
/// `max_age` old, exactly `FUTURE_TOLERANCE` ahead.
pub fn check(timestamp: Option<i64>, now: f64, max_age: Duration) -> Result<(), ApiError> {
    let Some(stamped) = timestamp else {
        return Err(ApiError::BadRequest(format!(
            "timestamp is required: this server refuses posts older than {} s (POST_MAX_AGE)",
            max_age.as_secs_f64()
        )));
    };
    let age = now - stamped as f64;
    if age > max_age.as_secs_f64() {
        return Err(ApiError::BadRequest(format!(
            "timestamp {stamped} is too old: {} s before the server's time {}, and this server \
             accepts posts up to {} s old (POST_MAX_AGE)",
            age.floor(),
            now.floor(),
            max_age.as_secs_f64()
        )));
    }
    if -age > FUTURE_TOLERANCE.as_secs_f64() {
        return Err(ApiError::BadRequest(format!(
            "timestamp {stamped} is in the future: {} s after the server's time {}, more than \
             the {} s a clock may be ahead",
            (-age).ceil(),
            now.floor(),
            FUTURE_TOLERANCE.as_secs()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);
    const NOW: f64 = 1_796_230_000.0;

    fn refusal(timestamp: Option<i64>, now: f64) -> String {
        match check(timestamp, now, HOUR) {
            Err(ApiError::BadRequest(message)) => message,
            other => panic!("{timestamp:?} at {now}: {other:?}"),
        }
    }

    #[test]
    fn the_window_holds_both_edges_and_nothing_beyond() {
        let now = NOW as i64;
        for accepted in [now, now - 3600, now + 300, now - 1, now + 1] {
            assert!(check(Some(accepted), NOW, HOUR).is_ok(), "{accepted}");
        }
        assert!(refusal(Some(now - 3601), NOW).contains("too old"));
        assert!(refusal(Some(now + 301), NOW).contains("in the future"));
        // The server's clock between two seconds: the age is taken exactly.
        assert!(check(Some(now - 3600), NOW + 0.5, HOUR).is_err());
        assert!(check(Some(now + 300), NOW - 0.5, HOUR).is_err());
    }

    #[test]
    fn refusals_say_which_edge_and_the_numbers() {
        let old = refusal(Some(NOW as i64 - 7200), NOW);
        assert!(
            old.contains("7200 s before the server's time 1796230000"),
            "{old}"
        );
        assert!(old.contains("up to 3600 s old (POST_MAX_AGE)"), "{old}");
        let ahead = refusal(Some(NOW as i64 + 900), NOW);
        assert!(ahead.contains("900 s after the server's time"), "{ahead}");
        assert!(ahead.contains("the 300 s a clock may be ahead"), "{ahead}");
        let missing = refusal(None, NOW);
        assert!(missing.starts_with("timestamp is required"), "{missing}");
        // The original's stand-in for an absent timestamp is 1970: too old.
        assert!(refusal(Some(0), NOW).contains("too old"));
        // Extremes do not overflow.
        assert!(refusal(Some(i64::MIN), NOW).contains("too old"));
        assert!(refusal(Some(i64::MAX), NOW).contains("in the future"));
    }
}
