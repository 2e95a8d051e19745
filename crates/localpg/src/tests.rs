//! Tests against a real PostgreSQL server (needs the server binaries installed).

use super::*;
use crate::bindir::find_bindir_with;
use std::io::{BufRead, BufReader};
use std::sync::OnceLock;

/// Env var that turns the `child_entry` test into a helper process for the
/// orphan / at-exit tests (which need a process that dies).
const CHILD_ENV: &str = "LOCALPG_TEST_CHILD";

fn check<T, E: std::fmt::Display>(r: Result<T, E>, what: &str) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{what}: {e}"),
    }
}

/// Runs `sql` over TCP with localpg's own protocol client (no client program needed, so
/// these tests also run on server-only builds); the first column of each row, one per
/// line, or the error.
fn sql(server: &PgServer, db: &str, sql: &str) -> Result<String, String> {
    let rows = wire::simple_query(wire::Target::Tcp(server.port()), "postgres", db, sql, sql)
        .map_err(|e| e.to_string())?;
    let first_columns: Vec<String> = rows
        .into_iter()
        .map(|row| row.into_iter().next().flatten().unwrap_or_default())
        .collect();
    Ok(first_columns.join("\n"))
}

fn query(server: &PgServer, db: &str, sql_text: &str) -> String {
    check(sql(server, db, sql_text), sql_text)
}

/// psql, a libpq client, for the TLS test (localpg's own client speaks no TLS): the one
/// beside the server binaries, else the one on PATH (server-only builds have none).
fn psql_program(server: &PgServer) -> PathBuf {
    let beside = server.bindir().join("psql");
    if beside.is_file() {
        return beside;
    }
    let on_path = std::env::var_os("PATH")
        .and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join("psql"))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| {
            panic!(
                "the TLS test needs psql (libpq with TLS): none in {} nor on PATH",
                server.bindir().display()
            )
        });
    on_path
}

