#!/usr/bin/env bash
# V7 benchmark (issue 27): the AI median of one region, before and after its index, paired.
# Seeds a throwaway PostgreSQL with N events over the last 24 hours (`leaderboard seed`,
# default 1,000,000, a fifth of them AI) with this build, copies the database on the same
# server and reverts the copy to V6 (`migrate down --to 6`: its median index gone), then
# serves the copy with BASELINE_BIN (another build of the local server, e.g. of main; default
# this build) and the original with this build, response caches off. Each case: one warm-up
# each, then 20 rounds (RUNS) of one request to each, which goes first alternating, p50 of each and
# their ratio; a note when the two answer differently. BASELINE_VERSION=7 keeps the copy on
# V7 (with BASELINE_BIN unset: the same build on the same schema twice, the noise of the
# pairing).
#
#   BASELINE_BIN=path/to/main/leaderboard bench/ai-median-region.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."

SEED_BIN=target/release/leaderboard
cargo build --release --quiet --bin leaderboard
BASE_BIN=${BASELINE_BIN:-$SEED_BIN}
N=${1:-1000000}
RUNS=${RUNS:-20}
WORK=$(mktemp -d /tmp/leaderboard-bench.XXXXXX)
chmod 755 "$WORK"
# shellcheck source=bench/lib.sh
. bench/lib.sh

BASE_PID=""
trap 'stop_pid BASE_PID; cleanup' EXIT

start_server "$SEED_BIN" "${CACHES_OFF[@]}"
seed_database "$SEED_BIN" "$URL" "$N"
BASE_VERSION=${BASELINE_VERSION:-6}
copy_database baseline "$BASE_VERSION"
BASE_PORT=$(free_port)
env POSTGRES="$COPY_URL" PORT="$BASE_PORT" LOG_LEVEL=warn "${CACHES_OFF[@]}" \
  "$BASE_BIN" >"$WORK/base.out" 2>"$WORK/base.err" &
BASE_PID=$!
wait_healthy "$BASE_PORT" "$WORK/base.err" 60
# Fresh statistics for both at the same moment (the copy's came with its revert).
psql "$URL" -qAt -c 'VACUUM ANALYZE' >/dev/null
# The copy ended our server's sessions: its pool replaces them on the next requests.
for _ in 1 2 3; do curl -s -o /dev/null "localhost:$PORT/api/health"; done
for db in "$COPY_URL" "$URL"; do
  echo "$(psql "$db" -qAt -c "SELECT current_database() || ': version ' || max(version) FROM refinery_schema_history"), indexes of ai_round_trips: $(psql "$db" -qAt -c "SELECT string_agg(indexname, ', ' ORDER BY indexname) FROM pg_indexes WHERE tablename = 'ai_round_trips'")"
done

XAI=$(psql "$URL" -qAt -c "SELECT e.orchestrator FROM events e JOIN regions r ON r.id = e.region_id WHERE r.job_type_id = 2 GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1")
IFS='|' read -r MODEL PIPELINE AI_REGION < <(psql "$URL" -qAt -c "SELECT e.payload->>'model', e.payload->>'pipeline', r.name FROM events e JOIN regions r ON r.id = e.region_id WHERE e.payload ? 'model' GROUP BY 1, 2, 3 ORDER BY count(*) DESC, 1, 2, 3 LIMIT 1")
AI="model=$(urlencode "$MODEL")&pipeline=$(urlencode "$PIPELINE")"
NOW=$(date +%s)
echo "AI: $MODEL / $PIPELINE, region $AI_REGION; top_ai_score of $XAI"

p50() { sort -g | awk '{v[NR]=$1*1000} END {printf "%.2f", v[int((NR+1)/2)]}'; }
ROWS=()
paired() { # case path
  local base ours
  [ "$(curl -s "localhost:$BASE_PORT$2")" = "$(curl -s "localhost:$PORT$2")" ] || echo "note: the baseline answers $2 differently" >&2
  : >"$WORK/base.t"; : >"$WORK/ours.t"
  curl -s -o /dev/null "localhost:$BASE_PORT$2"; curl -s -o /dev/null "localhost:$PORT$2"
  # Each round's first request in turn: whichever goes second would otherwise find the
  # shared buffers and the CPU caches warmer every time.
  for i in $(seq $RUNS); do
    if [ $((i % 2)) = 1 ]; then
      curl -s -o /dev/null -w '%{time_total}\n' "localhost:$BASE_PORT$2" >>"$WORK/base.t"
      curl -s -o /dev/null -w '%{time_total}\n' "localhost:$PORT$2" >>"$WORK/ours.t"
    else
      curl -s -o /dev/null -w '%{time_total}\n' "localhost:$PORT$2" >>"$WORK/ours.t"
      curl -s -o /dev/null -w '%{time_total}\n' "localhost:$BASE_PORT$2" >>"$WORK/base.t"
    fi
  done
  base=$(p50 <"$WORK/base.t"); ours=$(p50 <"$WORK/ours.t")
  ROWS+=("$(printf "| %s | %s | %s | %.2fx |" "$1" "$base" "$ours" "$(echo "$base / $ours" | bc -l)")")
}

paired "aggregated_stats model+pipeline+region (one region)" "/api/aggregated_stats?$AI&region=$AI_REGION"
paired "aggregated_stats model+pipeline (all regions)" "/api/aggregated_stats?$AI"
paired "top_ai_score?orchestrator=X" "/api/top_ai_score?orchestrator=$XAI"
paired "score_history AI one region, 24 h at 1h" "/api/score_history?$AI&region=$AI_REGION&since=$((NOW - 86400))&until=$NOW&interval=1h"

echo
echo "$N events over 24 h; p50 ms of $RUNS requests each, alternating; baseline: $BASE_BIN on a copy at V$BASE_VERSION"
echo "| case | baseline (V$BASE_VERSION) p50 ms | ours (V7) p50 ms | baseline / ours |"
echo "| --- | --- | --- | --- |"
printf '%s\n' "${ROWS[@]}"
