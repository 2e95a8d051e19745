//! Start and stop a throwaway or persistent PostgreSQL server from the system's
//! PostgreSQL binaries.
//!
//! Used for two things: a local dev server that needs a database when none is
//! configured, and test harnesses (one server per test binary, one database per test).
//!
//! ```no_run
//! let server = localpg::PgServer::start(localpg::Options::ephemeral())?;
//! server.create_database("t1")?;
//! let url = server.url("t1");
//! # let _ = url;
//! # Ok::<(), localpg::Error>(())
//! ```
//!
//! When the process runs as root, initdb and postgres are run as the `postgres` system
//! user (they refuse to run as root), so data directories must be reachable by it; see
//! [`dir_usable_by_server_user`].

mod bindir;
mod error;
mod pgbouncer;
mod sys;
mod wire;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, Mutex, MutexGuard, Once, TryLockError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use bindir::find_bindir;
pub use error::Error;
pub use pgbouncer::{PgBouncer, Upstream};

use error::tail_one_line;
use sys::ServerUser;

/// How long a server may take to accept connections (initdb excluded).
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long fast shutdown may take before we escalate to SIGQUIT/SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// Name prefix of ephemeral data dirs, used by the stale-dir sweep.
const EPHEMERAL_PREFIX: &str = "localpg-";
/// Records which process created an ephemeral dir so later runs can sweep it.
const OWNER_PID_FILE: &str = "owner.pid";
const LOG_FILE: &str = "server.log";
const HBA_FILE: &str = "localpg_hba.conf";
const CERT_FILE: &str = "server.crt";
const KEY_FILE: &str = "server.key";
/// The certificate is valid for 2 days; regenerate it once it is a day old.
const CERT_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// Unix socket paths are limited to ~107 bytes (sun_path), including the file name.
const MAX_SOCKET_PATH: usize = 100;

/// What server to start and how to treat its data.
#[derive(Debug, Clone)]
pub struct Options {
    /// Data directory; created if missing, initdb runs only if it has no `PG_VERSION`.
    pub data_dir: PathBuf,
    /// TCP port on 127.0.0.1; `None` picks a free one.
    pub port: Option<u16>,
    /// Remove `data_dir` when the server is stopped or dropped (throwaway test servers).
    pub ephemeral: bool,
    /// `false` trades crash safety for speed (tests).
    pub fsync: bool,
    /// Serve TLS with a self-signed certificate and reject non-TLS TCP connections, to
    /// exercise the same TLS code path as production.
    pub tls: bool,
    /// Extra server settings, passed as `-c name=value`.
    pub settings: Vec<(String, String)>,
}

impl Options {
    /// A fresh, unique throwaway data dir under the temp dir, tuned for speed (fsync off).
    pub fn ephemeral() -> Options {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!(
            "{EPHEMERAL_PREFIX}{}-{}-{nanos:x}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        Options {
            data_dir: std::env::temp_dir().join(name),
            port: None,
            ephemeral: true,
            fsync: false,
            tls: false,
            settings: Vec::new(),
        }
    }

    /// A data dir that survives restarts (dev server), with fsync on.
    pub fn persistent(data_dir: impl Into<PathBuf>) -> Options {
        Options {
            data_dir: data_dir.into(),
            port: None,
            ephemeral: false,
            fsync: true,
            tls: false,
            settings: Vec::new(),
        }
    }
}

/// A running (or stopped) local PostgreSQL server.
///
/// Dropping it stops the server (and removes the data dir if ephemeral). It is `Send +
/// Sync`, so it can live in a `static` shared by all tests of a binary; in that case
/// call [`cleanup_at_exit`], since statics are never dropped.
pub struct PgServer {
    data_dir: PathBuf,
    port: u16,
    cert: Option<PathBuf>,
    bindir: PathBuf,
    inner: Arc<Mutex<Inner>>,
}

/// Mutable state, shared with the at-exit registry.
struct Inner {
    cfg: Config,
    port: u16,
    running: Option<Running>,
}

/// Resolved, immutable start parameters.
struct Config {
    opts: Options,
    bindir: PathBuf,
    user: Option<ServerUser>,
}

