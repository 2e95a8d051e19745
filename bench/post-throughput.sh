#!/usr/bin/env bash
# post_stats throughput benchmark ("B"): a baseline build against this tree's, alternating
# runs. Each run: the release local server of one build on a fresh database of one
# throwaway PostgreSQL (POSTGRES set, so the server starts none of its own), wrk posting
# one signed stream-tester body over C connections for S seconds after a 2 s warm-up.
# PostgreSQL runs once with fsync=off and once with fsync=on (synchronous_commit=on, as
# production), pg_stat_statements preloaded, and wal_init_zero=off: a fresh cluster
# creates every WAL segment, zero-filling 16 MB with fsync while writers wait, where a
# long-running one recycles them; the build writing more WAL per run hit those stalls
# more often (its p99 at fsync=on was 10-20 or 50-60 ms by run, 12 ms with this).
#
#   bench/post-throughput.sh [SECONDS] [REPEATS]          default: 10 3
#
# CONNECTIONS ("1 8 64"), FSYNC_MODES ("off on"), BASELINE (3d451bf; built release in a
# git worktree at BASE_DIR, /tmp/lb-base, with its own target dir, kept for the next run),
# BASELINE_BIN / CURRENT_BIN (use these binaries instead of building), EXTRA_BIN (a third
# build, "extra", in the same rotation), BODIES (distinct bodies per measured run, 300000).
#
# Every post is a body never sent before, as real testers post (a repeated body stores
# nothing since V6): the stream-tester body with its own `timestamp`, signed ahead of the
# run; each wrk thread sends its own share, the warm-up a set of its own.
#
# Per run it prints requests/s, wrk's p50/p99, the 200s wrk counted, the rows stored
# (loss = 200s without a row must be 0; rows beyond the 200s are answers wrk cut off at the
# deadline, at most C), non-2xx answers, and the database's time per stored post: CPU of
# every PostgreSQL process from /proc (backends, walwriter, … and the reaped ones) and
# pg_stat_statements' execution time of all statements (BEGIN/COMMIT included; the
# commit of an autocommit statement is not part of its execution time). Then the medians
# per build, and the same database figures for a plain single-row INSERT (pgbench, 8
# clients, one statement per transaction) into a fresh `events` with its triggers
# disabled, once per repeat.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10}
REPEATS=${2:-3}
CONNECTIONS=${CONNECTIONS:-"1 8 64"}
FSYNC_MODES=${FSYNC_MODES:-"off on"}
BASELINE=${BASELINE:-3d451bf}
BASE_DIR=${BASE_DIR:-/tmp/lb-base}
SECRET=bench
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
PG_BINDIR=${PG_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}

WORK=$(mktemp -d /tmp/leaderboard-post-bench.XXXXXX)
chmod 755 "$WORK"
SERVER_PID=""
PGDATA=""
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
  fi
}
stop_pg() {
  if [ -n "$PGDATA" ]; then
    as_pg "$PG_BINDIR/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null 2>&1 || true
    PGDATA=""
  fi
}
cleanup() { stop_server; stop_pg; rm -rf "$WORK"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The binaries, copied so that a rebuild meanwhile changes nothing.
if [ -z "${CURRENT_BIN:-}" ]; then
  nice -n 10 cargo build --release --quiet --bin leaderboard
  CURRENT_BIN=target/release/leaderboard
  CURRENT_LABEL="this tree, $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- crates migrations || echo +changes)"
fi
if [ -z "${BASELINE_BIN:-}" ]; then
  if [ "$(git -C "$BASE_DIR" rev-parse HEAD 2>/dev/null)" != "$(git rev-parse "$BASELINE")" ]; then
    git worktree remove --force "$BASE_DIR" 2>/dev/null || true
    git worktree add --detach "$BASE_DIR" "$BASELINE" >/dev/null
  fi
  (cd "$BASE_DIR" && CARGO_TARGET_DIR="$BASE_DIR/target" nice -n 10 cargo build --release --quiet --bin leaderboard)
  BASELINE_BIN=$BASE_DIR/target/release/leaderboard
fi
cp "$BASELINE_BIN" "$WORK/base"
cp "$CURRENT_BIN" "$WORK/current"
BUILDS="base current"
if [ -n "${EXTRA_BIN:-}" ]; then
  cp "$EXTRA_BIN" "$WORK/extra"
  BUILDS="$BUILDS extra"
  echo "extra: $EXTRA_BIN"
fi
echo "baseline: $BASELINE_BIN; current: $CURRENT_BIN (${CURRENT_LABEL:-given})"

BODY='{"errors":[],"region":"MDW","timestamp":1723741735,"upload_time":0.7765968238571429,"orchestrator":"0x0fc80afb7876f579f1fb1c4d1c37cf1339038658","seg_duration":2.0088571428571425,"success_rate":1,"download_time":0.9568952794285714,"segments_sent":15,"transcode_time":0.21355154864285741,"round_trip_time":1.9470436519285717,"segments_received":30}'
# Distinct signed bodies, one "signature body" line each: FILE FIRST COUNT.
sign_bodies() {
  BODY="$BODY" SECRET="$SECRET" python3 - "$@" <<'PY'
import hashlib, hmac, json, os, sys
path, first, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
template = json.loads(os.environ["BODY"])
key = os.environ["SECRET"].encode()
with open(path, "w") as out:
    for n in range(first, first + count):
        template["timestamp"] = n
        body = json.dumps(template, separators=(",", ":"))
        signature = hmac.new(key, body.encode(), hashlib.sha256).hexdigest()
        out.write(signature + " " + body + "\n")
PY
}
sign_bodies "$WORK/warm.bodies" 1000000000 "${WARM_BODIES:-60000}"
sign_bodies "$WORK/run.bodies" 1100000000 "${BODIES:-300000}"
cat >"$WORK/post.lua" <<'LUA'
-- wrk -tN ... -s post.lua URL -- FILE N: thread k of N sends lines k, k+N, k+2N, ... of FILE.
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
end
local requests, next_request = {}, 1
function init(args)
  local threads, line_number = tonumber(args[2]), 0
  for line in io.lines(args[1]) do
    line_number = line_number + 1
    if (line_number - id) % threads == 0 then
      local space = line:find(" ", 1, true)
      requests[#requests + 1] = wrk.format("POST", nil, {
        ["Content-Type"] = "application/json",
        ["Authorization"] = line:sub(1, space - 1),
      }, line:sub(space + 1))
    end
  end
