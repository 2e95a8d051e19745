//! The query parameters of the GET routes (docs/api.md, "Query strings"), parsed from the
//! raw query string. Pure: the caller passes the current time and `START_TIME_WINDOW`.
//!
//! Each route has its constructor ([`Params::aggregated_stats`], [`Params::raw_stats`],
//! [`Params::pipelines`], [`Params::top_ai_score`], [`Params::score_history`]) that reads only the parameters the
//! route documents; the others are ignored, never an error.
//!
//! Rules where the contract is silent:
//! - The query string is `application/x-www-form-urlencoded`: `+` is a space, `%XX` is
//!   decoded (invalid UTF-8 becomes U+FFFD), a raw `/` is kept. A `+` that is meant
//!   literally must therefore be sent as `%2B`.
//! - Names are case-sensitive; unknown names are ignored.
//! - A repeated parameter: the first occurrence wins, even when it is empty.
//! - An empty value is the same as an absent parameter (for `orchestrator`, `region`,
//!   `since`, `until` and `job_type` after trimming surrounding whitespace; `model` and
//!   `pipeline` are taken exactly as decoded).
//! - `since`/`until`: any finite number written with digits, `.`, a sign and an optional
//!   exponent (`1726864722`, `1726864722.25`, `.5`, `-1`, `1.7e9`); `inf`, `NaN`, hex and
//!   anything that overflows to infinity (`1e999`) are refused.
//! - `job_type` is case-sensitive (`transcoding` or `ai`, the names of the `job_types`
//!   table).
//! - A value the route reads must not contain NUL (PostgreSQL text can not hold it, so
//!   nothing stored can match it): 400 `<name> must not contain NUL characters`.
//! - A time beyond PostgreSQL's timestamps (before 4713 BC, after 294276 AD) is the same
//!   as no bound on that side, since nothing stored lies there.

use std::time::Duration;

use crate::error::ApiError;
use crate::history::Interval;

/// The default window of `/api/score_history`: the last 7 days.
pub const HISTORY_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);

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

/// The parsed parameters of a GET route.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    /// Trimmed, lower-cased.
    pub orchestrator: Option<String>,
    /// Trimmed, upper-cased.
    pub region: Option<String>,
    pub model: Option<String>,
    pub pipeline: Option<String>,
    pub job_type: JobType,
    /// `since` as given in the query (for cache keys); use [`Params::window`] to filter.
    pub since: Option<f64>,
    /// `until` as given in the query (for cache keys); use [`Params::window`] to filter.
    pub until: Option<f64>,
    /// The resolved time window.
    pub window: Window,
}

/// What identifies the answer to a set of parameters independently of the current time
/// (the window is keyed by the `since`/`until` given, not by the resolved bounds), e.g.
/// for the per-parameter cache of `/api/pipelines`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    pub orchestrator: Option<String>,
    pub region: Option<String>,
    pub model: Option<String>,
    pub pipeline: Option<String>,
    pub job_type: JobType,
    /// Bit patterns of `since`/`until` (−0 counted as 0).
    pub since: Option<u64>,
    pub until: Option<u64>,
}

impl Params {
    /// Every shared parameter, validated, with the job type rule: `ai` when `model` or
    /// `pipeline` is given, otherwise `transcoding`, unless `job_type` says otherwise;
    /// `job_type=transcoding` together with `model`/`pipeline` is refused.
    pub fn parse(
        query: Option<&str>,
        now: f64,
        default_window: Duration,
    ) -> Result<Params, ApiError> {
        let raw = Raw::decode(query);
        let since = parse_time("since", raw.since.as_deref())?;
        let until = parse_time("until", raw.until.as_deref())?;
        for (name, value) in [
            ("orchestrator", &raw.orchestrator),
            ("region", &raw.region),
            ("model", &raw.model),
            ("pipeline", &raw.pipeline),
        ] {
            no_nul(name, value)?;
        }
        let model = exact(raw.model);
        let pipeline = exact(raw.pipeline);
        let ai_filter = model.is_some() || pipeline.is_some();
        let job_type = match parse_job_type(raw.job_type.as_deref())? {
            Some(JobType::Transcoding) if ai_filter => {
                return Err(ApiError::BadRequest(
                    "job_type transcoding can not be combined with model or pipeline".into(),
                ))
            }
            Some(job_type) => job_type,
            None if ai_filter => JobType::Ai,
            None => JobType::Transcoding,
        };
        Ok(Params {
            orchestrator: orchestrator(raw.orchestrator),
            region: region(raw.region),
            model,
            pipeline,
            job_type,
            since,
            until,
            window: Window::resolve(since, until, now, default_window),
        })
    }

