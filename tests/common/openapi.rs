//! Every answer of the service a test receives is checked against `docs/openapi.json`, so
//! the document cannot drift from the code: an undocumented path, method or status, a
//! missing documented header, a content type the response does not list, or a body that
//! does not match its schema fails the test that received it.
//!
//! Use [`send`] for requests built with reqwest (the `TestServer` helpers already do), or
//! [`checked`] for a response already received. [`check`] is the validation itself.

use jsonschema::{Draft, Registry, Resource, Validator};
use reqwest::header::{HeaderMap, ALLOW, CONTENT_TYPE};
use reqwest::Method;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

/// The URI the document is registered under, so `$ref`s into it resolve from anywhere.
const BASE: &str = "urn:leaderboard:openapi";

/// Methods a path item can list (OpenAPI 3.1).
const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

struct Document {
    doc: Value,
    registry: Registry<'static>,
    /// Compiled validators by the JSON pointer of their schema.
    validators: Mutex<HashMap<String, Arc<Validator>>>,
}

fn document() -> &'static Document {
    static DOC: OnceLock<Document> = OnceLock::new();
    DOC.get_or_init(|| {
        // Relative to this file, so the CLI tests of crates/server (which share this
        // harness) find it too; a change of the document rebuilds the tests.
        let text = include_str!("../../docs/openapi.json");
        let path = "docs/openapi.json";
        let doc: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{path}: {e}"));
        // The whole document is one 2020-12 resource: OpenAPI 3.1 schemas are that
        // dialect, and their `#/components/...` references resolve inside it.
        let resource: Resource = Draft::Draft202012.create_resource(doc.clone());
        let registry = Registry::new()
            .add(BASE, resource)
            .and_then(|builder| builder.prepare())
            .unwrap_or_else(|e| panic!("{path} as a schema resource: {e}"));
        Document {
            doc,
            registry,
            validators: Mutex::new(HashMap::new()),
        }
    })
}

/// The document, parsed (for tests of the document itself).
pub fn doc() -> &'static Value {
    &document().doc
}

/// `segment` escaped for a JSON pointer.
fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// Follows `$ref`s to `#/...` from `pointer`; the pointer of the object finally reached.
fn resolve(mut pointer: String) -> Result<(String, &'static Value), String> {
    for _ in 0..16 {
        let value = doc()
            .pointer(&pointer)
            .ok_or_else(|| format!("docs/openapi.json has nothing at {pointer}"))?;
        match value.get("$ref").and_then(Value::as_str) {
            Some(target) => {
                pointer = target
                    .strip_prefix('#')
                    .ok_or_else(|| format!("only local references are supported: {target}"))?
                    .to_string();
            }
            None => return Ok((pointer, value)),
        }
    }
    Err(format!("reference loop at {pointer}"))
}

