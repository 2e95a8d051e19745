#!/usr/bin/env bash
# Peak memory of the service while a recount runs (issue 27): seeds EVENTS events (default
# 2,000,000) over the last 7 days with `leaderboard seed`, reverts the database to V4
# (`leaderboard migrate down --to 4 --yes`), starts the release local server with
# BACKFILL=off (its cold start applies V5, which empties the rollups for a recount that
# nobody then runs, so every read takes the events from `events`), and sends each read
# route over the 7 days, printing its time and the server's peak RSS (VmHWM of
# /proc/PID/status) after it; the first request is the score history of every
# orchestrator at 1d. Then `leaderboard migrate up` finishes the recount, a fresh server
# answers the same requests, and the answers are compared (every number within 1e-9
# relative: sums added in another order can differ in the last bits; top_ai_score's value
# is left out, its median being of the last 24 h at the time of asking).
#
#   bench/recount-memory.sh [EVENTS]
#   LEADERBOARD_BIN=path bench/recount-memory.sh   # another build (e.g. an earlier commit)
set -euo pipefail
cd "$(dirname "$0")/.."

EVENTS=${1:-2000000}
if [ -z "${LEADERBOARD_BIN:-}" ]; then
  cargo build --release --quiet --bin leaderboard
  LEADERBOARD_BIN=${CARGO_TARGET_DIR:-target}/release/leaderboard
fi
BIN=$LEADERBOARD_BIN

WORK=$(mktemp -d /tmp/leaderboard-recount.XXXXXX)
chmod 755 "$WORK"
# shellcheck source=bench/lib.sh
. bench/lib.sh

kb() { awk -v k="$2" '$1 == k ":" {print $2}' "/proc/$1/status"; }
mb() { awk -v v="$1" 'BEGIN {printf "%.1f", v / 1024}'; }

start_server "$BIN" SECRET=bench
seed_database "$BIN" "$URL" "$EVENTS" 168
POSTGRES="$URL" "$BIN" migrate down --to 4 --yes >/dev/null 2>"$WORK/down.err" || { cat "$WORK/down.err"; exit 1; }
stop_server

# The cold start applies V5 and leaves its recount to `migrate up`.
start_server "$BIN" SECRET=bench BACKFILL=off REGIONS_CACHE_TIMEOUT=0 PIPELINES_CACHE_TIMEOUT=0
pending=$(psql "$URL" -qAt -c 'SELECT pending_through FROM leaderboard_backfill')
[ -n "$pending" ] || { echo "the recount is not pending" >&2; exit 1; }
echo "recount pending: events with id <= $pending are read from events"

NOW=$(date +%s)
WINDOW="since=$((NOW - 7 * 86400))&until=$NOW"
X=$(psql "$URL" -qAt -c "SELECT e.orchestrator FROM events e JOIN regions r ON r.id = e.region_id WHERE r.job_type_id = 1 GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1")
XAI=$(psql "$URL" -qAt -c "SELECT e.orchestrator FROM events e JOIN regions r ON r.id = e.region_id WHERE r.job_type_id = 2 GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1")
IFS='|' read -r MODEL PIPELINE < <(psql "$URL" -qAt -c "SELECT payload->>'model', payload->>'pipeline' FROM events WHERE payload ? 'model' GROUP BY 1, 2 ORDER BY count(*) DESC, 1, 2 LIMIT 1")
AI="model=$(urlencode "$MODEL")&pipeline=$(urlencode "$PIPELINE")"

NAMES=(
  "score_history, all orchestrators, 7 d at 1d"
  "score_history model+pipeline, all orchestrators, 7 d at 1d"
  "aggregated_stats"
  "aggregated_stats model+pipeline"
  "raw_stats?orchestrator=X"
  "pipelines"
  "top_ai_score?orchestrator=X"
)
PATHS=(
  "/api/score_history?$WINDOW&interval=1d"
  "/api/score_history?$AI&$WINDOW&interval=1d"
  "/api/aggregated_stats?$WINDOW"
  "/api/aggregated_stats?$AI&$WINDOW"
  "/api/raw_stats?orchestrator=$X&$WINDOW"
  "/api/pipelines?$WINDOW"
  "/api/top_ai_score?orchestrator=$XAI&$WINDOW"
)

