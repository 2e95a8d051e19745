#!/usr/bin/env bash
# The container image and the compose stack, with a real container engine (run by .ci/run
# after the Vercel checks; runs alone too: `bash ci/container.sh`). There is no Docker engine
# on CI's machines: Debian's podman (runc, ci/containers.conf) builds the repository's
# Dockerfile unchanged as localhost/leaderboard:ci, on base images made locally under the
# exact names the FROM lines use (ci/base-images.sh; no registry is reachable), then checks:
#
#   the image:   size (<= 100 MB), non-root user, HEALTHCHECK, no POSTGRES -> one clear line;
#   a container against a throwaway PostgreSQL: /api/health 200 (and the image's health
#                check healthy), 26 regions, a signed post_stats (signed by the image's own
#                `leaderboard sign`) read back via raw_stats, PID 1 is the binary and not
#                root, `leaderboard migrate status` via `podman run`, SIGTERM -> exit 0
#                within 2 s;
#   the compose stack (docker-compose.yml via podman-compose, pinned): `up` to healthy,
#                a post, `down`, `up postgres` alone, `up`, the post read back (the named
#                volume kept it).
#
# Installs podman, runc, debootstrap (apt) and podman-compose (PyPI, in a venv under
# ~/.cache) when missing. Reuses, between runs: the base images (by recipe hash), podman's
# layer cache and the Dockerfile's cargo cache mounts. Prints timings (build, time to
# healthy, SIGTERM). Uses the named volume leaderboard_postgres_data and the container name
# leaderboard_postgres of docker-compose.yml, so it refuses to run where those exist and
# are not its own (a developer's data).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
source ci/common.sh
source ci/base-images.sh

IMAGE=localhost/leaderboard:ci
PODMAN_COMPOSE_VERSION=1.6.0
PODMAN_COMPOSE_DIR=${LEADERBOARD_PODMAN_COMPOSE_DIR:-${HOME:-/root}/.cache/leaderboard-podman-compose}
PODMAN_COMPOSE=$PODMAN_COMPOSE_DIR/venv/bin/podman-compose
PROJECT=leaderboard-ci
VOLUME=leaderboard_postgres_data
SECRET_CI=ci-container-secret
export CONTAINERS_CONF=$ROOT/ci/containers.conf
mkdir -p "$BASE_WORK"
: >"$BASE_WORK/podman.log"
started=$SECONDS

# The helpers of ci/common.sh use node for these; python3 is always on this kind of machine.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
# json_check FILE PYTHON_EXPRESSION: the expression, over `b` (the parsed body), is true.
json_check() {
  python3 -c '
import json, sys
try:
    b = json.load(open(sys.argv[1]))
except Exception as e:
    sys.exit("not JSON: %s" % e)
if not eval(sys.argv[2], {}, {"b": b}):
    sys.exit("expected " + sys.argv[2])
' "$1" "$2"
}
now_ms() { date +%s%3N; }
seconds_since() { awk -v a="$1" -v b="$(now_ms)" 'BEGIN { printf "%.1f", (b - a) / 1000 }'; }

# --- tools -------------------------------------------------------------------------------
install_container_tools() {
  local missing=()
  command -v podman >/dev/null || missing+=(podman)
  command -v runc >/dev/null || missing+=(runc)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  command -v curl >/dev/null || missing+=(curl)
  command -v openssl >/dev/null || missing+=(openssl)
  command -v python3 >/dev/null || missing+=(python3 python3-venv)
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing: ${missing[*]}"
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${missing[@]}" >/dev/null
  fi
  if [ "$("$PODMAN_COMPOSE" --version 2>/dev/null | sed -n 's/^podman-compose version //p')" != "$PODMAN_COMPOSE_VERSION" ]; then
    log "installing podman-compose==$PODMAN_COMPOSE_VERSION into $PODMAN_COMPOSE_DIR"
    rm -rf "$PODMAN_COMPOSE_DIR/venv"
    mkdir -p "$PODMAN_COMPOSE_DIR"
    python3 -m venv "$PODMAN_COMPOSE_DIR/venv"
    timeout 600 "$PODMAN_COMPOSE_DIR/venv/bin/pip" install -q --disable-pip-version-check \
      "podman-compose==$PODMAN_COMPOSE_VERSION" </dev/null || fail "pip install podman-compose==$PODMAN_COMPOSE_VERSION"
  fi
  log "$(podman --version), runc $(runc --version | sed -n 's/^runc version //p'), podman-compose $PODMAN_COMPOSE_VERSION"
}

