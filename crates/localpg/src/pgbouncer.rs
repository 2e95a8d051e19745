//! PgBouncer in transaction pooling mode in front of a server, the way Neon's and
//! Supabase's pooled endpoints sit in front of PostgreSQL, so the service can be tested
//! behind one.

use crate::error::Error;
use crate::sys;
use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian's `pgbouncer` package installs the binary.
const DEBIAN_BINARY: &str = "/usr/sbin/pgbouncer";
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// The server PgBouncer forwards to, and the role it logs in as.
#[derive(Debug, Clone)]
pub struct Upstream {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Option<String>,
}

/// A running PgBouncer; stopped and its files removed when dropped.
pub struct PgBouncer {
    port: u16,
    dir: PathBuf,
    child: Child,
}

impl PgBouncer {
    /// Starts PgBouncer in transaction mode with at most `pool_size` server connections
    /// per database: a small pool makes clients share server connections, which is what
    /// breaks session state (named prepared statements, session advisory locks).
    /// Clients log in as any user without a password; every database name is forwarded.
    pub fn start(upstream: &Upstream, pool_size: u32) -> Result<PgBouncer, Error> {
        let binary = find_binary()?;
        let user = sys::server_user()?;
        let dir = std::env::temp_dir().join(format!(
            "localpg-bouncer-{}-{}",
            std::process::id(),
            unique()
        ));
        fs::create_dir_all(&dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        // Readable by the user PgBouncer runs as when we are root.
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))
            .map_err(|e| Error::io(format!("chmod {}", dir.display()), e))?;
        let mut last = None;
        for _ in 0..3 {
            let port = crate::free_port()?;
            match launch(&binary, &dir, upstream, pool_size, port, user.as_ref()) {
                Ok(child) => return Ok(PgBouncer { port, dir, child }),
                Err(e) => last = Some(e),
            }
        }
        let _ = fs::remove_dir_all(&dir);
        Err(last.unwrap_or(Error::NotRunning))
    }

    /// Whether a PgBouncer binary can be found (`PGBOUNCER`, Debian's path, `PATH`).
    pub fn installed() -> bool {
        find_binary().is_ok()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Connection URL for `database` through the pooler.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://pooler@127.0.0.1:{}/{database}", self.port)
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        // SIGINT would wait for clients to leave; SIGTERM closes everything now.
        sys::send_signal(self.child.id(), libc::SIGTERM);
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

fn find_binary() -> Result<PathBuf, Error> {
    if let Some(path) = std::env::var_os("PGBOUNCER").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    let candidates = std::iter::once(PathBuf::from(DEBIAN_BINARY)).chain(
        std::env::var_os("PATH")
            .map(|p| {
                std::env::split_paths(&p)
                    .map(|d| d.join("pgbouncer"))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default(),
    );
    for candidate in candidates {
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    Err(Error::Command {
        program: "pgbouncer".into(),
        detail: "not found: install Debian's package (apt-get install pgbouncer) or set PGBOUNCER"
            .into(),
    })
}

fn config(upstream: &Upstream, pool_size: u32, port: u16) -> String {
    let password = upstream
        .password
        .as_deref()
        .map(|p| format!(" password={p}"))
        .unwrap_or_default();
    format!(
        "[databases]\n\
         * = host={host} port={upstream_port} user={user}{password}\n\
         [pgbouncer]\n\
         listen_addr = 127.0.0.1\n\
         listen_port = {port}\n\
         unix_socket_dir =\n\
         auth_type = any\n\
         pool_mode = transaction\n\
         default_pool_size = {pool_size}\n\
         max_client_conn = 1000\n\
         server_reset_query =\n\
         ignore_startup_parameters = extra_float_digits\n",
        host = upstream.host,
        upstream_port = upstream.port,
        user = upstream.user,
    )
}

fn launch(
    binary: &Path,
    dir: &Path,
    upstream: &Upstream,
    pool_size: u32,
    port: u16,
    user: Option<&sys::ServerUser>,
) -> Result<Child, Error> {
    let ini = dir.join("pgbouncer.ini");
    fs::write(&ini, config(upstream, pool_size, port))
        .map_err(|e| Error::io(format!("writing {}", ini.display()), e))?;
    fs::set_permissions(&ini, fs::Permissions::from_mode(0o644))
        .map_err(|e| Error::io(format!("chmod {}", ini.display()), e))?;
    let log_path = dir.join("pgbouncer.log");
    let log = fs::File::create(&log_path)
        .map_err(|e| Error::io(format!("creating {}", log_path.display()), e))?;
    let log_err = log
        .try_clone()
        .map_err(|e| Error::io("duplicating the log file handle", e))?;
    let mut cmd = Command::new(binary);
    cmd.arg(&ini)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err);
    // PgBouncer refuses to run as root.
    sys::run_as(&mut cmd, user);
    sys::set_parent_death_signal(&mut cmd, libc::SIGTERM);
    let mut child = cmd
        .spawn()
        .map_err(|e| Error::io(format!("starting {}", binary.display()), e))?;
    let deadline = Instant::now() + READY_TIMEOUT;
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(Error::StartFailed {
                status: status.to_string(),
                log: Some(log_path.clone()),
                log_tail: crate::error::tail_one_line(
                    &fs::read_to_string(&log_path).unwrap_or_default(),
                    5,
                ),
            });
        }
        if TcpStream::connect_timeout(&address, Duration::from_millis(100)).is_ok() {
            return Ok(child);
        }
        if Instant::now() > deadline {
            sys::send_signal(child.id(), libc::SIGKILL);
            let _ = child.wait();
            return Err(Error::StartTimeout {
                secs: READY_TIMEOUT.as_secs(),
                log: Some(log_path),
                log_tail: String::new(),
            });
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
