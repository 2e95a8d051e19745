//! What the benchmark examples share: a throwaway PostgreSQL, connections to it, free ports.

use localpg::{Options, PgServer};

/// The database the examples create on their throwaway server.
pub const DATABASE: &str = "leaderboard";

/// A throwaway PostgreSQL (removed at exit) with [`DATABASE`] created, and its URL;
/// `configure` adjusts the server's options first (fsync, settings).
pub async fn start_postgres(
    configure: impl FnOnce(&mut Options) + Send + 'static,
) -> Result<(PgServer, String), String> {
    let pg = tokio::task::spawn_blocking(move || -> Result<PgServer, localpg::Error> {
        let mut options = Options::ephemeral();
        configure(&mut options);
        let pg = PgServer::start(options)?;
        localpg::cleanup_at_exit(&pg);
        pg.create_database(DATABASE)?;
        Ok(pg)
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| format!("starting PostgreSQL: {e}"))?;
    let url = pg.url(DATABASE);
    Ok((pg, url))
}

/// One plain connection (the throwaway server speaks no TLS).
pub async fn connect(url: &str) -> Result<tokio_postgres::Client, String> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .map_err(|e| format!("connecting to the database: {e}"))?;
    tokio::spawn(connection);
    Ok(client)
}

/// A port nobody listens on right now.
pub fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("finding a free port: {e}"))
}
