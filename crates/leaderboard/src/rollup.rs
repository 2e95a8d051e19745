//! How a time window is answered from the pre-aggregated buckets of migration V4:
//! whole hour buckets in the middle, whole minute buckets beside them, and the raw events
//! of the ragged edges. Pure, so the split can be tested on its own.

/// Bucket spans in seconds, as the triggers of migration V4 maintain them.
pub const MINUTE: i64 = 60;
pub const HOUR: i64 = 3600;

/// The pieces a window `[since, until]` is answered from. Bucket ranges are half-open
/// ranges of bucket starts (Unix seconds); raw ranges are event times.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    /// Hour buckets with `hours.0 <= bucket < hours.1`.
    pub hours: (i64, i64),
    /// Minute buckets in either range.
    pub minutes: [(i64, i64); 2],
    /// Raw events with `raw_start.0 <= event_time < raw_start.1`.
    pub raw_start: (f64, f64),
    /// Raw events with `raw_end.0 <= event_time <= raw_end.1` (the window's end is inclusive).
    pub raw_end: (f64, f64),
}

const EMPTY: (i64, i64) = (0, 0);

fn ceil_to(t: f64, span: i64) -> f64 {
    let span = span as f64;
    (t / span).ceil() * span
}

fn floor_to(t: f64, span: i64) -> f64 {
    let span = span as f64;
    (t / span).floor() * span
}

/// A bucket bound as the bigint the tables hold; infinities become the extremes.
fn bound(t: f64) -> i64 {
    if t.is_nan() {
        0
    } else {
        // `as` saturates, which is what an infinite bound needs.
        t as i64
    }
}

impl Plan {
    /// Splits `[since, until]`; `None` is unbounded on that side.
    pub fn of(since: Option<f64>, until: Option<f64>) -> Plan {
        let s = since.unwrap_or(f64::NEG_INFINITY);
        let u = until.unwrap_or(f64::INFINITY);
        let (a, b) = (ceil_to(s, MINUTE), floor_to(u, MINUTE));
        if a.partial_cmp(&b) != Some(std::cmp::Ordering::Less) {
            return Plan {
                hours: EMPTY,
                minutes: [EMPTY, EMPTY],
                raw_start: (s, s),
                raw_end: (s, u),
            };
        }
        let (c, d) = (ceil_to(a, HOUR), floor_to(b, HOUR));
        let (hours, minutes) = if c < d {
            (
                (bound(c), bound(d)),
                [(bound(a), bound(c)), (bound(d), bound(b))],
            )
        } else {
            (EMPTY, [(bound(a), bound(b)), EMPTY])
        };
        Plan {
            hours,
            minutes,
            raw_start: (s, a),
            raw_end: (b, u),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Which piece an event at `t` falls in: exactly one for every `t` in the window,
    /// none outside it.
    fn pieces(plan: &Plan, t: f64) -> usize {
        let in_bucket = |(lo, hi): (i64, i64), span: i64| {
            let start = floor_to(t, span);
            lo < hi && (lo as f64) <= start && start < hi as f64
        };
        [
            in_bucket(plan.hours, HOUR),
            in_bucket(plan.minutes[0], MINUTE),
            in_bucket(plan.minutes[1], MINUTE),
            plan.raw_start.0 <= t && t < plan.raw_start.1,
            plan.raw_end.0 <= t && t <= plan.raw_end.1,
        ]
        .iter()
        .filter(|&&x| x)
        .count()
    }

    fn check(since: Option<f64>, until: Option<f64>) {
        let plan = Plan::of(since, until);
        let s = since.unwrap_or(1_600_000_000.0 - 200_000.0);
        let u = until.unwrap_or(1_700_000_000.0 + 200_000.0);
        let mut t = s - 7300.25;
        while t <= u + 7300.0 {
            let inside = since.is_none_or(|x| x <= t) && until.is_none_or(|x| t <= x);
            assert_eq!(
                pieces(&plan, t),
                usize::from(inside),
                "t={t} in {since:?}..{until:?}: {plan:?}"
            );
            t += 29.75;
        }
        for edge in [since, until].into_iter().flatten() {
            assert_eq!(pieces(&plan, edge), 1, "edge {edge}: {plan:?}");
        }
    }

    #[test]
    fn every_instant_of_a_window_is_counted_exactly_once() {
        let base = 1_700_000_000.0;
        for (since, until) in [
            (Some(base - 86_400.0 + 0.123), None),
            (Some(base + 17.5), Some(base + 42.25)),
            (Some(base + 17.5), Some(base + 1800.0)),
            (Some(base - 3600.0), Some(base + 3600.0)),
            (Some(base - 5000.5), Some(base + 9000.75)),
            (None, Some(base + 123.456)),
            (Some(base), Some(base)),
            (Some(base + 60.0), Some(base + 120.0)),
        ] {
            check(since, until);
        }
    }

    #[test]
    fn the_default_window_uses_hours_and_needs_no_raw_end() {
        let plan = Plan::of(Some(1_700_000_030.5), None);
        assert_eq!(plan.hours.1, i64::MAX);
        assert!(plan.hours.0 % HOUR == 0 && plan.hours.0 > 1_700_000_030);
        assert_eq!(plan.raw_start, (1_700_000_030.5, 1_700_000_040.0));
        assert!(plan.raw_end.0.is_infinite());
    }
}
