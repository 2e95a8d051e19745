//! docs/openapi.json itself: it covers the route table, its references and examples hold,
//! and the validator every other test relies on really refuses what the document does not
//! describe.

mod common;

use common::fixture;
use common::openapi::{check, doc, validate_at};
use leaderboard::Route;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{json, Value};

/// Headers of a successful GET answer.
fn public() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("content-type", HeaderValue::from_static("application/json"));
    h.insert("access-control-allow-origin", HeaderValue::from_static("*"));
    h.insert(
        "cache-control",
        HeaderValue::from_static("public, max-age=30, stale-while-revalidate=15"),
    );
    h
}

/// Headers of an error answer.
fn error() -> HeaderMap {
    let mut h = public();
    h.insert("cache-control", HeaderValue::from_static("no-store"));
    h
}

fn body(value: Value) -> Vec<u8> {
    value.to_string().into_bytes()
}

/// Every `$ref` below `value`, with where it is.
fn refs<'a>(value: &'a Value, at: String, found: &mut Vec<(String, &'a str)>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if let ("$ref", Value::String(target)) = (k.as_str(), v) {
                    found.push((at.clone(), target));
                }
                refs(v, format!("{at}/{k}"), found);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                refs(v, format!("{at}/{i}"), found);
            }
        }
        _ => {}
    }
}

#[test]
fn the_document_is_openapi_3_1_and_lists_exactly_the_route_table() {
    let doc = doc();
    assert!(
        doc["openapi"]
            .as_str()
            .unwrap_or_default()
            .starts_with("3.1."),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().expect("paths");
    let mut documented: Vec<&str> = paths.keys().map(String::as_str).collect();
    documented.sort();
    let mut routes: Vec<String> = Route::ALL
        .iter()
        .map(|r| format!("/api/{}", r.name()))
        .collect();
    routes.sort();
    assert_eq!(documented, routes, "paths and the route table differ");
    for (path, item) in paths {
        let mut methods: Vec<&str> = item
            .as_object()
            .expect("path item")
            .keys()
            .map(String::as_str)
            .collect();
        methods.sort();
        let want = if path == "/api/post_stats" {
            vec!["options", "post"]
        } else {
            vec!["get", "head", "options"]
        };
        assert_eq!(methods, want, "{path}");
    }
    let post = &paths["/api/post_stats"]["post"];
    assert_eq!(post["security"], json!([{"hmacSignature": []}]));
    let scheme = &doc["components"]["securitySchemes"]["hmacSignature"];
    assert_eq!(
        (&scheme["type"], &scheme["in"], &scheme["name"]),
        (&json!("apiKey"), &json!("header"), &json!("Authorization"))
    );
}

#[test]
fn every_reference_resolves() {
    let mut found = Vec::new();
    refs(doc(), String::new(), &mut found);
    assert!(found.len() > 50, "{} references", found.len());
    for (at, target) in found {
        let pointer = target
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("{at}: non-local reference {target}"));
        assert!(
            doc().pointer(pointer).is_some(),
            "{at}: {target} is dangling"
        );
    }
}

