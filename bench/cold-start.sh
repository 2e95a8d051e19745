#!/usr/bin/env bash
# Cold start of a function binary: from exec to its first 200 on /api/regions, with a
# migrated database (so the cold start checks the migrations but has none to apply),
# started the way Vercel starts it (VERCEL_DEV_PORT). Prints each run and the median.
#
#   bench/cold-start.sh [RUNS]     default: 10
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-10}
cargo build --release --quiet --bin leaderboard --bin regions

WORK=$(mktemp -d /tmp/leaderboard-cold.XXXXXX)
chmod 755 "$WORK"
# shellcheck source=bench/lib.sh
. bench/lib.sh

# The local server provides (and migrates) the database.
start_server target/release/leaderboard

times=()
for i in $(seq "$RUNS"); do
  port=$(free_port)
  start=$(date +%s%N)
  VERCEL_DEV_PORT=$port POSTGRES=$URL LOG_LEVEL=warn target/release/regions >/dev/null 2>&1 &
  pid=$!
  until [ "$(curl -s -o /dev/null -w '%{http_code}' "localhost:$port/api/regions")" = 200 ]; do :; done
  end=$(date +%s%N)
  kill "$pid"; wait "$pid" 2>/dev/null || true
  ms=$(( (end - start) / 1000000 ))
  times+=("$ms")
  echo "run $i: ${ms} ms"
done
median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}')
echo "median of $RUNS: ${median} ms (exec to first /api/regions 200 on a migrated database)"
