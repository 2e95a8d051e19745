#!/usr/bin/env bash
# Window-growth benchmark (issue 27): how a 7-day read's time grows with the events in the
# window. Seeds two databases on one throwaway PostgreSQL with `leaderboard seed --hours 720`
# (30 days), SMALL_EVENTS (default 500,000) and BIG_EVENTS (default 5,000,000), serves each
# with the release local server (caches off) and times every 7-day read over HTTP, the two
# servers taking turns request by request, then prints each route's p50 on both and the
# growth ratio big / small. Issue 27 asks for at most 2x for 10x the events, medians exact.
#
#   bench/window-growth.sh
#   SMALL_EVENTS=100000 BIG_EVENTS=1000000 bench/window-growth.sh   # smaller
#
# BASELINE_BIN=path (another build, e.g. of an earlier commit) serves both databases too,
# each of its requests right before ours, and gets its own columns.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=target/release/leaderboard
cargo build --release --quiet --bin leaderboard
SMALL=${SMALL_EVENTS:-500000}
BIG=${BIG_EVENTS:-5000000}
RUNS=${RUNS:-21}

WORK=$(mktemp -d /tmp/leaderboard-bench.XXXXXX)
chmod 755 "$WORK"
# shellcheck source=bench/lib.sh
. bench/lib.sh

PIDS=()
stop_all() {
  local pid
  for pid in "${PIDS[@]}"; do stop_pid pid; done
}
trap 'stop_all; cleanup' EXIT

# serve BIN DATABASE: one more server (caches off) on DATABASE of the embedded server; its
# port is appended to PORTS.
serve() {
  local port
  port=$(free_port)
  env POSTGRES="${URL%/*}/$2" PORT="$port" LOG_LEVEL=warn "${CACHES_OFF[@]}" \
    "$1" >"$WORK/$2-$port.out" 2>"$WORK/$2-$port.err" &
  PIDS+=($!)
  wait_healthy "$port" "$WORK/$2-$port.err" 60
  PORTS+=("$port")
}

start_server "$BIN" "${CACHES_OFF[@]}"
psql "${URL%/*}/postgres" -qAt -c 'CREATE DATABASE small' -c 'CREATE DATABASE big' >/dev/null
# The ports in column order: the baseline's small and big (if any), then ours. A server
# migrates its database on start (the baseline's migrations are a prefix of ours); then the
# seed fills it.
PORTS=()
if [ -n "${BASELINE_BIN:-}" ]; then
  serve "$BASELINE_BIN" small
  serve "$BASELINE_BIN" big
fi
serve "$BIN" small
serve "$BIN" big
seed_database "$BIN" "${URL%/*}/small" "$SMALL" 720
seed_database "$BIN" "${URL%/*}/big" "$BIG" 720

# The busiest AI group and region, and the busiest transcoding orchestrator, of the big database.
BIG_URL="${URL%/*}/big"
IFS='|' read -r MODEL PIPELINE AI_REGION < <(psql "$BIG_URL" -qAt -c "SELECT e.payload->>'model', e.payload->>'pipeline', r.name FROM events e JOIN regions r ON r.id = e.region_id WHERE e.payload ? 'model' GROUP BY 1, 2, 3 ORDER BY count(*) DESC, 1, 2, 3 LIMIT 1")
X=$(psql "$BIG_URL" -qAt -c "SELECT e.orchestrator FROM events e JOIN regions r ON r.id = e.region_id WHERE r.job_type_id = 1 GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1")
XAI=$(psql "$BIG_URL" -qAt -c "SELECT e.orchestrator FROM events e JOIN regions r ON r.id = e.region_id WHERE r.job_type_id = 2 GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1")
enc() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }
AI="model=$(enc "$MODEL")&pipeline=$(enc "$PIPELINE")"
NOW=$(date +%s)
WEEK="since=$((NOW - 7 * 86400))&until=$NOW"
echo "AI: $MODEL / $PIPELINE in $AI_REGION; X = $X; XAI = $XAI" >&2

# time_all PATH: the p50 ms of PATH on every port, in the order of PORTS, the ports taking turns.
time_all() {
  local port r
  for port in "${PORTS[@]}"; do
    curl -sf -o /dev/null "localhost:$port$1" || { echo "GET $1 failed on $port: $(curl -s "localhost:$port$1")" >&2; exit 1; }
  done
  for r in $(seq "$RUNS"); do
    for port in "${PORTS[@]}"; do
      echo "$port $(curl -s -o /dev/null -w '%{time_total}' "localhost:$port$1")"
    done
  done >"$WORK/times"
  for port in "${PORTS[@]}"; do
    awk -v p="$port" '$1 == p {print $2}' "$WORK/times" | sort -g | awk '{v[NR]=$1*1000} END {printf " %.1f", v[int((NR+1)/2)]}'
  done
}

ROWS=()
row() { # name path
  local t
  read -ra t <<<"$(time_all "$2")"
  if [ -n "${BASELINE_BIN:-}" ]; then
    ROWS+=("$(printf "| %s | %s | %s | %.2fx | %s | %s | %.2fx |" "$1" "${t[0]}" "${t[1]}" "$(echo "${t[1]} / ${t[0]}" | bc -l)" \
      "${t[2]}" "${t[3]}" "$(echo "${t[3]} / ${t[2]}" | bc -l)")")
  else
    ROWS+=("$(printf "| %s | %s | %s | %.2fx |" "$1" "${t[0]}" "${t[1]}" "$(echo "${t[1]} / ${t[0]}" | bc -l)")")
  fi
}

row "aggregated_stats, 7 d" "/api/aggregated_stats?$WEEK"
row "aggregated_stats?orchestrator=X, 7 d" "/api/aggregated_stats?orchestrator=$X&$WEEK"
row "aggregated_stats AI model+pipeline, 7 d" "/api/aggregated_stats?$AI&$WEEK"
row "aggregated_stats AI model+pipeline+region, 7 d" "/api/aggregated_stats?$AI&region=$AI_REGION&$WEEK"
row "top_ai_score?orchestrator=XAI (its fixed window)" "/api/top_ai_score?orchestrator=$XAI"
row "score_history AI model+pipeline+region, 7 d at 1h" "/api/score_history?$AI&region=$AI_REGION&$WEEK&interval=1h"

echo
echo "$SMALL and $BIG events over 30 days; p50 of $RUNS requests over HTTP, caches off"
if [ -n "${BASELINE_BIN:-}" ]; then
  echo "baseline: $BASELINE_BIN"
  echo "| route (7 days unless said) | baseline small ms | baseline big ms | baseline growth | ours small ms | ours big ms | ours growth |"
  echo "| --- | --- | --- | --- | --- | --- | --- |"
else
  echo "| route (7 days unless said) | small ms | big ms | growth |"
  echo "| --- | --- | --- | --- |"
fi
printf '%s\n' "${ROWS[@]}"
