//! `leaderboard serve` (the default): every route on one port, the dashboard at `/`, and
//! without `POSTGRES` an embedded PostgreSQL from the machine's server binaries.

use crate::static_files;
use leaderboard::{server, App, Config};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::net::TcpListener;

/// The embedded server's database.
pub(crate) const EMBEDDED_DATABASE: &str = "leaderboard";

pub(crate) async fn run() -> Result<(), String> {
    let (mut config, warnings) = Config::from_env();
    leaderboard::logging::init(&config.log_level);
    for w in &warnings {
        tracing::warn!(variable = w.variable, "{}", w.message);
    }
    let port = match std::env::var("PORT") {
        Ok(p) => p
            .trim()
            .parse::<u16>()
            .map_err(|_| format!("PORT={p:?} is not a port number"))?,
        Err(_) => 8080,
    };
    let listener = TcpListener::bind(("0.0.0.0", port))
        .await
        .map_err(|e| format!("cannot listen on port {port}: {e}"))?;

    let embedded = match config.postgres {
        Some(_) => None,
        None => {
            let (pg, url) = start_embedded().await?;
            say!("{}", embedded_notice(&pg, &url));
            config.postgres = Some(url);
            if config.secret.is_none() {
                config.secret = Some(dev_secret(port)?);
            }
            Some(pg)
        }
    };
    let app = Arc::new(App::new(config));
    tokio::spawn({
        let app = app.clone();
        async move { app.warm_up().await }
    });
    tracing::info!(port, "Server starting on port {port}");
    // The dashboard (public/, embedded) at `/`; every /api route as before.
    server::serve_with(app, listener, Some(static_files::answer), shutdown_signal()).await;
    tracing::info!("stopped");
    if let Some(mut pg) = embedded {
        pg.stop()
            .map_err(|e| format!("stopping the embedded PostgreSQL: {e}"))?;
    }
    Ok(())
}

/// Starts (or reuses) the embedded server and makes sure its database exists.
pub(crate) async fn start_embedded() -> Result<(localpg::PgServer, String), String> {
    // The container image sets LEADERBOARD_EMBEDDED_DB=off: no embedded database there.
    let switch = std::env::var("LEADERBOARD_EMBEDDED_DB").unwrap_or_default();
    if switch.trim().eq_ignore_ascii_case("off") {
        return Err(
            "POSTGRES is required (LEADERBOARD_EMBEDDED_DB=off: no embedded database)".into(),
        );
    }
    let dir = data_dir();
    let pg = tokio::task::spawn_blocking(move || {
        localpg::PgServer::start(localpg::Options::persistent(dir))
    })
    .await
    .map_err(|e| format!("starting the embedded PostgreSQL: {e}"))?
    .map_err(|e| e.to_string())?;
    let admin_url = pg.url("postgres");
    let (client, connection) = tokio_postgres::connect(&admin_url, tokio_postgres::NoTls)
        .await
        .map_err(|e| format!("connecting to the embedded PostgreSQL: {e}"))?;
    tokio::spawn(connection);
    let exists = client
        .query_typed_opt(
            "SELECT 1 FROM pg_database WHERE datname = $1",
            &[(&EMBEDDED_DATABASE, tokio_postgres::types::Type::TEXT)],
        )
        .await
        .map_err(|e| format!("embedded PostgreSQL: {e}"))?
        .is_some();
    if !exists {
        client
            .batch_execute(&format!("CREATE DATABASE {EMBEDDED_DATABASE}"))
            .await
            .map_err(|e| format!("embedded PostgreSQL: {e}"))?;
    }
    let url = pg.url(EMBEDDED_DATABASE);
    Ok((pg, url))
}

pub(crate) fn embedded_notice(pg: &localpg::PgServer, url: &str) -> String {
    format!(
        "POSTGRES is not set: using the embedded PostgreSQL at {url} (data in {})",
        pg.data_dir().display()
    )
}

/// A secret for this run only, printed with a ready-to-paste signed post, so a newcomer
/// can post a stat in the first minute. Only the local server on its own embedded
/// database does this; deployed functions refuse posts without SECRET.
fn dev_secret(port: u16) -> Result<String, String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| format!("generating a secret: {e}"))?;
    let secret = hex::encode(bytes);
    let body = r#"{"region":"FRA","orchestrator":"0x0000000000000000000000000000000000000001","success_rate":1,"round_trip_time":1.2,"seg_duration":2,"errors":[],"timestamp":1700000000}"#;
    say!("SECRET is not set: posts to this local server are signed with a secret generated for this run:");
    say!("SECRET={secret}");
    say!("Post a stat (then read it back with /api/raw_stats?orchestrator=0x0000000000000000000000000000000000000001):");
    say!("body='{body}'");
    say!(
        "curl -X POST localhost:{port}/api/post_stats -H 'Content-Type: application/json' \\\n  \
         -H \"Authorization: $(printf %s \"$body\" | openssl dgst -sha256 -hmac '{secret}' | awk '{{print $NF}}')\" \\\n  \
         --data-binary \"$body\""
    );
    Ok(secret)
}

/// `.data/postgres` in the working directory (the project), unless the server user
/// cannot reach it (a checkout under /root while running as root).
pub(crate) fn data_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("LEADERBOARD_DATA_DIR") {
        return PathBuf::from(dir);
    }
    let local = std::env::current_dir()
        .unwrap_or_else(|_| PathBuf::from("."))
        .join(".data")
        .join("postgres");
    if localpg::dir_usable_by_server_user(&local) {
        local
    } else {
        let fallback = std::env::temp_dir().join("leaderboard-postgres");
        tracing::warn!(
            wanted = %local.display(),
            using = %fallback.display(),
            "the PostgreSQL server user cannot reach the project directory; keeping data elsewhere"
        );
        fallback
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
