//! A posted test-job stat: strict parsing, validation, and the payload as stored.
//!
//! Every top-level field a tester posts is kept (the testers add fields faster than this
//! service learns them, and `raw_stats` is where people look for them); the fields the
//! contract knows are validated and normalised, the others stored verbatim. A test with
//! neither `success_rate` nor `round_trip_time` is *unscored*: stored, returned by
//! `raw_stats`, and counted nowhere else (the SQL side decides that, see
//! `migrations/V5__unscored_tests.sql`).

use crate::ingest::strict_json::{no_nul_in, path_error, Strict};
use crate::params::JobType;
use crate::web::error::ApiError;
use serde::Deserialize;
use serde_json::{Map, Number, Value};

/// `events.orchestrator` is VARCHAR(56).
pub const ORCHESTRATOR_MAX_CHARS: usize = 56;

/// Upper bound of the times in seconds (`round_trip_time`, `seg_duration`, …), about 31
/// years. The read path sums them in double precision: a few values near the largest
/// double overflow that sum and would fail every leaderboard query of their window.
pub const SECONDS_MAX: f64 = 1e9;

/// The fields of the contract, read from the posted object for validation only (what is
/// stored is the posted object itself). Numbers stay `serde_json::Number`, so the AI
/// tester's integer `success_rate` stays `1`. `null` is the same as absent.
#[derive(Debug, Deserialize)]
struct Body {
    region: Option<String>,
    orchestrator: Option<String>,
    success_rate: Option<Number>,
    round_trip_time: Option<Number>,
    #[allow(dead_code)] // checked for its type only
    errors: Option<Vec<StatError>>,
    timestamp: Option<Number>,
    seg_duration: Option<Number>,
    upload_time: Option<Number>,
    download_time: Option<Number>,
    transcode_time: Option<Number>,
    segments_sent: Option<Number>,
    segments_received: Option<Number>,
    model: Option<String>,
    pipeline: Option<String>,
    #[allow(dead_code)] // checked for its type only
    input_parameters: Option<String>,
    #[allow(dead_code)] // checked for its type only
    response_payload: Option<String>,
    #[allow(dead_code)] // checked for its type only
    model_is_warm: Option<bool>,
}

/// One entry of `errors` (checked; the entry is stored as posted).
#[derive(Debug, Clone, Deserialize)]
pub struct StatError {
    pub error_code: String,
    pub message: Option<String>,
    pub count: i64,
}

/// A validated stat, ready to store.
#[derive(Debug, Clone)]
pub struct Stat {
    /// Upper-cased.
    pub region: String,
    /// Lower-cased.
    pub orchestrator: String,
    pub job_type: JobType,
    /// Neither `success_rate` nor `round_trip_time`: stored, counted nowhere.
    pub unscored: bool,
    /// The posted `timestamp` (Unix seconds), if any; one beyond `i64` is `i64::MAX`.
    pub timestamp: Option<i64>,
    /// The JSONB payload: the posted object, normalised (see [`Stat::parse`]).
    pub payload: Value,
}

impl Stat {
    /// Parses and validates a post_stats body; every refusal names the field.
    ///
    /// The stored payload is the posted object with `region` upper-cased and trimmed,
    /// `orchestrator` lower-cased and trimmed, and `errors` (null) and `timestamp` (0)
    /// added when absent, as the original service always stored them; every other field
    /// is kept as posted, unknown ones included.
    pub fn parse(bytes: &[u8]) -> Result<Stat, ApiError> {
        // An object, not an array or a scalar: the contract is an object.
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
        if first != Some(&b'{') {
            return Err(bad("invalid JSON body: expected a JSON object"));
        }
        let mut deserializer = serde_json::Deserializer::from_slice(bytes);
        let posted: Strict = serde_path_to_error::deserialize(&mut deserializer)
            .map_err(|e| path_error(e.path().to_string(), e.into_inner()))?;
        deserializer
            .end()
            .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))?;
        let Value::Object(posted) = posted.0 else {
            return Err(bad("invalid JSON body: expected a JSON object"));
        };
        for (key, value) in &posted {
            let mut path = key.clone();
            no_nul_in(&mut path, key, value)?;
        }
        let posted = Value::Object(posted);
        let body: Body = serde_path_to_error::deserialize(&posted)
            .map_err(|e| path_error(e.path().to_string(), e.into_inner()))?;
        let Value::Object(posted) = posted else {
            return Err(ApiError::Internal("the posted object changed kind".into()));
        };
        body.validate(posted)
    }
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::BadRequest(message.into())
}

fn required<T>(field: &str, value: Option<T>) -> Result<T, ApiError> {
    value.ok_or_else(|| bad(format!("{field} is required")))
}