/// A postmaster child, owned and reaped by a dedicated thread.
///
/// The thread exists because PR_SET_PDEATHSIG fires when the *spawning thread* exits:
/// spawning from the caller's (possibly short-lived test) thread would kill the server
/// as soon as that thread ends.
struct Running {
    pid: u32,
    exit_rx: Receiver<String>,
    exited: Option<String>,
    thread: Option<JoinHandle<()>>,
}

impl Running {
    /// Non-blocking: the exit status description once the postmaster has exited.
    fn poll_exit(&mut self) -> Option<&str> {
        if self.exited.is_none() {
            match self.exit_rx.try_recv() {
                Ok(status) => self.exited = Some(status),
                Err(TryRecvError::Disconnected) => self.exited = Some("unknown status".into()),
                Err(TryRecvError::Empty) => {}
            }
        }
        self.exited.as_deref()
    }

    /// Fast shutdown (SIGINT), escalating to SIGQUIT and SIGKILL if it hangs.
    fn stop(mut self) -> Result<(), Error> {
        if self.poll_exit().is_none() {
            let steps = [
                (libc::SIGINT, STOP_TIMEOUT),
                (libc::SIGQUIT, Duration::from_secs(5)),
                (libc::SIGKILL, Duration::from_secs(5)),
            ];
            let mut exited = false;
            for (signal, wait) in steps {
                sys::send_signal(self.pid, signal);
                match self.exit_rx.recv_timeout(wait) {
                    Ok(_) | Err(RecvTimeoutError::Disconnected) => {
                        exited = true;
                        break;
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                }
            }
            if !exited {
                return Err(Error::StopTimeout { pid: self.pid });
            }
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        Ok(())
    }
}

impl Inner {
    fn stop(&mut self, remove_data: bool) -> Result<(), Error> {
        if let Some(running) = self.running.take() {
            running.stop()?;
        }
        if remove_data {
            remove_dir(&self.cfg.opts.data_dir)?;
        }
        Ok(())
    }

    fn running_pid(&mut self) -> Option<u32> {
        let running = self.running.as_mut()?;
        if running.poll_exit().is_some() {
            None
        } else {
            Some(running.pid)
        }
    }
}

impl PgServer {
    /// Finds the binaries, runs initdb if needed, starts postgres and waits (up to ~30 s)
    /// until it accepts connections.
    ///
    /// Any thread may call this: the server is owned by an internal thread, so it keeps
    /// running after the calling thread exits.
    pub fn start(opts: Options) -> Result<PgServer, Error> {
        let bindir = find_bindir()?;
        let user = sys::server_user()?;
        let data_dir = std::path::absolute(&opts.data_dir)
            .map_err(|e| Error::io(format!("resolving data dir {}", opts.data_dir.display()), e))?;
        let opts = Options { data_dir, ..opts };
        if opts.ephemeral {
            sweep_stale_once();
        }
        let cfg = Config { opts, bindir, user };
        let started = prepare(&cfg).and_then(|()| launch_retrying(&cfg, cfg.opts.port));
        let (running, port) = match started {
            Ok(ok) => ok,
            Err(e) => {
                if !cfg.opts.ephemeral {
                    return Err(e);
                }
                let _ = remove_dir(&cfg.opts.data_dir);
                // The log went away with the dir; its tail is in the message.
                return Err(match e {
                    Error::StartFailed {
                        status, log_tail, ..
                    } => Error::StartFailed {
                        status,
                        log: None,
                        log_tail,
                    },
                    Error::StartTimeout { secs, log_tail, .. } => Error::StartTimeout {
                        secs,
                        log: None,
                        log_tail,
                    },
                    other => other,
                });
            }
        };
        Ok(PgServer {
            data_dir: cfg.opts.data_dir.clone(),
            port,
            cert: cfg.opts.tls.then(|| cfg.opts.data_dir.join(CERT_FILE)),
            bindir: cfg.bindir.clone(),
            inner: Arc::new(Mutex::new(Inner {
                cfg,
                port,
                running: Some(running),
            })),
        })
    }

    /// The TCP port on 127.0.0.1; stays the same across [`restart`](Self::restart).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Connection URL for `database` as the `postgres` superuser (trust auth, no password).
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Self-signed server certificate (PEM) when started with `tls`, for clients to
    /// trust as a root certificate (it is valid for `localhost` and `127.0.0.1`).
    pub fn cert_path(&self) -> Option<&Path> {
        self.cert.as_deref()
    }

    /// The (absolute) data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Directory holding `initdb`, `postgres`, `psql`, ... that this server was started from.
    pub fn bindir(&self) -> &Path {
        &self.bindir
    }

    /// The server log (postgres' stdout/stderr), useful when a test fails.
    pub fn log_path(&self) -> PathBuf {
        self.data_dir.join(LOG_FILE)
    }

    /// Unix socket directory, or `None` if the data dir path is too long for a socket
    /// (then only TCP is available).
    pub fn socket_dir(&self) -> Option<&Path> {
        socket_dir_for(&self.data_dir)
    }

    /// The postmaster pid while it is running.
    pub fn pid(&self) -> Option<u32> {
        lock(&self.inner).running_pid()
    }

    /// Whether the postmaster is currently running.
    pub fn is_running(&self) -> bool {
        self.pid().is_some()
    }

    /// Creates a database (one per test keeps tests independent) with `CREATE DATABASE`,
    /// sent over TCP (over the unix socket for a TLS-only server), so no client program is
    /// needed beside the server binaries. A TLS-only server whose data dir path is too long
    /// for a socket is the one case left to the `createdb` program (it speaks TLS).
    pub fn create_database(&self, name: &str) -> Result<(), Error> {
        let tls = {
            // Not held while the database is created, so parallel tests can create
            // databases concurrently.
            let mut inner = lock(&self.inner);
            if inner.running_pid().is_none() {
                return Err(Error::NotRunning);
            }
            inner.cfg.opts.tls
        };
        let sql = format!("CREATE DATABASE {}", wire::quote_ident(name));
        let socket = self
            .socket_dir()
            .map(|dir| dir.join(format!(".s.PGSQL.{}", self.port)));
        let target = match (tls, &socket) {
            (false, _) => wire::Target::Tcp(self.port),
            (true, Some(socket)) => wire::Target::Socket(socket),
            (true, None) => return self.createdb_over_tls(name),
        };
        wire::simple_query(target, sys::SERVER_USER, "postgres", &sql, &sql)?;
        Ok(())
    }

    fn createdb_over_tls(&self, name: &str) -> Result<(), Error> {
        let mut cmd = Command::new(self.bindir.join("createdb"));
        cmd.args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", sys::SERVER_USER, "--"])
            .arg(name);
        sys::clean_pg_env(&mut cmd);
        cmd.env("PGSSLMODE", "require");
        run_checked(&mut cmd, "createdb")?;
        Ok(())
    }

    /// Fast shutdown (SIGINT) and wait for exit; removes the data dir if ephemeral.
    /// Idempotent. After this, [`restart`](Self::restart) starts a fresh server.
    pub fn stop(&mut self) -> Result<(), Error> {
        let mut inner = lock(&self.inner);
        let remove = inner.cfg.opts.ephemeral;
        inner.stop(remove)
    }

    /// Stops but keeps the data even if ephemeral, to simulate "database unreachable";
    /// [`restart`](Self::restart) brings it back.
    pub fn stop_keep_data(&mut self) -> Result<(), Error> {
        lock(&self.inner).stop(false)
    }

    /// Stops (keeping data) and starts again on the same port and data dir, to test that
    /// clients recover after the database comes back.
    pub fn restart(&mut self) -> Result<(), Error> {
        let mut inner = lock(&self.inner);
        inner.stop(false)?;
        prepare(&inner.cfg)?;
        let (running, _) = launch_retrying(&inner.cfg, Some(inner.port))?;
        inner.running = Some(running);
        Ok(())
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let mut inner = lock(&self.inner);
        let remove = inner.cfg.opts.ephemeral;
        let _ = inner.stop(remove);
    }
}

impl std::fmt::Debug for PgServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgServer")
            .field("data_dir", &self.data_dir)
            .field("port", &self.port)
            .field("tls", &self.cert.is_some())
            .finish()
    }
}

