//! A posted test-job stat: strict parsing, validation, and the payload as stored.

use crate::error::ApiError;
use crate::query::JobType;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};

/// `events.orchestrator` is VARCHAR(56).
pub const ORCHESTRATOR_MAX_CHARS: usize = 56;

/// Upper bound of the times in seconds (`round_trip_time`, `seg_duration`, …), about 31
/// years. The read path sums them in double precision: a few values near the largest
/// double overflow that sum and would fail every leaderboard query of their window.
pub const SECONDS_MAX: f64 = 1e9;

/// The body as the job testers send it. Numbers stay `serde_json::Number` so that what is
/// stored is exactly what was sent (the AI tester's integer `success_rate` stays `1`).
/// Unknown fields are ignored.
#[derive(Debug, Deserialize)]
struct Body {
    region: Option<String>,
    orchestrator: Option<String>,
    success_rate: Option<Number>,
    round_trip_time: Option<Number>,
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
    input_parameters: Option<String>,
    response_payload: Option<String>,
    model_is_warm: Option<bool>,
}

/// One entry of `errors`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct StatError {
    pub error_code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
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
    /// The JSONB payload as the spec says it is stored.
    pub payload: Value,
}

impl Stat {
    /// Parses and validates a post_stats body; every refusal names the field.
    pub fn parse(bytes: &[u8]) -> Result<Stat, ApiError> {
        // serde would also read a struct from an array of its fields; the contract is an object.
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
        if first != Some(&b'{') {
            return Err(bad("invalid JSON body: expected a JSON object"));
        }
        let mut deserializer = serde_json::Deserializer::from_slice(bytes);
        let body: Body = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if path.is_empty() || path == "." {
                ApiError::BadRequest(format!("invalid JSON body: {inner}"))
            } else {
                ApiError::BadRequest(format!("invalid JSON body: {path}: {inner}"))
            }
        })?;
        deserializer
            .end()
            .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))?;
        body.validate()
    }
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::BadRequest(message.into())
}

/// Strings end up in JSONB and VARCHAR columns, where PostgreSQL refuses NUL.
fn no_nul(field: &str, value: &str) -> Result<(), ApiError> {
    if value.contains('\0') {
        return Err(bad(format!("{field} must not contain NUL characters")));
    }
    Ok(())
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
    fn validate(self) -> Result<Stat, ApiError> {
        let region = required("region", self.region)?.trim().to_uppercase();
        if region.is_empty() {
            return Err(bad("region is required"));
        }
        no_nul("region", &region)?;
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
        no_nul("orchestrator", &orchestrator)?;
        let success_rate = required("success_rate", self.success_rate)?;
        between("success_rate", &success_rate, 1.0)?;
        let round_trip_time = required("round_trip_time", self.round_trip_time)?;
        between("round_trip_time", &round_trip_time, SECONDS_MAX)?;
        if let Some(t) = &self.timestamp {
            integer("timestamp", t, false)?;
        }
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
        for e in self.errors.iter().flatten() {
            no_nul("errors.error_code", &e.error_code)?;
            if let Some(m) = &e.message {
                no_nul("errors.message", m)?;
            }
        }
        let model = non_empty(self.model);
        let pipeline = non_empty(self.pipeline);
        let job_type = match (&model, &pipeline) {
            (Some(_), Some(_)) => JobType::Ai,
            (None, None) => JobType::Transcoding,
            _ => return Err(bad("model and pipeline go together")),
        };
        let input_parameters = non_empty(self.input_parameters);
        let response_payload = non_empty(self.response_payload);
        for (field, value) in [
            ("model", &model),
            ("pipeline", &pipeline),
            ("input_parameters", &input_parameters),
            ("response_payload", &response_payload),
        ] {
            if let Some(v) = value {
                no_nul(field, v)?;
            }
        }

        // Always kept, as the original stored them (errors null and timestamp 0 when absent).
        let mut payload = Map::new();
        payload.insert("region".into(), Value::String(region.clone()));
        payload.insert("orchestrator".into(), Value::String(orchestrator.clone()));
        payload.insert("success_rate".into(), Value::Number(success_rate));
        payload.insert("round_trip_time".into(), Value::Number(round_trip_time));
        payload.insert(
            "errors".into(),
            match self.errors {
                Some(errors) => serde_json::to_value(errors)
                    .map_err(|e| ApiError::Internal(format!("serialising errors: {e}")))?,
                None => Value::Null,
            },
        );
        payload.insert(
            "timestamp".into(),
            Value::Number(self.timestamp.unwrap_or_else(|| Number::from(0))),
        );
        // Kept only when non-zero, non-empty or true, like the original's `omitempty`.
        let numbers = [
            ("seg_duration", self.seg_duration),
            ("segments_sent", self.segments_sent),
            ("segments_received", self.segments_received),
            ("upload_time", self.upload_time),
            ("download_time", self.download_time),
            ("transcode_time", self.transcode_time),
        ];
        for (field, value) in numbers {
            if let Some(n) = value.filter(|n| n.as_f64() != Some(0.0)) {
                payload.insert(field.into(), Value::Number(n));
            }
        }
        let strings = [
            ("model", model),
            ("pipeline", pipeline),
            ("input_parameters", input_parameters),
            ("response_payload", response_payload),
        ];
        for (field, value) in strings {
            if let Some(s) = value {
                payload.insert(field.into(), Value::String(s));
            }
        }
        if self.model_is_warm == Some(true) {
            payload.insert("model_is_warm".into(), Value::Bool(true));
        }
        Ok(Stat {
            region,
            orchestrator,
            job_type,
            payload: Value::Object(payload),
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
    fn zero_empty_and_false_optionals_are_left_out() {
        let mut body = minimal();
        let extra = json!({"seg_duration": 0, "segments_sent": 0, "upload_time": 0.0,
                           "model": "", "pipeline": "", "model_is_warm": false,
                           "input_parameters": "", "transcode_time": 0.25});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let stat = parse(body).unwrap();
        let keys: Vec<&String> = stat.payload.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "errors",
                "orchestrator",
                "region",
                "round_trip_time",
                "success_rate",
                "timestamp",
                "transcode_time"
            ]
        );
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
                "success_rate is required",
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
                "round_trip_time is required",
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
            json!([{"error_code": "HTTP-STATUS-503", "count": 1}])
        );
        assert!(stat.payload.get("unknown").is_none());
    }
}