# The image names the Dockerfile and docker-compose.yml use, fully qualified as podman
# stores them.
qualified() { case "$1" in */*) echo "docker.io/$1" ;; *) echo "docker.io/library/$1" ;; esac; }
dockerfile_from() { sed -n "s/^FROM \([^ ]*\)$2\$/\1/p" Dockerfile; }

# --- helpers -----------------------------------------------------------------------------
body=$BASE_WORK/body
# request NAME URL EXPECTED_STATUS [curl args...]: one bounded request, the body in $body.
request() {
  local name=$1 url=$2 want=$3 status
  shift 3
  status=$(curl -s -o "$body" -w '%{http_code}' --max-time 20 "$@" "$url") || true
  if [ "$status" != "$want" ]; then
    echo "--- response body"; head -c 2000 "$body" 2>/dev/null; echo
    fail "$name answered ${status:-nothing} (want $want)"
  fi
  log "$name -> $status"
}

# wait_healthy NAME URL SECONDS: until URL answers 200 (bounded).
wait_healthy() {
  local name=$1 url=$2 deadline=$((SECONDS + $3))
  until [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$url" || true)" = 200 ]; do
    [ $SECONDS -lt $deadline ] || fail "$name: $url not 200 within $3 s"
    sleep 0.2
  done
}

# health_check CONTAINER SECONDS: the container's health check, run by podman (there is no
# systemd here to run it on its interval), until it passes (bounded); podman then reports
# the container healthy.
health_check() {
  local deadline=$((SECONDS + $2))
  until podman healthcheck run "$1" >>"$BASE_WORK/podman.log" 2>&1; do
    [ $SECONDS -lt $deadline ] || fail "$1: health check not passing within $2 s"
    sleep 0.5
  done
  [ "$(podman inspect --format '{{.State.Health.Status}}' "$1")" = healthy ] ||
    fail "$1: health status $(podman inspect --format '{{.State.Health.Status}}' "$1") after a passing check"
}

# sign_body BODY: the Authorization value, by the image's own `leaderboard sign`.
sign_body() {
  printf %s "$1" | podman run --rm --no-healthcheck -i --network none -e SECRET="$SECRET_CI" "$IMAGE" leaderboard sign -
}

post_and_check() {
  local base=$1 orchestrator=$2 stats signature expected
  stats=$(printf '{"region":"FRA","orchestrator":"%s","success_rate":1,"round_trip_time":1.25,"seg_duration":2,"errors":[],"timestamp":1700000000}' "$orchestrator")
  signature=$(sign_body "$stats")
  expected=$(printf %s "$stats" | openssl dgst -sha256 -hmac "$SECRET_CI" | awk '{print $NF}')
  [ "$signature" = "$expected" ] || fail "leaderboard sign gave '$signature', openssl '$expected'"
  request "POST /api/post_stats" "$base/api/post_stats" 200 -X POST -H "Authorization: $signature" \
    -H 'Content-Type: application/json' --data-binary "$stats"
  [ "$(cat "$body")" = ok ] || fail "/api/post_stats: $(head -c 500 "$body")"
  read_back "$base" "$orchestrator"
}

read_back() {
  local base=$1 orchestrator=$2
  request "GET /api/raw_stats?orchestrator=$orchestrator" "$base/api/raw_stats?orchestrator=$orchestrator" 200
  json_check "$body" "isinstance(b.get('FRA'), list) and any(s.get('orchestrator') == '$orchestrator' and s.get('success_rate') == 1 and s.get('round_trip_time') == 1.25 for s in b['FRA'])" ||
    fail "/api/raw_stats: $(head -c 500 "$body")"
}

# =========================================================================================
install_container_tools

# --- base images ---------------------------------------------------------------------------
run_from=$(dockerfile_from Dockerfile '')
build_from=$(dockerfile_from Dockerfile ' AS build')
[ "$(qualified "$run_from")" = "$DEBIAN_SLIM" ] ||
  fail "the Dockerfile runs FROM $run_from; CI makes only $DEBIAN_SLIM (ci/base-images.sh)"
compose_pg=$(sed -n 's/^    image: \(postgres:.*\)$/\1/p' docker-compose.yml)
[ "$(qualified "$compose_pg")" = docker.io/library/postgres:15 ] ||
  fail "docker-compose.yml uses $compose_pg; CI makes only postgres:15 (ci/base-images.sh)"
debian_slim_image
rust_image "$(qualified "$build_from")"
postgres_image

# --- the image -----------------------------------------------------------------------------
log "podman build -t $IMAGE . (the repository's Dockerfile, --pull=never)"
previous=$(image_id "$IMAGE" 2>/dev/null || true)
t=$(now_ms)
# --format docker: the OCI format has no HEALTHCHECK.
nice -n 10 podman build --pull=never --network host --format docker -t "$IMAGE" -f Dockerfile . \
  >"$BASE_WORK/build.log" 2>&1 || { tail -n 40 "$BASE_WORK/build.log"; fail "podman build"; }
build_s=$(seconds_since "$t")
# The compose file's api image is `leaderboard` (built from the Dockerfile): this one.
podman tag "$IMAGE" localhost/leaderboard:latest
drop_replaced "$previous" "$IMAGE"
size_mb=$(image_mb "$IMAGE")
log "built $IMAGE in $build_s s: $size_mb MB"
awk -v s="$size_mb" 'BEGIN { exit !(s <= 100) }' || fail "the image is $size_mb MB (target: at most 100 MB)"

user=$(podman image inspect --format '{{.Config.User}}' "$IMAGE")
case "$user" in "" | 0 | 0:* | root | root:*) fail "the image runs as '${user:-root}'" ;; esac
[ "$(podman run --rm --no-healthcheck --network none "$IMAGE" id -u)" != 0 ] || fail "the image's user is root"
podman image inspect --format '{{json .Config.Healthcheck}}' "$IMAGE" | grep -qF '/api/health' ||
  fail "the image has no HEALTHCHECK on /api/health"
[ "$(podman run --rm --no-healthcheck --network none "$IMAGE" leaderboard --version)" != "" ] || fail "leaderboard --version"
log "image: user $user, HEALTHCHECK on /api/health"

# Without POSTGRES: exit 1 and one line saying so, for serve and for a command.
for command in "leaderboard serve" "leaderboard migrate status"; do
  status=0
  # shellcheck disable=SC2086
  podman run --rm --no-healthcheck --network none "$IMAGE" $command >"$BASE_WORK/out" 2>"$BASE_WORK/err" || status=$?
  [ "$status" = 1 ] || fail "'$command' without POSTGRES exited with $status (want 1)"
  [ "$(wc -l <"$BASE_WORK/err")" = 1 ] && grep -qF 'POSTGRES is required' "$BASE_WORK/err" ||
    { cat "$BASE_WORK/err"; fail "'$command' without POSTGRES: not one line saying POSTGRES is required"; }
done
log "without POSTGRES: $(cat "$BASE_WORK/err")"

# --- one container against a throwaway PostgreSQL -------------------------------------------
start_postgres
api=leaderboard-ci-api
podman rm -f "$api" >/dev/null 2>&1 || true
on_exit "podman rm -f '$api' >/dev/null 2>&1"
on_exit "[ \"\$status\" = 0 ] || { echo '--- $api log (last 40 lines)'; podman logs --tail 40 '$api' 2>&1; }"
port=$(free_port)
t=$(now_ms)
# (podman's complaints about the missing systemd, for health check timers, go to podman.log)
podman run -d --name "$api" --network host -e POSTGRES="$POSTGRES_URL" -e SECRET="$SECRET_CI" \
  -e PORT="$port" "$IMAGE" >/dev/null 2>>"$BASE_WORK/podman.log"
base=http://127.0.0.1:$port
wait_healthy "$api" "$base/api/health" 60
log "$api: /api/health 200 after $(seconds_since "$t") s"
health_check "$api" 30
request "GET /api/health" "$base/api/health" 200
json_check "$body" "b['postgres']['ok'] is True and b['migrations']['ok'] is True" || fail "/api/health: $(head -c 500 "$body")"
request "GET /api/regions" "$base/api/regions" 200
json_check "$body" "len(b['regions']) == 26 and any(r['id'] == 'FRA' for r in b['regions'])" ||
  fail "/api/regions: not the 26 seeded regions: $(head -c 500 "$body")"
post_and_check "$base" 0xc0ffee0000000000000000000000000000000001

pid=$(podman inspect --format '{{.State.Pid}}' "$api")
uid=$(ps -o uid= -p "$pid" | tr -d ' ')
comm=$(ps -o comm= -p "$pid")
[ "$comm" = leaderboard ] || fail "PID 1 of the container is '$comm', not leaderboard"
[ -n "$uid" ] && [ "$uid" != 0 ] || fail "the server runs as uid '${uid:-?}'"
log "$api: PID 1 is $comm, uid $uid"

status=0
podman run --rm --no-healthcheck --network host -e POSTGRES="$POSTGRES_URL" "$IMAGE" leaderboard migrate status \
  >"$BASE_WORK/out" 2>&1 || status=$?
[ "$status" = 0 ] || { cat "$BASE_WORK/out"; fail "leaderboard migrate status exited with $status"; }
grep -q 'V1' "$BASE_WORK/out" || { cat "$BASE_WORK/out"; fail "migrate status does not list V1"; }
log "podman run … leaderboard migrate status: exit 0, $(wc -l <"$BASE_WORK/out") lines"

# SIGTERM (podman stop sends the image's STOPSIGNAL, then SIGKILL after 10 s): a graceful
# stop exits 0 and logs "stopped"; 137 would be the SIGKILL.
t=$(now_ms)
podman stop --time 10 "$api" >/dev/null 2>>"$BASE_WORK/podman.log"
stop_s=$(seconds_since "$t")
code=$(podman inspect --format '{{.State.ExitCode}}' "$api")
[ "$code" = 0 ] || fail "after SIGTERM the server exited with $code (want 0)"
podman logs "$api" 2>&1 | grep -q 'stopped' || fail "no 'stopped' in the log after SIGTERM"
log "SIGTERM -> exit 0 in $stop_s s"
awk -v s="$stop_s" 'BEGIN { exit !(s <= 2) }' || fail "SIGTERM took $stop_s s to stop the server (at most 2 s)"

# --- the compose stack ---------------------------------------------------------------------
# docker-compose.yml's fixed names: refuse to touch a developer's volume or container.
if podman volume exists "$VOLUME"; then
  owner=$(podman volume inspect --format '{{index .Labels "com.docker.compose.project"}}' "$VOLUME" 2>/dev/null || true)
  [ "$owner" = "$PROJECT" ] || fail "a volume $VOLUME exists (not made by this script): refusing to touch it"
  podman volume rm -f "$VOLUME" >/dev/null
fi
if podman container exists leaderboard_postgres; then
  owner=$(podman inspect --format '{{index .Config.Labels "com.docker.compose.project"}}' leaderboard_postgres 2>/dev/null || true)
  [ "$owner" = "$PROJECT" ] || fail "a container leaderboard_postgres exists (not made by this script): refusing to touch it"
  podman rm -f leaderboard_postgres >/dev/null
fi
export SECRET=$SECRET_CI LEADERBOARD_PORT POSTGRES_PORT LOG_LEVEL=info
LEADERBOARD_PORT=$(free_port)
POSTGRES_PORT=$(free_port)
compose() { "$PODMAN_COMPOSE" -p "$PROJECT" -f docker-compose.yml "$@" >>"$BASE_WORK/compose.log" 2>&1; }
: >"$BASE_WORK/compose.log"
on_exit "'$PODMAN_COMPOSE' -p '$PROJECT' -f docker-compose.yml down -v >/dev/null 2>&1; podman volume rm -f '$VOLUME' >/dev/null 2>&1"
on_exit "[ \"\$status\" = 0 ] || { echo '--- podman-compose output (last 40 lines)'; tail -n 40 '$BASE_WORK/compose.log'; }"
stack=http://127.0.0.1:$LEADERBOARD_PORT
api_ctr=${PROJECT}_api_1

# compose_healthy LABEL: both containers healthy by their own health checks, /api/health 200.
compose_healthy() {
  local t=$1
  health_check leaderboard_postgres 120
  wait_healthy "$api_ctr" "$stack/api/health" 120
  health_check "$api_ctr" 60
  log "compose stack healthy after $(seconds_since "$t") s ($2)"
}

log "podman-compose up -d (empty volume; api on 127.0.0.1:$LEADERBOARD_PORT, postgres on 127.0.0.1:$POSTGRES_PORT)"
t=$(now_ms)
compose up -d || fail "podman-compose up"
compose_healthy "$t" "fresh volume: initdb, migrations"
healthy_s=$(seconds_since "$t")
request "GET /api/regions (compose)" "$stack/api/regions" 200
json_check "$body" "len(b['regions']) == 26" || fail "/api/regions (compose): $(head -c 500 "$body")"
post_and_check "$stack" 0xc0ffee0000000000000000000000000000000002

log "podman-compose down (the volume stays)"
compose down || fail "podman-compose down"
podman volume exists "$VOLUME" || fail "podman-compose down removed the volume $VOLUME"
! podman container exists "$api_ctr" || fail "podman-compose down left $api_ctr"

compose up -d postgres || fail "podman-compose up -d postgres"
health_check leaderboard_postgres 120
! podman container exists "$api_ctr" || fail "'up postgres' started the api too"
log "podman-compose up -d postgres: the database alone, healthy"

t=$(now_ms)
compose up -d || fail "podman-compose up (again)"
compose_healthy "$t" "existing volume"
read_back "$stack" 0xc0ffee0000000000000000000000000000000002
log "the post made before down/up is still there"

log "container checks passed in $((SECONDS - started)) s: image $size_mb MB, built in $build_s s," \
  "SIGTERM stop $stop_s s, compose stack healthy in $healthy_s s"