/// Locks, ignoring poisoning: the state stays consistent because we never panic while
/// holding the lock, and Drop/at-exit must never panic.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Servers to stop (and remove if ephemeral) when the process exits.
static AT_EXIT: Mutex<Vec<Arc<Mutex<Inner>>>> = Mutex::new(Vec::new());

/// Registers `server` to be stopped (and its data dir removed if ephemeral) when the
/// process exits via `exit()`/returning from `main` (the test harness does).
///
/// Needed because a server kept in a `static` is never dropped. Without it the server
/// still dies with the process (parent-death signal), but an ephemeral data dir would be
/// left behind until a later run sweeps it. The server stays usable.
pub fn cleanup_at_exit(server: &PgServer) {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        // SAFETY: registering a plain extern "C" fn that never unwinds.
        unsafe {
            libc::atexit(run_at_exit);
        }
    });
    lock(&AT_EXIT).push(Arc::clone(&server.inner));
}

extern "C" fn run_at_exit() {
    // Never block process exit forever on a lock held by some thread killed mid-operation.
    let servers = match try_lock_for(&AT_EXIT, Duration::from_secs(2)) {
        Some(mut list) => std::mem::take(&mut *list),
        None => return,
    };
    for server in servers {
        if let Some(mut inner) = try_lock_for(&server, Duration::from_secs(2)) {
            let remove = inner.cfg.opts.ephemeral;
            let _ = inner.stop(remove);
        }
    }
}