    /// `/api/aggregated_stats`: [`Params::parse`], then `model` and `pipeline` go together
    /// (`pipeline required` / `model required`), and `job_type=ai` needs both.
    pub fn aggregated_stats(
        query: Option<&str>,
        now: f64,
        default_window: Duration,
    ) -> Result<Params, ApiError> {
        let params = Params::parse(query, now, default_window)?;
        match (&params.model, &params.pipeline) {
            (Some(_), None) => Err(bad("pipeline required")),
            (None, Some(_)) => Err(bad("model required")),
            (None, None) if params.job_type == JobType::Ai => {
                Err(bad("model and pipeline required for job_type ai"))
            }
            _ => Ok(params),
        }
    }

    /// `/api/score_history`: the parameters of [`Params::aggregated_stats`] with a default
    /// window of [`HISTORY_WINDOW`], and `interval` ([`Interval::parse`]).
    pub fn score_history(query: Option<&str>, now: f64) -> Result<(Params, Interval), ApiError> {
        let params = Params::aggregated_stats(query, now, HISTORY_WINDOW)?;
        let interval = Interval::parse(Raw::decode(query).interval.as_deref())?;
        Ok((params, interval))
    }

    /// `/api/raw_stats`: [`Params::parse`], then `orchestrator` is required and `model`
    /// needs `pipeline` (`pipeline` alone is every model of it).
    pub fn raw_stats(
        query: Option<&str>,
        now: f64,
        default_window: Duration,
    ) -> Result<Params, ApiError> {
        let params = Params::parse(query, now, default_window)?;
        if params.orchestrator.is_none() {
            return Err(bad("orchestrator is a required parameter"));
        }
        if params.model.is_some() && params.pipeline.is_none() {
            return Err(bad("pipeline required"));
        }
        Ok(params)
    }

    /// `/api/pipelines`: only `region`, `since` and `until`; the job type is `ai`.
    pub fn pipelines(
        query: Option<&str>,
        now: f64,
        default_window: Duration,
    ) -> Result<Params, ApiError> {
        let raw = Raw::decode(query);
        let since = parse_time("since", raw.since.as_deref())?;
        let until = parse_time("until", raw.until.as_deref())?;
        no_nul("region", &raw.region)?;
        Ok(Params {
            orchestrator: None,
            region: region(raw.region),
            model: None,
            pipeline: None,
            job_type: JobType::Ai,
            since,
            until,
            window: Window::resolve(since, until, now, default_window),
        })
    }

    /// `/api/top_ai_score`: only `orchestrator` (absent → the route answers `{}`), in the
    /// default window; the job type is `ai`. Fails only on a NUL in `orchestrator`.
    pub fn top_ai_score(
        query: Option<&str>,
        now: f64,
        default_window: Duration,
    ) -> Result<Params, ApiError> {
        let raw = Raw::decode(query);
        no_nul("orchestrator", &raw.orchestrator)?;
        Ok(Params {
            orchestrator: orchestrator(raw.orchestrator),
            region: None,
            model: None,
            pipeline: None,
            job_type: JobType::Ai,
            since: None,
            until: None,
            window: Window::default_at(now, default_window),
        })
    }

    /// True when the window is empty (`since > until`): answer with no data.
    pub fn is_empty(&self) -> bool {
        self.window.is_empty()
    }

    pub fn cache_key(&self) -> CacheKey {
        // Adding 0 turns −0 into +0 and leaves every other value alone.
        let bits = |x: Option<f64>| x.map(|x| (x + 0.0).to_bits());
        CacheKey {
            orchestrator: self.orchestrator.clone(),
            region: self.region.clone(),
            model: self.model.clone(),
            pipeline: self.pipeline.clone(),
            job_type: self.job_type,
            since: bits(self.since),
            until: bits(self.until),
        }
    }
}

/// The decoded values of the known parameters, first occurrence, not yet normalised.
#[derive(Default)]
struct Raw {
    orchestrator: Option<String>,
    region: Option<String>,
    since: Option<String>,
    until: Option<String>,
    model: Option<String>,
    pipeline: Option<String>,
    job_type: Option<String>,
    interval: Option<String>,
}

