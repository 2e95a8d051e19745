#!/usr/bin/env bash
# Smoke test of `vercel dev --local` (run by .ci/run after ci/vercel-build.sh; runs alone
# too: `bash ci/vercel-dev.sh`): every request below goes through the Vercel dev proxy,
# which builds each function on its first request (cargo build, debug) and starts it with
# VERCEL_DEV_PORT, against a throwaway PostgreSQL:
#   GET /api/regions, GET / (public/index.html, byte for byte), GET /api/health, one
#   signed POST /api/post_stats, and the GET /api/raw_stats?orchestrator=0xsmoke that
#   returns it.
#
# It runs from a copy of the working tree (no .vercel/, no .env*, no target/), because
# `vercel dev --local` only works offline without .vercel/project.json, and a .env in the
# project root would override the environment given to the functions. The copy builds
# into this repository's target/ (CARGO_TARGET_DIR), reusing what is compiled there.
# POSTGRES and SECRET reach the functions through vercel dev's own environment.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
source ci/common.sh

install_tools

work=$(mktemp -d /tmp/leaderboard-vercel-dev.XXXXXX)
on_exit "rm -rf '$work'"
tar -C "$ROOT" --exclude=./target --exclude=./.vercel --exclude=./.git --exclude=./.data \
  --exclude='./.env' --exclude='./.env.*' --exclude=./node_modules -cf - . | tar -xf - -C "$work"

start_postgres
export POSTGRES=$POSTGRES_URL
export SECRET=ci-vercel-dev-secret
export LOG_LEVEL=info
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
unset VERCEL_IPC_PATH VERCEL_DEV_PORT PORT || true

port=$(free_port)
devlog=$work.log
on_exit "rm -f '$devlog'"
log "vercel dev --local --listen 127.0.0.1:$port (from a copy in $work)"
started=$SECONDS
# A session of its own: vercel dev, cargo and the functions it starts are one process
# group, stopped together below.
(cd "$work" && exec setsid "$VERCEL" dev --local --listen "127.0.0.1:$port" --yes) \
  >"$devlog" 2>&1 </dev/null &
dev=$!
stop_dev() {
  local deadline=$((SECONDS + 20))
  kill -TERM -- "-$dev" 2>/dev/null || return 0
  while kill -0 -- "-$dev" 2>/dev/null; do
    if [ $SECONDS -ge $deadline ]; then
      kill -KILL -- "-$dev" 2>/dev/null || true
      break
    fi
    sleep 0.2
  done
  wait "$dev" 2>/dev/null || true
}
on_exit stop_dev
# (`status` is the script's exit status, in the cleanup that runs this.)
on_exit "[ \"\$status\" = 0 ] || { echo '--- vercel dev log (last 60 lines)'; tail -n 60 '$devlog'; }"

deadline=$((SECONDS + 120))
until grep -qF "Ready! Available at" "$devlog"; do
  kill -0 "$dev" 2>/dev/null || fail "vercel dev exited"
  [ $SECONDS -lt $deadline ] || fail "vercel dev not ready within 120 s"
  sleep 0.2
done
log "vercel dev ready after $((SECONDS - started)) s"

body=$work.body
on_exit "rm -f '$body'"
# request NAME MAX_SECONDS EXPECTED_STATUS curl-args...: through the proxy, bounded.
request() {
  local name=$1 max=$2 want=$3 status t0=$SECONDS
  shift 3
  status=$(curl -s -o "$body" -w '%{http_code}' --max-time "$max" "$@") || true
  if [ "$status" != "$want" ]; then
    echo "--- response body"; head -c 2000 "$body" 2>/dev/null; echo
    fail "$name answered ${status:-nothing} (want $want)"
  fi
  log "$name -> $status in $((SECONDS - t0)) s"
}
base=http://127.0.0.1:$port

# The first request builds the function (and, on a fresh target dir, all dependencies).
request "GET /api/regions (builds it)" 1500 200 "$base/api/regions"
json_check "$body" 'Array.isArray(b.regions) && b.regions.length >= 26 && b.regions.some(r => r.id === "FRA")' ||
  fail "/api/regions: $(head -c 500 "$body")"

# public/ is the site (vercel.json: outputDirectory), served as it is.
request "GET / (public/index.html)" 60 200 "$base/"
cmp -s "$body" "$work/public/index.html" || fail "GET / did not answer public/index.html: $(head -c 300 "$body")"

request "GET /api/health (builds it)" 900 200 "$base/api/health"
json_check "$body" 'b.postgres && b.postgres.ok === true && b.migrations && b.migrations.ok === true' ||
  fail "/api/health: $(head -c 500 "$body")"

stats='{"region":"FRA","orchestrator":"0xsmoke","success_rate":1,"round_trip_time":1.2}'
signature=$(printf %s "$stats" | openssl dgst -sha256 -hmac "$SECRET" | awk '{print $NF}')
request "POST /api/post_stats (builds it)" 900 200 -X POST "$base/api/post_stats" \
  -H "Authorization: $signature" -H 'Content-Type: application/json' --data-binary "$stats"
[ "$(cat "$body")" = ok ] || fail "/api/post_stats: $(head -c 500 "$body")"

request "GET /api/raw_stats?orchestrator=0xsmoke (builds it)" 900 200 "$base/api/raw_stats?orchestrator=0xsmoke"
json_check "$body" 'Array.isArray(b.FRA) && b.FRA.some(s => s.orchestrator === "0xsmoke" && s.success_rate === 1 && s.round_trip_time === 1.2)' ||
  fail "/api/raw_stats: $(head -c 500 "$body")"

log "vercel dev smoke test passed ($((SECONDS - started)) s)"