fn try_lock_for<T>(m: &Mutex<T>, wait: Duration) -> Option<MutexGuard<'_, T>> {
    let deadline = Instant::now() + wait;
    loop {
        match m.try_lock() {
            Ok(guard) => return Some(guard),
            Err(TryLockError::Poisoned(e)) => return Some(e.into_inner()),
            Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                thread::sleep(Duration::from_millis(5))
            }
            Err(TryLockError::WouldBlock) => return None,
        }
    }
}

/// Whether `path` can serve as a data dir for the user the server runs as, so callers
/// can fall back to another directory instead of failing at startup.
///
/// As root the server runs as `postgres`, which cannot traverse e.g. `/root`: the
/// nearest existing ancestor must be reachable by it (we create and chown the rest),
/// and an existing initialized data dir must be writable by it. As a normal user this is
/// "can I create/write it".
pub fn dir_usable_by_server_user(path: &Path) -> bool {
    let Ok(path) = std::path::absolute(path) else {
        return false;
    };
    let initialized = path.join("PG_VERSION").exists();
    if path.exists() && !initialized && !matches!(dir_is_empty(&path), Ok(true)) {
        // start() would refuse it (see Error::DirNotEmpty).
        return false;
    }
    match sys::server_user() {
        Err(_) => false,
        Ok(None) => {
            let target = nearest_existing(&path);
            target.is_dir() && access_ok(&target, libc::W_OK | libc::X_OK)
        }
        Ok(Some(user)) => {
            if initialized {
                return test_as(&user, &path, true);
            }
            // A missing or uninitialized dir gets created/chowned by us; only its
            // ancestors must be traversable.
            let parent = path.parent().unwrap_or(Path::new("/"));
            test_as(&user, &nearest_existing(parent), false)
        }
    }
}

fn nearest_existing(path: &Path) -> PathBuf {
    path.ancestors()
        .find(|p| p.exists())
        .unwrap_or(Path::new("/"))
        .to_path_buf()
}

fn access_ok(path: &Path, mode: libc::c_int) -> bool {
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: c is a valid NUL-terminated path.
    unsafe { libc::access(c.as_ptr(), mode) == 0 }
}

/// Asks the kernel (via `test` run as `user`) whether `dir` is a traversable (and
/// optionally writable) directory for that user, which covers every ancestor's mode,
/// owner, group and ACLs without reimplementing the rules.
fn test_as(user: &ServerUser, dir: &Path, writable: bool) -> bool {
    let script = if writable {
        r#"test -d "$1" -a -x "$1" -a -w "$1""#
    } else {
        r#"test -d "$1" -a -x "$1""#
    };
    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", script, "sh"])
        .arg(dir)
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    sys::run_as(&mut cmd, Some(user));
    cmd.status().map(|s| s.success()).unwrap_or(false)
}

