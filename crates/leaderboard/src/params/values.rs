//! The rules for one parameter's value, shared by every route: trimming, case, NUL,
//! times, the job type, and how much of a refused value an error repeats.

use crate::web::error::ApiError;

/// How many characters of a refused value an error message repeats.
const ECHO_CHARS: usize = 64;

/// Unix seconds a day inside PostgreSQL's first and last timestamps (julian day 0 and the
/// start of 294277): `to_timestamp` refuses anything beyond them, so a bound out there is
/// replaced by an infinite one, which means the same as no stored time lies past it.
const TIMESTAMP_MIN: f64 = -210_866_803_200.0 + 86_400.0;
const TIMESTAMP_MAX: f64 = 9_224_318_016_000.0 - 86_400.0;

/// `seconds`, or the infinity on its side when PostgreSQL can not represent it.
pub(crate) fn representable(seconds: f64) -> f64 {
    if seconds < TIMESTAMP_MIN {
        f64::NEG_INFINITY
    } else if seconds > TIMESTAMP_MAX {
        f64::INFINITY
    } else {
        seconds
    }
}
/// The job type of a query; [`JobType::as_str`] is its name in the `job_types` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobType {
    Transcoding,
    Ai,
}

impl JobType {
    pub fn as_str(self) -> &'static str {
        match self {
            JobType::Transcoding => "transcoding",
            JobType::Ai => "ai",
        }
    }
}
pub(crate) fn bad(message: &str) -> ApiError {
    ApiError::BadRequest(message.to_string())
}

/// A refused value as an error message repeats it: at most [`ECHO_CHARS`] characters.
pub(crate) fn echo(value: &str) -> String {
    match value.char_indices().nth(ECHO_CHARS) {
        Some((end, _)) => format!("{}…", &value[..end]),
        None => value.to_string(),
    }
}

/// Trimmed; empty → `None`.
pub(crate) fn trimmed(value: Option<String>) -> Option<String> {
    value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

pub(crate) fn orchestrator(value: Option<String>) -> Option<String> {
    trimmed(value).map(|v| v.to_lowercase())
}

pub(crate) fn region(value: Option<String>) -> Option<String> {
    trimmed(value).map(|v| v.to_uppercase())
}

/// As decoded; empty → `None`.
pub(crate) fn exact(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
}

/// PostgreSQL text can not hold NUL: refused here rather than failing the query.
pub(crate) fn no_nul(name: &str, value: &Option<String>) -> Result<(), ApiError> {
    match value {
        Some(v) if v.contains('\0') => Err(ApiError::BadRequest(format!(
            "{name} must not contain NUL characters"
        ))),
        _ => Ok(()),
    }
}

/// Unix seconds as given, out-of-range values made infinite (see [`representable`]).
pub(crate) fn parse_time(name: &str, value: Option<&str>) -> Result<Option<f64>, ApiError> {
    let Some(value) = value else { return Ok(None) };
    let text = value.trim();
    if text.is_empty() {
        return Ok(None);
    }
    // f64's parser also takes `inf`, `infinity` and `NaN`: only digits, a point, signs
    // and an exponent are let through to it.
    let plain = text
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'+' | b'-' | b'e' | b'E'));
    match text.parse::<f64>() {
        Ok(seconds) if plain && seconds.is_finite() => Ok(Some(representable(seconds))),
        _ => Err(ApiError::BadRequest(format!(
            "invalid {name}: {}",
            echo(value)
        ))),
    }
}

pub(crate) fn parse_job_type(value: Option<&str>) -> Result<Option<JobType>, ApiError> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some("transcoding") => Ok(Some(JobType::Transcoding)),
        Some("ai") => Ok(Some(JobType::Ai)),
        Some(other) => Err(ApiError::BadRequest(format!(
            "invalid job_type: {} (allowed: transcoding, ai)",
            echo(other)
        ))),
    }
}