# requests TAG: each route once, in order, on the server at PORT; prints its time, the
# answer's size and the server's peak RSS after it, and keeps the answer in $WORK/TAG.N.
requests() {
  local i s
  printf "%-60s %10s %12s %14s\n" "$1: route" "seconds" "bytes" "peak RSS MB"
  printf "%-60s %10s %12s %14s\n" "(server started)" "" "" "$(mb "$(kb "$SERVER_PID" VmHWM)")"
  for i in "${!PATHS[@]}"; do
    s=$(curl -s -o "$WORK/$1.$i" -w '%{http_code} %{time_total}' "localhost:$PORT${PATHS[$i]}")
    [ "${s%% *}" = 200 ] || { echo "GET ${PATHS[$i]}: ${s%% *} $(cat "$WORK/$1.$i")" >&2; exit 1; }
    printf "%-60s %10s %12s %14s\n" "${NAMES[$i]}" "${s#* }" "$(wc -c <"$WORK/$1.$i")" "$(mb "$(kb "$SERVER_PID" VmHWM)")"
  done
}

requests during

# The straightforward SQL over `event_details` on the same data and window (the shape of
# the original service's queries), once each, for comparison with the routes above.
sql_s() { psql "$URL" -qAt -c '\timing on' -c "$2" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | awk -v n="$1" '{printf "%-60s %10.3f\n", "psql: " n, $1 / 1000}'; }
SQLWIN="event_time >= to_timestamp($((NOW - 7 * 86400))) AND event_time <= to_timestamp($NOW)"
sql_s "GROUP BY day over event_details (transcoding)" \
  "SELECT orchestrator, region_name, floor(extract(epoch FROM event_time) / 86400), count(*), AVG(COALESCE(success_rate, 0)), AVG(COALESCE(round_trip_time, 0)), AVG(COALESCE(seg_duration, 0)) FROM event_details WHERE job_type_name = 'transcoding' AND $SQLWIN GROUP BY 1, 2, 3"
sql_s "AVG over event_details (transcoding)" \
  "SELECT orchestrator, region_name, AVG(COALESCE(success_rate, 0)), AVG(COALESCE(round_trip_time, 0)), AVG(COALESCE(seg_duration, 0)) FROM event_details WHERE job_type_name = 'transcoding' AND $SQLWIN GROUP BY 1, 2"
sql_s "AVG over event_details (model+pipeline)" \
  "SELECT orchestrator, region_name, AVG(COALESCE(success_rate, 0)), AVG(COALESCE(round_trip_time, 0)) FROM event_details WHERE job_type_name = 'ai' AND payload->>'model' = '$MODEL' AND payload->>'pipeline' = '$PIPELINE' AND $SQLWIN GROUP BY 1, 2"
sql_s "DISTINCT pipeline, model, region over event_details" \
  "SELECT DISTINCT payload->>'pipeline', payload->>'model', region_name FROM event_details WHERE job_type_name = 'ai' AND $SQLWIN"

# The database lives as long as the server that started it.
start=$SECONDS
POSTGRES="$URL" "$BIN" migrate up >/dev/null 2>"$WORK/up.err" || { cat "$WORK/up.err"; exit 1; }
echo "recount finished by migrate up in $((SECONDS - start)) s"
stop_server
start_server "$BIN" SECRET=bench BACKFILL=off REGIONS_CACHE_TIMEOUT=0 PIPELINES_CACHE_TIMEOUT=0
requests after

# The same answers during and after the recount.
for i in "${!PATHS[@]}"; do
  python3 - "$WORK/during.$i" "$WORK/after.$i" "${NAMES[$i]}" <<'EOF'
import json, math, sys
def same(a, b):
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b
during, after = (open(p, 'rb').read() for p in sys.argv[1:3])
a, b = json.loads(during), json.loads(after)
if "top_ai_score" in sys.argv[3] and isinstance(a, dict) and isinstance(b, dict):
    # Its score takes the AI median over the last 24 h at the time of asking, which moved
    # between the two requests; the group it picks must be the same.
    a.pop("value", None)
    b.pop("value", None)
verdict = "byte for byte" if during == after else ("within 1e-9" if same(a, b) else "DIFFERENT")
print(f"{sys.argv[3]}: during and after the recount the same answer, {verdict}")
EOF
done