/// Creates the data dir, hands it to the server user, runs initdb if needed and writes
/// the TLS material. Safe to call again on an existing dir (restart).
fn prepare(cfg: &Config) -> Result<(), Error> {
    let dir = &cfg.opts.data_dir;
    fs::create_dir_all(dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    let fresh = !dir.join("PG_VERSION").exists();
    if fresh && !dir_is_empty(dir)? {
        // Never chmod/chown some unrelated directory the caller pointed us at.
        return Err(Error::DirNotEmpty { path: dir.clone() });
    }
    if fresh {
        // initdb insists on 0700 and on owning the directory.
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| Error::io(format!("chmod 0700 {}", dir.display()), e))?;
        if let Some(user) = &cfg.user {
            sys::chown(dir, user)?;
        }
    }
    if let Some(user) = &cfg.user {
        if !test_as(user, dir, true) {
            return Err(Error::DirNotUsable {
                path: dir.clone(),
                user: user.name.clone(),
            });
        }
    }
    if fresh {
        initdb(cfg)?;
    }
    if cfg.opts.ephemeral {
        let owner = dir.join(OWNER_PID_FILE);
        fs::write(&owner, std::process::id().to_string())
            .map_err(|e| Error::io(format!("writing {}", owner.display()), e))?;
    }
    if cfg.opts.tls {
        ensure_cert(cfg)?;
        write_owned(
            cfg,
            &dir.join(HBA_FILE),
            "# Written by localpg: TLS-only TCP access.\n\
             local all all trust\n\
             hostssl all all 127.0.0.1/32 trust\n\
             hostssl all all ::1/128 trust\n",
            0o600,
        )?;
    }
    Ok(())
}

fn dir_is_empty(dir: &Path) -> Result<bool, Error> {
    let mut entries =
        fs::read_dir(dir).map_err(|e| Error::io(format!("reading {}", dir.display()), e))?;
    Ok(entries.next().is_none())
}

fn initdb(cfg: &Config) -> Result<(), Error> {
    let run = |locale: &str| -> Result<Output, Error> {
        let mut cmd = Command::new(cfg.bindir.join("initdb"));
        cmd.arg("-D").arg(&cfg.opts.data_dir).args([
            "-U",
            sys::SERVER_USER,
            "--auth=trust",
            "-E",
            "UTF8",
            locale,
        ]);
        if !cfg.opts.fsync {
            cmd.arg("--no-sync");
        }
        cmd.current_dir(&cfg.opts.data_dir);
        sys::run_as(&mut cmd, cfg.user.as_ref());
        sys::clean_pg_env(&mut cmd);
        run_output(&mut cmd, "initdb")
    };
    let out = run("--locale=C.UTF-8")?;
    if out.status.success() {
        return Ok(());
    }
    // Systems without the C.UTF-8 locale: the C locale still stores UTF-8 text fine.
    let first = describe_output(&out);
    let out = run("--no-locale")?;
    if out.status.success() {
        return Ok(());
    }
    Err(Error::Command {
        program: "initdb".into(),
        detail: format!("{} (with --locale=C.UTF-8: {first})", describe_output(&out)),
    })
}

/// Generates a self-signed cert/key unless a recent one exists (persistent dirs).
fn ensure_cert(cfg: &Config) -> Result<(), Error> {
    let dir = &cfg.opts.data_dir;
    let (crt, key) = (dir.join(CERT_FILE), dir.join(KEY_FILE));
    let recent = fs::metadata(&crt)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age < CERT_MAX_AGE);
    if !recent || !key.exists() {
        let mut cmd = Command::new("openssl");
        cmd.args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        // openssl's default marks self-signed certs as CA; rustls/webpki rejects a
        // CA certificate used as a server certificate (CaUsedAsEndEntity).
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&crt);
        run_checked(&mut cmd, "openssl (generating the TLS certificate)")?;
    }
    // postgres refuses a key readable by group/others.
    for (path, mode) in [(&key, 0o600), (&crt, 0o644)] {
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .map_err(|e| Error::io(format!("chmod {}", path.display()), e))?;
        if let Some(user) = &cfg.user {
            sys::chown(path, user)?;
        }
    }
    Ok(())
}

fn write_owned(cfg: &Config, path: &Path, contents: &str, mode: u32) -> Result<(), Error> {
    fs::write(path, contents).map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| Error::io(format!("chmod {}", path.display()), e))?;
    if let Some(user) = &cfg.user {
        sys::chown(path, user)?;
    }
    Ok(())
}

/// The data dir doubles as the socket dir (keeps Debian's /var/run/postgresql out of it)
/// unless its path is too long for a unix socket.
fn socket_dir_for(data_dir: &Path) -> Option<&Path> {
    let bytes = data_dir.as_os_str().as_bytes();
    let fits = bytes.len() + "/.s.PGSQL.65535.lock".len() <= MAX_SOCKET_PATH;
    let plain = !bytes
        .iter()
        .any(|b| *b == b',' || b.is_ascii_whitespace() || *b == b'\'');
    (fits && plain).then_some(data_dir)
}

