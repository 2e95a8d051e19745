#!/usr/bin/env bash
# Read-path benchmark (issue 5): seeds a throwaway PostgreSQL through the real schema with
# N events over the last 24 hours (`leaderboard seed`), serves it with the release build
# of the local server (response caches off), and times each Explorer route: one warm-up,
# then 20 measured requests, p50 and p99. For reference it times the straightforward SQL
# over the `event_details` view in psql on the same data.
#
#   bench/read-path.sh [N ...]          default: 100000 1000000
#
# BENCH_BASELINE=1 measures LEADERBOARD_BIN (an older build, e.g. before migration V4)
# on the same data: after seeding, the schema is reverted to version 3 first.
# BENCH_EXPLAIN=1 also logs the plan of every query the service runs (auto_explain) to
# $BENCH_OUT/plans-N.log.
set -euo pipefail
cd "$(dirname "$0")/.."

SEED_BIN=target/release/leaderboard
cargo build --release --quiet --bin leaderboard
BIN=${LEADERBOARD_BIN:-$SEED_BIN}
OUT=${BENCH_OUT:-target/bench}
mkdir -p "$OUT"
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(100000 1000000)
WORK=""
# shellcheck source=bench/lib.sh
. bench/lib.sh

time_sql() { # name sql: median of 3 runs, ms, as psql reports it
  local ms
  ms=$(for _ in 1 2 3; do psql "$URL" -qAt -c '\timing on' -c "$2" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p'; done | sort -g | sed -n 2p)
  printf "%-44s %8.1f\n" "$1" "$ms"
}

for N in "${SIZES[@]}"; do
  WORK=$(mktemp -d /tmp/leaderboard-bench.XXXXXX)
  chmod 755 "$WORK"
  start_server "$SEED_BIN" "${CACHES_OFF[@]}"
  seed_start=$SECONDS
  POSTGRES="$URL" "$SEED_BIN" seed --events "$N" >/dev/null 2>"$WORK/seed.err" || { cat "$WORK/seed.err"; exit 1; }
  seed_secs=$((SECONDS - seed_start))
  psql "$URL" -qAt -c 'VACUUM ANALYZE' >/dev/null
  if [ "${BENCH_BASELINE:-0}" = 1 ]; then
    # The embedded database lives with the server process: revert while it runs, then
    # serve the same data directory with the baseline build.
    POSTGRES="$URL" "$SEED_BIN" migrate down --to 3 --yes >/dev/null
    psql "$URL" -qAt -c 'VACUUM ANALYZE' >/dev/null
    stop_server
    start_server "$BIN" "${CACHES_OFF[@]}"
  elif [ "$BIN" != "$SEED_BIN" ]; then
    stop_server; start_server "$BIN" "${CACHES_OFF[@]}"
  fi

  X=$(psql "$URL" -qAt -c "SELECT orchestrator FROM events GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1")
  XAI=$(psql "$URL" -qAt -c "SELECT e.orchestrator FROM events e JOIN regions r ON r.id = e.region_id WHERE r.job_type_id = 2 GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1")
  IFS='|' read -r MODEL PIPELINE < <(psql "$URL" -qAt -c "SELECT payload->>'model', payload->>'pipeline' FROM events WHERE payload ? 'model' GROUP BY 1, 2 ORDER BY count(*) DESC, 1, 2 LIMIT 1")
  RAW_ROWS=$(psql "$URL" -qAt -c "SELECT count(*) FROM event_details WHERE orchestrator = '$X' AND job_type_name = 'transcoding' AND event_time >= now() - interval '24 hours'")

  echo
  echo "== N = $N events (seeded in ${seed_secs}s), server $BIN"
  echo "   X = $X ($RAW_ROWS transcoding rows in the window), AI: $MODEL / $PIPELINE"
  printf "%-44s %8s %8s %9s\n" "route" "p50 ms" "p99 ms" "bytes"
  read_routes time_route
  echo "-- straightforward SQL in psql, same data (median of 3)"
  WINDOW="event_time >= now() - interval '24 hours'"
  time_sql "AVG over event_details (transcoding)" \
    "SELECT orchestrator, region_name, AVG(COALESCE(success_rate, 0)), AVG(COALESCE(round_trip_time, 0)), AVG(COALESCE(seg_duration, 0)) FROM event_details WHERE job_type_name = 'transcoding' AND $WINDOW GROUP BY 1, 2"
  time_sql "AVG over event_details (model+pipeline)" \
    "SELECT orchestrator, region_name, AVG(COALESCE(success_rate, 0)), AVG(COALESCE(round_trip_time, 0)) FROM event_details WHERE job_type_name = 'ai' AND payload->>'model' = '$MODEL' AND payload->>'pipeline' = '$PIPELINE' AND $WINDOW GROUP BY 1, 2"
  time_sql "PERCENTILE_CONT over event_details" \
    "SELECT PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY round_trip_time) FROM event_details WHERE job_type_name = 'ai' AND success_rate = 1 AND round_trip_time <> 0 AND payload->>'model' = '$MODEL' AND payload->>'pipeline' = '$PIPELINE' AND $WINDOW"

  if [ "${BENCH_EXPLAIN:-0}" = 1 ]; then
    psql "$URL" -qAt -c "ALTER DATABASE leaderboard SET session_preload_libraries = 'auto_explain'" \
      -c "ALTER DATABASE leaderboard SET auto_explain.log_min_duration = 0" \
      -c "ALTER DATABASE leaderboard SET auto_explain.log_analyze = on" \
      -c "ALTER DATABASE leaderboard SET auto_explain.log_buffers = on" >/dev/null
    stop_server; start_server "$BIN" "${CACHES_OFF[@]}"
    logged=$(stat -c %s "$WORK/pg/server.log")
    request() { curl -s -o /dev/null "localhost:$PORT$2"; }
    read_routes request
    tail -c +$((logged + 1)) "$WORK/pg/server.log" >"$OUT/plans-$N.log"
    echo "plans: $OUT/plans-$N.log"
  fi
  stop_server
  rm -rf "$WORK"; WORK=""
done
