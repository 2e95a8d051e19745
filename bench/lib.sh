# Shared by the benchmark scripts: a local server on a throwaway embedded PostgreSQL.
# Callers set WORK (a directory the postgres user can reach) and source this file.

SERVER_PID=""

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# stop_pid VAR: stops the process whose pid the variable named VAR holds (none: nothing)
# and clears it; every server a script starts is stopped this way.
stop_pid() {
  local pid=${!1}
  if [ -n "$pid" ]; then
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  printf -v "$1" '%s' ""
}

stop_server() { stop_pid SERVER_PID; }

cleanup() { stop_server; [ -z "${WORK:-}" ] || rm -rf "$WORK"; }
trap cleanup EXIT

# wait_healthy PORT ERRFILE SECONDS: until the server on PORT answers /api/health with 200;
# past SECONDS, prints ERRFILE (its stderr) and exits.
wait_healthy() {
  local deadline=$((SECONDS + $3))
  until curl -sf -o /dev/null "localhost:$1/api/health"; do
    [ $SECONDS -lt $deadline ] || { cat "$2"; echo "server on port $1 not healthy" >&2; exit 1; }
    sleep 0.2
  done
}

# start_server BIN [NAME=VALUE ...]: the local server on $WORK/pg with the given extra
# environment; waits until it is healthy and sets PORT and URL (its database).
start_server() {
  local bin=$1
  shift
  PORT=$(free_port)
  env LEADERBOARD_DATA_DIR="$WORK/pg" PORT="$PORT" LOG_LEVEL=warn "$@" \
    "$bin" >"$WORK/out" 2>"$WORK/err" &
  SERVER_PID=$!
  wait_healthy "$PORT" "$WORK/err" 60
  URL=$(grep -o 'postgres://[^ ]*' "$WORK/out" | head -1)
}

# seed_database BIN URL EVENTS [HOURS]: EVENTS synthetic events over the last HOURS (24)
# into the migrated database at URL with BIN's `seed`, then `VACUUM ANALYZE`; prints how
# long both took.
seed_database() {
  local start=$SECONDS hours=${4:-24}
  POSTGRES="$2" "$1" seed --events "$3" --hours "$hours" >/dev/null 2>"$WORK/seed.err" || { cat "$WORK/seed.err"; exit 1; }
  psql "$2" -qAt -c 'VACUUM ANALYZE' >/dev/null
  echo "seeded $3 events over $hours h in $((SECONDS - start)) s"
}

# Timing the read routes over real HTTP (read-path.sh, after-large-statement.sh).
RUNS=${RUNS:-20}
# Response caches off, so every request reaches the database.
CACHES_OFF=(SECRET=bench REGIONS_CACHE_TIMEOUT=0 PIPELINES_CACHE_TIMEOUT=0)

# p50 and p99 (nearest rank) in milliseconds of the numbers (seconds) on stdin.
percentiles() {
  sort -g | awk '{v[NR]=$1*1000} END {
    p50=v[int((NR+1)/2)]; i=int(0.99*NR+0.999); if (i>NR) i=NR; p99=v[i];
    printf "%8.1f %8.1f", p50, p99 }'
}

# route_times PATH: "p50 p99" in ms of RUNS requests to the server at PORT, after one warm-up.
route_times() {
  curl -s -o /dev/null "localhost:$PORT$1"
  for _ in $(seq "$RUNS"); do curl -s -o /dev/null -w '%{time_total}\n' "localhost:$PORT$1"; done | percentiles
}

time_route() { # name path: prints name, p50, p99 and the answer's size
  local figures bytes
  figures=$(route_times "$2")
  bytes=$(curl -s "localhost:$PORT$2" | wc -c)
  printf "%-44s %s %9s\n" "$1" "$figures" "$bytes"
}

urlencode() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe="/"))' "$1"; }

# read_routes EACH: calls `EACH name path` for every read route of the Explorer, given X (a
# transcoding orchestrator), XAI (an AI orchestrator), MODEL and PIPELINE (an AI group) and
# AI_REGION (a region of it).
read_routes() {
  local each=$1 ai
  ai="model=$(urlencode "$MODEL")&pipeline=$(urlencode "$PIPELINE")"
  "$each" "regions" "/api/regions"
  "$each" "aggregated_stats" "/api/aggregated_stats"
  "$each" "aggregated_stats?orchestrator=X" "/api/aggregated_stats?orchestrator=$X"
  "$each" "aggregated_stats model+pipeline" "/api/aggregated_stats?$ai"
  "$each" "aggregated_stats model+pipeline+region" "/api/aggregated_stats?$ai&region=${AI_REGION:-FRA}"
  "$each" "raw_stats?orchestrator=X" "/api/raw_stats?orchestrator=$X"
  "$each" "pipelines" "/api/pipelines"
  "$each" "top_ai_score?orchestrator=X" "/api/top_ai_score?orchestrator=$XAI"
}

# copy_database NAME [VERSION]: a copy named NAME of the database at URL, on the same server
# (CREATE DATABASE … TEMPLATE, after ending the other sessions on the original: an idle
# server's pool reconnects when it next needs to), reverted to VERSION with SEED_BIN's
# `migrate down` when given, then vacuumed and analyzed; sets COPY_URL. For a before/after
# of a migration on the same data: the older build serves the copy.
copy_database() {
  local admin=${URL%/*}/postgres tries=0
  COPY_URL=${URL%/*}/$1
  until psql "$admin" -qAt \
      -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'leaderboard' AND pid <> pg_backend_pid()" \
      -c "CREATE DATABASE $1 TEMPLATE leaderboard" >/dev/null 2>"$WORK/copy.err"; do
    tries=$((tries + 1))
    [ $tries -lt 5 ] || { cat "$WORK/copy.err"; exit 1; }
    sleep 0.5
  done
  if [ -n "${2:-}" ]; then
    POSTGRES="$COPY_URL" "$SEED_BIN" migrate down --to "$2" --yes >/dev/null
  fi
  psql "$COPY_URL" -qAt -c 'VACUUM ANALYZE' >/dev/null
}