fn free_port() -> Result<u16, Error> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| Error::io("finding a free port on 127.0.0.1", e))
}

/// Launches, retrying with another free port if an auto-picked port got taken meanwhile.
fn launch_retrying(cfg: &Config, port: Option<u16>) -> Result<(Running, u16), Error> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let chosen = match port {
            Some(p) => p,
            None => free_port()?,
        };
        match launch(cfg, chosen) {
            Ok(running) => return Ok((running, chosen)),
            // Someone grabbed the auto-picked port between our probe and postgres' bind.
            Err((_, true)) if port.is_none() && attempt < 5 => {}
            Err((e, _)) => return Err(e),
        }
    }
}

/// Starts postgres and waits for readiness. The error's flag says "port already in use".
fn launch(cfg: &Config, port: u16) -> Result<Running, (Error, bool)> {
    let dir = &cfg.opts.data_dir;
    let log_path = dir.join(LOG_FILE);
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| {
            (
                Error::io(format!("opening {}", log_path.display()), e),
                false,
            )
        })?;
    let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
    let log_err = log
        .try_clone()
        .map_err(|e| (Error::io("duplicating the log file handle", e), false))?;

    let mut cmd = Command::new(cfg.bindir.join("postgres"));
    cmd.arg("-D").arg(dir);
    cmd.args(["-p", &port.to_string(), "-h", "127.0.0.1", "-k"]);
    match socket_dir_for(dir) {
        Some(sock) => cmd.arg(sock),
        None => cmd.arg(""),
    };
    if !cfg.opts.fsync {
        cmd.args(["-c", "fsync=off"]);
    }
    if cfg.opts.tls {
        cmd.args(["-c", "ssl=on"])
            .arg("-c")
            .arg(setting("ssl_cert_file", &dir.join(CERT_FILE)))
            .arg("-c")
            .arg(setting("ssl_key_file", &dir.join(KEY_FILE)))
            .arg("-c")
            .arg(setting("hba_file", &dir.join(HBA_FILE)));
    }
    for (name, value) in &cfg.opts.settings {
        cmd.arg("-c").arg(format!("{name}={value}"));
    }
    cmd.current_dir(dir)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        // Keep a terminal Ctrl-C away from postgres: the owner decides when to stop it.
        .process_group(0);
    sys::run_as(&mut cmd, cfg.user.as_ref());
    sys::clean_pg_env(&mut cmd);
    // SIGINT = fast shutdown: a clean stop if our process dies without calling stop().
    sys::set_parent_death_signal(&mut cmd, libc::SIGINT);

    let mut running = spawn_owned(cmd).map_err(|e| (e, false))?;
    match wait_ready(dir, &mut running, port) {
        Ok(()) => Ok(running),
        Err(failure) => {
            let _ = running.stop();
            let tail = log_tail(&log_path, log_start);
            let in_use = tail.contains("Address already in use");
            let err = match failure {
                Some(status) => Error::StartFailed {
                    status,
                    log: Some(log_path.clone()),
                    log_tail: tail,
                },
                None => Error::StartTimeout {
                    secs: READY_TIMEOUT.as_secs(),
                    log: Some(log_path.clone()),
                    log_tail: tail,
                },
            };
            Err((err, in_use))
        }
    }
}

fn setting(name: &str, path: &Path) -> std::ffi::OsString {
    let mut s = std::ffi::OsString::from(format!("{name}="));
    s.push(path);
    s
}

/// Spawns `cmd` from a dedicated thread that then waits on it (see [`Running`]).
fn spawn_owned(mut cmd: Command) -> Result<Running, Error> {
    let (pid_tx, pid_rx) = mpsc::channel();
    let (exit_tx, exit_rx) = mpsc::channel();
    let thread = thread::Builder::new()
        .name("localpg-postmaster".into())
        .spawn(move || {
            let mut child = match cmd.spawn() {
                Ok(child) => child,
                Err(e) => {
                    let _ = pid_tx.send(Err(e));
                    return;
                }
            };
            let _ = pid_tx.send(Ok(child.id()));
            let status = match child.wait() {
                Ok(status) => status.to_string(),
                Err(e) => format!("wait failed: {e}"),
            };
            let _ = exit_tx.send(status);
        })
        .map_err(|e| Error::io("spawning the postmaster owner thread", e))?;
    match pid_rx.recv() {
        Ok(Ok(pid)) => Ok(Running {
            pid,
            exit_rx,
            exited: None,
            thread: Some(thread),
        }),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(Error::io("starting postgres", e))
        }
        Err(_) => {
            let _ = thread.join();
            Err(Error::io(
                "starting postgres",
                io::Error::other("owner thread ended unexpectedly"),
            ))
        }
    }
}

