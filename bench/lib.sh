# Shared by the benchmark scripts: a local server on a throwaway embedded PostgreSQL.
# Callers set WORK (a directory the postgres user can reach) and source this file.

SERVER_PID=""

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
  fi
}

cleanup() { stop_server; [ -z "${WORK:-}" ] || rm -rf "$WORK"; }
trap cleanup EXIT

# start_server BIN [NAME=VALUE ...]: the local server on $WORK/pg with the given extra
# environment; waits until it is healthy and sets PORT and URL (its database).
start_server() {
  local bin=$1
  shift
  PORT=$(free_port)
  env LEADERBOARD_DATA_DIR="$WORK/pg" PORT="$PORT" LOG_LEVEL=warn "$@" \
    "$bin" >"$WORK/out" 2>"$WORK/err" &
  SERVER_PID=$!
  local deadline=$((SECONDS + 60))
  until curl -sf -o /dev/null "localhost:$PORT/api/health"; do
    [ $SECONDS -lt $deadline ] || { cat "$WORK/err"; echo "server not healthy" >&2; exit 1; }
    sleep 0.2
  done
  URL=$(grep -o 'postgres://[^ ]*' "$WORK/out" | head -1)
}
