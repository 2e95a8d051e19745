#!/usr/bin/env bash
# Score-history benchmark (issue 23): seeds a throwaway PostgreSQL through the real schema
# with `leaderboard seed` (7 days at EVENTS_PER_DAY, default 1,000,000 a day), serves it
# with the release local server and times /api/score_history over HTTP (one warm-up, then
# 20 requests, p50), against the straightforward SQL over `event_details` (GROUP BY
# bucket, the same averages and round-trip score; for AI the per-bucket median too) timed
# in psql on the same data (median of 3). The 30-day case runs on a second database seeded
# with 30 days at EVENTS_PER_DAY_LONG (default 250,000 a day).
#
#   bench/score-history.sh
#   EVENTS_PER_DAY=200000 EVENTS_PER_DAY_LONG=50000 bench/score-history.sh   # smaller
#
# BASELINE_BIN=path (another build of the local server, e.g. of an earlier commit) also
# times that build on the same database in the same run, each request of it right before
# ours, for a before/after measured under the same conditions. With BASELINE_VERSION=N it
# serves a copy of the database on the same server reverted to version N instead (for a
# migration's before/after: V7's index would serve the older build's SQL as well).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=target/release/leaderboard
SEED_BIN=$BIN
cargo build --release --quiet --bin leaderboard
PER_DAY=${EVENTS_PER_DAY:-1000000}
PER_DAY_LONG=${EVENTS_PER_DAY_LONG:-250000}
RUNS=20

WORK=""
# shellcheck source=bench/lib.sh
. bench/lib.sh

p50() { sort -g | awk '{v[NR]=$1*1000} END {printf "%.1f", v[int((NR+1)/2)]}'; }

ours() { # path [port] → p50 ms over HTTP
  local port=${2:-$PORT}
  curl -sf -o /dev/null "localhost:$port$1" || { echo "GET $1 failed: $(curl -s "localhost:$port$1")" >&2; exit 1; }
  for _ in $(seq $RUNS); do curl -s -o /dev/null -w '%{time_total}\n' "localhost:$port$1"; done | p50
}

# The baseline build (BASELINE_BIN) as a second server on the database of the first.
BASE_PID=""
BASE_PORT=""
start_baseline() {
  [ -n "${BASELINE_BIN:-}" ] || return 0
  local base_url=$URL
  if [ -n "${BASELINE_VERSION:-}" ]; then
    copy_database baseline "$BASELINE_VERSION"
    base_url=$COPY_URL
    psql "$URL" -qAt -c 'VACUUM ANALYZE' >/dev/null
  fi
  BASE_PORT=$(free_port)
  env POSTGRES="$base_url" PORT="$BASE_PORT" LOG_LEVEL=warn SECRET=bench \
    "$BASELINE_BIN" >"$WORK/base.out" 2>"$WORK/base.err" &
  BASE_PID=$!
  wait_healthy "$BASE_PORT" "$WORK/base.err" 60
}
trap 'stop_pid BASE_PID; cleanup' EXIT

sql_ms() { # sql → median of 3 runs, ms, as psql reports it
  for _ in 1 2 3; do psql "$URL" -qAt -c '\timing on' -c "$1" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p'; done | sort -g | sed -n 2p
}

points() { # path → number of points in the answer
  curl -s "localhost:$PORT$1" | python3 -c 'import json, sys; print(sum(len(p) for r in json.load(sys.stdin).values() for p in r.values()))'
}

ROWS=()
row() { # case path sql
  local ms sql n base=""
  if [ -n "$BASE_PORT" ]; then
    [ "$(curl -s "localhost:$BASE_PORT$2")" = "$(curl -s "localhost:$PORT$2")" ] || echo "note: the baseline answers $2 differently" >&2
    base=$(ours "$2" "$BASE_PORT")
  fi
  ms=$(ours "$2")
  sql=$(sql_ms "$3")
  n=$(points "$2")
  if [ -n "$base" ]; then
    ROWS+=("$(printf "| %s | %s | %s | %s | %s | %.0fx | %.0fx |" "$1" "$n" "$base" "$ms" "$sql" "$(echo "$sql / $base" | bc -l)" "$(echo "$sql / $ms" | bc -l)")")
  else
    ROWS+=("$(printf "| %s | %s | %s | %s | %.0fx |" "$1" "$n" "$ms" "$sql" "$(echo "$sql / $ms" | bc -l)")")
  fi
}

# The straightforward computation over event_details: per bucket of IV seconds in
# [LO, HI), the scored tests' averages and the transcoding round-trip score.
naive_transcoding() { # iv lo hi extra-where
  echo "SELECT orchestrator, region_name, t, n, sr, CASE WHEN rtt = 0 THEN 0 ELSE 1 - exp(-seg / rtt) END AS rts \
    FROM (SELECT orchestrator, region_name, floor(extract(epoch FROM event_time) / $1) * $1 AS t, count(*) AS n, \
                 AVG(COALESCE(success_rate, 0)) AS sr, AVG(COALESCE(round_trip_time, 0)) AS rtt, AVG(COALESCE(seg_duration, 0)) AS seg \
            FROM event_details \
           WHERE job_type_name = 'transcoding' AND (payload ->> 'success_rate' IS NOT NULL OR payload ->> 'round_trip_time' IS NOT NULL) \
             AND event_time >= to_timestamp($2) AND event_time < to_timestamp($3) $4 \
           GROUP BY 1, 2, 3) g"
}

