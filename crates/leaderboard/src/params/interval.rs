//! The `interval` parameter of `/api/score_history`: the width of a point.

use crate::params::values::echo;
use crate::web::error::ApiError;

/// The width of a point of the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Interval {
    Hour,
    SixHours,
    Day,
}

impl Interval {
    /// The `interval` parameter: `1h`, `6h` or `1d`, or the same in seconds (`3600`,
    /// `21600`, `86400`); surrounding whitespace is ignored; absent or empty → `1h`.
    pub fn parse(value: Option<&str>) -> Result<Interval, ApiError> {
        match value.map(str::trim) {
            None | Some("") | Some("1h") | Some("3600") => Ok(Interval::Hour),
            Some("6h") | Some("21600") => Ok(Interval::SixHours),
            Some("1d") | Some("86400") => Ok(Interval::Day),
            Some(other) => Err(ApiError::BadRequest(format!(
                "invalid interval: {} (allowed: 1h, 6h, 1d, or in seconds 3600, 21600, 86400)",
                echo(other)
            ))),
        }
    }

    pub fn seconds(self) -> i64 {
        match self {
            Interval::Hour => 3600,
            Interval::SixHours => 21_600,
            Interval::Day => 86_400,
        }
    }

    /// The span of migration V4's `event_buckets` a point is added up from: the largest
    /// that divides the interval (both are aligned to Unix time, so a day is four whole
    /// 6 h buckets).
    pub fn source_span(self) -> i32 {
        match self {
            Interval::Hour => 3600,
            Interval::SixHours | Interval::Day => 21_600,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Interval::Hour => "1h",
            Interval::SixHours => "6h",
            Interval::Day => "1d",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(result: Result<Interval, ApiError>) -> String {
        match result {
            Err(ApiError::BadRequest(message)) => message,
            other => panic!("expected a bad request, got {other:?}"),
        }
    }

    #[test]
    fn intervals_by_name_and_in_seconds() {
        for (text, interval) in [
            (None, Interval::Hour),
            (Some(""), Interval::Hour),
            (Some(" "), Interval::Hour),
            (Some("1h"), Interval::Hour),
            (Some("3600"), Interval::Hour),
            (Some("6h"), Interval::SixHours),
            (Some(" 21600 "), Interval::SixHours),
            (Some("1d"), Interval::Day),
            (Some("86400"), Interval::Day),
        ] {
            assert_eq!(Interval::parse(text).unwrap(), interval, "{text:?}");
        }
        for text in ["1H", "2h", "60m", "3600.0", "1w", "-3600", "86400s"] {
            assert_eq!(
                message(Interval::parse(Some(text))),
                format!(
                    "invalid interval: {text} (allowed: 1h, 6h, 1d, or in seconds 3600, 21600, 86400)"
                )
            );
        }
        assert_eq!(
            Interval::Day.seconds() % i64::from(Interval::Day.source_span()),
            0
        );
        assert_eq!(Interval::SixHours.source_span(), 21_600);
        assert_eq!(Interval::Hour.source_span(), 3600);
        assert_eq!(Interval::Day.name(), "1d");
    }
}
