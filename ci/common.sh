# Shared by ci/vercel-build.sh and ci/vercel-dev.sh (sourced, not run).
#
# - install_tools: node/npm, curl, openssl from Debian when missing; the Vercel CLI (pinned)
#   into a cache directory of its own, outside the repository (no package.json here).
# - start_postgres: a throwaway PostgreSQL on 127.0.0.1 (free port, fsync off, data in a
#   temp dir), as the `postgres` user when run as root (initdb/postgres refuse root).
# - cleanup: everything registered with on_exit runs once, in reverse order, on any exit.

VERCEL_VERSION=58.10.0
# Override with LEADERBOARD_VERCEL_DIR; kept between runs so CI installs the CLI once.
VERCEL_DIR=${LEADERBOARD_VERCEL_DIR:-${HOME:-/root}/.cache/leaderboard-vercel}
VERCEL=$VERCEL_DIR/node_modules/.bin/vercel
export VERCEL_TELEMETRY_DISABLED=1

log() { printf '[%s %s] %s\n' "${0##*/}" "$(date +%H:%M:%S)" "$*"; }
fail() {
  printf '[%s] FAILED: %s\n' "${0##*/}" "$*" >&2
  exit 1
}

# --- cleanup ---------------------------------------------------------------------------
_exit_actions=()
on_exit() { _exit_actions+=("$1"); }
_run_exit_actions() {
  local status=$? i
  trap - EXIT INT TERM
  for ((i = ${#_exit_actions[@]} - 1; i >= 0; i--)); do
    eval "${_exit_actions[i]}" || true
  done
  exit "$status"
}
trap _run_exit_actions EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- tools -------------------------------------------------------------------------------
install_tools() {
  local missing=()
  command -v node >/dev/null || missing+=(nodejs)
  command -v npm >/dev/null || missing+=(npm)
  command -v curl >/dev/null || missing+=(curl)
  command -v openssl >/dev/null || missing+=(openssl)
  command -v tar >/dev/null || missing+=(tar)
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  # The Rust builder runs `rustup -V` and, when that fails, downloads rustup from the
  # internet (unreachable here): say so plainly instead.
  command -v rustup >/dev/null || [ -x "${HOME:-/root}/.cargo/bin/rustup" ] ||
    fail "rustup not found: Vercel's Rust builder needs it (it would try to download it)"

  if [ "$(installed_vercel_version)" != "$VERCEL_VERSION" ] || [ ! -x "$VERCEL" ]; then
    log "installing vercel@$VERCEL_VERSION into $VERCEL_DIR"
    mkdir -p "$VERCEL_DIR"
    # A package.json of its own, so npm never walks up into someone else's project.
    [ -f "$VERCEL_DIR/package.json" ] ||
      printf '{"name":"leaderboard-vercel-cli","private":true}\n' >"$VERCEL_DIR/package.json"
    (cd "$VERCEL_DIR" && timeout 600 npm install --no-audit --no-fund --loglevel=error \
      --save-exact "vercel@$VERCEL_VERSION" </dev/null) || fail "npm install vercel@$VERCEL_VERSION"
  fi
  [ "$(installed_vercel_version)" = "$VERCEL_VERSION" ] || fail "vercel@$VERCEL_VERSION did not install"
  log "Vercel CLI $VERCEL_VERSION ($VERCEL), node $(node --version), $(cargo --version)"
}

installed_vercel_version() {
  node -p 'require(process.argv[1]).version' "$VERCEL_DIR/node_modules/vercel/package.json" 2>/dev/null
}

# --- small helpers -----------------------------------------------------------------------
free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# wait_for_line FILE TEXT SECONDS: until FILE contains TEXT (a fixed string).
wait_for_line() {
  local file=$1 text=$2 deadline=$((SECONDS + $3))
  until grep -qF -- "$text" "$file" 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.2
  done
}

# json_check FILE JS_EXPRESSION: the expression, over `b` (the parsed body), is true.
json_check() {
  node -e '
    const fs = require("fs");
    let b;
    try { b = JSON.parse(fs.readFileSync(process.argv[1], "utf8")); }
    catch (e) { console.error("not JSON: " + e.message); process.exit(1); }
    const ok = (0, eval)("(b) => (" + process.argv[2] + ")")(b);
    if (!ok) { console.error("expected " + process.argv[2]); process.exit(1); }
  ' "$1" "$2"
}

# --- a throwaway PostgreSQL --------------------------------------------------------------
pg_bindir() {
  local dir
  for dir in "${PG_BINDIR:-}" "$(pg_config --bindir 2>/dev/null)" \
    $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -n "$dir" ] && [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] && { echo "$dir"; return; }
  done
  return 1
}

# Sets POSTGRES_URL (database `leaderboard`, user postgres, trust auth on 127.0.0.1). The
# server is a child of this shell (setpriv execs, no forking wrapper), stopped on exit.
start_postgres() {
  local bindir port dir pid as=() deadline
  bindir=$(pg_bindir) || fail "PostgreSQL server binaries not found (apt-get install postgresql, or set PG_BINDIR)"
  dir=$(mktemp -d /tmp/leaderboard-ci-pg.XXXXXX)
  on_exit "rm -rf '$dir'"
  chmod 700 "$dir"
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || fail "running as root without a 'postgres' user to run PostgreSQL as"
    chown postgres: "$dir"
    as=(setpriv --reuid=postgres --regid=postgres --init-groups --)
  fi
  port=$(free_port)
  "${as[@]}" "$bindir/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-locale \
    >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log"; fail "initdb"; }
  "${as[@]}" "$bindir/postgres" -D "$dir/data" -c listen_addresses=127.0.0.1 -p "$port" \
    -k "$dir" -c fsync=off -c full_page_writes=off -c synchronous_commit=off \
    >"$dir/postgres.log" 2>&1 </dev/null &
  pid=$!
  on_exit "stop_process $pid 30 INT"
  deadline=$((SECONDS + 60))
  until "$bindir/pg_isready" -q -h 127.0.0.1 -p "$port"; do
    kill -0 "$pid" 2>/dev/null || { cat "$dir/postgres.log"; fail "PostgreSQL exited while starting"; }
    [ $SECONDS -lt $deadline ] || { cat "$dir/postgres.log"; fail "PostgreSQL not ready within 60 s"; }
    sleep 0.2
  done
  "$bindir/createdb" -h 127.0.0.1 -p "$port" -U postgres leaderboard || fail "createdb leaderboard"
  POSTGRES_URL="postgres://postgres@127.0.0.1:$port/leaderboard?sslmode=disable"
  log "throwaway PostgreSQL on 127.0.0.1:$port ($("$bindir/postgres" --version))"
}

# stop_process PID SECONDS [SIGNAL]: signal PID (default TERM), SIGKILL after SECONDS.
stop_process() {
  local pid=$1 deadline=$((SECONDS + $2))
  kill -"${3:-TERM}" "$pid" 2>/dev/null || return 0
  while kill -0 "$pid" 2>/dev/null; do
    if [ $SECONDS -ge $deadline ]; then
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.1
  done
  wait "$pid" 2>/dev/null || true
}
