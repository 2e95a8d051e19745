//! The operator commands of the `leaderboard` binary, run as a person runs them, against
//! a real PostgreSQL (one database per test): migrate status/up/down, seed, sign, region,
//! keys, events remove (its whole clean-up: crates/server/tests/leaked_key.rs).

#[path = "../../../tests/common/mod.rs"]
mod common;

use common::{TestDb, TestServer};
use std::collections::BTreeSet;
use std::process::{Output, Stdio};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

/// `leaderboard` with `args`, `POSTGRES` set to `url` (none: unset) and nothing else from
/// the caller's environment that could change what it does.
fn command(url: Option<&str>, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_leaderboard"));
    cmd.args(args)
        .env_remove("POSTGRES")
        .env_remove("SECRET")
        .env_remove("LOG_LEVEL")
        .env_remove("PG_BINDIR")
        .env("LEADERBOARD_DATA_DIR", "/nonexistent/leaderboard-cli-test")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    if let Some(url) = url {
        cmd.env("POSTGRES", url);
    }
    cmd
}

async fn run(url: Option<&str>, args: &[&str]) -> Output {
    command(url, args).output().await.expect("run leaderboard")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs `args` on `db`, asserting success, and returns stdout.
async fn ok(db: &TestDb, args: &[&str]) -> String {
    let out = run(Some(&db.url), args).await;
    assert!(
        out.status.success(),
        "leaderboard {args:?}: {:?}\n{}\n{}",
        out.status,
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

/// Asserts a failure with `code` and a single stderr line containing `want`.
fn assert_fails(out: &Output, code: i32, want: &str) {
    let err = stderr(out);
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout: {}\nstderr: {err}",
        stdout(out)
    );
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line on stderr: {err}");
    assert!(lines[0].starts_with("leaderboard: "), "{err}");
    assert!(lines[0].contains(want), "{err:?} lacks {want:?}");
}

fn latest() -> i32 {
    leaderboard::schema::migrate::latest_version()
}

async fn history(db: &TestDb) -> Vec<i32> {
    db.client()
        .await
        .query(
            "SELECT version FROM refinery_schema_history ORDER BY version",
            &[],
        )
        .await
        .map(|rows| rows.iter().map(|r| r.get(0)).collect())
        .unwrap_or_default()
}

async fn count(db: &TestDb, sql: &str) -> i64 {
    db.client()
        .await
        .query_one(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0)
}

async fn tables(db: &TestDb) -> Vec<String> {
    db.client()
        .await
        .query(
            "SELECT relname::text FROM pg_class \
              WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'v', 'm', 'S', 'i') \
              ORDER BY 1",
            &[],
        )
        .await
        .expect("catalog")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// `pg_dump --schema-only` of the database, from the PostgreSQL binaries the tests use.
async fn schema_dump(db: &TestDb) -> String {
    let bindir = localpg::find_bindir().expect("PostgreSQL binaries");
    let pg_dump = bindir.join("pg_dump");
    let out = Command::new(&pg_dump)
        .args(["--schema-only", "--no-owner", "--no-privileges", "--dbname"])
        .arg(&db.url)
        .env_remove("PGPASSWORD")
        .output()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "running {} (server-only builds have none): {e}",
                pg_dump.display()
            )
        });
    assert!(out.status.success(), "pg_dump: {}", stderr(&out));
    // Newer pg_dump brackets its output with a random \restrict key.
    stdout(&out)
        .lines()
        .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
        .collect::<Vec<_>>()
        .join("\n")
}

