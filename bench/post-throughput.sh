#!/usr/bin/env bash
# post_stats throughput benchmark ("B"): the release local server on a throwaway
# PostgreSQL, wrk posting one signed stream-tester body over C connections for D seconds.
# Prints requests/s, latency and the rows stored (every 200 must be a stored row).
#
#   bench/post-throughput.sh [CONNECTIONS] [SECONDS]     default: 32 10
#
# LEADERBOARD_BIN picks another build of the server (e.g. one before a change).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release --quiet --bin leaderboard
BIN=${LEADERBOARD_BIN:-target/release/leaderboard}
CONNECTIONS=${1:-32}
DURATION=${2:-10}
SECRET=bench

WORK=$(mktemp -d /tmp/leaderboard-post-bench.XXXXXX)
chmod 755 "$WORK"
# shellcheck source=bench/lib.sh
. bench/lib.sh
start_server "$BIN" SECRET=$SECRET

BODY='{"errors":[],"region":"MDW","timestamp":1723741735,"upload_time":0.7765968238571429,"orchestrator":"0x0fc80afb7876f579f1fb1c4d1c37cf1339038658","seg_duration":2.0088571428571425,"success_rate":1,"download_time":0.9568952794285714,"segments_sent":15,"transcode_time":0.21355154864285741,"round_trip_time":1.9470436519285717,"segments_received":30}'
SIGNATURE=$(printf %s "$BODY" | openssl dgst -sha256 -hmac "$SECRET" | awk '{print $NF}')
cat >"$WORK/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '$BODY'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "$SIGNATURE"
ok = 0
response = function(status, headers, body) if status == 200 then ok = ok + 1 end end
done = function(summary, latency, requests) end
LUA
curl -sf -o /dev/null -X POST "localhost:$PORT/api/post_stats" -H "Authorization: $SIGNATURE" --data-binary "$BODY"
echo "== post_stats, $CONNECTIONS connections, ${DURATION}s, server $BIN"
wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$WORK/post.lua" "http://127.0.0.1:$PORT/api/post_stats" \
  | grep -E 'Requests/sec|Latency|50%|99%|requests in|Non-2xx'
echo "rows stored: $(psql "$URL" -qAt -c 'SELECT count(*) FROM events')"
