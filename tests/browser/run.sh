#!/usr/bin/env bash
# The dashboard (public/) in a real browser: headless Debian chromium driven by Playwright
# for Python (tests/browser/*.py, pytest) against the local server on a throwaway embedded
# PostgreSQL, seeded with demo data (`leaderboard seed`) and the job testers' fixtures
# (tests/fixtures, posted signed). Installs what it lacks: chromium (apt-get, as root) and
# the pinned packages of tests/browser/requirements.txt into target/browser-venv.
# Screenshots land in target/browser-screenshots/. Extra arguments go to pytest.
#
#   tests/browser/run.sh [-k NAME ...]
#
# DASHBOARD_EVENTS / DASHBOARD_ORCHESTRATORS size the seed (default 20000 / 30, seconds).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD

EVENTS=${DASHBOARD_EVENTS:-20000}
ORCHESTRATORS=${DASHBOARD_ORCHESTRATORS:-30}

# shellcheck source=tests/browser/setup.sh
. tests/browser/setup.sh

cargo build --quiet --bin leaderboard
BIN=target/debug/leaderboard

WORK=$(mktemp -d /tmp/leaderboard-browser.XXXXXX)
chmod 755 "$WORK"
# shellcheck source=bench/lib.sh
. bench/lib.sh # start_server, stop_server; its EXIT trap stops the server and removes $WORK

started=$SECONDS
LEADERBOARD_DATA_DIR="$WORK/pg" LOG_LEVEL=warn "$BIN" seed --events "$EVENTS" --orchestrators "$ORCHESTRATORS" --hours 24 >/dev/null
SECRET=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
# A short DB_TIMEOUT, so the stopped-database test gets its 503 at once.
start_server "$BIN" SECRET="$SECRET" DB_TIMEOUT=3
for fixture in tests/fixtures/stream-tester.json tests/fixtures/ai-tester.json; do
  signature=$(SECRET="$SECRET" "$BIN" sign "$fixture")
  answer=$(curl -sS -X POST "localhost:$PORT/api/post_stats" -H 'Content-Type: application/json' \
    -H "Authorization: $signature" --data-binary "@$fixture")
  [ "$answer" = ok ] || { echo "browser: posting $fixture: $answer" >&2; exit 1; }
done
echo "browser: server on port $PORT, $EVENTS seeded events from $ORCHESTRATORS orchestrators and 2 fixtures ($((SECONDS - started)) s)"

SHOTS="$ROOT/target/browser-screenshots"
rm -rf "$SHOTS"
status=0
DASHBOARD_URL="http://127.0.0.1:$PORT" DASHBOARD_PGDATA="$WORK/pg" DASHBOARD_ORCHESTRATORS="$ORCHESTRATORS" \
  DASHBOARD_SCREENSHOTS="$SHOTS" \
  "$VENV/bin/python" -m pytest -p no:cacheprovider -q tests/browser "$@" || status=$?
if grep -q -i -E "panicked|internal error" "$WORK/err"; then
  echo "browser: the server logged a panic or an internal error:" >&2
  grep -i -E "panicked|internal error" "$WORK/err" | head -20 >&2
  status=1
fi
echo "browser: screenshots in ${SHOTS#"$ROOT"/}: $(cd "$SHOTS" 2>/dev/null && ls | tr '\n' ' ')"
echo "browser: $((SECONDS - started)) s, exit status $status"
exit $status