end
-- Past its share a thread starts again: repeats, which store nothing (run() reports it).
function request()
  local r = requests[next_request]
  next_request = next_request % #requests + 1
  return r
end
-- The 200s are the answers that were not errors (post_stats answers 200 or an error):
-- counting them in a response() callback would make wrk parse every answer in Lua, which
-- on this 2-core machine slows the client enough to shape the tail it measures.
function done(summary, latency, requests)
  io.write(string.format("OK %d\nP50 %.3f\nP99 %.3f\n", summary.requests - summary.errors.status,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
LUA
# The same body for pgbench (": " so that pgbench sees no :variables).
REF_PAYLOAD=$(printf %s "$BODY" | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin), separators=(", ", ": ")))')
printf "INSERT INTO events (orchestrator, region_id, payload) VALUES ('0x0fc80afb7876f579f1fb1c4d1c37cf1339038658', 5, '%s');\n" "$REF_PAYLOAD" >"$WORK/insert.sql"

TICKS=$(getconf CLK_TCK)
# CPU ticks of the postmaster (with its reaped children) and every living child.
pg_ticks() {
  local pm total=0 pid
  pm=$(head -1 "$PGDATA/postmaster.pid")
  total=$(awk '{print $14+$15+$16+$17}' "/proc/$pm/stat")
  for pid in $(pgrep -P "$pm"); do
    total=$((total + $(awk '{print $14+$15}' "/proc/$pid/stat" 2>/dev/null || echo 0)))
  done
  echo "$total"
}
sql() { "$PG_BINDIR/psql" -X -qAt "$PGURL/$1" -c "$2"; }
pgss_ms() { sql "$1" "SELECT COALESCE(sum(total_exec_time), 0) FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"; }

start_pg() {
  PGDATA=$WORK/pg-$1
  mkdir -p "$PGDATA" "$WORK/sock"
  chmod 700 "$PGDATA"
  [ "$(id -u)" != 0 ] || chown postgres "$PGDATA" "$WORK/sock"
  as_pg "$PG_BINDIR/initdb" -D "$PGDATA" -U postgres --auth=trust -E UTF8 >/dev/null
  local port
  port=$(free_port)
  as_pg "$PG_BINDIR/pg_ctl" -D "$PGDATA" -w -l "$PGDATA/log" -o "-p $port -k $WORK/sock -c listen_addresses=127.0.0.1 \
    -c fsync=$1 -c synchronous_commit=on -c max_connections=200 -c wal_init_zero=off \
    -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=top" start >/dev/null
  PGURL="postgresql://postgres@127.0.0.1:$port"
  # In template1, so every database of a run has pg_stat_statements_reset().
  sql template1 "CREATE EXTENSION pg_stat_statements" >/dev/null
}