#[test]
fn the_examples_match_their_schemas() {
    let mut checked = 0;
    for (path, item) in doc()["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            let at = format!("/paths/{}/{method}", path.replace('/', "~1"));
            let bodies = operation["requestBody"]["content"].as_object();
            for (media, content) in bodies.into_iter().flatten() {
                for (name, example) in content["examples"].as_object().into_iter().flatten() {
                    let schema = format!(
                        "{at}/requestBody/content/{}/schema",
                        media.replace('/', "~1")
                    );
                    validate_at(&schema, &example["value"])
                        .unwrap_or_else(|e| panic!("{at} request example {name}: {e}"));
                    checked += 1;
                }
            }
        }
    }
    for (name, response) in doc()["components"]["responses"]
        .as_object()
        .expect("responses")
    {
        for (media, content) in response["content"].as_object().into_iter().flatten() {
            for (example, value) in content["examples"].as_object().into_iter().flatten() {
                let schema = format!(
                    "/components/responses/{name}/content/{}/schema",
                    media.replace('/', "~1")
                );
                validate_at(&schema, &value["value"])
                    .unwrap_or_else(|e| panic!("{name} example {example}: {e}"));
                checked += 1;
            }
        }
    }
    for (name, parameter) in doc()["components"]["parameters"]
        .as_object()
        .expect("parameters")
    {
        for (example, value) in parameter["examples"].as_object().into_iter().flatten() {
            validate_at(
                &format!("/components/parameters/{name}/schema"),
                &value["value"],
            )
            .unwrap_or_else(|e| panic!("parameter {name} example {example}: {e}"));
            checked += 1;
        }
    }
    for (route, status) in [
        ("regions", "200"),
        ("health", "200"),
        ("health", "503"),
        ("aggregated_stats", "200"),
        ("score_history", "200"),
        ("raw_stats", "200"),
        ("top_ai_score", "200"),
        ("pipelines", "200"),
    ] {
        let at = format!("/paths/~1api~1{route}/get/responses/{status}/content/application~1json");
        let examples = doc().pointer(&format!("{at}/examples")).expect("examples");
        for (example, value) in examples.as_object().expect("examples") {
            validate_at(&format!("{at}/schema"), &value["value"])
                .unwrap_or_else(|e| panic!("{route} {status} example {example}: {e}"));
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} examples");
}

