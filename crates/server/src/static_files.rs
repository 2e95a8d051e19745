//! The dashboard: the files of `public/`, embedded at compile time (see `build.rs`), served
//! at `/` by the local server as Vercel serves them from its CDN. Only GET and HEAD; `/` and
//! any directory path give its `index.html`. Lookups go to the embedded table only, never to
//! the file system, so no path (`..`, encoded or not) can reach anything else.

use bytes::Bytes;
use http::{header, Method, Response, StatusCode};

include!(concat!(env!("OUT_DIR"), "/public_files.rs"));

/// The embedded file for a URL path, if any (`/` and `…/` mean their `index.html`).
pub fn lookup(path: &str) -> Option<&'static [u8]> {
    let find = |p: &str| {
        FILES
            .binary_search_by(|(url, _)| (*url).cmp(p))
            .ok()
            .map(|i| FILES[i].1)
    };
    if path.ends_with('/') {
        find(&format!("{path}index.html"))
    } else {
        find(path)
    }
}

/// The `Content-Type` of a file by its extension.
pub fn content_type(path: &str) -> &'static str {
    let name = path.rsplit('/').next().unwrap_or(path);
    let extension = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match extension.as_deref() {
        Some("html") | Some("htm") => "text/html; charset=utf-8",
        Some("js") | Some("mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") | Some("map") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("txt") | Some("md") | None => "text/plain; charset=utf-8",
        Some(_) => "application/octet-stream",
    }
}

/// [`leaderboard::server::Fallback`]: the embedded file, or `None` (the server's 404).
pub fn answer(method: &Method, path: &str) -> Option<Response<Bytes>> {
    let file = lookup(path)?;
    if method != Method::GET && method != Method::HEAD {
        return Response::builder()
            .status(StatusCode::METHOD_NOT_ALLOWED)
            .header(header::ALLOW, "GET, HEAD")
            .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(Bytes::from_static(b"method not allowed\n"))
            .ok();
    }
    let served = if path.ends_with('/') {
        "index.html"
    } else {
        path
    };
    let body = if method == Method::HEAD {
        Bytes::new()
    } else {
        Bytes::from_static(file)
    };
    Response::builder()
        .header(header::CONTENT_TYPE, content_type(served))
        .header(header::CONTENT_LENGTH, file.len())
        // Embedded in this build: revalidate, so a rebuilt server is seen at once.
        .header(header::CACHE_CONTROL, "no-cache")
        .header("X-Content-Type-Options", "nosniff")
        .body(body)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_and_holds_the_index() {
        assert!(FILES.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(lookup("/").is_some());
        assert_eq!(lookup("/"), lookup("/index.html"));
        assert!(lookup("/../Cargo.toml").is_none());
        assert!(lookup("").is_none());
    }

    #[test]
    fn content_types_by_extension() {
        assert_eq!(content_type("/app.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("/a/LICENSE"), "text/plain; charset=utf-8");
        assert_eq!(content_type("/style.CSS"), "text/css; charset=utf-8");
    }
}
