//! The time buckets of `/api/score_history`: how a window is widened to whole Unix-aligned
//! buckets of its interval, and the bound on the size of an answer. Pure, so the
//! arithmetic (floor division before 1970 included) is tested on its own.

use crate::params::{representable, Interval, Window};
use crate::web::error::ApiError;

/// The most points one answer may hold; a request that could exceed it is refused with
/// a 400 saying how to narrow it.
pub const MAX_POINTS: u64 = 100_000;

/// The start of the bucket of width `span` holding `t`: floor division, also for times
/// before 1970 (where `/` would round towards zero).
pub fn bucket_of(t: i64, span: i64) -> i64 {
    t.div_euclid(span) * span
}

/// The whole buckets a request covers: starts in `[lo, hi)`, each `interval` wide; `None`
/// for an unbounded side.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Buckets {
    pub interval: Interval,
    pub lo: Option<i64>,
    pub hi: Option<i64>,
}

impl Buckets {
    /// `window` widened outward to whole buckets: from the start of the bucket holding
    /// `since` to the end of the bucket holding `until`. `None` when nothing can be in it
    /// (`since > until`, or `until` before every representable time).
    pub fn of(window: &Window, interval: Interval) -> Option<Buckets> {
        if window.is_empty() || window.until == f64::NEG_INFINITY {
            return None;
        }
        let width = interval.seconds() as f64;
        // Within PostgreSQL's timestamps (see params/values.rs), so these are exact in i64.
        let lo = window
            .since
            .filter(|s| s.is_finite())
            .map(|s| (s / width).floor() as i64 * interval.seconds());
        let hi = Some(window.until)
            .filter(|u| u.is_finite())
            .map(|u| (u / width).floor() as i64 * interval.seconds() + interval.seconds());
        Some(Buckets { interval, lo, hi })
    }

    /// The bucket bounds as the bigints the rollups hold. An open side is half of the
    /// bigint range: beyond any stored bucket, and the queries may still add or take
    /// away a span without overflowing.
    pub fn bounds(&self) -> (i64, i64) {
        (
            self.lo.unwrap_or(i64::MIN / 2),
            self.hi.unwrap_or(i64::MAX / 2),
        )
    }

    /// The bounds as Unix seconds, for `event_time` (an open side is infinite, and so is
    /// a bound widened past PostgreSQL's timestamps, where nothing is stored).
    pub fn seconds(&self) -> (f64, f64) {
        (
            self.lo
                .map_or(f64::NEG_INFINITY, |lo| representable(lo as f64)),
            self.hi.map_or(f64::INFINITY, |hi| representable(hi as f64)),
        )
    }

    /// At most how many points an answer has when `groups` (orchestrator, region) groups
    /// have data whose buckets (of any span) start in `[first, last]` (so the data lies
    /// before `last + 6 h`, the largest span): every group in every bucket of the overlap.
    pub fn most_points(&self, groups: i64, first: i64, last: i64) -> u64 {
        let width = i128::from(self.interval.seconds());
        let (lo, hi) = self.bounds();
        let start = i128::from(lo).max(i128::from(bucket_of(first, self.interval.seconds())));
        let end = i128::from(hi).min(i128::from(last) + 21_600);
        if end <= start || groups <= 0 {
            return 0;
        }
        let buckets = (end - start + width - 1) / width;
        u64::try_from(buckets * i128::from(groups)).unwrap_or(u64::MAX)
    }
}

impl Buckets {
    /// How many buckets the window holds; `None` when a side is open.
    pub fn count(&self) -> Option<u64> {
        let (lo, hi) = (self.lo?, self.hi?);
        u64::try_from((hi - lo) / self.interval.seconds()).ok()
    }

    /// Whether the answer fits in [`MAX_POINTS`] whatever the data, when at most
    /// `groups` (orchestrator, region) groups can be in it (one orchestrator: at most the
    /// job type's regions), so the data need not be counted first.
    pub fn fits(&self, groups: u64) -> bool {
        self.count()
            .is_some_and(|n| n.saturating_mul(groups) <= MAX_POINTS)
    }
}

