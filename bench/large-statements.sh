#!/usr/bin/env bash
# Statements of any size (issue 13, item 3): one INSERT … SELECT of ROWS events, then one
# UPDATE of all of them, then one DELETE of all of them, on a migrated database with the
# rollup triggers, through psql as an operator would. After each statement it asserts that
# the rollups count every row exactly once and hold the same sums as `events` (count, success
# rate, round trip, segment duration, the AI round trips) and prints the statement's time and
# the peak memory of the database backend that ran it. Exits 1 on a mismatch or a failed
# statement. Every 10th row inserted is an unscored test (neither success_rate nor
# round_trip_time), which the UPDATE turns into a scored one. The first release's trigger
# built one array of the changed rows and failed at
# about 5 M rows ("array size exceeds the maximum allowed").
#
#   bench/large-statements.sh [ROWS]     default: 6000000
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-6000000}
WORK=$(mktemp -d /tmp/leaderboard-large.XXXXXX)
chmod 755 "$WORK"
source bench/lib.sh
cargo build --release --quiet --bin leaderboard
start_server target/release/leaderboard
echo "database ready; $ROWS rows per statement"

# Runs one statement in a session of its own, prints its time and the backend's peak RSS.
statement() {
  local what=$1 sql=$2
  local started=$SECONDS
  psql "$URL" -v ON_ERROR_STOP=1 -qAt <<SQL
SELECT pg_backend_pid() AS pid \gset
\setenv BACKEND_PID :pid
$sql;
\! grep VmHWM /proc/\$BACKEND_PID/status | sed 's/^/  backend peak memory: /'
SQL
  echo "  $what: $((SECONDS - started)) s"
}

# Asserts the rollups equal `events`: every scored row counted once (an unscored test,
# migration V5's `leaderboard_scored`, is counted nowhere), the same sums.
check() {
  local result
  result=$(psql "$URL" -v ON_ERROR_STOP=1 -qAt <<'SQL'
SELECT leaderboard_compact();
WITH raw AS (
  SELECT count(*)::float8 AS n,
         COALESCE(sum(COALESCE(leaderboard_number(payload -> 'success_rate'), 0)), 0) AS sr,
         COALESCE(sum(COALESCE(leaderboard_number(payload -> 'round_trip_time'), 0)), 0) AS rtt,
         COALESCE(sum(COALESCE(leaderboard_number(payload -> 'seg_duration'), 0)), 0) AS seg
    FROM events WHERE region_id IS NOT NULL AND leaderboard_scored(payload)),
rolled AS (
  SELECT COALESCE(sum(events), 0)::float8 AS n, COALESCE(sum(success_rate), 0) AS sr,
         COALESCE(sum(round_trip_time), 0) AS rtt, COALESCE(sum(seg_duration), 0) AS seg
    FROM event_buckets WHERE span = 600),
trips AS (
  SELECT (SELECT count(*) FROM ai_round_trips) AS kept,
         (SELECT count(*) FROM events WHERE region_id IS NOT NULL AND payload ->> 'model' IS NOT NULL
             AND payload ->> 'pipeline' IS NOT NULL AND leaderboard_number(payload -> 'success_rate') = 1
             AND leaderboard_number(payload -> 'round_trip_time') <> 0) AS wanted)
SELECT format('%s rows; rollups %s; sums %s/%s/%s vs %s/%s/%s; AI round trips %s of %s; %s',
              raw.n, rolled.n, raw.sr, raw.rtt, raw.seg, rolled.sr, rolled.rtt, rolled.seg,
              trips.kept, trips.wanted,
              CASE WHEN raw.n = rolled.n AND trips.kept = trips.wanted
                        AND abs(raw.sr - rolled.sr) <= 1e-9 * greatest(1, abs(raw.sr))
                        AND abs(raw.rtt - rolled.rtt) <= 1e-9 * greatest(1, abs(raw.rtt))
                        AND abs(raw.seg - rolled.seg) <= 1e-9 * greatest(1, abs(raw.seg))
                   THEN 'EXACT' ELSE 'MISMATCH' END)
  FROM raw, rolled, trips;
SQL
)
  echo "  check: $result"
  case "$result" in *EXACT) ;; *) echo "rollups differ from events" >&2; exit 1 ;; esac
}

statement insert "WITH r AS (SELECT array_agg(id ORDER BY id) AS ids, array_agg(name::text ORDER BY id) AS names
                  FROM regions)
  INSERT INTO events (event_time, orchestrator, region_id, payload)
  SELECT now() - make_interval(secs => (i % 86400)::float8 + random()),
         '0x' || lpad(to_hex(i % 500), 40, '0'), r.ids[1 + i % cardinality(r.ids)],
         jsonb_build_object('region', r.names[1 + i % cardinality(r.ids)],
                            'orchestrator', '0x' || lpad(to_hex(i % 500), 40, '0'),
                            'success_rate', CASE WHEN i % 10 = 3 THEN NULL WHEN i % 8 = 0 THEN 0.5 ELSE 1 END,
                            'round_trip_time', CASE WHEN i % 10 = 3 THEN NULL ELSE 0.5 + (i % 1000) / 250.0 END,
                            'seg_duration', CASE WHEN i % 5 = 0 THEN NULL ELSE 2 END,
                            'upload_time', 0.25, 'download_time', 0.75, 'transcode_time', 1.5,
                            'model', CASE WHEN i % 5 = 0 THEN 'ByteDance/SDXL-Lightning' END,
                            'pipeline', CASE WHEN i % 5 = 0 THEN 'text-to-image' END,
                            'errors', '[]'::jsonb, 'timestamp', 1723741735 + i)
    FROM generate_series(1, $ROWS) AS i, r"
check
statement update "UPDATE events SET payload = jsonb_set(payload, '{round_trip_time}',
  to_jsonb(COALESCE(leaderboard_number(payload -> 'round_trip_time'), 1) * 2)), event_time = event_time - interval '7 minutes'"
check
statement delete "DELETE FROM events"
check
echo "every statement kept the rollups exact"
