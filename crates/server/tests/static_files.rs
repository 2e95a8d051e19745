//! The dashboard at `/`: the local server answers every file of `public/` (embedded in the
//! binary at compile time) byte for byte with its content type, `index.html` for `/`, 404
//! for anything else, no way out of `public/`, and the `/api` routes unchanged. Over real
//! HTTP, from a working directory that has no `public/`. The server is pointed at a
//! database that is not there: static files need none, and the API answers 503 as always.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn public_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../public")
}

/// Starts the server and returns once it logged that it listens.
async fn start(port: u16) -> Child {
    let cwd = std::env::temp_dir();
    let mut child = Command::new(env!("CARGO_BIN_EXE_leaderboard"))
        .current_dir(&cwd)
        // Nothing listens on port 1: the API answers 503, static files need no database.
        .env(
            "POSTGRES",
            "postgres://nobody@127.0.0.1:1/none?sslmode=disable",
        )
        .env("DB_TIMEOUT", "2")
        .env("LOG_LEVEL", "info")
        .env("PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start leaderboard");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("Server starting on port") {
                return;
            }
        }
        panic!("the server exited before listening");
    })
    .await
    .expect("the server listens within 30 s");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    child
}

/// One request exactly as written (no client normalises the path), the raw answer back.
async fn raw(port: u16, request: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("send request");
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("an answer within 10 s")
        .expect("read answer");
    String::from_utf8_lossy(&answer).into_owned()
}

fn status_line(answer: &str) -> &str {
    answer.lines().next().unwrap_or("")
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read public/") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files(&path, out);
        } else if !path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        {
            out.push(path);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_local_server_serves_public_at_the_root() {
    let port = free_port();
    let _server = start(port).await;
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();

    // `/` is index.html.
    let index = client.get(format!("{base}/")).send().await.expect("GET /");
    assert_eq!(index.status(), 200);
    assert_eq!(index.headers()["content-type"], "text/html; charset=utf-8");
    let body = index.bytes().await.expect("body");
    let on_disk = std::fs::read(public_dir().join("index.html")).expect("public/index.html");
    assert_eq!(body.as_ref(), on_disk.as_slice());

    // Every file of public/, byte for byte; JavaScript modules as JavaScript (browsers
    // refuse a module of any other type).
    let root = public_dir().canonicalize().expect("public/");
    let mut all = Vec::new();
    files(&root, &mut all);
    assert!(all.len() > 3, "public/ holds the dashboard: {all:?}");
    let mut modules = 0;
    for path in &all {
        let url = path
            .strip_prefix(&root)
            .expect("under public/")
            .to_string_lossy()
            .replace('\\', "/");
        let answer = client
            .get(format!("{base}/{url}"))
            .send()
            .await
            .expect("GET a file");
        assert_eq!(answer.status(), 200, "/{url}");
        let content_type = answer.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .to_string();
        if url.ends_with(".js") {
            assert_eq!(content_type, "text/javascript; charset=utf-8", "/{url}");
            modules += 1;
        }
        if url.ends_with(".css") {
            assert_eq!(content_type, "text/css; charset=utf-8", "/{url}");
        }
        let body = answer.bytes().await.expect("body");
        assert_eq!(
            body.as_ref(),
            std::fs::read(path).expect("read").as_slice(),
            "/{url}"
        );
    }
    assert!(modules >= 2, "the dashboard's modules and uPlot");

    // HEAD: the same headers, no body.
    let head = client
        .head(format!("{base}/"))
        .send()
        .await
        .expect("HEAD /");
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-type"], "text/html; charset=utf-8");
    assert_eq!(
        head.headers()["content-length"].to_str().ok(),
        Some(on_disk.len().to_string().as_str())
    );
    assert!(head.bytes().await.expect("body").is_empty());

    // Missing files: the server's JSON 404.
    for missing in ["/nope.html", "/vendor/", "/index.html/", "/api"] {
        let answer = client
            .get(format!("{base}{missing}"))
            .send()
            .await
            .expect("GET missing");
        assert_eq!(answer.status(), 404, "{missing}");
        assert_eq!(
            answer.headers()["content-type"],
            "application/json",
            "{missing}"
        );
    }

    // Other methods on a file: 405 with Allow.
    let post = client
        .post(format!("{base}/"))
        .send()
        .await
        .expect("POST /");
    assert_eq!(post.status(), 405);
    assert_eq!(post.headers()["allow"], "GET, HEAD");

    // No way out of public/: the repository (Cargo.toml beside public/) and the system.
    for path in [
        "/../Cargo.toml",
        "/%2e%2e/Cargo.toml",
        "/vendor/../../Cargo.toml",
        "/..%2fCargo.toml",
        "/%2e%2e%2f%2e%2e%2fetc/passwd",
        "//etc/passwd",
        "/../../../../etc/passwd",
    ] {
        let answer = raw(
            port,
            &format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"),
        )
        .await;
        assert!(status_line(&answer).contains(" 404 "), "{path}: {answer}");
        assert!(
            !answer.contains("[workspace]") && !answer.contains("root:"),
            "{path}"
        );
    }

    // The API is unchanged: JSON, here a 503 since the database is away.
    let regions = client
        .get(format!("{base}/api/regions"))
        .send()
        .await
        .expect("GET /api/regions");
    assert_eq!(regions.status(), 503);
    assert_eq!(regions.headers()["content-type"], "application/json");
    let unknown = client
        .get(format!("{base}/api/index.html"))
        .send()
        .await
        .expect("GET /api/index.html");
    assert_eq!(unknown.status(), 404);
}
