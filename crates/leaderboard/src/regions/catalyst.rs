//! Region sync from the Catalyst JSON document named by `CATALYST_REGION_URL`: every key of
//! `prod.full_name` is a transcoding region (id = key upper-cased, name = the value).
//!
//! This module only fetches and parses; storing is `regions::add_transcoding_regions`, and
//! `App` decides when to sync. Errors never carry the URL (it may hold a token): callers
//! log `host_of(url)` next to them.

use std::collections::BTreeMap;
use std::time::Duration;

/// Bound on the whole fetch: connecting, redirects, headers and body.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest document accepted; the real one is a few kilobytes.
pub const MAX_BODY: usize = 1 << 20;
/// Redirects followed before giving up.
const MAX_REDIRECTS: usize = 5;
/// Column sizes of `regions.name` and `regions.display_name`.
const MAX_ID_CHARS: usize = 56;
const MAX_NAME_CHARS: usize = 128;

/// Why a sync could not get its regions; the text never contains the URL.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CatalystError {
    #[error("request failed: {0}")]
    Request(String),
    #[error("unexpected HTTP status {0}")]
    Status(u16),
    #[error("document larger than {MAX_BODY} bytes")]
    TooLarge,
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    #[error("unexpected document shape: {0}")]
    Shape(String),
}

/// The HTTP client of the sync; build it once per process and reuse it.
pub fn client() -> Result<reqwest::Client, CatalystError> {
    reqwest::Client::builder()
        .timeout(FETCH_TIMEOUT)
        .connect_timeout(FETCH_TIMEOUT)
        .redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS))
        .user_agent(concat!("livepeer-leaderboard/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| CatalystError::Request(error_text(e)))
}

/// Fetches the document at `url` and returns its production regions as `(id, name)`.
pub async fn fetch(
    client: &reqwest::Client,
    url: &str,
) -> Result<Vec<(String, String)>, CatalystError> {
    let body = fetch_body(client, url).await?;
    parse(&body)
}

async fn fetch_body(client: &reqwest::Client, url: &str) -> Result<Vec<u8>, CatalystError> {
    let request = client
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json");
    let mut response = request
        .send()
        .await
        .map_err(|e| CatalystError::Request(error_text(e)))?;
    let status = response.status();
    if !status.is_success() {
        return Err(CatalystError::Status(status.as_u16()));
    }
    if response
        .content_length()
        .is_some_and(|n| n > MAX_BODY as u64)
    {
        return Err(CatalystError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| CatalystError::Request(error_text(e)))?
    {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(CatalystError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The regions of a Catalyst document: `prod.full_name` as `(KEY, value)` pairs, sorted by
/// id. Anything but an object of strings there is an error; entries that cannot be stored
/// (empty, or longer than the columns) are left out with a warning.
pub fn parse(body: &[u8]) -> Result<Vec<(String, String)>, CatalystError> {
    let document: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| CatalystError::InvalidJson(e.to_string()))?;
    let full_name = document
        .get("prod")
        .ok_or_else(|| CatalystError::Shape("no \"prod\" object".into()))?
        .get("full_name")
        .ok_or_else(|| CatalystError::Shape("no \"prod.full_name\" object".into()))?
        .as_object()
        .ok_or_else(|| CatalystError::Shape("\"prod.full_name\" is not an object".into()))?;
    let mut regions = BTreeMap::new();
    let mut skipped = Vec::new();
    for (key, value) in full_name {
        let name = value.as_str().ok_or_else(|| {
            CatalystError::Shape(format!("\"prod.full_name.{key}\" is not a string"))
        })?;
        let id = key.trim().to_uppercase();
        let storable = !id.is_empty()
            && id.chars().count() <= MAX_ID_CHARS
            && !name.trim().is_empty()
            && name.chars().count() <= MAX_NAME_CHARS;
        if !storable {
            skipped.push(key.clone());
            continue;
        }
        // Keys differing only in case name one region: the first one wins.
        regions.entry(id).or_insert_with(|| name.to_string());
    }
    if !skipped.is_empty() {
        tracing::warn!(keys = ?skipped, "catalyst regions skipped: empty or too long");
    }
    Ok(regions.into_iter().collect())
}

/// The host of `url`, the only part of it that may be logged.
pub fn host_of(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| "<invalid url>".to_string())
}

/// The error and its causes, without the request URL.
fn error_text(e: reqwest::Error) -> String {
    crate::db::error_chain(&e.without_url())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn production_names_become_upper_case_regions() {
        let body = br#"{
            "prod": {"full_name": {"fra": "Frankfurt", "jnb": "Johannesburg", "bom": "Mumbai"},
                     "urls": ["https://x.example"], "global_url": "https://y.example"},
            "staging": {"full_name": {"ams": "Amsterdam"}}
        }"#;
        assert_eq!(
            parse(body).unwrap(),
            pairs(&[
                ("BOM", "Mumbai"),
                ("FRA", "Frankfurt"),
                ("JNB", "Johannesburg")
            ])
        );
    }

    #[test]
    fn the_shared_fixture_parses() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/catalysts.json"
        );
        let body = std::fs::read(path).expect("tests/fixtures/catalysts.json");
        let regions = parse(&body).unwrap();
        assert!(regions.contains(&("JNB".into(), "Johannesburg".into())));
        assert!(regions.contains(&("BOM".into(), "Mumbai".into())));
        assert!(!regions.iter().any(|(id, _)| id == "AMS"));
        assert_eq!(regions.len(), 7);
    }

    #[test]
    fn an_empty_list_is_fine() {
        assert_eq!(parse(br#"{"prod":{"full_name":{}}}"#).unwrap(), vec![]);
    }

    #[test]
    fn wrong_shapes_are_errors() {
        for body in [
            &br#"[]"#[..],
            br#"{}"#,
            br#"null"#,
            br#"{"prod":[]}"#,
            br#"{"prod":{}}"#,
            br#"{"prod":{"full_name":[1,2]}}"#,
            br#"{"prod":{"full_name":"fra"}}"#,
            br#"{"prod":{"full_name":{"fra":1}}}"#,
            br#"{"prod":{"full_name":{"fra":null}}}"#,
        ] {
            assert!(
                matches!(parse(body), Err(CatalystError::Shape(_))),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn invalid_json_is_an_error() {
        for body in [&b""[..], b"{", b"<html>oops</html>", b"\xff\xfe"] {
            assert!(matches!(parse(body), Err(CatalystError::InvalidJson(_))));
        }
    }

    #[test]
    fn unstorable_entries_are_skipped_and_case_duplicates_merged() {
        let long_id = "x".repeat(57);
        let long_name = "y".repeat(129);
        let body = serde_json::json!({"prod": {"full_name": {
            "": "Nowhere",
            "nam": "",
            long_id: "Long",
            "lng": long_name,
            "nbsp": " ",
            " jnb ": "Johannesburg ",
            "JNB": "Johannesburg again",
        }}})
        .to_string();
        // The name is kept as given; the id is trimmed and upper-cased.
        assert_eq!(
            parse(body.as_bytes()).unwrap(),
            pairs(&[("JNB", "Johannesburg ")])
        );
    }

    #[test]
    fn only_the_host_is_logged() {
        assert_eq!(
            host_of("https://user:pw@catalyst.example.com:8443/x.json?token=secret"),
            "catalyst.example.com"
        );
        assert_eq!(host_of("not a url"), "<invalid url>");
    }
}