#[test]
fn both_job_testers_bodies_are_documented_stats() {
    let stats = "/components/schemas/Stats";
    for name in ["stream-tester.json", "ai-tester.json"] {
        validate_at(stats, &fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let mut ai = fixture("ai-tester.json");
    ai["errors"] = Value::Null;
    ai["success_rate"] = json!(1);
    validate_at(stats, &ai).expect("the AI tester's errors: null");
    // Refused by the service, refused by the document.
    let mut half = fixture("ai-tester.json");
    half["model"] = json!("");
    assert!(
        validate_at(stats, &half).is_err(),
        "model and pipeline go together"
    );
    let mut padded = fixture("stream-tester.json");
    padded["orchestrator"] = json!(format!("  {}  ", "a".repeat(56)));
    validate_at(stats, &padded).expect("56 characters once trimmed");
    padded["orchestrator"] = json!("a".repeat(57));
    assert!(validate_at(stats, &padded).is_err(), "57 characters");
    padded["orchestrator"] = json!(" \t ");
    assert!(validate_at(stats, &padded).is_err(), "blank");
}

#[test]
fn the_validator_accepts_documented_answers() {
    let board =
        json!({"0xa": {"FRA": {"success_rate": 1.0, "round_trip_score": 0.5, "score": 0.5}}});
    check("GET", "/api/aggregated_stats", 200, &public(), &body(board)).expect("leaderboard");
    check("GET", "/api/aggregated_stats", 200, &public(), b"{}").expect("empty leaderboard");
    check("HEAD", "/api/aggregated_stats", 200, &public(), b"").expect("HEAD");
    let history = json!({"0xa": {"FRA": [{"t": 3600, "tests": 2, "success_rate": 1.0,
                                         "round_trip_score": 0.5, "score": 0.5}]}});
    check("GET", "/api/score_history", 200, &public(), &body(history)).expect("history");
    let empty_list = json!({"0xa": {"FRA": []}});
    assert!(
        check(
            "GET",
            "/api/score_history",
            200,
            &public(),
            &body(empty_list)
        )
        .is_err(),
        "a region without points is left out"
    );
    check(
        "GET",
        "/api/raw_stats",
        400,
        &error(),
        &body(json!({"error": "orchestrator is a required parameter"})),
    )
    .expect("400");
    let mut allow = error();
    allow.insert("allow", HeaderValue::from_static("GET, HEAD, OPTIONS"));
    check(
        "DELETE",
        "/api/regions",
        405,
        &allow,
        &body(json!({"error": "method not allowed"})),
    )
    .expect("405 of a method the path does not list");
    check(
        "GET",
        "/api/nope",
        404,
        &error(),
        &body(json!({"error": "not found"})),
    )
    .expect("404 of an unknown path");
    let mut text = error();
    text.insert("content-type", HeaderValue::from_static("text/plain"));
    check("POST", "/api/post_stats", 200, &text, b"ok").expect("post_stats ok");
}

#[test]
fn the_validator_refuses_what_the_document_does_not_describe() {
    let refused = |what: &str, result: Result<(), String>| match result {
        Err(problem) => problem,
        Ok(()) => panic!("{what} was accepted"),
    };
    // A leaderboard entry without `score`.
    let board = json!({"0xa": {"FRA": {"success_rate": 1.0, "round_trip_score": 0.5}}});
    let problem = refused(
        "a score without score",
        check("GET", "/api/aggregated_stats", 200, &public(), &body(board)),
    );
    assert!(problem.contains("score"), "{problem}");
    // A field too many, a wrong type, a value out of range.
    for board in [
        json!({"0xa": {"FRA": {"success_rate": 1.0, "round_trip_score": 0.5, "score": 0.5, "total_score": 1}}}),
        json!({"0xa": {"FRA": {"success_rate": "1", "round_trip_score": 0.5, "score": 0.5}}}),
        json!({"0xa": {"FRA": {"success_rate": 1.5, "round_trip_score": 0.5, "score": 0.5}}}),
        json!({"0xa": [1]}),
    ] {
        refused(
            &board.to_string(),
            check(
                "GET",
                "/api/aggregated_stats",
                200,
                &public(),
                &body(board.clone()),
            ),
        );
    }
    refused(
        "regions without a type",
        check(
            "GET",
            "/api/regions",
            200,
            &public(),
            &body(json!({"regions": [{"id": "FRA", "name": "Frankfurt"}]})),
        ),
    );
    refused(
        "an error that is not a string",
        check(
            "GET",
            "/api/raw_stats",
            400,
            &error(),
            &body(json!({"error": 5})),
        ),
    );
    refused(
        "a 403 with another message",
        check(
            "POST",
            "/api/post_stats",
            403,
            &error(),
            &body(json!({"error": "no"})),
        ),
    );
    refused(
        "an undocumented status",
        check(
            "GET",
            "/api/regions",
            418,
            &error(),
            &body(json!({"error": "teapot"})),
        ),
    );
    refused(
        "a 200 on an unknown path",
        check("GET", "/api/nope", 200, &public(), b"{}"),
    );
    refused(
        "a cacheable error",
        check(
            "GET",
            "/api/raw_stats",
            400,
            &public(),
            &body(json!({"error": "orchestrator is a required parameter"})),
        ),
    );
    let mut bare = public();
    bare.remove("access-control-allow-origin");
    refused(
        "no CORS header",
        check(
            "GET",
            "/api/regions",
            200,
            &bare,
            &body(json!({"regions": []})),
        ),
    );
    let mut text = public();
    text.insert("content-type", HeaderValue::from_static("text/plain"));
    refused(
        "JSON sent as text",
        check(
            "GET",
            "/api/regions",
            200,
            &text,
            &body(json!({"regions": []})),
        ),
    );
    refused(
        "a body that is not JSON",
        check("GET", "/api/regions", 200, &public(), b"{\"regions\":"),
    );
    refused(
        "a HEAD answer with a body",
        check(
            "HEAD",
            "/api/regions",
            200,
            &public(),
            &body(json!({"regions": []})),
        ),
    );
    refused(
        "a preflight with a body",
        check("OPTIONS", "/api/regions", 204, &HeaderMap::new(), b"{}"),
    );
    let mut allow = error();
    allow.insert("allow", HeaderValue::from_static("GET, OPTIONS"));
    refused(
        "an Allow that forgets HEAD",
        check(
            "PUT",
            "/api/regions",
            405,
            &allow,
            &body(json!({"error": "method not allowed"})),
        ),
    );
    refused(
        "top_ai_score with a field missing",
        check(
            "GET",
            "/api/top_ai_score",
            200,
            &public(),
            &body(json!({"region": "LAX", "orchestrator": "0xa", "value": 0.9, "model": "m"})),
        ),
    );
}