RESULTS=$WORK/results
RUN=0
# run BUILD FSYNC CONNECTIONS: one measured run on a fresh database.
run() {
  local build=$1 fsync=$2 conns=$3 db http threads before_rows before_ticks out rows ticks ms
  RUN=$((RUN + 1))
  db=run$RUN
  sql postgres "CREATE DATABASE $db" >/dev/null
  http=$(free_port)
  env POSTGRES="$PGURL/$db?sslmode=disable" SECRET=$SECRET PORT="$http" LOG_LEVEL=warn \
    "$WORK/$build" >"$WORK/out" 2>"$WORK/err" &
  SERVER_PID=$!
  local deadline=$((SECONDS + 120))
  until curl -sf -o /dev/null "localhost:$http/api/health"; do
    [ $SECONDS -lt $deadline ] || { cat "$WORK/err"; echo "server not healthy" >&2; exit 1; }
    sleep 0.2
  done
  threads=$((conns < 2 ? 1 : 2))
  local url="http://127.0.0.1:$http/api/post_stats"
  wrk -t"$threads" -c"$conns" -d2s -s "$WORK/post.lua" "$url" -- "$WORK/warm.bodies" "$threads" >/dev/null
  before_rows=$(sql "$db" "SELECT count(*) FROM events")
  sql "$db" "SELECT pg_stat_statements_reset()" >/dev/null
  before_ticks=$(pg_ticks)
  out=$(wrk -t"$threads" -c"$conns" -d"${DURATION}s" --latency -s "$WORK/post.lua" "$url" -- "$WORK/run.bodies" "$threads")
  ticks=$(($(pg_ticks) - before_ticks))
  ms=$(pgss_ms "$db")
  if [ -n "${BENCH_STATEMENTS:-}" ]; then
    sql "$db" "SELECT calls, round(total_exec_time::numeric, 1) AS ms, rows, left(regexp_replace(query, '\s+', ' ', 'g'), 90)
                 FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
                ORDER BY total_exec_time DESC LIMIT 8"
  fi
  rows=$(($(sql "$db" "SELECT count(*) FROM events") - before_rows))
  stop_server
  local rps ok p50 p99 non2xx
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  ok=$(awk '/^OK / {print $2}' <<<"$out")
  p50=$(awk '/^P50 / {print $2}' <<<"$out")
  p99=$(awk '/^P99 / {print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
  local cpu_us pgss_us
  cpu_us=$(awk -v t="$ticks" -v hz="$TICKS" -v r="$rows" 'BEGIN {printf "%.1f", r ? t / hz * 1e6 / r : 0}')
  pgss_us=$(awk -v m="$ms" -v r="$rows" 'BEGIN {printf "%.1f", r ? m * 1000 / r : 0}')
  printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n" "$build" "$fsync" "$conns" "$rps" "$p50" "$p99" \
    "$ok" "$rows" "${non2xx:-0}" "$cpu_us" "$pgss_us" >>"$RESULTS"
  printf "%-8s fsync=%-3s c=%-3s %9s req/s  p50 %7s ms  p99 %7s ms  200s %7s  rows %7s  non-2xx %s  cpu %6s us/post  pgss %6s us/post\n" \
    "$build" "$fsync" "$conns" "$rps" "$p50" "$p99" "$ok" "$rows" "${non2xx:-0}" "$cpu_us" "$pgss_us"
  if [ "$ok" -gt "$rows" ]; then
    echo "LOSS: $ok answers 200 but $rows rows stored (or more posts than BODIES=${BODIES:-300000}: raise it)" >&2
    exit 1
  fi
}

# The schema every reference run starts from: a database the current build migrated.
reference_template() {
  local http deadline
  sql postgres "CREATE DATABASE ref_template" >/dev/null
  http=$(free_port)
  env POSTGRES="$PGURL/ref_template?sslmode=disable" SECRET=$SECRET PORT="$http" LOG_LEVEL=warn BACKFILL=off \
    "$WORK/current" >"$WORK/out" 2>"$WORK/err" &
  SERVER_PID=$!
  deadline=$((SECONDS + 120))
  until curl -sf -o /dev/null "localhost:$http/api/health"; do
    [ $SECONDS -lt $deadline ] || { cat "$WORK/err"; echo "server not healthy" >&2; exit 1; }
    sleep 0.2
  done
  stop_server
}

# reference FSYNC: plain single-row INSERTs into events without triggers (a fresh copy of
# the migrated schema, user triggers disabled), pgbench with 8 clients, one statement per
# transaction; a 2 s warm-up as for the builds.
reference() {
  local fsync=$1 db before_rows before_ticks ticks ms rows tps tries=0
  RUN=$((RUN + 1))
  db=ref$RUN
  until sql postgres "CREATE DATABASE $db TEMPLATE ref_template" >/dev/null 2>&1; do
    tries=$((tries + 1))
    [ $tries -lt 100 ] || { echo "cannot copy ref_template" >&2; exit 1; }
    sleep 0.1 # the template's last connections are still closing
  done
  sql "$db" "ALTER TABLE events DISABLE TRIGGER USER" >/dev/null
  "$PG_BINDIR/pgbench" -n -M extended -c 8 -j 2 -T 2 -f "$WORK/insert.sql" "$PGURL/$db" >/dev/null 2>&1
  before_rows=$(sql "$db" "SELECT count(*) FROM events")
  sql "$db" "SELECT pg_stat_statements_reset()" >/dev/null
  local children
  children=$(pgrep -c -P "$(head -1 "$PGDATA/postmaster.pid")")
  before_ticks=$(pg_ticks)
  tps=$("$PG_BINDIR/pgbench" -n -M extended -c 8 -j 2 -T "$DURATION" -f "$WORK/insert.sql" "$PGURL/$db" 2>/dev/null \
    | awk '/^tps/ {print $3; exit}')
  # pgbench's backends exit as it does: their CPU counts once the postmaster has reaped
  # them (it is then in its cutime), and is in no /proc entry while they are exiting.
  tries=0
  while [ "$(pgrep -c -P "$(head -1 "$PGDATA/postmaster.pid")")" -gt "$children" ] && [ $tries -lt 100 ]; do
    tries=$((tries + 1))
    sleep 0.05
  done
  ticks=$(($(pg_ticks) - before_ticks))
  ms=$(pgss_ms "$db")
  rows=$(($(sql "$db" "SELECT count(*) FROM events") - before_rows))
  printf "reference\t%s\t8\t%s\t\t\t\t%s\t\t%s\t%s\n" "$fsync" "$tps" "$rows" \
    "$(awk -v t="$ticks" -v hz="$TICKS" -v r="$rows" 'BEGIN {printf "%.1f", t / hz * 1e6 / r}')" \
    "$(awk -v m="$ms" -v r="$rows" 'BEGIN {printf "%.1f", m * 1000 / r}')" >>"$RESULTS"
  tail -1 "$RESULTS" | awk -F'\t' '{printf "reference fsync=%-3s plain INSERT, pgbench 8 clients: %s rows/s  cpu %s us/post  pgss %s us/post\n", $2, $4, $10, $11}'
}

for fsync in $FSYNC_MODES; do
  start_pg "$fsync"
  reference_template
  for rep in $(seq "$REPEATS"); do
    for conns in $CONNECTIONS; do
      # Each repeat starts with another build.
      read -r -a order <<<"$BUILDS"
      for i in "${!order[@]}"; do run "${order[(i + rep) % ${#order[@]}]}" "$fsync" "$conns"; done
    done
    reference "$fsync"
  done
  stop_pg
done

echo
echo "== medians of $REPEATS runs (min-max), ${DURATION}s each; latency in ms, database time in us per stored post"
python3 - "$RESULTS" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
def med(values):
    values = sorted(float(v) for v in values)
    return statistics.median(values), values[0], values[-1]
def cell(values, fmt="{:.0f}"):
    m, lo, hi = med(values)
    return (fmt + " (" + fmt + "-" + fmt + ")").format(m, lo, hi)
print("| fsync | conns | build | req/s | p50 ms | p99 ms | 200s / rows (all runs) | non-2xx | cpu us/post | pgss us/post |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
keys = []
for r in rows:
    if r[0] != "reference" and (r[1], r[2]) not in keys:
        keys.append((r[1], r[2]))
for fsync, conns in keys:
    base = None
    for build in ("base", "current", "extra"):
        rs = [r for r in rows if r[0] == build and r[1] == fsync and r[2] == conns]
        if not rs:
            continue
        ok = sum(int(r[6]) for r in rs); stored = sum(int(r[7]) for r in rs)
        rps = med([r[3] for r in rs])[0]
        ratio = "" if base is None else " (%.2fx)" % (rps / base)
        base = rps if build == "base" else base
        print(f"| {fsync} | {conns} | {build} | {cell([r[3] for r in rs])}{ratio} | {cell([r[4] for r in rs], '{:.2f}')} | "
              f"{cell([r[5] for r in rs], '{:.2f}')} | {ok} / {stored} | {sum(int(r[8]) for r in rs)} | "
              f"{cell([r[9] for r in rs], '{:.1f}')} | {cell([r[10] for r in rs], '{:.1f}')} |")
for fsync in dict.fromkeys(r[1] for r in rows if r[0] == "reference"):
    rs = [r for r in rows if r[0] == "reference" and r[1] == fsync]
    print(f"| {fsync} | pgbench 8 | plain INSERT, no triggers | {cell([r[3] for r in rs])} | | | - / {sum(int(r[7]) for r in rs)} | | "
          f"{cell([r[9] for r in rs], '{:.1f}')} | {cell([r[10] for r in rs], '{:.1f}')} |")
PY
