#!/usr/bin/env bash
# Reads right after one large statement (issue 21): on a fresh migrated database of the
# release local server (response caches off), writes ROWS events with ONE `INSERT … SELECT`
# through psql, as an operator's import would (70 % transcoding from 200 orchestrators over
# the transcoding regions, 30 % AI from 60 orchestrators over the AI regions with four
# model/pipeline pairs, spread evenly over the last 3 days, every 10th row an unscored test
# with neither success_rate nor round_trip_time), then times every read route right after
# it (one warm-up, then RUNS requests each, p50), then runs `VACUUM ANALYZE` and times them
# again. Two rounds (the second statement adds another ROWS rows), then a table: route,
# right-after p50, analyzed p50, their ratio.
#
#   bench/after-large-statement.sh [ROWS]      default: 1000000
#
# LEADERBOARD_BIN runs another build (e.g. an older commit's) instead of this tree's.
# The orchestrators and the AI group the routes ask for follow from the generator, not
# from a query of `events`, so nothing but the routes reads the new rows before they are
# timed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-1000000}
ROUNDS=${ROUNDS:-2}
cargo build --release --quiet --bin leaderboard
BIN=${LEADERBOARD_BIN:-target/release/leaderboard}
WORK=$(mktemp -d /tmp/leaderboard-after.XXXXXX)
chmod 755 "$WORK"
# shellcheck source=bench/lib.sh
. bench/lib.sh

start_server "$BIN" "${CACHES_OFF[@]}"
X=$(printf '0x%040x' 7)
XAI=$(printf '0x%040x' 1001)
MODEL=ByteDance/SDXL-Lightning
PIPELINE=text-to-image
AI_REGION=FRA

INSERT="WITH r AS (
  SELECT array_agg(r.id ORDER BY r.id) FILTER (WHERE j.name = 'transcoding') AS t_ids,
         array_agg(r.name::text ORDER BY r.id) FILTER (WHERE j.name = 'transcoding') AS t_names,
         array_agg(r.id ORDER BY r.id) FILTER (WHERE j.name = 'ai') AS a_ids,
         array_agg(r.name::text ORDER BY r.id) FILTER (WHERE j.name = 'ai') AS a_names,
         ARRAY['text-to-image', 'text-to-image', 'image-to-video', 'llm'] AS pipelines,
         ARRAY['ByteDance/SDXL-Lightning', 'SG161222/RealVisXL_V4.0_Lightning',
               'stabilityai/stable-video-diffusion-img2vid-xt-1-1',
               'meta-llama/Meta-Llama-3.1-8B-Instruct'] AS models
    FROM regions r JOIN job_types j ON j.id = r.job_type_id),
g AS (
  SELECT i, i % 10 < 3 AS ai, (i / 10) % 10 = 7 AS unscored,
         now() - make_interval(secs => 259200.0 * ($ROWS - i) / $ROWS + random()) AS t,
         CASE WHEN i % 10 < 3 THEN '0x' || lpad(to_hex(1000 + i % 60), 40, '0')
              ELSE '0x' || lpad(to_hex(i % 200), 40, '0') END AS orch,
         CASE WHEN i % 10 < 3 THEN 1 + (i / 10) % cardinality(r.a_ids)
              ELSE 1 + (i / 200) % cardinality(r.t_ids) END AS region,
         1 + (i / 60) % 4 AS pair
    FROM generate_series(1, $ROWS) AS i, r)
INSERT INTO events (event_time, orchestrator, region_id, payload)
SELECT g.t, g.orch, CASE WHEN g.ai THEN r.a_ids[g.region] ELSE r.t_ids[g.region] END,
       CASE WHEN g.ai THEN
         jsonb_strip_nulls(jsonb_build_object(
           'region', r.a_names[g.region], 'orchestrator', g.orch,
           'success_rate', CASE WHEN g.unscored THEN NULL WHEN g.i % 13 = 0 THEN 0 ELSE 1 END,
           'round_trip_time', CASE WHEN g.unscored THEN NULL ELSE 0.4 + (g.i % 997) / 100.0 END,
           'model', r.models[g.pair], 'pipeline', r.pipelines[g.pair],
           'errors', '[]'::jsonb, 'timestamp', extract(epoch FROM g.t)::bigint))
       ELSE
         jsonb_strip_nulls(jsonb_build_object(
           'region', r.t_names[g.region], 'orchestrator', g.orch,
           'success_rate', CASE WHEN g.unscored THEN NULL WHEN g.i % 8 = 0 THEN 0.5 ELSE 1 END,
           'round_trip_time', CASE WHEN g.unscored THEN NULL ELSE 0.5 + (g.i % 1000) / 250.0 END,
           'seg_duration', 2, 'upload_time', 0.25, 'download_time', 0.75,
           'transcode_time', 1.5, 'errors', '[]'::jsonb,
           'timestamp', extract(epoch FROM g.t)::bigint))
       END
  FROM g, r"

# Autovacuum and autoanalyze runs so far on the tables the reads use.
maintenance() {
  psql "$URL" -qAt -c "SELECT sum(autovacuum_count) || ' autovacuum, ' || sum(autoanalyze_count) || ' autoanalyze'
    FROM pg_stat_user_tables WHERE relname IN ('events', 'ai_round_trips') OR relname LIKE '%bucket%'"
}

NAMES=()
declare -A AFTER ANALYZED
collect() { # name path: its p50 into P50[name]; the answer's size (read after the timing)
  local figures
  figures=$(route_times "$2")
  P50[$1]=$(awk '{print $1}' <<<"$figures")
  printf "  %-44s %s %9s\n" "$1" "$figures" "$(curl -s "localhost:$PORT$2" | wc -c)"
}
names() { NAMES+=("$1"); }
read_routes names

echo "$ROWS rows per statement, $ROUNDS rounds, p50 of $RUNS requests; server $BIN"
for round in $(seq "$ROUNDS"); do
  started=$(date +%s.%N)
  psql "$URL" -v ON_ERROR_STOP=1 -qAt -c "$INSERT" >/dev/null
  echo "round $round: INSERT … SELECT of $ROWS rows in $(echo "$(date +%s.%N) - $started" | bc) s ($(maintenance) so far)"
  echo " right after (p50 p99 ms, bytes):"
  declare -A P50=()
  read_routes collect
  for n in "${NAMES[@]}"; do AFTER[$round,$n]=${P50[$n]}; done
  echo " ($(maintenance) so far)"
  started=$(date +%s.%N)
  psql "$URL" -qAt -c 'VACUUM ANALYZE' >/dev/null
  echo " VACUUM ANALYZE in $(echo "$(date +%s.%N) - $started" | bc) s; after it (p50 p99 ms, bytes):"
  P50=()
  read_routes collect
  for n in "${NAMES[@]}"; do ANALYZED[$round,$n]=${P50[$n]}; done
done

echo
printf "| %-40s | %-5s | %14s | %11s | %5s |\n" route round "right after ms" "analyzed ms" ratio
printf "| %-40s | %-5s | %14s | %11s | %5s |\n" --- --- --- --- ---
for n in "${NAMES[@]}"; do
  for round in $(seq "$ROUNDS"); do
    a=${AFTER[$round,$n]} b=${ANALYZED[$round,$n]}
    printf "| %-40s | %-5s | %14s | %11s | %5s |\n" "$n" "$round" "$a" "$b" \
      "$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')"
  done
done
stop_server