/// A number with 0 ≤ x ≤ `max`.
fn between(field: &str, n: &Number, max: f64) -> Result<(), ApiError> {
    let v = n
        .as_f64()
        .ok_or_else(|| bad(format!("{field} is not a number")))?;
    if v.is_nan() || v < 0.0 || v > max {
        return Err(bad(format!("{field} must be between 0 and {max}, got {n}")));
    }
    Ok(())
}

fn integer(field: &str, n: &Number, non_negative: bool) -> Result<(), ApiError> {
    let whole = n.is_i64() || n.is_u64();
    if !whole {
        return Err(bad(format!("{field} must be an integer, got {n}")));
    }
    if non_negative && n.as_i64().is_some_and(|v| v < 0) {
        return Err(bad(format!("{field} must be 0 or more, got {n}")));
    }
    Ok(())
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
}

impl Body {
    fn validate(self, mut posted: Map<String, Value>) -> Result<Stat, ApiError> {
        let region = required("region", self.region)?.trim().to_uppercase();
        if region.is_empty() {
            return Err(bad("region is required"));
        }
        let orchestrator = required("orchestrator", self.orchestrator)?
            .trim()
            .to_lowercase();
        if orchestrator.is_empty() {
            return Err(bad("orchestrator must not be empty"));
        }
        if orchestrator.chars().count() > ORCHESTRATOR_MAX_CHARS {
            return Err(bad(format!(
                "orchestrator is longer than {ORCHESTRATOR_MAX_CHARS} characters"
            )));
        }
        let unscored = match (&self.success_rate, &self.round_trip_time) {
            (Some(success_rate), Some(round_trip_time)) => {
                between("success_rate", success_rate, 1.0)?;
                between("round_trip_time", round_trip_time, SECONDS_MAX)?;
                false
            }
            (None, None) => true,
            _ => return Err(bad("success_rate and round_trip_time go together")),
        };
        let timestamp = match &self.timestamp {
            Some(t) => {
                integer("timestamp", t, false)?;
                Some(t.as_i64().unwrap_or(i64::MAX))
            }
            None => None,
        };
        for (field, value) in [
            ("seg_duration", &self.seg_duration),
            ("upload_time", &self.upload_time),
            ("download_time", &self.download_time),
            ("transcode_time", &self.transcode_time),
        ] {
            if let Some(n) = value {
                between(field, n, SECONDS_MAX)?;
            }
        }
        for (field, value) in [
            ("segments_sent", &self.segments_sent),
            ("segments_received", &self.segments_received),
        ] {
            if let Some(n) = value {
                integer(field, n, true)?;
            }
        }
        let job_type = match (non_empty(self.model), non_empty(self.pipeline)) {
            (Some(_), Some(_)) => JobType::Ai,
            (None, None) => JobType::Transcoding,
            _ => return Err(bad("model and pipeline go together")),
        };

        posted.insert("region".into(), Value::String(region.clone()));
        posted.insert("orchestrator".into(), Value::String(orchestrator.clone()));
        // Always present, as the original stored them (errors null, timestamp 0).
        posted.entry("errors").or_insert(Value::Null);
        posted
            .entry("timestamp")
            .or_insert_with(|| Value::Number(Number::from(0)));
        Ok(Stat {
            region,
            orchestrator,
            job_type,
            unscored,
            timestamp,
            payload: Value::Object(posted),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<Stat, String> {
        Stat::parse(v.to_string().as_bytes()).map_err(|e| e.to_string())
    }

    fn minimal() -> Value {
        json!({"region": "fra", "orchestrator": " 0xABC ", "success_rate": 1, "round_trip_time": 2.5})
    }

    #[test]
    fn a_minimal_stat_is_normalised_and_completed() {
        let stat = parse(minimal()).unwrap();
        assert_eq!(stat.region, "FRA");
        assert_eq!(stat.orchestrator, "0xabc");
        assert_eq!(stat.job_type, JobType::Transcoding);
        assert_eq!(
            stat.payload,
            json!({"region": "FRA", "orchestrator": "0xabc", "success_rate": 1,
                   "round_trip_time": 2.5, "errors": null, "timestamp": 0})
        );
    }

    #[test]
    fn zero_empty_false_and_null_fields_are_kept_as_posted() {
        let mut body = minimal();
        let extra = json!({"seg_duration": 0, "segments_sent": 0, "upload_time": 0.0,
                           "model": "", "pipeline": null, "model_is_warm": false,
                           "input_parameters": "", "transcode_time": 0.25});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let stat = parse(body.clone()).unwrap();
        assert_eq!(stat.job_type, JobType::Transcoding);
        let mut want = body;
        want["region"] = json!("FRA");
        want["orchestrator"] = json!("0xabc");
        want["errors"] = Value::Null;
        want["timestamp"] = json!(0);
        assert_eq!(stat.payload, want);
    }

    #[test]
    fn unscored_tests_are_accepted_and_half_scored_ones_refused() {
        for body in [
            json!({"region": "FRA", "orchestrator": "o"}),
            json!({"region": "FRA", "orchestrator": "o", "success_rate": null, "round_trip_time": null}),
            json!({"region": "FRA", "orchestrator": "o", "success_rate": null}),
        ] {
            let stat = parse(body.clone()).unwrap();
            assert!(stat.unscored, "{body}");
            for field in ["success_rate", "round_trip_time"] {
                assert_eq!(stat.payload.get(field), body.get(field), "{body}");
            }
        }
        assert!(!parse(minimal()).unwrap().unscored);
        for body in [
            json!({"region": "FRA", "orchestrator": "o", "success_rate": 1}),
            json!({"region": "FRA", "orchestrator": "o", "round_trip_time": 1}),
            json!({"region": "FRA", "orchestrator": "o", "success_rate": null, "round_trip_time": 0}),
        ] {
            let got = parse(body.clone()).expect_err("half scored");
            assert_eq!(
                got, "success_rate and round_trip_time go together",
                "{body}"
            );
        }
    }

    #[test]
    fn unknown_fields_are_kept_verbatim_at_any_depth() {
        let mut body = minimal();
        let extra = json!({"test_outcome": "passed", "defer_attempts": 3,
                           "debug_artifacts": {"frames": [1, 2.5, {"a": null}], "ok": true},
                           "stream_valid": false, "Region": "lower-case key is another key"});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let stat = parse(body).unwrap();
        for (k, v) in extra.as_object().unwrap() {
            assert_eq!(&stat.payload[k], v, "{k}");
        }
    }

    #[test]
    fn nul_anywhere_and_repeated_keys_are_refused() {
        let cases: &[(&[u8], &str)] = &[
            (
                br#"{"region":"FRA","orchestrator":"o","x":{"y":["a\u0000"]}}"#,
                "x.y[0] must not contain NUL characters",
            ),
            (
                br#"{"region":"FRA","orchestrator":"o","x":{"k\u0000":1}}"#,
                "a key of the body",
            ),
            (
                br#"{"region":"FRA","orchestrator":"o","\u0000":1}"#,
                "a key of the body",
            ),
            (
                br#"{"region":"FRA","orchestrator":"o","errors":[{"error_code":"c","count":1,"message":"\u0000"}]}"#,
                "errors[0].message must not contain NUL characters",
            ),
            (
                br#"{"region":"FRA","orchestrator":"o","region":"LAX"}"#,
                "the key \"region\" appears more than once in one object",
            ),
            (
                br#"{"region":"FRA","orchestrator":"o","x":[{"a":1,"a":2}]}"#,
                "x[0]: the key \"a\" appears more than once",
            ),
        ];
        for (bytes, want) in cases {
            let got = Stat::parse(bytes).expect_err("refused").to_string();
            assert!(
                got.contains(want),
                "{} gave {got:?}, wanted {want:?}",
                String::from_utf8_lossy(bytes)
            );
        }
    }

    #[test]
    fn each_rule_names_its_field() {
        let cases: Vec<(Value, &str)> = vec![
            (
                json!({"orchestrator": "o", "success_rate": 1, "round_trip_time": 1}),
                "region is required",
            ),
            (
                json!({"region": "FRA", "success_rate": 1, "round_trip_time": 1}),
                "orchestrator is required",
            ),
            (
                json!({"region": "FRA", "orchestrator": "  ", "success_rate": 1, "round_trip_time": 1}),
                "orchestrator must not be empty",
            ),
            (
                json!({"region": "FRA", "orchestrator": "o".repeat(57), "success_rate": 1, "round_trip_time": 1}),
                "orchestrator is longer than 56",
            ),
            (
                json!({"region": "FRA", "orchestrator": "o", "round_trip_time": 1}),
                "success_rate and round_trip_time go together",
            ),
            (
                json!({"region": "FRA", "orchestrator": "o", "success_rate": 1.5, "round_trip_time": 1}),
                "success_rate must be between 0 and 1",
            ),
            (
                json!({"region": "FRA", "orchestrator": "o", "success_rate": -0.1, "round_trip_time": 1}),
                "success_rate must be between 0 and 1",
            ),
            (
                json!({"region": "FRA", "orchestrator": "o", "success_rate": 1}),
                "success_rate and round_trip_time go together",
            ),
            (
                json!({"region": "FRA", "orchestrator": "o", "success_rate": 1, "round_trip_time": -1}),
                "round_trip_time must be between 0 and 1000000000",
            ),
            (
                json!({"region": "FRA", "orchestrator": "o", "success_rate": 1, "round_trip_time": 1.5e308}),
                "round_trip_time must be between 0 and 1000000000, got 1.5e+308",
            ),
            (
                json!({"region": "FRA", "orchestrator": "o", "success_rate": 1, "round_trip_time": 1, "upload_time": 1000000000.5}),
                "upload_time must be between 0 and 1000000000",
            ),
            (
                json!({"region": "FRA", "orchestrator": "o", "success_rate": 1, "round_trip_time": 1, "timestamp": 1.5}),
                "timestamp must be an integer",
            ),
            (
                json!({"region": "FRA", "orchestrator": "o", "success_rate": 1, "round_trip_time": 1, "seg_duration": -2}),
                "seg_duration must be between 0 and 1000000000",
            ),
            (
                json!({"region": "FRA", "orchestrator": "o", "success_rate": 1, "round_trip_time": 1, "segments_sent": -2}),
                "segments_sent must be 0 or more",
            ),
            (
                json!({"region": "FRA", "orchestrator": "o", "success_rate": 1, "round_trip_time": 1, "segments_received": 2.5}),
                "segments_received must be an integer",
            ),
            (
                json!({"region": "FRA", "orchestrator": "o", "success_rate": "1", "round_trip_time": 1}),
                "success_rate: invalid type: string",
            ),
            (
                json!({"region": 7, "orchestrator": "o", "success_rate": 1, "round_trip_time": 1}),
                "region: invalid type",
            ),
            (
                json!({"region": "FRA", "orchestrator": "o", "success_rate": 1, "round_trip_time": 1, "model_is_warm": "yes"}),
                "model_is_warm: invalid type",
            ),
            (
                json!({"region": "FRA", "orchestrator": "o", "success_rate": 1, "round_trip_time": 1, "errors": [{"count": 1}]}),
                "errors[0]: missing field `error_code`",
            ),
            (
                json!({"region": "FRA", "orchestrator": "o", "success_rate": 1, "round_trip_time": 1, "errors": [{"error_code": "x", "count": 1.5}]}),
                "errors[0].count: invalid type",
            ),
            (
                json!({"region": "FRA", "orchestrator": "o", "success_rate": 1, "round_trip_time": 1, "model": "m"}),
                "model and pipeline go together",
            ),
            (
                json!({"region": "FRA", "orchestrator": "o", "success_rate": 1, "round_trip_time": 1, "pipeline": "p"}),
                "model and pipeline go together",
            ),
            (
                json!({"region": "FRA", "orchestrator": "o\u{0}", "success_rate": 1, "round_trip_time": 1}),
                "orchestrator must not contain NUL",
            ),
            (json!([1, 2]), "invalid JSON body: expected a JSON object"),
            (
                json!(["FRA", "o", 1, 1]),
                "invalid JSON body: expected a JSON object",
            ),
        ];
        for (body, want) in cases {
            let got = parse(body.clone()).expect_err(&body.to_string());
            assert!(got.contains(want), "{body} gave {got:?}, wanted {want:?}");
        }
    }

    #[test]
    fn malformed_bytes_are_refused() {
        for bytes in [
            &b""[..],
            b"{",
            b"\xff\xfe",
            b"{\"region\":\"FRA\"} trailing",
            b"null",
            b"1e999",
        ] {
            let got = Stat::parse(bytes).expect_err("refused");
            assert!(got.to_string().starts_with("invalid JSON body"), "{got}");
        }
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(Stat::parse(deep.as_bytes()).is_err());
        let huge =
            br#"{"region":"FRA","orchestrator":"o","success_rate":1,"round_trip_time":1e999}"#;
        assert!(Stat::parse(huge).is_err());
    }

    #[test]
    fn ai_stats_keep_their_fields() {
        let stat = parse(
            json!({"region": "lax", "orchestrator": "0xA", "success_rate": 0,
            "round_trip_time": 2.21572637, "model": "m/x", "pipeline": "text-to-image",
            "model_is_warm": true, "errors": [{"count": 1, "error_code": "HTTP-STATUS-503"}],
            "timestamp": 1725029035, "unknown": {"ignored": true}}),
        )
        .unwrap();
        assert_eq!(stat.job_type, JobType::Ai);
        assert_eq!(stat.payload["model"], "m/x");
        assert_eq!(stat.payload["model_is_warm"], true);
        assert_eq!(
            stat.payload["errors"],
            json!([{"count": 1, "error_code": "HTTP-STATUS-503"}])
        );
        assert_eq!(stat.payload["unknown"], json!({"ignored": true}));
    }
}