/// Polls postmaster.pid for our pid with status "ready" (set once it accepts
/// connections); `Err(Some(status))` if it exited, `Err(None)` on timeout.
fn wait_ready(dir: &Path, running: &mut Running, port: u16) -> Result<(), Option<String>> {
    let deadline = Instant::now() + READY_TIMEOUT;
    let pid_file = dir.join("postmaster.pid");
    // Servers older than 10 never write the status line; only for them fall back to a
    // TCP probe (for newer ones the line is simply not written *yet*).
    let legacy = fs::read_to_string(dir.join("PG_VERSION"))
        .ok()
        .and_then(|v| v.trim().split('.').next()?.parse::<u32>().ok())
        .is_some_and(|major| major < 10);
    loop {
        if let Some(status) = running.poll_exit() {
            return Err(Some(status.to_string()));
        }
        if let Ok(text) = fs::read_to_string(&pid_file) {
            let lines: Vec<&str> = text.lines().collect();
            let ours =
                lines.first().and_then(|l| l.trim().parse::<u32>().ok()) == Some(running.pid);
            if ours {
                match lines.get(7) {
                    Some(status) if status.trim() == "ready" => return Ok(()),
                    None if legacy && tcp_accepts(port) => return Ok(()),
                    _ => {}
                }
            }
        }
        if Instant::now() >= deadline {
            return Err(None);
        }
        thread::sleep(Duration::from_millis(5));
    }
}

fn tcp_accepts(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

fn log_tail(path: &Path, from: u64) -> String {
    let mut text = Vec::new();
    let read = File::open(path).and_then(|mut f| {
        f.seek(SeekFrom::Start(from))?;
        f.read_to_end(&mut text)
    });
    match read {
        Ok(_) => tail_one_line(&String::from_utf8_lossy(&text), 8),
        Err(e) => format!("(could not read log: {e})"),
    }
}

fn run_output(cmd: &mut Command, program: &str) -> Result<Output, Error> {
    cmd.stdin(Stdio::null())
        .output()
        .map_err(|e| Error::io(format!("running {program}"), e))
}

fn run_checked(cmd: &mut Command, program: &str) -> Result<Output, Error> {
    let out = run_output(cmd, program)?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(Error::Command {
            program: program.into(),
            detail: describe_output(&out),
        })
    }
}

fn describe_output(out: &Output) -> String {
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push('\n');
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    format!("{}: {}", out.status, tail_one_line(&text, 6))
}

fn remove_dir(dir: &Path) -> Result<(), Error> {
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(format!("removing {}", dir.display()), e)),
    }
}

fn sweep_stale_once() {
    static SWEEP: Once = Once::new();
    SWEEP.call_once(|| sweep_stale(&std::env::temp_dir()));
}

/// Removes `localpg-*` dirs left by processes that died without cleaning up. Only dirs
/// with an `owner.pid` naming a dead process and no live postmaster are touched.
fn sweep_stale(root: &Path) {
    let Ok(entries) = fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.as_bytes().starts_with(EPHEMERAL_PREFIX.as_bytes()) {
            continue;
        }
        let dir = entry.path();
        if is_stale(&dir) {
            let _ = fs::remove_dir_all(&dir);
        }
    }
}

fn is_stale(dir: &Path) -> bool {
    let first_pid = |file: &str| -> Option<i32> {
        fs::read_to_string(dir.join(file))
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    };
    let Some(owner) = first_pid(OWNER_PID_FILE) else {
        return false;
    };
    if sys::pid_alive(owner) {
        return false;
    }
    match first_pid("postmaster.pid") {
        Some(postmaster) => !sys::pid_alive(postmaster),
        // A postmaster.pid we cannot parse may be mid-write: leave it.
        None => !dir.join("postmaster.pid").exists(),
    }
}

#[cfg(test)]
mod tests;