NOW=$(date +%s)
WEEK_LO=$(( (NOW - 7 * 86400) / 3600 * 3600 ))
WEEK_HI=$(( NOW / 3600 * 3600 + 3600 ))
WEEK_LO6=$(( (NOW - 7 * 86400) / 21600 * 21600 ))
WEEK_HI6=$(( NOW / 21600 * 21600 + 21600 ))

# --- 7 days --------------------------------------------------------------------------
WORK=$(mktemp -d /tmp/leaderboard-bench.XXXXXX)
chmod 755 "$WORK"
start_server "$BIN" SECRET=bench
seed_database "$BIN" "$URL" $((PER_DAY * 7)) 168
start_baseline
X=$(psql "$URL" -qAt -c "SELECT e.orchestrator FROM events e JOIN regions r ON r.id = e.region_id WHERE r.job_type_id = 1 GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1")
IFS='|' read -r MODEL PIPELINE AIREGION < <(psql "$URL" -qAt -c "SELECT e.payload->>'model', e.payload->>'pipeline', r.name FROM events e JOIN regions r ON r.id = e.region_id WHERE e.payload ? 'model' GROUP BY 1, 2, 3 ORDER BY count(*) DESC, 1, 2, 3 LIMIT 1")
REGION=$(psql "$URL" -qAt -c "SELECT r.name FROM events e JOIN regions r ON r.id = e.region_id WHERE r.job_type_id = 1 GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1")
enc() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }
AI="model=$(enc "$MODEL")&pipeline=$(enc "$PIPELINE")"
WINDOW="since=$((NOW - 7 * 86400))&until=$NOW"
echo "X = $X, AI: $MODEL / $PIPELINE in $AIREGION, region $REGION"

row "one orchestrator, all regions, 7 d at 1h (transcoding)" \
  "/api/score_history?orchestrator=$X&$WINDOW&interval=1h" \
  "$(naive_transcoding 3600 "$WEEK_LO" "$WEEK_HI" "AND orchestrator = '$X'")"
row "model + pipeline, all orchestrators, one region, 7 d at 1h (AI)" \
  "/api/score_history?$AI&region=$AIREGION&$WINDOW&interval=1h" \
  "WITH f AS (SELECT * FROM event_details WHERE job_type_name = 'ai' AND region_name = '$AIREGION' \
                 AND payload ->> 'model' = '$MODEL' AND payload ->> 'pipeline' = '$PIPELINE' \
                 AND (payload ->> 'success_rate' IS NOT NULL OR payload ->> 'round_trip_time' IS NOT NULL) \
                 AND event_time >= to_timestamp($WEEK_LO) AND event_time < to_timestamp($WEEK_HI)), \
        g AS (SELECT orchestrator, floor(extract(epoch FROM event_time) / 3600) * 3600 AS t, count(*) AS n, \
                     AVG(COALESCE(success_rate, 0)) AS sr, AVG(COALESCE(round_trip_time, 0)) AS rtt FROM f GROUP BY 1, 2), \
        m AS (SELECT floor(extract(epoch FROM event_time) / 3600) * 3600 AS t, \
                     PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY round_trip_time) AS median \
                FROM f WHERE success_rate = 1 AND round_trip_time <> 0 GROUP BY 1) \
   SELECT g.orchestrator, g.t, g.n, g.sr, CASE WHEN m.median > 0 THEN exp(ln(0.8) / m.median * g.rtt) ELSE 0 END \
     FROM g LEFT JOIN m ON m.t = g.t"
row "all orchestrators, one region, 7 d at 6h (transcoding)" \
  "/api/score_history?region=$REGION&$WINDOW&interval=6h" \
  "$(naive_transcoding 21600 "$WEEK_LO6" "$WEEK_HI6" "AND region_name = '$REGION'")"
stop_pid BASE_PID
stop_server
rm -rf "$WORK"; WORK=""

# --- 30 days -------------------------------------------------------------------------
WORK=$(mktemp -d /tmp/leaderboard-bench.XXXXXX)
chmod 755 "$WORK"
start_server "$BIN" SECRET=bench
seed_database "$BIN" "$URL" $((PER_DAY_LONG * 30)) 720
start_baseline
X=$(psql "$URL" -qAt -c "SELECT e.orchestrator FROM events e JOIN regions r ON r.id = e.region_id WHERE r.job_type_id = 1 GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1")
MONTH_LO=$(( (NOW - 30 * 86400) / 86400 * 86400 ))
MONTH_HI=$(( NOW / 86400 * 86400 + 86400 ))
row "one orchestrator, all regions, 30 d at 1d (transcoding)" \
  "/api/score_history?orchestrator=$X&since=$((NOW - 30 * 86400))&until=$NOW&interval=1d" \
  "$(naive_transcoding 86400 "$MONTH_LO" "$MONTH_HI" "AND orchestrator = '$X'")"
stop_pid BASE_PID
stop_server
rm -rf "$WORK"; WORK=""

echo
echo "7 days at $PER_DAY events a day; 30 days at $PER_DAY_LONG a day; p50 of $RUNS requests over HTTP, SQL median of 3 in psql"
if [ -n "${BASELINE_BIN:-}" ]; then
  echo "baseline: $BASELINE_BIN${BASELINE_VERSION:+ on a copy at version $BASELINE_VERSION}"
  echo "| case | points | baseline p50 ms | ours p50 ms | SQL ms | SQL / baseline | SQL / ours |"
  echo "| --- | --- | --- | --- | --- | --- | --- |"
else
  echo "| case | points | ours p50 ms | SQL ms | SQL / ours |"
  echo "| --- | --- | --- | --- | --- |"
fi
printf '%s\n' "${ROWS[@]}"
