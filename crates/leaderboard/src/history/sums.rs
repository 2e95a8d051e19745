//! A point's sums added up in Rust exactly as PostgreSQL's float8 `sum` and `/` would.

use crate::db::DbError;

/// One group's sums while [`history_averages`] adds its rows up, as PostgreSQL's `sum`
/// does: the float8 sums start from the first row's value and add the others in the
/// order the statement returns them (a span's rows in bucket order), so each is the
/// double `sum(float8)` gives over the rows in that order; the count is exact, as
/// `sum(bigint)` is. Where a point has several rows (`1d`: four 6 h rows) PostgreSQL's
/// grouping added them in whatever order its sort left them, so such a point can differ
/// from what it answered before in the last bit.
pub(crate) struct HistorySums {
    pub(crate) events: i128,
    pub(crate) success_rate: f64,
    pub(crate) round_trip_time: f64,
    pub(crate) seg_duration: f64,
}

/// PostgreSQL's float8 `+`: an overflow of finite values is its error, not infinity.
pub(crate) fn float8_add(a: f64, b: f64) -> Result<f64, DbError> {
    let sum = a + b;
    if sum.is_infinite() && a.is_finite() && b.is_finite() {
        return Err(DbError::Internal(
            "22003: value out of range: overflow".into(),
        ));
    }
    Ok(sum)
}

/// PostgreSQL's float8 `/` by a positive count: an overflow or an underflow to zero is
/// its error.
pub(crate) fn float8_div(a: f64, b: f64) -> Result<f64, DbError> {
    let quotient = a / b;
    if quotient.is_infinite() && a.is_finite() {
        return Err(DbError::Internal(
            "22003: value out of range: overflow".into(),
        ));
    }
    if quotient == 0.0 && a != 0.0 && b.is_finite() {
        return Err(DbError::Internal(
            "22003: value out of range: underflow".into(),
        ));
    }
    Ok(quotient)
}

#[cfg(test)]
mod tests {
    use super::{float8_add, float8_div};

    #[test]
    fn the_history_sums_fail_where_postgresql_float8_arithmetic_does() {
        assert_eq!(float8_add(0.5, 0.25).unwrap(), 0.75);
        assert!(float8_add(f64::MAX, f64::MAX).is_err());
        assert_eq!(float8_div(1.5, 3.0).unwrap(), 0.5);
        assert_eq!(float8_div(0.0, 3.0).unwrap(), 0.0);
        assert!(float8_div(f64::MIN_POSITIVE * f64::EPSILON, 4.0).is_err());
        assert!(float8_div(f64::MAX, 0.5).is_err());
    }
}