/// Validates `instance` against the schema at `pointer` of the document.
pub fn validate_at(pointer: &str, instance: &Value) -> Result<(), String> {
    let document = document();
    let validator = {
        let mut cache = document
            .validators
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match cache.get(pointer) {
            Some(v) => v.clone(),
            None => {
                let schema = serde_json::json!({ "$ref": format!("{BASE}#{pointer}") });
                let built = jsonschema::options()
                    .with_draft(Draft::Draft202012)
                    .with_registry(&document.registry)
                    .build(&schema)
                    .map_err(|e| format!("schema at {pointer} does not compile: {e}"))?;
                let built = Arc::new(built);
                cache.insert(pointer.to_string(), built.clone());
                built
            }
        }
    };
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("at '{}': {e}", e.instance_path()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

/// The pointer of the `responses` object that describes `method` on `path`, and for a
/// method the path does not list, the methods it does (the expected `Allow`).
fn responses_of(method: &str, path: &str) -> (String, Option<BTreeSet<String>>) {
    let paths = &doc()["paths"];
    let Some(item) = paths.get(path) else {
        return ("/x-unknown-path/responses".into(), None);
    };
    let method = method.to_ascii_lowercase();
    if item.get(&method).is_some() {
        return (format!("/paths/{}/{method}/responses", escape(path)), None);
    }
    let listed = METHODS
        .iter()
        .filter(|m| item.get(**m).is_some())
        .map(|m| m.to_ascii_uppercase())
        .collect();
    ("/x-unlisted-method/responses".into(), Some(listed))
}

/// Checks one answer of the service against the document: `method` and `path` (no query)
/// of the request, then status, headers and body of the response.
pub fn check(
    method: &str,
    path: &str,
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), String> {
    let (responses, listed) = responses_of(method, path);
    let (pointer, response) = resolve(format!("{responses}/{status}")).map_err(|_| {
        format!("status {status} is not documented for {method} {path} ({responses})")
    })?;

    if let Some(Value::Object(documented)) = response.get("headers") {
        for (name, _) in documented {
            let (header_pointer, header) = resolve(format!("{pointer}/headers/{}", escape(name)))?;
            let value = headers.get(name.as_str());
            let required = header.get("required") == Some(&Value::Bool(true));
            match value {
                None if required => return Err(format!("header {name} is missing")),
                None => {}
                Some(value) => {
                    let text = value
                        .to_str()
                        .map_err(|_| format!("header {name} is not visible ASCII"))?;
                    validate_at(
                        &format!("{header_pointer}/schema"),
                        &Value::String(text.into()),
                    )
                    .map_err(|e| format!("header {name}: {text:?}: {e}"))?;
                }
            }
        }
    }
    if let Some(listed) = listed.filter(|_| status == 405) {
        let allow: BTreeSet<String> = headers
            .get(ALLOW)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .split(',')
            .map(|m| m.trim().to_string())
            .filter(|m| !m.is_empty())
            .collect();
        if allow != listed {
            return Err(format!(
                "Allow is {allow:?}, the document lists {listed:?} for {path}"
            ));
        }
    }

    // HEAD answers carry the GET answer's headers and no body.
    let content = match response.get("content").and_then(Value::as_object) {
        Some(content) if !method.eq_ignore_ascii_case("HEAD") => content,
        _ if body.is_empty() => return Ok(()),
        _ => {
            return Err(format!(
                "{} bytes of body where none is documented",
                body.len()
            ))
        }
    };
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let media = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let listed: Vec<&String> = content.keys().collect();
    if !listed.iter().any(|name| **name == media) {
        return Err(format!(
            "Content-Type {content_type:?} is not one of the documented {listed:?}"
        ));
    }
    let instance = if media == "application/json" {
        serde_json::from_slice(body).map_err(|e| format!("body is not JSON: {e}"))?
    } else {
        Value::String(
            String::from_utf8(body.to_vec()).map_err(|_| "body is not UTF-8".to_string())?,
        )
    };
    validate_at(
        &format!("{pointer}/content/{}/schema", escape(&media)),
        &instance,
    )
}

/// `check`, panicking with the request, the answer and what is wrong.
pub fn assert_documented(method: &str, path: &str, status: u16, headers: &HeaderMap, body: &[u8]) {
    if let Err(problem) = check(method, path, status, headers, body) {
        let shown = String::from_utf8_lossy(&body[..body.len().min(2000)]).into_owned();
        panic!(
            "{method} {path} → {status} does not match docs/openapi.json: {problem}\n\
             headers: {headers:?}\nbody: {shown}"
        );
    }
}

/// Reads `response` to its end, checks it (see [`check`]) and gives it back unread.
/// `method` is the request's: a response does not know it.
pub async fn checked(
    method: &Method,
    response: reqwest::Response,
) -> reqwest::Result<reqwest::Response> {
    let status = response.status();
    let version = response.version();
    let headers = response.headers().clone();
    let path = response.url().path().to_string();
    let body = response.bytes().await?;
    assert_documented(method.as_str(), &path, status.as_u16(), &headers, &body);
    let mut rebuilt = http::Response::new(body);
    *rebuilt.status_mut() = status;
    *rebuilt.version_mut() = version;
    *rebuilt.headers_mut() = headers;
    Ok(reqwest::Response::from(rebuilt))
}

/// Sends `request` and checks the answer (see [`check`]): the way tests talk to the
/// service with a client of their own.
pub async fn send(request: reqwest::RequestBuilder) -> reqwest::Result<reqwest::Response> {
    let (client, request) = request.build_split();
    let request = request?;
    let method = request.method().clone();
    let response = client.execute(request).await?;
    checked(&method, response).await
}

/// `request.send_checked()`: [`send`] in the place of reqwest's `send()`.
pub trait SendChecked {
    fn send_checked(
        self,
    ) -> impl std::future::Future<Output = reqwest::Result<reqwest::Response>> + Send;
}

impl SendChecked for reqwest::RequestBuilder {
    fn send_checked(
        self,
    ) -> impl std::future::Future<Output = reqwest::Result<reqwest::Response>> + Send {
        send(self)
    }
}
