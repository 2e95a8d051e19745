#!/usr/bin/env bash
# Removing a leaked key's rows online (issue 28): on the release local server's throwaway
# database, `leaderboard seed` writes EVENTS events, every 5th of them is given a receipt of
# one key (as if that key had let them in), then `leaderboard events remove --key … --yes`
# removes them while one client posts (distinct signed bodies, one after another, as a
# tester) and another reads aggregated_stats. Prints the removal's time and rate, and the
# posts' and reads' latency before and during it (p50, p99, max): what writers and readers
# wait while the steps run.
#
#   bench/remove-online.sh [EVENTS]      default: 500000
#
# LEADERBOARD_BIN runs another build instead of this tree's.
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${1:-500000}
KEY=deadbeef0001
if [ -z "${LEADERBOARD_BIN:-}" ]; then cargo build --release --quiet --bin leaderboard; fi
BIN=${LEADERBOARD_BIN:-target/release/leaderboard}
WORK=$(mktemp -d /tmp/leaderboard-remove.XXXXXX)
chmod 755 "$WORK"
# shellcheck source=bench/lib.sh
. bench/lib.sh

start_server "$BIN" SECRET=bench REGIONS_CACHE_TIMEOUT=0 PIPELINES_CACHE_TIMEOUT=0
POSTGRES=$URL "$BIN" seed --events "$EVENTS" >/dev/null 2>&1
psql_url() { psql -X -qAt "$URL" -c "$1"; }
psql_url "INSERT INTO post_receipts (digest, event_id, key_id)
          SELECT substr(sha256(id::text::bytea), 1, 16), id, '$KEY' FROM events WHERE id % 5 = 0"
psql_url "VACUUM ANALYZE post_receipts"
LEAKED=$(psql_url "SELECT count(*) FROM post_receipts WHERE key_id = '$KEY'")

# The clients: "post" or "read", each one request after another until $WORK/stop exists;
# one line per request: phase (before/during) and seconds taken.
cat >"$WORK/client.py" <<'PY'
import hashlib, hmac, http.client, json, os, sys, time
kind, port, work = sys.argv[1], int(sys.argv[2]), sys.argv[3]
conn = http.client.HTTPConnection("127.0.0.1", port)
n = 0
out = open(os.path.join(work, kind + ".times"), "w")
while not os.path.exists(os.path.join(work, "stop")):
    phase = "during" if os.path.exists(os.path.join(work, "removing")) else "before"
    n += 1
    start = time.perf_counter()
    if kind == "post":
        body = json.dumps({"region": "FRA", "orchestrator": "0x%040x" % 7, "success_rate": 1,
                           "round_trip_time": 1.5, "timestamp": 2_000_000_000 + n}).encode()
        sig = hmac.new(b"bench", body, hashlib.sha256).hexdigest()
        conn.request("POST", "/api/post_stats", body, {"Authorization": sig})
    else:
        conn.request("GET", "/api/aggregated_stats")
    response = conn.getresponse()
    response.read()
    if response.status != 200:
        sys.exit(f"{kind}: {response.status}")
    out.write(f"{phase} {time.perf_counter() - start}\n")
PY
python3 "$WORK/client.py" post "$PORT" "$WORK" &
POSTER=$!
python3 "$WORK/client.py" read "$PORT" "$WORK" &
READER=$!
sleep 5
touch "$WORK/removing"
START=$(date +%s.%N)
POSTGRES=$URL "$BIN" events remove --key "$KEY" --yes >"$WORK/remove.out" 2>"$WORK/remove.err"
END=$(date +%s.%N)
touch "$WORK/stop"
wait "$POSTER" "$READER"

stats() { # phase file: count p50 p99 max (ms)
  awk -v p="$1" '$1 == p {print $2}' "$2" | sort -g | awk '{v[NR]=$1*1000} END {
    if (NR == 0) { print "no requests"; exit }
    i=int(0.99*NR+0.999); if (i>NR) i=NR;
    printf "%6d requests  p50 %7.2f ms  p99 %7.2f ms  max %7.2f ms\n", NR, v[int((NR+1)/2)], v[i], v[NR] }'
}
REMAINING=$(psql_url "SELECT count(*) FROM post_receipts r JOIN events e ON e.id = r.event_id WHERE r.key_id = '$KEY'")
printf "events %s, the key's rows %s: removed in %.1f s (%.0f rows/s), %s left\n" "$EVENTS" "$LEAKED" \
  "$(echo "$END - $START" | bc)" "$(echo "$LEAKED / ($END - $START)" | bc -l)" "$REMAINING"
tail -1 "$WORK/remove.out"
echo "post_stats, one client, before:       $(stats before "$WORK/post.times")"
echo "post_stats, one client, during:       $(stats during "$WORK/post.times")"
echo "aggregated_stats, one client, before: $(stats before "$WORK/read.times")"
echo "aggregated_stats, one client, during: $(stats during "$WORK/read.times")"