impl Raw {
    fn decode(query: Option<&str>) -> Raw {
        let mut raw = Raw::default();
        let pairs = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes());
        for (name, value) in pairs {
            let slot = match name.as_ref() {
                "orchestrator" => &mut raw.orchestrator,
                "region" => &mut raw.region,
                "since" => &mut raw.since,
                "until" => &mut raw.until,
                "model" => &mut raw.model,
                "pipeline" => &mut raw.pipeline,
                "job_type" => &mut raw.job_type,
                "interval" => &mut raw.interval,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(value.into_owned());
            }
        }
        raw
    }
}

fn bad(message: &str) -> ApiError {
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
fn trimmed(value: Option<String>) -> Option<String> {
    value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

fn orchestrator(value: Option<String>) -> Option<String> {
    trimmed(value).map(|v| v.to_lowercase())
}

fn region(value: Option<String>) -> Option<String> {
    trimmed(value).map(|v| v.to_uppercase())
}

/// As decoded; empty → `None`.
fn exact(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
}

/// PostgreSQL text can not hold NUL: refused here rather than failing the query.
fn no_nul(name: &str, value: &Option<String>) -> Result<(), ApiError> {
    match value {
        Some(v) if v.contains('\0') => Err(ApiError::BadRequest(format!(
            "{name} must not contain NUL characters"
        ))),
        _ => Ok(()),
    }
}

/// Unix seconds as given, out-of-range values made infinite (see [`representable`]).
fn parse_time(name: &str, value: Option<&str>) -> Result<Option<f64>, ApiError> {
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

fn parse_job_type(value: Option<&str>) -> Result<Option<JobType>, ApiError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: f64 = 1_726_900_000.5;
    const DAY: Duration = Duration::from_secs(24 * 3600);

    fn parse(query: &str) -> Params {
        Params::parse(Some(query), NOW, DAY).unwrap()
    }

    fn message(result: Result<Params, ApiError>) -> String {
        match result {
            Err(ApiError::BadRequest(message)) => message,
            other => panic!("expected a bad request, got {other:?}"),
        }
    }

    fn parse_err(query: &str) -> String {
        message(Params::parse(Some(query), NOW, DAY))
    }

    #[test]
    fn nothing_given() {
        for query in [None, Some(""), Some("&"), Some("unknown=1")] {
            let params = Params::parse(query, NOW, DAY).unwrap();
            assert_eq!(
                params,
                Params {
                    orchestrator: None,
                    region: None,
                    model: None,
                    pipeline: None,
                    job_type: JobType::Transcoding,
                    since: None,
                    until: None,
                    window: Window {
                        since: Some(NOW - 86400.0),
                        until: NOW
                    },
                }
            );
            assert!(!params.is_empty());
        }
    }

    #[test]
    fn orchestrator_and_region_are_trimmed_and_cased() {
        let params = parse("orchestrator=%20%200xAbC%09&region=+fra+");
        assert_eq!(params.orchestrator.as_deref(), Some("0xabc"));
        assert_eq!(params.region.as_deref(), Some("FRA"));
        let params = parse("orchestrator=+++&region=%20");
        assert_eq!(params.orchestrator, None);
        assert_eq!(params.region, None);
    }

    #[test]
    fn model_and_pipeline_are_exact() {
        let expected_pipeline = Some("Image to video");
        let expected_model = Some("stabilityai/stable-video-diffusion-img2vid-xt-1-1");
        for query in [
            "pipeline=Image%20to%20video&model=stabilityai/stable-video-diffusion-img2vid-xt-1-1",
            "pipeline=Image+to+video&model=stabilityai%2Fstable-video-diffusion-img2vid-xt-1-1",
        ] {
            let params = parse(query);
            assert_eq!(params.pipeline.as_deref(), expected_pipeline);
            assert_eq!(params.model.as_deref(), expected_model);
            assert_eq!(params.job_type, JobType::Ai);
        }
        let params = parse("model=+A%2Bb+&pipeline=%20");
        assert_eq!(params.model.as_deref(), Some(" A+b "));
        assert_eq!(params.pipeline.as_deref(), Some(" "));
        let params = parse("model=&pipeline=");
        assert_eq!((params.model, params.pipeline), (None, None));
        assert_eq!(params.job_type, JobType::Transcoding);
    }

    #[test]
    fn invalid_utf8_does_not_panic() {
        let params = parse("model=%FF%FE&pipeline=%C3&orchestrator=%80");
        assert_eq!(params.model.as_deref(), Some("\u{FFFD}\u{FFFD}"));
        assert_eq!(params.pipeline.as_deref(), Some("\u{FFFD}"));
        assert_eq!(params.orchestrator.as_deref(), Some("\u{FFFD}"));
        assert!(parse_err("since=%FF").starts_with("invalid since: "));
    }

    #[test]
    fn first_occurrence_wins() {
        let params = parse("orchestrator=0xA&orchestrator=0xB&region=lax&region=fra");
        assert_eq!(params.orchestrator.as_deref(), Some("0xa"));
        assert_eq!(params.region.as_deref(), Some("LAX"));
        // Even when the first one is empty.
        assert_eq!(parse("region=&region=FRA").region, None);
        // Only the first is validated.
        assert_eq!(parse("since=1&since=x").since, Some(1.0));
        assert_eq!(parse_err("since=x&since=1"), "invalid since: x");
        // Names are case-sensitive.
        assert_eq!(parse("Region=FRA").region, None);
    }

    #[test]
    fn windows() {
        let params = parse("since=1726864722.25");
        assert_eq!(params.since, Some(1726864722.25));
        assert_eq!(params.until, None);
        assert_eq!(
            params.window,
            Window {
                since: Some(1726864722.25),
                until: NOW
            }
        );

        let params = parse("until=1726864722.75");
        assert_eq!(
            params.window,
            Window {
                since: None,
                until: 1726864722.75
            }
        );
        assert!(params.window.contains(-1e12));
        assert!(params.window.contains(1726864722.75));
        assert!(!params.window.contains(1726864722.8));

        let params = parse("since=100&until=200.5");
        assert_eq!(
            params.window,
            Window {
                since: Some(100.0),
                until: 200.5
            }
        );
        assert!(!params.is_empty());
        assert!(params.window.contains(100.0) && params.window.contains(200.5));
        assert!(!params.window.contains(99.9));

        assert!(parse("since=200&until=100").is_empty());
        assert!(!parse("since=100&until=100").is_empty());
        assert!(parse(&format!("since={}", NOW + 1.0)).is_empty());
        assert!(!parse("until=-5").is_empty());

        let window = Window::default_at(NOW, Duration::from_secs(3600));
        assert_eq!(window.since, Some(NOW - 3600.0));
        assert_eq!(window.until, NOW);
    }

    #[test]
    fn number_forms() {
        for (text, value) in [
            ("1726864722", 1726864722.0),
            ("1726864722.", 1726864722.0),
            ("+1726864722.25", 1726864722.25),
            (".5", 0.5),
            ("-1", -1.0),
            ("1.7e9", 1.7e9),
            ("1E3", 1000.0),
            ("%201%20", 1.0),
            ("-0", 0.0),
        ] {
            assert_eq!(parse(&format!("since={text}")).since, Some(value), "{text}");
            assert_eq!(parse(&format!("until={text}")).until, Some(value), "{text}");
        }
        // Empty is absent.
        assert_eq!(parse("since=&until=+").since, None);
    }

    #[test]
    fn bad_numbers() {
        for (text, echoed) in [
            ("abc", "abc"),
            ("NaN", "NaN"),
            ("inf", "inf"),
            ("-infinity", "-infinity"),
            ("1e999", "1e999"),
            ("0x10", "0x10"),
            ("1_000", "1_000"),
            ("1,5", "1,5"),
            ("1.2.3", "1.2.3"),
            ("e5", "e5"),
            ("--1", "--1"),
            ("2024-09-20", "2024-09-20"),
        ] {
            assert_eq!(
                parse_err(&format!("since={text}")),
                format!("invalid since: {echoed}")
            );
            assert_eq!(
                parse_err(&format!("until={text}")),
                format!("invalid until: {echoed}")
            );
        }
        let long = "9".repeat(400) + "x";
        let message = parse_err(&format!("until={long}"));
        assert_eq!(message, format!("invalid until: {}…", "9".repeat(64)));
        // Characters, not bytes: no panic on a multi-byte boundary.
        let long = "é".repeat(100);
        let message = parse_err(&format!("since={long}"));
        assert_eq!(message, format!("invalid since: {}…", "é".repeat(64)));
    }

    #[test]
    fn job_types() {
        assert_eq!(parse("job_type=ai").job_type, JobType::Ai);
        assert_eq!(parse("job_type=transcoding").job_type, JobType::Transcoding);
        assert_eq!(parse("job_type=").job_type, JobType::Transcoding);
        assert_eq!(parse("job_type=+ai+").job_type, JobType::Ai);
        assert_eq!(parse("pipeline=p").job_type, JobType::Ai);
        assert_eq!(parse("model=m").job_type, JobType::Ai);
        assert_eq!(
            parse("model=m&pipeline=p&job_type=ai").job_type,
            JobType::Ai
        );
        for value in ["AI", "video", "transcoding,ai"] {
            assert_eq!(
                parse_err(&format!("job_type={value}")),
                format!("invalid job_type: {value} (allowed: transcoding, ai)")
            );
        }
        let conflict = "job_type transcoding can not be combined with model or pipeline";
        assert_eq!(parse_err("job_type=transcoding&model=m"), conflict);
        assert_eq!(parse_err("job_type=transcoding&pipeline=p"), conflict);
        assert_eq!(JobType::Ai.as_str(), "ai");
        assert_eq!(JobType::Transcoding.as_str(), "transcoding");
    }

    #[test]
    fn aggregated_stats_rules() {
        let agg = |q: &str| Params::aggregated_stats(Some(q), NOW, DAY);
        assert_eq!(message(agg("model=m")), "pipeline required");
        assert_eq!(message(agg("pipeline=p")), "model required");
        assert_eq!(
            message(agg("job_type=ai")),
            "model and pipeline required for job_type ai"
        );
        assert_eq!(message(agg("since=x&model=m")), "invalid since: x");
        let params = agg("orchestrator=0xA&model=m&pipeline=p").unwrap();
        assert_eq!(params.job_type, JobType::Ai);
        assert_eq!(params.orchestrator.as_deref(), Some("0xa"));
        let params = Params::aggregated_stats(None, NOW, DAY).unwrap();
        assert_eq!(params.job_type, JobType::Transcoding);
    }

    #[test]
    fn score_history_rules() {
        let history = |q: &str| Params::score_history(Some(q), NOW);
        let (params, interval) = Params::score_history(None, NOW).unwrap();
        assert_eq!(interval, Interval::Hour);
        assert_eq!(params.window, Window::default_at(NOW, HISTORY_WINDOW));
        assert_eq!(params.window.since, Some(NOW - 7.0 * 86_400.0));
        let (params, interval) = history("interval=6h&model=m&pipeline=p&region=fra").unwrap();
        assert_eq!(interval, Interval::SixHours);
        assert_eq!(params.job_type, JobType::Ai);
        assert_eq!(params.region.as_deref(), Some("FRA"));
        assert_eq!(
            history("interval=86400&interval=x").unwrap().1,
            Interval::Day
        );
        // The parameters of aggregated_stats, with its errors, checked first.
        assert!(
            matches!(history("model=m&interval=1d"), Err(ApiError::BadRequest(m)) if m == "pipeline required")
        );
        assert!(
            matches!(history("since=x"), Err(ApiError::BadRequest(m)) if m == "invalid since: x")
        );
        assert!(
            matches!(history("interval=2h"), Err(ApiError::BadRequest(m)) if m.starts_with("invalid interval: 2h (allowed: 1h, 6h, 1d"))
        );
    }

    #[test]
    fn raw_stats_rules() {
        let raw = |q: &str| Params::raw_stats(Some(q), NOW, DAY);
        let required = "orchestrator is a required parameter";
        assert_eq!(message(Params::raw_stats(None, NOW, DAY)), required);
        assert_eq!(message(raw("region=FRA")), required);
        assert_eq!(message(raw("orchestrator=+")), required);
        assert_eq!(
            message(raw("orchestrator=0xa&model=m")),
            "pipeline required"
        );
        let params = raw("orchestrator=0xa&pipeline=p").unwrap();
        assert_eq!(params.job_type, JobType::Ai);
        assert_eq!(params.model, None);
        let params = raw("orchestrator=0xa&job_type=ai").unwrap();
        assert_eq!(params.job_type, JobType::Ai);
        assert_eq!(
            raw("orchestrator=0xa").unwrap().job_type,
            JobType::Transcoding
        );
        assert_eq!(
            message(raw("orchestrator=0xa&job_type=x")),
            "invalid job_type: x (allowed: transcoding, ai)"
        );
    }

    #[test]
    fn pipelines_reads_region_and_window_only() {
        let params = Params::pipelines(
            Some("region=fra&since=5&until=10&job_type=bad&model=m&orchestrator=0xA"),
            NOW,
            DAY,
        )
        .unwrap();
        assert_eq!(params.region.as_deref(), Some("FRA"));
        assert_eq!(
            params.window,
            Window {
                since: Some(5.0),
                until: 10.0
            }
        );
        assert_eq!(params.job_type, JobType::Ai);
        assert_eq!((params.orchestrator, params.model), (None, None));
        assert_eq!(
            message(Params::pipelines(Some("until=soon"), NOW, DAY)),
            "invalid until: soon"
        );
    }

    #[test]
    fn top_ai_score_reads_orchestrator_only() {
        let params =
            Params::top_ai_score(Some("orchestrator=+0xAB+&since=bad&model=m%00"), NOW, DAY)
                .unwrap();
        assert_eq!(params.orchestrator.as_deref(), Some("0xab"));
        assert_eq!(params.window, Window::default_at(NOW, DAY));
        assert_eq!(params.job_type, JobType::Ai);
        assert_eq!(params.model, None);
        assert_eq!(
            Params::top_ai_score(None, NOW, DAY).unwrap().orchestrator,
            None
        );
        assert_eq!(
            message(Params::top_ai_score(Some("orchestrator=0x%00"), NOW, DAY)),
            "orchestrator must not contain NUL characters"
        );
    }

    #[test]
    fn nul_is_refused_in_the_values_a_route_reads() {
        for name in ["orchestrator", "region", "model", "pipeline"] {
            assert_eq!(
                parse_err(&format!("{name}=a%00b&pipeline=p&model=m")),
                format!("{name} must not contain NUL characters")
            );
        }
        assert_eq!(
            message(Params::pipelines(Some("region=%00"), NOW, DAY)),
            "region must not contain NUL characters"
        );
        // Parameters a route does not read are not looked at.
        assert!(Params::pipelines(Some("orchestrator=%00&model=%00"), NOW, DAY).is_ok());
    }

    #[test]
    fn times_beyond_postgresql_are_unbounded() {
        let params = parse("since=-1e300&until=1e300");
        assert_eq!(
            (params.since, params.until),
            (Some(f64::NEG_INFINITY), Some(f64::INFINITY))
        );
        assert!(!params.is_empty());
        let params = parse("until=-1e300");
        assert_eq!(params.window.until, f64::NEG_INFINITY);
        let params = parse("since=1e300");
        assert!(params.is_empty());
        // The first and last representable days are kept as they are.
        for t in [-210_000_000_000.0, 9_000_000_000_000.0, 0.0, NOW] {
            assert_eq!(parse(&format!("since={t}")).since, Some(t));
        }
        let ages = Window::default_at(NOW, Duration::from_secs(u64::MAX));
        assert_eq!(ages.since, Some(f64::NEG_INFINITY));
    }

    #[test]
    fn cache_keys() {
        let key = |q: &str, now: f64| Params::pipelines(Some(q), now, DAY).unwrap().cache_key();
        // Independent of the current time, dependent on every parameter.
        assert_eq!(key("", NOW), key("", NOW + 10.0));
        assert_eq!(key("since=5", NOW), key("since=5", NOW + 10.0));
        assert_eq!(key("region=fra", NOW), key("region=FRA+", NOW));
        assert_eq!(key("since=0", NOW), key("since=-0", NOW));
        assert_eq!(key("since=5", NOW), key("since=5.0", NOW));
        assert_ne!(key("region=FRA", NOW), key("region=LAX", NOW));
        assert_ne!(key("region=FRA", NOW), key("", NOW));
        assert_ne!(key("since=5", NOW), key("until=5", NOW));
        assert_ne!(key("since=5", NOW), key("since=5.25", NOW));
        let set: std::collections::HashSet<CacheKey> =
            [key("", NOW), key("", NOW), key("region=FRA", NOW)].into();
        assert_eq!(set.len(), 2);
    }
}
