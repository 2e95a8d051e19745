#!/usr/bin/env bash
# This service against the original Go service (issue 27), in one run on one database: the
# release local server's throwaway PostgreSQL is seeded with EVENTS events over 24 h
# (`leaderboard seed`), then the original (ORIGINAL_BIN, started on the same database) and
# this service (response caches off on both) answer every read route of the Explorer in
# alternating rounds, and a lone tester posts distinct signed bodies one after another to
# each in turn. Prints p50 per route and build, and the original's time over ours (above 1:
# ours is faster).
#
#   ORIGINAL_BIN=/path/to/leaderboard-serverless bench/vs-original.sh [EVENTS]   default: 1000000
#
# ORIGINAL_PORT: the port the original listens on (8080: it takes PORT from the environment
# only in some versions, so that port must be free); LEADERBOARD_BIN: ours (default: this
# tree's release build); ROUNDS (5) alternating rounds of RUNS (10) requests per route and
# build; POSTS (300) lone posts per round and build. The original's source is not in this
# repository: build it with `go build -o leaderboard-serverless main.go` in its checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${1:-1000000}
ROUNDS=${ROUNDS:-5}
RUNS=${RUNS:-10}
POSTS=${POSTS:-300}
ORIGINAL_PORT=${ORIGINAL_PORT:-8080}
[ -n "${ORIGINAL_BIN:-}" ] || { echo "set ORIGINAL_BIN to the original service's binary" >&2; exit 2; }
if [ -z "${LEADERBOARD_BIN:-}" ]; then cargo build --release --quiet --bin leaderboard; fi
BIN=${LEADERBOARD_BIN:-target/release/leaderboard}
WORK=$(mktemp -d /tmp/leaderboard-vs-original.XXXXXX)
chmod 755 "$WORK"
# shellcheck source=bench/lib.sh
. bench/lib.sh
ORIGINAL_PID=""
trap 'stop_pid ORIGINAL_PID; cleanup' EXIT

start_server "$BIN" "${CACHES_OFF[@]}"
seed_database "$BIN" "$URL" "$EVENTS" >/dev/null
OURS=$PORT
env POSTGRES="$URL" SECRET=bench PORT="$ORIGINAL_PORT" LOG_LEVEL=warn REGIONS_CACHE_TIMEOUT=0 \
  PIPELINES_CACHE_TIMEOUT=0 "$ORIGINAL_BIN" >"$WORK/original.out" 2>"$WORK/original.err" &
ORIGINAL_PID=$!
wait_healthy "$ORIGINAL_PORT" "$WORK/original.err" 60

X=$(psql "$URL" -qAt -c "SELECT orchestrator FROM events GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1")
XAI=$(psql "$URL" -qAt -c "SELECT e.orchestrator FROM events e JOIN regions r ON r.id = e.region_id WHERE r.job_type_id = 2 GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1")
IFS='|' read -r MODEL PIPELINE < <(psql "$URL" -qAt -c "SELECT payload->>'model', payload->>'pipeline' FROM events WHERE payload ? 'model' GROUP BY 1, 2 ORDER BY count(*) DESC, 1, 2 LIMIT 1")
AI_REGION=$(psql "$URL" -qAt -c "SELECT r.name FROM events e JOIN regions r ON r.id = e.region_id WHERE r.job_type_id = 2 AND e.payload->>'model' = '$MODEL' GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1")

# Every route's request times (seconds), per build, in $WORK/times/<build>/<route>.
mkdir -p "$WORK/times/ours" "$WORK/times/original"
collect() { # name path: RUNS requests to each build, in turn
  local file
  file=$(echo "$1" | tr -c 'a-zA-Z0-9_+=\n' '_')
  for build in ours original; do
    local port=$OURS
    [ "$build" = ours ] || port=$ORIGINAL_PORT
    curl -s -o /dev/null "localhost:$port$2"
    for _ in $(seq "$RUNS"); do curl -s -o /dev/null -w '%{time_total}\n' "localhost:$port$2"; done >>"$WORK/times/$build/$file"
  done
  echo "$1" >"$WORK/times/name-$file"
}

# The lone tester: POSTS distinct signed bodies one after another, each its own request.
cat >"$WORK/poster.py" <<'PY'
import hashlib, hmac, http.client, json, sys, time
port, first, count = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
conn = http.client.HTTPConnection("127.0.0.1", port)
for n in range(first, first + count):
    body = json.dumps({"region": "MDW", "orchestrator": "0x%040x" % 7, "success_rate": 1,
                       "round_trip_time": 1.5, "errors": [], "timestamp": n}).encode()
    sig = hmac.new(b"bench", body, hashlib.sha256).hexdigest()
    start = time.perf_counter()
    conn.request("POST", "/api/post_stats", body, {"Authorization": sig})
    response = conn.getresponse()
    response.read()
    if response.status != 200:
        sys.exit(f"post: {response.status}")
    print(time.perf_counter() - start)
PY
next_body=2000000000
for round in $(seq "$ROUNDS"); do
  read_routes collect
  for build in ours original; do
    port=$OURS
    [ "$build" = ours ] || port=$ORIGINAL_PORT
    python3 "$WORK/poster.py" "$port" "$next_body" "$POSTS" >>"$WORK/times/$build/post_stats_lone"
    next_body=$((next_body + POSTS))
  done
  echo "post_stats, one tester (distinct bodies)" >"$WORK/times/name-post_stats_lone"
  echo "round $round of $ROUNDS done" >&2
done

p50() { sort -g "$1" | awk '{v[NR]=$1*1000} END {printf "%.2f", v[int((NR+1)/2)]}'; }
echo "== $EVENTS events over 24 h; X = $X, AI: $MODEL / $PIPELINE in $AI_REGION"
echo "   ours: $BIN; the original: $ORIGINAL_BIN; p50 of $((ROUNDS * RUNS)) requests per route and build"
printf "%-44s %10s %12s %8s\n" "route" "ours ms" "original ms" "ratio"
for file in "$WORK"/times/ours/*; do
  route=$(basename "$file")
  ours=$(p50 "$file")
  original=$(p50 "$WORK/times/original/$route")
  printf "%-44s %10s %12s %7.1fx\n" "$(cat "$WORK/times/name-$route")" "$ours" "$original" \
    "$(echo "$original / $ours" | bc -l)"
done
