//! The README's run command: `leaderboard` with no POSTGRES starts its own database,
//! serves the API, stops cleanly on SIGTERM and keeps its data for the next start.

// Every answer is also checked against docs/openapi.json.
#[allow(dead_code)] // the harness's other helpers
#[path = "../../../tests/common/openapi.rs"]
mod openapi;

use openapi::SendChecked;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Starts the server on `data_dir` and returns it with the database URL and the
/// generated secret it printed.
async fn start(data_dir: &Path, port: u16) -> (Child, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_leaderboard"))
        .env_remove("POSTGRES")
        .env_remove("SECRET")
        .env("PORT", port.to_string())
        .env("LEADERBOARD_DATA_DIR", data_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start leaderboard");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let (url, secret) = tokio::time::timeout(Duration::from_secs(60), async {
        let mut url = None;
        while let Ok(Some(line)) = lines.next_line().await {
            let embedded = "POSTGRES is not set: using the embedded PostgreSQL at ";
            if let Some(rest) = line.strip_prefix(embedded) {
                url = rest.split_whitespace().next().map(str::to_string);
            }
            if let Some(secret) = line.strip_prefix("SECRET=") {
                return url.zip(Some(secret.to_string()));
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .expect("the server prints its database URL and a generated secret");
    // Keep reading, so the server never writes into a closed pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, url, secret)
}

async fn terminate(mut child: Child) {
    let pid = child.id().expect("running") as i32;
    // SAFETY: sending a signal to our own child process.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("the server exits after SIGTERM")
        .expect("wait");
    assert!(status.success(), "exit status {status:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_postgres_the_server_runs_its_own_database_and_keeps_the_data() {
    let data =
        std::env::temp_dir().join(format!("leaderboard-embedded-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let port = free_port();

    let (server, url, secret) = start(&data, port).await;
    assert!(url.starts_with("postgres://"), "{url}");
    let regions: serde_json::Value = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/api/regions"))
        .send_checked()
        .await
        .expect("regions")
        .json()
        .await
        .expect("JSON");
    assert_eq!(regions["regions"].as_array().map(Vec::len), Some(26));
    let body = r#"{"region":"FRA","orchestrator":"0x01","success_rate":1,"round_trip_time":1.2}"#;
    let signature = leaderboard::auth::sign(&secret, body.as_bytes());
    let posted = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/api/post_stats"))
        .header("authorization", signature)
        .body(body)
        .send_checked()
        .await
        .expect("post");
    assert_eq!(
        posted.status().as_u16(),
        200,
        "the generated secret signs posts"
    );
    let missing = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/nothing/here"))
        .send_checked()
        .await
        .expect("404");
    assert_eq!(missing.status().as_u16(), 404);

    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("the printed URL connects");
    tokio::spawn(connection);
    client
        .batch_execute(
            "INSERT INTO regions (name, display_name, job_type_id) VALUES ('KEPT', 'Kept', 1)",
        )
        .await
        .expect("insert");
    drop(client);
    terminate(server).await;
    assert!(
        !data.join("postmaster.pid").exists(),
        "the embedded PostgreSQL is stopped with the server"
    );

    let (server, _, second_secret) = start(&data, port).await;
    assert_ne!(secret, second_secret, "a new secret for every run");
    let regions: serde_json::Value = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/api/regions"))
        .send_checked()
        .await
        .expect("regions")
        .json()
        .await
        .expect("JSON");
    let ids: Vec<&str> = regions["regions"]
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|r| r["id"].as_str())
        .collect();
    assert!(ids.contains(&"KEPT"), "data survives a restart: {ids:?}");
    terminate(server).await;
    std::fs::remove_dir_all(&data).expect("clean up");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_postgresql_binaries_it_says_so_in_one_line() {
    let empty = std::env::temp_dir().join(format!("leaderboard-no-pg-{}", std::process::id()));
    std::fs::create_dir_all(&empty).expect("dir");
    let output = Command::new(env!("CARGO_BIN_EXE_leaderboard"))
        .env_remove("POSTGRES")
        .env("PG_BINDIR", &empty)
        .env("PORT", free_port().to_string())
        .env("LEADERBOARD_DATA_DIR", empty.join("data"))
        .output()
        .await
        .expect("run");
    std::fs::remove_dir_all(&empty).expect("clean up");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains("apt-get install postgresql"), "{stderr}");
}