async fn schema_migrations(db: &TestDb) -> Vec<(i64, bool)> {
    db.client()
        .await
        .query("SELECT version, dirty FROM schema_migrations", &[])
        .await
        .expect("schema_migrations")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn help_describes_every_command() {
    let out = run(None, &["--help"]).await;
    assert!(out.status.success());
    let help = stdout(&out);
    for want in [
        "serve",
        "(the default when no command is given)",
        "migrate",
        "seed",
        "sign",
        "keys",
        "events",
        "POSTGRES",
        "SECRET",
        "POST_MAX_AGE",
        "Exit status",
    ] {
        assert!(help.contains(want), "--help lacks {want:?}:\n{help}");
    }
    let remove = stdout(&run(None, &["events", "remove", "--help"]).await);
    for want in [
        "--key <ID>",
        "--since <TIME>",
        "--until <TIME>",
        "--yes",
        "RFC 3339",
    ] {
        assert!(remove.contains(want), "{remove}");
    }
    let migrate = stdout(&run(None, &["migrate", "--help"]).await);
    for want in ["status", "up", "down"] {
        assert!(migrate.contains(want), "{migrate}");
    }
    let down = stdout(&run(None, &["migrate", "down", "--help"]).await);
    for want in ["--to <VERSION>", "--yes", "back up first"] {
        assert!(down.to_lowercase().contains(&want.to_lowercase()), "{down}");
    }
    let seed = stdout(&run(None, &["seed", "--help"]).await);
    for want in [
        "--events <N>",
        "--orchestrators <M>",
        "[default: 200]",
        "--hours <H>",
        "[default: 24]",
        "--ai-share <F>",
        "[default: 0.2]",
        "--seed",
    ] {
        assert!(seed.contains(want), "{seed}");
    }
    let region = stdout(&run(None, &["region", "--help"]).await);
    for want in ["add", "list"] {
        assert!(region.contains(want), "{region}");
    }
    let add = stdout(&run(None, &["region", "add", "--help"]).await);
    for want in [
        "<ID>",
        "--name <NAME>",
        "--type <TYPE>",
        "ai",
        "transcoding",
    ] {
        assert!(add.contains(want), "{add}");
    }
    let sign = stdout(&run(None, &["sign", "--help"]).await);
    assert!(
        sign.contains("[FILE|-]") && sign.contains("Authorization"),
        "{sign}"
    );

    let unknown = run(None, &["frobnicate"]).await;
    assert_eq!(unknown.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread")]
async fn status_of_an_empty_database_lists_every_migration_as_pending() {
    let db = TestDb::new().await;
    let out = ok(&db, &["migrate", "status"]).await;
    assert!(out.contains("version         0 "), "{out}");
    assert!(out.contains("applied         none"), "{out}");
    assert!(
        out.contains("pending         V1 event_design_refactor"),
        "{out}"
    );
    assert!(out.contains("V3 migrate_data_to_events"), "{out}");
    assert!(!out.contains("adopted"), "{out}");
    assert!(out.contains("golang-migrate  none"), "{out}");
    assert!(tables(&db).await.is_empty(), "status writes nothing");
}

#[tokio::test(flavor = "multi_thread")]
async fn status_of_a_migrated_database_lists_every_migration_as_applied() {
    let db = TestDb::new().await;
    ok(&db, &["migrate", "up"]).await;
    let out = ok(&db, &["migrate", "status"]).await;
    assert!(
        out.contains(&format!("version         {} ", latest())),
        "{out}"
    );
    assert!(
        out.contains("applied         V1 event_design_refactor  ("),
        "{out}"
    );
    assert!(out.contains("V2 seed_ref_data  ("), "{out}");
    assert!(out.contains("pending         none"), "{out}");
    assert!(!out.contains("problem"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn status_of_a_golang_migrate_database_says_it_is_still_to_be_adopted() {
    let db = common::golang_migrate_database(3, false).await;
    let out = ok(&db, &["migrate", "status"]).await;
    assert!(out.contains("applied         none"), "{out}");
    assert!(
        out.contains(
            "pending         V1 event_design_refactor  (adopted: recorded as applied, not run)"
        ),
        "{out}"
    );
    assert!(
        out.contains("V3 migrate_data_to_events  (adopted: recorded as applied, not run)"),
        "{out}"
    );
    assert!(
        out.contains("golang-migrate  version 3, clean, NOT ADOPTED yet"),
        "{out}"
    );
    assert!(!tables(&db)
        .await
        .contains(&"refinery_schema_history".to_string()));

    // Adopted by `up`, which runs nothing of V1–V3 and says so.
    let up = ok(&db, &["migrate", "up"]).await;
    assert!(
        up.contains("adopted the golang-migrate database at version 3"),
        "{up}"
    );
    assert_eq!(history(&db).await, (1..=latest()).collect::<Vec<_>>());
    assert_eq!(count(&db, "SELECT count(*) FROM regions").await, 26);
    let out = ok(&db, &["migrate", "status"]).await;
    assert!(
        out.contains("golang-migrate  version 3, clean, adopted"),
        "{out}"
    );
    assert!(out.contains("pending         none"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn status_of_a_dirty_database_reports_it_and_fails() {
    let db = common::golang_migrate_database(3, true).await;
    let out = run(Some(&db.url), &["migrate", "status"]).await;
    assert!(
        stdout(&out).contains("golang-migrate  DIRTY at version 3"),
        "{}",
        stdout(&out)
    );
    assert_fails(&out, 1, "dirty at version 3");
    assert!(!tables(&db)
        .await
        .contains(&"refinery_schema_history".to_string()));
}

#[tokio::test(flavor = "multi_thread")]
async fn up_twice_is_a_no_op() {
    let db = TestDb::new().await;
    let first = ok(&db, &["migrate", "up"]).await;
    assert!(first.contains("applied V1, V2, V3"), "{first}");
    let before = schema_dump(&db).await;
    let applied_on: Vec<String> = db
        .client()
        .await
        .query(
            "SELECT applied_on::text FROM refinery_schema_history ORDER BY version",
            &[],
        )
        .await
        .expect("history")
        .iter()
        .map(|r| r.get(0))
        .collect();

    let second = ok(&db, &["migrate", "up"]).await;
    assert_eq!(
        second.trim(),
        format!("nothing to apply: the database is at version {}", latest())
    );
    assert_eq!(schema_dump(&db).await, before);
    let again: Vec<String> = db
        .client()
        .await
        .query(
            "SELECT applied_on::text FROM refinery_schema_history ORDER BY version",
            &[],
        )
        .await
        .expect("history")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(again, applied_on);
}

#[tokio::test(flavor = "multi_thread")]
async fn down_to_0_then_up_restores_the_schema_of_a_fresh_database() {
    let fresh = TestDb::new().await;
    ok(&fresh, &["migrate", "up"]).await;
    let want = schema_dump(&fresh).await;

    let db = TestDb::new().await;
    ok(&db, &["seed", "--events", "300"]).await;
    // Created here, recorded for golang-migrate too (the way back to the original).
    assert_eq!(schema_migrations(&db).await, [(3, false)]);
    let out = ok(&db, &["migrate", "down", "--to", "0", "--yes"]).await;
    assert!(out.contains("V1 event_design_refactor"), "{out}");
    assert!(out.contains("the database is at version 0"), "{out}");
    // Only the (now empty) histories are left of the schema, as golang-migrate leaves its own.
    assert_eq!(
        tables(&db).await,
        [
            "refinery_schema_history",
            "refinery_schema_history_pkey",
            "schema_migrations",
            "schema_migrations_pkey"
        ]
    );
    assert!(history(&db).await.is_empty());
    assert_eq!(schema_migrations(&db).await, []);
    let status = ok(&db, &["migrate", "status"]).await;
    assert!(status.contains("applied         none"), "{status}");

    ok(&db, &["migrate", "up"]).await;
    assert_eq!(schema_dump(&db).await, want);
    assert_eq!(schema_migrations(&db).await, [(3, false)]);
    assert_eq!(history(&db).await, (1..=latest()).collect::<Vec<_>>());
    assert_eq!(count(&db, "SELECT count(*) FROM regions").await, 26);
    assert_eq!(count(&db, "SELECT count(*) FROM events").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn down_to_3_reverts_only_the_newer_migrations() {
    let db = TestDb::new().await;
    ok(&db, &["seed", "--events", "200"]).await;
    let fresh_dump = schema_dump(&db).await;
    let out = ok(&db, &["migrate", "down", "--to", "3", "--yes"]).await;
    if latest() > 3 {
        assert!(out.contains("the database is at version 3"), "{out}");
        assert_eq!(history(&db).await, [1, 2, 3]);
        let up = ok(&db, &["migrate", "up"]).await;
        assert!(up.contains("applied V4"), "{up}");
        assert_eq!(schema_dump(&db).await, fresh_dump);
    } else {
        assert!(out.contains("nothing to revert"), "{out}");
    }
    assert_eq!(count(&db, "SELECT count(*) FROM events").await, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn down_without_yes_changes_nothing() {
    let db = TestDb::new().await;
    ok(&db, &["seed", "--events", "100"]).await;
    let dump = schema_dump(&db).await;
    let out = run(Some(&db.url), &["migrate", "down", "--to", "0"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("would revert V"), "{err}");
    assert!(err.contains("Back up first"), "{err}");
    assert!(
        err.lines()
            .last()
            .unwrap_or_default()
            .contains("not reverting without --yes"),
        "{err}"
    );
    assert_eq!(schema_dump(&db).await, dump);
    assert_eq!(history(&db).await, (1..=latest()).collect::<Vec<_>>());
    assert_eq!(count(&db, "SELECT count(*) FROM events").await, 100);
}

#[tokio::test(flavor = "multi_thread")]
async fn down_refuses_bad_versions_and_dirty_databases() {
    let db = TestDb::new().await;
    ok(&db, &["migrate", "up"]).await;
    let dump = schema_dump(&db).await;
    let above = (latest() + 1).to_string();
    let out = run(Some(&db.url), &["migrate", "down", "--to", &above, "--yes"]).await;
    assert_fails(&out, 1, "is not an older version");
    for between in ["1", "2"] {
        let out = run(
            Some(&db.url),
            &["migrate", "down", "--to", between, "--yes"],
        )
        .await;
        assert_fails(&out, 1, &format!("cannot stop at version {between}"));
    }
    let out = run(Some(&db.url), &["migrate", "down", "--to", "-1", "--yes"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = run(Some(&db.url), &["migrate", "down", "--yes"]).await;
    assert_eq!(out.status.code(), Some(2), "--to is required");
    assert_eq!(schema_dump(&db).await, dump);
    assert_eq!(history(&db).await, (1..=latest()).collect::<Vec<_>>());

    let dirty = common::golang_migrate_database(3, true).await;
    let dump = schema_dump(&dirty).await;
    let out = run(Some(&dirty.url), &["migrate", "down", "--to", "0", "--yes"]).await;
    assert_fails(&out, 1, "dirty at version 3");
    assert_eq!(schema_dump(&dirty).await, dump);
}

#[tokio::test(flavor = "multi_thread")]
async fn down_on_a_golang_migrate_database_keeps_schema_migrations_in_step() {
    // Not adopted yet: its golang-migrate version says what is applied.
    let db = common::golang_migrate_database(3, false).await;
    ok(&db, &["migrate", "down", "--to", "0", "--yes"]).await;
    assert_eq!(
        tables(&db).await,
        ["schema_migrations", "schema_migrations_pkey"]
    );
    assert_eq!(schema_migrations(&db).await, []);
    let up = ok(&db, &["migrate", "up"]).await;
    assert!(up.contains("applied V1, V2, V3"), "{up}");
    assert_eq!(count(&db, "SELECT count(*) FROM regions").await, 26);

    // Adopted: the refinery history and golang-migrate's version go down together.
    let db = common::golang_migrate_database(3, false).await;
    ok(&db, &["migrate", "up"]).await;
    ok(&db, &["migrate", "down", "--to", "0", "--yes"]).await;
    assert!(history(&db).await.is_empty());
    assert_eq!(schema_migrations(&db).await, []);
    ok(&db, &["migrate", "up"]).await;
    assert_eq!(history(&db).await, (1..=latest()).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread")]
async fn seed_inserts_exactly_n_events_that_every_read_route_serves() {
    let db = TestDb::new().await;
    let before = leaderboard::now();
    let out = ok(
        &db,
        &[
            "seed",
            "--events",
            "3000",
            "--orchestrators",
            "25",
            "--hours",
            "6",
            "--seed",
            "9",
        ],
    )
    .await;
    let after = leaderboard::now();
    assert!(out.contains("inserted 3000 events"), "{out}");
    assert!(out.contains("events now holds 3000 rows"), "{out}");
    assert_eq!(count(&db, "SELECT count(*) FROM events").await, 3000);

    let client = db.client().await;
    let row = client
        .query_one(
            "SELECT extract(epoch FROM min(event_time))::float8, extract(epoch FROM max(event_time))::float8 FROM events",
            &[],
        )
        .await
        .expect("window");
    let (first, last): (f64, f64) = (row.get(0), row.get(1));
    assert!(first >= before - 6.0 * 3600.0 - 1.0, "within the window");
    assert!(last <= after + 1.0);
    assert!(
        last - first > 5.5 * 3600.0,
        "spread over the window: {first}..{last}"
    );
    let hours: i64 = count(
        &db,
        "SELECT count(DISTINCT date_trunc('hour', event_time)) FROM events",
    )
    .await;
    assert!(hours >= 6, "{hours}");

    let orchestrators: Vec<String> = client
        .query(
            "SELECT DISTINCT orchestrator::text FROM events ORDER BY 1",
            &[],
        )
        .await
        .expect("orchestrators")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(orchestrators.len(), 25);
    assert!(orchestrators.iter().all(|o| o.len() == 42
        && o.starts_with("0x")
        && o[2..]
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))));
    let regions = count(&db, "SELECT count(DISTINCT region_id) FROM events").await;
    assert_eq!(regions, 26, "every region");
    let ai = count(&db, "SELECT count(*) FROM events WHERE payload ? 'model'").await;
    assert!((450..750).contains(&ai), "about 20% AI: {ai}");
    let ai_in_ai_regions = count(
        &db,
        "SELECT count(*) FROM events e JOIN regions r ON r.id = e.region_id \
           JOIN job_types j ON j.id = r.job_type_id WHERE j.name = 'ai'",
    )
    .await;
    assert_eq!(ai_in_ai_regions, ai, "AI events in AI regions only");

    let row = client
        .query_one(
            "SELECT orchestrator::text, payload ->> 'model', payload ->> 'pipeline' FROM events \
              WHERE payload ? 'model' ORDER BY id LIMIT 1",
            &[],
        )
        .await
        .expect("an AI event");
    let (ai_orchestrator, model, pipeline): (String, String, String) =
        (row.get(0), row.get(1), row.get(2));
    let transcoder: String = client
        .query_one(
            "SELECT orchestrator::text FROM events WHERE NOT payload ? 'model' ORDER BY id LIMIT 1",
            &[],
        )
        .await
        .expect("a transcoding event")
        .get(0);

    let server = TestServer::on(&db).await;
    let board = server.get_json("/api/aggregated_stats", 200).await;
    assert!(board.as_object().is_some_and(|b| b.len() >= 20), "{board}");
    let raw = server
        .get_json(&format!("/api/raw_stats?orchestrator={transcoder}"), 200)
        .await;
    assert!(
        raw.as_object().is_some_and(|r| r
            .values()
            .any(|v| v.as_array().is_some_and(|a| !a.is_empty()))),
        "{raw}"
    );
    let pipelines = server.get_json("/api/pipelines", 200).await;
    let listed: BTreeSet<&str> = pipelines["pipelines"]
        .as_array()
        .expect("pipelines")
        .iter()
        .filter_map(|p| p["id"].as_str())
        .collect();
    assert_eq!(listed.len(), 6, "{pipelines}");
    let top = server
        .get_json(
            &format!("/api/top_ai_score?orchestrator={ai_orchestrator}"),
            200,
        )
        .await;
    assert_eq!(top["orchestrator"], ai_orchestrator.as_str(), "{top}");
    assert!(top["value"].is_number(), "{top}");
    let ai_board = server
        .get_json(
            &format!("/api/aggregated_stats?model={model}&pipeline={pipeline}"),
            200,
        )
        .await;
    assert!(
        ai_board.as_object().is_some_and(|b| !b.is_empty()),
        "{ai_board}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn seed_refuses_bad_options_in_one_line() {
    for (args, want) in [
        (
            vec!["seed", "--events", "10", "--ai-share", "1.5"],
            "--ai-share",
        ),
        (
            vec!["seed", "--events", "10", "--orchestrators", "0"],
            "--orchestrators",
        ),
        (vec!["seed", "--events", "10", "--hours", "0"], "--hours"),
    ] {
        let out = run(None, &args).await;
        assert_fails(&out, 2, want);
    }
    let out = run(None, &["seed"]).await;
    assert_eq!(out.status.code(), Some(2), "--events is required");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_database_is_one_line_and_exit_1() {
    let url = "postgres://postgres:hunter2@127.0.0.1:1/nothing";
    for args in [
        &["migrate", "status"][..],
        &["migrate", "up"],
        &["migrate", "down", "--to", "0", "--yes"],
        &["seed", "--events", "5"],
    ] {
        let out = run(Some(url), args).await;
        assert_fails(
            &out,
            1,
            "cannot use the database postgres://postgres:***@127.0.0.1:1/nothing",
        );
        assert!(!stderr(&out).contains("hunter2"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn without_postgres_commands_use_the_embedded_database_and_stop_it() {
    let data =
        std::env::temp_dir().join(format!("leaderboard-cli-embedded-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let out = command(None, &["migrate", "up"])
        .env("LEADERBOARD_DATA_DIR", &data)
        .output()
        .await
        .expect("run");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("applied V1"), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("POSTGRES is not set: using the embedded PostgreSQL"),
        "{}",
        stderr(&out)
    );
    assert!(!data.join("postmaster.pid").exists(), "stopped afterwards");
    let out = command(None, &["migrate", "status"])
        .env("LEADERBOARD_DATA_DIR", &data)
        .output()
        .await
        .expect("run");
    assert!(
        stdout(&out).contains("pending         none"),
        "{}",
        stdout(&out)
    );
    assert!(!data.join("postmaster.pid").exists());
    std::fs::remove_dir_all(&data).expect("clean up");
}

async fn sign(secret: Option<&str>, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = command(None, args);
    if let Some(secret) = secret {
        cmd.env("SECRET", secret);
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("sign");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(bytes) = stdin {
        input.write_all(bytes).await.expect("write stdin");
    }
    drop(input);
    child.wait_with_output().await.expect("sign output")
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_output_is_accepted_by_post_stats_for_that_body_only() {
    let db = TestDb::new().await;
    let server = TestServer::with_secret(&db).await;
    let body = b"{\"region\":\"FRA\",\"orchestrator\":\"0x00000000000000000000000000000000000000aa\",\
\"success_rate\":1,\"round_trip_time\":1.25,\"seg_duration\":2,\"errors\":[],\"timestamp\":1700000000}\n";
    let file = std::env::temp_dir().join(format!("leaderboard-sign-{}.json", std::process::id()));
    std::fs::write(&file, body).expect("body file");

    let from_file = sign(
        Some(common::SECRET),
        &["sign", file.to_str().unwrap()],
        None,
    )
    .await;
    assert!(from_file.status.success(), "{}", stderr(&from_file));
    let printed = stdout(&from_file);
    let signature = printed.strip_suffix('\n').expect("a newline at the end");
    assert_eq!(signature.len(), 64);
    assert!(signature
        .chars()
        .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)));
    for args in [&["sign", "-"][..], &["sign"]] {
        let from_stdin = sign(Some(common::SECRET), args, Some(body)).await;
        assert_eq!(
            stdout(&from_stdin),
            printed,
            "{args:?} signs standard input"
        );
    }

    let accepted = server.post_with(body.to_vec(), Some(signature)).await;
    assert_eq!(accepted.status().as_u16(), 200);
    assert_eq!(common::event_count(&db).await, 1);
    // Any other body, even one byte less, is refused with that signature.
    for other in [&body[..body.len() - 1], b"{}", b""] {
        let refused = server.post_with(other.to_vec(), Some(signature)).await;
        assert!(
            [401, 403].contains(&refused.status().as_u16()),
            "{}",
            refused.status()
        );
    }
    assert_eq!(common::event_count(&db).await, 1);
    let other_secret = sign(
        Some("not-the-secret"),
        &["sign", file.to_str().unwrap()],
        None,
    )
    .await;
    assert_ne!(stdout(&other_secret), printed);
    std::fs::remove_file(&file).expect("clean up");
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_without_secret_or_body_fails_in_one_line() {
    let out = sign(None, &["sign", "-"], Some(b"{}")).await;
    assert_fails(&out, 2, "SECRET is not set");
    assert!(stdout(&out).is_empty());
    let out = sign(Some("s"), &["sign", "/nonexistent/body.json"], None).await;
    assert_fails(&out, 1, "cannot read /nonexistent/body.json");
}

/// Every rollup table has planner statistics from an explicit ANALYZE (autovacuum's own
/// runs count separately, in last_autoanalyze).
const ROLLUPS_ANALYZED: &str =
    "SELECT count(*) = 5 AND bool_and(last_analyze IS NOT NULL) FROM pg_stat_user_tables \
      WHERE relname IN ('event_buckets_10m', 'event_buckets_1h', 'event_buckets_6h', \
                        'pipeline_buckets', 'ai_round_trips')";

/// Whether the rollups have been analyzed, as the statistics show it right now.
async fn rollups_analyzed(db: &TestDb) -> bool {
    db.client()
        .await
        .query_one(ROLLUPS_ANALYZED, &[])
        .await
        .expect("pg_stat_user_tables")
        .get(0)
}

/// Whether an ANALYZE of every rollup that already ran shows (waiting for it up to
/// PostgreSQL 14, where the statistics views lag: [`common::statistics_show`]).
async fn rollups_were_analyzed(db: &TestDb) -> bool {
    common::statistics_show(&db.client().await, ROLLUPS_ANALYZED).await
}

#[tokio::test(flavor = "multi_thread")]
async fn up_on_a_golang_migrate_database_backfills_builds_the_index_and_analyzes() {
    let db = common::golang_migrate_database(3, false).await;
    // Enough rows that V4 leaves the index to the online part.
    common::exact::insert_random_events(&db, 30_000).await;
    let status = ok(&db, &["migrate", "status"]).await;
    assert!(!status.contains("backfill"), "no V4 yet: {status}");
    let out = ok(&db, &["migrate", "up"]).await;
    // Unscored tests are stored, not counted.
    let scored = count(
        &db,
        "SELECT count(*) FROM events WHERE leaderboard_scored(payload)",
    )
    .await;
    assert!(scored < 30_000);
    assert!(
        out.contains(&format!("backfill complete: {scored} events counted")),
        "{out}"
    );
    let progress = leaderboard::schema::backfill::progress(&db.client().await)
        .await
        .expect("progress")
        .expect("V4");
    assert!(progress.complete && progress.index_ready, "{progress:?}");
    assert!(rollups_were_analyzed(&db).await);
    let status = ok(&db, &["migrate", "status"]).await;
    assert!(status.contains("backfill        complete"), "{status}");
    common::exact::assert_counted_once(&db).await;
}

/// Whether V7's index of the AI median by region exists and is valid.
async fn median_index_valid(db: &TestDb) -> Option<bool> {
    db.client()
        .await
        .query_opt(
            "SELECT i.indisvalid FROM pg_index i \
              WHERE i.indexrelid = to_regclass('idx_ai_round_trips_region')",
            &[],
        )
        .await
        .expect("pg_index")
        .map(|r| r.get(0))
}

#[tokio::test(flavor = "multi_thread")]
async fn up_applies_v7_to_a_finished_database_and_builds_its_index_concurrently() {
    let db = TestDb::new().await;
    ok(&db, &["migrate", "up"]).await;
    assert_eq!(
        median_index_valid(&db).await,
        Some(true),
        "inline when small"
    );
    common::exact::insert_ai_successes(&db, 10_000).await;
    let out = ok(&db, &["migrate", "down", "--to", "6", "--yes"]).await;
    assert!(out.contains("V7 ai_median_by_region"), "{out}");
    assert_eq!(median_index_valid(&db).await, None);
    let status = ok(&db, &["migrate", "status"]).await;
    assert!(status.contains("V7"), "pending: {status}");

    // Too many round trips to index inside V7's transaction: the finish builds it.
    let out = ok(&db, &["migrate", "up"]).await;
    assert!(out.contains("applied V7"), "{out}");
    assert!(out.contains("indexes ready"), "{out}");
    assert_eq!(median_index_valid(&db).await, Some(true));
    let progress = leaderboard::schema::backfill::progress(&db.client().await)
        .await
        .expect("progress")
        .expect("V4");
    assert!(progress.settled(), "{progress:?}");
    let status = ok(&db, &["migrate", "status"]).await;
    assert!(status.contains("backfill        complete"), "{status}");
}

#[tokio::test(flavor = "multi_thread")]
async fn seed_leaves_the_rollups_analyzed() {
    let db = TestDb::new().await;
    ok(&db, &["migrate", "up"]).await;
    assert!(!rollups_analyzed(&db).await, "nothing analyzed yet");
    ok(&db, &["seed", "--events", "3000"]).await;
    assert!(rollups_were_analyzed(&db).await);
}

/// A post of an AI stat to `region`, through `server`.
async fn post_ai(server: &TestServer, region: &str) -> (u16, String) {
    let body = serde_json::json!({"region": region, "orchestrator": "0xabc", "success_rate": 1,
                                  "round_trip_time": 1.5, "model": "m", "pipeline": "p"});
    let response = server.post(body.to_string()).await;
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

#[tokio::test(flavor = "multi_thread")]
async fn region_add_registers_a_region_a_running_server_accepts_at_once() {
    let db = TestDb::new().await;
    let server = TestServer::with_secret(&db).await;
    // The server's regions are cached (REGIONS_CACHE_TIMEOUT is 60 s).
    let before = server.get_json("/api/regions", 200).await;
    common::assert_seed_regions(&before);
    let (status, refusal) = post_ai(&server, "ams").await;
    assert_eq!(status, 400);
    assert!(
        refusal.contains(
            "region AMS is not registered for ai jobs; register it with: \
             leaderboard region add AMS --name \\\"…\\\" --type ai"
        ),
        "{refusal}"
    );

    let out = ok(
        &db,
        &[
            "region",
            "add",
            "ams",
            "--name",
            "Amsterdam",
            "--type",
            "ai",
        ],
    )
    .await;
    assert!(
        out.contains("added region AMS (Amsterdam) for ai jobs"),
        "{out}"
    );
    assert_eq!(post_ai(&server, "AMS").await, (200, "ok".to_string()));
    // A transcoding post is still refused there: registered for ai only.
    let transcoding = serde_json::json!({"region": "AMS", "orchestrator": "0xabc",
                                         "success_rate": 1, "round_trip_time": 1.5});
    let response = server.post(transcoding.to_string()).await;
    assert_eq!(response.status().as_u16(), 400);
    let text = response.text().await.expect("body");
    assert!(text.contains("--type transcoding"), "{text}");

    // Added with SQL behind the server's back works as well.
    db.client()
        .await
        .batch_execute(
            "INSERT INTO regions (name, display_name, job_type_id) \
             SELECT 'WAW', 'Warsaw', id FROM job_types WHERE name = 'ai'",
        )
        .await
        .expect("insert region");
    assert_eq!(post_ai(&server, "waw").await, (200, "ok".to_string()));
    let regions = server.get_json("/api/regions", 200).await;
    let listed: Vec<(String, String)> = regions["regions"]
        .as_array()
        .expect("regions")
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap_or_default().to_string(),
                r["type"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert!(listed.contains(&("AMS".into(), "ai".into())), "{listed:?}");
    assert!(listed.contains(&("WAW".into(), "ai".into())), "{listed:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn region_add_is_idempotent_and_refuses_a_different_name() {
    let db = TestDb::new().await;
    ok(&db, &["migrate", "up"]).await;
    let regions = "SELECT count(*) FROM regions";
    let seeded = count(&db, regions).await;

    let first = ok(
        &db,
        &[
            "region",
            "add",
            "AMS",
            "--name",
            "Amsterdam",
            "--type",
            "transcoding",
        ],
    )
    .await;
    assert!(
        first.contains("added region AMS (Amsterdam) for transcoding jobs"),
        "{first}"
    );
    let again = ok(
        &db,
        &[
            "region",
            "add",
            "ams",
            "--name",
            "Amsterdam",
            "--type",
            "transcoding",
        ],
    )
    .await;
    assert!(
        again.contains(
            "region AMS is already registered for transcoding jobs as \"Amsterdam\": nothing to do"
        ),
        "{again}"
    );
    assert_eq!(count(&db, regions).await, seeded + 1);

    let renamed = run(
        Some(&db.url),
        &[
            "region",
            "add",
            "AMS",
            "--name",
            "Mokum",
            "--type",
            "transcoding",
        ],
    )
    .await;
    assert_fails(
        &renamed,
        1,
        "region AMS is already registered for transcoding jobs as \"Amsterdam\", not \"Mokum\"",
    );
    // The other job type is another registration, and says which one exists already.
    let ai = ok(
        &db,
        &[
            "region",
            "add",
            "AMS",
            "--name",
            "Amsterdam",
            "--type",
            "ai",
        ],
    )
    .await;
    assert!(
        ai.contains("added region AMS (Amsterdam) for ai jobs; it is also registered for transcoding (as \"Amsterdam\")"),
        "{ai}"
    );
    let fra = ok(
        &db,
        &[
            "region",
            "add",
            "FRA",
            "--name",
            "Frankfurt",
            "--type",
            "ai",
        ],
    )
    .await;
    assert!(fra.contains("already registered for ai jobs"), "{fra}");
    assert_eq!(count(&db, regions).await, seeded + 2);

    for (args, want) in [
        (
            &["region", "add", "X", "--name", "X", "--type", "video"][..],
            "invalid value 'video'",
        ),
        (&["region", "add", "X", "--type", "ai"][..], "--name <NAME>"),
        (
            &["region", "add", " ", "--name", "X", "--type", "ai"][..],
            "the region id must not be empty",
        ),
        (
            &["region", "add", "X", "--name", " ", "--type", "ai"][..],
            "--name must not be empty",
        ),
    ] {
        let out = run(Some(&db.url), args).await;
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(want), "{args:?}: {}", stderr(&out));
    }
    assert_eq!(count(&db, regions).await, seeded + 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn region_list_is_a_table_of_every_region() {
    let db = TestDb::new().await;
    ok(&db, &["migrate", "up"]).await;
    ok(
        &db,
        &[
            "region",
            "add",
            "AMS",
            "--name",
            "Amsterdam",
            "--type",
            "ai",
        ],
    )
    .await;
    let out = ok(&db, &["region", "list"]).await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1 + common::SEED_REGIONS.len() + 1, "{out}");
    let columns = |line: &str| {
        line.split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(columns(lines[0]), ["ID", "NAME", "JOB TYPE"]);
    for (line, (id, name, kind)) in lines[1..].iter().zip(common::SEED_REGIONS) {
        assert_eq!(columns(line), [*id, *name, *kind], "{out}");
    }
    assert_eq!(columns(lines[lines.len() - 1]), ["AMS", "Amsterdam", "ai"]);

    let empty = TestDb::new().await;
    let out = run(Some(&empty.url), &["region", "list"]).await;
    assert_fails(&out, 1, "run `leaderboard migrate up` first");
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_lists_each_configured_keys_identifier_and_never_the_key() {
    let out = command(None, &["keys"])
        .env("SECRET", "main,key")
        .env("EXTRA_SECRETS", "tester-a, ,tester-b")
        .output()
        .await
        .expect("keys");
    assert!(out.status.success(), "{}", stderr(&out));
    let listed = stdout(&out);
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 4, "{listed}");
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["KEY", "ID"]
    );
    for (line, (name, key)) in lines[1..].iter().zip([
        ("SECRET", "main,key"),
        ("EXTRA_SECRETS #1", "tester-a"),
        ("EXTRA_SECRETS #2", "tester-b"),
    ]) {
        assert!(line.starts_with(name), "{listed}");
        assert!(line.ends_with(&leaderboard::auth::key_id(key)), "{listed}");
        assert!(!line.contains(key), "the key itself is shown: {listed}");
    }
    let none = run(None, &["keys"]).await;
    assert!(none.status.success());
    assert!(
        stdout(&none).contains("no key is configured"),
        "{}",
        stdout(&none)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn events_remove_refuses_bad_arguments_before_touching_the_database() {
    // No database is reachable: each refusal comes from the arguments alone.
    let url = Some("postgresql://nobody@127.0.0.1:1/none");
    for (args, want) in [
        (
            &["events", "remove", "--key", "SECRET"][..],
            "is not a key identifier",
        ),
        (
            &["events", "remove", "--key", "0a1b2c3d4e5"],
            "is not a key identifier",
        ),
        (
            &[
                "events",
                "remove",
                "--key",
                "0a1b2c3d4e5f",
                "--since",
                "yesterday",
            ],
            "--since \"yesterday\" is neither Unix seconds nor an RFC 3339 time",
        ),
        (
            &[
                "events",
                "remove",
                "--key",
                "0a1b2c3d4e5f",
                "--since",
                "20",
                "--until",
                "10",
            ],
            "--since is after --until",
        ),
    ] {
        let out = run(url, args).await;
        assert_fails(&out, 2, want);
    }
    let out = run(url, &["events", "remove"]).await;
    assert_eq!(out.status.code(), Some(2), "--key is required");
    assert!(stderr(&out).contains("--key <ID>"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn events_remove_on_a_database_without_the_schema_says_to_migrate() {
    let db = TestDb::new().await;
    let out = run(
        Some(&db.url),
        &["events", "remove", "--key", "0a1b2c3d4e5f", "--yes"],
    )
    .await;
    assert_fails(&out, 1, "run `leaderboard migrate up` first");
    let out = run(Some(&db.url), &["keys", "--stored"]).await;
    assert_fails(&out, 1, "run `leaderboard migrate up` first");
}
