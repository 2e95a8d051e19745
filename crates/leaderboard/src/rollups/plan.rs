//! How a time window is answered from the pre-aggregated buckets of migration V4: the
//! largest whole buckets in the middle, smaller ones towards the edges, and the raw events
//! of the ragged ends. Pure, so the split can be tested on its own.

/// Bucket spans in seconds, smallest first, as the triggers of migration V4 keep them.
pub const SPANS: [i64; 3] = [600, 3600, 21600];

/// A half-open range of bucket starts (Unix seconds): `lo <= bucket < hi`.
pub type Range = (i64, i64);

const EMPTY: Range = (0, 0);

/// The pieces a window `[since, until]` is answered from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    /// Per span of [`SPANS`], up to two ranges of whole buckets.
    pub buckets: [[Range; 2]; 3],
    /// Raw events with `raw_start.0 <= event_time < raw_start.1`.
    pub raw_start: (f64, f64),
    /// Raw events with `raw_end.0 <= event_time <= raw_end.1` (the window's end is inclusive).
    pub raw_end: (f64, f64),
}

fn ceil_to(t: f64, span: i64) -> f64 {
    let span = span as f64;
    (t / span).ceil() * span
}

fn floor_to(t: f64, span: i64) -> f64 {
    let span = span as f64;
    (t / span).floor() * span
}

/// A bucket bound as the bigint the tables hold; `as` saturates, which is what an
/// infinite bound needs.
fn bound(t: f64) -> i64 {
    t as i64
}

impl Plan {
    /// Splits `[since, until]`; `None` is unbounded on that side.
    pub fn of(since: Option<f64>, until: Option<f64>) -> Plan {
        let (s, u) = (
            since.unwrap_or(f64::NEG_INFINITY),
            until.unwrap_or(f64::INFINITY),
        );
        let mut plan = Plan {
            buckets: [[EMPTY; 2]; 3],
            raw_start: (s, s),
            raw_end: (s, u),
        };
        // [left, right) is what the spans from `level` on still have to cover.
        let (mut left, mut right) = (s, u);
        let mut level = None;
        for (i, span) in SPANS.iter().enumerate() {
            let (l, r) = (ceil_to(left, *span), floor_to(right, *span));
            if l.partial_cmp(&r) != Some(std::cmp::Ordering::Less) {
                break;
            }
            match level {
                None => {
                    plan.raw_start = (s, l);
                    plan.raw_end = (r, u);
                }
                Some(previous) => {
                    plan.buckets[previous] = [(bound(left), bound(l)), (bound(r), bound(right))];
                }
            }
            (left, right, level) = (l, r, Some(i));
        }
        if let Some(last) = level {
            plan.buckets[last] = [(bound(left), bound(right)), EMPTY];
        }
        plan
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How many pieces an event at `t` falls in: exactly one inside the window, none
    /// outside it.
    fn pieces(plan: &Plan, t: f64) -> usize {
        let mut n = 0;
        for (level, span) in SPANS.iter().enumerate() {
            let start = floor_to(t, *span);
            for (lo, hi) in plan.buckets[level] {
                if lo < hi && (lo as f64) <= start && start < hi as f64 {
                    n += 1;
                }
            }
        }
        n + usize::from(plan.raw_start.0 <= t && t < plan.raw_start.1)
            + usize::from(plan.raw_end.0 <= t && t <= plan.raw_end.1)
    }

    fn check(since: Option<f64>, until: Option<f64>) {
        let plan = Plan::of(since, until);
        let s = since.unwrap_or(1_700_000_000.0 - 200_000.0);
        let u = until.unwrap_or(1_700_000_000.0 + 200_000.0);
        let mut t = s - 30_000.25;
        while t <= u + 30_000.0 {
            let inside = since.is_none_or(|x| x <= t) && until.is_none_or(|x| t <= x);
            assert_eq!(
                pieces(&plan, t),
                usize::from(inside),
                "t={t} in {since:?}..{until:?}: {plan:?}"
            );
            t += 37.75;
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
            (Some(base - 50_000.5), Some(base + 90_000.75)),
            (None, Some(base + 123.456)),
            (Some(base), Some(base)),
            (Some(base + 600.0), Some(base + 1200.0)),
            (Some(base - 21_600.0), Some(base)),
        ] {
            check(since, until);
        }
    }

    #[test]
    fn the_default_window_is_mostly_six_hour_buckets() {
        let since = 1_700_000_030.5;
        let plan = Plan::of(Some(since), None);
        let [six_hours, _] = plan.buckets[2];
        assert_eq!(six_hours.1, i64::MAX);
        assert_eq!(six_hours.0 % 21_600, 0);
        assert!(six_hours.0 as f64 - since < 21_600.0);
        assert_eq!(plan.raw_start, (since, 1_700_000_400.0));
        assert!(plan.raw_end.0.is_infinite());
    }
}
