//! Instants on the command line: read as Unix seconds (the API's unit) or RFC 3339, and
//! shown as RFC 3339 in UTC, so an operator can paste either from a log or a dashboard.

use crate::Failure;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// `raw` as Unix seconds: a number (fractions allowed) or an RFC 3339 date-time with its
/// offset (`2026-12-07T10:00:00Z`); `flag` names it in the error.
pub(crate) fn parse(flag: &str, raw: &str) -> Result<f64, Failure> {
    let raw = raw.trim();
    if let Ok(seconds) = raw.parse::<f64>() {
        if seconds.is_finite() {
            return Ok(seconds);
        }
    }
    OffsetDateTime::parse(raw, &Rfc3339)
        .map(|t| t.unix_timestamp_nanos() as f64 / 1e9)
        .map_err(|_| {
            Failure::usage(format!(
                "{flag} {raw:?} is neither Unix seconds nor an RFC 3339 time such as 2026-12-07T10:00:00Z"
            ))
        })
}

/// Unix seconds as RFC 3339 in UTC (whole seconds unless there is a fraction).
pub(crate) fn rfc3339(seconds: f64) -> String {
    let nanos = (seconds * 1e9).round() as i128;
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| format!("{seconds} (Unix seconds)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_seconds_and_rfc3339_read_alike() {
        assert_eq!(parse("--since", "1796230000").ok(), Some(1_796_230_000.0));
        assert_eq!(
            parse("--since", " 1796230000.5 ").ok(),
            Some(1_796_230_000.5)
        );
        assert_eq!(
            parse("--since", "2026-12-02T16:46:40Z").ok(),
            Some(1_796_230_000.0)
        );
        assert_eq!(
            parse("--since", "2026-12-02T17:46:40+01:00").ok(),
            Some(1_796_230_000.0)
        );
        for bad in ["yesterday", "2026-12-02", "2026-12-02 16:46:40", "inf", ""] {
            let failure = parse("--until", bad).expect_err(bad);
            assert!(failure.message.contains("--until"), "{bad}");
        }
    }

    #[test]
    fn shown_in_utc() {
        assert_eq!(rfc3339(1_796_230_000.0), "2026-12-02T16:46:40Z");
        assert_eq!(rfc3339(0.25), "1970-01-01T00:00:00.25Z");
    }
}