/// Runs psql over TCP; Ok(stdout) or Err(stderr).
fn psql(server: &PgServer, conninfo_extra: &str, db: &str, sql: &str) -> Result<String, String> {
    let conninfo = format!(
        "host=127.0.0.1 port={} user=postgres dbname={db} connect_timeout=5 {conninfo_extra}",
        server.port()
    );
    let mut cmd = Command::new(psql_program(server));
    cmd.args([
        "-X",
        "-tA",
        "-v",
        "ON_ERROR_STOP=1",
        "-d",
        &conninfo,
        "-c",
        sql,
    ]);
    sys::clean_pg_env(&mut cmd);
    let out = cmd.output().map_err(|e| format!("running psql: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

fn refuses_connections(port: u16) -> bool {
    !tcp_accepts(port)
}

/// A directory for persistent-data tests that the server user can reach even as root
/// (a 0700 root-owned temp dir would not be).
struct TestDir(PathBuf);

impl TestDir {
    fn new(name: &str) -> TestDir {
        let dir = std::env::temp_dir().join(format!("lpgtest-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        check(fs::create_dir_all(&dir), "create test dir");
        check(
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)),
            "chmod test dir",
        );
        TestDir(dir)
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn ephemeral_start_query_stop() {
    // Start from a short-lived thread: the server must outlive it (PDEATHSIG is per-thread).
    let t = Instant::now();
    let handle = thread::spawn(|| PgServer::start(Options::ephemeral()));
    let started = check(handle.join().map_err(|_| "panic"), "join");
    let mut server = check(started, "start");
    eprintln!("ephemeral start (initdb + start): {:?}", t.elapsed());

    assert!(server.is_running());
    assert_eq!(query(&server, "postgres", "select 1"), "1");
    assert_eq!(
        server.url("postgres"),
        format!("postgres://postgres@127.0.0.1:{}/postgres", server.port())
    );
    let dir = server.data_dir().to_path_buf();
    assert!(dir.join("PG_VERSION").exists());
    assert!(dir.join(OWNER_PID_FILE).exists());
    assert!(server.log_path().exists());
    if let Some(sock) = server.socket_dir() {
        assert!(sock.join(format!(".s.PGSQL.{}", server.port())).exists());
    }

    let t = Instant::now();
    check(server.stop(), "stop");
    eprintln!("stop: {:?}", t.elapsed());
    assert!(!dir.exists(), "ephemeral dir removed");
    assert!(refuses_connections(server.port()));
    assert!(!server.is_running());
    check(server.stop(), "second stop is a no-op");
    assert!(matches!(
        server.create_database("x"),
        Err(Error::NotRunning)
    ));
}

#[test]
fn drop_stops_and_removes() {
    let server = check(PgServer::start(Options::ephemeral()), "start");
    let (dir, port) = (server.data_dir().to_path_buf(), server.port());
    drop(server);
    assert!(!dir.exists());
    assert!(refuses_connections(port));
}

#[test]
fn create_database_and_connect() {
    let server = check(PgServer::start(Options::ephemeral()), "start");
    check(server.create_database("test_one"), "createdb");
    assert_eq!(
        query(&server, "test_one", "select current_database()"),
        "test_one"
    );
    let err = match server.create_database("test_one") {
        Ok(()) => panic!("duplicate createdb must fail"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("already exists"), "{err}");
    assert!(!err.contains('\n'), "{err}");
    // The name is an identifier as given: case and quotes kept, nothing injected.
    let odd = "Odd \"name\"; DROP DATABASE test_one; --";
    check(
        server.create_database(odd),
        "create a database with an odd name",
    );
    assert_eq!(query(&server, odd, "select current_database()"), odd);
    assert_eq!(
        query(&server, "test_one", "select current_database()"),
        "test_one"
    );
}

#[test]
fn parallel_create_database() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<PgServer>();
    let server = check(PgServer::start(Options::ephemeral()), "start");
    thread::scope(|s| {
        let handles: Vec<_> = (0..6)
            .map(|i| {
                let server = &server;
                s.spawn(move || server.create_database(&format!("par_{i}")))
            })
            .collect();
        for h in handles {
            check(check(h.join().map_err(|_| "panic"), "join"), "createdb");
        }
    });
    assert_eq!(
        query(
            &server,
            "postgres",
            "select count(*) from pg_database where datname like 'par\\_%'"
        ),
        "6"
    );
}

#[test]
fn refuses_non_empty_foreign_dir() {
    let tmp = TestDir::new("foreign");
    check(fs::write(tmp.0.join("important.txt"), "x"), "write");
    assert!(!dir_usable_by_server_user(&tmp.0));
    match PgServer::start(Options::persistent(&tmp.0)) {
        Ok(_) => panic!("must not initdb into a non-empty dir"),
        Err(e) => assert!(matches!(e, Error::DirNotEmpty { .. }), "{e}"),
    }
    let mode = check(fs::metadata(&tmp.0), "meta").permissions().mode();
    assert_eq!(mode & 0o777, 0o755, "permissions untouched");
}

#[test]
fn persistent_data_survives_new_server() {
    let tmp = TestDir::new("persist");
    let data = tmp.0.join("nested").join("pgdata");
    assert!(dir_usable_by_server_user(&data));

    let t = Instant::now();
    let mut first = check(PgServer::start(Options::persistent(&data)), "first start");
    eprintln!("persistent first start (initdb): {:?}", t.elapsed());
    query(
        &first,
        "postgres",
        "create table kept(v text); insert into kept values ('hello')",
    );
    check(first.stop(), "stop");
    assert!(data.join("PG_VERSION").exists(), "persistent data kept");
    drop(first);

    let t = Instant::now();
    let second = check(PgServer::start(Options::persistent(&data)), "second start");
    eprintln!("persistent restart (reuse data dir): {:?}", t.elapsed());
    assert_eq!(query(&second, "postgres", "select v from kept"), "hello");
    drop(second);
    assert!(data.join("PG_VERSION").exists());
}

#[test]
fn restart_keeps_port_and_data() {
    let mut server = check(PgServer::start(Options::ephemeral()), "start");
    let port = server.port();
    query(
        &server,
        "postgres",
        "create table t(v int); insert into t values (42)",
    );

    check(server.restart(), "restart while running");
    assert_eq!(server.port(), port);
    assert_eq!(query(&server, "postgres", "select v from t"), "42");

    check(server.stop_keep_data(), "stop_keep_data");
    assert!(refuses_connections(port));
    assert!(!server.is_running());
    assert!(server.data_dir().join("PG_VERSION").exists());
    assert!(sql(&server, "postgres", "select 1").is_err());

    check(server.restart(), "restart after stop_keep_data");
    assert_eq!(server.port(), port);
    assert_eq!(query(&server, "postgres", "select v from t"), "42");
}

#[test]
fn tls_requires_ssl() {
    let mut opts = Options::ephemeral();
    opts.tls = true;
    let t = Instant::now();
    let server = check(PgServer::start(opts), "start tls");
    eprintln!("tls ephemeral start: {:?}", t.elapsed());
    let cert = match server.cert_path() {
        Some(c) => c.to_path_buf(),
        None => panic!("tls server has a cert"),
    };
    let key_mode = check(fs::metadata(server.data_dir().join(KEY_FILE)), "key").permissions();
    assert_eq!(key_mode.mode() & 0o777, 0o600);

    assert_eq!(
        check(
            psql(
                &server,
                "sslmode=require",
                "postgres",
                "select ssl from pg_stat_ssl where pid = pg_backend_pid()"
            ),
            "require"
        ),
        "t"
    );
    let verify = format!("sslmode=verify-full sslrootcert={}", cert.display());
    assert_eq!(
        check(
            psql(&server, &verify, "postgres", "select 1"),
            "verify-full"
        ),
        "1"
    );
    let refused = psql(&server, "sslmode=disable", "postgres", "select 1");
    match refused {
        Ok(out) => panic!("plain TCP must be refused, got {out}"),
        Err(e) => assert!(e.contains("no pg_hba.conf entry"), "{e}"),
    }
    check(server.create_database("tls_db"), "createdb over tls");
    assert_eq!(
        check(
            psql(
                &server,
                "sslmode=require",
                "tls_db",
                "select current_database()"
            ),
            "connect to the new database"
        ),
        "tls_db"
    );
}

#[test]
fn find_bindir_not_found_is_one_clear_line() {
    let empty = TestDir::new("emptybin");
    let err = match find_bindir_with(
        Some(empty.0.clone().into()),
        true,
        Path::new("/usr/lib/postgresql"),
        None,
    ) {
        Ok(dir) => panic!("found binaries in empty dir: {}", dir.display()),
        Err(e) => e.to_string(),
    };
    assert_eq!(
        err,
        format!(
            "PostgreSQL server binaries (initdb, postgres) not found in PG_BINDIR={}; install them (Debian/Ubuntu: apt-get install postgresql) or fix PG_BINDIR",
            empty.0.display()
        )
    );

    let err = match find_bindir_with(None, false, &empty.0, Some(empty.0.clone().into())) {
        Ok(dir) => panic!("found binaries: {}", dir.display()),
        Err(e) => e.to_string(),
    };
    assert_eq!(
        err,
        "PostgreSQL server binaries (initdb, postgres) not found; install them (Debian/Ubuntu: apt-get install postgresql) or set PG_BINDIR"
    );

    let real = check(find_bindir(), "find_bindir on this machine");
    assert!(bindir::has_server_binaries(&real));
    // An explicit, valid override is used as-is.
    assert_eq!(
        check(
            find_bindir_with(Some(real.clone().into()), false, &empty.0, None),
            "override"
        ),
        real
    );
}

#[test]
fn startup_failure_reports_log_tail_and_cleans_up() {
    let mut opts = Options::ephemeral();
    opts.settings.push(("no_such_setting".into(), "1".into()));
    let dir = opts.data_dir.clone();
    let err = match PgServer::start(opts) {
        Ok(_) => panic!("bogus setting must fail"),
        Err(e) => e,
    };
    let msg = err.to_string();
    assert!(matches!(err, Error::StartFailed { .. }), "{msg}");
    assert!(msg.contains("no_such_setting"), "{msg}");
    assert!(!msg.contains('\n'), "{msg}");
    assert!(!dir.exists(), "failed ephemeral dir removed");
}

#[test]
fn explicit_busy_port_fails() {
    let listener = check(TcpListener::bind((Ipv4Addr::LOCALHOST, 0)), "bind");
    let port = check(listener.local_addr(), "addr").port();
    let mut opts = Options::ephemeral();
    opts.port = Some(port);
    match PgServer::start(opts) {
        Ok(_) => panic!("port {port} is taken"),
        Err(e) => assert!(e.to_string().contains("Address already in use"), "{e}"),
    }
}

#[test]
fn dir_usability() {
    let base = TestDir::new("usable");
    assert!(dir_usable_by_server_user(&base.0.join("a/b")));
    let private = base.0.join("private");
    check(fs::create_dir(&private), "mkdir");
    check(
        fs::set_permissions(&private, fs::Permissions::from_mode(0o700)),
        "chmod",
    );
    if sys::is_root() {
        // postgres cannot traverse a 0700 root-owned dir, so nothing below it works...
        assert!(!dir_usable_by_server_user(&private.join("pgdata")));
        // ...but the dir itself is fine: we chown it before initdb.
        assert!(dir_usable_by_server_user(&private));
    } else {
        assert!(dir_usable_by_server_user(&private.join("pgdata")));
        check(
            fs::set_permissions(&private, fs::Permissions::from_mode(0o500)),
            "chmod",
        );
        assert!(!dir_usable_by_server_user(&private.join("pgdata")));
        let _ = fs::set_permissions(&private, fs::Permissions::from_mode(0o700));
    }
}

/// Spawns this test binary running only `child_entry` in `mode`; returns the child and
/// the (pid, port, data dir) it reports.
fn spawn_child(mode: &str) -> (std::process::Child, u32, u16, PathBuf) {
    let exe = check(std::env::current_exe(), "current_exe");
    let mut child = check(
        Command::new(exe)
            .args([
                "tests::child_entry",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, mode)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn(),
        "spawn child",
    );
    let Some(stdout) = child.stdout.take() else {
        panic!("child stdout not piped");
    };
    let mut lines = BufReader::new(stdout).lines();
    while let Some(line) = lines.next() {
        let line = check(line, "read child stdout");
        // The harness may print "test tests::child_entry ... " on the same line.
        if let Some((_, rest)) = line.split_once("LOCALPG_READY ") {
            let parts: Vec<&str> = rest.splitn(3, ' ').collect();
            // Keep draining so the child never hits EPIPE (which fails its test).
            thread::spawn(move || lines.for_each(drop));
            let pid = check(parts[0].parse::<u32>(), "pid");
            let port = check(parts[1].parse::<u16>(), "port");
            return (child, pid, port, PathBuf::from(parts[2]));
        }
    }
    let status = child.wait();
    panic!("child ended without reporting a server: {status:?}");
}

fn wait_gone(pid: u32, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if !sys::pid_alive(pid as i32) {
            return true;
        }
        thread::sleep(Duration::from_millis(10));
    }
    false
}

/// Helper process body; a no-op in normal test runs.
#[test]
fn child_entry() {
    let Ok(mode) = std::env::var(CHILD_ENV) else {
        return;
    };
    static SERVER: OnceLock<PgServer> = OnceLock::new();
    let started = thread::spawn(|| PgServer::start(Options::ephemeral()));
    let server = check(check(started.join().map_err(|_| "panic"), "join"), "start");
    let server = SERVER.get_or_init(|| server);
    if mode == "atexit" {
        cleanup_at_exit(server);
    }
    // The starting thread is gone; the server must still be up.
    assert_eq!(query(server, "postgres", "select 1"), "1");
    println!(
        "LOCALPG_READY {} {} {}",
        server.pid().unwrap_or(0),
        server.port(),
        server.data_dir().display()
    );
    if mode == "crash" {
        // Die without running any cleanup, like a crash or `kill -9`.
        // SAFETY: plain kill(2) on ourselves.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}

#[test]
fn crashed_owner_does_not_leave_postgres_running() {
    let (mut child, pid, port, dir) = spawn_child("crash");
    let _ = child.wait();
    assert!(
        wait_gone(pid, Duration::from_secs(10)),
        "postmaster {pid} survived its parent"
    );
    assert!(refuses_connections(port));
    // The dir is left behind, but the next sweep recognizes it as stale.
    assert!(dir.exists());
    assert!(is_stale(&dir));
    sweep_stale(&std::env::temp_dir());
    assert!(!dir.exists(), "stale dir swept");
}

#[test]
fn cleanup_at_exit_stops_static_server() {
    let (mut child, pid, port, dir) = spawn_child("atexit");
    let status = check(child.wait(), "wait child");
    assert!(status.success(), "{status}");
    // at-exit waits for the shutdown, so everything is gone once the child has exited.
    assert!(wait_gone(pid, Duration::from_secs(2)));
    assert!(refuses_connections(port));
    assert!(!dir.exists(), "ephemeral dir removed at exit");
}

#[test]
fn sweep_keeps_dirs_of_live_owners() {
    let dir = std::env::temp_dir().join(format!(
        "{EPHEMERAL_PREFIX}sweeptest-{}",
        std::process::id()
    ));
    check(fs::create_dir_all(&dir), "mkdir");
    check(
        fs::write(dir.join(OWNER_PID_FILE), std::process::id().to_string()),
        "write",
    );
    assert!(!is_stale(&dir), "our own dir is not stale");
    sweep_stale(&std::env::temp_dir());
    assert!(dir.exists());
    // A dir without owner.pid is never touched.
    check(fs::remove_file(dir.join(OWNER_PID_FILE)), "rm");
    assert!(!is_stale(&dir));
    check(fs::remove_dir_all(&dir), "cleanup");
}
