//! The time window of a query: which `event_time`s it covers, from `since`/`until` and
//! the default look-back.

use crate::params::values::representable;
use std::time::Duration;

/// The interval of `event_time` (Unix seconds) a query covers: `since ≤ event_time ≤ until`,
/// with no lower bound when `since` is `None`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    pub since: Option<f64>,
    pub until: f64,
}

impl Window {
    /// `[now − default_window, now]` (a window reaching past PostgreSQL's first timestamp
    /// has no lower bound).
    pub fn default_at(now: f64, default_window: Duration) -> Window {
        Window {
            since: Some(representable(now - default_window.as_secs_f64())),
            until: now,
        }
    }

    /// The window of the given `since`/`until` parameters: neither → the default window;
    /// only `since` → `[since, now]`; only `until` → everything up to `until`; both →
    /// `[since, until]`.
    pub fn resolve(
        since: Option<f64>,
        until: Option<f64>,
        now: f64,
        default_window: Duration,
    ) -> Window {
        match (since, until) {
            (None, None) => Window::default_at(now, default_window),
            (since, until) => Window {
                since,
                until: until.unwrap_or(now),
            },
        }
    }

    /// True when no time can be in the window (`since > until`): the answer is empty and
    /// the database need not be asked.
    pub fn is_empty(&self) -> bool {
        matches!(self.since, Some(since) if since > self.until)
    }

    #[cfg(test)]
    pub fn contains(&self, time: f64) -> bool {
        self.since.is_none_or(|since| since <= time) && time <= self.until
    }
}