/// The 400 of an answer that could exceed [`MAX_POINTS`].
pub fn too_many_points(points: u64) -> ApiError {
    ApiError::BadRequest(format!(
        "score_history would answer up to {points} points, more than {MAX_POINTS}: narrow it \
         with an orchestrator, a region, a larger interval (6h or 1d) or a shorter window \
         (since/until)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_floor_also_before_1970() {
        assert_eq!(bucket_of(7199, 3600), 3600);
        assert_eq!(bucket_of(7200, 3600), 7200);
        assert_eq!(bucket_of(0, 3600), 0);
        assert_eq!(bucket_of(-1, 3600), -3600);
        assert_eq!(bucket_of(-3600, 3600), -3600);
        assert_eq!(bucket_of(-21_600, 86_400), -86_400);
    }

    #[test]
    fn windows_widen_outward_to_whole_buckets() {
        let w = |since: Option<f64>, until: f64| Window { since, until };
        let day = 86_400;
        let b = Buckets::of(&w(Some(1_700_000_000.5), 1_700_003_600.0), Interval::Hour).unwrap();
        assert_eq!(b.lo, Some(1_699_999_200));
        // An `until` on an edge is in the bucket that starts there.
        assert_eq!(b.hi, Some(1_700_006_400));
        let b = Buckets::of(&w(Some(-1.5), 10.0), Interval::Day).unwrap();
        assert_eq!((b.lo, b.hi), (Some(-day), Some(day)));
        assert_eq!(b.seconds(), (-86_400.0, 86_400.0));
        let b = Buckets::of(&w(None, f64::INFINITY), Interval::SixHours).unwrap();
        assert_eq!((b.lo, b.hi), (None, None));
        assert_eq!(b.bounds(), (i64::MIN / 2, i64::MAX / 2));
        assert_eq!(b.seconds(), (f64::NEG_INFINITY, f64::INFINITY));
        // Widened past PostgreSQL's last timestamp: no bound for event_time.
        let last = 9_224_318_016_000.0 - 86_400.0;
        let b = Buckets::of(&w(Some(last - 10.0), last), Interval::Day).unwrap();
        assert_eq!(b.seconds(), (last - 86_400.0, f64::INFINITY));
        assert!(Buckets::of(&w(Some(10.0), 5.0), Interval::Hour).is_none());
        assert!(Buckets::of(&w(None, f64::NEG_INFINITY), Interval::Hour).is_none());
        let b = Buckets::of(&w(Some(f64::NEG_INFINITY), 0.0), Interval::Hour).unwrap();
        assert_eq!((b.lo, b.hi), (None, Some(3600)));
    }

    #[test]
    fn the_bound_on_points_counts_the_overlap_of_window_and_data() {
        let window = Window {
            since: Some(0.0),
            until: 7.0 * 86_400.0 - 1.0,
        };
        let b = Buckets::of(&window, Interval::Hour).unwrap();
        // Data everywhere: 168 buckets per group.
        assert_eq!(b.most_points(10, -86_400, 30 * 86_400), 1680);
        // Data in one 6 h bucket only: at most 6 hours of it.
        assert_eq!(b.most_points(10, 21_600, 21_600), 60);
        assert_eq!(b.most_points(0, 0, 86_400), 0);
        assert_eq!(b.most_points(3, 30 * 86_400, 31 * 86_400), 0);
        // Unbounded windows are bounded by the data.
        let open = Buckets::of(
            &Window {
                since: None,
                until: f64::INFINITY,
            },
            Interval::Day,
        )
        .unwrap();
        assert_eq!(open.most_points(2, 0, 86_400 * 9), 2 * 10);
        let years = Buckets::of(
            &Window {
                since: Some(0.0),
                until: 1_700_000_000.0,
            },
            Interval::Hour,
        )
        .unwrap();
        assert!(years.most_points(1, 0, 1_700_000_000) > MAX_POINTS);
        assert_eq!(b.count(), Some(168));
        assert!(b.fits(595) && !b.fits(596));
        assert_eq!(open.count(), None);
        assert!(!open.fits(1));
        assert!(!years.fits(1));
        match too_many_points(123_456) {
            ApiError::BadRequest(m) => {
                assert!(m.contains("123456 points, more than 100000"), "{m}");
                assert!(m.contains("orchestrator") && m.contains("interval"), "{m}");
            }
            other => panic!("{other:?}"),
        }
    }
}
