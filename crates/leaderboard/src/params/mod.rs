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

mod interval;
#[cfg(test)]
mod tests;
mod values;
mod window;

pub use interval::Interval;
pub(crate) use values::representable;
pub use values::JobType;
pub use window::Window;

use crate::web::error::ApiError;
use std::time::Duration;
use values::{bad, exact, no_nul, orchestrator, parse_job_type, parse_time, region};

/// The default window of `/api/score_history`: the last 7 days.
pub const HISTORY_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);
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
